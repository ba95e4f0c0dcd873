/*
 * http: libmicrohttpd plumbing for the gateway.
 *
 * One epoll loop per worker thread (MHD's thread pool) with keep-alive, so a
 * few threads serve thousands of connections; requests waiting for the
 * broker are suspended rather than parked on a thread.  MHD's own URL
 * unescaping is turned off: the router decodes path segments one by one,
 * after splitting, so an escaped '/' inside an id stays part of the id.
 */
#include "http.h"

#include "buf.h"
#include "httphead.h"
#include "error.h"
#include "ids.h"
#include "log.h"
#include "opsserver.h"
#include "timeutil.h"

#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define HTTP_MAX_EXTRA_HEADERS 8
#define HTTP_LOG_FIELDS_SIZE   384
/* Per-connection arena for headers (bodies are ours).  MHD zeroes all of it
 * for every request, a cost that grows with connections x size as the arenas
 * fall out of the cache (profiled at 1,024 connections: 11% of the workers'
 * time at 16 KiB); 8 KiB still holds 7 KiB of request headers, past which
 * MHD answers 431. */
#define HTTP_CONNECTION_MEMORY 8192
/* A request refused from its headers (401, 429, 503) with a body up to this
 * size has the body read and dropped, so the connection stays open for the
 * client's next request; MHD closes it after an answer queued before the
 * body, and a reconnection costs both sides more than these bytes.  Larger
 * or unannounced bodies are not worth reading: the connection closes. */
#define HTTP_DISCARD_MAX 16384
/* After an answer made before the body was read (413, 401, 415, 429, a
 * refused head), the connection's write side is shut and what the client
 * still sends is read and dropped for at most this long and this much
 * (lingering close, RFC 9112 9.6): closing a socket with unread input makes
 * the kernel reset it, and the client loses the answer it has not read. */
#define HTTP_LINGER_MS    5000
#define HTTP_LINGER_BYTES (32u << 20)
#define HTTP_LINGER_MAX   256
/* A body gets this long before its rate is held to min_body_rate. */
#define HTTP_BODY_GRACE_US 5000000
#define HTTP_WATCH_TICK_MS 100

/* What the watcher knows of a connection (MHD's socket context). */
typedef enum {
    CONN_HEAD = 0, /* waiting for a request head */
    CONN_BODY,     /* reading a body */
    CONN_BUSY,     /* dispatching, suspended or answering */
} conn_phase;

typedef struct edge_conn {
    struct edge_conn *prev, *next;
    int fd;
    conn_phase phase;
    int64_t since_us; /* when the phase began */
    uint64_t body_bytes;
    bool linger;   /* answered before its body: linger when closed */
    bool timedout; /* the watcher closed it */
} edge_conn;

typedef struct linger_fd {
    int fd;
    int64_t until_us;
    uint64_t bytes;
} linger_fd;

struct http_server {
    struct MHD_Daemon *daemon;
    http_server_config cfg;
    char *addr;
    uint16_t port;
    atomic_uint in_flight;
    atomic_uint_fast64_t next_id;
    char id_prefix[17];

    /* The watcher: head and body deadlines, lingering closes. */
    pthread_mutex_t mu;
    edge_conn *conns;
    linger_fd lingering[HTTP_LINGER_MAX];
    size_t nlingering;
    pthread_t watcher;
    bool watcher_started;
    atomic_bool stopping;
};

typedef enum {
    REQ_HEADERS = 0, /* headers seen, reading the body */
    REQ_BODY,        /* dispatching the complete body */
    REQ_SUSPENDED,   /* waiting for http_request_resume() */
    REQ_DISCARDING,  /* answered from the headers: reading the body to keep the connection */
    REQ_ANSWERED,    /* response queued */
} req_state;

struct http_request {
    http_server *srv;
    struct MHD_Connection *conn;
    req_state state;
    char method[8];
    char *path;
    int64_t content_length;
    buf body; /* the upload, limited to max_body_bytes */
    bool too_large;
    bool close; /* the answer closes the connection */
    uint64_t discarded;
    char id[65];
    int64_t start_us;

    bool answered;
    int status;
    char *resp_body;
    size_t resp_len;
    const char *resp_type;
    size_t nheaders;
    char *hdr_name[HTTP_MAX_EXTRA_HEADERS];
    char *hdr_value[HTTP_MAX_EXTRA_HEADERS];
    size_t bytes_out;

    char log_fields[HTTP_LOG_FIELDS_SIZE];
    size_t log_fields_len;

    void *app;
    void (*app_free)(void *);

