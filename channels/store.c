/*
 * store: see store.h.  Batches travel as PostgreSQL array literals and are
 * unnested server-side, so a batch of any size is one round trip.
 */
#include "store.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "error.h"

/* Statuses after which a delivery is never sent again: it was sent (and
 * perhaps more is known since), or it was suppressed. */
#define DONE_STATUSES                                                                              \
    "ARRAY['sent', 'delivered', 'undelivered', 'bounced', 'complained', 'suppressed']"

struct store {
    pg_conn *pg;
    char channel[16];
    char *owner;
    char lease_ms[32];
};

/*
 * The claim.  The CTE's INSERT ... ON CONFLICT takes the lease; the outer
 * SELECT reports every input key: claimed ones from the CTE, the others
 * from the row as it was before this statement (the statement's snapshot),
 * which is exactly the row that refused the lease.  That second look-up is
 * a LATERAL subquery gated on "not claimed" (a one-time filter, kept apart
 * by OFFSET 0 so that the planner does not flatten it into a join filter):
 * in the normal case, where every key is claimed, it never runs, instead of
 * probing the primary key once more per delivery.
 */
static const char claim_sql[] =
    "WITH t AS (SELECT * FROM unnest($1::text[], $2::uuid[], $3::text[], $4::text[]) "
    "           AS t(k, e, u, a)), "
    "c AS (INSERT INTO deliveries AS d (idempotency_key, event_id, user_id, channel, address, "
    "                                   status, attempts, lease_owner, lease_until) "
    "      SELECT k, e, u, $5, a, 'pending', 1, $6, now() + $7::bigint * interval '1 millisecond' "
    "      FROM t "
    "      ON CONFLICT (idempotency_key) DO UPDATE "
    "        SET attempts = CASE WHEN d.idempotency_key = ANY($8::text[]) THEN 1 "
    "                            ELSE d.attempts + 1 END, "
    "            lease_owner = EXCLUDED.lease_owner, "
    "            lease_until = EXCLUDED.lease_until, updated_at = now() "
    "        WHERE d.status <> ALL (" DONE_STATUSES ") "
    "          AND (d.lease_until IS NULL OR d.lease_until < now() "
    "               OR d.lease_owner = EXCLUDED.lease_owner) "
    "      RETURNING idempotency_key, attempts) "
    "SELECT t.k, c.attempts, x.status, x.lease_ms, "
    "       (SELECT s.reason || coalesce(': ' || s.detail, '') FROM suppressions s "
    "        WHERE c.idempotency_key IS NOT NULL AND s.channel = $5 "
    "          AND s.address = herald_address_key($5, t.a)) "
    "FROM t LEFT JOIN c ON c.idempotency_key = t.k "
    "LEFT JOIN LATERAL (SELECT d.status, (extract(epoch FROM d.lease_until) * 1000)::bigint "
    "                          AS lease_ms "
    "                   FROM deliveries d "
    "                   WHERE c.idempotency_key IS NULL AND d.idempotency_key = t.k "
    "                   OFFSET 0) x ON true";

/*
 * The outcome.  A status never goes backwards (migrations/016): a receipt
 * may have moved the row past 'sent' before the worker recorded its send,
 * and then the row keeps what the receipt said.  The same statement writes
 * the history of the statuses it set, one row per attempt (a failed attempt
 * that will be retried too, migrations/022), and, for an address the
 * provider refused outright, its suppression.
 */
static const char record_sql[] =
    "WITH t AS (SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], "
    "                                $5::text[], $6::bigint[]) AS t(k, s, err, p, pid, nb)), "
    "u AS (UPDATE deliveries AS d "
    "      SET status = CASE WHEN d.status = ANY (" DONE_STATUSES ") THEN d.status ELSE t.s END, "
    "          last_error = CASE WHEN d.status = ANY (" DONE_STATUSES ") AND d.status <> 'sent' "
    "                            THEN d.last_error ELSE t.err END, "
    "          provider = coalesce(t.p, d.provider), "
    "          provider_message_id = coalesce(t.pid, d.provider_message_id), "
    "          not_before = CASE WHEN t.nb > 0 THEN to_timestamp(t.nb / 1000.0) END, "
    "          lease_owner = NULL, lease_until = NULL, updated_at = now() "
    "      FROM t "
    "      WHERE d.idempotency_key = t.k "
    "        AND (d.status <> ALL (" DONE_STATUSES ") OR t.s = 'sent') "
    "      RETURNING d.idempotency_key, d.event_id, d.user_id, d.channel, d.address, d.status, "
    "                d.last_error, d.provider, d.attempts, t.s AS recorded), "
    "h AS (INSERT INTO delivery_history (idempotency_key, event_id, user_id, channel, address, "
    "                                    status, reason, provider, source, attempt) "
    "      SELECT idempotency_key, event_id, user_id, channel, address, recorded, last_error, "
    "             provider, 'worker', "
    "             CASE WHEN recorded <> 'suppressed' AND attempts > 0 THEN attempts END "
    "      FROM u "
    "      WHERE (status = recorded OR recorded = 'sent') "
    "        AND recorded IN ('sent', 'retrying', 'failed', 'bounced', 'undelivered', "
    "                         'suppressed')) "
    "INSERT INTO suppressions (channel, address, reason, detail, idempotency_key, event_id) "
    "SELECT channel, herald_address_key(channel, address), 'hard_bounce', left(last_error, 1024), "
    "       idempotency_key, event_id "
    "FROM u WHERE recorded = 'bounced' AND status = 'bounced' AND address IS NOT NULL "
    "ON CONFLICT (channel, address) DO NOTHING";

