/*
 * followup: see followup.h.
 */
#include "followup.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "digest.h"
#include "error.h"

static const char plan_sql[] =
    "INSERT INTO followups (event_id, rule_name, channel, user_id, kafka_partition, due_at, "
    "                       status, event) "
    "SELECT x.event_id, x.rule, x.channel, x.user_id, x.part, "
    "       to_timestamp(x.due / 1000.0), 'pending', x.event "
    "FROM jsonb_to_recordset($1::jsonb) "
    "     AS x(event_id uuid, rule text, channel text, user_id text, part integer, due bigint, "
    "          event jsonb) "
    "ON CONFLICT (event_id, rule_name) DO NOTHING";

/*
 * The due follow-ups of the partitions, taken (running) with the read state
 * of the event's in-app message; SKIP LOCKED as for digests.
 */
static const char take_sql[] =
    "WITH due AS (SELECT event_id, rule_name FROM followups "
    "             WHERE status IN ('pending', 'running') AND kafka_partition = ANY($1::int[]) "
    "               AND due_at <= to_timestamp($2::bigint / 1000.0) "
    "             ORDER BY due_at LIMIT $3 FOR UPDATE SKIP LOCKED), "
    "t AS (UPDATE followups f SET status = 'running' FROM due "
    "      WHERE f.event_id = due.event_id AND f.rule_name = due.rule_name RETURNING f.*) "
    "SELECT t.event_id, t.rule_name, t.channel, t.user_id, t.event::text, "
    "       (SELECT CASE WHEN bool_or(m.read_at IS NOT NULL) THEN 'read' "
    "                    WHEN bool_or(m.archived_at IS NOT NULL) THEN 'archived' END "
    "        FROM inbox_messages m WHERE m.user_id = t.user_id AND m.event_id = t.event_id) "
    "FROM t ORDER BY t.due_at";

static const char held_sql[] =
    "UPDATE deliveries d "
    "SET status = CASE WHEN d.idempotency_key = ANY(x.keys) THEN 'pending' ELSE 'skipped' END, "
    "    skip_reason = CASE WHEN d.idempotency_key = ANY(x.keys) THEN NULL ELSE x.reason END, "
    "    not_before = NULL, updated_at = now() "
    "FROM jsonb_to_recordset($1::jsonb) AS x(event_id uuid, channel text, keys text[], "
    "                                         reason text) "
    "WHERE d.event_id = x.event_id AND d.channel = x.channel AND d.status = 'scheduled' "
    "  AND d.skip_reason = 'followup'";

static const char done_sql[] =
    "UPDATE followups f SET status = x.status, reason = x.reason, decided_at = now() "
    "FROM jsonb_to_recordset($1::jsonb) AS x(event_id uuid, rule text, status text, reason text) "
    "WHERE f.event_id = x.event_id AND f.rule_name = x.rule AND f.status = 'running'";

static const char next_sql[] =
    "SELECT (extract(epoch FROM min(due_at)) * 1000)::bigint FROM followups "
    "WHERE status IN ('pending', 'running') AND kafka_partition = ANY($1::int[])";

/* Runs sql over rows (stolen) as $1, for a statement without an answer. */
static pg_status exec_rows(pg_conn *db, const char *sql, json_t *rows, char *err, size_t errlen)
{
    PGresult *res = NULL;
    pg_status st = digest_rows_query(db, sql, -1, rows, &res, err, errlen);
    PQclear(res);
    return st;
}

pg_status followup_plan(pg_conn *db, const followup_cand *c, size_t n, int64_t now_ms, char *err,
                        size_t errlen)
{
    if (n == 0)
        return PG_OK;
    json_t *rows = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *ev = event_to_json(c[i].ev);
        digest_rows_push(
            &rows, ev == NULL ? NULL
                              : json_pack("{s:s, s:s, s:s, s:s, s:i, s:I, s:o}", "event_id",
                                          c[i].ev->event_id, "rule", c[i].rule->name, "channel",
                                          delivery_channel_name(c[i].rule->channel), "user_id",
                                          c[i].ev->user_id, "part", (int)c[i].partition, "due",
                                          (json_int_t)(now_ms + c[i].rule->delay_ms), "event", ev));
    }
    return exec_rows(db, plan_sql, rows, err, errlen);
}