    /* The query's arguments, percent-decoded on first lookup: a key, then its
     * value (NULL when given without "="), nargs pairs. */
    char **args;
    size_t nargs;
    bool args_read;
};

static int64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* JSON string escaping into out (always terminated); returns bytes written. */
static size_t json_escape(char *out, size_t outlen, const char *s)
{
    size_t o = 0;
    if (outlen == 0)
        return 0;
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        char tmp[8];
        const char *piece = tmp;
        size_t n;
        if (*p == '"' || *p == '\\') {
            tmp[0] = '\\';
            tmp[1] = (char)*p;
            n = 2;
        } else if (*p < 0x20 || *p == 0x7f) {
            n = (size_t)snprintf(tmp, sizeof tmp, "\\u%04x", *p);
        } else {
            tmp[0] = (char)*p;
            n = 1;
        }
        if (o + n >= outlen)
            break;
        memcpy(out + o, piece, n);
        o += n;
    }
    out[o] = '\0';
    return o;
}

/* ------------------------------------------------------------- requests */

const char *http_request_method(const http_request *req)
{
    return req->method;
}

const char *http_request_path(const http_request *req)
{
    return req->path;
}

const char *http_request_header(http_request *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

/* A malloc'd copy of s percent-decoded; s as sent when it holds a bad
 * escape or %00, so that a value never ends early.  ('+' is already a
 * space.) */
static char *query_decode(const char *s)
{
    size_t len = strlen(s);
    char *out = malloc(len + 1);
    if (out != NULL && id_url_decode(s, len, false, out, len + 1) != 0)
        memcpy(out, s, len + 1);
    return out;
}

typedef struct query_args {
    http_request *req;
    size_t cap;
    bool failed;
} query_args;

static enum MHD_Result collect_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *value)
{
    (void)kind;
    query_args *q = cls;
    http_request *req = q->req;
    if (req->nargs == q->cap) {
        size_t cap = q->cap == 0 ? 8 : q->cap * 2;
        char **args = realloc(req->args, cap * 2 * sizeof *args);
        if (args == NULL) {
            q->failed = true;
            return MHD_NO;
        }
        req->args = args;
        q->cap = cap;
    }
    char *k = query_decode(key), *v = value != NULL ? query_decode(value) : NULL;
    if (k == NULL || (value != NULL && v == NULL)) {
        free(k);
        free(v);
        q->failed = true;
        return MHD_NO;
    }
    req->args[2 * req->nargs] = k;
    req->args[2 * req->nargs + 1] = v;
    req->nargs++;
    return MHD_YES;
}

const char *http_request_query(http_request *req, const char *name)
{
    if (!req->args_read) {
        query_args q = {.req = req};
        MHD_get_connection_values(req->conn, MHD_GET_ARGUMENT_KIND, collect_arg, &q);
        req->args_read = !q.failed;
        if (q.failed) /* out of memory: the argument as sent */
            return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
    }
    for (size_t i = 0; i < req->nargs; i++)
        if (strcmp(req->args[2 * i], name) == 0)
            return req->args[2 * i + 1];
    return NULL;
}

typedef struct form_search {
    const char *name;
    char *out;
    size_t outlen;
    size_t len;
    bool seen;     /* the first field of the name has started */
    bool done;     /* and another one began: it is ignored */
    bool too_long; /* the value did not fit out */
} form_search;

static enum MHD_Result on_form_field(void *cls, enum MHD_ValueKind kind, const char *key,
                                     const char *filename, const char *content_type,
                                     const char *transfer_encoding, const char *data, uint64_t off,
                                     size_t size)
{
    (void)kind, (void)filename, (void)content_type, (void)transfer_encoding;
    form_search *f = cls;
    if (key == NULL || strcmp(key, f->name) != 0 || f->done)
        return MHD_YES;
    /* A value arrives in pieces at increasing offsets; a piece at offset 0
     * after the first starts another field of the name, and the first field
     * is the one taken. */
    if (off == 0 && f->seen) {
        f->done = true;
        return MHD_YES;
    }
    f->seen = true;
    if (off + size >= f->outlen) {
        f->too_long = true;
        f->done = true;
        return MHD_YES;
    }
    memcpy(f->out + off, data, size);
    if (off + size > f->len)
        f->len = (size_t)(off + size);
    return MHD_YES;
}

