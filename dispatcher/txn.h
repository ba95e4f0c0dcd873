/*
 * txn: the dispatcher's use of Kafka transactions, classified the way
 * librdkafka's transactions example does: a retriable error retries the same
 * call, "requires abort" aborts so the caller can redo its batch, fatal stops
 * the daemon.  Produced deliveries, dead letters and the consumed offsets
 * commit together; the offsets go with the consumer's group metadata
 * (KIP-447), so a member that lost its partitions in a rebalance is fenced
 * and cannot commit a stale batch.
 */
#ifndef HERALD_DISPATCHER_TXN_H
#define HERALD_DISPATCHER_TXN_H

#include <signal.h>
#include <stddef.h>

#include "kafka.h"

typedef enum {
    TXN_OK = 0,
    TXN_ABORTED, /* the transaction was aborted (or never began): redo the batch */
    TXN_FATAL,   /* the producer is unusable: stop */
} txn_result;

/* Begins a transaction. */
txn_result txn_begin(kafka_producer *p, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/*
 * Produces one message in the open transaction, polling while the local
 * queue is full (for at most timeout_ms).  hdrs: as kafka_produce(), freed
 * here on failure.  TXN_ABORTED means this message could not be queued: abort.
 */
txn_result txn_produce(kafka_producer *p, const char *topic, const void *key, size_t keylen,
                       const void *value, size_t vlen, rd_kafka_headers_t *hdrs, int timeout_ms,
                       char *err, size_t errlen) __attribute__((warn_unused_result));

/*
 * Adds offsets (the next offsets to consume, with the consumer's group
 * metadata; NULL: none) and commits.  On TXN_ABORTED the transaction has been
 * aborted already.
 */
txn_result txn_commit(kafka_producer *p, kafka_consumer *c,
                      const rd_kafka_topic_partition_list_t *offsets, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Aborts the open transaction (if any); TXN_OK or TXN_FATAL. */
txn_result txn_abort(kafka_producer *p, char *err, size_t errlen)
    __attribute__((warn_unused_result));

#endif
