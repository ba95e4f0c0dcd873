/*
 * worker: see worker.h.
 *
 * One thread runs the loop: the consumer, the curl multi handle and the
 * producer's delivery reports.  PostgreSQL batches run on two bgtask
 * threads (claims, outcomes), each with its own connection, so a slow
 * statement never holds up the sends.  The loop sleeps in sender_poll()
 * (epoll) on the transfers' sockets plus a pipe that librdkafka and the
 * bgtasks write to when they have something, so it wakes for whichever comes first
 * and never spins.  Heartbeats are librdkafka's background thread's
 * business; the loop polls the consumer at least once a second, well within
 * max.poll.interval.ms.
 *
 * A record becomes a job.  Its way through the worker:
 *
 *   consumed ──▶ held (not due yet) ──▶ claim batch ──▶ ready ──▶ sending
 *                 (dueq)                 (one stmt)     (per user FIFO)
 *     ──▶ producing (retry / dlq) ──▶ recording (one stmt) ──▶ done
 *
 * "done" marks its offset complete in the tracker; committed positions
 * only move over contiguous done records.  Two keyed queues order jobs:
 * `idem` admits one live job per idempotency key (a duplicate record waits
 * and then finds the row 'sent'), `users` one send per user at a time.
 */
#include "worker.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "backoff.h"
#include "bgtask.h"
#include "breaker.h"
#include "assignment.h"
#include "daemon.h"
#include "delivery.h"
#include "dlq.h"
#include "dueq.h"
#include "error.h"
#include "ids.h"
#include "kafka.h"
#include "keyq.h"
#include "list_unsubscribe.h"
#include "log.h"
#include "metrics.h"
#include "offsets.h"
#include "opsserver.h"
#include "provider.h"
#include "ratelimit.h"
#include "retry.h"
#include "sender.h"
#include "store.h"
#include "timeutil.h"
#include "topics.h"
#include "vec.h"

#define BATCH_MAX          1000 /* records per intake pass, rows per statement */
#define COMMIT_INTERVAL_MS 1000
#define DB_RETRY_MS        1000
#define PRODUCE_RETRY_MS   1000
#define IDLE_WAIT_MS       100
#define PAUSE_MIN_MS       50 /* shorter blocks are waited out without pausing */

enum { TOPIC_DELIVERIES = 0, TOPIC_RETRY = 1, NTOPICS = 2 };
enum { PROV_PRIMARY = 0, PROV_FALLBACK = 1, NPROV = 2 };
typedef enum { PRODUCE_NONE = 0, PRODUCE_RETRY, PRODUCE_DLQ } produce_kind;

typedef struct job job;
typedef struct jobq {
    job *head, *tail;
    size_t n;
} jobq;

struct job {
    job *next;                /* in whichever jobq it is */
    job *all_prev, *all_next; /* every live job, for teardown */
    worker *w;
    /* the record */
    int topic;
    int32_t partition;
    int64_t offset;
    int64_t timestamp_ms;
    uint64_t epoch; /* of the partition's assignment when consumed */
    char *key;
    size_t keylen;
    char *value;
    size_t vlen;
    rd_kafka_headers_t *hdrs;
    /* the delivery */
    bool parsed;
    delivery d;
    int attempts; /* after the claim, this attempt included */
    bool fresh;   /* requeued from the DLQ: its attempts start again */
    bool holds_idem;
    /* the attempt */
    int prov; /* PROV_PRIMARY / PROV_FALLBACK */
    provider_result res;
    /* the outcome */
    const char *status; /* for the row: "sent", "retrying", "failed", "bounced",
                           "undelivered", "suppressed"; NULL: no row */
    char error[300];
    const char *provider_name;
    char provider_id[128];
    int64_t not_before_ms;
    bool dead_token;
    produce_kind produce;
    const char *dlq_reason;
    bool record_after_produce;
    int64_t produce_at; /* monotonic, for a produce that must wait */
};

typedef struct worker_metrics {
    metrics_counter *sends[NPROV][4]; /* by provider_outcome */
    metrics_histogram *latency[NPROV];
    metrics_gauge *breaker[NPROV];
    metrics_counter *attempts;
    metrics_counter *retries;
    metrics_counter *dlq_invalid_json, *dlq_invalid_delivery, *dlq_permanent, *dlq_max_attempts;
    metrics_counter *duplicates;
    metrics_counter *dead_tokens;
    metrics_counter *suppressed, *bounced;
    metrics_counter *consumed;
    metrics_gauge *in_flight;
    metrics_gauge *held;
    metrics_gauge *retry_lag;
    metrics_gauge *pending;
    metrics_gauge *paused;
} worker_metrics;

struct worker {
    const worker_config *cfg;
    const herald_common_config *common;
    const config_kafka_props *props;
    const volatile sig_atomic_t *stop;
    delivery_channel channel;
    const char *chname;
    char stage[32];
    char topics[NTOPICS][256];
    char dlq_topic[256];
    char owner[128];

    provider *prov[NPROV];
    list_unsubscribe *unsub; /* email: NULL when List-Unsubscribe is off */
    breaker *brk[NPROV];
    ratelimit_bucket *bucket;
    retry_policy policy;
    uint64_t rng;

    store *db_claim;  /* used by claim_task's thread */
    store *db_record; /* used by record_task's thread (and the loop when it is idle) */
    bgtask *claim_task;
    bgtask *record_task;
    sender *snd;
    kafka_consumer *consumer;
    kafka_producer *producer;
    int wake[2]; /* librdkafka writes here when a queue gets something */

    offsets *offs;
    keyq *idem;
    keyq *users;
    dueq *held;
    jobq claimq, readyq, syncq, recordq, producewait;
    job *all;
    size_t njobs;     /* every live job */
    size_t producing; /* handed to the producer, report pending */

    assignment parts;
    bool pause_dirty;

    int64_t blocked_until; /* monotonic: rate limit or breakers */
    int64_t db_retry_at;   /* monotonic: PostgreSQL unavailable */
    int64_t last_commit;
    int64_t last_lag;
    bool stored_since_commit;
    bool more_records; /* the last intake stopped at its batch limit */
    bool intake_full;  /* not polling: too much in progress */
    int64_t last_poll; /* monotonic */
    bool intake_paused;
    bool shutting_down;
    bool aborting;
    bool closing;
    bool fatal;

    metrics_registry *reg;
    worker_metrics m;
    opsserver *ops;
    daemon_health health; /* the loop's heartbeat, PostgreSQL */
};

/* ---------------------------------------------------------------- lists */

static void jobq_push(jobq *q, job *j)
{
    j->next = NULL;
    if (q->tail)
        q->tail->next = j;
    else
        q->head = j;
    q->tail = j;
    q->n++;
}

static void jobq_push_front(jobq *q, job *j)
{
    j->next = q->head;
    q->head = j;
    if (q->tail == NULL)
        q->tail = j;
    q->n++;
}

static job *jobq_pop(jobq *q)
{
    job *j = q->head;
    if (j == NULL)
        return NULL;
    q->head = j->next;
    if (q->head == NULL)
        q->tail = NULL;
    q->n--;
    j->next = NULL;
    return j;
}

/* ----------------------------------------------------------------- jobs */

static void job_free(job *j)
{
    worker *w = j->w;
    if (j->all_prev)
        j->all_prev->all_next = j->all_next;
    else
        w->all = j->all_next;
    if (j->all_next)
        j->all_next->all_prev = j->all_prev;
    w->njobs--;
    if (j->hdrs)
        rd_kafka_headers_destroy(j->hdrs);
    delivery_free(&j->d);
    free(j);
}

static job *job_new(worker *w, int topic, rd_kafka_message_t *msg, uint64_t epoch)
{
    /* The key and the value live behind the job, in the same allocation. */
    job *j = malloc(sizeof *j + msg->key_len + 1 + msg->len + 1);
    if (j == NULL)
        return NULL;
    memset(j, 0, sizeof *j);
    j->w = w;
    j->topic = topic;
    j->partition = msg->partition;
    j->offset = msg->offset;
    j->epoch = epoch;
    rd_kafka_timestamp_type_t tstype;
    j->timestamp_ms = rd_kafka_message_timestamp(msg, &tstype);
    j->keylen = msg->key_len;
    j->vlen = msg->len;
    j->key = (char *)(j + 1);
    j->value = j->key + msg->key_len + 1;
    j->hdrs = kafka_headers_copy(msg);
    j->all_next = w->all;
    if (w->all)
        w->all->all_prev = j;
    w->all = j;
    w->njobs++;
    if (j->hdrs == NULL) {
        job_free(j);
        return NULL;
    }
    /*
     * The record `dlq requeue` sent back, or a delivery of a replayed event,
     * not one of their retries (which carry those headers too, and their own
     * attempt count): a delivery not yet sent gets a fresh round of attempts.
     */
    j->fresh = (hdr_has(j->hdrs, HDR_REQUEUED_AT) || hdr_has(j->hdrs, HDR_REPLAYED_AT)) &&
               !hdr_has(j->hdrs, HDR_RETRY_ATTEMPTS);
    if (msg->key_len)
        memcpy(j->key, msg->key, msg->key_len);
    j->key[msg->key_len] = '\0';
    if (msg->len)
        memcpy(j->value, msg->payload, msg->len);
    j->value[msg->len] = '\0';
    return j;
}

