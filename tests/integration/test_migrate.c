/*
 * heraldctl migrate against a real PostgreSQL: applies the schema once,
 * is a no-op the second time, and two concurrent runs apply it exactly once.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "migrate.h"
#include "testsupport.h"
#include "testutil.h"

static size_t migration_count(void)
{
    size_t n = 0;
    while (migrate_embedded[n].name != NULL)
        n++;
    return n;
}

static int run_migrate(const char *url, const char *flag, char *out, size_t outlen, char *err,
                       size_t errlen)
{
    char bin[1024], env_url[2048];
    testsupport_bin("heraldctl", bin, sizeof(bin));
    snprintf(env_url, sizeof(env_url), "HERALD_DATABASE_URL=%s", url);
    char *argv[] = {bin, "migrate", (char *)flag, NULL};
    const char *env[] = {env_url, NULL};
    return testsupport_run(argv, env, out, outlen, err, errlen, 60000);
}

START_TEST(test_migrate_applies_schema_then_is_a_no_op)
{
    char out[8192], err[8192];
    char *url = testsupport_db_create("migrate", 0);
    ck_assert_ptr_nonnull(url);

    ck_assert_int_eq(run_migrate(url, NULL, out, sizeof(out), err, sizeof(err)), 0);
    ck_assert_msg(strstr(out, "applied 001_") != NULL, "first run: %s %s", out, err);
    ck_assert_int_eq(testsupport_db_count(url, "SELECT count(*) FROM herald_schema_migrations"),
                     (long)migration_count());
    /* The tables the pipeline reads exist. */
    ck_assert_int_eq(testsupport_db_count(url, "SELECT count(*) FROM deliveries"), 0);
    ck_assert_int_eq(testsupport_db_count(url, "SELECT count(*) FROM api_keys"), 0);

    ck_assert_int_eq(run_migrate(url, NULL, out, sizeof(out), err, sizeof(err)), 0);
    ck_assert_msg(strstr(out, "nothing to apply") != NULL, "second run: %s", out);
    ck_assert_ptr_null(strstr(out, "applied 0"));
    ck_assert_int_eq(testsupport_db_count(url, "SELECT count(*) FROM herald_schema_migrations"),
                     (long)migration_count());

    ck_assert_int_eq(run_migrate(url, "--status", out, sizeof(out), err, sizeof(err)), 0);
    ck_assert_msg(strstr(out, "001_initial_schema.sql") && strstr(out, "applied") &&
                      strstr(out, "0 pending"),
                  "status: %s", out);
    testsupport_db_drop(url);
}
END_TEST

START_TEST(test_migrate_status_on_fresh_database_lists_pending)
{
    char out[8192], err[8192];
    char *url = testsupport_db_create("migrate", 0);
    ck_assert_ptr_nonnull(url);
    ck_assert_int_eq(run_migrate(url, "--status", out, sizeof(out), err, sizeof(err)), 0);
    ck_assert_msg(strstr(out, "pending") != NULL, "status: %s %s", out, err);
    char expect[32];
    snprintf(expect, sizeof(expect), "%zu pending", migration_count());
    ck_assert_msg(strstr(out, expect) != NULL, "status: %s", out);
    /* --status changes nothing. */
    ck_assert_int_eq(
        testsupport_db_count(url, "SELECT count(*) FROM pg_tables WHERE tablename = 'deliveries'"),
        0);
    testsupport_db_drop(url);
}
END_TEST

START_TEST(test_concurrent_migrations_apply_each_file_exactly_once)
{
    char bin[1024], env_url[2048];
    char *url = testsupport_db_create("migrate", 0);
    ck_assert_ptr_nonnull(url);
    testsupport_bin("heraldctl", bin, sizeof(bin));
    snprintf(env_url, sizeof(env_url), "HERALD_DATABASE_URL=%s", url);
    char *argv[] = {bin, "migrate", NULL};
    const char *env[] = {env_url, NULL};

    enum { RUNS = 4 };
    char paths[RUNS][64];
    pid_t pids[RUNS];
    for (int i = 0; i < RUNS; i++) {
        snprintf(paths[i], sizeof(paths[i]), "/tmp/herald-migrate-%d-%d.out", (int)getpid(), i);
        pids[i] = testsupport_spawn(argv, env, paths[i], NULL);
        ck_assert_int_gt(pids[i], 0);
    }
    int applied_lines = 0;
    for (int i = 0; i < RUNS; i++) {
        ck_assert_int_eq(testsupport_wait(pids[i], 60000), 0);
        FILE *f = fopen(paths[i], "r");
        ck_assert_ptr_nonnull(f);
        char line[512];
        while (fgets(line, sizeof(line), f))
            applied_lines += strncmp(line, "applied ", 8) == 0;
        fclose(f);
        unlink(paths[i]);
    }
    ck_assert_int_eq(applied_lines, (int)migration_count());
    ck_assert_int_eq(testsupport_db_count(url, "SELECT count(*) FROM herald_schema_migrations"),
                     (long)migration_count());
    testsupport_db_drop(url);
}
END_TEST

START_TEST(test_migrate_reports_unreachable_database_with_exit_1)
{
    char out[4096], err[4096];
    int rc = run_migrate("postgresql://herald:secret@127.0.0.1:1/herald?connect_timeout=2", NULL,
                         out, sizeof(out), err, sizeof(err));
    ck_assert_int_eq(rc, 1);
    ck_assert_msg(strstr(err, "cannot connect to PostgreSQL") != NULL, "stderr: %s", err);
    ck_assert_msg(strstr(err, "secret") == NULL, "password leaked: %s", err);
}
END_TEST

START_TEST(test_bad_configuration_exits_2_naming_the_variable)
{
    char bin[1024], out[4096], err[4096];
    testsupport_bin("heraldctl", bin, sizeof(bin));
    char *argv[] = {bin, "migrate", NULL};
    const char *env[] = {"HERALD_LOG_LEVEL=loud", NULL};
    ck_assert_int_eq(testsupport_run(argv, env, out, sizeof(out), err, sizeof(err), 10000), 2);
    ck_assert_msg(strstr(err, "HERALD_LOG_LEVEL") != NULL, "stderr: %s", err);

    char *argv2[] = {bin, "migrate", "--bogus", NULL};
    ck_assert_int_eq(testsupport_run(argv2, NULL, out, sizeof(out), err, sizeof(err), 10000), 2);
    ck_assert_msg(strstr(err, "--bogus") != NULL, "stderr: %s", err);
}
END_TEST

static const test_case_entry cases[] = {
    TEST_ENTRY(test_migrate_applies_schema_then_is_a_no_op),
    TEST_ENTRY(test_migrate_status_on_fresh_database_lists_pending),
    TEST_ENTRY(test_concurrent_migrations_apply_each_file_exactly_once),
    TEST_ENTRY(test_migrate_reports_unreachable_database_with_exit_1),
    TEST_ENTRY(test_bad_configuration_exits_2_naming_the_variable),
};

TEST_MAIN_TIMEOUT("migrate", cases, 120)
