/*
 * broadcast: see broadcast.h.
 */
#include "broadcast.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "ids.h"
#include "log.h"
#include "txn.h"
#include "validate.h"

static const char start_sql[] =
    "INSERT INTO broadcast_progress (event_id, generation, topic) VALUES ($1, $2, $3) "
    "ON CONFLICT (event_id, generation) DO UPDATE SET updated_at = now() "
    "RETURNING last_user_id, expanded";
static const char page_sql[] = "SELECT user_id FROM topic_subscriptions "
                               "WHERE topic = $1 AND user_id > $2 ORDER BY user_id LIMIT $3";
static const char progress_sql[] =
    "UPDATE broadcast_progress SET last_user_id = $3, expanded = expanded + $4, "
    "updated_at = now() WHERE event_id = $1 AND generation = $2";
static const char finish_sql[] =
    "DELETE FROM broadcast_progress WHERE event_id = $1 AND generation = $2";

int broadcast_user_event_id(const char *event_id, const char *user_id, char *out)
{
    char name[ID_UUID_SIZE + 130];
    int n = snprintf(name, sizeof name, "%s|%s", event_id, user_id);
    if (n < 0 || (size_t)n >= sizeof name)
        return -1;
    return id_uuid_v5(ID_NAMESPACE_HERALD, name, (size_t)n, out);
}

/*
 * The per-user event as text, made by splicing: the broadcast is serialized
 * once with a marker user id, and each subscriber's record is the text
 * before the marker, the user id (which needs no JSON escaping: it passed
 * validate_user_id) and the text after, with the event id patched in place.
 * Serializing the whole event per subscriber would dominate the fan-out.
 */
typedef struct splice {
    char *text;
    size_t len;
    size_t uid_at, uid_len; /* where the marker's value sits, its length */
    size_t id_at;           /* where the event id's 36 characters sit */
    char *buf;
    size_t bufcap;
} splice;

#define MARKER "\\u0001" /* how jansson writes the marker user id "\x01" */

static int splice_init(splice *s, const event *ev)
{
    event u = *ev; /* shallow: nothing of it is freed */
    u.user_id = "\x01";
    u.topic = NULL;
    u.idempotency_key = NULL;
    memcpy(u.broadcast_id, ev->event_id, sizeof u.broadcast_id);
    memset(s, 0, sizeof(*s));
    if (event_serialize(&u, &s->text, &s->len) != 0)
        return -1;
    const char *m = strstr(s->text, "\"user_id\":\"" MARKER "\"");
    const char *id = strstr(s->text, "\"event_id\":\"");
    if (m == NULL || id == NULL)
        return -1;
    s->uid_at = (size_t)(m - s->text) + strlen("\"user_id\":\"");
    s->uid_len = strlen(MARKER);
    s->id_at = (size_t)(id - s->text) + strlen("\"event_id\":\"");
    if (s->id_at > s->uid_at)
        return -1; /* event_to_json writes event_id first; rely on nothing else */
    s->bufcap = s->len + 256;
    s->buf = malloc(s->bufcap);
    return s->buf != NULL ? 0 : -1;
}

static void splice_free(splice *s)
{
    free(s->text);
    free(s->buf);
}

/* The record of user_id in s->buf; returns its length. */
static size_t splice_make(splice *s, const char *user_id, const char *event_id)
{
    size_t ul = strlen(user_id), pos = 0;
    memcpy(s->buf, s->text, s->uid_at);
    memcpy(s->buf + s->id_at, event_id, ID_UUID_LEN);
    pos = s->uid_at;
    memcpy(s->buf + pos, user_id, ul);
    pos += ul;
    size_t tail = s->len - s->uid_at - s->uid_len;
    memcpy(s->buf + pos, s->text + s->uid_at + s->uid_len, tail);
    pos += tail;
    s->buf[pos] = '\0';
    return pos;
}

static rd_kafka_topic_partition_list_t *offset_list(const rd_kafka_message_t *msg, int64_t off)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, rd_kafka_topic_name(msg->rkt), msg->partition)->offset =
        off;
    return l;
}

/* One broadcast being expanded: what the steps below share. */
typedef struct expansion {
    const broadcast_ctx *ctx;
    const event *ev;
    const rd_kafka_message_t *msg;
    status_batch *sb;
    char *err;
    size_t errlen;
    splice sp;
    char gen[16], pagelen[16];
    char last[160]; /* the last subscriber whose chunk is committed */
    long long expanded;
    bool in_txn;
    PGresult *res;
    rd_kafka_topic_partition_list_t *fence; /* the broadcast's uncommitted offset */
} expansion;

