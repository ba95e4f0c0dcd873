/*
 * pg against the real server, in a scratch database of its own: prepared
 * statements run with parameters, committed work is visible to another
 * session and rolled back work is not, a failing statement reports its
 * SQLSTATE and leaves the connection usable, a terminated backend (what a
 * server restart looks like to a client) yields PG_RETRY once and then
 * everything, prepared statements included, works again, and an unreachable
 * server yields PG_DOWN within the configured bound without the password
 * ever being printed.
 */
#include <fcntl.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "pg.h"
#include "testsupport.h"
#include "testutil.h"
#include "timeutil.h"

static const pg_options quick = {
    .connect_timeout_s = 5,
    .max_wait_ms = 10000,
    .backoff_initial_ms = 50,
    .backoff_max_ms = 500,
};

/*
 * Scratch databases are named herald_test_pg_<run>_<random>.  Check ends a
 * failed test's process with _exit(), skipping any cleanup of its own, so
 * the suite's main process drops what its tests left when it exits.
 */
static char run_tag[32];
static pid_t suite_pid;

static void drop_run_databases(void)
{
    const char *url = getenv("HERALD_DATABASE_URL");
    if (getpid() != suite_pid || url == NULL || *url == '\0')
        return;
    PGconn *conn = PQconnectdb(url);
    char pattern[64];
    snprintf(pattern, sizeof(pattern), "herald\\_test\\_%s\\_%%", run_tag);
    const char *params[] = {pattern};
    PGresult *res = PQexecParams(conn, "SELECT datname FROM pg_database WHERE datname LIKE $1", 1,
                                 NULL, params, NULL, NULL, 0);
    for (int i = 0; PQresultStatus(res) == PGRES_TUPLES_OK && i < PQntuples(res); i++) {
        char sql[256];
        snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS \"%s\" WITH (FORCE)",
                 PQgetvalue(res, i, 0));
        PQclear(PQexec(conn, sql));
    }
    PQclear(res);
    PQfinish(conn);
}

__attribute__((constructor)) static void register_cleanup(void)
{
    unsigned v = 0;
    if (getrandom(&v, sizeof(v), 0) != (ssize_t)sizeof(v))
        v = (unsigned)time(NULL) ^ (unsigned)getpid();
    snprintf(run_tag, sizeof(run_tag), "pg_%08x", v);
    suite_pid = getpid();
    atexit(drop_run_databases);
}

/* A scratch database for one test; the test drops it, or the suite does. */
static char *setup_db(void)
{
    test_require_env("HERALD_DATABASE_URL");
    log_init("test_pg", LOG_LEVEL_WARN, LOG_FORMAT_TEXT);
    char *url = testsupport_db_create(run_tag, 0);
    ck_assert_msg(url != NULL, "cannot create a scratch database");
    return url;
}

static pg_conn *open_conn(const char *url)
{
    char err[512];
    pg_conn *c = pg_connect(url, &quick, err, sizeof(err));
    ck_assert_msg(c != NULL, "%s", err);
    return c;
}

static void exec_ok(pg_conn *c, const char *sql)
{
    char err[512];
    pg_status st = pg_exec(c, sql, err, sizeof(err));
    ck_assert_msg(st == PG_OK, "%s: %s (%s)", sql, pg_status_name(st), err);
}

/* The single value of a one-row, one-column query. */
static long query_long(pg_conn *c, const char *sql)
{
    char err[512];
    PGresult *res = NULL;
    pg_status st = pg_query(c, sql, 0, NULL, &res, err, sizeof(err));
    ck_assert_msg(st == PG_OK, "%s: %s", sql, err);
    ck_assert_int_eq(PQntuples(res), 1);
    long v = atol(PQgetvalue(res, 0, 0));
    PQclear(res);
    return v;
}

static int closed_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    socklen_t len = sizeof(a);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

/*
 * Terminates victim's backend from another session and waits until the
 * server has really let it go, so that what follows does not race the kill.
 */
