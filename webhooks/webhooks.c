/*
 * webhooks: see webhooks.h.
 *
 * The sender settles one call at a time on the loop thread: the POST is
 * bounded by HERALD_WEBHOOKS_TIMEOUT, and a call that failed leaves the
 * webhooks topic for webhooks.retry at once, so an endpoint that is down
 * costs the others one timeout per call, not its whole backoff.
 */
#include "webhooks.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "daemon.h"
#include "dlq.h"
#include "dueq.h"
#include "endpoints.h"
#include "error.h"
#include "feeder.h"
#include "headers.h"
#include "ids.h"
#include "kafka.h"
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

enum { TOPIC_CALLS = 0, TOPIC_RETRY, NTOPICS };

/* A partition of the assignment; epoch tells a job of an earlier one. */
typedef struct assigned {
    int topic;
    int32_t partition;
    uint64_t epoch;
} assigned;

/* One call being settled, or held until its retry is due. */
typedef struct job {
    rd_kafka_message_t *msg;
    int topic;
    uint64_t epoch;
} job;

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
    post *post;
    char topics[NTOPICS][256];
    char dlq_topic[256];
    offsets *offs;
    dueq *held;
    assigned *parts;
    size_t nparts, capparts;
    uint64_t epoch_seq;
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

static int topic_index(const webhooks *w, const char *name)
{
    for (int t = 0; t < NTOPICS; t++)
        if (strcmp(w->topics[t], name) == 0)
            return t;
    return -1;
}

static assigned *find_part(webhooks *w, int topic, int32_t partition)
{
    for (size_t i = 0; i < w->nparts; i++)
        if (w->parts[i].topic == topic && w->parts[i].partition == partition)
            return &w->parts[i];
    return NULL;
}

static void on_rebalance(void *ctx, bool assigned_now, const rd_kafka_topic_partition_list_t *l,
                         bool lost)
{
    webhooks *w = ctx;
    (void)lost;
    for (int i = 0; i < l->cnt; i++) {
        int t = topic_index(w, l->elems[i].topic);
        if (t < 0)
            continue;
        assigned *a = find_part(w, t, l->elems[i].partition);
        if (assigned_now) {
            if (a == NULL) {
                if (w->nparts == w->capparts) {
                    assigned *np = vec_grow(w->parts, &w->capparts, sizeof *np);
                    if (np == NULL) {
                        w->fatal = true;
                        return;
                    }
                    w->parts = np;
                }
                a = &w->parts[w->nparts++];
            }
            *a = (assigned){t, l->elems[i].partition, ++w->epoch_seq};
        } else if (a != NULL) {
            offsets_forget(w->offs, w->topics[t], a->partition);
            *a = w->parts[--w->nparts];
        }
    }
}

/* Whether the job's partition is still this member's, as when it was read. */
static bool job_live(webhooks *w, const job *j)
{
    assigned *a = find_part(w, j->topic, j->msg->partition);
    return a != NULL && a->epoch == j->epoch;
}

static void job_free(job *j)
{
    if (j == NULL)
        return;
    rd_kafka_message_destroy(j->msg);
    free(j);
}

