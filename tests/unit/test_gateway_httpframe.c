/*
 * The gateway's request framing (httpframe.h): which requests pass, where
 * each ends, what a refused one is answered with, and where libmicrohttpd's
 * answers end.  Every input is also fed one byte at a time, as a slow
 * client would send it: the verdict must not depend on how bytes arrive.
 */
#include "httpframe.h"
#include "testutil.h"

#include <string.h>

/* Feeds text whole or byte by byte; returns the bytes the message took. */
static size_t frame(httpframe *f, bool response, const char *text, size_t len, bool bytewise)
{
    httpframe_init(f, response);
    size_t used = 0;
    while (used < len && f->state != HTTPFRAME_DONE && f->state != HTTPFRAME_ERROR) {
        size_t n = bytewise ? 1 : len - used;
        size_t k = httpframe_feed(f, text + used, n);
        ck_assert_uint_le(k, n);
        used += k;
        if (k == 0 && f->state != HTTPFRAME_ERROR)
            ck_abort_msg("no progress at %zu of %s", used, text);
    }
    return used;
}

/* A request that passes and takes exactly want bytes (the rest follows it). */
static void passes(const char *text, size_t want)
{
    for (int bytewise = 0; bytewise < 2; bytewise++) {
        httpframe f;
        size_t used = frame(&f, false, text, strlen(text), bytewise);
        ck_assert_msg(f.state == HTTPFRAME_DONE, "%s: state %d (%s)", text, f.state, f.message);
        ck_assert_msg(used == want, "%s: took %zu, want %zu", text, used, want);
    }
}

static void refused(const char *text, int status, const char *code)
{
    for (int bytewise = 0; bytewise < 2; bytewise++) {
        httpframe f;
        frame(&f, false, text, strlen(text), bytewise);
        ck_assert_msg(f.state == HTTPFRAME_ERROR, "%s passed (state %d)", text, f.state);
        ck_assert_msg(f.status == status, "%s: %d, want %d", text, f.status, status);
        ck_assert_str_eq(f.code, code);
        ck_assert_msg(f.message[0] != '\0', "%s: no message", text);
    }
}

START_TEST(test_valid_requests_end_where_their_body_does)
{
    passes("GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /next", 27);
    passes("GET / HTTP/1.0\r\n\r\n", 18);
    passes("\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n", 29);
    passes("GET / HTTP/1.1\nHost: x\n\n", 24);
    passes("POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhelloGET", 61);
    passes("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\nGET", 47);
    const char *chunked = "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                          "5;name=value\r\nhello\r\nA\r\n0123456789\r\n0\r\nX-Trailer: t\r\n\r\n";
    passes(chunked, strlen(chunked));
    char more[512];
    snprintf(more, sizeof more, "%sGET / HTTP/1.1\r\n", chunked);
    passes(more, strlen(chunked));
    passes("GET / HTTP/1.1\r\nHost: x\r\nX-Obs: caf\xc3\xa9\t tab\r\n\r\n", 46);
}
END_TEST

