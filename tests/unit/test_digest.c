/*
 * digest and rules: when windows close (on the recipient's clock, across DST
 * changes), grouping keys, window ids, and which rule applies.
 */
#include "digest.h"
#include "rules.h"
#include "testutil.h"
#include "timeutil.h"
#include "tz.h"

#include <string.h>

static int64_t utc_ms(int y, int mo, int d, int h, int mi)
{
    return (timeutil_days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60) * 1000;
}

static const tz_zone *zone(const char *name)
{
    char err[256] = "";
    const tz_zone *z = tz_get(name, err, sizeof(err));
    ck_assert_msg(z != NULL, "%s", err);
    return z;
}

START_TEST(test_next_local_time_follows_the_clock_across_dst)
{
    const tz_zone *ny = zone("America/New_York");
    const int nine = 9 * 3600;
    /* Saturday 10:00 EST: Sunday 09:00 is already EDT (clocks sprang forward at 02:00). */
    ck_assert_int_eq(digest_next_local(ny, utc_ms(2026, 3, 7, 15, 0), nine),
                     utc_ms(2026, 3, 8, 13, 0));
    /* Friday 10:00 EST: Saturday 09:00 EST. */
    ck_assert_int_eq(digest_next_local(ny, utc_ms(2026, 3, 6, 15, 0), nine),
                     utc_ms(2026, 3, 7, 14, 0));
    /* Saturday 08:00 EST: the same day. */
    ck_assert_int_eq(digest_next_local(ny, utc_ms(2026, 3, 7, 13, 0), nine),
                     utc_ms(2026, 3, 7, 14, 0));
    /* Autumn: Saturday 10:00 EDT, Sunday 09:00 is EST again. */
    ck_assert_int_eq(digest_next_local(ny, utc_ms(2026, 10, 31, 14, 0), nine),
                     utc_ms(2026, 11, 1, 14, 0));
    /* 02:30 never happens on the spring night: the instant the clocks jump to 03:00. */
    ck_assert_int_eq(digest_next_local(ny, utc_ms(2026, 3, 8, 5, 0), 2 * 3600 + 1800),
                     utc_ms(2026, 3, 8, 7, 0));
    /* 01:30 happens twice on the autumn night: the first one. */
    ck_assert_int_eq(digest_next_local(ny, utc_ms(2026, 11, 1, 4, 0), 3600 + 1800),
                     utc_ms(2026, 11, 1, 5, 30));
    /* UTC when no zone; strictly after now. */
    ck_assert_int_eq(digest_next_local(NULL, utc_ms(2026, 1, 1, 9, 0) - 1, nine),
                     utc_ms(2026, 1, 1, 9, 0));
    ck_assert_int_eq(digest_next_local(NULL, utc_ms(2026, 1, 1, 9, 0), nine),
                     utc_ms(2026, 1, 2, 9, 0));
}
END_TEST

START_TEST(test_plans_of_each_kind)
{
    digest_rule r = {.kind = DIGEST_FIXED, .window_ms = 2000};
    digest_plan p;
    int64_t now = utc_ms(2026, 6, 1, 12, 0);
    ck_assert_int_eq(digest_plan_window(&r, NULL, now, &p), 0);
    ck_assert_int_eq(p.closes_ms, now + 2000);
    ck_assert_int_eq(p.deadline_ms, now + 2000);
    ck_assert_int_eq(p.slide_ms, 0);
    r = (digest_rule){.kind = DIGEST_SLIDING, .window_ms = 3000, .max_window_ms = 10000};
    ck_assert_int_eq(digest_plan_window(&r, NULL, now, &p), 0);
    ck_assert_int_eq(p.closes_ms, now + 3000);
    ck_assert_int_eq(p.deadline_ms, now + 10000);
    ck_assert_int_eq(p.slide_ms, 3000);
    r = (digest_rule){.kind = DIGEST_SCHEDULED, .schedule_s = 9 * 3600};
    ck_assert_int_eq(digest_plan_window(&r, zone("Europe/Berlin"), now, &p), 0);
    ck_assert_int_eq(p.closes_ms, utc_ms(2026, 6, 2, 7, 0)); /* 09:00 CEST */
    ck_assert_int_eq(p.deadline_ms, p.closes_ms);
}
END_TEST

