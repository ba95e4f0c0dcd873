/*
 * fanout: the delivery records the dispatcher writes with delivery_write()
 * are byte for byte what jansson dumps of delivery_to_json(), and read back
 * the same;
 * templates see the event as template_context_new(event_to_json()) shows it.
 */
#include "delivery.h"
#include "fanout.h"
#include "testutil.h"
#include "tplcache.h"

#include <stdlib.h>
#include <string.h>

static delivery sample(void)
{
    delivery d = {
        .user_id = "u-42",
        .channel = DELIVERY_EMAIL,
        .attempt = 1,
        .address = "ada@example.com",
        .subject = "Order 17",
        .body = "<p>Hello Ada</p>",
        .priority = EVENT_PRIORITY_HIGH,
        .category = "orders",
        .event_type = "order.shipped",
        .created_at = 1795842383663,
        .generation = 0,
    };
    strcpy(d.event_id, "0b9c2f5e-3d1a-4c6e-9f3b-8a7d6c5b4a39");
    strcpy(d.idempotency_key, "5f0e8c1a-7b2d-5e4f-8a9b-0c1d2e3f4a5b");
    return d;
}

/*
 * The writer, appending after what b already holds, agrees with jansson's
 * dump of delivery_to_json(d); returns 0, or -1 when both refuse it (and
 * the writer leaves b as it was).
 */
static int same(const delivery *d, const char *created)
{
    json_t *o = delivery_to_json(d);
    char *a = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    int ra = a != NULL ? 0 : -1;
    buf b;
    buf_init(&b, 0);
    ck_assert_int_eq(buf_append_str(&b, "prefix"), 0);
    int rb = delivery_write(&b, d, created);
    ck_assert_int_eq(ra, rb);
    ck_assert_int_eq(strncmp(b.data, "prefix", 6), 0);
    if (ra == 0) {
        ck_assert_str_eq(b.data + 6, a);
        ck_assert_uint_eq(b.len, 6 + strlen(a));
    } else {
        ck_assert_str_eq(b.data, "prefix");
        ck_assert_uint_eq(b.len, 6);
    }
    free(a);
    buf_free(&b);
    return ra;
}

START_TEST(test_email_record_matches_jansson)
{
    delivery d = sample();
    ck_assert_int_eq(same(&d, NULL), 0);
    ck_assert_int_eq(same(&d, "2026-11-28T05:06:23.663Z"), 0);
    d.category = NULL;
    d.attempt = 7;
    d.generation = 3;
    d.not_before = 1795842383663 + 3600000;
    ck_assert_int_eq(same(&d, NULL), 0);
}
END_TEST

START_TEST(test_push_record_with_data_matches_jansson)
{
    delivery d = sample();
    d.channel = DELIVERY_PUSH;
    d.subject = NULL;
    d.title = "Ship\"ped\\";
    d.address = "tok-phone";
    json_error_t jerr;
    d.data = json_loads("{\"order\":{\"id\":17,\"total\":42.5,\"items\":[1,\"a\\u0001\",null,true],"
                        "\"note\":\"caf\\u00e9 \\u2028 / \\ud83d\\ude00\"}}",
                        0, &jerr);
    ck_assert_ptr_nonnull(d.data);
    ck_assert_int_eq(same(&d, NULL), 0);
    json_decref(d.data);
}
END_TEST

START_TEST(test_escapes_match_jansson)
{
    delivery d = sample();
    char body[160];
    size_t n = 0;
    for (int c = 1; c < 0x20; c++)
        body[n++] = (char)c;
    const char *rest = "\"\\/\x7f caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 end";
    memcpy(body + n, rest, strlen(rest) + 1);
    d.body = body;
    d.channel = DELIVERY_SMS;
    d.subject = NULL;
    d.address = "+15550000042";
    ck_assert_int_eq(same(&d, NULL), 0);
}
END_TEST

START_TEST(test_invalid_utf8_is_refused_by_both)
{
    static const char *const bad[] = {
        "\xc3",             /* cut short */
        "\xc0\xaf",         /* overlong */
        "\xed\xa0\x80",     /* surrogate */
        "\xf4\x90\x80\x80", /* past U+10FFFF */
        "a\x80z",           /* stray continuation */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        delivery d = sample();
        d.body = (char *)bad[i];
        ck_assert_int_eq(same(&d, NULL), -1);
    }
}
END_TEST

