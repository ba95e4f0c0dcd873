/*
 * decide: the per-channel delivery decision (policy in decide.h).
 */
#include "decide.h"

#include <string.h>

/* The keys of the preference documents (migrations/001), indexed by decide_channel. */
static const char *const channel_names[] = {"email", "sms", "push", "inapp"};

static bool pref_disabled(const json_t *map, const char *key)
{
    /* Only an explicit false disables: absent keys and other values keep the default. */
    return json_is_false(json_object_get(map, key));
}

static bool category_opted_out(const decide_prefs *prefs, const char *category, decide_channel ch)
{
    if (prefs == NULL || category == NULL || strcmp(category, DECIDE_CATEGORY_TRANSACTIONAL) == 0)
        return false;
    const json_t *c = json_object_get(prefs->categories, category);
    return json_is_false(c) || pref_disabled(c, channel_names[ch]);
}

/* The user's addresses on a channel, borrowed; false when there are none. */
static bool channel_addresses(const decide_user *u, decide_channel ch, decide_outcome *o)
{
    switch (ch) {
    case DECIDE_EMAIL:
        o->addresses = &u->email;
        o->naddresses = u->email != NULL && u->email[0] != '\0';
        break;
    case DECIDE_SMS:
        o->addresses = &u->phone;
        o->naddresses = u->phone != NULL && u->phone[0] != '\0';
        break;
    case DECIDE_PUSH:
        o->addresses = u->push_tokens;
        o->naddresses = u->push_tokens != NULL ? u->npush_tokens : 0;
        break;
    case DECIDE_INAPP:
        o->addresses = &u->user_id;
        o->naddresses = u->user_id != NULL && u->user_id[0] != '\0';
        break;
    case DECIDE_CHANNELS:
        break;
    }
    if (o->naddresses == 0)
        o->addresses = NULL;
    return o->naddresses > 0;
}

static void skip(decide_outcome *o, decide_reason reason)
{
    o->action = DECIDE_SKIP;
    o->reason = reason;
    o->addresses = NULL;
    o->naddresses = 0;
}

const char *decide_category(const char *event_category, const char *template_category)
{
    return template_category != NULL ? template_category : event_category;
}

void decide_for_user(const decide_event *event, const decide_user *user, const decide_prefs *prefs,
                     const decide_templates *tpl, int64_t now_ms, decide_result *out)
{
    bool critical = event->priority == DECIDE_PRIORITY_CRITICAL;
    int64_t quiet_end_ms = 0;
    /* One wall-clock reading serves every channel. */
    bool quiet = user != NULL && prefs != NULL && !critical &&
                 quiet_active(&prefs->quiet, user->zone, now_ms, &quiet_end_ms);

    memset(out, 0, sizeof(*out));
    for (int i = 0; i < DECIDE_CHANNELS; i++) {
        decide_channel ch = (decide_channel)i;
        decide_outcome *o = &out->channel[i];
        bool hushed = quiet && ch != DECIDE_INAPP;
        o->category = decide_category(event->category, tpl->category[i]);

        if (user == NULL) {
            skip(o, DECIDE_REASON_UNKNOWN_USER);
        } else if (!tpl->exists[i]) {
            skip(o, DECIDE_REASON_NO_TEMPLATE);
        } else if (prefs != NULL && pref_disabled(prefs->channels, channel_names[i])) {
            skip(o, DECIDE_REASON_CHANNEL_DISABLED);
        } else if (!critical && category_opted_out(prefs, o->category, ch)) {
            skip(o, DECIDE_REASON_CATEGORY_OPTED_OUT);
        } else if (!channel_addresses(user, ch, o)) {
            skip(o, DECIDE_REASON_NO_ADDRESS);
        } else if (hushed && event->priority == DECIDE_PRIORITY_LOW) {
            skip(o, DECIDE_REASON_QUIET_HOURS_DROPPED);
        } else if (hushed) {
            o->action = DECIDE_SCHEDULE;
            o->not_before_ms = quiet_end_ms;
        } else {
            o->action = DECIDE_SEND;
        }
    }
}

const char *decide_reason_name(decide_reason r)
{
    switch (r) {
    case DECIDE_REASON_NONE:
        return "";
    case DECIDE_REASON_UNKNOWN_USER:
        return "unknown_user";
    case DECIDE_REASON_NO_TEMPLATE:
        return "no_template";
    case DECIDE_REASON_CHANNEL_DISABLED:
        return "channel_disabled";
    case DECIDE_REASON_CATEGORY_OPTED_OUT:
        return "category_opted_out";
    case DECIDE_REASON_NO_ADDRESS:
        return "no_address";
    case DECIDE_REASON_QUIET_HOURS_DROPPED:
        return "quiet_hours_dropped";
    }
    return "unknown";
}

const char *decide_action_status(decide_action a)
{
    switch (a) {
    case DECIDE_SEND:
        return "pending";
    case DECIDE_SCHEDULE:
        return "scheduled";
    case DECIDE_SKIP:
        return "skipped";
    case DECIDE_DIGESTED:
        return "digested";
    case DECIDE_THROTTLED:
        return "throttled";
    case DECIDE_FOLLOWUP:
        return "scheduled";
    }
    return "unknown";
}
