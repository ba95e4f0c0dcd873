/*
 * rtclient: a small client of herald-realtime's live stream for tests,
 * over a plain socket, so a test can also send what no well-behaved
 * client would: RFC 6455 (masked frames out, the server's text, ping and
 * close frames in) and Server-Sent Events, behind one reader (ws_next)
 * that gives each event as parsed JSON.  Every read is bounded in time.
 */
#ifndef HERALD_TESTS_RTCLIENT_H
#define HERALD_TESTS_RTCLIENT_H

#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "testutil.h"
#include "timeutil.h"

/* How long an expected event may take. */
#ifndef RTCLIENT_WAIT_MS
#define RTCLIENT_WAIT_MS 15000
#endif

typedef struct ws {
    int fd;
    unsigned char in[1 << 17];
    size_t inlen;
    int close_code;    /* the server's close frame; 0 before it, -1 on EOF without one */
    bool sse;          /* a Server-Sent Events stream: events parsed by sse_next */
    long long last_id; /* SSE: the last id: line */
    int beats;         /* SSE: heartbeat comments read */
    int retry_ms;      /* SSE: the retry: line */
    char head[2048];   /* the answer's status line and headers */
} ws;

/* Reads more into w->in within timeout_ms: 1, 0 on timeout, -1 on EOF. */
static inline int ws_fill(ws *w, long timeout_ms)
{
    struct pollfd p = {.fd = w->fd, .events = POLLIN};
    if (poll(&p, 1, (int)timeout_ms) <= 0)
        return 0;
    ssize_t n = read(w->fd, w->in + w->inlen, sizeof w->in - 1 - w->inlen);
    if (n <= 0)
        return -1;
    w->inlen += (size_t)n;
    return 1;
}

static inline void ws_write_all(int fd, const void *p, size_t n)
{
    const char *s = p;
    while (n > 0) {
        ssize_t k = write(fd, s, n);
        if (k <= 0)
            return; /* the server hung up: what the caller checks next */
        s += k;
        n -= (size_t)k;
    }
}

/* SO_RCVBUF of the next connections (0: the system's): set before the
 * handshake, so the window the server sees is small from the start. */
static int tcp_rcvbuf;

static inline int tcp_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    if (tcp_rcvbuf > 0)
        ck_assert_int_eq(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &tcp_rcvbuf, sizeof tcp_rcvbuf), 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    return fd;
}

/* The body of the last refused request. */
static char last_refusal[1024];

/*
 * Sends GET target with the header lines headers (each ending in CRLF,
 * then extra, one line without its CRLF, when not NULL) and reads the
 * answer's head; returns the HTTP status.  When it is ok, *out is the open
 * stream, positioned after the head (free with ws_close), otherwise NULL
 * and the body is in last_refusal.
 */
static inline int stream_open(int port, const char *target, const char *headers, const char *extra,
                              int ok, ws **out)
{
    ws *w = calloc(1, sizeof *w);
    ck_assert_ptr_nonnull(w);
    w->fd = tcp_connect(port);
    char req[4096];
    snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n%s%s%s\r\n", target, port,
             headers, extra ? extra : "", extra ? "\r\n" : "");
    ws_write_all(w->fd, req, strlen(req));
    char *end = NULL;
    int64_t deadline = timeutil_monotonic_ms() + RTCLIENT_WAIT_MS;
    while (end == NULL && timeutil_monotonic_ms() < deadline) {
        if (ws_fill(w, 100) < 0)
            break;
        w->in[w->inlen] = '\0';
        end = strstr((char *)w->in, "\r\n\r\n");
    }
    int status = 0;
    if (w->inlen > 12)
        sscanf((char *)w->in, "HTTP/1.%*d %d", &status);
    if (status == ok && end != NULL) {
        size_t hdr = (size_t)(end + 4 - (char *)w->in);
        snprintf(w->head, sizeof w->head, "%.*s", (int)hdr, (char *)w->in);
        memmove(w->in, w->in + hdr, w->inlen - hdr);
        w->inlen -= hdr;
        *out = w;
    } else {
        /* The refusal's body, read to the end (the server closes). */
        for (int i = 0;
             i < 1000 && w->inlen < sizeof w->in - 1 && timeutil_monotonic_ms() < deadline; i++)
            if (ws_fill(w, 100) < 0)
                break;
        w->in[w->inlen] = '\0';
        end = strstr((char *)w->in, "\r\n\r\n");
        snprintf(last_refusal, sizeof last_refusal, "%s", end != NULL ? end + 4 : "");
        close(w->fd);
        free(w);
        *out = NULL;
    }
    return status;
}