pg_status followup_take_due(pg_conn *db, const int32_t *parts, size_t nparts, int64_t now_ms,
                            int limit, followup_due_list *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (nparts == 0)
        return PG_OK;
    PGresult *res = NULL;
    pg_status st = digest_take(db, take_sql, parts, nparts, now_ms, limit, &res, err, errlen);
    if (st != PG_OK)
        return st;
    int rows = PQntuples(res);
    if (rows > 0 && (out->f = calloc((size_t)rows, sizeof(*out->f))) == NULL)
        goto oom;
    for (int r = 0; r < rows; r++) {
        followup_due *f = &out->f[out->n++];
        snprintf(f->event_id, sizeof f->event_id, "%s", PQgetvalue(res, r, 0));
        f->rule = strdup(PQgetvalue(res, r, 1));
        f->user_id = strdup(PQgetvalue(res, r, 3));
        f->event_json = strdup(PQgetvalue(res, r, 4));
        if (f->rule == NULL || f->user_id == NULL || f->event_json == NULL)
            goto oom;
        if (delivery_channel_parse(PQgetvalue(res, r, 2), &f->channel) != 0)
            f->channel = DELIVERY_EMAIL;
        const char *read = PQgetisnull(res, r, 5) ? "" : PQgetvalue(res, r, 5);
        f->read = strcmp(read, "read") == 0       ? "read"
                  : strcmp(read, "archived") == 0 ? "archived"
                                                  : NULL;
    }
    PQclear(res);
    return PG_OK;
oom:
    PQclear(res);
    followup_due_list_free(out);
    error_set(err, errlen, "follow-up: out of memory");
    return PG_ERROR;
}

void followup_due_list_free(followup_due_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->f[i].rule);
        free(l->f[i].user_id);
        free(l->f[i].event_json);
    }
    free(l->f);
    memset(l, 0, sizeof *l);
}

/* The reason held rows get when they were not produced. */
static const char *held_reason(const followup_outcome *o, char *out, size_t len)
{
    if (strcmp(o->status, "cancelled") == 0) {
        snprintf(out, len, "followup_%s", o->reason != NULL ? o->reason : "read");
        return out;
    }
    if (strcmp(o->status, "skipped") == 0)
        return o->reason != NULL ? o->reason : "followup_skipped";
    return "followup_readdressed";
}

pg_status followup_resolve_held(pg_conn *db, const followup_due_list *l, const followup_outcome *o,
                                char *err, size_t errlen)
{
    if (l->n == 0)
        return PG_OK;
    json_t *rows = json_array();
    for (size_t i = 0; i < l->n; i++) {
        char why[64];
        json_t *keys = o[i].keys != NULL ? json_incref(o[i].keys) : json_array();
        digest_rows_push(&rows, json_pack("{s:s, s:s, s:o, s:s}", "event_id", l->f[i].event_id,
                                          "channel", delivery_channel_name(l->f[i].channel), "keys",
                                          keys, "reason", held_reason(&o[i], why, sizeof why)));
    }
    return exec_rows(db, held_sql, rows, err, errlen);
}

pg_status followup_done(pg_conn *db, const followup_due_list *l, const followup_outcome *o,
                        char *err, size_t errlen)
{
    if (l->n == 0)
        return PG_OK;
    json_t *rows = json_array();
    for (size_t i = 0; i < l->n; i++)
        digest_rows_push(&rows,
                         json_pack("{s:s, s:s, s:s, s:s?}", "event_id", l->f[i].event_id, "rule",
                                   l->f[i].rule, "status", o[i].status, "reason", o[i].reason));
    return exec_rows(db, done_sql, rows, err, errlen);
}

pg_status followup_next_due(pg_conn *db, const int32_t *parts, size_t nparts, int64_t *out_ms,
                            char *err, size_t errlen)
{
    return digest_earliest(db, next_sql, parts, nparts, out_ms, err, errlen);
}
