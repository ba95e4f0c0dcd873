/*
 * digest: digest windows and throttle decisions in PostgreSQL
 * (migrations/012_digests_throttles.sql, docs/digests.md).
 *
 * In a batch, after the fan-out and before anything is produced:
 *
 * - every (event, channel) that a digest rule covers and that would be sent
 *   is added to its window with digest_add(): one call for the batch, in the
 *   batch's order.  The answer says, per item, whether the event opened the
 *   window and goes out at once ("first", when the rule says so) or became
 *   a member of the window's digest; a member's deliveries are replaced by
 *   one "digested" status row.
 * - every remaining (event, channel) that a throttle rule covers is counted
 *   with throttle_check(): "pass", "drop" (a "throttled" status row), or
 *   "defer" (a "throttled" row and the delivery on the retry topic, due
 *   when the cap allows it).
 *
 * Both decisions are stored per event and returned unchanged when a batch
 * is redone, so a crash between them and the Kafka commit changes nothing.
 *
 * Windows record their user's partition of the events topic.  The owner of
 * that partition takes the due ones with digest_take_due() (status
 * "closing": no event joins them any more), renders and produces one
 * delivery per window (closer.c), and marks them done with digest_done().
 * A crash in between leaves them "closing" and the next owner produces them
 * again, with the same idempotency keys: the workers send each once.
 *
 * The window functions are pure; the rest does the I/O, one statement each.
 */
#ifndef HERALD_DISPATCHER_DIGEST_H
#define HERALD_DISPATCHER_DIGEST_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "delivery.h"
#include "event.h"
#include "ids.h"
#include "pg.h"
#include "rules.h"
#include "tz.h"

/* Longest grouping key kept; a longer value is cut (documented). */
#define DIGEST_KEY_MAX 256

/*
 * The first instant after now_ms at which the clocks of zone (NULL: UTC)
 * show seconds_of_day: today's if it is still ahead, else tomorrow's.  A
 * time the clocks skip that day gives the instant they jump; a time they
 * show twice gives the first.  -1 when the zone cannot say.
 */
int64_t digest_next_local(const tz_zone *zone, int64_t now_ms, int seconds_of_day);

/* When a window the rule opens at now_ms closes, and by when at the latest. */
typedef struct digest_plan {
    int64_t closes_ms, deadline_ms;
    int64_t slide_ms; /* sliding: each event moves the close to now + slide_ms */
} digest_plan;

int digest_plan_window(const digest_rule *r, const tz_zone *zone, int64_t now_ms, digest_plan *out)
    __attribute__((warn_unused_result));

/*
 * The grouping key of an event's data for group_by ("data.a.b"; NULL: no
 * key): a string as it is, a number or boolean as JSON text, anything else
 * or a missing field the empty key.  Cut to DIGEST_KEY_MAX bytes on a
 * character boundary.
 */
void digest_group_key(const char *group_by, const json_t *data, char out[DIGEST_KEY_MAX + 1]);

/* The id a window opened by event_id gets: UUID v5 of "digest|rule|channel|event". */
void digest_window_id(const char *rule, delivery_channel ch, const char *event_id,
                      char out[ID_UUID_SIZE]);

/* What a digest lists of one event: {"event_id","type","created_at","data"}; NULL: no memory. */
json_t *digest_item(const event *ev) __attribute__((warn_unused_result));

/*
 * Shortens a digest's data (its events, last_events and actors lists,
 * longest first, newest-listed entries dropped) until its compact JSON is
 * at most max bytes, so that a digest of large events still fits a
 * delivery; count and actor_count keep the real figures.  0, or -1 when it
 * cannot fit even with the lists empty.
 */
int digest_fit(json_t *data, size_t max);

/* One (event, channel) for digest_add. */
typedef struct digest_cand {
    const event *ev;
    delivery_channel channel;
    const digest_rule *rule;
    int32_t partition;
    const tz_zone *zone;
    /* out */
    char window_id[ID_UUID_SIZE];
    bool first; /* opened its window and goes out at once */
    int64_t closes_ms;
} digest_cand;