static void job_ctx(const job *j, char *out, size_t outlen)
{
    snprintf(out, outlen, "%s/%" PRId32 "@%" PRId64 "%s%s", j->w->topics[j->topic], j->partition,
             j->offset, j->parsed ? " " : "", j->parsed ? j->d.idempotency_key : "");
}

/* Still ours: the partition was not revoked since the record was read. */
static bool job_live(worker *w, const job *j)
{
    return assignment_live(&w->parts, j->topic, j->partition, j->epoch);
}

static void enter_claim(worker *w, job *j);

/* The job's work is over: its offset may be committed. */
static void job_done(worker *w, job *j)
{
    offsets_done(w->offs, w->topics[j->topic], j->partition, j->offset);
    if (j->holds_idem) {
        job *next = keyq_release(w->idem, j->d.idempotency_key);
        if (next) {
            next->holds_idem = true;
            jobq_push(&w->claimq, next);
        }
    }
    job_free(j);
}

/* The job is abandoned (partition revoked, shutdown): no offset moves. */
static void job_drop(worker *w, job *j)
{
    if (j->holds_idem) {
        job *next = keyq_release(w->idem, j->d.idempotency_key);
        if (next) {
            next->holds_idem = true;
            jobq_push(&w->claimq, next);
        }
    }
    job_free(j);
}

/* ------------------------------------------------------------ producing */

static void produce_job(worker *w, job *j);

static void schedule_produce(worker *w, job *j, produce_kind kind, bool record_after)
{
    j->produce = kind;
    j->record_after_produce = record_after;
    produce_job(w, j);
}

static rd_kafka_headers_t *job_headers(worker *w, job *j)
{
    dlq_origin o = {w->topics[j->topic], j->partition, j->offset, j->timestamp_ms};
    if (j->produce == PRODUCE_RETRY)
        return dlq_retry_headers(j->hdrs, &o, j->attempts, j->not_before_ms);
    return dlq_headers(j->hdrs, j->dlq_reason, j->error, w->stage, &o, j->attempts,
                       timeutil_now_ms());
}

static void produce_job(worker *w, job *j)
{
    char err[256], ctx[128];
    rd_kafka_headers_t *h = job_headers(w, j);
    if (h == NULL) {
        w->fatal = true;
        LOG_ERROR(NULL, "out of memory building headers");
        return;
    }
    const char *topic = j->produce == PRODUCE_RETRY ? w->topics[TOPIC_RETRY] : w->dlq_topic;
    kafka_status st = kafka_produce(w->producer, topic, j->key, j->keylen, j->value, j->vlen, h, j,
                                    err, sizeof err);
    if (st == KAFKA_OK) {
        w->producing++;
        return;
    }
    rd_kafka_headers_destroy(h);
    if (st == KAFKA_ERR_FATAL) {
        LOG_ERROR(NULL, "producer failed: %s", err);
        w->fatal = true;
    }
    job_ctx(j, ctx, sizeof ctx);
    if (st != KAFKA_QUEUE_FULL)
        LOG_WARN(ctx, "produce to %s failed, will retry: %s", topic, err);
    j->produce_at = timeutil_monotonic_ms() + (st == KAFKA_QUEUE_FULL ? 10 : PRODUCE_RETRY_MS);
    jobq_push(&w->producewait, j);
}

static void on_delivery_report(void *opaque, const kafka_delivery_report *dr)
{
    job *j = opaque;
    worker *w = j->w;
    w->producing--;
    if (w->closing)
        return; /* purged at teardown: the job is freed with the rest */
    if (dr->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        if (j->produce == PRODUCE_RETRY)
            metrics_counter_inc(w->m.retries);
        if (j->record_after_produce) {
            jobq_push(&w->recordq, j);
        } else {
            job_done(w, j);
        }
        return;
    }
    char ctx[128];
    job_ctx(j, ctx, sizeof ctx);
    if (dr->errclass == KAFKA_ERRCLASS_FATAL) {
        LOG_ERROR(ctx, "produce to %s failed fatally: %s", dr->topic, dr->errstr);
        w->fatal = true;
    } else {
        LOG_WARN(ctx, "produce to %s failed, will retry: %s", dr->topic, dr->errstr);
    }
    j->produce_at = timeutil_monotonic_ms() + PRODUCE_RETRY_MS;
    jobq_push(&w->producewait, j);
}

static void produce_waiting(worker *w, int64_t now)
{
    size_t n = w->producewait.n;
    for (size_t i = 0; i < n; i++) {
        job *j = jobq_pop(&w->producewait);
        if (j->produce_at > now) {
            jobq_push(&w->producewait, j);
            continue;
        }
        produce_job(w, j);
    }
}

static void dead_letter(worker *w, job *j, const char *reason, const char *error, bool record)
{
    char ctx[128];
    job_ctx(j, ctx, sizeof ctx);
    LOG_WARN(ctx, "dead-lettered (%s): %s", reason, error);
    j->dlq_reason = reason;
    snprintf(j->error, sizeof j->error, "%s", error);
    j->status = "failed";
    if (strcmp(reason, "invalid_json") == 0)
        metrics_counter_inc(w->m.dlq_invalid_json);
    else if (strcmp(reason, "invalid_delivery") == 0)
        metrics_counter_inc(w->m.dlq_invalid_delivery);
    else if (strcmp(reason, "max_attempts") == 0)
        metrics_counter_inc(w->m.dlq_max_attempts);
    else
        metrics_counter_inc(w->m.dlq_permanent);
    schedule_produce(w, j, PRODUCE_DLQ, record);
}

/* ------------------------------------------------------------- outcomes */

static void record_outcome(worker *w, job *j)
{
    jobq_push(&w->recordq, j);
}

static void handle_result(worker *w, job *j, const provider_result *res)
{
    char ctx[128];
    job *next = keyq_release(w->users, j->d.user_id);
    if (next)
        jobq_push(&w->readyq, next);
    if (w->aborting) {
        job_drop(w, j); /* outcome unknown: the lease and the offset stay */
        return;
    }
    j->provider_name = provider_name(w->prov[j->prov]);
    snprintf(j->provider_id, sizeof j->provider_id, "%s", res->message_id);
    /* Sends are the hot path and log at debug level: no context unless it is printed. */
    if (res->outcome != PROVIDER_SENT || LOG_LEVEL_DEBUG >= log_min_level)
        job_ctx(j, ctx, sizeof ctx);
    switch (res->outcome) {
    case PROVIDER_SENT:
        LOG_DEBUG(ctx, "sent via %s (attempt %d)", j->provider_name, j->attempts);
        j->status = "sent";
        j->error[0] = '\0';
        record_outcome(w, j);
        return;
    case PROVIDER_DEAD_TOKEN:
        LOG_INFO(ctx, "push token of %s is dead: removing it (%s)", j->d.user_id, res->message);
        metrics_counter_inc(w->m.dead_tokens);
        j->status = "undelivered";
        j->dead_token = true;
        snprintf(j->error, sizeof j->error, "dead_token: %s", res->message);
        record_outcome(w, j);
        return;
    case PROVIDER_PERMANENT:
        if (res->recipient_refused) {
            /* A hard bounce: the address is suppressed with the outcome;
             * nothing to retry or requeue, so no dead letter either. */
            LOG_INFO(ctx, "bounced: %s refused by %s: %s", j->d.address, j->provider_name,
                     res->message);
            metrics_counter_inc(w->m.bounced);
            j->status = "bounced";
            snprintf(j->error, sizeof j->error, "%s", res->message);
            record_outcome(w, j);
            return;
        }
        dead_letter(w, j, "permanent_failure", res->message, true);
        return;
    case PROVIDER_TRANSIENT:
        break;
    }
    int64_t nb = 0;
    if (retry_decide(&w->policy, j->attempts, res->retry_after_ms, timeutil_now_ms(), &w->rng,
                     &nb) == RETRY_EXHAUSTED) {
        char e[300];
        snprintf(e, sizeof e, "%d attempts, last: %s", j->attempts, res->message);
        dead_letter(w, j, "max_attempts", e, true);
        return;
    }
    LOG_INFO(ctx, "attempt %d failed, retry in %" PRId64 " ms: %s", j->attempts,
             nb - timeutil_now_ms(), res->message);
    j->status = "retrying";
    j->not_before_ms = nb;
    snprintf(j->error, sizeof j->error, "%s", res->message);
    schedule_produce(w, j, PRODUCE_RETRY, true);
}

