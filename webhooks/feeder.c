/*
 * feeder: see feeder.h.
 *
 * Rows of delivery_history get their ids from a sequence when inserted but
 * become visible when their transaction commits, so a reader that went
 * past id 7 could still see id 6 appear later.  A pass therefore stops
 * before the first row whose inserting transaction is not older than
 * every transaction still running (its xmin at or past the snapshot's
 * xmin): a transaction that took a lower id before that one had started
 * is then finished, committed or not.
 */
#include "feeder.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "error.h"
#include "ids.h"
#include "jsonw.h"
#include "kafka.h"
#include "log.h"
#include "pg.h"
#include "timeutil.h"
#include "topics.h"
#include "webhook_call.h"

#define ACK_WAIT_MS       30000 /* longest wait for the broker to acknowledge a pass */
#define ERROR_PAUSE_MS    1000  /* after a failed pass */
#define PURGE_EVERY_MS    60000 /* how often the feeder deletes what is past retention */
#define PURGE_BATCH       "10000"
#define REPLAY_BATCH      500 /* calls of a replay produced per pass */
#define REPLAY_BATCH_TEXT "500"
#define BODY_MAX          (1024 * 1024)

struct feeder {
    const webhooks_config *cfg;
    const herald_common_config *common;
    const config_kafka_props *props;
    daemon_health *health;
    const volatile sig_atomic_t *stop;
    atomic_bool quit;
    atomic_bool active;
    pg_conn *db;
    kafka_producer *producer;
    char topic[256];
    pthread_t thread;
    bool started;
    /* Delivery reports of the pass in progress. */
    int acked, failed;
    char ack_err[256];
    metrics_counter *fed, *replayed, *produce_errors;
    metrics_gauge *active_gauge, *cursor_gauge;
};

static bool stopping(const feeder *f)
{
    return *f->stop || atomic_load(&f->quit);
}

static void pause_ms(const feeder *f, long ms)
{
    const struct timespec tick = {0, 20 * 1000000L};
    for (long waited = 0; waited < ms && !stopping(f); waited += 20)
        nanosleep(&tick, NULL);
}

static void on_ack(void *opaque, const kafka_delivery_report *dr)
{
    feeder *f = opaque;
    if (dr->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        f->acked++;
        return;
    }
    f->failed++;
    snprintf(f->ack_err, sizeof f->ack_err, "%s", dr->errstr);
}

/* Whether the SQL query failed; logs why. */
static bool failed(pg_status st, const char *what, const char *err)
{
    if (st == PG_OK)
        return false;
    LOG_WARN("feeder", "%s: %s (%s)", what, err, pg_status_name(st));
    return true;
}

/*
 * Takes the lock, or finds this session holds it: 1, 0 when another
 * session holds it, -1 on error.  Asking the lock table first keeps a
 * session from stacking the lock once per pass; a reconnect (pg.h does
 * it silently) shows as a session that no longer holds it.
 */
static int hold_lock(feeder *f)
{
    char err[256];
    PGresult *res = NULL;
    pg_params p = {0};
    pg_params_int(&p, FEEDER_LOCK_KEY);
    pg_status st = pg_query_params(
        f->db,
        "SELECT CASE WHEN EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory'"
        " AND pid = pg_backend_pid() AND granted"
        " AND ((classid::bigint << 32) | objid::bigint) = $1::bigint)"
        " THEN true ELSE pg_try_advisory_lock($1::bigint) END",
        &p, &res, err, sizeof err);
    pg_params_free(&p);
    atomic_store(&f->health->pg_up, st == PG_OK || st == PG_ERROR);
    if (failed(st, "taking the feeder lock", err))
        return -1;
    int held = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    PQclear(res);
    if (held != atomic_load(&f->active)) {
        LOG_INFO("feeder", held ? "holding the feeder lock: feeding" : "lost the feeder lock");
        atomic_store(&f->active, held);
        metrics_gauge_set(f->active_gauge, held);
    }
    return held;
}

