/*
 * digest: see digest.h.
 */
#include "digest.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "timeutil.h"

#define MS_PER_DAY INT64_C(86400000)

static const char add_sql[] =
    "SELECT ord, window_id, role, (extract(epoch FROM closes_at) * 1000)::bigint "
    "FROM herald_digest_add(to_timestamp($1::bigint / 1000.0), $2::jsonb)";

static const char throttle_sql[] =
    "SELECT ord, outcome, (extract(epoch FROM at) * 1000)::bigint "
    "FROM herald_throttle_check(to_timestamp($1::bigint / 1000.0), $2::jsonb)";

/*
 * The due windows of the partitions, taken: status closing, after which no
 * event joins them.  SKIP LOCKED: a window another dispatcher is adding to
 * or closing right now is left for the next pass.
 */
static const char take_sql[] =
    "WITH due AS (SELECT window_id FROM digest_windows "
    "             WHERE status IN ('open', 'closing') AND kafka_partition = ANY($1::int[]) "
    "               AND closes_at <= to_timestamp($2::bigint / 1000.0) "
    "             ORDER BY closes_at LIMIT $3 FOR UPDATE SKIP LOCKED) "
    "UPDATE digest_windows w SET status = 'closing', "
    "       closed_at = coalesce(w.closed_at, to_timestamp($2::bigint / 1000.0)) "
    "FROM due WHERE w.window_id = due.window_id RETURNING w.window_id";

/*
 * The taken windows' contents, read by a statement of its own once the take
 * has committed, so that its snapshot holds every event that joined them:
 * each window's rule's events_shown first and last members (10 when the
 * rule is gone) and its actors.
 */
static const char summary_sql[] =
    "SELECT t.window_id, t.rule_name, t.channel, t.user_id, t.group_key, "
    "       (extract(epoch FROM t.opened_at) * 1000)::bigint, "
    "       (extract(epoch FROM t.closed_at) * 1000)::bigint, "
    "       (SELECT count(*) FROM digest_events e "
    "        WHERE e.window_id = t.window_id AND e.role = 'member'), "
    "       json_build_object("
    "         'count', (SELECT count(*) FROM digest_events e "
    "                   WHERE e.window_id = t.window_id AND e.role = 'member'), "
    "         'events', (SELECT coalesce(json_agg(x.item ORDER BY x.seq), '[]') "
    "                    FROM (SELECT e.item, e.seq, row_number() OVER (ORDER BY e.seq) AS rn "
    "                          FROM digest_events e "
    "                          WHERE e.window_id = t.window_id AND e.role = 'member') x "
    "                    WHERE x.rn <= k.n), "
    "         'last_events', (SELECT coalesce(json_agg(x.item ORDER BY x.seq DESC), '[]') "
    "                    FROM (SELECT e.item, e.seq, "
    "                                 row_number() OVER (ORDER BY e.seq DESC) AS rn "
    "                          FROM digest_events e "
    "                          WHERE e.window_id = t.window_id AND e.role = 'member') x "
    "                    WHERE x.rn <= k.n), "
    "         'actors', (SELECT coalesce(json_agg(a.actor ORDER BY a.s), '[]') "
    "                    FROM (SELECT e.actor, min(e.seq) AS s FROM digest_events e "
    "                          WHERE e.window_id = t.window_id AND e.role = 'member' "
    "                            AND e.actor IS NOT NULL "
    "                          GROUP BY e.actor ORDER BY min(e.seq) LIMIT 100) a), "
    "         'actor_count', (SELECT count(DISTINCT e.actor) FROM digest_events e "
    "                         WHERE e.window_id = t.window_id AND e.role = 'member'))::text "
    "FROM digest_windows t "
    "CROSS JOIN LATERAL (SELECT coalesce((SELECT r.events_shown FROM digest_rules r "
    "                                     WHERE r.name = t.rule_name), 10) AS n) k "
    "WHERE t.window_id IN (SELECT (jsonb_array_elements_text($1::jsonb))::uuid) "
    "  AND t.status = 'closing' "
    "ORDER BY t.closes_at";

static const char done_sql[] =
    "UPDATE digest_windows SET status = CASE WHEN members > 0 THEN 'sent' ELSE 'empty' END, "
    "       sent_at = CASE WHEN members > 0 THEN now() END "
    "WHERE window_id IN (SELECT (jsonb_array_elements_text($1::jsonb))::uuid) "
    "  AND status = 'closing'";

