/*
 * delivery: one rendered, addressed notification on a deliveries.<channel>
 * (or retry) topic, docs/interface.md section 2.2.
 *
 * Wire form (optional fields omitted; Kafka key = user_id):
 *
 *   {"idempotency_key":"<uuid>","event_id":"<uuid>","user_id":"u-42",
 *    "channel":"email","attempt":1,"address":"ann@example.com",
 *    "subject":"Your order shipped","body":"...","priority":"normal",
 *    "category":"billing","event_type":"order.shipped",
 *    "created_at":"2026-11-27T22:10:55.123Z",
 *    "not_before":"2026-11-28T07:00:00.000Z","generation":0}
 *
 * Push and in-app deliveries carry "title" and "data" (an object) as well;
 * "subject" is for email only, "title" and "data" for push and inapp only.
 * One delivery goes to one address: a user with three device tokens gets
 * three deliveries.  An in-app delivery's address is the user id itself:
 * the user's inbox (docs/inapp.md).
 *
 * The idempotency key is UUID v5 (SHA-1, RFC 4122) in ID_NAMESPACE_HERALD of
 * the name "<event_id>|<channel>|<address>|<generation>".  So it is the same
 * for every attempt and every re-read of the same record (providers and the
 * worker's sent-check deduplicate on it), differs per device token, and
 * changes only when a replay with --redeliver bumps the generation.  A UUID
 * is short and fits Message-ID and Idempotency-Key headers as it is.
 *
 * delivery_parse, like event_parse, rejects duplicate keys, ignores
 * unknown fields and names the offending field in err.
 * Ownership: a delivery owns its strings and data; delivery_free releases
 * them.  `delivery d = {0};` is a valid empty delivery.
 */
#ifndef HERALD_DELIVERY_H
#define HERALD_DELIVERY_H

#include "buf.h"
#include "event.h"
#include "ids.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    DELIVERY_EMAIL = 0,
    DELIVERY_SMS = 1,
    DELIVERY_PUSH = 2,
    DELIVERY_INAPP = 3,
} delivery_channel;

#define DELIVERY_CHANNEL_COUNT 4

typedef enum {
    DELIVERY_OK = 0,
    DELIVERY_INVALID_JSON = -1, /* DLQ reason "invalid_json" */
    DELIVERY_INVALID = -2,      /* JSON, but not a valid delivery */
} delivery_status;

#define DELIVERY_SUBJECT_MAX    998 /* RFC 5322 line length */
#define DELIVERY_TITLE_MAX      1024
#define DELIVERY_EMAIL_BODY_MAX (1024 * 1024)
#define DELIVERY_SMS_BODY_CHARS 1600 /* Twilio's cap, in characters */
#define DELIVERY_PUSH_BODY_MAX  4096
#define DELIVERY_INAPP_BODY_MAX (16 * 1024)
#define DELIVERY_DATA_MAX       EVENT_DATA_MAX_DEFAULT

typedef struct delivery {
    char idempotency_key[ID_UUID_SIZE];
    char event_id[ID_UUID_SIZE];
    char *user_id;
    delivery_channel channel;
    int attempt;   /* 1 for the first attempt */
    char *address; /* email address, E.164 phone number, device token, or (inapp) user id */
    char *subject; /* email only; NULL when absent */
    char *body;    /* rendered text, never empty */
    char *title;   /* push and inapp only; NULL when absent */
    json_t *data;  /* push and inapp only: an object, or NULL; owned reference */
    event_priority priority;
    char *category; /* NULL when absent */
    char *event_type;
    int64_t created_at; /* of the event, ms since the epoch */
    int64_t not_before; /* ms since the epoch; 0 = now (retries, quiet hours) */
    int generation;     /* of the event; see the idempotency key above */
} delivery;

/* "email", "sms", "push", "inapp"; "email" for an out-of-range value. */
const char *delivery_channel_name(delivery_channel c);

/* The inverse of delivery_channel_name; -1 for anything else. */
int delivery_channel_parse(const char *s, delivery_channel *out)
    __attribute__((warn_unused_result));

/* Reads a delivery from json[0..len); on failure *out is left empty and err says why. */
delivery_status delivery_parse(const char *json, size_t len, delivery *out, char *err,
                               size_t errlen) __attribute__((warn_unused_result));

/*
 * Checks a delivery built in code before it is produced (same rules and
 * messages as delivery_parse); err is "<field>: <problem>".
 */
int delivery_validate(const delivery *d, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* The wire object (new reference), or NULL when out of memory or a string is not UTF-8. */
json_t *delivery_to_json(const delivery *d);

/*
 * The one writer of the record: appends d's compact wire JSON to b, byte
 * for byte what jansson dumps of delivery_to_json(d).  created_at is d's
 * created_at already formatted (RFC 3339), or NULL to format it here (the
 * dispatcher formats an event's once for all its deliveries).  -1, with b
 * as it was, when out of memory or a string is not valid UTF-8.
 */
int delivery_write(buf *b, const delivery *d, const char *created_at)
    __attribute__((warn_unused_result));

/* delivery_write() into a new string in *out (free() it) and its length. */
int delivery_serialize(const delivery *d, char **out, size_t *outlen)
    __attribute__((warn_unused_result));

/*
 * Writes the idempotency key described above into out (outlen >= ID_UUID_SIZE);
 * -1 if event_id is not a UUID, address is empty, generation is negative or
 * out is too small.
 */
int delivery_idempotency_key(const char *event_id, delivery_channel channel, const char *address,
                             int generation, char *out, size_t outlen)
    __attribute__((warn_unused_result));

/* Releases what d owns and leaves it empty; safe on an empty delivery. */
void delivery_free(delivery *d);

#endif
