/*
 * The dispatcher's pure parts: the preferences and template caches
 * (without a database), fan-out of one event into items and rows, the
 * status rows' JSON, and per-user broadcast event ids.
 */
#include <stdlib.h>
#include <string.h>

#include "broadcast.h"
#include "fanout.h"
#include "prefs_cache.h"
#include "sms.h"
#include "status.h"
#include "testutil.h"
#include "tplcache.h"

static prefs_cache *new_cache(size_t n, int64_t ttl, int64_t neg)
{
    prefs_cache_options o = {.max_entries = n, .ttl_ms = ttl, .negative_ttl_ms = neg, .seed = 7};
    prefs_cache *c = prefs_cache_new(&o);
    ck_assert_ptr_nonnull(c);
    return c;
}

static prefs_row ann_row(void)
{
    prefs_row r = {
        .user_id = "ann",
        .email = "ann@example.com",
        .phone = "+15550000001",
        .name = "Ann",
        .timezone = "UTC",
        .channels_json = "{\"sms\": false}",
        .categories_json = "{\"marketing\": {\"email\": false}}",
        .quiet_start = NULL,
        .quiet_end = NULL,
        .push_tokens_json = "[\"t1\",\"t2\"]",
    };
    return r;
}

START_TEST(test_cache_returns_what_was_put_until_the_ttl_with_jitter)
{
    prefs_cache *c = new_cache(10, 1000, 100);
    char err[128];
    prefs_row r = ann_row();
    ck_assert_int_eq(prefs_cache_put(c, "ann", &r, 0, err, sizeof err), 0);
    prefs_user *u = prefs_cache_get(c, "ann", 899);
    ck_assert_ptr_nonnull(u);
    ck_assert(u->known);
    ck_assert_str_eq(u->email, "ann@example.com");
    ck_assert_uint_eq(u->npush_tokens, 2);
    ck_assert_str_eq(u->push_tokens[1], "t2");
    ck_assert(json_is_false(json_object_get(u->channels, "sms")));
    json_t *uj = prefs_user_json(u);
    ck_assert_str_eq(json_string_value(json_object_get(uj, "name")), "Ann");
    ck_assert_ptr_null(json_object_get(uj, "locale"));
    json_decref(uj);
    prefs_user_unref(u);
    /* TTL 1000 ms +-10%: alive before 900, gone from 1100 on. */
    ck_assert_ptr_null(prefs_cache_get(c, "ann", 1100));
    prefs_cache_free(c);
}
END_TEST

START_TEST(test_unknown_users_are_cached_negatively_for_the_short_ttl)
{
    prefs_cache *c = new_cache(10, 60000, 100);
    char err[128];
    ck_assert_int_eq(prefs_cache_put(c, "ghost", NULL, 0, err, sizeof err), 0);
    prefs_user *u = prefs_cache_get(c, "ghost", 99);
    ck_assert_ptr_nonnull(u);
    ck_assert(!u->known);
    prefs_user_unref(u);
    ck_assert_ptr_null(prefs_cache_get(c, "ghost", 100));
    prefs_cache_free(c);
}
END_TEST

START_TEST(test_invalidation_and_clear_drop_entries_but_held_ones_stay_valid)
{
    prefs_cache *c = new_cache(2, 60000, 1000);
    char err[128];
    prefs_row r = ann_row();
    ck_assert_int_eq(prefs_cache_put(c, "ann", &r, 0, err, sizeof err), 0);
    prefs_user *held = prefs_cache_get(c, "ann", 1);
    prefs_cache_invalidate(c, "ann");
    ck_assert_ptr_null(prefs_cache_get(c, "ann", 2));
    /* The batch holding it can still read it. */
    ck_assert_str_eq(held->email, "ann@example.com");
    prefs_user_unref(held);
    ck_assert_int_eq(prefs_cache_put(c, "a", NULL, 0, err, sizeof err), 0);
    ck_assert_int_eq(prefs_cache_put(c, "b", NULL, 0, err, sizeof err), 0);
    ck_assert_int_eq(prefs_cache_put(c, "c", NULL, 0, err, sizeof err), 0); /* evicts a */
    ck_assert_ptr_null(prefs_cache_get(c, "a", 3));
    prefs_cache_clear(c);
    ck_assert_ptr_null(prefs_cache_get(c, "c", 3));
    prefs_cache_stats st;
    prefs_cache_stats_get(c, &st);
    ck_assert_uint_eq(st.entries, 0);
    ck_assert_uint_ge(st.invalidations, 1);
    prefs_cache_free(c);
}
END_TEST