static const char tokens_sql[] =
    "DELETE FROM push_tokens p USING unnest($1::text[], $2::text[]) AS t(u, tok) "
    "WHERE p.user_id = t.u AND p.token = t.tok";

static const char release_sql[] = "UPDATE deliveries SET lease_owner = NULL, lease_until = NULL, "
                                  "       attempts = greatest(attempts - 1, 0), updated_at = now() "
                                  "WHERE idempotency_key = ANY($1::text[]) AND lease_owner = $2 "
                                  "  AND status <> ALL (" DONE_STATUSES ")";

store *store_new(const char *url, const char *channel, const char *owner, int64_t lease_ms,
                 const volatile sig_atomic_t *stop, char *err, size_t errlen)
{
    store *s = calloc(1, sizeof *s);
    if (s == NULL) {
        error_set(err, errlen, "out of memory");
        return NULL;
    }
    snprintf(s->channel, sizeof s->channel, "%s", channel);
    snprintf(s->lease_ms, sizeof s->lease_ms, "%" PRId64, lease_ms);
    s->owner = strdup(owner);
    pg_options opt = {.application_name = "herald-worker", .stop = stop};
    s->pg = s->owner ? pg_connect(url, &opt, err, errlen) : NULL;
    if (s->pg == NULL)
        goto fail;
    if (pg_prepare(s->pg, "worker_claim", claim_sql, 8, err, errlen) != PG_OK ||
        pg_prepare(s->pg, "worker_record", record_sql, 6, err, errlen) != PG_OK ||
        pg_prepare(s->pg, "worker_tokens", tokens_sql, 2, err, errlen) != PG_OK ||
        pg_prepare(s->pg, "worker_release", release_sql, 2, err, errlen) != PG_OK)
        goto fail;
    return s;
fail:
    store_free(s);
    return NULL;
}

void store_free(store *s)
{
    if (s == NULL)
        return;
    pg_close(s->pg);
    free(s->owner);
    free(s);
}

/* Appends one element of a text[] literal: NULL, or a quoted, escaped string. */
static int array_elem(buf *b, const char *v)
{
    int rc = buf_append(b, b->len > 1 ? "," : "", b->len > 1 ? 1 : 0);
    if (v == NULL)
        return rc | buf_append_str(b, "NULL");
    rc |= buf_append(b, "\"", 1);
    /* Copied in runs between the characters that need a backslash. */
    const char *run = v;
    for (const char *c = v;; c++) {
        if (*c != '\0' && *c != '"' && *c != '\\')
            continue;
        rc |= buf_append(b, run, (size_t)(c - run));
        if (*c == '\0')
            break;
        rc |= buf_append(b, "\\", 1);
        run = c; /* the quote or backslash itself starts the next run */
    }
    return rc | buf_append(b, "\"", 1);
}

static int array_i64(buf *b, int64_t v)
{
    return buf_printf(b, "%s%" PRId64, b->len > 1 ? "," : "", v);
}

bool store_status_done(const char *status)
{
    static const char *const done[] = {"sent",    "delivered",  "undelivered",
                                       "bounced", "complained", "suppressed"};
    for (size_t i = 0; i < sizeof done / sizeof done[0]; i++)
        if (strcmp(status, done[i]) == 0)
            return true;
    return false;
}

