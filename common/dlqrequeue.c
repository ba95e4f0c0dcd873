/*
 * dlqrequeue: see dlqrequeue.h.
 */
#include "dlqrequeue.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "headers.h"
#include "kafka.h"
#include "ledger.h"
#include "partread.h"
#include "timeutil.h"

/* Margin before a claim's time when looking for its requeued record:
 * the claim time is the database server's clock, the record's the broker's
 * or this host's. */
#define DLQREQUEUE_CLOCK_SKEW_MS (5 * 60 * 1000)

/* One record produced and not yet acknowledged. */
typedef struct requeue_pending {
    struct requeue_state *s;
    int32_t partition;
    int64_t offset;
} requeue_pending;

typedef struct requeue_state {
    const dlqrequeue_opts *o;
    kafka_producer *producer;
    /* In-doubt claims being settled: their records are produced again. */
    const ledger_entry *redo;
    size_t redo_n;
    dlqrequeue_counts *c;
    /* The first fatal failure: the run stops with it. */
    dlqrequeue_status fail;
    const char *what;
    char err[512];
} requeue_state;

const char *dlqrequeue_outcome_name(dlqrequeue_outcome o)
{
    static const char *const names[] = {"requeued",    "already_requeued", "skipped", "failed",
                                        "unconfirmed", "would_requeue",    "settled"};
    return (unsigned)o < sizeof names / sizeof names[0] ? names[o] : "unknown";
}

/* Counts res and hands it to the caller's callback. */
static void emit(requeue_state *s, const dlqrequeue_result *res)
{
    long *counter[] = {&s->c->requeued,    &s->c->already, &s->c->skipped, &s->c->failed,
                       &s->c->unconfirmed, &s->c->would,   &s->c->settled};
    (*counter[res->outcome])++;
    if (res->outcome != DLQREQUEUE_SETTLED)
        s->c->matched++;
    if (s->o->report != NULL)
        s->o->report(res, s->o->opaque);
}

static void report(requeue_state *s, int32_t partition, int64_t offset, dlqrequeue_outcome outcome,
                   const char *topic, const char *error, const dlqrec *rec)
{
    dlqrequeue_result res = {.partition = partition,
                             .offset = offset,
                             .outcome = outcome,
                             .topic = topic != NULL ? topic : "",
                             .to_partition = -1,
                             .to_offset = -1,
                             .error = error != NULL ? error : "",
                             .rec = rec};
    emit(s, &res);
}

static int fail(requeue_state *s, dlqrequeue_status st, const char *what, const char *err)
{
    if (s->fail == DLQREQUEUE_OK) {
        s->fail = st;
        s->what = what;
        snprintf(s->err, sizeof(s->err), "%s", err);
    }
    return -1;
}

static void requeue_delivered(void *opaque, const kafka_delivery_report *dr)
{
    requeue_pending *p = opaque;
    requeue_state *s = p->s;
    const char *dlq = s->o->src.topic;
    char err[512], msg[700];
    if (dr->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        if (ledger_ack(s->o->conn, dlq, p->partition, p->offset, err, sizeof(err)) != 0) {
            /* Stays in doubt: the next run finds the record and acks it. */
            snprintf(msg, sizeof(msg), "sent, not recorded: %s", err);
            report(s, p->partition, p->offset, DLQREQUEUE_UNCONFIRMED, dr->topic, msg, NULL);
        } else {
            dlqrequeue_result res = {.partition = p->partition,
                                     .offset = p->offset,
                                     .outcome = DLQREQUEUE_REQUEUED,
                                     .topic = dr->topic,
                                     .to_partition = dr->partition,
                                     .to_offset = dr->offset,
                                     .error = ""};
            emit(s, &res);
        }
    } else if (dr->possibly_persisted) {
        snprintf(msg, sizeof(msg),
                 "%s; it may have been written: the next requeue checks and settles it",
                 rd_kafka_err2str(dr->err));
        report(s, p->partition, p->offset, DLQREQUEUE_UNCONFIRMED, dr->topic, msg, NULL);
    } else if (ledger_release(s->o->conn, dlq, p->partition, p->offset, err, sizeof(err)) != 0) {
        snprintf(msg, sizeof(msg), "not sent: %s; claim kept: %s", rd_kafka_err2str(dr->err), err);
        report(s, p->partition, p->offset, DLQREQUEUE_UNCONFIRMED, dr->topic, msg, NULL);
    } else {
        report(s, p->partition, p->offset, DLQREQUEUE_FAILED, dr->topic, rd_kafka_err2str(dr->err),
               NULL);
    }
    free(p);
}