START_TEST(test_bad_preference_documents_are_ignored_not_fatal)
{
    prefs_cache *c = new_cache(10, 60000, 1000);
    char err[128];
    prefs_row r = ann_row();
    r.channels_json = "[1,2]";
    r.timezone = "Not/AZone";
    r.quiet_start = "22:00";
    r.quiet_end = "junk";
    ck_assert_int_eq(prefs_cache_put(c, "ann", &r, 0, err, sizeof err), 0);
    prefs_user *u = prefs_cache_get(c, "ann", 1);
    ck_assert_ptr_null(u->channels);
    ck_assert_ptr_null(u->zone);
    ck_assert(!quiet_is_set(&u->quiet));
    prefs_user_unref(u);
    prefs_cache_free(c);
}
END_TEST

START_TEST(test_pg_array_literal_quotes_and_escapes)
{
    const char *items[] = {"a", "b\"c", "d\\e", "x,y"};
    char *s = prefs_pg_array(items, 4);
    ck_assert_str_eq(s, "{\"a\",\"b\\\"c\",\"d\\\\e\",\"x,y\"}");
    free(s);
}
END_TEST

START_TEST(test_template_cache_html_rule_and_invalidation)
{
    ck_assert(tplcache_looks_html("  <p>hi</p>"));
    ck_assert(tplcache_looks_html("Hello <b>x</b>"));
    ck_assert(!tplcache_looks_html("Tom & Jerry > 3"));
    tplcache *c = tplcache_new(10, 60000);
    char err[128];
    tplcache_row rows[] = {{"email", "Hi", "<p>{{user.name}}</p>", "billing"},
                           {"sms", NULL, "{{user.name}}", NULL},
                           {"push", NULL, "{{nope.x}}", NULL}}; /* does not compile */
    ck_assert_int_eq(tplcache_put(c, "a.b", rows, 3, 0, err, sizeof err), 0);
    tplcache_type *t = tplcache_get(c, "a.b", 1);
    ck_assert_ptr_nonnull(t);
    ck_assert(t->ch[DELIVERY_EMAIL].exists && t->ch[DELIVERY_EMAIL].html);
    ck_assert_str_eq(t->ch[DELIVERY_EMAIL].category, "billing");
    ck_assert(t->ch[DELIVERY_SMS].exists && !t->ch[DELIVERY_SMS].html);
    ck_assert(!t->ch[DELIVERY_PUSH].exists);
    tplcache_type_unref(t);
    tplcache_invalidate(c, "a.b/sms");
    ck_assert_ptr_null(tplcache_get(c, "a.b", 2));
    tplcache_free(c);
}
END_TEST

/* A fixture: templates on every channel, the event, the user. */
typedef struct fx {
    prefs_cache *users;
    tplcache *tpls;
    prefs_user *user;
    tplcache_type *tpl;
    event ev;
    fanout_list out;
} fx;

