/*
 * dlq: the headers of a dead letter and of a record sent round the retry
 * topic (docs/interface.md sections 2.3 and 3), for every stage: the
 * dispatcher's dead letters and the workers' dead letters and retries are
 * built here by the one rule of section 3.1.
 *
 * A dead letter keeps the original key, value and headers and adds
 *   herald.dlq.reason, herald.dlq.error, herald.dlq.stage,
 *   herald.original.topic/partition/offset/timestamp, herald.attempts,
 *   herald.failed_at.
 * "Original" means where the delivery first entered the worker, its
 * deliveries.<channel> record, even when it failed on a later attempt read
 * from the retry topic: the first retry stamps herald.original.* on the
 * record it produces and later hops keep them.
 *
 * Retry records also carry herald.retry.attempts (attempts made so far) and
 * herald.retry.not_before (ms since the epoch), and keep the delivery's
 * value byte for byte, so a dead letter's value is always what the
 * dispatcher wrote.
 *
 * No I/O: these build rd_kafka_headers_t lists the caller produces with.
 */
#ifndef HERALD_COMMON_DLQ_H
#define HERALD_COMMON_DLQ_H

#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "headers.h"

/* Where a record was read: the record being handled now. */
typedef struct dlq_origin {
    const char *topic;
    int32_t partition;
    int64_t offset;
    int64_t timestamp_ms; /* the record's timestamp; -1 when unknown */
} dlq_origin;

/*
 * The headers of a dead letter: a copy of hdrs (may be NULL) without any
 * herald.dlq.* / herald.retry.* / herald.attempts / herald.failed_at, plus the
 * contract's headers.  herald.original.* already present are kept (the
 * record came from the retry topic); otherwise they are taken from o.
 * Returns NULL when out of memory.  The caller owns the result.
 */
rd_kafka_headers_t *dlq_headers(const rd_kafka_headers_t *hdrs, const char *reason,
                                const char *error, const char *stage, const dlq_origin *o,
                                int attempts, int64_t failed_at_ms)
    __attribute__((warn_unused_result));

/*
 * The headers of a retry record: a copy of hdrs with herald.retry.* replaced
 * and herald.original.* added from o when absent.
 */
rd_kafka_headers_t *dlq_retry_headers(const rd_kafka_headers_t *hdrs, const dlq_origin *o,
                                      int attempts, int64_t not_before_ms)
    __attribute__((warn_unused_result));

#endif
