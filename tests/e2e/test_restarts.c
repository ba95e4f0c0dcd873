/*
 * End to end across restarts of what Herald depends on and of its own
 * instances:
 *
 *   1. the PostgreSQL server itself is restarted twice while events flow (a
 *      fast shutdown, a few seconds with no server at all, a start): every
 *      daemon waits and reconnects, the gateway refuses what it cannot take
 *      with 503 and takes it when the client retries (events carry
 *      idempotency keys, as a careful client's do: a retry never publishes
 *      twice, and is never answered with the id of an event never sent);
 *   2. the Kafka broker is killed (SIGKILL) while events flow and started
 *      again by dev/services some seconds later: with no broker at all in
 *      between, the gateway refuses with 503 and every daemon waits and
 *      carries on when it is back (the dispatcher's transactions time out
 *      and are redone);
 *   3. with two instances of the dispatcher and of each worker in their
 *      consumer groups, one of each is killed (SIGKILL) mid-run and stays
 *      dead: the survivors take over its partitions (and, once its leases
 *      end, the deliveries it had claimed).
 *
 * Each case checks, from the providers' own records, that every expected
 * notification arrived (loss = 0), with one idempotency key each, and
 * counts re-sends.  Prints `<case>: loss=N resends=N`.
 *
 * The server restarted is the one HERALD_DATABASE_URL points at, found by
 * its data directory (SHOW data_directory), with tests/e2e/pg-restart; it
 * must be one the test may restart: dev/services' cluster.  Likewise the
 * broker killed is dev/services' one, which must be what
 * HERALD_KAFKA_BROKERS names.
 */
#include "e2e_suite.h"

static e2e_env env;
static bool up;

#define TYPE           "e2e.restarts"
#define PG_PREFIX      "pgrestart-"
#define PG_EVENTS      1200
#define PG_USERS       200
#define PG_BATCH       60
#define PG_RESTART_AT  3 /* batches: a restart after batches 3 and 11 */
#define PG_RESTART2_AT 11
#define PG_DOWN_S      "3"
#define KF_PREFIX      "kafkadown-"
#define KF_EVENTS      600
#define KF_USERS       200
#define KF_BATCH       50
#define KF_KILL_AT     3   /* batches */
#define KF_DOWN_S      "8" /* seconds with no broker, before dev/services starts it */
#define RB_PREFIX      "rebalance-"
#define RB_EVENTS      1000
#define RB_USERS       200
#define RB_BATCH       50
#define RB_KILL_AT     4 /* batches */
#define BATCH_PAUSE_MS 150

/* ------------------------------------------------------------ PostgreSQL */

/* The first column of the first row of sql on the server of the test. */
static char *pg_value(const char *sql)
{
    PGconn *c = PQconnectdb(env.db_url);
    ck_assert_msg(PQstatus(c) == CONNECTION_OK, "%s", PQerrorMessage(c));
    char *v = testsupport_sql_text(c, "%s", sql);
    PQfinish(c);
    return v;
}

/* The path of tests/e2e/pg-restart in the source tree. */
static void pg_restart_script(char *out, size_t outlen)
{
    const char *src = getenv("HERALD_SOURCE_DIR");
    if (src != NULL && *src != '\0') {
        snprintf(out, outlen, "%s/tests/e2e/pg-restart", src);
    } else {
        /* This file's own directory: CMake compiles it by absolute path. */
        const char *slash = strrchr(__FILE__, '/');
        snprintf(out, outlen, "%.*s/pg-restart", slash ? (int)(slash - __FILE__) : 1,
                 slash ? __FILE__ : ".");
    }
    ck_assert_msg(access(out, R_OK) == 0, "%s: not found (set HERALD_SOURCE_DIR)", out);
}

/*
 * Starts a restart of the server in the background (the script stops it,
 * waits PG_DOWN_S seconds, starts it); returns the script's pid.  Its output
 * goes to <scratch dir>/pg-restart-<nth>.log.
 */
