/*
 * deadletter: see deadletter.h.
 */
#include "deadletter.h"

#include "kafka.h"
#include "timeutil.h"

static const char *const replaced[] = {
    "herald.dlq.reason",         "herald.dlq.error",          "herald.dlq.stage",
    "herald.original.topic",     "herald.original.partition", "herald.original.offset",
    "herald.original.timestamp", "herald.attempts",           "herald.failed_at",
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
    rc |= kafka_header_add_str(h, "herald.dlq.reason", reason);
    rc |= kafka_header_add_str(h, "herald.dlq.error", error);
    rc |= kafka_header_add_str(h, "herald.dlq.stage", DEADLETTER_STAGE);
    rc |= kafka_header_add_str(h, "herald.original.topic",
                               msg->rkt != NULL ? rd_kafka_topic_name(msg->rkt) : "");
    rc |= kafka_header_add_int64(h, "herald.original.partition", msg->partition);
    rc |= kafka_header_add_int64(h, "herald.original.offset", msg->offset);
    rc |= kafka_header_add_int64(h, "herald.original.timestamp", ts);
    rc |= kafka_header_add_int64(h, "herald.attempts", 1);
    rc |= kafka_header_add_str(h, "herald.failed_at",
                               timeutil_format_rfc3339(failed_at_ms, when, sizeof when));
    if (rc != 0) {
        rd_kafka_headers_destroy(h);
        return NULL;
    }
    return h;
}
