/*
 * validate: byte-level field checks with the phrases callers put after a
 * field name.  Everything is explicit loops over bytes: the rules are ASCII
 * classes, and locale-dependent <ctype.h> must not change what is valid.
 */
#include "error.h"
#include "validate.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

static int fail(char *err, size_t errlen, const char *phrase)
{
    if (err != NULL && errlen > 0)
        error_set(err, errlen, "%s", phrase);
    return -1;
}

static bool is_lower_alnum(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool is_alnum(unsigned char c)
{
    return is_lower_alnum(c) || (c >= 'A' && c <= 'Z');
}

/* strchr() would match the terminator: a NUL byte is never in a set. */
static bool in_set(unsigned char c, const char *set)
{
    return c != '\0' && strchr(set, c) != NULL;
}

/* Visible ASCII: what may appear in tokens and keys without quoting. */
static bool is_graph(unsigned char c)
{
    return c > 0x20 && c < 0x7f;
}

size_t validate_utf8_decode(const char *s, size_t len, int32_t *cp)
{
    const unsigned char *p = (const unsigned char *)s;
    if (len == 0)
        return 0;
    unsigned char c = p[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    size_t n;
    uint32_t v, min;
    if ((c & 0xe0) == 0xc0) {
        n = 2, v = c & 0x1f, min = 0x80;
    } else if ((c & 0xf0) == 0xe0) {
        n = 3, v = c & 0x0f, min = 0x800;
    } else if ((c & 0xf8) == 0xf0) {
        n = 4, v = c & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (len < n)
        return 0;
    for (size_t k = 1; k < n; k++) {
        if ((p[k] & 0xc0) != 0x80)
            return 0;
        v = v << 6 | (p[k] & 0x3f);
    }
    if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
        return 0;
    *cp = (int32_t)v;
    return n;
}

size_t validate_utf8_char(const char *s, size_t len)
{
    int32_t cp;
    return validate_utf8_decode(s, len, &cp);
}

bool validate_utf8(const char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        if ((unsigned char)s[i] < 0x80) {
            i++;
            continue;
        }
        size_t n = validate_utf8_char(s + i, len - i);
        if (n == 0)
            return false;
        i += n;
    }
    return true;
}

size_t validate_utf8_chars(const char *s, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        if (((unsigned char)s[i] & 0xc0) != 0x80)
            n++;
    return n;
}

/* The phrase is formatted only on failure: names are checked on every publish. */
static int fail_name(char *err, size_t errlen, size_t maxlen)
{
    if (err != NULL && errlen > 0)
        error_set(err, errlen,
                  "must be 1..%zu characters of a-z 0-9 _ . -, starting with a letter or digit "
                  "(like order.shipped)",
                  maxlen);
    return -1;
}

int validate_name(const char *s, size_t len, size_t maxlen, char *err, size_t errlen)
{
    if (s == NULL || len == 0 || len > maxlen || !is_lower_alnum((unsigned char)s[0]))
        return fail_name(err, errlen, maxlen);
    for (size_t i = 1; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!is_lower_alnum(c) && c != '_' && c != '.' && c != '-')
            return fail_name(err, errlen, maxlen);
    }
    return 0;
}

int validate_user_id(const char *s, size_t len, char *err, size_t errlen)
{
    static const char phrase[] = "must be 1..128 characters of A-Z a-z 0-9 . _ : @ + -";
    if (s == NULL || len == 0 || len > VALIDATE_USER_ID_MAX)
        return fail(err, errlen, phrase);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!is_alnum(c) && !in_set(c, "._:@+-"))
            return fail(err, errlen, phrase);
    }
    /* Broadcast events are keyed "topic:<name>"; a user with such an id would share
     * their partition key and be indistinguishable in the DLQ and in replays. */
    if (len >= 6 && memcmp(s, "topic:", 6) == 0)
        return fail(err, errlen, "must not start with \"topic:\" (reserved for topic broadcasts)");
    return 0;
}

static int check_graph(const char *s, size_t len, size_t maxlen, const char *phrase, char *err,
                       size_t errlen)
{
    if (s == NULL || len == 0 || len > maxlen)
        return fail(err, errlen, phrase);
    for (size_t i = 0; i < len; i++)
        if (!is_graph((unsigned char)s[i]))
            return fail(err, errlen, phrase);
    return 0;
}

