/*
 * endpoints: see endpoints.h.
 */
#include "endpoints.h"

#include <stdio.h>
#include <string.h>

#include "error.h"

int endpoints_load(pg_conn *db, const char *id, endpoints_info *out, char *err, size_t errlen)
{
    PGresult *res = NULL;
    pg_params p = {0};
    pg_params_text(&p, id);
    pg_status st = pg_query_params(db,
                                   "SELECT url, secret, enabled FROM webhook_endpoints"
                                   " WHERE id = $1::uuid",
                                   &p, &res, err, errlen);
    pg_params_free(&p);
    if (st != PG_OK)
        return -1;
    int found = PQntuples(res) == 1;
    if (found) {
        snprintf(out->url, sizeof out->url, "%s", PQgetvalue(res, 0, 0));
        snprintf(out->secret, sizeof out->secret, "%s", PQgetvalue(res, 0, 1));
        out->enabled = strcmp(PQgetvalue(res, 0, 2), "t") == 0;
    }
    PQclear(res);
    return found;
}

pg_status endpoints_record(pg_conn *db, const endpoints_attempt *a, long disable_after,
                           long disable_min_ms, bool *disabled_now, char *err, size_t errlen)
{
    PGresult *res = NULL;
    pg_params p = {0};
    char status[24];
    *disabled_now = false;
    snprintf(status, sizeof status, "%ld", a->http_status);
    pg_params_text(&p, a->call_id);
    pg_params_text(&p, a->endpoint_id);
    pg_params_text(&p, a->type);
    pg_params_int(&p, a->attempt);
    pg_params_text(&p, a->http_status > 0 ? status : NULL);
    pg_params_int(&p, a->latency_ms);
    pg_params_text(&p, a->outcome);
    pg_params_text(&p, a->error);
    pg_params_int(&p, disable_after);
    pg_params_int(&p, disable_min_ms);
    /* The FROM subquery reads the row as it was before this attempt. */
    pg_status st = pg_query_params(
        db,
        "WITH a AS (INSERT INTO webhook_attempts (call_id, endpoint_id, type, attempt,"
        "               http_status, latency_ms, outcome, error)"
        "           SELECT $1::uuid, $2::uuid, $3, $4::int, $5::int, $6::int, $7, left($8, 1024)"
        "           WHERE EXISTS (SELECT 1 FROM webhook_endpoints WHERE id = $2::uuid))"
        " UPDATE webhook_endpoints e SET"
        "   calls_ok = e.calls_ok + (CASE WHEN $7 = 'ok' THEN 1 ELSE 0 END),"
        "   calls_failed = e.calls_failed + (CASE WHEN $7 = 'ok' THEN 0 ELSE 1 END),"
        "   consecutive_failures = CASE WHEN $7 = 'ok' THEN 0 ELSE e.consecutive_failures + 1 END,"
        "   failing_since = CASE WHEN $7 = 'ok' THEN NULL ELSE coalesce(e.failing_since, now()) "
        "END,"
        "   last_status = $5::int, last_attempt_at = now(),"
        "   enabled = e.enabled AND NOT d.disable,"
        "   disabled_at = CASE WHEN e.enabled AND d.disable THEN now() ELSE e.disabled_at END,"
        "   disabled_reason = CASE WHEN e.enabled AND d.disable"
        "       THEN left(format('%s attempts in a row failed since %s, the last: %s',"
        "                        e.consecutive_failures + 1, e.failing_since, $8), 1024)"
        "       ELSE e.disabled_reason END"
        " FROM (SELECT enabled AS was_enabled,"
        "              $7 <> 'ok' AND consecutive_failures + 1 >= $9::int"
        "              AND now() - coalesce(failing_since, now())"
        "                  >= $10::bigint * interval '1 millisecond' AS disable"
        "       FROM webhook_endpoints WHERE id = $2::uuid) d"
        " WHERE e.id = $2::uuid AND $7 <> 'skipped'"
        " RETURNING d.was_enabled AND d.disable",
        &p, &res, err, errlen);
    pg_params_free(&p);
    if (st == PG_OK && PQntuples(res) == 1)
        *disabled_now = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    PQclear(res);
    return st;
}