static int outcome_index(provider_outcome o)
{
    return (int)o >= 0 && (int)o < 4 ? (int)o : 1;
}

static void on_send_done(void *ctx, void *opaque, provider *prov, const provider_result *res,
                         int64_t latency_ms)
{
    worker *w = ctx;
    job *j = opaque;
    (void)prov;
    if (!w->aborting) {
        breaker_record(w->brk[j->prov], timeutil_monotonic_ms(), !res->provider_fault);
        metrics_counter_inc(w->m.sends[j->prov][outcome_index(res->outcome)]);
        metrics_histogram_observe(w->m.latency[j->prov], (double)latency_ms / 1000.0);
    }
    handle_result(w, j, res);
}

/* --------------------------------------------------------------- intake */

static void hold_or_claim(worker *w, job *j)
{
    int64_t due = j->d.not_before;
    int64_t hdr = 0;
    if (hdr_get_int64(j->hdrs, HDR_RETRY_NOT_BEFORE, &hdr) != 0)
        hdr = 0;
    if (hdr > due)
        due = hdr;
    if (due > timeutil_now_ms()) {
        if (dueq_push(w->held, due, j) != 0) {
            LOG_ERROR(NULL, "out of memory holding a retry");
            w->fatal = true;
            job_free(j);
            return;
        }
        w->pause_dirty = true;
        return;
    }
    enter_claim(w, j);
}

static void enter_claim(worker *w, job *j)
{
    int r = keyq_acquire(w->idem, j->d.idempotency_key, j);
    if (r < 0) {
        LOG_ERROR(NULL, "out of memory queueing a delivery");
        w->fatal = true;
        job_free(j);
        return;
    }
    if (r == 1) {
        j->holds_idem = true;
        jobq_push(&w->claimq, j);
    }
    /* r == 0: the same delivery is live here; this copy waits for it. */
}

static void accept_record(worker *w, int topic, rd_kafka_message_t *msg)
{
    char err[512], ctx[128];
    const assignment_part *a = assignment_find(&w->parts, topic, msg->partition);
    job *j = job_new(w, topic, msg, a ? a->epoch : 0);
    if (j == NULL || offsets_track(w->offs, w->topics[topic], msg->partition, msg->offset) != 0) {
        LOG_ERROR(NULL, "out of memory taking a record");
        if (j)
            job_free(j);
        w->fatal = true;
        return;
    }
    metrics_counter_inc(w->m.consumed);
    delivery_status st = delivery_parse(j->value, j->vlen, &j->d, err, sizeof err);
    if (st != DELIVERY_OK) {
        dead_letter(w, j, st == DELIVERY_INVALID_JSON ? "invalid_json" : "invalid_delivery", err,
                    false);
        return;
    }
    j->parsed = true;
    if (j->d.channel != w->channel) {
        snprintf(err, sizeof err, "channel: \"%s\" on the %s worker's topic",
                 delivery_channel_name(j->d.channel), w->chname);
        j->parsed = false; /* no row of ours to write */
        dead_letter(w, j, "invalid_delivery", err, false);
        return;
    }
    if (LOG_LEVEL_DEBUG >= log_min_level) { /* the context costs a snprintf per record */
        job_ctx(j, ctx, sizeof ctx);
        LOG_DEBUG(ctx, "consumed (attempt field %d)", j->d.attempt);
    }
    hold_or_claim(w, j);
}

static size_t pending_jobs(const worker *w);

/*
 * The most jobs in progress before intake stops.  A job spends most of its
 * time waiting for statements (its claim, then its outcome's recording),
 * each of which covers up to BATCH_MAX jobs while the next batch gathers, so
 * by Little's law the rate is at most this mark over the time a job takes:
 * room for a claim and a recording in flight and one of each gathering,
 * besides the transfers and what waits for them.
 */
static size_t intake_high(const worker *w)
{
    return (size_t)w->cfg->concurrency * 4 + 4 * BATCH_MAX;
}

/*
 * Takes records while fewer than the high-water mark are in progress.  Above
 * it the consumer is simply not polled: librdkafka keeps what it fetched
 * (bounded by queued.max.messages.kbytes) and stops fetching, so resuming
 * costs nothing, whereas pausing would drop its prefetched records and
 * resuming would wait for a new fetch.  Partitions are paused only for the
 * long waits (breaker, rate limit, database, shutdown).  A poll at least
 * once a second keeps rebalance events served.
 */
static void intake(worker *w, int64_t now)
{
    size_t high = intake_high(w);
    if (pending_jobs(w) >= high && now - w->last_poll < 1000) {
        w->more_records = false;
        w->intake_full = true;
        return;
    }
    if (w->intake_full && pending_jobs(w) >= high / 2 && now - w->last_poll < 1000)
        return;
    w->intake_full = false;
    w->last_poll = now;
    w->more_records = false;
    int limit = pending_jobs(w) >= high ? 1 : BATCH_MAX;
    for (int i = 0; i < limit; i++) {
        rd_kafka_message_t *msg = kafka_consumer_poll(w->consumer, 0);
        if (msg == NULL)
            return;
        if (msg->err) {
            if (msg->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                kafka_err_class c = kafka_classify(msg->err, NULL);
                if (c == KAFKA_ERRCLASS_FATAL) {
                    char err[256];
                    kafka_consumer_fatal(w->consumer, err, sizeof err);
                    LOG_ERROR(NULL, "consumer failed: %s", err);
                    w->fatal = true;
                } else {
                    LOG_WARN(NULL, "consumer: %s", rd_kafka_message_errstr(msg));
                }
            }
            rd_kafka_message_destroy(msg);
            continue;
        }
        int t = msg->rkt ? assignment_topic(&w->parts, rd_kafka_topic_name(msg->rkt)) : -1;
        if (t >= 0)
            accept_record(w, t, msg);
        rd_kafka_message_destroy(msg);
    }
    w->more_records = true;
}

static void release_held(worker *w)
{
    int64_t now = timeutil_now_ms();
    job *j;
    while ((j = dueq_pop_due(w->held, now)) != NULL) {
        w->pause_dirty = true;
        if (!job_live(w, j)) {
            job_drop(w, j);
            continue;
        }
        enter_claim(w, j);
    }
}

/* ---------------------------------------------------------------- claim */

/* One claim statement's batch, handed to claim_task and back. */
typedef struct claim_op {
    size_t n;
    job **jobs;
    store_claim_item *items;
    pg_status st;
    char err[512];
} claim_op;

static void claim_op_free(claim_op *op)
{
    if (op == NULL)
        return;
    free(op->jobs);
    free(op->items);
    free(op);
}

/* Runs on claim_task's thread: touches only the op and its own connection. */
static void run_claim(void *arg, void *ctx)
{
    claim_op *op = arg;
    op->st = store_claim(ctx, op->items, op->n, op->err, sizeof op->err);
}

static void claim_batch(worker *w, int64_t now)
{
    if (w->claimq.n == 0 || now < w->db_retry_at || w->shutting_down || bgtask_busy(w->claim_task))
        return;
    size_t max = w->claimq.n < BATCH_MAX ? w->claimq.n : BATCH_MAX;
    claim_op *op = calloc(1, sizeof *op);
    if (op == NULL || (op->jobs = malloc(max * sizeof *op->jobs)) == NULL ||
        (op->items = malloc(max * sizeof *op->items)) == NULL) {
        claim_op_free(op);
        LOG_ERROR(NULL, "out of memory claiming deliveries");
        w->fatal = true;
        return;
    }
    while (op->n < max && w->claimq.n) {
        job *j = jobq_pop(&w->claimq);
        if (!job_live(w, j)) {
            job_drop(w, j);
            continue;
        }
        op->jobs[op->n] = j;
        op->items[op->n] = (store_claim_item){.key = j->d.idempotency_key,
                                              .event_id = j->d.event_id,
                                              .user_id = j->d.user_id,
                                              .address = j->d.address,
                                              .fresh = j->fresh};
        op->n++;
    }
    if (op->n == 0) {
        claim_op_free(op);
        return;
    }
    bgtask_submit(w->claim_task, op);
}

