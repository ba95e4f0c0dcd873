/*
 * Integration tests of herald-webhooks against the real broker and
 * database: delivery_history rows written as the worker writes them, a
 * receiver in this process (tests/support/whreceiver) that checks every
 * Herald-Signature and records call ids, and the daemon
 * as a child process that is stopped, killed and started again.
 */
#include "worker_harness.h"

#include "headers.h"
#include "topics.h"
#include "webhook_call.h"
#include "whreceiver.h"

#define SECRET_A "receiver-secret-aaaaaaaa"
#define SECRET_B "receiver-secret-bbbbbbbb"

/* ------------------------------------------------------------- harness */

typedef struct wk_env {
    wh_env e;
    whreceiver *rc;
    long key_a, key_b;
} wk_env;

static void wk_setup(wk_env *w)
{
    wh_env *e = &w->e;
    char err[512];
    memset(w, 0, sizeof *w);
    e->brokers = test_require_env("HERALD_KAFKA_BROKERS");
    (void)test_require_env("HERALD_DATABASE_URL");
    unsigned char r[4];
    ck_assert_int_eq(id_random_bytes(r, sizeof r), 0);
    char hex[9];
    id_hex(r, sizeof r, hex);
    snprintf(e->prefix, sizeof e->prefix, "t%s.", hex);
    snprintf(e->dir, sizeof e->dir, "/tmp/herald-test-webhooks-%s", hex);
    ck_assert_int_eq(mkdir(e->dir, 0700), 0);
    e->db_url_owned = testsupport_db_create("webhooks", 1);
    ck_assert_msg(e->db_url_owned != NULL, "cannot create the scratch database");
    snprintf(e->db_url, sizeof e->db_url, "%s", e->db_url_owned);
    e->db = PQconnectdb(e->db_url);
    ck_assert_msg(PQstatus(e->db) == CONNECTION_OK, "%s", PQerrorMessage(e->db));

    snprintf(e->topics[0], sizeof e->topics[0], "%s" TOPICS_WEBHOOKS, e->prefix);
    snprintf(e->topics[1], sizeof e->topics[1], "%s" TOPICS_WEBHOOKS_RETRY, e->prefix);
    snprintf(e->topics[2], sizeof e->topics[2], "%s" TOPICS_DLQ, e->prefix);
    e->ntopics = 3;
    kafka_topic_spec specs[3];
    kafka_topic_result results[3];
    for (int i = 0; i < 3; i++)
        specs[i] = (kafka_topic_spec){e->topics[i], 3, 1, NULL, 0};
    ck_assert_msg(kafka_topics_create(e->brokers, NULL, specs, 3, 30000, results, err,
                                      sizeof err) == KAFKA_OK,
                  "create topics: %s", err);

    w->key_a =
        testsupport_sql_long(e->db, "INSERT INTO api_keys (name, scope, key_hash, key_prefix)"
                                    " VALUES ('a', 'publish', sha256('a'), 'a') RETURNING id");
    w->key_b =
        testsupport_sql_long(e->db, "INSERT INTO api_keys (name, scope, key_hash, key_prefix)"
                                    " VALUES ('b', 'publish', sha256('b'), 'b') RETURNING id");
    w->rc = whreceiver_start();
    ck_assert_ptr_nonnull(w->rc);
}

static void wk_teardown(wk_env *w)
{
    wh_teardown(&w->e);
    whreceiver_stop(w->rc);
    w->rc = NULL;
}

/* Registers an endpoint of key for path (index into the receiver's paths). */
static void wk_endpoint(wk_env *w, const char *id, long key, int path, const char *url_path,
                        const char *secret)
{
    whreceiver_path(w->rc, path, url_path, secret);
    testsupport_sql(w->e.db,
                    "INSERT INTO webhook_endpoints (id, api_key_id, url, secret, event_types)"
                    " VALUES ('%s', %ld, 'http://127.0.0.1:%d%s', '%s',"
                    " ARRAY['delivery.sent', 'delivery.delivered', 'delivery.undelivered',"
                    "       'delivery.bounced', 'delivery.complained', 'delivery.suppressed'])",
                    id, key, whreceiver_port(w->rc), url_path, secret);
}

