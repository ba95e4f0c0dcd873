/*
 * herald-worker when providers fail: transient failures retried through the
 * retry topic with growing delays, Retry-After honoured, permanent failures
 * and exhausted attempts dead-lettered with every contract header, poison
 * records dead-lettered without stopping the worker, duplicates sent once.
 */
#include "worker_harness.h"

typedef struct fixture {
    wh_env e;
    wh_proc prov, w;
} fixture;

static void start_sms(fixture *f, const char *const *pargs, const char *const *wenv)
{
    char url[128];
    wh_setup(&f->e, "sms");
    memset(&f->prov, 0, sizeof f->prov);
    memset(&f->w, 0, sizeof f->w);
    wh_start_http_provider(&f->e, &f->prov, "provider", pargs);
    snprintf(url, sizeof url, "HERALD_SMS_URL=http://127.0.0.1:%d/sms", f->prov.port);
    const char *env[24] = {"HERALD_SMS_PROVIDER=http", url};
    int n = 2;
    for (int i = 0; wenv && wenv[i] && n < 23; i++)
        env[n++] = wenv[i];
    env[n] = NULL;
    wh_start_worker(&f->e, &f->w, "worker", env);
}

/* Received-at times of the provider's records (failed ones too, with --record-all). */
static int arrival_times(const wh_proc *p, long *out, int max)
{
    json_t *recs = wh_records(p);
    int n = 0;
    size_t i;
    json_t *r;
    json_array_foreach(recs, i, r)
    {
        if (n < max)
            out[n++] = (long)json_integer_value(json_object_get(r, "received_at_ms"));
    }
    json_decref(recs);
    return n;
}

START_TEST(test_transient_failures_retried_with_growing_delays_then_sent)
{
    fixture f;
    char k[ID_UUID_SIZE];
    const char *pargs[] = {"--record-all", "--fail-status", "503", "--fail-count", "3", NULL};
    start_sms(&f, pargs, NULL); /* HERALD_RETRY_BASE_MS=200 from the harness */
    wh_produce_delivery(&f.e, "u-1", "+14155550100", NULL, "retry me", k);
    wh_flush(&f.e);
    long sent =
        wh_wait_count(&f.e, 1, 30000, "SELECT count(*) FROM deliveries WHERE status='sent'");
    if (sent != 1)
        wh_dump_log(&f.w);
    ck_assert_int_eq(sent, 1);
    ck_assert_int_eq(wh_db_long(&f.e, "SELECT attempts FROM deliveries"), 4);
    long t[8];
    ck_assert_int_eq(arrival_times(&f.prov, t, 8), 4);
    /* retry n waits in [base*2^(n-1)/2, base*2^(n-1)]: 100..200, 200..400, 400..800 ms */
    long g1 = t[1] - t[0], g2 = t[2] - t[1], g3 = t[3] - t[2];
    ck_assert_msg(g1 >= 100 && g2 >= 200 && g3 >= 400, "gaps %ld %ld %ld", g1, g2, g3);
    ck_assert_msg(g1 < 3000 && g2 < 3000 && g3 < 3000, "gaps %ld %ld %ld", g1, g2, g3);
    /* the retries went through the retry topic, with their due time */
    json_t *retries = json_array();
    ck_assert_int_eq(wh_read_topic(&f.e, f.e.topics[1], 3, 10000, wh_collect_record, retries), 3);
    json_t *h = json_object_get(json_array_get(retries, 0), "headers");
    ck_assert_ptr_nonnull(json_object_get(h, "herald.retry.not_before"));
    ck_assert_str_eq(json_string_value(json_object_get(h, "herald.original.topic")), f.e.topics[0]);
    json_decref(retries);
    wh_stop(&f.w, SIGTERM, 15000);
    wh_teardown(&f.e);
}
END_TEST

