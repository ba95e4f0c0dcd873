/*
 * herald-worker through outages and crashes: the circuit breaker pauses
 * instead of burning attempts and resumes when the provider recovers; a
 * fallback provider takes over while the primary's breaker is open; a
 * SIGKILL with sends in flight loses nothing and re-sends carry the same
 * idempotency key; SIGTERM lets in-flight sends finish and commits.
 */
#include "worker_harness.h"

static char *scrape(int port)
{
    char url[128], *text = NULL;
    snprintf(url, sizeof url, "http://127.0.0.1:%d/metrics", port);
    CURL *c = curl_easy_init();
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, wh_collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &text);
    curl_easy_perform(c);
    curl_easy_cleanup(c);
    return text ? text : strdup("");
}

/* The value of the first series of name whose labels contain label (may be ""). */
static double metric(const char *text, const char *name, const char *label)
{
    for (const char *l = strstr(text, name); l; l = strstr(l + 1, name)) {
        if (l != text && l[-1] != '\n')
            continue;
        const char *eol = strchr(l, '\n');
        const char *lab = strstr(l, label);
        if (*label && (lab == NULL || (eol && lab > eol)))
            continue;
        const char *sp = strchr(l, ' ');
        if (sp && (!eol || sp < eol))
            return atof(sp + 1);
    }
    return -1;
}

static void produce_n(wh_env *e, int n, char keys[][ID_UUID_SIZE])
{
    char user[32];
    for (int i = 0; i < n; i++) {
        snprintf(user, sizeof user, "u-%d", i);
        wh_produce_delivery(e, user, "+14155550100", NULL, "hello", keys ? keys[i] : NULL);
    }
    wh_flush(e);
}

START_TEST(test_breaker_pauses_during_outage_and_resumes)
{
    wh_env e;
    wh_proc prov = {0}, w = {0};
    char url[128];
    wh_setup(&e, "sms");
    const char *pargs[] = {"--fail-status", "503", "--fail-rate", "1", NULL};
    wh_start_http_provider(&e, &prov, "provider", pargs);
    snprintf(url, sizeof url, "HERALD_SMS_URL=http://127.0.0.1:%d/sms", prov.port);
    const char *env[] = {"HERALD_SMS_PROVIDER=http",
                         url,
                         "HERALD_BREAKER_FAILURES=3",
                         "HERALD_BREAKER_COOLDOWN=500ms",
                         "HERALD_SMS_MAX_ATTEMPTS=50",
                         "HERALD_RETRY_BASE_MS=100",
                         NULL};
    wh_start_worker(&e, &w, "worker", env);
    int port = wh_metrics_port(&w);
    produce_n(&e, 10, NULL);
    /* During three seconds of outage the breaker lets only a few probes through. */
    bool saw_open = false, saw_paused = false;
    int64_t end = timeutil_monotonic_ms() + 3000;
    for (int i = 0; i < 100 && timeutil_monotonic_ms() < end; i++) {
        char *m = scrape(port);
        if (metric(m, "herald_worker_breaker_state", "role=\"primary\"") == 1)
            saw_open = true;
        if (metric(m, "herald_worker_intake_paused", "") == 1)
            saw_paused = true;
        free(m);
        testsupport_sleep_ms(50);
    }
    long during = wh_stat(&prov, "received");
    ck_assert_msg(saw_open, "breaker never reported open");
    ck_assert_msg(saw_paused, "intake never paused");
    /* at most the 10 first attempts (fewer when the breaker opened before all were
     * claimed), then a few probes; retried every 0.1-1.6 s without the breaker, the
     * 10 deliveries would have made ~50 requests */
    ck_assert_msg(during >= 3 && during <= 16, "%ld requests during the outage", during);
    ck_assert_int_eq(wh_db_long(&e, "SELECT count(*) FROM deliveries WHERE status='sent'"), 0);
    /* Recovery: the half-open probe succeeds and everything goes out. */
    wh_control(&prov, "{\"fail_rate\":0}");
    long sent = wh_wait_count(&e, 10, 30000, "SELECT count(*) FROM deliveries WHERE status='sent'");
    if (sent != 10)
        wh_dump_log(&w);
    ck_assert_int_eq(sent, 10);
    ck_assert_int_le(wh_db_long(&e, "SELECT max(attempts) FROM deliveries"), 6);
    char *m = scrape(port);
    ck_assert_int_eq((int)metric(m, "herald_worker_breaker_state", "role=\"primary\""), 0);
    free(m);
    wh_stop(&w, SIGTERM, 15000);
    wh_teardown(&e);
}
END_TEST

