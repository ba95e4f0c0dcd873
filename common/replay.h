/*
 * replay: which events of a window `heraldctl replay` re-publishes, and how
 * (no I/O).
 *
 * An event is replayed as it was: same event_id, same key, same data, so
 * everything downstream derives the same ids from it.  What changes is the
 * generation, and only with --redeliver:
 *
 *   without --redeliver  generation unchanged: the dispatcher plans the same
 *                        deliveries with the same idempotency keys, and the
 *                        workers skip every key already sent.  Only what was
 *                        never sent (lost, failed) goes out.
 *   with --redeliver     generation = max(original + 1, replay stamp), where
 *                        the stamp is the run's start in whole seconds since
 *                        2024-01-01T00:00:00Z.  New idempotency keys: every
 *                        matching notification is sent again.
 *
 * The stamp makes redelivery repeatable: a second `--redeliver` of the same
 * window gets a later stamp, so new keys again (original + 1 alone would
 * give the same generation twice and send nothing the second time).  The
 * command waits for the second to turn before it exits, so two runs never
 * share a stamp.  All events of one run share the generation, so a
 * replayed broadcast and its replayed per-user expansions agree on their
 * keys.  Seconds fit the int generation until 2092.
 */
#ifndef HERALD_REPLAY_H
#define HERALD_REPLAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define REPLAY_STAMP_EPOCH_S 1704067200 /* 2024-01-01T00:00:00Z */

typedef struct replay_filter {
    const char *user; /* NULL: any; a broadcast has no user and never matches one */
    const char *type; /* NULL: any */
    int64_t from_ms;  /* record timestamp >= from_ms */
    int64_t to_ms;    /* record timestamp < to_ms; < 0: no end */
} replay_filter;

typedef enum {
    REPLAY_MATCH = 0,
    REPLAY_SKIP = 1,    /* a valid event the filter does not select */
    REPLAY_INVALID = 2, /* not an event: its dead letter is in the DLQ already */
} replay_decision;

/* What the command shows of a matching event; strings point into a buffer of the caller. */
typedef struct replay_info {
    char event_id[40];
    char type[132];
    char target[140]; /* user id, or "topic:<name>" */
    int generation;
    int64_t created_at;
} replay_info;

/* Decides for one record of the events topic; info (may be NULL) is filled on a match. */
replay_decision replay_check(const char *value, size_t len, int64_t timestamp_ms,
                             const replay_filter *f, replay_info *info);

/* The generation stamp of a replay started at now_ms. */
int replay_stamp(int64_t now_ms);

/*
 * The value to publish: with redeliver false, a copy of value as it is;
 * else the event with "generation" set to max(original + 1, stamp).
 * *out is malloc'd and NUL-terminated; *generation receives the generation
 * it carries.  -1 when value is not an event object or out of memory.
 */
int replay_rewrite(const char *value, size_t len, bool redeliver, int stamp, char **out,
                   size_t *outlen, int *generation) __attribute__((warn_unused_result));

#endif
