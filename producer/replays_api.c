/*
 * replays_api: see replays_api.h.  The runs' rows are shown as PostgreSQL
 * builds them.
 */
#include "replays_api.h"

#include "event.h"
#include "ids.h"
#include "log.h"
#include "replays.h"
#include "timeutil.h"
#include "validate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PAGE_DEFAULT 20
#define PAGE_MAX     200

#define RUN_JSON                                                                                   \
    "json_build_object('replay_id', r.replay_id, 'state', r.state, 'scanned', r.scanned,"          \
    " 'matched', r.matched, 'published', r.published, 'failed', r.failed,"                         \
    " 'from', " STORE_SQL_RFC3339("r.from_at") ", 'to', " STORE_SQL_RFC3339(                       \
        "r.to_at") ", 'user_id', r.user_id, 'type', r.event_type, 'redeliver', r.redeliver,"       \
                   " 'started_at', " STORE_SQL_RFC3339("r.started_at") ", "                        \
                                                                       "'finished_at',"            \
                                                                       " " STORE_SQL_RFC3339(      \
                                                                           "r.finished_at") ","    \
                                                                                            " '"   \
                                                                                            "erro" \
                                                                                            "r', " \
                                                                                            "r."   \
                                                                                            "erro" \
                                                                                            "r)"

/* What the body asks for. */
typedef struct replay_body {
    replays_request req;
    bool dry_run;
} replay_body;

/* A time member (RFC 3339 or relative, as heraldctl's TIME); absent leaves *ms.  -1 answered. */
static int time_member(http_request *req, json_t *o, const char *name, int64_t now, int64_t *ms)
{
    char why[160], msg[220];
    json_t *v = json_object_get(o, name);
    if (v == NULL)
        return 0;
    if (!json_is_string(v) ||
        timeutil_parse_time(json_string_value(v), now, ms, why, sizeof why) != 0) {
        snprintf(msg, sizeof msg, "%s must be an RFC 3339 time or -15m, -2h, -7d%s%s", name,
                 json_is_string(v) ? ": " : "", json_is_string(v) ? why : "");
        api_bad_field(req, name, msg);
        return -1;
    }
    return 0;
}

/* A boolean member, false when absent; -1 answered. */
static int bool_member(http_request *req, json_t *o, const char *name, bool *out)
{
    json_t *v = json_object_get(o, name);
    *out = json_is_true(v);
    if (v != NULL && !json_is_boolean(v)) {
        char msg[96];
        snprintf(msg, sizeof msg, "%s must be true or false", name);
        api_bad_field(req, name, msg);
        return -1;
    }
    return 0;
}

/* The body into *b (strings borrowed from o); -1 answered 400. */
static int parse_body(http_request *req, json_t *o, replay_body *b)
{
    static const char *const known[] = {"from", "to", "user_id", "type", "redeliver", "dry_run"};
    char why[160];
    const char *key;
    json_t *v;
    json_object_foreach(o, key, v)
    {
        size_t i = 0;
        while (i < sizeof known / sizeof known[0] && strcmp(known[i], key) != 0)
            i++;
        if (i == sizeof known / sizeof known[0]) {
            api_bad_field(req, key, "unknown field");
            return -1;
        }
    }
    int64_t now = timeutil_now_ms();
    b->req.filter.from_ms = -1;
    b->req.filter.to_ms = now; /* the window's end is fixed now */
    if (json_object_get(o, "from") == NULL) {
        api_bad_field(req, "from", "from is required");
        return -1;
    }
    if (time_member(req, o, "from", now, &b->req.filter.from_ms) != 0 ||
        time_member(req, o, "to", now, &b->req.filter.to_ms) != 0 ||
        bool_member(req, o, "redeliver", &b->req.redeliver) != 0 ||
        bool_member(req, o, "dry_run", &b->dry_run) != 0)
        return -1;
    if (b->req.filter.to_ms <= b->req.filter.from_ms) {
        api_bad_field(req, "to", "to must be later than from");
        return -1;
    }
    v = json_object_get(o, "user_id");
    if (v != NULL &&
        (!json_is_string(v) ||
         validate_user_id(json_string_value(v), json_string_length(v), why, sizeof why) != 0)) {
        api_bad_field(req, "user_id", "user_id must be a user id");
        return -1;
    }
    b->req.filter.user = json_string_value(v);
    v = json_object_get(o, "type");
    if (v != NULL &&
        (!json_is_string(v) || validate_name(json_string_value(v), json_string_length(v),
                                             EVENT_TYPE_MAX, why, sizeof why) != 0)) {
        api_bad_field(req, "type", "type must be an event type");
        return -1;
    }
    b->req.filter.type = json_string_value(v);
    return 0;
}

