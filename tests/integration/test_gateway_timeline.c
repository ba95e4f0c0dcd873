/*
 * The operators' event APIs (docs/interface.md) against a real broker and
 * PostgreSQL: GET /v1/events finds an event by its id, its user and either
 * idempotency key, a page at a time; GET /v1/events/{id}/timeline tells its
 * story in time order, with the real worker's failed attempts (a provider
 * that fails twice, then accepts) and a channel the dispatcher skipped,
 * and heraldctl event --timeline prints the same story.
 * The events row is written as the dispatcher writes it (no dispatcher
 * runs here), the deliveries' rows and history by herald-worker.
 */
#include "gateway_harness.h"
#include "worker_harness.h"

static const char *str(json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

static void call(h_gateway *g, const char *path, const char *key, long status, h_resp *r)
{
    h_http(g, "GET", path, key, NULL, NULL, NULL, r);
    ck_assert_msg(r->status == status, "GET %s: %ld %s", path, r->status, r->body);
}

/* The only event of a search answer, checked against id. */
static json_t *only_event(h_resp *r, const char *id)
{
    json_t *list = json_object_get(r->json, "events");
    ck_assert_msg(json_array_size(list) == 1, "%s", r->body);
    json_t *ev = json_array_get(list, 0);
    ck_assert_str_eq(str(ev, "event_id"), id);
    return ev;
}

/* The events row the dispatcher would write for a published event. */
static void dispatched(const char *id, const char *user)
{
    char sql[512];
    snprintf(sql, sizeof sql,
             "INSERT INTO events (event_id, type, user_id, priority, category, created_at, "
             "dispatched_at) VALUES ('%s', 'order.shipped', '%s', 'normal', 'orders', "
             "now() - interval '2 seconds', now() - interval '1 second')",
             id, user);
    h_sql(sql);
}

START_TEST(test_search_finds_the_event_by_each_key_and_pages)
{
    h_gateway g;
    h_start(&g, NULL);
    h_resp r;
    char id[ID_UUID_SIZE], path[512], sql[512];
    h_publish(&g, "{\"type\":\"order.shipped\",\"user_id\":\"u-search\",\"data\":{}}",
              "Idempotency-Key: order-77-shipped", id);
    dispatched(id, "u-search");
    snprintf(sql, sizeof sql,
             "INSERT INTO deliveries (idempotency_key, event_id, user_id, channel, address, "
             "status, attempts) VALUES ('key-email-77', '%s', 'u-search', 'email', "
             "'s@example.com', 'sent', 1), ('key-sms-77', '%s', 'u-search', 'sms', '+15550177', "
             "'skipped', 0)",
             id, id);
    h_sql(sql);

    snprintf(path, sizeof path, "/v1/events?event_id=%s", id);
    call(&g, path, h_adminkey, 200, &r);
    json_t *ev = only_event(&r, id);
    ck_assert_str_eq(str(ev, "type"), "order.shipped");
    ck_assert_str_eq(str(ev, "user_id"), "u-search");
    ck_assert_ptr_nonnull(str(ev, "created_at"));
    ck_assert_int_eq(json_integer_value(json_object_get(ev, "deliveries")), 2);
    json_t *sum = json_object_get(ev, "status_summary");
    ck_assert_int_eq(json_integer_value(json_object_get(sum, "sent")), 1);
    ck_assert_int_eq(json_integer_value(json_object_get(sum, "skipped")), 1);
    ck_assert(json_is_null(json_object_get(r.json, "next")));
    h_resp_clear(&r);

    call(&g, "/v1/events?user_id=u-search", h_adminkey, 200, &r);
    only_event(&r, id);
    h_resp_clear(&r);
    /* The publisher's key, whichever API key published it. */
    call(&g, "/v1/events?idempotency_key=order-77-shipped", h_adminkey, 200, &r);
    only_event(&r, id);
    h_resp_clear(&r);
    /* A delivery's key. */
    call(&g, "/v1/events?idempotency_key=key-sms-77", h_adminkey, 200, &r);
    only_event(&r, id);
    h_resp_clear(&r);
    /* A key that a query must percent-encode is found by what it is. */
    char id2[ID_UUID_SIZE];
    h_publish(&g, "{\"type\":\"order.shipped\",\"user_id\":\"u-search-2\",\"data\":{}}",
              "Idempotency-Key: k/1=2<3>%4&x", id2);
    dispatched(id2, "u-search-2");
    call(&g, "/v1/events?idempotency_key=k%2F1%3D2%3C3%3E%254%26x", h_adminkey, 200, &r);
    only_event(&r, id2);
    h_resp_clear(&r);
    call(&g, "/v1/events?idempotency_key=nobody-used-this", h_adminkey, 200, &r);
    ck_assert_int_eq(json_array_size(json_object_get(r.json, "events")), 0);
    h_resp_clear(&r);

    /* Three events of one user: two pages, newest first. */
    const char *ids[3] = {"7d1e5c2a-0000-4000-8000-000000000001",
                          "7d1e5c2a-0000-4000-8000-000000000002",
                          "7d1e5c2a-0000-4000-8000-000000000003"};
    for (int i = 0; i < 3; i++) {
        snprintf(sql, sizeof sql,
                 "INSERT INTO events (event_id, type, user_id, priority, created_at) VALUES "
                 "('%s', 'order.shipped', 'u-pages', 'normal', now() + %d * interval '1 second')",
                 ids[i], i);
        h_sql(sql);
    }
    call(&g, "/v1/events?user_id=u-pages&limit=2", h_adminkey, 200, &r);
    json_t *list = json_object_get(r.json, "events");
    ck_assert_int_eq(json_array_size(list), 2);
    ck_assert_str_eq(str(json_array_get(list, 0), "event_id"), ids[2]);
    ck_assert_str_eq(str(json_array_get(list, 1), "event_id"), ids[1]);
    ck_assert_int_eq(json_integer_value(json_object_get(json_array_get(list, 0), "deliveries")), 0);
    ck_assert_ptr_nonnull(str(r.json, "next"));
    snprintf(path, sizeof path, "/v1/events?user_id=u-pages&limit=2&after=%s", str(r.json, "next"));
    h_resp_clear(&r);
    call(&g, path, h_adminkey, 200, &r);
    only_event(&r, ids[0]);
    ck_assert(json_is_null(json_object_get(r.json, "next")));
    h_resp_clear(&r);

    /* Refusals: no key or two, a bad id, a bad cursor, no or a weaker API key. */
    call(&g, "/v1/events", h_adminkey, 400, &r);
    ck_assert_str_eq(h_error_code(&r), "invalid_field");
    h_resp_clear(&r);
    call(&g, "/v1/events?user_id=a&idempotency_key=b", h_adminkey, 400, &r);
    h_resp_clear(&r);
    call(&g, "/v1/events?event_id=not-a-uuid", h_adminkey, 400, &r);
    ck_assert_str_eq(h_error_field(&r), "event_id");
    h_resp_clear(&r);
    call(&g, "/v1/events?user_id=u-pages&after=bm9wZQ", h_adminkey, 400, &r);
    ck_assert_str_eq(h_error_field(&r), "after");
    h_resp_clear(&r);
    call(&g, "/v1/events?user_id=u-search", NULL, 401, &r);
    h_error_code(&r);
    h_resp_clear(&r);
    call(&g, "/v1/events?user_id=u-search", h_pubkey, 403, &r);
    h_error_code(&r);
    h_resp_clear(&r);
    h_stop(&g);
}
END_TEST

/* The kinds of the timeline's entries, space-separated, into out. */
static void kinds(json_t *entries, char *out, size_t outlen)
{
    size_t i, n = 0;
    json_t *e;
    out[0] = '\0';
    json_array_foreach(entries, i, e)
    {
        int w = snprintf(out + n, outlen - n, "%s%s", i ? " " : "", str(e, "kind"));
        ck_assert(w > 0 && (size_t)w < outlen - n);
        n += (size_t)w;
    }
}

START_TEST(test_timeline_shows_failed_attempts_then_sent_and_a_skipped_channel)
{
    wh_env e;
    wh_proc prov = {0}, w = {0};
    char key[ID_UUID_SIZE], url[128], sql[1024], path[256];
    wh_setup(&e, "sms");
    /* The worker writes to the gateway's database. */
    snprintf(e.db_url, sizeof e.db_url, "%s", h_dburl);
    PQfinish(e.db);
    e.db = PQconnectdb(e.db_url);
    ck_assert_msg(PQstatus(e.db) == CONNECTION_OK, "%s", PQerrorMessage(e.db));

    const char *pargs[] = {"--fail-status", "503", "--fail-count", "2", NULL};
    wh_start_http_provider(&e, &prov, "provider", pargs);
    snprintf(url, sizeof url, "HERALD_SMS_URL=http://127.0.0.1:%d/sms", prov.port);
    const char *env[] = {"HERALD_SMS_PROVIDER=http", url, NULL};
    wh_start_worker(&e, &w, "worker", env);

    char *json = wh_delivery_json(&e, "u-tl", "+14155550123", NULL, "your parcel", key);
    json_t *d = json_loads(json, 0, NULL);
    char id[ID_UUID_SIZE];
    snprintf(id, sizeof id, "%s", str(d, "event_id"));
    json_decref(d);
    /* Dispatched: the sms delivery planned, email skipped in quiet hours. */
    dispatched(id, "u-tl");
    snprintf(sql, sizeof sql,
             "INSERT INTO deliveries (idempotency_key, event_id, user_id, channel, address, "
             "status, skip_reason, created_at) SELECT 'skip-%s', event_id, user_id, 'email', "
             "'tl@example.com', 'skipped', 'quiet_hours_dropped', dispatched_at FROM events "
             "WHERE event_id = '%s'",
             id, id);
    h_sql(sql);
    wh_produce_raw(&e, e.topics[0], "u-tl", json);
    free(json);
    wh_flush(&e);
    long sent = wh_wait_count(&e, 1, 30000,
                              "SELECT count(*) FROM deliveries WHERE idempotency_key = '%s' AND "
                              "status = 'sent'",
                              key);
    if (sent != 1)
        wh_dump_log(&w);
    ck_assert_int_eq(sent, 1);

    h_gateway g;
    h_start(&g, NULL);
    h_resp r;
    snprintf(path, sizeof path, "/v1/events/%s/timeline", id);
    call(&g, path, h_adminkey, 200, &r);
    ck_assert_str_eq(str(r.json, "event_id"), id);
    ck_assert_str_eq(str(r.json, "type"), "order.shipped");
    json_t *entries = json_object_get(r.json, "entries");
    char got[256];
    kinds(entries, got, sizeof got);
    ck_assert_str_eq(got, "published skipped dispatched attempt attempt attempt");
    /* In time order. */
    for (size_t i = 1; i < json_array_size(entries); i++)
        ck_assert_msg(strcmp(str(json_array_get(entries, i - 1), "at"),
                             str(json_array_get(entries, i), "at")) <= 0,
                      "%s", r.body);
    json_t *skip = json_array_get(entries, 1);
    ck_assert_str_eq(str(skip, "channel"), "email");
    ck_assert_str_eq(str(skip, "status"), "skipped");
    ck_assert_str_eq(str(skip, "reason"), "quiet_hours_dropped");
    ck_assert_str_eq(str(json_array_get(entries, 2), "channel"), "sms");
    ck_assert_str_eq(str(json_array_get(entries, 2), "idempotency_key"), key);
    for (int i = 0; i < 3; i++) {
        json_t *a = json_array_get(entries, 3 + (size_t)i);
        ck_assert_str_eq(str(a, "channel"), "sms");
        ck_assert_int_eq(json_integer_value(json_object_get(a, "attempt")), i + 1);
        ck_assert_str_eq(str(a, "status"), i < 2 ? "retrying" : "sent");
        if (i < 2)
            ck_assert_msg(str(a, "reason") != NULL && strstr(str(a, "reason"), "503") != NULL, "%s",
                          r.body);
        else
            ck_assert_ptr_null(json_object_get(a, "reason"));
    }
    h_resp_clear(&r);

    /* The event's status shows the same attempts in its history. */
    snprintf(path, sizeof path, "/v1/events/%s", id);
    call(&g, path, h_pubkey, 200, &r);
    json_t *ds = json_object_get(r.json, "deliveries");
    for (size_t i = 0; i < json_array_size(ds); i++) {
        json_t *dl = json_array_get(ds, i);
        if (strcmp(str(dl, "channel"), "sms") != 0)
            continue;
        json_t *h = json_object_get(dl, "history");
        ck_assert_int_eq(json_array_size(h), 3);
        ck_assert_str_eq(str(json_array_get(h, 0), "status"), "retrying");
        ck_assert_int_eq(json_integer_value(json_object_get(json_array_get(h, 1), "attempt")), 2);
        ck_assert_str_eq(str(json_array_get(h, 2), "status"), "sent");
    }
    h_resp_clear(&r);

    /* heraldctl tells the same timeline, from the same API. */
    char out[16384], errout[4096];
    int rc = h_heraldctl(&g, h_adminkey, out, sizeof out, errout, sizeof errout, "event", id,
                         "--timeline", NULL);
    ck_assert_msg(rc == 0, "%d %s", rc, errout);
    const char *p1 = strstr(out, "published");
    const char *p2 = p1 ? strstr(p1, "quiet_hours_dropped") : NULL;
    const char *p3 = p2 ? strstr(p2, "retrying     attempt 1  HTTP 503") : NULL;
    const char *p4 = p3 ? strstr(p3, "attempt 2") : NULL;
    const char *p5 = p4 ? strstr(p4, "sent         attempt 3") : NULL;
    ck_assert_msg(p5 != NULL, "%s", out);

    /* Admin only, a UUID, and an id nobody knows. */
    snprintf(path, sizeof path, "/v1/events/%s/timeline", id);
    call(&g, path, NULL, 401, &r);
    h_error_code(&r);
    h_resp_clear(&r);
    call(&g, path, h_pubkey, 403, &r);
    h_resp_clear(&r);
    call(&g, "/v1/events/nope/timeline", h_adminkey, 400, &r);
    ck_assert_str_eq(h_error_field(&r), "event_id");
    h_resp_clear(&r);
    call(&g, "/v1/events/7d1e5c2a-0000-4000-8000-0000000000ff/timeline", h_adminkey, 404, &r);
    ck_assert_str_eq(h_error_code(&r), "not_found");
    h_resp_clear(&r);
    h_stop(&g);
    ck_assert_int_eq(WEXITSTATUS(wh_stop(&w, SIGTERM, 15000)), 0);
    wh_teardown(&e);
}
END_TEST

#define EV3 "7d1e5c2a-0000-4000-8000-000000000010"
#define KE  "7d1e5c2a-0000-4000-8000-0000000000e1"
#define KS  "7d1e5c2a-0000-4000-8000-0000000000e2"
#define KP  "7d1e5c2a-0000-4000-8000-0000000000e3"
#define WIN "7d1e5c2a-0000-4000-8000-0000000000d1"
/* Times of the story, in order; the receipt comes last, now. */
#define T0 "'2026-01-01 00:00:00+00'"
#define T1 "'2026-01-01 00:00:01+00'"
#define T2 "'2026-01-01 00:00:02+00'"
#define T3 "'2026-01-01 00:00:03+00'"
#define T4 "'2026-01-01 00:00:04+00'"
#define T5 "'2026-01-01 00:00:05+00'"
#define T6 "'2026-01-01 00:00:06+00'"
#define T7 "'2026-01-01 00:00:07+00'"
#define T8 "'2026-01-01 00:00:08+00'"
#define T9 "'2026-01-01 00:00:09+00'"

/*
 * The rest of the story, as the dispatcher, the worker, a receipt and an
 * operator write it: a digest that took the event and went out, a
 * follow-up, a delivery dead-lettered after its second attempt.
 */
START_TEST(test_timeline_merges_digests_followups_receipts_and_the_dead_letter)
{
    char out[64];
    h_sql("INSERT INTO events (event_id, type, user_id, priority, created_at, dispatched_at) "
          "VALUES ('" EV3 "', 'comment.added', 'u-mix', 'high', " T0 ", " T1 ");"
          "INSERT INTO deliveries (idempotency_key, event_id, user_id, channel, address, status, "
          "attempts, skip_reason, created_at) VALUES "
          "('" KE "', '" EV3 "', 'u-mix', 'email', 'mix@example.com', 'sent', 1, NULL, " T1 "),"
          "('" KS "', '" EV3 "', 'u-mix', 'sms', '+15550110', 'failed', 2, NULL, " T1 "),"
          "('" KP "', '" EV3 "', 'u-mix', 'push', 'tok', 'digested', 0, 'comments', " T1 ");"
          "INSERT INTO delivery_history (idempotency_key, event_id, user_id, channel, address, "
          "status, reason, provider, source, attempt, at) VALUES "
          "('" KE "', '" EV3 "', 'u-mix', 'email', 'mix@example.com', 'sent', NULL, 'smtp', "
          "'worker', 1, " T2 "),"
          "('" KS "', '" EV3 "', 'u-mix', 'sms', '+15550110', 'retrying', 'HTTP 503', 'http', "
          "'worker', 1, " T3 "),"
          "('" KS "', '" EV3 "', 'u-mix', 'sms', '+15550110', 'failed', 'HTTP 400', 'http', "
          "'worker', 2, " T4 "),"
          "('" KS "', '" EV3 "', 'u-mix', 'sms', '+15550110', 'undelivered', 'by hand', NULL, "
          "'operator', NULL, " T9 ");"
          "INSERT INTO digest_windows (window_id, rule_name, channel, user_id, kafka_partition, "
          "status, members, opened_at, last_event_at, closes_at, deadline, closed_at, sent_at) "
          "VALUES ('" WIN "', 'comments', 'push', 'u-mix', 0, 'sent', 3, " T5 ", " T5 ", " T6
          ", " T6 ", " T6 ", " T6 ");"
          "INSERT INTO digest_events (event_id, channel, window_id, role, item, added_at) VALUES "
          "('" EV3 "', 'push', '" WIN "', 'first', '{}', " T5 ");"
          "INSERT INTO followups (event_id, rule_name, channel, user_id, kafka_partition, due_at, "
          "status, reason, event, created_at, decided_at) VALUES ('" EV3 "', 'nudge', 'email', "
          "'u-mix', 0, " T8 ", 'skipped', 'read', '{}', " T7 ", " T8 ")");
    /* The provider confirms the email: a receipt, now. */
    h_sql_value("SELECT herald_receipt_apply('ses', 'mix-1', NULL, '" KE "', 'delivered', NULL, "
                "'250 ok', NULL, now(), 3)",
                out, sizeof out);
    ck_assert_str_eq(out, "applied");

    h_gateway g;
    h_start(&g, NULL);
    h_resp r;
    call(&g, "/v1/events/" EV3 "/timeline", h_adminkey, 200, &r);
    json_t *entries = json_object_get(r.json, "entries");
    char got[512];
    kinds(entries, got, sizeof got);
    ck_assert_str_eq(got, "published dispatched skipped dispatched attempt attempt attempt dlq "
                          "digest digest followup followup status receipt");
    json_t *e = json_array_get(entries, 2);
    ck_assert_str_eq(str(e, "channel"), "push");
    ck_assert_str_eq(str(e, "status"), "digested");
    ck_assert_str_eq(str(e, "reason"), "comments");
    e = json_array_get(entries, 6);
    ck_assert_str_eq(str(e, "status"), "failed");
    ck_assert_str_eq(str(e, "reason"), "HTTP 400");
    e = json_array_get(entries, 7);
    ck_assert_str_eq(str(e, "channel"), "sms");
    ck_assert_str_eq(str(e, "reason"), "HTTP 400");
    e = json_array_get(entries, 8);
    ck_assert_str_eq(str(e, "digest_id"), WIN);
    ck_assert_str_eq(str(e, "status"), "sent");
    ck_assert_str_eq(str(json_array_get(entries, 9), "detail"), "rule comments, 3 events");
    e = json_array_get(entries, 11);
    ck_assert_str_eq(str(e, "status"), "skipped");
    ck_assert_str_eq(str(e, "reason"), "read");
    ck_assert_str_eq(str(json_array_get(entries, 12), "status"), "undelivered");
    e = json_array_get(entries, 13);
    ck_assert_str_eq(str(e, "channel"), "email");
    ck_assert_str_eq(str(e, "status"), "delivered");
    ck_assert_str_eq(str(e, "provider"), "ses");
    h_resp_clear(&r);
    h_stop(&g);
}
END_TEST

static const test_case_entry cases[] = {
    TEST_ENTRY(test_search_finds_the_event_by_each_key_and_pages),
    TEST_ENTRY(test_timeline_shows_failed_attempts_then_sent_and_a_skipped_channel),
    TEST_ENTRY(test_timeline_merges_digests_followups_receipts_and_the_dead_letter),
};

TEST_MAIN("gateway_timeline", cases)
