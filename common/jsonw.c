/*
 * jsonw: see jsonw.h.
 */
#include "jsonw.h"

#include <stdint.h>
#include <string.h>

#include "validate.h"

static void raw(jsonw *w, const char *s, size_t n)
{
    if (!w->failed && buf_append(w->b, s, n) != 0)
        w->failed = true;
}

void jsonw_begin(jsonw *w, buf *b)
{
    *w = (jsonw){.b = b, .start = b->len, .first = true};
    raw(w, "{", 1);
}

int jsonw_end(jsonw *w)
{
    raw(w, "}", 1);
    if (!w->failed)
        return 0;
    w->b->len = w->start;
    if (w->b->data != NULL)
        w->b->data[w->start] = '\0';
    return -1;
}

/* The literal ,"key": without its comma for the first member. */
static void name(jsonw *w, const char *n, size_t len)
{
    if (w->first) {
        n++;
        len--;
        w->first = false;
    }
    raw(w, n, len);
}

/* '"' and '\\' escaped, control characters as \b \f \n \r \t or \u00XX
 * (jansson's upper-case hex), UTF-8 as is: jansson's compact escapes. */
void jsonw_string(jsonw *w, const char *str, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    const unsigned char *s = (const unsigned char *)str;
    /* Worst case: every byte a 6-byte \u escape; written in place. */
    if (w->failed || n > (SIZE_MAX - 2) / 6 || buf_reserve(w->b, 6 * n + 2) != 0) {
        w->failed = true;
        return;
    }
    char *o = w->b->data + w->b->len;
    *o++ = '"';
    for (size_t i = 0; i < n;) {
        unsigned c = s[i];
        if (c >= 0x80) {
            size_t k = validate_utf8_char(str + i, n - i);
            if (k == 0) {
                w->failed = true; /* json_string() refuses it too */
                return;
            }
            memcpy(o, s + i, k);
            o += k;
            i += k;
            continue;
        }
        i++;
        if (c == '"' || c == '\\') {
            *o++ = '\\';
            *o++ = (char)c;
        } else if (c >= 0x20) {
            *o++ = (char)c;
        } else {
            *o++ = '\\';
            switch (c) {
            case '\b':
                *o++ = 'b';
                break;
            case '\f':
                *o++ = 'f';
                break;
            case '\n':
                *o++ = 'n';
                break;
            case '\r':
                *o++ = 'r';
                break;
            case '\t':
                *o++ = 't';
                break;
            default:
                *o++ = 'u';
                *o++ = '0';
                *o++ = '0';
                *o++ = hex[c >> 4];
                *o++ = hex[c & 0xF];
            }
        }
    }
    *o++ = '"';
    *o = '\0';
    w->b->len = (size_t)(o - w->b->data);
}

void jsonw_str(jsonw *w, const char *n, size_t namelen, const char *value)
{
    if (value == NULL)
        return;
    name(w, n, namelen);
    jsonw_string(w, value, strlen(value));
}

void jsonw_strs(jsonw *w, const char *n, size_t namelen, const char *const *v, size_t count)
{
    name(w, n, namelen);
    raw(w, "[", 1);
    for (size_t i = 0; i < count; i++) {
        if (i > 0)
            raw(w, ",", 1);
        jsonw_string(w, v[i], strlen(v[i]));
    }
    raw(w, "]", 1);
}

void jsonw_int(jsonw *w, const char *n, size_t namelen, long long v)
{
    char num[24];
    size_t len = 0;
    unsigned long long u = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;
    do {
        num[sizeof num - 1 - len++] = (char)('0' + u % 10);
        u /= 10;
    } while (u > 0);
    if (v < 0)
        num[sizeof num - 1 - len++] = '-';
    name(w, n, namelen);
    raw(w, num + sizeof num - len, len);
}

void jsonw_bool(jsonw *w, const char *n, size_t namelen, bool v)
{
    name(w, n, namelen);
    if (v)
        raw(w, "true", 4);
    else
        raw(w, "false", 5);
}

void jsonw_json(jsonw *w, const char *n, size_t namelen, const json_t *v, bool empty_object)
{
    if (v == NULL) {
        if (empty_object) {
            name(w, n, namelen);
            raw(w, "{}", 2);
        }
        return;
    }
    name(w, n, namelen);
    if (w->failed)
        return;
    /* Dumped straight into the buffer; a second dump only when it did not fit. */
    buf *b = w->b;
    size_t room = b->cap > b->len ? b->cap - b->len - 1 : 0;
    size_t need = json_dumpb(v, room > 0 ? b->data + b->len : NULL, room, JSON_COMPACT);
    if (need == 0 || need > b->limit - b->len) {
        w->failed = true; /* not UTF-8, no memory (as json_dumps() fails), or past the limit */
        return;
    }
    if (need > room) {
        if (buf_reserve(b, need) != 0 ||
            json_dumpb(v, b->data + b->len, b->cap - b->len - 1, JSON_COMPACT) != need) {
            w->failed = true;
            return;
        }
    }
    b->len += need;
    b->data[b->len] = '\0';
}
