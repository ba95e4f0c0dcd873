/*
 * The email a worker hands to an SMTP relay: headers, RFC 2047 subjects,
 * body encodings, Message-ID from the idempotency key.
 */
#include <string.h>

#include "mime.h"
#include "testutil.h"

static char *build(const char *from, const char *subject, const char *body)
{
    buf b;
    char err[256];
    buf_init(&b, 0);
    mime_message m = {.from = from,
                      .to = "ann@example.com",
                      .subject = subject,
                      .body = body,
                      .message_id = "1b4e28ba-2fa1-5d32-a0c4-1f9a1e0e2c3d",
                      .date_ms = 1795817455000}; /* 2026-11-27T22:10:55Z, a Friday */
    ck_assert_msg(mime_build(&m, &b, err, sizeof err) == 0, "%s", err);
    return buf_steal(&b, NULL);
}

START_TEST(test_mime_ascii_message_has_every_header_and_7bit_body)
{
    char *s = build("Herald <noreply@example.com>", "Your order shipped", "Hello Ann,\nbye.");
    ck_assert_ptr_nonnull(strstr(s, "From: Herald <noreply@example.com>\r\n"));
    ck_assert_ptr_nonnull(strstr(s, "To: <ann@example.com>\r\n"));
    ck_assert_ptr_nonnull(strstr(s, "Subject: Your order shipped\r\n"));
    ck_assert_ptr_nonnull(strstr(s, "Date: Fri, 27 Nov 2026 22:10:55 +0000\r\n"));
    ck_assert_ptr_nonnull(
        strstr(s, "Message-ID: <1b4e28ba-2fa1-5d32-a0c4-1f9a1e0e2c3d@herald>\r\n"));
    ck_assert_ptr_nonnull(strstr(s, "MIME-Version: 1.0\r\n"));
    ck_assert_ptr_nonnull(strstr(s, "Content-Type: text/plain; charset=UTF-8\r\n"));
    ck_assert_ptr_nonnull(
        strstr(s, "Content-Transfer-Encoding: 7bit\r\n\r\nHello Ann,\r\nbye.\r\n"));
    free(s);
}
END_TEST

START_TEST(test_mime_utf8_subject_becomes_encoded_words)
{
    char *s = build("noreply@example.com", "Commande expédiée ✓", "x");
    /* base64 of the UTF-8 bytes, one encoded word */
    ck_assert_ptr_nonnull(strstr(s, "Subject: =?UTF-8?B?Q29tbWFuZGUgZXhww6lkacOpZSDinJM=?=\r\n"));
    free(s);
}
END_TEST

START_TEST(test_mime_long_subject_folds_without_splitting_characters)
{
    char subj[400] = "";
    for (int i = 0; i < 40; i++)
        strcat(subj, "é€"); /* 5 bytes per pair */
    char *s = build("noreply@example.com", subj, "x");
    char *start = strstr(s, "Subject: ");
    char *end = strstr(start, "\r\nDate:");
    ck_assert_ptr_nonnull(end);
    /* every line of the header is <= 78 characters and every word decodes alone */
    int words = 0;
    for (char *line = start; line < end;) {
        char *eol = strstr(line, "\r\n");
        ck_assert_int_le(eol - line, 78);
        ck_assert_ptr_nonnull(strstr(line, "=?UTF-8?B?"));
        words++;
        line = eol + 2;
        if (line < end)
            ck_assert_int_eq(line[0], ' ');
    }
    ck_assert_int_ge(words, 4);
    free(s);
}
END_TEST

START_TEST(test_mime_non_ascii_body_is_quoted_printable)
{
    char *s = build("noreply@example.com", "s", "Grüße = gut\nline two \nend");
    ck_assert_ptr_nonnull(strstr(s, "Content-Transfer-Encoding: quoted-printable\r\n"));
    ck_assert_ptr_nonnull(strstr(s, "\r\n\r\nGr=C3=BC=C3=9Fe =3D gut\r\nline two=20\r\nend\r\n"));
    free(s);
}
END_TEST