int http_request_form_value(http_request *req, const char *name, char *out, size_t outlen)
{
    if (outlen == 0)
        return -1;
    form_search f = {.name = name, .out = out, .outlen = outlen};
    out[0] = '\0';
    /* libmicrohttpd's parser of both form encodings; it reads Content-Type
     * from the connection and refuses (NULL) any other type. */
    struct MHD_PostProcessor *pp = MHD_create_post_processor(req->conn, 1024, on_form_field, &f);
    if (pp == NULL)
        return -1;
    enum MHD_Result r =
        MHD_post_process(pp, req->body.data != NULL ? req->body.data : "", req->body.len);
    enum MHD_Result d = MHD_destroy_post_processor(pp);
    if (r != MHD_YES || d != MHD_YES)
        return -1;
    if (f.too_long)
        return -1;
    out[f.len] = '\0';
    return f.len > 0 ? 1 : 0;
}

const char *http_request_body(const http_request *req, size_t *len)
{
    *len = req->body.len;
    return req->body.data != NULL ? req->body.data : "";
}

int64_t http_request_content_length(const http_request *req)
{
    return req->content_length;
}

const char *http_request_id(const http_request *req)
{
    return req->id;
}

int64_t http_request_start_us(const http_request *req)
{
    return req->start_us;
}

int http_request_status(const http_request *req)
{
    return req->status;
}

void http_request_set_app(http_request *req, void *app, void (*free_fn)(void *))
{
    req->app = app;
    req->app_free = free_fn;
}

void *http_request_app(const http_request *req)
{
    return req->app;
}

bool http_request_answered(const http_request *req)
{
    return req->answered;
}

void http_request_log_field(http_request *req, const char *key, const char *value)
{
    if (!req->srv->cfg.access_log)
        return;
    char k[64], v[160];
    json_escape(k, sizeof k, key);
    json_escape(v, sizeof v, value);
    int n = snprintf(req->log_fields + req->log_fields_len,
                     sizeof req->log_fields - req->log_fields_len, ",\"%s\":\"%s\"", k, v);
    if (n > 0 && (size_t)n < sizeof req->log_fields - req->log_fields_len)
        req->log_fields_len += (size_t)n;
    else
        req->log_fields[req->log_fields_len] = '\0';
}

/* Whether the Content-Type ct is want, parameters such as charset allowed. */
static bool is_type(const char *ct, const char *want)
{
    size_t n = strlen(want);
    if (ct == NULL)
        return false;
    while (*ct == ' ' || *ct == '\t')
        ct++;
    if (strncasecmp(ct, want, n) != 0)
        return false;
    ct += n;
    while (*ct == ' ' || *ct == '\t')
        ct++;
    return *ct == '\0' || *ct == ';';
}

int http_request_expect_body(http_request *req, const char *type)
{
    if (strcmp(type, "*") != 0 &&
        !is_type(http_request_header(req, MHD_HTTP_HEADER_CONTENT_TYPE), type)) {
        char msg[160];
        if (strcmp(type, "application/json") == 0)
            snprintf(msg, sizeof msg, "the body must be JSON: send Content-Type: %s", type);
        else
            snprintf(msg, sizeof msg, "send Content-Type: %s", type);
        http_respond_error(req, 415, "unsupported_media_type", msg, NULL);
        return -1;
    }
    if (req->content_length >= 0 && (uint64_t)req->content_length > req->srv->cfg.max_body_bytes) {
        char msg[128];
        snprintf(msg, sizeof msg, "the body is larger than the limit of %zu bytes",
                 req->srv->cfg.max_body_bytes);
        http_respond_error(req, 413, "payload_too_large", msg, NULL);
        return -1;
    }
    return 0;
}

int http_request_expect_json(http_request *req)
{
    return http_request_expect_body(req, "application/json");
}

typedef struct query_text {
    char *out;
    size_t outlen, len;
    bool overflow;
} query_text;

static enum MHD_Result add_query_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                     const char *value)
{
    (void)kind;
    query_text *q = cls;
    int n = snprintf(q->out + q->len, q->outlen - q->len, "%s%s%s%s", q->len > 0 ? "&" : "", key,
                     value != NULL ? "=" : "", value != NULL ? value : "");
    if (n < 0 || (size_t)n >= q->outlen - q->len) {
        q->overflow = true;
        return MHD_NO;
    }
    /* MHD turned '+' into ' ' before the (no-op) unescaping: turn it back. */
    for (char *p = q->out + q->len; *p != '\0'; p++)
        if (*p == ' ')
            *p = '+';
    q->len += (size_t)n;
    return MHD_YES;
}

int http_request_query_string(http_request *req, char *out, size_t outlen)
{
    if (outlen == 0)
        return -1;
    out[0] = '\0';
    query_text q = {.out = out, .outlen = outlen};
    MHD_get_connection_values(req->conn, MHD_GET_ARGUMENT_KIND, add_query_arg, &q);
    return q.overflow ? -1 : 0;
}