/* An event of key and n status changes of its delivery, as the dispatcher and worker write. */
static void wk_history(wk_env *w, long key, int n)
{
    static const char *const statuses[] = {"sent",       "delivered",   "bounced",   "failed",
                                           "complained", "undelivered", "suppressed"};
    char ev[ID_UUID_SIZE];
    ck_assert_int_eq(id_uuid_v4(ev), 0);
    testsupport_sql(w->e.db,
                    "INSERT INTO events (event_id, type, user_id, priority, created_at, api_key_id)"
                    " VALUES ('%s', 'order.shipped', 'u1', 'normal', now(), %ld)",
                    ev, key);
    testsupport_sql(w->e.db,
                    "INSERT INTO deliveries (idempotency_key, event_id, user_id, channel, address,"
                    " status) VALUES ('k-%s', '%s', 'u1', 'email', 'u1@example.com', 'sent')",
                    ev, ev);
    for (int i = 0; i < n; i++)
        testsupport_sql(w->e.db,
                        "INSERT INTO delivery_history (idempotency_key, event_id, user_id, channel,"
                        " address, status, reason, provider, source)"
                        " VALUES ('k-%s', '%s', 'u1', 'email', 'u1@example.com', '%s', 'r%d',"
                        " 'smtp', 'worker')",
                        ev, ev, statuses[i % 7], i);
}

static void wk_start(wk_env *w, wh_proc *p, const char *log, const char *const *extra)
{
    char url[700], prefix[64], brokers[300];
    snprintf(url, sizeof url, "HERALD_DATABASE_URL=%s", w->e.db_url);
    snprintf(prefix, sizeof prefix, "HERALD_TOPIC_PREFIX=%s", w->e.prefix);
    snprintf(brokers, sizeof brokers, "HERALD_KAFKA_BROKERS=%s", w->e.brokers);
    const char *env[32] = {url, prefix, brokers, "HERALD_METRICS_ADDR=127.0.0.1:0",
                           "HERALD_WEBHOOKS_TIMEOUT=500ms", "HERALD_WEBHOOKS_RETRY_BASE=100ms",
                           "HERALD_WEBHOOKS_RETRY_MAX=400ms", "HERALD_WEBHOOKS_FEED_IDLE=50ms",
                           /* a killed member's partitions move on within seconds */
                           "HERALD_KAFKA_OPTS=session.timeout.ms=6000 heartbeat.interval.ms=500"};
    int n = 9;
    for (int i = 0; extra && extra[i] && n < 31; i++)
        env[n++] = extra[i];
    env[n] = NULL;
    const char *argv[] = {"herald-webhooks", NULL};
    wh_spawn(&w->e, p, log, argv, env, false);
}

/* Whether path received the call of every history row of key's events, and nothing else. */
static void wk_assert_exactly(wk_env *w, long key, const char *endpoint, int path)
{
    PGresult *res = PQexec(w->e.db, "SELECT h.id, ev.api_key_id FROM delivery_history h"
                                    " JOIN events ev USING (event_id) ORDER BY h.id");
    ck_assert_int_eq(PQresultStatus(res), PGRES_TUPLES_OK);
    int want = 0;
    for (int i = 0; i < PQntuples(res); i++) {
        if (strtol(PQgetvalue(res, i, 1), NULL, 10) != key)
            continue;
        char id[ID_UUID_SIZE];
        ck_assert_int_eq(webhook_call_id("delivery_history",
                                         strtoll(PQgetvalue(res, i, 0), NULL, 10), endpoint, id),
                         0);
        bool seen = whreceiver_has(w->rc, path, id, NULL, 0);
        ck_assert_msg(seen, "history row %s never reached %s", PQgetvalue(res, i, 0), endpoint);
        want++;
    }
    PQclear(res);
    ck_assert_int_eq(whreceiver_ids(w->rc, path, NULL), want);
    ck_assert_int_eq(whreceiver_bad_signatures(w->rc, path), 0);
}

#define EP_A "aaaaaaaa-0000-4000-8000-000000000001"
#define EP_B "bbbbbbbb-0000-4000-8000-000000000002"
#define EP_C "cccccccc-0000-4000-8000-000000000003"

/* ---------------------------------------------------------------- cases */

