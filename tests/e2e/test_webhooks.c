/*
 * End to end: status webhooks from the real workers.  herald-webhooks runs
 * next to the stack, and a receiver in this process (tests/support/
 * whreceiver: every Herald-Signature checked, calls deduplicated by id)
 * is registered through POST /v1/webhooks with the key the events are
 * published with.  What that service sees: one delivery.sent per email,
 * SMS and push delivered; a delivery.bounced for an email refused with 550
 * at RCPT TO and a delivery.suppressed for the next one to that address;
 * and, through a receiver answering 503 for a while and herald-webhooks
 * killed and started again mid-run, every status change of a batch of
 * events exactly once by id, and no call it should not get.
 */
#include "e2e_suite.h"

#include "webhook_call.h"
#include "whreceiver.h"

#define HOOK_PATH   "/hooks"
#define BATCH_USERS 20

static e2e_env env;
static bool up;
static whreceiver *rc;
static PGconn *db;
static char endpoint[ID_UUID_SIZE];

static bool alive(void *arg)
{
    return e2e_all_alive(arg);
}

START_TEST(test_stack_starts_with_herald_webhooks)
{
    e2e_up(&env, "e2e_webhooks");
    e2e_add_webhooks(&env);
    up = true;
    db = PQconnectdb(env.db_url);
    ck_assert_msg(PQstatus(db) == CONNECTION_OK, "%s", PQerrorMessage(db));
    rc = whreceiver_start();
    ck_assert_ptr_nonnull(rc);

    /* The endpoint, registered as a service would: the secret comes back once. */
    char body[256];
    snprintf(body, sizeof body, "{\"url\":\"http://127.0.0.1:%d" HOOK_PATH "\"}",
             whreceiver_port(rc));
    json_t *j = NULL;
    ck_assert_int_eq(e2e_api(&env, "POST", "/v1/webhooks", body, &j), 201);
    const char *id = json_string_value(json_object_get(j, "id"));
    const char *secret = json_string_value(json_object_get(j, "secret"));
    ck_assert_msg(id != NULL && secret != NULL, "POST /v1/webhooks: no id or secret");
    snprintf(endpoint, sizeof endpoint, "%s", id);
    whreceiver_path(rc, 0, HOOK_PATH, secret);
    json_decref(j);

    e2e_put_user(&env, "wh-all", "wh-all@e2e.test", "+15550103001", "wh-all-token");
    e2e_put_user(&env, "wh-bounce", "wh-bounce@e2e.test", NULL, NULL);
    e2e_put_users(&env, "whb", BATCH_USERS);
    e2e_put_templates(&env, "order.shipped");
}
END_TEST

/*
 * Waits (bounded) until the receiver has the call of every status change
 * in delivery_history that makes a webhook, each with its type, and no
 * other; asserts it, and that every signature verified.  Returns how many.
 */
