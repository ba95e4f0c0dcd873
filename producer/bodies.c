/*
 * bodies: checks of the management API's request bodies.
 *
 * The per-value rules (email, E.164, tokens, names) live in common/validate
 * and time zones in common/tz, so the gateway, heraldctl and the dispatcher
 * agree on them; this file knows the shape of each document.
 */
#include "bodies.h"

#include "error.h"
#include "template.h"
#include "tz.h"
#include "validate.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int bodies_fail(bodies_error *e, const char *field, const char *fmt, ...)
{
    if (e == NULL)
        return -1;
    snprintf(e->field, sizeof e->field, "%s", field);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
    return -1;
}

/* Runs a common/validate check and turns its phrase into "<field> <phrase>". */
static int rule(int rc, bodies_error *e, const char *field, const char *phrase)
{
    if (rc == 0)
        return 0;
    return bodies_fail(e, field, "%s %s", field, phrase);
}

int bodies_parse_object(const char *buf, size_t len, json_t **out, bodies_error *e)
{
    json_error_t jerr;
    *out = NULL;
    if (len == 0)
        return bodies_fail(e, "", "the request body is empty: a JSON object is expected");
    /* JSON_REJECT_DUPLICATES: {"email":"a","email":"b"} has no single meaning.
     * Without JSON_ALLOW_NUL, "\u0000" is refused too. */
    json_t *doc = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
    if (doc == NULL) {
        /* Jansson's own texts for these name its flags or say too little. */
        const char *why = jerr.text;
        switch (json_error_code(&jerr)) {
        case json_error_null_character:
        case json_error_null_byte_in_key:
            why = "\\u0000 (a NUL character) is not accepted in a string";
            break;
        case json_error_numeric_overflow:
            why = "a number is too large: integers must fit in 64 bits (send larger ones as "
                  "strings)";
            break;
        default:
            break;
        }
        return bodies_fail(e, "", "invalid JSON at line %d column %d: %s", jerr.line, jerr.column,
                           why);
    }
    if (!json_is_object(doc)) {
        json_decref(doc);
        return bodies_fail(e, "", "the request body must be a JSON object");
    }
    *out = doc;
    return 0;
}

/* Fails on the first key of obj that is not in allowed (NULL-terminated). */
static int only_keys(const json_t *obj, const char *const *allowed, const char *prefix,
                     bodies_error *e)
{
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)obj, key, v)
    {
        int known = 0;
        for (size_t i = 0; allowed[i] != NULL; i++)
            if (strcmp(key, allowed[i]) == 0)
                known = 1;
        if (!known) {
            char field[128];
            snprintf(field, sizeof field, "%s%s", prefix, key);
            return bodies_fail(e, field, "unknown field \"%.64s\"", key);
        }
    }
    return 0;
}

/* Gets an optional string member: 0 absent or null, 1 present, -1 wrong type. */
static int opt_string(const json_t *obj, const char *name, const char **s, size_t *len,
                      bodies_error *e)
{
    json_t *v = json_object_get(obj, name);
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_string(v))
        return bodies_fail(e, name, "%s must be a string or null", name);
    *s = json_string_value(v);
    *len = json_string_length(v);
    return 1;
}