static void fx_init(fx *f, const prefs_row *row, const char *priority, const char *category)
{
    char err[256];
    memset(f, 0, sizeof *f);
    f->users = new_cache(10, 60000, 1000);
    f->tpls = tplcache_new(10, 60000);
    tplcache_row rows[] = {{"email", "Hi {{user.name}}", "Order {{data.id}}", NULL},
                           {"sms", NULL, "{{data.long}}", NULL},
                           {"push", "T", "P {{data.id}}", NULL}};
    ck_assert_int_eq(tplcache_put(f->tpls, "a.b", rows, 3, 0, err, sizeof err), 0);
    f->tpl = tplcache_get(f->tpls, "a.b", 1);
    if (row != NULL) {
        ck_assert_int_eq(prefs_cache_put(f->users, row->user_id, row, 0, err, sizeof err), 0);
        f->user = prefs_cache_get(f->users, row->user_id, 1);
    }
    char json[1024];
    snprintf(json, sizeof json,
             "{\"event_id\":\"0b7f7d6e-2b0c-4f3e-9a51-3c1d2e4f5a6b\",\"type\":\"a.b\","
             "\"user_id\":\"ann\",\"data\":{\"id\":\"X1\",\"long\":\"%0300d\"},"
             "\"priority\":\"%s\"%s%s%s,\"created_at\":\"2026-11-27T10:00:00Z\"}",
             0, priority, category ? ",\"category\":\"" : "", category ? category : "",
             category ? "\"" : "");
    ck_assert_int_eq(event_parse(json, strlen(json), &f->ev, err, sizeof err), EVENT_OK);
}

static void fx_free(fx *f)
{
    prefs_user_unref(f->user);
    tplcache_type_unref(f->tpl);
    event_free(&f->ev);
    fanout_list_free(&f->out);
    prefs_cache_free(f->users);
    tplcache_free(f->tpls);
}

static const fanout_item *item(const fx *f, delivery_channel ch, size_t nth)
{
    for (size_t i = 0; i < f->out.n; i++)
        if (f->out.items[i].channel == ch && nth-- == 0)
            return &f->out.items[i];
    return NULL;
}

START_TEST(test_fanout_one_delivery_per_address_and_skip_rows_with_reasons)
{
    fx f;
    prefs_row r = ann_row(); /* sms off, marketing email off */
    fx_init(&f, &r, "normal", "marketing");
    fanout_options o = {.sms_max_segments = 1};
    char err[256];
    ck_assert_int_eq(fanout_event(&f.ev, f.user, f.tpl, &o, 0, &f.out, err, sizeof err), 0);
    ck_assert_uint_eq(f.out.n, 4);
    ck_assert_str_eq(item(&f, DELIVERY_EMAIL, 0)->skip_reason, "category_opted_out");
    ck_assert_str_eq(item(&f, DELIVERY_SMS, 0)->skip_reason, "channel_disabled");
    const fanout_item *p1 = item(&f, DELIVERY_PUSH, 0), *p2 = item(&f, DELIVERY_PUSH, 1);
    ck_assert_int_eq(p1->action, DECIDE_SEND);
    ck_assert_str_eq(p1->address, "t1");
    ck_assert_str_eq(p2->address, "t2");
    ck_assert_str_ne(p1->idempotency_key, p2->idempotency_key);
    delivery d = {0};
    ck_assert_int_eq(delivery_parse(p1->value, p1->vlen, &d, err, sizeof err), DELIVERY_OK);
    ck_assert_str_eq(d.body, "P X1");
    ck_assert_str_eq(d.title, "T");
    ck_assert_str_eq(d.idempotency_key, p1->idempotency_key);
    delivery_free(&d);
    fx_free(&f);
}
END_TEST

