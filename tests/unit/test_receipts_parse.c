/* Unit tests of producer/receipts_parse: the providers' callbacks, parsed. */
#include "testutil.h"

#include "buf.h"
#include "receipts_parse.h"

#include <string.h>

#define KEY "1b4e28ba-2fa1-41d2-883f-0016d3cca427"

START_TEST(test_form_decodes_plus_and_escapes_in_order)
{
    receipts_form f;
    char err[128];
    static const char body[] = "To=%2B15551234567&Body=hi+there&Empty=&Flag&A%26B=c%3Dd";
    ck_assert_int_eq(receipts_form_parse(body, strlen(body), &f, err, sizeof err), 0);
    ck_assert_uint_eq(f.count, 5);
    ck_assert_str_eq(f.names[0], "To");
    ck_assert_str_eq(receipts_form_get(&f, "To"), "+15551234567");
    ck_assert_str_eq(receipts_form_get(&f, "Body"), "hi there");
    ck_assert_str_eq(receipts_form_get(&f, "Empty"), "");
    ck_assert_str_eq(receipts_form_get(&f, "Flag"), "");
    ck_assert_str_eq(receipts_form_get(&f, "A&B"), "c=d");
    ck_assert_ptr_null(receipts_form_get(&f, "Nope"));
    receipts_form_free(&f);
}

START_TEST(test_form_refuses_bad_escapes_and_nul)
{
    static const char *const bad[] = {"a=%", "a=%4", "a=%zz", "a=%00", "%=1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        receipts_form f;
        ck_assert_msg(receipts_form_parse(bad[i], strlen(bad[i]), &f, NULL, 0) != 0, "took %s",
                      bad[i]);
        receipts_form_free(&f);
    }
}

/* A Twilio form of status st (and error code, or NULL). */
static void twilio(const char *st, const char *code, receipt *r, int want)
{
    char body[256], err[160];
    snprintf(body, sizeof body, "MessageSid=SM123&MessageStatus=%s&To=%%2B15550001111%s%s", st,
             code ? "&ErrorCode=" : "", code ? code : "");
    receipts_form f;
    ck_assert_int_eq(receipts_form_parse(body, strlen(body), &f, err, sizeof err), 0);
    ck_assert_int_eq(receipts_twilio(&f, KEY, r, err, sizeof err), want);
    receipts_form_free(&f);
}

START_TEST(test_twilio_statuses_map_to_receipts)
{
    receipt r;
    twilio("delivered", NULL, &r, 0);
    ck_assert_str_eq(r.status, "delivered");
    ck_assert_str_eq(r.message_id, "SM123");
    ck_assert_str_eq(r.receipt_id, "SM123:delivered");
    ck_assert_str_eq(r.key, KEY);
    ck_assert_str_eq(r.address, "+15550001111");
    twilio("failed", "30003", &r, 0);
    ck_assert_str_eq(r.status, "undelivered");
    ck_assert_ptr_nonnull(strstr(r.reason, "30003"));
    twilio("undelivered", "30005", &r, 0);
    ck_assert_str_eq(r.status, "undelivered");
    twilio("sent", NULL, &r, 0);
    ck_assert_str_eq(r.status, "sent");
    static const char *const ignored[] = {"queued", "sending", "accepted"};
    for (size_t i = 0; i < 3; i++) {
        twilio(ignored[i], NULL, &r, 0);
        ck_assert_ptr_null(r.status);
    }
    twilio("exploded", NULL, &r, -1);
}

START_TEST(test_twilio_key_is_taken_only_when_it_is_a_uuid)
{
    receipts_form f;
    receipt r;
    static const char body[] = "MessageSid=SM1&MessageStatus=delivered";
    ck_assert_int_eq(receipts_form_parse(body, strlen(body), &f, NULL, 0), 0);
    ck_assert_int_eq(receipts_twilio(&f, NULL, &r, NULL, 0), 0);
    ck_assert_str_eq(r.key, "");
    ck_assert_int_eq(receipts_twilio(&f, "not-a-key", &r, NULL, 0), 0);
    ck_assert_str_eq(r.key, "");
    ck_assert_str_eq(r.message_id, "SM1");
    receipts_form_free(&f);
}

