/*
 * realtime: see realtime.h.
 *
 * Everything that touches a connection runs on the libwebsockets service
 * thread: admission, the connect-time snapshot, the table of users,
 * queueing and writing.  The Kafka thread only parses and hands over.
 *
 * A connection is a WebSocket or a Server-Sent Events stream on the same
 * path; both take the same admission, snapshot and queue, and differ only
 * in how an event is written and how the connection is watched and closed.
 */
#include "realtime.h"

#include <errno.h>
#include <inttypes.h>
#include <libwebsockets.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "buf.h"
#include "daemon.h"
#include "dict.h"
#include "error.h"
#include "handoff.h"
#include "jsonw.h"
#include "kafka.h"
#include "log.h"
#include "metrics.h"
#include "opsserver.h"
#include "outq.h"
#include "rtframe.h"
#include "rtrequest.h"
#include "snapshot.h"
#include "timeutil.h"
#include "usertoken.h"
#include "validate.h"

_Static_assert(RTFRAME_PRE == LWS_PRE, "rtframe headroom must be LWS_PRE");

#define LOGCTX "realtime"

/* Events handed over but not yet queued on connections. */
#define HANDOFF_CAP 8192
/* Most handed-over events queued per wake-up. */
#define TAKE_BATCH 256
/* How long a connection being closed may take to take its close frame. */
#define CLOSE_GRACE_S 5
/* Most events written to one connection per writable callback. */
#define WRITE_BATCH 64
/* A client sends nothing this protocol needs; a message larger is abuse. */
#define RX_MAX 4096
/* The service loop's tick: heartbeat, stop flag. */
#define TICK_US (100 * LWS_US_PER_MS)

/* RFC 6455 close codes (IANA registry) that libwebsockets 4.1 does not name. */
#define CLOSE_SERVICE_RESTART 1012 /* reconnect, to another instance if need be */
#define CLOSE_TRY_AGAIN_LATER 1013 /* too slow: reconnect and catch up */
#define CLOSE_INTERNAL_ERROR  1011 /* the inbox could not be read: reconnect later */

typedef struct rt_conn rt_conn;

/* The connections of one user on this instance. */
typedef struct rt_user {
    dict_node node;
    rt_conn *conns;
    size_t nconns;
    char id[];
} rt_user;

/* The per-session data of one WebSocket: zeroed by libwebsockets. */
struct rt_conn {
    struct lws *wsi;
    rt_user *user; /* NULL until established */
    rt_conn *prev, *next;
    outq q;
    bool snapshot;         /* q and held are initialised */
    snapshot_job *job;     /* the connect-time read, while the pool runs it */
    outq held;             /* live events that arrived while job ran */
    int64_t last_event_id; /* the client's, for the job */
    int close_code;
    const char *close_reason;
    size_t rx_len;     /* of the message being received */
    bool sse;          /* a Server-Sent Events stream, not a WebSocket */
    bool sse_started;  /* the stream's retry line is written */
    bool sse_closing;  /* the close event is written: close at the next writable */
    bool beat_pending; /* a heartbeat is asked for and not yet written */
    char user_id[VALIDATE_USER_ID_MAX + 1];
};

struct realtime {
    const realtime_config *cfg;
    const volatile sig_atomic_t *stop;
    char topic[256];
    char iface[256];
    struct lws_context *ctx;
    uint16_t port;
    lws_sorted_usec_list_t tick;
    lws_retry_bo_t idle;
    struct lws_protocols protocols[2];

    snapshot_pool *pool;
    kafka_consumer *consumer;
    pthread_t kthread;
    bool kthread_started;
    atomic_bool kstop;
    handoff ho;
    bool ho_ready;

    dict users;
    size_t nconns, nsse;
    buf sse_out;   /* what one SSE writable callback writes, after LWS_PRE bytes */
    bool draining; /* shutting down: admit no one */

    metrics_registry *reg;
    opsserver *ops;
    daemon_health health;
    struct {
        metrics_gauge *connections, *sse_connections;
        metrics_counter *pushed, *slow, *auth_failures, *refused, *records, *bad_records,
            *snapshot_failures;
    } m;
};

/* ------------------------------------------------------------ admission */

/* Most query arguments read from one request. */
#define ARGS_MAX 16
/* The longest query argument read: "token=" and a token. */
#define ARG_LEN (USERTOKEN_SIZE + 16)

static rt_user *find_user(realtime *rt, const char *id)
{
    dict_node *n = dict_find(&rt->users, id);
    return n != NULL ? dict_record(n, rt_user, node) : NULL;
}

/*
 * Whether the request may become a connection: 0, or the HTTP status that
 * refuses it with why.  The request's own checks are rtrequest's, from the
 * parts libwebsockets parsed; the instance's (capacity, per-user limit,
 * shutdown) are here.  Counts auth failures when count is set (once per
 * request: libwebsockets asks twice).
 */
