/*
 * broadcast: fans a topic:<name> event out into one per-user event per
 * subscriber, produced to the events topic keyed by the user, where the
 * dispatchers pick them up like any other event.
 *
 * Subscribers are read by keyset pagination on the primary key
 * (WHERE topic = $1 AND user_id > $2 ORDER BY user_id LIMIT page), so memory
 * stays one page and one chunk whatever the audience.  A million subscribers
 * cannot be one Kafka transaction, so they are produced in chunks, each its
 * own transaction; after a chunk commits, broadcast_progress records the
 * last user done.  The broadcast's own offset is committed last, in a final
 * transaction, after its events row is written.  A crash (or a rebalance, or
 * a database outage) resumes at the recorded user; the one chunk that may be
 * produced twice has the same per-user event ids — UUID v5 of
 * "<broadcast event_id>|<user_id>" — so the delivery idempotency keys repeat
 * and nothing is sent twice.  Each chunk also sends the broadcast's still
 * uncommitted offset with the consumer's group metadata, so a dispatcher
 * that lost the partition is fenced at its next chunk instead of racing the
 * new owner to the end.
 *
 * Per-user events keep everything of the broadcast but the target: user_id
 * set, topic cleared, broadcast_id = the broadcast's event_id.
 */
#ifndef HERALD_DISPATCHER_BROADCAST_H
#define HERALD_DISPATCHER_BROADCAST_H

#include <signal.h>
#include <stddef.h>

#include "batch.h"
#include "event.h"
#include "kafka.h"
#include "metrics.h"
#include "pg.h"
#include "status.h"

typedef struct broadcast_ctx {
    kafka_producer *producer; /* transactional, no transaction open */
    kafka_consumer *consumer;
    pg_conn *db;
    const char *events_topic;          /* full name */
    long page;                         /* subscribers per query */
    long chunk;                        /* per-user events per transaction */
    int produce_timeout_ms;            /* longest wait on a full producer queue */
    const volatile sig_atomic_t *stop; /* set: stop after the current chunk */
    metrics_counter *produced;         /* per-user events committed; may be NULL */
} broadcast_ctx;

/*
 * Expands ev (a broadcast read from msg).  sb is scratch for the events row
 * (reset here).  err says what failed.
 */
batch_status broadcast_expand(const broadcast_ctx *ctx, const event *ev,
                              const rd_kafka_message_t *msg, status_batch *sb, char *err,
                              size_t errlen) __attribute__((warn_unused_result));

/* The per-user event id of user_id in broadcast event_id into out[ID_UUID_SIZE]. */
int broadcast_user_event_id(const char *event_id, const char *user_id, char *out)
    __attribute__((warn_unused_result));

#endif
