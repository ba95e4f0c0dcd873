/*
 * Unit tests of common/dlq: the dead-letter and retry headers every stage
 * writes, by the rule of docs/interface.md section 3.1.
 */
#include "testutil.h"

#include "dlq.h"

#include <string.h>

static const dlq_origin here = {"retry.email", 3, 42, 1700000000000LL};

static const char *get(const rd_kafka_headers_t *h, const char *name, char *buf, size_t n)
{
    ck_assert_int_ge(hdr_get(h, name, buf, n), 0);
    return buf;
}

static size_t count(const rd_kafka_headers_t *h, const char *name)
{
    const void *v;
    size_t n, c = 0;
    for (size_t i = 0; rd_kafka_header_get(h, i, name, &v, &n) == RD_KAFKA_RESP_ERR_NO_ERROR; i++)
        c++;
    return c;
}

typedef struct {
    const char *name, *value;
} want;

/* Each name reads as its value, and is there exactly once. */
static void expect(const rd_kafka_headers_t *h, const want *w, size_t n)
{
    char b[64];
    for (size_t i = 0; i < n; i++) {
        ck_assert_str_eq(get(h, w[i].name, b, sizeof b), w[i].value);
        ck_assert_uint_eq(count(h, w[i].name), 1);
    }
}

#define EXPECT(h, ...)                                                                             \
    expect((h), (const want[]){__VA_ARGS__}, sizeof((const want[]){__VA_ARGS__}) / sizeof(want))

START_TEST(test_a_fresh_record_gets_every_header)
{
    rd_kafka_headers_t *h =
        dlq_headers(NULL, "invalid_event", "no type", "dispatcher", &here, 1, 1700000000123LL);
    ck_assert_ptr_nonnull(h);
    EXPECT(h, {HDR_DLQ_REASON, "invalid_event"}, {HDR_DLQ_ERROR, "no type"},
           {HDR_DLQ_STAGE, "dispatcher"}, {HDR_ORIGINAL_TOPIC, "retry.email"},
           {HDR_ORIGINAL_PARTITION, "3"}, {HDR_ORIGINAL_OFFSET, "42"},
           {HDR_ORIGINAL_TIMESTAMP, "1700000000000"}, {HDR_ATTEMPTS, "1"},
           {HDR_FAILED_AT, "2023-11-14T22:13:20.123Z"});
    rd_kafka_headers_destroy(h);
}

START_TEST(test_failure_headers_are_replaced_and_originals_and_others_kept)
{
    rd_kafka_headers_t *in = rd_kafka_headers_new(16);
    ck_assert_int_eq(kafka_header_add_str(in, HDR_DLQ_REASON, "max_attempts"), 0);
    ck_assert_int_eq(kafka_header_add_str(in, HDR_DLQ_STAGE, "worker.email"), 0);
    ck_assert_int_eq(kafka_header_add_str(in, HDR_RETRY_ATTEMPTS, "4"), 0);
    ck_assert_int_eq(kafka_header_add_str(in, HDR_ATTEMPTS, "5"), 0);
    ck_assert_int_eq(kafka_header_add_str(in, HDR_FAILED_AT, "2020-01-01T00:00:00.000Z"), 0);
    ck_assert_int_eq(kafka_header_add_str(in, HDR_ORIGINAL_TOPIC, "deliveries.email"), 0);
    ck_assert_int_eq(kafka_header_add_str(in, HDR_ORIGINAL_PARTITION, "0"), 0);
    ck_assert_int_eq(kafka_header_add_str(in, HDR_ORIGINAL_OFFSET, "7"), 0);
    ck_assert_int_eq(kafka_header_add_str(in, HDR_ORIGINAL_TIMESTAMP, "1600000000000"), 0);
    ck_assert_int_eq(kafka_header_add_str(in, HDR_REQUEUED_AT, "2020-01-02T00:00:00.000Z"), 0);
    ck_assert_int_eq(kafka_header_add_str(in, "traceparent", "00-abc-def-01"), 0);

    /* The dispatcher's rule is the workers': a requeued dead letter failing again. */
    rd_kafka_headers_t *h =
        dlq_headers(in, "invalid_json", "bad", "dispatcher", &here, 1, 1700000000123LL);
    ck_assert_ptr_nonnull(h);
    EXPECT(h, {HDR_DLQ_REASON, "invalid_json"}, {HDR_DLQ_STAGE, "dispatcher"}, {HDR_ATTEMPTS, "1"},
           {HDR_FAILED_AT, "2023-11-14T22:13:20.123Z"}, {HDR_ORIGINAL_TOPIC, "deliveries.email"},
           {HDR_ORIGINAL_PARTITION, "0"}, {HDR_ORIGINAL_OFFSET, "7"},
           {HDR_ORIGINAL_TIMESTAMP, "1600000000000"}, {HDR_REQUEUED_AT, "2020-01-02T00:00:00.000Z"},
           {"traceparent", "00-abc-def-01"});
    ck_assert(!hdr_has(h, HDR_RETRY_ATTEMPTS));
    rd_kafka_headers_destroy(h);
    rd_kafka_headers_destroy(in);
}