static void collect_claims(worker *w, int64_t now)
{
    char ctx[128];
    claim_op *op = bgtask_take(w->claim_task);
    if (op == NULL)
        return;
    if (op->st != PG_OK) {
        LOG_WARN(NULL, "claim of %zu deliveries failed (%s), retrying: %s", op->n,
                 pg_status_name(op->st), op->err);
        for (size_t i = op->n; i-- > 0;)
            jobq_push_front(&w->claimq, op->jobs[i]);
        w->db_retry_at = now + (op->st == PG_RETRY ? 0 : DB_RETRY_MS);
        atomic_store(&w->health.pg_up, op->st == PG_RETRY);
        claim_op_free(op);
        return;
    }
    atomic_store(&w->health.pg_up, true);
    for (size_t i = 0; i < op->n; i++) {
        job *j = op->jobs[i];
        const store_claim_item *it = &op->items[i];
        switch (it->result) {
        case STORE_CLAIMED: {
            j->attempts = it->attempts;
            int r = keyq_acquire(w->users, j->d.user_id, j);
            if (r < 0) {
                w->fatal = true;
                job_drop(w, j);
            } else if (r == 1) {
                jobq_push(&w->readyq, j);
            }
            break;
        }
        case STORE_SUPPRESSED:
            job_ctx(j, ctx, sizeof ctx);
            LOG_INFO(ctx, "%s is suppressed (%s): not sending", j->d.address, it->suppressed);
            metrics_counter_inc(w->m.suppressed);
            j->status = "suppressed";
            snprintf(j->error, sizeof j->error, "suppressed: %s", it->suppressed);
            record_outcome(w, j);
            break;
        case STORE_ALREADY_SENT:
            job_ctx(j, ctx, sizeof ctx);
            LOG_INFO(ctx, "already sent: not sending again");
            metrics_counter_inc(w->m.duplicates);
            job_done(w, j);
            break;
        case STORE_LEASED: {
            /* Another worker is sending it now.  Look again once its lease ends:
             * if it finished, the row says sent; if it died, the lease is free. */
            int64_t wall = timeutil_now_ms();
            j->not_before_ms = (it->lease_until_ms > wall ? it->lease_until_ms : wall) + 100;
            j->attempts = 0;
            job_ctx(j, ctx, sizeof ctx);
            LOG_INFO(ctx, "leased by another worker: looking again in %" PRId64 " ms",
                     j->not_before_ms - wall);
            schedule_produce(w, j, PRODUCE_RETRY, false);
            break;
        }
        }
    }
    claim_op_free(op);
}

/* ---------------------------------------------------------------- sends */

static void build_message(worker *w, job *j, provider_message *m, char **data_json)
{
    *data_json = j->d.data ? json_dumps(j->d.data, JSON_COMPACT) : NULL;
    *m = (provider_message){
        .channel = w->chname,
        .idempotency_key = j->d.idempotency_key,
        .event_id = j->d.event_id,
        .user_id = j->d.user_id,
        .to = j->d.address,
        .subject = j->d.subject != NULL ? j->d.subject : j->d.title,
        .body = j->d.body,
        .data_json = *data_json,
        .event_type = j->d.event_type,
        .category = j->d.category,
        .priority = j->d.priority,
    };
}

/* Which provider may take a request now: -1 when none (blocked_until set). */
static int pick_provider(worker *w, int64_t now)
{
    if (breaker_allow(w->brk[PROV_PRIMARY], now))
        return PROV_PRIMARY;
    if (w->prov[PROV_FALLBACK] && breaker_allow(w->brk[PROV_FALLBACK], now))
        return PROV_FALLBACK;
    int64_t wait = breaker_retry_in_ms(w->brk[PROV_PRIMARY], now);
    if (w->prov[PROV_FALLBACK]) {
        int64_t f = breaker_retry_in_ms(w->brk[PROV_FALLBACK], now);
        if (f < wait)
            wait = f;
    }
    w->blocked_until = now + (wait > 0 ? wait : 10);
    return -1;
}

static void start_sends(worker *w, int64_t now)
{
    char err[256];
    if (now < w->blocked_until)
        return;
    while (w->readyq.n && !sender_full(w->snd) && !w->shutting_down) {
        int64_t wait = ratelimit_wait_ms(w->bucket, now, 1);
        if (wait > 0) {
            w->blocked_until = now + wait;
            return;
        }
        int which = pick_provider(w, now);
        if (which < 0)
            return;
        (void)ratelimit_take(w->bucket, now, 1);
        job *j = jobq_pop(&w->readyq);
        j->prov = which;
        metrics_counter_inc(w->m.attempts);
        provider_message m;
        char *data_json = NULL;
        build_message(w, j, &m, &data_json);
        provider *p = w->prov[which];
        if (provider_is_async(p)) {
            if (sender_start(w->snd, p, &m, j, err, sizeof err) != 0) {
                /* The request could not even be built: the message is at fault. */
                breaker_record(w->brk[which], now, true);
                provider_result res = {.outcome = PROVIDER_PERMANENT};
                snprintf(res.message, sizeof res.message, "%s", err);
                handle_result(w, j, &res);
            }
        } else {
            provider_send_now(p, &m, &j->res);
            jobq_push(&w->syncq, j);
        }
        free(data_json);
    }
}

/*
 * The synchronous providers' batch: made durable once (the file
 * provider's fsync, the inbox's update records), then the outcomes.
 */
static void finish_sync(worker *w)
{
    char err[256];
    if (w->syncq.n == 0)
        return;
    bool ok = true;
    for (int i = 0; i < NPROV; i++)
        if (w->prov[i] && !provider_is_async(w->prov[i]) &&
            provider_flush(w->prov[i], err, sizeof err) != 0) {
            LOG_ERROR(NULL, "%s: %s", provider_name(w->prov[i]), err);
            ok = false;
        }
    job *j;
    while ((j = jobq_pop(&w->syncq)) != NULL) {
        if (!ok && j->res.outcome == PROVIDER_SENT) {
            j->res.outcome = PROVIDER_TRANSIENT;
            j->res.provider_fault = true;
            snprintf(j->res.message, sizeof j->res.message, "not durable: %.200s", err);
        }
        on_send_done(w, j, w->prov[j->prov], &j->res, 0);
    }
}

/* -------------------------------------------------------------- records */

/* One batch of outcomes (and dead tokens), handed to record_task and back. */
typedef struct record_op {
    size_t n, ntok;
    job **jobs;
    store_outcome *out;
    const char **tok_users, **tokens;
    pg_status st;
    char err[512];
} record_op;

static void record_op_free(record_op *op)
{
    if (op == NULL)
        return;
    free(op->jobs);
    free(op->out);
    free(op->tok_users);
    free(op->tokens);
    free(op);
}

/* Runs on record_task's thread. */
static void run_record(void *arg, void *ctx)
{
    record_op *op = arg;
    op->st = store_record(ctx, op->out, op->n, op->err, sizeof op->err);
    if (op->st == PG_OK && op->ntok)
        op->st =
            store_delete_tokens(ctx, op->tok_users, op->tokens, op->ntok, op->err, sizeof op->err);
}

static void flush_records(worker *w, int64_t now)
{
    if (w->recordq.n == 0 || now < w->db_retry_at || bgtask_busy(w->record_task))
        return;
    size_t max = w->recordq.n < BATCH_MAX ? w->recordq.n : BATCH_MAX;
    record_op *op = calloc(1, sizeof *op);
    if (op == NULL || (op->jobs = malloc(max * sizeof *op->jobs)) == NULL ||
        (op->out = malloc(max * sizeof *op->out)) == NULL ||
        (op->tok_users = malloc(max * sizeof *op->tok_users)) == NULL ||
        (op->tokens = malloc(max * sizeof *op->tokens)) == NULL) {
        record_op_free(op);
        LOG_ERROR(NULL, "out of memory recording outcomes");
        w->fatal = true;
        return;
    }
    while (op->n < max && w->recordq.n) {
        job *j = jobq_pop(&w->recordq);
        op->jobs[op->n] = j;
        if (j->parsed && j->status) {
            op->out[op->n] = (store_outcome){
                .key = j->d.idempotency_key,
                .status = j->status,
                .error = j->error[0] ? j->error : NULL,
                .provider = j->provider_name,
                .provider_id = j->provider_id,
                .not_before_ms = strcmp(j->status, "retrying") == 0 ? j->not_before_ms : 0,
            };
        } else {
            op->out[op->n] = (store_outcome){.key = "", .status = "failed"}; /* matches no row */
        }
        if (j->dead_token) {
            op->tok_users[op->ntok] = j->d.user_id;
            op->tokens[op->ntok++] = j->d.address;
        }
        op->n++;
    }
    bgtask_submit(w->record_task, op);
}

