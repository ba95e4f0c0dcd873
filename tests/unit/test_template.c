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

/* A digest: the events it gathers, each as the event JSON, in its data. */
static json_t *digest_context(void)
{
    json_error_t jerr;
    json_t *ctx = json_loads(
        "{\"user\":{\"name\":\"Ada\"},"
        " \"data\":{\"count\":2,\"author\":\"nobody\",\"tags\":[\"outer\"],"
        "  \"events\":["
        "   "
        "{\"event_id\":\"e-1\",\"type\":\"comment.created\",\"created_at\":\"2026-12-07T09:00:"
        "00Z\","
        "    \"data\":{\"author\":\"Grace\",\"text\":\"Looks good\",\"tags\":[\"ui\",\"css\"]}},"
        "   "
        "{\"event_id\":\"e-2\",\"type\":\"comment.created\",\"created_at\":\"2026-12-07T09:05:"
        "00Z\","
        "    \"data\":{\"author\":\"Linus\",\"text\":\"<b>No</b> & \\\"why\\\"\",\"tags\":[]}}]},"
        " \"event\":{\"id\":\"d-1\",\"type\":\"comment.digest\"}}",
        0, &jerr);
    ck_assert_msg(ctx != NULL, "%s", jerr.text);
    return ctx;
}

START_TEST(test_section_renders_once_per_array_element)
{
    json_t *ctx = digest_context();
    int missing = -1;
    char *s = render("{{data.count}} new comments:{{#data.events}} - {{data.author}}: "
                     "{{data.text}}{{/data.events}}",
                     ctx, TEMPLATE_ESCAPE_NONE, &missing);
    ck_assert_str_eq(s, "2 new comments: - Grace: Looks good - Linus: <b>No</b> & \"why\"");
    ck_assert_int_eq(missing, 0);
    free(s);
    ASSERT_RENDERS("{{# data.events }}[{{event_id}} {{ type }}]{{/ data.events }}", ctx,
                   TEMPLATE_ESCAPE_NONE, "[e-1 comment.created][e-2 comment.created]");
    json_decref(ctx);
}
END_TEST

START_TEST(test_dot_renders_each_element_of_an_array)
{
    json_t *ctx = json_pack("{s:{s:[s,s,s],s:[i,f,b,n]}}", "data", "tags", "red", "green", "blue",
                            "mixed", 7, 2.5, 1);
    int missing = -1;
    char *s = render("{{#data.tags}}<{{.}}>{{/data.tags}} {{#data.mixed}}{{ . }};{{/data.mixed}}",
                     ctx, TEMPLATE_ESCAPE_NONE, &missing);
    ck_assert_str_eq(s, "<red><green><blue> 7;2.5;true;;");
    ck_assert_int_eq(missing, 1); /* the null element */
    free(s);
    json_decref(ctx);
}
END_TEST

START_TEST(test_section_over_a_value_renders_once_with_it_as_context)
{
    json_t *ctx = context();
    ASSERT_RENDERS("{{#data.order}}{{id}} to {{address.city}}, {{count}} items{{/data.order}}", ctx,
                   TEMPLATE_ESCAPE_NONE, "A-17 to Berlin, 3 items");
    ASSERT_RENDERS("{{#data.gift}}gift: {{.}}{{/data.gift}}|{{#data.order.count}}{{.}} "
                   "items{{/data.order.count}}|{{#data.order.id}}#{{.}}{{/data.order.id}}|"
                   "{{#data.order.total}}{{.}}{{/data.order.total}}",
                   ctx, TEMPLATE_ESCAPE_NONE, "gift: true|3 items|#A-17|19.99");
    json_decref(ctx);
}
END_TEST