static json_t *data(const char *text)
{
    json_t *j = json_loads(text, 0, NULL);
    ck_assert_ptr_nonnull(j);
    return j;
}

START_TEST(test_group_keys)
{
    char k[DIGEST_KEY_MAX + 1];
    json_t *d = data("{\"thread_id\":\"t-7\",\"n\":42,\"r\":1.5,\"b\":true,\"o\":{\"x\":\"in\"},"
                     "\"arr\":[1],\"nul\":null}");
    digest_group_key("data.thread_id", d, k);
    ck_assert_str_eq(k, "t-7");
    digest_group_key("data.n", d, k);
    ck_assert_str_eq(k, "42");
    digest_group_key("data.r", d, k);
    ck_assert_str_eq(k, "1.5");
    digest_group_key("data.b", d, k);
    ck_assert_str_eq(k, "true");
    digest_group_key("data.o.x", d, k);
    ck_assert_str_eq(k, "in");
    /* Missing, null, objects and arrays: the empty key. */
    const char *empty[] = {"data.missing", "data.nul", "data.o", "data.arr", "data.o.x.y", NULL};
    for (int i = 0; empty[i] != NULL; i++) {
        digest_group_key(empty[i], d, k);
        ck_assert_msg(k[0] == '\0', "%s gave '%s'", empty[i], k);
    }
    digest_group_key(NULL, d, k);
    ck_assert_str_eq(k, "");
    json_decref(d);
    /* A long key is cut on a character boundary. */
    char big[600] = "{\"s\":\"";
    size_t n = strlen(big);
    for (int i = 0; i < 200; i++) {
        memcpy(big + n, "\xc3\xa9", 2); /* é, two bytes */
        n += 2;
    }
    strcpy(big + n, "\"}");
    d = data(big);
    digest_group_key("data.s", d, k);
    ck_assert_uint_eq(strlen(k), DIGEST_KEY_MAX);
    ck_assert_int_eq((unsigned char)k[DIGEST_KEY_MAX - 2], 0xc3);
    json_decref(d);
}
END_TEST

START_TEST(test_window_ids_are_stable_and_per_channel)
{
    char a[ID_UUID_SIZE], b[ID_UUID_SIZE], c[ID_UUID_SIZE];
    const char *ev = "7d0f7a3e-4b1b-4a57-9a55-0c6f0e1c2d3e";
    digest_window_id("comments", DELIVERY_EMAIL, ev, a);
    digest_window_id("comments", DELIVERY_EMAIL, ev, b);
    digest_window_id("comments", DELIVERY_PUSH, ev, c);
    ck_assert(id_is_uuid(a));
    ck_assert_str_eq(a, b);
    ck_assert_str_ne(a, c);
}
END_TEST

