/*
 * dlqrec: a dead letter's fields come from the contract's headers and the
 * payload; filters select by stage, reason, channel and time; --json keeps
 * every header and parses the payload; a requeued record loses the
 * dead-letter headers, names where it came from and starts its attempts
 * anew; stats count per stage and reason.
 */
#include <string.h>

#include "dlqrec.h"
#include "testutil.h"

static const char *const delivery_json =
    "{\"idempotency_key\":\"k1\",\"event_id\":\"e-1\",\"user_id\":\"u-1\",\"channel\":\"email\","
    "\"attempt\":5,\"address\":\"a@example.com\"}";

static rd_kafka_headers_t *dead_letter_headers(void)
{
    rd_kafka_headers_t *h = rd_kafka_headers_new(12);
    rd_kafka_header_add(h, "trace", -1, "abc", -1);
    rd_kafka_header_add(h, HDR_DLQ_REASON, -1, "max_attempts", -1);
    rd_kafka_header_add(h, HDR_DLQ_ERROR, -1, "451 try later", -1);
    rd_kafka_header_add(h, HDR_DLQ_STAGE, -1, "worker.email", -1);
    rd_kafka_header_add(h, HDR_ORIGINAL_TOPIC, -1, "herald.deliveries.email", -1);
    rd_kafka_header_add(h, HDR_ORIGINAL_PARTITION, -1, "3", -1);
    rd_kafka_header_add(h, HDR_ORIGINAL_OFFSET, -1, "42", -1);
    rd_kafka_header_add(h, HDR_ORIGINAL_TIMESTAMP, -1, "1700000000000", -1);
    rd_kafka_header_add(h, HDR_ATTEMPTS, -1, "5", -1);
    rd_kafka_header_add(h, HDR_FAILED_AT, -1, "2026-01-01T00:00:00.000Z", -1);
    rd_kafka_header_add(h, "herald.retry.attempts", -1, "4", -1);
    return h;
}

static void make(dlqrec *r, int64_t ts)
{
    char err[128];
    rd_kafka_headers_t *h = dead_letter_headers();
    ck_assert_int_eq(dlqrec_init(r, 1, 7, ts, "u-1", 3, delivery_json, strlen(delivery_json), h,
                                 err, sizeof(err)),
                     0);
    rd_kafka_headers_destroy(h);
}

START_TEST(test_dlqrec_reads_contract_headers_and_payload_fields)
{
    dlqrec r;
    make(&r, 1000);
    ck_assert_str_eq(r.stage, "worker.email");
    ck_assert_str_eq(r.reason, "max_attempts");
    ck_assert_str_eq(r.error, "451 try later");
    ck_assert_str_eq(r.orig_topic, "herald.deliveries.email");
    ck_assert_int_eq(r.orig_partition, 3);
    ck_assert_int_eq(r.orig_offset, 42);
    ck_assert_int_eq(r.attempts, 5);
    ck_assert_str_eq(r.user, "u-1");
    ck_assert_str_eq(r.event_id, "e-1");
    ck_assert_str_eq(r.channel, "email");
    dlqrec_free(&r);
}
END_TEST

START_TEST(test_dlqrec_without_headers_or_json_has_empty_fields)
{
    dlqrec r;
    char err[128];
    ck_assert_int_eq(
        dlqrec_init(&r, 0, 1, -1, "topic:news", 10, "not json", 8, NULL, err, sizeof(err)), 0);
    ck_assert_str_eq(r.stage, "");
    ck_assert_int_eq(r.attempts, -1);
    ck_assert_str_eq(r.user, "topic:news");
    ck_assert_str_eq(r.event_id, "");
    json_t *j = dlqrec_to_json(&r);
    ck_assert_ptr_nonnull(j);
    ck_assert_str_eq(json_string_value(json_object_get(j, "payload")), "not json");
    ck_assert(json_is_null(json_object_get(j, "attempts")));
    json_decref(j);
    dlqrec_free(&r);
}
END_TEST