START_TEST(test_empty_values_render_no_section_and_only_inverted_ones)
{
    json_t *ctx = json_pack("{s:{s:n,s:b,s:i,s:f,s:s,s:[],s:{},s:b,s:i,s:[n]}}", "data", "null",
                            "false", 0, "zero", 0, "zero_real", 0.0, "empty", "", "none", "nothing",
                            "true", 1, "minus", -1, "nulls");
    static const char *const empty[] = {"absent",    "null",  "false", "zero",
                                        "zero_real", "empty", "none",  "nothing"};
    static const char *const shown_[] = {"true", "minus", "nulls"};
    char src[200];
    for (size_t i = 0; i < sizeof(empty) / sizeof(empty[0]); i++) {
        int missing = -1;
        snprintf(src, sizeof(src), "a{{#data.%s}}X{{/data.%s}}b{{^data.%s}}Y{{/data.%s}}c",
                 empty[i], empty[i], empty[i], empty[i]);
        char *s = render(src, ctx, TEMPLATE_ESCAPE_NONE, &missing);
        ck_assert_msg(strcmp(s, "abYc") == 0, "%s: %s", src, s);
        ck_assert_int_eq(missing, 0);
        free(s);
    }
    for (size_t i = 0; i < sizeof(shown_) / sizeof(shown_[0]); i++) {
        snprintf(src, sizeof(src), "a{{#data.%s}}X{{/data.%s}}b{{^data.%s}}Y{{/data.%s}}c",
                 shown_[i], shown_[i], shown_[i], shown_[i]);
        char *s = render(src, ctx, TEMPLATE_ESCAPE_NONE, NULL);
        ck_assert_msg(strcmp(s, "aXbc") == 0, "%s: %s", src, s);
        free(s);
    }
    /* An inverted section pushes no element: names inside resolve as around it. */
    ASSERT_RENDERS("{{^data.none}}{{data.minus}}{{/data.none}}", ctx, TEMPLATE_ESCAPE_NONE, "-1");
    json_decref(ctx);
}
END_TEST

START_TEST(test_names_resolve_in_the_innermost_element_then_outwards)
{
    json_t *ctx = digest_context();
    json_t *events = json_object_get(json_object_get(ctx, "data"), "events");
    /* The first event has its own user; the second has no data.text. */
    json_object_set_new(json_array_get(events, 0), "user", json_pack("{s:s}", "name", "Bob"));
    json_object_del(json_object_get(json_array_get(events, 1), "data"), "text");
    int missing = -1;
    char *s = render("{{#data.events}}{{user.name}}:{{data.text}}:{{event.type}};{{/data.events}}",
                     ctx, TEMPLATE_ESCAPE_NONE, &missing);
    /* The second event's data hides the digest's: no fallback once "data" is found. */
    ck_assert_str_eq(s, "Bob:Looks good:comment.digest;Ada::comment.digest;");
    ck_assert_int_eq(missing, 1);
    free(s);

    /* One segment names an element's key, never a whole root. */
    s = render("{{#data.events}}[{{type}}|{{data}}|{{user}}|{{event}}]{{/data.events}}", ctx,
               TEMPLATE_ESCAPE_NONE, &missing);
    ck_assert_str_eq(s, "[comment.created|{\"author\":\"Grace\",\"text\":\"Looks good\",\"tags\":"
                        "[\"ui\",\"css\"]}|{\"name\":\"Bob\"}|][comment.created|{\"author\":"
                        "\"Linus\",\"tags\":[]}||]");
    ck_assert_int_eq(missing, 3);
    free(s);
    json_decref(ctx);
}
END_TEST

START_TEST(test_nested_sections_resolve_in_their_elements)
{
    json_t *ctx = digest_context();
    ASSERT_RENDERS("{{#data.events}}{{event_id}}:{{#data.tags}} {{.}}@{{event_id}}"
                   "{{/data.tags}}{{^data.tags}} untagged{{/data.tags}};{{/data.events}}",
                   ctx, TEMPLATE_ESCAPE_NONE, "e-1: ui@e-1 css@e-1;e-2: untagged;");
    /* Elements that are not objects let a name through to the roots. */
    ASSERT_RENDERS("{{#data.tags}}{{#data.tags}}{{.}}/{{data.count}}{{/data.tags}}{{/data.tags}}",
                   ctx, TEMPLATE_ESCAPE_NONE, "outer/2");
    json_decref(ctx);
}
END_TEST

