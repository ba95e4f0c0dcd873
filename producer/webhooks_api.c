/*
 * webhooks_api: see webhooks_api.h.  The answers are built as JSON by
 * PostgreSQL and sent as they come.
 */
#include "webhooks_api.h"

#include "ids.h"
#include "log.h"
#include "timeutil.h"
#include "webhook_call.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define URL_MAX         2048
#define SECRET_MIN      16
#define SECRET_MAX      256
#define DESCRIPTION_MAX 256
#define PAGE_DEFAULT    50
#define PAGE_MAX        500

/* An endpoint as every answer shows it (never its secret). */
#define ENDPOINT_JSON                                                                              \
    "json_build_object('id', e.id, 'url', e.url, 'event_types', e.event_types,"                    \
    " 'all_events', e.all_events, 'description', e.description, 'enabled', e.enabled,"             \
    " 'disabled_at', e.disabled_at, 'disabled_reason', e.disabled_reason,"                         \
    " 'calls_ok', e.calls_ok, 'calls_failed', e.calls_failed,"                                     \
    " 'consecutive_failures', e.consecutive_failures, 'last_status', e.last_status,"               \
    " 'last_attempt_at', e.last_attempt_at, 'created_at', e.created_at)"

/* Admin keys own every endpoint: their owner parameter ($n) is NULL. */
#define OWNED_BY(n) "($" n "::bigint IS NULL OR e.api_key_id = $" n "::bigint)"
#define OWNED       OWNED_BY("2")

static void owner_param(pg_params *p, const api_call *call)
{
    if (call->scope == APIKEY_SCOPE_ADMIN)
        pg_params_text(p, NULL);
    else
        pg_params_int(p, call->key_id);
}

/*
 * The path's {webhook_id} as $1 and the caller's owner as $2 (OWNED) of p;
 * false after answering 400.
 */
static bool endpoint_params(http_request *req, api_call *call, pg_params *p)
{
    const char *id = router_param(&call->params, "webhook_id");
    if (id == NULL || !id_is_uuid(id)) {
        api_bad_field(req, "webhook_id", "webhook_id must be a lowercase UUID");
        return false;
    }
    pg_params_text(p, id);
    owner_param(p, call);
    return true;
}

/* A URL Herald may POST to: http(s), no blanks or control characters. */
static bool url_ok(const char *url)
{
    size_t n = strlen(url);
    if (n > URL_MAX || (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0))
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)url[i] <= ' ' || url[i] == 0x7f)
            return false;
    return n > 8;
}

static bool printable(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < ' ' || *s == 0x7f)
            return false;
    return true;
}

/* "{a,b}" of the body's event_types, all delivery.* types when absent; -1 after a 400. */
static int event_types_param(http_request *req, json_t *v, char *out, size_t outlen)
{
    size_t o = 0;
    out[o++] = '{';
    if (v == NULL) {
        for (size_t i = 0; webhook_types[i] != NULL; i++)
            if (strncmp(webhook_types[i], "delivery.", 9) == 0)
                o += (size_t)snprintf(out + o, outlen - o, "%s%s", o > 1 ? "," : "",
                                      webhook_types[i]);
    } else if (!json_is_array(v) || json_array_size(v) == 0) {
        api_bad_field(req, "event_types", "event_types must be a non-empty array of types");
        return -1;
    } else {
        size_t i;
        json_t *t;
        json_array_foreach(v, i, t)
        {
            const char *s = json_string_value(t);
            if (!webhook_type_valid(s)) {
                api_bad_field(req, "event_types",
                              "event_types: each must be delivery.sent, delivery.delivered, "
                              "delivery.bounced, delivery.complained, delivery.undelivered, "
                              "delivery.suppressed, inbox.read or inbox.seen");
                return -1;
            }
            o += (size_t)snprintf(out + o, outlen - o, "%s%s", o > 1 ? "," : "", s);
            if (o >= outlen - 2) {
                api_bad_field(req, "event_types", "event_types has too many entries");
                return -1;
            }
        }
    }
    snprintf(out + o, outlen - o, "}");
    return 0;
}

