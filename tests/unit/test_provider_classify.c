/*
 * How provider answers become outcomes (docs/interface.md section 6), and
 * Retry-After in both of its forms.
 */
#include <string.h>

#include <jansson.h>

#include "provider.h"
#include "testutil.h"

#define NOW 1795817455000 /* Fri, 27 Nov 2026 22:10:55 GMT */

static provider_result http(CURLcode rc, long status, const char *ra, bool push)
{
    provider_result r;
    memset(&r, 0, sizeof r);
    provider_classify_http(rc, status, ra, push, "{\"error\":\"x\"}", NOW, &r);
    return r;
}

START_TEST(test_http_2xx_is_sent)
{
    ck_assert_int_eq(http(CURLE_OK, 200, NULL, false).outcome, PROVIDER_SENT);
    ck_assert_int_eq(http(CURLE_OK, 201, NULL, false).outcome, PROVIDER_SENT);
    ck_assert_int_eq(http(CURLE_OK, 204, NULL, true).outcome, PROVIDER_SENT);
}
END_TEST

START_TEST(test_http_408_429_5xx_are_transient_provider_faults)
{
    long st[] = {408, 429, 500, 502, 503, 504, 599};
    for (size_t i = 0; i < sizeof st / sizeof st[0]; i++) {
        provider_result r = http(CURLE_OK, st[i], NULL, false);
        ck_assert_int_eq(r.outcome, PROVIDER_TRANSIENT);
        ck_assert(r.provider_fault);
        ck_assert_int_eq(r.retry_after_ms, 0);
    }
}
END_TEST

START_TEST(test_http_429_honours_retry_after_seconds_and_date)
{
    ck_assert_int_eq(http(CURLE_OK, 429, "7", false).retry_after_ms, 7000);
    ck_assert_int_eq(http(CURLE_OK, 503, "Fri, 27 Nov 2026 22:11:05 GMT", false).retry_after_ms,
                     10000);
    ck_assert_int_eq(http(CURLE_OK, 429, "garbage", false).retry_after_ms, 0);
}
END_TEST

START_TEST(test_http_transport_errors_are_transient)
{
    CURLcode codes[] = {CURLE_OPERATION_TIMEDOUT, CURLE_COULDNT_CONNECT, CURLE_RECV_ERROR,
                        CURLE_GOT_NOTHING, CURLE_SSL_CONNECT_ERROR};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        provider_result r = http(codes[i], 0, NULL, false);
        ck_assert_int_eq(r.outcome, PROVIDER_TRANSIENT);
        ck_assert(r.provider_fault);
    }
}
END_TEST

START_TEST(test_http_push_404_410_are_dead_tokens_sms_permanent)
{
    ck_assert_int_eq(http(CURLE_OK, 404, NULL, true).outcome, PROVIDER_DEAD_TOKEN);
    ck_assert_int_eq(http(CURLE_OK, 410, NULL, true).outcome, PROVIDER_DEAD_TOKEN);
    ck_assert_int_eq(http(CURLE_OK, 404, NULL, false).outcome, PROVIDER_PERMANENT);
    ck_assert_int_eq(http(CURLE_OK, 410, NULL, false).outcome, PROVIDER_PERMANENT);
}
END_TEST

START_TEST(test_http_other_4xx_and_unexpected_are_permanent)
{
    long st[] = {400, 401, 403, 413, 422, 301};
    for (size_t i = 0; i < sizeof st / sizeof st[0]; i++) {
        provider_result r = http(CURLE_OK, st[i], NULL, true);
        ck_assert_int_eq(r.outcome, PROVIDER_PERMANENT);
        ck_assert(!r.provider_fault);
        ck_assert_ptr_nonnull(strstr(r.message, "HTTP"));
    }
}
END_TEST

START_TEST(test_smtp_reply_classes)
{
    provider_result r;
    provider_classify_smtp(CURLE_OK, 250, NULL, &r);
    ck_assert_int_eq(r.outcome, PROVIDER_SENT);
    provider_classify_smtp(CURLE_SEND_ERROR, 451, NULL, &r);
    ck_assert_int_eq(r.outcome, PROVIDER_TRANSIENT);
    provider_classify_smtp(CURLE_SEND_ERROR, 421, NULL, &r);
    ck_assert_int_eq(r.outcome, PROVIDER_TRANSIENT);
    provider_classify_smtp(CURLE_SEND_ERROR, 550, NULL, &r);
    ck_assert_int_eq(r.outcome, PROVIDER_PERMANENT);
    ck_assert_ptr_nonnull(strstr(r.message, "550"));
    ck_assert(!r.recipient_refused);
    provider_classify_smtp(CURLE_SEND_ERROR, 554, NULL, &r);
    ck_assert_int_eq(r.outcome, PROVIDER_PERMANENT);
    /* Refused at RCPT TO: a hard bounce of the address, not the message. */
    provider_classify_smtp(CURLE_SEND_ERROR, 550, "RCPT failed: 550", &r);
    ck_assert_int_eq(r.outcome, PROVIDER_PERMANENT);
    ck_assert(r.recipient_refused);
    ck_assert_ptr_nonnull(strstr(r.message, "RCPT"));
    provider_classify_smtp(CURLE_SEND_ERROR, 451, "RCPT failed: 451", &r);
    ck_assert_int_eq(r.outcome, PROVIDER_TRANSIENT);
    ck_assert(!r.recipient_refused);
    provider_classify_smtp(CURLE_SEND_ERROR, 554, "MAIL failed: 554", &r);
    ck_assert(!r.recipient_refused);
    provider_classify_smtp(CURLE_LOGIN_DENIED, 535, NULL, &r);
    ck_assert_int_eq(r.outcome, PROVIDER_TRANSIENT);
    ck_assert(r.provider_fault);
    provider_classify_smtp(CURLE_COULDNT_CONNECT, 0, NULL, &r);
    ck_assert_int_eq(r.outcome, PROVIDER_TRANSIENT);
}
END_TEST