static unsigned admit(realtime *rt, struct lws *wsi, rtrequest_admission *a, bool count,
                      const char **why)
{
    char path[512], auth[ARG_LEN], last[64], argv[ARGS_MAX][ARG_LEN];
    const char *args[ARGS_MAX];
    rtrequest req = {.args = args};
    if (lws_hdr_copy(wsi, path, sizeof path, WSI_TOKEN_GET_URI) > 0)
        req.path = path;
    /*
     * By hand: lws_get_urlarg_by_name() of libwebsockets 4.1.6 gives up at
     * the first argument longer than its buffer, so a long argument would
     * hide the ones after it.  One this long is not one this daemon reads.
     */
    for (int i = 0; i < 64 && req.nargs < ARGS_MAX; i++) {
        int flen = lws_hdr_fragment_length(wsi, WSI_TOKEN_HTTP_URI_ARGS, i);
        if (flen <= 0)
            break;
        if (flen < ARG_LEN &&
            lws_hdr_copy_fragment(wsi, argv[req.nargs], ARG_LEN, WSI_TOKEN_HTTP_URI_ARGS, i) >= 0) {
            args[req.nargs] = argv[req.nargs];
            req.nargs++;
        }
    }
    if (lws_hdr_copy(wsi, auth, sizeof auth, WSI_TOKEN_HTTP_AUTHORIZATION) > 0)
        req.authorization = auth;
    int llen = lws_hdr_custom_length(wsi, "last-event-id:", 14);
    if (llen >= (int)sizeof last)
        req.last_event_header = "too long"; /* refused as malformed */
    else if (llen > 0 && lws_hdr_custom_copy(wsi, last, sizeof last, "last-event-id:", 14) > 0)
        req.last_event_header = last;

    unsigned status =
        rtrequest_admit(&req, rt->cfg->token_secret, timeutil_now_ms() / 1000, a, why);
    if (status == 404)
        return status;
    if (rt->draining || rt->nconns >= (size_t)rt->cfg->max_connections) {
        *why = rt->draining ? "shutting down" : "too many connections on this instance";
        return HTTP_STATUS_SERVICE_UNAVAILABLE;
    }
    if (status != 0) {
        if (count && a->token_refused)
            metrics_counter_inc(rt->m.auth_failures);
        return status;
    }
    rt_user *u = find_user(rt, a->user_id);
    if (u != NULL && u->nconns >= (size_t)rt->cfg->max_per_user) {
        *why = "too many connections of this user";
        return 429;
    }
    return 0;
}

static const char *refusal_code(unsigned status)
{
    switch (status) {
    case HTTP_STATUS_UNAUTHORIZED:
        return "unauthorized";
    case HTTP_STATUS_FORBIDDEN:
        return "forbidden";
    case HTTP_STATUS_NOT_FOUND:
        return "not_found";
    case 429:
        return "too_many_connections";
    case HTTP_STATUS_SERVICE_UNAVAILABLE:
        return "unavailable";
    default:
        return "bad_request";
    }
}

/*
 * Answers a refused upgrade request with status and the gateway's JSON
 * error, {"error":{"code":...,"message":why}}; returns what the callback
 * returns (1: answered, libwebsockets ends the transaction).
 */
static int refuse(realtime *rt, struct lws *wsi, unsigned status, const char *why)
{
    unsigned char out[LWS_PRE + 1024], *start = out + LWS_PRE, *p = start,
                                       *end = out + sizeof out - 1;
    char body[512];
    buf b;
    jsonw w;
    metrics_counter_inc(rt->m.refused);
    LOG_DEBUG(LOGCTX, "refused a connection: %u %s", status, why);
    buf_init(&b, sizeof body);
    jsonw_begin(&w, &b);
    jsonw_str(&w, JSONW_NAME("code"), refusal_code(status));
    jsonw_str(&w, JSONW_NAME("message"), why);
    int n = jsonw_end(&w) == 0 ? snprintf(body, sizeof body, "{\"error\":%s}", b.data) : -1;
    buf_free(&b);
    if (n < 0 || (size_t)n >= sizeof body)
        return -1;
    if (lws_add_http_common_headers(wsi, status, "application/json", (lws_filepos_t)n, &p, end) ||
        lws_finalize_write_http_header(wsi, start, &p, end))
        return -1;
    if (lws_write(wsi, (unsigned char *)body, (size_t)n, LWS_WRITE_HTTP_FINAL) != n)
        return -1;
    return 1;
}

/* ---------------------------------------------------------- connections */