void http_request_suspend(http_request *req)
{
    req->state = REQ_SUSPENDED;
    MHD_suspend_connection(req->conn);
}

void http_request_resume(http_request *req)
{
    MHD_resume_connection(req->conn);
}

/* ------------------------------------------------------------ responses */

void http_add_header(http_request *req, const char *name, const char *value)
{
    if (req->nheaders >= HTTP_MAX_EXTRA_HEADERS)
        return;
    char *n = strdup(name), *v = strdup(value);
    if (n == NULL || v == NULL) {
        free(n);
        free(v);
        return;
    }
    req->hdr_name[req->nheaders] = n;
    req->hdr_value[req->nheaders] = v;
    req->nheaders++;
}

/* Takes ownership of body (malloc'd, may be NULL when len is 0). */
static void respond_owned(http_request *req, int status, const char *content_type, char *body,
                          size_t len)
{
    free(req->resp_body);
    req->answered = true;
    req->status = status;
    req->resp_type = content_type;
    req->resp_body = body;
    req->resp_len = len;
}

void http_respond(http_request *req, int status, const char *content_type, const char *body,
                  size_t len)
{
    char *copy = NULL;
    if (len > 0) {
        copy = malloc(len);
        if (copy == NULL) {
            respond_owned(req, 500, NULL, NULL, 0);
            return;
        }
        memcpy(copy, body, len);
    }
    respond_owned(req, status, content_type, copy, len);
}

void http_respond_take(http_request *req, int status, const char *content_type, char *body,
                       size_t len)
{
    respond_owned(req, status, content_type, body, len);
}

void http_respond_json(http_request *req, int status, json_t *doc)
{
    if (doc == NULL) {
        respond_owned(req, status, NULL, NULL, 0);
        return;
    }
    char *text = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    if (text == NULL) {
        respond_owned(req, 500, NULL, NULL, 0);
        return;
    }
    respond_owned(req, status, "application/json", text, strlen(text));
}

void http_respond_error(http_request *req, int status, const char *code, const char *message,
                        const char *field)
{
    /* Built by hand: this path also serves out-of-memory and overload
     * answers, so it should not need a JSON tree. */
    char c[64], m[512], f[192];
    json_escape(c, sizeof c, code);
    json_escape(m, sizeof m, message);
    json_escape(f, sizeof f, field != NULL ? field : "");
    size_t cap = strlen(c) + strlen(m) + strlen(f) + 64;
    char *body = malloc(cap);
    if (body == NULL) {
        respond_owned(req, status, NULL, NULL, 0);
        return;
    }
    int n;
    if (f[0] != '\0')
        n = snprintf(body, cap, "{\"error\":{\"code\":\"%s\",\"message\":\"%s\",\"field\":\"%s\"}}",
                     c, m, f);
    else
        n = snprintf(body, cap, "{\"error\":{\"code\":\"%s\",\"message\":\"%s\"}}", c, m);
    respond_owned(req, status, "application/json", body, n > 0 ? (size_t)n : 0);
}

void http_respond_retry(http_request *req, int status, const char *code, const char *message,
                        int64_t retry_after_s)
{
    char v[24];
    snprintf(v, sizeof v, "%lld", (long long)(retry_after_s < 1 ? 1 : retry_after_s));
    http_add_header(req, "Retry-After", v);
    http_respond_error(req, status, code, message, NULL);
}

/* Hands the stored answer to MHD. */
static enum MHD_Result send_answer(http_request *req)
{
    if (!req->answered)
        http_respond_error(req, 500, "internal", "the request was not answered", NULL);
    struct MHD_Response *r;
    if (req->resp_len > 0) {
        r = MHD_create_response_from_buffer(req->resp_len, req->resp_body, MHD_RESPMEM_MUST_FREE);
        if (r != NULL)
            req->resp_body = NULL;
    } else {
        r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    }
    if (r == NULL)
        return MHD_NO;
    if (req->resp_type != NULL)
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, req->resp_type);
    MHD_add_response_header(r, "X-Request-Id", req->id);
    for (size_t i = 0; i < req->nheaders; i++)
        MHD_add_response_header(r, req->hdr_name[i], req->hdr_value[i]);
    if (req->close)
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
    req->bytes_out = req->resp_len;
    req->state = REQ_ANSWERED;
    if (req->srv->cfg.answered != NULL)
        req->srv->cfg.answered(req->srv->cfg.ctx, req);
    enum MHD_Result ret = MHD_queue_response(req->conn, (unsigned)req->status, r);
    MHD_destroy_response(r);
    return ret;
}

