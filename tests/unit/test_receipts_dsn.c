/* Unit tests of producer/receipts_dsn: SMTP bounces (RFC 3464), parsed. */
#include "testutil.h"

#include "receipts_dsn.h"

#include <stdio.h>
#include <string.h>

#define KEY    "1b4e28ba-2fa1-41d2-883f-0016d3cca427"
#define BOUNCE "bounces@mail.example.com"

/* A DSN as Postfix writes one: to, per-recipient action and status, returned Message-ID. */
static void dsn(char *out, size_t outlen, const char *to, const char *action, const char *status,
                const char *message_id)
{
    snprintf(out, outlen,
             "Return-Path: <>\r\n"
             "Delivered-To: %s\r\n"
             "From: MAILER-DAEMON@mx.example.com (Mail Delivery System)\r\n"
             "Subject: Undelivered Mail Returned to Sender\r\n"
             "To: %s\r\n"
             "MIME-Version: 1.0\r\n"
             "Content-Type: multipart/report; report-type=delivery-status;\r\n"
             "\tboundary=\"B0UND.1/mx\"\r\n"
             "\r\n"
             "This is a MIME-encapsulated message.\r\n"
             "\r\n"
             "--B0UND.1/mx\r\n"
             "Content-Description: Notification\r\n"
             "Content-Type: text/plain; charset=us-ascii\r\n"
             "\r\n"
             "I'm sorry to have to inform you that your message could not\r\n"
             "be delivered to one or more recipients.\r\n"
             "\r\n"
             "--B0UND.1/mx\r\n"
             "Content-Description: Delivery report\r\n"
             "Content-Type: message/delivery-status\r\n"
             "\r\n"
             "Reporting-MTA: dns; mx.example.com\r\n"
             "Arrival-Date: Mon,  7 Dec 2026 12:00:00 +0000 (UTC)\r\n"
             "\r\n"
             "Final-Recipient: rfc822; user@example.org\r\n"
             "Original-Recipient: rfc822;user@example.org\r\n"
             "Action: %s\r\n"
             "Status: %s\r\n"
             "Diagnostic-Code: smtp; 550 5.1.1 <user@example.org>: Recipient address\r\n"
             "    rejected: User unknown\r\n"
             "\r\n"
             "--B0UND.1/mx\r\n"
             "Content-Description: Undelivered Message Headers\r\n"
             "Content-Type: text/rfc822-headers\r\n"
             "\r\n"
             "From: Herald <noreply@example.com>\r\n"
             "To: user@example.org\r\n"
             "Message-ID: %s\r\n"
             "Subject: Your order\r\n"
             "\r\n"
             "--B0UND.1/mx--\r\n",
             to, to, action, status, message_id);
}

static size_t parse(const char *msg, const char *recipient, receipt *r, int want)
{
    size_t n = 0;
    char err[160];
    ck_assert_int_eq(receipts_dsn(msg, strlen(msg), BOUNCE, recipient, r, 4, &n, err, sizeof err),
                     want);
    return n;
}

START_TEST(test_failed_5xx_is_a_permanent_bounce_found_by_verp)
{
    char msg[4096];
    receipt r[4];
    dsn(msg, sizeof msg, "bounces+" KEY "@mail.example.com", "failed", "5.1.1", "<other@x>");
    ck_assert_uint_eq(parse(msg, NULL, r, 0), 1);
    ck_assert_str_eq(r[0].status, "bounced");
    ck_assert_str_eq(r[0].bounce_kind, "permanent");
    ck_assert_str_eq(r[0].key, KEY);
    ck_assert_str_eq(r[0].address, "user@example.org");
    ck_assert_str_eq(r[0].message_id, "<other@x>");
    /* the folded Diagnostic-Code, unfolded, without its type */
    ck_assert_str_eq(r[0].reason,
                     "550 5.1.1 <user@example.org>: Recipient address rejected: User unknown");
    ck_assert_uint_eq(strlen(r[0].receipt_id), 64 + 1 + 36 + 1 + strlen("user@example.org"));
}

START_TEST(test_the_message_id_is_the_fallback)
{
    char msg[4096];
    receipt r[4];
    dsn(msg, sizeof msg, "postmaster@mail.example.com", "failed", "4.2.2", "<" KEY "@herald>");
    ck_assert_uint_eq(parse(msg, NULL, r, 0), 1);
    ck_assert_str_eq(r[0].key, KEY);
    ck_assert_str_eq(r[0].bounce_kind, "transient");
}