static void job_done(webhooks *w, job *j)
{
    offsets_done(w->offs, w->topics[j->topic], j->msg->partition, j->msg->offset);
    job_free(j);
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
 * hdrs in every case.  Retried while the broker refuses, until asked to stop.
 */
static int produce_wait(webhooks *w, const char *topic, const rd_kafka_message_t *msg,
                        rd_kafka_headers_t *hdrs, const char *ctx)
{
    char err[256];
    int ret = -1;
    for (int tries = 0; !*w->stop && !w->fatal; tries++) {
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
            rd_kafka_headers_destroy(h);
            if (st == KAFKA_ERR_FATAL)
                w->fatal = true;
        }
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
    for (int tries = 0; !*w->stop; tries++) {
        pg_status st = endpoints_record(w->db, a, w->cfg->disable_after, w->cfg->disable_min_ms,
                                        &disabled_now, err, sizeof err);
        atomic_store(&w->health.pg_up, st != PG_DOWN);
        if (st == PG_OK)
            break;
        if (st == PG_ERROR) {
            LOG_ERROR(ctx, "logging the attempt: %s", err);
            return -1;
        }
        if (tries % 10 == 0)
            LOG_WARN(ctx, "logging the attempt: %s; trying again", err);
        daemon_beat(&w->health.heartbeat);
        usleep(200 * 1000);
    }
    if (*w->stop)
        return -1;
    if (disabled_now) {
        LOG_WARN(ctx, "endpoint %s disabled: %ld attempts in a row failed, the last: %s",
                 a->endpoint_id, w->cfg->disable_after, a->error ? a->error : "");
        metrics_counter_inc(w->m.disabled);
    }
    return 0;
}

/*
 * Settles one call: 0 when its outcome is durable (the job is then done),
 * -1 when it must be tried again later (the job is then the caller's).
 */
static int settle(webhooks *w, job *j)
{
    char ctx[160], err[256], id[ID_UUID_SIZE] = "", type[64] = "", endpoint[ID_UUID_SIZE] = "";
    int64_t before = 0;
    endpoints_info ep;
    job_ctx(w, j, ctx, sizeof ctx);

    if (j->msg->key_len == ID_UUID_LEN)
        memcpy(endpoint, j->msg->key, ID_UUID_LEN);
    if (kafka_header_get(j->msg, HDR_WEBHOOK_ID, id, sizeof id) < 0 || !id_is_uuid(id) ||
        kafka_header_get(j->msg, HDR_WEBHOOK_TYPE, type, sizeof type) < 0 ||
        !id_is_uuid(endpoint)) {
        return dead_letter(w, j, "invalid_call", "no endpoint id key or herald.webhook.* headers",
                           0, ctx);
    }
    if (kafka_header_get_int64(j->msg, HDR_RETRY_ATTEMPTS, &before) != 0)
        before = 0;
    int attempt = (int)before + 1;

    int found = endpoints_load(w->db, endpoint, &ep, err, sizeof err);
    if (found < 0) {
        atomic_store(&w->health.pg_up, false);
        LOG_WARN(ctx, "reading endpoint %s: %s", endpoint, err);
        return -1;
    }
    atomic_store(&w->health.pg_up, true);
    if (found == 0) {
        LOG_INFO(ctx, "call %s: endpoint %s was deleted; dropped", id, endpoint);
        metrics_counter_inc(w->m.skipped);
        return 0;
    }
    endpoints_attempt a = {
        .call_id = id, .endpoint_id = endpoint, .type = type, .attempt = attempt};
    if (!ep.enabled) {
        a.outcome = "skipped";
        a.error = "endpoint disabled";
        if (record_attempt(w, &a, ctx) != 0)
            return -1;
        return dead_letter(w, j, "endpoint_disabled", "the endpoint is disabled", (int)before, ctx);
    }

    post_result r;
    post_call(w->post, ep.url, ep.secret, id, attempt, j->msg->payload, j->msg->len,
              timeutil_now_ms(), &r);
    metrics_histogram_observe(w->m.latency, (double)r.latency_ms / 1000.0);
    int64_t not_before = 0;
    bool retry = r.outcome == POST_RETRY &&
                 retry_decide(&w->policy, attempt, r.retry_after_ms, timeutil_now_ms(), &w->rng,
                              &not_before) == RETRY_SCHEDULE;
    a.http_status = r.status;
    a.latency_ms = r.latency_ms;
    a.outcome = r.outcome == POST_OK ? "ok" : retry ? "retry" : "dead";
    a.error = r.outcome == POST_OK ? NULL : r.error;
    LOG_DEBUG(ctx, "call %s to %s attempt %d: %s (%ld, %" PRId64 " ms)", id, endpoint, attempt,
              a.outcome, r.status, r.latency_ms);
    if (record_attempt(w, &a, ctx) != 0)
        return -1;
    if (r.outcome == POST_OK) {
        metrics_counter_inc(w->m.ok);
        return 0;
    }
    if (retry)
        return schedule_retry(w, j, attempt, not_before, ctx);
    return dead_letter(w, j, r.outcome == POST_DEAD ? "permanent_failure" : "max_attempts", r.error,
                       attempt, ctx);
}

/* Settles j now or puts it back in the heap for a later try. */
static void run_job(webhooks *w, job *j)
{
    if (!job_live(w, j)) {
        job_free(j); /* its partition moved: the new owner reads it again */
        return;
    }
    if (settle(w, j) == 0) {
        job_done(w, j);
        return;
    }
    if (dueq_push(w->held, timeutil_now_ms() + DB_RETRY_MS, j) != 0) {
        w->fatal = true;
        job_free(j);
    }
}

static void accept_record(webhooks *w, rd_kafka_message_t *msg)
{
    int t = topic_index(w, rd_kafka_topic_name(msg->rkt));
    assigned *a = t < 0 ? NULL : find_part(w, t, msg->partition);
    job *j = a == NULL ? NULL : malloc(sizeof *j);
    if (j == NULL || offsets_track(w->offs, w->topics[t], msg->partition, msg->offset) != 0) {
        if (a != NULL)
            w->fatal = true;
        free(j);
        rd_kafka_message_destroy(msg);
        return;
    }
    *j = (job){msg, t, a->epoch};
    int64_t due = 0;
    if (t == TOPIC_RETRY && kafka_header_get_int64(msg, HDR_RETRY_NOT_BEFORE, &due) == 0 &&
        due > timeutil_now_ms()) {
        if (dueq_push(w->held, due, j) != 0) {
            w->fatal = true;
            job_free(j);
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
    int timeout = due <= now ? 0 : due - now < POLL_MS ? (int)(due - now) : POLL_MS;
    /* A full heap takes no new records until some come due. */
    bool full = dueq_size(w->held) >= (size_t)w->cfg->retry_hold_max;
    rd_kafka_message_t *msg = full ? NULL : kafka_consumer_poll(w->consumer, timeout);
    if (msg != NULL && msg->err) {
        char err[256];
        if (kafka_consumer_fatal(w->consumer, err, sizeof err)) {
            LOG_ERROR(NULL, "fatal consumer error: %s", err);
            w->fatal = true;
            atomic_store(&w->health.fatal, true);
        } else if (msg->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            LOG_DEBUG(NULL, "consumer: %s", rd_kafka_message_errstr(msg));
        }
        rd_kafka_message_destroy(msg);
    } else if (msg != NULL) {
        accept_record(w, msg);
    } else if (full && timeout > 0) {
        const struct timespec tick = {0, (long)timeout * 1000000L};
        nanosleep(&tick, NULL);
    }
    job *j;
    while (!*w->stop && (j = dueq_pop_due(w->held, timeutil_now_ms())) != NULL)
        run_job(w, j);
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
        /* The call in progress finished inside pass(); held retries are
         * not done, so their offsets stay uncommitted and they are read
         * again by whoever owns the partition next. */
        daemon_shutdown(DAEMON_SHUTDOWN_DRAIN);
        size_t held = dueq_size(w->held);
        daemon_shutdown(DAEMON_SHUTDOWN_COMMIT);
        store_offsets(w, true);
        char err[256];
        if (kafka_consumer_close(w->consumer, err, sizeof err) != KAFKA_OK)
            LOG_WARN(NULL, "closing the consumer: %s", err);
        daemon_shutdown(DAEMON_SHUTDOWN_RELEASE);
        int left = kafka_producer_flush(w->producer, (int)w->cfg->drain_ms);
        LOG_INFO(NULL, "stopped: %zu retries held (read again later), %d messages unflushed", held,
                 left);
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
    w->post = post_new(w->cfg->timeout_ms, err, errlen);
    if (w->post == NULL)
        return -1;
    /* Fetched soon after a retry is produced, as the channel workers do. */
    static const config_kv consumer_defaults[] = {
        {(char *)"fetch.wait.max.ms", (char *)"100"},
        {(char *)"queued.max.messages.kbytes", (char *)"4096"},
    };
    static const config_kafka_props consumer_props = {
        (config_kv *)consumer_defaults, sizeof consumer_defaults / sizeof consumer_defaults[0]};
    w->consumer = kafka_consumer_new(w->common->kafka_brokers, w->cfg->group_id, &consumer_props,
                                     w->props, err, errlen);
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
    job *j;
    while (w->held != NULL && (j = dueq_pop(w->held)) != NULL)
        job_free(j);
    kafka_producer_destroy(w->producer);
    post_free(w->post);
    pg_close(w->db);
    offsets_free(w->offs);
    dueq_free(w->held);
    metrics_registry_free(w->reg);
    free(w->parts);
    free(w);
}