START_TEST(test_twilio_needs_a_sid_and_status)
{
    receipts_form f;
    receipt r;
    static const char body[] = "MessageStatus=delivered";
    ck_assert_int_eq(receipts_form_parse(body, strlen(body), &f, NULL, 0), 0);
    ck_assert_int_eq(receipts_twilio(&f, KEY, &r, NULL, 0), -1);
    receipts_form_free(&f);
}

static int http_cb(const char *json, receipt *r)
{
    json_t *doc = json_loads(json, 0, NULL);
    ck_assert_ptr_nonnull(doc);
    char err[160];
    int rc = receipts_http(doc, r, err, sizeof err);
    json_decref(doc);
    return rc;
}

START_TEST(test_http_callback_fields)
{
    receipt r;
    ck_assert_int_eq(http_cb("{\"id\":\"cb1\",\"idempotency_key\":\"" KEY
                             "\",\"message_id\":\"m1\",\"status\":\"bounced\","
                             "\"bounce_kind\":\"permanent\",\"reason\":\"no such user\","
                             "\"occurred_at\":\"2026-12-07T10:00:00Z\"}",
                             &r),
                     0);
    ck_assert_str_eq(r.receipt_id, "cb1");
    ck_assert_str_eq(r.message_id, "m1");
    ck_assert_str_eq(r.key, KEY);
    ck_assert_str_eq(r.status, "bounced");
    ck_assert_str_eq(r.bounce_kind, "permanent");
    ck_assert_str_eq(r.reason, "no such user");
    ck_assert(r.occurred_ms > 0);
    ck_assert_int_eq(
        http_cb("{\"id\":\"cb2\",\"idempotency_key\":\"" KEY "\",\"status\":\"bounced\"}", &r), 0);
    ck_assert_str_eq(r.bounce_kind, "undetermined");
}

START_TEST(test_http_callback_refuses_what_it_does_not_know)
{
#define K "\"idempotency_key\":\"" KEY "\""
    receipt r;
    static const char *const bad[] = {
        "{" K ",\"status\":\"delivered\"}",
        "{\"id\":\"c\",\"status\":\"delivered\"}",
        "{\"id\":\"c\",\"idempotency_key\":\"k1\",\"status\":\"delivered\"}",
        "{\"id\":\"c\"," K ",\"status\":\"opened\"}",
        "{\"id\":\"c\"," K ",\"status\":\"delivered\",\"bounce_kind\":\"hard\"}",
        "{\"id\":\"c\"," K ",\"status\":\"delivered\",\"bounce_kind\":\"permanent\"}",
        "{\"id\":\"c\"," K ",\"status\":\"delivered\",\"occurred_at\":\"then\"}",
        "{\"id\":\"c\"," K ",\"status\":\"delivered\",\"extra\":1}",
        "{\"id\":7," K ",\"status\":\"delivered\"}",
    };
#undef K
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(http_cb(bad[i], &r) != 0, "took %s", bad[i]);
}

static char *sns_json(const char *type, const char *message, bool subject)
{
    json_t *d =
        json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "Type", type, "MessageId", "mid-1", "TopicArn",
                  "arn:aws:sns:eu-west-1:1:ses", "Message", message, "Timestamp",
                  "2026-12-07T12:00:00.000Z", "SignatureVersion", "1", "Signature", "c2ln");
    if (subject)
        json_object_set_new(d, "Subject", json_string("Hello"));
    if (strcmp(type, "Notification") != 0) {
        json_object_set_new(d, "SubscribeURL", json_string("https://sns.example/confirm"));
        json_object_set_new(d, "Token", json_string("tok"));
    }
    char *s = json_dumps(d, 0);
    json_decref(d);
    return s;
}

