/*
 * event: the notification event of the events topic (docs/interface.md
 * section 2.1).
 *
 * Wire form, one JSON object per Kafka record (optional fields omitted):
 *
 *   {"event_id":"<uuid>","type":"order.shipped","user_id":"u-42",
 *    "data":{...},"priority":"normal","category":"billing",
 *    "created_at":"2026-11-27T22:10:55.123Z","idempotency_key":"k-1",
 *    "broadcast_id":"<uuid>","generation":0,"api_key_id":7,"digest":false}
 *
 * with "topic":"<name>" instead of "user_id" for a topic broadcast (its
 * Kafka key is then "topic:<name>", see event_kafka_key).  api_key_id is
 * the API key that published the event, set by the gateway (never taken
 * from a request body): the status webhooks of that key hear of it.
 *
 * Two ways in, with different strictness:
 * - event_from_request validates an API request body: only the fields a
 *   client may send, unknown fields rejected, data size capped.  The gateway
 *   then fills event_id and created_at.
 * - event_parse reads a full event from Kafka: every required field must be
 *   present and valid, unknown fields are ignored so that a newer producer
 *   does not send an older consumer's records to the DLQ.  It does not cap
 *   data: the gateway did, and the broker bounds the record.
 * Both reject duplicate keys and report the offending field by name.
 *
 * Ownership: an event owns its strings and its data (one json_t reference);
 * event_free releases them.  `event ev = {0};` is a valid empty event, and
 * its zero priority is EVENT_PRIORITY_NORMAL.
 */
#ifndef HERALD_EVENT_H
#define HERALD_EVENT_H

#include "ids.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Zero is normal, so a zeroed event never claims an urgency it was not given;
 * the values are not ordered by urgency. */
typedef enum {
    EVENT_PRIORITY_NORMAL = 0,
    EVENT_PRIORITY_LOW = 1,
    EVENT_PRIORITY_HIGH = 2,
    EVENT_PRIORITY_CRITICAL = 3,
} event_priority;

#define EVENT_PRIORITY_COUNT 4

/* Results of the parsers; the two failures map to the DLQ reasons. */
typedef enum {
    EVENT_OK = 0,
    EVENT_INVALID_JSON = -1, /* not JSON at all: "invalid_json" */
    EVENT_INVALID = -2,      /* JSON, but not a valid event: "invalid_event" */
} event_status;

#define EVENT_TYPE_MAX         128
#define EVENT_TOPIC_MAX        128
#define EVENT_CATEGORY_MAX     64
#define EVENT_DATA_MAX_DEFAULT (64 * 1024)
#define EVENT_KAFKA_KEY_SIZE   (6 + EVENT_TOPIC_MAX + 1) /* "topic:" + name + NUL */

typedef struct event_limits {
    size_t max_data_bytes; /* compact JSON of data; 0 means EVENT_DATA_MAX_DEFAULT */
} event_limits;

typedef struct event {
    char event_id[ID_UUID_SIZE]; /* "" until the gateway assigns it */
    char *type;                  /* lowercase dotted name, like "order.shipped" */
    char *user_id;               /* exactly one of user_id and topic is set */
    char *topic;
    json_t *data; /* an object; owned reference */
    event_priority priority;
    char *category;                  /* NULL when absent (treated as transactional) */
    int64_t created_at;              /* ms since the epoch */
    char *idempotency_key;           /* NULL when absent */
    char broadcast_id[ID_UUID_SIZE]; /* the topic event this per-user event came from, or "" */
    int generation;                  /* bumped by replay --redeliver; 0 at first */
    bool no_digest;                  /* "digest":false: digest rules pass it by (docs/digests.md) */
    int64_t api_key_id;              /* the publishing key (docs/webhooks.md); 0: none */
} event;

/* "critical", "high", "normal", "low"; "normal" for an out-of-range value. */
const char *event_priority_name(event_priority p);

/* The inverse of event_priority_name; -1 for anything else. */
int event_priority_parse(const char *s, event_priority *out) __attribute__((warn_unused_result));

/*
 * Reads a full event from json[0..len).  On failure *out is left empty,
 * err holds "<field>: <problem>" (or the JSON error with its position).
 */
event_status event_parse(const char *json, size_t len, event *out, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/*
 * Validates an API request body {"type", "user_id" | "topic", "data"?,
 * "priority"?, "category"?, "idempotency_key"?, "digest"?} into *out (event_id and
 * created_at left for the caller).  body is borrowed; out->data takes its
 * own reference to body's "data".  On failure returns -1, *out is left
 * empty, field receives the offending field name ("" for the body itself)
 * and err "<field>: <problem>".  lim may be NULL for the defaults.
 * ("idempotency_key" in the body serves batch items, which have no header.)
 */
int event_from_request(json_t *body, event *out, const event_limits *lim, char *field,
                       size_t fieldlen, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/*
 * Checks an event built in code before it is produced: every field event_parse
 * requires, with the same messages.  lim may be NULL (no data size cap).
 */
int event_validate(const event *ev, const event_limits *lim, char *field, size_t fieldlen,
                   char *err, size_t errlen) __attribute__((warn_unused_result));

/* The wire object (new reference), or NULL when out of memory or a string is not UTF-8. */
json_t *event_to_json(const event *ev);

/* Compact wire JSON in *out (free() it) and its length; -1 as event_to_json. */
int event_serialize(const event *ev, char **out, size_t *outlen)
    __attribute__((warn_unused_result));

/*
 * event_serialize() with created_at already formatted as
 * timeutil_format_rfc3339() writes ev->created_at (NULL: format it here).
 */
int event_serialize_at(const event *ev, const char *created_at, char **out, size_t *outlen)
    __attribute__((warn_unused_result));

/* The Kafka key: user_id, or "topic:<topic>" for a broadcast.  Returns out. */
char *event_kafka_key(const event *ev, char *out, size_t outlen);

/*
 * Deep-copies src's strings into *dst (which must be empty); data is shared
 * (one more reference), so treat it as immutable.  -1 when out of memory.
 */
int event_copy(event *dst, const event *src) __attribute__((warn_unused_result));

/* Releases what ev owns and leaves it empty; safe on an empty event. */
void event_free(event *ev);

#endif