static bool wanted_position(const requeue_state *s, const dlqrec *rec)
{
    if (s->o->npos == 0)
        return true;
    for (size_t i = 0; i < s->o->npos; i++)
        if (s->o->parts[i] == rec->partition && s->o->offs[i] == rec->offset)
            return true;
    return false;
}

static bool is_redo(const requeue_state *s, const dlqrec *rec)
{
    for (size_t i = 0; i < s->redo_n; i++)
        if (s->redo[i].partition == rec->partition && s->redo[i].offset == rec->offset)
            return true;
    return false;
}

/* Produces the record back (the claim is held); 0, or -1 on a fatal producer error. */
static int requeue_produce(requeue_state *s, const dlqrec *rec)
{
    char *value = NULL, err[512];
    size_t vlen = 0;
    rd_kafka_headers_t *hdrs = NULL;
    requeue_pending *p = NULL;
    int rc = 0;

    if (dlqrec_requeue_value(rec, &value, &vlen) != 0 ||
        (hdrs = dlqrec_requeue_headers(rec, s->o->src.topic, timeutil_now_ms())) == NULL ||
        (p = malloc(sizeof(*p))) == NULL) {
        rc = fail(s, DLQREQUEUE_ERR_OTHER, NULL, "out of memory");
        goto out;
    }
    *p = (requeue_pending){s, rec->partition, rec->offset};
    for (int tries = 0;; tries++) {
        kafka_status st = kafka_produce(s->producer, rec->orig_topic, rec->key, rec->keylen, value,
                                        vlen, hdrs, p, err, sizeof(err));
        if (st == KAFKA_OK) {
            hdrs = NULL;
            p = NULL;
            break;
        }
        if (st == KAFKA_QUEUE_FULL && tries < 100) {
            kafka_producer_poll(s->producer, 100);
            continue;
        }
        /* Not enqueued, so certainly not written: give the claim back. */
        char lerr[256];
        if (ledger_release(s->o->conn, s->o->src.topic, rec->partition, rec->offset, lerr,
                           sizeof(lerr)) != 0)
            report(s, rec->partition, rec->offset, DLQREQUEUE_UNCONFIRMED, rec->orig_topic, lerr,
                   rec);
        else
            report(s, rec->partition, rec->offset, DLQREQUEUE_FAILED, rec->orig_topic, err, rec);
        if (st == KAFKA_ERR_FATAL)
            rc = fail(s, DLQREQUEUE_ERR_KAFKA, "producing failed", err);
        break;
    }
    kafka_producer_poll(s->producer, 0);
out:
    if (hdrs != NULL)
        rd_kafka_headers_destroy(hdrs);
    free(p);
    free(value);
    return rc;
}

/* Why rec cannot go back, into why; NULL when it can. */
static const char *not_requeueable(const requeue_state *s, const dlqrec *rec, char *why,
                                   size_t whylen)
{
    /* Only topics of this installation: a forged header must not make the
     * requeue write anywhere else, nor loop records back into the DLQ. */
    const char *prefix = s->o->topic_prefix;
    if (rec->orig_topic[0] == '\0' || strncmp(rec->orig_topic, prefix, strlen(prefix)) != 0 ||
        strcmp(rec->orig_topic, s->o->src.topic) == 0) {
        snprintf(why, whylen, "original topic \"%s\" is not a topic under prefix \"%s\"",
                 rec->orig_topic, prefix);
        return why;
    }
    /* Sent back unchanged it fails the same way, for every caller: only
     * the producer publishing it again, fixed, can deliver it. */
    if (strcmp(rec->reason, "invalid_json") == 0) {
        snprintf(why, whylen, "invalid_json: not valid JSON, it would fail again");
        return why;
    }
    return NULL;
}

static int requeue_visit(dlqrec *rec, void *opaque)
{
    requeue_state *s = opaque;
    const dlqrequeue_opts *o = s->o;
    char err[512], why[600];
    if (!wanted_position(s, rec))
        return 0;
    bool redo = is_redo(s, rec);
    if (s->redo_n > 0 && !redo)
        return 0;
    if (not_requeueable(s, rec, why, sizeof(why)) != NULL) {
        report(s, rec->partition, rec->offset, DLQREQUEUE_SKIPPED, rec->orig_topic, why, rec);
        return 0;
    }
    if (o->dry_run) {
        int st =
            ledger_recorded(o->conn, o->src.topic, rec->partition, rec->offset, err, sizeof(err));
        if (st < 0)
            return fail(s, DLQREQUEUE_ERR_DB, NULL, err);
        report(s, rec->partition, rec->offset, st == 1 ? DLQREQUEUE_ALREADY : DLQREQUEUE_WOULD,
               rec->orig_topic, NULL, rec);
        return 0;
    }
    if (!redo) {
        int claimed = ledger_claim(o->conn, o->src.topic, rec->partition, rec->offset,
                                   rec->orig_topic, err, sizeof(err));
        if (claimed < 0)
            return fail(s, DLQREQUEUE_ERR_DB, NULL, err);
        if (claimed == 0) {
            report(s, rec->partition, rec->offset, DLQREQUEUE_ALREADY, rec->orig_topic, NULL, rec);
            return 0;
        }
    }
    return requeue_produce(s, rec);
}

