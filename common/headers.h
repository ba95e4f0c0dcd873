/*
 * headers: the names of the Kafka record headers Herald writes and reads.
 *
 * Dead letters carry the DLQ headers of docs/interface.md section 3.1 (reason,
 * error, stage, where the record was read, attempts, when it failed); the
 * others are Herald's own.  Values are UTF-8 text; numbers in decimal.
 */
#ifndef HERALD_COMMON_HEADERS_H
#define HERALD_COMMON_HEADERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <librdkafka/rdkafka.h>

/* Dead letters. */
#define HDR_DLQ_REASON         "herald.dlq.reason"
#define HDR_DLQ_ERROR          "herald.dlq.error"
#define HDR_DLQ_STAGE          "herald.dlq.stage"
#define HDR_ORIGINAL_TOPIC     "herald.original.topic"
#define HDR_ORIGINAL_PARTITION "herald.original.partition"
#define HDR_ORIGINAL_OFFSET    "herald.original.offset"
#define HDR_ORIGINAL_TIMESTAMP "herald.original.timestamp" /* ms since the epoch */
#define HDR_ATTEMPTS           "herald.attempts"
#define HDR_FAILED_AT          "herald.failed_at" /* RFC 3339 */

/* Families, for removing a dead letter's headers wholesale. */
#define HDR_DLQ_PREFIX      "herald.dlq."
#define HDR_ORIGINAL_PREFIX "herald.original."
#define HDR_RETRY_PREFIX    "herald.retry."

/* A worker's retry records: the attempt that failed, and when to try again. */
#define HDR_RETRY_ATTEMPTS   "herald.retry.attempts"
#define HDR_RETRY_NOT_BEFORE "herald.retry.not_before"

/* `heraldctl dlq requeue`: the dead letter it came from and when. */
#define HDR_REQUEUED_FROM "herald.requeued_from" /* <dlq topic>:<partition>:<offset> */
#define HDR_REQUEUED_AT   "herald.requeued_at"

/*
 * `heraldctl replay`: set on the events it re-publishes; the dispatcher
 * passes HDR_REPLAYED_AT on to their deliveries.
 */
#define HDR_REPLAYED    "herald.replayed"
#define HDR_REPLAYED_AT "herald.replayed_at"

/* A status webhook call (common/webhook_call.h): its id and type. */
#define HDR_WEBHOOK_ID   "herald.webhook.id"
#define HDR_WEBHOOK_TYPE "herald.webhook.type"

static inline bool hdr_has_prefix(const char *name, const char *prefix)
{
    return strncmp(name, prefix, strlen(prefix)) == 0;
}

/*
 * Whether name records a failed attempt: a dead letter's reason, error,
 * stage, attempts and time, or a retry's schedule.  A record sent round
 * again (retried, dead-lettered anew, requeued) drops them and gets its own.
 * The herald.original.* headers are not among them: where a record was
 * first read stays true across its retries.
 */
static inline bool hdr_is_failure(const char *name)
{
    return hdr_has_prefix(name, HDR_DLQ_PREFIX) || hdr_has_prefix(name, HDR_RETRY_PREFIX) ||
           strcmp(name, HDR_ATTEMPTS) == 0 || strcmp(name, HDR_FAILED_AT) == 0;
}

/*
 * Add to a list the caller owns (rd_kafka_headers_new()); values are copied.
 * int64 values are written as decimal text, as the DLQ headers of the
 * contract are.  Return 0, or -1 when name is NULL or the list is read-only.
 */
int kafka_header_add_str(rd_kafka_headers_t *hdrs, const char *name, const char *value)
    __attribute__((warn_unused_result));
int kafka_header_add_int64(rd_kafka_headers_t *hdrs, const char *name, int64_t value)
    __attribute__((warn_unused_result));

/* Whether the list (may be NULL) has a header called name. */
bool hdr_has(const rd_kafka_headers_t *hdrs, const char *name);

/*
 * Copies the last header called name into buf, NUL-terminated (a NULL value
 * reads as "").  Returns the value's length, -1 when there is no such header
 * (or hdrs is NULL), -2 when buf is too small (buf then holds a truncated
 * copy).
 */
int hdr_get(const rd_kafka_headers_t *hdrs, const char *name, char *buf, size_t buflen);

/* As hdr_get(), parsed as a decimal int64: 0, or -1 when absent or invalid. */
int hdr_get_int64(const rd_kafka_headers_t *hdrs, const char *name, int64_t *out);

/*
 * A new list (the caller owns it) with the headers of hdrs (may be NULL) that
 * drop(name, arg) does not reject, in order, with room for extra more.
 */
rd_kafka_headers_t *hdr_copy_filtered(const rd_kafka_headers_t *hdrs, size_t extra,
                                      bool (*drop)(const char *name, void *arg), void *arg)
    __attribute__((warn_unused_result));

/*
 * The message's headers (owned by msg), or NULL when it has none.  msg is not
 * const because librdkafka parses headers lazily.
 */
rd_kafka_headers_t *kafka_message_headers(rd_kafka_message_t *msg);

/*
 * hdr_get() and hdr_get_int64() on a message's headers.  msg is not const
 * because librdkafka parses headers lazily.
 */
int kafka_header_get(rd_kafka_message_t *msg, const char *name, char *buf, size_t buflen);
int kafka_header_get_int64(rd_kafka_message_t *msg, const char *name, int64_t *out);

/*
 * A new list with every header of msg (empty when it has none), for
 * re-producing a message with its headers kept.  The caller owns it.
 */
rd_kafka_headers_t *kafka_headers_copy(rd_kafka_message_t *msg) __attribute__((warn_unused_result));

#endif
