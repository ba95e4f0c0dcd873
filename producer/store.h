/*
 * store: every SQL statement the gateway runs, and the JSON it answers with.
 *
 * Users, push tokens, preferences, topic subscriptions, templates and
 * digest, throttle and follow-up rules are written here (dispatchers learn
 * of changes through the schema's pg_notify triggers); events and
 * deliveries are only read, for GET /v1/events/{id}; publish_idempotency
 * is claimed and released around publishes; users' inboxes are read and
 * marked (inbox_messages, inbox_state).  Statements are prepared once per
 * connection (store_prepare, the pool's setup hook).  The request bodies
 * were checked by bodies.c before they get here; the functions take
 * borrowed JSON and return new references for the caller to answer with.
 */
#ifndef HERALD_STORE_H
#define HERALD_STORE_H

#include "ids.h"
#include "inbox.h"
#include "pg.h"
#include "receipts_parse.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* SQL of a timestamptz column as RFC 3339 in UTC, to the millisecond ("...T...Z"). */
#define STORE_SQL_RFC3339(col)                                                                     \
    "to_char((" col ") AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"

typedef enum {
    STORE_OK = 0,
    STORE_NOT_FOUND,   /* the user, template or event does not exist */
    STORE_INVALID,     /* the database refused a value (a CHECK constraint) */
    STORE_CONFLICT,    /* another row already holds a unique key: 409 */
    STORE_UNAVAILABLE, /* the database could not be reached in time: 503 */
    STORE_ERROR,       /* anything else: 500, err has the detail */
} store_status;

/* Registers every statement on a fresh connection (a pgpool_setup_fn). */
int store_prepare(pg_conn *c, char *err, size_t errlen) __attribute__((warn_unused_result));

/* Inserts or replaces the user and its push tokens; *out is the user as stored. */
store_status store_user_put(pg_conn *c, const char *user_id, const json_t *body, json_t **out,
                            char *err, size_t errlen) __attribute__((warn_unused_result));
store_status store_user_get(pg_conn *c, const char *user_id, json_t **out, char *err, size_t errlen)
    __attribute__((warn_unused_result));
