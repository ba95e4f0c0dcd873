/*
 * control: see control.h.
 */
#include "control.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* One answer of /_records stays bounded whatever the client asks. */
#define CONTROL_RECORDS_MAX_LIMIT 100000L

bool control_path(const char *url)
{
    return strncmp(url, "/_", 2) == 0;
}

enum MHD_Result control_reply(struct MHD_Connection *c, unsigned status, const char *json,
                              long retry_after_s)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(json), (void *)json, MHD_RESPMEM_MUST_COPY);
    if (r == NULL)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", "application/json");
    if (retry_after_s > 0) {
        char ra[24];
        snprintf(ra, sizeof(ra), "%ld", retry_after_s);
        MHD_add_response_header(r, "Retry-After", ra);
    }
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result reply_json_new(struct MHD_Connection *c, unsigned status, json_t *o)
{
    char *text = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (text == NULL)
        return control_reply(c, 500, "{\"error\":{\"code\":\"internal\",\"message\":\"oom\"}}", 0);
    enum MHD_Result ret = control_reply(c, status, text, 0);
    free(text);
    return ret;
}

enum MHD_Result control_reply_error(struct MHD_Connection *c, unsigned status, const char *code,
                                    const char *message)
{
    return reply_json_new(c, status,
                          json_pack("{s:{s:s, s:s}}", "error", "code", code, "message", message));
}

json_t *control_stats_json(const control_api *api)
{
    record_log_counts rc;
    record_log_counts_get(api->records, &rc);
    const control_counters *k = api->counters;
    json_t *o = json_pack(
        "{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "received",
        (json_int_t)atomic_load(&k->received), "accepted", (json_int_t)atomic_load(&k->accepted),
        "rejected", (json_int_t)atomic_load(&k->rejected), "failed_injected",
        (json_int_t)atomic_load(&k->failed_injected), "dead_token",
        (json_int_t)atomic_load(&k->dead_token), "auth_failed",
        (json_int_t)atomic_load(&k->auth_failed), "distinct_keys", (json_int_t)rc.distinct_keys,
        "duplicates", (json_int_t)rc.duplicates, "records", (json_int_t)rc.records,
        "record_write_errors", (json_int_t)rc.write_errors);
    if (o != NULL && api->add_stats != NULL)
        api->add_stats(o, api->arg);
    return o;
}

static void counters_reset(control_counters *k)
{
    atomic_store(&k->received, 0);
    atomic_store(&k->accepted, 0);
    atomic_store(&k->rejected, 0);
    atomic_store(&k->failed_injected, 0);
    atomic_store(&k->dead_token, 0);
    atomic_store(&k->auth_failed, 0);
}

static enum MHD_Result control_state(const control_api *api, struct MHD_Connection *c)
{
    json_t *settings = fault_to_json(api->fault);
    if (settings != NULL && api->extra_settings != NULL)
        api->extra_settings(settings, api->arg);
    json_t *stats = control_stats_json(api);
    return reply_json_new(c, 200, json_pack("{s:o?, s:o?}", "settings", settings, "stats", stats));
}

static enum MHD_Result control_post(const control_api *api, struct MHD_Connection *c,
                                    const char *body, size_t len)
{
    char err[256];
    json_error_t jerr;
    bool reset = false;
    json_t *req = json_loadb(body != NULL ? body : "", len, 0, &jerr);
    if (req == NULL) {
        snprintf(err, sizeof(err), "invalid JSON: %s", jerr.text);
        return control_reply_error(c, 400, "invalid_json", err);
    }
    /* fault sees the fields that are not the server's own. */
    json_t *fault_req = NULL;
    bool extra = api->extra_prefix != NULL && api->extra_apply != NULL && json_is_object(req);
    if (extra) {
        size_t plen = strlen(api->extra_prefix);
        const char *key;
        json_t *v;
        fault_req = json_object();
        json_object_foreach(req, key, v)
        {
            if (fault_req != NULL && strncmp(key, api->extra_prefix, plen) != 0)
                json_object_set(fault_req, key, v);
        }
        if (fault_req == NULL) {
            json_decref(req);
            return control_reply_error(c, 500, "internal", "out of memory");
        }
    }
    bool asks_reset = json_is_true(json_object_get(req, "reset"));
    int rc = 0;
    if (extra)
        rc = api->extra_apply(api->arg, req, asks_reset, true, err, sizeof(err));
    if (rc == 0)
        rc = fault_apply_json(api->fault, extra ? fault_req : req, &reset, err, sizeof(err));
    if (rc == 0 && extra)
        rc = api->extra_apply(api->arg, req, reset, false, err, sizeof(err));
    json_decref(fault_req);
    json_decref(req);
    if (rc != 0)
        return control_reply_error(c, 400, "invalid_setting", err);
    if (reset) {
        counters_reset(api->counters);
        record_log_forget_keys(api->records);
    }
    if (api->on_change != NULL)
        api->on_change(api->arg);
    return control_state(api, c);
}