START_TEST(test_html_mode_escapes_values_inside_sections)
{
    json_t *ctx = digest_context();
    ASSERT_RENDERS("<ul>{{#data.events}}<li title=\"{{data.author}}\">{{data.text}}</li>"
                   "{{/data.events}}</ul>",
                   ctx, TEMPLATE_ESCAPE_HTML,
                   "<ul><li title=\"Grace\">Looks good</li><li title=\"Linus\">&lt;b&gt;No&lt;"
                   "/b&gt; &amp; &quot;why&quot;</li></ul>");
    ASSERT_RENDERS("{{#data.events}}{{#data.text}}{{.}}|{{/data.text}}{{/data.events}}", ctx,
                   TEMPLATE_ESCAPE_HTML, "Looks good|&lt;b&gt;No&lt;/b&gt; &amp; &quot;why&quot;|");
    json_decref(ctx);
}
END_TEST

START_TEST(test_section_compile_errors_name_the_problem_and_its_offset)
{
    static const struct {
        const char *src;
        size_t offset;
        const char *message;
    } cases[] = {
        {"Hi {{#data.events}}x", 3, "offset 3: section 'data.events' is never closed"},
        {"{{#data.a}}{{#data.b}}{{/data.b}}", 0, "offset 0: section 'data.a' is never closed"},
        {"{{#data.events}}{{#data.tags}}{{/data.events}}", 30,
         "offset 30: '{{/data.events}}' closes 'data.tags' (opened at offset 16)"},
        {"{{#data.events}}{{/data.event}}", 16,
         "offset 16: '{{/data.event}}' closes 'data.events'"},
        {"x{{/data.events}}", 1, "offset 1: '{{/data.events}}' closes no open section"},
        {"{{#data.a}}{{/data.a}}{{/data.a}}", 22,
         "offset 22: '{{/data.a}}' closes no open section"},
        {"a {{.}}", 2, "offset 2: '{{.}}' is only valid inside a section"},
        {"{{^data.a}}{{.}}{{/data.a}}", 11, "offset 11: '{{.}}' is only valid inside a section"},
        {"{{#.}}{{/.}}", 0, "offset 0: '{{.}}' is only valid inside a section"},
        {"{{#}}", 0, "offset 0: empty section name"},
        {"{{/ }}", 0, "offset 0: empty section name"},
        {"{{#data}}{{/data}}", 3, "offset 3: 'data' needs a field, e.g. {{data.id}}"},
        {"{{^usr.x}}{{/usr.x}}", 3, "offset 3: unknown root 'usr'"},
        {"{{#data.a}}{{/data.a}}{{events}}", 24, "offset 24: unknown root 'events'"},
        {"{{#data.a}}{{#.x}}", 14, "offset 14: empty path segment"},
        {"{{#data.a", 0, "offset 0: '{{' is never closed"},
        {"{{#data.a}}{{/data.a}", 11, "offset 11: '{{' is never closed"},
        {"{{#data.a b}}", 10, "offset 10: unexpected character 'b' in placeholder"},
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
}
END_TEST

START_TEST(test_sections_nest_at_most_eight_deep)
{
    char src[512] = "";
    for (int i = 0; i < 8; i++)
        strcat(src, "{{#data.a}}");
    strcat(src, "{{.}}");
    for (int i = 0; i < 8; i++)
        strcat(src, "{{/data.a}}");
    json_t *ctx = json_pack("{s:{s:[i]}}", "data", "a", 5);
    ASSERT_RENDERS(src, ctx, TEMPLATE_ESCAPE_NONE, "5");
    json_decref(ctx);

    template *t = (template *)1;
    char err[256];
    size_t off = 0;
    char deeper[512] = "";
    for (int i = 0; i < 9; i++)
        strcat(deeper, "{{^data.a}}");
    ck_assert_int_eq(template_compile(deeper, &t, &off, err, sizeof(err)), -1);
    ck_assert_ptr_null(t);
    ck_assert_str_eq(err, "offset 88: sections nested deeper than 8");
    ck_assert_uint_eq(off, 88);
}
END_TEST

START_TEST(test_sections_count_as_tags_and_report_the_roots_they_read)
{
    template *t = NULL;
    char err[256];
    ck_assert_int_eq(template_compile("{{#data.events}}{{type}} {{user}} {{.}}{{/data.events}}", &t,
                                      NULL, err, sizeof(err)),
                     0);
    ck_assert_uint_eq(template_placeholder_count(t), 5);
    ck_assert(template_uses_root(t, "data"));
    ck_assert(!template_uses_root(t, "user"));
    ck_assert(!template_uses_root(t, "event"));
    template_free(t);

    /* A path inside a section may fall through to a root. */
    ck_assert_int_eq(template_compile("{{^event.x}}{{#data.e}}{{#user.tags}}{{/user.tags}}"
                                      "{{/data.e}}{{/event.x}}",
                                      &t, NULL, err, sizeof(err)),
                     0);
    ck_assert(template_uses_root(t, "user"));
    ck_assert(template_uses_root(t, "event"));
    ck_assert(template_uses_root(t, "data"));
    template_free(t);
}
END_TEST

START_TEST(test_sections_stay_within_the_output_and_work_bounds)
{
    json_t *items = json_array();
    for (int i = 0; i < 10000; i++)
        json_array_append_new(items, json_integer(i));
    json_t *ctx = json_pack("{s:{s:o}}", "data", "items", items);
    template *t = NULL;
    char err[256];
    char *out = (char *)1;
    ck_assert_int_eq(
        template_compile("{{#data.items}}item {{.}} {{/data.items}}", &t, NULL, err, sizeof(err)),
        0);
    ck_assert_int_eq(
        template_render(t, ctx, TEMPLATE_ESCAPE_NONE, &out, NULL, NULL, err, sizeof(err)), -1);
    ck_assert_ptr_null(out);
    ck_assert_str_eq(err, "rendered text exceeds 65536 bytes");
    template_free(t);

    /* Nested sections that render nothing would repeat 10^12 times. */
    ck_assert_int_eq(template_compile("{{#data.items}}{{#data.items}}{{#data.items}}{{data.x}}"
                                      "{{/data.items}}{{/data.items}}{{/data.items}}",
                                      &t, NULL, err, sizeof(err)),
                     0);
    out = (char *)1;
    ck_assert_int_eq(
        template_render(t, ctx, TEMPLATE_ESCAPE_NONE, &out, NULL, NULL, err, sizeof(err)), -1);
    ck_assert_ptr_null(out);
    ck_assert_str_eq(err, "rendering takes more than 1048576 steps (sections repeated too often)");
    template_free(t);
    json_decref(ctx);
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
    TEST_ENTRY(test_section_renders_once_per_array_element),
    TEST_ENTRY(test_dot_renders_each_element_of_an_array),
    TEST_ENTRY(test_section_over_a_value_renders_once_with_it_as_context),
    TEST_ENTRY(test_empty_values_render_no_section_and_only_inverted_ones),
    TEST_ENTRY(test_names_resolve_in_the_innermost_element_then_outwards),
    TEST_ENTRY(test_nested_sections_resolve_in_their_elements),
    TEST_ENTRY(test_html_mode_escapes_values_inside_sections),
    TEST_ENTRY(test_section_compile_errors_name_the_problem_and_its_offset),
    TEST_ENTRY(test_sections_nest_at_most_eight_deep),
    TEST_ENTRY(test_sections_count_as_tags_and_report_the_roots_they_read),
    TEST_ENTRY(test_sections_stay_within_the_output_and_work_bounds),
};

TEST_MAIN("template", cases)