START_TEST(test_rule_matching)
{
    rules *r = rules_new();
    char err[256];
    const char *digests =
        "[{\"name\":\"any\",\"event_type\":\"comment.created\",\"category\":null,"
        "\"channels\":[\"email\"],\"window_kind\":\"fixed\",\"window_ms\":1000,"
        "\"template\":\"comment.digest\",\"events_shown\":10,\"send_first\":false},"
        "{\"name\":\"social\",\"event_type\":\"comment.created\",\"category\":\"social\","
        "\"channels\":[\"email\",\"push\"],\"window_kind\":\"sliding\",\"window_ms\":1000,"
        "\"max_window_ms\":5000,\"template\":\"social.digest\",\"events_shown\":3},"
        "{\"name\":\"daily\",\"event_type\":\"news\",\"channels\":[\"email\"],"
        "\"window_kind\":\"scheduled\",\"schedule_at\":\"09:30:00\",\"template\":\"news.d\"},"
        "{\"name\":\"broken\",\"event_type\":\"x\",\"channels\":[\"email\"],"
        "\"window_kind\":\"sliding\",\"window_ms\":1000,\"template\":\"x.d\"}]";
    const char *throttles =
        "[{\"name\":\"all\",\"category\":null,\"channel\":null,\"max_count\":10,"
        "\"window_ms\":1000,\"action\":\"drop\"},"
        "{\"name\":\"mail\",\"category\":null,\"channel\":\"email\",\"max_count\":5,"
        "\"window_ms\":1000,\"action\":\"defer\"},"
        "{\"name\":\"mkt\",\"category\":\"marketing\",\"channel\":null,\"max_count\":3,"
        "\"window_ms\":1000,\"action\":\"drop\"},"
        "{\"name\":\"mktmail\",\"category\":\"marketing\",\"channel\":\"email\",\"max_count\":1,"
        "\"window_ms\":1000,\"action\":\"defer\"},"
        "{\"name\":\"bad\",\"max_count\":0,\"window_ms\":1000,\"action\":\"drop\"}]";
    const char *followups =
        "[{\"name\":\"mail\",\"event_type\":\"comment.created\",\"category\":null,"
        "\"after_channel\":\"inapp\",\"delay_ms\":60000,\"channel\":\"email\","
        "\"template\":\"comment.reminder\"},"
        "{\"name\":\"mail-social\",\"event_type\":\"comment.created\",\"category\":\"social\","
        "\"after_channel\":\"inapp\",\"delay_ms\":1000,\"channel\":\"email\"},"
        "{\"name\":\"sms\",\"event_type\":\"comment.created\",\"after_channel\":\"inapp\","
        "\"delay_ms\":5000,\"channel\":\"sms\"},"
        "{\"name\":\"nope\",\"event_type\":\"x\",\"after_channel\":\"email\","
        "\"delay_ms\":5000,\"channel\":\"sms\"}]";
    ck_assert_msg(rules_set(r, digests, throttles, followups, err, sizeof err) == 0, "%s", err);
    ck_assert(rules_have_digests(r) && rules_have_throttles(r));
    ck_assert_str_eq(rules_digest_for(r, "comment.created", NULL)->name, "any");
    ck_assert_str_eq(rules_digest_for(r, "comment.created", "billing")->name, "any");
    const digest_rule *s = rules_digest_for(r, "comment.created", "social");
    ck_assert_str_eq(s->name, "social");
    ck_assert(s->channel[DELIVERY_EMAIL] && s->channel[DELIVERY_PUSH] && !s->channel[DELIVERY_SMS]);
    ck_assert_int_eq(s->kind, DIGEST_SLIDING);
    ck_assert_int_eq(s->events_shown, 3);
    ck_assert_int_eq(rules_digest_for(r, "news", NULL)->schedule_s, 9 * 3600 + 1800);
    ck_assert_ptr_null(rules_digest_for(r, "x", NULL)); /* sliding without a maximum */
    ck_assert_ptr_null(rules_digest_for(r, "order.shipped", NULL));
    ck_assert_ptr_nonnull(rules_digest_named(r, "daily"));

    ck_assert_str_eq(rules_throttle_for(r, "marketing", DELIVERY_EMAIL)->name, "mktmail");
    ck_assert_str_eq(rules_throttle_for(r, "marketing", DELIVERY_SMS)->name, "mkt");
    ck_assert_str_eq(rules_throttle_for(r, "billing", DELIVERY_EMAIL)->name, "mail");
    ck_assert_str_eq(rules_throttle_for(r, NULL, DELIVERY_PUSH)->name, "all");
    ck_assert(rules_throttle_for(r, "marketing", DELIVERY_EMAIL)->defer);

    const followup_rule *f[DELIVERY_CHANNEL_COUNT];
    ck_assert_uint_eq(rules_followups_for(r, "comment.created", NULL, f), 2);
    ck_assert_str_eq(f[0]->name, "mail");
    ck_assert_str_eq(f[0]->template_type, "comment.reminder");
    ck_assert_str_eq(f[1]->name, "sms");
    ck_assert_uint_eq(rules_followups_for(r, "comment.created", "social", f), 2);
    ck_assert_str_eq(f[0]->name, "mail-social");
    ck_assert_ptr_null(f[0]->template_type);
    ck_assert_int_eq(f[0]->delay_ms, 1000);
    ck_assert_uint_eq(rules_followups_for(r, "x", NULL, f), 0); /* watches email: left out */
    ck_assert(rules_have_followups(r));

    /* Not arrays: refused, the rules kept. */
    ck_assert_int_eq(rules_set(r, "{}", "[]", "[]", err, sizeof err), -1);
    ck_assert_ptr_nonnull(rules_digest_named(r, "daily"));
    ck_assert_int_eq(rules_set(r, "[]", "[]", "[]", err, sizeof err), 0);
    ck_assert(!rules_have_digests(r) && !rules_have_throttles(r));
    rules_free(r);
}
END_TEST