static bool arg_long(struct MHD_Connection *c, const char *name, long def, long *out)
{
    const char *v = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, name);
    if (v == NULL || *v == '\0') {
        *out = def;
        return true;
    }
    char *end = NULL;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (errno != 0 || *end != '\0' || n < 0)
        return false;
    *out = n;
    return true;
}

static enum MHD_Result control_records(record_log *log, struct MHD_Connection *c)
{
    long since = 0, limit = 0;
    if (!arg_long(c, "since", 0, &since) ||
        !arg_long(c, "limit", CONTROL_RECORDS_MAX_LIMIT, &limit))
        return control_reply_error(c, 400, "invalid_argument",
                                   "since and limit must be non-negative integers");
    if (limit > CONTROL_RECORDS_MAX_LIMIT)
        limit = CONTROL_RECORDS_MAX_LIMIT;
    long first_kept = 0;
    char *text = record_log_range(log, since, limit, &first_kept);
    if (text == NULL && first_kept < 0)
        return control_reply_error(c, 500, "internal", "out of memory");
    if (text == NULL) {
        char msg[128];
        snprintf(msg, sizeof(msg), "records before seq %ld are no longer kept (see --keep)",
                 first_kept);
        return reply_json_new(c, 410,
                              json_pack("{s:{s:s, s:s, s:I}}", "error", "code", "gone", "message",
                                        msg, "first_kept", (json_int_t)first_kept));
    }
    enum MHD_Result ret = control_reply(c, 200, text, 0);
    free(text);
    return ret;
}

enum MHD_Result control_handle(const control_api *api, struct MHD_Connection *c, const char *method,
                               const char *url, const char *body, size_t len)
{
    bool get = strcmp(method, "GET") == 0;
    if (strcmp(url, "/_control") == 0 && strcmp(method, "POST") == 0)
        return control_post(api, c, body, len);
    if (strcmp(url, "/_control") == 0 && get)
        return control_state(api, c);
    if (strcmp(url, "/_records") == 0 && get)
        return control_records(api->records, c);
    if (strcmp(url, "/_callbacks") == 0 && get && api->callbacks != NULL)
        return control_records(api->callbacks, c);
    if (strcmp(url, "/_stats") == 0 && get)
        return reply_json_new(c, 200, control_stats_json(api));
    if (strcmp(url, "/_control") == 0 || strcmp(url, "/_records") == 0 ||
        strcmp(url, "/_stats") == 0 || (strcmp(url, "/_callbacks") == 0 && api->callbacks != NULL))
        return control_reply_error(c, 405, "method_not_allowed", "method not allowed here");
    return control_reply_error(c, 404, "not_found", "no such control path");
}

/* ---- the stand-alone control server (SMTP) ---- */

struct control_server {
    control_api api;
    struct MHD_Daemon *daemon;
};

typedef struct control_body {
    char *buf;
    size_t len;
    bool too_large;
} control_body;

static enum MHD_Result control_server_request(void *cls, struct MHD_Connection *c, const char *url,
                                              const char *method, const char *version,
                                              const char *upload_data, size_t *upload_data_size,
                                              void **con_cls)
{
    (void)version;
    control_server *s = cls;
    control_body *b = *con_cls;
    if (b == NULL) {
        b = calloc(1, sizeof(*b));
        if (b == NULL)
            return MHD_NO;
        *con_cls = b;
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (b->too_large || b->len + n > CONTROL_MAX_BODY) {
            b->too_large = true;
            return MHD_YES;
        }
        char *nb = realloc(b->buf, b->len + n + 1);
        if (nb == NULL)
            return MHD_NO;
        memcpy(nb + b->len, upload_data, n);
        b->buf = nb;
        b->len += n;
        b->buf[b->len] = '\0';
        return MHD_YES;
    }
    if (b->too_large)
        return control_reply_error(c, 413, "too_large", "request body too large");
    return control_handle(&s->api, c, method, url, b->buf, b->len);
}

static void control_server_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                                     enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)c;
    (void)toe;
    control_body *b = *con_cls;
    if (b != NULL) {
        free(b->buf);
        free(b);
        *con_cls = NULL;
    }
}

control_server *control_server_start(const control_api *api, int listen_fd, char *err,
                                     size_t errlen)
{
    control_server *ret = NULL;
    control_server *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    s->api = *api;
    s->daemon = MHD_start_daemon(MHD_USE_AUTO_INTERNAL_THREAD, 0, NULL, NULL,
                                 control_server_request, s, MHD_OPTION_LISTEN_SOCKET, listen_fd,
                                 MHD_OPTION_NOTIFY_COMPLETED, control_server_completed, s,
                                 MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)60, MHD_OPTION_END);
    if (s->daemon == NULL) {
        snprintf(err, errlen, "cannot start the control server");
        goto out;
    }
    listen_fd = -1; /* the daemon closes it */
    ret = s;
    s = NULL;

out:
    if (listen_fd >= 0)
        close(listen_fd);
    free(s);
    return ret;
}

void control_server_stop(control_server *s)
{
    if (s == NULL)
        return;
    MHD_stop_daemon(s->daemon);
    free(s);
}