static int expect_exactly(long timeout_ms)
{
    int64_t deadline = timeutil_monotonic_ms() + timeout_ms;
    int want = 0, missing = 0, have = 0;
    char missing_row[32] = "", mistyped[160] = "";
    for (int pass = 0; pass < 100000; pass++) {
        PGresult *res = PQexec(db, "SELECT id, status FROM delivery_history ORDER BY id");
        ck_assert_int_eq(PQresultStatus(res), PGRES_TUPLES_OK);
        want = missing = 0;
        mistyped[0] = '\0';
        for (int i = 0; i < PQntuples(res); i++) {
            const char *type = webhook_type_of_status(PQgetvalue(res, i, 1));
            if (type == NULL)
                continue;
            want++;
            char id[ID_UUID_SIZE], got[64];
            ck_assert_int_eq(webhook_call_id("delivery_history",
                                             strtoll(PQgetvalue(res, i, 0), NULL, 10), endpoint,
                                             id),
                             0);
            if (!whreceiver_has(rc, 0, id, got, sizeof got)) {
                if (missing++ == 0)
                    snprintf(missing_row, sizeof missing_row, "%s", PQgetvalue(res, i, 0));
            } else if (strcmp(got, type) != 0) {
                snprintf(mistyped, sizeof mistyped, "history row %s (%s) arrived as %s",
                         PQgetvalue(res, i, 0), type, got);
            }
        }
        PQclear(res);
        have = whreceiver_ids(rc, 0, NULL);
        if ((missing == 0 && have == want) || have > want || mistyped[0] != '\0' ||
            timeutil_monotonic_ms() > deadline || !e2e_all_alive(&env))
            break;
        testsupport_sleep_ms(200);
    }
    ck_assert_msg(mistyped[0] == '\0', "%s", mistyped);
    ck_assert_msg(missing == 0, "%d of %d status changes never arrived (first: history row %s)",
                  missing, want, missing_row);
    ck_assert_msg(have == want, "the receiver has %d distinct call ids, expected %d", have, want);
    ck_assert_int_eq(whreceiver_bad_signatures(rc, 0), 0);
    return want;
}

/* Waits (bounded) for the call of the one history row of the event's delivery on channel with
 * status, and asserts its type. */
static void expect_reported(const char *event_id, const char *channel, const char *status)
{
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT id FROM delivery_history WHERE event_id = '%s' AND channel = '%s'"
             " AND status = '%s'",
             event_id, channel, status);
    PGresult *res = PQexec(db, sql);
    ck_assert_int_eq(PQresultStatus(res), PGRES_TUPLES_OK);
    ck_assert_msg(PQntuples(res) == 1, "event %s: %d %s rows on %s", event_id, PQntuples(res),
                  status, channel);
    char id[ID_UUID_SIZE], got[64] = "";
    ck_assert_int_eq(
        webhook_call_id("delivery_history", strtoll(PQgetvalue(res, 0, 0), NULL, 10), endpoint, id),
        0);
    PQclear(res);
    int64_t deadline = timeutil_monotonic_ms() + E2E_PHASE_MS;
    while (!whreceiver_has(rc, 0, id, got, sizeof got) && timeutil_monotonic_ms() < deadline &&
           e2e_all_alive(&env))
        testsupport_sleep_ms(100);
    ck_assert_msg(got[0] != '\0', "event %s: the %s of its %s never arrived", event_id, status,
                  channel);
    ck_assert_str_eq(got, webhook_type_of_status(status));
}

static void publish(const char *user, char *id)
{
    char body[256];
    snprintf(body, sizeof body,
             "{\"type\":\"order.shipped\",\"user_id\":\"%s\",\"data\":{\"n\":1}}", user);
    e2e_publish(&env, body, id);
}

START_TEST(test_each_delivered_notification_is_reported_sent_once)
{
    ck_assert_msg(up, "the stack did not start");
    char id[ID_UUID_SIZE];
    publish("wh-all", id);
    json_t *doc = e2e_wait_event(&env, id, 3, E2E_PHASE_MS);
    ck_assert_msg(doc != NULL && e2e_count_deliveries(doc, NULL, "sent") == 3,
                  "event %s is not sent on email, SMS and push", id);
    json_decref(doc);
    expect_reported(id, "email", "sent");
    expect_reported(id, "sms", "sent");
    expect_reported(id, "push", "sent");
    ck_assert_int_eq(expect_exactly(E2E_PHASE_MS), 3);
}
END_TEST

START_TEST(test_a_550_at_rcpt_is_reported_bounced_then_suppressed)
{
    ck_assert_msg(up, "the stack did not start");
    e2e_control(&env, E2E_SMTP, "{\"fail_status\":550,\"fail_count\":1,\"fail_stage\":\"rcpt\"}");
    char id[ID_UUID_SIZE], next[ID_UUID_SIZE];
    publish("wh-bounce", id);
    json_decref(e2e_wait_status(&env, id, "email", "bounced", 1, E2E_PHASE_MS));
    expect_reported(id, "email", "bounced");
    /* The address is suppressed now: the next email to it is not sent. */
    publish("wh-bounce", next);
    json_decref(e2e_wait_status(&env, next, "email", "suppressed", 1, E2E_PHASE_MS));
    expect_reported(next, "email", "suppressed");
    (void)expect_exactly(E2E_PHASE_MS);
}
END_TEST

