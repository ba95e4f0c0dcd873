/* hsig: see hsig.h. */
#include "hsig.h"

#include "ids.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void mac_of(const void *secret, size_t secretlen, const char *t, size_t tlen,
                   const void *body, size_t len, unsigned char out[ID_SHA256_LEN])
{
    /* ids' HMAC takes one buffer, so t "." body is assembled once;
     * callers bound their bodies.  Out of memory gives a MAC of zeros,
     * which no verification accepts and no receiver will either. */
    char *msg = malloc(tlen + 1 + len + 1);
    if (msg == NULL) {
        memset(out, 0, ID_SHA256_LEN);
        return;
    }
    memcpy(msg, t, tlen);
    msg[tlen] = '.';
    if (len > 0)
        memcpy(msg + tlen + 1, body, len);
    id_hmac_sha256(secret, secretlen, msg, tlen + 1 + len, out);
    free(msg);
}

int hsig_sign(const void *secret, size_t secretlen, int64_t t_ms, const void *body, size_t len,
              char *out, size_t outlen)
{
    char t[24], hex[2 * ID_SHA256_LEN + 1];
    unsigned char mac[ID_SHA256_LEN];
    int tn = snprintf(t, sizeof t, "%" PRId64, t_ms);
    mac_of(secret, secretlen, t, (size_t)tn, body, len, mac);
    id_hex(mac, sizeof mac, hex);
    int n = snprintf(out, outlen, "t=%s,v1=%s", t, hex);
    return n < 0 || (size_t)n >= outlen ? -1 : 0;
}

hsig_result hsig_verify(const char *header, const void *secret, size_t secretlen, const void *body,
                        size_t len, int64_t now_ms, int64_t tolerance_ms)
{
    if (header == NULL)
        return HSIG_MALFORMED;
    const char *t = NULL;
    size_t tlen = 0;
    unsigned char given[8][ID_SHA256_LEN];
    size_t ngiven = 0;
    bool bad_v1 = false;
    for (const char *p = header; *p != '\0';) {
        while (*p == ' ' || *p == '\t')
            p++;
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
            n--;
        if (n > 2 && p[0] == 't' && p[1] == '=') {
            if (t != NULL)
                return HSIG_MALFORMED; /* two timestamps: which one was signed? */
            t = p + 2;
            tlen = n - 2;
        } else if (n > 3 && strncmp(p, "v1=", 3) == 0) {
            if (n - 3 != 2 * ID_SHA256_LEN || ngiven == sizeof given / sizeof given[0]) {
                bad_v1 = true;
            } else {
                for (size_t i = 0; i < ID_SHA256_LEN; i++) {
                    int hi = id_hex_digit(p[3 + 2 * i]), lo = id_hex_digit(p[4 + 2 * i]);
                    if (hi < 0 || lo < 0) {
                        bad_v1 = true;
                        break;
                    }
                    given[ngiven][i] = (unsigned char)(hi << 4 | lo);
                }
                if (!bad_v1)
                    ngiven++;
            }
        }
        /* Other schemes (v0, a future v2) are not ours to judge. */
        p = end ? end + 1 : p + n + strlen(p + n);
    }
    if (t == NULL || tlen == 0 || tlen > 19 || ngiven == 0 || bad_v1)
        return HSIG_MALFORMED;
    int64_t tv = 0;
    for (size_t i = 0; i < tlen; i++) {
        if (t[i] < '0' || t[i] > '9')
            return HSIG_MALFORMED;
        if (tv > (INT64_MAX - 9) / 10)
            return HSIG_MALFORMED;
        tv = tv * 10 + (t[i] - '0');
    }
    if (tv < now_ms - tolerance_ms || tv > now_ms + tolerance_ms)
        return HSIG_EXPIRED;
    unsigned char mac[ID_SHA256_LEN];
    mac_of(secret, secretlen, t, tlen, body, len, mac);
    bool ok = false;
    for (size_t i = 0; i < ngiven; i++)
        ok |= id_equal_ct(mac, given[i], sizeof mac);
    return ok ? HSIG_OK : HSIG_MISMATCH;
}

const char *hsig_result_name(hsig_result r)
{
    switch (r) {
    case HSIG_OK:
        return "ok";
    case HSIG_MALFORMED:
        return "malformed";
    case HSIG_EXPIRED:
        return "expired";
    case HSIG_MISMATCH:
        return "mismatch";
    }
    return "unknown";
}
