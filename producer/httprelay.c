/*
 * httprelay: accept, frame and relay in front of libmicrohttpd (see
 * httprelay.h).
 */
#define _GNU_SOURCE /* accept4 */
#include "httprelay.h"

#include "error.h"
#include "http.h"
#include "httpframe.h"

#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define RELAY_BUF          16384
#define RELAY_TICK_MS      100
#define RELAY_MAX_THREADS  16
#define RELAY_LINGER_US    5000000
#define RELAY_LINGER_BYTES (32u << 20)
/* A body gets this long before its rate is held to min_body_rate. */
#define RELAY_BODY_GRACE_US 5000000

typedef struct relay_thread relay_thread;
typedef struct rconn rconn;

/* What an epoll event is about: a connection's client or pair end. */
typedef struct rend {
    rconn *c;
    bool pair;
} rend;

struct rconn {
    rconn *prev, *next;
    relay_thread *t;
    int cfd, pfd;
    /* What epoll last reported (edge-triggered): cleared when a call would
     * block or drained the socket, set by the next event. */
    bool cr, cw, pr, pw;
    bool chup, phup; /* the end was reported hung up: reads go on to the EOF */
    rend ce, pe;
    httpframe req, resp;
    char in[RELAY_BUF]; /* from the client: [0,fwd) sent on, [fwd,parsed) framed */
    size_t in_len, fwd, parsed;
    char out[RELAY_BUF]; /* from libmicrohttpd, [out_off,out_len) not yet sent */
    size_t out_len, out_off;
    char tail[1024]; /* the relay's own final answer */
    size_t tail_len, tail_off;
    unsigned reqs, resps; /* complete requests sent on, final answers relayed */
    bool client_eof, closing, lingering, dead;
    bool pair_shut;   /* libmicrohttpd stopped reading: its answer is still read */
    int64_t since_us; /* when the head or body phase began */
    uint64_t body_bytes;
    int64_t linger_until;
    uint64_t linger_bytes;
};

struct relay_thread {
    httprelay *r;
    pthread_t tid;
    bool started;
    int ep;
    rconn *conns;
    rconn *dead; /* freed after the events at hand */
};

struct httprelay {
    httprelay_config cfg;
    atomic_uint open;
    atomic_bool stopping;
    unsigned nthreads;
    relay_thread threads[RELAY_MAX_THREADS];
};

static int64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void conn_free(rconn *c)
{
    relay_thread *t = c->t;
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        t->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    /* Removed before closing: a forked child may hold the descriptors
     * until it execs, and epoll would go on reporting them. */
    if (c->pfd >= 0) {
        epoll_ctl(t->ep, EPOLL_CTL_DEL, c->pfd, NULL);
        close(c->pfd);
    }
    epoll_ctl(t->ep, EPOLL_CTL_DEL, c->cfd, NULL);
    close(c->cfd);
    atomic_fetch_sub(&t->r->open, 1);
    c->dead = true;
    c->next = t->dead;
    t->dead = c;
}

static void free_dead(relay_thread *t)
{
    while (t->dead != NULL) {
        rconn *c = t->dead;
        t->dead = c->next;
        free(c);
    }
}

/* Stops relaying to libmicrohttpd: closing its end drops a partial request. */
static void close_pair(rconn *c)
{
    if (c->pfd >= 0) {
        epoll_ctl(c->t->ep, EPOLL_CTL_DEL, c->pfd, NULL);
        close(c->pfd);
    }
    c->pfd = -1;
    c->closing = true;
    c->in_len = c->fwd = c->parsed = 0;
}

/* The relay answers the current request itself and closes the connection,
 * unless an answer to it was already made (then it just closes). */
static void conn_refuse(rconn *c, int status, const char *code, const char *message,
                        const char *field)
{
    if (c->closing)
        return;
    close_pair(c);
    if (c->resps > c->reqs || !httpframe_idle(&c->resp))
        return;
    char body[768];
    size_t bn = http_error_json(body, sizeof body, code, message, field);
    const char *reason = MHD_get_reason_phrase_for((unsigned)status);
    int n = snprintf(c->tail, sizeof c->tail,
                     "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n%.*s",
                     status, reason != NULL ? reason : "Error", bn, (int)bn, body);
    c->tail_len = n > 0 && (size_t)n < sizeof c->tail ? (size_t)n : 0;
    c->tail_off = 0;
}

