/*
 * End to end under crashes: while events stream in through the HTTP API,
 * the dispatcher and each of the three workers are killed (SIGKILL, as a
 * crash or an OOM kill would) and restarted, round after round.  Nothing may
 * be lost: from the providers' own records, every expected notification
 * arrives.  Re-sends are allowed by at-least-once delivery, must carry the
 * key of the first send, and are counted.  Prints `crash: loss=N resends=N`.
 *
 * Size, from the environment:
 *   HERALD_E2E_CRASH_EVENTS  events published (default 2000; the nightly
 *                            run of issue #7 uses 10000)
 *   HERALD_E2E_CRASH_ROUNDS  kill/restart rounds (default one per 1000
 *                            events, at least 3)
 * The events are published at a pace that gives each round about 10 s.  In
 * a round each of the four daemons is killed once, a little after the
 * previous one and in an order that rotates from round to round, and
 * restarted a second later.  A kill comes 0-400 ms after a batch was
 * accepted, so that it finds the batch at varying stages, and only once the
 * daemon has partitions (a restarted consumer gets them only after the
 * group has timed out its killed predecessor): every crash hits a daemon at
 * work, sometimes while others are down too.
 */
#include "e2e_suite.h"

static e2e_env env;
static bool up;

#define TYPE           "e2e.crash"
#define USER_PREFIX    "crash-"
#define DEFAULT_EVENTS 2000
#define MAX_EVENTS     40000 /* the providers keep 100000 records each */
#define MAX_USERS      500
#define BATCH          50
#define ROUND_MS       10000L /* publishing time per round */
#define DOWN_MS        1000L  /* how long a killed daemon stays down */
#define KILL_PHASE_MS  400    /* a kill comes up to this long after a batch */

START_TEST(test_whole_stack_starts)
{
    e2e_up(&env, "e2e_failure");
    up = true;
}
END_TEST

/* One of the daemons killed in every round. */
typedef struct victim {
    int which;
    int kills;
    int64_t down_since; /* when killed; 0 while it runs */
} victim;

/* The batch from which kill number k (0-based) of victim v is due. */
static int kill_due(int v, int k, int rounds, int batches)
{
    int spacing = batches / rounds / 8 > 0 ? batches / rounds / 8 : 1;
    return (int)((long)batches * k / rounds) + 1 + ((v + k) % 4) * spacing;
}

static void kill_victim(victim *v, int published)
{
    fprintf(stderr, "e2e: after %d events: killing %s (kill %d)\n", published,
            env.procs[v->which].name, v->kills + 1);
    e2e_kill(&env, v->which);
    v->kills++;
    v->down_since = timeutil_monotonic_ms();
}

static void restart_victim(victim *v, int published)
{
    fprintf(stderr, "e2e: after %d events: restarting %s\n", published, env.procs[v->which].name);
    e2e_restart(&env, v->which);
    v->down_since = 0;
}