/* Answers a dry run: how many events the window covers. */
static void count_window(api_env *env, http_request *req, const replay_body *b)
{
    char err[512];
    int64_t events = 0;
    replayrun_result res = replays_count(env->replays, &b->req, &events, err, sizeof err);
    if (res != REPLAYRUN_OK) {
        LOG_WARN(http_request_id(req), "replay dry run: %s", err);
        http_respond_retry(req, 503, "broker_unavailable", err, 1);
        return;
    }
    http_respond_json(req, 200, json_pack("{s:I}", "events", (json_int_t)events));
}

/* Runs sql on the pool's connection; false after answering 503. */
static bool run_sql(api_env *env, http_request *req, const char *sql, pg_params *p)
{
    char err[256];
    PGresult *res = NULL;
    pg_conn *c = api_db(env, req);
    if (c == NULL) {
        pg_params_free(p);
        return false;
    }
    pg_status st = pg_query_params(c, sql, p, &res, err, sizeof err);
    pgpool_release(env->pool, c);
    PQclear(res);
    pg_params_free(p);
    if (st != PG_OK) {
        LOG_WARN(http_request_id(req), "replay: %s", err);
        http_respond_retry(req, 503, "database_unavailable", "the database is not reachable", 1);
        return false;
    }
    return true;
}

/* Records the run, then starts it; answers 202, or why not. */
static void start_run(api_env *env, http_request *req, api_call *call, const replay_body *b)
{
    static const char insert_sql[] =
        "INSERT INTO replay_runs (replay_id, from_at, to_at, user_id, event_type, redeliver,"
        " api_key_id) VALUES ($1::uuid, to_timestamp($2::bigint / 1000.0),"
        " to_timestamp($3::bigint / 1000.0), $4, $5, $6::boolean, nullif($7::bigint, 0))";
    static const char delete_sql[] = "DELETE FROM replay_runs WHERE replay_id = $1::uuid";
    char id[ID_UUID_SIZE], err[256];
    pg_params p = {0};
    if (id_uuid_v4(id) != 0) {
        http_respond_error(req, 500, "internal", "no randomness for an id", NULL);
        return;
    }
    pg_params_text(&p, id);
    pg_params_int(&p, b->req.filter.from_ms);
    pg_params_int(&p, b->req.filter.to_ms);
    pg_params_text(&p, b->req.filter.user);
    pg_params_text(&p, b->req.filter.type);
    pg_params_text(&p, b->req.redeliver ? "true" : "false");
    pg_params_int(&p, call->key_id);
    if (!run_sql(env, req, insert_sql, &p))
        return;
    replays_status st = replays_start(env->replays, id, &b->req, err, sizeof err);
    if (st != REPLAYS_STARTED) {
        pg_params q = {0};
        pg_params_text(&q, id);
        if (!run_sql(env, req, delete_sql, &q))
            return;
        if (st == REPLAYS_BUSY)
            http_respond_retry(req, 429, "too_many_replays", err, 5);
        else
            http_respond_error(req, 500, "internal", err, NULL);
        return;
    }
    LOG_INFO(id, "replay started");
    http_respond_json(req, 202, json_pack("{s:s,s:s}", "replay_id", id, "state", "running"));
}

void replays_api_start(api_env *env, http_request *req, api_call *call, http_phase phase)
{
    (void)phase;
    json_t *o = NULL;
    replay_body b = {0};
    if (api_body_object(req, &o) != 0)
        return;
    if (parse_body(req, o, &b) == 0) {
        if (b.dry_run)
            count_window(env, req, &b);
        else
            start_run(env, req, call, &b);
    }
    json_decref(o);
}

void replays_api_get(api_env *env, http_request *req, api_call *call, http_phase phase)
{
    (void)phase;
    pg_params p = {0};
    const char *id = router_param(&call->params, "replay_id");
    if (id == NULL || !id_is_uuid(id)) {
        api_bad_field(req, "replay_id", "replay_id must be a UUID");
        return;
    }
    pg_params_text(&p, id);
    api_answer_query(env, req, 200,
                     "SELECT " RUN_JSON " FROM replay_runs r WHERE r.replay_id = $1::uuid", &p,
                     "replay");
}

void replays_api_list(api_env *env, http_request *req, api_call *call, http_phase phase)
{
    (void)call;
    (void)phase;
    pg_params p = {0};
    long limit = api_query_long(req, "limit", PAGE_DEFAULT, PAGE_MAX);
    if (limit < 0)
        return;
    pg_params_int(&p, limit);
    api_answer_query(env, req, 200,
                     "SELECT json_build_object('replays', coalesce(json_agg(" RUN_JSON
                     " ORDER BY r.started_at DESC), '[]'::json)) FROM (SELECT * FROM replay_runs"
                     " ORDER BY started_at DESC LIMIT $1) r",
                     &p, "replay");
}
