/*
 * dlqrec: one dead letter of the dlq topic as heraldctl sees it, and what
 * the dlq commands compute from it (docs/interface.md section 3.1).
 *
 * A dlqrec is built from the parts of a Kafka record (position, timestamp,
 * key, value, headers) and owns copies of them, plus the fields an operator
 * filters and reads by: stage, reason, error, attempts, the original
 * topic/partition/offset, and — from the payload when it is JSON — the user,
 * the event and the channel.  Records written by an older or foreign
 * producer may lack any header: the fields are then "" (or -1), never NULL.
 *
 * Also here, with no I/O so unit tests need no broker:
 * - the filters of `dlq list/stats/requeue`,
 * - the JSON form of `--json`,
 * - the requeue transformation (value with "attempt" reset to 1, headers
 *   without the dead-letter ones, plus herald.requeued_from/_at),
 * - the stage x reason statistics,
 * - PARTITION:OFFSET parsing.
 */
#ifndef HERALD_DLQREC_H
#define HERALD_DLQREC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <librdkafka/rdkafka.h>

#include "headers.h"

/* Cap on one record's headers: more is not a Herald record. */
#define DLQREC_MAX_HEADERS 256

typedef struct dlqrec_header {
    char *name;
    char *value; /* NUL-terminated copy; len excludes the NUL (binary values keep it) */
    size_t len;
} dlqrec_header;

typedef struct dlqrec {
    int32_t partition;
    int64_t offset;
    int64_t timestamp_ms; /* of the dead letter; -1 when unknown */
    char *key;            /* NULL for a record without key */
    size_t keylen;
    char *value; /* NUL-terminated copy; NULL for a tombstone */
    size_t vlen;
    dlqrec_header *headers;
    size_t nheaders;

    /* Derived; "" when unknown.  Header fields point into headers[]. */
    const char *stage, *reason, *error, *orig_topic, *failed_at;
    int32_t orig_partition; /* -1 when unknown */
    int64_t orig_offset;    /* -1 when unknown */
    int64_t orig_timestamp; /* ms; -1 when unknown */
    int attempts;           /* -1 when unknown */
    char *user;             /* payload user_id, else the key; owned */
    char *event_id;         /* payload event_id; owned */
    char *channel;          /* "email" from stage worker.email, or the payload; owned */
} dlqrec;

/*
 * Builds *out (which must be zeroed) from a record's parts; hdrs may be
 * NULL.  Copies everything.  -1 with err when out of memory or the record
 * has more than DLQREC_MAX_HEADERS headers; *out is then empty.
 */
int dlqrec_init(dlqrec *out, int32_t partition, int64_t offset, int64_t timestamp_ms,
                const void *key, size_t keylen, const void *value, size_t vlen,
                const rd_kafka_headers_t *hdrs, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Releases what r owns and leaves it zeroed.  Safe on a zeroed record. */
void dlqrec_free(dlqrec *r);

/* The last header called name, or NULL. */
const dlqrec_header *dlqrec_header_get(const dlqrec *r, const char *name);

/*
 * What `dlq list/stats/requeue` and GET /v1/dlq select; NULL strings,
 * since_ms < 0 and until_ms <= 0 match all.
 */
typedef struct dlqrec_filter {
    const char *stage;
    const char *reason;
    const char *channel;
    int64_t since_ms; /* dead-lettered at or after (the record's timestamp) */
    int64_t until_ms; /* dead-lettered before */
} dlqrec_filter;

bool dlqrec_matches(const dlqrec *r, const dlqrec_filter *f);

/*
 * The --json form (new reference, NULL when out of memory):
 *   {"partition","offset","timestamp","key","stage","reason","error",
 *    "attempts","failed_at","user_id","event_id","channel",
 *    "original":{"topic","partition","offset","timestamp"},
 *    "headers":{name: value, ...}, "payload": <parsed JSON, else the text>}
 * Times are RFC 3339.  Non-UTF-8 text is given as null.
 */
json_t *dlqrec_to_json(const dlqrec *r);

/* "P:O" into *partition, *offset; -1 with err naming what is wrong. */
int dlqrec_parse_position(const char *s, int32_t *partition, int64_t *offset, char *err,
                          size_t errlen) __attribute__((warn_unused_result));

/* "<dlq topic>:<partition>:<offset>", the value of herald.requeued_from. */
char *dlqrec_position_id(const char *dlq_topic, const dlqrec *r, char *out, size_t outlen);

/*
 * The value to requeue: a delivery (a JSON object with an integer "attempt")
 * gets "attempt":1, so the worker gives it a full set of attempts; anything
 * else (events, or values that are not JSON) is sent back unchanged.
 * *out is malloc'd (free it), NUL-terminated; NULL with *outlen 0 for a
 * tombstone.  -1 when out of memory.
 */
int dlqrec_requeue_value(const dlqrec *r, char **out, size_t *outlen)
    __attribute__((warn_unused_result));

/*
 * The headers to requeue with: the record's own without herald.dlq.*,
 * herald.original.*, herald.retry.*, herald.attempts, herald.failed_at and
 * an earlier herald.requeued_*, then herald.requeued_from =
 * dlqrec_position_id() and herald.requeued_at = now (RFC 3339).  The caller
 * owns the result; NULL when out of memory.
 */
rd_kafka_headers_t *dlqrec_requeue_headers(const dlqrec *r, const char *dlq_topic, int64_t now_ms)
    __attribute__((warn_unused_result));

/* ------------------------------------------------------------------ stats */

typedef struct dlqrec_stats dlqrec_stats;

typedef struct dlqrec_stats_row {
    const char *stage;
    const char *reason;
    int64_t count;
    int64_t oldest_ms; /* record timestamps; -1 when none known */
    int64_t newest_ms;
} dlqrec_stats_row;

dlqrec_stats *dlqrec_stats_new(void) __attribute__((warn_unused_result));

/* Counts r under its (stage, reason); -1 when out of memory. */
int dlqrec_stats_add(dlqrec_stats *s, const dlqrec *r) __attribute__((warn_unused_result));

/* Rows sorted by stage then reason; valid until the next add or free. */
size_t dlqrec_stats_rows(dlqrec_stats *s, const dlqrec_stats_row **rows);

int64_t dlqrec_stats_total(const dlqrec_stats *s);

/*
 * {"total":n, <rows_key>:[{"stage","reason","count","oldest","newest"}]}
 * (times RFC 3339, "-" when unknown); heraldctl calls the rows "groups",
 * the API "rows".  New reference; NULL when out of memory.
 */
json_t *dlqrec_stats_to_json(dlqrec_stats *s, const char *rows_key);

void dlqrec_stats_free(dlqrec_stats *s);

#endif
