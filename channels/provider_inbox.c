/*
 * provider_inbox: where the inapp channel delivers.  Nothing leaves Herald:
 * each delivery becomes one message in its user's inbox in PostgreSQL
 * (docs/inapp.md), and an update record on inbox.updates then rings the
 * doorbell of the user's live clients.
 *
 * One transaction per delivery:
 *
 *   1. lock the user's inbox_state row, creating it at seq 0; a user that
 *      does not exist fails here, on the foreign key (permanent);
 *   2. insert the message, its id the UUID v5 of the delivery's key and its
 *      seq the state's seq + 1, ON CONFLICT (delivery_key) DO NOTHING; only
 *      when the row went in, the state takes that seq and counts the
 *      message unread and unseen (one statement);
 *   3. commit.
 *
 * A redelivered record (a crash after the commit, before the worker's row
 * said 'sent') finds its message and changes nothing: no second message,
 * no count moved.  After the commit the update record is produced, keyed
 * by the user id: for a new message its change, for one found already
 * the message's own seq and the counts as they are, in case the crash
 * came before the first record was out (a client skips a seq it has, so
 * ringing twice is harmless).  The records of one loop pass are flushed
 * to the broker before the worker records the pass's outcomes: when one
 * cannot be, those deliveries are retried, and the retry, finding its
 * message, rings again.  So the doorbell is at least once, like the
 * message.

 * Errors are classified by provider_classify_pg(): transient ones go round
 * the worker's retry topic with back-off (and through an outage the breaker
 * pauses intake instead of burning attempts), permanent ones to the DLQ.
 *
 * The statements run on the loop's thread, as the file provider's writes
 * do: a few milliseconds per message, which bounds one worker to a few
 * hundred messages a second.  The connection is opened at the first
 * delivery, not at startup, so a database that is down when the worker
 * starts is a retry, not a failed start.
 */
#include "provider.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "error.h"
#include "ids.h"
#include "inbox_update.h"
#include "kafka.h"
#include "log.h"
#include "pg.h"
#include "timeutil.h"

/* Reconnecting blocks the loop: give up soon, the retry topic waits instead. */
#define INBOX_CONNECT_WAIT_MS 2000
#define PRODUCE_TRIES         3
/* How long a loop pass waits for its update records to reach the broker. */
#define UPDATES_FLUSH_MS 5000

/* Creates the user's state row or, when it exists, locks it till the commit. */
static const char lock_sql[] = "INSERT INTO inbox_state (user_id) VALUES ($1) "
                               "ON CONFLICT (user_id) DO UPDATE SET seq = inbox_state.seq";

/* The message, and the state's new seq and counts when it went in (no row when not). */
static const char store_sql[] =
    "WITH ins AS ("
    " INSERT INTO inbox_messages (message_id, user_id, delivery_key, event_id, event_type,"
    "  category, title, body, data, seq)"
    " SELECT $1::uuid, $2, $3, $4::uuid, $5, $6, $7, $8, coalesce($9::jsonb, '{}'::jsonb),"
    "  s.seq + 1 FROM inbox_state s WHERE s.user_id = $2"
    " ON CONFLICT (delivery_key) DO NOTHING RETURNING 1) "
    "UPDATE inbox_state SET seq = seq + 1, unread = unread + 1, unseen = unseen + 1,"
    " updated_at = now() WHERE user_id = $2 AND EXISTS (SELECT 1 FROM ins) "
    "RETURNING seq, unread, unseen";

/* A message that was there already: its last change, the counts now, and
 * whether it is unmarked (so its change is still a "message"). */
static const char existing_sql[] =
    "SELECT m.seq, s.unread, s.unseen, (m.seen_at IS NULL AND m.read_at IS NULL "
    "AND m.archived_at IS NULL AND m.interacted_at IS NULL) "
    "FROM inbox_messages m JOIN inbox_state s ON s.user_id = m.user_id "
    "WHERE m.delivery_key = $1";

typedef struct inbox_state {
    pg_conn *db; /* NULL until the first delivery, and after it failed to connect */
    kafka_producer *producer;
    long lost; /* update records the broker refused since the last flush */
} inbox_state;

/* What one delivery did to the inbox. */
typedef struct stored {
    bool inserted; /* false: the message was there already */
    bool found;    /* inserted, or there already and read back */
    bool unmarked; /* no state set on the message yet */
    long long seq, unread, unseen;
} stored;

