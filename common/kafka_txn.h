/*
 * kafka_txn: the calls of a transactional producer (kafka_producer_new()
 * with a transactional id): init, begin, send the consumer's offsets,
 * commit, abort.  Those calls belong to one thread.
 */
#ifndef HERALD_KAFKA_TXN_H
#define HERALD_KAFKA_TXN_H

#include "kafka.h"

/*
 * The transactional calls return the class of their error: NONE on success;
 * RETRIABLE: call the same function again; ABORT_TXN: kafka_txn_abort() then
 * redo the batch from kafka_txn_begin(); FATAL: stop; PERMANENT: a usage
 * error (e.g. no transactional id).  err has the detail.
 */
kafka_err_class kafka_txn_init(kafka_producer *p, int timeout_ms, char *err,
                               size_t errlen) KAFKA_MUSTCHECK;
kafka_err_class kafka_txn_begin(kafka_producer *p, char *err, size_t errlen) KAFKA_MUSTCHECK;
/*
 * Adds the consumer's offsets to the transaction: offsets when non-NULL (the
 * next offsets to consume, i.e. last processed + 1), otherwise the consumer's
 * current position on its assignment.  offsets stays the caller's.
 */
kafka_err_class kafka_txn_send_offsets(kafka_producer *p, kafka_consumer *c,
                                       const rd_kafka_topic_partition_list_t *offsets,
                                       int timeout_ms, char *err, size_t errlen) KAFKA_MUSTCHECK;
kafka_err_class kafka_txn_commit(kafka_producer *p, int timeout_ms, char *err,
                                 size_t errlen) KAFKA_MUSTCHECK;
kafka_err_class kafka_txn_abort(kafka_producer *p, int timeout_ms, char *err,
                                size_t errlen) KAFKA_MUSTCHECK;

#endif