static pid_t pg_restart_begin(const char *data_dir, int nth)
{
    char script[600];
    pg_restart_script(script, sizeof script);
    e2e_proc p = {.name = "pg-restart"};
    snprintf(p.log, sizeof p.log, "%s/pg-restart-%d.log", env.dir, nth);
    p.argv[0] = "/bin/bash";
    p.argv[1] = script;
    p.argv[2] = (char *)data_dir;
    p.argv[3] = PG_DOWN_S;
    e2e_spawn(&p, false);
    return p.pid;
}

/* Whether the nth restart finished; fails the test when it did not succeed. */
static bool pg_restart_done(pid_t pid, int nth)
{
    int st;
    pid_t r = waitpid(pid, &st, WNOHANG);
    if (r == 0)
        return false;
    if (r != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        char log[300];
        snprintf(log, sizeof log, "%s/pg-restart-%d.log", env.dir, nth);
        char *s = testsupport_read_file(log, NULL);
        fprintf(stderr, "---- %s\n%s----\n", log, s ? s : "");
        free(s);
        ck_abort_msg("tests/e2e/pg-restart failed (status 0x%x)", r == pid ? st : -1);
    }
    return true;
}

/* Waits (bounded) for the nth restart to finish; returns the ms since began. */
static int64_t pg_restart_wait(pid_t pid, int nth, int64_t began)
{
    for (int i = 0; i < 1200; i++) {
        if (pg_restart_done(pid, nth))
            return timeutil_monotonic_ms() - began;
        testsupport_sleep_ms(100);
    }
    /* pg-restart starts the server again when it is told to stop. */
    kill(pid, SIGTERM);
    (void)testsupport_wait(pid, 60000);
    ck_abort_msg("PostgreSQL restart %d took over 2 minutes", nth);
    return 0;
}

/* ------------------------------------------------------------ Kafka */

/*
 * The pid of dev/services' broker, from `dev/services status`; fails the
 * test unless that broker is the one HERALD_KAFKA_BROKERS names.
 */
static pid_t kafka_broker_pid(char *services, size_t len)
{
    char out[1024], errout[4096];
    const char *src = test_require_env("HERALD_SOURCE_DIR");
    snprintf(services, len, "%s/dev/services", src);
    char *argv[] = {services, "status", NULL};
    (void)testsupport_run(argv, NULL, out, sizeof out, errout, sizeof errout, 60000);
    long pid = 0;
    char addr[128] = "";
    const char *line = strstr(out, "kafka: running (pid ");
    ck_assert_msg(line != NULL &&
                      sscanf(line, "kafka: running (pid %ld, %127[^)])", &pid, addr) == 2,
                  "dev/services runs no Kafka broker: %s%s", out, errout);
    ck_assert_msg(strcmp(addr, env.brokers) == 0,
                  "HERALD_KAFKA_BROKERS (%s) is not dev/services' broker (%s): this case kills "
                  "and restarts it",
                  env.brokers, addr);
    return (pid_t)pid;
}

/* ------------------------------------------------------------ cases */

START_TEST(test_whole_stack_starts)
{
    e2e_up(&env, "e2e_restarts");
    up = true;
    e2e_put_templates_by_id(&env, TYPE);
    e2e_put_users(&env, PG_PREFIX, PG_USERS);
    e2e_put_users(&env, KF_PREFIX, KF_USERS);
    e2e_put_users(&env, RB_PREFIX, RB_USERS);

    /* One event end to end first: on a fresh broker the consumer groups take
     * seconds to form, and the failures below must find every consumer at work. */
    static char warm[1][ID_UUID_SIZE];
    e2e_put_users(&env, "warmup-", 1);
    int64_t t0 = timeutil_monotonic_ms();
    (void)e2e_publish_events(&env, TYPE, "warmup-", 1, 0, 1, warm, E2E_PHASE_MS);
    (void)e2e_expect_delivered(&env, "warmup", "warmup-", 1, warm, t0, E2E_PHASE_MS);
}
END_TEST

