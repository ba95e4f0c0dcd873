/*
 * dispatcher: see dispatcher.h.
 */
#include "dispatcher.h"

#include <inttypes.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backoff.h"
#include "broadcast.h"
#include "closer.h"
#include "daemon.h"
#include "deadletter.h"
#include "decide.h"
#include "digest.h"
#include "followup.h"
#include "error.h"
#include "event.h"
#include "fanout.h"
#include "headers.h"
#include "kafka.h"
#include "kafka_txn.h"
#include "listener.h"
#include "log.h"
#include "metrics.h"
#include "opsserver.h"
#include "pg.h"
#include "prefs_cache.h"
#include "rules.h"
#include "status.h"
#include "timeutil.h"
#include "topics.h"
#include "tplcache.h"
#include "txn.h"
#include "vec.h"

#define TOPIC_MAX          256
#define IDLE_POLL_MS       100
#define LAG_EVERY_MS       5000
#define SEEK_TIMEOUT_MS    10000
#define PRODUCE_WAIT_MS    60000
#define STATUS_BYTES_CAP   (256u * 1024 * 1024)
#define TEMPLATE_TYPES_MAX 4096  /* event types the template cache holds */
#define PURGE_EVERY_MS     60000 /* finished windows and follow-ups: deleted this often */
#define PURGE_LIMIT        10000 /* rows per table and purge */

/* The skip reasons counted in metrics: decide.h's and fanout.h's. */
static const char *const skip_reasons[] = {
    "unknown_user",        "channel_disabled", "category_opted_out", "no_address",
    "quiet_hours_dropped", "invalid_address",  "render_failed",
};
#define NSKIP (sizeof skip_reasons / sizeof skip_reasons[0])

/* One consumed record of the batch in hand. */
typedef struct slot {
    rd_kafka_message_t *msg;
    event ev;
    event_status parsed;
    char perr[256];
    prefs_user *user;
    tplcache_type *tpl;
    size_t from, to; /* its items in the batch's fanout list */
} slot;

typedef struct dmetrics {
    metrics_counter *events, *dead[2], *deliveries[DELIVERY_CHANNEL_COUNT][2];
    metrics_counter *skips[NSKIP];
    metrics_counter *user_hits, *user_misses, *tpl_hits, *tpl_misses, *invalidations;
    metrics_counter *aborts, *pg_failures, *broadcast_events, *broadcasts;
    metrics_histogram *batch_seconds, *batch_events;
    metrics_gauge *lag, *cache_entries;
    metrics_counter *windows_opened, *windows_closed[2], *digested, *throttled[2];
    metrics_counter *digest_deliveries[DELIVERY_CHANNEL_COUNT], *close_failures;
    metrics_counter *followups[2], *followup_deliveries[DELIVERY_CHANNEL_COUNT], *followups_planned;
} dmetrics;

struct dispatcher {
    const dispatcher_config *cfg;
    const herald_common_config *common;
    const volatile sig_atomic_t *stop;
    char tid[300];
    char t_events[TOPIC_MAX], t_dlq[TOPIC_MAX];
    char t_deliver[DELIVERY_CHANNEL_COUNT][TOPIC_MAX], t_retry[DELIVERY_CHANNEL_COUNT][TOPIC_MAX];
    config_kafka_props props; /* the operator's -X pairs (items shared), for a new producer */
    int renewals;             /* producers replaced since the last committed batch */
    atomic_int outq;          /* the producer's queue, as last seen by the loop (for /metrics) */

    kafka_consumer *consumer;
    kafka_producer *producer;
    pg_conn *db;
    pg_conn *rows_db; /* status parts go to db and rows_db in turn */
    listener *lis;
    prefs_cache *users;
    tplcache *tpls;
    rules *rules;
    status_batch *sb;
    fanout_list fl;
    fanout_options fo;

    slot *slots;
    size_t nslots, cap;
    slot held; /* a broadcast read while a batch was filling: it goes next, alone */
    bool has_held;

    /* PostgreSQL outage: partitions paused until resume_at_ms (monotonic). */
    bool pg_paused;
    int64_t resume_at_ms, pg_delay_ms;
    uint64_t rng;
    int64_t next_lag_ms;

    /* Digest windows and follow-ups: when to look for due ones next. */
    int64_t next_close_ms; /* wall clock, as the windows' close times */
    int64_t next_purge_ms; /* monotonic */

    metrics_registry *reg;
    opsserver *ops;
    dmetrics m;
    daemon_health health; /* the loop's heartbeat, fatal errors, PostgreSQL */
};

/* --------------------------------------------------------------- slots */

static void slot_clear(slot *s)
{
    if (s->msg != NULL)
        rd_kafka_message_destroy(s->msg);
    event_free(&s->ev);
    prefs_user_unref(s->user);
    tplcache_type_unref(s->tpl);
    memset(s, 0, sizeof(*s));
}

static void drop_batch(dispatcher *d)
{
    for (size_t i = 0; i < d->nslots; i++)
        slot_clear(&d->slots[i]);
    d->nslots = 0;
}

static void drop_held(dispatcher *d)
{
    if (d->has_held)
        slot_clear(&d->held);
    d->has_held = false;
}

static bool slot_in(const slot *s, const rd_kafka_topic_partition_list_t *parts)
{
    for (int i = 0; i < parts->cnt; i++)
        if (s->msg->partition == parts->elems[i].partition &&
            strcmp(rd_kafka_topic_name(s->msg->rkt), parts->elems[i].topic) == 0)
            return true;
    return false;
}

/*
 * Rebalances happen inside kafka_consumer_poll(), so only while a batch is
 * filling: records of partitions taken away are dropped (their new owner
 * reads them from the committed offset), the rest of the batch stays.
 */
static void on_rebalance(void *ctx, bool assigned, const rd_kafka_topic_partition_list_t *parts,
                         bool lost)
{
    dispatcher *d = ctx;
    (void)lost;
    if (assigned) {
        d->next_close_ms = 0; /* due windows of the new partitions: look at once */
        return;
    }
    size_t kept = 0;
    for (size_t i = 0; i < d->nslots; i++) {
        if (slot_in(&d->slots[i], parts))
            slot_clear(&d->slots[i]);
        else
            d->slots[kept++] = d->slots[i];
    }
    d->nslots = kept;
    if (d->has_held && slot_in(&d->held, parts))
        drop_held(d);
}

/* --------------------------------------------------------------- metrics */

static double hit_ratio(void *ctx)
{
    dispatcher *d = ctx;
    double h = (double)metrics_counter_value(d->m.user_hits);
    double m = (double)metrics_counter_value(d->m.user_misses);
    return h + m > 0 ? h / (h + m) : 0.0;
}

/* Read on the metrics thread: the loop may replace the producer (renew_producer()). */
static double producer_queue(void *ctx)
{
    dispatcher *d = ctx;
    return (double)atomic_load(&d->outq);
}

