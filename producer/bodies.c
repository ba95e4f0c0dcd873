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
    if (doc == NULL)
        return bodies_fail(e, "", "invalid JSON at line %d column %d: %s", jerr.line, jerr.column,
                           jerr.text);
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
