/*
 * http: the gateway's HTTP/1.1 server on libmicrohttpd.
 *
 * It owns the listener, the worker threads (epoll, a thread pool), the
 * lifecycle of each request, body buffering under a hard cap, request ids,
 * access log lines, and the error shape {"error":{"code","message","field"}}.
 * What a request means is the application's: it is called at three points
 * of a request's life through one dispatch function:
 *
 *   HTTP_PHASE_HEADERS  the headers are in, the body (if any) is not: route,
 *                       authenticate, rate-limit, check Content-Type and
 *                       Content-Length, and answer now to refuse the body
 *                       unread.  No answer means "read the body".
 *   HTTP_PHASE_BODY     the whole body is in (or there was none): answer,
 *                       or http_request_suspend() and answer later.
 *   HTTP_PHASE_RESUMED  a suspended request was resumed: answer now.
 *
 * Suspension frees the worker thread while a request waits (for a broker
 * acknowledgement): call http_request_suspend() before starting the work
 * whose completion calls http_request_resume() from any thread, exactly once.
 * Every answer is made with http_respond*(); the server sends it when the
 * dispatch call returns.
 *
 * Ownership: the server owns each http_request from the headers until the
 * response was sent or the client went away; application data attached with
 * http_request_set_app() is freed with its destructor at that point.
 */
#ifndef HERALD_HTTP_H
#define HERALD_HTTP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct http_server http_server;
typedef struct http_request http_request;

typedef enum {
    HTTP_PHASE_HEADERS = 0,
    HTTP_PHASE_BODY,
    HTTP_PHASE_RESUMED,
} http_phase;

/* Called on a worker thread; ctx is http_server_config.ctx. */
typedef void (*http_dispatch_fn)(void *ctx, http_request *req, http_phase phase);

/*
 * Called once per answered request, as its answer is handed to the
 * connection and before the client can read it: whatever it records (a
 * request count) is visible to any request the client sends after seeing
 * the answer.
 */
typedef void (*http_answered_fn)(void *ctx, http_request *req);

typedef struct http_server_config {
    const char *addr;              /* "host:port" (port 0: any free port) */
    size_t max_body_bytes;         /* 413 past this */
    unsigned threads;              /* worker threads; 0 = one per core */
    unsigned connection_timeout_s; /* idle or slow clients are dropped after this */
    /* A request head (counted from the connection's start or its previous
     * answer) must be in within this; 0 = connection_timeout_s. */
    unsigned header_timeout_ms;
    /* A body must arrive at this many bytes per second on average once it
     * has had 5 s; 0 = no minimum. */
    unsigned min_body_rate;
    unsigned max_connections;
    bool access_log; /* one JSON line per request on stderr */
    http_dispatch_fn dispatch;
    http_answered_fn answered; /* may be NULL */
    void *ctx;
} http_server_config;

/* Binds and starts serving.  NULL with err set (bad address, port in use). */
http_server *http_server_start(const http_server_config *cfg, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* The bound port (useful after binding port 0). */
uint16_t http_server_port(const http_server *s);

/* Requests between headers and completion, suspended ones included. */
unsigned http_server_in_flight(const http_server *s);

/*
 * Stops the threads and frees the server.  Call after every suspended
 * request was resumed (the caller's work has completed).  NULL is a no-op.
 */
void http_server_stop(http_server *s);

/* --------------------------------------------------------------- requests */

const char *http_request_method(const http_request *req);
/* The raw path, still percent-encoded, without the query string. */
const char *http_request_path(const http_request *req);
/* A request header (case-insensitive), or NULL; valid during dispatch only. */
const char *http_request_header(http_request *req, const char *name);
/* A query-string argument, percent-decoded ('+' is a space; a value holding
 * a bad escape or %00 stays as sent); the first of its name, NULL when
 * absent or given without "=".  Valid until the request ends. */
const char *http_request_query(http_request *req, const char *name);
/*
 * The value of form field name in the complete body, when it is
 * application/x-www-form-urlencoded or multipart/form-data (libmicrohttpd
 * decodes both): 1 with the value in out, 0 when the form has no such
 * field or its value is empty, -1 when the body is not such a form, is
 * malformed, or the value does not fit outlen.
 */
int http_request_form_value(http_request *req, const char *name, char *out, size_t outlen)
    __attribute__((warn_unused_result));

/* The body read so far (complete in HTTP_PHASE_BODY); never NULL, NUL-terminated. */
const char *http_request_body(const http_request *req, size_t *len);
/* Content-Length as announced, -1 when none (or chunked). */
int64_t http_request_content_length(const http_request *req);
/* The request id: the client's X-Request-Id when sane, else generated. */
const char *http_request_id(const http_request *req);
/* When the headers arrived, CLOCK_MONOTONIC in microseconds. */
int64_t http_request_start_us(const http_request *req);
/* The status sent (0 before an answer). */
int http_request_status(const http_request *req);

/* Attaches application data, freed by free_fn (may be NULL) when the request is over. */
void http_request_set_app(http_request *req, void *app, void (*free_fn)(void *));
void *http_request_app(const http_request *req);

/* Adds a field to the access log line (a short string; the value is copied). */
void http_request_log_field(http_request *req, const char *key, const char *value);

/*
 * Checks the headers of a request that must carry a JSON body: answers 415
 * when Content-Type is not application/json (parameters such as charset
 * are allowed) and 413 when Content-Length announces more than the limit.
 * Returns 0 when the body may be read, -1 when an answer was made.
 */
int http_request_expect_json(http_request *req);
/* The same for a body of another Content-Type ("*": any). */
int http_request_expect_body(http_request *req, const char *type);

/*
 * The query string as the client sent it, without the '?', into out ("":
 * none), rebuilt from the arguments in their order (values stay escaped:
 * the server does not unescape them).  -1 when it does not fit.
 */
int http_request_query_string(http_request *req, char *out, size_t outlen)
    __attribute__((warn_unused_result));

/* Frees the worker; http_request_resume() must follow exactly once. */
void http_request_suspend(http_request *req);
/* Thread-safe; makes the server call dispatch with HTTP_PHASE_RESUMED. */
void http_request_resume(http_request *req);

/* ------------------------------------------------------------- responses */

/* Adds a response header; at most a few per request.  Copies both. */
void http_add_header(http_request *req, const char *name, const char *value);

/* Answers with a copy of body. */
void http_respond(http_request *req, int status, const char *content_type, const char *body,
                  size_t len);
/* Answers with body, which it takes (malloc'd; freed with the request). */
void http_respond_take(http_request *req, int status, const char *content_type, char *body,
                       size_t len);
/* Answers with doc serialized compactly; steals the reference. NULL doc = no body (204). */
void http_respond_json(http_request *req, int status, json_t *doc);
/* Answers {"error":{"code","message","field"}}; field may be NULL or "". */
void http_respond_error(http_request *req, int status, const char *code, const char *message,
                        const char *field);
/* As http_respond_error with "Retry-After: <retry_after_s>" (at least 1). */
void http_respond_retry(http_request *req, int status, const char *code, const char *message,
                        int64_t retry_after_s);

bool http_request_answered(const http_request *req);

#endif
