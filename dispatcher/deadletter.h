/*
 * deadletter: the headers of a record the dispatcher cannot process (not
 * JSON, or not a valid event), which it puts on the dlq topic with the
 * original key, value and headers, inside the batch's transaction, and
 * then goes on with the next event (docs/interface.md section 2.4).
 *
 * The headers are those of every stage's dead letters (common/dlq.h,
 * docs/interface.md section 3.1) with herald.dlq.stage=dispatcher and
 * herald.attempts=1: failure headers the record already carried (a dead
 * letter requeued by hand and failing again) are replaced, so a reader never
 * sees two reasons, and herald.original.* it carried are kept.  No I/O.
 */
#ifndef HERALD_DISPATCHER_DEADLETTER_H
#define HERALD_DISPATCHER_DEADLETTER_H

#include <stdint.h>

#include <librdkafka/rdkafka.h>

#define DEADLETTER_STAGE "dispatcher"

/*
 * A new header list (the caller owns it) for msg, or NULL when out of
 * memory.  msg is not const: librdkafka parses headers lazily.
 */
rd_kafka_headers_t *deadletter_headers(rd_kafka_message_t *msg, const char *reason,
                                       const char *error, int64_t failed_at_ms)
    __attribute__((warn_unused_result));

#endif