void webhooks_api_create(api_env *env, http_request *req, api_call *call, http_phase phase)
{
    (void)phase;
    json_t *body = NULL;
    pg_params p = {0};
    char id[ID_UUID_SIZE], secret[SECRET_MAX + 1], types[512];
    if (api_body_object(req, &body) != 0)
        goto out;
    const char *key;
    json_t *v;
    json_object_foreach(body, key, v)
    {
        if (strcmp(key, "url") != 0 && strcmp(key, "event_types") != 0 &&
            strcmp(key, "secret") != 0 && strcmp(key, "description") != 0 &&
            strcmp(key, "all_events") != 0) {
            api_bad_field(req, key, "unknown field");
            goto out;
        }
    }
    const char *url = json_string_value(json_object_get(body, "url"));
    if (url == NULL || !url_ok(url)) {
        api_bad_field(req, "url", "url must be an http:// or https:// URL of at most 2048 bytes");
        goto out;
    }
    if (event_types_param(req, json_object_get(body, "event_types"), types, sizeof types) != 0)
        goto out;
    json_t *s = json_object_get(body, "secret");
    if (s != NULL) {
        const char *given = json_string_value(s);
        size_t n = given ? strlen(given) : 0;
        if (n < SECRET_MIN || n > SECRET_MAX || !printable(given)) {
            api_bad_field(req, "secret", "secret must be 16 to 256 printable characters");
            goto out;
        }
        snprintf(secret, sizeof secret, "%s", given);
    } else {
        memcpy(secret, "whsec_", 6);
        if (id_random_token(secret + 6, sizeof secret - 6, 32) != 0) {
            http_respond_error(req, 500, "internal", "no randomness for the secret", NULL);
            goto out;
        }
    }
    json_t *d = json_object_get(body, "description");
    const char *description = json_string_value(d);
    if (d != NULL && (description == NULL || strlen(description) > DESCRIPTION_MAX)) {
        api_bad_field(req, "description", "description must be a string of at most 256 bytes");
        goto out;
    }
    json_t *all = json_object_get(body, "all_events");
    if (all != NULL && !json_is_boolean(all)) {
        api_bad_field(req, "all_events", "all_events must be true or false");
        goto out;
    }
    if (json_is_true(all) && call->scope != APIKEY_SCOPE_ADMIN) {
        http_respond_error(req, 403, "forbidden", "only an admin key may receive every event",
                           "all_events");
        goto out;
    }
    if (id_uuid_v4(id) != 0) {
        http_respond_error(req, 500, "internal", "no randomness for the id", NULL);
        goto out;
    }
    pg_params_text(&p, id);
    pg_params_int(&p, call->key_id);
    pg_params_text(&p, url);
    pg_params_text(&p, secret);
    pg_params_text(&p, types);
    pg_params_text(&p, json_is_true(all) ? "true" : "false");
    pg_params_text(&p, description);
    api_answer_query(
        env, req, 201,
        "WITH e AS (INSERT INTO webhook_endpoints (id, api_key_id, url, secret, event_types,"
        "               all_events, description)"
        "           VALUES ($1::uuid, $2::bigint, $3, $4, $5::text[], $6::boolean, $7)"
        "           RETURNING *)"
        " SELECT (" ENDPOINT_JSON "::jsonb || jsonb_build_object('secret', e.secret))::text"
        " FROM e",
        &p, "webhook");
out:
    json_decref(body);
}

void webhooks_api_list(api_env *env, http_request *req, api_call *call, http_phase phase)
{
    (void)phase;
    pg_params p = {0};
    owner_param(&p, call);
    api_answer_query(env, req, 200,
                     "SELECT json_build_object('webhooks', coalesce(json_agg(" ENDPOINT_JSON
                     " ORDER BY e.created_at, e.id), '[]'))::text"
                     " FROM webhook_endpoints e WHERE " OWNED_BY("1"),
                     &p, "webhook");
}

void webhooks_api_get(api_env *env, http_request *req, api_call *call, http_phase phase)
{
    (void)phase;
    pg_params p = {0};
    if (!endpoint_params(req, call, &p))
        return;
    api_answer_query(env, req, 200,
                     "SELECT " ENDPOINT_JSON "::text FROM webhook_endpoints e"
                     " WHERE e.id = $1::uuid AND " OWNED,
                     &p, "webhook");
}

