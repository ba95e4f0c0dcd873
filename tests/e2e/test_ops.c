/*
 * End to end for the operator: heraldctl against a running Herald, with the
 * real pipeline (HTTP API -> dispatcher -> workers -> test providers).
 *
 *  - dead letters: a permanent provider failure (400) is listed, shown and
 *    counted by `heraldctl dlq`; once the provider is fixed, `dlq requeue`
 *    delivers it, and a second requeue sends nothing;
 *  - replay: a window in which pushes were dead-lettered is replayed; the
 *    lost ones are delivered and nothing already sent is sent twice;
 *    `replay --redeliver` then sends every one of them again, with new keys;
 *  - status: the email worker's lag grows while it is stopped and drains
 *    after it is started again.
 *
 * Assertions are on what the operator sees (heraldctl's output and exit
 * code) and on what reached the providers (their records).
 */
#include "e2e_suite.h"

static e2e_env env;
static bool up;

#define DLQ_EVENTS    3
#define REPLAY_OK     5
#define REPLAY_LOST   5
#define REPLAY_EVENTS (REPLAY_OK + REPLAY_LOST)
#define LAG_EVENTS    20
#define CTL_OUT       (512 * 1024)

/* ------------------------------------------------------------ heraldctl */

static char ctl_out[CTL_OUT], ctl_err[16384];

/*
 * Runs heraldctl with args (NULL-terminated) against this env's broker,
 * database and prefix; output in ctl_out / ctl_err; returns the exit code.
 */
static int ctl(const char *first, ...)
{
    char bin[512], prefix[80], brokers[300], *db;
    char *argv[40];
    int n = 0;
    testsupport_bin("heraldctl", bin, sizeof bin);
    argv[n++] = bin;
    va_list ap;
    va_start(ap, first);
    for (const char *a = first; a != NULL && n < 39; a = va_arg(ap, const char *))
        argv[n++] = (char *)a;
    va_end(ap);
    argv[n] = NULL;
    snprintf(prefix, sizeof prefix, "HERALD_TOPIC_PREFIX=%s", env.prefix);
    snprintf(brokers, sizeof brokers, "HERALD_KAFKA_BROKERS=%s", env.brokers);
    db = e2e_printf("HERALD_DATABASE_URL=%s", env.db_url);
    const char *const cenv[] = {prefix, brokers, db, "HERALD_LOG_LEVEL=warn", NULL};
    ctl_out[0] = ctl_err[0] = '\0';
    int rc = testsupport_run(argv, cenv, ctl_out, sizeof ctl_out, ctl_err, sizeof ctl_err, 60000);
    free(db);
    return rc;
}

/* As ctl(), asserting exit 0; returns ctl_out. */
#define CTL_OK(...)                                                                                \
    do {                                                                                           \
        int rc_ = ctl(__VA_ARGS__, NULL);                                                          \
        ck_assert_msg(rc_ == 0, "heraldctl exited %d\nstdout: %s\nstderr: %s", rc_, ctl_out,       \
                      ctl_err);                                                                    \
    } while (0)

/* ctl_out parsed as JSON (asserted). */
static json_t *ctl_json(void)
{
    json_error_t je;
    json_t *j = json_loads(ctl_out, 0, &je);
    ck_assert_msg(j != NULL, "heraldctl --json printed no JSON (%s): %s", je.text, ctl_out);
    return j;
}

/* ------------------------------------------------------------ providers */

/* The HTTP provider's records for protocol whose user_id starts with prefix. */
static json_t *http_records(const char *protocol, const char *user_prefix)
{
    json_t *all = e2e_records(&env, E2E_HTTP), *out = json_array();
    size_t i;
    json_t *r;
    json_array_foreach(all, i, r)
    {
        const char *p = json_string_value(json_object_get(r, "protocol"));
        const char *u = json_string_value(json_object_get(r, "user_id"));
        if (p && u && strcmp(p, protocol) == 0 && strncmp(u, user_prefix, strlen(user_prefix)) == 0)
            json_array_append(out, r);
    }
    json_decref(all);
    return out;
}

/* Number of distinct string values of field among records. */
static size_t count_distinct(json_t *records, const char *field)
{
    json_t *set = json_object();
    size_t i;
    json_t *r;
    json_array_foreach(records, i, r)
    {
        const char *v = json_string_value(json_object_get(r, field));
        if (v)
            json_object_set_new(set, v, json_true());
    }
    size_t n = json_object_size(set);
    json_decref(set);
    return n;
}

