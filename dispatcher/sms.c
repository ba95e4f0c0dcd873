/*
 * sms: see sms.h.
 */
#include "sms.h"

#include "error.h"
#include "validate.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define SMS_GSM7_SINGLE 160
#define SMS_GSM7_PART   153
#define SMS_UCS2_SINGLE 70
#define SMS_UCS2_PART   67

/* One character of s[0..len) (len >= 1): its length, and its code point or -1 for a malformed
 * byte, which is taken alone. */
static size_t decode(const char *s, size_t len, int32_t *cp)
{
    size_t n = validate_utf8_decode(s, len, cp);
    if (n > 0)
        return n;
    *cp = -1;
    return 1;
}

/* Septets a character takes in GSM-7: 1 basic, 2 extension table, 0 not encodable. */
static int gsm7_width(int32_t cp)
{
    static const int32_t basic[] = {
        0x00A3, 0x00A5, 0x00E8, 0x00E9, 0x00F9, 0x00EC, 0x00F2, 0x00C7, 0x00D8, 0x00F8,
        0x00C5, 0x00E5, 0x0394, 0x03A6, 0x0393, 0x039B, 0x03A9, 0x03A0, 0x03A8, 0x03A3,
        0x0398, 0x039E, 0x00C6, 0x00E6, 0x00DF, 0x00C9, 0x00A4, 0x00A1, 0x00C4, 0x00D6,
        0x00D1, 0x00DC, 0x00A7, 0x00BF, 0x00E4, 0x00F6, 0x00F1, 0x00FC, 0x00E0,
    };
    if ((cp >= 'A' && cp <= 'Z') || (cp >= 'a' && cp <= 'z') || (cp >= ' ' && cp <= '?') ||
        cp == '@' || cp == '_' || cp == '\n' || cp == '\r')
        return 1;
    if (cp == '^' || cp == '{' || cp == '}' || cp == '\\' || cp == '[' || cp == ']' || cp == '~' ||
        cp == '|' || cp == '\f' || cp == 0x20AC)
        return 2;
    if (cp < 0x80)
        return 0; /* '`', other controls, DEL */
    for (size_t i = 0; i < sizeof(basic) / sizeof(basic[0]); i++)
        if (basic[i] == cp)
            return 1;
    return 0;
}

/* A text made of up to two byte ranges (a prefix and a marker), sized as one message. */
typedef struct sms_text {
    const char *s[2];
    size_t len[2];
} sms_text;

/* Position in an sms_text; zero-initialise to start. */
typedef struct sms_iter {
    int range;
    size_t at;
} sms_iter;

/* Stores the next code point (-1 if malformed) and returns true, or false at the end. */
static bool sms_next(const sms_text *x, sms_iter *it, int32_t *cp)
{
    while (it->range < 2 && it->at >= x->len[it->range]) {
        it->range++;
        it->at = 0;
    }
    if (it->range == 2)
        return false;
    it->at += decode(x->s[it->range] + it->at, x->len[it->range] - it->at, cp);
    return true;
}

static size_t sms_width(int32_t cp, bool gsm)
{
    if (gsm)
        return (size_t)gsm7_width(cp);
    return cp >= 0x10000 ? 2 : 1; /* a surrogate pair */
}

static int sms_count(const sms_text *x, sms_encoding *encoding)
{
    bool gsm = true;
    size_t total = 0, units = 0;
    sms_iter it = {0, 0};
    int32_t cp;
    while (sms_next(x, &it, &cp)) {
        if (cp < 0 || gsm7_width(cp) == 0)
            gsm = false;
        else
            total += (size_t)gsm7_width(cp);
        units += sms_width(cp, false);
    }
    if (!gsm)
        total = units;
    if (encoding != NULL)
        *encoding = gsm ? SMS_GSM7 : SMS_UCS2;
    if (total == 0)
        return 0;
    if (total <= (gsm ? SMS_GSM7_SINGLE : SMS_UCS2_SINGLE))
        return 1;
    /* Parts are filled in order; a character that does not fit whole (an
     * escape pair, a surrogate pair) starts the next part. */
    size_t limit = gsm ? SMS_GSM7_PART : SMS_UCS2_PART, cur = 0;
    int parts = 1;
    it = (sms_iter){0, 0};
    while (sms_next(x, &it, &cp)) {
        size_t w = sms_width(cp, gsm);
        if (cur + w > limit) {
            parts++;
            cur = 0;
        }
        cur += w;
    }
    return parts;
}