/*
 * What no decision needs any more, at most $2 rows of each table per call:
 * windows (with their events) and follow-ups finished more than $1 ms ago,
 * and throttle counts that left their rule's window more than $1 ms ago (a
 * count without its rule went with it).
 */
static const char purge_sql[] =
    "WITH w AS (DELETE FROM digest_windows WHERE window_id IN ("
    "             SELECT window_id FROM digest_windows WHERE status IN ('sent', 'empty') "
    "               AND closed_at < now() - $1::bigint * interval '1 millisecond' LIMIT $2) "
    "           RETURNING 1), "
    "f AS (DELETE FROM followups WHERE (event_id, rule_name) IN ("
    "        SELECT event_id, rule_name FROM followups "
    "        WHERE status IN ('sent', 'skipped', 'cancelled') "
    "          AND decided_at < now() - $1::bigint * interval '1 millisecond' LIMIT $2) "
    "      RETURNING 1), "
    "t AS (DELETE FROM throttle_sends WHERE (rule_name, channel, event_id) IN ("
    "        SELECT s.rule_name, s.channel, s.event_id FROM throttle_sends s "
    "        JOIN throttle_rules r ON r.name = s.rule_name "
    "        WHERE s.at < now() - (r.window_ms + $1::bigint) * interval '1 millisecond' "
    "        LIMIT $2) "
    "      RETURNING 1) "
    "SELECT (SELECT count(*) FROM w) + (SELECT count(*) FROM f) + (SELECT count(*) FROM t)";

static const char next_sql[] =
    "SELECT (extract(epoch FROM min(closes_at)) * 1000)::bigint FROM digest_windows "
    "WHERE status IN ('open', 'closing') AND kafka_partition = ANY($1::int[])";

/* ----------------------------------------------------------------- pure */

int64_t digest_next_local(const tz_zone *zone, int64_t now_ms, int seconds_of_day)
{
    if (zone == NULL)
        zone = tz_utc();
    int64_t now_s = now_ms >= 0 ? now_ms / 1000 : -((-now_ms + 999) / 1000);
    tz_local today;
    if (tz_to_local(zone, now_s, &today) != 0)
        return -1;
    int64_t day0 = timeutil_days_from_civil(today.year, today.month, today.day);
    for (int k = 0; k < 3; k++) {
        tz_local t = {0};
        int64_t year;
        timeutil_civil_from_days(day0 + k, &year, &t.month, &t.day);
        t.year = (int)year;
        t.hour = seconds_of_day / 3600;
        t.minute = seconds_of_day / 60 % 60;
        t.second = seconds_of_day % 60;
        int64_t at;
        if (tz_from_local(zone, &t, &at) != 0)
            return -1;
        if (at * 1000 > now_ms)
            return at * 1000;
    }
    return -1;
}

int digest_plan_window(const digest_rule *r, const tz_zone *zone, int64_t now_ms, digest_plan *out)
{
    memset(out, 0, sizeof *out);
    switch (r->kind) {
    case DIGEST_FIXED:
        out->closes_ms = out->deadline_ms = now_ms + r->window_ms;
        return 0;
    case DIGEST_SLIDING:
        out->closes_ms = now_ms + r->window_ms;
        out->deadline_ms = now_ms + r->max_window_ms;
        out->slide_ms = r->window_ms;
        return 0;
    case DIGEST_SCHEDULED:
        out->closes_ms = digest_next_local(zone, now_ms, r->schedule_s);
        if (out->closes_ms < 0) /* a zone that cannot say: a day from now */
            out->closes_ms = now_ms + MS_PER_DAY;
        out->deadline_ms = out->closes_ms;
        return 0;
    }
    return -1;
}

void digest_group_key(const char *group_by, const json_t *data, char out[DIGEST_KEY_MAX + 1])
{
    out[0] = '\0';
    if (group_by == NULL || strncmp(group_by, "data.", 5) != 0)
        return;
    const json_t *v = data;
    const char *p = group_by + 5;
    while (v != NULL && *p != '\0') {
        const char *dot = strchr(p, '.');
        size_t len = dot != NULL ? (size_t)(dot - p) : strlen(p);
        char seg[129];
        if (len == 0 || len >= sizeof seg)
            return;
        memcpy(seg, p, len);
        seg[len] = '\0';
        v = json_is_object(v) ? json_object_get(v, seg) : NULL;
        p += len + (dot != NULL);
    }
    char num[64];
    const char *s = NULL;
    if (json_is_string(v))
        s = json_string_value(v);
    else if (json_is_integer(v))
        snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(v)), s = num;
    else if (json_is_real(v))
        snprintf(num, sizeof num, "%.17g", json_real_value(v)), s = num;
    else if (json_is_boolean(v))
        s = json_is_true(v) ? "true" : "false";
    if (s == NULL)
        return;
    size_t n = strlen(s);
    if (n > DIGEST_KEY_MAX) {
        n = DIGEST_KEY_MAX;
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
            n--;
    }
    memcpy(out, s, n);
    out[n] = '\0';
}