static void on_update_report(void *opaque, const kafka_delivery_report *dr)
{
    inbox_state *st = opaque;
    if (dr->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        LOG_WARN(dr->topic, "inbox update for user %.*s not produced (the delivery is retried): %s",
                 (int)dr->keylen, (const char *)dr->key, dr->errstr);
        if (st != NULL)
            st->lost++;
    }
}

static int inbox_init(provider *p, char *err, size_t errlen)
{
    if (p->s.database_url == NULL)
        return error_set(err, errlen, "HERALD_DATABASE_URL: required by the inbox");
    if (p->s.kafka_brokers == NULL || p->s.updates_topic == NULL)
        return error_set(err, errlen, "HERALD_KAFKA_BROKERS: required by the inbox");
    inbox_state *st = calloc(1, sizeof *st);
    if (st == NULL)
        return error_set(err, errlen, "out of memory");
    p->impl = st;
    st->producer =
        kafka_producer_new(p->s.kafka_brokers, NULL, p->s.kafka_props, NULL, err, errlen);
    if (st->producer == NULL)
        return -1;
    kafka_producer_set_delivery_cb(st->producer, on_update_report);
    return 0;
}

/* The connection, opened (and its statements prepared) on first use. */
static pg_status inbox_db(provider *p, char *err, size_t errlen)
{
    inbox_state *st = p->impl;
    if (st->db != NULL)
        return PG_OK;
    pg_options opt = {.connect_timeout_s = 2,
                      .max_wait_ms = INBOX_CONNECT_WAIT_MS,
                      .application_name = "herald-worker-inapp"};
    st->db = pg_connect(p->s.database_url, &opt, err, errlen);
    if (st->db == NULL)
        return PG_DOWN;
    pg_status rc = pg_prepare(st->db, "inbox_lock", lock_sql, 1, err, errlen);
    if (rc == PG_OK)
        rc = pg_prepare(st->db, "inbox_store", store_sql, 9, err, errlen);
    if (rc == PG_OK)
        rc = pg_prepare(st->db, "inbox_existing", existing_sql, 1, err, errlen);
    if (rc != PG_OK) {
        pg_close(st->db);
        st->db = NULL;
    }
    return rc;
}

/*
 * The transaction of the header comment.  On failure sqlstate (at least
 * 6 bytes) holds the failed statement's SQLSTATE, "" for a lost connection.
 */
static pg_status store_message(pg_conn *db, const provider_message *m, const char *message_id,
                               stored *out, char *sqlstate, char *err, size_t errlen)
{
    PGresult *res = NULL;
    char rb[256];
    const char *lock[1] = {m->user_id};
    const char *v[9] = {message_id,  m->user_id,    m->idempotency_key,
                        m->event_id, m->event_type, m->category,
                        m->subject,  m->body,       m->data_json};
    memset(out, 0, sizeof *out);
    pg_status rc = pg_begin(db, err, errlen);
    if (rc == PG_OK)
        rc = pg_exec_prepared(db, "inbox_lock", 1, lock, NULL, NULL, 0, NULL, err, errlen);
    if (rc == PG_OK)
        rc = pg_exec_prepared(db, "inbox_store", 9, v, NULL, NULL, 0, &res, err, errlen);
    if (rc == PG_OK && PQntuples(res) == 1) {
        out->inserted = out->found = out->unmarked = true;
    } else if (rc == PG_OK) {
        PQclear(res);
        res = NULL;
        const char *key[1] = {m->idempotency_key};
        rc = pg_exec_prepared(db, "inbox_existing", 1, key, NULL, NULL, 0, &res, err, errlen);
        if (rc == PG_OK && PQntuples(res) == 1) {
            out->found = true;
            out->unmarked = PQgetvalue(res, 0, 3)[0] == 't';
        }
    }
    if (out->found) {
        out->seq = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
        out->unread = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
        out->unseen = strtoll(PQgetvalue(res, 0, 2), NULL, 10);
    }
    PQclear(res);
    if (rc == PG_OK)
        rc = pg_commit(db, err, errlen);
    snprintf(sqlstate, 6, "%s", rc == PG_OK ? "" : pg_last_sqlstate(db));
    if (rc != PG_OK && pg_in_transaction(db) && pg_rollback(db, rb, sizeof rb) != PG_OK)
        LOG_WARN(m->idempotency_key, "inbox: rollback failed: %s", rb);
    return rc;
}