int sms_segments(const char *body, sms_encoding *encoding)
{
    sms_text x = {{body, ""}, {strlen(body), 0}};
    return sms_count(&x, encoding);
}

/* Characters that extend the one before them: cutting before one breaks a glyph. */
static bool is_extender(int32_t cp)
{
    return (cp >= 0x0300 && cp <= 0x036F) || (cp >= 0x1AB0 && cp <= 0x1AFF) ||
           (cp >= 0x1DC0 && cp <= 0x1DFF) || (cp >= 0x20D0 && cp <= 0x20FF) ||
           (cp >= 0xFE00 && cp <= 0xFE0F) || (cp >= 0xFE20 && cp <= 0xFE2F) || cp == 0x200D ||
           (cp >= 0x1F3FB && cp <= 0x1F3FF) || (cp >= 0xE0020 && cp <= 0xE007F) ||
           (cp >= 0xE0100 && cp <= 0xE01EF);
}

int sms_truncate(const char *body, int max_segments, const char *marker, char **out,
                 bool *truncated, char *err, size_t errlen)
{
    int rc = -1;
    size_t *cuts = NULL;
    size_t len = strlen(body);
    size_t mlen = marker != NULL ? strlen(marker) : 0;

    *out = NULL;
    if (truncated != NULL)
        *truncated = false;
    if (max_segments < 1) {
        error_set(err, errlen, "max_segments must be at least 1");
        goto out;
    }
    if (sms_segments(body, NULL) <= max_segments) {
        if ((*out = strdup(body)) == NULL)
            error_set(err, errlen, "out of memory");
        rc = *out != NULL ? 0 : -1;
        goto out;
    }
    sms_text x = {{body, marker != NULL ? marker : ""}, {0, mlen}};
    if (sms_count(&x, NULL) > max_segments) {
        error_set(err, errlen, "the truncation marker alone does not fit in max_segments (%d)",
                  max_segments);
        goto out;
    }
    /* Candidate cut points: character starts not followed by an extender
     * and not just after a zero-width joiner. */
    if ((cuts = malloc((len + 1) * sizeof(*cuts))) == NULL) {
        error_set(err, errlen, "out of memory");
        goto out;
    }
    size_t ncuts = 0;
    int32_t prev = -1;
    for (size_t i = 0; i < len;) {
        int32_t cp;
        size_t n = decode(body + i, len - i, &cp);
        if (i == 0 || (!is_extender(cp) && prev != 0x200D))
            cuts[ncuts++] = i;
        prev = cp;
        i += n;
    }
    /* The largest cut that fits; fitting only gets harder as the prefix grows. */
    size_t lo = 0, hi = ncuts; /* cuts[lo] fits (cut 0 is the marker alone) */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        x.len[0] = cuts[mid];
        while (x.len[0] > 0 && body[x.len[0] - 1] == ' ')
            x.len[0]--;
        if (sms_count(&x, NULL) <= max_segments)
            lo = mid;
        else
            hi = mid;
    }
    size_t keep = cuts[lo];
    while (keep > 0 && body[keep - 1] == ' ')
        keep--;
    if ((*out = malloc(keep + mlen + 1)) == NULL) {
        error_set(err, errlen, "out of memory");
        goto out;
    }
    memcpy(*out, body, keep);
    if (mlen > 0)
        memcpy(*out + keep, marker, mlen);
    (*out)[keep + mlen] = '\0';
    if (truncated != NULL)
        *truncated = true;
    rc = 0;
out:
    free(cuts);
    return rc;
}