static void collect_records(worker *w, int64_t now)
{
    record_op *op = bgtask_take(w->record_task);
    if (op == NULL)
        return;
    if (op->st != PG_OK) {
        LOG_WARN(NULL, "recording %zu outcomes failed (%s), retrying: %s", op->n,
                 pg_status_name(op->st), op->err);
        for (size_t i = op->n; i-- > 0;)
            jobq_push_front(&w->recordq, op->jobs[i]);
        w->db_retry_at = now + (op->st == PG_RETRY ? 0 : DB_RETRY_MS);
        atomic_store(&w->health.pg_up, op->st == PG_RETRY);
    } else {
        atomic_store(&w->health.pg_up, true);
        for (size_t i = 0; i < op->n; i++)
            job_done(w, op->jobs[i]);
    }
    record_op_free(op);
}

/* -------------------------------------------------------------- offsets */

/* Lets idle partitions' positions pass the transaction markers at their end. */
static void advance_idle_partitions(worker *w, rd_kafka_t *rk)
{
    if (w->parts.nparts == 0)
        return;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new((int)w->parts.nparts);
    for (size_t i = 0; i < w->parts.nparts; i++)
        rd_kafka_topic_partition_list_add(l, w->topics[w->parts.parts[i].topic],
                                          w->parts.parts[i].partition);
    if (rd_kafka_position(rk, l) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        for (int i = 0; i < l->cnt; i++)
            if (l->elems[i].err == RD_KAFKA_RESP_ERR_NO_ERROR && l->elems[i].offset >= 0)
                offsets_advance_idle(w->offs, l->elems[i].topic, l->elems[i].partition,
                                     l->elems[i].offset);
    }
    rd_kafka_topic_partition_list_destroy(l);
}

static void store_offsets(worker *w, int64_t now, bool commit_now)
{
    offsets_position pos[64];
    size_t n;
    rd_kafka_t *rk = kafka_consumer_rk(w->consumer);
    if (commit_now || now - w->last_commit >= COMMIT_INTERVAL_MS)
        advance_idle_partitions(w, rk);
    while ((n = offsets_collect(w->offs, pos, 64)) > 0) {
        rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new((int)n);
        for (size_t i = 0; i < n; i++)
            rd_kafka_topic_partition_list_add(l, pos[i].topic, pos[i].partition)->offset =
                pos[i].offset;
        rd_kafka_resp_err_t e = rd_kafka_offsets_store(rk, l);
        if (e != RD_KAFKA_RESP_ERR_NO_ERROR && e != RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION)
            LOG_DEBUG(NULL, "offsets_store: %s", rd_kafka_err2str(e));
        rd_kafka_topic_partition_list_destroy(l);
        w->stored_since_commit = true;
        if (n < 64)
            break;
    }
    if (w->stored_since_commit && (commit_now || now - w->last_commit >= COMMIT_INTERVAL_MS)) {
        char err[256];
        if (kafka_consumer_commit(w->consumer, !commit_now, err, sizeof err) != KAFKA_OK)
            LOG_WARN(NULL, "commit: %s", err);
        w->stored_since_commit = false;
        w->last_commit = now;
    }
}

/* ---------------------------------------------------------- flow control */

static size_t pending_jobs(const worker *w)
{
    return w->njobs - dueq_size(w->held);
}

static void set_pause(worker *w, int64_t now)
{
    bool was = w->intake_paused;
    bool blocked = w->blocked_until - now >= PAUSE_MIN_MS || now < w->db_retry_at;
    bool want = w->shutting_down || (blocked && w->readyq.n + w->claimq.n > 0);
    if (want != was) {
        w->intake_paused = want;
        w->pause_dirty = true;
        LOG_DEBUG(NULL, "intake %s", want ? "paused" : "resumed");
    }
    if (!w->pause_dirty)
        return;
    w->pause_dirty = false;
    bool hold_full = dueq_size(w->held) >= (size_t)w->cfg->retry_hold_max;
    rd_kafka_topic_partition_list_t *pause = rd_kafka_topic_partition_list_new(4);
    rd_kafka_topic_partition_list_t *resume = rd_kafka_topic_partition_list_new(4);
    for (size_t i = 0; i < w->parts.nparts; i++) {
        assignment_part *a = &w->parts.parts[i];
        bool p = w->intake_paused || (a->topic == TOPIC_RETRY && hold_full);
        if (p == a->paused)
            continue;
        a->paused = p;
        rd_kafka_topic_partition_list_add(p ? pause : resume, w->topics[a->topic], a->partition);
    }
    rd_kafka_t *rk = kafka_consumer_rk(w->consumer);
    if (pause->cnt)
        rd_kafka_pause_partitions(rk, pause);
    if (resume->cnt)
        rd_kafka_resume_partitions(rk, resume);
    metrics_gauge_set(w->m.paused, w->intake_paused ? 1 : 0);
    rd_kafka_topic_partition_list_destroy(pause);
    rd_kafka_topic_partition_list_destroy(resume);
}

static void on_rebalance(void *ctx, bool assigned_now, const rd_kafka_topic_partition_list_t *l,
                         bool lost)
{
    worker *w = ctx;
    (void)lost;
    if (assignment_rebalance(&w->parts, assigned_now, l, w->offs) != 0)
        w->fatal = true;
    w->pause_dirty = true;
}

/* --------------------------------------------------------------- metrics */

static int metrics_init(worker *w)
{
    static const char *const outcomes[] = {"sent", "transient", "permanent", "dead_token"};
    char l[256];
    metrics_registry *r = w->reg;
    for (int p = 0; p < NPROV; p++) {
        if (w->prov[p] == NULL)
            continue;
        const char *pn = provider_name(w->prov[p]);
        const char *role = p == PROV_PRIMARY ? "primary" : "fallback";
        for (int o = 0; o < 4; o++) {
            if (metrics_labels(l, sizeof l, "channel", w->chname, "provider", pn, "role", role,
                               "outcome", outcomes[o], NULL) != 0)
                return -1;
            w->m.sends[p][o] = metrics_counter_get(r, "herald_worker_sends_total",
                                                   "provider requests by outcome", l);
        }
        if (metrics_labels(l, sizeof l, "channel", w->chname, "provider", pn, "role", role, NULL) !=
            0)
            return -1;
        w->m.latency[p] = metrics_histogram_get(
            r, "herald_worker_provider_latency_seconds", "provider request latency", l,
            metrics_default_latency_buckets, metrics_default_latency_buckets_n);
        w->m.breaker[p] = metrics_gauge_get(r, "herald_worker_breaker_state",
                                            "circuit breaker: 0 closed, 1 open, 2 half-open", l);
    }
    if (metrics_labels(l, sizeof l, "channel", w->chname, NULL) != 0)
        return -1;
    w->m.attempts =
        metrics_counter_get(r, "herald_worker_attempts_total", "send attempts started", l);
    w->m.retries = metrics_counter_get(r, "herald_worker_retries_scheduled_total",
                                       "deliveries produced to the retry topic", l);
    w->m.duplicates = metrics_counter_get(r, "herald_worker_duplicates_skipped_total",
                                          "deliveries found already sent", l);
    w->m.dead_tokens =
        metrics_counter_get(r, "herald_worker_dead_tokens_total", "push tokens removed as dead", l);
    w->m.suppressed = metrics_counter_get(r, "herald_worker_suppressed_total",
                                          "deliveries not sent: address suppressed", l);
    w->m.bounced = metrics_counter_get(r, "herald_worker_bounced_total",
                                       "deliveries whose address the provider refused", l);
    w->m.consumed = metrics_counter_get(r, "herald_worker_records_consumed_total",
                                        "records read from deliveries and retry topics", l);
    w->m.in_flight =
        metrics_gauge_get(r, "herald_worker_in_flight", "provider requests in flight", l);
    w->m.held = metrics_gauge_get(r, "herald_worker_retry_held",
                                  "retry records held in memory until due", l);
    w->m.retry_lag = metrics_gauge_get(
        r, "herald_worker_retry_lag",
        "retry-topic records not yet done on this worker's partitions (held ones included)", l);
    w->m.pending = metrics_gauge_get(r, "herald_worker_pending",
                                     "records taken and not finished (held excluded)", l);
    w->m.paused = metrics_gauge_get(r, "herald_worker_intake_paused",
                                    "1 while intake is paused (backpressure)", l);
    static const char *const reasons[] = {"invalid_json", "invalid_delivery", "permanent_failure",
                                          "max_attempts"};
    metrics_counter **dst[] = {&w->m.dlq_invalid_json, &w->m.dlq_invalid_delivery,
                               &w->m.dlq_permanent, &w->m.dlq_max_attempts};
    for (int i = 0; i < 4; i++) {
        if (metrics_labels(l, sizeof l, "channel", w->chname, "reason", reasons[i], NULL) != 0)
            return -1;
        *dst[i] = metrics_counter_get(r, "herald_worker_dead_letters_total",
                                      "records produced to the DLQ", l);
    }
    return 0;
}