void digest_window_id(const char *rule, delivery_channel ch, const char *event_id,
                      char out[ID_UUID_SIZE])
{
    char name[512];
    int n =
        snprintf(name, sizeof name, "digest|%s|%s|%s", rule, delivery_channel_name(ch), event_id);
    if (n < 0 || (size_t)n >= sizeof name)
        n = (int)sizeof name - 1;
    if (id_uuid_v5(ID_NAMESPACE_HERALD, name, (size_t)n, out) != 0)
        out[0] = '\0';
}

json_t *digest_item(const event *ev)
{
    char at[TIMEUTIL_RFC3339_SIZE];
    timeutil_format_rfc3339(ev->created_at, at, sizeof at);
    json_t *data = ev->data != NULL ? json_incref(ev->data) : json_object();
    return json_pack("{s:s, s:s, s:s, s:o}", "event_id", ev->event_id, "type", ev->type,
                     "created_at", at, "data", data);
}

static size_t json_size(const json_t *j)
{
    return json_dumpb(j, NULL, 0, JSON_COMPACT);
}

int digest_fit(json_t *data, size_t max)
{
    json_t *lists[3] = {json_object_get(data, "events"), json_object_get(data, "last_events"),
                        json_object_get(data, "actors")};
    for (int guard = 0; guard < 1000 && json_size(data) > max; guard++) {
        /* Shorten the longest list by a quarter (at least one). */
        json_t *longest = NULL;
        for (int k = 0; k < 3; k++)
            if (json_is_array(lists[k]) &&
                (longest == NULL || json_array_size(lists[k]) > json_array_size(longest)))
                longest = lists[k];
        size_t n = longest != NULL ? json_array_size(longest) : 0;
        if (n == 0)
            return -1;
        size_t drop = n / 4 > 0 ? n / 4 : 1;
        for (size_t i = 0; i < drop; i++)
            if (json_array_remove(longest, json_array_size(longest) - 1) != 0)
                return -1;
    }
    return json_size(data) <= max ? 0 : -1;
}

/* ------------------------------------------------------------------ I/O */

void digest_rows_push(json_t **rows, json_t *row)
{
    if (*rows == NULL) {
        json_decref(row);
    } else if (json_array_append_new(*rows, row) != 0) { /* row is released */
        json_decref(*rows);
        *rows = NULL;
    }
}

pg_status digest_rows_query(pg_conn *db, const char *sql, int64_t now_ms, json_t *rows,
                            PGresult **res, char *err, size_t errlen)
{
    pg_params p = {0};
    if (now_ms >= 0)
        pg_params_int(&p, now_ms);
    pg_params_own(&p, rows != NULL ? json_dumps(rows, JSON_COMPACT) : NULL);
    json_decref(rows);
    pg_status st = pg_query_params(db, sql, &p, res, err, errlen);
    pg_params_free(&p);
    return st;
}

pg_status digest_take(pg_conn *db, const char *sql, const int32_t *parts, size_t nparts,
                      int64_t now_ms, int limit, PGresult **res, char *err, size_t errlen)
{
    pg_params p = {0};
    pg_params_int_array(&p, parts, nparts);
    pg_params_int(&p, now_ms);
    pg_params_int(&p, limit);
    pg_status st = pg_query_params(db, sql, &p, res, err, errlen);
    pg_params_free(&p);
    return st;
}

pg_status digest_earliest(pg_conn *db, const char *sql, const int32_t *parts, size_t nparts,
                          int64_t *out_ms, char *err, size_t errlen)
{
    *out_ms = INT64_MAX;
    if (nparts == 0)
        return PG_OK;
    pg_params p = {0};
    pg_params_int_array(&p, parts, nparts);
    PGresult *res = NULL;
    pg_status st = pg_query_params(db, sql, &p, &res, err, errlen);
    pg_params_free(&p);
    if (st != PG_OK)
        return st;
    if (PQntuples(res) == 1 && !PQgetisnull(res, 0, 0))
        *out_ms = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return PG_OK;
}