static int metrics_init(dispatcher *d)
{
    static const double batch_sizes[] = {1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000};
    metrics_registry *r = d->reg;
    dmetrics *m = &d->m;
    char l[160];
    m->events = metrics_counter_get(r, "herald_dispatcher_events_total",
                                    "events consumed and committed", NULL);
    m->dead[0] = metrics_counter_get(r, "herald_dispatcher_dead_letters_total",
                                     "records sent to the DLQ", "reason=\"invalid_json\"");
    m->dead[1] = metrics_counter_get(r, "herald_dispatcher_dead_letters_total",
                                     "records sent to the DLQ", "reason=\"invalid_event\"");
    for (int c = 0; c < DELIVERY_CHANNEL_COUNT; c++)
        for (int s = 0; s < 2; s++) {
            if (metrics_labels(l, sizeof l, "channel", delivery_channel_name((delivery_channel)c),
                               "status", s == 0 ? "pending" : "scheduled", NULL) != 0)
                return -1;
            m->deliveries[c][s] = metrics_counter_get(
                r, "herald_dispatcher_deliveries_total",
                "deliveries produced, by channel and status (scheduled: quiet hours)", l);
        }
    for (size_t i = 0; i < NSKIP; i++) {
        if (metrics_labels(l, sizeof l, "reason", skip_reasons[i], NULL) != 0)
            return -1;
        m->skips[i] = metrics_counter_get(r, "herald_dispatcher_skips_total",
                                          "channel decisions that produced no delivery", l);
    }
    m->user_hits = metrics_counter_get(r, "herald_dispatcher_cache_lookups_total", "cache lookups",
                                       "cache=\"users\",result=\"hit\"");
    m->user_misses = metrics_counter_get(r, "herald_dispatcher_cache_lookups_total",
                                         "cache lookups", "cache=\"users\",result=\"miss\"");
    m->tpl_hits = metrics_counter_get(r, "herald_dispatcher_cache_lookups_total", "cache lookups",
                                      "cache=\"templates\",result=\"hit\"");
    m->tpl_misses = metrics_counter_get(r, "herald_dispatcher_cache_lookups_total", "cache lookups",
                                        "cache=\"templates\",result=\"miss\"");
    m->invalidations = metrics_counter_get(r, "herald_dispatcher_cache_invalidations_total",
                                           "cache entries dropped by a change notification", NULL);
    m->aborts = metrics_counter_get(r, "herald_dispatcher_batch_retries_total",
                                    "batches aborted and redone", "cause=\"kafka\"");
    m->pg_failures = metrics_counter_get(r, "herald_dispatcher_batch_retries_total",
                                         "batches aborted and redone", "cause=\"postgres\"");
    m->broadcasts = metrics_counter_get(r, "herald_dispatcher_broadcasts_total",
                                        "topic broadcasts fully expanded", NULL);
    m->broadcast_events = metrics_counter_get(r, "herald_dispatcher_broadcast_events_total",
                                              "per-user events produced by broadcasts", NULL);
    m->batch_seconds = metrics_histogram_get(
        r, "herald_dispatcher_batch_seconds", "time to process and commit one batch", NULL,
        metrics_default_latency_buckets, metrics_default_latency_buckets_n);
    m->batch_events =
        metrics_histogram_get(r, "herald_dispatcher_batch_events", "events per committed batch",
                              NULL, batch_sizes, sizeof batch_sizes / sizeof batch_sizes[0]);
    m->lag = metrics_gauge_get(r, "herald_dispatcher_consumer_lag",
                               "events not yet consumed on the assigned partitions", NULL);
    m->cache_entries = metrics_gauge_get(r, "herald_dispatcher_cache_entries",
                                         "users held in the preferences cache", NULL);
    m->windows_opened = metrics_counter_get(r, "herald_dispatcher_digest_windows_opened_total",
                                            "digest windows opened", NULL);
    for (int k = 0; k < 2; k++)
        m->windows_closed[k] =
            metrics_counter_get(r, "herald_dispatcher_digest_windows_closed_total",
                                "digest windows closed (empty: only the event sent at once)",
                                k == 0 ? "result=\"sent\"" : "result=\"empty\"");
    m->digested = metrics_counter_get(r, "herald_dispatcher_digest_events_total",
                                      "channel deliveries of events taken into a digest", NULL);
    for (int k = 0; k < 2; k++)
        m->throttled[k] = metrics_counter_get(r, "herald_dispatcher_throttled_total",
                                              "channel deliveries a throttle rule held back",
                                              k == 0 ? "action=\"drop\"" : "action=\"defer\"");
    for (int c = 0; c < DELIVERY_CHANNEL_COUNT; c++) {
        if (metrics_labels(l, sizeof l, "channel", delivery_channel_name((delivery_channel)c),
                           NULL) != 0)
            return -1;
        m->digest_deliveries[c] = metrics_counter_get(
            r, "herald_dispatcher_digest_deliveries_total", "digest deliveries produced", l);
    }
    for (int k = 0; k < 2; k++)
        m->followups[k] =
            metrics_counter_get(r, "herald_dispatcher_followups_total", "follow-ups that came due",
                                k == 0 ? "result=\"sent\"" : "result=\"cancelled\"");
    m->followups_planned = metrics_counter_get(r, "herald_dispatcher_followups_planned_total",
                                               "follow-ups recorded for in-app deliveries", NULL);
    for (int c = 0; c < DELIVERY_CHANNEL_COUNT; c++) {
        if (metrics_labels(l, sizeof l, "channel", delivery_channel_name((delivery_channel)c),
                           NULL) != 0)
            return -1;
        m->followup_deliveries[c] = metrics_counter_get(
            r, "herald_dispatcher_followup_deliveries_total", "follow-up deliveries produced", l);
    }
    m->close_failures = metrics_counter_get(r, "herald_dispatcher_digest_close_retries_total",
                                            "passes of the digest closer that failed and will be "
                                            "redone",
                                            NULL);
    if (metrics_gauge_fn(r, "herald_dispatcher_cache_hit_ratio",
                         "share of user lookups served from the cache", NULL, hit_ratio, d) != 0 ||
        metrics_gauge_fn(r, "herald_dispatcher_producer_queue",
                         "messages queued or in flight in the producer", NULL, producer_queue,
                         d) != 0)
        return -1;
    return 0;
}

static int skip_index(const char *reason)
{
    for (size_t i = 0; i < NSKIP; i++)
        if (strcmp(reason, skip_reasons[i]) == 0)
            return (int)i;
    return -1;
}

