/*
 * End to end under failure: while events stream in through the HTTP API,
 * the dispatcher and the SMS worker are killed (SIGKILL, as a crash or an
 * OOM kill would) and restarted.  Nothing may be lost: from the providers'
 * own records, every expected notification arrives.  Re-sends (the same
 * idempotency key received twice) are allowed by at-least-once delivery and
 * counted.  Prints `loss=N resends=N`.
 */
#include "e2e_suite.h"

static e2e_env env;
static bool up;

#define EVENTS 1000
#define BATCH 50
#define BATCH_PAUSE_MS 150
#define KILL_AFTER_BATCH 6
#define RESTART_AFTER_BATCH 12

START_TEST(test_whole_stack_starts)
{
    e2e_up(&env, "e2e_failure");
    up = true;
}
END_TEST

/* Publishes events [from, from+n) with one POST /v1/events/batch. */
static void publish_batch(int from, int n, char ids[][ID_UUID_SIZE])
{
    json_t *events = json_array();
    for (int i = from; i < from + n; i++) {
        char user[32];
        snprintf(user, sizeof user, "crash-%04d", i);
        json_array_append_new(events, json_pack("{s:s,s:s,s:{s:i}}", "type", "e2e.crash",
                                                "user_id", user, "data", "n", i));
    }
    json_t *req = json_pack("{s:o}", "events", events);
    char *body = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    json_t *res = NULL;
    long st = e2e_api(&env, "POST", "/v1/events/batch", body, &res);
    free(body);
    json_t *results = json_object_get(res, "results");
    ck_assert_msg(st == 202 && json_array_size(results) == (size_t)n,
                  "POST /v1/events/batch -> %ld", st);
    for (int k = 0; k < n; k++) {
        const char *id = json_string_value(json_object_get(json_array_get(results, k), "event_id"));
        ck_assert_msg(id != NULL, "batch item %d was not accepted", k);
        snprintf(ids[from + k], ID_UUID_SIZE, "%s", id);
    }
    json_decref(res);
}

/* Counts records, distinct idempotency keys and the expected ones seen. */
typedef struct tally {
    json_t *seen; /* expected key -> true */
    long records, distinct;
} tally;

static void tally_http(json_t *records, const char *protocol, tally *t)
{
    json_t *keys = json_object();
    size_t i;
    json_t *r;
    json_array_foreach(records, i, r) {
        const char *p = json_string_value(json_object_get(r, "protocol"));
        const char *u = json_string_value(json_object_get(r, "user_id"));
        const char *k = json_string_value(json_object_get(r, "idempotency_key"));
        const char *ev = json_string_value(json_object_get(r, "event_id"));
        if (!p || strcmp(p, protocol) != 0 || !u || strncmp(u, "crash-", 6) != 0)
            continue;
        t->records++;
        if (k && json_object_get(keys, k) == NULL)
            json_object_set_new(keys, k, json_true());
        if (ev)
            json_object_set_new(t->seen, ev, json_true());
    }
    t->distinct = (long)json_object_size(keys);
    json_decref(keys);
}

static void tally_smtp(json_t *records, tally *t)
{
    json_t *keys = json_object();
    size_t i;
    json_t *r;
    json_array_foreach(records, i, r) {
        const char *rcpt = json_string_value(json_array_get(json_object_get(r, "rcpt"), 0));
        const char *k = json_string_value(json_object_get(r, "message_id"));
        if (!rcpt || strncmp(rcpt, "crash-", 6) != 0)
            continue;
        t->records++;
        if (k && json_object_get(keys, k) == NULL)
            json_object_set_new(keys, k, json_true());
        json_object_set_new(t->seen, rcpt, json_true());
    }
    t->distinct = (long)json_object_size(keys);
    json_decref(keys);
}

