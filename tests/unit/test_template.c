/*
 * template: rendering what a recipient reads and compile errors an author sees.
 */
#include "template.h"
#include "testutil.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static json_t *context(void)
{
    json_error_t jerr;
    json_t *ctx = json_loads(
        "{\"user\":{\"name\":\"Ada\",\"email\":\"ada@example.com\",\"phone\":null},"
        " \"data\":{\"order\":{\"id\":\"A-17\",\"total\":19.99,\"count\":3,"
        "                      \"address\":{\"city\":\"Berlin\"}},"
        "           \"items\":[{\"name\":\"Lamp\",\"qty\":2},{\"name\":\"Desk\",\"qty\":1}],"
        "           \"gift\":true,\"express\":false,\"note\":null},"
        " \"event\":{\"id\":\"0b6f1c1e-0000-4000-8000-000000000001\",\"type\":\"order.shipped\"}}",
        0, &jerr);
    ck_assert_msg(ctx != NULL, "%s", jerr.text);
    return ctx;
}

/* Compiles and renders src; returns the text (caller frees). */
static char *render(const char *src, const json_t *ctx, template_escape esc, int *missing)
{
    template *t = NULL;
    char err[256] = "";
    char *out = NULL;
    size_t len = 0;
    ck_assert_msg(template_compile(src, &t, NULL, err, sizeof(err)) == 0, "%s: %s", src, err);
    ck_assert_msg(template_render(t, ctx, esc, &out, &len, missing, err, sizeof(err)) == 0, "%s",
                  err);
    ck_assert_uint_eq(strlen(out), len);
    template_free(t);
    return out;
}

#define ASSERT_RENDERS(src, ctx, esc, expected)                                                    \
    do {                                                                                           \
        char *got_ = render((src), (ctx), (esc), NULL);                                            \
        ck_assert_str_eq(got_, (expected));                                                        \
        free(got_);                                                                                \
    } while (0)

START_TEST(test_renders_user_fields_and_nested_data)
{
    json_t *ctx = context();
    int missing = -1;
    char *s = render("Hi {{user.name}}, order {{ data.order.id }} ships to "
                     "{{\tdata.order.address.city\n}} ({{user.email}}).",
                     ctx, TEMPLATE_ESCAPE_NONE, &missing);
    ck_assert_str_eq(s, "Hi Ada, order A-17 ships to Berlin (ada@example.com).");
    ck_assert_int_eq(missing, 0);
    free(s);
    json_decref(ctx);
}
END_TEST

START_TEST(test_array_indexes_and_event_fields)
{
    json_t *ctx = context();
    ASSERT_RENDERS("{{data.items.0.name}} x{{data.items.0.qty}}, {{data.items.1.name}}", ctx,
                   TEMPLATE_ESCAPE_NONE, "Lamp x2, Desk");
    ASSERT_RENDERS("[{{event.type}}] {{event.id}}", ctx, TEMPLATE_ESCAPE_NONE,
                   "[order.shipped] 0b6f1c1e-0000-4000-8000-000000000001");
    json_decref(ctx);
}
END_TEST

START_TEST(test_context_built_from_event_and_user)
{
    json_t *event = json_pack("{s:s, s:s, s:s, s:{s:{s:s}}}", "event_id", "e-1", "type",
                              "order.shipped", "priority", "high", "data", "order", "id", "A-9");
    ck_assert_ptr_nonnull(event);
    json_t *user = json_pack("{s:s, s:s}", "user_id", "u-1", "name", "Grace");
    json_t *ctx = template_context_new(event, user);
    ck_assert_ptr_nonnull(ctx);
    ASSERT_RENDERS("{{user.name}} {{data.order}} {{data.order.id}} {{event.id}} {{event.type}} "
                   "{{event.priority}} {{event.data.order.id}}",
                   ctx, TEMPLATE_ESCAPE_NONE, "Grace {\"id\":\"A-9\"} A-9 e-1 order.shipped high ");
    json_decref(ctx);
    /* The context keeps its own references. */
    ck_assert_int_eq(event->refcount, 1);
    ck_assert_int_eq(user->refcount, 1);
    json_decref(event);
    json_decref(user);
}
END_TEST

START_TEST(test_html_mode_escapes_inserted_values_only)
{
    json_t *ctx = json_pack("{s:{s:s}}", "data", "note", "<b>\"Tom\" & 'Jerry'</b>");
    ASSERT_RENDERS("<p class=\"n\">{{data.note}}</p>", ctx, TEMPLATE_ESCAPE_HTML,
                   "<p class=\"n\">&lt;b&gt;&quot;Tom&quot; &amp; &#39;Jerry&#39;&lt;/b&gt;</p>");
    ASSERT_RENDERS("<p>{{data.note}}</p>", ctx, TEMPLATE_ESCAPE_NONE,
                   "<p><b>\"Tom\" & 'Jerry'</b></p>");
    json_decref(ctx);
}
END_TEST