/* Consumer lag from the watermarks librdkafka keeps from its fetches: no request. */
static void update_lag(dispatcher *d)
{
    rd_kafka_t *rk = kafka_consumer_rk(d->consumer);
    rd_kafka_topic_partition_list_t *parts = NULL;
    if (rd_kafka_assignment(rk, &parts) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return;
    int64_t lag = 0;
    if (rd_kafka_position(rk, parts) == RD_KAFKA_RESP_ERR_NO_ERROR)
        for (int i = 0; i < parts->cnt; i++) {
            int64_t lo = 0, hi = 0;
            if (rd_kafka_get_watermark_offsets(rk, parts->elems[i].topic, parts->elems[i].partition,
                                               &lo, &hi) != RD_KAFKA_RESP_ERR_NO_ERROR ||
                hi < 0 || parts->elems[i].offset < 0)
                continue;
            if (hi > parts->elems[i].offset)
                lag += hi - parts->elems[i].offset;
        }
    rd_kafka_topic_partition_list_destroy(parts);
    metrics_gauge_set(d->m.lag, (double)lag);
}

/* ----------------------------------------------------------- invalidation */

static void on_notify(void *ctx, const char *channel, const char *payload)
{
    dispatcher *d = ctx;
    if (strcmp(channel, "herald_user_changed") == 0)
        prefs_cache_invalidate(d->users, payload);
    else if (strcmp(channel, "herald_template_changed") == 0)
        tplcache_invalidate(d->tpls, payload);
    else if (strcmp(channel, "herald_rules_changed") == 0)
        rules_invalidate(d->rules);
    metrics_counter_inc(d->m.invalidations);
}

static void poll_notifications(dispatcher *d)
{
    if (listener_poll(d->lis, timeutil_monotonic_ms(), on_notify, d) == LISTENER_RESET) {
        LOG_INFO("listen", "clearing the caches: change notifications may have been missed");
        prefs_cache_clear(d->users);
        tplcache_clear(d->tpls);
        rules_invalidate(d->rules);
    }
}

/* ------------------------------------------------------------ the batch */

static int add_slot(dispatcher *d, const slot *s)
{
    if (d->nslots == d->cap) {
        slot *v = vec_grow(d->slots, &d->cap, sizeof(*v));
        if (v == NULL)
            return -1;
        d->slots = v;
    }
    d->slots[d->nslots++] = *s;
    return 0;
}

static bool is_broadcast(const slot *s)
{
    return s->parsed == EVENT_OK && s->ev.topic != NULL;
}

/*
 * How long the record has been waiting, by its timestamp (the gateway's
 * produce time), within [0, cap]: a record that already waited in the
 * consumer's queue while the previous batch was processed does not wait the
 * batch wait again.  A clock behind the producer's reads as 0 (the full
 * wait); one ahead only shortens the wait.
 */
static int64_t record_age_ms(const rd_kafka_message_t *msg, int64_t cap)
{
    rd_kafka_timestamp_type_t tt;
    int64_t ts = rd_kafka_message_timestamp(msg, &tt);
    if (ts <= 0 || tt == RD_KAFKA_TIMESTAMP_NOT_AVAILABLE)
        return 0;
    int64_t age = timeutil_now_ms() - ts;
    return age < 0 ? 0 : age > cap ? cap : age;
}

/*
 * Fills the batch.  Returns 0 (possibly with an empty batch: nothing came
 * within the idle poll), or -1 on a fatal consumer error.
 */
static int collect(dispatcher *d)
{
    int64_t started = 0;
    if (d->has_held) {
        /* A broadcast goes alone: earlier records of its partition are committed. */
        int rc = add_slot(d, &d->held);
        if (rc == 0)
            d->has_held = false;
        return rc;
    }
    while (d->nslots < (size_t)d->cfg->batch_size && !*d->stop) {
        int timeout = IDLE_POLL_MS;
        int64_t left = 0;
        if (started != 0) {
            left = started + d->cfg->batch_ms - timeutil_monotonic_ms();
            timeout = left > 0 ? (int)left : 0; /* past the wait: take what is queued */
        }
        rd_kafka_message_t *msg = kafka_consumer_poll(d->consumer, timeout);
        if (msg == NULL) {
            if (started == 0 || left <= 0)
                return 0;
            continue;
        }
        if (msg->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            kafka_err_class c = kafka_classify(msg->err, NULL);
            char why[512];
            /* A fatal error's cause (a fenced static member, say) is kept apart. */
            if (c != KAFKA_ERRCLASS_FATAL || !kafka_consumer_fatal(d->consumer, why, sizeof why))
                snprintf(why, sizeof why, "%s", rd_kafka_message_errstr(msg));
            LOG_AT(c == KAFKA_ERRCLASS_FATAL ? LOG_LEVEL_ERROR : LOG_LEVEL_WARN, "consumer", "%s",
                   why);
            rd_kafka_message_destroy(msg);
            if (c == KAFKA_ERRCLASS_FATAL)
                return -1;
            continue;
        }
        if (started == 0)
            started = timeutil_monotonic_ms() - record_age_ms(msg, d->cfg->batch_ms);
        slot s;
        memset(&s, 0, sizeof s);
        s.msg = msg;
        s.parsed = event_parse(msg->payload != NULL ? msg->payload : "", msg->len, &s.ev, s.perr,
                               sizeof s.perr);
        if (is_broadcast(&s) && d->nslots > 0) {
            d->held = s;
            d->has_held = true;
            break;
        }
        if (add_slot(d, &s) != 0) {
            slot_clear(&s);
            return -1;
        }
        if (is_broadcast(&s))
            break;
    }
    return 0;
}

/* The batch's offsets per partition: the first consumed (for a rewind) or last + 1. */
static rd_kafka_topic_partition_list_t *batch_offsets(dispatcher *d, bool first)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(8);
    for (size_t i = 0; i < d->nslots; i++) {
        rd_kafka_message_t *m = d->slots[i].msg;
        const char *topic = rd_kafka_topic_name(m->rkt);
        rd_kafka_topic_partition_t *p = rd_kafka_topic_partition_list_find(l, topic, m->partition);
        if (p == NULL) {
            p = rd_kafka_topic_partition_list_add(l, topic, m->partition);
            p->offset = first ? m->offset : m->offset + 1;
        } else if (first ? m->offset < p->offset : m->offset + 1 > p->offset) {
            p->offset = first ? m->offset : m->offset + 1;
        }
    }
    if (first && d->has_held) {
        rd_kafka_message_t *m = d->held.msg;
        const char *topic = rd_kafka_topic_name(m->rkt);
        if (rd_kafka_topic_partition_list_find(l, topic, m->partition) == NULL)
            rd_kafka_topic_partition_list_add(l, topic, m->partition)->offset = m->offset;
    }
    return l;
}

/*
 * Puts the consumer back on the batch's first records so that the next polls
 * read them again, and drops the batch.  A failed seek would let the next
 * commit skip the batch, so it is fatal: a restarted dispatcher resumes from
 * the committed offsets.
 */
static int rewind_batch(dispatcher *d)
{
    rd_kafka_topic_partition_list_t *all = batch_offsets(d, true), *owned = NULL;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(all->cnt);
    int rc = 0;
    /*
     * Only partitions still assigned: one lost meanwhile (a broadcast that
     * outlasted max.poll.interval.ms) is read by its new owner from the
     * committed offset, which the aborted batch never moved.
     */
    if (rd_kafka_assignment(kafka_consumer_rk(d->consumer), &owned) == RD_KAFKA_RESP_ERR_NO_ERROR)
        for (int i = 0; i < all->cnt; i++)
            if (rd_kafka_topic_partition_list_find(owned, all->elems[i].topic,
                                                   all->elems[i].partition) != NULL)
                rd_kafka_topic_partition_list_add(l, all->elems[i].topic, all->elems[i].partition)
                    ->offset = all->elems[i].offset;
    if (owned != NULL)
        rd_kafka_topic_partition_list_destroy(owned);
    rd_kafka_topic_partition_list_destroy(all);
    if (l->cnt > 0) {
        rd_kafka_error_t *e =
            rd_kafka_seek_partitions(kafka_consumer_rk(d->consumer), l, SEEK_TIMEOUT_MS);
        if (e != NULL) {
            LOG_ERROR("consumer", "cannot rewind the batch: %s", rd_kafka_error_string(e));
            rd_kafka_error_destroy(e);
            rc = -1;
        }
        for (int i = 0; rc == 0 && i < l->cnt; i++)
            if (l->elems[i].err != RD_KAFKA_RESP_ERR_NO_ERROR) {
                LOG_ERROR("consumer", "cannot rewind %s [%" PRId32 "]: %s", l->elems[i].topic,
                          l->elems[i].partition, rd_kafka_err2str(l->elems[i].err));
                rc = -1;
            }
    }
    rd_kafka_topic_partition_list_destroy(l);
    drop_batch(d);
    drop_held(d);
    return rc;
}

/* Fills every valid slot's user and templates: cache first, one query per kind for the rest. */
static pg_status resolve(dispatcher *d, int64_t now_ms, char *err, size_t errlen)
{
    const char **ids = NULL, **types = NULL;
    size_t *where = NULL, nmiss = 0, ntypes = 0;
    prefs_user **got = NULL;
    tplcache_type **tgot = NULL;
    pg_status st = PG_ERROR;

    ids = malloc(d->nslots * sizeof(*ids));
    where = malloc(d->nslots * sizeof(*where));
    got = malloc(d->nslots * sizeof(*got));
    types = malloc(d->nslots * sizeof(*types));
    tgot = malloc(d->nslots * sizeof(*tgot));
    if (ids == NULL || where == NULL || got == NULL || types == NULL || tgot == NULL) {
        error_set(err, errlen, "out of memory");
        goto out;
    }
    uint64_t hits = 0, thits = 0;
    for (size_t i = 0; i < d->nslots; i++) {
        slot *s = &d->slots[i];
        if (s->parsed != EVENT_OK || s->ev.user_id == NULL)
            continue;
        if (s->user == NULL &&
            (s->user = prefs_cache_get(d->users, s->ev.user_id, now_ms)) == NULL) {
            ids[nmiss] = s->ev.user_id;
            where[nmiss++] = i;
        } else {
            hits++;
        }
        if (s->tpl == NULL && (s->tpl = tplcache_get(d->tpls, s->ev.type, now_ms)) == NULL) {
            bool seen = false;
            for (size_t t = 0; t < ntypes && !seen; t++)
                seen = strcmp(types[t], s->ev.type) == 0;
            if (!seen)
                types[ntypes++] = s->ev.type;
        } else {
            thits++;
        }
    }
    metrics_counter_add(d->m.user_hits, hits);
    metrics_counter_add(d->m.user_misses, nmiss);
    if (nmiss > 0) {
        if ((st = prefs_cache_load(d->users, d->db, ids, nmiss, now_ms, got, err, errlen)) != PG_OK)
            goto out;
        for (size_t k = 0; k < nmiss; k++)
            d->slots[where[k]].user = got[k];
    }
    if (ntypes > 0) {
        if ((st = tplcache_load(d->tpls, d->db, types, ntypes, now_ms, tgot, err, errlen)) != PG_OK)
            goto out;
        metrics_counter_add(d->m.tpl_misses, ntypes);
        for (size_t i = 0; i < d->nslots; i++) {
            slot *s = &d->slots[i];
            if (s->parsed != EVENT_OK || s->ev.user_id == NULL || s->tpl != NULL)
                continue;
            for (size_t t = 0; t < ntypes; t++)
                if (strcmp(types[t], s->ev.type) == 0) {
                    s->tpl = tgot[t];
                    s->tpl->refs++;
                    break;
                }
        }
        for (size_t t = 0; t < ntypes; t++)
            tplcache_type_unref(tgot[t]);
    }
    metrics_counter_add(d->m.tpl_hits, thits);
    if ((st = rules_refresh(d->rules, d->db, timeutil_monotonic_ms(), err, errlen)) != PG_OK)
        goto out;
    st = PG_OK;
out:
    free(ids);
    free(where);
    free(got);
    free(types);
    free(tgot);
    return st;
}