START_TEST(test_each_status_change_arrives_once_through_outages_and_a_kill)
{
    wk_env w;
    wk_setup(&w);
    wh_proc d1 = {0}, d2 = {0};
    wk_endpoint(&w, EP_A, w.key_a, 0, "/a", SECRET_A);
    wk_endpoint(&w, EP_B, w.key_b, 1, "/b", SECRET_B);
    wk_start(&w, &d1, "webhooks1", NULL);

    /* Up: every status change of key a's events reaches a's endpoint, none b's. */
    wk_history(&w, w.key_a, 10);
    wk_history(&w, w.key_b, 2);
    ck_assert_int_eq(whreceiver_wait(w.rc, 0, 10, 30000, wh_alive, &w.e), 10);
    ck_assert_int_eq(whreceiver_wait(w.rc, 1, 2, 30000, wh_alive, &w.e), 2);

    /* 503 for a while, then no answer in time, then the daemon killed mid-run. */
    whreceiver_set_mode(w.rc, 0, WHRECEIVER_503);
    wk_history(&w, w.key_a, 10);
    ck_assert_int_ge(wh_wait_count(&w.e, 5, 30000,
                                   "SELECT count(*) FROM webhook_attempts WHERE http_status = 503"),
                     5);
    whreceiver_set_mode(w.rc, 0, WHRECEIVER_HANG);
    wk_history(&w, w.key_a, 5);
    ck_assert_int_ge(wh_wait_count(&w.e, 2, 30000,
                                   "SELECT count(*) FROM webhook_attempts"
                                   " WHERE http_status IS NULL AND outcome = 'retry'"),
                     2);
    wh_stop(&d1, SIGKILL, 5000);
    wk_history(&w, w.key_a, 5);
    whreceiver_set_mode(w.rc, 0, WHRECEIVER_OK);
    wk_start(&w, &d2, "webhooks2", NULL);

    ck_assert_int_eq(whreceiver_wait(w.rc, 0, 30, 60000, wh_alive, &w.e), 30);
    wk_assert_exactly(&w, w.key_a, EP_A, 0);
    wk_assert_exactly(&w, w.key_b, EP_B, 1);
    /* The attempt log shows what the receiver answered. */
    ck_assert_int_gt(wh_db_long(&w.e, "SELECT count(*) FROM webhook_attempts"
                                      " WHERE http_status = 204 AND outcome = 'ok'"),
                     0);
    ck_assert_int_gt(wh_db_long(&w.e, "SELECT count(*) FROM webhook_attempts"
                                      " WHERE http_status IS NULL AND error IS NOT NULL"),
                     0);

    /* A replay of the whole window sends the same ids again: nothing new arrives. */
    int posts_before;
    whreceiver_ids(w.rc, 0, &posts_before);
    testsupport_sql(w.e.db, "INSERT INTO webhook_replays (endpoint_id, from_at, to_at)"
                            " VALUES ('" EP_A "', now() - interval '1 hour', now())");
    ck_assert_int_eq(
        wh_wait_count(&w.e, 1, 30000,
                      "SELECT count(*) FROM webhook_replays WHERE done_at IS NOT NULL"),
        1);
    int posts = 0;
    for (int i = 0; i < 200 && posts < posts_before + 30; i++) {
        whreceiver_ids(w.rc, 0, &posts);
        testsupport_sleep_ms(50);
    }
    ck_assert_int_ge(posts, posts_before + 30);
    wk_assert_exactly(&w, w.key_a, EP_A, 0);
    /* SIGTERM: the stages of a graceful stop, and exit 0. */
    ck_assert_int_eq(wh_stop(&d2, SIGTERM, 15000), 0);
    char *log = testsupport_read_file(d2.log, NULL);
    ck_assert_ptr_nonnull(log);
    ck_assert_ptr_nonnull(strstr(log, "shutdown 5/5"));
    free(log);
    wk_teardown(&w);
}
END_TEST

typedef struct dlq_seen {
    int n, disabled, exhausted;
} dlq_seen;

static void count_dead(rd_kafka_message_t *m, void *ctx)
{
    dlq_seen *s = ctx;
    char reason[64] = "";
    kafka_header_get(m, HDR_DLQ_REASON, reason, sizeof reason);
    s->n++;
    s->disabled += strcmp(reason, "endpoint_disabled") == 0;
    s->exhausted += strcmp(reason, "max_attempts") == 0;
}