START_TEST(test_429_retry_after_is_honoured)
{
    fixture f;
    const char *pargs[] = {
        "--record-all", "--fail-status", "429", "--fail-count", "1", "--retry-after", "2", NULL};
    start_sms(&f, pargs, NULL);
    wh_produce_delivery(&f.e, "u-1", "+14155550100", NULL, "later", NULL);
    wh_flush(&f.e);
    ck_assert_int_eq(
        wh_wait_count(&f.e, 1, 30000, "SELECT count(*) FROM deliveries WHERE status='sent'"), 1);
    long t[4];
    ck_assert_int_eq(arrival_times(&f.prov, t, 4), 2);
    ck_assert_msg(t[1] - t[0] >= 1950, "retried after %ld ms", t[1] - t[0]);
    wh_stop(&f.w, SIGTERM, 15000);
    wh_teardown(&f.e);
}
END_TEST

static void check_dlq_headers(json_t *rec, const fixture *f, const char *reason,
                              const char *attempts, const char *key, const char *value)
{
    json_t *h = json_object_get(rec, "headers");
    ck_assert_str_eq(json_string_value(json_object_get(rec, "key")), key);
    if (value)
        ck_assert_str_eq(json_string_value(json_object_get(rec, "value")), value);
    ck_assert_str_eq(json_string_value(json_object_get(h, "herald.dlq.reason")), reason);
    ck_assert_str_eq(json_string_value(json_object_get(h, "herald.dlq.stage")), "worker.sms");
    ck_assert(strlen(json_string_value(json_object_get(h, "herald.dlq.error"))) > 0);
    ck_assert_str_eq(json_string_value(json_object_get(h, "herald.original.topic")),
                     f->e.topics[0]);
    ck_assert_ptr_nonnull(json_object_get(h, "herald.original.partition"));
    ck_assert_ptr_nonnull(json_object_get(h, "herald.original.offset"));
    ck_assert(atoll(json_string_value(json_object_get(h, "herald.original.timestamp"))) >
              1700000000000LL);
    ck_assert_str_eq(json_string_value(json_object_get(h, "herald.attempts")), attempts);
    int64_t at;
    char err[64];
    ck_assert_int_eq(
        timeutil_parse_rfc3339(json_string_value(json_object_get(h, "herald.failed_at")), &at, err,
                               sizeof err),
        0);
}

START_TEST(test_permanent_failure_goes_to_dlq_after_one_attempt)
{
    fixture f;
    char k[ID_UUID_SIZE];
    const char *pargs[] = {"--fail-status", "400", "--fail-count", "1", NULL};
    start_sms(&f, pargs, NULL);
    wh_produce_delivery(&f.e, "u-7", "+14155550100", NULL, "bad", k);
    wh_flush(&f.e);
    ck_assert_int_eq(
        wh_wait_count(&f.e, 1, 30000, "SELECT count(*) FROM deliveries WHERE status='failed'"), 1);
    char *row = wh_db_text(&f.e, "SELECT attempts || ' ' || last_error FROM deliveries");
    ck_assert_msg(strncmp(row, "1 HTTP 400", 10) == 0, "%s", row);
    free(row);
    json_t *dlq = json_array();
    ck_assert_int_eq(wh_read_topic(&f.e, f.e.topics[2], 1, 10000, wh_collect_record, dlq), 1);
    json_t *rec = json_array_get(dlq, 0);
    check_dlq_headers(rec, &f, "permanent_failure", "1", "u-7", NULL);
    delivery d = {0};
    char err[128];
    const char *v = json_string_value(json_object_get(rec, "value"));
    ck_assert_int_eq(delivery_parse(v, strlen(v), &d, err, sizeof err), DELIVERY_OK);
    ck_assert_str_eq(d.idempotency_key, k);
    delivery_free(&d);
    json_decref(dlq);
    ck_assert_int_eq(wh_read_topic(&f.e, f.e.topics[1], 1, 1000, NULL, NULL), 0);
    wh_stop(&f.w, SIGTERM, 15000);
    wh_teardown(&f.e);
}
END_TEST