/* Records of the SMTP server with a recipient starting with prefix. */
static size_t smtp_count(const char *rcpt_prefix)
{
    json_t *all = e2e_records(&env, E2E_SMTP);
    size_t i, n = 0;
    json_t *r;
    json_array_foreach(all, i, r)
    {
        const char *a = json_string_value(json_array_get(json_object_get(r, "rcpt"), 0));
        if (a && strncmp(a, rcpt_prefix, strlen(rcpt_prefix)) == 0)
            n++;
    }
    json_decref(all);
    return n;
}

/*
 * Waits (bounded) until the HTTP provider holds at least want records of
 * protocol for users starting with prefix; returns how many it holds.
 */
static size_t wait_http_records(const char *protocol, const char *prefix, size_t want,
                                long timeout_ms)
{
    int64_t deadline = timeutil_monotonic_ms() + timeout_ms;
    size_t n = 0;
    for (int i = 0; i < 1000; i++) {
        json_t *r = http_records(protocol, prefix);
        n = json_array_size(r);
        json_decref(r);
        if (n >= want || timeutil_monotonic_ms() > deadline || !e2e_all_alive(&env))
            break;
        testsupport_sleep_ms(200);
    }
    return n;
}

static void rfc3339(int64_t ms, char *out, size_t len)
{
    timeutil_format_rfc3339(ms, out, len);
}

/* ------------------------------------------------------------ cases */

START_TEST(test_whole_stack_starts)
{
    e2e_up(&env, "e2e_ops");
    up = true;
}
END_TEST

