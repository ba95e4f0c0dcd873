/*
 * control: the HTTP control API every test provider shares.
 *
 *   POST /_control  JSON settings (see fault.h); answers like GET
 *   GET  /_control  {"settings":{...},"stats":{...}}
 *   GET  /_records?since=N&limit=M  JSON array of record lines from seq N
 *   GET  /_stats    counters: received, accepted, rejected, ...
 *   GET  /_callbacks?since=N&limit=M  as /_records, for the status
 *                   callbacks the HTTP provider sent (callbacks.h)
 *
 * The HTTP provider serves these paths beside its message paths
 * (control_handle); the SMTP server has no HTTP port of its own, so it runs
 * a control_server on a separate port.  Also home of control_reply, the one
 * way both send a JSON answer with libmicrohttpd.
 */
#ifndef PROVIDERS_CONTROL_H
#define PROVIDERS_CONTROL_H

#include <jansson.h>
#include <microhttpd.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "fault.h"
#include "record_log.h"

/* Bodies beyond this are answered 413 (a provider message is far smaller). */
#define CONTROL_MAX_BODY (1024 * 1024)

/* Counters both servers keep; exposed because every request bumps them. */
typedef struct control_counters {
    atomic_long received;        /* message requests / SMTP transactions seen */
    atomic_long accepted;        /* answered with success */
    atomic_long rejected;        /* malformed, unauthenticated, too large */
    atomic_long failed_injected; /* answered with an injected failure */
    atomic_long dead_token;      /* push to a token registered as dead */
    atomic_long auth_failed;     /* of rejected: bad or missing credentials */
} control_counters;

typedef struct control_api {
    fault *fault;                 /* borrowed */
    record_log *records;          /* borrowed */
    control_counters *counters;   /* borrowed */
    void (*on_change)(void *arg); /* after every applied POST /_control; may be NULL */
    void (*add_stats)(json_t *stats, void *arg); /* server's own counters; may be NULL */
    record_log *callbacks;                       /* GET /_callbacks; may be NULL */
    /*
     * Settings a server keeps beside fault's, in the fields whose names
     * start with extra_prefix (may be NULL: none).  extra_apply is called
     * with check_only before fault applies the other fields and for real
     * after, so a request changes all or nothing; extra_settings adds them
     * to the settings GET /_control shows.
     */
    const char *extra_prefix;
    int (*extra_apply)(void *arg, const json_t *req, bool reset, bool check_only, char *err,
                       size_t errlen);
    void (*extra_settings)(json_t *settings, void *arg);
    void *arg;
} control_api;

/* Whether url belongs to the control API ("/_..."). */
bool control_path(const char *url);

/* Answers one complete control request (body may be NULL when len is 0). */
enum MHD_Result control_handle(const control_api *api, struct MHD_Connection *c, const char *method,
                               const char *url, const char *body, size_t len);

/* Queues a JSON answer (json is copied); retry_after_s > 0 adds Retry-After. */
enum MHD_Result control_reply(struct MHD_Connection *c, unsigned status, const char *json,
                              long retry_after_s);

/* Queues {"error":{"code":code,"message":message}}. */
enum MHD_Result control_reply_error(struct MHD_Connection *c, unsigned status, const char *code,
                                    const char *message);

/* The stats object of GET /_stats (caller owns it). */
json_t *control_stats_json(const control_api *api);

typedef struct control_server control_server;

/* Serves the control API on listen_fd (ownership taken, also on failure). */
control_server *control_server_start(const control_api *api, int listen_fd, char *err,
                                     size_t errlen) __attribute__((warn_unused_result));

/* Stops and frees; NULL is a no-op. */
void control_server_stop(control_server *s);

#endif