/*
 * Reads range of the DLQ through requeue_visit; -1 after fail().  A named
 * record (range->partition >= 0) that is not in the DLQ is skipped, not a
 * failure: the others are still requeued.
 */
static int requeue_scan(requeue_state *s, const partread_range *range, const dlqrec_filter *f)
{
    char err[512];
    dlqscan_status st = dlqscan_run(&s->o->src, range, f, requeue_visit, s, err, sizeof(err));
    switch (st) {
    case DLQSCAN_OK:
        return 0;
    case DLQSCAN_MISSING:
        if (range->partition >= 0 && s->redo_n == 0) {
            report(s, range->partition, range->offset, DLQREQUEUE_SKIPPED, NULL, err, NULL);
            return 0;
        }
        return fail(s, DLQREQUEUE_ERR_MISSING, NULL, err);
    case DLQSCAN_UNREACHABLE:
        return fail(s, DLQREQUEUE_ERR_KAFKA, "cannot read the DLQ", err);
    case DLQSCAN_READ_FAILED:
        return fail(s, DLQREQUEUE_ERR_KAFKA, "reading the DLQ failed", err);
    default:
        /* A visitor failure was recorded by fail() already. */
        return fail(s, DLQREQUEUE_ERR_OTHER, NULL, err[0] != '\0' ? err : "out of memory");
    }
}

/* Marks doubt[k] (those still open, of topic) acknowledged when m is its requeued record. */
static int settle_one(requeue_state *s, rd_kafka_message_t *m, ledger_entry *doubt, size_t from,
                      size_t n, const char *topic)
{
    char got[512], id[512], err[512];
    if (kafka_header_get(m, HDR_REQUEUED_FROM, got, sizeof(got)) <= 0)
        return 0;
    for (size_t k = from; k < n; k++) {
        if (doubt[k].partition < 0 || strcmp(doubt[k].to_topic, topic) != 0)
            continue;
        snprintf(id, sizeof(id), "%s:%d:%" PRId64, s->o->src.topic, (int)doubt[k].partition,
                 doubt[k].offset);
        if (strcmp(id, got) != 0)
            continue;
        if (ledger_ack(s->o->conn, s->o->src.topic, doubt[k].partition, doubt[k].offset, err,
                       sizeof(err)) != 0)
            return fail(s, DLQREQUEUE_ERR_DB, NULL, err);
        report(s, doubt[k].partition, doubt[k].offset, DLQREQUEUE_SETTLED, topic, NULL, NULL);
        doubt[k].partition = -1; /* done */
    }
    return 0;
}

/*
 * Finds which in-doubt claims were in fact produced: reads each target
 * topic from the oldest claim's time for herald.requeued_from.  Marks those
 * acknowledged; the rest stay in doubt[0..*left) for producing again.
 */
static int settle_in_doubt(requeue_state *s, ledger_entry *doubt, size_t n, size_t *left)
{
    char err[512];
    const dlqscan_source *src = &s->o->src;
    for (size_t i = 0; i < n; i++) {
        if (doubt[i].to_topic[0] == '\0' || doubt[i].partition < 0)
            continue;
        char topic[sizeof(doubt[i].to_topic)];
        snprintf(topic, sizeof(topic), "%s", doubt[i].to_topic);
        int64_t since = doubt[i].claimed_ms;
        for (size_t k = i + 1; k < n; k++)
            if (strcmp(doubt[k].to_topic, topic) == 0 && doubt[k].claimed_ms < since)
                since = doubt[k].claimed_ms;
        partread *r = NULL;
        partread_range range = PARTREAD_ALL(src->timeout_ms);
        range.from_ms = since > DLQREQUEUE_CLOCK_SKEW_MS ? since - DLQREQUEUE_CLOCK_SKEW_MS : 0;
        partread_status st =
            partread_open(src->brokers, src->props, topic, &range, &r, err, sizeof(err));
        if (st != PARTREAD_OK && st != PARTREAD_MISSING)
            return fail(s, DLQREQUEUE_ERR_KAFKA, "cannot check earlier requeues", err);
        while (st == PARTREAD_OK) {
            rd_kafka_message_t *m = NULL;
            partread_status nst = partread_next(r, &m, err, sizeof(err));
            if (nst == PARTREAD_END)
                break;
            if (nst != PARTREAD_OK) {
                partread_close(r);
                return fail(s, DLQREQUEUE_ERR_KAFKA, "cannot check earlier requeues", err);
            }
            int rc = settle_one(s, m, doubt, i, n, topic);
            rd_kafka_message_destroy(m);
            if (rc != 0) {
                partread_close(r);
                return -1;
            }
        }
        partread_close(r);
        /* This topic is done: the loop skips its other entries. */
        for (size_t k = i; k < n; k++)
            if (strcmp(doubt[k].to_topic, topic) == 0)
                doubt[k].to_topic[0] = '\0';
    }
    size_t w = 0;
    for (size_t i = 0; i < n; i++)
        if (doubt[i].partition >= 0)
            doubt[w++] = doubt[i];
    *left = w;
    return 0;
}