/* The 1-based ord of row r, or 0 when it is not one of n. */
static size_t ord_of(const PGresult *res, int r, size_t n)
{
    long ord = strtol(PQgetvalue(res, r, 0), NULL, 10);
    return ord >= 1 && (size_t)ord <= n ? (size_t)ord : 0;
}

pg_status digest_add(pg_conn *db, digest_cand *c, size_t n, int64_t now_ms, char *err,
                     size_t errlen)
{
    if (n == 0)
        return PG_OK;
    json_t *rows = json_array();
    for (size_t i = 0; i < n; i++) {
        digest_plan plan;
        char key[DIGEST_KEY_MAX + 1], wid[ID_UUID_SIZE];
        if (digest_plan_window(c[i].rule, c[i].zone, now_ms, &plan) != 0)
            plan.closes_ms = plan.deadline_ms = now_ms;
        digest_group_key(c[i].rule->group_by, c[i].ev->data, key);
        digest_window_id(c[i].rule->name, c[i].channel, c[i].ev->event_id, wid);
        const json_t *actor = json_object_get(c[i].ev->data, "actor");
        json_t *item = digest_item(c[i].ev);
        digest_rows_push(
            &rows,
            item == NULL
                ? NULL
                : json_pack("{s:s, s:s, s:s, s:s, s:i, s:s, s:s, s:I, s:I, s:I, s:i, s:b, s:O, "
                            "s:o}",
                            "rule", c[i].rule->name, "channel", delivery_channel_name(c[i].channel),
                            "user", c[i].ev->user_id, "key", key, "partition", (int)c[i].partition,
                            "event", c[i].ev->event_id, "new_id", wid, "closes",
                            (json_int_t)plan.closes_ms, "deadline", (json_int_t)plan.deadline_ms,
                            "slide_ms", (json_int_t)plan.slide_ms, "max_events",
                            c[i].rule->max_events, "first", c[i].rule->send_first, "actor",
                            actor != NULL ? (json_t *)actor : json_null(), "item", item));
    }
    PGresult *res = NULL;
    pg_status st = digest_rows_query(db, add_sql, now_ms, rows, &res, err, errlen);
    if (st != PG_OK)
        return st;
    if ((size_t)PQntuples(res) != n) {
        error_set(err, errlen, "digest: %d answers for %zu events", PQntuples(res), n);
        PQclear(res);
        return PG_ERROR;
    }
    for (int r = 0; r < PQntuples(res); r++) {
        size_t ord = ord_of(res, r, n);
        if (ord == 0)
            continue;
        digest_cand *k = &c[ord - 1];
        snprintf(k->window_id, sizeof k->window_id, "%s", PQgetvalue(res, r, 1));
        k->first = strcmp(PQgetvalue(res, r, 2), "first") == 0;
        k->closes_ms = strtoll(PQgetvalue(res, r, 3), NULL, 10);
    }
    PQclear(res);
    return PG_OK;
}

pg_status throttle_check(pg_conn *db, throttle_cand *c, size_t n, int64_t now_ms, char *err,
                         size_t errlen)
{
    if (n == 0)
        return PG_OK;
    json_t *rows = json_array();
    for (size_t i = 0; i < n; i++)
        digest_rows_push(
            &rows, json_pack("{s:s, s:s, s:s, s:s, s:i, s:I, s:s}", "rule", c[i].rule->name,
                             "channel", delivery_channel_name(c[i].channel), "user",
                             c[i].ev->user_id, "event", c[i].ev->event_id, "max",
                             c[i].rule->max_count, "window_ms", (json_int_t)c[i].rule->window_ms,
                             "action", c[i].rule->defer ? "defer" : "drop"));
    PGresult *res = NULL;
    pg_status st = digest_rows_query(db, throttle_sql, now_ms, rows, &res, err, errlen);
    if (st != PG_OK)
        return st;
    for (int r = 0; r < PQntuples(res); r++) {
        size_t ord = ord_of(res, r, n);
        if (ord == 0)
            continue;
        throttle_cand *k = &c[ord - 1];
        const char *o = PQgetvalue(res, r, 1);
        k->outcome = strcmp(o, "drop") == 0    ? THROTTLE_DROP
                     : strcmp(o, "defer") == 0 ? THROTTLE_DEFER
                                               : THROTTLE_PASS;
        k->at_ms = strtoll(PQgetvalue(res, r, 2), NULL, 10);
    }
    PQclear(res);
    return PG_OK;
}

