/*
 * Unit tests of common/webhook_call (the call record) and of the answer
 * classification of webhooks/post: what a status webhook carries, and
 * which answers are retried.
 */
#include "post.h"
#include "testutil.h"
#include "webhook_call.h"

#include <jansson.h>
#include <string.h>

#include "headers.h"
#include "ids.h"

#define ENDPOINT "aaaaaaaa-0000-4000-8000-000000000001"

START_TEST(test_every_reported_status_has_a_type_and_failed_is_undelivered)
{
    ck_assert_str_eq(webhook_type_of_status("sent"), "delivery.sent");
    ck_assert_str_eq(webhook_type_of_status("delivered"), "delivery.delivered");
    ck_assert_str_eq(webhook_type_of_status("undelivered"), "delivery.undelivered");
    ck_assert_str_eq(webhook_type_of_status("failed"), "delivery.undelivered");
    ck_assert_str_eq(webhook_type_of_status("bounced"), "delivery.bounced");
    ck_assert_str_eq(webhook_type_of_status("complained"), "delivery.complained");
    ck_assert_str_eq(webhook_type_of_status("suppressed"), "delivery.suppressed");
    ck_assert_ptr_null(webhook_type_of_status("pending"));
    ck_assert_ptr_null(webhook_type_of_status("skipped"));
    ck_assert_ptr_null(webhook_type_of_status(NULL));
    ck_assert_str_eq(webhook_type_of_inbox("read"), "inbox.read");
    ck_assert_str_eq(webhook_type_of_inbox("seen"), "inbox.seen");
    ck_assert_ptr_null(webhook_type_of_inbox("archived"));
    for (size_t i = 0; webhook_types[i] != NULL; i++)
        ck_assert(webhook_type_valid(webhook_types[i]));
    ck_assert(webhook_type_valid("inbox.read"));
    ck_assert(!webhook_type_valid("delivery.failed"));
    ck_assert(!webhook_type_valid(NULL));
}
END_TEST

START_TEST(test_call_id_is_the_same_every_time_and_differs_per_row_and_endpoint)
{
    char a[ID_UUID_SIZE], b[ID_UUID_SIZE], c[ID_UUID_SIZE], d[ID_UUID_SIZE];
    ck_assert_int_eq(webhook_call_id("delivery_history", 42, ENDPOINT, a), 0);
    ck_assert_int_eq(webhook_call_id("delivery_history", 42, ENDPOINT, b), 0);
    ck_assert_int_eq(webhook_call_id("delivery_history", 43, ENDPOINT, c), 0);
    ck_assert_int_eq(
        webhook_call_id("delivery_history", 42, "bbbbbbbb-0000-4000-8000-000000000002", d), 0);
    char e[ID_UUID_SIZE];
    ck_assert_int_eq(webhook_call_id("webhook_inbox_history", 42, ENDPOINT, e), 0);
    ck_assert_str_ne(a, e); /* row 42 of another table */
    ck_assert(id_is_uuid(a));
    ck_assert_str_eq(a, b);
    ck_assert_str_ne(a, c);
    ck_assert_str_ne(a, d);
    ck_assert_int_eq(a[14], '5'); /* version 5: name-based */
}
END_TEST

START_TEST(test_body_is_the_envelope_around_data_and_headers_name_the_call)
{
    buf b;
    buf_init(&b, 0);
    ck_assert_int_eq(webhook_call_body(&b, ENDPOINT, "delivery.bounced", "2026-12-07T12:00:00.000Z",
                                       "{\"status\":\"bounced\"}"),
                     0);
    json_error_t e;
    json_t *doc = json_loads(b.data, 0, &e);
    ck_assert_ptr_nonnull(doc);
    ck_assert_str_eq(json_string_value(json_object_get(doc, "id")), ENDPOINT);
    ck_assert_str_eq(json_string_value(json_object_get(doc, "type")), "delivery.bounced");
    ck_assert_str_eq(json_string_value(json_object_get(doc, "created_at")),
                     "2026-12-07T12:00:00.000Z");
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(doc, "data"), "status")),
                     "bounced");
    json_decref(doc);
    buf_free(&b);

    rd_kafka_headers_t *h = webhook_call_headers(ENDPOINT, "delivery.sent");
    char v[64];
    ck_assert_int_eq(hdr_get(h, HDR_WEBHOOK_ID, v, sizeof v), ID_UUID_LEN);
    ck_assert_str_eq(v, ENDPOINT);
    ck_assert_int_gt(hdr_get(h, HDR_WEBHOOK_TYPE, v, sizeof v), 0);
    ck_assert_str_eq(v, "delivery.sent");
    rd_kafka_headers_destroy(h);
}
END_TEST

START_TEST(test_2xx_succeeds_timeouts_429_and_5xx_retry_other_answers_are_final)
{
    ck_assert_int_eq(post_classify(200), POST_OK);
    ck_assert_int_eq(post_classify(204), POST_OK);
    ck_assert_int_eq(post_classify(299), POST_OK);
    ck_assert_int_eq(post_classify(0), POST_RETRY); /* no answer */
    ck_assert_int_eq(post_classify(408), POST_RETRY);
    ck_assert_int_eq(post_classify(429), POST_RETRY);
    ck_assert_int_eq(post_classify(500), POST_RETRY);
    ck_assert_int_eq(post_classify(503), POST_RETRY);
    ck_assert_int_eq(post_classify(301), POST_DEAD); /* redirects are not followed */
    ck_assert_int_eq(post_classify(400), POST_DEAD);
    ck_assert_int_eq(post_classify(401), POST_DEAD);
    ck_assert_int_eq(post_classify(404), POST_DEAD);
    ck_assert_int_eq(post_classify(410), POST_DEAD);
}
END_TEST

static const test_case_entry cases[] = {
    TEST_ENTRY(test_every_reported_status_has_a_type_and_failed_is_undelivered),
    TEST_ENTRY(test_call_id_is_the_same_every_time_and_differs_per_row_and_endpoint),
    TEST_ENTRY(test_body_is_the_envelope_around_data_and_headers_name_the_call),
    TEST_ENTRY(test_2xx_succeeds_timeouts_429_and_5xx_retry_other_answers_are_final),
};

TEST_MAIN("webhook_call", cases)
