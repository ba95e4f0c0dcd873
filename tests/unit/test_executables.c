/*
 * Every executable answers --help with exit 0, and a bad configuration value
 * stops it with exit 2 and one line naming the variable or flag.
 */
#include <dirent.h>
#include <stdio.h>
#include <string.h>

#include "testsupport.h"
#include "testutil.h"

static const char *const programs[] = {"herald-gateway",  "herald-dispatcher", "herald-worker",
                                       "herald-realtime", "herald-webhooks",   "heraldctl"};

/* Every file in the build's bin directory, the benchmarks' and test providers' included. */
START_TEST(test_every_executable_prints_help_and_exits_0)
{
    char dir[1024];
    testsupport_bin("", dir, sizeof(dir));
    DIR *d = opendir(dir);
    ck_assert_msg(d != NULL, "cannot open %s", dir);
    int seen = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        if (e->d_name[0] == '.')
            continue;
        char bin[2048], out[16384], err[4096];
        snprintf(bin, sizeof(bin), "%s%s", dir, e->d_name);
        char *argv[] = {bin, "--help", NULL};
        int rc = testsupport_run(argv, NULL, out, sizeof(out), err, sizeof(err), 10000);
        ck_assert_msg(rc == 0, "%s --help exited %d: %s", e->d_name, rc, err);
        ck_assert_msg(strstr(out, "usage") != NULL || strstr(out, "Usage") != NULL,
                      "%s --help printed no usage: %s", e->d_name, out);
        seen++;
    }
    closedir(d);
    /* the six programs at least */
    ck_assert_int_ge(seen, (int)(sizeof(programs) / sizeof(programs[0])));
}
END_TEST

START_TEST(test_bad_env_value_exits_2_naming_the_variable)
{
    for (size_t i = 0; i < sizeof(programs) / sizeof(programs[0]); i++) {
        char bin[1024], out[4096], err[4096];
        testsupport_bin(programs[i], bin, sizeof(bin));
        char *argv[] = {bin, "--channel", "email", NULL};
        if (strcmp(programs[i], "herald-worker") != 0)
            argv[1] = NULL;
        const char *env[] = {"HERALD_LOG_FORMAT=xml", NULL};
        int rc = testsupport_run(argv, env, out, sizeof(out), err, sizeof(err), 10000);
        ck_assert_msg(rc == 2, "%s exited %d: %s", programs[i], rc, err);
        ck_assert_msg(strstr(err, "HERALD_LOG_FORMAT") != NULL, "%s: %s", programs[i], err);
        ck_assert_msg(strchr(err, '\n') == err + strlen(err) - 1, "%s: not one line: %s",
                      programs[i], err);
    }
}
END_TEST

/* A callback URL Twilio could not call stops the worker before it sends anything. */
START_TEST(test_worker_refuses_a_status_callback_url_that_is_not_http)
{
    static const char *const bad[] = {"ftp://example.com/cb", "example.com/cb", "https://",
                                      "https://example.com/a b", "https://example.com/cb#frag"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char bin[1024], out[4096], err[4096], var[256];
        testsupport_bin("herald-worker", bin, sizeof(bin));
        char *argv[] = {bin, "--channel", "sms", NULL};
        snprintf(var, sizeof(var), "HERALD_TWILIO_STATUS_CALLBACK_URL=%s", bad[i]);
        const char *env[] = {var, NULL};
        int rc = testsupport_run(argv, env, out, sizeof(out), err, sizeof(err), 10000);
        ck_assert_msg(rc == 2, "%s: exited %d: %s", bad[i], rc, err);
        ck_assert_msg(strstr(err, "HERALD_TWILIO_STATUS_CALLBACK_URL") != NULL &&
                          strstr(err, "http") != NULL,
                      "%s: %s", bad[i], err);
    }
}
END_TEST

START_TEST(test_unknown_flag_exits_2_naming_it)
{
    for (size_t i = 0; i < sizeof(programs) / sizeof(programs[0]); i++) {
        char bin[1024], out[4096], err[4096];
        testsupport_bin(programs[i], bin, sizeof(bin));
        char *argv[] = {bin, "--no-such-flag", NULL};
        int rc = testsupport_run(argv, NULL, out, sizeof(out), err, sizeof(err), 10000);
        ck_assert_msg(rc == 2, "%s exited %d: %s", programs[i], rc, err);
        ck_assert_msg(strstr(err, "--no-such-flag") != NULL, "%s: %s", programs[i], err);
    }
}
END_TEST

/* herald-webhooks' own settings, each refused before anything connects. */
START_TEST(test_bad_webhooks_setting_exits_2_naming_the_variable)
{
    static const char *const bad[] = {"HERALD_WEBHOOKS_TIMEOUT=soon", "HERALD_WEBHOOKS_ROLE=both",
                                      "HERALD_WEBHOOKS_DISABLE_AFTER=0",
                                      "HERALD_WEBHOOKS_MAX_ATTEMPTS=101",
                                      "HERALD_WEBHOOKS_DISABLE_MIN_SPAN=-1m"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char bin[1024], out[4096], err[4096], name[64];
        testsupport_bin("herald-webhooks", bin, sizeof(bin));
        char *argv[] = {bin, NULL};
        const char *env[] = {bad[i], NULL};
        int rc = testsupport_run(argv, env, out, sizeof(out), err, sizeof(err), 10000);
        snprintf(name, sizeof name, "%.*s", (int)strcspn(bad[i], "="), bad[i]);
        ck_assert_msg(rc == 2, "%s: exited %d: %s", bad[i], rc, err);
        ck_assert_msg(strncmp(err, "herald-webhooks: ", 17) == 0 && strstr(err, name) != NULL,
                      "%s: %s", bad[i], err);
    }
}
END_TEST

static const test_case_entry cases[] = {
    TEST_ENTRY(test_every_executable_prints_help_and_exits_0),
    TEST_ENTRY(test_bad_env_value_exits_2_naming_the_variable),
    TEST_ENTRY(test_worker_refuses_a_status_callback_url_that_is_not_http),
    TEST_ENTRY(test_unknown_flag_exits_2_naming_it),
    TEST_ENTRY(test_bad_webhooks_setting_exits_2_naming_the_variable),
};

TEST_MAIN("executables", cases)