static bool sane_request_id(const char *s)
{
    size_t n = 0;
    for (; s[n] != '\0'; n++) {
        char c = s[n];
        if (n >= 64 || !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                         (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.'))
            return false;
    }
    return n > 0;
}

/* The server's random prefix and a counter: unique without a syscall. */
static void request_id(http_server *s, char out[65])
{
    static const char digits[] = "0123456789abcdef";
    uint32_t n = (uint32_t)atomic_fetch_add_explicit(&s->next_id, 1, memory_order_relaxed);
    size_t plen = strlen(s->id_prefix);
    memcpy(out, s->id_prefix, plen);
    for (int i = 7; i >= 0; i--, n >>= 4)
        out[plen + (size_t)i] = digits[n & 0xf];
    out[plen + 8] = '\0';
}

static http_request *request_new(http_server *s, struct MHD_Connection *conn, const char *url,
                                 const char *method)
{
    http_request *req = calloc(1, sizeof *req);
    if (req == NULL)
        return NULL;
    req->srv = s;
    req->conn = conn;
    req->start_us = mono_us();
    snprintf(req->method, sizeof req->method, "%s", method);
    req->path = strndup(url, strcspn(url, "?"));
    if (req->path == NULL) {
        free(req);
        return NULL;
    }
    buf_init(&req->body, s->cfg.max_body_bytes);
    req->content_length = -1;
    const char *cl =
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl != NULL) {
        char *end = NULL;
        errno = 0;
        long long v = strtoll(cl, &end, 10);
        if (errno == 0 && end != cl && *end == '\0' && v >= 0)
            req->content_length = v;
    }
    const char *rid = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Request-Id");
    if (rid != NULL && sane_request_id(rid))
        snprintf(req->id, sizeof req->id, "%s", rid);
    else
        request_id(s, req->id);
    atomic_fetch_add(&s->in_flight, 1);
    return req;
}

static void request_free(http_request *req)
{
    if (req->app_free != NULL)
        req->app_free(req->app);
    for (size_t i = 0; i < req->nheaders; i++) {
        free(req->hdr_name[i]);
        free(req->hdr_value[i]);
    }
    for (size_t i = 0; i < 2 * req->nargs; i++)
        free(req->args[i]);
    free(req->args);
    free(req->resp_body);
    buf_free(&req->body);
    free(req->path);
    free(req);
}

/* Appends upload data under the cap; past it, remembers and discards. */
static int append_body(http_request *req, const char *data, size_t len)
{
    size_t max = req->srv->cfg.max_body_bytes;
    if (req->too_large || len > max - req->body.len) {
        req->too_large = true;
        req->discarded += len;
        /* A client streaming far past the limit is not worth reading to the
         * end just to tell it so: drop the connection. */
        return req->discarded > 4 * (uint64_t)max + 65536 ? -1 : 0;
    }
    /* The announced length is allocated at once, not grown to by doubling. */
    if (req->body.cap == 0 && req->content_length > 0 && (uint64_t)req->content_length <= max &&
        buf_reserve(&req->body, (size_t)req->content_length) != 0)
        return -1;
    return buf_append(&req->body, data, len);
}

/* ------------------------------------------------------------- the edge */

static edge_conn *conn_of(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci != NULL ? ci->socket_context : NULL;
}

static void conn_enter(http_server *s, struct MHD_Connection *conn, conn_phase phase)
{
    edge_conn *ec = conn_of(conn);
    if (ec == NULL)
        return;
    pthread_mutex_lock(&s->mu);
    if (!ec->timedout) {
        ec->phase = phase;
        ec->since_us = mono_us();
        ec->body_bytes = 0;
    }
    pthread_mutex_unlock(&s->mu);
}

static void conn_body_bytes(http_server *s, struct MHD_Connection *conn, size_t n)
{
    edge_conn *ec = conn_of(conn);
    if (ec == NULL)
        return;
    pthread_mutex_lock(&s->mu);
    ec->body_bytes += n;
    pthread_mutex_unlock(&s->mu);
}

/* The answer is made before the body was read: the connection closes after
 * it, lingering so that the client reads it. */
static void request_close_early(http_request *req)
{
    req->close = true;
    edge_conn *ec = conn_of(req->conn);
    if (ec == NULL)
        return;
    pthread_mutex_lock(&req->srv->mu);
    ec->linger = true;
    pthread_mutex_unlock(&req->srv->mu);
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    http_server *s = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        edge_conn *ec = calloc(1, sizeof *ec);
        if (ec == NULL || ci == NULL) {
            free(ec);
            *socket_context = NULL;
            return;
        }
        ec->fd = ci->connect_fd;
        ec->since_us = mono_us();
        pthread_mutex_lock(&s->mu);
        ec->next = s->conns;
        if (s->conns != NULL)
            s->conns->prev = ec;
        s->conns = ec;
        pthread_mutex_unlock(&s->mu);
        *socket_context = ec;
        return;
    }
    edge_conn *ec = *socket_context;
    if (ec == NULL)
        return;
    *socket_context = NULL;
    pthread_mutex_lock(&s->mu);
    if (ec->prev != NULL)
        ec->prev->next = ec->next;
    else
        s->conns = ec->next;
    if (ec->next != NULL)
        ec->next->prev = ec->prev;
    /* MHD closes its descriptor after this call; a duplicate keeps the
     * socket open to linger on. */
    if (ec->linger && !ec->timedout && s->nlingering < HTTP_LINGER_MAX) {
        int fd = dup(ec->fd);
        if (fd >= 0) {
            shutdown(fd, SHUT_WR);
            fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
            s->lingering[s->nlingering++] =
                (linger_fd){.fd = fd, .until_us = mono_us() + HTTP_LINGER_MS * 1000};
        }
    }
    pthread_mutex_unlock(&s->mu);
    free(ec);
}