START_TEST(test_a_batch_arrives_once_through_an_outage_and_a_kill)
{
    ck_assert_msg(up, "the stack did not start");
    int n = e2e_env_count("HERALD_E2E_WEBHOOK_EVENTS", 200, 5000);
    char(*ids)[ID_UUID_SIZE] = calloc((size_t)n, ID_UUID_SIZE);
    ck_assert_ptr_nonnull(ids);
    int half = n / 2;

    /* The receiver down (503) while the first half is delivered. */
    int posts0 = 0;
    (void)whreceiver_ids(rc, 0, &posts0);
    whreceiver_set_mode(rc, 0, WHRECEIVER_503);
    (void)e2e_publish_events(&env, "order.shipped", "whb", BATCH_USERS, 0, half, ids, E2E_PHASE_MS);
    int posts = posts0;
    int64_t deadline = timeutil_monotonic_ms() + E2E_PHASE_MS;
    while (posts < posts0 + 50 && timeutil_monotonic_ms() < deadline && e2e_all_alive(&env)) {
        testsupport_sleep_ms(100);
        (void)whreceiver_ids(rc, 0, &posts);
    }
    ck_assert_msg(posts >= posts0 + 50, "only %d calls tried during the outage", posts - posts0);

    /* Up again, and herald-webhooks killed while it catches up. */
    int have0 = whreceiver_ids(rc, 0, NULL);
    whreceiver_set_mode(rc, 0, WHRECEIVER_OK);
    ck_assert_int_gt(whreceiver_wait(rc, 0, have0 + 1, E2E_PHASE_MS, alive, &env), have0);
    e2e_kill(&env, E2E_WEBHOOKS);
    int at_kill = whreceiver_ids(rc, 0, NULL);
    (void)e2e_publish_events(&env, "order.shipped", "whb", BATCH_USERS, half, n - half, ids,
                             E2E_PHASE_MS);
    e2e_restart(&env, E2E_WEBHOOKS);

    int unsent = e2e_first_unsent(&env, n, ids, timeutil_monotonic_ms() + E2E_PHASE_MS);
    ck_assert_msg(unsent < 0, "event %d of the batch is not sent on its three channels", unsent);
    free(ids);
    /* Every status change so far (earlier cases' too), each once. */
    int want = expect_exactly(E2E_PHASE_MS);
    ck_assert_int_ge(want, 3 * n);
    int total = 0;
    (void)whreceiver_ids(rc, 0, &total);
    printf("e2e_webhooks: %d status changes, %d distinct ids (%d at the kill), %d requests\n", want,
           whreceiver_ids(rc, 0, NULL), at_kill, total);
}
END_TEST

START_TEST(test_every_daemon_exits_0_on_sigterm)
{
    PQfinish(db);
    db = NULL;
    e2e_expect_clean_stop(&env, up);
    whreceiver_stop(rc);
    rc = NULL;
}
END_TEST

static const test_case_entry cases[] = {
    TEST_ENTRY(test_stack_starts_with_herald_webhooks),
    TEST_ENTRY(test_each_delivered_notification_is_reported_sent_once),
    TEST_ENTRY(test_a_550_at_rcpt_is_reported_bounced_then_suppressed),
    TEST_ENTRY(test_a_batch_arrives_once_through_an_outage_and_a_kill),
    TEST_ENTRY(test_every_daemon_exits_0_on_sigterm),
};

E2E_MAIN("e2e_webhooks", cases, env)