/* Produces every record of the DLQ that requeue_visit selects, then waits for the acks. */
static int requeue_pass(requeue_state *s)
{
    const dlqrequeue_opts *o = s->o;
    int rc = 0;
    if (o->npos > 0 || s->redo_n > 0) {
        /* Named records: read each one alone instead of the whole topic. */
        size_t n = s->redo_n > 0 ? s->redo_n : o->npos;
        for (size_t i = 0; i < n && rc == 0; i++) {
            partread_range range = PARTREAD_ALL(o->src.timeout_ms);
            range.partition = s->redo_n > 0 ? s->redo[i].partition : o->parts[i];
            range.offset = s->redo_n > 0 ? s->redo[i].offset : o->offs[i];
            rc = requeue_scan(s, &range, s->redo_n > 0 ? NULL : o->filter);
        }
    } else {
        partread_range range = PARTREAD_ALL(o->src.timeout_ms);
        if (o->filter != NULL) {
            range.from_ms = o->filter->since_ms;
            range.to_ms = o->filter->until_ms > 0 ? o->filter->until_ms : -1;
        }
        rc = requeue_scan(s, &range, o->filter);
    }
    /* Unacknowledged ones are purged on destroy; their reports say unconfirmed. */
    if (s->producer != NULL)
        (void)kafka_producer_flush(s->producer, o->src.timeout_ms + 5000);
    return rc;
}

static kafka_producer *requeue_producer(const dlqrequeue_opts *o, char *err, size_t errlen)
{
    char timeout[32];
    /* A default: the operator's own settings win. */
    snprintf(timeout, sizeof(timeout), "%d", o->src.timeout_ms);
    config_kv timeout_kv = {(char *)"message.timeout.ms", timeout};
    config_kafka_props defaults = {&timeout_kv, 1};
    return kafka_producer_new(o->src.brokers, &defaults, o->producer_props, NULL, err, errlen);
}

dlqrequeue_status dlqrequeue_run(const dlqrequeue_opts *o, dlqrequeue_counts *counts,
                                 const char **what, char *err, size_t errlen)
{
    requeue_state s = {.o = o, .c = counts};
    ledger_entry *doubt = NULL;
    size_t ndoubt = 0;
    char lerr[512];

    *counts = (dlqrequeue_counts){0};
    if (what != NULL)
        *what = NULL;
    if (!o->dry_run) {
        if (ledger_lock(o->conn, o->src.topic, 30000, lerr, sizeof(lerr)) != 0) {
            fail(&s, DLQREQUEUE_ERR_DB, NULL, lerr);
            goto out;
        }
        s.producer = requeue_producer(o, lerr, sizeof(lerr));
        if (s.producer == NULL) {
            fail(&s, DLQREQUEUE_ERR_KAFKA, "cannot create a producer", lerr);
            goto out;
        }
        kafka_producer_set_delivery_cb(s.producer, requeue_delivered);

        /* First what an earlier run left in doubt, so nothing is sent twice. */
        if (ledger_in_doubt(o->conn, o->src.topic, &doubt, &ndoubt, lerr, sizeof(lerr)) != 0) {
            fail(&s, DLQREQUEUE_ERR_DB, NULL, lerr);
            goto out;
        }
        if (ndoubt > 0) {
            size_t left = 0;
            if (settle_in_doubt(&s, doubt, ndoubt, &left) != 0)
                goto out;
            s.redo = doubt;
            s.redo_n = left;
            if (left > 0 && requeue_pass(&s) != 0)
                goto out;
            s.redo = NULL;
            s.redo_n = 0;
        }
    }
    (void)requeue_pass(&s);
out:
    /* Destroying purges what is still queued: its reports come now. */
    kafka_producer_destroy(s.producer);
    free(doubt);
    if (what != NULL)
        *what = s.what;
    error_set(err, errlen, "%s", s.err);
    return s.fail;
}