/* Produces one call, waiting out a full queue; -1 when it cannot be enqueued. */
static int produce_call(feeder *f, const char *endpoint, const char *id, const char *type,
                        const char *body, size_t len)
{
    char err[256];
    for (int tries = 0; tries < 1000 && !stopping(f); tries++) {
        rd_kafka_headers_t *h = webhook_call_headers(id, type);
        if (h == NULL)
            return -1;
        kafka_status st = kafka_produce(f->producer, f->topic, endpoint, strlen(endpoint), body,
                                        len, h, f, err, sizeof err);
        if (st == KAFKA_OK)
            return 0;
        rd_kafka_headers_destroy(h);
        if (st != KAFKA_QUEUE_FULL) {
            LOG_WARN("feeder", "producing call %s: %s", id, err);
            metrics_counter_inc(f->produce_errors);
            return -1;
        }
        kafka_producer_poll(f->producer, 100);
    }
    return -1;
}

/*
 * Waits until the queue is empty, ACK_WAIT_MS at most, or the drain
 * timeout once asked to stop: a pass acknowledged in time still moves the
 * cursor, so a restart does not make its calls again.
 */
static int flush(feeder *f)
{
    int64_t start = timeutil_monotonic_ms();
    int left;
    while ((left = kafka_producer_flush(f->producer, 100)) > 0) {
        int64_t waited = timeutil_monotonic_ms() - start;
        if (waited >= ACK_WAIT_MS || (stopping(f) && waited >= f->cfg->drain_ms))
            break;
    }
    return left;
}

/* Waits until the broker acknowledged the n calls produced since the last reset. */
static int wait_acks(feeder *f, int n)
{
    int left = flush(f);
    if (left == 0 && f->failed == 0 && f->acked == n)
        return 0;
    LOG_WARN("feeder", "%d of %d calls not acknowledged (%d still queued): %s", n - f->acked, n,
             left, f->failed ? f->ack_err : "timed out");
    metrics_counter_inc(f->produce_errors);
    return -1;
}

static void reset_acks(feeder *f)
{
    /* Reports of an earlier pass that timed out come in before the counting starts. */
    flush(f);
    f->acked = f->failed = 0;
}

/* Whether the Postgres text array subs ("{a,b}") holds type. */
static bool subscribed(const char *subs, const char *type)
{
    size_t n = strlen(type);
    const char *p = subs[0] == '{' ? subs + 1 : subs;
    while (*p != '\0' && *p != '}') {
        size_t len = strcspn(p, ",}");
        if (len == n && memcmp(p, type, n) == 0)
            return true;
        p += len;
        if (*p == ',')
            p++;
    }
    return false;
}

/*
 * A table the feeder makes calls from, in id order: its cursor, what one
 * row makes (type_of its type column) and how far a pass may read it.
 */
typedef struct stream {
    const char *table; /* the cursor's name and the calls' source too */
    const char *settled_sql;
    const char *calls_sql; /* columns: id, endpoint id, type column, types, at, data */
    const char *(*type_of)(const char *);
} stream;

/* The last id a pass may take ($1 the cursor, $2 the batch), 0 when there is
 * none; xids compared modulo 2^32, as the server does. */
#define SETTLED_SQL(table)                                                                         \
    "WITH c AS (SELECT id, xmin::text::bigint AS x FROM " table                                    \
    "           WHERE id > $1::bigint ORDER BY id LIMIT $2::int),"                                 \
    " s AS (SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint % 4294967296 AS x)"       \
    " SELECT coalesce(min(c.id) FILTER (WHERE ((s.x - c.x) % 4294967296 + 4294967296)"             \
    "                                   % 4294967296 NOT BETWEEN 1 AND 2147483647) - 1,"           \
    "                 max(c.id), 0)"                                                               \
    " FROM c, s"

#define AT_UTC(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"

/* The endpoints that hear of the event of row h: enabled, and its key's or every event's. */
#define LISTENERS                                                                                  \
    " LEFT JOIN events ev ON ev.event_id = h.event_id"                                             \
    " JOIN webhook_endpoints e ON e.enabled"                                                       \
    "      AND (e.all_events OR e.api_key_id = ev.api_key_id)"                                     \
    " WHERE h.id > $1::bigint AND h.id <= $2::bigint"                                              \
    " ORDER BY h.id, e.id"

