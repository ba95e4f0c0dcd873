/*
 * fanout: what one event becomes for one user — the per-channel decision
 * (decide.h), the rendered content (template.h) and one delivery record per
 * (channel, address), plus the status rows the deliveries table keeps.
 *
 * Pure: no I/O.  The dispatcher produces the items' values to
 * deliveries.<channel> (SEND) or retry.<channel> (SCHEDULE, due at the end of
 * the user's quiet hours in not_before, so the delay survives restarts) and
 * writes every item as a row.
 *
 * Which skips become rows: every decision the user's settings or data caused
 * (channel_disabled, category_opted_out, no_address, quiet_hours_dropped,
 * unknown_user) is recorded, so GET /v1/events/{id} can say why nothing was
 * sent.  no_template is not: it is the event type's configuration, the same
 * for every user, and would add a row per user and untemplated channel.  An
 * unknown user gets an unknown_user row for each channel that has a template.
 *
 * Two reasons beyond decide.h's come from content: "invalid_address" (the
 * stored address fails the delivery checks, e.g. a malformed e-mail address
 * written directly into the database) and "render_failed" (the rendered
 * content is empty or too large), so the worker never receives a record it
 * would only dead-letter.
 *
 * Limits: an email subject and a push or in-app title become one line (line
 * breaks turned into spaces) cut to their maximum length; an SMS body is cut
 * to the configured number of parts with "…"; a push body is cut to
 * DELIVERY_PUSH_BODY_MAX bytes, an in-app body to DELIVERY_INAPP_BODY_MAX.
 * Cuts never split a UTF-8 character.
 *
 * An in-app delivery is addressed to the user id (the user's inbox) and
 * carries the event's data, like push.
 */
#ifndef HERALD_DISPATCHER_FANOUT_H
#define HERALD_DISPATCHER_FANOUT_H

#include <stddef.h>
#include <stdint.h>

#include "decide.h"
#include "delivery.h"
#include "event.h"
#include "prefs_cache.h"
#include "tplcache.h"

typedef struct fanout_item {
    delivery_channel channel;
    decide_action action;
    const char *skip_reason; /* static; SKIP and THROTTLED only */
    char idempotency_key[ID_UUID_SIZE];
    char *address; /* owned; NULL for SKIP */
    int64_t not_before_ms;
    char *value; /* delivery JSON, owned; NULL for SKIP */
    size_t vlen;
} fanout_item;

/* A growable list of items, reused batch after batch. */
typedef struct fanout_list {
    fanout_item *items;
    size_t n, cap;
} fanout_list;

typedef struct fanout_options {
    int sms_max_segments;
} fanout_options;

/*
 * Appends the items of ev for user (NULL or a negative entry: unknown user)
 * with the templates of ev's type (NULL: none).  Returns 0, or -1 when out
 * of memory (err says so; items appended so far stay in out).
 */
int fanout_event(const event *ev, const prefs_user *user, const tplcache_type *tpl,
                 const fanout_options *opt, int64_t now_ms, fanout_list *out, char *err,
                 size_t errlen) __attribute__((warn_unused_result));

/* Frees the items' contents and empties the list (keeps its capacity). */
void fanout_list_reset(fanout_list *l);
void fanout_list_free(fanout_list *l);

/* event_priority → decide_priority. */
decide_priority fanout_priority(event_priority p);

/* Cuts s in place to at most max bytes without splitting a UTF-8 character. */
void fanout_utf8_cut(char *s, size_t max);

#endif