START_TEST(test_fallback_provider_takes_over_while_primary_breaker_open)
{
    wh_env e;
    wh_proc a = {0}, b = {0}, w = {0};
    char url[128], fb[128];
    wh_setup(&e, "sms");
    const char *aargs[] = {"--fail-status", "503", "--fail-rate", "1", NULL};
    wh_start_http_provider(&e, &a, "primary", aargs);
    wh_start_http_provider(&e, &b, "fallback", NULL);
    snprintf(url, sizeof url, "HERALD_SMS_URL=http://127.0.0.1:%d/sms", a.port);
    snprintf(fb, sizeof fb, "HERALD_SMS_FALLBACK_URL=http://127.0.0.1:%d", b.port);
    const char *env[] = {"HERALD_SMS_PROVIDER=http",
                         url,
                         "HERALD_SMS_FALLBACK_PROVIDER=twilio",
                         fb,
                         "HERALD_TWILIO_ACCOUNT_SID=AC1",
                         "HERALD_TWILIO_AUTH_TOKEN=t",
                         "HERALD_SMS_FROM=+15005550006",
                         "HERALD_BREAKER_FAILURES=2",
                         "HERALD_BREAKER_COOLDOWN=30s",
                         "HERALD_RETRY_BASE_MS=100",
                         NULL};
    wh_start_worker(&e, &w, "worker", env);
    produce_n(&e, 10, NULL);
    long sent = wh_wait_count(&e, 10, 30000, "SELECT count(*) FROM deliveries WHERE status='sent'");
    if (sent != 10)
        wh_dump_log(&w);
    ck_assert_int_eq(sent, 10);
    ck_assert_int_eq(wh_db_long(&e, "SELECT count(*) FROM deliveries WHERE provider='twilio'"), 10);
    /* the first attempts were all in flight before the breaker opened; each delivery
     * reached the failing primary at most once and its retry went to the fallback */
    ck_assert_int_le(wh_stat(&a, "received"), 10);
    ck_assert_int_eq(wh_stat(&b, "accepted"), 10);
    /* with the breaker open, new deliveries go straight to the fallback */
    long before = wh_stat(&a, "received");
    char user[32];
    for (int i = 0; i < 10; i++) {
        snprintf(user, sizeof user, "v-%d", i);
        wh_produce_delivery(&e, user, "+14155550100", NULL, "second wave", NULL);
    }
    wh_flush(&e);
    ck_assert_int_eq(
        wh_wait_count(&e, 20, 30000, "SELECT count(*) FROM deliveries WHERE status='sent'"), 20);
    ck_assert_int_eq(wh_stat(&a, "received"), before);
    ck_assert_int_eq(wh_stat(&b, "accepted"), 20);
    wh_stop(&w, SIGTERM, 15000);
    wh_teardown(&e);
}
END_TEST

