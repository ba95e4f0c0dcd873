/*
 * rules: the digest and throttle rules (docs/digests.md), cached.
 *
 * Both tables are small and read whole: the dispatcher loads them before
 * the first batch, again when PostgreSQL notifies herald_rules_changed (a
 * trigger on both tables), and at least every RULES_TTL_MS in case a
 * notification was missed.
 *
 * Matching:
 * - A digest rule names an event type and optionally a category.  The rule
 *   with the event's category wins over the type's rule without one; the
 *   category is the event's own, else its templates' (the first channel
 *   that has one).
 * - A throttle rule names a category, a channel, both or neither.  For a
 *   delivery the most specific rule applies: category and channel, then
 *   category, then channel, then neither.  Only that one rule counts it.
 * - A follow-up rule names an event type, optionally a category, and the
 *   channel it follows up on; per follow-up channel the rule with the
 *   event's category wins over the type's rule without one.
 *
 * The parsing from the tables' JSON (rules_set) is pure; rules_refresh does
 * the I/O.
 */
#ifndef HERALD_DISPATCHER_RULES_H
#define HERALD_DISPATCHER_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "delivery.h"
#include "pg.h"

#define RULES_TTL_MS 60000

typedef enum {
    DIGEST_FIXED = 0, /* closes window_ms after the first event */
    DIGEST_SLIDING,   /* each event extends it by window_ms, up to max_window_ms */
    DIGEST_SCHEDULED, /* closes at schedule_s on the recipient's clock */
} digest_kind;

typedef struct digest_rule {
    char *name;
    char *event_type;
    char *category; /* NULL: any category no other rule names */
    bool channel[DELIVERY_CHANNEL_COUNT];
    digest_kind kind;
    int64_t window_ms, max_window_ms;
    int max_events; /* 0: none */
    bool send_first;
    int schedule_s; /* DIGEST_SCHEDULED: seconds after local midnight */
    char *group_by; /* "data.thread_id", or NULL */
    char *template_type;
    int events_shown;
} digest_rule;

typedef struct throttle_rule {
    char *name;
    char *category; /* NULL: every category */
    int channel;    /* a delivery_channel, or -1 for every channel */
    int max_count;
    int64_t window_ms;
    bool defer; /* false: drop */
} throttle_rule;

typedef struct followup_rule {
    char *name;
    char *event_type;
    char *category;                 /* NULL: any category no other rule names */
    delivery_channel after_channel; /* whose read state decides (inapp) */
    int64_t delay_ms;
    delivery_channel channel; /* sent when still unread */
    char *template_type;      /* NULL: the event's own type */
} followup_rule;

typedef struct rules rules;

rules *rules_new(void) __attribute__((warn_unused_result));
void rules_free(rules *r);

/*
 * Replaces the rules with those of three JSON arrays of table rows (as
 * row_to_json gives them): digest, throttle and follow-up rules.  A row that does not parse is
 * logged and left out.  0, or -1 when out of memory or a text is not a JSON array (the rules are
 * then unchanged).
 */
int rules_set(rules *r, const char *digest_rows, const char *throttle_rows,
              const char *followup_rows, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/*
 * Reads the tables (rules_set) when the rules have never been read, were
 * invalidated, or are older than RULES_TTL_MS at now_ms (monotonic); PG_OK
 * without I/O otherwise.  On failure the rules in hand are kept.
 */
pg_status rules_refresh(rules *r, pg_conn *db, int64_t now_ms, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Marks the rules stale: the next rules_refresh() reads them. */
void rules_invalidate(rules *r);

/* Whether any rule of the kind exists (the batch step is skipped otherwise). */
bool rules_have_digests(const rules *r);
bool rules_have_throttles(const rules *r);
bool rules_have_followups(const rules *r);

const digest_rule *rules_digest_for(const rules *r, const char *event_type, const char *category);
const digest_rule *rules_digest_named(const rules *r, const char *name);
const throttle_rule *rules_throttle_for(const rules *r, const char *category,
                                        delivery_channel channel);

/* The follow-up rules of an event, at most one per follow-up channel: how many went to out. */
size_t rules_followups_for(const rules *r, const char *event_type, const char *category,
                           const followup_rule *out[DELIVERY_CHANNEL_COUNT]);
const followup_rule *rules_followup_named(const rules *r, const char *name);

#endif