/* Counts of one batch, added to the metrics only once it has committed. */
typedef struct batch_counts {
    uint64_t events, dead[2], deliveries[DELIVERY_CHANNEL_COUNT][2], skips[NSKIP];
    uint64_t opened, digested, throttled[2], followups;
} batch_counts;

static txn_result dead_letter(dispatcher *d, slot *s, batch_counts *bc, char *err, size_t errlen)
{
    const char *reason = s->parsed == EVENT_INVALID_JSON ? "invalid_json" : "invalid_event";
    rd_kafka_headers_t *h = deadletter_headers(s->msg, reason, s->perr, timeutil_now_ms());
    if (h == NULL) {
        error_set(err, errlen, "dead letter: out of memory");
        return TXN_FATAL;
    }
    LOG_WARN("dlq", "%s [%" PRId32 "] @%" PRId64 ": %s: %s", rd_kafka_topic_name(s->msg->rkt),
             s->msg->partition, s->msg->offset, reason, s->perr);
    bc->dead[s->parsed == EVENT_INVALID_JSON ? 0 : 1]++;
    return txn_produce(d->producer, d->t_dlq, s->msg->key, s->msg->key_len, s->msg->payload,
                       s->msg->len, h, PRODUCE_WAIT_MS, err, errlen);
}

/*
 * Deliveries of an event `heraldctl replay` re-published carry its
 * herald.replayed_at, so that a worker gives a delivery not yet sent a
 * fresh round of attempts, as it does for a requeued one.
 */
static rd_kafka_headers_t *replay_headers(const char *replayed_at)
{
    rd_kafka_headers_t *h = rd_kafka_headers_new(1);
    if (kafka_header_add_str(h, HDR_REPLAYED_AT, replayed_at) != 0) {
        rd_kafka_headers_destroy(h);
        return NULL;
    }
    return h;
}

static txn_result produce_items(dispatcher *d, rd_kafka_message_t *msg, const event *ev,
                                size_t from, size_t to, batch_counts *bc, char *err, size_t errlen)
{
    size_t klen = strlen(ev->user_id);
    char at[64];
    const char *replayed_at = NULL;
    if (kafka_header_get(msg, HDR_REPLAYED_AT, at, sizeof at) >= 0)
        replayed_at = at;
    for (size_t i = from; i < to; i++) {
        fanout_item *it = &d->fl.items[i];
        if (it->action == DECIDE_SKIP) {
            int k = skip_index(it->skip_reason);
            if (k >= 0)
                bc->skips[k]++;
            continue;
        }
        /* Digested, or throttled and dropped: a status row, nothing to produce. */
        if (it->value == NULL)
            continue;
        bool later = it->action == DECIDE_SCHEDULE || it->action == DECIDE_THROTTLED;
        const char *topic = later ? d->t_retry[it->channel] : d->t_deliver[it->channel];
        rd_kafka_headers_t *h = NULL;
        if (replayed_at != NULL && (h = replay_headers(replayed_at)) == NULL) {
            error_set(err, errlen, "delivery headers: out of memory");
            return TXN_FATAL;
        }
        txn_result r = txn_produce(d->producer, topic, ev->user_id, klen, it->value, it->vlen, h,
                                   PRODUCE_WAIT_MS, err, errlen);
        if (r != TXN_OK)
            return r;
        bc->deliveries[it->channel][later ? 1 : 0]++;
    }
    return TXN_OK;
}

/*
 * The status rows of a batch go out in parts of status_part events over
 * two connections: two backends insert the last two parts while the next
 * is fanned out (the database's work per row is more than ours).
 */
typedef struct rows_pipe {
    PGconn *raw[2];
    bool in_flight[2];
    size_t part;
} rows_pipe;

/* Sends the rows gathered so far once they make a part. */
static pg_status rows_send_part(dispatcher *d, rows_pipe *p, char *err, size_t errlen)
{
    if (status_event_count(d->sb) < (size_t)d->cfg->status_part)
        return PG_OK;
    size_t k = p->part++ % 2;
    if (p->in_flight[k]) {
        p->in_flight[k] = false;
        if (status_recv(p->raw[k], err, errlen) != PG_OK)
            return PG_ERROR;
    }
    if (status_send(d->sb, p->raw[k], err, errlen) != PG_OK)
        return PG_ERROR;
    p->in_flight[k] = true;
    status_batch_reset(d->sb);
    return PG_OK;
}

/* Waits for the parts in flight. */
static pg_status rows_wait(rows_pipe *p, char *err, size_t errlen)
{
    for (int k = 0; k < 2; k++) {
        if (p->in_flight[k]) {
            p->in_flight[k] = false;
            if (status_recv(p->raw[k], err, errlen) != PG_OK)
                return PG_ERROR;
        }
    }
    return PG_OK;
}

/* After a failure: leaves the connections idle; the rows are redone with the batch. */
static void rows_abandon(rows_pipe *p)
{
    char why[256];
    for (int k = 0; k < 2; k++) {
        if (p->in_flight[k]) {
            p->in_flight[k] = false;
            if (status_recv(p->raw[k], why, sizeof why) != PG_OK)
                LOG_DEBUG(NULL, "%s", why);
        }
    }
}

/* Whether slot s has a delivery to send or schedule on channel c, items[from, to). */
static bool slot_sends(const dispatcher *d, const slot *s, delivery_channel c)
{
    for (size_t i = s->from; i < s->to; i++) {
        const fanout_item *it = &d->fl.items[i];
        if (it->channel == c && (it->action == DECIDE_SEND || it->action == DECIDE_SCHEDULE))
            return true;
    }
    return false;
}

/* The category rules match, as opt-outs judge it (decide_category): the
 * channel's template's, else the event's; for the whole event (channel -1),
 * the first template's that has one. */
static const char *slot_category(const slot *s, int channel)
{
    const char *tc = NULL;
    if (s->tpl != NULL && channel >= 0)
        tc = s->tpl->ch[channel].category;
    for (int c = 0; s->tpl != NULL && channel < 0 && c < DELIVERY_CHANNEL_COUNT && tc == NULL; c++)
        if (s->tpl->ch[c].exists)
            tc = s->tpl->ch[c].category;
    return decide_category(s->ev.category, tc);
}

/*
 * Turns slot s's deliveries on channel c into status rows of action a:
 * DIGESTED; THROTTLED, dropped when not_before_ms is 0, else deferred to it
 * and produced to the retry topic; or FOLLOWUP, held until not_before_ms.
 * -1 when out of memory.
 */
static int hold_back(dispatcher *d, const slot *s, delivery_channel c, decide_action a,
                     const char *reason, int64_t not_before_ms)
{
    for (size_t i = s->from; i < s->to; i++) {
        fanout_item *it = &d->fl.items[i];
        if (it->channel != c || (it->action != DECIDE_SEND && it->action != DECIDE_SCHEDULE))
            continue;
        it->action = a;
        it->skip_reason = reason;
        if (a == DECIDE_THROTTLED && not_before_ms > 0) {
            delivery dl;
            char perr[128], *v = NULL;
            size_t vlen = 0;
            if (delivery_parse(it->value, it->vlen, &dl, perr, sizeof perr) != DELIVERY_OK)
                return -1;
            dl.not_before = not_before_ms;
            int rc = delivery_serialize(&dl, &v, &vlen);
            delivery_free(&dl);
            if (rc != 0)
                return -1;
            free(it->value);
            it->value = v;
            it->vlen = vlen;
            it->not_before_ms = not_before_ms;
            continue;
        }
        free(it->value);
        it->value = NULL;
        it->vlen = 0;
        it->not_before_ms = a == DECIDE_FOLLOWUP ? not_before_ms : 0;
    }
    return 0;
}

