/*
 * deadletter: see deadletter.h.
 */
#include "deadletter.h"

#include "headers.h"
#include "kafka.h"
#include "timeutil.h"

static const char *const replaced[] = {
    HDR_DLQ_REASON,         HDR_DLQ_ERROR,          HDR_DLQ_STAGE,
    HDR_ORIGINAL_TOPIC,     HDR_ORIGINAL_PARTITION, HDR_ORIGINAL_OFFSET,
    HDR_ORIGINAL_TIMESTAMP, HDR_ATTEMPTS,           HDR_FAILED_AT,
};

rd_kafka_headers_t *deadletter_headers(rd_kafka_message_t *msg, const char *reason,
                                       const char *error, int64_t failed_at_ms)
{
    char when[TIMEUTIL_RFC3339_SIZE];
    rd_kafka_headers_t *h = kafka_headers_copy(msg);
    if (h == NULL)
        return NULL;
    for (size_t i = 0; i < sizeof replaced / sizeof replaced[0]; i++)
        (void)rd_kafka_header_remove(h, replaced[i]);
    int64_t ts = rd_kafka_message_timestamp(msg, NULL);
    int rc = 0;
    rc |= kafka_header_add_str(h, HDR_DLQ_REASON, reason);
    rc |= kafka_header_add_str(h, HDR_DLQ_ERROR, error);
    rc |= kafka_header_add_str(h, HDR_DLQ_STAGE, DEADLETTER_STAGE);
    rc |= kafka_header_add_str(h, HDR_ORIGINAL_TOPIC,
                               msg->rkt != NULL ? rd_kafka_topic_name(msg->rkt) : "");
    rc |= kafka_header_add_int64(h, HDR_ORIGINAL_PARTITION, msg->partition);
    rc |= kafka_header_add_int64(h, HDR_ORIGINAL_OFFSET, msg->offset);
    rc |= kafka_header_add_int64(h, HDR_ORIGINAL_TIMESTAMP, ts);
    rc |= kafka_header_add_int64(h, HDR_ATTEMPTS, 1);
    rc |= kafka_header_add_str(h, HDR_FAILED_AT,
                               timeutil_format_rfc3339(failed_at_ms, when, sizeof when));
    if (rc != 0) {
        rd_kafka_headers_destroy(h);
        return NULL;
    }
    return h;
}
