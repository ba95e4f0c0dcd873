/*
 * console_session: session token, CSRF token and cookie headers.
 */
#include "console_session.h"

#include "ids.h"

#include <stdio.h>
#include <string.h>

#define VERSION "c1."

int console_session_mint(const void *secret, size_t secretlen, int64_t key_id, int64_t expires_unix,
                         char *out, size_t outlen)
{
    char payload[24];
    if (key_id <= 0)
        return -1;
    int n = snprintf(payload, sizeof payload, "%lld", (long long)key_id);
    return signedtoken_mint(VERSION, secret, secretlen, payload, (size_t)n, expires_unix, out,
                            outlen);
}

signedtoken_result console_session_verify(const void *secret, size_t secretlen, const char *token,
                                          size_t len, int64_t now_unix, int64_t *key_id,
                                          int64_t *expires_unix)
{
    char payload[24];
    size_t plen = 0;
    int64_t expires = 0;
    signedtoken_result r = signedtoken_verify(VERSION, secret, secretlen, token, len, now_unix,
                                              payload, sizeof payload, &plen, &expires);
    if (r != SIGNEDTOKEN_OK)
        return r;
    /* Signed by us, so well formed unless the format changed: check anyway. */
    int64_t id = 0;
    if (plen == 0 || plen > 18 || payload[0] == '0')
        return SIGNEDTOKEN_MALFORMED;
    for (size_t i = 0; i < plen; i++) {
        if (payload[i] < '0' || payload[i] > '9')
            return SIGNEDTOKEN_MALFORMED;
        id = id * 10 + (payload[i] - '0');
    }
    *key_id = id;
    *expires_unix = expires;
    return SIGNEDTOKEN_OK;
}

void console_session_csrf(const void *secret, size_t secretlen, const char *token, size_t len,
                          char out[CONSOLE_CSRF_SIZE])
{
    unsigned char msg[4 + CONSOLE_TOKEN_SIZE], mac[ID_SHA256_LEN];
    out[0] = '\0';
    if (len > CONSOLE_TOKEN_SIZE)
        return;
    memcpy(msg, "csrf", 4);
    memcpy(msg + 4, token, len);
    id_hmac_sha256(secret, secretlen, msg, 4 + len, mac);
    if (id_base64url_encode(mac, sizeof mac, out, CONSOLE_CSRF_SIZE) != 0)
        out[0] = '\0';
}

bool console_session_csrf_ok(const void *secret, size_t secretlen, const char *token, size_t len,
                             const char *presented)
{
    char want[CONSOLE_CSRF_SIZE];
    console_session_csrf(secret, secretlen, token, len, want);
    if (presented == NULL || want[0] == '\0' || strlen(presented) != SIGNEDTOKEN_SIG_LEN)
        return false;
    return id_equal_ct(want, presented, SIGNEDTOKEN_SIG_LEN);
}

const char *console_cookie_value(const char *header, const char *name, size_t *len)
{
    if (header == NULL)
        return NULL;
    size_t nlen = strlen(name);
    const char *p = header;
    while (*p != '\0') {
        while (*p == ' ' || *p == '\t' || *p == ';')
            p++;
        const char *end = strchr(p, ';');
        if (end == NULL)
            end = p + strlen(p);
        if ((size_t)(end - p) > nlen && memcmp(p, name, nlen) == 0 && p[nlen] == '=') {
            const char *v = p + nlen + 1;
            size_t vlen = (size_t)(end - v);
            while (vlen > 0 && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
                vlen--;
            /* RFC 6265 allows a quoted value. */
            if (vlen >= 2 && v[0] == '"' && v[vlen - 1] == '"') {
                v++;
                vlen -= 2;
            }
            *len = vlen;
            return v;
        }
        p = end;
    }
    return NULL;
}

int console_set_cookie(const char *token, int64_t max_age_s, bool secure, char *out, size_t outlen)
{
    int n = snprintf(out, outlen, "%s=%s; Path=/; HttpOnly; SameSite=Strict; Max-Age=%lld%s",
                     CONSOLE_COOKIE, token != NULL ? token : "",
                     (long long)(token != NULL ? max_age_s : 0), secure ? "; Secure" : "");
    return n < 0 || (size_t)n >= outlen ? -1 : 0;
}
