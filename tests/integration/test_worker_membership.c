/*
 * herald-worker as a member of its consumer group: with
 * HERALD_KAFKA_GROUP_INSTANCE_ID (a static member) a worker restarted after
 * SIGKILL takes its partitions back at once, well inside a 45 s session;
 * without one the restart waits out the killed worker's session; and a
 * second live worker with the same id fences the first, which exits with a
 * message saying so.
 */
#include "worker_harness.h"

#define SESSION_STATIC "HERALD_KAFKA_SESSION_TIMEOUT_MS=45000"

/* Whether p's log has marker. */
static bool log_has(const wh_proc *p, const char *marker)
{
    char *s = testsupport_read_file(p->log, NULL);
    bool has = s != NULL && strstr(s, marker) != NULL;
    free(s);
    return has;
}

/* Waits (bounded) until the group gave the worker its 6 partitions (3 deliveries, 3 retry). */
static void wait_assigned(wh_proc *p, long timeout_ms)
{
    int64_t deadline = timeutil_monotonic_ms() + timeout_ms;
    for (int i = 0; i < 1000 && timeutil_monotonic_ms() < deadline; i++) {
        if (log_has(p, "] assigned 6 partition"))
            return;
        ck_assert_msg(waitpid(p->pid, NULL, WNOHANG) == 0, "%s exited", p->log);
        testsupport_sleep_ms(50);
    }
    wh_dump_log(p);
    ck_abort_msg("%s was given no partitions within %ld ms", p->log, timeout_ms);
}

/* Sends one delivery and returns how long, from `since`, until n are sent (-1: not within
 * timeout_ms). */
static int64_t send_and_time(wh_env *e, const char *user, long n, int64_t since, long timeout_ms)
{
    wh_produce_delivery(e, user, "+14155550100", NULL, "hello", NULL);
    wh_flush(e);
    long sent =
        wh_wait_count(e, n, timeout_ms, "SELECT count(*) FROM deliveries WHERE status='sent'");
    return sent == n ? timeutil_monotonic_ms() - since : -1;
}

/* A test's set-up: an SMS environment and its provider, whose URL goes into url. */
static void setup_sms(wh_env *e, wh_proc *prov, char *url, size_t urllen)
{
    wh_setup(e, "sms");
    wh_start_http_provider(e, prov, "provider", NULL);
    snprintf(url, urllen, "HERALD_SMS_URL=http://127.0.0.1:%d/sms", prov->port);
}

/* The setting of the one instance id a case's workers share (unique: from the topic prefix). */
static void instance_id(const wh_env *e, char *out, size_t outlen)
{
    snprintf(out, outlen, "HERALD_KAFKA_GROUP_INSTANCE_ID=%sworker-sms-1", e->prefix);
}

/* Starts a first worker with env, and checks it delivers. */
static void start_first(wh_env *e, wh_proc *w, const char *const *env)
{
    wh_start_worker(e, w, "worker1", env);
    wait_assigned(w, 30000);
    ck_assert_msg(send_and_time(e, "u-1", 1, timeutil_monotonic_ms(), 30000) >= 0,
                  "the first worker did not deliver");
}

START_TEST(test_restarted_static_member_takes_its_partitions_back_at_once)
{
    wh_env e;
    wh_proc prov = {0}, w1 = {0}, w2 = {0};
    char url[128], id[96];
    setup_sms(&e, &prov, url, sizeof url);
    instance_id(&e, id, sizeof id);
    const char *env[] = {"HERALD_SMS_PROVIDER=http", url, id, SESSION_STATIC, NULL};
    start_first(&e, &w1, env);
    ck_assert(log_has(&w1, "static member"));

    wh_stop(&w1, SIGKILL, 5000);
    int64_t restarted = timeutil_monotonic_ms();
    wh_start_worker(&e, &w2, "worker2", env);
    /* A new member would wait out the 45 s session of the killed one. */
    int64_t took = send_and_time(&e, "u-2", 2, restarted, 15000);
    if (took < 0)
        wh_dump_log(&w2);
    ck_assert_msg(took >= 0, "not delivered within 15 s of the restart (session 45 s)");
    fprintf(stderr, "static member: delivered %lld ms after the restart\n", (long long)took);
    wh_stop(&w2, SIGTERM, 15000);
    wh_teardown(&e);
}
END_TEST

START_TEST(test_restarted_dynamic_member_waits_out_the_session)
{
    wh_env e;
    wh_proc prov = {0}, w1 = {0}, w2 = {0};
    char url[128];
    setup_sms(&e, &prov, url, sizeof url);
    /* 12 s: heartbeats every 3 s, so the session runs out 9-12 s after the kill. */
    const char *env[] = {"HERALD_SMS_PROVIDER=http", url, "HERALD_KAFKA_SESSION_TIMEOUT_MS=12s",
                         NULL};
    start_first(&e, &w1, env);
    ck_assert(!log_has(&w1, "static member"));

    wh_stop(&w1, SIGKILL, 5000);
    int64_t killed = timeutil_monotonic_ms();
    wh_start_worker(&e, &w2, "worker2", env);
    int64_t took = send_and_time(&e, "u-2", 2, killed, 40000);
    if (took < 0)
        wh_dump_log(&w2);
    ck_assert_msg(took >= 0, "not delivered within 40 s of the kill");
    fprintf(stderr, "dynamic member: delivered %lld ms after the kill\n", (long long)took);
    ck_assert_msg(took >= 8000, "delivered %lld ms after the kill: before the session ran out",
                  (long long)took);
    wh_stop(&w2, SIGTERM, 15000);
    wh_teardown(&e);
}
END_TEST

START_TEST(test_second_live_process_with_the_same_id_fences_the_first)
{
    wh_env e;
    wh_proc prov = {0}, w1 = {0}, w2 = {0};
    char url[128], id[96];
    setup_sms(&e, &prov, url, sizeof url);
    instance_id(&e, id, sizeof id);
    const char *env[] = {"HERALD_SMS_PROVIDER=http", url, id, SESSION_STATIC, NULL};
    start_first(&e, &w1, env);

    wh_start_worker(&e, &w2, "worker2", env);
    /* The first one learns at its next heartbeat (every 3 s) and stops. */
    int status = -1;
    int64_t deadline = timeutil_monotonic_ms() + 20000;
    for (int i = 0; i < 1000 && timeutil_monotonic_ms() < deadline; i++) {
        if (waitpid(w1.pid, &status, WNOHANG) == w1.pid)
            break;
        status = -1;
        testsupport_sleep_ms(50);
    }
    if (status == -1)
        wh_dump_log(&w1);
    ck_assert_msg(status != -1, "the fenced worker still runs after 20 s");
    w1.pid = 0; /* reaped: not one of the children that must stay alive */
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 1, "status %d", status);
    ck_assert(log_has(&w1, "FENCED_INSTANCE_ID"));
    ck_assert(log_has(&w1, "HERALD_KAFKA_GROUP_INSTANCE_ID"));
    /* The newer one owns the partitions and delivers. */
    ck_assert_msg(send_and_time(&e, "u-2", 2, timeutil_monotonic_ms(), 15000) >= 0,
                  "the newer worker did not deliver");
    wh_stop(&w2, SIGTERM, 15000);
    wh_teardown(&e);
}
END_TEST

static const test_case_entry cases[] = {
    TEST_ENTRY(test_restarted_static_member_takes_its_partitions_back_at_once),
    TEST_ENTRY(test_restarted_dynamic_member_waits_out_the_session),
    TEST_ENTRY(test_second_live_process_with_the_same_id_fences_the_first),
};

TEST_MAIN("worker_membership", cases)