/* Prepares the statements and reads where an earlier attempt got to. */
static batch_status expansion_start(expansion *x)
{
    const event *ev = x->ev;
    if (pg_prepare(x->ctx->db, "bc_start", start_sql, 3, x->err, x->errlen) != PG_OK ||
        pg_prepare(x->ctx->db, "bc_page", page_sql, 3, x->err, x->errlen) != PG_OK ||
        pg_prepare(x->ctx->db, "bc_progress", progress_sql, 4, x->err, x->errlen) != PG_OK ||
        pg_prepare(x->ctx->db, "bc_finish", finish_sql, 2, x->err, x->errlen) != PG_OK)
        return BATCH_RETRY_PG;
    const char *params[3] = {ev->event_id, x->gen, ev->topic};
    if (pg_exec_prepared(x->ctx->db, "bc_start", 3, params, NULL, NULL, 0, &x->res, x->err,
                         x->errlen) != PG_OK)
        return BATCH_RETRY_PG;
    snprintf(x->last, sizeof x->last, "%s", PQgetvalue(x->res, 0, 0));
    x->expanded = strtoll(PQgetvalue(x->res, 0, 1), NULL, 10);
    PQclear(x->res);
    x->res = NULL;
    if (x->last[0] != '\0')
        LOG_INFO(ev->event_id, "resuming broadcast to topic %s after user %s (%lld done)",
                 ev->topic, x->last, x->expanded);
    return BATCH_OK;
}

/*
 * Produces the page of subscribers after chunk_last into the open
 * transaction; chunk_last becomes the page's last user, *rows its size.
 */
static batch_status produce_page(expansion *x, char *chunk_last, size_t cap, long *in_chunk,
                                 int *rows)
{
    const broadcast_ctx *ctx = x->ctx;
    const event *ev = x->ev;
    const char *pp[3] = {ev->topic, chunk_last, x->pagelen};
    if (pg_exec_prepared(ctx->db, "bc_page", 3, pp, NULL, NULL, 0, &x->res, x->err, x->errlen) !=
        PG_OK)
        return BATCH_RETRY_PG; /* the open transaction is aborted at the end */
    *rows = PQntuples(x->res);
    for (int r = 0; r < *rows; r++) {
        const char *uid = PQgetvalue(x->res, r, 0);
        char id[ID_UUID_SIZE], why[128];
        snprintf(chunk_last, cap, "%s", uid);
        if (validate_user_id(uid, strlen(uid), why, sizeof why) != 0 ||
            broadcast_user_event_id(ev->event_id, uid, id) != 0) {
            LOG_WARN(ev->event_id, "subscriber %s of topic %s skipped: %s", uid, ev->topic, why);
            continue;
        }
        size_t ul = strlen(uid);
        if (x->sp.len + ul + 1 > x->sp.bufcap) {
            error_set(x->err, x->errlen, "broadcast: user id too long");
            continue;
        }
        size_t vlen = splice_make(&x->sp, uid, id);
        txn_result tr = txn_produce(ctx->producer, ctx->events_topic, uid, ul, x->sp.buf, vlen,
                                    NULL, ctx->produce_timeout_ms, x->err, x->errlen);
        if (tr != TXN_OK)
            return batch_from_txn(tr);
        (*in_chunk)++;
    }
    PQclear(x->res);
    x->res = NULL;
    return BATCH_OK;
}

/*
 * One chunk: up to ctx->chunk subscribers in one transaction that also
 * carries the fence, then the progress recorded.  *end: no subscriber is left.
 */
