/*
 * dispatcher: the herald-dispatcher daemon — a consumer group on the events
 * topic that turns each event into addressed, rendered deliveries on
 * deliveries.<channel> (or retry.<channel> when quiet hours defer them),
 * exactly once per batch thanks to Kafka transactions.
 *
 * One pass of the loop: poll a batch (up to batch_size events or batch_wait,
 * whichever comes first), look every user and template up in the caches
 * (one query per batch for all misses), decide and render (fanout.h), then
 * in one Kafka transaction produce the deliveries and dead letters, write
 * the status rows to PostgreSQL (status.h) and commit the batch's offsets
 * with the transaction (txn.h).  A topic broadcast is expanded on its own
 * (broadcast.h).
 *
 * Failure handling:
 *   - transaction requires abort: abort, seek the consumer back to the
 *     batch's first offsets, redo;
 *   - PostgreSQL unavailable: abort, seek back, pause the partitions, retry
 *     with a capped, jittered backoff, resume: nothing lost or skipped;
 *   - Kafka unavailable: calls retry within their timeouts, then the batch
 *     is aborted and redone, as often as it takes;
 *   - fatal producer or consumer error: exit 1 (committed work is safe).
 * Cache invalidation arrives on a LISTEN connection polled each pass
 * (listener.h).  Shutdown (stop flag set): the batch in hand is finished,
 * then the consumer leaves the group and the producer is flushed.
 */
#ifndef HERALD_DISPATCHER_DISPATCHER_H
#define HERALD_DISPATCHER_DISPATCHER_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "dispatcher_config.h"

typedef struct dispatcher dispatcher;

/*
 * Connects to PostgreSQL (retrying until it answers or *stop is set),
 * creates the consumer and the transactional producer, starts the ops
 * server.  cfg, common, props and stop must outlive the dispatcher.
 * NULL with err set on failure; *config_error tells a bad setting (exit 2)
 * from a runtime failure (exit 1).
 */
dispatcher *dispatcher_new(const dispatcher_config *cfg, const herald_common_config *common,
                           const config_kafka_props *props, const volatile sig_atomic_t *stop,
                           int *config_error, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Runs until *stop is set or a fatal error; returns the exit status (0 or 1). */
int dispatcher_run(dispatcher *d);

/* The port of /metrics (for tests started with port 0). */
uint16_t dispatcher_metrics_port(const dispatcher *d);

void dispatcher_free(dispatcher *d);

#endif
