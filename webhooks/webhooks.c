/*
 * webhooks: see webhooks.h.
 *
 * The sender runs on the loop thread: up to HERALD_WEBHOOKS_CONCURRENCY
 * POSTs in flight (post.h), at most one per endpoint (keyq.h), the calls
 * of a busy endpoint waiting in order behind its current one.  An
 * endpoint slow to answer thus holds one request slot, and a call that
 * failed leaves for webhooks.retry at once, so its backoff holds none.
 * What follows an answer (the attempt row, the retry or dead letter and
 * its acknowledgement) is quick and done inline.
 */
#include "webhooks.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "assignment.h"
#include "daemon.h"
#include "dlq.h"
#include "dueq.h"
#include "endpoints.h"
#include "error.h"
#include "feeder.h"
#include "headers.h"
#include "ids.h"
#include "kafka.h"
#include "keyq.h"
#include "log.h"
#include "metrics.h"
#include "offsets.h"
#include "opsserver.h"
#include "pg.h"
#include "post.h"
#include "retry.h"
#include "timeutil.h"
#include "topics.h"
#include "vec.h"

#define COMMIT_INTERVAL_MS 1000
#define POLL_MS            100
#define DB_RETRY_MS        1000 /* a call whose rows could not be written waits this long */
#define ACK_WAIT_MS        30000
#define DLQ_STAGE          "webhooks"
#define INTAKE_PER_PASS    100 /* records taken from the consumer per pass */
#define POST_WAIT_MS       20  /* wait on the requests' sockets per pass */

enum { TOPIC_CALLS = 0, TOPIC_RETRY, NTOPICS };

/*
 * One call: held until its retry is due, waiting behind its endpoint's
 * call in flight, or in flight.  Every job is on the all list.
 */
typedef struct job {
    rd_kafka_message_t *msg;
    int topic;
    uint64_t epoch;
    char id[ID_UUID_SIZE], endpoint[ID_UUID_SIZE], type[64];
    int attempt; /* this one; the first is 1 */
    struct job *all_prev, *all_next;
} job;

/* What start() did with a job that holds its endpoint's key. */
typedef enum {
    START_IN_FLIGHT, /* the POST is on its way; the key stays held */
    START_FINISHED,  /* settled, or put back for later: the key is free to pass on */
} start_result;

struct webhooks {
    const webhooks_config *cfg;
    const herald_common_config *common;
    const config_kafka_props *props;
    const volatile sig_atomic_t *stop;
    daemon_health health;
    metrics_registry *reg;
    opsserver *ops;
    feeder *feeder;
    /* The sender; NULL in the feeder role. */
    pg_conn *db;
    kafka_consumer *consumer;
    kafka_producer *producer;
    post_pool *posts;
    keyq *endpoints; /* one call in flight per endpoint */
    job *all;
    size_t njobs;
    char topics[NTOPICS][256];
    char dlq_topic[256];
    offsets *offs;
    dueq *held;
    assignment parts;
    retry_policy policy;
    uint64_t rng;
    bool stored_since_commit;
    int64_t last_commit;
    bool fatal;
    /* The produce being waited for. */
    bool ack_done;
    rd_kafka_resp_err_t ack_err;
    struct {
        metrics_counter *ok, *retried, *dead, *skipped, *disabled;
        metrics_histogram *latency;
        metrics_gauge *held;
    } m;
};

/* ------------------------------------------------------------ partitions */

static void on_rebalance(void *ctx, bool assigned_now, const rd_kafka_topic_partition_list_t *l,
                         bool lost)
{
    webhooks *w = ctx;
    (void)lost;
    if (assignment_rebalance(&w->parts, assigned_now, l, w->offs) != 0)
        w->fatal = true;
}

/* Whether the job's partition is still this member's, as when it was read. */
static bool job_live(webhooks *w, const job *j)
{
    return assignment_live(&w->parts, j->topic, j->msg->partition, j->epoch);
}