pg_status store_claim(store *s, store_claim_item *items, size_t n, char *err, size_t errlen)
{
    buf a[5]; /* keys, event ids, users, addresses; the keys of fresh items */
    PGresult *res = NULL;
    pg_status st = PG_ERROR;
    for (int i = 0; i < 5; i++) {
        buf_init(&a[i], 0);
        (void)!buf_append(&a[i], "{", 1);
    }
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        rc |= array_elem(&a[0], items[i].key);
        rc |= array_elem(&a[1], items[i].event_id);
        rc |= array_elem(&a[2], items[i].user_id);
        rc |= array_elem(&a[3], items[i].address);
        if (items[i].fresh)
            rc |= array_elem(&a[4], items[i].key);
    }
    for (int i = 0; i < 5; i++)
        rc |= buf_append(&a[i], "}", 1);
    if (rc != 0) {
        error_set(err, errlen, "claim batch too large");
        goto out;
    }
    const char *params[8] = {a[0].data,  a[1].data, a[2].data,   a[3].data,
                             s->channel, s->owner,  s->lease_ms, a[4].data};
    st = pg_exec_prepared(s->pg, "worker_claim", 8, params, NULL, NULL, 0, &res, err, errlen);
    if (st != PG_OK)
        goto out;
    int rows = PQntuples(res);
    for (int r = 0; r < rows; r++) {
        const char *k = PQgetvalue(res, r, 0);
        /* Rows come back in any order; batches are small enough for a scan
         * that starts where the previous match was. */
        size_t idx = (size_t)r < n ? (size_t)r : 0;
        for (size_t j = 0; j < n && strcmp(items[idx].key, k) != 0; j++)
            idx = (idx + 1) % n;
        store_claim_item *it = &items[idx];
        if (!PQgetisnull(res, r, 1)) {
            it->result = STORE_CLAIMED;
            it->attempts = atoi(PQgetvalue(res, r, 1));
            if (!PQgetisnull(res, r, 4)) {
                it->result = STORE_SUPPRESSED;
                snprintf(it->suppressed, sizeof it->suppressed, "%s", PQgetvalue(res, r, 4));
            }
        } else if (store_status_done(PQgetvalue(res, r, 2))) {
            it->result = STORE_ALREADY_SENT;
        } else {
            it->result = STORE_LEASED;
            it->lease_until_ms =
                PQgetisnull(res, r, 3) ? 0 : strtoll(PQgetvalue(res, r, 3), NULL, 10);
        }
    }
out:
    PQclear(res);
    for (int i = 0; i < 5; i++)
        buf_free(&a[i]);
    return st;
}

pg_status store_record(store *s, const store_outcome *o, size_t n, char *err, size_t errlen)
{
    buf a[6];
    pg_status st = PG_ERROR;
    for (int i = 0; i < 6; i++) {
        buf_init(&a[i], 0);
        (void)!buf_append(&a[i], "{", 1);
    }
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        rc |= array_elem(&a[0], o[i].key);
        rc |= array_elem(&a[1], o[i].status);
        rc |= array_elem(&a[2], o[i].error);
        rc |= array_elem(&a[3], o[i].provider);
        rc |= array_elem(&a[4], o[i].provider_id && *o[i].provider_id ? o[i].provider_id : NULL);
        rc |= array_i64(&a[5], o[i].not_before_ms);
    }
    for (int i = 0; i < 6; i++)
        rc |= buf_append(&a[i], "}", 1);
    if (rc != 0) {
        error_set(err, errlen, "outcome batch too large");
        goto out;
    }
    const char *params[6] = {a[0].data, a[1].data, a[2].data, a[3].data, a[4].data, a[5].data};
    st = pg_exec_prepared(s->pg, "worker_record", 6, params, NULL, NULL, 0, NULL, err, errlen);
out:
    for (int i = 0; i < 6; i++)
        buf_free(&a[i]);
    return st;
}

pg_status store_delete_tokens(store *s, const char *const *user_ids, const char *const *tokens,
                              size_t n, char *err, size_t errlen)
{
    buf a[2];
    pg_status st = PG_ERROR;
    for (int i = 0; i < 2; i++) {
        buf_init(&a[i], 0);
        (void)!buf_append(&a[i], "{", 1);
    }
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        rc |= array_elem(&a[0], user_ids[i]);
        rc |= array_elem(&a[1], tokens[i]);
    }
    for (int i = 0; i < 2; i++)
        rc |= buf_append(&a[i], "}", 1);
    if (rc != 0) {
        error_set(err, errlen, "token batch too large");
        goto out;
    }
    const char *params[2] = {a[0].data, a[1].data};
    st = pg_exec_prepared(s->pg, "worker_tokens", 2, params, NULL, NULL, 0, NULL, err, errlen);
out:
    for (int i = 0; i < 2; i++)
        buf_free(&a[i]);
    return st;
}

pg_status store_release(store *s, const char *const *keys, size_t n, char *err, size_t errlen)
{
    buf a;
    pg_status st = PG_ERROR;
    buf_init(&a, 0);
    int rc = buf_append(&a, "{", 1);
    for (size_t i = 0; i < n; i++)
        rc |= array_elem(&a, keys[i]);
    rc |= buf_append(&a, "}", 1);
    if (rc != 0) {
        error_set(err, errlen, "release batch too large");
        goto out;
    }
    const char *params[2] = {a.data, s->owner};
    st = pg_exec_prepared(s->pg, "worker_release", 2, params, NULL, NULL, 0, NULL, err, errlen);
out:
    buf_free(&a);
    return st;
}
