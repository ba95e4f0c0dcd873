/*
 * store: the gateway's SQL.
 *
 * Each write is one statement or one short transaction, idempotent as a
 * whole, so that PG_RETRY (the connection broke and came back) is handled by
 * running it again.  Times are returned as RFC 3339 UTC with milliseconds,
 * the way every Herald timestamp reads.
 */
#include "error.h"
#include "store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TS(col) "to_char((" col ") AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"

typedef struct stmt {
    const char *name;
    const char *sql;
    int nparams;
} stmt;

static const stmt statements[] = {
    {"gw_user_upsert",
     "INSERT INTO users (user_id, email, phone, name, timezone, locale) "
     "VALUES ($1, $2, $3, $4, $5, $6) "
     "ON CONFLICT (user_id) DO UPDATE SET email = EXCLUDED.email, phone = EXCLUDED.phone, "
     "name = EXCLUDED.name, timezone = EXCLUDED.timezone, locale = EXCLUDED.locale, "
     "updated_at = now()",
     6},
    /* Tokens are replaced as a set: keep the ones still listed (their
     * created_at says how old the device is), drop the rest, add the new. */
    {"gw_tokens_prune",
     "DELETE FROM push_tokens WHERE user_id = $1 "
     "AND NOT (token = ANY (ARRAY(SELECT jsonb_array_elements_text($2::jsonb))))",
     2},
    {"gw_tokens_add",
     "INSERT INTO push_tokens (user_id, token) "
     "SELECT $1, t FROM jsonb_array_elements_text($2::jsonb) AS t ON CONFLICT DO NOTHING",
     2},
    {"gw_user_get",
     "SELECT u.user_id, u.email, u.phone, u.name, u.timezone, u.locale, " TS(
         "u.created_at") ", " TS("u.updated_at") ", "
                                                 "COALESCE((SELECT json_agg(t.token ORDER BY "
                                                 "t.created_at, t.token) FROM push_tokens t "
                                                 "WHERE t.user_id = u.user_id), '[]'::json) "
                                                 "FROM users u WHERE u.user_id = $1",
     1},
    {"gw_user_delete", "DELETE FROM users WHERE user_id = $1", 1},
    {"gw_prefs_put",
     "INSERT INTO preferences (user_id, channels, categories, quiet_start, quiet_end) "
     "VALUES ($1, $2::jsonb, $3::jsonb, $4::time, $5::time) "
     "ON CONFLICT (user_id) DO UPDATE SET channels = EXCLUDED.channels, "
     "categories = EXCLUDED.categories, quiet_start = EXCLUDED.quiet_start, "
     "quiet_end = EXCLUDED.quiet_end, updated_at = now()",
     5},
    {"gw_prefs_get",
     "SELECT u.user_id, p.channels, p.categories, to_char(p.quiet_start, 'HH24:MI'), "
     "to_char(p.quiet_end, 'HH24:MI'), " TS(
         "p.updated_at") ", p.user_id IS NOT NULL "
                         "FROM users u LEFT JOIN preferences p ON p.user_id = u.user_id WHERE "
                         "u.user_id = $1",
     1},
    /* One statement: the topic exists exactly when a subscription needs it,
     * and a missing user (foreign key) leaves no topic behind. */
    {"gw_subscribe",
     "WITH t AS (INSERT INTO topics (name) VALUES ($1) ON CONFLICT DO NOTHING) "
     "INSERT INTO topic_subscriptions (topic, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
     2},
    {"gw_unsubscribe",
     "WITH d AS (DELETE FROM topic_subscriptions WHERE topic = $1 AND user_id = $2 RETURNING 1) "
     "SELECT EXISTS (SELECT 1 FROM users WHERE user_id = $2), (SELECT count(*) FROM d)",
     2},
    {"gw_template_put",
     "INSERT INTO templates (event_type, channel, subject, body, category) "
     "VALUES ($1, $2, $3, $4, $5) "
     "ON CONFLICT (event_type, channel) DO UPDATE SET subject = EXCLUDED.subject, "
     "body = EXCLUDED.body, category = EXCLUDED.category, updated_at = now() "
     "RETURNING event_type, channel, subject, body, category, " TS("updated_at"),
     5},
    {"gw_template_get",
     "SELECT event_type, channel, subject, body, category, " TS(
         "updated_at") " FROM templates WHERE event_type = $1 AND channel = $2",
     2},
    {"gw_template_delete", "DELETE FROM templates WHERE event_type = $1 AND channel = $2", 2},
    {"gw_event_get",
     "SELECT event_id, type, user_id, topic, priority, category, " TS("created_at") ", " TS(
         "dispatched_at") " FROM events WHERE event_id = $1::uuid",
     1},
    /* The event's deliveries (a broadcast's: its subscribers' events'),
     * claimed or only planned (migration 010). */
    {"gw_event_deliveries",
     "SELECT channel, status, attempts, last_error, " TS(
         "updated_at") ", user_id, skip_reason FROM delivery_status "
                       "WHERE event_id = $1::uuid OR event_id = ANY (ARRAY("
                       "SELECT e.event_id FROM events e WHERE e.broadcast_id = $1::uuid)) "
                       "ORDER BY created_at, user_id, channel LIMIT 1000",
     1},
    /* A key older than 24 hours is free again: the row is taken over. */
    {"gw_idem_claim",
     "INSERT INTO publish_idempotency (api_key_id, idempotency_key, event_id, request_hash) "
     "VALUES ($1, $2, $3::uuid, $4) "
     "ON CONFLICT (api_key_id, idempotency_key) DO UPDATE SET event_id = EXCLUDED.event_id, "
     "request_hash = EXCLUDED.request_hash, created_at = now(), published_at = NULL, "
     "attempted_at = NULL "
     "WHERE publish_idempotency.created_at < now() - interval '24 hours' "
     "RETURNING event_id",
     4},
    /* Whether the claim is settled (confirmed, or unconfirmed for longer
     * than a publish can take) and whether it was never confirmed: a publish
     * in doubt, or a gateway that died between producing and confirming.
     * The record may or may not be in Kafka; publishing the first event id
     * again is safe either way. */
    {"gw_idem_get",
     "SELECT event_id, published_at IS NOT NULL "
     "OR coalesce(attempted_at, created_at) < now() - $3::bigint * interval '1 millisecond', "
     "published_at IS NULL "
     "FROM publish_idempotency WHERE api_key_id = $1 AND idempotency_key = $2",
     3},
    /* An unconfirmed claim past its in-flight window, claimed again as it
     * is: a new attempt, in flight from now on, within the key's first 24
     * hours (created_at stays). */
    {"gw_idem_retake",
     "UPDATE publish_idempotency SET attempted_at = now() "
     "WHERE api_key_id = $1 AND idempotency_key = $2 AND published_at IS NULL "
     "AND coalesce(attempted_at, created_at) < now() - $3::bigint * interval '1 millisecond' "
     "AND created_at >= now() - interval '24 hours' RETURNING event_id",
     3},
    {"gw_idem_confirm",
     "UPDATE publish_idempotency SET published_at = now() "
     "WHERE api_key_id = $1 AND idempotency_key = $2 AND event_id = $3::uuid",
     3},
    {"gw_idem_release",
     "DELETE FROM publish_idempotency "
     "WHERE api_key_id = $1 AND idempotency_key = $2 AND event_id = $3::uuid",
     3},
    {"gw_ping", "SELECT 1", 0},
};