/* The doorbell: one update record for the message's change, keyed by the user id. */
static void ring(provider *p, const provider_message *m, const char *message_id, const stored *s)
{
    inbox_state *st = p->impl;
    char err[256];
    const char *ids[1] = {message_id};
    inbox_update u = {.user_id = m->user_id,
                      .seq = s->seq,
                      .kind = s->unmarked ? INBOX_UPDATE_MESSAGE : INBOX_UPDATE_STATE,
                      .message_ids = ids,
                      .nmessage_ids = 1,
                      .unread_count = s->unread,
                      .unseen_count = s->unseen,
                      .at_ms = timeutil_now_ms()};
    buf b;
    buf_init(&b, 0);
    if (inbox_update_write(&b, &u) != 0) {
        LOG_WARN(m->idempotency_key, "inbox update for user %s not written: out of memory",
                 m->user_id);
        goto out;
    }
    kafka_status ks = KAFKA_QUEUE_FULL;
    for (int i = 0; i < PRODUCE_TRIES && ks == KAFKA_QUEUE_FULL; i++) {
        ks = kafka_produce(st->producer, p->s.updates_topic, m->user_id, strlen(m->user_id), b.data,
                           b.len, NULL, st, err, sizeof err);
        if (ks == KAFKA_QUEUE_FULL)
            kafka_producer_poll(st->producer, 10);
    }
    if (ks != KAFKA_OK) {
        LOG_WARN(m->idempotency_key, "inbox update for user %s not produced: %s", m->user_id, err);
        st->lost++;
    }
out:
    buf_free(&b);
}

static void inbox_send_now(provider *p, const provider_message *m, provider_result *out)
{
    inbox_state *st = p->impl;
    char err[256] = "", sqlstate[6] = "", message_id[ID_UUID_SIZE];
    stored s;
    if (id_uuid_v5(ID_NAMESPACE_HERALD, m->idempotency_key, strlen(m->idempotency_key),
                   message_id) != 0) {
        out->outcome = PROVIDER_PERMANENT;
        snprintf(out->message, sizeof out->message, "no message id for this delivery");
        return;
    }
    pg_status rc = inbox_db(p, err, sizeof err);
    if (rc == PG_OK)
        rc = store_message(st->db, m, message_id, &s, sqlstate, err, sizeof err);
    if (rc != PG_OK) {
        provider_classify_pg(rc == PG_ERROR ? sqlstate : "", m->user_id, err, out);
        return;
    }
    out->outcome = PROVIDER_SENT;
    snprintf(out->message_id, sizeof out->message_id, "%s", message_id);
    if (s.inserted)
        snprintf(out->message, sizeof out->message, "stored in the inbox at seq %lld", s.seq);
    else
        snprintf(out->message, sizeof out->message, "already in the inbox");
    if (s.found)
        ring(p, m, message_id, &s);
}

/*
 * The messages are durable at their commits; the pass's update records
 * are durable here, before the worker records its outcomes.  -1 when one
 * was refused or is still queued: the pass's deliveries are retried, and
 * their retries ring again.
 */
static int inbox_flush(provider *p, char *err, size_t errlen)
{
    inbox_state *st = p->impl;
    int left = kafka_producer_flush(st->producer, UPDATES_FLUSH_MS);
    long lost = st->lost;
    st->lost = 0;
    if (left > 0 || lost > 0)
        return error_set(err, errlen, "inbox update records not produced: %ld refused, %d queued",
                         lost, left);
    return 0;
}

static void inbox_destroy(provider *p)
{
    inbox_state *st = p->impl;
    if (st == NULL)
        return;
    if (st->producer != NULL) {
        int left = kafka_producer_flush(st->producer, 5000);
        if (left > 0)
            LOG_WARN(p->s.updates_topic, "%d inbox updates unflushed at shutdown", left);
        kafka_producer_destroy(st->producer);
    }
    pg_close(st->db);
    free(st);
    p->impl = NULL;
}

const provider_ops provider_inbox_ops = {
    .name = "inbox",
    .init = inbox_init,
    .send_now = inbox_send_now,
    .flush = inbox_flush,
    .destroy = inbox_destroy,
};
