/*
 * bodies: the request bodies of the management API and their rules.
 *
 * Each check walks a parsed JSON document and stops at the first problem,
 * naming the offending field as a path ("push_tokens[2]",
 * "categories.marketing.fax", "quiet_hours.start") and what was expected.
 * Unknown fields are errors, not ignored: a typo such as "emial" must not
 * silently clear an address.  Pure logic: no I/O, no allocation beyond
 * jansson's parse.  The publish bodies are checked by common/event.
 */
#ifndef HERALD_BODIES_H
#define HERALD_BODIES_H

#include <jansson.h>
#include <stddef.h>

#define BODIES_MAX_PUSH_TOKENS      100
#define BODIES_MAX_CATEGORIES       100
#define BODIES_NAME_MAX             256 /* users.name */
#define BODIES_TIMEZONE_MAX         64
#define BODIES_LOCALE_MAX           35
#define BODIES_TEMPLATE_BODY_MAX    65536
#define BODIES_TEMPLATE_SUBJECT_MAX 998                        /* an RFC 5322 line */
#define BODIES_RULE_WINDOW_MS_MAX   (366LL * 24 * 3600 * 1000) /* a year and a day */
#define BODIES_EVENTS_SHOWN_MAX     100
#define BODIES_GROUP_BY_SEGMENTS    16
#define BODIES_GROUP_BY_SEGMENT_MAX 128
#define BODIES_DIGEST_SUFFIX        ".digest" /* the default template: <event_type>.digest */

typedef struct bodies_error {
    char field[128];   /* JSON path of the offending value; "" for the body itself */
    char message[256]; /* what was expected, readable on its own */
} bodies_error;

/* Fills e (may be NULL) with the field and the message; returns -1. */
int bodies_fail(bodies_error *e, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Parses buf[0..len) as one JSON object: no trailing data, no duplicate
 * keys, no NUL inside strings.  On success *out is a new reference the
 * caller releases with json_decref().
 */
int bodies_parse_object(const char *buf, size_t len, json_t **out, bodies_error *e)
    __attribute__((warn_unused_result));

/* PUT /v1/users/{id}: {"email"?,"phone"?,"push_tokens"?,"timezone"?,"locale"?,"name"?}. */
int bodies_check_user(const json_t *body, bodies_error *e) __attribute__((warn_unused_result));

/* PUT /v1/users/{id}/preferences: {"channels"?,"categories"?,"quiet_hours"?}. */
int bodies_check_preferences(const json_t *body, bodies_error *e)
    __attribute__((warn_unused_result));

/* PUT /v1/templates/{type}/{channel}: {"subject"?,"body","category"?}. */
int bodies_check_template(const json_t *body, bodies_error *e) __attribute__((warn_unused_result));

/*
 * PUT /v1/digest-rules/{name} (docs/digests.md): {"event_type","category"?,
 * "channels","window","window_ms"?,"max_window_ms"?,"max_events"?,
 * "send_first"?,"schedule_at"?,"group_by"?,"template"?,"events_shown"?}.
 * "name" may be given and must then be the path's name; "created_at" and
 * "updated_at" are read-only and ignored, so that a rule as GET answers it
 * can be PUT back.
 */
int bodies_check_digest_rule(const json_t *body, const char *name, bodies_error *e)
    __attribute__((warn_unused_result));

/*
 * PUT /v1/throttle-rules/{name}: {"category"?,"channel"?,"max_count",
 * "window_ms","action"}, with "name", "created_at", "updated_at" as above.
 */
int bodies_check_throttle_rule(const json_t *body, const char *name, bodies_error *e)
    __attribute__((warn_unused_result));

/*
 * PUT /v1/followup-rules/{name}: {"event_type","category"?,"after_channel"?
 * (inapp, the default),"delay_ms","channel" (email, sms or push),
 * "template"?}, with "name", "created_at", "updated_at" as above.
 */
int bodies_check_followup_rule(const json_t *body, const char *name, bodies_error *e)
    __attribute__((warn_unused_result));

/* "data.<seg>[.<seg>...]": 1..16 segments of 1..128 [A-Za-z0-9_-]. */
int bodies_check_group_by(const char *s, size_t len) __attribute__((warn_unused_result));

/*
 * Checks the {{placeholders}} of a template text with the template compiler
 * the dispatcher renders with (template.h), so both agree on what a valid
 * template is; err says what is wrong and at which byte offset.  text need
 * not be NUL-terminated.
 */
int bodies_check_placeholders(const char *text, size_t len, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* "HH:MM", 00:00..23:59, into minutes since midnight. */
int bodies_parse_hhmm(const char *s, size_t len, int *minutes) __attribute__((warn_unused_result));

/* A BCP 47-like tag: 2-3 letters, then "-" subtags of 1-8 letters or digits. */
int bodies_check_locale(const char *s, size_t len) __attribute__((warn_unused_result));

/* A delivery channel name: "email", "sms", "push" or "inapp". */
int bodies_is_channel(const char *s);

#endif