START_TEST(test_missing_and_null_values_render_empty_and_are_counted)
{
    json_t *ctx = context();
    int missing = 0;
    char *s = render("[{{data.absent}}|{{data.note}}|{{user.phone}}|{{data.items.5}}|"
                     "{{data.order.id.deeper}}|{{data.items.name}}|{{user.name}}]",
                     ctx, TEMPLATE_ESCAPE_NONE, &missing);
    ck_assert_str_eq(s, "[||||||Ada]");
    ck_assert_int_eq(missing, 6);
    free(s);

    /* No context at all: everything is missing, nothing crashes. */
    s = render("{{user.name}}{{event.id}}", NULL, TEMPLATE_ESCAPE_NONE, &missing);
    ck_assert_str_eq(s, "");
    ck_assert_int_eq(missing, 2);
    free(s);
    json_decref(ctx);
}
END_TEST

START_TEST(test_numbers_and_booleans_are_formatted)
{
    json_t *ctx = context();
    ASSERT_RENDERS("{{data.order.total}} {{data.order.count}} {{data.gift}} {{data.express}}", ctx,
                   TEMPLATE_ESCAPE_NONE, "19.99 3 true false");
    json_t *n = json_pack("{s:{s:f,s:f,s:f,s:I,s:f}}", "data", "a", 0.1, "b", 3.0, "c", 1e21, "d",
                          (json_int_t)-9007199254740993LL, "e", -2.5);
    ASSERT_RENDERS("{{data.a}} {{data.b}} {{data.c}} {{data.d}} {{data.e}}", n,
                   TEMPLATE_ESCAPE_NONE, "0.1 3 1e+21 -9007199254740993 -2.5");
    json_decref(n);
    json_decref(ctx);
}
END_TEST

START_TEST(test_objects_and_arrays_render_as_compact_json)
{
    json_t *ctx = context();
    ASSERT_RENDERS("{{data.items}}", ctx, TEMPLATE_ESCAPE_NONE,
                   "[{\"name\":\"Lamp\",\"qty\":2},{\"name\":\"Desk\",\"qty\":1}]");
    ASSERT_RENDERS("{{data.order.address}}", ctx, TEMPLATE_ESCAPE_HTML,
                   "{&quot;city&quot;:&quot;Berlin&quot;}");
    json_decref(ctx);
}
END_TEST

START_TEST(test_compile_errors_name_the_problem_and_its_offset)
{
    static const struct {
        const char *src;
        size_t offset;
        const char *message;
    } cases[] = {
        {"Hello {{user.name", 6, "offset 6: '{{' is never closed"},
        {"{{user.name}", 0, "offset 0: '{{' is never closed"},
        {"{{user.name} }}", 0, "offset 0: '{{' is never closed"},
        {"Hi {{}}", 3, "offset 3: empty placeholder"},
        {"Hi {{  }}", 3, "offset 3: empty placeholder"},
        {"{{usr.name}}", 2, "offset 2: unknown root 'usr' (expected user, data or event)"},
        {"x {{ data..id }}", 10, "offset 10: empty path segment"},
        {"{{data.}}", 7, "offset 7: empty path segment"},
        {"{{.data}}", 2, "offset 2: empty path segment"},
        {"{{data.a b}}", 9, "offset 9: unexpected character 'b' in placeholder"},
        {"{{user.na$me}}", 9, "offset 9: unexpected character '$' in placeholder"},
        {"{{{user.name}}}", 2, "offset 2: unexpected character '{' in placeholder"},
        {"{{data}}", 2, "offset 2: 'data' needs a field, e.g. {{data.id}}"},
        {"ok \xff", 3, "offset 3: invalid UTF-8"},
        {"ok \xc3\x28", 3, "offset 3: invalid UTF-8"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        template *t = (template *)1;
        char err[256] = "";
        size_t off = 999;
        ck_assert_int_eq(template_compile(cases[i].src, &t, &off, err, sizeof(err)), -1);
        ck_assert_ptr_null(t);
        ck_assert_msg(strncmp(err, cases[i].message, strlen(cases[i].message)) == 0,
                      "\"%s\": got \"%s\", want \"%s\"", cases[i].src, err, cases[i].message);
        ck_assert_uint_eq(off, cases[i].offset);
    }

    char seg[200];
    memset(seg, 'a', sizeof(seg));
    memcpy(seg, "{{data.", 7);
    memcpy(seg + 7 + 129, "}}", 3);
    template *t = NULL;
    char err[256];
    ck_assert_int_eq(template_compile(seg, &t, NULL, err, sizeof(err)), -1);
    ck_assert_str_eq(err, "offset 7: path segment longer than 128 characters");
}
END_TEST

START_TEST(test_stray_closing_braces_and_single_braces_are_text)
{
    const char *css = "<style>@media(x){.a{color:red}}</style> { } }} {{user.name}}";
    template *t = NULL;
    char err[256];
    ck_assert_int_eq(template_compile(css, &t, NULL, err, sizeof(err)), 0);
    ck_assert_uint_eq(template_placeholder_count(t), 1);
    template_free(t);
    json_t *ctx = context();
    ASSERT_RENDERS(css, ctx, TEMPLATE_ESCAPE_NONE,
                   "<style>@media(x){.a{color:red}}</style> { } }} Ada");
    ASSERT_RENDERS("", ctx, TEMPLATE_ESCAPE_NONE, "");
    json_decref(ctx);
}
END_TEST

START_TEST(test_output_and_source_sizes_are_capped)
{
    char *big = malloc(40 * 1024 + 1);
    memset(big, 'x', 40 * 1024);
    big[40 * 1024] = '\0';
    json_t *ctx = json_pack("{s:{s:s}}", "data", "big", big);
    template *t = NULL;
    char err[256];
    ck_assert_int_eq(template_compile("{{data.big}}{{data.big}}", &t, NULL, err, sizeof(err)), 0);
    char *out = (char *)1;
    ck_assert_int_eq(
        template_render(t, ctx, TEMPLATE_ESCAPE_NONE, &out, NULL, NULL, err, sizeof(err)), -1);
    ck_assert_ptr_null(out);
    ck_assert_str_eq(err, "rendered text exceeds 65536 bytes");
    template_free(t);
    json_decref(ctx);

    char *src = malloc(TEMPLATE_MAX_SOURCE + 2);
    memset(src, 'y', TEMPLATE_MAX_SOURCE + 1);
    src[TEMPLATE_MAX_SOURCE + 1] = '\0';
    ck_assert_int_eq(template_compile(src, &t, NULL, err, sizeof(err)), -1);
    ck_assert_str_eq(err, "offset 65536: template longer than 65536 bytes");
    free(src);
    free(big);
}
END_TEST

/* The rule reals are rendered by: the first precision of %g, from 1 up, that reads back. */
static void shortest_by_search(double v, char *buf, size_t buflen)
{
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, buflen, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            return;
    }
}