/* Answers 408 on the socket itself (MHD has nothing queued in these phases)
 * and shuts it: MHD then sees the end of the connection and closes it. */
static void conn_time_out(edge_conn *ec, const char *message)
{
    char body[256], msg[640];
    int bn = snprintf(body, sizeof body,
                      "{\"error\":{\"code\":\"request_timeout\",\"message\":\"%s\"}}", message);
    int n = snprintf(msg, sizeof msg,
                     "HTTP/1.1 408 Request Timeout\r\nContent-Type: application/json\r\n"
                     "Content-Length: %d\r\nConnection: close\r\n\r\n%s",
                     bn, body);
    if (n > 0 && (size_t)n < sizeof msg) {
        ssize_t w = send(ec->fd, msg, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
        (void)w;
    }
    shutdown(ec->fd, SHUT_RDWR);
    ec->timedout = true;
    ec->phase = CONN_BUSY;
}

static void watch_deadlines(http_server *s, int64_t now)
{
    int64_t head_us = (int64_t)s->cfg.header_timeout_ms * 1000;
    if (head_us <= 0)
        head_us = (int64_t)s->cfg.connection_timeout_s * 1000000;
    for (edge_conn *ec = s->conns; ec != NULL; ec = ec->next) {
        int64_t t = now - ec->since_us;
        if (ec->timedout || ec->phase == CONN_BUSY)
            continue;
        if (ec->phase == CONN_HEAD && t > head_us)
            conn_time_out(ec, "the request head did not arrive within HERALD_HTTP_HEADER_TIMEOUT");
        else if (ec->phase == CONN_BODY && s->cfg.min_body_rate > 0 && t > HTTP_BODY_GRACE_US &&
                 (double)ec->body_bytes < (double)s->cfg.min_body_rate * (double)t / 1e6)
            conn_time_out(ec, "the body arrived slower than HERALD_HTTP_MIN_BODY_RATE");
    }
}

static void watch_lingering(http_server *s, int64_t now)
{
    char sink[65536];
    for (size_t i = 0; i < s->nlingering;) {
        linger_fd *l = &s->lingering[i];
        bool done = now >= l->until_us || l->bytes > HTTP_LINGER_BYTES;
        while (!done) {
            ssize_t n = recv(l->fd, sink, sizeof sink, 0);
            if (n > 0)
                done = (l->bytes += (uint64_t)n) > HTTP_LINGER_BYTES;
            else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                break;
            else if (n < 0 && errno == EINTR)
                continue;
            else
                done = true;
        }
        if (done) {
            close(l->fd);
            *l = s->lingering[--s->nlingering];
        } else {
            i++;
        }
    }
}

static void *watcher_main(void *arg)
{
    http_server *s = arg;
    while (!atomic_load(&s->stopping)) {
        struct pollfd pfd[HTTP_LINGER_MAX];
        nfds_t n = 0;
        pthread_mutex_lock(&s->mu);
        int64_t now = mono_us();
        watch_deadlines(s, now);
        watch_lingering(s, now);
        for (size_t i = 0; i < s->nlingering; i++)
            pfd[n++] = (struct pollfd){.fd = s->lingering[i].fd, .events = POLLIN};
        pthread_mutex_unlock(&s->mu);
        (void)poll(n > 0 ? pfd : NULL, n, HTTP_WATCH_TICK_MS);
    }
    return NULL;
}

static enum MHD_Result head_field(void *cls, enum MHD_ValueKind kind, const char *key,
                                  const char *value)
{
    (void)kind;
    httphead_field(cls, key, value);
    return MHD_YES;
}

/* The checks MHD does not make (httphead.h); answers 400 when one fails. */
static int check_head(http_request *req)
{
    httphead h;
    httphead_init(&h);
    MHD_get_connection_values(req->conn, MHD_HEADER_KIND, head_field, &h);
    char msg[160];
    const char *field;
    if (httphead_finish(&h, msg, sizeof msg, &field) == 0)
        return 0;
    http_respond_error(req, 400, "malformed_request", msg, field);
    request_close_early(req);
    return -1;
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version, const char *upload_data,
                                 size_t *upload_data_size, void **con_cls)
{
    (void)version;
    http_server *s = cls;
    http_request *req = *con_cls;

    if (req == NULL) {
        req = request_new(s, conn, url, method);
        if (req == NULL)
            return MHD_NO;
        *con_cls = req;
        if (check_head(req) != 0) {
            conn_enter(s, conn, CONN_BUSY);
            return send_answer(req);
        }
        bool has_body = req->content_length > 0 ||
                        MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                    MHD_HTTP_HEADER_TRANSFER_ENCODING) != NULL;
        conn_enter(s, conn, has_body ? CONN_BODY : CONN_BUSY);
        s->cfg.dispatch(s->cfg.ctx, req, HTTP_PHASE_HEADERS);
        if (!req->answered)
            return MHD_YES;
        if (req->content_length > 0 && req->content_length <= HTTP_DISCARD_MAX) {
            req->state = REQ_DISCARDING;
            return MHD_YES;
        }
        if (has_body)
            request_close_early(req);
        conn_enter(s, conn, CONN_BUSY);
        return send_answer(req);
    }
    switch (req->state) {
    case REQ_DISCARDING:
        if (*upload_data_size != 0) {
            conn_body_bytes(s, conn, *upload_data_size);
            req->discarded += *upload_data_size;
            *upload_data_size = 0;
            return req->discarded <= HTTP_DISCARD_MAX ? MHD_YES : MHD_NO;
        }
        conn_enter(s, conn, CONN_BUSY);
        return send_answer(req);
    case REQ_SUSPENDED:
        req->state = REQ_BODY;
        s->cfg.dispatch(s->cfg.ctx, req, HTTP_PHASE_RESUMED);
        return send_answer(req);
    case REQ_ANSWERED:
        /* MHD may still offer body bytes of a request answered early. */
        *upload_data_size = 0;
        return MHD_YES;
    case REQ_HEADERS:
    case REQ_BODY:
        break;
    }
    if (*upload_data_size != 0) {
        conn_body_bytes(s, conn, *upload_data_size);
        int rc = append_body(req, upload_data, *upload_data_size);
        *upload_data_size = 0;
        return rc == 0 ? MHD_YES : MHD_NO;
    }
    if (req->too_large) {
        char msg[128];
        snprintf(msg, sizeof msg, "the body is larger than the limit of %zu bytes",
                 s->cfg.max_body_bytes);
        http_respond_error(req, 413, "payload_too_large", msg, NULL);
        conn_enter(s, conn, CONN_BUSY);
        return send_answer(req);
    }
    conn_enter(s, conn, CONN_BUSY);
    req->state = REQ_BODY;
    s->cfg.dispatch(s->cfg.ctx, req, HTTP_PHASE_BODY);
    if (req->state == REQ_SUSPENDED)
        return MHD_YES;
    return send_answer(req);
}