int store_prepare(pg_conn *c, char *err, size_t errlen)
{
    for (size_t i = 0; i < sizeof statements / sizeof statements[0]; i++) {
        pg_status st = pg_prepare(c, statements[i].name, statements[i].sql, statements[i].nparams,
                                  err, errlen);
        if (st != PG_OK)
            return -1;
    }
    return 0;
}

static store_status classify(pg_conn *c, pg_status st)
{
    switch (st) {
    case PG_OK:
        return STORE_OK;
    case PG_RETRY:
    case PG_DOWN:
        return STORE_UNAVAILABLE;
    case PG_ERROR:
        break;
    }
    const char *state = pg_last_sqlstate(c);
    if (strcmp(state, "23503") == 0)
        return STORE_NOT_FOUND; /* foreign key: the user is not there */
    if (strncmp(state, "22", 2) == 0 || strcmp(state, "23514") == 0 || strcmp(state, "23502") == 0)
        return STORE_INVALID;
    if (strncmp(state, "08", 2) == 0 || strncmp(state, "57P", 3) == 0)
        return STORE_UNAVAILABLE;
    return STORE_ERROR;
}

/*
 * Runs a statement, once more after a reconnect.  Inside a transaction only
 * once: the transaction was lost with the connection, and running the rest
 * of it outside one would commit it piecemeal; the caller gives up instead.
 */