static const stream deliveries = {
    "delivery_history", SETTLED_SQL("delivery_history"),
    "SELECT h.id, e.id, h.status, e.event_types::text, " AT_UTC(
        "h.at") ","
                "       json_build_object('event_id', h.event_id, 'event_type', ev.type,"
                "           'user_id', h.user_id, 'channel', h.channel, 'address', h.address,"
                "           'status', h.status, 'reason', h.reason, 'provider', h.provider,"
                "           'source', h.source, 'idempotency_key', h.idempotency_key,"
                "           'at', " AT_UTC("h.at") ", 'history_id', h.id)::text"
                                                   " FROM delivery_history h" LISTENERS,
    webhook_type_of_status};

static const stream inbox = {
    "webhook_inbox_history", SETTLED_SQL("webhook_inbox_history"),
    "SELECT h.id, e.id, h.change, e.event_types::text, " AT_UTC(
        "h.at") ","
                "       json_build_object('message_id', h.message_id, 'event_id', h.event_id,"
                "           'event_type', h.event_type, 'user_id', h.user_id, 'change', h.change,"
                "           'at', " AT_UTC("h.at") ", 'history_id', h.id)::text"
                                                   " FROM webhook_inbox_history h" LISTENERS,
    webhook_type_of_inbox};

static int64_t settled_upto(feeder *f, const stream *s, int64_t cursor, int64_t *hi)
{
    char err[256];
    PGresult *res = NULL;
    pg_params p = {0};
    pg_params_int(&p, cursor);
    pg_params_int(&p, f->cfg->feed_batch);
    pg_status st = pg_query_params(f->db, s->settled_sql, &p, &res, err, sizeof err);
    pg_params_free(&p);
    if (failed(st, s->table, err))
        return -1;
    *hi = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return 0;
}

/* Appends one webhook_calls row to the JSON array in rows. */
static void add_row(jsonw *w, buf *rows, const char *id, const char *endpoint, const char *history,
                    const char *type, const char *body)
{
    if (rows->len > 1 && buf_append_str(rows, ",") != 0)
        w->failed = true;
    jsonw_begin(w, rows);
    jsonw_str(w, JSONW_NAME("id"), id);
    jsonw_str(w, JSONW_NAME("endpoint_id"), endpoint);
    jsonw_str(w, JSONW_NAME("history_id"), history);
    jsonw_str(w, JSONW_NAME("type"), type);
    jsonw_str(w, JSONW_NAME("body"), body);
}

/*
 * Records the calls (a JSON array) and moves the cursor from `from` to
 * `to`, in one transaction: -1 when another feeder moved it first.
 */
static int commit_pass(feeder *f, const stream *s, const char *rows, int64_t from, int64_t to)
{
    char err[256];
    PGresult *res = NULL;
    pg_params p = {0};
    int ret = -1;
    if (failed(pg_begin(f->db, err, sizeof err), "begin", err))
        return -1;
    pg_params_text(&p, rows);
    pg_params_text(&p, s->table);
    pg_status st = pg_query_params(
        f->db,
        "INSERT INTO webhook_calls (id, endpoint_id, source, history_id, type, body)"
        " SELECT r.id, r.endpoint_id, $2, r.history_id, r.type, r.body"
        " FROM json_to_recordset($1::json)"
        "      AS r(id uuid, endpoint_id uuid, history_id bigint, type text, body text)"
        " WHERE EXISTS (SELECT 1 FROM webhook_endpoints e WHERE e.id = r.endpoint_id)"
        " ON CONFLICT (id) DO NOTHING",
        &p, NULL, err, sizeof err);
    pg_params_free(&p);
    if (failed(st, "recording calls", err))
        goto out;
    pg_params_int(&p, to);
    pg_params_int(&p, from);
    pg_params_text(&p, s->table);
    st = pg_query_params(f->db,
                         "UPDATE webhook_cursor SET history_id = $1::bigint, updated_at = now()"
                         " WHERE name = $3 AND history_id = $2::bigint",
                         &p, &res, err, sizeof err);
    pg_params_free(&p);
    if (failed(st, "moving the cursor", err))
        goto out;
    if (strcmp(PQcmdTuples(res), "1") != 0) {
        LOG_WARN("feeder", "the cursor moved under this feeder: another one feeds");
        goto out;
    }
    if (failed(pg_commit(f->db, err, sizeof err), "commit", err))
        goto out;
    ret = 0;
out:
    PQclear(res);
    if (ret != 0 && pg_in_transaction(f->db) && pg_rollback(f->db, err, sizeof err) != PG_OK)
        LOG_WARN("feeder", "rollback: %s", err);
    return ret;
}