/*
 * The retry topic's depth on our partitions: high watermark minus the
 * committable position.  The watermarks are the ones librdkafka learnt from
 * its last fetch, so this costs no request.
 */
static double retry_lag(worker *w)
{
    rd_kafka_t *rk = kafka_consumer_rk(w->consumer);
    double lag = 0;
    for (size_t i = 0; i < w->parts.nparts; i++) {
        const assignment_part *a = &w->parts.parts[i];
        int64_t lo = 0, hi = 0;
        if (a->topic != TOPIC_RETRY ||
            rd_kafka_get_watermark_offsets(rk, w->topics[TOPIC_RETRY], a->partition, &lo, &hi) !=
                RD_KAFKA_RESP_ERR_NO_ERROR ||
            hi < 0)
            continue;
        int64_t pos = offsets_position_of(w->offs, w->topics[TOPIC_RETRY], a->partition);
        if (pos < 0)
            pos = lo;
        if (pos >= 0 && hi > pos)
            lag += (double)(hi - pos);
    }
    return lag;
}

static void update_gauges(worker *w, int64_t now)
{
    metrics_gauge_set(w->m.in_flight, sender_in_flight(w->snd));
    metrics_gauge_set(w->m.held, (double)dueq_size(w->held));
    if (now - w->last_lag >= 1000) {
        w->last_lag = now;
        metrics_gauge_set(w->m.retry_lag, retry_lag(w));
    }
    metrics_gauge_set(w->m.pending, (double)pending_jobs(w));
    for (int p = 0; p < NPROV; p++)
        if (w->brk[p])
            metrics_gauge_set(w->m.breaker[p], breaker_get_state(w->brk[p], now));
    daemon_beat(&w->health.heartbeat);
}

/* ----------------------------------------------------------------- build */

static provider *make_provider(worker *w, int role, char *err, size_t errlen)
{
    const worker_config *c = w->cfg;
    int kind = role == PROV_PRIMARY ? c->provider[w->channel] : c->fallback_provider[w->channel];
    if (kind == 0)
        return NULL;
    const char *kname = worker_config_providers[kind];
    const char *fb_url = c->fallback_url[w->channel];
    bool fb = role == PROV_FALLBACK;
    char updates[256];
    provider_settings s = {
        .channel = w->chname,
        .timeout_ms = c->provider_timeout_ms,
        .connect_timeout_ms = c->provider_timeout_ms < 5000 ? c->provider_timeout_ms : 5000,
        .insecure_tls = c->tls_insecure,
        .outbox_dir = c->outbox_dir,
    };
    if (strcmp(kname, "smtp") == 0) {
        s.url = fb && fb_url ? fb_url : c->smtp_url;
        s.username = c->smtp_username;
        s.password = c->smtp_password;
        s.from = c->email_from;
        s.ca_file = c->smtp_ca_file;
        s.require_tls = c->smtp_require_tls;
        s.list_unsubscribe = w->unsub;
        s.bounce_address = c->email_bounce_address;
    } else if (strcmp(kname, "http") == 0) {
        bool push = w->channel == DELIVERY_PUSH;
        s.url = fb ? fb_url : (push ? c->push_url : c->sms_url);
        s.auth_token = fb ? c->fallback_auth_token[w->channel]
                          : (push ? c->push_auth_token : c->sms_auth_token);
    } else if (strcmp(kname, "twilio") == 0) {
        s.url = fb ? fb_url : c->sms_url;
        s.username = c->twilio_account_sid;
        s.auth_token = c->twilio_auth_token;
        s.from = c->sms_from;
        s.status_callback = c->twilio_status_callback_url;
    } else if (strcmp(kname, "fcm") == 0) {
        s.url = fb ? fb_url : c->push_url;
        s.project_id = c->fcm_project_id;
        s.auth_token = c->fcm_access_token;
    } else if (strcmp(kname, "inbox") == 0) {
        s.database_url = w->common->database_url;
        s.kafka_brokers = w->common->kafka_brokers;
        s.updates_topic = config_topic(w->common, TOPICS_INBOX_UPDATES, updates, sizeof updates);
        s.kafka_props = w->props;
    }
    if (fb && s.url == NULL && strcmp(kname, "file") != 0 && strcmp(kname, "twilio") != 0 &&
        strcmp(kname, "fcm") != 0 && strcmp(kname, "inbox") != 0) {
        error_set(err, errlen, "HERALD_%s_FALLBACK_URL: required with a %s fallback",
                  w->channel == DELIVERY_EMAIL ? "EMAIL"
                  : w->channel == DELIVERY_SMS ? "SMS"
                                               : "PUSH",
                  kname);
        return NULL;
    }
    return provider_new(kname, &s, err, errlen);
}

/* Names the worker's lease owner: HERALD_WORKER_ID, or host:pid:random. */
static void set_owner(worker *w)
{
    char host[64] = "localhost";
    if (w->cfg->worker_id && *w->cfg->worker_id) {
        snprintf(w->owner, sizeof w->owner, "%s", w->cfg->worker_id);
        return;
    }
    unsigned char r[3] = {0};
    char hex[8];
    (void)!id_random_bytes(r, sizeof r);
    gethostname(host, sizeof host - 1);
    snprintf(w->owner, sizeof w->owner, "%s:%d:%s", host, (int)getpid(), id_hex(r, 3, hex));
}

/* A worker holding its settings, names and topics; nothing opened yet. */
static worker *worker_alloc(const worker_config *cfg, const herald_common_config *common,
                            const config_kafka_props *props, const volatile sig_atomic_t *stop)
{
    char name[128];
    worker *w = calloc(1, sizeof *w);
    if (w == NULL)
        return NULL;
    w->wake[0] = w->wake[1] = -1;
    w->cfg = cfg;
    w->common = common;
    w->props = props;
    w->stop = stop;
    w->channel = (delivery_channel)cfg->channel;
    w->chname = delivery_channel_name(w->channel);
    daemon_health_init(&w->health, "worker loop", "", common->stall_ms);
    snprintf(w->stage, sizeof w->stage, "worker.%s", w->chname);
    config_topic(common, topics_deliveries(w->chname, name, sizeof name),
                 w->topics[TOPIC_DELIVERIES], sizeof w->topics[0]);
    config_topic(common, topics_retry(w->chname, name, sizeof name), w->topics[TOPIC_RETRY],
                 sizeof w->topics[0]);
    config_topic(common, TOPICS_DLQ, w->dlq_topic, sizeof w->dlq_topic);
    const char *names[NTOPICS] = {w->topics[TOPIC_DELIVERIES], w->topics[TOPIC_RETRY]};
    assignment_init(&w->parts, names, NTOPICS);
    set_owner(w);
    w->policy =
        (retry_policy){(int)cfg->max_attempts[w->channel], cfg->retry_base_ms, cfg->retry_max_ms};
    w->rng = (uint64_t)timeutil_now_ms() ^ ((uint64_t)getpid() << 32);
    return w;
}

