/*
 * followup: "if the in-app message is still unread after D, send it by
 * email" (migrations/014_followups.sql, docs/digests.md).
 *
 * In a batch, an event sent to the in-app channel that a follow-up rule
 * covers gets a pending follow-up (followup_plan, one statement for the
 * batch, ON CONFLICT DO NOTHING so that a redone batch adds nothing), and
 * its own deliveries on the follow-up channel are held back as "scheduled"
 * rows with skip_reason "followup".
 *
 * When a follow-up is due, the owner of its user's partition takes it
 * (followup_take_due: status running, with the in-app message's read
 * state), and the closer (closer.c) either cancels it (read or archived) or
 * renders the event for the follow-up channel with the user's settings as
 * they are then and produces it.  followup_done records the outcome after
 * the Kafka commit, and followup_resolve_held the fate of the held rows
 * before it.  A crash in between takes it again and produces the same
 * idempotency keys: it is sent once.
 */
#ifndef HERALD_DISPATCHER_FOLLOWUP_H
#define HERALD_DISPATCHER_FOLLOWUP_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "delivery.h"
#include "event.h"
#include "pg.h"
#include "rules.h"

typedef struct followup_cand {
    const event *ev;
    const followup_rule *rule;
    int32_t partition;
} followup_cand;

/* Records the batch's follow-ups, due at now_ms + each rule's delay. */
pg_status followup_plan(pg_conn *db, const followup_cand *c, size_t n, int64_t now_ms, char *err,
                        size_t errlen) __attribute__((warn_unused_result));

typedef struct followup_due {
    char event_id[ID_UUID_SIZE];
    char *rule;
    delivery_channel channel;
    char *user_id;
    char *event_json; /* the event as published */
    const char *read; /* "read", "archived", or NULL: still unread (or not delivered) */
} followup_due;

typedef struct followup_due_list {
    followup_due *f;
    size_t n;
} followup_due_list;

pg_status followup_take_due(pg_conn *db, const int32_t *parts, size_t nparts, int64_t now_ms,
                            int limit, followup_due_list *out, char *err, size_t errlen)
    __attribute__((warn_unused_result));
void followup_due_list_free(followup_due_list *l);

/* What became of one follow-up. */
typedef struct followup_outcome {
    const char *status; /* "sent", "skipped" or "cancelled" */
    const char *reason; /* skipped: the skip reason; cancelled: "read" or "archived" */
    json_t *keys;       /* sent: the idempotency keys produced (an array of strings) */
} followup_outcome;

/*
 * The rows held back at dispatch (status scheduled, skip_reason followup)
 * for each follow-up of l: pending when their key was produced, otherwise
 * skipped with the follow-up's reason ("followup_read", "followup_archived",
 * the skip reason, or "followup_readdressed" for an address that changed).
 */
pg_status followup_resolve_held(pg_conn *db, const followup_due_list *l, const followup_outcome *o,
                                char *err, size_t errlen) __attribute__((warn_unused_result));

/* Marks each follow-up of l with its outcome. */
pg_status followup_done(pg_conn *db, const followup_due_list *l, const followup_outcome *o,
                        char *err, size_t errlen) __attribute__((warn_unused_result));

/* The earliest due time of a pending follow-up of the partitions, or INT64_MAX. */
pg_status followup_next_due(pg_conn *db, const int32_t *parts, size_t nparts, int64_t *out_ms,
                            char *err, size_t errlen) __attribute__((warn_unused_result));

#endif