static void terminate_backend(pg_conn *killer, pg_conn *victim)
{
    char pid[16], err[512];
    snprintf(pid, sizeof(pid), "%d", PQbackendPID(pg_raw(victim)));
    const char *params[] = {pid};
    PGresult *res = NULL;
    ck_assert_msg(pg_query(killer, "SELECT pg_terminate_backend($1::int)", 1, params, &res, err,
                           sizeof(err)) == PG_OK,
                  "%s", err);
    ck_assert_str_eq(PQgetvalue(res, 0, 0), "t");
    PQclear(res);
    for (int64_t deadline = timeutil_monotonic_ms() + 10000; timeutil_monotonic_ms() < deadline;
         usleep(20 * 1000)) {
        res = NULL;
        ck_assert(pg_query(killer, "SELECT count(*) FROM pg_stat_activity WHERE pid = $1::int", 1,
                           params, &res, err, sizeof(err)) == PG_OK);
        bool gone = strcmp(PQgetvalue(res, 0, 0), "0") == 0;
        PQclear(res);
        if (gone)
            return;
    }
    ck_abort_msg("backend %s still there after 10 s", pid);
}

/* The backend exits a moment after leaving pg_stat_activity: pg_ok() sees it then. */
static void wait_not_ok(pg_conn *c)
{
    for (int64_t deadline = timeutil_monotonic_ms() + 5000; timeutil_monotonic_ms() < deadline;
         usleep(10 * 1000))
        if (!pg_ok(c))
            return;
    ck_abort_msg("pg_ok() still true 5 s after the backend was terminated");
}

START_TEST(test_prepared_statements_run_with_parameters)
{
    char *url = setup_db();
    char err[512];
    pg_conn *c = open_conn(url);
    exec_ok(c, "CREATE TABLE people (id int PRIMARY KEY, name text NOT NULL)");

    const char *ins = "INSERT INTO people (id, name) VALUES ($1, $2)";
    ck_assert_int_eq(pg_prepare(c, "ins", ins, 2, err, sizeof(err)), PG_OK);
    ck_assert_int_eq(pg_prepare(c, "ins", ins, 2, err, sizeof(err)), PG_OK);
    ck_assert_int_eq(pg_prepare(c, "ins", "SELECT 1", 0, err, sizeof(err)), PG_ERROR);
    ck_assert_int_eq(
        pg_prepare(c, "sel", "SELECT name FROM people WHERE id = $1", 1, err, sizeof(err)), PG_OK);

    const char *alice[] = {"1", "alice"};
    const char *bob[] = {"2", "b\xc3\xb6"
                              "b"};
    ck_assert_int_eq(pg_exec_prepared(c, "ins", 2, alice, NULL, NULL, 0, NULL, err, sizeof(err)),
                     PG_OK);
    ck_assert_int_eq(pg_exec_prepared(c, "ins", 2, bob, NULL, NULL, 0, NULL, err, sizeof(err)),
                     PG_OK);

    PGresult *res = NULL;
    const char *id[] = {"2"};
    ck_assert_int_eq(pg_exec_prepared(c, "sel", 1, id, NULL, NULL, 0, &res, err, sizeof(err)),
                     PG_OK);
    ck_assert_int_eq(PQntuples(res), 1);
    ck_assert_str_eq(PQgetvalue(res, 0, 0), "b\xc3\xb6"
                                            "b");
    PQclear(res);

    /* Misuse is an error, not a crash, and leaves nothing behind. */
    res = (PGresult *)1;
    ck_assert_int_eq(pg_exec_prepared(c, "sel", 2, alice, NULL, NULL, 0, &res, err, sizeof(err)),
                     PG_ERROR);
    ck_assert_ptr_null(res);
    ck_assert_int_eq(pg_exec_prepared(c, "nope", 0, NULL, NULL, NULL, 0, NULL, err, sizeof(err)),
                     PG_ERROR);
    ck_assert_int_eq(pg_prepare(c, "bad", "SELECT * FROM missing_table", 0, err, sizeof(err)),
                     PG_ERROR);
    ck_assert_str_eq(pg_last_sqlstate(c), "42P01");
    ck_assert_int_eq(pg_exec_prepared(c, "bad", 0, NULL, NULL, NULL, 0, NULL, err, sizeof(err)),
                     PG_ERROR);
    ck_assert_ptr_nonnull(strstr(err, "not prepared"));

    const char *params[] = {"1"};
    res = NULL;
    ck_assert_int_eq(
        pg_query(c, "SELECT name FROM people WHERE id = $1", 1, params, &res, err, sizeof(err)),
        PG_OK);
    ck_assert_str_eq(PQgetvalue(res, 0, 0), "alice");
    PQclear(res);
    ck_assert_str_eq(pg_last_sqlstate(c), "");
    pg_close(c);
    testsupport_db_drop(url);
}
END_TEST

