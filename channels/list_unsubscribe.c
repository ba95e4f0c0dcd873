/*
 * list_unsubscribe: see list_unsubscribe.h.
 */
#include "list_unsubscribe.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "unsubtoken.h"
#include "validate.h"

#define UNSUBSCRIBE_PATH "/v1/unsubscribe?token="

struct list_unsubscribe {
    char *secret;
    size_t secretlen;
    char url[LIST_UNSUBSCRIBE_URL_MAX + 1]; /* without a trailing slash */
    char mailto[VALIDATE_EMAIL_MAX + 1];    /* "" when none */
    char exempt[LIST_UNSUBSCRIBE_EXEMPT_MAX][VALIDATE_CATEGORY_MAX + 1];
    size_t nexempt;
    int64_t ttl_s;
};

int list_unsubscribe_check_url(const char *value, char *err, size_t errlen)
{
    static const char phrase[] = "expected an http(s):// base URL without query or fragment, "
                                 "at most 256 bytes, like https://notify.example.com";
    size_t n = strlen(value);
    size_t scheme = strncmp(value, "https://", 8) == 0  ? 8
                    : strncmp(value, "http://", 7) == 0 ? 7
                                                        : 0;
    if (scheme == 0 || n == scheme || n > LIST_UNSUBSCRIBE_URL_MAX)
        return error_set(err, errlen, "%s", phrase);
    /* It goes between angle brackets in a header: printable ASCII that
     * needs no escaping there, and nothing after the path. */
    for (const char *c = value; *c; c++)
        if (*c <= ' ' || *c > '~' || strchr("<>\"\\?#,", *c) != NULL)
            return error_set(err, errlen, "%s", phrase);
    return 0;
}

/* Calls fn on each comma-separated item of list (spaces around items ignored). */
static int each_item(const char *list, int (*fn)(const char *s, size_t n, void *ctx), void *ctx)
{
    for (const char *p = list; *p;) {
        while (*p == ' ' || *p == ',')
            p++;
        const char *e = p;
        while (*e && *e != ',' && *e != ' ')
            e++;
        if (e > p && fn(p, (size_t)(e - p), ctx) != 0)
            return -1;
        p = e;
    }
    return 0;
}

typedef struct exempt_check {
    size_t n;
    char *err;
    size_t errlen;
} exempt_check;

static int check_one(const char *s, size_t n, void *ctx)
{
    exempt_check *c = ctx;
    char why[160];
    if (validate_name(s, n, VALIDATE_CATEGORY_MAX, why, sizeof why) != 0)
        return error_set(c->err, c->errlen, "expected comma-separated categories: \"%.*s\" %s",
                         (int)n, s, why);
    if (++c->n > LIST_UNSUBSCRIBE_EXEMPT_MAX)
        return error_set(c->err, c->errlen, "expected at most %d categories",
                         LIST_UNSUBSCRIBE_EXEMPT_MAX);
    return 0;
}

int list_unsubscribe_check_exempt(const char *value, char *err, size_t errlen)
{
    exempt_check c = {0, err, errlen};
    return each_item(value, check_one, &c);
}

static int add_exempt(const char *s, size_t n, void *ctx)
{
    list_unsubscribe *lu = ctx;
    if (lu->nexempt == LIST_UNSUBSCRIBE_EXEMPT_MAX || n > VALIDATE_CATEGORY_MAX)
        return -1;
    memcpy(lu->exempt[lu->nexempt], s, n);
    lu->exempt[lu->nexempt++][n] = '\0';
    return 0;
}