static void job_free(webhooks *w, job *j)
{
    if (j == NULL)
        return;
    if (j->all_prev)
        j->all_prev->all_next = j->all_next;
    else
        w->all = j->all_next;
    if (j->all_next)
        j->all_next->all_prev = j->all_prev;
    w->njobs--;
    rd_kafka_message_destroy(j->msg);
    free(j);
}

static void job_done(webhooks *w, job *j)
{
    offsets_done(w->offs, w->topics[j->topic], j->msg->partition, j->msg->offset);
    job_free(w, j);
}

static void job_ctx(const webhooks *w, const job *j, char *out, size_t outlen)
{
    snprintf(out, outlen, "%s/%" PRId32 "@%" PRId64, w->topics[j->topic], j->msg->partition,
             j->msg->offset);
}

/* --------------------------------------------------------------- produce */

static void on_ack(void *opaque, const kafka_delivery_report *dr)
{
    webhooks *w = opaque;
    w->ack_done = true;
    w->ack_err = dr->err;
}

/*
 * Produces one record and waits for the broker: 0 once acknowledged.  Takes
 * hdrs in every case.  Tried once even while stopping (the drain makes
 * outcomes durable), and again while the broker refuses unless stopping.
 */
static int produce_wait(webhooks *w, const char *topic, const rd_kafka_message_t *msg,
                        rd_kafka_headers_t *hdrs, const char *ctx)
{
    char err[256] = "out of memory";
    int ret = -1;
    for (int tries = 0; !w->fatal; tries++) {
        rd_kafka_headers_t *h = rd_kafka_headers_copy(hdrs);
        w->ack_done = false;
        kafka_status st = h == NULL ? KAFKA_ERR
                                    : kafka_produce(w->producer, topic, msg->key, msg->key_len,
                                                    msg->payload, msg->len, h, w, err, sizeof err);
        if (st == KAFKA_OK) {
            int64_t deadline = timeutil_monotonic_ms() + ACK_WAIT_MS;
            while (!w->ack_done && timeutil_monotonic_ms() < deadline)
                kafka_producer_poll(w->producer, 50);
            if (w->ack_done && w->ack_err == RD_KAFKA_RESP_ERR_NO_ERROR) {
                ret = 0;
                break;
            }
            snprintf(err, sizeof err, "%s",
                     w->ack_done ? rd_kafka_err2str(w->ack_err) : "not acknowledged in time");
        } else {
            if (h != NULL)
                rd_kafka_headers_destroy(h);
            if (st == KAFKA_ERR_FATAL)
                w->fatal = true;
        }
        if (*w->stop)
            break; /* left for redelivery */
        if (tries % 10 == 0)
            LOG_WARN(ctx, "producing to %s: %s; trying again", topic, err);
        kafka_producer_poll(w->producer, 200);
    }
    rd_kafka_headers_destroy(hdrs);
    return ret;
}

static dlq_origin origin_of(const webhooks *w, const job *j)
{
    rd_kafka_timestamp_type_t tstype;
    return (dlq_origin){w->topics[j->topic], j->msg->partition, j->msg->offset,
                        rd_kafka_message_timestamp(j->msg, &tstype)};
}

static int dead_letter(webhooks *w, job *j, const char *reason, const char *error, int attempts,
                       const char *ctx)
{
    dlq_origin o = origin_of(w, j);
    rd_kafka_headers_t *h = dlq_headers(kafka_message_headers(j->msg), reason, error, DLQ_STAGE, &o,
                                        attempts, timeutil_now_ms());
    if (h == NULL)
        return -1;
    LOG_WARN(ctx, "dead-lettered (%s) after %d attempts: %s", reason, attempts, error);
    metrics_counter_inc(w->m.dead);
    return produce_wait(w, w->dlq_topic, j->msg, h, ctx);
}

static int schedule_retry(webhooks *w, job *j, int attempts, int64_t not_before_ms, const char *ctx)
{
    dlq_origin o = origin_of(w, j);
    rd_kafka_headers_t *h =
        dlq_retry_headers(kafka_message_headers(j->msg), &o, attempts, not_before_ms);
    if (h == NULL)
        return -1;
    metrics_counter_inc(w->m.retried);
    return produce_wait(w, w->topics[TOPIC_RETRY], j->msg, h, ctx);
}

