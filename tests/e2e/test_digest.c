/*
 * End to end for digests under dispatcher crashes: two dispatchers in one
 * group, a fixed 2 s digest window for comment.created on email, and
 * events streaming in through the HTTP API while the dispatchers are
 * killed (SIGKILL) and restarted in turn, so that windows are opening,
 * closing and being sent while their partitions move between the two.  A
 * kill comes once the victim has partitions, and as soon as some window is
 * closing (due, not yet marked sent) if one is within a second, so that
 * crashes land while digests are on their way out.
 *
 * From what the SMTP server received: every window with members produced
 * exactly one email (none missing, none twice), each naming its window and
 * the count of its members in the database; no comment was also emailed on
 * its own; and the counts add up to the events published.  From the
 * database: every event is in exactly one window.  Prints the kills and
 * the totals.
 *
 * Size, from the environment:
 *   HERALD_E2E_DIGEST_EVENTS  events published (default 2000, about 25 s
 *                             at WAVE events every WAVE_MS)
 *   HERALD_E2E_DIGEST_KILLS   dispatcher kills (default one per 300
 *                             events, at least 6), alternating between
 *                             the two instances
 */
#include "e2e_suite.h"

static e2e_env env;
static bool up;

#define TYPE           "comment.created"
#define DIGEST_TYPE    "comment.digest"
#define USER_PREFIX    "digest-"
#define USERS          40
#define SINGLE_PREFIX  E2E_SUBJECT_PREFIX /* a comment emailed on its own */
#define DIGEST_PREFIX  "Digest "
#define DEFAULT_EVENTS 2000
#define MAX_EVENTS     40000 /* the SMTP server keeps 100000 records */
#define WAVE           USERS /* one comment per user and wave */
#define WAVE_MS        500L
#define DOWN_MS        1000L /* how long a killed dispatcher stays down */
#define KILL_PHASE_MS  1000L /* a kill waits up to this long for a window closing */
#define STABLE_MS      3000L /* no new email for this long: the count is final */

static bool all_alive(void *arg)
{
    return e2e_all_alive(arg);
}

START_TEST(test_stack_with_two_dispatchers_and_a_digest_rule)
{
    e2e_up(&env, "e2e_digest");
    up = true;
    e2e_put_users(&env, USER_PREFIX, USERS);
    e2e_put_template(&env, TYPE, "email", SINGLE_PREFIX "{{event.id}}", "Comment {{data.n}}", NULL);
    /* A digest's event id is its window's: the subject names both. */
    e2e_put_template(&env, DIGEST_TYPE, "email", DIGEST_PREFIX "{{event.id}} of {{data.count}}",
                     "{{data.count}} comments, the first {{data.events.0.data.n}}", NULL);
    /* The operator's way: the rule through the gateway's admin API. */
    e2e_api_expect(&env, 200, "PUT", "/v1/digest-rules/comments",
                   "{\"event_type\":\"" TYPE "\",\"channels\":[\"email\"],"
                   "\"window\":\"fixed\",\"window_ms\":2000,\"template\":\"" DIGEST_TYPE "\"}");
    /* The rule must hold from the first event on: a restart reads it for
     * certain, where a notification could come after the first batch. */
    ck_assert_int_eq(e2e_stop(&env.procs[E2E_DISPATCHER], SIGTERM, 30000), 0);
    e2e_restart(&env, E2E_DISPATCHER);
    e2e_add_instance(&env, E2E_DISPATCHER_2);
    e2e_wait_assigned(&env, E2E_DISPATCHER, E2E_PHASE_MS);
    e2e_wait_assigned(&env, E2E_DISPATCHER_2, E2E_PHASE_MS);
}
END_TEST

/* One of the two dispatchers. */
typedef struct victim {
    int which;
    int kills;
    int64_t down_since; /* when killed; 0 while it runs */
} victim;

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

/*
 * Waits up to phase_ms for a window that is closing (due, and not yet
 * marked sent), so that a kill may find a closer mid-way; returns whether
 * one was.
 */
static bool wait_closing(PGconn *db, long phase_ms)
{
    int64_t deadline = timeutil_monotonic_ms() + phase_ms;
    for (int i = 0; i < 10000 && timeutil_monotonic_ms() < deadline; i++) {
        if (testsupport_sql_long(db, "SELECT count(*) FROM digest_windows "
                                     "WHERE status = 'closing'") > 0)
            return true;
        testsupport_sleep_ms(2);
    }
    return false;
}