START_TEST(test_dlq_list_show_stats_and_requeue_once)
{
    ck_assert_msg(up, "the stack did not start");
    char ids[DLQ_EVENTS][ID_UUID_SIZE], user[32], phone[32], body[256];
    /* SMS only: one provider request per event. */
    e2e_put_template(&env, "e2e.ops.dlq", "sms", NULL, "Ops {{data.n}} for {{user.name}}", NULL);
    for (int i = 0; i < DLQ_EVENTS; i++) {
        snprintf(user, sizeof user, "opsdlq-%d", i);
        snprintf(phone, sizeof phone, "+155560000%02d", i);
        e2e_put_user(&env, user, NULL, phone, NULL);
    }

    /* The provider refuses the next DLQ_EVENTS SMS for good. */
    snprintf(body, sizeof body, "{\"fail_status\":400,\"fail_count\":%d,\"match\":\"/sms\"}",
             DLQ_EVENTS);
    e2e_control(&env, E2E_HTTP, body);
    for (int i = 0; i < DLQ_EVENTS; i++) {
        snprintf(body, sizeof body,
                 "{\"type\":\"e2e.ops.dlq\",\"user_id\":\"opsdlq-%d\",\"data\":{\"n\":%d}}", i, i);
        e2e_publish(&env, body, ids[i]);
    }
    for (int i = 0; i < DLQ_EVENTS; i++) {
        json_t *doc = e2e_wait_event(&env, ids[i], 1, E2E_PHASE_MS);
        ck_assert_msg(doc != NULL, "event %s never processed", ids[i]);
        char *dump = json_dumps(doc, JSON_COMPACT);
        ck_assert_msg(e2e_count_deliveries(doc, "sms", "failed") == 1,
                      "a 400 did not fail the SMS: %s", dump);
        free(dump);
        json_decref(doc);
    }

    /* dlq list --json: every one, reason permanent_failure, the provider's error.
     * The worker writes the dead letter around when it records the status:
     * wait (bounded) until all are there. */
    json_t *list = NULL;
    for (int attempt = 0; attempt < 50; attempt++) {
        json_decref(list);
        CTL_OK("dlq", "list", "--stage", "worker.sms", "--json");
        list = ctl_json();
        if (json_array_size(list) >= DLQ_EVENTS)
            break;
        testsupport_sleep_ms(300);
    }
    ck_assert_msg(json_is_array(list) && json_array_size(list) == DLQ_EVENTS, "dlq list --json: %s",
                  ctl_out);
    char pos[DLQ_EVENTS][48];
    for (int i = 0; i < DLQ_EVENTS; i++) {
        json_t *found = NULL, *r;
        size_t k;
        json_array_foreach(list, k, r)
        {
            const char *ev = json_string_value(json_object_get(r, "event_id"));
            if (ev && strcmp(ev, ids[i]) == 0)
                found = r;
        }
        ck_assert_msg(found != NULL, "event %s is not in dlq list --json: %s", ids[i], ctl_out);
        const char *reason = json_string_value(json_object_get(found, "reason"));
        const char *stage = json_string_value(json_object_get(found, "stage"));
        const char *error = json_string_value(json_object_get(found, "error"));
        ck_assert_msg(reason && strcmp(reason, "permanent_failure") == 0, "reason %s",
                      reason ? reason : "(none)");
        ck_assert_msg(stage && strcmp(stage, "worker.sms") == 0, "stage %s", stage ? stage : "");
        ck_assert_msg(error && strstr(error, "400") && strstr(error, "injected_failure"),
                      "the provider's error is not in the dead letter: \"%s\"",
                      error ? error : "(none)");
        json_t *payload = json_object_get(found, "payload");
        ck_assert_msg(json_is_object(payload) &&
                          json_is_string(json_object_get(payload, "idempotency_key")),
                      "no delivery payload in dlq list --json");
        snprintf(pos[i], sizeof pos[i], "%d:%" JSON_INTEGER_FORMAT,
                 (int)json_integer_value(json_object_get(found, "partition")),
                 json_integer_value(json_object_get(found, "offset")));
    }
    json_decref(list);

    /* The table says the same. */
    CTL_OK("dlq", "list");
    for (int i = 0; i < DLQ_EVENTS; i++) {
        ck_assert_msg(strstr(ctl_out, ids[i]) != NULL, "dlq list: no %s in\n%s", ids[i], ctl_out);
        ck_assert_msg(strstr(ctl_out, pos[i]) != NULL, "dlq list: no %s in\n%s", pos[i], ctl_out);
    }
    ck_assert_msg(strstr(ctl_out, "permanent_failure") && strstr(ctl_out, "worker.sms") &&
                      strstr(ctl_out, "HTTP 400"),
                  "dlq list table:\n%s", ctl_out);
    char count_line[32];
    snprintf(count_line, sizeof count_line, "%d records", DLQ_EVENTS);
    ck_assert_msg(strstr(ctl_out, count_line), "dlq list table:\n%s", ctl_out);
    /* Filters apply. */
    CTL_OK("dlq", "list", "--reason", "max_attempts", "--json");
    list = ctl_json();
    ck_assert_int_eq(json_array_size(list), 0);
    json_decref(list);

    /* dlq show P:O, human and JSON. */
    CTL_OK("dlq", "show", pos[0]);
    ck_assert_msg(strstr(ctl_out, ids[0]) && strstr(ctl_out, "permanent_failure") &&
                      strstr(ctl_out, "herald.dlq.error") && strstr(ctl_out, "HTTP 400") &&
                      strstr(ctl_out, "deliveries.sms"),
                  "dlq show %s:\n%s", pos[0], ctl_out);
    CTL_OK("dlq", "show", pos[1], "--json");
    json_t *one = ctl_json();
    ck_assert_str_eq(json_string_value(json_object_get(one, "event_id")), ids[1]);
    ck_assert_str_eq(json_string_value(json_object_get(one, "reason")), "permanent_failure");
    json_decref(one);
    /* A position that is not there: exit 1; a malformed one: exit 2. */
    ck_assert_int_eq(ctl("dlq", "show", "0:999999", "--timeout", "3s", NULL), 1);
    ck_assert_int_eq(ctl("dlq", "show", "zero:one", NULL), 2);

    /* dlq stats counts them. */
    CTL_OK("dlq", "stats", "--json");
    json_t *stats = ctl_json();
    ck_assert_int_eq(json_integer_value(json_object_get(stats, "total")), DLQ_EVENTS);
    json_t *g = json_array_get(json_object_get(stats, "groups"), 0);
    ck_assert_int_eq(json_array_size(json_object_get(stats, "groups")), 1);
    ck_assert_str_eq(json_string_value(json_object_get(g, "stage")), "worker.sms");
    ck_assert_str_eq(json_string_value(json_object_get(g, "reason")), "permanent_failure");
    ck_assert_int_eq(json_integer_value(json_object_get(g, "count")), DLQ_EVENTS);
    json_decref(stats);
    CTL_OK("dlq", "stats");
    ck_assert_msg(strstr(ctl_out, "permanent_failure") && strstr(ctl_out, count_line),
                  "dlq stats:\n%s", ctl_out);

    json_t *r = http_records("sms", "opsdlq-");
    ck_assert_int_eq(json_array_size(r), 0);
    json_decref(r);

    /* The provider is fixed; a dry run changes nothing, a requeue delivers. */
    e2e_control(&env, E2E_HTTP, "{\"reset\":true}");
    CTL_OK("dlq", "requeue", "--stage", "worker.sms", "--reason", "permanent_failure", "--dry-run");
    ck_assert_msg(strstr(ctl_out, "3 would be requeued, 0 already requeued"), "dry run:\n%s",
                  ctl_out);
    testsupport_sleep_ms(500);
    r = http_records("sms", "opsdlq-");
    ck_assert_int_eq(json_array_size(r), 0);
    json_decref(r);

    CTL_OK("dlq", "requeue", "--stage", "worker.sms", "--reason", "permanent_failure");
    ck_assert_msg(strstr(ctl_out, "3 requeued, 0 already requeued, 0 skipped, 0 failed"),
                  "requeue:\n%s", ctl_out);
    size_t got = wait_http_records("sms", "opsdlq-", DLQ_EVENTS, E2E_PHASE_MS);
    ck_assert_msg(got == DLQ_EVENTS, "%zu of %d requeued SMS reached the provider", got,
                  DLQ_EVENTS);
    for (int i = 0; i < DLQ_EVENTS; i++) {
        /* The provider has it; the worker records the outcome just after. */
        json_t *doc = e2e_wait_status(&env, ids[i], "sms", "sent", 1, 30000);
        ck_assert_msg(doc && e2e_count_deliveries(doc, "sms", "sent") == 1,
                      "event %s not reported sent after the requeue", ids[i]);
        json_decref(doc);
    }

    /* Again: nothing to requeue, nothing sent. */
    CTL_OK("dlq", "requeue", "--stage", "worker.sms", "--reason", "permanent_failure");
    ck_assert_msg(strstr(ctl_out, "0 requeued, 3 already requeued"), "second requeue:\n%s",
                  ctl_out);
    /* Named positions too. */
    CTL_OK("dlq", "requeue", pos[0], pos[2]);
    ck_assert_msg(strstr(ctl_out, "0 requeued, 2 already requeued"), "requeue %s %s:\n%s", pos[0],
                  pos[2], ctl_out);
    testsupport_sleep_ms(2000); /* room for a wrong re-send to show up */
    r = http_records("sms", "opsdlq-");
    ck_assert_int_eq(json_array_size(r), DLQ_EVENTS);
    ck_assert_int_eq(count_distinct(r, "event_id"), DLQ_EVENTS);
    json_decref(r);
}
END_TEST