START_TEST(test_failing_endpoint_is_disabled_and_its_calls_dead_lettered)
{
    wk_env w;
    wk_setup(&w);
    wh_proc d = {0};
    wk_endpoint(&w, EP_C, w.key_a, 2, "/c", SECRET_A);
    whreceiver_set_mode(w.rc, 2, WHRECEIVER_500);
    const char *env[] = {"HERALD_WEBHOOKS_MAX_ATTEMPTS=3", "HERALD_WEBHOOKS_DISABLE_AFTER=4",
                         "HERALD_WEBHOOKS_DISABLE_MIN_SPAN=0", NULL};
    wk_start(&w, &d, "webhooks", env);
    wk_history(&w, w.key_a, 3);

    /* Disabled after the fourth failure in a row; all three calls end as dead letters. */
    ck_assert_int_eq(wh_wait_count(&w.e, 1, 30000,
                                   "SELECT count(*) FROM webhook_endpoints WHERE NOT enabled"
                                   " AND disabled_reason LIKE '4 attempts in a row failed%%'"),
                     1);
    dlq_seen seen = {0};
    ck_assert_int_eq(wh_read_topic(&w.e, w.e.topics[2], 3, 30000, count_dead, &seen), 3);
    ck_assert_int_eq(seen.disabled + seen.exhausted, 3);
    ck_assert_int_gt(seen.disabled, 0);
    ck_assert_int_eq(wh_db_long(&w.e, "SELECT count(*) FROM webhook_attempts WHERE"
                                      " http_status = 500"),
                     4);
    int port = wh_port_in_log(&d, "metrics on port ");
    char path[64];
    snprintf(path, sizeof path, "/metrics");
    char url[128], *text = NULL;
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    CURL *c = curl_easy_init();
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, wh_collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &text);
    ck_assert_int_eq(curl_easy_perform(c), CURLE_OK);
    curl_easy_cleanup(c);
    ck_assert_ptr_nonnull(strstr(text, "herald_webhooks_endpoints_disabled_total 1"));
    free(text);

    /* A disabled endpoint gets nothing more: the feeder passes its rows by. */
    int posts_before;
    whreceiver_ids(w.rc, 2, &posts_before);
    wk_history(&w, w.key_a, 3);
    long last = wh_db_long(&w.e, "SELECT max(id) FROM delivery_history");
    char sql[160];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM webhook_cursor WHERE history_id = %ld", last);
    ck_assert_int_eq(testsupport_wait_count(w.e.db, sql, 1, 30000, wh_alive, &w.e), 1);
    int posts_after;
    whreceiver_ids(w.rc, 2, &posts_after);
    ck_assert_int_eq(posts_after, posts_before);
    ck_assert_int_eq(wh_db_long(&w.e, "SELECT count(*) FROM webhook_calls"), 3);
    wk_teardown(&w);
}
END_TEST

/* Advisory locks in this test's database (other suites may hold theirs). */
#define THIS_DB_ADVISORY                                                                           \
    "locktype = 'advisory' AND database = (SELECT oid FROM pg_database"                            \
    " WHERE datname = current_database())"

START_TEST(test_only_one_feeder_feeds_and_another_takes_over)
{
    wk_env w;
    wk_setup(&w);
    wh_proc d1 = {0}, d2 = {0};
    wk_endpoint(&w, EP_A, w.key_a, 0, "/a", SECRET_A);
    wk_start(&w, &d1, "webhooks1", NULL);
    wk_start(&w, &d2, "webhooks2", NULL);
    wk_history(&w, w.key_a, 5);
    ck_assert_int_eq(whreceiver_wait(w.rc, 0, 5, 30000, wh_alive, &w.e), 5);
    /* One session holds the lock; the other waits. */
    ck_assert_int_eq(wh_db_long(&w.e, "SELECT count(*) FROM pg_locks WHERE " THIS_DB_ADVISORY), 1);
    char *holder = testsupport_sql_text(w.e.db, "SELECT a.application_name FROM pg_locks l"
                                                " JOIN pg_stat_activity a USING (pid)"
                                                " WHERE l." THIS_DB_ADVISORY);
    ck_assert_str_eq(holder, "herald-webhooks feeder");
    free(holder);
    long pid = wh_db_long(&w.e, "SELECT pid FROM pg_locks WHERE " THIS_DB_ADVISORY);
    /* Whichever process holds it, killing both one at a time leaves a feeder. */
    testsupport_sql(w.e.db, "SELECT pg_terminate_backend(%ld)", pid);
    wh_stop(&d1, SIGKILL, 5000);
    wk_history(&w, w.key_a, 5);
    ck_assert_int_eq(whreceiver_wait(w.rc, 0, 10, 30000, wh_alive, &w.e), 10);
    wk_assert_exactly(&w, w.key_a, EP_A, 0);
    wk_teardown(&w);
}
END_TEST