static void conn_register(realtime *rt, rt_conn *c)
{
    rt_user *u = find_user(rt, c->user_id);
    if (u == NULL) {
        size_t idlen = strlen(c->user_id);
        u = calloc(1, sizeof *u + idlen + 1);
        if (u == NULL)
            return; /* the connection gets no live events; it still has its snapshot */
        memcpy(u->id, c->user_id, idlen + 1);
        dict_add(&rt->users, &u->node, u->id);
    }
    c->user = u;
    c->next = u->conns;
    if (u->conns != NULL)
        u->conns->prev = c;
    u->conns = c;
    u->nconns++;
    rt->nconns++;
    metrics_gauge_set(rt->m.connections, (double)rt->nconns);
    if (c->sse)
        metrics_gauge_set(rt->m.sse_connections, (double)++rt->nsse);
}

/* Takes c out of the table and drops its queue; safe to call twice. */
static void conn_release(realtime *rt, rt_conn *c)
{
    rt_user *u = c->user;
    if (u != NULL) {
        if (c->prev != NULL)
            c->prev->next = c->next;
        else
            u->conns = c->next;
        if (c->next != NULL)
            c->next->prev = c->prev;
        c->user = NULL;
        c->prev = c->next = NULL;
        rt->nconns--;
        metrics_gauge_set(rt->m.connections, (double)rt->nconns);
        if (c->sse)
            metrics_gauge_set(rt->m.sse_connections, (double)--rt->nsse);
        if (--u->nconns == 0) {
            dict_remove(&rt->users, &u->node);
            free(u);
        }
    }
    if (c->job != NULL) {
        c->job->owner = NULL; /* freed when the pool hands it back */
        c->job = NULL;
    }
    if (c->snapshot) {
        outq_fini(&c->q);
        outq_fini(&c->held);
        c->snapshot = false;
    }
}

/*
 * Closes c with code and reason at its next writable moment: after what
 * the socket holds already, so a client that does not read may never get
 * there, and is dropped CLOSE_GRACE_S later without its close frame.
 */
static void conn_close(rt_conn *c, int code, const char *reason)
{
    if (c->close_code != 0)
        return;
    c->close_code = code;
    c->close_reason = reason;
    lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, CLOSE_GRACE_S);
    lws_callback_on_writable(c->wsi);
}

/*
 * Queues handed-over events on their users' connections: at most half a
 * connection's queue per wake-up, then back after the writes were served
 * (libwebsockets services the connections' POLLOUT and this wake-up in
 * one pass), so a burst for one user fills only the queue of a client
 * that does not read.
 */
static void take_handoff(realtime *rt)
{
    handoff_item items[TAKE_BATCH];
    size_t max = (size_t)rt->cfg->queue / 2;
    max = max < 1 ? 1 : max > TAKE_BATCH ? TAKE_BATCH : max;
    size_t n = handoff_take(&rt->ho, items, max);
    for (size_t i = 0; i < n; i++) {
        rt_user *u = find_user(rt, items[i].user_id);
        for (rt_conn *c = u != NULL ? u->conns : NULL; c != NULL; c = c->next) {
            if (c->close_code != 0)
                continue;
            /* Behind a connect-time read still running, held until it is queued. */
            outq_result r = outq_offer(c->job != NULL ? &c->held : &c->q, items[i].frame);
            if (r == OUTQ_QUEUED) {
                if (c->job == NULL)
                    lws_callback_on_writable(c->wsi);
            } else if (r != OUTQ_SKIPPED) {
                metrics_counter_inc(rt->m.slow);
                LOG_INFO(LOGCTX, "user %s: closing a connection: %s", u->id, outq_result_name(r));
                conn_close(c, CLOSE_TRY_AGAIN_LATER, "too slow");
            }
        }
        rtframe_unref(items[i].frame);
    }
    if (n == max)
        lws_cancel_service(rt->ctx); /* more may wait */
}

/* Writes queued events while the socket takes them, or the close. */
static int conn_writable(realtime *rt, rt_conn *c)
{
    if (c->close_code != 0) {
        lws_close_reason(c->wsi, (enum lws_close_status)c->close_code,
                         (unsigned char *)c->close_reason, strlen(c->close_reason));
        return -1;
    }
    for (int i = 0; i < WRITE_BATCH && !outq_empty(&c->q); i++) {
        rtframe *f = outq_peek(&c->q);
        int n = lws_write(c->wsi, (unsigned char *)rtframe_text(f), f->len, LWS_WRITE_TEXT);
        if (n < (int)f->len)
            return -1;
        metrics_counter_inc(rt->m.pushed);
        outq_pop(&c->q);
        if (lws_send_pipe_choked(c->wsi))
            break;
    }
    if (!outq_empty(&c->q))
        lws_callback_on_writable(c->wsi);
    return 0;
}

/* A client sends nothing this protocol reads; a message too large is closed on. */
static int conn_receive(rt_conn *c, size_t len)
{
    c->rx_len += len;
    if (c->rx_len + lws_remaining_packet_payload(c->wsi) > RX_MAX) {
        static const char why[] = "message too large";
        lws_close_reason(c->wsi, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE, (unsigned char *)why,
                         sizeof why - 1);
        return -1;
    }
    if (lws_is_final_fragment(c->wsi) && lws_remaining_packet_payload(c->wsi) == 0)
        c->rx_len = 0;
    return 0;
}