/* ---------------------------------------------------------------- calls */

/* Writes the attempt, retrying while PostgreSQL is away; 0 once written. */
static int record_attempt(webhooks *w, const endpoints_attempt *a, const char *ctx)
{
    char err[256];
    bool disabled_now = false;
    /* Tried once even while stopping (the drain makes outcomes durable). */
    for (int tries = 0;; tries++) {
        pg_status st = endpoints_record(w->db, a, w->cfg->disable_after, w->cfg->disable_min_ms,
                                        &disabled_now, err, sizeof err);
        atomic_store(&w->health.pg_up, st != PG_DOWN);
        if (st == PG_OK)
            break;
        if (st == PG_ERROR) {
            LOG_ERROR(ctx, "logging the attempt: %s", err);
            return -1;
        }
        if (*w->stop)
            return -1; /* left for redelivery */
        if (tries % 10 == 0)
            LOG_WARN(ctx, "logging the attempt: %s; trying again", err);
        daemon_beat(&w->health.heartbeat);
        usleep(200 * 1000);
    }
    if (disabled_now) {
        LOG_WARN(ctx, "endpoint %s disabled: %ld attempts in a row failed, the last: %s",
                 a->endpoint_id, w->cfg->disable_after, a->error ? a->error : "");
        metrics_counter_inc(w->m.disabled);
    }
    return 0;
}

/* Puts j back to be tried again in a moment (its outcome could not be made durable). */
static void try_later(webhooks *w, job *j)
{
    if (dueq_push(w->held, timeutil_now_ms() + DB_RETRY_MS, j) != 0) {
        w->fatal = true;
        job_free(w, j);
    }
}

/*
 * Reads the call's endpoint and id from its key and headers: 0, or -1
 * when the record is not a call (it is then dead-lettered, or put back).
 */
static int parse_call(webhooks *w, job *j, const char *ctx)
{
    int64_t before = 0;
    j->endpoint[0] = j->id[0] = j->type[0] = '\0';
    if (j->msg->key_len == ID_UUID_LEN) {
        memcpy(j->endpoint, j->msg->key, ID_UUID_LEN);
        j->endpoint[ID_UUID_LEN] = '\0';
    }
    if (kafka_header_get(j->msg, HDR_WEBHOOK_ID, j->id, sizeof j->id) < 0 || !id_is_uuid(j->id) ||
        kafka_header_get(j->msg, HDR_WEBHOOK_TYPE, j->type, sizeof j->type) < 0 ||
        !id_is_uuid(j->endpoint)) {
        if (dead_letter(w, j, "invalid_call", "no endpoint id key or herald.webhook.* headers", 0,
                        ctx) == 0)
            job_done(w, j);
        else
            try_later(w, j);
        return -1;
    }
    if (kafka_header_get_int64(j->msg, HDR_RETRY_ATTEMPTS, &before) != 0)
        before = 0;
    j->attempt = (int)before + 1;
    return 0;
}