/* The window ids of a take's result, as a JSON array; NULL when out of memory. */
static json_t *taken_ids(const PGresult *res)
{
    json_t *ids = json_array();
    for (int r = 0; r < PQntuples(res); r++)
        digest_rows_push(&ids, json_string(PQgetvalue(res, r, 0)));
    return ids;
}

pg_status digest_take_due(pg_conn *db, const int32_t *parts, size_t nparts, int64_t now_ms,
                          int limit, digest_due_list *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (nparts == 0)
        return PG_OK;
    PGresult *res = NULL;
    pg_status st = digest_take(db, take_sql, parts, nparts, now_ms, limit, &res, err, errlen);
    if (st != PG_OK)
        return st;
    int taken = PQntuples(res);
    json_t *ids = taken > 0 ? taken_ids(res) : NULL;
    PQclear(res);
    if (taken == 0)
        return PG_OK;
    /*
     * A window taken but not read (a failure here) stays closing: the next
     * pass takes it again.
     */
    if ((st = digest_rows_query(db, summary_sql, -1, ids, &res, err, errlen)) != PG_OK)
        return st;
    int rows = PQntuples(res);
    if (rows > 0 && (out->w = calloc((size_t)rows, sizeof(*out->w))) == NULL)
        goto oom;
    for (int r = 0; r < rows; r++) {
        digest_due *w = &out->w[out->n];
        json_error_t jerr;
        snprintf(w->window_id, sizeof w->window_id, "%s", PQgetvalue(res, r, 0));
        w->rule = strdup(PQgetvalue(res, r, 1));
        w->user_id = strdup(PQgetvalue(res, r, 3));
        w->group_key = strdup(PQgetvalue(res, r, 4));
        w->summary = json_loads(PQgetvalue(res, r, 8), 0, &jerr);
        out->n++;
        if (w->rule == NULL || w->user_id == NULL || w->group_key == NULL || w->summary == NULL)
            goto oom;
        if (delivery_channel_parse(PQgetvalue(res, r, 2), &w->channel) != 0)
            w->channel = DELIVERY_EMAIL;
        w->opened_ms = strtoll(PQgetvalue(res, r, 5), NULL, 10);
        w->closed_ms = strtoll(PQgetvalue(res, r, 6), NULL, 10);
        w->members = (int)strtol(PQgetvalue(res, r, 7), NULL, 10);
    }
    PQclear(res);
    return PG_OK;
oom:
    PQclear(res);
    digest_due_list_free(out);
    error_set(err, errlen, "digest: out of memory");
    return PG_ERROR;
}

void digest_due_list_free(digest_due_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->w[i].rule);
        free(l->w[i].user_id);
        free(l->w[i].group_key);
        json_decref(l->w[i].summary);
    }
    free(l->w);
    memset(l, 0, sizeof *l);
}

pg_status digest_done(pg_conn *db, const digest_due_list *l, char *err, size_t errlen)
{
    if (l->n == 0)
        return PG_OK;
    json_t *ids = json_array();
    for (size_t i = 0; i < l->n; i++)
        digest_rows_push(&ids, json_string(l->w[i].window_id));
    PGresult *res = NULL;
    pg_status st = digest_rows_query(db, done_sql, -1, ids, &res, err, errlen);
    PQclear(res);
    return st;
}

pg_status digest_next_due(pg_conn *db, const int32_t *parts, size_t nparts, int64_t *out_ms,
                          char *err, size_t errlen)
{
    return digest_earliest(db, next_sql, parts, nparts, out_ms, err, errlen);
}

pg_status digest_purge(pg_conn *db, int64_t retention_ms, int limit, long *deleted, char *err,
                       size_t errlen)
{
    pg_params p = {0};
    pg_params_int(&p, retention_ms);
    pg_params_int(&p, limit);
    PGresult *res = NULL;
    *deleted = 0;
    pg_status st = pg_query_params(db, purge_sql, &p, &res, err, errlen);
    pg_params_free(&p);
    if (st == PG_OK && PQntuples(res) == 1)
        *deleted = strtol(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return st;
}