START_TEST(test_an_endpoint_that_does_not_answer_holds_up_no_other)
{
    wk_env w;
    wk_setup(&w);
    wh_proc d = {0};
    wk_endpoint(&w, EP_A, w.key_a, 0, "/a", SECRET_A);
    wk_endpoint(&w, EP_B, w.key_a, 1, "/slow", SECRET_B);
    whreceiver_set_mode(w.rc, 1, WHRECEIVER_HANG);
    wk_start(&w, &d, "webhooks", NULL);
    wk_history(&w, w.key_a, 20);
    /* Every call to /a arrives while the slow endpoint is on its first few
     * timeouts: its calls wait behind its one request in flight, or for
     * their retries, and take no other endpoint's turn. */
    ck_assert_int_eq(whreceiver_wait(w.rc, 0, 20, 30000, wh_alive, &w.e), 20);
    long slow =
        wh_db_long(&w.e, "SELECT count(*) FROM webhook_attempts WHERE endpoint_id = '" EP_B "'");
    ck_assert_msg(slow < 10, "%ld attempts at the slow endpoint before the other got its 20", slow);
    whreceiver_set_mode(w.rc, 1, WHRECEIVER_OK);
    ck_assert_int_eq(whreceiver_wait(w.rc, 1, 20, 60000, wh_alive, &w.e), 20);
    wk_assert_exactly(&w, w.key_a, EP_A, 0);
    wk_assert_exactly(&w, w.key_a, EP_B, 1);
    wk_teardown(&w);
}
END_TEST

/* inbox.seen and inbox.read when the user first sees, then reads, an in-app message. */
START_TEST(test_inbox_seen_and_read_reach_a_subscribed_endpoint)
{
    wk_env w;
    wk_setup(&w);
    wh_proc d = {0};
    whreceiver_path(w.rc, 0, "/inbox", SECRET_A);
    testsupport_sql(w.e.db,
                    "INSERT INTO webhook_endpoints (id, api_key_id, url, secret, event_types)"
                    " VALUES ('" EP_A "', %ld, 'http://127.0.0.1:%d/inbox', '" SECRET_A "',"
                    " ARRAY['inbox.read', 'inbox.seen'])",
                    w.key_a, whreceiver_port(w.rc));
    wk_start(&w, &d, "webhooks", NULL);
    char ev[ID_UUID_SIZE], msg[ID_UUID_SIZE];
    ck_assert_int_eq(id_uuid_v4(ev), 0);
    ck_assert_int_eq(id_uuid_v4(msg), 0);
    testsupport_sql(w.e.db, "INSERT INTO users (user_id) VALUES ('u1')");
    testsupport_sql(w.e.db,
                    "INSERT INTO events (event_id, type, user_id, priority, created_at, api_key_id)"
                    " VALUES ('%s', 'order.shipped', 'u1', 'normal', now(), %ld)",
                    ev, w.key_a);
    testsupport_sql(w.e.db,
                    "INSERT INTO inbox_messages (message_id, user_id, delivery_key, event_id,"
                    " event_type, body, seq) VALUES ('%s', 'u1', 'k-%s', '%s', 'order.shipped',"
                    " 'Shipped', 1)",
                    msg, ev, ev);
    testsupport_sql(w.e.db, "UPDATE inbox_messages SET seen_at = now() WHERE message_id = '%s'",
                    msg);
    testsupport_sql(w.e.db, "UPDATE inbox_messages SET read_at = now() WHERE message_id = '%s'",
                    msg);
    /* Archived, or read again: nothing new. */
    testsupport_sql(w.e.db,
                    "UPDATE inbox_messages SET archived_at = now(), read_at = read_at"
                    " WHERE message_id = '%s'",
                    msg);
    ck_assert_int_eq(whreceiver_wait(w.rc, 0, 2, 30000, wh_alive, &w.e), 2);
    PGresult *res = PQexec(w.e.db, "SELECT id, change FROM webhook_inbox_history ORDER BY id");
    ck_assert_int_eq(PQntuples(res), 2);
    ck_assert_str_eq(PQgetvalue(res, 0, 1), "seen");
    ck_assert_str_eq(PQgetvalue(res, 1, 1), "read");
    for (int i = 0; i < 2; i++) {
        char id[ID_UUID_SIZE];
        ck_assert_int_eq(webhook_call_id("webhook_inbox_history",
                                         strtoll(PQgetvalue(res, i, 0), NULL, 10), EP_A, id),
                         0);
        ck_assert(whreceiver_has(w.rc, 0, id, NULL, 0));
    }
    PQclear(res);
    ck_assert_int_eq(wh_db_long(&w.e, "SELECT count(*) FROM webhook_calls"
                                      " WHERE type IN ('inbox.seen', 'inbox.read')"),
                     2);
    ck_assert_int_eq(whreceiver_bad_signatures(w.rc, 0), 0);
    wk_teardown(&w);
}
END_TEST