/*
 * The digest and throttle rules over the batch's fan-out (digest.h): what a
 * digest takes becomes a "digested" row, what a throttle holds back a
 * "throttled" one.  Critical events bypass both, and so do events published
 * with "digest": false (digests only).
 */
static pg_status apply_rules(dispatcher *d, int64_t now_ms, batch_counts *bc, char *err,
                             size_t errlen)
{
    bool digests = rules_have_digests(d->rules), throttles = rules_have_throttles(d->rules),
         followups = rules_have_followups(d->rules);
    if (!digests && !throttles && !followups)
        return PG_OK;
    pg_status st = PG_ERROR;
    size_t cap = d->nslots * DELIVERY_CHANNEL_COUNT + 1, nd = 0, nt = 0, nf = 0;
    digest_cand *dc = calloc(cap, sizeof(*dc));
    throttle_cand *tc = calloc(cap, sizeof(*tc));
    followup_cand *fc = calloc(cap, sizeof(*fc));
    size_t *dslot = calloc(cap, sizeof(*dslot)), *tslot = calloc(cap, sizeof(*tslot));
    if (dc == NULL || tc == NULL || fc == NULL || dslot == NULL || tslot == NULL) {
        error_set(err, errlen, "rules: out of memory");
        goto out;
    }
    for (size_t i = 0; digests && i < d->nslots; i++) {
        slot *s = &d->slots[i];
        if (s->parsed != EVENT_OK || s->user == NULL || !s->user->known ||
            s->ev.priority == EVENT_PRIORITY_CRITICAL || s->ev.no_digest)
            continue;
        const digest_rule *r = rules_digest_for(d->rules, s->ev.type, slot_category(s, -1));
        for (int c = 0; r != NULL && c < DELIVERY_CHANNEL_COUNT; c++) {
            if (!r->channel[c] || !slot_sends(d, s, (delivery_channel)c))
                continue;
            dc[nd] = (digest_cand){.ev = &s->ev,
                                   .channel = (delivery_channel)c,
                                   .rule = r,
                                   .partition = s->msg->partition,
                                   .zone = s->user->zone};
            dslot[nd++] = i;
        }
    }
    if ((st = digest_add(d->db, dc, nd, now_ms, err, errlen)) != PG_OK)
        goto out;
    for (size_t k = 0; k < nd; k++) {
        char opened_id[ID_UUID_SIZE];
        digest_window_id(dc[k].rule->name, dc[k].channel, dc[k].ev->event_id, opened_id);
        bc->opened += strcmp(opened_id, dc[k].window_id) == 0;
        if (dc[k].closes_ms < d->next_close_ms)
            d->next_close_ms = dc[k].closes_ms;
        if (dc[k].first)
            continue;
        bc->digested++;
        if (hold_back(d, &d->slots[dslot[k]], dc[k].channel, DECIDE_DIGESTED, NULL, 0) != 0)
            goto oom;
    }
    /* Follow-ups of what goes to the inbox; the follow-up channel waits for them. */
    for (size_t i = 0; followups && i < d->nslots; i++) {
        slot *s = &d->slots[i];
        if (s->parsed != EVENT_OK || s->user == NULL || !s->user->known)
            continue;
        const followup_rule *fr[DELIVERY_CHANNEL_COUNT];
        size_t k = rules_followups_for(d->rules, s->ev.type, slot_category(s, -1), fr);
        for (size_t j = 0; j < k; j++) {
            if (!slot_sends(d, s, fr[j]->after_channel))
                continue;
            fc[nf++] = (followup_cand){.ev = &s->ev, .rule = fr[j], .partition = s->msg->partition};
            bc->followups++;
            int64_t due = now_ms + fr[j]->delay_ms;
            if (due < d->next_close_ms)
                d->next_close_ms = due;
            if (hold_back(d, s, fr[j]->channel, DECIDE_FOLLOWUP, "followup", due) != 0)
                goto oom;
        }
    }
    if ((st = followup_plan(d->db, fc, nf, now_ms, err, errlen)) != PG_OK)
        goto out;
    for (size_t i = 0; throttles && i < d->nslots; i++) {
        slot *s = &d->slots[i];
        if (s->parsed != EVENT_OK || s->user == NULL || !s->user->known ||
            s->ev.priority == EVENT_PRIORITY_CRITICAL)
            continue;
        for (int c = 0; c < DELIVERY_CHANNEL_COUNT; c++) {
            if (!slot_sends(d, s, (delivery_channel)c))
                continue;
            const throttle_rule *r =
                rules_throttle_for(d->rules, slot_category(s, c), (delivery_channel)c);
            if (r == NULL)
                continue;
            tc[nt] = (throttle_cand){.ev = &s->ev, .channel = (delivery_channel)c, .rule = r};
            tslot[nt++] = i;
        }
    }
    if ((st = throttle_check(d->db, tc, nt, now_ms, err, errlen)) != PG_OK)
        goto out;
    for (size_t k = 0; k < nt; k++) {
        if (tc[k].outcome == THROTTLE_PASS)
            continue;
        bool defer = tc[k].outcome == THROTTLE_DEFER;
        bc->throttled[defer ? 1 : 0]++;
        if (hold_back(d, &d->slots[tslot[k]], tc[k].channel, DECIDE_THROTTLED,
                      defer ? "throttle_deferred" : "throttle_dropped",
                      defer ? tc[k].at_ms : 0) != 0)
            goto oom;
    }
    st = PG_OK;
    goto out;
oom:
    error_set(err, errlen, "rules: out of memory");
    st = PG_ERROR;
out:
    free(dc);
    free(tc);
    free(fc);
    free(dslot);
    free(tslot);
    return st;
}

/*
 * Fans every slot out, applies the rules to the whole batch, then produces
 * into the open transaction and sends the rows into the pipe.
 */
static batch_status fan_out(dispatcher *d, rows_pipe *p, batch_counts *bc, int64_t now_ms,
                            char *err, size_t errlen)
{
    for (size_t i = 0; i < d->nslots; i++) {
        slot *s = &d->slots[i];
        s->from = s->to = d->fl.n;
        if (s->parsed != EVENT_OK)
            continue;
        if (fanout_event(&s->ev, s->user, s->tpl, &d->fo, now_ms, &d->fl, err, errlen) != 0)
            return BATCH_FATAL;
        s->to = d->fl.n;
    }
    if (apply_rules(d, now_ms, bc, err, errlen) != PG_OK)
        return BATCH_RETRY_PG;
    txn_result tr;
    for (size_t i = 0; i < d->nslots; i++) {
        slot *s = &d->slots[i];
        if (rows_send_part(d, p, err, errlen) != PG_OK)
            return BATCH_RETRY_PG;
        if (s->parsed != EVENT_OK) {
            if ((tr = dead_letter(d, s, bc, err, errlen)) != TXN_OK)
                return batch_from_txn(tr);
            continue;
        }
        if (status_add_event(d->sb, &s->ev, d->fl.items + s->from, s->to - s->from) != 0)
            return BATCH_FATAL;
        if ((tr = produce_items(d, s->msg, &s->ev, s->from, s->to, bc, err, errlen)) != TXN_OK)
            return batch_from_txn(tr);
        bc->events++;
    }
    return BATCH_OK;
}

/* A committed batch's counts into the metrics. */
static void count_batch(dispatcher *d, const batch_counts *bc)
{
    metrics_counter_add(d->m.events, bc->events + bc->dead[0] + bc->dead[1]);
    for (int k = 0; k < 2; k++)
        metrics_counter_add(d->m.dead[k], bc->dead[k]);
    for (int c = 0; c < DELIVERY_CHANNEL_COUNT; c++)
        for (int k = 0; k < 2; k++)
            metrics_counter_add(d->m.deliveries[c][k], bc->deliveries[c][k]);
    for (size_t k = 0; k < NSKIP; k++)
        metrics_counter_add(d->m.skips[k], bc->skips[k]);
    metrics_counter_add(d->m.windows_opened, bc->opened);
    metrics_counter_add(d->m.digested, bc->digested);
    metrics_counter_add(d->m.followups_planned, bc->followups);
    for (int k = 0; k < 2; k++)
        metrics_counter_add(d->m.throttled[k], bc->throttled[k]);
}

