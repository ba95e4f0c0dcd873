/*
 * heraldctl topics create against the real broker: creates every topic with
 * the asked partition count, and a second run reports them as existing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kafka.h"
#include "kafka_admin.h"
#include "testsupport.h"
#include "testutil.h"
#include "topics.h"

static size_t topic_count(void)
{
    size_t n = 0;
    while (topics_all[n].name != NULL)
        n++;
    return n;
}

static void delete_topics(const char *brokers, const char *prefix)
{
    char names[32][256];
    const char *ptrs[32];
    size_t n = 0;
    for (const topics_def *t = topics_all; t->name && n < 32; t++, n++) {
        snprintf(names[n], sizeof(names[n]), "%s%s", prefix, t->name);
        ptrs[n] = names[n];
    }
    char err[512];
    if (kafka_topics_delete(brokers, NULL, ptrs, n, 30000, err, sizeof(err)) != KAFKA_OK)
        fprintf(stderr, "deleting test topics: %s\n", err);
}

START_TEST(test_topics_create_is_idempotent_and_uses_partitions)
{
    const char *brokers = test_require_env("HERALD_KAFKA_BROKERS");
    char prefix[64], env_prefix[96], bin[1024], out[8192], err[8192], expect[512];
    testsupport_topic_prefix(prefix, sizeof(prefix));
    snprintf(env_prefix, sizeof(env_prefix), "HERALD_TOPIC_PREFIX=%s", prefix);
    testsupport_bin("heraldctl", bin, sizeof(bin));
    char *argv[] = {bin, "topics", "create", "--partitions", "3", NULL};
    const char *env[] = {env_prefix, NULL};

    ck_assert_int_eq(testsupport_run(argv, env, out, sizeof(out), err, sizeof(err), 60000), 0);
    snprintf(expect, sizeof(expect), "%zu created, 0 already existed, 0 failed", topic_count());
    ck_assert_msg(strstr(out, expect) != NULL, "first run: %s %s", out, err);

    ck_assert_int_eq(testsupport_run(argv, env, out, sizeof(out), err, sizeof(err), 60000), 0);
    snprintf(expect, sizeof(expect), "0 created, %zu already existed, 0 failed", topic_count());
    ck_assert_msg(strstr(out, expect) != NULL, "second run: %s %s", out, err);

    for (const topics_def *t = topics_all; t->name; t++) {
        char name[256], derr[256];
        kafka_topic_desc d;
        snprintf(name, sizeof(name), "%s%s", prefix, t->name);
        ck_assert_int_eq(kafka_topic_describe(brokers, NULL, name, 10000, &d, derr, sizeof(derr)),
                         KAFKA_OK);
        ck_assert_int_eq(d.partitions, 3);
        ck_assert_int_eq(d.replication_factor, 1);
        snprintf(expect, sizeof(expect), "exists   %s (3 partitions, replication factor 1)\n",
                 name);
        ck_assert_msg(strstr(out, expect) != NULL, "second run: %s", out);
    }

    /* Asked for another shape, existing topics are pointed out and left as they are. */
    char *argv4[] = {bin, "topics", "create", "--partitions", "4", NULL};
    ck_assert_int_eq(testsupport_run(argv4, env, out, sizeof(out), err, sizeof(err), 60000), 0);
    for (const topics_def *t = topics_all; t->name; t++) {
        snprintf(expect, sizeof(expect),
                 "exists   %s%s (3 partitions, replication factor 1), not the 4 partitions "
                 "asked for: left as it is\n",
                 prefix, t->name);
        ck_assert_msg(strstr(out, expect) != NULL, "third run: %s", out);
    }
    for (const topics_def *t = topics_all; t->name; t++) {
        char name[256], derr[256];
        kafka_topic_desc d;
        snprintf(name, sizeof(name), "%s%s", prefix, t->name);
        ck_assert_int_eq(kafka_topic_describe(brokers, NULL, name, 10000, &d, derr, sizeof(derr)),
                         KAFKA_OK);
        ck_assert_int_eq(d.partitions, 3);
    }
    delete_topics(brokers, prefix);
}
END_TEST

START_TEST(test_topics_create_reports_unreachable_broker_with_exit_1)
{
    char bin[1024], out[4096], err[4096];
    testsupport_bin("heraldctl", bin, sizeof(bin));
    char *argv[] = {bin, "topics", "create", "--timeout", "3s", NULL};
    const char *env[] = {"HERALD_KAFKA_BROKERS=127.0.0.1:1", NULL};
    ck_assert_int_eq(testsupport_run(argv, env, out, sizeof(out), err, sizeof(err), 60000), 1);
    ck_assert_msg(strstr(err, "127.0.0.1:1") != NULL, "stderr: %s", err);
}
END_TEST

START_TEST(test_topics_rejects_bad_arguments_with_exit_2)
{
    char bin[1024], out[4096], err[4096];
    testsupport_bin("heraldctl", bin, sizeof(bin));
    char *argv[] = {bin, "topics", "create", "--partitions", "zero", NULL};
    ck_assert_int_eq(testsupport_run(argv, NULL, out, sizeof(out), err, sizeof(err), 10000), 2);
    ck_assert_msg(strstr(err, "--partitions") != NULL, "stderr: %s", err);
    char *argv2[] = {bin, "topics", "destroy", NULL};
    ck_assert_int_eq(testsupport_run(argv2, NULL, out, sizeof(out), err, sizeof(err), 10000), 2);
}
END_TEST

static const test_case_entry cases[] = {
    TEST_ENTRY(test_topics_create_is_idempotent_and_uses_partitions),
    TEST_ENTRY(test_topics_create_reports_unreachable_broker_with_exit_1),
    TEST_ENTRY(test_topics_rejects_bad_arguments_with_exit_2),
};

TEST_MAIN_TIMEOUT("topics", cases, 120)