START_TEST(test_max_attempts_goes_to_dlq_with_original_value_and_position)
{
    fixture f;
    char k[ID_UUID_SIZE];
    const char *pargs[] = {"--fail-status", "500", "--fail-rate", "1", NULL};
    const char *wenv[] = {"HERALD_SMS_MAX_ATTEMPTS=3", "HERALD_RETRY_BASE_MS=100",
                          "HERALD_BREAKER_FAILURES=100", NULL};
    start_sms(&f, pargs, wenv);
    wh_produce_delivery(&f.e, "u-8", "+14155550100", NULL, "never", k);
    wh_flush(&f.e);
    ck_assert_int_eq(
        wh_wait_count(&f.e, 1, 30000, "SELECT count(*) FROM deliveries WHERE status='failed'"), 1);
    ck_assert_int_eq(wh_db_long(&f.e, "SELECT attempts FROM deliveries"), 3);
    ck_assert_int_eq(wh_stat(&f.prov, "received"), 3);
    /* the value the dispatcher wrote, unchanged */
    json_t *orig = json_array();
    ck_assert_int_eq(wh_read_topic(&f.e, f.e.topics[0], 1, 10000, wh_collect_record, orig), 1);
    const char *ov = json_string_value(json_object_get(json_array_get(orig, 0), "value"));
    json_t *dlq = json_array();
    ck_assert_int_eq(wh_read_topic(&f.e, f.e.topics[2], 1, 10000, wh_collect_record, dlq), 1);
    json_t *rec = json_array_get(dlq, 0);
    check_dlq_headers(rec, &f, "max_attempts", "3", "u-8", ov);
    json_t *h = json_object_get(rec, "headers");
    ck_assert_int_eq(atoll(json_string_value(json_object_get(h, "herald.original.offset"))),
                     json_integer_value(json_object_get(json_array_get(orig, 0), "offset")));
    ck_assert_ptr_null(json_object_get(h, "herald.retry.not_before"));
    json_decref(dlq);
    json_decref(orig);
    wh_stop(&f.w, SIGTERM, 15000);
    wh_teardown(&f.e);
}
END_TEST

/*
 * What `heraldctl dlq requeue` sends back (the dead letter's value, the
 * requeue's headers, no retry headers) starts a new round of attempts: the
 * row's count from the first round does not count against it.
 */
START_TEST(test_requeued_delivery_gets_a_fresh_round_of_attempts)
{
    fixture f;
    char k[ID_UUID_SIZE], err[256];
    const char *pargs[] = {"--fail-status", "500", "--fail-rate", "1", NULL};
    const char *wenv[] = {"HERALD_SMS_MAX_ATTEMPTS=2", "HERALD_RETRY_BASE_MS=100",
                          "HERALD_BREAKER_FAILURES=100", NULL};
    start_sms(&f, pargs, wenv);
    wh_produce_delivery(&f.e, "u-9", "+14155550100", NULL, "again", k);
    wh_flush(&f.e);
    ck_assert_int_eq(
        wh_wait_count(&f.e, 1, 30000, "SELECT count(*) FROM deliveries WHERE status='failed'"), 1);
    json_t *dlq = json_array();
    ck_assert_int_eq(wh_read_topic(&f.e, f.e.topics[2], 1, 10000, wh_collect_record, dlq), 1);
    const char *v = json_string_value(json_object_get(json_array_get(dlq, 0), "value"));
    rd_kafka_headers_t *h = rd_kafka_headers_new(2);
    rd_kafka_header_add(h, "herald.requeued_from", -1, "dlq:0:0", -1);
    rd_kafka_header_add(h, "herald.requeued_at", -1, "2026-11-28T00:00:00Z", -1);
    ck_assert(kafka_produce(f.e.producer, f.e.topics[0], "u-9", 3, v, strlen(v), h, NULL, err,
                            sizeof err) == KAFKA_OK);
    wh_flush(&f.e);
    json_decref(dlq);

    /* Two more attempts (not one), then a second dead letter after 2, not 3. */
    dlq = json_array();
    ck_assert_int_eq(wh_read_topic(&f.e, f.e.topics[2], 2, 30000, wh_collect_record, dlq), 2);
    json_t *second = json_object_get(json_array_get(dlq, 1), "headers");
    ck_assert_str_eq(json_string_value(json_object_get(second, "herald.dlq.reason")),
                     "max_attempts");
    ck_assert_str_eq(json_string_value(json_object_get(second, "herald.attempts")), "2");
    ck_assert_int_eq(wh_stat(&f.prov, "received"), 4);
    ck_assert_int_eq(
        wh_db_long(&f.e, "SELECT attempts FROM deliveries WHERE idempotency_key = '%s'", k), 2);
    json_decref(dlq);
    wh_stop(&f.w, SIGTERM, 15000);
    wh_teardown(&f.e);
}
END_TEST

