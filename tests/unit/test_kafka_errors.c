/*
 * kafka_classify: what a caller does about each librdkafka error.  Transient
 * cluster and network trouble is retried, messages that can never be
 * accepted are given up on, fencing and fatal errors stop the client, and an
 * error object's own flags win over its code.
 */
#include <stddef.h>
#include <string.h>

#include "kafka.h"
#include "testutil.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static void assert_class(const rd_kafka_resp_err_t *codes, size_t n, kafka_err_class want)
{
    for (size_t i = 0; i < n; i++) {
        kafka_err_class got = kafka_classify(codes[i], NULL);
        ck_assert_msg(got == want, "%s: got %s, want %s", rd_kafka_err2name(codes[i]),
                      kafka_err_class_name(got), kafka_err_class_name(want));
    }
}

START_TEST(test_no_error_needs_no_action)
{
    ck_assert_int_eq(kafka_classify(RD_KAFKA_RESP_ERR_NO_ERROR, NULL), KAFKA_ERRCLASS_NONE);
}
END_TEST

START_TEST(test_unreachable_or_moving_cluster_is_retriable)
{
    static const rd_kafka_resp_err_t codes[] = {
        RD_KAFKA_RESP_ERR__TRANSPORT,
        RD_KAFKA_RESP_ERR__RESOLVE,
        RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN,
        RD_KAFKA_RESP_ERR__TIMED_OUT,
        RD_KAFKA_RESP_ERR__QUEUE_FULL,
        RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE,
        RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
        RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
        RD_KAFKA_RESP_ERR_NETWORK_EXCEPTION,
        RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS,
        RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND,
        RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE,
        RD_KAFKA_RESP_ERR_NOT_COORDINATOR,
        RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS,
        RD_KAFKA_RESP_ERR_CONCURRENT_TRANSACTIONS,
        RD_KAFKA_RESP_ERR_THROTTLING_QUOTA_EXCEEDED,
    };
    assert_class(codes, N(codes), KAFKA_ERRCLASS_RETRIABLE);
}
END_TEST

START_TEST(test_delivery_timeout_and_purge_are_retriable)
{
    /* A message that timed out or was purged never got a verdict: send it again. */
    static const rd_kafka_resp_err_t codes[] = {
        RD_KAFKA_RESP_ERR__MSG_TIMED_OUT,
        RD_KAFKA_RESP_ERR__PURGE_QUEUE,
        RD_KAFKA_RESP_ERR__PURGE_INFLIGHT,
    };
    assert_class(codes, N(codes), KAFKA_ERRCLASS_RETRIABLE);
}
END_TEST

START_TEST(test_messages_that_can_never_be_accepted_are_permanent)
{
    static const rd_kafka_resp_err_t codes[] = {
        RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE,
        RD_KAFKA_RESP_ERR_INVALID_MSG_SIZE,
        RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE,
        RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED,
        RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED,
        RD_KAFKA_RESP_ERR_INVALID_RECORD,
        RD_KAFKA_RESP_ERR_POLICY_VIOLATION,
        RD_KAFKA_RESP_ERR__INVALID_ARG,
        RD_KAFKA_RESP_ERR__AUTHENTICATION,
    };
    assert_class(codes, N(codes), KAFKA_ERRCLASS_PERMANENT);
}
END_TEST

START_TEST(test_missing_topic_after_the_wait_is_permanent)
{
    /* In a delivery report librdkafka has already waited for the topic to appear. */
    static const rd_kafka_resp_err_t codes[] = {
        RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART,
        RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC,
        RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION,
    };
    assert_class(codes, N(codes), KAFKA_ERRCLASS_PERMANENT);
}
END_TEST

START_TEST(test_fencing_and_fatal_errors_stop_the_client)
{
    static const rd_kafka_resp_err_t codes[] = {
        RD_KAFKA_RESP_ERR__FATAL,
        RD_KAFKA_RESP_ERR__FENCED,
        RD_KAFKA_RESP_ERR_PRODUCER_FENCED,
        RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH,
        RD_KAFKA_RESP_ERR_TRANSACTION_COORDINATOR_FENCED,
        RD_KAFKA_RESP_ERR_FENCED_INSTANCE_ID,
        RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED,
        RD_KAFKA_RESP_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
    };
    assert_class(codes, N(codes), KAFKA_ERRCLASS_FATAL);
}
END_TEST

START_TEST(test_codes_newer_than_the_table_are_not_retried_forever)
{
    static const rd_kafka_resp_err_t codes[] = {
        RD_KAFKA_RESP_ERR_PRINCIPAL_DESERIALIZATION_FAILURE,
        RD_KAFKA_RESP_ERR_UNKNOWN,
    };
    assert_class(codes, N(codes), KAFKA_ERRCLASS_PERMANENT);
}
END_TEST