static batch_status expand_chunk(expansion *x, bool *end)
{
    const broadcast_ctx *ctx = x->ctx;
    long in_chunk = 0;
    char chunk_last[sizeof x->last];
    snprintf(chunk_last, sizeof chunk_last, "%s", x->last);
    txn_result tr = txn_begin(ctx->producer, x->err, x->errlen);
    if (tr != TXN_OK)
        return batch_from_txn(tr);
    x->in_txn = true;
    while (in_chunk < ctx->chunk) {
        int rows = 0;
        batch_status r = produce_page(x, chunk_last, sizeof chunk_last, &in_chunk, &rows);
        if (r != BATCH_OK)
            return r;
        if (rows < ctx->page) {
            *end = true;
            break;
        }
    }
    if (in_chunk == 0) {
        if (txn_abort(ctx->producer, x->err, x->errlen) != TXN_OK)
            return BATCH_FATAL;
        x->in_txn = false;
    } else {
        tr = txn_commit(ctx->producer, ctx->consumer, x->fence, x->err, x->errlen);
        x->in_txn = false;
        if (tr != TXN_OK)
            return batch_from_txn(tr);
        metrics_counter_add(ctx->produced, (uint64_t)in_chunk);
        char count[24];
        snprintf(count, sizeof count, "%ld", in_chunk);
        const char *pr[4] = {x->ev->event_id, x->gen, chunk_last, count};
        if (pg_exec_prepared(ctx->db, "bc_progress", 4, pr, NULL, NULL, 0, NULL, x->err,
                             x->errlen) != PG_OK)
            return BATCH_RETRY_PG; /* the chunk is in Kafka; a redo repeats it with the same ids */
        x->expanded += in_chunk;
    }
    snprintf(x->last, sizeof x->last, "%s", chunk_last);
    return BATCH_OK;
}

/* Every subscriber is out: records the broadcast itself, then commits its offset. */
static batch_status expansion_finish(expansion *x)
{
    const broadcast_ctx *ctx = x->ctx;
    const event *ev = x->ev;
    status_batch_reset(x->sb);
    if (status_add_event(x->sb, ev, NULL, 0) != 0) {
        error_set(x->err, x->errlen, "broadcast: out of memory");
        return BATCH_FATAL;
    }
    if (status_write(x->sb, ctx->db, x->err, x->errlen) != PG_OK)
        return BATCH_RETRY_PG;
    txn_result tr = txn_begin(ctx->producer, x->err, x->errlen);
    if (tr == TXN_OK) {
        x->in_txn = true;
        rd_kafka_topic_partition_list_t *final = offset_list(x->msg, x->msg->offset + 1);
        tr = txn_commit(ctx->producer, ctx->consumer, final, x->err, x->errlen);
        x->in_txn = false;
        rd_kafka_topic_partition_list_destroy(final);
    }
    if (tr != TXN_OK)
        return batch_from_txn(tr);
    LOG_INFO(ev->event_id, "broadcast to topic %s expanded to %lld user(s)", ev->topic,
             x->expanded);
    const char *fp[2] = {ev->event_id, x->gen};
    char why[256];
    if (pg_exec_prepared(ctx->db, "bc_finish", 2, fp, NULL, NULL, 0, NULL, why, sizeof why) !=
        PG_OK)
        LOG_WARN(ev->event_id, "broadcast progress row left behind: %s", why);
    return BATCH_OK;
}

batch_status broadcast_expand(const broadcast_ctx *ctx, const event *ev,
                              const rd_kafka_message_t *msg, status_batch *sb, char *err,
                              size_t errlen)
{
    expansion x = {.ctx = ctx, .ev = ev, .msg = msg, .sb = sb, .err = err, .errlen = errlen};
    batch_status ret;
    snprintf(x.gen, sizeof x.gen, "%d", ev->generation);
    snprintf(x.pagelen, sizeof x.pagelen, "%ld", ctx->page);
    if (splice_init(&x.sp, ev) != 0) {
        error_set(err, errlen, "broadcast: cannot serialize the per-user event");
        ret = BATCH_FATAL;
    } else if ((ret = expansion_start(&x)) == BATCH_OK) {
        x.fence = offset_list(msg, msg->offset);
        bool end = false;
        while (ret == BATCH_OK && !end) {
            ret = expand_chunk(&x, &end);
            if (ret == BATCH_OK && !end && *ctx->stop)
                ret = BATCH_STOPPED;
        }
        if (ret == BATCH_OK)
            ret = expansion_finish(&x);
    }
    if (x.in_txn) {
        char why[256];
        if (txn_abort(ctx->producer, why, sizeof why) != TXN_OK) {
            LOG_ERROR(ev->event_id, "abort failed: %s", why);
            ret = BATCH_FATAL;
        }
    }
    PQclear(x.res);
    if (x.fence != NULL)
        rd_kafka_topic_partition_list_destroy(x.fence);
    splice_free(&x.sp);
    return ret;
}