/* One pass over a stream: the number of rows passed, 0 when none, -1 on error. */
static int64_t feed(feeder *f, const stream *s)
{
    char err[256];
    PGresult *cur = NULL, *res = NULL;
    pg_params p = {0};
    buf body, rows;
    jsonw w = {0};
    int64_t ret = -1, cursor, hi;
    int n = 0;
    buf_init(&body, BODY_MAX);
    buf_init(&rows, 0);

    pg_params_text(&p, s->table);
    pg_status st = pg_query_params(f->db, "SELECT history_id FROM webhook_cursor WHERE name = $1",
                                   &p, &cur, err, sizeof err);
    pg_params_free(&p);
    if (failed(st, "reading the cursor", err) || PQntuples(cur) != 1)
        goto out;
    cursor = strtoll(PQgetvalue(cur, 0, 0), NULL, 10);
    if (settled_upto(f, s, cursor, &hi) != 0)
        goto out;
    if (hi <= cursor) {
        ret = 0;
        goto out;
    }
    pg_params_int(&p, cursor);
    pg_params_int(&p, hi);
    st = pg_query_params(f->db, s->calls_sql, &p, &res, err, sizeof err);
    pg_params_free(&p);
    if (failed(st, "reading the calls", err))
        goto out;

    reset_acks(f);
    if (buf_append_str(&rows, "[") != 0)
        goto out;
    for (int i = 0; i < PQntuples(res); i++) {
        const char *history = PQgetvalue(res, i, 0), *endpoint = PQgetvalue(res, i, 1);
        const char *type = s->type_of(PQgetvalue(res, i, 2));
        char id[ID_UUID_SIZE];
        if (type == NULL || !subscribed(PQgetvalue(res, i, 3), type))
            continue;
        buf_reset(&body);
        if (webhook_call_id(s->table, strtoll(history, NULL, 10), endpoint, id) != 0 ||
            webhook_call_body(&body, id, type, PQgetvalue(res, i, 4), PQgetvalue(res, i, 5)) != 0)
            goto out;
        if (produce_call(f, endpoint, id, type, body.data, body.len) != 0)
            goto out;
        n++;
        add_row(&w, &rows, id, endpoint, history, type, body.data);
        if (jsonw_end(&w) != 0)
            goto out;
    }
    if (buf_append_str(&rows, "]") != 0 || wait_acks(f, n) != 0)
        goto out;
    if (commit_pass(f, s, rows.data, cursor, hi) != 0)
        goto out;
    metrics_counter_add(f->fed, (uint64_t)n);
    if (s == &deliveries)
        metrics_gauge_set(f->cursor_gauge, (double)hi);
    LOG_DEBUG("feeder", "%s %" PRId64 "..%" PRId64 ": %d calls", s->table, cursor + 1, hi, n);
    ret = hi - cursor;
out:
    PQclear(cur);
    PQclear(res);
    buf_free(&body);
    buf_free(&rows);
    return ret;
}

/*
 * One page of the oldest replay request not done: its recorded calls in
 * (created_at, id) order after where the last page stopped.  1 when a
 * page was sent, 0 when there was no request, -1 on error.
 */