/* Starts the POST of j, which holds its endpoint's key, or settles j without one. */
static start_result start(webhooks *w, job *j)
{
    char ctx[160], err[256];
    endpoints_info ep;
    job_ctx(w, j, ctx, sizeof ctx);
    if (!job_live(w, j)) {
        job_free(w, j); /* its partition moved: the new owner reads it again */
        return START_FINISHED;
    }
    int found = endpoints_load(w->db, j->endpoint, &ep, err, sizeof err);
    atomic_store(&w->health.pg_up, found >= 0);
    if (found < 0) {
        LOG_WARN(ctx, "reading endpoint %s: %s", j->endpoint, err);
        try_later(w, j);
        return START_FINISHED;
    }
    if (found == 0) {
        LOG_INFO(ctx, "call %s: endpoint %s was deleted; dropped", j->id, j->endpoint);
        metrics_counter_inc(w->m.skipped);
        job_done(w, j);
        return START_FINISHED;
    }
    if (!ep.enabled) {
        endpoints_attempt a = {.call_id = j->id,
                               .endpoint_id = j->endpoint,
                               .type = j->type,
                               .attempt = j->attempt,
                               .outcome = "skipped",
                               .error = "endpoint disabled"};
        if (record_attempt(w, &a, ctx) == 0 &&
            dead_letter(w, j, "endpoint_disabled", "the endpoint is disabled", j->attempt - 1,
                        ctx) == 0)
            job_done(w, j);
        else
            try_later(w, j);
        return START_FINISHED;
    }
    if (post_start(w->posts, j, ep.url, ep.secret, j->id, j->attempt, j->msg->payload, j->msg->len,
                   timeutil_now_ms(), err, sizeof err) != 0) {
        LOG_WARN(ctx, "call %s: %s", j->id, err);
        try_later(w, j);
        return START_FINISHED;
    }
    return START_IN_FLIGHT;
}

/* The endpoint's call finished: the next one waiting behind it starts. */
static void pass_key(webhooks *w, const char *endpoint)
{
    char key[ID_UUID_SIZE];
    job *next;
    snprintf(key, sizeof key, "%s", endpoint); /* the job that held it may be gone */
    while ((next = keyq_release(w->endpoints, key)) != NULL)
        if (start(w, next) == START_IN_FLIGHT)
            break;
}

/* Takes j's endpoint's key and starts j, or queues it behind the call holding the key. */
static void run_job(webhooks *w, job *j)
{
    char ctx[160];
    job_ctx(w, j, ctx, sizeof ctx);
    if (!job_live(w, j)) {
        job_free(w, j);
        return;
    }
    if (parse_call(w, j, ctx) != 0)
        return;
    char endpoint[ID_UUID_SIZE];
    memcpy(endpoint, j->endpoint, sizeof endpoint);
    int got = keyq_acquire(w->endpoints, endpoint, j);
    if (got < 0) {
        w->fatal = true;
        job_free(w, j);
    } else if (got == 1 && start(w, j) == START_FINISHED) {
        pass_key(w, endpoint);
    }
}

/* The answer to j's POST (post.h): logs it, then retries, dead-letters or is done. */
static void on_answer(void *ctx_, void *opaque, const post_result *r)
{
    webhooks *w = ctx_;
    job *j = opaque;
    char ctx[160], endpoint[ID_UUID_SIZE];
    job_ctx(w, j, ctx, sizeof ctx);
    memcpy(endpoint, j->endpoint, sizeof endpoint);
    metrics_histogram_observe(w->m.latency, (double)r->latency_ms / 1000.0);
    int64_t not_before = 0;
    bool retry = r->outcome == POST_RETRY &&
                 retry_decide(&w->policy, j->attempt, r->retry_after_ms, timeutil_now_ms(), &w->rng,
                              &not_before) == RETRY_SCHEDULE;
    endpoints_attempt a = {.call_id = j->id,
                           .endpoint_id = j->endpoint,
                           .type = j->type,
                           .attempt = j->attempt,
                           .http_status = r->status,
                           .latency_ms = r->latency_ms,
                           .outcome = r->outcome == POST_OK ? "ok"
                                      : retry               ? "retry"
                                                            : "dead",
                           .error = r->outcome == POST_OK ? NULL : r->error};
    LOG_DEBUG(ctx, "call %s to %s attempt %d: %s (%ld, %" PRId64 " ms)", j->id, j->endpoint,
              j->attempt, a.outcome, r->status, r->latency_ms);
    int durable = record_attempt(w, &a, ctx);
    if (durable == 0 && r->outcome == POST_OK)
        metrics_counter_inc(w->m.ok);
    else if (durable == 0 && retry)
        durable = schedule_retry(w, j, j->attempt, not_before, ctx);
    else if (durable == 0)
        durable = dead_letter(w, j, r->outcome == POST_DEAD ? "permanent_failure" : "max_attempts",
                              r->error, j->attempt, ctx);
    if (durable == 0)
        job_done(w, j);
    else
        try_later(w, j); /* posted again later, with the same id */
    pass_key(w, endpoint);
}