START_TEST(test_twilio_codes_of_a_refusing_number)
{
    ck_assert(provider_twilio_refuses("{\"code\": 21211, \"message\": \"not a valid number\"}"));
    ck_assert(provider_twilio_refuses("{\"code\": 21610}"));
    ck_assert(provider_twilio_refuses("{\"code\": 21614}"));
    ck_assert(!provider_twilio_refuses("{\"code\": 20003}"));
    ck_assert(!provider_twilio_refuses("not json"));
    ck_assert(!provider_twilio_refuses(NULL));
}
END_TEST

START_TEST(test_retry_after_forms)
{
    int64_t ms = -1;
    ck_assert_int_eq(provider_parse_retry_after("120", NOW, &ms), 0);
    ck_assert_int_eq(ms, 120000);
    ck_assert_int_eq(provider_parse_retry_after(" 0 ", NOW, &ms), 0);
    ck_assert_int_eq(ms, 0);
    ck_assert_int_eq(provider_parse_retry_after("Fri, 27 Nov 2026 22:12:55 GMT", NOW, &ms), 0);
    ck_assert_int_eq(ms, 120000);
    ck_assert_int_eq(provider_parse_retry_after("Friday, 27-Nov-26 22:11:55 GMT", NOW, &ms), 0);
    ck_assert_int_eq(ms, 60000);
    ck_assert_int_eq(provider_parse_retry_after("Fri Nov 27 22:11:00 2026", NOW, &ms), 0);
    ck_assert_int_eq(ms, 5000);
    /* a date in the past means now */
    ck_assert_int_eq(provider_parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", NOW, &ms), 0);
    ck_assert_int_eq(ms, 0);
    ck_assert_int_eq(provider_parse_retry_after("", NOW, &ms), -1);
    ck_assert_int_eq(provider_parse_retry_after("12s", NOW, &ms), -1);
    ck_assert_int_eq(provider_parse_retry_after("-5", NOW, &ms), -1);
    ck_assert_int_eq(provider_parse_retry_after("Fri, 32 Nov 2026 22:12:55 GMT", NOW, &ms), -1);
}
END_TEST

START_TEST(test_provider_kinds_serve_their_channels)
{
    ck_assert(provider_kind_serves("smtp", "email"));
    ck_assert(!provider_kind_serves("smtp", "sms"));
    ck_assert(provider_kind_serves("twilio", "sms"));
    ck_assert(!provider_kind_serves("twilio", "push"));
    ck_assert(provider_kind_serves("fcm", "push"));
    ck_assert(provider_kind_serves("http", "push"));
    ck_assert(!provider_kind_serves("http", "email"));
    ck_assert(provider_kind_serves("file", "email"));
    /* The inbox is the in-app channel's only destination. */
    ck_assert(provider_kind_serves("inbox", "inapp"));
    ck_assert(!provider_kind_serves("file", "inapp"));
    ck_assert(!provider_kind_serves("http", "inapp"));
    ck_assert(!provider_kind_serves("inbox", "push"));
}
END_TEST

START_TEST(test_inbox_errors_unknown_user_permanent_outage_transient)
{
    provider_result r;
    memset(&r, 0, sizeof r);
    provider_classify_pg("23503", "ghost", "insert or update violates foreign key", &r);
    ck_assert_int_eq(r.outcome, PROVIDER_PERMANENT);
    ck_assert(!r.provider_fault);
    ck_assert_str_eq(r.message, "unknown user: no user ghost for the inbox");
    provider_classify_pg("22P02", "u1", "invalid input syntax for type json", &r);
    ck_assert_int_eq(r.outcome, PROVIDER_PERMANENT);
    ck_assert_ptr_nonnull(strstr(r.message, "22P02"));
    /* The database's trouble, not the message's: retried, and counted against the breaker. */
    static const char *const transient[] = {"", "08006", "40001", "40P01", "57014", "53300", NULL};
    for (int i = 0; transient[i]; i++) {
        provider_classify_pg(transient[i], "u1", "connection lost", &r);
        ck_assert_int_eq(r.outcome, PROVIDER_TRANSIENT);
        ck_assert(r.provider_fault);
        ck_assert_ptr_nonnull(strstr(r.message, "connection lost"));
    }
    provider_classify_pg(NULL, "u1", NULL, &r);
    ck_assert_int_eq(r.outcome, PROVIDER_TRANSIENT);
}
END_TEST

START_TEST(test_provider_new_names_the_missing_variable)
{
    char err[256];
    provider_settings s = {.channel = "sms"};
    ck_assert_ptr_null(provider_new("twilio", &s, err, sizeof err));
    ck_assert_ptr_nonnull(strstr(err, "HERALD_TWILIO_ACCOUNT_SID"));
    s.channel = "email";
    ck_assert_ptr_null(provider_new("smtp", &s, err, sizeof err));
    ck_assert_ptr_nonnull(strstr(err, "HERALD_SMTP_URL"));
    s.url = "http://x";
    ck_assert_ptr_null(provider_new("smtp", &s, err, sizeof err));
    ck_assert_ptr_nonnull(strstr(err, "smtp://"));
    s.channel = "push";
    s.url = NULL;
    ck_assert_ptr_null(provider_new("fcm", &s, err, sizeof err));
    ck_assert_ptr_nonnull(strstr(err, "HERALD_FCM_PROJECT_ID"));
}
END_TEST

START_TEST(test_json_string_escapes)
{
    buf b;
    buf_init(&b, 0);
    ck_assert_int_eq(provider_json_string(&b, "a\"b\\c\nd\x01é"), 0);
    ck_assert_str_eq(b.data, "\"a\\\"b\\\\c\\nd\\u0001é\"");
    buf_free(&b);
}
END_TEST

/* The message id as jansson reads it: what provider_json_id() must return. */
static void jansson_id(const char *body, const char *const *keys, char *out, size_t outlen)
{
    out[0] = '\0';
    json_t *j = *body == '{' ? json_loads(body, 0, NULL) : NULL;
    for (size_t i = 0; j && keys[i]; i++) {
        const char *v = json_string_value(json_object_get(j, keys[i]));
        if (v) {
            snprintf(out, outlen, "%s", v);
            break;
        }
    }
    json_decref(j);
}

START_TEST(test_message_id_read_in_place_as_jansson_reads_it)
{
    static const char *const keys[] = {"id", "message_id", NULL};
    static const char *const bodies[] = {
        "{\"id\":\"msg-1\",\"status\":\"accepted\",\"duplicate\":false}",
        "{ \"message_id\" : \"m2\" , \"id\" : null }",
        "{\"message_id\":\"m3\",\"id\":\"i3\"}",
        "{\"id\":\"first\",\"id\":\"last\"}",
        "{\"id\":\"a\",\"id\":true}",
        "{\"id\":\"x\\\"y\"}",
        "{\"id\":\"caf\xc3\xa9\"}",
        "{\"id\":42}",
        "{\"id\":\"n\",\"meta\":{\"id\":\"inner\"}}",
        "{\"data\":[1,2],\"message_id\":\"arr\"}",
        "{}",
        "{\"id\":\"t\"} trailing",
        "{\"id\":\"t\"}\n",
        "{\"id\":\"unterminated}",
        "{\"id\" \"no-colon\"}",
        "not json",
        "",
        "{\"status\":\"ok\",}",
    };
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        char got[64], want[64];
        provider_json_id(bodies[i], keys, got, sizeof got);
        jansson_id(bodies[i], keys, want, sizeof want);
        ck_assert_msg(strcmp(got, want) == 0, "%s: got '%s', jansson '%s'", bodies[i], got, want);
    }
    char got[64] = "stale";
    provider_json_id(NULL, keys, got, sizeof got);
    ck_assert_str_eq(got, "");
}
END_TEST

static const test_case_entry cases[] = {
    TEST_ENTRY(test_http_2xx_is_sent),
    TEST_ENTRY(test_http_408_429_5xx_are_transient_provider_faults),
    TEST_ENTRY(test_http_429_honours_retry_after_seconds_and_date),
    TEST_ENTRY(test_http_transport_errors_are_transient),
    TEST_ENTRY(test_http_push_404_410_are_dead_tokens_sms_permanent),
    TEST_ENTRY(test_twilio_codes_of_a_refusing_number),
    TEST_ENTRY(test_http_other_4xx_and_unexpected_are_permanent),
    TEST_ENTRY(test_smtp_reply_classes),
    TEST_ENTRY(test_retry_after_forms),
    TEST_ENTRY(test_provider_kinds_serve_their_channels),
    TEST_ENTRY(test_provider_new_names_the_missing_variable),
    TEST_ENTRY(test_inbox_errors_unknown_user_permanent_outage_transient),
    TEST_ENTRY(test_json_string_escapes),
    TEST_ENTRY(test_message_id_read_in_place_as_jansson_reads_it),
};

TEST_MAIN("provider_classify", cases)