START_TEST(test_fanout_truncates_sms_and_records_unknown_users)
{
    fx f;
    prefs_row r = ann_row();
    r.channels_json = NULL;
    r.categories_json = NULL;
    fx_init(&f, &r, "normal", NULL);
    fanout_options o = {.sms_max_segments = 1};
    char err[256];
    ck_assert_int_eq(fanout_event(&f.ev, f.user, f.tpl, &o, 0, &f.out, err, sizeof err), 0);
    const fanout_item *s = item(&f, DELIVERY_SMS, 0);
    ck_assert_int_eq(s->action, DECIDE_SEND);
    delivery d = {0};
    ck_assert_int_eq(delivery_parse(s->value, s->vlen, &d, err, sizeof err), DELIVERY_OK);
    ck_assert_int_eq(sms_segments(d.body, NULL), 1);
    delivery_free(&d);
    fx_free(&f);

    fx_init(&f, NULL, "normal", NULL);
    ck_assert_int_eq(fanout_event(&f.ev, NULL, f.tpl, &o, 0, &f.out, err, sizeof err), 0);
    ck_assert_uint_eq(f.out.n, 3);
    for (size_t i = 0; i < 3; i++) {
        ck_assert_int_eq(f.out.items[i].action, DECIDE_SKIP);
        ck_assert_str_eq(f.out.items[i].skip_reason, "unknown_user");
    }
    /* Without templates nothing at all is recorded. */
    fanout_list_reset(&f.out);
    ck_assert_int_eq(fanout_event(&f.ev, NULL, NULL, &o, 0, &f.out, err, sizeof err), 0);
    ck_assert_uint_eq(f.out.n, 0);
    fx_free(&f);
}
END_TEST

START_TEST(test_status_rows_are_one_array_literal_per_column)
{
    fx f;
    prefs_row r = ann_row();
    fx_init(&f, &r, "high", "marketing");
    fanout_options o = {.sms_max_segments = 2};
    char err[256];
    ck_assert_int_eq(fanout_event(&f.ev, f.user, f.tpl, &o, 0, &f.out, err, sizeof err), 0);
    status_batch *b = status_batch_new(1 << 20);
    ck_assert_int_eq(status_add_event(b, &f.ev, f.out.items, f.out.n), 0);
    ck_assert_uint_eq(status_event_count(b), 1);
    ck_assert_str_eq(status_events_column(b, 4), "{\"high\"}"); /* priority */
    ck_assert_str_eq(status_events_column(b, 3), "{NULL}");     /* no topic */
    ck_assert_ptr_null(status_events_column(b, STATUS_EVENT_COLUMNS));
    ck_assert_ptr_null(status_deliveries_column(b, STATUS_DELIVERY_COLUMNS));
    /* The planned deliveries go into the event's row, a two-dimensional array
     * quoted as one element; the skipped ones get deliveries rows. */
    size_t planned = 0;
    char want[1024] = "{\"{";
    for (size_t i = 0; i < f.out.n; i++) {
        const fanout_item *it = &f.out.items[i];
        if (it->action != DECIDE_SEND)
            continue;
        size_t len = strlen(want);
        snprintf(want + len, sizeof want - len, "%s{\\\"%s\\\",\\\"%s\\\",\\\"%s\\\"}",
                 planned ? "," : "", delivery_channel_name(it->channel), it->idempotency_key,
                 it->address);
        planned++;
    }
    strcat(want, "}\"}");
    ck_assert_uint_eq(planned, 2); /* the two push tokens */
    ck_assert_str_eq(status_events_column(b, 8), want);
    ck_assert_uint_eq(status_delivery_count(b), f.out.n - planned);
    ck_assert(strncmp(status_deliveries_column(b, 3), "{\"email\",", 9) == 0);
    ck_assert(strncmp(status_deliveries_column(b, 4), "{NULL,", 6) == 0); /* no address */
    ck_assert(strncmp(status_deliveries_column(b, 5), "{\"skipped\",", 11) == 0);
    /* Adding after reading the arrays keeps them valid; nothing planned is NULL. */
    ck_assert_int_eq(status_add_event(b, &f.ev, NULL, 0), 0);
    ck_assert_str_eq(status_events_column(b, 4), "{\"high\",\"high\"}");
    ck_assert(strcmp(status_events_column(b, 8) + strlen(want) - 1, ",NULL}") == 0);
    status_batch_reset(b);
    ck_assert_str_eq(status_events_column(b, 0), "{}");
    ck_assert_str_eq(status_deliveries_column(b, 0), "{}");
    /* Redelivered on purpose: the events row is the first generation's, so the
     * planned deliveries of this one are pending rows. */
    f.ev.generation = 1;
    ck_assert_int_eq(status_add_event(b, &f.ev, f.out.items, f.out.n), 0);
    ck_assert_str_eq(status_events_column(b, 8), "{NULL}");
    ck_assert_uint_eq(status_delivery_count(b), f.out.n);
    ck_assert_ptr_nonnull(strstr(status_deliveries_column(b, 5), "\"pending\""));
    f.ev.generation = 0;
    status_batch_reset(b);
    status_batch_free(b);
    fx_free(&f);
}
END_TEST