store_status store_user_delete(pg_conn *c, const char *user_id, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Replaces the user's preferences (STORE_NOT_FOUND: no such user). */
store_status store_prefs_put(pg_conn *c, const char *user_id, const json_t *body, json_t **out,
                             char *err, size_t errlen) __attribute__((warn_unused_result));
/* The user's preferences; the defaults when none were set. */
store_status store_prefs_get(pg_conn *c, const char *user_id, json_t **out, char *err,
                             size_t errlen) __attribute__((warn_unused_result));

/*
 * Turns category off on channel in the user's preferences, keeping every
 * other category and channel: one-click unsubscribe.  *changed says
 * whether it was on before (false: already off).  STORE_NOT_FOUND: no
 * such user.
 */
store_status store_prefs_unsubscribe(pg_conn *c, const char *user_id, const char *category,
                                     const char *channel, bool *changed, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Subscribes user_id to topic, creating the topic (STORE_NOT_FOUND: no such user). */
store_status store_subscribe(pg_conn *c, const char *topic, const char *user_id, char *err,
                             size_t errlen) __attribute__((warn_unused_result));
/* Removes the subscription if any (STORE_NOT_FOUND: no such user). */
store_status store_unsubscribe(pg_conn *c, const char *topic, const char *user_id, char *err,
                               size_t errlen) __attribute__((warn_unused_result));

store_status store_template_put(pg_conn *c, const char *event_type, const char *channel,
                                const json_t *body, json_t **out, char *err, size_t errlen)
    __attribute__((warn_unused_result));
store_status store_template_get(pg_conn *c, const char *event_type, const char *channel,
                                json_t **out, char *err, size_t errlen)
    __attribute__((warn_unused_result));
store_status store_template_delete(pg_conn *c, const char *event_type, const char *channel,
                                   char *err, size_t errlen) __attribute__((warn_unused_result));

/*
 * Digest rules (docs/digests.md), as JSON with the API's field names.  put
 * upserts by name: STORE_CONFLICT, with the other rule's name in other
 * (NULL: not wanted), when another rule has the same event type and
 * category.  list: {"rules":[...]} ordered by name.
 */
store_status store_digest_rule_put(pg_conn *c, const char *name, const json_t *body, json_t **out,
                                   char other[129], char *err, size_t errlen)
    __attribute__((warn_unused_result));
store_status store_digest_rule_get(pg_conn *c, const char *name, json_t **out, char *err,
                                   size_t errlen) __attribute__((warn_unused_result));
store_status store_digest_rule_list(pg_conn *c, json_t **out, char *err, size_t errlen)
    __attribute__((warn_unused_result));
store_status store_digest_rule_delete(pg_conn *c, const char *name, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Throttle rules, the same way (no conflicts but the name). */
store_status store_throttle_rule_put(pg_conn *c, const char *name, const json_t *body, json_t **out,
                                     char *err, size_t errlen) __attribute__((warn_unused_result));
store_status store_throttle_rule_get(pg_conn *c, const char *name, json_t **out, char *err,
                                     size_t errlen) __attribute__((warn_unused_result));
store_status store_throttle_rule_list(pg_conn *c, json_t **out, char *err, size_t errlen)
    __attribute__((warn_unused_result));
store_status store_throttle_rule_delete(pg_conn *c, const char *name, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/*
 * Follow-up rules, the same way: STORE_CONFLICT, with the other rule's
 * name in other, when another rule has the same event type, category and
 * channel.
 */
store_status store_followup_rule_put(pg_conn *c, const char *name, const json_t *body, json_t **out,
                                     char other[129], char *err, size_t errlen)
    __attribute__((warn_unused_result));
store_status store_followup_rule_get(pg_conn *c, const char *name, json_t **out, char *err,
                                     size_t errlen) __attribute__((warn_unused_result));
store_status store_followup_rule_list(pg_conn *c, json_t **out, char *err, size_t errlen)
    __attribute__((warn_unused_result));
store_status store_followup_rule_delete(pg_conn *c, const char *name, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/*
 * {"event_id","status","type"?,...,"deliveries":[...]} from events and
 * deliveries (a topic event includes the deliveries of its per-user
 * events).  STORE_NOT_FOUND when neither table knows the id.
 */
store_status store_event_status(pg_conn *c, const char *event_id, json_t **out, char *err,
                                size_t errlen) __attribute__((warn_unused_result));

/* What GET /v1/events searches by. */
typedef enum {
    STORE_EVENT_BY_ID = 0, /* the event id */
    STORE_EVENT_BY_USER,   /* the user an event is for */
    STORE_EVENT_BY_KEY,    /* the publisher's Idempotency-Key or a delivery's key */
} store_event_key;

/* A position in the search's order: after (created_us, event_id). */
typedef struct store_event_cursor {
    int64_t created_us;
    char event_id[ID_UUID_SIZE];
} store_event_cursor;

/*
 * The events matching value by key, newest first, after *after (NULL: from
 * the newest), at most limit: a JSON array of {"event_id","type","user_id",
 * "topic","created_at","deliveries","status_summary":{status: count}} into
 * *out.  *more is set when a page may follow, *last then its cursor.
 */
store_status store_event_search(pg_conn *c, store_event_key key, const char *value,
                                const store_event_cursor *after, int limit, json_t **out,
                                bool *more, store_event_cursor *last, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/*
 * {"event_id","type",...,"entries":[{"at","kind",...}],"truncated"?} for
 * GET /v1/events/{id}/timeline, at most max_entries entries in time order
 * (docs/interface.md).  STORE_NOT_FOUND when no table knows the id.
 */
store_status store_event_timeline(pg_conn *c, const char *event_id, int max_entries, json_t **out,
                                  char *err, size_t errlen) __attribute__((warn_unused_result));

typedef enum {
    STORE_RECEIPT_APPLIED = 0, /* the delivery's status moved */
    STORE_RECEIPT_STALE,       /* recorded; the delivery already has a later status */
    STORE_RECEIPT_UNKNOWN,     /* recorded; no delivery (yet) for its message */
    STORE_RECEIPT_DUPLICATE,   /* recorded before: nothing changed */
} store_receipt_outcome;

/*
 * Records and applies one receipt of provider (herald_receipt_apply,
 * migration 016: status precedence, history, suppressions) with
 * soft_limit transient bounces before an address is suppressed.
 */
store_status store_receipt_apply(pg_conn *c, const char *provider, const receipt *r, int soft_limit,
                                 store_receipt_outcome *out, char *err, size_t errlen)
    __attribute__((warn_unused_result));

typedef enum {
    STORE_IDEM_CLAIMED = 0, /* this call took the key: publish, then confirm or release */
    STORE_IDEM_REPLAY,      /* used before and settled: answer with existing_id */
    STORE_IDEM_IN_FLIGHT,   /* used before, not yet confirmed: the first request is still on */
    STORE_IDEM_RETAKEN,     /* used before, never confirmed, and older than a publish can
                             * take: claimed again for existing_id, which is published again */
    STORE_IDEM_REUSED,      /* used before for a request of another hash: refused, whatever
                             * the first one's state */
} store_idem_state;

/*
 * Claims (api_key_id, key) for event_id.  A key used more than 24 hours
 * ago is taken over.  A claim younger than in_flight_ms and not confirmed
 * is reported in flight.  An older unconfirmed one (its publish was in
 * doubt, or its gateway died before confirming) is claimed again under its
 * first event id: STORE_IDEM_RETAKEN.  A key held for a request whose
 * request_hash differs is STORE_IDEM_REUSED.  existing_id receives the
 * first event id unless the key was claimed afresh.
 */
store_status store_idem_claim(pg_conn *c, int64_t api_key_id, const char *key, const char *event_id,
                              const unsigned char request_hash[32], int in_flight_ms,
                              store_idem_state *state, char existing_id[37], char *err,
                              size_t errlen) __attribute__((warn_unused_result));

/* Marks a claim published (Kafka acknowledged its record). */
store_status store_idem_confirm(pg_conn *c, int64_t api_key_id, const char *key,
                                const char *event_id, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Releases a claim whose publish failed, so that a retry can succeed. */
store_status store_idem_release(pg_conn *c, int64_t api_key_id, const char *key,
                                const char *event_id, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* STORE_OK when the user exists, else STORE_NOT_FOUND. */
store_status store_user_exists(pg_conn *c, const char *user_id, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* A user's inbox counts and change number (inbox_state; docs/inapp.md). */
typedef struct store_inbox_state {
    int64_t seq;
    int64_t unread;
    int64_t unseen;
} store_inbox_state;

/* The counts of user_id's inbox (STORE_NOT_FOUND: no such user). */
store_status store_inbox_counts(pg_conn *c, const char *user_id, store_inbox_state *out, char *err,
                                size_t errlen) __attribute__((warn_unused_result));

typedef struct store_inbox_page_result {
    json_t *messages; /* array, newest first (owned by the caller) */
    size_t count;
    bool more;          /* more messages past the page, the way it was read */
    inbox_cursor first; /* the newest and oldest message of the page (when count > 0) */
    inbox_cursor last;
} store_inbox_page_result;

/* One page of user_id's inbox as q asks. */
store_status store_inbox_page(pg_conn *c, const char *user_id, const inbox_query *q,
                              store_inbox_page_result *out, char *err, size_t errlen)
    __attribute__((warn_unused_result));

typedef struct store_inbox_change {
    int64_t changed;         /* messages the mark moved */
    store_inbox_state state; /* after it */
    json_t *message_ids;     /* the moved ids, at most 201 of them (owned by the caller) */
} store_inbox_change;

/*
 * Applies a mark in one transaction that locks the user's inbox_state
 * (creating it from the messages when missing), as docs/inapp.md says:
 * seq + 1 stamped on the moved messages only when some moved, the counts
 * adjusted by what moved.  STORE_NOT_FOUND: no such user.
 */
store_status store_inbox_mark(pg_conn *c, const char *user_id, const inbox_mark *m,
                              store_inbox_change *out, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* SELECT 1, for readiness. */
store_status store_ping(pg_conn *c, char *err, size_t errlen) __attribute__((warn_unused_result));

/*
 * The suppression list (docs/receipts.md).  Addresses are compared as the
 * database keeps them (email lowercased).  list: a page in (channel,
 * address) order after the cursor (after_channel, after_address; NULL for
 * the first page), optionally of one channel or reason; *out an array.
 * add: a manual entry; *created is false when the address was already
 * suppressed, and *out is then the entry that was there.  delete:
 * STORE_NOT_FOUND when the address was not suppressed.
 */
store_status store_suppression_list(pg_conn *c, const char *channel, const char *reason,
                                    const char *after_channel, const char *after_address, int limit,
                                    json_t **out, char *err, size_t errlen)
    __attribute__((warn_unused_result));
store_status store_suppression_get(pg_conn *c, const char *channel, const char *address,
                                   json_t **out, char *err, size_t errlen)
    __attribute__((warn_unused_result));
store_status store_suppression_add(pg_conn *c, const char *channel, const char *address,
                                   const char *detail, json_t **out, bool *created, char *err,
                                   size_t errlen) __attribute__((warn_unused_result));
store_status store_suppression_delete(pg_conn *c, const char *channel, const char *address,
                                      char *err, size_t errlen) __attribute__((warn_unused_result));

#endif