START_TEST(test_dlqrec_filters_by_stage_reason_channel_and_time)
{
    dlqrec r;
    make(&r, 5000);
    ck_assert(dlqrec_matches(&r, &(dlqrec_filter){NULL, NULL, NULL, -1, 0}));
    ck_assert(
        dlqrec_matches(&r, &(dlqrec_filter){"worker.email", "max_attempts", "email", 5000, 0}));
    ck_assert(!dlqrec_matches(&r, &(dlqrec_filter){"dispatcher", NULL, NULL, -1, 0}));
    ck_assert(!dlqrec_matches(&r, &(dlqrec_filter){NULL, "invalid_json", NULL, -1, 0}));
    ck_assert(!dlqrec_matches(&r, &(dlqrec_filter){NULL, NULL, "sms", -1, 0}));
    ck_assert(!dlqrec_matches(&r, &(dlqrec_filter){NULL, NULL, NULL, 5001, 0}));
    /* until is exclusive; 0 means no bound. */
    ck_assert(dlqrec_matches(&r, &(dlqrec_filter){NULL, NULL, NULL, -1, 5001}));
    ck_assert(!dlqrec_matches(&r, &(dlqrec_filter){NULL, NULL, NULL, -1, 5000}));
    dlqrec_free(&r);
}
END_TEST

START_TEST(test_dlqrec_json_keeps_every_header_and_parses_payload)
{
    dlqrec r;
    make(&r, 1000);
    json_t *j = dlqrec_to_json(&r);
    ck_assert_ptr_nonnull(j);
    json_t *h = json_object_get(j, "headers");
    ck_assert_str_eq(json_string_value(json_object_get(h, "trace")), "abc");
    ck_assert_str_eq(json_string_value(json_object_get(h, HDR_FAILED_AT)),
                     "2026-01-01T00:00:00.000Z");
    ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(j, "payload"), "attempt")),
                     5);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "offset")), 7);
    ck_assert_str_eq(json_string_value(json_object_get(j, "timestamp")),
                     "1970-01-01T00:00:01.000Z");
    json_decref(j);
    dlqrec_free(&r);
}
END_TEST

START_TEST(test_dlqrec_requeue_resets_attempt_and_strips_dead_letter_headers)
{
    dlqrec r;
    make(&r, 1000);
    char *value = NULL;
    size_t vlen = 0;
    ck_assert_int_eq(dlqrec_requeue_value(&r, &value, &vlen), 0);
    json_t *v = json_loadb(value, vlen, 0, NULL);
    ck_assert_int_eq(json_integer_value(json_object_get(v, "attempt")), 1);
    ck_assert_str_eq(json_string_value(json_object_get(v, "idempotency_key")), "k1");
    json_decref(v);
    free(value);

    rd_kafka_headers_t *h = dlqrec_requeue_headers(&r, "herald.dlq", 0);
    ck_assert_ptr_nonnull(h);
    const void *val;
    size_t size;
    ck_assert_int_eq(rd_kafka_header_get_last(h, "trace", &val, &size), 0);
    ck_assert_int_eq(rd_kafka_header_get_last(h, HDR_REQUEUED_FROM, &val, &size), 0);
    ck_assert_int_eq((int)size, (int)strlen("herald.dlq:1:7"));
    ck_assert(memcmp(val, "herald.dlq:1:7", size) == 0);
    ck_assert_int_eq(rd_kafka_header_get_last(h, HDR_REQUEUED_AT, &val, &size), 0);
    const char *gone[] = {HDR_DLQ_REASON, HDR_DLQ_STAGE, HDR_ORIGINAL_TOPIC,
                          HDR_ATTEMPTS,   HDR_FAILED_AT, "herald.retry.attempts"};
    for (size_t i = 0; i < sizeof(gone) / sizeof(gone[0]); i++)
        ck_assert_int_ne(rd_kafka_header_get_last(h, gone[i], &val, &size), 0);
    rd_kafka_headers_destroy(h);
    dlqrec_free(&r);
}
END_TEST

START_TEST(test_dlqrec_requeue_keeps_non_delivery_values_byte_for_byte)
{
    dlqrec r;
    char err[64], *value = NULL;
    size_t vlen = 0;
    const char *ev = "{\"event_id\":\"x\",  \"type\":\"a.b\"}";
    ck_assert_int_eq(dlqrec_init(&r, 0, 0, 0, NULL, 0, ev, strlen(ev), NULL, err, sizeof(err)), 0);
    ck_assert_int_eq(dlqrec_requeue_value(&r, &value, &vlen), 0);
    ck_assert_str_eq(value, ev);
    free(value);
    dlqrec_free(&r);
}
END_TEST

