/*
 * signedtoken: mint and verify "<version>.<payload>.<expiry>.<signature>".
 */
#include "signedtoken.h"

#include "error.h"
#include "ids.h"

#include <stdio.h>
#include <string.h>

int signedtoken_check_secret(const char *secret, char *err, size_t errlen)
{
    if (secret == NULL || strlen(secret) < SIGNEDTOKEN_SECRET_MIN)
        return error_set(err, errlen, "expected a secret of at least %d bytes",
                         SIGNEDTOKEN_SECRET_MIN);
    return 0;
}

/* The base64url signature of signed[0..len) into out[SIGNEDTOKEN_SIG_LEN + 1]. */
static void sign(const void *secret, size_t secretlen, const char *signed_part, size_t len,
                 char *out)
{
    unsigned char mac[ID_SHA256_LEN];
    id_hmac_sha256(secret, secretlen, signed_part, len, mac);
    /* 32 bytes always fit SIGNEDTOKEN_SIG_LEN + 1. */
    if (id_base64url_encode(mac, sizeof mac, out, SIGNEDTOKEN_SIG_LEN + 1) != 0)
        out[0] = '\0';
}

int signedtoken_mint(const char *version, const void *secret, size_t secretlen, const void *payload,
                     size_t len, int64_t expires_unix, char *out, size_t outlen)
{
    size_t vlen = strlen(version), b64 = (len * 4 + 2) / 3;
    if (expires_unix < 0 || outlen < vlen + b64 + 2)
        return -1;
    memcpy(out, version, vlen);
    if (id_base64url_encode(payload, len, out + vlen, outlen - vlen) != 0)
        return -1;
    size_t head = vlen + b64;
    int n = snprintf(out + head, outlen - head, ".%lld", (long long)expires_unix);
    if (n < 0 || head + (size_t)n + 1 + SIGNEDTOKEN_SIG_LEN + 1 > outlen)
        return -1;
    head += (size_t)n;
    char sig[SIGNEDTOKEN_SIG_LEN + 1];
    sign(secret, secretlen, out, head, sig);
    snprintf(out + head, outlen - head, ".%s", sig);
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

signedtoken_result signedtoken_verify(const char *version, const void *secret, size_t secretlen,
                                      const char *token, size_t len, int64_t now_unix,
                                      char *payload_out, size_t payload_cap, size_t *payload_len,
                                      int64_t *expires_unix)
{
    size_t vlen = strlen(version);
    if (token == NULL || len < vlen || memcmp(token, version, vlen) != 0 || payload_cap == 0)
        return SIGNEDTOKEN_MALFORMED;
    const char *payload = token + vlen, *end = token + len;
    const char *dot1 = memchr(payload, '.', (size_t)(end - payload));
    if (dot1 == NULL)
        return SIGNEDTOKEN_MALFORMED;
    const char *exp = dot1 + 1;
    const char *dot2 = memchr(exp, '.', (size_t)(end - exp));
    if (dot2 == NULL)
        return SIGNEDTOKEN_MALFORMED;
    const char *sig = dot2 + 1;
    if ((size_t)(end - sig) != SIGNEDTOKEN_SIG_LEN)
        return SIGNEDTOKEN_MALFORMED;

    char want[SIGNEDTOKEN_SIG_LEN + 1];
    sign(secret, secretlen, token, (size_t)(dot2 - token), want);
    if (!id_equal_ct(want, sig, SIGNEDTOKEN_SIG_LEN))
        return SIGNEDTOKEN_BAD_SIGNATURE;

    /* Signed by us, so well-formed unless the minting side had a bug. */
    int64_t expires = 0;
    size_t n = 0;
    if (parse_expiry(exp, (size_t)(dot2 - exp), &expires) != 0 ||
        id_base64url_decode(payload, (size_t)(dot1 - payload), payload_out, payload_cap - 1, &n) !=
            0)
        return SIGNEDTOKEN_MALFORMED;
    payload_out[n] = '\0';
    *payload_len = n;
    *expires_unix = expires;
    return now_unix >= expires ? SIGNEDTOKEN_EXPIRED : SIGNEDTOKEN_OK;
}