static void write_access_log(http_server *s, http_request *req, enum MHD_RequestTerminationCode toe)
{
    char ts[TIMEUTIL_RFC3339_SIZE], path[256], line[1024];
    timeutil_format_rfc3339(timeutil_now_ms(), ts, sizeof ts);
    json_escape(path, sizeof path, req->path);
    double ms = (double)(mono_us() - req->start_us) / 1000.0;
    int n = snprintf(line, sizeof line,
                     "{\"ts\":\"%s\",\"level\":\"info\",\"msg\":\"request\",\"request_id\":\"%s\","
                     "\"method\":\"%s\",\"path\":\"%s\",\"status\":%d,\"duration_ms\":%.3f,"
                     "\"bytes_in\":%zu,\"bytes_out\":%zu%s%s}\n",
                     ts, req->id, req->method, path, req->status, ms, req->body.len, req->bytes_out,
                     toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : ",\"aborted\":true",
                     req->log_fields);
    (void)s;
    if (n <= 0)
        return;
    size_t len = (size_t)n < sizeof line ? (size_t)n : sizeof line - 1;
    if (len == sizeof line - 1)
        line[len - 1] = '\n';
    /* One write(2) per line keeps lines whole between threads. */
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    http_server *s = cls;
    http_request *req = *con_cls;
    if (req == NULL)
        return;
    *con_cls = NULL;
    conn_enter(s, conn, CONN_HEAD);
    if (s->cfg.access_log)
        write_access_log(s, req, toe);
    request_free(req);
    atomic_fetch_sub(&s->in_flight, 1);
}