START_TEST(test_sns_string_to_sign_is_aws_documented_order)
{
    receipts_sns m;
    buf b;
    char *body = sns_json("Notification", "hi", true);
    ck_assert_int_eq(receipts_sns_parse(body, strlen(body), &m, NULL, 0), 0);
    buf_init(&b, 0);
    ck_assert_int_eq(receipts_sns_string_to_sign(&m, &b), 0);
    ck_assert_str_eq(b.data, "Message\nhi\nMessageId\nmid-1\nSubject\nHello\nTimestamp\n"
                             "2026-12-07T12:00:00.000Z\nTopicArn\narn:aws:sns:eu-west-1:1:ses\n"
                             "Type\nNotification\n");
    buf_free(&b);
    receipts_sns_free(&m);
    free(body);

    body = sns_json("SubscriptionConfirmation", "confirm me", false);
    ck_assert_int_eq(receipts_sns_parse(body, strlen(body), &m, NULL, 0), 0);
    ck_assert_int_eq(m.type, RECEIPTS_SNS_SUBSCRIBE);
    buf_init(&b, 0);
    ck_assert_int_eq(receipts_sns_string_to_sign(&m, &b), 0);
    ck_assert_str_eq(b.data, "Message\nconfirm me\nMessageId\nmid-1\nSubscribeURL\n"
                             "https://sns.example/confirm\nTimestamp\n2026-12-07T12:00:00.000Z\n"
                             "Token\ntok\nTopicArn\narn:aws:sns:eu-west-1:1:ses\n"
                             "Type\nSubscriptionConfirmation\n");
    buf_free(&b);
    receipts_sns_free(&m);
    free(body);
}

START_TEST(test_sns_parse_refuses_incomplete_messages)
{
    receipts_sns m;
    static const char *const bad[] = {
        "[]",
        "{\"Type\":\"Notification\"}",
        "{\"Type\":\"Other\",\"MessageId\":\"a\",\"TopicArn\":\"t\",\"Message\":\"m\","
        "\"Timestamp\":\"t\",\"Signature\":\"s\",\"SignatureVersion\":\"1\"}",
        "{\"Type\":\"Notification\",\"MessageId\":\"a\",\"TopicArn\":\"t\",\"Message\":\"m\","
        "\"Timestamp\":\"t\",\"Signature\":\"s\",\"SignatureVersion\":\"3\"}",
        "{\"Type\":\"SubscriptionConfirmation\",\"MessageId\":\"a\",\"TopicArn\":\"t\","
        "\"Message\":\"m\",\"Timestamp\":\"t\",\"Signature\":\"s\",\"SignatureVersion\":\"1\"}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ck_assert_msg(receipts_sns_parse(bad[i], strlen(bad[i]), &m, NULL, 0) != 0, "took %s",
                      bad[i]);
        receipts_sns_free(&m);
    }
}

/* The receipts of an SES notification text. */
static size_t ses(const char *message, receipt *out, int want)
{
    receipts_sns m;
    char *body = sns_json("Notification", message, false);
    size_t n = 0;
    char err[160];
    ck_assert_int_eq(receipts_sns_parse(body, strlen(body), &m, err, sizeof err), 0);
    ck_assert_int_eq(receipts_ses(&m, out, 4, &n, err, sizeof err), want);
    receipts_sns_free(&m);
    free(body);
    return n;
}

