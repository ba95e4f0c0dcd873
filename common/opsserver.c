/*
 * opsserver: /metrics, /healthz and /readyz over libmicrohttpd (see
 * opsserver.h).
 *
 * One internal polling thread serves every connection: scrapes and probes
 * are rare and cheap, and a single thread means the checks need no
 * reentrancy.  JSON bodies are small and built on the stack; the metrics
 * body is rendered per request and handed to libmicrohttpd to free.
 */
#include "opsserver.h"
#include "config.h"
#include "error.h"

#include "log.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Enough for Prometheus plus a few probes; more is a misbehaving client. */
#define OPS_MAX_CONNECTIONS 32
/* Seconds an idle connection is kept (Prometheus reuses its connection
 * between scrapes, typically 15 s apart, so keep-alive shorter than that
 * merely costs a reconnect). */
#define OPS_IDLE_TIMEOUT_S 10
#define OPS_REASON_MAX     256

struct opsserver {
    struct MHD_Daemon *daemon;
    metrics_registry *reg;
    opsserver_check_fn health;
    opsserver_check_fn ready;
    void *ctx;
    uint16_t port;
    char logctx[96];
    /* Until the daemon is up, libmicrohttpd's messages are kept for the
     * error returned by opsserver_start(); afterwards they are logged. */
    atomic_bool running;
    char start_err[256];
};

int opsserver_parse_addr(const char *addr, struct sockaddr_storage *out, socklen_t *outlen,
                         char *err, size_t errlen)
{
    char host[INET6_ADDRSTRLEN];
    config_addr a;

    if (config_parse_addr(addr, &a, err, errlen) != 0)
        return -1;
    memset(out, 0, sizeof(*out));
    if (a.hostlen >= sizeof(host)) {
        error_set(err, errlen, "invalid listen address \"%s\": host too long", addr);
        return -1;
    }
    memcpy(host, a.host, a.hostlen);
    host[a.hostlen] = '\0';

    if (a.bracketed) {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)out;
        if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1) {
            error_set(err, errlen, "invalid listen address \"%s\": \"%s\" is not an IPv6 address",
                      addr, host);
            return -1;
        }
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons(a.port);
        *outlen = sizeof(*sin6);
        return 0;
    }
    struct sockaddr_in *sin = (struct sockaddr_in *)out;
    if (strcmp(host, "localhost") == 0) {
        sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    } else if (inet_pton(AF_INET, host, &sin->sin_addr) != 1) {
        error_set(err, errlen,
                  "invalid listen address \"%s\": \"%s\" is not an IPv4 address "
                  "(names other than localhost are not resolved)",
                  addr, host);
        return -1;
    }
    sin->sin_family = AF_INET;
    sin->sin_port = htons(a.port);
    *outlen = sizeof(*sin);
    return 0;
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    opsserver *s = cls;
    char msg[256];

    vsnprintf(msg, sizeof(msg), fmt, ap);
    size_t n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    if (atomic_load(&s->running))
        LOG_WARN(s->logctx, "%s", msg);
    else
        snprintf(s->start_err, sizeof(s->start_err), "%s", msg);
}

static enum MHD_Result queue(struct MHD_Connection *conn, unsigned status,
                             struct MHD_Response *resp, const char *ctype, const char *allow)
{
    if (resp == NULL)
        return MHD_NO;
    enum MHD_Result ret = MHD_NO;
    if (MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype) == MHD_YES &&
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store") == MHD_YES &&
        (allow == NULL || MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow) == MHD_YES))
        ret = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    return ret;
}

/*
 * Sends obj (consumed) as the JSON body.  obj is NULL when jansson refused a
 * string (invalid UTF-8 in a check's reason); fallback is sent instead.
 */
static enum MHD_Result reply_json(struct MHD_Connection *conn, unsigned status, json_t *obj,
                                  const char *fallback, const char *allow)
{
    char body[2048];
    size_t n = 0;

    if (obj != NULL)
        n = json_dumpb(obj, body, sizeof(body), JSON_COMPACT);
    json_decref(obj);
    if (n == 0 || n > sizeof(body)) {
        n = strlen(fallback);
        memcpy(body, fallback, n);
    }
    return queue(conn, status, MHD_create_response_from_buffer(n, body, MHD_RESPMEM_MUST_COPY),
                 "application/json", allow);
}

static enum MHD_Result reply_error(struct MHD_Connection *conn, unsigned status, const char *code,
                                   const char *message, const char *allow)
{
    json_t *obj = json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", message);
    const char *fallback = status == MHD_HTTP_METHOD_NOT_ALLOWED
                               ? "{\"error\":{\"code\":\"method_not_allowed\"}}"
                               : "{\"error\":{\"code\":\"not_found\"}}";
    return reply_json(conn, status, obj, fallback, allow);
}

static enum MHD_Result reply_check(struct MHD_Connection *conn, opsserver *s,
                                   opsserver_check_fn check, const char *bad_status)
{
    char reason[OPS_REASON_MAX] = "";

    if (check == NULL || check(s->ctx, reason, sizeof(reason)))
        return reply_json(conn, MHD_HTTP_OK, json_pack("{s:s}", "status", "ok"),
                          "{\"status\":\"ok\"}", NULL);
    reason[sizeof(reason) - 1] = '\0';
    json_t *obj = json_pack("{s:s,s:s}", "status", bad_status, "reason",
                            reason[0] != '\0' ? reason : "no reason given");
    if (obj == NULL) /* the reason was not UTF-8 */
        obj = json_pack("{s:s,s:s}", "status", bad_status, "reason", "(reason not valid UTF-8)");
    return reply_json(conn, MHD_HTTP_SERVICE_UNAVAILABLE, obj, "{\"status\":\"unavailable\"}",
                      NULL);
}