/* A JSON object the database builds with json_object_agg (caller decrefs). */
static json_t *pg_object(PGconn *db, const char *sql)
{
    char *text = testsupport_sql_text(db, "SELECT coalesce((%s), '{}'::json)", sql);
    json_error_t jerr;
    json_t *j = json_loads(text, 0, &jerr);
    ck_assert_msg(json_is_object(j), "%s: %s", sql, jerr.text);
    free(text);
    return j;
}

/*
 * The SMTP server's records read into window id -> [emails, count],
 * recipient checked against the window's user; comments emailed on their
 * own are counted in *singles.
 */
static json_t *digest_emails(const json_t *windows, long *records, long *singles)
{
    json_t *got = json_object();
    json_t *all = e2e_records(&env, E2E_SMTP), *r;
    size_t i, slen = strlen(SINGLE_PREFIX), dlen = strlen(DIGEST_PREFIX);
    *records = (long)json_array_size(all);
    *singles = 0;
    json_array_foreach(all, i, r)
    {
        const char *subject = json_string_value(json_object_get(r, "subject"));
        const char *rcpt = json_string_value(json_array_get(json_object_get(r, "rcpt"), 0));
        ck_assert_msg(subject != NULL && rcpt != NULL, "an email without subject or recipient");
        if (strncmp(subject, SINGLE_PREFIX, slen) == 0) {
            if ((*singles)++ < 5)
                fprintf(stderr, "e2e: a comment emailed on its own: %s to %s\n", subject, rcpt);
            continue;
        }
        char window[ID_UUID_SIZE];
        int count = -1;
        ck_assert_msg(strncmp(subject, DIGEST_PREFIX, dlen) == 0 &&
                          sscanf(subject + dlen, "%36s of %d", window, &count) == 2,
                      "an email that is neither a comment nor a digest: %s", subject);
        json_t *w = json_object_get(windows, window);
        ck_assert_msg(w != NULL, "digest %s (%d) of no window with members", window, count);
        const char *user = json_string_value(json_array_get(w, 1));
        ck_assert_msg(strncmp(rcpt, user, strlen(user)) == 0 && rcpt[strlen(user)] == '@',
                      "digest %s went to %s, its window is %s's", window, rcpt, user);
        json_t *seen = json_object_get(got, window);
        if (seen == NULL) {
            json_object_set_new(got, window, json_pack("[i,i]", 1, count));
        } else {
            fprintf(stderr, "e2e: digest %s emailed again (count %d, first %d)\n", window, count,
                    (int)json_integer_value(json_array_get(seen, 1)));
            json_array_set_new(seen, 0,
                               json_integer(json_integer_value(json_array_get(seen, 0)) + 1));
        }
    }
    json_decref(all);
    return got;
}