/* The upgrade request for target; 101 gives the open client. */
static inline int ws_open(int port, const char *target, const char *header, ws **out)
{
    int status = stream_open(port, target,
                             "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                             "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                             "Sec-WebSocket-Version: 13\r\n",
                             header, 101, out);
    if (status == 101)
        ck_assert_msg(strstr((*out)->head, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") != NULL,
                      "bad accept: %s", (*out)->head);
    return status;
}

/* An EventSource's request for target; 200 gives the open stream. */
static inline int sse_open(int port, const char *target, const char *header, ws **out)
{
    int status = stream_open(port, target, "Accept: text/event-stream\r\n", header, 200, out);
    if (status == 200) {
        (*out)->sse = true;
        (*out)->last_id = -1;
        ck_assert_msg(strstr((*out)->head, "content-type: text/event-stream") != NULL ||
                          strstr((*out)->head, "Content-Type: text/event-stream") != NULL,
                      "%s", (*out)->head);
    }
    return status;
}

static inline void ws_close(ws *w)
{
    if (w == NULL)
        return;
    close(w->fd);
    free(w);
}

/* Sends one masked frame (fin set) of opcode with payload. */
static inline void ws_send(ws *w, int opcode, const void *payload, size_t len)
{
    unsigned char *f = malloc(len + 14);
    size_t n = 0;
    f[n++] = (unsigned char)(0x80 | opcode);
    if (len < 126) {
        f[n++] = (unsigned char)(0x80 | len);
    } else if (len < 65536) {
        f[n++] = 0x80 | 126;
        f[n++] = (unsigned char)(len >> 8);
        f[n++] = (unsigned char)len;
    } else {
        f[n++] = 0x80 | 127;
        for (int i = 7; i >= 0; i--)
            f[n++] = (unsigned char)((uint64_t)len >> (8 * i));
    }
    static const unsigned char mask[4] = {0x12, 0x34, 0x56, 0x78};
    memcpy(f + n, mask, 4);
    n += 4;
    for (size_t i = 0; i < len; i++)
        f[n + i] = ((const unsigned char *)payload)[i] ^ mask[i % 4];
    ws_write_all(w->fd, f, n + len);
    free(f);
}

/*
 * The next text message within timeout_ms, parsed; pings are answered
 * (unless answer_pings is false) and skipped.  NULL on timeout or close
 * (w->close_code says which).
 */
static inline json_t *ws_next_opt(ws *w, long timeout_ms, bool answer_pings)
{
    int64_t deadline = timeutil_monotonic_ms() + timeout_ms;
    for (int i = 0; i < 100000; i++) {
        if (w->inlen >= 2) {
            size_t len = w->in[1] & 0x7f, hdr = 2;
            if (len == 126 && w->inlen >= 4) {
                len = (size_t)w->in[2] << 8 | w->in[3];
                hdr = 4;
            } else if (len == 127) {
                ck_abort_msg("the server sent a frame over 64 KiB");
            }
            if ((len < 126 || hdr == 4) && w->inlen >= hdr + len) {
                int opcode = w->in[0] & 0x0f;
                char *payload = strndup((char *)w->in + hdr, len);
                memmove(w->in, w->in + hdr + len, w->inlen - hdr - len);
                w->inlen -= hdr + len;
                if (opcode == 0x1) {
                    json_t *j = json_loads(payload, 0, NULL);
                    ck_assert_msg(j != NULL, "not JSON: %s", payload);
                    free(payload);
                    return j;
                }
                if (opcode == 0x8) {
                    w->close_code =
                        len >= 2 ? ((unsigned char)payload[0] << 8 | (unsigned char)payload[1])
                                 : 1005;
                    free(payload);
                    return NULL;
                }
                if (opcode == 0x9 && answer_pings)
                    ws_send(w, 0xA, payload, len);
                free(payload);
                continue;
            }
        }
        long left = (long)(deadline - timeutil_monotonic_ms());
        if (left <= 0)
            return NULL;
        int r = ws_fill(w, left < 100 ? left : 100);
        if (r < 0) {
            w->close_code = -1;
            return NULL;
        }
    }
    return NULL;
}

/*
 * The next event of an SSE stream within timeout_ms: its data parsed, its
 * id in w->last_id.  Comments count as heartbeats; "event: close" sets
 * w->close_code from its data and returns NULL, as EOF does (-1).
 */
static inline json_t *sse_next(ws *w, long timeout_ms)
{
    int64_t deadline = timeutil_monotonic_ms() + timeout_ms;
    for (int i = 0; i < 100000; i++) {
        w->in[w->inlen] = '\0';
        char *end = strstr((char *)w->in, "\n\n");
        if (end != NULL) {
            *end = '\0';
            char *block = strdup((char *)w->in), *data = NULL, *evname = NULL;
            size_t used = (size_t)(end + 2 - (char *)w->in);
            memmove(w->in, w->in + used, w->inlen - used);
            w->inlen -= used;
            char *save = NULL;
            for (char *line = strtok_r(block, "\n", &save); line != NULL;
                 line = strtok_r(NULL, "\n", &save)) {
                if (line[0] == ':')
                    w->beats++;
                else if (strncmp(line, "id: ", 4) == 0)
                    w->last_id = atoll(line + 4);
                else if (strncmp(line, "retry: ", 7) == 0)
                    w->retry_ms = atoi(line + 7);
                else if (strncmp(line, "event: ", 7) == 0)
                    evname = line + 7;
                else if (strncmp(line, "data: ", 6) == 0)
                    data = line + 6;
                else
                    ck_abort_msg("not an SSE line: %s", line);
            }
            json_t *j = data != NULL ? json_loads(data, 0, NULL) : NULL;
            ck_assert_msg(data == NULL || j != NULL, "not JSON: %s", data);
            bool close_event = evname != NULL && strcmp(evname, "close") == 0;
            ck_assert_msg(evname == NULL || close_event, "unknown event %s", evname);
            free(block);
            if (close_event) {
                w->close_code = (int)json_integer_value(json_object_get(j, "code"));
                json_decref(j);
                return NULL;
            }
            if (j != NULL)
                return j;
            continue;
        }
        long left = (long)(deadline - timeutil_monotonic_ms());
        if (left <= 0)
            return NULL;
        if (w->inlen >= sizeof w->in - 1)
            ck_abort_msg("an SSE event over 128 KiB");
        if (ws_fill(w, left < 100 ? left : 100) < 0) {
            w->close_code = -1;
            return NULL;
        }
    }
    return NULL;
}

static inline json_t *ws_next(ws *w, long timeout_ms)
{
    return w->sse ? sse_next(w, timeout_ms) : ws_next_opt(w, timeout_ms, true);
}

/* Waits for the server's close: its code, or -1 on a bare EOF, 0 on timeout. */
static inline int ws_wait_close(ws *w, long timeout_ms)
{
    int64_t deadline = timeutil_monotonic_ms() + timeout_ms;
    for (int i = 0; i < 1000000 && timeutil_monotonic_ms() < deadline; i++) {
        json_t *j = ws_next(w, (long)(deadline - timeutil_monotonic_ms()));
        if (j == NULL)
            return w->close_code;
        json_decref(j);
    }
    return 0;
}

/* The next event, asserting its type and seq; returned for more checks. */
static inline json_t *expect_event(ws *w, const char *type, long long seq)
{
    json_t *j = ws_next(w, RTCLIENT_WAIT_MS);
    ck_assert_msg(j != NULL, "no %s event at seq %lld (close %d)", type, seq, w->close_code);
    ck_assert_str_eq(json_string_value(json_object_get(j, "type")), type);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "seq")), seq);
    if (w->sse)
        ck_assert_int_eq(w->last_id, seq); /* the id a reconnect gives back */
    return j;
}

static inline void expect_counts(ws *w, long long seq, long long unread, long long unseen)
{
    json_t *j = expect_event(w, "counts", seq);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "unread_count")), unread);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "unseen_count")), unseen);
    json_decref(j);
}

/* Nothing more arrives within ms. */
static inline void expect_quiet(ws *w, long ms)
{
    json_t *j = ws_next(w, ms);
    char *s = j ? json_dumps(j, 0) : NULL;
    ck_assert_msg(j == NULL && w->close_code == 0, "unexpected: %s (close %d)", s ? s : "",
                  w->close_code);
    free(s);
}

#endif