START_TEST(test_error_object_code_is_used_when_no_code_is_given)
{
    rd_kafka_error_t *timeout = rd_kafka_error_new(RD_KAFKA_RESP_ERR__TIMED_OUT, "timed out");
    rd_kafka_error_t *large = rd_kafka_error_new(RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE, "large");
    ck_assert_int_eq(kafka_classify(RD_KAFKA_RESP_ERR_NO_ERROR, timeout), KAFKA_ERRCLASS_RETRIABLE);
    ck_assert_int_eq(kafka_classify(RD_KAFKA_RESP_ERR_NO_ERROR, large), KAFKA_ERRCLASS_PERMANENT);
    /* An explicit code wins over the object's when the object has no flags. */
    ck_assert_int_eq(kafka_classify(RD_KAFKA_RESP_ERR__TRANSPORT, large), KAFKA_ERRCLASS_RETRIABLE);
    rd_kafka_error_destroy(timeout);
    rd_kafka_error_destroy(large);
}
END_TEST

START_TEST(test_fatal_flag_of_an_error_object_wins_over_its_code)
{
    /*
     * A real flagged error object, without a broker: once an idempotent
     * producer (pointed at a closed port) has raised a fatal error, producing
     * is refused with an error marked fatal that carries the original code,
     * one that alone would read as permanent.
     */
    char err[512];
    rd_kafka_conf_t *conf = kafka_conf_new("127.0.0.1:1", NULL, err, sizeof(err));
    ck_assert_msg(conf != NULL, "%s", err);
    ck_assert_int_eq(rd_kafka_conf_set(conf, "enable.idempotence", "true", err, sizeof(err)),
                     RD_KAFKA_CONF_OK);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    ck_assert_msg(rk != NULL, "%s", err);
    ck_assert_int_eq(
        rd_kafka_test_fatal_error(rk, RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER, "simulated"),
        RD_KAFKA_RESP_ERR_NO_ERROR);

    rd_kafka_vu_t vu[2] = {{.vtype = RD_KAFKA_VTYPE_TOPIC}, {.vtype = RD_KAFKA_VTYPE_VALUE}};
    vu[0].u.cstr = "herald-unit";
    vu[1].u.mem.ptr = "x";
    vu[1].u.mem.size = 1;
    rd_kafka_error_t *error = rd_kafka_produceva(rk, vu, 2);
    ck_assert_ptr_nonnull(error);
    ck_assert_int_eq(kafka_classify(rd_kafka_error_code(error), NULL), KAFKA_ERRCLASS_PERMANENT);
    ck_assert_int_eq(kafka_classify(RD_KAFKA_RESP_ERR_NO_ERROR, error), KAFKA_ERRCLASS_FATAL);
    ck_assert_int_eq(kafka_classify(rd_kafka_error_code(error), error), KAFKA_ERRCLASS_FATAL);
    ck_assert_int_eq(kafka_fatal_error(rk, err, sizeof(err)),
                     RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER);
    ck_assert_ptr_nonnull(strstr(err, "simulated"));
    rd_kafka_error_destroy(error);
    rd_kafka_destroy(rk);
}
END_TEST

START_TEST(test_class_names_are_stable_for_logs)
{
    ck_assert_str_eq(kafka_err_class_name(KAFKA_ERRCLASS_NONE), "none");
    ck_assert_str_eq(kafka_err_class_name(KAFKA_ERRCLASS_RETRIABLE), "retriable");
    ck_assert_str_eq(kafka_err_class_name(KAFKA_ERRCLASS_ABORT_TXN), "abort_txn");
    ck_assert_str_eq(kafka_err_class_name(KAFKA_ERRCLASS_PERMANENT), "permanent");
    ck_assert_str_eq(kafka_err_class_name(KAFKA_ERRCLASS_FATAL), "fatal");
}
END_TEST

/* The effective value of key on rk, or "" when unset. */
static const char *conf_value(rd_kafka_t *rk, const char *key, char *buf, size_t len)
{
    if (rd_kafka_conf_get(rd_kafka_conf(rk), key, buf, &len) != RD_KAFKA_CONF_OK)
        buf[0] = '\0';
    return buf;
}

START_TEST(test_program_defaults_apply_and_operator_props_override_them)
{
    char err[512], v[64];
    config_kv defs[] = {{(char *)"linger.ms", (char *)"77"},
                        {(char *)"message.timeout.ms", (char *)"12345"},
                        {(char *)"fetch.wait.max.ms", (char *)"33"}};
    config_kv ops[] = {{(char *)"linger.ms", (char *)"9"},
                       {(char *)"fetch.wait.max.ms", (char *)"44"}};
    config_kafka_props defaults = {defs, 3}, props = {ops, 2};

    kafka_producer *p =
        kafka_producer_new("127.0.0.1:1", &defaults, &props, NULL, err, sizeof(err));
    ck_assert_msg(p != NULL, "%s", err);
    ck_assert_str_eq(conf_value(kafka_producer_rk(p), "linger.ms", v, sizeof(v)), "9");
    ck_assert_str_eq(conf_value(kafka_producer_rk(p), "message.timeout.ms", v, sizeof(v)), "12345");
    /* Herald's own producer defaults are still there. */
    ck_assert_str_eq(conf_value(kafka_producer_rk(p), "acks", v, sizeof(v)), "-1");
    kafka_producer_destroy(p);

    kafka_consumer *c = kafka_consumer_new("127.0.0.1:1", "g", &defaults, NULL, err, sizeof(err));
    ck_assert_msg(c != NULL, "%s", err);
    ck_assert_str_eq(conf_value(kafka_consumer_rk(c), "fetch.wait.max.ms", v, sizeof(v)), "33");
    kafka_consumer_destroy(c);
    c = kafka_consumer_new("127.0.0.1:1", "g", &defaults, &props, err, sizeof(err));
    ck_assert_msg(c != NULL, "%s", err);
    ck_assert_str_eq(conf_value(kafka_consumer_rk(c), "fetch.wait.max.ms", v, sizeof(v)), "44");
    kafka_consumer_destroy(c);
}
END_TEST