START_TEST(test_sigkill_with_sends_in_flight_loses_nothing_and_resends_same_key)
{
    enum { N = 20 };
    wh_env e;
    wh_proc prov = {0}, w1 = {0}, w2 = {0};
    char url[128], keys[N][ID_UUID_SIZE];
    wh_setup(&e, "sms");
    const char *pargs[] = {"--latency-ms", "3000", NULL};
    wh_start_http_provider(&e, &prov, "provider", pargs);
    snprintf(url, sizeof url, "HERALD_SMS_URL=http://127.0.0.1:%d/sms", prov.port);
    const char *env[] = {"HERALD_SMS_PROVIDER=http", url, "HERALD_WORKER_LEASE=2s", NULL};
    wh_start_worker(&e, &w1, "worker1", env);
    produce_n(&e, N, keys);
    int64_t end = timeutil_monotonic_ms() + 20000;
    for (int i = 0; i < 400 && wh_stat(&prov, "received") < N && timeutil_monotonic_ms() < end; i++)
        testsupport_sleep_ms(50);
    ck_assert_int_eq(wh_stat(&prov, "received"), N); /* all in flight now */
    wh_stop(&w1, SIGKILL, 5000);
    ck_assert_int_eq(wh_db_long(&e, "SELECT count(*) FROM deliveries WHERE status='sent'"), 0);
    wh_start_worker(&e, &w2, "worker2", env);
    long sent = wh_wait_count(&e, N, 60000, "SELECT count(*) FROM deliveries WHERE status='sent'");
    if (sent != N)
        wh_dump_log(&w2);
    ck_assert_int_eq(sent, N);
    /* every request the provider saw carried one of the deliveries' keys, each key at least once */
    json_t *recs = wh_records(&prov);
    int seen[N] = {0};
    size_t i;
    json_t *r;
    json_array_foreach(recs, i, r)
    {
        const char *k = json_string_value(json_object_get(r, "idempotency_key"));
        const char *bk = json_string_value(json_object_get(r, "body_idempotency_key"));
        ck_assert_str_eq(k, bk);
        int found = -1;
        for (int j = 0; j < N; j++)
            if (strcmp(keys[j], k) == 0)
                found = j;
        ck_assert_msg(found >= 0, "unknown key %s", k);
        seen[found]++;
    }
    for (int j = 0; j < N; j++)
        ck_assert_msg(seen[j] >= 1, "delivery %d never reached the provider", j);
    json_decref(recs);
    wh_stop(&w2, SIGTERM, 15000);
    wh_teardown(&e);
}
END_TEST

START_TEST(test_sigterm_drains_in_flight_and_commits)
{
    enum { N = 20 };
    wh_env e;
    wh_proc prov = {0}, w1 = {0}, w2 = {0};
    char url[128];
    wh_setup(&e, "sms");
    const char *pargs[] = {"--latency-ms", "1000", NULL};
    wh_start_http_provider(&e, &prov, "provider", pargs);
    snprintf(url, sizeof url, "HERALD_SMS_URL=http://127.0.0.1:%d/sms", prov.port);
    const char *env[] = {"HERALD_SMS_PROVIDER=http", url, NULL};
    wh_start_worker(&e, &w1, "worker1", env);
    produce_n(&e, N, NULL);
    int64_t end = timeutil_monotonic_ms() + 20000;
    for (int i = 0; i < 400 && wh_stat(&prov, "received") < N && timeutil_monotonic_ms() < end; i++)
        testsupport_sleep_ms(50);
    ck_assert_int_eq(wh_stat(&prov, "received"), N);
    int status = wh_stop(&w1, SIGTERM, 15000);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %d", status);
    ck_assert_int_eq(wh_db_long(&e, "SELECT count(*) FROM deliveries WHERE status='sent'"), N);
    /* offsets were committed: a new worker in the group sends nothing again */
    wh_start_worker(&e, &w2, "worker2", env);
    wh_metrics_port(&w2);
    testsupport_sleep_ms(3000);
    ck_assert_int_eq(wh_stat(&prov, "received"), N);
    wh_stop(&w2, SIGTERM, 15000);
    wh_teardown(&e);
}
END_TEST

static const test_case_entry cases[] = {
    TEST_ENTRY(test_breaker_pauses_during_outage_and_resumes),
    TEST_ENTRY(test_fallback_provider_takes_over_while_primary_breaker_open),
    TEST_ENTRY(test_sigkill_with_sends_in_flight_loses_nothing_and_resends_same_key),
    TEST_ENTRY(test_sigterm_drains_in_flight_and_commits),
};

TEST_MAIN_TIMEOUT("worker_resilience", cases, 150)
