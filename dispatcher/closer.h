/*
 * closer: sends the digests whose windows are due, for the partitions this
 * dispatcher owns (digest.h).
 *
 * One pass takes up to `limit` due windows, looks their users and digest
 * templates up (the caches, then one query each for the misses), and in
 * one Kafka transaction produces one delivery per window: the recipient's
 * settings and the rule's template as they are now, so a preference
 * changed or a user deleted while the window was open is honoured.  The
 * digest is an event of its own: its id is the window's, its type the
 * rule's template, its data the window's summary:
 *
 *   {"count": 20, "events": [first events_shown], "last_events": [...],
 *    "actors": [distinct data.actor values, first 100], "actor_count": 3,
 *    "rule": "comments", "channel": "email", "key": "thread-7",
 *    "opened_at": "...", "closed_at": "..."}
 *
 * Its status rows are written like any event's before the commit, so
 * GET /v1/events/{window id} shows its delivery.  Only the window's channel
 * is rendered.  Once the transaction has committed the windows are marked
 * sent; a failure anywhere leaves them closing for the next pass, which
 * produces them again with the same idempotency keys.
 */
#ifndef HERALD_DISPATCHER_CLOSER_H
#define HERALD_DISPATCHER_CLOSER_H

#include <stddef.h>
#include <stdint.h>

#include "batch.h"
#include "delivery.h"
#include "fanout.h"
#include "kafka.h"
#include "pg.h"
#include "prefs_cache.h"
#include "rules.h"
#include "status.h"
#include "tplcache.h"

typedef struct closer_ctx {
    kafka_producer *producer;
    kafka_consumer *consumer;
    pg_conn *db;
    prefs_cache *users;
    tplcache *tpls;
    const rules *rules;
    status_batch *sb; /* shared with the batches: empty on entry and on return */
    fanout_list *fl;
    const fanout_options *fo;
    const char *deliver_topic[DELIVERY_CHANNEL_COUNT];
    const char *retry_topic[DELIVERY_CHANNEL_COUNT];
    const int32_t *parts; /* the events topic's partitions this dispatcher owns */
    size_t nparts;
    int limit;
    int produce_timeout_ms;
} closer_ctx;

typedef struct closer_counts {
    uint64_t sent, empty;          /* digest windows */
    uint64_t followups, cancelled; /* follow-ups sent, and cancelled because read */
    uint64_t deliveries[DELIVERY_CHANNEL_COUNT], skipped; /* produced; skipped by settings */
} closer_counts;

/*
 * One pass at now_ms.  *taken is the number of windows handled (a full
 * pass, == limit, means more may be due).  counts are added to only when
 * the pass committed.
 */
batch_status closer_run(closer_ctx *c, int64_t now_ms, size_t *taken, closer_counts *counts,
                        char *err, size_t errlen) __attribute__((warn_unused_result));

/*
 * The same for due follow-ups (followup.h): cancelled when the in-app
 * message was read or archived, otherwise the event rendered for the rule's
 * channel (the rule's template, else the event's own) and produced in one
 * transaction for the pass; the rows held back at dispatch become pending
 * (or skipped, with the reason), and the follow-ups are marked done after
 * the commit.
 */
batch_status closer_followups(closer_ctx *c, int64_t now_ms, size_t *taken, closer_counts *counts,
                              char *err, size_t errlen) __attribute__((warn_unused_result));

#endif
