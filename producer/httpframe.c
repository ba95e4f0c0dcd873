/*
 * httpframe: HTTP/1.1 message framing (see httpframe.h).
 */
#include "httpframe.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "ids.h"

void httpframe_init(httpframe *f, bool response)
{
    memset(f, 0, sizeof *f);
    f->response = response;
}

void httpframe_next(httpframe *f)
{
    bool response = f->response, head_request = f->head_request;
    httpframe_init(f, response);
    f->head_request = head_request;
}

bool httpframe_idle(const httpframe *f)
{
    return f->state == HTTPFRAME_HEAD && f->head_bytes == 0 && f->line_len == 0;
}

static void fail(httpframe *f, int status, const char *code, const char *field, const char *msg)
{
    f->state = HTTPFRAME_ERROR;
    f->status = status;
    f->code = code;
    snprintf(f->message, sizeof f->message, "%s", msg);
    snprintf(f->field, sizeof f->field, "%s", field != NULL ? field : "");
}

static void malformed(httpframe *f, const char *field, const char *msg)
{
    fail(f, 400, "malformed_request", field, msg);
}

/* RFC 9110 5.6.2 tchar. */
static bool is_tchar(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* Trims OWS around [*v, *v + *n). */
static void trim(const char **v, size_t *n)
{
    while (*n > 0 && is_ows(**v))
        (*v)++, (*n)--;
    while (*n > 0 && is_ows((*v)[*n - 1]))
        (*n)--;
}

/* "METHOD SP target SP HTTP/1.x". */
static void request_line(httpframe *f, const char *s, size_t n)
{
    size_t m = 0;
    while (m < n && is_tchar((unsigned char)s[m]))
        m++;
    if (m == 0 || m >= n || s[m] != ' ') {
        malformed(f, NULL, "the request line must be: method, a space, target, a space, version");
        return;
    }
    f->is_head = m == 4 && memcmp(s, "HEAD", 4) == 0;
    size_t t = m + 1, e = t;
    while (e < n && (unsigned char)s[e] > 0x20 && s[e] != 0x7f)
        e++;
    if (e == t || e >= n || s[e] != ' ' || n - e - 1 != 8 || memcmp(s + e + 1, "HTTP/1.", 7) != 0 ||
        (s[n - 1] != '0' && s[n - 1] != '1'))
        malformed(f, NULL,
                  "the request line must be: method, a space, target, a space, "
                  "HTTP/1.1");
    else
        f->http11 = s[n - 1] == '1';
}

static void response_line(httpframe *f, const char *s, size_t n)
{
    if (n < 12 || memcmp(s, "HTTP/1.", 7) != 0 || s[9] < '1' || s[9] > '5' || s[10] < '0' ||
        s[10] > '9' || s[11] < '0' || s[11] > '9') {
        malformed(f, NULL, "a malformed status line");
        return;
    }
    f->status = (s[9] - '0') * 100 + (s[10] - '0') * 10 + (s[11] - '0');
}

static bool name_is(const char *s, size_t n, const char *want)
{
    return strlen(want) == n && strncasecmp(s, want, n) == 0;
}

/* One field line "name: value" of a head or a trailer. */
static void field_line(httpframe *f, const char *s, size_t n, bool trailer)
{
    if (is_ows(s[0])) {
        malformed(f, NULL,
                  f->fields == 0 ? "whitespace between the request line and the first field"
                                 : "obsolete line folding (a field line starting with a space "
                                   "or tab) is not accepted");
        return;
    }
    const char *colon = memchr(s, ':', n);
    size_t nl = colon != NULL ? (size_t)(colon - s) : n;
    for (size_t i = 0; i < nl; i++)
        if (!is_tchar((unsigned char)s[i]))
            colon = NULL;
    if (colon == NULL || nl == 0) {
        malformed(f, NULL,
                  "a header field name holds a character outside a token (whitespace before "
                  "the colon?)");
        return;
    }
    char name[64];
    snprintf(name, sizeof name, "%.*s", (int)(nl < sizeof name ? nl : sizeof name - 1), s);
    const char *v = colon + 1;
    size_t vn = n - nl - 1;
    for (size_t i = 0; i < vn; i++) {
        unsigned char c = (unsigned char)v[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f) {
            malformed(f, name, "a header value holds a control character");
            return;
        }
    }
    trim(&v, &vn);
    if (f->response || trailer) {
        if (f->response && name_is(s, nl, "Content-Length")) {
            f->content_lengths++;
            f->content_length = 0;
            for (size_t i = 0; i < vn && v[i] >= '0' && v[i] <= '9' && i < 18; i++)
                f->content_length = f->content_length * 10 + (uint64_t)(v[i] - '0');
        } else if (f->response && name_is(s, nl, "Transfer-Encoding")) {
            f->transfer_encodings++;
        }
        return;
    }
    if (name_is(s, nl, "Content-Length")) {
        f->content_lengths++;
        bool digits = vn > 0;
        for (size_t i = 0; i < vn; i++)
            if (v[i] < '0' || v[i] > '9')
                digits = false;
        if (!digits)
            f->bad_length = true;
        else if (vn > 18)
            f->long_length = true;
        else
            for (size_t i = 0; i < vn; i++)
                f->content_length = f->content_length * 10 + (uint64_t)(v[i] - '0');
    } else if (name_is(s, nl, "Transfer-Encoding")) {
        /* Only "chunked" alone is understood: any other coding, or chunked
         * that is not the final one, leaves the body's length unknown. */
        f->transfer_encodings++;
        if (!(vn == 7 && strncasecmp(v, "chunked", 7) == 0))
            f->bad_coding = true;
    } else if (name_is(s, nl, "Authorization")) {
        f->authorizations++;
    } else if (name_is(s, nl, "Host")) {
        f->hosts++;
    }
}

/* The end of a head: what the body is. */
static void head_done(httpframe *f)
{
    if (f->response) {
        bool interim = f->status >= 100 && f->status < 200;
        if (interim) {
            /* 100 Continue and the like: the final answer follows. */
            bool head_request = f->head_request;
            httpframe_init(f, true);
            f->head_request = head_request;
            return;
        }
        if (f->head_request || f->status == 204 || f->status == 304)
            f->state = HTTPFRAME_DONE;
        else if (f->transfer_encodings > 0)
            f->state = HTTPFRAME_CHUNK_SIZE;
        else if (f->content_lengths > 0)
            f->state = f->content_length > 0 ? HTTPFRAME_BODY : HTTPFRAME_DONE;
        else
            f->state = HTTPFRAME_UNTIL_CLOSE;
        f->remaining = f->content_length;
        return;
    }
    if (f->content_lengths > 1)
        malformed(f, "Content-Length", "Content-Length is given more than once");
    else if (f->bad_length)
        malformed(f, "Content-Length", "Content-Length must be a decimal number");
    else if (f->long_length)
        fail(f, 413, "payload_too_large", "Content-Length",
             "Content-Length is larger than any body the gateway accepts");
    else if (f->transfer_encodings > 0 && f->content_lengths > 0)
        malformed(f, "Transfer-Encoding",
                  "Transfer-Encoding and Content-Length must not both be given");
    else if (f->transfer_encodings > 1 || f->bad_coding)
        malformed(f, "Transfer-Encoding", "the only Transfer-Encoding accepted is chunked, alone");
    else if (f->authorizations > 1)
        malformed(f, "Authorization", "Authorization is given more than once");
    else if (f->hosts > 1 || (f->http11 && f->hosts == 0))
        malformed(f, "Host", "an HTTP/1.1 request must have exactly one Host");
    else if (f->transfer_encodings > 0)
        f->state = HTTPFRAME_CHUNK_SIZE;
    else if (f->content_length > 0)
        f->state = HTTPFRAME_BODY, f->remaining = f->content_length;
    else
        f->state = HTTPFRAME_DONE;
}

/* "1*HEXDIG [ ;ext ]". */
static void chunk_size_line(httpframe *f, const char *s, size_t n)
{
    size_t i = 0;
    uint64_t v = 0;
    for (; i < n && id_hex_digit(s[i]) >= 0; i++) {
        if (i >= 15) {
            malformed(f, "Transfer-Encoding", "a chunk size has more than 15 hex digits");
            return;
        }
        v = v * 16 + (uint64_t)id_hex_digit(s[i]);
    }
    if (i == 0 || (i < n && s[i] != ';')) {
        malformed(f, "Transfer-Encoding", "a chunk size must be hex digits");
        return;
    }
    for (; i < n; i++)
        if (((unsigned char)s[i] < 0x20 && s[i] != '\t') || s[i] == 0x7f) {
            malformed(f, "Transfer-Encoding", "a chunk extension holds a control character");
            return;
        }
    if (v == 0) {
        f->state = HTTPFRAME_TRAILER;
        f->head_bytes = 0;
    } else {
        f->state = HTTPFRAME_CHUNK_DATA;
        f->remaining = v;
    }
}

/* A complete line (without its CRLF or LF) in the current state. */
static void line_done(httpframe *f, const char *s, size_t n)
{
    switch (f->state) {
    case HTTPFRAME_HEAD:
        if (!f->started) {
            if (n == 0 && !f->response && f->head_bytes <= 4)
                return; /* RFC 9112 2.2: an empty line before a request is ignored */
            f->started = true;
            if (f->response)
                response_line(f, s, n);
            else
                request_line(f, s, n);
        } else if (n == 0) {
            head_done(f);
        } else if (++f->fields > HTTPFRAME_FIELDS_MAX) {
            fail(f, 431, "header_too_large", NULL, "the request head has too many fields");
        } else {
            field_line(f, s, n, false);
        }
        return;
    case HTTPFRAME_CHUNK_SIZE:
        chunk_size_line(f, s, n);
        return;
    case HTTPFRAME_CHUNK_END:
        if (n != 0)
            malformed(f, "Transfer-Encoding", "a chunk's data must end with CRLF");
        else
            f->state = HTTPFRAME_CHUNK_SIZE;
        return;
    case HTTPFRAME_TRAILER:
        if (n == 0)
            f->state = HTTPFRAME_DONE;
        else
            field_line(f, s, n, true);
        return;
    default:
        return;
    }
}

static size_t line_limit(const httpframe *f)
{
    if (f->state == HTTPFRAME_CHUNK_SIZE || f->state == HTTPFRAME_CHUNK_END)
        return HTTPFRAME_CHUNK_LINE_MAX;
    return HTTPFRAME_HEAD_MAX;
}

static void too_long(httpframe *f)
{
    if (f->state == HTTPFRAME_HEAD)
        fail(f, 431, "header_too_large", NULL, "the request head is larger than the limit");
    else if (f->state == HTTPFRAME_TRAILER)
        fail(f, 431, "header_too_large", NULL, "the chunked body's trailer is too large");
    else
        malformed(f, "Transfer-Encoding", "a chunk-size line is too long");
}

/* Reads line bytes; returns bytes used. */
static size_t feed_line(httpframe *f, const char *data, size_t len)
{
    const char *nl = memchr(data, '\n', len);
    size_t take = nl != NULL ? (size_t)(nl - data) + 1 : len;
    size_t limit = line_limit(f);
    bool counted = f->state == HTTPFRAME_HEAD || f->state == HTTPFRAME_TRAILER;
    if (f->line_len + take > limit || (counted && f->head_bytes + take > HTTPFRAME_HEAD_MAX)) {
        too_long(f);
        return 0;
    }
    memcpy(f->line + f->line_len, data, take);
    f->line_len += take;
    if (counted)
        f->head_bytes += take;
    if (nl == NULL)
        return take;
    size_t n = f->line_len - 1;
    if (n > 0 && f->line[n - 1] == '\r')
        n--;
    f->line_len = 0;
    if (memchr(f->line, '\r', n) != NULL) {
        malformed(f, NULL, "a bare CR in a line");
        return take;
    }
    line_done(f, f->line, n);
    return take;
}

size_t httpframe_feed(httpframe *f, const char *data, size_t len)
{
    size_t used = 0;
    while (used < len && f->state != HTTPFRAME_DONE && f->state != HTTPFRAME_ERROR) {
        switch (f->state) {
        case HTTPFRAME_BODY:
        case HTTPFRAME_CHUNK_DATA: {
            size_t n = len - used;
            if ((uint64_t)n > f->remaining)
                n = (size_t)f->remaining;
            used += n;
            f->remaining -= n;
            if (f->remaining == 0)
                f->state = f->state == HTTPFRAME_BODY ? HTTPFRAME_DONE : HTTPFRAME_CHUNK_END;
            break;
        }
        case HTTPFRAME_UNTIL_CLOSE:
            return len;
        default: {
            size_t n = feed_line(f, data + used, len - used);
            if (f->state == HTTPFRAME_ERROR)
                return used;
            used += n;
            break;
        }
        }
    }
    return used;
}