/* Leaves the path as sent: segments are decoded by the router. */
static size_t keep_escaped(void *cls, struct MHD_Connection *c, char *s)
{
    (void)cls;
    (void)c;
    return strlen(s);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char line[512];
    vsnprintf(line, sizeof line, fmt, ap);
    size_t n = strlen(line);
    while (n > 0 && line[n - 1] == '\n')
        line[--n] = '\0';
    LOG_DEBUG("http", "libmicrohttpd: %s", line);
}

http_server *http_server_start(const http_server_config *cfg, char *err, size_t errlen)
{
    http_server *s = NULL;
    struct sockaddr_storage ss;
    socklen_t sslen = 0;

    if (opsserver_parse_addr(cfg->addr, &ss, &sslen, err, errlen) != 0)
        goto fail;
    s = calloc(1, sizeof *s);
    if (s == NULL) {
        error_set(err, errlen, "out of memory");
        goto fail;
    }
    pthread_mutex_init(&s->mu, NULL);
    s->cfg = *cfg;
    s->addr = strdup(cfg->addr);
    if (s->addr == NULL) {
        error_set(err, errlen, "out of memory");
        goto fail;
    }
    s->cfg.addr = s->addr;
    unsigned char rnd[8] = {0};
    if (id_random_bytes(rnd, sizeof rnd) != 0)
        memset(rnd, 0x5a, sizeof rnd);
    id_hex(rnd, sizeof rnd, s->id_prefix);

    unsigned threads = cfg->threads;
    if (threads == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        threads = n > 0 ? (unsigned)n : 2;
    }
    unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_TURBO |
                     MHD_USE_ERROR_LOG;
    if (ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    s->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, on_access, s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
        MHD_OPTION_THREAD_POOL_SIZE, threads, MHD_OPTION_CONNECTION_TIMEOUT,
        cfg->connection_timeout_s, MHD_OPTION_CONNECTION_LIMIT, cfg->max_connections,
        MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        (size_t)HTTP_CONNECTION_MEMORY, MHD_OPTION_LISTENING_ADDRESS_REUSE, 1u,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_NOTIFY_CONNECTION, on_connection,
        s, MHD_OPTION_STRICT_FOR_CLIENT, 1, MHD_OPTION_UNESCAPE_CALLBACK, keep_escaped, NULL,
        MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL, MHD_OPTION_END);
    if (s->daemon == NULL) {
        error_set(err, errlen, "cannot listen on %s: %s", cfg->addr,
                  errno != 0 ? strerror(errno) : "address in use or not available");
        goto fail;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info != NULL ? info->port : 0;
    if (pthread_create(&s->watcher, NULL, watcher_main, s) != 0) {
        MHD_stop_daemon(s->daemon);
        error_set(err, errlen, "cannot start the connection watcher");
        goto fail;
    }
    s->watcher_started = true;
    return s;
fail:
    if (s != NULL) {
        free(s->addr);
        pthread_mutex_destroy(&s->mu);
    }
    free(s);
    return NULL;
}

uint16_t http_server_port(const http_server *s)
{
    return s->port;
}

unsigned http_server_in_flight(const http_server *s)
{
    return atomic_load(&s->in_flight);
}

void http_server_stop(http_server *s)
{
    if (s == NULL)
        return;
    if (s->daemon != NULL)
        MHD_stop_daemon(s->daemon);
    atomic_store(&s->stopping, true);
    if (s->watcher_started)
        pthread_join(s->watcher, NULL);
    for (size_t i = 0; i < s->nlingering; i++)
        close(s->lingering[i].fd);
    pthread_mutex_destroy(&s->mu);
    free(s->addr);
    free(s);
}