void webhooks_api_delete(api_env *env, http_request *req, api_call *call, http_phase phase)
{
    (void)phase;
    pg_params p = {0};
    if (!endpoint_params(req, call, &p))
        return;
    api_answer_query(env, req, 204,
                     "DELETE FROM webhook_endpoints e WHERE e.id = $1::uuid AND " OWNED
                     " RETURNING e.id::text",
                     &p, "webhook");
}

void webhooks_api_enable(api_env *env, http_request *req, api_call *call, http_phase phase)
{
    (void)phase;
    pg_params p = {0};
    if (!endpoint_params(req, call, &p))
        return;
    api_answer_query(env, req, 200,
                     "UPDATE webhook_endpoints e SET enabled = true, disabled_at = NULL,"
                     " disabled_reason = NULL, consecutive_failures = 0, failing_since = NULL"
                     " WHERE e.id = $1::uuid AND " OWNED " RETURNING " ENDPOINT_JSON "::text",
                     &p, "webhook");
}

void webhooks_api_attempts(api_env *env, http_request *req, api_call *call, http_phase phase)
{
    (void)phase;
    pg_params p = {0};
    long limit, before;
    if ((limit = api_query_long(req, "limit", PAGE_DEFAULT, PAGE_MAX)) < 0 ||
        (before = api_query_long(req, "before", 0, INT64_MAX)) < 0 ||
        !endpoint_params(req, call, &p)) {
        pg_params_free(&p);
        return;
    }
    pg_params_int(&p, limit);
    if (before > 0)
        pg_params_int(&p, before);
    else
        pg_params_text(&p, NULL);
    /* next_before: the id to pass as ?before= for the page after this one. */
    api_answer_query(
        env, req, 200,
        "SELECT CASE WHEN NOT EXISTS (SELECT 1 FROM webhook_endpoints e"
        "                              WHERE e.id = $1::uuid AND " OWNED ") THEN NULL"
        " ELSE json_build_object('attempts', coalesce(json_agg(json_build_object("
        "     'id', a.id, 'call_id', a.call_id, 'type', a.type, 'attempt', a.attempt,"
        "     'http_status', a.http_status, 'latency_ms', a.latency_ms,"
        "     'outcome', a.outcome, 'error', a.error, 'at', a.at) ORDER BY a.id DESC), '[]'),"
        "   'next_before', CASE WHEN count(*) = $3::int THEN min(a.id) END)::text END"
        " FROM (SELECT * FROM webhook_attempts WHERE endpoint_id = $1::uuid"
        "       AND ($4::bigint IS NULL OR id < $4::bigint) ORDER BY id DESC LIMIT $3::int) a",
        &p, "webhook");
}

void webhooks_api_replay(api_env *env, http_request *req, api_call *call, http_phase phase)
{
    (void)phase;
    json_t *body = NULL;
    pg_params p = {0};
    char err[160];
    int64_t from_ms, to_ms;
    if (api_body_object(req, &body) != 0)
        goto out;
    const char *from = json_string_value(json_object_get(body, "from"));
    const char *to = json_string_value(json_object_get(body, "to"));
    if (from == NULL || timeutil_parse_rfc3339(from, &from_ms, err, sizeof err) != 0) {
        api_bad_field(req, "from", "from must be an RFC 3339 time");
        goto out;
    }
    if (to == NULL || timeutil_parse_rfc3339(to, &to_ms, err, sizeof err) != 0 ||
        to_ms <= from_ms) {
        api_bad_field(req, "to", "to must be an RFC 3339 time after from");
        goto out;
    }
    if (!endpoint_params(req, call, &p))
        goto out;
    pg_params_text(&p, from);
    pg_params_text(&p, to);
    api_answer_query(
        env, req, 202,
        "WITH r AS (INSERT INTO webhook_replays (endpoint_id, from_at, to_at)"
        "           SELECT e.id, $3::timestamptz, $4::timestamptz FROM webhook_endpoints e"
        "           WHERE e.id = $1::uuid AND " OWNED " RETURNING *)"
        " SELECT json_build_object('replay_id', r.id, 'webhook_id', r.endpoint_id,"
        "     'from', r.from_at, 'to', r.to_at, 'requested_at', r.requested_at)::text FROM r",
        &p, "webhook");
out:
    json_decref(body);
}