static enum MHD_Result reply_metrics(struct MHD_Connection *conn, opsserver *s)
{
    char *text = NULL;
    size_t len = 0;

    if (metrics_render(s->reg, &text, &len) != 0) {
        LOG_ERROR(s->logctx, "cannot render metrics: out of memory");
        return reply_json(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, NULL,
                          "{\"error\":{\"code\":\"internal\",\"message\":\"out of memory\"}}",
                          NULL);
    }
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
    if (resp == NULL) {
        free(text);
        return MHD_NO;
    }
    return queue(conn, MHD_HTTP_OK, resp, "text/plain; version=0.0.4; charset=utf-8", NULL);
}

typedef enum {
    ROUTE_NONE,
    ROUTE_METRICS,
    ROUTE_HEALTHZ,
    ROUTE_READYZ,
} route;

static route route_of(const opsserver *s, const char *url)
{
    if (strcmp(url, "/metrics") == 0 && s->reg != NULL)
        return ROUTE_METRICS;
    if (strcmp(url, "/healthz") == 0)
        return ROUTE_HEALTHZ;
    if (strcmp(url, "/readyz") == 0 && s->ready != NULL)
        return ROUTE_READYZ;
    return ROUTE_NONE;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url,
                              const char *method, const char *version, const char *upload_data,
                              size_t *upload_data_size, void **req_cls)
{
    opsserver *s = cls;
    char msg[160];
    (void)version;
    (void)upload_data;
    (void)upload_data_size;
    (void)req_cls;

    /* Answering on the first call, before any body is read, is allowed:
     * libmicrohttpd discards the rest and closes the connection. */
    route r = route_of(s, url);
    if (r == ROUTE_NONE) {
        snprintf(msg, sizeof(msg), "no such endpoint; this server answers %s/healthz%s",
                 s->reg != NULL ? "/metrics, " : "", s->ready != NULL ? ", /readyz" : "");
        return reply_error(conn, MHD_HTTP_NOT_FOUND, "not_found", msg, NULL);
    }
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0) {
        snprintf(msg, sizeof(msg), "method %.32s is not allowed on %s; use GET", method, url);
        return reply_error(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "method_not_allowed", msg,
                           "GET, HEAD");
    }
    switch (r) {
    case ROUTE_METRICS:
        return reply_metrics(conn, s);
    case ROUTE_HEALTHZ:
        return reply_check(conn, s, s->health, "unhealthy");
    case ROUTE_READYZ:
        return reply_check(conn, s, s->ready, "not_ready");
    case ROUTE_NONE:
        break;
    }
    return MHD_NO;
}

opsserver *opsserver_start(const char *addr, metrics_registry *reg, opsserver_check_fn health,
                           opsserver_check_fn ready, void *ctx, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    socklen_t sslen;
    opsserver *s = NULL;
    opsserver *ret = NULL;

    if (opsserver_parse_addr(addr, &ss, &sslen, err, errlen) != 0)
        goto out;
    s = calloc(1, sizeof(*s));
    if (s == NULL) {
        error_set(err, errlen, "cannot start ops server on %s: out of memory", addr);
        goto out;
    }
    s->reg = reg;
    s->health = health;
    s->ready = ready;
    s->ctx = ctx;
    atomic_init(&s->running, false);

    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG | MHD_USE_AUTO;
    uint16_t port;
    if (ss.ss_family == AF_INET6) {
        flags |= MHD_USE_IPv6;
        port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    } else {
        port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    }
    s->daemon = MHD_start_daemon(
        flags, port, NULL, NULL, handle, s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)OPS_MAX_CONNECTIONS, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)OPS_IDLE_TIMEOUT_S, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, s, MHD_OPTION_END);
    if (s->daemon == NULL) {
        error_set(err, errlen, "cannot listen on %s: %s", addr,
                  s->start_err[0] != '\0' ? s->start_err : "libmicrohttpd failed to start");
        goto out;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info != NULL ? info->port : port;
    /* Name the listener by the port actually bound, not the ":0" asked for. */
    char host[INET6_ADDRSTRLEN] = "?";
    if (ss.ss_family == AF_INET6) {
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, host, sizeof(host));
        snprintf(s->logctx, sizeof(s->logctx), "opsserver [%s]:%u", host, (unsigned)s->port);
    } else {
        inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, host, sizeof(host));
        snprintf(s->logctx, sizeof(s->logctx), "opsserver %s:%u", host, (unsigned)s->port);
    }
    atomic_store(&s->running, true);
    LOG_INFO(s->logctx, "serving %s/healthz%s", reg != NULL ? "/metrics, " : "",
             ready != NULL ? ", /readyz" : "");
    ret = s;
    s = NULL;
out:
    free(s);
    return ret;
}

uint16_t opsserver_port(const opsserver *s)
{
    return s->port;
}

void opsserver_stop(opsserver *s)
{
    if (s == NULL)
        return;
    MHD_stop_daemon(s->daemon);
    free(s);
}