/* Attempts and recorded calls past HERALD_WEBHOOKS_RETENTION go; newer ones stay. */
START_TEST(test_attempts_and_calls_past_retention_are_deleted)
{
    wk_env w;
    wk_setup(&w);
    wh_proc d = {0};
    wk_endpoint(&w, EP_A, w.key_a, 0, "/a", SECRET_A);
    testsupport_sql(w.e.db, "INSERT INTO webhook_attempts (call_id, endpoint_id, type, attempt,"
                            " latency_ms, outcome, at) SELECT gen_random_uuid(), '" EP_A "',"
                            " 'delivery.sent', 1, 5, 'ok', now() - n * interval '1 hour'"
                            " FROM generate_series(0, 3) n");
    testsupport_sql(w.e.db,
                    "INSERT INTO webhook_calls (id, endpoint_id, source, history_id, type, body,"
                    " created_at) SELECT gen_random_uuid(), '" EP_A "', 'delivery_history', n,"
                    " 'delivery.sent', '{}', now() - n * interval '1 hour'"
                    " FROM generate_series(0, 3) n");
    const char *env[] = {"HERALD_WEBHOOKS_RETENTION=90m", NULL};
    wk_start(&w, &d, "webhooks", env);
    /* Waits for none of the old rows to be left. */
    ck_assert_int_eq(wh_wait_count(&w.e, 1, 30000,
                                   "SELECT (count(*) = 0)::int FROM webhook_attempts"
                                   " WHERE at < now() - interval '90 minutes'"),
                     1);
    ck_assert_int_eq(wh_wait_count(&w.e, 1, 30000,
                                   "SELECT (count(*) = 0)::int FROM webhook_calls"
                                   " WHERE created_at < now() - interval '90 minutes'"),
                     1);
    ck_assert_int_eq(wh_db_long(&w.e, "SELECT count(*) FROM webhook_attempts"), 2);
    ck_assert_int_eq(wh_db_long(&w.e, "SELECT count(*) FROM webhook_calls"), 2);
    wk_teardown(&w);
}
END_TEST

static const test_case_entry cases[] = {
    TEST_ENTRY(test_each_status_change_arrives_once_through_outages_and_a_kill),
    TEST_ENTRY(test_failing_endpoint_is_disabled_and_its_calls_dead_lettered),
    TEST_ENTRY(test_only_one_feeder_feeds_and_another_takes_over),
    TEST_ENTRY(test_an_endpoint_that_does_not_answer_holds_up_no_other),
    TEST_ENTRY(test_inbox_seen_and_read_reach_a_subscribed_endpoint),
    TEST_ENTRY(test_attempts_and_calls_past_retention_are_deleted),
};

TEST_MAIN_TIMEOUT("webhooks", cases, 240)
