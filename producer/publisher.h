/*
 * publisher: the gateway's Kafka producer and the threads that serve it.
 *
 * It owns one kafka_producer (common/kafka.c) configured for the gateway's
 * promise: a publish is answered only once the broker acknowledged it, or
 * failed, within the publish timeout (message.timeout.ms), and the local
 * queue is bounded (queue.buffering.max.messages) so that overload turns
 * into quick 503s rather than memory growth.
 *
 * Two threads: the poll thread serves delivery reports and calls the done
 * callback once per message that publisher_send() accepted; the probe
 * thread asks the cluster for the events topic's metadata every second,
 * which is both the readiness signal and the reason publisher_send() can
 * refuse at once while no broker is reachable, instead of holding each
 * request for the full timeout.
 */
#ifndef HERALD_PUBLISHER_H
#define HERALD_PUBLISHER_H

#include "config.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct publisher publisher;

typedef enum {
    PUBLISHER_OK = 0,      /* acknowledged by the broker (or, from send: queued) */
    PUBLISHER_QUEUE_FULL,  /* the local queue is full: 503, retry soon */
    PUBLISHER_UNAVAILABLE, /* no broker reachable, or not acknowledged in time: 503 */
    PUBLISHER_IN_DOUBT,    /* not acknowledged, but the broker may have written it (a
                            * timeout during a failover): 503, and the event id stays
                            * bound to its idempotency key */
    PUBLISHER_FAILED,      /* refused for good (topic missing, record too large, fatal) */
} publisher_result;

/* Called on the poll thread; must be quick and must not block. */
typedef void (*publisher_done_fn)(void *opaque, publisher_result result, const char *errstr,
                                  int32_t partition, int64_t offset);

typedef struct publisher_config {
    const char *brokers;
    const config_kafka_props *props; /* applied last: operators may override anything */
    const char *probe_topic;         /* the events topic, checked by the probe */
    int timeout_ms;                  /* message.timeout.ms: the wait for an acknowledgement */
    int queue_max_messages;          /* queue.buffering.max.messages */
    int linger_ms;
    publisher_done_fn done;
} publisher_config;

/* Creates the producer and starts both threads.  NULL with err set. */
publisher *publisher_new(const publisher_config *cfg, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/*
 * Enqueues one record (key and value are copied).  On PUBLISHER_OK the done
 * callback will be called exactly once with opaque; on anything else it will
 * not, and err says why.
 */
publisher_result publisher_send(publisher *p, const char *topic, const void *key, size_t keylen,
                                const void *value, size_t vlen, void *opaque, char *err,
                                size_t errlen) __attribute__((warn_unused_result));

/* publisher_send with another done callback for this record (records that
 * are not events, such as inbox updates). */
publisher_result publisher_send_with(publisher *p, publisher_done_fn done, const char *topic,
                                     const void *key, size_t keylen, const void *value, size_t vlen,
                                     void *opaque, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/*
 * Whether a record sent now could be taken, without sending one: PUBLISHER_OK,
 * PUBLISHER_UNAVAILABLE (the probe found no broker) or PUBLISHER_QUEUE_FULL
 * (the queue is at its bound), with err saying why.  Cheap enough to ask
 * before a request's body is read; publisher_send() still has the last word.
 */
publisher_result publisher_admit(publisher *p, char *err, size_t errlen);

/* Whether the last probe reached the cluster and found the topic. */
bool publisher_ready(publisher *p, char *reason, size_t reasonlen);

/* Records queued or in flight. */
int publisher_queue_depth(publisher *p);

/* Waits up to timeout_ms for the queue to drain; returns what is left. */
int publisher_flush(publisher *p, int timeout_ms);

/*
 * Stops the threads, purges what is left (each purged record gets its done
 * callback with PUBLISHER_UNAVAILABLE) and frees p.  NULL is a no-op.
 */
void publisher_free(publisher *p);

#endif