START_TEST(test_killing_dispatcher_and_worker_mid_run_loses_nothing)
{
    ck_assert_msg(up, "the stack did not start");
    static char ids[EVENTS][ID_UUID_SIZE];
    char user[32], email[64], phone[32], token[48];

    e2e_put_templates(&env, "e2e.crash");
    for (int i = 0; i < EVENTS; i++) {
        snprintf(user, sizeof user, "crash-%04d", i);
        snprintf(email, sizeof email, "crash-%04d@e2e.test", i);
        snprintf(phone, sizeof phone, "+1555300%04d", i);
        snprintf(token, sizeof token, "crash-token-%04d", i);
        e2e_put_user(&env, user, email, phone, token);
    }
    /* Slow providers keep requests in flight when the worker dies. */
    e2e_control(&env, E2E_HTTP, "{\"latency_ms\":100,\"latency_jitter_ms\":100}");
    e2e_control(&env, E2E_SMTP, "{\"latency_ms\":10}");

    int64_t t0 = timeutil_monotonic_ms();
    for (int b = 0; b * BATCH < EVENTS; b++) {
        publish_batch(b * BATCH, BATCH, ids);
        /* Right after a batch, so the dispatcher and the worker are busy with it. */
        if (b == KILL_AFTER_BATCH) {
            json_t *s = e2e_records(&env, E2E_HTTP);
            fprintf(stderr, "e2e: killing the dispatcher and the sms worker (%zu HTTP records so far)\n",
                    json_array_size(s));
            json_decref(s);
            e2e_kill(&env, E2E_DISPATCHER);
            e2e_kill(&env, E2E_SMS);
        }
        if (b == RESTART_AFTER_BATCH) {
            fprintf(stderr, "e2e: restarting the dispatcher and the sms worker\n");
            e2e_restart(&env, E2E_DISPATCHER);
            e2e_restart(&env, E2E_SMS);
        }
        e2e_sleep_ms(BATCH_PAUSE_MS);
    }
    fprintf(stderr, "e2e: %d events published in %lld ms\n", EVENTS,
            (long long)(timeutil_monotonic_ms() - t0));

    /* Wait (bounded) until every expected notification reached its provider. */
    long loss = 3L * EVENTS;
    tally te = {0}, ts = {0}, tp = {0};
    int64_t deadline = timeutil_monotonic_ms() + E2E_PHASE_MS;
    for (int i = 0; i < 2000; i++) {
        json_decref(te.seen);
        json_decref(ts.seen);
        json_decref(tp.seen);
        te = (tally){json_object(), 0, 0};
        ts = (tally){json_object(), 0, 0};
        tp = (tally){json_object(), 0, 0};
        json_t *h = e2e_records(&env, E2E_HTTP), *m = e2e_records(&env, E2E_SMTP);
        tally_http(h, "sms", &ts);
        tally_http(h, "push", &tp);
        tally_smtp(m, &te);
        json_decref(h);
        json_decref(m);
        loss = 0;
        for (int k = 0; k < EVENTS; k++) {
            snprintf(email, sizeof email, "crash-%04d@e2e.test", k);
            loss += json_object_get(te.seen, email) == NULL;
            loss += json_object_get(ts.seen, ids[k]) == NULL;
            loss += json_object_get(tp.seen, ids[k]) == NULL;
        }
        if (loss == 0 || timeutil_monotonic_ms() > deadline || !e2e_all_alive(&env))
            break;
        e2e_sleep_ms(500);
    }
    e2e_sleep_ms(2000); /* late re-sends still count */
    {
        json_t *h = e2e_records(&env, E2E_HTTP), *m = e2e_records(&env, E2E_SMTP);
        tally e2 = {json_object(), 0, 0}, s2 = {json_object(), 0, 0}, p2 = {json_object(), 0, 0};
        tally_http(h, "sms", &s2);
        tally_http(h, "push", &p2);
        tally_smtp(m, &e2);
        te.records = e2.records, te.distinct = e2.distinct;
        ts.records = s2.records, ts.distinct = s2.distinct;
        tp.records = p2.records, tp.distinct = p2.distinct;
        json_decref(e2.seen);
        json_decref(s2.seen);
        json_decref(p2.seen);
        json_decref(h);
        json_decref(m);
    }
    long resends = (te.records - te.distinct) + (ts.records - ts.distinct) +
                   (tp.records - tp.distinct);
    fprintf(stderr,
            "e2e: email %ld records / %ld keys, sms %ld / %ld, push %ld / %ld, in %lld ms\n",
            te.records, te.distinct, ts.records, ts.distinct, tp.records, tp.distinct,
            (long long)(timeutil_monotonic_ms() - t0));
    printf("loss=%ld resends=%ld\n", loss, resends);
    fflush(stdout);
    json_decref(te.seen);
    json_decref(ts.seen);
    json_decref(tp.seen);
    ck_assert_msg(loss == 0, "%ld of %d notifications never reached their provider", loss,
                  3 * EVENTS);
    /* Nothing beyond the expected: one message per (event, channel, address). */
    ck_assert_int_eq(te.distinct, EVENTS);
    ck_assert_int_eq(ts.distinct, EVENTS);
    ck_assert_int_eq(tp.distinct, EVENTS);

    /* The API agrees: every event delivered on its three channels. */
    e2e_control(&env, E2E_HTTP, "{\"latency_ms\":0,\"latency_jitter_ms\":0}");
    e2e_control(&env, E2E_SMTP, "{\"latency_ms\":0}");
    deadline = timeutil_monotonic_ms() + E2E_PHASE_MS;
    for (int i = 0; i < EVENTS; i++) {
        long left = (long)(deadline - timeutil_monotonic_ms());
        json_t *doc = e2e_wait_event(&env, ids[i], 3, left > 0 ? left : 1);
        ck_assert_msg(doc != NULL, "GET /v1/events/%s stayed 404", ids[i]);
        if (e2e_count_deliveries(doc, NULL, "sent") != 3) {
            char *dump = json_dumps(doc, JSON_COMPACT);
            fprintf(stderr, "event %d: %s\n", i, dump);
            free(dump);
            json_decref(doc);
            ck_abort_msg("event %s is not reported sent on its three channels", ids[i]);
        }
        json_decref(doc);
    }
}
END_TEST

START_TEST(test_every_daemon_exits_0_on_sigterm)
{
    ck_assert_msg(up, "the stack did not start");
    ck_assert_msg(e2e_all_alive(&env), "a daemon died during the run");
    ck_assert_int_eq(e2e_down(&env), 0);
}
END_TEST

static const test_case_entry cases[] = {
    TEST_ENTRY(test_whole_stack_starts),
    TEST_ENTRY(test_killing_dispatcher_and_worker_mid_run_loses_nothing),
    TEST_ENTRY(test_every_daemon_exits_0_on_sigterm),
};

E2E_MAIN("e2e_failure", cases, env)