pg_status digest_add(pg_conn *db, digest_cand *c, size_t n, int64_t now_ms, char *err,
                     size_t errlen) __attribute__((warn_unused_result));

typedef enum {
    THROTTLE_PASS = 0,
    THROTTLE_DROP,
    THROTTLE_DEFER,
} throttle_outcome;

/* One (event, channel) for throttle_check. */
typedef struct throttle_cand {
    const event *ev;
    delivery_channel channel;
    const throttle_rule *rule;
    /* out */
    throttle_outcome outcome;
    int64_t at_ms; /* DEFER: when it may go */
} throttle_cand;

pg_status throttle_check(pg_conn *db, throttle_cand *c, size_t n, int64_t now_ms, char *err,
                         size_t errlen) __attribute__((warn_unused_result));

/* A window taken for closing. */
typedef struct digest_due {
    char window_id[ID_UUID_SIZE];
    char *rule;
    delivery_channel channel;
    char *user_id;
    char *group_key;
    int64_t opened_ms, closed_ms;
    int members;
    json_t *summary; /* {"count","events","last_events","actors","actor_count"} */
} digest_due;

typedef struct digest_due_list {
    digest_due *w;
    size_t n;
} digest_due_list;

/*
 * Marks at most limit windows of the given partitions that are due at
 * now_ms (or were left closing) as closing, and reads each one's summary
 * with its rule's events_shown first and last members (10 when the rule is
 * gone), earliest due first.
 */
pg_status digest_take_due(pg_conn *db, const int32_t *parts, size_t nparts, int64_t now_ms,
                          int limit, digest_due_list *out, char *err, size_t errlen)
    __attribute__((warn_unused_result));
void digest_due_list_free(digest_due_list *l);

/* Marks the windows sent (or empty, with no members), after their deliveries committed. */
pg_status digest_done(pg_conn *db, const digest_due_list *l, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/*
 * The statements' plumbing, shared with followup.c.  digest_rows_push
 * appends row (stolen) to the JSON array *rows; a failure drops the array
 * (*rows NULL), which digest_rows_query then reports as out of memory.
 * digest_rows_query runs sql with the rows (stolen) as $1, or with now_ms
 * as $1 and the rows as $2 when now_ms >= 0.  digest_take runs a "take the
 * due ones" statement with ($1 partitions, $2 now_ms, $3 limit);
 * digest_earliest a "when is the next one due" statement with ($1
 * partitions), giving INT64_MAX when nothing is.
 */
void digest_rows_push(json_t **rows, json_t *row);
pg_status digest_rows_query(pg_conn *db, const char *sql, int64_t now_ms, json_t *rows,
                            PGresult **res, char *err, size_t errlen)
    __attribute__((warn_unused_result));
pg_status digest_take(pg_conn *db, const char *sql, const int32_t *parts, size_t nparts,
                      int64_t now_ms, int limit, PGresult **res, char *err, size_t errlen)
    __attribute__((warn_unused_result));
pg_status digest_earliest(pg_conn *db, const char *sql, const int32_t *parts, size_t nparts,
                          int64_t *out_ms, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* The earliest close time of an open window of the partitions, or INT64_MAX. */
pg_status digest_next_due(pg_conn *db, const int32_t *parts, size_t nparts, int64_t *out_ms,
                          char *err, size_t errlen) __attribute__((warn_unused_result));

/*
 * Deletes what no decision needs any more: windows and follow-ups finished
 * more than retention_ms ago, throttle counts that left their window more
 * than retention_ms ago; at most limit rows of each.  *deleted: how many.
 * An event consumed again after that (a replay) is decided afresh.
 */
pg_status digest_purge(pg_conn *db, int64_t retention_ms, int limit, long *deleted, char *err,
                       size_t errlen) __attribute__((warn_unused_result));

#endif