/*
 * Makes c, admitted for a->user_id, a connection: its queues, its place
 * in the table (so no live event passes it by from now on) and the
 * connect-time read, which the pool runs; take_snapshots() queues its
 * result ahead of what arrived meanwhile.  0, or -1 when out of memory.
 */
static int conn_open(realtime *rt, struct lws *wsi, rt_conn *c)
{
    LOG_DEBUG(LOGCTX, "user %s: connecting (%s), last event id %" PRId64, c->user_id,
              c->sse ? "SSE" : "WebSocket", c->last_event_id);
    c->wsi = wsi;
    outq_init(&c->q, (size_t)rt->cfg->queue);
    outq_init(&c->held, (size_t)rt->cfg->queue);
    c->snapshot = true;
    c->job = snapshot_job_new(c, c->user_id, c->last_event_id);
    if (c->job == NULL) {
        conn_release(rt, c);
        return -1;
    }
    conn_register(rt, c);
    snapshot_pool_submit(rt->pool, c->job);
    return 0;
}

/* Keeps what the admission found for ESTABLISHED, when the connection opens. */
static void conn_admitted(rt_conn *c, const rtrequest_admission *a)
{
    snprintf(c->user_id, sizeof c->user_id, "%s", a->user_id);
    c->last_event_id = a->last_event_id;
}

static int on_filter(realtime *rt, struct lws *wsi, rt_conn *c)
{
    rtrequest_admission a;
    const char *why = NULL;
    if (admit(rt, wsi, &a, false, &why) != 0) {
        LOG_DEBUG(LOGCTX, "refused at the handshake: %s", why);
        return -1;
    }
    conn_admitted(c, &a);
    return 0;
}

/*
 * Queues the finished connect-time reads on their connections, then what
 * arrived while they ran (under the seq rule, so a change the read already
 * holds is not sent twice).  A read that failed closes its connection with
 * 1011: the client reconnects and tries again.
 */
static void take_snapshots(realtime *rt)
{
    snapshot_job *jobs[64];
    size_t n = snapshot_pool_take(rt->pool, jobs, sizeof jobs / sizeof jobs[0]);
    for (size_t i = 0; i < n; i++) {
        snapshot_job *j = jobs[i];
        rt_conn *c = j->owner;
        if (c != NULL) {
            c->job = NULL;
            bool ok = j->ok;
            for (size_t k = 0; ok && k < j->nframes; k++)
                ok = outq_push_initial(&c->q, j->frames[k]) == OUTQ_QUEUED;
            for (; ok && !outq_empty(&c->held); outq_pop(&c->held)) {
                outq_result r = outq_offer(&c->q, outq_peek(&c->held));
                if (r == OUTQ_FULL || r == OUTQ_NOMEM) {
                    metrics_counter_inc(rt->m.slow);
                    conn_close(c, CLOSE_TRY_AGAIN_LATER, "too slow");
                    break;
                }
            }
            if (!ok) {
                metrics_counter_inc(rt->m.snapshot_failures);
                LOG_WARN(LOGCTX, "user %s: cannot read the inbox, closing the connection: %s",
                         c->user_id, j->err[0] ? j->err : "out of memory");
                conn_close(c, CLOSE_INTERNAL_ERROR, "cannot read the inbox now");
            }
            lws_callback_on_writable(c->wsi);
        }
        snapshot_job_free(j);
    }
    if (n == sizeof jobs / sizeof jobs[0])
        lws_cancel_service(rt->ctx); /* more may wait */
}

/* ---------------------------------------------------- Server-Sent Events */

/* What an EventSource waits before it reconnects after the stream ends. */
#define SSE_RETRY_MS 2000
/* Most bytes of events one SSE writable callback gathers into one write. */
#define SSE_WRITE_MAX 16384

/* Ends an HTTP answer written by refuse() (its return value in rc). */
static int http_done(struct lws *wsi, int rc)
{
    if (rc < 0)
        return -1;
    return lws_http_transaction_completed(wsi) ? -1 : 0;
}

static bool wants_event_stream(struct lws *wsi)
{
    char accept[256];
    return lws_hdr_copy(wsi, accept, sizeof accept, WSI_TOKEN_HTTP_ACCEPT) > 0 &&
           strstr(accept, "text/event-stream") != NULL;
}

/*
 * A plain GET on the live path: with Accept: text/event-stream and the
 * same admission as a WebSocket, a Server-Sent Events stream; otherwise
 * a refusal.  The answer has no length: the stream ends when either side
 * closes.  Any origin may read it (Access-Control-Allow-Origin: *): the
 * token in the URL is the credential, and a WebSocket, which CORS does
 * not cover, takes the same token from any page already.
 */
