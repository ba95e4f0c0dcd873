/*
 * jtext: see jtext.h.
 */
#include "jtext.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Length of the valid UTF-8 sequence at s (1..4), or 0 if invalid. */
size_t jt_utf8_seq(const unsigned char *s, size_t len)
{
    size_t n;
    unsigned cp;
    if (s[0] < 0x80)
        return 1;
    if ((s[0] & 0xe0) == 0xc0) {
        n = 2;
        cp = s[0] & 0x1f;
    } else if ((s[0] & 0xf0) == 0xe0) {
        n = 3;
        cp = s[0] & 0x0f;
    } else if ((s[0] & 0xf8) == 0xf0) {
        n = 4;
        cp = s[0] & 0x07;
    } else {
        return 0;
    }
    if (n > len)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
        cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

void jt_put(jtext *j, const char *p, size_t n)
{
    if (j->failed)
        return;
    if (j->len + n + 1 > j->cap) {
        size_t ncap = j->cap == 0 ? 2048 : j->cap;
        while (ncap < j->len + n + 1)
            ncap *= 2;
        char *np = realloc(j->p, ncap);
        if (np == NULL) {
            j->failed = true;
            return;
        }
        j->p = np;
        j->cap = ncap;
    }
    memcpy(j->p + j->len, p, n);
    j->len += n;
    j->p[j->len] = '\0';
}

void jt_str(jtext *j, const char *s)
{
    jt_put(j, s, strlen(s));
}

void jt_long(jtext *j, long long v)
{
    char num[32];
    int n = snprintf(num, sizeof(num), "%lld", v);
    jt_put(j, num, (size_t)n);
}

void jt_wire(jtext *j, const char *s, size_t len, bool *lossy)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *u = (const unsigned char *)s;
    size_t run = 0, i = 0;
    jt_put(j, "\"", 1);
    while (i < len) {
        unsigned char c = u[i];
        if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
            i++;
            continue;
        }
        size_t n = c >= 0x80 ? jt_utf8_seq(u + i, len - i) : 0;
        if (n > 0) {
            i += n;
            continue;
        }
        jt_put(j, s + run, i - run);
        if (c >= 0x80) {
            if (lossy != NULL)
                *lossy = true;
            jt_put(j, "?", 1);
        } else {
            char esc[6] = {'\\', (char)c};
            size_t elen = 2;
            switch (c) {
            case '"':
            case '\\':
                break;
            case '\n':
                esc[1] = 'n';
                break;
            case '\r':
                esc[1] = 'r';
                break;
            case '\t':
                esc[1] = 't';
                break;
            case '\b':
                esc[1] = 'b';
                break;
            case '\f':
                esc[1] = 'f';
                break;
            default:
                memcpy(esc, "\\u00", 4);
                esc[4] = hex[c >> 4];
                esc[5] = hex[c & 15];
                elen = 6;
            }
            jt_put(j, esc, elen);
        }
        i++;
        run = i;
    }
    jt_put(j, s + run, len - run);
    jt_put(j, "\"", 1);
}