/*
 * One slice of events: look the users up, fan out in one transaction, write
 * the rows, then commit the output with the offsets.
 */
static batch_status process_events(dispatcher *d, char *err, size_t errlen)
{
    batch_counts bc;
    memset(&bc, 0, sizeof bc);
    int64_t now_ms = timeutil_now_ms();
    batch_status ret = BATCH_RETRY_PG;
    bool in_txn = false;
    rd_kafka_topic_partition_list_t *offsets = NULL;
    rows_pipe rows = {0};
    txn_result tr;

    int64_t t0 = timeutil_monotonic_ms(), t1 = 0, t2 = 0, t3 = 0;
    if (resolve(d, now_ms, err, errlen) != PG_OK)
        goto out;
    t1 = timeutil_monotonic_ms();
    /*
     * The second connection idles through small batches: a server that
     * dropped it meanwhile costs a reconnect here, not a failed batch.
     */
    if (d->nslots > 2 * (size_t)d->cfg->status_part && !pg_ok(d->rows_db) &&
        pg_reset(d->rows_db, err, errlen) != PG_OK)
        goto out;
    tr = txn_begin(d->producer, err, errlen);
    if (tr != TXN_OK) {
        ret = batch_from_txn(tr);
        goto out;
    }
    in_txn = true;
    fanout_list_reset(&d->fl);
    status_batch_reset(d->sb);
    rows.raw[0] = pg_raw(d->db); /* after resolve(): a reconnect there changes it */
    rows.raw[1] = pg_raw(d->rows_db);
    if ((ret = fan_out(d, &rows, &bc, now_ms, err, errlen)) != BATCH_OK)
        goto out;
    ret = BATCH_RETRY_PG;
    t2 = timeutil_monotonic_ms();
    /* Rows first: a delivery visible in Kafka must have its row. */
    if (rows_wait(&rows, err, errlen) != PG_OK || status_write(d->sb, d->db, err, errlen) != PG_OK)
        goto out;
    t3 = timeutil_monotonic_ms();
    offsets = batch_offsets(d, false);
    tr = txn_commit(d->producer, d->consumer, offsets, err, errlen);
    in_txn = false;
    LOG_DEBUG(NULL,
              "batch of %zu: lookups %" PRId64 " ms, fan-out %" PRId64 " ms, rows %" PRId64
              " ms, commit %" PRId64 " ms",
              d->nslots, t1 - t0, t2 - t1, t3 - t2, timeutil_monotonic_ms() - t3);
    if (tr != TXN_OK) {
        ret = batch_from_txn(tr);
        goto out;
    }
    ret = BATCH_OK;
    count_batch(d, &bc);
out:
    rows_abandon(&rows);
    if (in_txn) {
        char why[256];
        if (txn_abort(d->producer, why, sizeof why) != TXN_OK) {
            LOG_ERROR(NULL, "abort failed: %s", why);
            ret = BATCH_FATAL;
        }
    }
    if (offsets != NULL)
        rd_kafka_topic_partition_list_destroy(offsets);
    fanout_list_reset(&d->fl);
    status_batch_reset(d->sb);
    return ret;
}

static batch_status process_broadcast(dispatcher *d, char *err, size_t errlen)
{
    slot *s = &d->slots[0];
    broadcast_ctx bc = {
        .producer = d->producer,
        .consumer = d->consumer,
        .db = d->db,
        .events_topic = d->t_events,
        .page = d->cfg->broadcast_page,
        .chunk = d->cfg->broadcast_chunk,
        .produce_timeout_ms = PRODUCE_WAIT_MS,
        .stop = d->stop,
        .produced = d->m.broadcast_events,
    };
    batch_status r = broadcast_expand(&bc, &s->ev, s->msg, d->sb, err, errlen);
    if (r == BATCH_OK) {
        metrics_counter_inc(d->m.broadcasts);
        metrics_counter_inc(d->m.events);
    }
    return r;
}

/* --------------------------------------------------------------- the loop */

static void pg_outage(dispatcher *d)
{
    char err[256];
    d->pg_delay_ms = backoff_decorrelated_ms(100, d->cfg->pg_retry_max_ms, d->pg_delay_ms, &d->rng);
    d->resume_at_ms = timeutil_monotonic_ms() + d->pg_delay_ms;
    atomic_store(&d->health.pg_up, false);
    if (!d->pg_paused) {
        if (kafka_consumer_pause(d->consumer, err, sizeof err) != KAFKA_OK)
            LOG_WARN("consumer", "%s", err);
        d->pg_paused = true;
    }
    LOG_WARN(NULL, "PostgreSQL unavailable: consumption paused, retrying in %" PRId64 " ms",
             d->pg_delay_ms);
}

static void pg_maybe_resume(dispatcher *d)
{
    char err[256];
    if (!d->pg_paused || timeutil_monotonic_ms() < d->resume_at_ms)
        return;
    pg_conn *conns[] = {d->db, d->rows_db};
    for (int k = 0; k < 2; k++) {
        if (!pg_ok(conns[k]) && pg_reset(conns[k], err, sizeof err) != PG_OK) {
            LOG_WARN(NULL, "%s", err);
            pg_outage(d);
            return;
        }
    }
    if (kafka_consumer_resume(d->consumer, err, sizeof err) != KAFKA_OK) {
        LOG_WARN("consumer", "%s", err);
        return;
    }
    d->pg_paused = false;
    LOG_INFO(NULL, "consumption resumed");
}

static void housekeeping(dispatcher *d)
{
    int64_t now = timeutil_monotonic_ms();
    daemon_beat(&d->health.heartbeat);
    atomic_store(&d->outq, kafka_producer_outq_len(d->producer));
    poll_notifications(d);
    pg_maybe_resume(d);
    if (now >= d->next_lag_ms) {
        update_lag(d);
        prefs_cache_stats ps;
        prefs_cache_stats_get(d->users, &ps);
        metrics_gauge_set(d->m.cache_entries, (double)ps.entries);
        d->next_lag_ms = now + LAG_EVERY_MS;
    }
}

static int init_txn(dispatcher *d, char *err, size_t errlen);

/* The dispatcher's own defaults, which the operator's -X pairs override. */
static config_kv consumer_defaults[] = {
    /*
     * Per-user events of a broadcast are produced in transactions: an
     * aborted chunk must never be dispatched.
     */
    {.key = "isolation.level", .value = "read_committed"},
    /*
     * Prefetch: librdkafka's 64 MiB is far more than a batch needs
     * (events are small) and would be most of the daemon's memory.
     */
    {.key = "queued.max.messages.kbytes", .value = "16384"},
    /*
     * The broker answers a fetch once it holds a batch's worth of
     * events (500 of a typical 250 bytes) or after 20 ms.  By default
     * it answers as soon as one event arrives, and at a few thousand
     * events/s the dispatcher then sends one fetch per producer
     * request of the gateways: the broker's largest single cost at
     * moderate rates.  20 ms here plus a batch wait of 30 ms keeps the
     * longest wait of an event where it was (50 ms).
     */
    {.key = "fetch.wait.max.ms", .value = "20"},
    {.key = "fetch.min.bytes", .value = "131072"},
};
static config_kv producer_defaults[] = {
    /*
     * A dispatcher that dies inside a transaction leaves it open, and
     * read_committed readers of its partitions wait until the broker
     * times it out (unless a successor with the same transactional.id
     * fences it at once).  Batches take well under a second, so 15 s
     * instead of librdkafka's 60 s bounds that stall.
     */
    {.key = "transaction.timeout.ms", .value = "15000"},
    /*
     * Nothing produced is visible before the commit, and the commit
     * sends whatever is still lingering at once.  Lingering for most of
     * a batch therefore costs no latency, while it turns the batch into
     * one produce request per partition instead of one every few
     * milliseconds: the broker's work per transaction.
     */
    {.key = "linger.ms", .value = "500"},
};
static const config_kafka_props cprops = {consumer_defaults,
                                          sizeof consumer_defaults / sizeof consumer_defaults[0]};
static const config_kafka_props pprops = {producer_defaults,
                                          sizeof producer_defaults / sizeof producer_defaults[0]};