static int on_http(realtime *rt, struct lws *wsi, rt_conn *c)
{
    unsigned char hdr[LWS_PRE + 1024], *start = hdr + LWS_PRE, *p = start,
                                       *end = hdr + sizeof hdr - 1;
    rtrequest_admission a;
    const char *why = NULL;
    unsigned status = admit(rt, wsi, &a, true, &why);
    if (status != 0)
        return http_done(wsi, refuse(rt, wsi, status, why));
    if (!wants_event_stream(wsi))
        return http_done(wsi, refuse(rt, wsi, HTTP_STATUS_BAD_REQUEST,
                                     "expected a WebSocket upgrade or Accept: text/event-stream"));
    conn_admitted(c, &a);
    static const struct {
        const char *name, *value;
    } extra[] = {{"cache-control:", "no-store"},
                 {"x-accel-buffering:", "no"}, /* a buffering proxy would hold events back */
                 {"access-control-allow-origin:", "*"}};
    if (lws_add_http_common_headers(wsi, HTTP_STATUS_OK, "text/event-stream",
                                    LWS_ILLEGAL_HTTP_CONTENT_LEN, &p, end))
        return -1;
    for (size_t i = 0; i < sizeof extra / sizeof extra[0]; i++)
        if (lws_add_http_header_by_name(wsi, (const unsigned char *)extra[i].name,
                                        (const unsigned char *)extra[i].value,
                                        (int)strlen(extra[i].value), &p, end))
            return -1;
    if (lws_finalize_write_http_header(wsi, start, &p, end))
        return -1;
    lws_http_mark_sse(wsi); /* no more HTTP timeouts: the stream is long-lived */
    c->sse = true;
    if (conn_open(rt, wsi, c) != 0)
        return -1;
    /*
     * A peer that vanished without a FIN is noticed when data stays
     * unacknowledged for twice the heartbeat interval.
     */
    unsigned user_timeout = (unsigned)(2 * rt->cfg->ping_interval_ms);
    if (setsockopt(lws_get_socket_fd(wsi), IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout,
                   sizeof user_timeout) != 0)
        LOG_DEBUG(LOGCTX, "TCP_USER_TIMEOUT: %s", strerror(errno));
    lws_set_timer_usecs(wsi, rt->cfg->ping_interval_ms * LWS_US_PER_MS);
    lws_callback_on_writable(wsi);
    return 0;
}

/*
 * The heartbeat: a comment line every ping interval, which keeps proxies
 * from idling the stream out and gives TCP data to find a dead peer by.
 * One still unwritten at the next beat means the socket has taken nothing
 * for a whole interval: the client is gone or not reading, and is dropped.
 */
static int sse_beat(realtime *rt, rt_conn *c)
{
    if (c->beat_pending) {
        LOG_INFO(LOGCTX, "user %s: closing an SSE stream that took nothing for %ld ms", c->user_id,
                 rt->cfg->ping_interval_ms);
        return -1;
    }
    c->beat_pending = true;
    lws_callback_on_writable(c->wsi);
    lws_set_timer_usecs(c->wsi, rt->cfg->ping_interval_ms * LWS_US_PER_MS);
    return 0;
}

/*
 * Writes what the stream has: the retry line first, then queued events
 * (id: seq, data: the same JSON as a WebSocket message), or the close
 * event ({"code","reason"} with the WebSocket's close code), after which
 * the next writable callback closes the connection.
 */