START_TEST(test_the_mta_recipient_wins)
{
    char msg[4096];
    receipt r[4];
    dsn(msg, sizeof msg, "postmaster@mail.example.com", "failed", "5.0.0", "<x@y>");
    ck_assert_uint_eq(parse(msg, "bounces+" KEY "@MAIL.example.com", r, 0), 1);
    ck_assert_str_eq(r[0].key, KEY);
    ck_assert_uint_eq(parse(msg, NULL, r, 0), 1);
    ck_assert_str_eq(r[0].key, "");
}

START_TEST(test_actions_map_to_statuses)
{
    char msg[4096];
    receipt r[4];
    dsn(msg, sizeof msg, "x@y", "delivered", "2.0.0", "<" KEY "@herald>");
    ck_assert_uint_eq(parse(msg, NULL, r, 0), 1);
    ck_assert_str_eq(r[0].status, "delivered");
    dsn(msg, sizeof msg, "x@y", "relayed", "2.0.0", "<" KEY "@herald>");
    ck_assert_uint_eq(parse(msg, NULL, r, 0), 1);
    ck_assert_str_eq(r[0].status, "delivered");
    dsn(msg, sizeof msg, "x@y", "delayed", "4.4.1", "<" KEY "@herald>");
    ck_assert_uint_eq(parse(msg, NULL, r, 0), 1);
    ck_assert_ptr_null(r[0].status);
    dsn(msg, sizeof msg, "x@y", "failed", "", "<" KEY "@herald>");
    ck_assert_uint_eq(parse(msg, NULL, r, 0), 1);
    ck_assert_str_eq(r[0].bounce_kind, "undetermined");
}

START_TEST(test_the_same_bounce_has_the_same_receipt_id)
{
    char msg[4096];
    receipt a[4], b[4];
    dsn(msg, sizeof msg, "x@y", "failed", "5.1.1", "<" KEY "@herald>");
    parse(msg, NULL, a, 0);
    parse(msg, NULL, b, 0);
    ck_assert_str_eq(a[0].receipt_id, b[0].receipt_id);
    msg[strlen(msg) - 10] = 'X';
    parse(msg, NULL, b, 0);
    ck_assert_str_ne(a[0].receipt_id, b[0].receipt_id);
}

START_TEST(test_other_messages_are_refused)
{
    receipt r[4];
    parse("Subject: hi\r\n\r\nhello\r\n", NULL, r, -1);
    parse("Content-Type: multipart/report; report-type=delivery-status\r\n\r\nx", NULL, r, -1);
    parse("Content-Type: multipart/report; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n"
          "\r\nhi\r\n--b--\r\n",
          NULL, r, -1);
    parse("Content-Type: multipart/report; boundary=b\r\n\r\n--b\r\n"
          "Content-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; x\r\n--b--\r\n",
          NULL, r, -1);
}

START_TEST(test_bare_lf_and_nested_multipart)
{
    static const char msg[] = "Content-Type: multipart/report; boundary=outer\n"
                              "\n"
                              "--outer\n"
                              "Content-Type: multipart/mixed; boundary=inner\n"
                              "\n"
                              "--inner\n"
                              "Content-Type: message/delivery-status\n"
                              "\n"
                              "Reporting-MTA: dns; x\n"
                              "\n"
                              "Final-Recipient: rfc822; a@b\n"
                              "Action: failed\n"
                              "Status: 5.7.1\n"
                              "--inner--\n"
                              "--outer\n"
                              "Content-Type: message/rfc822\n"
                              "\n"
                              "Message-ID: <" KEY "@herald>\n"
                              "\n"
                              "body\n"
                              "--outer--\n";
    receipt r[4];
    ck_assert_uint_eq(parse(msg, NULL, r, 0), 1);
    ck_assert_str_eq(r[0].key, KEY);
    ck_assert_str_eq(r[0].bounce_kind, "permanent");
    ck_assert_str_eq(r[0].reason, "status 5.7.1");
}

static const test_case_entry cases[] = {
    TEST_ENTRY(test_failed_5xx_is_a_permanent_bounce_found_by_verp),
    TEST_ENTRY(test_the_message_id_is_the_fallback),
    TEST_ENTRY(test_the_mta_recipient_wins),
    TEST_ENTRY(test_actions_map_to_statuses),
    TEST_ENTRY(test_the_same_bounce_has_the_same_receipt_id),
    TEST_ENTRY(test_other_messages_are_refused),
    TEST_ENTRY(test_bare_lf_and_nested_multipart),
};

TEST_MAIN("receipts_dsn", cases)
