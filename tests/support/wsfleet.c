/*
 * wsfleet: see wsfleet.h.
 */
#include "wsfleet.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

/* The fixed key every connection sends, and the accept value it must get. */
#define WS_KEY    "dGhlIHNhbXBsZSBub25jZQ=="
#define WS_ACCEPT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
#define EVENTS    256

typedef struct conn {
    int fd;
    wsfleet_state state;
    int status, close_code;
    size_t inlen, outlen;
    unsigned char in[WSFLEET_IN_MAX + 1];
    unsigned char out[WSFLEET_OUT_MAX];
} conn;

struct wsfleet {
    int ep;
    size_t n;
    conn *c;
    size_t counts[WSFLEET_CLOSED + 1];
    wsfleet_text_cb cb;
    void *ctx;
    uint32_t rnd; /* xorshift state for the frame masks */
};

static void set_state(wsfleet *f, conn *c, wsfleet_state s)
{
    f->counts[c->state]--;
    f->counts[s]++;
    c->state = s;
}

static void conn_end(wsfleet *f, conn *c, int close_code)
{
    if (c->fd >= 0) {
        epoll_ctl(f->ep, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
        c->fd = -1;
    }
    if (c->close_code == 0)
        c->close_code = close_code;
    c->inlen = c->outlen = 0;
    set_state(f, c, WSFLEET_CLOSED);
}

wsfleet *wsfleet_new(size_t n, wsfleet_text_cb cb, void *ctx)
{
    wsfleet *f = calloc(1, sizeof *f);
    if (f == NULL)
        return NULL;
    f->ep = epoll_create1(EPOLL_CLOEXEC);
    f->c = calloc(n ? n : 1, sizeof *f->c);
    if (f->ep < 0 || f->c == NULL) {
        if (f->ep >= 0)
            close(f->ep);
        free(f->c);
        free(f);
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        f->c[i].fd = -1;
    f->n = n;
    f->counts[WSFLEET_IDLE] = n;
    f->cb = cb;
    f->ctx = ctx;
    f->rnd = 0x9e3779b9u ^ (uint32_t)getpid();
    return f;
}

void wsfleet_free(wsfleet *f)
{
    if (f == NULL)
        return;
    for (size_t i = 0; i < f->n; i++)
        if (f->c[i].fd >= 0)
            close(f->c[i].fd);
    close(f->ep);
    free(f->c);
    free(f);
}

static void want_out(wsfleet *f, size_t i, int on)
{
    struct epoll_event ev = {.events = EPOLLIN | (on ? EPOLLOUT : 0u), .data.u64 = i};
    epoll_ctl(f->ep, EPOLL_CTL_MOD, f->c[i].fd, &ev);
}

/* Writes what waits in c->out; -1 when the socket failed. */
static int flush_out(wsfleet *f, size_t i)
{
    conn *c = &f->c[i];
    size_t had = c->outlen;
    while (c->outlen > 0) {
        ssize_t k = send(c->fd, c->out, c->outlen, MSG_NOSIGNAL);
        if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOTCONN))
            break;
        if (k <= 0)
            return -1;
        memmove(c->out, c->out + k, c->outlen - (size_t)k);
        c->outlen -= (size_t)k;
    }
    if (had > 0 || c->state == WSFLEET_CONNECTING)
        want_out(f, i, c->outlen > 0);
    return 0;
}

int wsfleet_open(wsfleet *f, size_t i, int port, const char *target)
{
    conn *c = &f->c[i];
    if (c->state == WSFLEET_CONNECTING || c->state == WSFLEET_OPEN)
        return -1;
    set_state(f, c, WSFLEET_CONNECTING);
    c->status = c->close_code = 0;
    c->inlen = 0;
    int n = snprintf((char *)c->out, sizeof c->out,
                     "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: " WS_KEY "\r\n"
                     "Sec-WebSocket-Version: 13\r\n\r\n",
                     target, port);
    if (n < 0 || (size_t)n >= sizeof c->out)
        goto fail;
    c->outlen = (size_t)n;
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0)
        goto fail;
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(c->fd, (struct sockaddr *)&a, sizeof a) != 0 && errno != EINPROGRESS)
        goto fail;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.u64 = i};
    if (epoll_ctl(f->ep, EPOLL_CTL_ADD, c->fd, &ev) != 0)
        goto fail;
    return 0;
fail:
    conn_end(f, c, -1);
    return -1;
}

/* Appends one masked frame of opcode to c->out; -1 when it does not fit. */
static int queue_frame(wsfleet *f, conn *c, int opcode, const void *payload, size_t len)
{
    size_t hdr = len < 126 ? 6 : 8;
    if (len > 65535 || c->outlen + hdr + len > sizeof c->out)
        return -1;
    unsigned char *p = c->out + c->outlen;
    *p++ = (unsigned char)(0x80 | opcode);
    if (len < 126) {
        *p++ = (unsigned char)(0x80 | len);
    } else {
        *p++ = 0x80 | 126;
        *p++ = (unsigned char)(len >> 8);
        *p++ = (unsigned char)len;
    }
    f->rnd ^= f->rnd << 13;
    f->rnd ^= f->rnd >> 17;
    f->rnd ^= f->rnd << 5;
    unsigned char mask[4];
    memcpy(mask, &f->rnd, 4);
    memcpy(p, mask, 4);
    p += 4;
    for (size_t k = 0; k < len; k++)
        p[k] = ((const unsigned char *)payload)[k] ^ mask[k % 4];
    c->outlen += hdr + len;
    return 0;
}

