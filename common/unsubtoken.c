/*
 * unsubtoken: mint and verify "u1.<user|category|channel>.<expiry>.<signature>".
 */
#include "unsubtoken.h"

#include "error.h"

#include <stdio.h>
#include <string.h>

#define VERSION     "u1."
#define PAYLOAD_MAX (VALIDATE_USER_ID_MAX + 1 + VALIDATE_CATEGORY_MAX + 1 + 8)

int unsubtoken_mint(const void *secret, size_t secretlen, const char *user_id, const char *category,
                    delivery_channel channel, int64_t expires_unix, char *out, size_t outlen,
                    char *err, size_t errlen)
{
    char why[160], payload[PAYLOAD_MAX + 1];
    if (user_id == NULL || validate_user_id(user_id, strlen(user_id), why, sizeof why) != 0)
        return error_set(err, errlen, "user_id %s", user_id == NULL ? "is missing" : why);
    if (category == NULL ||
        validate_name(category, strlen(category), VALIDATE_CATEGORY_MAX, why, sizeof why) != 0)
        return error_set(err, errlen, "category %s", category == NULL ? "is missing" : why);
    if ((int)channel < 0 || (int)channel >= DELIVERY_CHANNEL_COUNT)
        return error_set(err, errlen, "no such channel");
    if (expires_unix < 0)
        return error_set(err, errlen, "the expiry is before 1970");
    int n = snprintf(payload, sizeof payload, "%s|%s|%s", user_id, category,
                     delivery_channel_name(channel));
    if (signedtoken_mint(VERSION, secret, secretlen, payload, (size_t)n, expires_unix, out,
                         outlen) != 0)
        return error_set(err, errlen, "the token buffer is too small");
    return 0;
}

/* Splits "user|category|channel" into t; -1 unless it is three valid names. */
static int parse_payload(const char *p, size_t len, unsubtoken *t)
{
    char why[160];
    const char *end = p + len;
    const char *bar1 = memchr(p, '|', len);
    const char *bar2 = bar1 != NULL ? memchr(bar1 + 1, '|', (size_t)(end - bar1 - 1)) : NULL;
    if (bar2 == NULL || memchr(p, '\0', len) != NULL)
        return -1;
    size_t ulen = (size_t)(bar1 - p), clen = (size_t)(bar2 - bar1 - 1);
    char channel[16];
    size_t chlen = (size_t)(end - bar2 - 1);
    if (ulen > VALIDATE_USER_ID_MAX || clen > VALIDATE_CATEGORY_MAX || chlen >= sizeof channel ||
        validate_user_id(p, ulen, why, sizeof why) != 0 ||
        validate_name(bar1 + 1, clen, VALIDATE_CATEGORY_MAX, why, sizeof why) != 0)
        return -1;
    memcpy(channel, bar2 + 1, chlen);
    channel[chlen] = '\0';
    if (delivery_channel_parse(channel, &t->channel) != 0)
        return -1;
    memcpy(t->user_id, p, ulen);
    t->user_id[ulen] = '\0';
    memcpy(t->category, bar1 + 1, clen);
    t->category[clen] = '\0';
    return 0;
}

signedtoken_result unsubtoken_verify(const void *secret, size_t secretlen, const char *token,
                                     size_t len, int64_t now_unix, unsubtoken *out)
{
    char payload[PAYLOAD_MAX + 1];
    size_t plen = 0;
    int64_t expires = 0;
    signedtoken_result r = signedtoken_verify(VERSION, secret, secretlen, token, len, now_unix,
                                              payload, sizeof payload, &plen, &expires);
    if (r != SIGNEDTOKEN_OK && r != SIGNEDTOKEN_EXPIRED)
        return r;
    /* Signed by us, so three names unless the minting side had a bug. */
    if (parse_payload(payload, plen, out) != 0)
        return SIGNEDTOKEN_MALFORMED;
    out->expires_unix = expires;
    return r;
}