START_TEST(test_mime_qp_soft_breaks_long_lines)
{
    char body[300];
    memset(body, 'a', 200);
    strcpy(body + 200, "é");
    char *s = build("noreply@example.com", "s", body);
    char *b = strstr(s, "\r\n\r\n") + 4;
    for (char *line = b; *line;) {
        char *eol = strstr(line, "\r\n");
        ck_assert_ptr_nonnull(eol);
        ck_assert_int_le(eol - line, 76);
        line = eol + 2;
    }
    ck_assert_ptr_nonnull(strstr(b, "=\r\n"));
    free(s);
}
END_TEST

START_TEST(test_mime_display_name_quoted_or_encoded)
{
    char *s = build("Shop, Inc. <noreply@example.com>", "s", "x");
    ck_assert_ptr_nonnull(strstr(s, "From: \"Shop, Inc.\" <noreply@example.com>\r\n"));
    free(s);
    s = build("Café <noreply@example.com>", "s", "x");
    ck_assert_ptr_nonnull(strstr(s, "From: =?UTF-8?B?Q2Fmw6k=?= <noreply@example.com>\r\n"));
    free(s);
}
END_TEST

START_TEST(test_mime_rejects_header_injection)
{
    buf b;
    char err[256];
    buf_init(&b, 0);
    mime_message m = {.from = "a@example.com",
                      .to = "ann@example.com\r\nBcc: eve@example.com",
                      .body = "x",
                      .message_id = "k"};
    ck_assert_int_eq(mime_build(&m, &b, err, sizeof err), -1);
    m.to = "ann@example.com";
    m.body = "\xff\xfe";
    ck_assert_int_eq(mime_build(&m, &b, err, sizeof err), -1);
    buf_free(&b);
}
END_TEST

START_TEST(test_mime_subject_with_newline_is_encoded_not_injected)
{
    char *s = build("a@example.com", "hi\r\nBcc: eve@example.com", "x");
    ck_assert_ptr_null(strstr(s, "\r\nBcc:"));
    free(s);
}
END_TEST

START_TEST(test_mime_message_id_from_any_key)
{
    char out[128];
    ck_assert_str_eq(mime_message_id("abc-123", out, sizeof out), "abc-123");
    ck_assert_str_eq(mime_message_id("a b@c", out, sizeof out), "h6120624063");
    ck_assert_str_eq(mime_message_id("a..b", out, sizeof out), "h612e2e62");
}
END_TEST

START_TEST(test_mime_date_format)
{
    char d[40];
    ck_assert_str_eq(mime_format_date(0, d, sizeof d), "Thu, 01 Jan 1970 00:00:00 +0000");
    ck_assert_str_eq(mime_format_date(951782400000, d, sizeof d),
                     "Tue, 29 Feb 2000 00:00:00 +0000");
}
END_TEST

/* The message of build() with List-Unsubscribe links (either may be NULL). */
static char *build_unsub(const char *https, const char *mailto)
{
    buf b;
    char err[256];
    buf_init(&b, 0);
    mime_message m = {.from = "noreply@example.com",
                      .to = "ann@example.com",
                      .subject = "News",
                      .body = "x",
                      .message_id = "1b4e28ba-2fa1-5d32-a0c4-1f9a1e0e2c3d",
                      .date_ms = 1795817455000,
                      .unsubscribe_https = https,
                      .unsubscribe_mailto = mailto};
    ck_assert_msg(mime_build(&m, &b, err, sizeof err) == 0, "%s", err);
    return buf_steal(&b, NULL);
}

/* The header block's lines: each at most max characters, continuations start with a space. */
static void assert_header_lines(const char *msg, size_t max)
{
    const char *end = strstr(msg, "\r\n\r\n");
    ck_assert_ptr_nonnull(end);
    for (const char *p = msg; p < end;) {
        const char *eol = strstr(p, "\r\n");
        ck_assert_msg((size_t)(eol - p) <= max, "line of %zu: %.*s", (size_t)(eol - p),
                      (int)(eol - p), p);
        ck_assert_msg(memchr(p, '\n', (size_t)(eol - p)) == NULL, "bare LF");
        p = eol + 2;
    }
}