START_TEST(test_poison_records_dead_lettered_and_worker_continues)
{
    fixture f;
    char k[ID_UUID_SIZE];
    start_sms(&f, NULL, NULL);
    wh_produce_raw(&f.e, f.e.topics[0], "u-1", "{not json");
    wh_produce_raw(&f.e, f.e.topics[0], "u-1", "{\"idempotency_key\":\"x\"}");
    wh_produce_delivery(&f.e, "u-1", "+14155550100", NULL, "after the poison", k);
    wh_flush(&f.e);
    ck_assert_int_eq(
        wh_wait_count(&f.e, 1, 30000, "SELECT count(*) FROM deliveries WHERE status='sent'"), 1);
    json_t *dlq = json_array();
    ck_assert_int_eq(wh_read_topic(&f.e, f.e.topics[2], 2, 10000, wh_collect_record, dlq), 2);
    int json_bad = 0, invalid = 0;
    size_t i;
    json_t *rec;
    json_array_foreach(dlq, i, rec)
    {
        const char *reason = json_string_value(
            json_object_get(json_object_get(rec, "headers"), "herald.dlq.reason"));
        const char *v = json_string_value(json_object_get(rec, "value"));
        if (strcmp(reason, "invalid_json") == 0 && strcmp(v, "{not json") == 0) {
            json_bad++;
            check_dlq_headers(rec, &f, "invalid_json", "0", "u-1", "{not json");
        }
        if (strcmp(reason, "invalid_delivery") == 0)
            invalid++;
    }
    ck_assert_int_eq(json_bad, 1);
    ck_assert_int_eq(invalid, 1);
    json_decref(dlq);
    wh_stop(&f.w, SIGTERM, 15000);
    wh_teardown(&f.e);
}
END_TEST

START_TEST(test_same_delivery_consumed_twice_is_sent_once)
{
    fixture f;
    start_sms(&f, NULL, NULL);
    /* the same record three times: twice at once, once after it was sent */
    delivery d = {0};
    char *json = NULL;
    size_t len;
    ck_assert_int_eq(id_uuid_v4(d.event_id), 0);
    d.channel = DELIVERY_SMS;
    ck_assert_int_eq(delivery_idempotency_key(d.event_id, d.channel, "+14155550100", 0,
                                              d.idempotency_key, sizeof d.idempotency_key),
                     0);
    d.user_id = "u-1";
    d.attempt = 1;
    d.address = "+14155550100";
    d.body = "once";
    d.event_type = "t";
    d.created_at = timeutil_now_ms();
    ck_assert_int_eq(delivery_serialize(&d, &json, &len), 0);
    wh_produce_raw(&f.e, f.e.topics[0], "u-1", json);
    wh_produce_raw(&f.e, f.e.topics[0], "u-1", json);
    wh_flush(&f.e);
    ck_assert_int_eq(
        wh_wait_count(&f.e, 1, 30000, "SELECT count(*) FROM deliveries WHERE status='sent'"), 1);
    wh_produce_raw(&f.e, f.e.topics[0], "u-1", json);
    wh_flush(&f.e);
    free(json);
    /* the third copy is read and skipped: give it time, then look */
    int port = wh_metrics_port(&f.w);
    long skipped = 0;
    for (int i = 0; i < 100 && skipped < 2; i++) {
        json_t *m = NULL;
        char *text = NULL;
        char url[128];
        snprintf(url, sizeof url, "http://127.0.0.1:%d/metrics", port);
        CURL *c = curl_easy_init();
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, wh_collect);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &text);
        curl_easy_perform(c);
        curl_easy_cleanup(c);
        const char *l = text ? strstr(text, "herald_worker_duplicates_skipped_total{") : NULL;
        if (l)
            skipped = atol(strchr(l, '}') + 1);
        free(text);
        json_decref(m);
        if (skipped < 2)
            testsupport_sleep_ms(100);
    }
    ck_assert_int_eq(skipped, 2);
    ck_assert_int_eq(wh_stat(&f.prov, "received"), 1);
    ck_assert_int_eq(wh_db_long(&f.e, "SELECT count(*) FROM deliveries"), 1);
    wh_stop(&f.w, SIGTERM, 15000);
    wh_teardown(&f.e);
}
END_TEST