START_TEST(test_record_reads_back)
{
    delivery d = sample(), back;
    char *s = NULL, err[256];
    size_t n = 0;
    ck_assert_int_eq(delivery_serialize(&d, &s, &n), 0);
    ck_assert_int_eq(delivery_parse(s, n, &back, err, sizeof err), DELIVERY_OK);
    ck_assert_str_eq(back.body, d.body);
    ck_assert_str_eq(back.address, d.address);
    ck_assert_int_eq(back.created_at, d.created_at);
    delivery_free(&back);
    free(s);
}
END_TEST

/* The body fanout_event renders from src equals what the full context gives. */
static void renders_as_before(const char *src, const char *expect_part)
{
    static const char rec[] =
        "{\"event_id\":\"0b9c2f5e-3d1a-4c6e-9f3b-8a7d6c5b4a39\",\"type\":\"t.x\","
        "\"user_id\":\"u-1\",\"data\":{\"n\":42.5,\"s\":\"a<b\"},\"priority\":\"high\","
        "\"category\":\"orders\",\"created_at\":\"2026-11-27T22:10:55.123Z\","
        "\"idempotency_key\":\"k-1\",\"generation\":2}";
    char err[256];
    event ev;
    ck_assert_int_eq(event_parse(rec, strlen(rec), &ev, err, sizeof err), EVENT_OK);
    tplcache *tc = tplcache_new(8, 60000);
    ck_assert_ptr_nonnull(tc);
    tplcache_row row = {.channel = "email", .subject = "S", .body = src};
    ck_assert_int_eq(tplcache_put(tc, "t.x", &row, 1, 0, err, sizeof err), 0);
    tplcache_type *tt = tplcache_get(tc, "t.x", 0);
    ck_assert_ptr_nonnull(tt);
    prefs_user u = {
        .refs = 1, .known = true, .user_id = "u-1", .email = "ada@example.com", .name = "Ada"};

    fanout_list fl = {0};
    fanout_options fo = {.sms_max_segments = 10};
    ck_assert_int_eq(fanout_event(&ev, &u, tt, &fo, 1795842383663, &fl, err, sizeof err), 0);
    ck_assert_uint_eq(fl.n, 1);
    delivery got;
    ck_assert_int_eq(delivery_parse(fl.items[0].value, fl.items[0].vlen, &got, err, sizeof err),
                     DELIVERY_OK);

    json_t *evjson = event_to_json(&ev), *ujson = prefs_user_json(&u);
    json_t *ctx = template_context_new(evjson, ujson);
    char *want = NULL;
    ck_assert_int_eq(template_render(tt->ch[DELIVERY_EMAIL].body, ctx, TEMPLATE_ESCAPE_NONE, &want,
                                     NULL, NULL, err, sizeof err),
                     0);
    ck_assert_str_eq(got.body, want);
    ck_assert_ptr_nonnull(strstr(got.body, expect_part));
    free(want);
    json_decref(ctx);
    json_decref(ujson);
    json_decref(evjson);
    delivery_free(&got);
    fanout_list_free(&fl);
    tplcache_type_unref(tt);
    tplcache_free(tc);
    event_free(&ev);
}

START_TEST(test_templates_see_the_event_as_before)
{
    renders_as_before(
        "{{event.id}}|{{event.event_id}}|{{event.type}}|{{event.user_id}}|{{event.priority}}|"
        "{{event.category}}|{{event.created_at}}|{{event.idempotency_key}}|"
        "{{event.generation}}|{{event.topic}}|{{event.data}}|{{user.name}}|{{user.user_id}}|"
        "{{data.n}}|{{data.s}}",
        "|high|orders|2026-11-27T22:10:55.123Z|k-1|2|||Ada|u-1|42.5|a<b");
    renders_as_before("Order {{data.n}} {{data.s}}", "Order 42.5 a<b");
    renders_as_before("Hi {{user.name}} {{user.email}}", "Hi Ada ada@example.com");
    renders_as_before("Event {{event.id}} of {{event.type}}",
                      "Event 0b9c2f5e-3d1a-4c6e-9f3b-8a7d6c5b4a39 of t.x");
    renders_as_before("plain", "plain");
}
END_TEST

static const test_case_entry cases[] = {
    TEST_ENTRY(test_email_record_matches_jansson),
    TEST_ENTRY(test_push_record_with_data_matches_jansson),
    TEST_ENTRY(test_escapes_match_jansson),
    TEST_ENTRY(test_invalid_utf8_is_refused_by_both),
    TEST_ENTRY(test_record_reads_back),
    TEST_ENTRY(test_templates_see_the_event_as_before),
};

TEST_MAIN("fanout_json", cases)