START_TEST(test_mime_list_unsubscribe_short_links_share_one_line)
{
    char *s = build_unsub("https://n.example/u?t=1", "mailto:u@example.com?subject=1");
    ck_assert_ptr_nonnull(strstr(s, "\r\nList-Unsubscribe: <https://n.example/u?t=1>, "
                                    "<mailto:u@example.com?subject=1>\r\n"
                                    "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"));
    free(s);
}
END_TEST

START_TEST(test_mime_list_unsubscribe_folds_between_links_never_inside)
{
    char https[400], mailto[400];
    snprintf(https, sizeof https, "https://notify.example.com/v1/unsubscribe?token=u1.%0200d.x", 7);
    snprintf(mailto, sizeof mailto, "mailto:unsub@example.com?subject=u1.%0200d.x", 7);
    char *s = build_unsub(https, mailto);
    char want[1024];
    snprintf(want, sizeof want,
             "\r\nList-Unsubscribe: <%s>,\r\n <%s>\r\nList-Unsubscribe-Post: ", https, mailto);
    ck_assert_msg(strstr(s, want) != NULL, "%s", s);
    /* a link longer than 78 makes its line longer, never a broken link */
    assert_header_lines(s, 998);
    free(s);
}
END_TEST

START_TEST(test_mime_list_unsubscribe_mailto_alone_has_no_one_click)
{
    char *s = build_unsub(NULL, "mailto:u@example.com");
    ck_assert_ptr_nonnull(strstr(s, "List-Unsubscribe: <mailto:u@example.com>\r\n"));
    ck_assert_ptr_null(strstr(s, "List-Unsubscribe-Post"));
    free(s);
    s = build_unsub(NULL, NULL);
    ck_assert_ptr_null(strstr(s, "List-Unsubscribe"));
    assert_header_lines(s, 78);
    free(s);
}
END_TEST

START_TEST(test_mime_list_unsubscribe_refuses_what_a_header_cannot_carry)
{
    buf b;
    char err[256];
    buf_init(&b, 0);
    mime_message m = {.from = "noreply@example.com",
                      .to = "ann@example.com",
                      .body = "x",
                      .message_id = "k",
                      .unsubscribe_https = "https://a.example/x\r\nBcc: eve@example.com"};
    ck_assert_int_eq(mime_build(&m, &b, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "List-Unsubscribe"));
    buf_free(&b);
    buf_init(&b, 0);
    m.unsubscribe_https = "https://a.example/x>, <https://evil.example/";
    ck_assert_int_eq(mime_build(&m, &b, err, sizeof err), -1);
    buf_free(&b);
    char huge[1200];
    memset(huge, 'a', sizeof huge - 1);
    huge[sizeof huge - 1] = '\0';
    memcpy(huge, "https://", 8);
    buf_init(&b, 0);
    m.unsubscribe_https = huge;
    ck_assert_int_eq(mime_build(&m, &b, err, sizeof err), -1);
    buf_free(&b);
}
END_TEST

static const test_case_entry cases[] = {
    TEST_ENTRY(test_mime_ascii_message_has_every_header_and_7bit_body),
    TEST_ENTRY(test_mime_utf8_subject_becomes_encoded_words),
    TEST_ENTRY(test_mime_long_subject_folds_without_splitting_characters),
    TEST_ENTRY(test_mime_non_ascii_body_is_quoted_printable),
    TEST_ENTRY(test_mime_qp_soft_breaks_long_lines),
    TEST_ENTRY(test_mime_display_name_quoted_or_encoded),
    TEST_ENTRY(test_mime_rejects_header_injection),
    TEST_ENTRY(test_mime_subject_with_newline_is_encoded_not_injected),
    TEST_ENTRY(test_mime_message_id_from_any_key),
    TEST_ENTRY(test_mime_date_format),
    TEST_ENTRY(test_mime_list_unsubscribe_short_links_share_one_line),
    TEST_ENTRY(test_mime_list_unsubscribe_folds_between_links_never_inside),
    TEST_ENTRY(test_mime_list_unsubscribe_mailto_alone_has_no_one_click),
    TEST_ENTRY(test_mime_list_unsubscribe_refuses_what_a_header_cannot_carry),
};

TEST_MAIN("worker_mime", cases)