START_TEST(test_transaction_commit_is_visible_and_rollback_is_not)
{
    char *url = setup_db();
    char err[512];
    pg_conn *c = open_conn(url);
    pg_conn *other = open_conn(url);
    exec_ok(c, "CREATE TABLE items (id int PRIMARY KEY)");

    ck_assert_int_eq(pg_begin(c, err, sizeof(err)), PG_OK);
    ck_assert(pg_in_transaction(c));
    exec_ok(c, "INSERT INTO items VALUES (1)");
    ck_assert_int_eq(query_long(other, "SELECT count(*) FROM items"), 0);
    ck_assert_int_eq(pg_commit(c, err, sizeof(err)), PG_OK);
    ck_assert(!pg_in_transaction(c));
    ck_assert_int_eq(query_long(other, "SELECT count(*) FROM items"), 1);

    ck_assert_int_eq(pg_begin(c, err, sizeof(err)), PG_OK);
    exec_ok(c, "INSERT INTO items VALUES (2)");
    ck_assert_int_eq(query_long(c, "SELECT count(*) FROM items"), 2);
    ck_assert_int_eq(pg_rollback(c, err, sizeof(err)), PG_OK);
    ck_assert(!pg_in_transaction(c));
    ck_assert_int_eq(query_long(other, "SELECT count(*) FROM items"), 1);
    ck_assert_int_eq(query_long(c, "SELECT count(*) FROM items"), 1);
    pg_close(other);
    pg_close(c);
    testsupport_db_drop(url);
}
END_TEST

START_TEST(test_statement_error_reports_sqlstate_and_keeps_the_connection)
{
    char *url = setup_db();
    char err[512];
    pg_conn *c = open_conn(url);
    exec_ok(c, "CREATE TABLE users (id int PRIMARY KEY, email text)");
    exec_ok(c, "INSERT INTO users VALUES (1, 'someone@example.com')");

    ck_assert_int_eq(
        pg_exec(c, "INSERT INTO users VALUES (1, 'someone@example.com')", err, sizeof(err)),
        PG_ERROR);
    ck_assert_str_eq(pg_last_sqlstate(c), "23505");
    ck_assert_ptr_nonnull(strstr(err, "23505"));
    /* Row values (DETAIL) stay out of messages that end up in logs. */
    ck_assert_ptr_null(strstr(err, "someone@example.com"));

    ck_assert_int_eq(pg_exec(c, "SELEC 1", err, sizeof(err)), PG_ERROR);
    ck_assert_str_eq(pg_last_sqlstate(c), "42601");
    ck_assert(pg_ok(c));
    ck_assert_int_eq(query_long(c, "SELECT 41 + 1"), 42);
    ck_assert_str_eq(pg_last_sqlstate(c), "");

    /* COPY is refused and ended, in both directions: the connection stays usable. */
    ck_assert_int_eq(pg_exec(c, "COPY users TO STDOUT", err, sizeof(err)), PG_ERROR);
    ck_assert_int_eq(query_long(c, "SELECT count(*) FROM users"), 1);
    ck_assert_int_eq(pg_exec(c, "COPY users FROM STDIN", err, sizeof(err)), PG_ERROR);
    ck_assert_ptr_nonnull(strstr(err, "pg_raw"));
    ck_assert_int_eq(query_long(c, "SELECT count(*) FROM users"), 1);

    /* An error inside a transaction aborts it: COMMIT must not pass for success. */
    ck_assert_int_eq(pg_begin(c, err, sizeof(err)), PG_OK);
    exec_ok(c, "INSERT INTO users VALUES (2, 'x@example.com')");
    ck_assert_int_eq(pg_exec(c, "SELECT 1/0", err, sizeof(err)), PG_ERROR);
    ck_assert_str_eq(pg_last_sqlstate(c), "22012");
    ck_assert(pg_in_transaction(c));
    ck_assert_int_eq(pg_exec(c, "SELECT 1", err, sizeof(err)), PG_ERROR);
    ck_assert_str_eq(pg_last_sqlstate(c), "25P02");
    ck_assert_int_eq(pg_commit(c, err, sizeof(err)), PG_ERROR);
    ck_assert_str_eq(pg_last_sqlstate(c), "25P02");
    ck_assert(!pg_in_transaction(c));
    ck_assert_int_eq(query_long(c, "SELECT count(*) FROM users"), 1);
    pg_close(c);
    testsupport_db_drop(url);
}
END_TEST