START_TEST(test_a_large_digest_is_shortened_to_fit)
{
    json_t *events = json_array(), *last = json_array(), *actors = json_array();
    char text[2001];
    memset(text, 'x', 2000);
    text[2000] = '\0';
    for (int i = 0; i < 50; i++) {
        json_array_append_new(events, json_pack("{s:i, s:{s:s}}", "n", i, "data", "t", text));
        json_array_append_new(last, json_pack("{s:i, s:{s:s}}", "n", 99 - i, "data", "t", text));
    }
    for (int i = 0; i < 100; i++)
        json_array_append_new(actors, json_sprintf("actor-%d", i));
    json_t *d = json_pack("{s:i, s:o, s:o, s:o, s:i}", "count", 100, "events", events,
                          "last_events", last, "actors", actors, "actor_count", 100);
    ck_assert_int_eq(digest_fit(d, 65536), 0);
    ck_assert_uint_le(json_dumpb(d, NULL, 0, JSON_COMPACT), 65536);
    /* The oldest events and the newest last events are kept; the figures stay. */
    size_t ne = json_array_size(json_object_get(d, "events"));
    ck_assert_uint_gt(ne, 5);
    ck_assert_uint_lt(ne, 50);
    ck_assert_int_eq(
        json_integer_value(json_object_get(json_array_get(json_object_get(d, "events"), 0), "n")),
        0);
    ck_assert_int_eq(json_integer_value(json_object_get(
                         json_array_get(json_object_get(d, "last_events"), 0), "n")),
                     99);
    ck_assert_int_eq(json_integer_value(json_object_get(d, "count")), 100);
    /* A small one is left alone; one that cannot fit says so. */
    size_t before = json_dumpb(d, NULL, 0, JSON_COMPACT);
    ck_assert_int_eq(digest_fit(d, 1 << 20), 0);
    ck_assert_uint_eq(json_dumpb(d, NULL, 0, JSON_COMPACT), before);
    ck_assert_int_eq(digest_fit(d, 10), -1);
    json_decref(d);
}
END_TEST

static const test_case_entry cases[] = {
    TEST_ENTRY(test_next_local_time_follows_the_clock_across_dst),
    TEST_ENTRY(test_plans_of_each_kind),
    TEST_ENTRY(test_group_keys),
    TEST_ENTRY(test_window_ids_are_stable_and_per_channel),
    TEST_ENTRY(test_rule_matching),
    TEST_ENTRY(test_a_large_digest_is_shortened_to_fit),
};

TEST_MAIN("digest", cases)