/* The primary provider and any configured fallback, each with its breaker. */
static int open_providers(worker *w, int *config_error, char *err, size_t errlen)
{
    const worker_config *cfg = w->cfg;
    if (w->channel == DELIVERY_EMAIL) {
        const list_unsubscribe_config lc = {
            .secret = cfg->unsubscribe_secret,
            .url = cfg->unsubscribe_url,
            .mailto = cfg->unsubscribe_mailto,
            .exempt = cfg->unsubscribe_exempt,
            .ttl_ms = cfg->unsubscribe_ttl_ms,
        };
        if (list_unsubscribe_new(&lc, &w->unsub, err, errlen) != 0) {
            *config_error = 1;
            return -1;
        }
    }
    for (int p = 0; p < NPROV; p++) {
        w->prov[p] = make_provider(w, p, err, errlen);
        if (w->prov[p] == NULL && (p == PROV_PRIMARY || cfg->fallback_provider[w->channel])) {
            *config_error = 1;
            return -1;
        }
        if (w->prov[p] == NULL)
            continue;
        breaker_config bc = {.failure_threshold = (unsigned)cfg->breaker_failures,
                             .open_ms = cfg->breaker_open_ms,
                             .max_open_ms = cfg->breaker_open_ms * 8,
                             .half_open_max = 1};
        w->brk[p] = breaker_new(&bc);
        if (w->brk[p] == NULL) {
            error_set(err, errlen, "out of memory");
            return -1;
        }
    }
    return 0;
}