/*
 * A transaction that outlives transaction.timeout.ms is aborted by its
 * coordinator, which bumps the producer's epoch: the next commit is
 * refused as fenced, and librdkafka makes that fatal for the producer.  A
 * broker failover that moves the transaction coordinator can take that
 * long.  Then the dispatcher replaces the producer (same transactional
 * id: the new one fences whatever is left of the old) and the batch is
 * redone, rather than stopping while Kafka recovers.  Only a few times in
 * a row: another live instance configured with the same transactional id
 * would fence this one back each time, and that must stop, not ping-pong.
 * Returns 0 when there is a new producer, -1 (err kept) otherwise.
 */
static int renew_producer(dispatcher *d, char *err, size_t errlen)
{
    char why[256], perr[256];
    if (d->renewals >= 3 || *d->stop || !kafka_producer_fatal(d->producer, why, sizeof why))
        return -1;
    d->renewals++;
    LOG_WARN(NULL, "the producer can no longer be used (%s): starting a new one", why);
    kafka_producer_destroy(d->producer);
    d->producer =
        kafka_producer_new(d->common->kafka_brokers, &pprops, &d->props, d->tid, perr, sizeof perr);
    if (d->producer == NULL || init_txn(d, perr, sizeof perr) != 0) {
        error_set(err, errlen, "new producer: %s", perr);
        return -1;
    }
    return 0;
}

/*
 * The events topic's partitions this member owns now, from the consumer's
 * assignment: the digest windows and follow-ups it closes.  *out is
 * malloc()ed (NULL when none).
 */