/* Whether the next client bytes may be framed: no complete request is
 * waiting for its answer. */
static bool may_frame(const rconn *c)
{
    return c->resps >= c->reqs;
}

static void frame_request(rconn *c)
{
    bool in_head = c->req.state == HTTPFRAME_HEAD;
    size_t k = httpframe_feed(&c->req, c->in + c->parsed, c->in_len - c->parsed);
    if (c->req.state == HTTPFRAME_ERROR) {
        conn_refuse(c, c->req.status, c->req.code, c->req.message,
                    c->req.field[0] != '\0' ? c->req.field : NULL);
        return;
    }
    c->parsed += k;
    if (!in_head)
        c->body_bytes += k;
    if (in_head && c->req.state != HTTPFRAME_HEAD) {
        c->resp.head_request = c->req.is_head;
        c->since_us = mono_us();
        c->body_bytes = 0;
    }
    if (c->req.state == HTTPFRAME_DONE) {
        c->reqs++;
        httpframe_next(&c->req);
        c->since_us = mono_us();
    }
}

/* Follows libmicrohttpd's answers through out[off, len). */
static void frame_responses(rconn *c, size_t off, size_t len)
{
    while (off < len) {
        off += httpframe_feed(&c->resp, c->out + off, len - off);
        if (c->resp.state == HTTPFRAME_ERROR) {
            /* Not expected of libmicrohttpd: stop following, relay to the end. */
            c->resp.state = HTTPFRAME_UNTIL_CLOSE;
            return;
        }
        if (c->resp.state == HTTPFRAME_DONE) {
            c->resps++;
            httpframe_next(&c->resp);
            c->since_us = mono_us();
        }
    }
}

static void start_linger(rconn *c)
{
    shutdown(c->cfd, SHUT_WR);
    c->lingering = true;
    c->linger_until = mono_us() + RELAY_LINGER_US;
}

static bool again(void)
{
    return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
}