START_TEST(test_every_window_is_emailed_once_while_dispatchers_are_killed)
{
    ck_assert_msg(up, "the stack did not start");
    int events = e2e_env_count("HERALD_E2E_DIGEST_EVENTS", DEFAULT_EVENTS, MAX_EVENTS);
    int kills = e2e_env_count("HERALD_E2E_DIGEST_KILLS", events / 300 > 6 ? events / 300 : 6, 1000);
    int waves = (events + WAVE - 1) / WAVE;
    victim vs[2] = {{E2E_DISPATCHER, 0, 0}, {E2E_DISPATCHER_2, 0, 0}};
    char(*ids)[ID_UUID_SIZE] = calloc((size_t)events, ID_UUID_SIZE);
    ck_assert_ptr_nonnull(ids);
    fprintf(stderr, "e2e: %d events to %d users in %d waves, one every %ld ms; %d kills\n", events,
            USERS, waves, WAVE_MS, kills);

    PGconn *db = PQconnectdb(env.db_url);
    ck_assert_msg(PQstatus(db) == CONNECTION_OK, "%s", PQerrorMessage(db));
    int64_t t0 = timeutil_monotonic_ms();
    int published = 0, done = 0; /* kills so far, both instances */
    int mid_close = 0;           /* of them while a window was closing */
    long refused = 0;
    for (int b = 0; b < waves; b++) {
        int n = events - published < WAVE ? events - published : WAVE;
        refused +=
            e2e_publish_events(&env, TYPE, USER_PREFIX, USERS, published, n, ids, E2E_PHASE_MS);
        published += n;
        for (int v = 0; v < 2; v++)
            if (vs[v].down_since != 0 && timeutil_monotonic_ms() - vs[v].down_since >= DOWN_MS)
                restart_victim(&vs[v], published);
        /* Kill k is due from wave waves * (k + 1) / (kills + 1), on the
         * instance k % 2, once that one has partitions to lose. */
        victim *x = &vs[done % 2];
        if (done < kills && b >= (int)((long)waves * (done + 1) / (kills + 1)) &&
            x->down_since == 0 && e2e_assigned(&env, x->which)) {
            mid_close += wait_closing(db, KILL_PHASE_MS);
            kill_victim(x, published);
            done++;
        }
        int64_t next = t0 + (int64_t)(b + 1) * WAVE_MS;
        if (next > timeutil_monotonic_ms())
            testsupport_sleep_ms((long)(next - timeutil_monotonic_ms()));
    }
    int64_t published_ms = timeutil_monotonic_ms() - t0;
    /* Kills the schedule could not place (an instance slow to get its
     * partitions back), then the restarts still due. */
    int late = 0;
    for (int k = 0; k < 2 * kills && done < kills; k++) {
        victim *x = &vs[done % 2];
        if (x->down_since != 0) {
            testsupport_sleep_ms(DOWN_MS);
            restart_victim(x, published);
        }
        e2e_wait_assigned(&env, x->which, E2E_PHASE_MS);
        mid_close += wait_closing(db, KILL_PHASE_MS);
        kill_victim(x, published);
        done++;
        late++;
    }
    for (int v = 0; v < 2; v++) {
        if (vs[v].down_since != 0) {
            testsupport_sleep_ms(DOWN_MS);
            restart_victim(&vs[v], published);
        }
    }
    ck_assert_int_eq(done, kills);
    fprintf(stderr,
            "e2e: %d events published in %lld ms (%ld requests refused for a moment); "
            "dispatchers killed %d times (%s %d, %s %d), %d of them after the last wave, %d while "
            "a window was closing\n",
            events, (long long)published_ms, refused, done, env.procs[vs[0].which].name,
            vs[0].kills, env.procs[vs[1].which].name, vs[1].kills, late, mid_close);

    /* Every event taken into a window, then every window sent. */
    long taken = testsupport_wait_count(db, "SELECT count(*) FROM digest_events", events,
                                        E2E_PHASE_MS, all_alive, &env);
    ck_assert_msg(taken >= events, "%ld of %d events in a digest window", taken, events);
    long closed = testsupport_wait_count(
        db,
        "SELECT (count(*) FILTER (WHERE status IN ('open', 'closing')) = 0)::int "
        "FROM digest_windows",
        1, E2E_PHASE_MS, all_alive, &env);
    ck_assert_msg(closed == 1, "digest windows still open or closing after %ld ms", E2E_PHASE_MS);
    int64_t closed_ms = timeutil_monotonic_ms() - t0;

    /* window id -> [members, user, member rows] */
    json_t *windows =
        pg_object(db, "SELECT json_object_agg(w.window_id, json_build_array(w.members, w.user_id, "
                      "(SELECT count(*) FROM digest_events e WHERE e.window_id = w.window_id "
                      "AND e.role = 'member'))) FROM digest_windows w WHERE w.members > 0");
    /* event id -> its digest_events rows */
    json_t *rows = pg_object(db, "SELECT json_object_agg(event_id, n) FROM (SELECT event_id, "
                                 "count(*) AS n FROM digest_events GROUP BY event_id) s");
    long firsts = testsupport_sql_long(db, "SELECT count(*) FROM digest_events "
                                           "WHERE role <> 'member'");
    long empty = testsupport_sql_long(db, "SELECT count(*) FROM digest_windows "
                                          "WHERE status = 'empty'");
    PQfinish(db);

    /* Until the SMTP server has an email per window and nothing more
     * arrives for a while: a re-sent digest would come late. */
    long want = (long)json_object_size(windows), records = 0, singles = 0;
    size_t seen = 0;
    int64_t deadline = timeutil_monotonic_ms() + E2E_PHASE_MS, last = timeutil_monotonic_ms();
    for (int i = 0; i < 100000 && timeutil_monotonic_ms() < deadline; i++) {
        json_decref(e2e_records_since(&env, E2E_SMTP, &seen));
        if ((long)seen != records) {
            records = (long)seen;
            last = timeutil_monotonic_ms();
        } else if (records >= want && timeutil_monotonic_ms() - last >= STABLE_MS) {
            break;
        }
        ck_assert_msg(e2e_all_alive(&env), "a daemon died while the digests went out");
        testsupport_sleep_ms(250);
    }
    json_t *got = digest_emails(windows, &records, &singles);
    /* Digests produced again after a crash, which the worker knew as sent. */
    double skipped = e2e_metric(&env, E2E_EMAIL, "herald_worker_duplicates_skipped_total");

    long missing = 0, twice = 0, wrong = 0, sum = 0, members = 0;
    const char *window;
    json_t *w;
    json_object_foreach(windows, window, w)
    {
        long m = (long)json_integer_value(json_array_get(w, 0));
        long member_rows = (long)json_integer_value(json_array_get(w, 2));
        json_t *g = json_object_get(got, window);
        members += m;
        if (member_rows != m && wrong++ < 5)
            fprintf(stderr, "e2e: window %s: members %ld, but %ld member rows\n", window, m,
                    member_rows);
        if (g == NULL) {
            if (missing++ < 5)
                fprintf(stderr, "e2e: window %s (%ld members) was never emailed\n", window, m);
            continue;
        }
        long times = (long)json_integer_value(json_array_get(g, 0));
        long count = (long)json_integer_value(json_array_get(g, 1));
        twice += times > 1;
        sum += count;
        if (count != m && wrong++ < 5)
            fprintf(stderr, "e2e: window %s: the email says %ld, the window has %ld members\n",
                    window, count, m);
    }
    long unfiled = 0, refiled = 0;
    for (int i = 0; i < events; i++) {
        long n = (long)json_integer_value(json_object_get(rows, ids[i]));
        if (n == 0 && unfiled++ < 5)
            fprintf(stderr, "e2e: event %d (%s) is in no digest window\n", i, ids[i]);
        if (n > 1 && refiled++ < 5)
            fprintf(stderr, "e2e: event %d (%s) is in %ld digest windows\n", i, ids[i], n);
    }
    fprintf(stderr,
            "e2e: digest run: %d events, %d kills; %ld windows with members (%ld empty), "
            "%ld emails: %ld digests counting %ld events, %ld comments on their own; "
            "missing %ld, twice %ld, wrong counts %ld; %.0f deliveries the worker found sent "
            "already; windows all closed %lld ms and emails settled %lld ms after the start\n",
            events, done, want, empty, records, (long)json_object_size(got), sum, singles, missing,
            twice, wrong, skipped, (long long)closed_ms, (long long)(timeutil_monotonic_ms() - t0));
    printf("digest: windows=%ld emails=%ld missing=%ld twice=%ld\n", want, records, missing, twice);

    ck_assert_msg(missing == 0, "%ld of %ld windows were never emailed", missing, want);
    ck_assert_msg(twice == 0, "%ld windows were emailed more than once", twice);
    ck_assert_msg(wrong == 0, "%ld windows have a count that is not their members'", wrong);
    ck_assert_msg(singles == 0, "%ld comments were emailed on their own too", singles);
    ck_assert_msg(firsts == 0, "%ld events were sent at once by a rule without send_first", firsts);
    ck_assert_msg(unfiled == 0 && refiled == 0,
                  "%ld events in no digest window, %ld in more than one", unfiled, refiled);
    ck_assert_msg(taken == events, "%ld digest_events rows for %d events", taken, events);
    ck_assert_msg(members == events, "the windows have %ld members for %d events", members, events);
    ck_assert_msg(sum == events, "the digest emails count %ld events, %d were published", sum,
                  events);
    json_decref(got);
    json_decref(rows);
    json_decref(windows);
    free(ids);
}
END_TEST

START_TEST(test_every_daemon_exits_0_on_sigterm)
{
    e2e_expect_clean_stop(&env, up);
}
END_TEST

static const test_case_entry cases[] = {
    TEST_ENTRY(test_stack_with_two_dispatchers_and_a_digest_rule),
    TEST_ENTRY(test_every_window_is_emailed_once_while_dispatchers_are_killed),
    TEST_ENTRY(test_every_daemon_exits_0_on_sigterm),
};

E2E_MAIN("e2e_digest", cases, env)