START_TEST(test_postgres_server_restarted_mid_run_loses_nothing)
{
    ck_assert_msg(up, "the stack did not start");
    static char ids[PG_EVENTS][ID_UUID_SIZE];
    char *data_dir = pg_value("SHOW data_directory");
    char *started0 = pg_value("SELECT pg_postmaster_start_time()");
    fprintf(stderr, "e2e: restarting the PostgreSQL server of %s (up since %s)\n", data_dir,
            started0);

    int64_t t0 = timeutil_monotonic_ms(), began = 0, restart_ms = 0;
    pid_t restart = 0;
    int restarts = 0;
    long refused = 0;
    for (int b = 0; b * PG_BATCH < PG_EVENTS; b++) {
        refused += e2e_publish_events(&env, TYPE, PG_PREFIX, PG_USERS, b * PG_BATCH, PG_BATCH, ids,
                                      E2E_PHASE_MS);
        if (restart > 0 && pg_restart_done(restart, restarts)) {
            restart_ms += timeutil_monotonic_ms() - began;
            restart = 0;
        }
        if (b == PG_RESTART_AT || b == PG_RESTART2_AT) {
            if (restart > 0) {
                restart_ms += pg_restart_wait(restart, restarts, began);
                restart = 0;
            }
            fprintf(stderr, "e2e: after %d events: restarting PostgreSQL\n", (b + 1) * PG_BATCH);
            began = timeutil_monotonic_ms();
            restart = pg_restart_begin(data_dir, ++restarts);
        }
        testsupport_sleep_ms(BATCH_PAUSE_MS);
    }
    if (restart > 0)
        restart_ms += pg_restart_wait(restart, restarts, began);
    char *started1 = pg_value("SELECT pg_postmaster_start_time()");
    fprintf(stderr,
            "e2e: %d events published in %lld ms across %d PostgreSQL restarts (%lld ms in "
            "them); %ld requests refused for a moment; server up since %s\n",
            PG_EVENTS, (long long)(timeutil_monotonic_ms() - t0), restarts, (long long)restart_ms,
            refused, started1);
    ck_assert_msg(strcmp(started0, started1) != 0, "the PostgreSQL server was not restarted");
    free(started0);
    free(started1);
    free(data_dir);

    (void)e2e_expect_delivered(&env, "postgres_restart", PG_PREFIX, PG_EVENTS, ids, t0,
                               E2E_PHASE_MS);
    ck_assert_msg(e2e_all_alive(&env), "a daemon died across the PostgreSQL restarts");
}
END_TEST

START_TEST(test_kafka_broker_killed_and_restarted_mid_run_loses_nothing)
{
    ck_assert_msg(up, "the stack did not start");
    static char ids[KF_EVENTS][ID_UUID_SIZE];
    char services[600];
    pid_t broker = kafka_broker_pid(services, sizeof services);

    int64_t t0 = timeutil_monotonic_ms(), killed_at = 0;
    long refused = 0;
    pid_t restart = 0;
    for (int b = 0; b * KF_BATCH < KF_EVENTS; b++) {
        refused += e2e_publish_events(&env, TYPE, KF_PREFIX, KF_USERS, b * KF_BATCH, KF_BATCH, ids,
                                      E2E_PHASE_MS);
        if (b == KF_KILL_AT) {
            fprintf(stderr, "e2e: after %d events: killing the Kafka broker (pid %d)\n",
                    (b + 1) * KF_BATCH, (int)broker);
            ck_assert_int_eq(kill(broker, SIGKILL), 0);
            killed_at = timeutil_monotonic_ms();
            e2e_proc p = {.name = "kafka-restart"};
            snprintf(p.log, sizeof p.log, "%s/kafka-restart.log", env.dir);
            p.argv[0] = "/bin/sh";
            p.argv[1] = "-c";
            p.argv[2] = "sleep \"$0\" && exec \"$1\" up";
            p.argv[3] = KF_DOWN_S;
            p.argv[4] = services;
            e2e_spawn(&p, false);
            restart = p.pid;
        }
        testsupport_sleep_ms(BATCH_PAUSE_MS);
    }
    int rc = testsupport_wait(restart, 180000);
    if (rc != 0) {
        char log[400];
        snprintf(log, sizeof log, "%s/kafka-restart.log", env.dir);
        char *text = testsupport_read_file(log, NULL);
        fprintf(stderr, "---- %s\n%s----\n", log, text ? text : "");
        free(text);
    }
    ck_assert_msg(rc == 0, "dev/services up did not start the broker again (exit %d)", rc);
    ck_assert_msg(kafka_broker_pid(services, sizeof services) != broker,
                  "the broker was not restarted");
    fprintf(stderr,
            "e2e: %d events published in %lld ms; the broker was back %lld ms after it was "
            "killed; %ld requests refused for a moment\n",
            KF_EVENTS, (long long)(timeutil_monotonic_ms() - t0),
            (long long)(timeutil_monotonic_ms() - killed_at), refused);
    (void)e2e_expect_delivered(&env, "kafka_restart", KF_PREFIX, KF_EVENTS, ids, t0, E2E_PHASE_MS);
    ck_assert_msg(e2e_all_alive(&env), "a daemon died while the broker was down");
}
END_TEST