START_TEST(test_terminated_backend_gives_retry_once_then_prepared_statements_work_again)
{
    char *url = setup_db();
    char err[512];
    pg_conn *c = open_conn(url);
    pg_conn *admin = open_conn(url);
    exec_ok(c, "CREATE TABLE jobs (id int PRIMARY KEY)");
    ck_assert_int_eq(pg_prepare(c, "inc", "SELECT $1::int + 1", 1, err, sizeof(err)), PG_OK);
    ck_assert_int_eq(pg_prepare(c, "add", "INSERT INTO jobs VALUES ($1)", 1, err, sizeof(err)),
                     PG_OK);
    const char *one[] = {"41"};
    PGresult *res = NULL;

    /* Outside a transaction. */
    int old_pid = PQbackendPID(pg_raw(c));
    terminate_backend(admin, c);
    pg_status st = pg_exec_prepared(c, "inc", 1, one, NULL, NULL, 0, &res, err, sizeof(err));
    ck_assert_msg(st == PG_RETRY, "%s: %s", pg_status_name(st), err);
    ck_assert_ptr_null(res);
    const char *ss = pg_last_sqlstate(c);
    ck_assert_msg(strcmp(ss, "57P01") == 0 || strncmp(ss, "08", 2) == 0, "SQLSTATE %s", ss);
    ck_assert(pg_ok(c));
    ck_assert_int_ne(PQbackendPID(pg_raw(c)), old_pid);
    st = pg_exec_prepared(c, "inc", 1, one, NULL, NULL, 0, &res, err, sizeof(err));
    ck_assert_msg(st == PG_OK, "%s", err);
    ck_assert_str_eq(PQgetvalue(res, 0, 0), "42");
    PQclear(res);

    /* Inside a transaction: its work is gone, the caller redoes it. */
    const char *a[] = {"1"}, *b[] = {"2"};
    ck_assert_int_eq(pg_begin(c, err, sizeof(err)), PG_OK);
    ck_assert_int_eq(pg_exec_prepared(c, "add", 1, a, NULL, NULL, 0, NULL, err, sizeof(err)),
                     PG_OK);
    terminate_backend(admin, c);
    st = pg_exec_prepared(c, "add", 1, b, NULL, NULL, 0, NULL, err, sizeof(err));
    ck_assert_msg(st == PG_RETRY, "%s: %s", pg_status_name(st), err);
    ck_assert(!pg_in_transaction(c));
    ck_assert_int_eq(query_long(admin, "SELECT count(*) FROM jobs"), 0);
    ck_assert_int_eq(pg_begin(c, err, sizeof(err)), PG_OK);
    ck_assert_int_eq(pg_exec_prepared(c, "add", 1, a, NULL, NULL, 0, NULL, err, sizeof(err)),
                     PG_OK);
    ck_assert_int_eq(pg_exec_prepared(c, "add", 1, b, NULL, NULL, 0, NULL, err, sizeof(err)),
                     PG_OK);
    ck_assert_int_eq(pg_commit(c, err, sizeof(err)), PG_OK);
    ck_assert_int_eq(query_long(admin, "SELECT count(*) FROM jobs"), 2);

    /*
     * A loss noticed before sending (pg_ok() read the end of the session):
     * the statement never left, so it runs on the new connection at once.
     */
    terminate_backend(admin, c);
    wait_not_ok(c);
    st = pg_exec_prepared(c, "inc", 1, one, NULL, NULL, 0, &res, err, sizeof(err));
    ck_assert_msg(st == PG_OK, "%s: %s", pg_status_name(st), err);
    ck_assert_str_eq(PQgetvalue(res, 0, 0), "42");
    PQclear(res);

    /* Lost during a transaction and noticed before sending: still PG_RETRY. */
    ck_assert_int_eq(pg_begin(c, err, sizeof(err)), PG_OK);
    terminate_backend(admin, c);
    wait_not_ok(c);
    ck_assert_int_eq(
        pg_exec_prepared(c, "add", 1, (const char *[]){"3"}, NULL, NULL, 0, NULL, err, sizeof(err)),
        PG_RETRY);
    ck_assert_int_eq(pg_rollback(c, err, sizeof(err)), PG_OK);
    ck_assert_int_eq(query_long(admin, "SELECT count(*) FROM jobs"), 2);
    pg_close(admin);
    pg_close(c);
    testsupport_db_drop(url);
}
END_TEST