/* Moves what can be moved; false when the connection was freed. */
static bool pump(rconn *c)
{
    if (c->dead)
        return false;
    for (;;) {
        bool progress = false;
        if (c->lingering) {
            char sink[16384];
            if (!c->cr)
                break;
            ssize_t n = recv(c->cfd, sink, sizeof sink, MSG_DONTWAIT);
            if (n >= 0 && (size_t)n < sizeof sink && !c->chup)
                c->cr = false;
            if (n > 0) {
                c->linger_bytes += (uint64_t)n;
                if (c->linger_bytes > RELAY_LINGER_BYTES) {
                    conn_free(c);
                    return false;
                }
                continue;
            }
            if (n < 0 && again())
                break;
            conn_free(c);
            return false;
        }
        /* client -> libmicrohttpd */
        if (c->pfd >= 0 && !c->pair_shut) {
            if (c->fwd < c->parsed && c->pw) {
                size_t want = c->parsed - c->fwd;
                ssize_t n = send(c->pfd, c->in + c->fwd, want, MSG_NOSIGNAL | MSG_DONTWAIT);
                if (n < 0 ? again() : (size_t)n < want)
                    c->pw = false;
                if (n > 0) {
                    c->fwd += (size_t)n;
                    progress = true;
                } else if (n < 0 && !again()) {
                    /* libmicrohttpd closed after an early answer: read that. */
                    c->pair_shut = true;
                    c->in_len = c->fwd = c->parsed = 0;
                }
            }
            if (c->pfd >= 0 && c->fwd == c->parsed && c->parsed < c->in_len && may_frame(c)) {
                frame_request(c);
                progress = true;
            }
            if (c->pfd >= 0 && c->in_len > 0 && c->fwd == c->in_len)
                c->in_len = c->fwd = c->parsed = 0;
            if (c->pfd >= 0 && c->in_len == 0 && !c->client_eof && may_frame(c) && c->cr) {
                ssize_t n = recv(c->cfd, c->in, sizeof c->in, MSG_DONTWAIT);
                if (n < 0 ? again() : (size_t)n < sizeof c->in && !c->chup)
                    c->cr = false;
                if (n > 0) {
                    c->in_len = (size_t)n;
                    progress = true;
                } else if (n == 0) {
                    c->client_eof = true;
                    if (!httpframe_idle(&c->req)) {
                        conn_free(c);
                        return false;
                    }
                    shutdown(c->pfd, SHUT_WR);
                    progress = true;
                } else if (!again()) {
                    conn_free(c);
                    return false;
                }
            }
        }
        /* libmicrohttpd -> client */
        if (c->out_off < c->out_len && c->cw) {
            size_t want = c->out_len - c->out_off;
            ssize_t n = send(c->cfd, c->out + c->out_off, want, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n < 0 ? again() : (size_t)n < want)
                c->cw = false;
            if (n > 0) {
                c->out_off += (size_t)n;
                progress = true;
            } else if (n < 0 && !again()) {
                conn_free(c);
                return false;
            }
        }
        if (c->out_off == c->out_len) {
            c->out_off = c->out_len = 0;
            if (c->pfd >= 0) {
                ssize_t n = -1;
                errno = EAGAIN;
                if (c->pr)
                    n = recv(c->pfd, c->out, sizeof c->out, MSG_DONTWAIT);
                if (n < 0 ? again() : (size_t)n < sizeof c->out && !c->phup)
                    c->pr = false;
                if (n > 0) {
                    c->out_len = (size_t)n;
                    frame_responses(c, 0, c->out_len);
                    progress = true;
                } else if (n == 0 || !again()) {
                    close_pair(c);
                    progress = true;
                }
            } else if (c->tail_off < c->tail_len) {
                size_t want = c->tail_len - c->tail_off;
                ssize_t n = -1;
                errno = EAGAIN;
                if (c->cw)
                    n = send(c->cfd, c->tail + c->tail_off, want, MSG_NOSIGNAL | MSG_DONTWAIT);
                if (n < 0 ? again() : (size_t)n < want)
                    c->cw = false;
                if (n > 0) {
                    c->tail_off += (size_t)n;
                    progress = true;
                } else if (n < 0 && !again()) {
                    conn_free(c);
                    return false;
                }
            } else if (c->client_eof) {
                conn_free(c);
                return false;
            } else {
                start_linger(c);
                progress = true;
            }
        }
        if (!progress)
            break;
    }
    return true;
}

