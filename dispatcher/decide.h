/*
 * decide: what happens to one event for one user, per channel.
 *
 * For each of email, sms, push and inapp the answer is SEND now (to the
 * listed addresses: the email, the phone, every push token, or the user's
 * own inbox, addressed by the user id), SCHEDULE for later
 * (quiet hours), or SKIP with a reason.  The rules, in the order they are
 * checked, so the first that applies names the reason:
 *
 *   unknown_user        the event names a user Herald does not know.
 *   no_template         no template exists for (event type, channel): the
 *                       event type is simply not meant for that channel.
 *   channel_disabled    the user turned the channel off ({"sms": false}).
 *                       Honoured even for critical events: it is the user's
 *                       statement that the channel must not be used at all.
 *   category_opted_out  the user opted out of the event's category on this
 *                       channel ({"marketing": {"email": false}}, or
 *                       {"marketing": false} for every channel).  The category
 *                       is the template's, else the event's (decide_category):
 *                       a publisher cannot turn a marketing template into a
 *                       transactional notification.  Events
 *                       without a category, and the "transactional" category,
 *                       cannot be opted out of (receipts, password resets);
 *                       critical events ignore category opt-outs.
 *   no_address          the user has no email, no phone, or no push token.
 *   quiet_hours_dropped the user is in quiet hours and the event is low
 *                       priority: low-priority news is stale by morning, so
 *                       it is dropped rather than piled up for the wake-up.
 * Otherwise: inside quiet hours, normal and high priority are SCHEDULEd for
 * the end of the window (on the user's wall clock, DST-correct, see quiet.h);
 * critical ignores quiet hours and is sent.  Outside them: SEND.  In-app
 * messages ignore quiet hours: an inbox is read when its owner looks, and
 * disturbs no one when it fills (docs/inapp.md).
 *
 * Absent preferences mean enabled: a missing channel key, a missing category,
 * and any value other than JSON false.  Quiet hours apply to every channel
 * alike; a user without a time zone is treated as being in UTC.
 *
 * Pure: the caller resolves the user's zone (tz_get) and the templates; the
 * result borrows the address strings from the user given.
 */
#ifndef HERALD_DECIDE_H
#define HERALD_DECIDE_H

#include "quiet.h"
#include "tz.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The category that can never be opted out of. */
#define DECIDE_CATEGORY_TRANSACTIONAL "transactional"

typedef enum {
    DECIDE_PRIORITY_CRITICAL = 0,
    DECIDE_PRIORITY_HIGH,
    DECIDE_PRIORITY_NORMAL,
    DECIDE_PRIORITY_LOW,
} decide_priority;

typedef enum {
    DECIDE_EMAIL = 0,
    DECIDE_SMS,
    DECIDE_PUSH,
    DECIDE_INAPP,
    DECIDE_CHANNELS /* count */
} decide_channel;

typedef enum {
    DECIDE_SEND = 0,
    DECIDE_SCHEDULE,
    DECIDE_SKIP,
    /*
     * Set by the dispatcher's rules step (digest.h) on what decide_for_user
     * would send, never by decide_for_user itself: the delivery became part
     * of a digest, a throttle dropped or deferred it, or it waits for a
     * follow-up ("scheduled", skip_reason "followup").
     */
    DECIDE_DIGESTED,
    DECIDE_THROTTLED,
    DECIDE_FOLLOWUP,
} decide_action;

typedef enum {
    DECIDE_REASON_NONE = 0,
    DECIDE_REASON_UNKNOWN_USER,
    DECIDE_REASON_NO_TEMPLATE,
    DECIDE_REASON_CHANNEL_DISABLED,
    DECIDE_REASON_CATEGORY_OPTED_OUT,
    DECIDE_REASON_NO_ADDRESS,
    DECIDE_REASON_QUIET_HOURS_DROPPED,
} decide_reason;

typedef struct decide_event {
    decide_priority priority;
    const char *category; /* the publisher's; a template's own category wins over it */
} decide_event;

typedef struct decide_user {
    const char *user_id; /* the inbox's address */
    const char *email;   /* NULL or "" when none */
    const char *phone;   /* NULL or "" when none */
    const char *const *push_tokens;
    size_t npush_tokens;
    const tz_zone *zone; /* the user's time zone; NULL means UTC */
} decide_user;

typedef struct decide_prefs {
    const json_t *channels;   /* {"email": bool, ...} or NULL */
    const json_t *categories; /* {"marketing": {"email": bool, ...}, ...} or NULL */
    quiet_hours quiet;        /* zero: none */
} decide_prefs;

/* The templates of the event's type, per channel. */
typedef struct decide_templates {
    bool exists[DECIDE_CHANNELS];
    const char *category[DECIDE_CHANNELS]; /* the template's category, or NULL */
} decide_templates;

typedef struct decide_outcome {
    decide_action action;
    decide_reason reason;         /* DECIDE_SKIP only */
    int64_t not_before_ms;        /* DECIDE_SCHEDULE only */
    const char *const *addresses; /* SEND and SCHEDULE: borrowed from the user */
    size_t naddresses;
    const char *category; /* the category that applied, or NULL (borrowed) */
} decide_outcome;

typedef struct decide_result {
    decide_outcome channel[DECIDE_CHANNELS];
} decide_result;

/*
 * Decides every channel for one event and one user at now_ms (UTC).
 * user NULL means the user is unknown; prefs NULL means all defaults.
 * out borrows from *user, *event and *tpl: keep them alive while using it.
 */
void decide_for_user(const decide_event *event, const decide_user *user, const decide_prefs *prefs,
                     const decide_templates *tpl, int64_t now_ms, decide_result *out);

/*
 * The category a delivery is judged by, for opt-outs and for the rules'
 * category (digests, throttles, follow-ups): the template's when it has
 * one, else the event's (NULL: none, never opted out of).
 */
const char *decide_category(const char *event_category, const char *template_category);

/* The skip_reason codes stored with a skipped delivery ("no_address", ...); "" for NONE. */
const char *decide_reason_name(decide_reason r);

/*
 * The delivery status an outcome starts in: "pending", "scheduled",
 * "skipped", "digested" or "throttled".
 */
const char *decide_action_status(decide_action a);

#endif