/* Runs pg_connect with stderr captured into log (NUL-terminated). */
static pg_conn *connect_capturing(const char *url, const pg_options *opt, char *err, size_t errlen,
                                  char *log, size_t loglen)
{
    char path[] = "/tmp/herald-test-pg-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    unlink(path);
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    ck_assert_int_ge(saved, 0);
    ck_assert_int_ge(dup2(fd, STDERR_FILENO), 0);
    pg_conn *c = pg_connect(url, opt, err, errlen);
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    ssize_t n = pread(fd, log, loglen - 1, 0);
    log[n > 0 ? n : 0] = '\0';
    close(fd);
    return c;
}

START_TEST(test_unreachable_server_is_down_within_the_bound_without_the_password)
{
    test_require_env("HERALD_DATABASE_URL");
    log_init("test_pg", LOG_LEVEL_DEBUG, LOG_FORMAT_TEXT);
    int port = closed_port();
    char url[256], kv[256], err[1024], log[16384];
    snprintf(url, sizeof(url), "postgresql://herald:secret@127.0.0.1:%d/herald", port);
    snprintf(kv, sizeof(kv), "host=127.0.0.1 port=%d user=herald password=secret dbname=herald",
             port);
    pg_options opt = {.max_wait_ms = 1500, .backoff_initial_ms = 100, .backoff_max_ms = 400};

    const char *forms[] = {url, kv};
    for (size_t i = 0; i < 2; i++) {
        int64_t start = timeutil_monotonic_ms();
        pg_conn *c = connect_capturing(forms[i], &opt, err, sizeof(err), log, sizeof(log));
        int64_t took = timeutil_monotonic_ms() - start;
        ck_assert_ptr_null(c);
        /* It kept trying for the bound, and no longer. */
        ck_assert_msg(took >= 1400 && took < 4000, "gave up after %lld ms", (long long)took);
        ck_assert_ptr_nonnull(strstr(err, "unreachable"));
        ck_assert_ptr_nonnull(strstr(err, "127.0.0.1"));
        ck_assert_msg(strstr(err, "secret") == NULL, "password in error: %s", err);
        ck_assert_ptr_nonnull(strstr(log, "retrying"));
        ck_assert_msg(strstr(log, "secret") == NULL, "password in log: %s", log);
    }

    /* A stop request (SIGTERM) ends the wait at once. */
    static volatile sig_atomic_t stop = 1;
    opt.max_wait_ms = 30000;
    opt.stop = &stop;
    int64_t start = timeutil_monotonic_ms();
    ck_assert_ptr_null(connect_capturing(url, &opt, err, sizeof(err), log, sizeof(log)));
    ck_assert_int_lt(timeutil_monotonic_ms() - start, 1000);

    /* A malformed URL is refused without waiting. */
    start = timeutil_monotonic_ms();
    ck_assert_ptr_null(pg_connect("postgresql://herald:secret@127.0.0.1:5432/herald?bogus=1",
                                  &quick, err, sizeof(err)));
    ck_assert_int_lt(timeutil_monotonic_ms() - start, 1000);
    ck_assert_ptr_nonnull(strstr(err, "invalid database URL"));
    ck_assert_ptr_null(strstr(err, "secret"));
}
END_TEST

static const test_case_entry cases[] = {
    TEST_ENTRY(test_prepared_statements_run_with_parameters),
    TEST_ENTRY(test_transaction_commit_is_visible_and_rollback_is_not),
    TEST_ENTRY(test_statement_error_reports_sqlstate_and_keeps_the_connection),
    TEST_ENTRY(test_terminated_backend_gives_retry_once_then_prepared_statements_work_again),
    TEST_ENTRY(test_unreachable_server_is_down_within_the_bound_without_the_password),
};

TEST_MAIN("pg", cases)