static void conn_accept(relay_thread *t, int fd, const struct sockaddr *addr, socklen_t alen)
{
    httprelay *r = t->r;
    if (atomic_fetch_add(&r->open, 1) >= r->cfg.max_connections) {
        atomic_fetch_sub(&r->open, 1);
        close(fd);
        return;
    }
    int sv[2];
    rconn *c = calloc(1, sizeof *c);
    if (c == NULL || socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0) {
        free(c);
        close(fd);
        atomic_fetch_sub(&r->open, 1);
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->t = t;
    c->cfd = fd;
    c->pfd = sv[0];
    c->ce = (rend){.c = c, .pair = false};
    c->pe = (rend){.c = c, .pair = true};
    httpframe_init(&c->req, false);
    httpframe_init(&c->resp, true);
    c->since_us = mono_us();
    /* libmicrohttpd closes its end itself, also when it refuses it. */
    if (MHD_add_connection(r->cfg.daemon, sv[1], addr, alen) != MHD_YES) {
        close(sv[0]);
        close(fd);
        free(c);
        atomic_fetch_sub(&r->open, 1);
        return;
    }
    c->cw = c->pw = true;
    /* Edge-triggered, registered once: pump() remembers what is ready. */
    uint32_t events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
    struct epoll_event ce = {.events = events, .data.ptr = &c->ce};
    struct epoll_event pe = {.events = events, .data.ptr = &c->pe};
    c->next = t->conns;
    if (t->conns != NULL)
        t->conns->prev = c;
    t->conns = c;
    if (epoll_ctl(t->ep, EPOLL_CTL_ADD, c->cfd, &ce) != 0 ||
        epoll_ctl(t->ep, EPOLL_CTL_ADD, c->pfd, &pe) != 0)
        conn_free(c);
}

static void accept_all(relay_thread *t)
{
    for (int i = 0; i < 64; i++) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof ss;
        int fd = accept4(t->r->cfg.listen_fd, (struct sockaddr *)&ss, &len,
                         SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        conn_accept(t, fd, (struct sockaddr *)&ss, len);
    }
}

/* Head and body deadlines, lingering limits. */
static void watch(relay_thread *t, int64_t now)
{
    const httprelay_config *cfg = &t->r->cfg;
    for (rconn *c = t->conns, *next; c != NULL; c = next) {
        next = c->next;
        if (c->lingering) {
            if (now >= c->linger_until)
                conn_free(c);
            continue;
        }
        if (c->closing || c->reqs > c->resps || !httpframe_idle(&c->resp) ||
            c->out_off < c->out_len)
            continue;
        int64_t t_us = now - c->since_us;
        const char *msg = NULL;
        if (c->req.state == HTTPFRAME_HEAD && t_us > (int64_t)cfg->header_timeout_ms * 1000)
            msg = "the request head did not arrive within HERALD_HTTP_HEADER_TIMEOUT";
        else if (c->req.state != HTTPFRAME_HEAD && cfg->min_body_rate > 0 &&
                 t_us > RELAY_BODY_GRACE_US &&
                 (double)c->body_bytes < (double)cfg->min_body_rate * (double)t_us / 1e6)
            msg = "the body arrived slower than HERALD_HTTP_MIN_BODY_RATE";
        if (msg == NULL)
            continue;
        conn_refuse(c, 408, "request_timeout", msg, NULL);
        pump(c);
    }
}

static void *relay_main(void *arg)
{
    relay_thread *t = arg;
    httprelay *r = t->r;
    int64_t next_watch = mono_us();
    while (!atomic_load(&r->stopping)) {
        struct epoll_event evs[64];
        int n = epoll_wait(t->ep, evs, 64, RELAY_TICK_MS);
        for (int i = 0; i < n; i++) {
            rend *e = evs[i].data.ptr;
            if (e == NULL) {
                accept_all(t);
                continue;
            }
            rconn *c = e->c;
            uint32_t ev = evs[i].events;
            bool rd = (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0;
            bool wr = (ev & (EPOLLOUT | EPOLLHUP | EPOLLERR)) != 0;
            bool hup = (ev & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0;
            if (e->pair) {
                c->pr |= rd;
                c->pw |= wr;
                c->phup |= hup;
            } else {
                c->cr |= rd;
                c->cw |= wr;
                c->chup |= hup;
            }
            pump(c);
        }
        int64_t now = mono_us();
        if (now >= next_watch) {
            watch(t, now);
            next_watch = now + RELAY_TICK_MS * 1000;
        }
        free_dead(t);
    }
    while (t->conns != NULL)
        conn_free(t->conns);
    free_dead(t);
    return NULL;
}

httprelay *httprelay_start(const httprelay_config *cfg, char *err, size_t errlen)
{
    httprelay *r = calloc(1, sizeof *r);
    if (r == NULL) {
        error_set(err, errlen, "out of memory");
        return NULL;
    }
    r->cfg = *cfg;
    r->nthreads = cfg->threads == 0                  ? 1
                  : cfg->threads > RELAY_MAX_THREADS ? RELAY_MAX_THREADS
                                                     : cfg->threads;
    for (unsigned i = 0; i < r->nthreads; i++) {
        relay_thread *t = &r->threads[i];
        t->r = r;
        t->ep = epoll_create1(EPOLL_CLOEXEC);
        struct epoll_event ev = {.events = EPOLLIN | EPOLLEXCLUSIVE, .data.ptr = NULL};
        if (t->ep < 0 || epoll_ctl(t->ep, EPOLL_CTL_ADD, cfg->listen_fd, &ev) != 0 ||
            pthread_create(&t->tid, NULL, relay_main, t) != 0) {
            error_set(err, errlen, "cannot start the HTTP relay: %s", strerror(errno));
            httprelay_stop(r);
            return NULL;
        }
        t->started = true;
    }
    return r;
}

void httprelay_stop(httprelay *r)
{
    if (r == NULL)
        return;
    atomic_store(&r->stopping, true);
    for (unsigned i = 0; i < r->nthreads; i++) {
        relay_thread *t = &r->threads[i];
        if (t->started)
            pthread_join(t->tid, NULL);
        if (t->ep > 0)
            close(t->ep);
    }
    close(r->cfg.listen_fd);
    free(r);
}