START_TEST(test_group_member_sets_instance_id_session_and_heartbeat)
{
    char err[512], v[64];
    static const struct {
        long session;
        const char *heartbeat;
    } sessions[] = {{6000, "2000"}, {9000, "3000"}, {15000, "3000"}, {300000, "3000"}};
    for (size_t i = 0; i < sizeof sessions / sizeof sessions[0]; i++) {
        config_group_member m = {(char *)"herald-worker-1", sessions[i].session};
        kafka_consumer *c =
            kafka_member_consumer_new("127.0.0.1:1", "g", &m, NULL, NULL, err, sizeof(err));
        ck_assert_msg(c != NULL, "%s", err);
        rd_kafka_t *rk = kafka_consumer_rk(c);
        ck_assert_str_eq(conf_value(rk, "group.instance.id", v, sizeof(v)), "herald-worker-1");
        char want[24];
        snprintf(want, sizeof want, "%ld", sessions[i].session);
        ck_assert_str_eq(conf_value(rk, "session.timeout.ms", v, sizeof(v)), want);
        ck_assert_str_eq(conf_value(rk, "heartbeat.interval.ms", v, sizeof(v)),
                         sessions[i].heartbeat);
        kafka_consumer_destroy(c);
    }

    /* No id: a dynamic member; the operator's -X pairs still win. */
    config_kv kv[] = {{(char *)"session.timeout.ms", (char *)"7000"},
                      {(char *)"group.instance.id", (char *)"from-x"}};
    config_kafka_props props = {kv, 2};
    config_group_member m = {NULL, 20000};
    kafka_consumer *c =
        kafka_member_consumer_new("127.0.0.1:1", "g", &m, NULL, NULL, err, sizeof(err));
    ck_assert_msg(c != NULL, "%s", err);
    ck_assert_str_eq(conf_value(kafka_consumer_rk(c), "group.instance.id", v, sizeof(v)), "");
    ck_assert_str_eq(conf_value(kafka_consumer_rk(c), "session.timeout.ms", v, sizeof(v)), "20000");
    kafka_consumer_destroy(c);
    c = kafka_member_consumer_new("127.0.0.1:1", "g", &m, NULL, &props, err, sizeof(err));
    ck_assert_msg(c != NULL, "%s", err);
    ck_assert_str_eq(conf_value(kafka_consumer_rk(c), "group.instance.id", v, sizeof(v)), "from-x");
    ck_assert_str_eq(conf_value(kafka_consumer_rk(c), "session.timeout.ms", v, sizeof(v)), "7000");
    kafka_consumer_destroy(c);

    /* Without a member, librdkafka's defaults. */
    c = kafka_consumer_new("127.0.0.1:1", "g", NULL, NULL, err, sizeof(err));
    ck_assert_msg(c != NULL, "%s", err);
    ck_assert_str_eq(conf_value(kafka_consumer_rk(c), "group.instance.id", v, sizeof(v)), "");
    ck_assert_str_eq(conf_value(kafka_consumer_rk(c), "session.timeout.ms", v, sizeof(v)), "45000");
    kafka_consumer_destroy(c);
}
END_TEST

static const test_case_entry cases[] = {
    TEST_ENTRY(test_no_error_needs_no_action),
    TEST_ENTRY(test_unreachable_or_moving_cluster_is_retriable),
    TEST_ENTRY(test_delivery_timeout_and_purge_are_retriable),
    TEST_ENTRY(test_messages_that_can_never_be_accepted_are_permanent),
    TEST_ENTRY(test_missing_topic_after_the_wait_is_permanent),
    TEST_ENTRY(test_fencing_and_fatal_errors_stop_the_client),
    TEST_ENTRY(test_codes_newer_than_the_table_are_not_retried_forever),
    TEST_ENTRY(test_error_object_code_is_used_when_no_code_is_given),
    TEST_ENTRY(test_fatal_flag_of_an_error_object_wins_over_its_code),
    TEST_ENTRY(test_class_names_are_stable_for_logs),
    TEST_ENTRY(test_program_defaults_apply_and_operator_props_override_them),
    TEST_ENTRY(test_group_member_sets_instance_id_session_and_heartbeat),
};

TEST_MAIN("kafka_errors", cases)