START_TEST(test_replay_delivers_the_lost_once_and_redeliver_sends_again)
{
    ck_assert_msg(up, "the stack did not start");
    char ids[REPLAY_EVENTS][ID_UUID_SIZE], user[32], token[48], body[256];
    char from[TIMEUTIL_RFC3339_SIZE], to[TIMEUTIL_RFC3339_SIZE];
    /* Push only: one provider request per event. */
    e2e_put_template(&env, "e2e.ops.replay", "push", "Ops", "Replay {{data.n}}", NULL);
    for (int i = 0; i < REPLAY_EVENTS; i++) {
        snprintf(user, sizeof user, "opsrep-%02d", i);
        snprintf(token, sizeof token, "opsrep-token-%02d", i);
        e2e_put_user(&env, user, NULL, NULL, token);
    }
    testsupport_sleep_ms(50);
    rfc3339(timeutil_now_ms(), from, sizeof from);

    /* Some delivered ... */
    for (int i = 0; i < REPLAY_OK; i++) {
        snprintf(body, sizeof body,
                 "{\"type\":\"e2e.ops.replay\",\"user_id\":\"opsrep-%02d\",\"data\":{\"n\":%d}}", i,
                 i);
        e2e_publish(&env, body, ids[i]);
    }
    size_t got = wait_http_records("push", "opsrep-", REPLAY_OK, E2E_PHASE_MS);
    ck_assert_msg(got == REPLAY_OK, "%zu of %d pushes before the outage", got, REPLAY_OK);

    /* ... then lost: the push provider refuses them for good. */
    snprintf(body, sizeof body, "{\"fail_status\":400,\"fail_count\":%d,\"match\":\"/push\"}",
             REPLAY_LOST);
    e2e_control(&env, E2E_HTTP, body);
    for (int i = REPLAY_OK; i < REPLAY_EVENTS; i++) {
        snprintf(body, sizeof body,
                 "{\"type\":\"e2e.ops.replay\",\"user_id\":\"opsrep-%02d\",\"data\":{\"n\":%d}}", i,
                 i);
        e2e_publish(&env, body, ids[i]);
    }
    for (int i = REPLAY_OK; i < REPLAY_EVENTS; i++) {
        json_t *doc = e2e_wait_event(&env, ids[i], 1, E2E_PHASE_MS);
        ck_assert_msg(doc && e2e_count_deliveries(doc, "push", "failed") == 1,
                      "event %s: the push did not fail", ids[i]);
        json_decref(doc);
    }
    testsupport_sleep_ms(50);
    rfc3339(timeutil_now_ms(), to, sizeof to);
    e2e_control(&env, E2E_HTTP, "{\"reset\":true}");
    json_t *r = http_records("push", "opsrep-");
    ck_assert_int_eq(json_array_size(r), REPLAY_OK);
    json_decref(r);

    /* A dry run lists them and publishes nothing. */
    CTL_OK("replay", "--from", from, "--to", to, "--dry-run");
    for (int i = 0; i < REPLAY_EVENTS; i++)
        ck_assert_msg(strstr(ctl_out, ids[i]), "replay --dry-run does not list %s:\n%s", ids[i],
                      ctl_out);
    ck_assert_msg(strstr(ctl_out, "matched 10 (dry run"), "replay --dry-run:\n%s", ctl_out);

    /* The replay: the lost ones go out, the sent ones are skipped. */
    double dup0 = e2e_metric(&env, E2E_PUSH, "herald_worker_duplicates_skipped_total");
    CTL_OK("replay", "--from", from, "--to", to);
    ck_assert_msg(strstr(ctl_out, "matched 10, published 10"), "replay:\n%s", ctl_out);
    got = wait_http_records("push", "opsrep-", REPLAY_EVENTS, E2E_PHASE_MS);
    ck_assert_msg(got >= REPLAY_EVENTS, "%zu of %d pushes after the replay", got, REPLAY_EVENTS);
    /* The worker has seen the replayed sent ones (and skipped them). */
    double dup = dup0;
    int64_t deadline = timeutil_monotonic_ms() + 30000;
    for (int i = 0; i < 300 && timeutil_monotonic_ms() < deadline; i++) {
        dup = e2e_metric(&env, E2E_PUSH, "herald_worker_duplicates_skipped_total");
        if (dup - (dup0 < 0 ? 0 : dup0) >= REPLAY_OK)
            break;
        testsupport_sleep_ms(200);
    }
    ck_assert_msg(dup - (dup0 < 0 ? 0 : dup0) >= REPLAY_OK,
                  "the push worker skipped %.0f replayed deliveries, expected %d",
                  dup - (dup0 < 0 ? 0 : dup0), REPLAY_OK);
    testsupport_sleep_ms(1000);
    r = http_records("push", "opsrep-");
    size_t keys = count_distinct(r, "idempotency_key");
    fprintf(stderr, "e2e: replay: %zu push records, %zu keys, %zu events\n", json_array_size(r),
            keys, count_distinct(r, "event_id"));
    ck_assert_msg(json_array_size(r) == REPLAY_EVENTS && keys == REPLAY_EVENTS &&
                      count_distinct(r, "event_id") == REPLAY_EVENTS,
                  "after replay: %zu records, %zu keys (expected %d each: one per event)",
                  json_array_size(r), keys, REPLAY_EVENTS);
    json_decref(r);
    for (int i = 0; i < REPLAY_EVENTS; i++) {
        json_t *doc = e2e_wait_status(&env, ids[i], "push", "sent", 1, 30000);
        ck_assert_msg(doc && e2e_count_deliveries(doc, "push", "sent") >= 1,
                      "event %s not reported sent after the replay", ids[i]);
        /* A lost one got a fresh round of attempts: it went out on the first. */
        json_int_t attempts =
            json_integer_value(json_object_get(e2e_delivery(doc, "push"), "attempts"));
        ck_assert_msg(attempts == 1, "event %s: the replayed push was sent on attempt %lld, not 1",
                      ids[i], (long long)attempts);
        json_decref(doc);
    }

    /* --redeliver: every one again, with new idempotency keys. */
    CTL_OK("replay", "--from", from, "--to", to, "--redeliver");
    ck_assert_msg(strstr(ctl_out, "matched 10, published 10"), "replay --redeliver:\n%s", ctl_out);
    got = wait_http_records("push", "opsrep-", 2 * REPLAY_EVENTS, E2E_PHASE_MS);
    ck_assert_msg(got >= 2 * REPLAY_EVENTS, "%zu pushes after replay --redeliver, expected %d", got,
                  2 * REPLAY_EVENTS);
    testsupport_sleep_ms(1000);
    r = http_records("push", "opsrep-");
    keys = count_distinct(r, "idempotency_key");
    fprintf(stderr, "e2e: redeliver: %zu push records, %zu keys\n", json_array_size(r), keys);
    ck_assert_msg(json_array_size(r) == 2 * REPLAY_EVENTS && keys == 2 * REPLAY_EVENTS,
                  "after replay --redeliver: %zu records, %zu keys (expected %d each)",
                  json_array_size(r), keys, 2 * REPLAY_EVENTS);
    /* Each event exactly twice. */
    json_t *per = json_object();
    size_t i;
    json_t *rec;
    json_array_foreach(r, i, rec)
    {
        const char *ev = json_string_value(json_object_get(rec, "event_id"));
        ck_assert_ptr_nonnull(ev);
        json_int_t n = json_integer_value(json_object_get(per, ev));
        json_object_set_new(per, ev, json_integer(n + 1));
    }
    for (int k = 0; k < REPLAY_EVENTS; k++)
        ck_assert_msg(json_integer_value(json_object_get(per, ids[k])) == 2,
                      "event %s pushed %d times, expected 2", ids[k],
                      (int)json_integer_value(json_object_get(per, ids[k])));
    json_decref(per);
    json_decref(r);
}
END_TEST