static void real_renders_shortest(template *t, double v)
{
    char want[64], err[256];
    char *got = NULL;
    shortest_by_search(v, want, sizeof want);
    json_t *ctx = json_pack("{s:{s:f}}", "data", "x", v);
    ck_assert_ptr_nonnull(ctx);
    ck_assert_int_eq(
        template_render(t, ctx, TEMPLATE_ESCAPE_NONE, &got, NULL, NULL, err, sizeof err), 0);
    ck_assert_msg(strcmp(got, want) == 0, "%.17g: got %s, want %s", v, got, want);
    free(got);
    json_decref(ctx);
}

START_TEST(test_reals_render_in_their_shortest_form)
{
    template *t = NULL;
    char err[256];
    ck_assert_int_eq(template_compile("{{data.x}}", &t, NULL, err, sizeof err), 0);
    static const double fixed[] = {0.0,     -0.0,    19.99,  0.1,      0.1 + 0.2,     100.0, 120.0,
                                   1e15,    1e16,    1e21,   1e-7,     5e-324,        1.5,   -42.5,
                                   1e308,   123.456, 9.995,  0.000123, 2.5e-5,        1e100, 33.3,
                                   1.0 / 3, 2.0 / 3, 1e-300, 99999.99, 1234567890.125};
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        real_renders_shortest(t, fixed[i]);
    uint64_t x = 0x9e3779b97f4a7c15u;
    for (int i = 0; i < 50000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        double v;
        switch (i % 4) {
        case 0: /* prices and the like */
            v = (double)(int64_t)(x % 100000000) / 100.0;
            break;
        case 1: /* decimals of few digits at any scale */
            v = (double)(int64_t)(x % 100000) * pow(10.0, (double)((int)(x >> 40) % 40 - 20));
            break;
        case 2: /* any finite bit pattern */
            memcpy(&v, &x, sizeof v);
            if (!isfinite(v))
                continue;
            break;
        default: /* results of arithmetic */
            v = (double)(x % 1000003) / (double)((x >> 32) % 9973 + 1);
            break;
        }
        real_renders_shortest(t, v);
    }
    template_free(t);
}
END_TEST

static const test_case_entry cases[] = {
    TEST_ENTRY(test_renders_user_fields_and_nested_data),
    TEST_ENTRY(test_array_indexes_and_event_fields),
    TEST_ENTRY(test_context_built_from_event_and_user),
    TEST_ENTRY(test_html_mode_escapes_inserted_values_only),
    TEST_ENTRY(test_missing_and_null_values_render_empty_and_are_counted),
    TEST_ENTRY(test_numbers_and_booleans_are_formatted),
    TEST_ENTRY(test_reals_render_in_their_shortest_form),
    TEST_ENTRY(test_objects_and_arrays_render_as_compact_json),
    TEST_ENTRY(test_compile_errors_name_the_problem_and_its_offset),
    TEST_ENTRY(test_stray_closing_braces_and_single_braces_are_text),
    TEST_ENTRY(test_output_and_source_sizes_are_capped),
};

TEST_MAIN("template", cases)