START_TEST(test_a_retry_stamps_the_original_once)
{
    char b[64];
    rd_kafka_headers_t *first = dlq_retry_headers(NULL, &here, 1, 1700000001000LL);
    ck_assert_ptr_nonnull(first);
    ck_assert_str_eq(get(first, HDR_ORIGINAL_TOPIC, b, sizeof b), "retry.email");
    ck_assert_str_eq(get(first, HDR_RETRY_ATTEMPTS, b, sizeof b), "1");
    ck_assert_str_eq(get(first, HDR_RETRY_NOT_BEFORE, b, sizeof b), "1700000001000");
    int64_t nb = 0;
    ck_assert_int_eq(hdr_get_int64(first, HDR_RETRY_NOT_BEFORE, &nb), 0);
    ck_assert_int_eq(nb, 1700000001000LL);

    const dlq_origin later = {"retry.email", 1, 99, 1700000002000LL};
    rd_kafka_headers_t *second = dlq_retry_headers(first, &later, 2, 1700000003000LL);
    ck_assert_ptr_nonnull(second);
    ck_assert_str_eq(get(second, HDR_ORIGINAL_OFFSET, b, sizeof b), "42");
    ck_assert_str_eq(get(second, HDR_RETRY_ATTEMPTS, b, sizeof b), "2");
    ck_assert_uint_eq(count(second, HDR_RETRY_ATTEMPTS), 1);
    ck_assert_uint_eq(count(second, HDR_ORIGINAL_OFFSET), 1);
    rd_kafka_headers_destroy(second);
    rd_kafka_headers_destroy(first);
}

START_TEST(test_header_reads_report_absence_and_truncation)
{
    char b[4];
    rd_kafka_headers_t *h = rd_kafka_headers_new(4);
    ck_assert_int_eq(kafka_header_add_str(h, "a", "hello"), 0);
    ck_assert_int_eq(kafka_header_add_str(h, "n", "12x"), 0);
    ck_assert_int_eq(hdr_get(h, "missing", b, sizeof b), -1);
    ck_assert_int_eq(hdr_get(NULL, "a", b, sizeof b), -1);
    ck_assert_int_eq(hdr_get(h, "a", b, sizeof b), -2);
    ck_assert_str_eq(b, "hel");
    int64_t v = 5;
    ck_assert_int_eq(hdr_get_int64(h, "n", &v), -1);
    ck_assert_int_eq(v, 5);
    ck_assert(!hdr_has(NULL, "a"));
    rd_kafka_headers_destroy(h);
}

static const test_case_entry cases[] = {
    TEST_ENTRY(test_a_fresh_record_gets_every_header),
    TEST_ENTRY(test_failure_headers_are_replaced_and_originals_and_others_kept),
    TEST_ENTRY(test_a_retry_stamps_the_original_once),
    TEST_ENTRY(test_header_reads_report_absence_and_truncation),
};

TEST_MAIN("dlq_headers", cases)