int validate_idempotency_key(const char *s, size_t len, char *err, size_t errlen)
{
    return check_graph(s, len, VALIDATE_IDEMPOTENCY_KEY_MAX,
                       "must be 1..255 printable ASCII characters without spaces", err, errlen);
}

int validate_push_token(const char *s, size_t len, char *err, size_t errlen)
{
    return check_graph(s, len, VALIDATE_PUSH_TOKEN_MAX,
                       "must be a device token of 1..4096 printable ASCII characters without "
                       "spaces",
                       err, errlen);
}

int validate_phone(const char *s, size_t len, char *err, size_t errlen)
{
    static const char phrase[] = "must be an E.164 number: + and 7..15 digits, like +14155550123";
    if (s == NULL || len < 8 || len > 16 || s[0] != '+' || s[1] < '1' || s[1] > '9')
        return fail(err, errlen, phrase);
    for (size_t i = 2; i < len; i++)
        if (s[i] < '0' || s[i] > '9')
            return fail(err, errlen, phrase);
    return 0;
}

/* RFC 5322 atext, plus any UTF-8 (RFC 6531 internationalised addresses). */
static bool is_atext(unsigned char c)
{
    return is_alnum(c) || c >= 0x80 || in_set(c, "!#$%&'*+/=?^_`{|}~-");
}

int validate_email(const char *s, size_t len, char *err, size_t errlen)
{
    static const char phrase[] = "must be an email address like name@example.com";
    if (s == NULL || len < 3 || len > VALIDATE_EMAIL_MAX || memchr(s, '\0', len) != NULL ||
        !validate_utf8(s, len))
        return fail(err, errlen, phrase);
    const char *at = memchr(s, '@', len);
    if (at == NULL || memchr(at + 1, '@', len - (size_t)(at - s) - 1) != NULL)
        return fail(err, errlen, phrase);
    size_t local_len = (size_t)(at - s), domain_len = len - local_len - 1;
    if (local_len == 0 || local_len > 64 || domain_len == 0)
        return fail(err, errlen, phrase);

    /* dot-atom: atext runs separated by single dots, no dot at either end. */
    for (size_t i = 0; i < local_len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '.') {
            if (i == 0 || i == local_len - 1 || s[i - 1] == '.')
                return fail(err, errlen, phrase);
        } else if (!is_atext(c)) {
            return fail(err, errlen, phrase);
        }
    }
    const char *d = at + 1;
    for (size_t i = 0; i < domain_len; i++) {
        unsigned char c = (unsigned char)d[i];
        if (c == '.') {
            if (i == 0 || i == domain_len - 1 || d[i - 1] == '.')
                return fail(err, errlen, phrase);
        } else if (c == '-') {
            if (i == 0 || d[i - 1] == '.' || i == domain_len - 1 || d[i + 1] == '.')
                return fail(err, errlen, phrase);
        } else if (!is_alnum(c) && c < 0x80) {
            return fail(err, errlen, phrase);
        }
    }
    return 0;
}

int validate_text(const char *s, size_t len, size_t maxlen, char *err, size_t errlen)
{
    char phrase[64];
    if (s == NULL)
        return fail(err, errlen, "must be a string");
    if (len > maxlen) {
        snprintf(phrase, sizeof phrase, "must be at most %zu bytes", maxlen);
        return fail(err, errlen, phrase);
    }
    if (memchr(s, '\0', len) != NULL)
        return fail(err, errlen, "must not contain NUL characters");
    if (!validate_utf8(s, len))
        return fail(err, errlen, "invalid UTF-8");
    return 0;
}

/* ---- JSON members ---- */

static int json_fail(char *err, size_t errlen, const char *key, const char *phrase)
{
    if (err != NULL && errlen > 0)
        error_set(err, errlen, "%s: %s", key, phrase);
    return -1;
}

int validate_json_string(json_t *obj, const char *key, const char **s, size_t *len, char *err,
                         size_t errlen)
{
    json_t *v = json_object_get(obj, key);
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_string(v))
        return json_fail(err, errlen, key, "must be a string");
    const char *p = json_string_value(v);
    size_t n = json_string_length(v);
    /* jansson checks UTF-8 when it parses, but not for json_stringn_nocheck(). */
    if (memchr(p, '\0', n) != NULL)
        return json_fail(err, errlen, key, "must not contain NUL characters");
    if (!validate_utf8(p, n))
        return json_fail(err, errlen, key, "invalid UTF-8");
    *s = p;
    *len = n;
    return 1;
}