static int sse_writable(realtime *rt, rt_conn *c)
{
    if (c->sse_closing)
        return -1;
    buf *b = &rt->sse_out;
    buf_reset(b);
    int rc = buf_printf(b, "%*s", LWS_PRE, "");
    if (!c->sse_started) {
        rc |= buf_printf(b, "retry: %d\n\n", SSE_RETRY_MS);
        c->sse_started = true;
    }
    size_t events = 0;
    if (c->close_code != 0) {
        rc |= buf_printf(b, "event: close\ndata: {\"code\":%d,\"reason\":\"%s\"}\n\n",
                         c->close_code, c->close_reason);
        c->sse_closing = true;
    } else {
        for (; events < WRITE_BATCH && !outq_empty(&c->q) && b->len < SSE_WRITE_MAX; events++) {
            rtframe *f = outq_peek(&c->q);
            rc |= buf_printf(b, "id: %" PRId64 "\ndata: %s\n\n", f->seq, rtframe_text(f));
            outq_pop(&c->q);
        }
    }
    if (c->beat_pending && b->len == LWS_PRE)
        rc |= buf_append(b, ":\n\n", 3);
    if (rc != 0)
        return -1;
    size_t n = b->len - LWS_PRE;
    if (n > 0 && lws_write(c->wsi, (unsigned char *)b->data + LWS_PRE, n, LWS_WRITE_HTTP) < (int)n)
        return -1;
    c->beat_pending = false;
    metrics_counter_add(rt->m.pushed, events);
    if (c->sse_closing || !outq_empty(&c->q))
        lws_callback_on_writable(c->wsi);
    return 0;
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
    struct lws_context *ctx = lws_get_context(wsi);
    realtime *rt = ctx != NULL ? lws_context_user(ctx) : NULL;
    rt_conn *c = user;
    rtrequest_admission a;
    const char *why = NULL;
    unsigned status;
    switch (reason) {
    case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
        if (in == NULL || strcmp(in, "websocket") != 0)
            return refuse(rt, wsi, HTTP_STATUS_BAD_REQUEST, "WebSocket only");
        status = admit(rt, wsi, &a, true, &why);
        return status != 0 ? refuse(rt, wsi, status, why) : 0;
    case LWS_CALLBACK_HTTP:
        return on_http(rt, wsi, c);
    case LWS_CALLBACK_HTTP_WRITEABLE:
        return c != NULL && c->sse ? sse_writable(rt, c) : 0;
    case LWS_CALLBACK_TIMER:
        return c != NULL && c->sse ? sse_beat(rt, c) : 0;
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
        return on_filter(rt, wsi, c);
    case LWS_CALLBACK_ESTABLISHED:
        return conn_open(rt, wsi, c);
    case LWS_CALLBACK_SERVER_WRITEABLE:
        return conn_writable(rt, c);
    case LWS_CALLBACK_RECEIVE:
        return conn_receive(c, len);
    case LWS_CALLBACK_CLOSED:
    case LWS_CALLBACK_CLOSED_HTTP:
    case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
    case LWS_CALLBACK_WSI_DESTROY:
        if (c != NULL && rt != NULL)
            conn_release(rt, c);
        return 0;
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
        if (rt != NULL && rt->pool != NULL)
            take_snapshots(rt);
        if (rt != NULL && rt->ho_ready)
            take_handoff(rt);
        return 0;
    default:
        return 0;
    }
}

/* ---------------------------------------------------------------- Kafka */

/* Hands f to the service thread, waiting while the handoff is full. */
static void hand_over(realtime *rt, const char *user, rtframe *f)
{
    const struct timespec pause = {0, 5 * 1000000L};
    for (int i = 0; !handoff_push(&rt->ho, user, f); i++) {
        if (atomic_load(&rt->kstop)) {
            rtframe_unref(f);
            return;
        }
        lws_cancel_service(rt->ctx);
        nanosleep(&pause, NULL);
    }
    lws_cancel_service(rt->ctx);
}

static void consume(realtime *rt, const rd_kafka_message_t *m)
{
    char user[VALIDATE_USER_ID_MAX + 1], err[256];
    rtframe *f = NULL;
    metrics_counter_inc(rt->m.records);
    if (rtframe_from_update(m->payload, m->len, user, &f, err, sizeof err) != 0) {
        metrics_counter_inc(rt->m.bad_records);
        LOG_WARN(LOGCTX, "%s [%" PRId32 "] at %" PRId64 ": skipped: %s",
                 rd_kafka_topic_name(m->rkt), m->partition, m->offset, err);
        return;
    }
    hand_over(rt, user, f);
}

/* Reads the partitions inbox.updates gained since the last check. */
static void check_partitions(realtime *rt, int64_t *next_ms)
{
    char err[512];
    int added = 0;
    int64_t now = timeutil_monotonic_ms();
    if (now < *next_ms)
        return;
    *next_ms = now + rt->cfg->partition_check_ms;
    if (kafka_consumer_assign_added(rt->consumer, rt->topic, 5000, &added, err, sizeof err) !=
        KAFKA_OK)
        LOG_WARN(LOGCTX, "checking %s for new partitions: %s", rt->topic, err);
}

static void *kafka_thread(void *arg)
{
    realtime *rt = arg;
    char err[512];
    int64_t next_check = timeutil_monotonic_ms() + rt->cfg->partition_check_ms;
    while (!atomic_load(&rt->kstop)) {
        check_partitions(rt, &next_check);
        rd_kafka_message_t *m = kafka_consumer_poll(rt->consumer, 100);
        if (m == NULL)
            continue;
        if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
            consume(rt, m);
        } else if (kafka_consumer_fatal(rt->consumer, err, sizeof err)) {
            LOG_ERROR(LOGCTX, "fatal Kafka error: %s", err);
            atomic_store(&rt->health.fatal, true);
            rd_kafka_message_destroy(m);
            lws_cancel_service(rt->ctx);
            break;
        } else if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            LOG_WARN(LOGCTX, "Kafka: %s", rd_kafka_message_errstr(m));
        }
        rd_kafka_message_destroy(m);
    }
    return NULL;
}

static void kafka_thread_stop(realtime *rt)
{
    if (!rt->kthread_started)
        return;
    atomic_store(&rt->kstop, true);
    pthread_join(rt->kthread, NULL);
    rt->kthread_started = false;
}

/* --------------------------------------------------------------- daemon */

