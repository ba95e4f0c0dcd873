/*
 * ops_api: /healthz, /readyz and /metrics.
 */
#include "ops_api.h"

#include "timeutil.h"

#include <stdio.h>
#include <stdlib.h>

#define DB_CHECK_CACHE_MS 1000
#define DB_CHECK_WAIT_MS  500

void ops_api_healthz(api_env *env, http_request *req, api_call *call, http_phase phase)
{
    (void)env;
    (void)call;
    (void)phase;
    http_respond_json(req, 200, json_pack("{s:s}", "status", "ok"));
}

/* SELECT 1 at most once a second, whatever the probe rate. */
static bool db_ready(api_env *env, char *reason, size_t reasonlen)
{
    int64_t now = timeutil_monotonic_ms();
    long long checked = atomic_load(&env->db_checked_ms);
    if (checked != 0 && now - checked < DB_CHECK_CACHE_MS) {
        if (!atomic_load(&env->db_ok))
            snprintf(reason, reasonlen, "PostgreSQL is not reachable");
        return atomic_load(&env->db_ok);
    }
    char err[256];
    bool ok = false;
    pg_conn *c = pgpool_acquire(env->pool, DB_CHECK_WAIT_MS, err, sizeof err);
    if (c != NULL) {
        ok = pg_ok(c) && store_ping(c, err, sizeof err) == STORE_OK;
        pgpool_release(env->pool, c);
    }
    atomic_store(&env->db_ok, ok);
    atomic_store(&env->db_checked_ms, now);
    if (!ok)
        snprintf(reason, reasonlen, "PostgreSQL is not reachable: %s", err);
    return ok;
}

void ops_api_readyz(api_env *env, http_request *req, api_call *call, http_phase phase)
{
    (void)call;
    (void)phase;
    char kreason[256] = "", dreason[300] = "";
    bool draining = atomic_load(&env->draining);
    bool kafka = publisher_ready(env->pub, kreason, sizeof kreason);
    bool db = db_ready(env, dreason, sizeof dreason);
    if (!draining && kafka && db) {
        http_respond_json(
            req, 200, json_pack("{s:s,s:s,s:s}", "status", "ok", "kafka", "ok", "database", "ok"));
        return;
    }
    const char *why = draining ? "shutting down" : !kafka ? kreason : dreason;
    json_t *doc = json_pack("{s:s,s:s,s:s,s:{s:s,s:s}}", "status", "not_ready", "kafka",
                            kafka ? "ok" : kreason, "database", db ? "ok" : dreason, "error",
                            "code", "not_ready", "message", why);
    http_add_header(req, "Retry-After", "1");
    http_respond_json(req, 503, doc);
}

void ops_api_metrics(api_env *env, http_request *req, api_call *call, http_phase phase)
{
    (void)call;
    (void)phase;
    char *text = NULL;
    size_t len = 0;
    if (metrics_render(env->metrics, &text, &len) != 0) {
        http_respond_error(req, 500, "internal", "out of memory", NULL);
        return;
    }
    http_respond(req, 200, "text/plain; version=0.0.4; charset=utf-8", text, len);
    free(text);
}