START_TEST(test_dlqrec_parses_positions_and_rejects_garbage)
{
    int32_t p;
    int64_t o;
    char err[128];
    ck_assert_int_eq(dlqrec_parse_position("3:12345", &p, &o, err, sizeof(err)), 0);
    ck_assert_int_eq(p, 3);
    ck_assert_int_eq(o, 12345);
    const char *bad[] = {"", "3", ":4", "3:", "a:1", "1:-2", "1:2:3", "99999999999:1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(dlqrec_parse_position(bad[i], &p, &o, err, sizeof(err)) == -1, "%s", bad[i]);
}
END_TEST

START_TEST(test_dlqrec_stats_count_per_stage_and_reason_with_time_range)
{
    dlqrec_stats *s = dlqrec_stats_new();
    dlqrec a, b;
    char err[64];
    make(&a, 3000);
    make(&b, 1000);
    ck_assert_int_eq(dlqrec_stats_add(s, &a), 0);
    ck_assert_int_eq(dlqrec_stats_add(s, &b), 0);
    dlqrec c;
    ck_assert_int_eq(dlqrec_init(&c, 0, 0, 2000, NULL, 0, "x", 1, NULL, err, sizeof(err)), 0);
    ck_assert_int_eq(dlqrec_stats_add(s, &c), 0);
    const dlqrec_stats_row *rows;
    ck_assert_int_eq((int)dlqrec_stats_rows(s, &rows), 2);
    ck_assert_str_eq(rows[0].stage, "");
    ck_assert_str_eq(rows[1].stage, "worker.email");
    ck_assert_int_eq(rows[1].count, 2);
    ck_assert_int_eq(rows[1].oldest_ms, 1000);
    ck_assert_int_eq(rows[1].newest_ms, 3000);
    ck_assert_int_eq(dlqrec_stats_total(s), 3);
    dlqrec_free(&a);
    dlqrec_free(&b);
    dlqrec_free(&c);
    dlqrec_stats_free(s);
}
END_TEST

START_TEST(test_dlqrec_stats_json_names_its_rows_and_dashes_unknown_times)
{
    dlqrec_stats *s = dlqrec_stats_new();
    dlqrec a, c;
    char err[64];
    make(&a, 3000);
    ck_assert_int_eq(dlqrec_init(&c, 0, 0, -1, NULL, 0, "x", 1, NULL, err, sizeof(err)), 0);
    ck_assert_int_eq(dlqrec_stats_add(s, &a), 0);
    ck_assert_int_eq(dlqrec_stats_add(s, &c), 0);
    json_t *j = dlqrec_stats_to_json(s, "rows");
    ck_assert_ptr_nonnull(j);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "total")), 2);
    json_t *rows = json_object_get(j, "rows");
    ck_assert_int_eq((int)json_array_size(rows), 2);
    json_t *unknown = json_array_get(rows, 0), *email = json_array_get(rows, 1);
    ck_assert_str_eq(json_string_value(json_object_get(unknown, "oldest")), "-");
    ck_assert_str_eq(json_string_value(json_object_get(email, "stage")), "worker.email");
    ck_assert_int_eq(json_integer_value(json_object_get(email, "count")), 1);
    ck_assert_str_eq(json_string_value(json_object_get(email, "newest")),
                     "1970-01-01T00:00:03.000Z");
    json_t *g = dlqrec_stats_to_json(s, "groups");
    ck_assert(json_equal(json_object_get(g, "groups"), rows));
    json_decref(g);
    json_decref(j);
    dlqrec_free(&a);
    dlqrec_free(&c);
    dlqrec_stats_free(s);
}
END_TEST

static const test_case_entry cases[] = {
    TEST_ENTRY(test_dlqrec_reads_contract_headers_and_payload_fields),
    TEST_ENTRY(test_dlqrec_without_headers_or_json_has_empty_fields),
    TEST_ENTRY(test_dlqrec_filters_by_stage_reason_channel_and_time),
    TEST_ENTRY(test_dlqrec_json_keeps_every_header_and_parses_payload),
    TEST_ENTRY(test_dlqrec_requeue_resets_attempt_and_strips_dead_letter_headers),
    TEST_ENTRY(test_dlqrec_requeue_keeps_non_delivery_values_byte_for_byte),
    TEST_ENTRY(test_dlqrec_parses_positions_and_rejects_garbage),
    TEST_ENTRY(test_dlqrec_stats_count_per_stage_and_reason_with_time_range),
    TEST_ENTRY(test_dlqrec_stats_json_names_its_rows_and_dashes_unknown_times),
};

TEST_MAIN("ctl_dlqrec", cases)