START_TEST(test_killing_every_daemon_repeatedly_mid_run_loses_nothing)
{
    ck_assert_msg(up, "the stack did not start");
    int events = e2e_env_count("HERALD_E2E_CRASH_EVENTS", DEFAULT_EVENTS, MAX_EVENTS);
    int rounds =
        e2e_env_count("HERALD_E2E_CRASH_ROUNDS", events / 1000 > 3 ? events / 1000 : 3, 1000);
    int batches = (events + BATCH - 1) / BATCH;
    int users = events < MAX_USERS ? events : MAX_USERS;
    long interval_ms = ROUND_MS * rounds / batches;
    victim vs[4] = {{E2E_DISPATCHER, 0, 0}, {E2E_EMAIL, 0, 0}, {E2E_SMS, 0, 0}, {E2E_PUSH, 0, 0}};
    char(*ids)[ID_UUID_SIZE] = calloc((size_t)events, ID_UUID_SIZE);
    ck_assert_ptr_nonnull(ids);
    fprintf(stderr,
            "e2e: %d events to %d users in %d batches, one every %ld ms; %d rounds of kills\n",
            events, users, batches, interval_ms, rounds);

    e2e_put_templates_by_id(&env, TYPE);
    e2e_put_users(&env, USER_PREFIX, users);
    /* Slow providers keep requests in flight when a worker dies. */
    e2e_control(&env, E2E_HTTP, "{\"latency_ms\":100,\"latency_jitter_ms\":100}");
    e2e_control(&env, E2E_SMTP, "{\"latency_ms\":10}");

    int64_t t0 = timeutil_monotonic_ms();
    long refused = 0;
    int published = 0;
    for (int b = 0; b < batches; b++) {
        int n = events - published < BATCH ? events - published : BATCH;
        refused +=
            e2e_publish_events(&env, TYPE, USER_PREFIX, users, published, n, ids, E2E_PHASE_MS);
        published += n;
        /* After a batch, so that the daemons have work. */
        for (int v = 0; v < 4; v++) {
            victim *x = &vs[v];
            if (x->down_since != 0) {
                if (timeutil_monotonic_ms() - x->down_since >= DOWN_MS)
                    restart_victim(x, published);
            } else if (x->kills < rounds && b >= kill_due(v, x->kills, rounds, batches) &&
                       e2e_assigned(&env, x->which)) {
                /* At a varying moment of the batch's way through the
                 * stages: provider requests take 100-200 ms. */
                testsupport_sleep_ms((long)((v * rounds + x->kills) * 137 % KILL_PHASE_MS));
                kill_victim(x, published);
            }
        }
        int64_t next = t0 + (int64_t)(b + 1) * interval_ms;
        if (next > timeutil_monotonic_ms())
            testsupport_sleep_ms((long)(next - timeutil_monotonic_ms()));
    }
    int64_t published_ms = timeutil_monotonic_ms() - t0;
    /* Kills the schedule could not place before the last batch (a daemon
     * slow to get its partitions back), then the restarts still due. */
    int late = 0;
    for (int v = 0; v < 4; v++) {
        victim *x = &vs[v];
        for (int k = 0; k < 2 * rounds && x->kills < rounds; k++) {
            if (x->down_since != 0) {
                testsupport_sleep_ms(DOWN_MS);
                restart_victim(x, published);
            }
            e2e_wait_assigned(&env, x->which, E2E_PHASE_MS);
            kill_victim(x, published);
            late++;
        }
        if (x->down_since != 0) {
            testsupport_sleep_ms(DOWN_MS);
            restart_victim(x, published);
        }
    }
    int kills = 0;
    for (int v = 0; v < 4; v++) {
        ck_assert_int_eq(vs[v].kills, rounds);
        kills += vs[v].kills;
    }
    fprintf(stderr,
            "e2e: %d events published in %lld ms (%ld requests refused for a moment); %d "
            "daemons killed, %d of them after the last batch\n",
            events, (long long)published_ms, refused, kills, late);

    /* Draining a large run takes a while: bounded, scaled with its size.
     * Up to the API reporting every event sent on its three channels. */
    long wait_ms = (long)events * 30 > E2E_PHASE_MS ? (long)events * 30 : E2E_PHASE_MS;
    e2e_outcome o = e2e_expect_delivered(&env, "crash", USER_PREFIX, events, ids, t0, wait_ms);
    fprintf(stderr, "e2e: crash run of %d events, %d kills: loss=%ld resends=%ld, %lld ms\n",
            events, kills, o.loss, o.resends, (long long)(timeutil_monotonic_ms() - t0));
    free(ids);
}
END_TEST

START_TEST(test_every_daemon_exits_0_on_sigterm)
{
    e2e_expect_clean_stop(&env, up);
}
END_TEST

static const test_case_entry cases[] = {
    TEST_ENTRY(test_whole_stack_starts),
    TEST_ENTRY(test_killing_every_daemon_repeatedly_mid_run_loses_nothing),
    TEST_ENTRY(test_every_daemon_exits_0_on_sigterm),
};

E2E_MAIN("e2e_failure", cases, env)