static store_status run(pg_conn *c, const char *name, int n, const char *const *values,
                        const int *lengths, const int *formats, PGresult **out, char *err,
                        size_t errlen)
{
    pg_status st = PG_RETRY;
    int attempts = pg_in_transaction(c) ? 1 : 2;
    for (int attempt = 0; attempt < attempts && st == PG_RETRY; attempt++)
        st = pg_exec_prepared(c, name, n, values, lengths, formats, 0, out, err, errlen);
    return classify(c, st);
}

static json_t *col_str(PGresult *res, int row, int col)
{
    if (PQgetisnull(res, row, col))
        return json_null();
    return json_stringn(PQgetvalue(res, row, col), (size_t)PQgetlength(res, row, col));
}

static json_t *col_json(PGresult *res, int row, int col, json_t *dflt)
{
    if (PQgetisnull(res, row, col))
        return dflt;
    json_t *v = json_loadb(PQgetvalue(res, row, col), (size_t)PQgetlength(res, row, col), 0, NULL);
    if (v == NULL)
        return dflt;
    json_decref(dflt);
    return v;
}

/* A string member of body, or NULL (absent, null). */
static const char *member(const json_t *body, const char *name)
{
    json_t *v = json_object_get(body, name);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

store_status store_user_get(pg_conn *c, const char *user_id, json_t **out, char *err, size_t errlen)
{
    PGresult *res = NULL;
    const char *v[1] = {user_id};
    *out = NULL;
    store_status st = run(c, "gw_user_get", 1, v, NULL, NULL, &res, err, errlen);
    if (st != STORE_OK)
        goto out;
    if (PQntuples(res) != 1) {
        st = STORE_NOT_FOUND;
        goto out;
    }
    *out = json_pack("{s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o}", "user_id", col_str(res, 0, 0),
                     "email", col_str(res, 0, 1), "phone", col_str(res, 0, 2), "name",
                     col_str(res, 0, 3), "timezone", col_str(res, 0, 4), "locale",
                     col_str(res, 0, 5), "push_tokens", col_json(res, 0, 8, json_array()),
                     "created_at", col_str(res, 0, 6), "updated_at", col_str(res, 0, 7));
    if (*out == NULL) {
        error_set(err, errlen, "out of memory");
        st = STORE_ERROR;
    }
out:
    PQclear(res);
    return st;
}

store_status store_user_put(pg_conn *c, const char *user_id, const json_t *body, json_t **out,
                            char *err, size_t errlen)
{
    char *tokens = NULL;
    store_status st = STORE_ERROR;
    *out = NULL;
    json_t *jt = json_object_get(body, "push_tokens");
    tokens = json_is_array(jt) ? json_dumps(jt, JSON_COMPACT) : strdup("[]");
    if (tokens == NULL) {
        error_set(err, errlen, "out of memory");
        goto out;
    }
    const char *uv[6] = {user_id,
                         member(body, "email"),
                         member(body, "phone"),
                         member(body, "name"),
                         member(body, "timezone"),
                         member(body, "locale")};
    const char *tv[2] = {user_id, tokens};
    /* The whole transaction is redone after a reconnect: it is idempotent. */
    for (int attempt = 0; attempt < 2; attempt++) {
        pg_status ps = pg_begin(c, err, errlen);
        if (ps == PG_OK)
            ps = pg_exec_prepared(c, "gw_user_upsert", 6, uv, NULL, NULL, 0, NULL, err, errlen);
        if (ps == PG_OK)
            ps = pg_exec_prepared(c, "gw_tokens_prune", 2, tv, NULL, NULL, 0, NULL, err, errlen);
        if (ps == PG_OK)
            ps = pg_exec_prepared(c, "gw_tokens_add", 2, tv, NULL, NULL, 0, NULL, err, errlen);
        if (ps == PG_OK)
            ps = pg_commit(c, err, errlen);
        if (ps == PG_OK) {
            st = STORE_OK;
            break;
        }
        st = classify(c, ps);
        if (pg_in_transaction(c)) {
            char rerr[128];
            if (pg_rollback(c, rerr, sizeof rerr) != PG_OK)
                break; /* the pool rolls back again before lending it out */
        }
        if (ps != PG_RETRY)
            break;
    }
    if (st == STORE_OK)
        st = store_user_get(c, user_id, out, err, errlen);
out:
    free(tokens);
    return st;
}

store_status store_user_delete(pg_conn *c, const char *user_id, char *err, size_t errlen)
{
    PGresult *res = NULL;
    const char *v[1] = {user_id};
    pg_status ps = pg_exec_prepared(c, "gw_user_delete", 1, v, NULL, NULL, 0, &res, err, errlen);
    if (ps == PG_RETRY)
        ps = pg_exec_prepared(c, "gw_user_delete", 1, v, NULL, NULL, 0, &res, err, errlen);
    store_status st = classify(c, ps);
    if (st == STORE_OK && strcmp(PQcmdTuples(res), "0") == 0)
        st = STORE_NOT_FOUND;
    PQclear(res);
    return st;
}

store_status store_prefs_get(pg_conn *c, const char *user_id, json_t **out, char *err,
                             size_t errlen)
{
    PGresult *res = NULL;
    const char *v[1] = {user_id};
    *out = NULL;
    store_status st = run(c, "gw_prefs_get", 1, v, NULL, NULL, &res, err, errlen);
    if (st != STORE_OK)
        goto out;
    if (PQntuples(res) != 1) {
        st = STORE_NOT_FOUND;
        goto out;
    }
    json_t *qh = json_null();
    if (!PQgetisnull(res, 0, 3) && !PQgetisnull(res, 0, 4)) {
        json_decref(qh);
        qh = json_pack("{s:o,s:o}", "start", col_str(res, 0, 3), "end", col_str(res, 0, 4));
    }
    *out = json_pack("{s:o,s:o,s:o,s:o,s:o}", "user_id", col_str(res, 0, 0), "channels",
                     col_json(res, 0, 1, json_object()), "categories",
                     col_json(res, 0, 2, json_object()), "quiet_hours", qh, "updated_at",
                     col_str(res, 0, 5));
    if (*out == NULL) {
        error_set(err, errlen, "out of memory");
        st = STORE_ERROR;
    }
out:
    PQclear(res);
    return st;
}

store_status store_prefs_put(pg_conn *c, const char *user_id, const json_t *body, json_t **out,
                             char *err, size_t errlen)
{
    char *channels = NULL, *categories = NULL;
    store_status st = STORE_ERROR;
    *out = NULL;
    json_t *jc = json_object_get(body, "channels"), *jk = json_object_get(body, "categories");
    channels = jc != NULL ? json_dumps(jc, JSON_COMPACT) : strdup("{}");
    categories = jk != NULL ? json_dumps(jk, JSON_COMPACT) : strdup("{}");
    if (channels == NULL || categories == NULL) {
        error_set(err, errlen, "out of memory");
        goto out;
    }
    json_t *qh = json_object_get(body, "quiet_hours");
    const char *qs = json_is_object(qh) ? member(qh, "start") : NULL;
    const char *qe = json_is_object(qh) ? member(qh, "end") : NULL;
    const char *v[5] = {user_id, channels, categories, qs, qe};
    st = run(c, "gw_prefs_put", 5, v, NULL, NULL, NULL, err, errlen);
    if (st == STORE_OK)
        st = store_prefs_get(c, user_id, out, err, errlen);
out:
    free(channels);
    free(categories);
    return st;
}

store_status store_subscribe(pg_conn *c, const char *topic, const char *user_id, char *err,
                             size_t errlen)
{
    const char *v[2] = {topic, user_id};
    return run(c, "gw_subscribe", 2, v, NULL, NULL, NULL, err, errlen);
}

store_status store_unsubscribe(pg_conn *c, const char *topic, const char *user_id, char *err,
                               size_t errlen)
{
    PGresult *res = NULL;
    const char *v[2] = {topic, user_id};
    store_status st = run(c, "gw_unsubscribe", 2, v, NULL, NULL, &res, err, errlen);
    if (st == STORE_OK && (PQntuples(res) != 1 || strcmp(PQgetvalue(res, 0, 0), "t") != 0))
        st = STORE_NOT_FOUND;
    PQclear(res);
    return st;
}

static json_t *template_json(PGresult *res)
{
    return json_pack("{s:o,s:o,s:o,s:o,s:o,s:o}", "event_type", col_str(res, 0, 0), "channel",
                     col_str(res, 0, 1), "subject", col_str(res, 0, 2), "body", col_str(res, 0, 3),
                     "category", col_str(res, 0, 4), "updated_at", col_str(res, 0, 5));
}

store_status store_template_put(pg_conn *c, const char *event_type, const char *channel,
                                const json_t *body, json_t **out, char *err, size_t errlen)
{
    PGresult *res = NULL;
    *out = NULL;
    const char *v[5] = {event_type, channel, member(body, "subject"), member(body, "body"),
                        member(body, "category")};
    store_status st = run(c, "gw_template_put", 5, v, NULL, NULL, &res, err, errlen);
    if (st == STORE_OK) {
        *out = PQntuples(res) == 1 ? template_json(res) : NULL;
        if (*out == NULL) {
            error_set(err, errlen, "the template was not returned");
            st = STORE_ERROR;
        }
    }
    PQclear(res);
    return st;
}

store_status store_template_get(pg_conn *c, const char *event_type, const char *channel,
                                json_t **out, char *err, size_t errlen)
{
    PGresult *res = NULL;
    *out = NULL;
    const char *v[2] = {event_type, channel};
    store_status st = run(c, "gw_template_get", 2, v, NULL, NULL, &res, err, errlen);
    if (st == STORE_OK) {
        if (PQntuples(res) != 1) {
            st = STORE_NOT_FOUND;
        } else if ((*out = template_json(res)) == NULL) {
            error_set(err, errlen, "out of memory");
            st = STORE_ERROR;
        }
    }
    PQclear(res);
    return st;
}

store_status store_template_delete(pg_conn *c, const char *event_type, const char *channel,
                                   char *err, size_t errlen)
{
    PGresult *res = NULL;
    const char *v[2] = {event_type, channel};
    store_status st = run(c, "gw_template_delete", 2, v, NULL, NULL, &res, err, errlen);
    if (st == STORE_OK && strcmp(PQcmdTuples(res), "0") == 0)
        st = STORE_NOT_FOUND;
    PQclear(res);
    return st;
}

/*
 * One word for where an event stands, from its deliveries:
 * "processing" while any is pending, scheduled or retrying; otherwise
 * "failed" if any failed, "delivered" if any was sent, "skipped" when every
 * channel was skipped, and "dispatched" when the dispatcher planned none.
 * "accepted": deliveries exist but the events row is not written yet.
 */
static const char *overall_status(json_t *deliveries, bool have_event)
{
    size_t i;
    json_t *d;
    bool active = false, failed = false, sent = false;
    if (json_array_size(deliveries) == 0)
        return have_event ? "dispatched" : "accepted";
    json_array_foreach(deliveries, i, d)
    {
        const char *s = json_string_value(json_object_get(d, "status"));
        if (s == NULL)
            continue;
        if (strcmp(s, "pending") == 0 || strcmp(s, "scheduled") == 0 || strcmp(s, "retrying") == 0)
            active = true;
        else if (strcmp(s, "failed") == 0)
            failed = true;
        else if (strcmp(s, "sent") == 0)
            sent = true;
    }
    if (active)
        return "processing";
    if (failed)
        return "failed";
    return sent ? "delivered" : "skipped";
}

store_status store_event_status(pg_conn *c, const char *event_id, json_t **out, char *err,
                                size_t errlen)
{
    PGresult *ev = NULL, *dl = NULL;
    json_t *doc = NULL, *list = NULL;
    const char *v[1] = {event_id};
    *out = NULL;
    store_status st = run(c, "gw_event_get", 1, v, NULL, NULL, &ev, err, errlen);
    if (st != STORE_OK)
        goto out;
    st = run(c, "gw_event_deliveries", 1, v, NULL, NULL, &dl, err, errlen);
    if (st != STORE_OK)
        goto out;
    bool have_event = PQntuples(ev) == 1;
    if (!have_event && PQntuples(dl) == 0) {
        st = STORE_NOT_FOUND;
        goto out;
    }
    list = json_array();
    for (int i = 0; list != NULL && i < PQntuples(dl); i++) {
        json_t *d = json_pack(
            "{s:o,s:o,s:I,s:o,s:o,s:o}", "channel", col_str(dl, i, 0), "status", col_str(dl, i, 1),
            "attempts", (json_int_t)strtoll(PQgetvalue(dl, i, 2), NULL, 10), "last_error",
            col_str(dl, i, 3), "updated_at", col_str(dl, i, 4), "user_id", col_str(dl, i, 5));
        if (d != NULL && !PQgetisnull(dl, i, 6))
            json_object_set_new(d, "skip_reason", col_str(dl, i, 6));
        if (d == NULL || json_array_append_new(list, d) != 0) {
            json_decref(list);
            list = NULL;
        }
    }
    doc = list != NULL ? json_pack("{s:s,s:s}", "event_id", event_id, "status",
                                   overall_status(list, have_event))
                       : NULL;
    if (doc != NULL && have_event) {
        json_object_set_new(doc, "type", col_str(ev, 0, 1));
        if (!PQgetisnull(ev, 0, 2))
            json_object_set_new(doc, "user_id", col_str(ev, 0, 2));
        if (!PQgetisnull(ev, 0, 3))
            json_object_set_new(doc, "topic", col_str(ev, 0, 3));
        json_object_set_new(doc, "priority", col_str(ev, 0, 4));
        if (!PQgetisnull(ev, 0, 5))
            json_object_set_new(doc, "category", col_str(ev, 0, 5));
        json_object_set_new(doc, "created_at", col_str(ev, 0, 6));
        json_object_set_new(doc, "dispatched_at", col_str(ev, 0, 7));
    }
    if (doc == NULL || json_object_set(doc, "deliveries", list) != 0) {
        error_set(err, errlen, "out of memory");
        st = STORE_ERROR;
        goto out;
    }
    *out = doc;
    doc = NULL;
out:
    json_decref(doc);
    json_decref(list);
    PQclear(ev);
    PQclear(dl);
    return st;
}

store_status store_idem_claim(pg_conn *c, int64_t api_key_id, const char *key, const char *event_id,
                              const unsigned char request_hash[32], int in_flight_ms,
                              store_idem_state *state, char existing_id[37], char *err,
                              size_t errlen)
{
    PGresult *res = NULL;
    char idbuf[24], window[24];
    store_status st = STORE_ERROR;
    snprintf(idbuf, sizeof idbuf, "%lld", (long long)api_key_id);
    snprintf(window, sizeof window, "%d", in_flight_ms);
    const char *v[4] = {idbuf, key, event_id, (const char *)request_hash};
    const char *gv[3] = {idbuf, key, window};
    int lengths[4] = {0, 0, 0, 32};
    int formats[4] = {0, 0, 0, 1};
    *state = STORE_IDEM_CLAIMED;
    existing_id[0] = '\0';
    /* A conflicting row can vanish between the two statements (its publish
     * failed and released it); then claiming again is right. */
    for (int attempt = 0; attempt < 3; attempt++) {
        PQclear(res);
        res = NULL;
        st = run(c, "gw_idem_claim", 4, v, lengths, formats, &res, err, errlen);
        if (st != STORE_OK)
            goto out;
        if (PQntuples(res) == 1)
            goto out;
        PQclear(res);
        res = NULL;
        st = run(c, "gw_idem_get", 3, gv, NULL, NULL, &res, err, errlen);
        if (st != STORE_OK)
            goto out;
        if (PQntuples(res) == 1) {
            snprintf(existing_id, 37, "%s", PQgetvalue(res, 0, 0));
            *state =
                strcmp(PQgetvalue(res, 0, 1), "t") == 0 ? STORE_IDEM_REPLAY : STORE_IDEM_IN_FLIGHT;
            if (*state == STORE_IDEM_IN_FLIGHT || strcmp(PQgetvalue(res, 0, 2), "t") != 0)
                goto out;
            /* Unconfirmed and old: take it again, unless another request just did. */
            PQclear(res);
            res = NULL;
            st = run(c, "gw_idem_retake", 3, gv, NULL, NULL, &res, err, errlen);
            if (st != STORE_OK)
                goto out;
            if (PQntuples(res) == 1) {
                snprintf(existing_id, 37, "%s", PQgetvalue(res, 0, 0));
                *state = STORE_IDEM_RETAKEN;
                goto out;
            }
            continue;
        }
    }
    error_set(err, errlen, "the idempotency key kept changing hands");
    st = STORE_ERROR;
out:
    PQclear(res);
    return st;
}

store_status store_idem_confirm(pg_conn *c, int64_t api_key_id, const char *key,
                                const char *event_id, char *err, size_t errlen)
{
    char idbuf[24];
    snprintf(idbuf, sizeof idbuf, "%lld", (long long)api_key_id);
    const char *v[3] = {idbuf, key, event_id};
    return run(c, "gw_idem_confirm", 3, v, NULL, NULL, NULL, err, errlen);
}

store_status store_idem_release(pg_conn *c, int64_t api_key_id, const char *key,
                                const char *event_id, char *err, size_t errlen)
{
    char idbuf[24];
    snprintf(idbuf, sizeof idbuf, "%lld", (long long)api_key_id);
    const char *v[3] = {idbuf, key, event_id};
    return run(c, "gw_idem_release", 3, v, NULL, NULL, NULL, err, errlen);
}

store_status store_ping(pg_conn *c, char *err, size_t errlen)
{
    return run(c, "gw_ping", 0, NULL, NULL, NULL, NULL, err, errlen);
}
