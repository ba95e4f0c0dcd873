/*
 * usertoken: mint and verify "v1.<user>.<expiry>.<signature>".
 */
#include "usertoken.h"

#include "error.h"
#include "ids.h"

#include <stdio.h>
#include <string.h>

#define VERSION     "v1."
#define VERSION_LEN 3
#define SIG_B64_LEN 43 /* base64url of 32 bytes */

int usertoken_check_secret(const char *secret, char *err, size_t errlen)
{
    if (secret == NULL || strlen(secret) < USERTOKEN_SECRET_MIN)
        return error_set(err, errlen, "expected a secret of at least %d bytes",
                         USERTOKEN_SECRET_MIN);
    return 0;
}

/* The base64url signature of signed[0..len) into out[SIG_B64_LEN + 1]. */
static void sign(const char *secret, size_t secretlen, const char *signed_part, size_t len,
                 char *out)
{
    unsigned char mac[ID_SHA256_LEN];
    id_hmac_sha256(secret, secretlen, signed_part, len, mac);
    /* 32 bytes always fit SIG_B64_LEN + 1. */
    if (id_base64url_encode(mac, sizeof mac, out, SIG_B64_LEN + 1) != 0)
        out[0] = '\0';
}

int usertoken_mint(const char *secret, size_t secretlen, const char *user_id, int64_t expires_unix,
                   char *out, size_t outlen, char *err, size_t errlen)
{
    char why[160], user_b64[(VALIDATE_USER_ID_MAX * 4 + 2) / 3 + 1], sig[SIG_B64_LEN + 1];
    size_t ulen = user_id != NULL ? strlen(user_id) : 0;
    if (user_id == NULL || validate_user_id(user_id, ulen, why, sizeof why) != 0)
        return error_set(err, errlen, "user_id %s", user_id == NULL ? "is missing" : why);
    if (expires_unix < 0)
        return error_set(err, errlen, "the expiry is before 1970");
    if (id_base64url_encode(user_id, ulen, user_b64, sizeof user_b64) != 0)
        return error_set(err, errlen, "user_id is too long");
    int n = snprintf(out, outlen, VERSION "%s.%lld", user_b64, (long long)expires_unix);
    if (n < 0 || (size_t)n + 1 + SIG_B64_LEN + 1 > outlen)
        return error_set(err, errlen, "the token buffer is too small");
    sign(secret, secretlen, out, (size_t)n, sig);
    snprintf(out + n, outlen - (size_t)n, ".%s", sig);
    return 0;
}

/* Parses the decimal expiry of s[0..len): digits only, no sign, no overflow. */
static int parse_expiry(const char *s, size_t len, int64_t *out)
{
    int64_t v = 0;
    if (len == 0 || len > 18)
        return -1;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

usertoken_result usertoken_verify(const char *secret, size_t secretlen, const char *token,
                                  size_t len, int64_t now_unix, char *user_out,
                                  int64_t *expires_unix)
{
    if (token == NULL || len < VERSION_LEN || memcmp(token, VERSION, VERSION_LEN) != 0)
        return USERTOKEN_MALFORMED;
    const char *user = token + VERSION_LEN, *end = token + len;
    const char *dot1 = memchr(user, '.', (size_t)(end - user));
    if (dot1 == NULL)
        return USERTOKEN_MALFORMED;
    const char *exp = dot1 + 1;
    const char *dot2 = memchr(exp, '.', (size_t)(end - exp));
    if (dot2 == NULL)
        return USERTOKEN_MALFORMED;
    const char *sig = dot2 + 1;
    if ((size_t)(end - sig) != SIG_B64_LEN)
        return USERTOKEN_MALFORMED;

    char want[SIG_B64_LEN + 1];
    sign(secret, secretlen, token, (size_t)(dot2 - token), want);
    if (!id_equal_ct(want, sig, SIG_B64_LEN))
        return USERTOKEN_BAD_SIGNATURE;

    /* Signed by us, so well-formed unless the minting side had a bug. */
    int64_t expires = 0;
    size_t ulen = 0;
    char why[160];
    if (parse_expiry(exp, (size_t)(dot2 - exp), &expires) != 0 ||
        id_base64url_decode(user, (size_t)(dot1 - user), user_out, VALIDATE_USER_ID_MAX, &ulen) !=
            0)
        return USERTOKEN_MALFORMED;
    user_out[ulen] = '\0';
    if (validate_user_id(user_out, ulen, why, sizeof why) != 0)
        return USERTOKEN_MALFORMED;
    if (now_unix >= expires)
        return USERTOKEN_EXPIRED;
    *expires_unix = expires;
    return USERTOKEN_OK;
}

int usertoken_looks_like(const char *token, size_t len)
{
    return token != NULL && len > VERSION_LEN && memcmp(token, VERSION, VERSION_LEN) == 0;
}

const char *usertoken_result_name(usertoken_result r)
{
    switch (r) {
    case USERTOKEN_OK:
        return "ok";
    case USERTOKEN_MALFORMED:
        return "malformed";
    case USERTOKEN_BAD_SIGNATURE:
        return "bad signature";
    case USERTOKEN_EXPIRED:
        return "expired";
    }
    return "?";
}