static void on_tick(lws_sorted_usec_list_t *sul)
{
    realtime *rt = lws_container_of(sul, realtime, tick);
    daemon_beat(&rt->health.heartbeat);
    lws_sul_schedule(rt->ctx, 0, &rt->tick, on_tick, TICK_US);
}

static void lws_to_log(int level, const char *line)
{
    size_t n = strlen(line);
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        n--;
    if (level & LLL_ERR)
        LOG_WARN("lws", "%.*s", (int)n, line);
    else
        LOG_DEBUG("lws", "%.*s", (int)n, line);
}

static int metrics_init(realtime *rt, char *err, size_t errlen)
{
    metrics_registry *r = rt->reg = metrics_registry_new();
    if (r == NULL)
        return error_set(err, errlen, "out of memory");
    rt->m.connections = metrics_gauge_get(r, "herald_realtime_connections",
                                          "open connections (WebSocket and SSE)", NULL);
    rt->m.sse_connections = metrics_gauge_get(r, "herald_realtime_sse_connections",
                                              "open Server-Sent Events streams", NULL);
    rt->m.pushed = metrics_counter_get(r, "herald_realtime_events_pushed_total",
                                       "events written to clients", NULL);
    rt->m.slow = metrics_counter_get(r, "herald_realtime_slow_disconnects_total",
                                     "connections closed because their queue was full", NULL);
    rt->m.auth_failures = metrics_counter_get(r, "herald_realtime_auth_failures_total",
                                              "connections refused for their token", NULL);
    rt->m.refused = metrics_counter_get(r, "herald_realtime_refused_total",
                                        "upgrade requests answered with an HTTP error", NULL);
    rt->m.records =
        metrics_counter_get(r, "herald_realtime_records_total", "inbox.updates records read", NULL);
    rt->m.bad_records = metrics_counter_get(r, "herald_realtime_bad_records_total",
                                            "inbox.updates records skipped as malformed", NULL);
    rt->m.snapshot_failures =
        metrics_counter_get(r, "herald_realtime_snapshot_failures_total",
                            "connections closed (1011) because the inbox could not be read", NULL);
    return 0;
}

static void wake_service(void *ctx)
{
    realtime *rt = ctx;
    lws_cancel_service(rt->ctx);
}

static int pool_init(realtime *rt, const herald_common_config *common, char *err, size_t errlen)
{
    snapshot_options opt = {.database_url = common->database_url,
                            .threads = (int)rt->cfg->pg_pool,
                            .statement_ms = rt->cfg->pg_statement_ms,
                            .stop = rt->stop,
                            .pg_up = &rt->health.pg_up,
                            .wake = wake_service,
                            .wake_ctx = rt};
    rt->pool = snapshot_pool_new(&opt, err, errlen);
    return rt->pool != NULL ? 0 : -1;
}

static int kafka_init(realtime *rt, const herald_common_config *common,
                      const config_kafka_props *props, char *err, size_t errlen)
{
    static const config_kv defaults_kv[] = {{(char *)"enable.partition.eof", (char *)"false"}};
    const config_kafka_props defaults = {(config_kv *)defaults_kv, 1};
    config_topic(common, "inbox.updates", rt->topic, sizeof rt->topic);
    /* The group id is required by librdkafka and never joined: no subscribe. */
    rt->consumer =
        kafka_consumer_new(common->kafka_brokers, "herald-realtime", &defaults, props, err, errlen);
    if (rt->consumer == NULL)
        return -1;
    return kafka_consumer_assign_all(rt->consumer, rt->topic, RD_KAFKA_OFFSET_END, 10000, err,
                                     errlen) == KAFKA_OK
               ? 0
               : -1;
}

static int lws_init(realtime *rt, char *err, size_t errlen)
{
    config_addr addr;
    if (config_parse_addr(rt->cfg->listen, &addr, err, errlen) != 0)
        return -1;
    snprintf(rt->iface, sizeof rt->iface, "%.*s", (int)addr.hostlen, addr.host);
    lws_set_log_level(LLL_ERR | LLL_WARN, lws_to_log);
    long secs = rt->cfg->ping_interval_ms / 1000;
    rt->idle = (lws_retry_bo_t){.secs_since_valid_ping = (uint16_t)secs,
                                .secs_since_valid_hangup = (uint16_t)(2 * secs)};
    rt->protocols[0] = (struct lws_protocols){
        .name = "herald.v1",
        .callback = callback,
        .per_session_data_size = sizeof(rt_conn),
        .rx_buffer_size = RX_MAX,
    };
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = addr.port;
    info.iface = rt->iface;
    info.protocols = rt->protocols;
    info.user = rt;
    info.retry_and_idle_policy = &rt->idle;
    info.timeout_secs = 10;
    info.fd_limit_per_thread = (unsigned)rt->cfg->max_connections + 64;
    info.options = LWS_SERVER_OPTION_VALIDATE_UTF8;
    rt->ctx = lws_create_context(&info);
    if (rt->ctx == NULL)
        return error_set(err, errlen, "cannot listen on %s", rt->cfg->listen);
    struct lws_vhost *vh = lws_get_vhost_by_name(rt->ctx, "default");
    int port = vh != NULL ? lws_get_vhost_listen_port(vh) : -1;
    if (port <= 0)
        return error_set(err, errlen, "cannot listen on %s", rt->cfg->listen);
    rt->port = (uint16_t)port;
    lws_sul_schedule(rt->ctx, 0, &rt->tick, on_tick, TICK_US);
    return 0;
}