static size_t owned_partitions(dispatcher *d, int32_t **out)
{
    rd_kafka_topic_partition_list_t *a = NULL;
    size_t n = 0;
    *out = NULL;
    if (rd_kafka_assignment(kafka_consumer_rk(d->consumer), &a) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return 0;
    if (a->cnt > 0 && (*out = malloc((size_t)a->cnt * sizeof(**out))) != NULL)
        for (int i = 0; i < a->cnt; i++)
            if (strcmp(a->elems[i].topic, d->t_events) == 0)
                (*out)[n++] = a->elems[i].partition;
    rd_kafka_topic_partition_list_destroy(a);
    return n;
}

static void close_due(dispatcher *d, const int32_t *parts, size_t nparts, int64_t now);

/*
 * Sends the digests of the windows due on the owned partitions (closer.h),
 * between batches: a few passes while passes come back full, then again
 * at the earliest open window's close or after HERALD_DIGEST_SCAN, whichever
 * is first.  A failure is retried at the next scan; the windows it left
 * closing are taken again then.
 */
static void close_windows(dispatcher *d)
{
    int64_t now = timeutil_now_ms();
    if (d->pg_paused || now < d->next_close_ms)
        return;
    d->next_close_ms = now + d->cfg->digest_scan_ms;
    int32_t *parts = NULL;
    size_t nparts = owned_partitions(d, &parts);
    if (nparts > 0)
        close_due(d, parts, nparts, now);
    free(parts);
}

/* close_windows() for the events partitions parts[0..nparts) at now (wall clock). */
static void close_due(dispatcher *d, const int32_t *parts, size_t nparts, int64_t now)
{
    closer_ctx c = {
        .producer = d->producer,
        .consumer = d->consumer,
        .db = d->db,
        .users = d->users,
        .tpls = d->tpls,
        .rules = d->rules,
        .sb = d->sb,
        .fl = &d->fl,
        .fo = &d->fo,
        .parts = parts,
        .nparts = nparts,
        .limit = (int)d->cfg->digest_close_batch,
        .produce_timeout_ms = PRODUCE_WAIT_MS,
    };
    for (int k = 0; k < DELIVERY_CHANNEL_COUNT; k++) {
        c.deliver_topic[k] = d->t_deliver[k];
        c.retry_topic[k] = d->t_retry[k];
    }
    char err[1024];
    if (rules_refresh(d->rules, d->db, timeutil_monotonic_ms(), err, sizeof err) != PG_OK) {
        LOG_WARN("digest", "reading the rules: %s", err);
        return;
    }
    for (int pass = 0; pass < 5 && !*d->stop; pass++) {
        size_t taken = 0;
        closer_counts n;
        memset(&n, 0, sizeof n);
        batch_status r = closer_run(&c, now, &taken, &n, err, sizeof err);
        if (r != BATCH_OK) {
            metrics_counter_inc(d->m.close_failures);
            LOG_WARN("digest", "sending due digests failed, retrying in %ld ms: %s",
                     d->cfg->digest_scan_ms, err);
            return;
        }
        metrics_counter_add(d->m.windows_closed[0], n.sent);
        metrics_counter_add(d->m.windows_closed[1], n.empty);
        for (int k = 0; k < DELIVERY_CHANNEL_COUNT; k++)
            metrics_counter_add(d->m.digest_deliveries[k], n.deliveries[k]);
        if (taken > 0)
            LOG_DEBUG("digest", "%zu window(s) closed: %" PRIu64 " sent, %" PRIu64 " empty", taken,
                      n.sent, n.empty);
        if (taken < (size_t)c.limit)
            break;
        now = timeutil_now_ms();
    }
    for (int pass = 0; pass < 5 && !*d->stop; pass++) {
        size_t taken = 0;
        closer_counts n;
        memset(&n, 0, sizeof n);
        now = timeutil_now_ms();
        batch_status r = closer_followups(&c, now, &taken, &n, err, sizeof err);
        if (r != BATCH_OK) {
            metrics_counter_inc(d->m.close_failures);
            LOG_WARN("followup", "sending due follow-ups failed, retrying in %ld ms: %s",
                     d->cfg->digest_scan_ms, err);
            return;
        }
        metrics_counter_add(d->m.followups[0], n.followups);
        metrics_counter_add(d->m.followups[1], n.cancelled);
        for (int k = 0; k < DELIVERY_CHANNEL_COUNT; k++)
            metrics_counter_add(d->m.followup_deliveries[k], n.deliveries[k]);
        if (taken < (size_t)c.limit)
            break;
    }
    if (timeutil_monotonic_ms() >= d->next_purge_ms) {
        long deleted = 0;
        d->next_purge_ms = timeutil_monotonic_ms() + PURGE_EVERY_MS;
        if (digest_purge(d->db, d->cfg->digest_retention_ms, PURGE_LIMIT, &deleted, err,
                         sizeof err) != PG_OK)
            LOG_WARN("digest", "purge: %s", err);
        else if (deleted > 0)
            LOG_INFO("digest", "purged %ld finished window(s), follow-up(s) and throttle count(s)",
                     deleted);
    }
    int64_t next = INT64_MAX, fnext = INT64_MAX;
    if (digest_next_due(d->db, parts, nparts, &next, err, sizeof err) != PG_OK ||
        followup_next_due(d->db, parts, nparts, &fnext, err, sizeof err) != PG_OK)
        LOG_WARN("digest", "%s", err);
    if (fnext < next)
        next = fnext;
    if (next < d->next_close_ms)
        d->next_close_ms = next;
}

int dispatcher_run(dispatcher *d)
{
    char err[1024];
    int rc = 0;

    LOG_INFO(NULL, "dispatching %s (group %s, transactional id %s)", d->t_events, d->cfg->group_id,
             d->tid);
    while (!*d->stop) {
        housekeeping(d);
        if (d->pg_paused) {
            /* Keep serving the group (rebalances, heartbeats) while paused. */
            rd_kafka_message_t *m = kafka_consumer_poll(d->consumer, IDLE_POLL_MS);
            if (m != NULL)
                rd_kafka_message_destroy(m);
            continue;
        }
        close_windows(d);
        if (collect(d) != 0) {
            rc = 1;
            break;
        }
        if (d->nslots == 0)
            continue;
        int64_t t0 = timeutil_monotonic_ms();
        size_t n = d->nslots;
        batch_status r = d->nslots == 1 && is_broadcast(&d->slots[0])
                             ? process_broadcast(d, err, sizeof err)
                             : process_events(d, err, sizeof err);
        if (r == BATCH_OK) {
            d->renewals = 0;
            metrics_histogram_observe(d->m.batch_seconds,
                                      (double)(timeutil_monotonic_ms() - t0) / 1000.0);
            metrics_histogram_observe(d->m.batch_events, (double)n);
            d->pg_delay_ms = 0;
            atomic_store(&d->health.pg_up, true);
            drop_batch(d);
            continue;
        }
        if (r == BATCH_FATAL && renew_producer(d, err, sizeof err) == 0)
            r = BATCH_ABORTED;
        if (r == BATCH_FATAL) {
            LOG_ERROR(NULL, "stopping: %s", err);
            atomic_store(&d->health.fatal, true);
            rc = 1;
            break;
        }
        LOG_WARN(NULL, "batch of %zu record(s) %s: %s", n,
                 r == BATCH_STOPPED ? "interrupted by shutdown" : "will be redone", err);
        if (rewind_batch(d) != 0) {
            rc = 1;
            break;
        }
        if (r == BATCH_RETRY_PG) {
            metrics_counter_inc(d->m.pg_failures);
            pg_outage(d);
        } else if (r == BATCH_ABORTED) {
            metrics_counter_inc(d->m.aborts);
        }
    }

    /*
     * The loop takes no new batch; the batch in hand has been committed
     * (its offsets in its transaction) or rewound, so nothing in flight is
     * left to make durable.
     */
    daemon_shutdown(DAEMON_SHUTDOWN_INTAKE);
    daemon_shutdown(DAEMON_SHUTDOWN_DRAIN);
    drop_batch(d);
    drop_held(d);
    daemon_shutdown(DAEMON_SHUTDOWN_COMMIT);
    if (kafka_consumer_close(d->consumer, err, sizeof err) != KAFKA_OK)
        LOG_WARN("consumer", "%s", err);
    daemon_shutdown(DAEMON_SHUTDOWN_RELEASE);
    int left =
        d->producer != NULL ? kafka_producer_flush(d->producer, (int)d->cfg->shutdown_ms) : 0;
    if (left > 0) {
        LOG_ERROR(NULL, "%d message(s) still queued at exit", left);
        rc = 1;
    }
    LOG_INFO(NULL, "stopped");
    return rc;
}

/* ----------------------------------------------------------- construction */

static void default_tid(char *out, size_t outlen)
{
    char host[256];
    if (gethostname(host, sizeof host) != 0)
        snprintf(host, sizeof host, "localhost");
    host[sizeof host - 1] = '\0';
    snprintf(out, outlen, "herald-dispatcher-%s-%ld", host, (long)getpid());
}

static pg_conn *connect_db(dispatcher *d, char *err, size_t errlen)
{
    pg_options po = {
        .connect_timeout_s = 2,
        /* Short: a batch stuck on a dead server should give up and back off. */
        .max_wait_ms = 2000,
        .application_name = "herald-dispatcher",
        .stop = d->stop,
    };
    for (int i = 0; !*d->stop; i++) {
        pg_conn *c = pg_connect(d->common->database_url, &po, err, errlen);
        if (c != NULL)
            return c;
        LOG_WARN(NULL, "%s; retrying", err);
    }
    error_set(err, errlen, "stopped before PostgreSQL answered");
    return NULL;
}

static int init_txn(dispatcher *d, char *err, size_t errlen)
{
    while (!*d->stop) {
        /* Short waits, so that SIGTERM is honoured while the cluster is away. */
        kafka_err_class c = kafka_txn_init(d->producer, 2000, err, errlen);
        if (c == KAFKA_ERRCLASS_NONE)
            return 0;
        if (c != KAFKA_ERRCLASS_RETRIABLE)
            return -1;
        LOG_WARN(NULL, "%s; retrying", err);
    }
    error_set(err, errlen, "stopped before Kafka answered");
    return -1;
}

dispatcher *dispatcher_new(const dispatcher_config *cfg, const herald_common_config *common,
                           const config_kafka_props *props, const volatile sig_atomic_t *stop,
                           int *config_error, char *err, size_t errlen)
{
    dispatcher *d = calloc(1, sizeof(*d)), *ret = NULL;
    *config_error = 0;
    if (d == NULL) {
        error_set(err, errlen, "out of memory");
        return NULL;
    }
    d->cfg = cfg;
    d->common = common;
    if (props != NULL)
        d->props = *props;
    d->stop = stop;
    d->fo.sms_max_segments = (int)cfg->sms_max_segments;
    d->rng = (uint64_t)timeutil_now_ms() ^ ((uint64_t)getpid() << 32);
    daemon_health_init(&d->health, "main loop", "fatal Kafka error", common->stall_ms);
    if (cfg->transactional_id != NULL && *cfg->transactional_id != '\0')
        snprintf(d->tid, sizeof d->tid, "%s", cfg->transactional_id);
    else
        default_tid(d->tid, sizeof d->tid);

    char name[TOPIC_MAX];
    config_topic(common, TOPICS_EVENTS, d->t_events, sizeof d->t_events);
    config_topic(common, TOPICS_DLQ, d->t_dlq, sizeof d->t_dlq);
    for (int c = 0; c < DELIVERY_CHANNEL_COUNT; c++) {
        const char *ch = delivery_channel_name((delivery_channel)c);
        config_topic(common, topics_deliveries(ch, name, sizeof name), d->t_deliver[c],
                     sizeof d->t_deliver[c]);
        config_topic(common, topics_retry(ch, name, sizeof name), d->t_retry[c],
                     sizeof d->t_retry[c]);
    }

    prefs_cache_options po = {
        .max_entries = (size_t)cfg->cache_size,
        .max_bytes = (size_t)cfg->cache_max_bytes,
        .ttl_ms = cfg->cache_ttl_ms,
        .negative_ttl_ms = cfg->cache_negative_ttl_ms,
        .seed = d->rng,
    };
    static const char *const channels[] = {"herald_user_changed", "herald_template_changed",
                                           "herald_rules_changed", NULL};
    if ((d->reg = metrics_registry_new()) == NULL || metrics_init(d) != 0 ||
        (d->users = prefs_cache_new(&po)) == NULL ||
        (d->tpls = tplcache_new(TEMPLATE_TYPES_MAX, cfg->template_ttl_ms)) == NULL ||
        (d->rules = rules_new()) == NULL || (d->sb = status_batch_new(STATUS_BYTES_CAP)) == NULL ||
        (d->lis = listener_new(common->database_url, channels)) == NULL) {
        error_set(err, errlen, "out of memory");
        goto out;
    }
    d->ops = daemon_ops_start(cfg->metrics_addr, d->reg, &d->health, err, errlen);
    if (d->ops == NULL) {
        *config_error = 1; /* HERALD_METRICS_ADDR unusable */
        goto out;
    }
    d->consumer = kafka_member_consumer_new(common->kafka_brokers, cfg->group_id, &common->member,
                                            &cprops, props, err, errlen);
    if (d->consumer == NULL) {
        *config_error = 1; /* only a bad -X property gets here */
        goto out;
    }
    kafka_consumer_set_rebalance_cb(d->consumer, on_rebalance, d);
    d->producer = kafka_producer_new(common->kafka_brokers, &pprops, props, d->tid, err, errlen);
    if (d->producer == NULL) {
        *config_error = 1;
        goto out;
    }
    if ((d->db = connect_db(d, err, errlen)) == NULL ||
        (d->rows_db = connect_db(d, err, errlen)) == NULL)
        goto out;
    if (init_txn(d, err, errlen) != 0)
        goto out;
    const char *topics[] = {d->t_events};
    if (kafka_consumer_subscribe(d->consumer, topics, 1, err, errlen) != KAFKA_OK)
        goto out;
    /* Listen before the first batch so that nothing cached misses a change. */
    poll_notifications(d);
    ret = d;
    d = NULL;
out:
    dispatcher_free(d);
    return ret;
}

uint16_t dispatcher_metrics_port(const dispatcher *d)
{
    return opsserver_port(d->ops);
}

void dispatcher_free(dispatcher *d)
{
    if (d == NULL)
        return;
    /* The ops server reads the registry and the producer: stop it first. */
    opsserver_stop(d->ops);
    drop_batch(d);
    drop_held(d);
    free(d->slots);
    kafka_consumer_destroy(d->consumer);
    kafka_producer_destroy(d->producer);
    pg_close(d->db);
    pg_close(d->rows_db);
    listener_free(d->lis);
    fanout_list_free(&d->fl);
    status_batch_free(d->sb);
    prefs_cache_free(d->users);
    tplcache_free(d->tpls);
    rules_free(d->rules);
    metrics_registry_free(d->reg);
    free(d);
}