/* The in-memory bookkeeping: rate limit, offsets, key queues, held retries, metrics. */
static int alloc_state(worker *w, char *err, size_t errlen)
{
    w->bucket = ratelimit_new((double)w->cfg->rate[w->channel], 0, timeutil_monotonic_ms());
    w->offs = offsets_new();
    w->idem = keyq_new();
    w->users = keyq_new();
    w->held = dueq_new();
    w->reg = metrics_registry_new();
    if (w->bucket == NULL || w->offs == NULL || w->idem == NULL || w->users == NULL ||
        w->held == NULL || w->reg == NULL || metrics_init(w) != 0) {
        error_set(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

/* The pipe librdkafka, a database thread or a pooled send writes to, to wake the loop. */
static int open_wake_pipe(worker *w, char *err, size_t errlen)
{
    if (pipe(w->wake) != 0 || fcntl(w->wake[0], F_SETFL, O_NONBLOCK) != 0 ||
        fcntl(w->wake[1], F_SETFL, O_NONBLOCK) != 0 ||
        fcntl(w->wake[0], F_SETFD, FD_CLOEXEC) != 0 ||
        fcntl(w->wake[1], F_SETFD, FD_CLOEXEC) != 0) {
        error_set(err, errlen, "pipe: %s", strerror(errno));
        return -1;
    }
    return 0;
}

/* One PostgreSQL connection for each database thread: claims, outcomes. */
static int open_stores(worker *w, char *err, size_t errlen)
{
    const char *url = w->common->database_url;
    w->db_claim = store_new(url, w->chname, w->owner, w->cfg->lease_ms, w->stop, err, errlen);
    if (w->db_claim == NULL)
        return -1;
    w->db_record = store_new(url, w->chname, w->owner, w->cfg->lease_ms, w->stop, err, errlen);
    return w->db_record == NULL ? -1 : 0;
}

/* The producer for retry and DLQ records, reporting to on_delivery_report. */
static int open_producer(worker *w, char *err, size_t errlen)
{
    w->producer = kafka_producer_new(w->common->kafka_brokers, NULL, w->props, NULL, err, errlen);
    if (w->producer == NULL)
        return -1;
    kafka_producer_set_delivery_cb(w->producer, on_delivery_report);
    return 0;
}

/* The consumer, in HERALD_WORKER_GROUP or <prefix>worker.<channel>; subscribed last. */
static int open_consumer(worker *w, char *err, size_t errlen)
{
    char group[600];
    if (w->cfg->group_id && *w->cfg->group_id)
        snprintf(group, sizeof group, "%s", w->cfg->group_id);
    else
        snprintf(group, sizeof group, "%sworker.%s", w->common->topic_prefix, w->chname);
    /* A short broker-side fetch wait: a partition resumed after a pause, or a
     * retry record produced a moment ago, is fetched within 100 ms instead of
     * waiting out a fetch parked on idle partitions (500 ms by default).
     * Prefetch: librdkafka's defaults (100,000 records or 64 MiB queued per
     * consumer, fetch responses of up to 50 MiB, each kept whole while any of
     * its records is in use) made up most of the worker's memory behind a
     * backlog: 80-100 MB.  4 MiB queued is still about ten thousand
     * deliveries, several times the most a worker holds in progress, and
     * the sends/s behind a backlog are the same (bench/channels). */
    static const config_kv consumer_defaults[] = {
        {(char *)"fetch.wait.max.ms", (char *)"100"},
        {(char *)"fetch.max.bytes", (char *)"2097152"},
        {(char *)"queued.min.messages", (char *)"5000"},
        {(char *)"queued.max.messages.kbytes", (char *)"4096"},
    };
    static const config_kafka_props consumer_props = {
        (config_kv *)consumer_defaults, sizeof consumer_defaults / sizeof consumer_defaults[0]};
    w->consumer = kafka_member_consumer_new(w->common->kafka_brokers, group, &w->common->member,
                                            &consumer_props, w->props, err, errlen);
    if (w->consumer == NULL)
        return -1;
    kafka_consumer_set_rebalance_cb(w->consumer, on_rebalance, w);
    return 0;
}

/* Has the consumer's and the producer's queues write to the wake pipe. */
static void wake_on_kafka(worker *w)
{
    rd_kafka_queue_t *q = rd_kafka_queue_get_consumer(kafka_consumer_rk(w->consumer));
    if (q) {
        rd_kafka_queue_io_event_enable(q, w->wake[1], "c", 1);
        rd_kafka_queue_destroy(q);
    }
    q = rd_kafka_queue_get_main(kafka_producer_rk(w->producer));
    if (q) {
        rd_kafka_queue_io_event_enable(q, w->wake[1], "p", 1);
        rd_kafka_queue_destroy(q);
    }
}

/* The two database threads, each on its own store. */
static int start_tasks(worker *w, char *err, size_t errlen)
{
    w->claim_task = bgtask_new(run_claim, w->db_claim, w->wake[1], err, errlen);
    if (w->claim_task == NULL)
        return -1;
    w->record_task = bgtask_new(run_record, w->db_record, w->wake[1], err, errlen);
    return w->record_task == NULL ? -1 : 0;
}

/* Joins the group on the deliveries and retry topics. */
static int subscribe_topics(worker *w, char *err, size_t errlen)
{
    const char *subs[NTOPICS] = {w->topics[TOPIC_DELIVERIES], w->topics[TOPIC_RETRY]};
    return kafka_consumer_subscribe(w->consumer, subs, NTOPICS, err, errlen) == KAFKA_OK ? 0 : -1;
}

/* Serves /metrics, /healthz and /readyz on HERALD_METRICS_ADDR or the channel's default. */
static int start_ops(worker *w, char *err, size_t errlen)
{
    const char *addr = w->cfg->metrics_addr && *w->cfg->metrics_addr
                           ? w->cfg->metrics_addr
                           : worker_config_default_metrics_addr(w->channel);
    w->ops = daemon_ops_start(addr, w->reg, &w->health, err, errlen);
    return w->ops == NULL ? -1 : 0;
}

/* One line saying what this worker sends, through what, and where it is watched. */
static void log_started(const worker *w)
{
    LOG_INFO(NULL,
             "worker %s: channel %s via %s%s%s%s, concurrency %ld, rate %ld/s, max attempts %d, "
             "topics %s + %s, metrics on port %u",
             w->owner, w->chname, provider_name(w->prov[0]), w->prov[1] ? " (fallback " : "",
             w->prov[1] ? provider_name(w->prov[1]) : "", w->prov[1] ? ")" : "",
             w->cfg->concurrency, w->cfg->rate[w->channel], w->policy.max_attempts, w->topics[0],
             w->topics[1], (unsigned)opsserver_port(w->ops));
}

worker *worker_new(const worker_config *cfg, const herald_common_config *common,
                   const config_kafka_props *props, const volatile sig_atomic_t *stop,
                   int *config_error, char *err, size_t errlen)
{
    *config_error = 0;
    worker *w = worker_alloc(cfg, common, props, stop);
    if (w == NULL) {
        error_set(err, errlen, "out of memory");
        return NULL;
    }
    if (worker_config_check(cfg, err, errlen) != 0) {
        *config_error = 1;
        goto fail;
    }
    if (open_providers(w, config_error, err, errlen) != 0)
        goto fail;
    if (alloc_state(w, err, errlen) != 0)
        goto fail;
    if (open_wake_pipe(w, err, errlen) != 0)
        goto fail;
    w->snd = sender_new((int)cfg->concurrency, on_send_done, w, w->wake[1], err, errlen);
    if (w->snd == NULL)
        goto fail;
    if (open_stores(w, err, errlen) != 0)
        goto fail;
    if (open_producer(w, err, errlen) != 0)
        goto fail;
    if (open_consumer(w, err, errlen) != 0)
        goto fail;
    wake_on_kafka(w);
    if (start_tasks(w, err, errlen) != 0)
        goto fail;
    if (subscribe_topics(w, err, errlen) != 0)
        goto fail;
    if (start_ops(w, err, errlen) != 0)
        goto fail;
    log_started(w);
    return w;
fail:
    worker_free(w);
    return NULL;
}

unsigned worker_metrics_port(const worker *w)
{
    return w->ops ? opsserver_port(w->ops) : 0;
}

/* ------------------------------------------------------------------ run */

static int next_timeout(worker *w, int64_t now)
{
    if (w->more_records || w->fatal)
        return 0;
    /* Records left in librdkafka's queue while intake was full raise no new wake-up. */
    if (w->intake_full && pending_jobs(w) < intake_high(w) / 2 && !w->shutting_down)
        return 0;
    bool can_send = w->readyq.n && !sender_full(w->snd) && now >= w->blocked_until;
    if (can_send && !w->shutting_down)
        return 0;
    if (w->claimq.n && now >= w->db_retry_at && !w->shutting_down && !bgtask_busy(w->claim_task))
        return 0;
    if (w->recordq.n && now >= w->db_retry_at && !bgtask_busy(w->record_task))
        return 0;
    int64_t wake = now + IDLE_WAIT_MS;
    if (w->recordq.n && w->db_retry_at > now && w->db_retry_at < wake)
        wake = w->db_retry_at;
    if (w->readyq.n && w->blocked_until > now && w->blocked_until < wake)
        wake = w->blocked_until;
    if (w->claimq.n && w->db_retry_at > now && w->db_retry_at < wake)
        wake = w->db_retry_at;
    for (job *j = w->producewait.head; j; j = j->next)
        if (j->produce_at < wake)
            wake = j->produce_at;
    int64_t due = dueq_next_due(w->held);
    if (due != INT64_MAX) {
        int64_t in = due - timeutil_now_ms();
        if (now + in < wake)
            wake = now + (in > 0 ? in : 0);
    }
    if (w->producing && wake > now + 10)
        wake = now + 10; /* delivery reports also wake us, but a linger must not be missed */
    return wake > now ? (int)(wake - now) : 0;
}

static void drain_wake(worker *w)
{
    char b[256];
    while (read(w->wake[0], b, sizeof b) > 0)
        ;
}

static void pass(worker *w, bool take_records)
{
    /*
     * The wake-up bytes are read before the work they announce is looked
     * at, never after: a transfer or task that finishes while this pass
     * runs leaves its byte for the next sender_poll(), which then returns
     * at once instead of sleeping on a finished send.
     */
    drain_wake(w);
    int64_t now = timeutil_monotonic_ms();
    if (take_records)
        intake(w, now);
    release_held(w);
    collect_claims(w, now);
    claim_batch(w, now);
    start_sends(w, now);
    finish_sync(w);
    produce_waiting(w, now);
    kafka_producer_poll(w->producer, 0);
    collect_records(w, now);
    flush_records(w, now);
    store_offsets(w, now, false);
    set_pause(w, now);
    update_gauges(w, now);
    struct curl_waitfd wfd = {.fd = w->wake[0], .events = CURL_WAIT_POLLIN};
    sender_poll(w->snd, next_timeout(w, now), &wfd, 1);
}

/* Unsent claims go back to the table so the next reader need not wait out the lease. */
static void give_back_claims(worker *w)
{
    char err[256];
    jobq unsent = {0};
    job *j;
    while ((j = jobq_pop(&w->readyq)) != NULL) {
        job *next = keyq_release(w->users, j->d.user_id);
        if (next)
            jobq_push(&w->readyq, next);
        jobq_push(&unsent, j);
    }
    if (unsent.n == 0)
        return;
    const char **keys = calloc(unsent.n, sizeof *keys);
    size_t n = 0;
    for (j = unsent.head; j && keys; j = j->next)
        keys[n++] = j->d.idempotency_key;
    bgtask_wait(w->record_task);
    collect_records(w, timeutil_monotonic_ms());
    if (keys && store_release(w->db_record, keys, n, err, sizeof err) != PG_OK)
        LOG_WARN(NULL, "could not give back %zu claims (their leases will expire): %s", n, err);
    else
        LOG_INFO(NULL, "gave back %zu claimed deliveries not yet sent", n);
    free(keys);
    while ((j = jobq_pop(&unsent)) != NULL)
        job_drop(w, j);
}

int worker_run(worker *w)
{
    while (!*w->stop && !w->fatal)
        pass(w, true);

    daemon_shutdown(DAEMON_SHUTDOWN_INTAKE);
    LOG_INFO(NULL, "stopping: %d sends in flight, %zu records held", sender_in_flight(w->snd),
             dueq_size(w->held));
    w->shutting_down = true;
    set_pause(w, timeutil_monotonic_ms());
    bgtask_wait(w->claim_task);
    collect_claims(w, timeutil_monotonic_ms());
    give_back_claims(w);

    daemon_shutdown(DAEMON_SHUTDOWN_DRAIN); /* in-flight sends, within the deadline */
    int64_t deadline = timeutil_monotonic_ms() + w->cfg->drain_ms;
    while ((sender_in_flight(w->snd) > 0 || w->syncq.n) && !w->fatal &&
           timeutil_monotonic_ms() < deadline) {
        pass(w, false);
        give_back_claims(w); /* users queued behind a finished send */
    }
    int aborted = sender_in_flight(w->snd);
    w->aborting = true;
    sender_abort_all(w->snd);
    w->aborting = false;
    give_back_claims(w);

    daemon_shutdown(DAEMON_SHUTDOWN_DURABLE); /* produce acknowledgements, then rows */
    int64_t flush_deadline = timeutil_monotonic_ms() + 10000;
    while ((w->producing || w->producewait.n || w->recordq.n || bgtask_busy(w->record_task)) &&
           !w->fatal && timeutil_monotonic_ms() < flush_deadline) {
        int64_t now = timeutil_monotonic_ms();
        produce_waiting(w, now);
        kafka_producer_flush(w->producer, 10);
        collect_records(w, now);
        flush_records(w, now);
        if (w->recordq.n || bgtask_busy(w->record_task))
            usleep(2000);
    }

    daemon_shutdown(DAEMON_SHUTDOWN_COMMIT);
    store_offsets(w, timeutil_monotonic_ms(), false);
    char err[256];
    if (kafka_consumer_close(w->consumer, err, sizeof err) != KAFKA_OK)
        LOG_WARN(NULL, "closing the consumer: %s", err);

    daemon_shutdown(DAEMON_SHUTDOWN_RELEASE);
    int left = kafka_producer_flush(w->producer, 5000);
    LOG_INFO(NULL,
             "stopped: %d sends aborted (leased, will be retried with the same key), "
             "%zu outcomes unrecorded, %d messages unflushed, %zu records left for redelivery",
             aborted, w->recordq.n + w->producewait.n, left, w->njobs);
    return w->fatal ? 1 : 0;
}

void worker_free(worker *w)
{
    if (w == NULL)
        return;
    opsserver_stop(w->ops);
    w->closing = true;
    if (w->snd) {
        w->aborting = true;
        sender_abort_all(w->snd);
    }
    kafka_consumer_destroy(w->consumer);
    kafka_producer_destroy(w->producer);
    void *left = NULL;
    bgtask_free(w->claim_task, &left);
    claim_op_free(left);
    left = NULL;
    bgtask_free(w->record_task, &left);
    record_op_free(left);
    while (w->all)
        job_free(w->all);
    sender_free(w->snd);
    store_free(w->db_claim);
    store_free(w->db_record);
    for (int p = 0; p < NPROV; p++) {
        provider_free(w->prov[p]);
        breaker_free(w->brk[p]);
    }
    list_unsubscribe_free(w->unsub);
    ratelimit_free(w->bucket);
    offsets_free(w->offs);
    keyq_free(w->idem);
    keyq_free(w->users);
    dueq_free(w->held);
    metrics_registry_free(w->reg);
    assignment_free(&w->parts);
    if (w->wake[0] >= 0)
        close(w->wake[0]);
    if (w->wake[1] >= 0)
        close(w->wake[1]);
    free(w);
}
