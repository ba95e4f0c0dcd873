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

batch_status broadcast_expand(const broadcast_ctx *ctx, const event *ev,
                              const rd_kafka_message_t *msg, status_batch *sb, char *err,
                              size_t errlen)
{
    batch_status ret = BATCH_RETRY_PG;
    PGresult *res = NULL;
    rd_kafka_topic_partition_list_t *fence = NULL, *final = NULL;
    splice sp = {0};
    char gen[16], last[160], pagelen[16], count[24];
    bool in_txn = false;
    long long expanded = 0;
    pg_status st;

    snprintf(gen, sizeof gen, "%d", ev->generation);
    snprintf(pagelen, sizeof pagelen, "%ld", ctx->page);
    if (splice_init(&sp, ev) != 0) {
        error_set(err, errlen, "broadcast: cannot serialize the per-user event");
        ret = BATCH_FATAL;
        goto out;
    }
    if ((st = pg_prepare(ctx->db, "bc_start", start_sql, 3, err, errlen)) != PG_OK ||
        (st = pg_prepare(ctx->db, "bc_page", page_sql, 3, err, errlen)) != PG_OK ||
        (st = pg_prepare(ctx->db, "bc_progress", progress_sql, 4, err, errlen)) != PG_OK ||
        (st = pg_prepare(ctx->db, "bc_finish", finish_sql, 2, err, errlen)) != PG_OK)
        goto out;
    const char *sp_params[3] = {ev->event_id, gen, ev->topic};
    if (pg_exec_prepared(ctx->db, "bc_start", 3, sp_params, NULL, NULL, 0, &res, err, errlen) !=
        PG_OK)
        goto out;
    snprintf(last, sizeof last, "%s", PQgetvalue(res, 0, 0));
    expanded = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
    PQclear(res);
    res = NULL;
    if (last[0] != '\0')
        LOG_INFO(ev->event_id, "resuming broadcast to topic %s after user %s (%lld done)",
                 ev->topic, last, expanded);

    fence = offset_list(msg, msg->offset);
    bool end = false;
    while (!end) {
        long in_chunk = 0;
        char chunk_last[160];
        snprintf(chunk_last, sizeof chunk_last, "%s", last);
        txn_result tr = txn_begin(ctx->producer, err, errlen);
        if (tr != TXN_OK) {
            ret = batch_from_txn(tr);
            goto out;
        }
        in_txn = true;
        while (in_chunk < ctx->chunk) {
            const char *pp[3] = {ev->topic, chunk_last, pagelen};
            if (pg_exec_prepared(ctx->db, "bc_page", 3, pp, NULL, NULL, 0, &res, err, errlen) !=
                PG_OK)
                goto out; /* RETRY_PG; the open transaction is aborted below */
            int rows = PQntuples(res);
            for (int r = 0; r < rows; r++) {
                const char *uid = PQgetvalue(res, r, 0);
                char id[ID_UUID_SIZE], why[128];
                snprintf(chunk_last, sizeof chunk_last, "%s", uid);
                if (validate_user_id(uid, strlen(uid), why, sizeof why) != 0 ||
                    broadcast_user_event_id(ev->event_id, uid, id) != 0) {
                    LOG_WARN(ev->event_id, "subscriber %s of topic %s skipped: %s", uid, ev->topic,
                             why);
                    continue;
                }
                size_t ul = strlen(uid);
                if (sp.len + ul + 1 > sp.bufcap) {
                    error_set(err, errlen, "broadcast: user id too long");
                    continue;
                }
                size_t vlen = splice_make(&sp, uid, id);
                tr = txn_produce(ctx->producer, ctx->events_topic, uid, ul, sp.buf, vlen, NULL,
                                 ctx->produce_timeout_ms, err, errlen);
                if (tr != TXN_OK) {
                    ret = batch_from_txn(tr);
                    goto out;
                }
                in_chunk++;
            }
            PQclear(res);
            res = NULL;
            if (rows < ctx->page) {
                end = true;
                break;
            }
        }
        if (in_chunk > 0) {
            tr = txn_commit(ctx->producer, ctx->consumer, fence, err, errlen);
            in_txn = false;
            if (tr != TXN_OK) {
                ret = batch_from_txn(tr);
                goto out;
            }
            metrics_counter_add(ctx->produced, (uint64_t)in_chunk);
            snprintf(count, sizeof count, "%ld", in_chunk);
            const char *pr[4] = {ev->event_id, gen, chunk_last, count};
            if (pg_exec_prepared(ctx->db, "bc_progress", 4, pr, NULL, NULL, 0, NULL, err, errlen) !=
                PG_OK)
                goto out; /* the chunk is in Kafka; a redo repeats it with the same ids */
            expanded += in_chunk;
        } else {
            if ((tr = txn_abort(ctx->producer, err, errlen)) != TXN_OK) {
                ret = BATCH_FATAL;
                goto out;
            }
            in_txn = false;
        }
        snprintf(last, sizeof last, "%s", chunk_last);
        if (!end && *ctx->stop) {
            ret = BATCH_STOPPED;
            goto out;
        }
    }

    /* Every subscriber is out: record the broadcast itself, then commit its offset. */
    status_batch_reset(sb);
    if (status_add_event(sb, ev, NULL, 0) != 0) {
        error_set(err, errlen, "broadcast: out of memory");
        ret = BATCH_FATAL;
        goto out;
    }
    if (status_write(sb, ctx->db, err, errlen) != PG_OK)
        goto out;
    txn_result tr = txn_begin(ctx->producer, err, errlen);
    if (tr == TXN_OK) {
        in_txn = true;
        final = offset_list(msg, msg->offset + 1);
        tr = txn_commit(ctx->producer, ctx->consumer, final, err, errlen);
        in_txn = false;
    }
    if (tr != TXN_OK) {
        ret = batch_from_txn(tr);
        goto out;
    }
    LOG_INFO(ev->event_id, "broadcast to topic %s expanded to %lld user(s)", ev->topic, expanded);
    const char *fp[2] = {ev->event_id, gen};
    char why[256];
    if (pg_exec_prepared(ctx->db, "bc_finish", 2, fp, NULL, NULL, 0, NULL, why, sizeof why) !=
        PG_OK)
        LOG_WARN(ev->event_id, "broadcast progress row left behind: %s", why);
    ret = BATCH_OK;
out:
    if (in_txn) {
        char abort_why[256];
        if (txn_abort(ctx->producer, abort_why, sizeof abort_why) != TXN_OK) {
            LOG_ERROR(ev->event_id, "abort failed: %s", abort_why);
            ret = BATCH_FATAL;
        }
    }
    PQclear(res);
    if (fence != NULL)
        rd_kafka_topic_partition_list_destroy(fence);
    if (final != NULL)
        rd_kafka_topic_partition_list_destroy(final);
    splice_free(&sp);
    return ret;
}