static int feed_replay(feeder *f)
{
    char err[256];
    PGresult *req = NULL, *res = NULL;
    pg_params p = {0};
    int ret = -1, n;
    pg_status st =
        pg_query(f->db,
                 "SELECT id, endpoint_id, from_at, to_at, coalesce(after_at, '-infinity'),"
                 "       coalesce(after_id, '00000000-0000-0000-0000-000000000000'), calls"
                 " FROM webhook_replays WHERE done_at IS NULL ORDER BY id LIMIT 1",
                 0, NULL, &req, err, sizeof err);
    if (failed(st, "reading replay requests", err))
        goto out;
    if (PQntuples(req) == 0) {
        ret = 0;
        goto out;
    }
    for (int c = 1; c <= 5; c++)
        pg_params_text(&p, PQgetvalue(req, 0, c));
    st = pg_query_params(f->db,
                         "SELECT id, type, body, created_at FROM webhook_calls"
                         " WHERE endpoint_id = $1::uuid AND created_at >= $2::timestamptz"
                         "   AND created_at < $3::timestamptz"
                         "   AND (created_at, id) > ($4::timestamptz, $5::uuid)"
                         " ORDER BY created_at, id LIMIT " REPLAY_BATCH_TEXT,
                         &p, &res, err, sizeof err);
    pg_params_free(&p);
    if (failed(st, "reading the calls to replay", err))
        goto out;
    reset_acks(f);
    n = PQntuples(res);
    for (int i = 0; i < n; i++)
        if (produce_call(f, PQgetvalue(req, 0, 1), PQgetvalue(res, i, 0), PQgetvalue(res, i, 1),
                         PQgetvalue(res, i, 2), (size_t)PQgetlength(res, i, 2)) != 0)
            goto out;
    if (wait_acks(f, n) != 0)
        goto out;
    pg_params_text(&p, PQgetvalue(req, 0, 0));
    pg_params_int(&p, n);
    pg_params_text(&p, n ? PQgetvalue(res, n - 1, 3) : NULL);
    pg_params_text(&p, n ? PQgetvalue(res, n - 1, 0) : NULL);
    st = pg_query_params(f->db,
                         "UPDATE webhook_replays SET calls = calls + $2::int,"
                         " after_at = coalesce($3::timestamptz, after_at),"
                         " after_id = coalesce($4::uuid, after_id),"
                         " done_at = CASE WHEN $2::int < " REPLAY_BATCH_TEXT
                         " THEN now() END WHERE id = $1::bigint",
                         &p, NULL, err, sizeof err);
    pg_params_free(&p);
    if (failed(st, "recording replay progress", err))
        goto out;
    metrics_counter_add(f->replayed, (uint64_t)n);
    if (n < REPLAY_BATCH)
        LOG_INFO("feeder", "replay %s of endpoint %s done: %ld calls sent again",
                 PQgetvalue(req, 0, 0), PQgetvalue(req, 0, 1),
                 strtol(PQgetvalue(req, 0, 6), NULL, 10) + n);
    ret = 1;
out:
    PQclear(req);
    PQclear(res);
    return ret;
}

/*
 * Deletes, a bounded batch per table, what is older than the retention:
 * attempts, recorded calls, and inbox changes the cursor has passed.
 * The rows of delivery_history are not the feeder's to delete.
 */
static void purge(feeder *f)
{
    static const char *const sql[] = {
        "DELETE FROM webhook_attempts WHERE id IN (SELECT id FROM webhook_attempts"
        " WHERE at < now() - $1::bigint * interval '1 millisecond' ORDER BY at"
        " LIMIT " PURGE_BATCH ")",
        "DELETE FROM webhook_calls WHERE id IN (SELECT id FROM webhook_calls"
        " WHERE created_at < now() - $1::bigint * interval '1 millisecond' ORDER BY created_at"
        " LIMIT " PURGE_BATCH ")",
        "DELETE FROM webhook_inbox_history WHERE id IN (SELECT id FROM webhook_inbox_history"
        " WHERE at < now() - $1::bigint * interval '1 millisecond'"
        " AND id <= (SELECT history_id FROM webhook_cursor WHERE name = 'webhook_inbox_history')"
        " ORDER BY id LIMIT " PURGE_BATCH ")",
        "DELETE FROM webhook_replays WHERE done_at < now() - $1::bigint * interval '1 millisecond'",
    };
    char err[256];
    for (size_t i = 0; i < sizeof sql / sizeof sql[0]; i++) {
        pg_params p = {0};
        pg_params_int(&p, f->cfg->retention_ms);
        pg_status st = pg_query_params(f->db, sql[i], &p, NULL, err, sizeof err);
        pg_params_free(&p);
        if (failed(st, "deleting rows past retention", err))
            return;
    }
}