/* heraldctl status --json for the email worker's group; returns its total lag. */
static long email_lag(bool *healthy)
{
    char group[96], addr[7][64];
    static const int procs[7] = {E2E_GATEWAY, E2E_DISPATCHER, E2E_EMAIL,   E2E_SMS,
                                 E2E_PUSH,    E2E_INAPP,      E2E_REALTIME};
    snprintf(group, sizeof group, "%sworker.email", env.prefix);
    for (int i = 0; i < 7; i++)
        snprintf(addr[i], sizeof addr[i], "127.0.0.1:%d", env.procs[procs[i]].port);
    /* The default groups: they include <prefix>worker.email, the workers' default.
     * The daemons asked are this env's. */
    CTL_OK("status", "--json", "--gateway", addr[0], "--dispatcher", addr[1], "--worker-email",
           addr[2], "--worker-sms", addr[3], "--worker-push", addr[4], "--worker-inapp", addr[5],
           "--realtime", addr[6], "--timeout", "10s");
    json_t *j = ctl_json();
    json_t *lag = json_object_get(json_object_get(j, "group_lag"), group);
    ck_assert_msg(json_is_integer(lag), "status --json has no group_lag.%s: %s", group, ctl_out);
    long n = (long)json_integer_value(lag);
    if (healthy) {
        /* The email worker's health; the other daemons must be up throughout. */
        size_t i;
        json_t *d;
        json_array_foreach(json_object_get(j, "daemons"), i, d)
        {
            const char *name = json_string_value(json_object_get(d, "name"));
            bool up_now = json_is_true(json_object_get(d, "healthy"));
            if (name && strcmp(name, "worker-email") == 0)
                *healthy = up_now;
            else
                ck_assert_msg(up_now, "status reports %s down: %s", name ? name : "?", ctl_out);
        }
    }
    json_decref(j);
    return n;
}