START_TEST(test_ses_bounce_names_the_key_from_message_id)
{
    receipt r[4];
    size_t n = ses("{\"notificationType\":\"Bounce\",\"bounce\":{\"bounceType\":\"Permanent\","
                   "\"bouncedRecipients\":[{\"emailAddress\":\"a@example.com\","
                   "\"diagnosticCode\":\"smtp; 550 5.1.1 no such user\"},"
                   "{\"emailAddress\":\"b@example.com\"}],"
                   "\"timestamp\":\"2026-12-07T11:00:00.000Z\"},"
                   "\"mail\":{\"messageId\":\"0100-ses-id\",\"commonHeaders\":"
                   "{\"messageId\":\"<" KEY "@herald>\"}}}",
                   r, 0);
    ck_assert_uint_eq(n, 2);
    ck_assert_str_eq(r[0].status, "bounced");
    ck_assert_str_eq(r[0].bounce_kind, "permanent");
    ck_assert_str_eq(r[0].key, KEY);
    ck_assert_str_eq(r[0].message_id, "0100-ses-id");
    ck_assert_str_eq(r[0].receipt_id, "mid-1:a@example.com");
    ck_assert_str_eq(r[1].receipt_id, "mid-1:b@example.com");
    ck_assert_str_eq(r[0].address, "a@example.com");
    ck_assert_ptr_nonnull(strstr(r[0].reason, "5.1.1"));
    ck_assert(r[0].occurred_ms > 0);
}

START_TEST(test_ses_kinds_and_header_fallback)
{
    receipt r[4];
    size_t n = ses("{\"eventType\":\"Complaint\",\"complaint\":{\"complainedRecipients\":"
                   "[{\"emailAddress\":\"a@example.com\"}],\"complaintFeedbackType\":\"abuse\"},"
                   "\"mail\":{\"messageId\":\"x\",\"headers\":[{\"name\":\"Subject\",\"value\":"
                   "\"s\"},{\"name\":\"Message-ID\",\"value\":\"<" KEY "@herald>\"}]}}",
                   r, 0);
    ck_assert_uint_eq(n, 1);
    ck_assert_str_eq(r[0].status, "complained");
    ck_assert_str_eq(r[0].key, KEY);
    n = ses("{\"notificationType\":\"Bounce\",\"bounce\":{\"bounceType\":\"Transient\","
            "\"bouncedRecipients\":[{\"emailAddress\":\"a@example.com\"}]},"
            "\"mail\":{\"messageId\":\"ses-only\"}}",
            r, 0);
    ck_assert_uint_eq(n, 1);
    ck_assert_str_eq(r[0].bounce_kind, "transient");
    ck_assert_str_eq(r[0].key, "");
    ck_assert_str_eq(r[0].message_id, "ses-only");
    n = ses("{\"notificationType\":\"Delivery\",\"delivery\":{\"recipients\":[\"a@example.com\"]},"
            "\"mail\":{\"messageId\":\"m\"}}",
            r, 0);
    ck_assert_uint_eq(n, 1);
    ck_assert_str_eq(r[0].status, "delivered");
    ck_assert_ptr_null(r[0].bounce_kind);
    ck_assert_uint_eq(ses("{\"eventType\":\"Open\",\"mail\":{}}", r, 0), 0);
    ses("not json", r, -1);
    ses("{\"notificationType\":\"Bounce\",\"bounce\":{},\"mail\":{\"messageId\":\"m\"}}", r, -1);
}

static const test_case_entry cases[] = {
    TEST_ENTRY(test_form_decodes_plus_and_escapes_in_order),
    TEST_ENTRY(test_form_refuses_bad_escapes_and_nul),
    TEST_ENTRY(test_twilio_statuses_map_to_receipts),
    TEST_ENTRY(test_twilio_key_is_taken_only_when_it_is_a_uuid),
    TEST_ENTRY(test_twilio_needs_a_sid_and_status),
    TEST_ENTRY(test_http_callback_fields),
    TEST_ENTRY(test_http_callback_refuses_what_it_does_not_know),
    TEST_ENTRY(test_sns_string_to_sign_is_aws_documented_order),
    TEST_ENTRY(test_sns_parse_refuses_incomplete_messages),
    TEST_ENTRY(test_ses_bounce_names_the_key_from_message_id),
    TEST_ENTRY(test_ses_kinds_and_header_fallback),
};

TEST_MAIN("receipts_parse", cases)
