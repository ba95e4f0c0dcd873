/*
 * console_ops_api: /v1/ops/status and /v1/ops/history.
 */
#include "console_ops_api.h"

#include "console_ops.h"
#include "log.h"
#include "timeutil.h"

#define HISTORY_MAX_MINUTES 60
#define STATUS_DB_WAIT_MS   500

void console_ops_api_status(api_env *env, http_request *req, api_call *call, http_phase phase)
{
    (void)call;
    (void)phase;
    char err[512];
    json_t *doc = NULL;
    /* Without the database the document says so in its held counts, as heraldctl's does. */
    pg_conn *c = pgpool_acquire(env->pool, STATUS_DB_WAIT_MS, err, sizeof err);
    opsstatus_result res =
        console_ops_status(env->ops, c != NULL ? pg_raw(c) : NULL, &doc, err, sizeof err);
    if (c != NULL)
        pgpool_release(env->pool, c);
    if (res == OPSSTATUS_OK) {
        http_respond_json(req, 200, doc);
        return;
    }
    if (res == OPSSTATUS_NOMEM) {
        http_respond_error(req, 500, "internal", "out of memory", NULL);
        return;
    }
    LOG_WARN(http_request_id(req), "status: %s", err);
    http_respond_retry(req, 503, "broker_unavailable", err, 1);
}

void console_ops_api_history(api_env *env, http_request *req, api_call *call, http_phase phase)
{
    (void)call;
    (void)phase;
    long minutes = api_query_long(req, "minutes", HISTORY_MAX_MINUTES, HISTORY_MAX_MINUTES);
    if (minutes < 0)
        return;
    json_t *doc = console_ops_history(env->ops, timeutil_now_ms() - minutes * 60000);
    if (doc == NULL) {
        http_respond_error(req, 500, "internal", "out of memory", NULL);
        return;
    }
    http_respond_json(req, 200, doc);
}