START_TEST(test_killing_one_of_two_instances_mid_run_loses_nothing)
{
    ck_assert_msg(up, "the stack did not start");
    static char ids[RB_EVENTS][ID_UUID_SIZE];
    static const int seconds[4] = {E2E_DISPATCHER_2, E2E_EMAIL_2, E2E_SMS_2, E2E_PUSH_2};
    /* One of each pair dies: first and second instances alike. */
    static const int victims[4] = {E2E_DISPATCHER, E2E_EMAIL, E2E_SMS_2, E2E_PUSH_2};
    for (int i = 0; i < 4; i++)
        e2e_add_instance(&env, seconds[i]);
    for (int i = 0; i < 4; i++)
        e2e_wait_assigned(&env, seconds[i], 60000);
    /* Slow providers keep requests in flight when a worker dies. */
    e2e_control(&env, E2E_HTTP, "{\"latency_ms\":100,\"latency_jitter_ms\":100}");
    e2e_control(&env, E2E_SMTP, "{\"latency_ms\":10}");

    int64_t t0 = timeutil_monotonic_ms();
    for (int b = 0; b * RB_BATCH < RB_EVENTS; b++) {
        (void)e2e_publish_events(&env, TYPE, RB_PREFIX, RB_USERS, b * RB_BATCH, RB_BATCH, ids,
                                 E2E_PHASE_MS);
        if (b == RB_KILL_AT) {
            for (int i = 0; i < 4; i++) {
                fprintf(stderr, "e2e: after %d events: killing %s\n", (b + 1) * RB_BATCH,
                        env.procs[victims[i]].name);
                e2e_kill(&env, victims[i]);
            }
        }
        testsupport_sleep_ms(BATCH_PAUSE_MS);
    }
    fprintf(stderr, "e2e: %d events published in %lld ms\n", RB_EVENTS,
            (long long)(timeutil_monotonic_ms() - t0));
    (void)e2e_expect_delivered(&env, "instance_killed", RB_PREFIX, RB_EVENTS, ids, t0,
                               E2E_PHASE_MS);
    e2e_control(&env, E2E_HTTP, "{\"latency_ms\":0,\"latency_jitter_ms\":0}");
    e2e_control(&env, E2E_SMTP, "{\"latency_ms\":0}");
    ck_assert_msg(e2e_all_alive(&env), "a surviving instance died");
}
END_TEST

START_TEST(test_every_daemon_exits_0_on_sigterm)
{
    e2e_expect_clean_stop(&env, up);
}
END_TEST

static const test_case_entry cases[] = {
    TEST_ENTRY(test_whole_stack_starts),
    TEST_ENTRY(test_postgres_server_restarted_mid_run_loses_nothing),
    TEST_ENTRY(test_kafka_broker_killed_and_restarted_mid_run_loses_nothing),
    TEST_ENTRY(test_killing_one_of_two_instances_mid_run_loses_nothing),
    TEST_ENTRY(test_every_daemon_exits_0_on_sigterm),
};

E2E_MAIN("e2e_restarts", cases, env)