START_TEST(test_status_shows_lag_while_the_email_worker_is_down_and_drains_after)
{
    ck_assert_msg(up, "the stack did not start");
    char user[32], email[64], body[256], id[ID_UUID_SIZE];
    e2e_put_template(&env, "e2e.ops.lag", "email", "Lag", "Lag {{data.n}}", NULL);
    for (int i = 0; i < LAG_EVENTS; i++) {
        snprintf(user, sizeof user, "opslag-%02d", i);
        snprintf(email, sizeof email, "opslag-%02d@e2e.test", i);
        e2e_put_user(&env, user, email, NULL, NULL);
    }
    bool healthy = false;
    long lag0 = email_lag(&healthy);
    ck_assert_msg(healthy, "status: the running email worker is not healthy");
    fprintf(stderr, "e2e: email lag before: %ld\n", lag0);

    int rc = e2e_stop(&env.procs[E2E_EMAIL], SIGTERM, 30000);
    ck_assert_msg(rc == 0, "the email worker exited %d on SIGTERM", rc);
    for (int i = 0; i < LAG_EVENTS; i++) {
        snprintf(body, sizeof body,
                 "{\"type\":\"e2e.ops.lag\",\"user_id\":\"opslag-%02d\",\"data\":{\"n\":%d}}", i,
                 i);
        e2e_publish(&env, body, id);
    }
    /* The dispatcher plans them; nobody takes them: the lag grows. */
    long lag = 0;
    int64_t deadline = timeutil_monotonic_ms() + 30000;
    for (int i = 0; i < 100 && timeutil_monotonic_ms() < deadline; i++) {
        lag = email_lag(&healthy);
        if (lag >= lag0 + LAG_EVENTS)
            break;
        testsupport_sleep_ms(300);
    }
    fprintf(stderr, "e2e: email lag while stopped: %ld\n", lag);
    if (lag < lag0 + LAG_EVENTS) {
        json_t *doc = e2e_event(&env, id);
        char *dump = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
        fprintf(stderr, "e2e: status --json:\n%s\nlast event: %s\n", ctl_out,
                dump ? dump : "(404)");
        free(dump);
        json_decref(doc);
    }
    ck_assert_msg(lag >= lag0 + LAG_EVENTS, "status shows email lag %ld, expected >= %ld", lag,
                  lag0 + LAG_EVENTS);
    ck_assert_msg(!healthy, "status: the stopped email worker is reported healthy");
    ck_assert_int_eq(smtp_count("opslag-"), 0);
    CTL_OK("status"); /* the table too */
    char group[96];
    snprintf(group, sizeof group, "%sworker.email", env.prefix);
    ck_assert_msg(strstr(ctl_out, group) && strstr(ctl_out, "deliveries.email"), "status:\n%s",
                  ctl_out);

    /* Started again, it drains. */
    e2e_restart(&env, E2E_EMAIL);
    deadline = timeutil_monotonic_ms() + 30000;
    for (int i = 0; i < 200 && timeutil_monotonic_ms() < deadline; i++) {
        lag = email_lag(&healthy);
        if (lag == 0)
            break;
        testsupport_sleep_ms(300);
    }
    fprintf(stderr, "e2e: email lag after restart: %ld\n", lag);
    if (lag != 0) {
        /* Which partitions keep it: committed and end offsets. */
        json_t *j = ctl_json();
        size_t i;
        json_t *row;
        json_array_foreach(json_object_get(j, "lag"), i, row)
        {
            const char *g = json_string_value(json_object_get(row, "group"));
            if (json_integer_value(json_object_get(row, "lag")) == 0 || !g || strcmp(g, group) != 0)
                continue;
            char *dump = json_dumps(row, JSON_COMPACT);
            fprintf(stderr, "e2e: %s\n", dump);
            free(dump);
        }
        json_decref(j);
    }
    ck_assert_msg(lag == 0, "the email lag stayed %ld after the worker came back", lag);
    ck_assert_msg(healthy, "status: the restarted email worker is not healthy");
    ck_assert_int_eq(smtp_count("opslag-"), LAG_EVENTS);
}
END_TEST

START_TEST(test_every_daemon_exits_0_on_sigterm)
{
    e2e_expect_clean_stop(&env, up);
}
END_TEST

static const test_case_entry cases[] = {
    TEST_ENTRY(test_whole_stack_starts),
    TEST_ENTRY(test_dlq_list_show_stats_and_requeue_once),
    TEST_ENTRY(test_replay_delivers_the_lost_once_and_redeliver_sends_again),
    TEST_ENTRY(test_status_shows_lag_while_the_email_worker_is_down_and_drains_after),
    TEST_ENTRY(test_every_daemon_exits_0_on_sigterm),
};

E2E_MAIN("e2e_ops", cases, env)