START_TEST(test_malformed_heads_are_400)
{
    const char *bad[] = {
        "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n",  /* obs-fold, space */
        "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n\tb\r\n\r\n", /* obs-fold, tab */
        "GET / HTTP/1.1\r\n Host: x\r\n\r\n",                 /* space before the first field */
        "GET / HTTP/1.1\r\nHost: x\r\nContent-Length : 5\r\n\r\n", /* space before the colon */
        "GET / HTTP/1.1\r\nHost: x\r\nNoColon\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x01b\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: x\rX-A: a\r\n\r\n", /* bare CR */
        "GET  / HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET / HTTP/2.0\r\nHost: x\r\n\r\n",
        "GET /\r\nHost: x\r\n\r\n",
        "G(T / HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET / HTTP/1.1\r\n\r\n", /* no Host */
        "GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 5\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1e3\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Length:\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: 5\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
        "Transfer-Encoding: chunked\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: x\r\nAuthorization: a\r\nAuthorization: b\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        refused(bad[i], 400, "malformed_request");
}
END_TEST

START_TEST(test_oversized_lengths_and_heads)
{
    refused("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 9223372036854775808\r\n\r\n", 413,
            "payload_too_large");
    refused("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n", 413,
            "payload_too_large");
    passes("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 000000000000000000\r\n\r\n", 64);
    static char big[HTTPFRAME_HEAD_MAX + 256];
    int n = snprintf(big, sizeof big, "GET / HTTP/1.1\r\nHost: x\r\nX-Big: ");
    memset(big + n, 'a', HTTPFRAME_HEAD_MAX);
    memcpy(big + n + HTTPFRAME_HEAD_MAX, "\r\n\r\n", 5);
    refused(big, 431, "header_too_large");
    /* Many small fields within the size. */
    size_t len = (size_t)snprintf(big, sizeof big, "GET / HTTP/1.1\r\nHost: x\r\n");
    for (int i = 0; i < HTTPFRAME_FIELDS_MAX + 1; i++)
        len += (size_t)snprintf(big + len, sizeof big - len, "X-%d: v\r\n", i);
    snprintf(big + len, sizeof big - len, "\r\n");
    refused(big, 431, "header_too_large");
}
END_TEST

START_TEST(test_bad_chunks_are_400)
{
    const char *head = "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
    const char *bodies[] = {
        "z\r\nhello\r\n0\r\n\r\n",                  /* not hex */
        "-5\r\nhello\r\n0\r\n\r\n",                 /* a sign */
        "1000000000000000\r\nhello\r\n0\r\n\r\n",   /* 16 hex digits */
        "ffffffffffffffffff\r\nhello\r\n0\r\n\r\n", /* beyond 64 bits */
        "5\r\nhelloXX0\r\n\r\n",                    /* no CRLF after the data */
        "5 \r\nhello\r\n0\r\n\r\n",                 /* a space after the size */
        "\r\nhello\r\n0\r\n\r\n",                   /* no size */
        "5;a=\x01\r\nhello\r\n0\r\n\r\n",           /* a control character */
        "0\r\nX-T : t\r\n\r\n",                     /* malformed trailer */
    };
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        char req[512];
        snprintf(req, sizeof req, "%s%s", head, bodies[i]);
        refused(req, 400, "malformed_request");
    }
}
END_TEST

/* Where libmicrohttpd's answers end, for the relay to know when the next
 * request may be read. */
static void response_ends(const char *text, bool head_request, size_t want)
{
    for (int bytewise = 0; bytewise < 2; bytewise++) {
        httpframe f;
        httpframe_init(&f, true);
        f.head_request = head_request;
        size_t used = 0, len = strlen(text);
        while (used < len && f.state != HTTPFRAME_DONE) {
            size_t k = httpframe_feed(&f, text + used, bytewise ? 1 : len - used);
            ck_assert_int_ne(f.state, HTTPFRAME_ERROR);
            used += k;
        }
        ck_assert_msg(f.state == HTTPFRAME_DONE && used == want, "%s: state %d took %zu want %zu",
                      text, f.state, used, want);
    }
}

START_TEST(test_responses_end_where_they_should)
{
    response_ends("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}HTTP", false, 40);
    response_ends(
        "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 202 Accepted\r\nContent-Length: 2\r\n\r\n{}", false,
        71);
    response_ends("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}", true, 38);
    response_ends("HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n", false, 46);
    response_ends("HTTP/1.1 304 Not Modified\r\nETag: x\r\n\r\nHTTP", false, 38);
    response_ends("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\nHTTP",
                  false, 59);
    httpframe f;
    httpframe_init(&f, true);
    const char *close = "HTTP/1.0 200 OK\r\n\r\nuntil the end";
    ck_assert_uint_eq(httpframe_feed(&f, close, strlen(close)), strlen(close));
    ck_assert_int_eq(f.state, HTTPFRAME_UNTIL_CLOSE);
}
END_TEST

START_TEST(test_next_request_starts_fresh)
{
    httpframe f;
    httpframe_init(&f, false);
    const char *two = "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nx"
                      "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nX-A: \r\n b\r\n\r\n";
    size_t k = httpframe_feed(&f, two, strlen(two));
    ck_assert_int_eq(f.state, HTTPFRAME_DONE);
    ck_assert(!httpframe_idle(&f) || f.state == HTTPFRAME_DONE);
    httpframe_next(&f);
    ck_assert(httpframe_idle(&f));
    httpframe_feed(&f, two + k, strlen(two) - k);
    ck_assert_int_eq(f.state, HTTPFRAME_ERROR);
    ck_assert_int_eq(f.status, 400);
}
END_TEST

static const test_case_entry cases[] = {
    TEST_ENTRY(test_valid_requests_end_where_their_body_does),
    TEST_ENTRY(test_malformed_heads_are_400),
    TEST_ENTRY(test_oversized_lengths_and_heads),
    TEST_ENTRY(test_bad_chunks_are_400),
    TEST_ENTRY(test_responses_end_where_they_should),
    TEST_ENTRY(test_next_request_starts_fresh),
};

TEST_MAIN("gateway_httpframe", cases)
