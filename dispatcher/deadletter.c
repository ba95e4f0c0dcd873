/*
 * deadletter: see deadletter.h.
 */
#include "deadletter.h"

#include "dlq.h"
#include "headers.h"

rd_kafka_headers_t *deadletter_headers(rd_kafka_message_t *msg, const char *reason,
                                       const char *error, int64_t failed_at_ms)
{
    rd_kafka_headers_t *hdrs = kafka_message_headers(msg);
    dlq_origin o = {
        .topic = msg->rkt != NULL ? rd_kafka_topic_name(msg->rkt) : "",
        .partition = msg->partition,
        .offset = msg->offset,
        .timestamp_ms = rd_kafka_message_timestamp(msg, NULL),
    };
    /* A record that could not be read was attempted once. */
    return dlq_headers(hdrs, reason, error, DEADLETTER_STAGE, &o, 1, failed_at_ms);
}