int wsfleet_send_text(wsfleet *f, size_t i, const void *text, size_t len)
{
    conn *c = &f->c[i];
    if (c->state != WSFLEET_OPEN || queue_frame(f, c, 0x1, text, len) != 0)
        return -1;
    if (flush_out(f, i) != 0) {
        conn_end(f, c, -1);
        return -1;
    }
    return 0;
}

void wsfleet_close(wsfleet *f, size_t i)
{
    if (f->c[i].state == WSFLEET_CONNECTING || f->c[i].state == WSFLEET_OPEN)
        conn_end(f, &f->c[i], 1000);
}

/* The upgrade answer, once whole: -1 when refused (or broken). */
static int read_upgrade(conn *c, size_t *used)
{
    c->in[c->inlen] = '\0';
    char *end = strstr((char *)c->in, "\r\n\r\n");
    if (end == NULL)
        return c->inlen >= WSFLEET_IN_MAX ? -1 : 0;
    if (sscanf((char *)c->in, "HTTP/1.%*d %d", &c->status) != 1 || c->status != 101)
        return -1;
    *end = '\0';
    if (strstr((char *)c->in, WS_ACCEPT) == NULL)
        return -1;
    *used = (size_t)(end + 4 - (char *)c->in);
    return 1;
}

/* Handles the whole frames in c->in; -1 when the connection ends. */
static int read_frames(wsfleet *f, size_t i)
{
    conn *c = &f->c[i];
    size_t pos = 0;
    while (c->inlen - pos >= 2) {
        unsigned char *p = c->in + pos;
        size_t len = p[1] & 0x7f, hdr = 2;
        if (p[1] & 0x80)
            return -1; /* a server never masks */
        if (len == 126) {
            if (c->inlen - pos < 4)
                break;
            len = (size_t)p[2] << 8 | p[3];
            hdr = 4;
        } else if (len == 127) {
            return -1; /* over WSFLEET_IN_MAX whatever it is */
        }
        if (hdr + len > WSFLEET_IN_MAX)
            return -1;
        if (c->inlen - pos < hdr + len)
            break;
        int opcode = p[0] & 0x0f;
        char *payload = (char *)p + hdr;
        char saved = payload[len];
        payload[len] = '\0';
        if (opcode == 0x1 && f->cb != NULL) {
            f->cb(f->ctx, i, payload, len);
            if (c->state != WSFLEET_OPEN)
                return 0; /* the callback closed it */
        } else if (opcode == 0x8) {
            c->close_code =
                len >= 2 ? ((unsigned char)payload[0] << 8 | (unsigned char)payload[1]) : 1005;
            return -1;
        } else if (opcode == 0x9 && queue_frame(f, c, 0xA, payload, len) != 0) {
            return -1;
        }
        payload[len] = saved;
        pos += hdr + len;
    }
    memmove(c->in, c->in + pos, c->inlen - pos);
    c->inlen -= pos;
    return flush_out(f, i);
}

static void on_readable(wsfleet *f, size_t i)
{
    conn *c = &f->c[i];
    for (int rounds = 0; rounds < 16 && c->state != WSFLEET_CLOSED; rounds++) {
        ssize_t k = recv(c->fd, c->in + c->inlen, WSFLEET_IN_MAX - c->inlen, 0);
        if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (k <= 0) {
            conn_end(f, c, -1);
            return;
        }
        c->inlen += (size_t)k;
        if (c->state == WSFLEET_CONNECTING) {
            size_t used = 0;
            int r = read_upgrade(c, &used);
            if (r < 0) {
                conn_end(f, c, -1);
                return;
            }
            if (r == 0)
                continue;
            memmove(c->in, c->in + used, c->inlen - used);
            c->inlen -= used;
            set_state(f, c, WSFLEET_OPEN);
        }
        if (read_frames(f, i) != 0) {
            conn_end(f, c, -1);
            return;
        }
        if ((size_t)k < WSFLEET_IN_MAX / 2)
            return; /* drained, most likely: epoll says when there is more */
    }
}

int wsfleet_poll(wsfleet *f, int timeout_ms)
{
    struct epoll_event ev[EVENTS];
    int n = epoll_wait(f->ep, ev, EVENTS, timeout_ms);
    for (int k = 0; k < n; k++) {
        size_t i = (size_t)ev[k].data.u64;
        conn *c = &f->c[i];
        if (c->fd < 0)
            continue;
        if ((ev[k].events & EPOLLOUT) && flush_out(f, i) != 0) {
            conn_end(f, c, -1);
            continue;
        }
        if (ev[k].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
            on_readable(f, i);
    }
    return n < 0 ? 0 : n;
}

wsfleet_state wsfleet_conn_state(const wsfleet *f, size_t i)
{
    return f->c[i].state;
}

int wsfleet_conn_status(const wsfleet *f, size_t i)
{
    return f->c[i].status;
}

int wsfleet_conn_close_code(const wsfleet *f, size_t i)
{
    return f->c[i].close_code;
}

size_t wsfleet_count(const wsfleet *f, wsfleet_state s)
{
    return f->counts[s];
}
