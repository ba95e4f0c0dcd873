/*
 * worker: the delivery loop of herald-worker --channel C.
 *
 * It consumes deliveries.<C> and retry.<C> in one consumer group, claims
 * each poll batch in PostgreSQL, sends through the channel's provider with
 * many requests in flight, and makes every outcome durable before the
 * offset that covers it is committed:
 *
 *   sent         row 'sent'
 *   transient    produced to retry.<C> (due time in a header), row 'retrying'
 *   permanent,   produced to dlq with the contract's headers, row 'failed'
 *   exhausted
 *   dead token   token deleted from push_tokens, row 'failed' (dead_token)
 *   invalid      produced to dlq (invalid_json / invalid_delivery)
 *
 * Flow control: a user's deliveries go out one at a time in order; the
 * provider's token bucket and circuit breaker (with an optional fallback
 * provider) pause the partitions instead of burning attempts; a bounded
 * number of records is held in memory.  docs/channels.md has the whole
 * story.
 */
#ifndef HERALD_CHANNELS_WORKER_H
#define HERALD_CHANNELS_WORKER_H

#include <signal.h>
#include <stddef.h>

#include "config.h"
#include "worker_config.h"

typedef struct worker worker;

/*
 * Builds the worker: providers, PostgreSQL, Kafka clients, the ops server.
 * cfg, common and props must outlive the worker.  Returns NULL with err set
 * (a configuration problem names the variable).  *config_error tells a
 * configuration problem (exit 2) from a runtime one (exit 1).
 */
worker *worker_new(const worker_config *cfg, const herald_common_config *common,
                   const config_kafka_props *props, const volatile sig_atomic_t *stop,
                   int *config_error, char *err, size_t errlen) __attribute__((warn_unused_result));

/*
 * Runs until *stop becomes 1 (SIGTERM/SIGINT) or a fatal error, then shuts
 * down in order: stop intake, give back unsent claims, let in-flight sends
 * finish within HERALD_WORKER_DRAIN_TIMEOUT, record outcomes, flush the
 * producer, commit offsets.  Returns 0 after a clean stop, 1 after a fatal
 * error.
 */
int worker_run(worker *w);

/* The port of the ops server (useful when started on port 0). */
unsigned worker_metrics_port(const worker *w);

void worker_free(worker *w);

#endif