static void accept_record(webhooks *w, rd_kafka_message_t *msg)
{
    int t = assignment_topic(&w->parts, rd_kafka_topic_name(msg->rkt));
    assignment_part *a = t < 0 ? NULL : assignment_find(&w->parts, t, msg->partition);
    job *j = a == NULL ? NULL : calloc(1, sizeof *j);
    if (j == NULL || offsets_track(w->offs, w->topics[t], msg->partition, msg->offset) != 0) {
        if (a != NULL)
            w->fatal = true;
        free(j);
        rd_kafka_message_destroy(msg);
        return;
    }
    j->msg = msg;
    j->topic = t;
    j->epoch = a->epoch;
    j->all_next = w->all;
    if (w->all)
        w->all->all_prev = j;
    w->all = j;
    w->njobs++;
    int64_t due = 0;
    if (t == TOPIC_RETRY && kafka_header_get_int64(msg, HDR_RETRY_NOT_BEFORE, &due) == 0 &&
        due > timeutil_now_ms()) {
        if (dueq_push(w->held, due, j) != 0) {
            w->fatal = true;
            job_free(w, j);
        }
        return;
    }
    run_job(w, j);
}

/* -------------------------------------------------------------- offsets */

static void store_offsets(webhooks *w, bool commit_now)
{
    offsets_position pos[64];
    size_t n;
    int64_t now = timeutil_monotonic_ms();
    rd_kafka_t *rk = kafka_consumer_rk(w->consumer);
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

/* ----------------------------------------------------------------- loop */

static void pass(webhooks *w)
{
    daemon_beat(&w->health.heartbeat);
    if (w->consumer == NULL) {
        const struct timespec tick = {0, POLL_MS * 1000000L};
        nanosleep(&tick, NULL);
        return;
    }
    int64_t now = timeutil_now_ms();
    int64_t due = dueq_next_due(w->held);
    bool busy = post_in_flight(w->posts) > 0;
    int timeout = busy || due <= now ? 0 : due - now < POLL_MS ? (int)(due - now) : POLL_MS;
    /* Intake stops while every request slot is taken or the jobs held in
     * memory reach their bound; the records wait in the broker. */
    for (int i = 0; i < INTAKE_PER_PASS && !post_full(w->posts) &&
                    w->njobs < (size_t)w->cfg->retry_hold_max && !w->fatal;
         i++) {
        rd_kafka_message_t *msg = kafka_consumer_poll(w->consumer, i == 0 ? timeout : 0);
        if (msg == NULL)
            break;
        if (msg->err) {
            char err[256];
            if (kafka_consumer_fatal(w->consumer, err, sizeof err)) {
                LOG_ERROR(NULL, "fatal consumer error: %s", err);
                w->fatal = true;
                atomic_store(&w->health.fatal, true);
            } else if (msg->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                LOG_DEBUG(NULL, "consumer: %s", rd_kafka_message_errstr(msg));
            }
            rd_kafka_message_destroy(msg);
            continue;
        }
        accept_record(w, msg);
    }
    job *j;
    while (!*w->stop && !post_full(w->posts) &&
           (j = dueq_pop_due(w->held, timeutil_now_ms())) != NULL)
        run_job(w, j);
    post_poll(w->posts, post_in_flight(w->posts) > 0 ? POST_WAIT_MS : 0);
    metrics_gauge_set(w->m.held, (double)dueq_size(w->held));
    kafka_producer_poll(w->producer, 0);
    store_offsets(w, false);
}

int webhooks_run(webhooks *w)
{
    while (!*w->stop && !w->fatal)
        pass(w);

    daemon_shutdown(DAEMON_SHUTDOWN_INTAKE);
    feeder_stop(w->feeder); /* its last pass ends with its produces acknowledged */
    w->feeder = NULL;
    if (w->consumer != NULL) {
        /* The answers still coming are awaited until the deadline.  What
         * is not settled by then (no answer yet, retries held, calls
         * waiting behind their endpoint's) keeps its offset uncommitted
         * and is read again by whoever owns the partition next. */
        daemon_shutdown(DAEMON_SHUTDOWN_DRAIN);
        int64_t deadline = timeutil_monotonic_ms() + w->cfg->drain_ms;
        while (post_in_flight(w->posts) > 0 && !w->fatal && timeutil_monotonic_ms() < deadline)
            post_poll(w->posts, POST_WAIT_MS);
        int unanswered = post_in_flight(w->posts);
        daemon_shutdown(DAEMON_SHUTDOWN_COMMIT);
        store_offsets(w, true);
        char err[256];
        if (kafka_consumer_close(w->consumer, err, sizeof err) != KAFKA_OK)
            LOG_WARN(NULL, "closing the consumer: %s", err);
        daemon_shutdown(DAEMON_SHUTDOWN_RELEASE);
        int left = kafka_producer_flush(w->producer, (int)w->cfg->drain_ms);
        LOG_INFO(NULL,
                 "stopped: %d calls unanswered, %zu calls left for redelivery, %d messages "
                 "unflushed",
                 unanswered, w->njobs, left);
    }
    return w->fatal ? 1 : 0;
}

/* --------------------------------------------------------------- set-up */

static int metrics_init(webhooks *w)
{
    metrics_registry *r = w->reg;
    w->m.ok = metrics_counter_get(r, "herald_webhooks_calls_total", "call attempts by outcome",
                                  "outcome=\"ok\"");
    w->m.retried = metrics_counter_get(r, "herald_webhooks_calls_total", "call attempts by outcome",
                                       "outcome=\"retry\"");
    w->m.dead = metrics_counter_get(r, "herald_webhooks_calls_total", "call attempts by outcome",
                                    "outcome=\"dead\"");
    w->m.skipped = metrics_counter_get(r, "herald_webhooks_calls_total", "call attempts by outcome",
                                       "outcome=\"skipped\"");
    w->m.disabled = metrics_counter_get(r, "herald_webhooks_endpoints_disabled_total",
                                        "endpoints disabled for failing persistently", NULL);
    w->m.latency = metrics_histogram_get(
        r, "herald_webhooks_call_seconds", "time of one POST, to its answer or timeout", NULL,
        metrics_default_latency_buckets, metrics_default_latency_buckets_n);
    w->m.held = metrics_gauge_get(r, "herald_webhooks_retry_held",
                                  "retry records held in memory until due", NULL);
    return w->m.ok && w->m.retried && w->m.dead && w->m.skipped && w->m.disabled && w->m.latency &&
                   w->m.held
               ? 0
               : -1;
}

static int open_sender(webhooks *w, char *err, size_t errlen)
{
    pg_options opt = {.application_name = "herald-webhooks sender", .stop = w->stop};
    w->db = pg_connect(w->common->database_url, &opt, err, errlen);
    if (w->db == NULL)
        return -1;
    w->producer = kafka_producer_new(w->common->kafka_brokers, NULL, w->props, NULL, err, errlen);
    if (w->producer == NULL)
        return -1;
    kafka_producer_set_delivery_cb(w->producer, on_ack);
    w->posts =
        post_pool_new((int)w->cfg->concurrency, w->cfg->timeout_ms, on_answer, w, err, errlen);
    w->endpoints = keyq_new();
    if (w->posts == NULL || w->endpoints == NULL)
        return -1;
    /* Fetched soon after a retry is produced, as the channel workers do. */
    static const config_kv consumer_defaults[] = {
        {(char *)"fetch.wait.max.ms", (char *)"100"},
        {(char *)"queued.max.messages.kbytes", (char *)"4096"},
    };
    static const config_kafka_props consumer_props = {
        (config_kv *)consumer_defaults, sizeof consumer_defaults / sizeof consumer_defaults[0]};
    w->consumer =
        kafka_member_consumer_new(w->common->kafka_brokers, w->cfg->group_id, &w->common->member,
                                  &consumer_props, w->props, err, errlen);
    if (w->consumer == NULL)
        return -1;
    kafka_consumer_set_rebalance_cb(w->consumer, on_rebalance, w);
    const char *subs[NTOPICS] = {w->topics[TOPIC_CALLS], w->topics[TOPIC_RETRY]};
    return kafka_consumer_subscribe(w->consumer, subs, NTOPICS, err, errlen) == KAFKA_OK ? 0 : -1;
}

webhooks *webhooks_new(const webhooks_config *cfg, const herald_common_config *common,
                       const config_kafka_props *props, const volatile sig_atomic_t *stop,
                       int *config_error, char *err, size_t errlen)
{
    *config_error = 0;
    webhooks *w = calloc(1, sizeof *w);
    if (w == NULL) {
        error_set(err, errlen, "out of memory");
        return NULL;
    }
    w->cfg = cfg;
    w->common = common;
    w->props = props;
    w->stop = stop;
    w->policy = (retry_policy){(int)cfg->max_attempts, cfg->retry_base_ms, cfg->retry_max_ms};
    w->rng = (uint64_t)timeutil_now_ms() ^ ((uint64_t)getpid() << 32);
    config_topic(common, TOPICS_WEBHOOKS, w->topics[TOPIC_CALLS], sizeof w->topics[0]);
    config_topic(common, TOPICS_WEBHOOKS_RETRY, w->topics[TOPIC_RETRY], sizeof w->topics[0]);
    config_topic(common, TOPICS_DLQ, w->dlq_topic, sizeof w->dlq_topic);
    const char *names[NTOPICS] = {w->topics[TOPIC_CALLS], w->topics[TOPIC_RETRY]};
    assignment_init(&w->parts, names, NTOPICS);
    daemon_health_init(&w->health, "main loop", "fatal Kafka error", common->stall_ms);
    w->reg = metrics_registry_new();
    w->offs = offsets_new();
    w->held = dueq_new();
    if (w->reg == NULL || w->offs == NULL || w->held == NULL || metrics_init(w) != 0) {
        error_set(err, errlen, "out of memory");
        goto fail;
    }
    if (cfg->role != WEBHOOKS_ROLE_FEEDER && open_sender(w, err, errlen) != 0)
        goto fail;
    if (cfg->role != WEBHOOKS_ROLE_SENDER) {
        w->feeder = feeder_start(cfg, common, props, w->reg, &w->health, stop, err, errlen);
        if (w->feeder == NULL)
            goto fail;
    }
    w->ops = daemon_ops_start(cfg->metrics_addr, w->reg, &w->health, err, errlen);
    if (w->ops == NULL) {
        *config_error = 1;
        goto fail;
    }
    LOG_INFO(NULL, "herald-webhooks: %s, topics %s + %s, dead letters %s, metrics on port %u",
             cfg->role == WEBHOOKS_ROLE_ALL      ? "feeder and sender"
             : cfg->role == WEBHOOKS_ROLE_FEEDER ? "feeder"
                                                 : "sender",
             w->topics[0], w->topics[1], w->dlq_topic, (unsigned)opsserver_port(w->ops));
    return w;
fail:
    webhooks_free(w);
    return NULL;
}

void webhooks_free(webhooks *w)
{
    if (w == NULL)
        return;
    opsserver_stop(w->ops);
    feeder_stop(w->feeder);
    kafka_consumer_destroy(w->consumer);
    post_pool_free(w->posts); /* before the jobs: it points at them */
    while (w->all != NULL)
        job_free(w, w->all);
    keyq_free(w->endpoints);
    kafka_producer_destroy(w->producer);
    pg_close(w->db);
    offsets_free(w->offs);
    dueq_free(w->held);
    metrics_registry_free(w->reg);
    assignment_free(&w->parts);
    free(w);
}