START_TEST(test_rate_limit_spreads_sends)
{
    fixture f;
    const char *wenv[] = {"HERALD_SMS_RATE=20", NULL};
    start_sms(&f, NULL, wenv);
    char user[32];
    for (int i = 0; i < 60; i++) {
        snprintf(user, sizeof user, "u-%d", i);
        wh_produce_delivery(&f.e, user, "+14155550100", NULL, "rated", NULL);
    }
    wh_flush(&f.e);
    ck_assert_int_eq(
        wh_wait_count(&f.e, 60, 30000, "SELECT count(*) FROM deliveries WHERE status='sent'"), 60);
    long t[64];
    ck_assert_int_eq(arrival_times(&f.prov, t, 64), 60);
    long lo = t[0], hi = t[0];
    for (int i = 1; i < 60; i++) {
        lo = t[i] < lo ? t[i] : lo;
        hi = t[i] > hi ? t[i] : hi;
    }
    /* a burst of 20, then 20 per second: 40 more take about 2 s */
    ck_assert_msg(hi - lo >= 1800, "60 sends in %ld ms at 20/s", hi - lo);
    wh_stop(&f.w, SIGTERM, 15000);
    wh_teardown(&f.e);
}
END_TEST

/* A delivery JSON for the sms channel, due at not_before (0: now). */
static char *sms_delivery(const char *user, const char *body, int64_t not_before, char *key)
{
    delivery d = {0};
    char *json = NULL;
    size_t len;
    ck_assert_int_eq(id_uuid_v4(d.event_id), 0);
    d.channel = DELIVERY_SMS;
    ck_assert_int_eq(delivery_idempotency_key(d.event_id, d.channel, "+14155550100", 0,
                                              d.idempotency_key, sizeof d.idempotency_key),
                     0);
    d.user_id = (char *)user;
    d.attempt = 1;
    d.address = "+14155550100";
    d.body = (char *)body;
    d.event_type = "t";
    d.created_at = timeutil_now_ms();
    d.not_before = not_before;
    ck_assert_int_eq(delivery_serialize(&d, &json, &len), 0);
    snprintf(key, ID_UUID_SIZE, "%s", d.idempotency_key);
    return json;
}