int list_unsubscribe_new(const list_unsubscribe_config *c, list_unsubscribe **out, char *err,
                         size_t errlen)
{
    char why[256];
    *out = NULL;
    bool has_secret = c->secret != NULL && c->secret[0] != '\0';
    bool has_url = c->url != NULL && c->url[0] != '\0';
    bool has_mailto = c->mailto != NULL && c->mailto[0] != '\0';
    if (!has_secret && !has_url) {
        if (has_mailto)
            return error_set(err, errlen,
                             "HERALD_UNSUBSCRIBE_MAILTO: needs HERALD_UNSUBSCRIBE_SECRET and "
                             "HERALD_UNSUBSCRIBE_URL as well");
        return 0;
    }
    if (!has_secret)
        return error_set(err, errlen,
                         "HERALD_UNSUBSCRIBE_SECRET: required with HERALD_UNSUBSCRIBE_URL "
                         "(the key that signs the unsubscribe links)");
    if (!has_url)
        return error_set(err, errlen,
                         "HERALD_UNSUBSCRIBE_URL: required with HERALD_UNSUBSCRIBE_SECRET "
                         "(the gateway's public base URL)");
    if (signedtoken_check_secret(c->secret, why, sizeof why) != 0)
        return error_set(err, errlen, "HERALD_UNSUBSCRIBE_SECRET: %s", why);
    if (list_unsubscribe_check_url(c->url, why, sizeof why) != 0)
        return error_set(err, errlen, "HERALD_UNSUBSCRIBE_URL: %s", why);
    if (has_mailto && validate_email(c->mailto, strlen(c->mailto), why, sizeof why) != 0)
        return error_set(err, errlen, "HERALD_UNSUBSCRIBE_MAILTO: %s", why);
    /* Characters an address may hold but a mailto: URI would need escaped. */
    if (has_mailto && strpbrk(c->mailto, "?%#&/") != NULL)
        return error_set(err, errlen,
                         "HERALD_UNSUBSCRIBE_MAILTO: expected an address without "
                         "? %% # & or /");
    const char *exempt = c->exempt != NULL ? c->exempt : LIST_UNSUBSCRIBE_EXEMPT_DEFAULT;
    if (list_unsubscribe_check_exempt(exempt, why, sizeof why) != 0)
        return error_set(err, errlen, "HERALD_UNSUBSCRIBE_EXEMPT: %s", why);
    if (c->ttl_ms < 1000)
        return error_set(err, errlen, "HERALD_UNSUBSCRIBE_TTL: expected at least 1s");

    list_unsubscribe *lu = calloc(1, sizeof *lu);
    if (lu == NULL || (lu->secret = strdup(c->secret)) == NULL) {
        free(lu);
        return error_set(err, errlen, "out of memory");
    }
    lu->secretlen = strlen(c->secret);
    snprintf(lu->url, sizeof lu->url, "%s", c->url);
    size_t n = strlen(lu->url);
    while (n > 0 && lu->url[n - 1] == '/')
        lu->url[--n] = '\0';
    snprintf(lu->mailto, sizeof lu->mailto, "%s", has_mailto ? c->mailto : "");
    (void)each_item(exempt, add_exempt, lu); /* checked above */
    lu->ttl_s = c->ttl_ms / 1000;
    *out = lu;
    return 0;
}

void list_unsubscribe_free(list_unsubscribe *lu)
{
    if (lu == NULL)
        return;
    memset(lu->secret, 0, lu->secretlen);
    free(lu->secret);
    free(lu);
}

bool list_unsubscribe_applies(const list_unsubscribe *lu, const char *category,
                              event_priority priority)
{
    if (lu == NULL || category == NULL || category[0] == '\0' ||
        priority == EVENT_PRIORITY_CRITICAL)
        return false;
    for (size_t i = 0; i < lu->nexempt; i++)
        if (strcmp(lu->exempt[i], category) == 0)
            return false;
    return true;
}

int list_unsubscribe_links_for(const list_unsubscribe *lu, const char *user_id,
                               const char *category, event_priority priority,
                               delivery_channel channel, int64_t now_ms,
                               list_unsubscribe_links *out, char *err, size_t errlen)
{
    char token[UNSUBTOKEN_SIZE], why[200];
    if (!list_unsubscribe_applies(lu, category, priority))
        return 0;
    if (unsubtoken_mint(lu->secret, lu->secretlen, user_id, category, channel,
                        now_ms / 1000 + lu->ttl_s, token, sizeof token, why, sizeof why) != 0)
        return error_set(err, errlen, "unsubscribe link: %s", why);
    /* The sizes hold the longest URL, token and address the checks allow. */
    snprintf(out->https, sizeof out->https, "%s" UNSUBSCRIBE_PATH "%s", lu->url, token);
    out->mailto[0] = '\0';
    if (lu->mailto[0] != '\0')
        snprintf(out->mailto, sizeof out->mailto, "mailto:%s?subject=%s", lu->mailto, token);
    return 1;
}