realtime *realtime_new(const realtime_config *cfg, const herald_common_config *common,
                       const config_kafka_props *props, const volatile sig_atomic_t *stop,
                       int *config_error, char *err, size_t errlen)
{
    *config_error = 0;
    realtime *rt = calloc(1, sizeof *rt);
    if (rt == NULL) {
        error_set(err, errlen, "out of memory");
        return NULL;
    }
    rt->cfg = cfg;
    rt->stop = stop;
    daemon_health_init(&rt->health, "service loop", "fatal Kafka error", common->stall_ms);
    buf_init(&rt->sse_out, LWS_PRE + SSE_WRITE_MAX + 64 * 1024);
    if (metrics_init(rt, err, errlen) != 0 || dict_init(&rt->users, 0) != 0 ||
        handoff_init(&rt->ho, HANDOFF_CAP) != 0) {
        error_set(err, errlen, "out of memory");
        goto fail;
    }
    rt->ho_ready = true;
    /* The pool's threads wake the service loop, so they start after it exists. */
    if (kafka_init(rt, common, props, err, errlen) != 0 || lws_init(rt, err, errlen) != 0 ||
        pool_init(rt, common, err, errlen) != 0)
        goto fail;
    if (pthread_create(&rt->kthread, NULL, kafka_thread, rt) != 0) {
        error_set(err, errlen, "cannot start the Kafka thread");
        goto fail;
    }
    rt->kthread_started = true;
    rt->ops = daemon_ops_start(cfg->metrics_addr, rt->reg, &rt->health, err, errlen);
    if (rt->ops == NULL)
        goto fail;
    LOG_INFO(LOGCTX, "listening on port %u, reading %s, metrics on port %u", (unsigned)rt->port,
             rt->topic, (unsigned)opsserver_port(rt->ops));
    return rt;
fail:
    realtime_free(rt);
    return NULL;
}

/* Closes every connection with 1012, serving until they are gone or the deadline. */
static void close_all(realtime *rt)
{
    dict_iter it;
    dict_iter_init(&it, &rt->users);
    for (dict_node *n; (n = dict_iter_next(&it)) != NULL;)
        for (rt_conn *c = dict_record(n, rt_user, node)->conns; c != NULL; c = c->next)
            conn_close(c, CLOSE_SERVICE_RESTART, "service restart");
    int64_t deadline = timeutil_monotonic_ms() + rt->cfg->shutdown_ms;
    for (int i = 0; i < 100000 && rt->nconns > 0 && timeutil_monotonic_ms() < deadline; i++)
        if (lws_service(rt->ctx, 0) < 0)
            break;
    if (rt->nconns > 0)
        LOG_WARN(LOGCTX, "%zu connection(s) did not close in time", rt->nconns);
}

int realtime_run(realtime *rt)
{
    while (!*rt->stop && !atomic_load(&rt->health.fatal))
        if (lws_service(rt->ctx, 0) < 0)
            break;
    daemon_shutdown(DAEMON_SHUTDOWN_INTAKE);
    rt->draining = true;
    kafka_thread_stop(rt);
    daemon_shutdown(DAEMON_SHUTDOWN_DRAIN);
    size_t open = rt->nconns;
    close_all(rt);
    LOG_INFO(LOGCTX, "closed %zu connection(s) with 1012", open);
    daemon_shutdown(DAEMON_SHUTDOWN_RELEASE);
    return atomic_load(&rt->health.fatal) ? 1 : 0;
}

void realtime_free(realtime *rt)
{
    if (rt == NULL)
        return;
    kafka_thread_stop(rt);
    snapshot_pool_stop(rt->pool); /* no more wake-ups of the service loop */
    if (rt->ctx != NULL) {
        lws_sul_cancel(&rt->tick);
        lws_context_destroy(rt->ctx); /* releases what connections are left */
    }
    snapshot_pool_free(rt->pool); /* after: a connection released lets go of its job */
    opsserver_stop(rt->ops);
    kafka_consumer_destroy(rt->consumer);
    if (rt->ho_ready)
        handoff_fini(&rt->ho);
    dict_iter it;
    dict_iter_init(&it, &rt->users);
    for (dict_node *n; (n = dict_iter_next(&it)) != NULL;)
        free(dict_record(n, rt_user, node));
    dict_fini(&rt->users);
    metrics_registry_free(rt->reg);
    buf_free(&rt->sse_out);
    free(rt);
}