START_TEST(test_far_future_retry_does_not_block_later_due_records)
{
    fixture f;
    char later[ID_UUID_SIZE], now_key[ID_UUID_SIZE];
    start_sms(&f, NULL, NULL);
    /* same key, so same partition of the retry topic: held one first, due one behind it */
    char *held = sms_delivery("u-q", "after quiet hours", timeutil_now_ms() + 3600000, later);
    char *due = sms_delivery("u-q", "due now", 0, now_key);
    wh_produce_raw(&f.e, f.e.topics[1], "u-q", held);
    wh_produce_raw(&f.e, f.e.topics[1], "u-q", due);
    wh_flush(&f.e);
    free(held);
    free(due);
    long sent = wh_wait_count(&f.e, 1, 30000,
                              "SELECT count(*) FROM deliveries WHERE status='sent' AND "
                              "idempotency_key='%s'",
                              now_key);
    if (sent != 1)
        wh_dump_log(&f.w);
    ck_assert_int_eq(sent, 1);
    /* the held one was not claimed, let alone sent */
    ck_assert_int_eq(
        wh_db_long(&f.e, "SELECT count(*) FROM deliveries WHERE idempotency_key='%s'", later), 0);
    ck_assert_int_eq(wh_stat(&f.prov, "received"), 1);
    int port = wh_metrics_port(&f.w);
    char *text = NULL;
    char murl[128];
    snprintf(murl, sizeof murl, "http://127.0.0.1:%d/metrics", port);
    CURL *c = curl_easy_init();
    curl_easy_setopt(c, CURLOPT_URL, murl);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, wh_collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &text);
    ck_assert_int_eq(curl_easy_perform(c), CURLE_OK);
    curl_easy_cleanup(c);
    ck_assert_ptr_nonnull(strstr(text, "herald_worker_retry_held{channel=\"sms\"} 1"));
    free(text);
    wh_stop(&f.w, SIGTERM, 15000);
    wh_teardown(&f.e);
}
END_TEST

START_TEST(test_hung_provider_does_not_stall_the_consumer)
{
    fixture f;
    const char *pargs[] = {"--hang", NULL};
    const char *wenv[] = {"HERALD_PROVIDER_TIMEOUT=60s", NULL};
    start_sms(&f, pargs, wenv);
    int port = wh_metrics_port(&f.w);
    char user[32];
    for (int i = 0; i < 5; i++) {
        snprintf(user, sizeof user, "u-%d", i);
        wh_produce_delivery(&f.e, user, "+14155550100", NULL, "stuck", NULL);
    }
    wh_flush(&f.e);
    int64_t end = timeutil_monotonic_ms() + 20000;
    for (int i = 0; i < 400 && wh_stat(&f.prov, "hung") < 5 && timeutil_monotonic_ms() < end; i++)
        testsupport_sleep_ms(50);
    ck_assert_int_eq(wh_stat(&f.prov, "hung"), 5);
    /* Sends hang; the worker keeps taking records and stays healthy. */
    for (int i = 5; i < 10; i++) {
        snprintf(user, sizeof user, "u-%d", i);
        wh_produce_delivery(&f.e, user, "+14155550100", NULL, "stuck", NULL);
    }
    wh_flush(&f.e);
    for (int i = 0; i < 400 && wh_stat(&f.prov, "hung") < 10 && timeutil_monotonic_ms() < end; i++)
        testsupport_sleep_ms(50);
    ck_assert_int_eq(wh_stat(&f.prov, "hung"), 10);
    json_t *h = wh_http_json(port, "/healthz", NULL);
    ck_assert_str_eq(json_string_value(json_object_get(h, "status")), "ok");
    json_decref(h);
    wh_control(&f.prov, "{\"hang\":false}");
    ck_assert_int_eq(
        wh_wait_count(&f.e, 10, 30000, "SELECT count(*) FROM deliveries WHERE status='sent'"), 10);
    wh_stop(&f.w, SIGTERM, 15000);
    wh_teardown(&f.e);
}
END_TEST

static const test_case_entry cases[] = {
    TEST_ENTRY(test_transient_failures_retried_with_growing_delays_then_sent),
    TEST_ENTRY(test_429_retry_after_is_honoured),
    TEST_ENTRY(test_permanent_failure_goes_to_dlq_after_one_attempt),
    TEST_ENTRY(test_max_attempts_goes_to_dlq_with_original_value_and_position),
    TEST_ENTRY(test_requeued_delivery_gets_a_fresh_round_of_attempts),
    TEST_ENTRY(test_poison_records_dead_lettered_and_worker_continues),
    TEST_ENTRY(test_same_delivery_consumed_twice_is_sent_once),
    TEST_ENTRY(test_rate_limit_spreads_sends),
    TEST_ENTRY(test_far_future_retry_does_not_block_later_due_records),
    TEST_ENTRY(test_hung_provider_does_not_stall_the_consumer),
};

TEST_MAIN_TIMEOUT("worker_retry", cases, 120)