START_TEST(test_status_values_are_quoted_and_escaped_for_array_literals)
{
    event ev;
    memset(&ev, 0, sizeof ev);
    snprintf(ev.event_id, sizeof ev.event_id, "%s", "0b7f7d6e-2b0c-4f3e-9a51-3c1d2e4f5a6b");
    ev.type = (char *)"a\"b\\c,{d} NULL";
    ev.user_id = (char *)"NULL";
    ev.priority = EVENT_PRIORITY_NORMAL;
    status_batch *b = status_batch_new(1 << 20);
    ck_assert_int_eq(status_add_event(b, &ev, NULL, 0), 0);
    ck_assert_str_eq(status_events_column(b, 1), "{\"a\\\"b\\\\c,{d} NULL\"}");
    ck_assert_str_eq(status_events_column(b, 2), "{\"NULL\"}"); /* the string, not SQL NULL */
    status_batch_free(b);
    /* A batch past its byte cap fails to add and keeps what it had. */
    b = status_batch_new(16384);
    size_t added = 0;
    while (status_add_event(b, &ev, NULL, 0) == 0)
        added++;
    ck_assert_uint_gt(added, 0);
    ck_assert_uint_eq(status_event_count(b), added);
    const char *col = status_events_column(b, 1);
    ck_assert_ptr_nonnull(col);
    ck_assert(col[strlen(col) - 1] == '}');
    status_batch_free(b);
}
END_TEST

START_TEST(test_broadcast_user_event_ids_are_deterministic_and_distinct)
{
    char a[ID_UUID_SIZE], b[ID_UUID_SIZE], c[ID_UUID_SIZE];
    const char *bid = "0b7f7d6e-2b0c-4f3e-9a51-3c1d2e4f5a6b";
    ck_assert_int_eq(broadcast_user_event_id(bid, "u1", a), 0);
    ck_assert_int_eq(broadcast_user_event_id(bid, "u1", b), 0);
    ck_assert_int_eq(broadcast_user_event_id(bid, "u2", c), 0);
    ck_assert_str_eq(a, b);
    ck_assert_str_ne(a, c);
    ck_assert(id_is_uuid(a));
}
END_TEST

static const test_case_entry cases[] = {
    TEST_ENTRY(test_cache_returns_what_was_put_until_the_ttl_with_jitter),
    TEST_ENTRY(test_unknown_users_are_cached_negatively_for_the_short_ttl),
    TEST_ENTRY(test_invalidation_and_clear_drop_entries_but_held_ones_stay_valid),
    TEST_ENTRY(test_bad_preference_documents_are_ignored_not_fatal),
    TEST_ENTRY(test_pg_array_literal_quotes_and_escapes),
    TEST_ENTRY(test_template_cache_html_rule_and_invalidation),
    TEST_ENTRY(test_fanout_one_delivery_per_address_and_skip_rows_with_reasons),
    TEST_ENTRY(test_fanout_truncates_sms_and_records_unknown_users),
    TEST_ENTRY(test_status_rows_are_one_array_literal_per_column),
    TEST_ENTRY(test_status_values_are_quoted_and_escaped_for_array_literals),
    TEST_ENTRY(test_broadcast_user_event_ids_are_deterministic_and_distinct),
};

TEST_MAIN("prefs_cache", cases)