int validate_json_strdup(json_t *obj, const char *key, char **dst, char *err, size_t errlen)
{
    const char *s;
    size_t n;
    *dst = NULL;
    int rc = validate_json_string(obj, key, &s, &n, err, errlen);
    if (rc <= 0)
        return rc;
    *dst = strndup(s, n);
    return *dst != NULL ? 1 : json_fail(err, errlen, key, "out of memory");
}

int validate_json_uuid(json_t *obj, const char *key, char *dst, char *err, size_t errlen)
{
    const char *s;
    size_t n;
    int rc = validate_json_string(obj, key, &s, &n, err, errlen);
    if (rc <= 0)
        return rc;
    /* 36 lowercase hex-and-dash characters: the form Herald writes and compares. */
    if (n != 36 || strlen(s) != 36)
        return json_fail(err, errlen, key, "must be a lowercase UUID");
    for (size_t i = 0; i < n; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        char c = s[i];
        if (dash ? c != '-' : !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return json_fail(err, errlen, key, "must be a lowercase UUID");
    }
    memcpy(dst, s, 37);
    return 1;
}

int validate_json_int(json_t *obj, const char *key, long long min, long long max, long long *out,
                      char *err, size_t errlen)
{
    json_t *v = json_object_get(obj, key);
    if (v == NULL || json_is_null(v))
        return 0;
    char phrase[96];
    snprintf(phrase, sizeof phrase, "must be an integer in %lld..%lld", min, max);
    if (!json_is_integer(v))
        return json_fail(err, errlen, key, phrase);
    json_int_t n = json_integer_value(v);
    if (n < min || n > max)
        return json_fail(err, errlen, key, phrase);
    *out = n;
    return 1;
}

typedef struct size_counter {
    size_t total;
    size_t max;
    bool over;
} size_counter;

static int count_bytes(const char *buffer, size_t size, void *data)
{
    (void)buffer;
    size_counter *c = data;
    c->total += size;
    if (c->max != 0 && c->total > c->max) {
        c->over = true;
        return -1;
    }
    return 0;
}

/* Parsed JSON is nested at most 2048 deep (jansson's limit); values built in code may not be. */
#define JSON_DEPTH_MAX 2048

/*
 * jansson's dump refuses strings that are not UTF-8 but writes object keys
 * unchecked (json_object_set_nocheck), which would produce invalid JSON.
 * Returns 0, or the phrase of the first problem.
 */
static const char *keys_problem(json_t *v, int depth)
{
    if (depth > JSON_DEPTH_MAX)
        return "nested more than 2048 levels deep";
    const char *problem = NULL;
    if (json_is_object(v)) {
        const char *k;
        json_t *child;
        json_object_foreach(v, k, child)
        {
            if (!validate_utf8(k, strlen(k)))
                return "invalid UTF-8 in a key";
            if ((problem = keys_problem(child, depth + 1)) != NULL)
                return problem;
        }
    } else if (json_is_array(v)) {
        for (size_t i = 0; i < json_array_size(v); i++)
            if ((problem = keys_problem(json_array_get(v, i), depth + 1)) != NULL)
                return problem;
    }
    return NULL;
}

int validate_json_size(json_t *value, const char *key, size_t max, char *err, size_t errlen)
{
    size_counter c = {0, max, false};
    const char *problem = keys_problem(value, 0);
    if (problem != NULL)
        return json_fail(err, errlen, key, problem);
    if (json_dump_callback(value, count_bytes, &c, JSON_COMPACT | JSON_ENCODE_ANY) == 0)
        return 0;
    if (c.over) {
        char phrase[80];
        snprintf(phrase, sizeof phrase, "must be at most %zu bytes as JSON", max);
        return json_fail(err, errlen, key, phrase);
    }
    /* With keys checked, the dump fails only on a string that is not UTF-8. */
    return json_fail(err, errlen, key, "invalid UTF-8 in a string");
}

const char *validate_json_unknown_key(json_t *obj, const char *const *allowed)
{
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v)
    {
        (void)v;
        bool known = false;
        for (size_t i = 0; allowed[i] != NULL && !known; i++)
            known = strcmp(key, allowed[i]) == 0;
        if (!known)
            return key;
    }
    return NULL;
}
