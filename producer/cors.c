/*
 * cors: parsing and matching of the gateway's allowed origins.
 */
#include "cors.h"

#include "error.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct cors_policy {
    bool any;
    size_t count;
    char origins[CORS_MAX_ORIGINS][CORS_ORIGIN_MAX + 1];
};

static bool is_host_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.';
}

/* Whether s[0..len) is "http[s]://host[:port]" with a port in 1..65535. */
static bool origin_ok(const char *s, size_t len)
{
    size_t i;
    if (len > 7 && strncasecmp(s, "http://", 7) == 0)
        i = 7;
    else if (len > 8 && strncasecmp(s, "https://", 8) == 0)
        i = 8;
    else
        return false;
    size_t host = i;
    if (s[i] == '[') { /* an IPv6 literal */
        for (i++; i < len && s[i] != ']'; i++)
            if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f') ||
                  (s[i] >= 'A' && s[i] <= 'F') || s[i] == ':' || s[i] == '.'))
                return false;
        if (i >= len || i == host + 1)
            return false;
        i++;
    } else {
        while (i < len && is_host_char(s[i]))
            i++;
        if (i == host)
            return false;
    }
    if (i == len)
        return true;
    if (s[i] != ':' || i + 1 == len || len - i - 1 > 5)
        return false;
    long port = 0;
    for (i++; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        port = port * 10 + (s[i] - '0');
    }
    return port >= 1 && port <= 65535;
}

/*
 * Walks value's entries, trimmed, checking each; with p, stores them.
 * Returns 0 or -1 with err set.
 */
static int parse(const char *value, cors_policy *p, char *err, size_t errlen)
{
    size_t n = 0;
    bool any = false;
    const char *s = value;
    for (;;) {
        const char *end = strchr(s, ',');
        size_t len = end != NULL ? (size_t)(end - s) : strlen(s);
        while (len > 0 && (*s == ' ' || *s == '\t')) {
            s++;
            len--;
        }
        while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t'))
            len--;
        if (len == 1 && s[0] == '*') {
            any = true;
        } else if (len == 0) {
            error_set(err, errlen, "expected origins separated by commas, with no empty entry");
            return -1;
        } else if (len > CORS_ORIGIN_MAX || !origin_ok(s, len)) {
            error_set(err, errlen,
                      "expected \"*\" or origins such as https://app.example.com or "
                      "http://127.0.0.1:8000 (scheme, host and optional port; no path)");
            return -1;
        } else if (n >= CORS_MAX_ORIGINS) {
            error_set(err, errlen, "expected at most %d origins", CORS_MAX_ORIGINS);
            return -1;
        } else {
            if (p != NULL) {
                memcpy(p->origins[n], s, len);
                p->origins[n][len] = '\0';
            }
            n++;
        }
        if (end == NULL)
            break;
        s = end + 1;
    }
    if (any && n > 0) {
        error_set(err, errlen, "expected \"*\" alone or a list of origins, not both");
        return -1;
    }
    if (p != NULL) {
        p->any = any;
        p->count = n;
    }
    return 0;
}

int cors_check_origins(const char *value, char *err, size_t errlen)
{
    if (value == NULL || value[0] == '\0')
        return 0;
    return parse(value, NULL, err, errlen);
}

cors_policy *cors_policy_new(const char *value, char *err, size_t errlen)
{
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (value == NULL || value[0] == '\0')
        return NULL;
    cors_policy *p = calloc(1, sizeof *p);
    if (p == NULL) {
        error_set(err, errlen, "out of memory");
        return NULL;
    }
    if (parse(value, p, err, errlen) != 0) {
        free(p);
        return NULL;
    }
    return p;
}

void cors_policy_free(cors_policy *p)
{
    free(p);
}

bool cors_policy_allows(const cors_policy *p, const char *origin)
{
    if (p == NULL || origin == NULL || origin[0] == '\0')
        return false;
    size_t len = strlen(origin);
    if (len > CORS_ORIGIN_MAX || !origin_ok(origin, len))
        return false; /* "null" (a sandboxed or file: page) and anything odd */
    if (p->any)
        return true;
    for (size_t i = 0; i < p->count; i++)
        if (strcasecmp(p->origins[i], origin) == 0)
            return true;
    return false;
}
