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
#include <string.h>

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

#endif