static void *feeder_main(void *arg)
{
    feeder *f = arg;
    int64_t purged_at = 0;
    while (!stopping(f)) {
        int held = hold_lock(f);
        if (held <= 0) {
            pause_ms(f, held < 0 ? ERROR_PAUSE_MS : f->cfg->feed_idle_ms);
            continue;
        }
        if (timeutil_monotonic_ms() - purged_at >= PURGE_EVERY_MS) {
            purge(f);
            purged_at = timeutil_monotonic_ms();
        }
        int64_t fed = feed(f, &deliveries);
        int64_t read = fed < 0 ? -1 : feed(f, &inbox);
        int replayed = read < 0 ? -1 : feed_replay(f);
        if (replayed < 0)
            pause_ms(f, ERROR_PAUSE_MS);
        else if (fed == 0 && read == 0 && replayed == 0)
            pause_ms(f, f->cfg->feed_idle_ms);
    }
    kafka_producer_flush(f->producer, 5000);
    return NULL;
}

feeder *feeder_start(const webhooks_config *cfg, const herald_common_config *common,
                     const config_kafka_props *props, metrics_registry *reg, daemon_health *health,
                     const volatile sig_atomic_t *stop, char *err, size_t errlen)
{
    feeder *f = calloc(1, sizeof *f);
    if (f == NULL) {
        error_set(err, errlen, "out of memory");
        return NULL;
    }
    *f = (feeder){.cfg = cfg, .common = common, .props = props, .health = health, .stop = stop};
    config_topic(common, TOPICS_WEBHOOKS, f->topic, sizeof f->topic);
    f->fed =
        metrics_counter_get(reg, "herald_webhooks_calls_made_total",
                            "calls made from delivery_history and webhook_inbox_history", NULL);
    f->replayed = metrics_counter_get(reg, "herald_webhooks_calls_replayed_total",
                                      "calls sent again by replay requests", NULL);
    f->produce_errors =
        metrics_counter_get(reg, "herald_webhooks_feed_errors_total",
                            "feeder passes whose calls were not acknowledged", NULL);
    f->active_gauge = metrics_gauge_get(reg, "herald_webhooks_feeder_active",
                                        "1 while this process holds the feeder lock", NULL);
    f->cursor_gauge = metrics_gauge_get(reg, "herald_webhooks_feeder_cursor",
                                        "the last delivery_history id fed", NULL);
    if (f->fed == NULL || f->replayed == NULL || f->produce_errors == NULL ||
        f->active_gauge == NULL || f->cursor_gauge == NULL) {
        error_set(err, errlen, "out of memory");
        goto fail;
    }
    pg_options opt = {.application_name = "herald-webhooks feeder", .stop = stop};
    f->db = pg_connect(common->database_url, &opt, err, errlen);
    if (f->db == NULL)
        goto fail;
    f->producer = kafka_producer_new(common->kafka_brokers, NULL, props, NULL, err, errlen);
    if (f->producer == NULL)
        goto fail;
    kafka_producer_set_delivery_cb(f->producer, on_ack);
    if (pthread_create(&f->thread, NULL, feeder_main, f) != 0) {
        error_set(err, errlen, "cannot start the feeder thread");
        goto fail;
    }
    f->started = true;
    return f;
fail:
    feeder_stop(f);
    return NULL;
}

bool feeder_active(const feeder *f)
{
    return f != NULL && atomic_load(&f->active);
}

void feeder_stop(feeder *f)
{
    if (f == NULL)
        return;
    atomic_store(&f->quit, true);
    if (f->started)
        pthread_join(f->thread, NULL);
    kafka_producer_destroy(f->producer);
    pg_close(f->db);
    free(f);
}