int bodies_check_locale(const char *s, size_t len)
{
    if (len < 2 || len > BODIES_LOCALE_MAX)
        return -1;
    size_t i = 0;
    while (i < len && ((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z')))
        i++;
    if (i < 2 || i > 3)
        return -1;
    while (i < len) {
        if (s[i] != '-')
            return -1;
        size_t start = ++i;
        while (i < len && ((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
                           (s[i] >= '0' && s[i] <= '9')))
            i++;
        if (i - start < 1 || i - start > 8)
            return -1;
    }
    return 0;
}

int bodies_check_user(const json_t *body, bodies_error *e)
{
    static const char *const allowed[] = {"email",  "phone", "push_tokens", "timezone",
                                          "locale", "name",  NULL};
    const char *s = NULL;
    size_t len = 0;
    char why[160];
    int r;

    if (only_keys(body, allowed, "", e) != 0)
        return -1;

    if ((r = opt_string(body, "email", &s, &len, e)) < 0)
        return -1;
    if (r == 1 && rule(validate_email(s, len, why, sizeof why), e, "email", why) != 0)
        return -1;

    if ((r = opt_string(body, "phone", &s, &len, e)) < 0)
        return -1;
    if (r == 1 && rule(validate_phone(s, len, why, sizeof why), e, "phone", why) != 0)
        return -1;

    if ((r = opt_string(body, "timezone", &s, &len, e)) < 0)
        return -1;
    if (r == 1 && (len > BODIES_TIMEZONE_MAX || memchr(s, '\0', len) != NULL || !tz_valid_name(s)))
        return bodies_fail(e, "timezone",
                           "timezone must be an IANA time zone name like Europe/Paris");

    if ((r = opt_string(body, "locale", &s, &len, e)) < 0)
        return -1;
    if (r == 1 && bodies_check_locale(s, len) != 0)
        return bodies_fail(e, "locale", "locale must be a language tag like en or pt-BR");

    if ((r = opt_string(body, "name", &s, &len, e)) < 0)
        return -1;
    if (r == 1 &&
        rule(validate_text(s, len, BODIES_NAME_MAX, why, sizeof why), e, "name", why) != 0)
        return -1;

    json_t *tokens = json_object_get(body, "push_tokens");
    if (tokens != NULL && !json_is_null(tokens)) {
        if (!json_is_array(tokens))
            return bodies_fail(e, "push_tokens", "push_tokens must be an array of strings");
        if (json_array_size(tokens) > BODIES_MAX_PUSH_TOKENS)
            return bodies_fail(e, "push_tokens", "push_tokens holds at most %d tokens",
                               BODIES_MAX_PUSH_TOKENS);
        size_t i;
        json_t *t;
        json_array_foreach(tokens, i, t)
        {
            char field[48];
            snprintf(field, sizeof field, "push_tokens[%zu]", i);
            if (!json_is_string(t))
                return bodies_fail(e, field, "%s must be a string", field);
            if (rule(validate_push_token(json_string_value(t), json_string_length(t), why,
                                         sizeof why),
                     e, field, why) != 0)
                return -1;
        }
    }
    return 0;
}

static int is_channel_n(const char *s)
{
    return strcmp(s, "email") == 0 || strcmp(s, "sms") == 0 || strcmp(s, "push") == 0 ||
           strcmp(s, "inapp") == 0;
}

int bodies_is_channel(const char *s)
{
    return s != NULL && is_channel_n(s);
}

/* {"email":bool,"sms":bool,"push":bool,"inapp":bool}, any subset. */
static int check_channel_map(const json_t *v, const char *path, bodies_error *e)
{
    if (!json_is_object(v))
        return bodies_fail(e, path, "%s must be an object of channel: true|false", path);
    const char *key;
    json_t *b;
    json_object_foreach((json_t *)v, key, b)
    {
        char field[128];
        snprintf(field, sizeof field, "%s.%.64s", path, key);
        if (!is_channel_n(key))
            return bodies_fail(e, field, "%s: the channels are email, sms, push and inapp", field);
        if (!json_is_boolean(b))
            return bodies_fail(e, field, "%s must be true or false", field);
    }
    return 0;
}

int bodies_parse_hhmm(const char *s, size_t len, int *minutes)
{
    if (len != 5 || s[2] != ':')
        return -1;
    for (int i = 0; i < 5; i++)
        if (i != 2 && (s[i] < '0' || s[i] > '9'))
            return -1;
    int h = (s[0] - '0') * 10 + (s[1] - '0');
    int m = (s[3] - '0') * 10 + (s[4] - '0');
    if (h > 23 || m > 59)
        return -1;
    *minutes = h * 60 + m;
    return 0;
}

int bodies_check_preferences(const json_t *body, bodies_error *e)
{
    static const char *const allowed[] = {"channels", "categories", "quiet_hours", NULL};
    if (only_keys(body, allowed, "", e) != 0)
        return -1;

    json_t *channels = json_object_get(body, "channels");
    if (channels != NULL && check_channel_map(channels, "channels", e) != 0)
        return -1;

    json_t *cats = json_object_get(body, "categories");
    if (cats != NULL) {
        if (!json_is_object(cats))
            return bodies_fail(e, "categories",
                               "categories must be an object of category: channels");
        if (json_object_size(cats) > BODIES_MAX_CATEGORIES)
            return bodies_fail(e, "categories", "categories holds at most %d categories",
                               BODIES_MAX_CATEGORIES);
        const char *key;
        json_t *m;
        json_object_foreach(cats, key, m)
        {
            char field[128], why[160];
            snprintf(field, sizeof field, "categories.%.64s", key);
            if (validate_name(key, strlen(key), VALIDATE_CATEGORY_MAX, why, sizeof why) != 0)
                return bodies_fail(e, field, "a category name %s", why);
            if (check_channel_map(m, field, e) != 0)
                return -1;
        }
    }

    json_t *qh = json_object_get(body, "quiet_hours");
    if (qh != NULL && !json_is_null(qh)) {
        static const char *const qallowed[] = {"start", "end", NULL};
        if (!json_is_object(qh))
            return bodies_fail(
                e, "quiet_hours",
                "quiet_hours must be {\"start\":\"HH:MM\",\"end\":\"HH:MM\"} or null");
        if (only_keys(qh, qallowed, "quiet_hours.", e) != 0)
            return -1;
        int start = 0, end = 0;
        json_t *js = json_object_get(qh, "start"), *je = json_object_get(qh, "end");
        if (!json_is_string(js) ||
            bodies_parse_hhmm(json_string_value(js), json_string_length(js), &start) != 0)
            return bodies_fail(e, "quiet_hours.start",
                               "quiet_hours.start must be a time \"HH:MM\"");
        if (!json_is_string(je) ||
            bodies_parse_hhmm(json_string_value(je), json_string_length(je), &end) != 0)
            return bodies_fail(e, "quiet_hours.end", "quiet_hours.end must be a time \"HH:MM\"");
        if (start == end)
            return bodies_fail(
                e, "quiet_hours.end",
                "quiet_hours.end must differ from start (use null for no quiet hours)");
    }
    return 0;
}

int bodies_check_placeholders(const char *text, size_t len, char *err, size_t errlen)
{
    /* The dispatcher's own compiler decides, so that the gateway accepts
     * exactly the templates the dispatcher can render. */
    if (memchr(text, '\0', len) != NULL) {
        if (err != NULL)
            error_set(err, errlen, "contains a NUL byte");
        return -1;
    }
    /* text need not be terminated: compile a terminated copy. */
    char *copy = malloc(len + 1);
    if (copy == NULL) {
        if (err != NULL)
            error_set(err, errlen, "out of memory");
        return -1;
    }
    memcpy(copy, text, len);
    copy[len] = '\0';
    template *t = NULL;
    int rc = template_compile(copy, &t, NULL, err, errlen);
    template_free(t);
    free(copy);
    return rc;
}

/* A template text field: a string within its size, with valid placeholders. */
static int check_template_text(const json_t *v, const char *field, size_t maxlen, bodies_error *e)
{
    char why[160];
    if (!json_is_string(v))
        return bodies_fail(e, field, "%s must be a string", field);
    const char *s = json_string_value(v);
    size_t len = json_string_length(v);
    if (validate_text(s, len, maxlen, why, sizeof why) != 0)
        return bodies_fail(e, field, "%s %s", field, why);
    if (bodies_check_placeholders(s, len, why, sizeof why) != 0)
        return bodies_fail(e, field, "%s: %s", field, why);
    return 0;
}

int bodies_check_template(const json_t *body, bodies_error *e)
{
    static const char *const allowed[] = {"subject", "body", "category", NULL};
    if (only_keys(body, allowed, "", e) != 0)
        return -1;
    json_t *b = json_object_get(body, "body");
    if (b == NULL || json_is_null(b))
        return bodies_fail(e, "body", "body is required");
    if (check_template_text(b, "body", BODIES_TEMPLATE_BODY_MAX, e) != 0)
        return -1;
    if (json_string_length(b) == 0)
        return bodies_fail(e, "body", "body must not be empty");
    json_t *subject = json_object_get(body, "subject");
    if (subject != NULL && !json_is_null(subject) &&
        check_template_text(subject, "subject", BODIES_TEMPLATE_SUBJECT_MAX, e) != 0)
        return -1;
    if (subject != NULL && json_is_string(subject) &&
        strpbrk(json_string_value(subject), "\r\n") != NULL)
        return bodies_fail(e, "subject", "subject must be a single line");
    json_t *cat = json_object_get(body, "category");
    if (cat != NULL && !json_is_null(cat)) {
        char why[160];
        if (!json_is_string(cat))
            return bodies_fail(e, "category", "category must be a string or null");
        if (validate_name(json_string_value(cat), json_string_length(cat), VALIDATE_CATEGORY_MAX,
                          why, sizeof why) != 0)
            return bodies_fail(e, "category", "category %s", why);
    }
    return 0;
}

/* ---- digest, throttle and follow-up rules (docs/digests.md) ---- */

/* The read-only and path-given members a rule body may repeat. */
static int check_rule_name(const json_t *body, const char *name, bodies_error *e)
{
    json_t *v = json_object_get(body, "name");
    if (v != NULL && (!json_is_string(v) || strcmp(json_string_value(v), name) != 0))
        return bodies_fail(e, "name", "name must be the rule's name in the path, \"%.128s\"", name);
    return 0;
}

/* An optional integer member in min..max: 0 absent or null, 1 present, -1 reported. */
static int opt_int(const json_t *body, const char *field, long long min, long long max,
                   long long *out, bodies_error *e)
{
    json_t *v = json_object_get(body, field);
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max)
        return bodies_fail(e, field, "%s must be an integer in %lld..%lld", field, min, max);
    *out = json_integer_value(v);
    return 1;
}

/* An optional category: a name of 1..64 characters. */
static int opt_category(const json_t *body, bodies_error *e)
{
    json_t *cat = json_object_get(body, "category");
    char why[160];
    if (cat == NULL || json_is_null(cat))
        return 0;
    if (!json_is_string(cat))
        return bodies_fail(e, "category", "category must be a string or null");
    if (validate_name(json_string_value(cat), json_string_length(cat), VALIDATE_CATEGORY_MAX, why,
                      sizeof why) != 0)
        return bodies_fail(e, "category", "category %s", why);
    return 0;
}

/* A required or optional event type name (event_type, template). */
static int check_type_name(const json_t *body, const char *field, int required, bodies_error *e)
{
    json_t *v = json_object_get(body, field);
    char why[160];
    if (v == NULL || json_is_null(v))
        return required ? bodies_fail(e, field, "%s is required", field) : 0;
    if (!json_is_string(v))
        return bodies_fail(e, field, "%s must be a string", field);
    if (validate_name(json_string_value(v), json_string_length(v), VALIDATE_NAME_MAX, why,
                      sizeof why) != 0)
        return bodies_fail(e, field, "%s %s", field, why);
    return 0;
}

int bodies_check_group_by(const char *s, size_t len)
{
    if (len < 5 || memcmp(s, "data.", 5) != 0)
        return -1;
    size_t i = 4, segments = 0;
    while (i < len) {
        if (s[i] != '.')
            return -1;
        size_t start = ++i;
        while (i < len && ((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
                           (s[i] >= '0' && s[i] <= '9') || s[i] == '_' || s[i] == '-'))
            i++;
        if (i - start < 1 || i - start > BODIES_GROUP_BY_SEGMENT_MAX ||
            ++segments > BODIES_GROUP_BY_SEGMENTS)
            return -1;
    }
    return 0;
}

/* channels: a non-empty array of distinct channel names. */
static int check_rule_channels(const json_t *body, bodies_error *e)
{
    json_t *ch = json_object_get(body, "channels");
    size_t i;
    json_t *c;
    if (ch == NULL || json_is_null(ch))
        return bodies_fail(e, "channels",
                           "channels is required: an array of email, sms, push, "
                           "inapp");
    if (!json_is_array(ch) || json_array_size(ch) == 0)
        return bodies_fail(e, "channels",
                           "channels must be a non-empty array of email, sms, push, inapp");
    json_array_foreach(ch, i, c)
    {
        if (!json_is_string(c))
            return bodies_fail(e, "channels", "channels must hold strings only");
        const char *name = json_string_value(c);
        if (strlen(name) != json_string_length(c) || !is_channel_n(name))
            return bodies_fail(e, "channels",
                               "channels: \"%.32s\" is not a channel (email, sms, push, inapp)",
                               name);
        for (size_t j = 0; j < i; j++)
            if (strcmp(json_string_value(json_array_get(ch, j)), name) == 0)
                return bodies_fail(e, "channels", "channels lists \"%s\" twice", name);
    }
    return 0;
}

/* The window members: kind, lengths and schedule, each only where it means something. */
static int check_rule_window(const json_t *body, bodies_error *e)
{
    json_t *w = json_object_get(body, "window");
    long long window_ms = 0, max_window_ms = 0;
    int have_window, have_max;
    if (w == NULL || json_is_null(w))
        return bodies_fail(e, "window", "window is required: fixed, sliding or scheduled");
    const char *kind = json_is_string(w) ? json_string_value(w) : "";
    bool scheduled = strcmp(kind, "scheduled") == 0, sliding = strcmp(kind, "sliding") == 0;
    if (!scheduled && !sliding && strcmp(kind, "fixed") != 0)
        return bodies_fail(e, "window", "window must be fixed, sliding or scheduled");
    if ((have_window = opt_int(body, "window_ms", 1, BODIES_RULE_WINDOW_MS_MAX, &window_ms, e)) < 0)
        return -1;
    if (!have_window && !scheduled)
        return bodies_fail(e, "window_ms",
                           "window_ms is required for a %s window: an integer "
                           "number of milliseconds > 0",
                           kind);
    if ((have_max =
             opt_int(body, "max_window_ms", 1, BODIES_RULE_WINDOW_MS_MAX, &max_window_ms, e)) < 0)
        return -1;
    if (sliding && !have_max)
        return bodies_fail(e, "max_window_ms",
                           "max_window_ms is required for a sliding window: how long the window "
                           "may grow");
    if (!sliding && have_max)
        return bodies_fail(e, "max_window_ms", "max_window_ms is only for sliding windows");
    if (sliding && max_window_ms < window_ms)
        return bodies_fail(e, "max_window_ms", "max_window_ms must be at least window_ms");
    json_t *at = json_object_get(body, "schedule_at");
    int minutes = 0;
    if (scheduled &&
        (!json_is_string(at) ||
         bodies_parse_hhmm(json_string_value(at), json_string_length(at), &minutes) != 0))
        return bodies_fail(e, "schedule_at",
                           "schedule_at must be a time \"HH:MM\" (00:00..23:59) for a "
                           "scheduled window");
    if (!scheduled && at != NULL && !json_is_null(at))
        return bodies_fail(e, "schedule_at", "schedule_at is only for scheduled windows");
    return 0;
}

int bodies_check_digest_rule(const json_t *body, const char *name, bodies_error *e)
{
    static const char *const allowed[] = {
        "name",          "event_type", "category",   "channels",    "window",   "window_ms",
        "max_window_ms", "max_events", "send_first", "schedule_at", "group_by", "template",
        "events_shown",  "created_at", "updated_at", NULL};
    long long n = 0;
    if (only_keys(body, allowed, "", e) != 0 || check_rule_name(body, name, e) != 0)
        return -1;
    if (check_type_name(body, "event_type", 1, e) != 0 || opt_category(body, e) != 0 ||
        check_rule_channels(body, e) != 0 || check_rule_window(body, e) != 0)
        return -1;
    if (opt_int(body, "max_events", 1, INT32_MAX, &n, e) < 0)
        return -1;
    json_t *first = json_object_get(body, "send_first");
    if (first != NULL && !json_is_null(first) && !json_is_boolean(first))
        return bodies_fail(e, "send_first", "send_first must be true or false");
    json_t *g = json_object_get(body, "group_by");
    if (g != NULL && !json_is_null(g) &&
        (!json_is_string(g) ||
         bodies_check_group_by(json_string_value(g), json_string_length(g)) != 0))
        return bodies_fail(e, "group_by",
                           "group_by must name a field under data, like \"data.thread_id\": "
                           "data. then 1..16 dot-separated names of 1..128 A-Z a-z 0-9 _ -");
    json_t *t = json_object_get(body, "template");
    if (check_type_name(body, "template", 0, e) != 0)
        return -1;
    /* The default template's name must be a valid name too. */
    if ((t == NULL || json_is_null(t)) &&
        json_string_length(json_object_get(body, "event_type")) + strlen(BODIES_DIGEST_SUFFIX) >
            VALIDATE_NAME_MAX)
        return bodies_fail(e, "template",
                           "template is required when event_type is longer than %zu characters",
                           VALIDATE_NAME_MAX - strlen(BODIES_DIGEST_SUFFIX));
    if (opt_int(body, "events_shown", 1, BODIES_EVENTS_SHOWN_MAX, &n, e) < 0)
        return -1;
    return 0;
}

int bodies_check_throttle_rule(const json_t *body, const char *name, bodies_error *e)
{
    static const char *const allowed[] = {"name",       "category",   "channel",
                                          "max_count",  "window_ms",  "action",
                                          "created_at", "updated_at", NULL};
    long long n = 0;
    if (only_keys(body, allowed, "", e) != 0 || check_rule_name(body, name, e) != 0 ||
        opt_category(body, e) != 0)
        return -1;
    json_t *ch = json_object_get(body, "channel");
    if (ch != NULL && !json_is_null(ch) &&
        (!json_is_string(ch) || strlen(json_string_value(ch)) != json_string_length(ch) ||
         !is_channel_n(json_string_value(ch))))
        return bodies_fail(e, "channel", "channel must be email, sms, push, inapp or null (all)");
    int r = opt_int(body, "max_count", 1, INT32_MAX, &n, e);
    if (r < 0)
        return -1;
    if (r == 0)
        return bodies_fail(e, "max_count", "max_count is required: an integer >= 1");
    if ((r = opt_int(body, "window_ms", 1, BODIES_RULE_WINDOW_MS_MAX, &n, e)) < 0)
        return -1;
    if (r == 0)
        return bodies_fail(e, "window_ms",
                           "window_ms is required: an integer number of milliseconds > 0");
    json_t *a = json_object_get(body, "action");
    const char *action = json_is_string(a) ? json_string_value(a) : "";
    if (strcmp(action, "drop") != 0 && strcmp(action, "defer") != 0)
        return bodies_fail(e, "action", "action must be drop or defer");
    return 0;
}

int bodies_check_followup_rule(const json_t *body, const char *name, bodies_error *e)
{
    static const char *const allowed[] = {"name",       "event_type", "category", "after_channel",
                                          "delay_ms",   "channel",    "template", "created_at",
                                          "updated_at", NULL};
    long long n = 0;
    if (only_keys(body, allowed, "", e) != 0 || check_rule_name(body, name, e) != 0 ||
        check_type_name(body, "event_type", 1, e) != 0 || opt_category(body, e) != 0)
        return -1;
    /* The dispatcher learns that a message was read only from the inbox. */
    json_t *after = json_object_get(body, "after_channel");
    if (after != NULL && !json_is_null(after) &&
        (!json_is_string(after) || strcmp(json_string_value(after), "inapp") != 0))
        return bodies_fail(e, "after_channel",
                           "after_channel must be inapp: only the in-app channel has a read state");
    int r = opt_int(body, "delay_ms", 1, BODIES_RULE_WINDOW_MS_MAX, &n, e);
    if (r < 0)
        return -1;
    if (r == 0)
        return bodies_fail(e, "delay_ms",
                           "delay_ms is required: an integer number of milliseconds > 0");
    json_t *ch = json_object_get(body, "channel");
    const char *channel = json_is_string(ch) ? json_string_value(ch) : "";
    if (ch == NULL || json_is_null(ch))
        return bodies_fail(e, "channel",
                           "channel is required: email, sms or push, the channel the follow-up "
                           "is sent on");
    if (strcmp(channel, "email") != 0 && strcmp(channel, "sms") != 0 &&
        strcmp(channel, "push") != 0)
        return bodies_fail(e, "channel", "channel must be email, sms or push");
    return check_type_name(body, "template", 0, e);
}
