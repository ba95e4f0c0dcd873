/*
 * mime: see mime.h.
 */
#include "mime.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "error.h"
#include "mailkey.h"
#include "timeutil.h"
#include "validate.h"

#define MIME_MAX_LINE 76 /* RFC 2045 limit for encoded lines */
#define MIME_WORD_BYTES                                                                            \
    39 /* raw bytes per encoded word: 52 base64 chars + 12 = 64, so even                           \
        * after "Subject: " a line stays within 76 */

int mime_base64(buf *out, const void *p, size_t n)
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const unsigned char *s = p;
    char quad[4];
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)s[i] << 16;
        if (i + 1 < n)
            v |= (unsigned)s[i + 1] << 8;
        if (i + 2 < n)
            v |= s[i + 2];
        quad[0] = tbl[(v >> 18) & 63];
        quad[1] = tbl[(v >> 12) & 63];
        quad[2] = i + 1 < n ? tbl[(v >> 6) & 63] : '=';
        quad[3] = i + 2 < n ? tbl[v & 63] : '=';
        if (buf_append(out, quad, 4) != 0)
            return -1;
    }
    return 0;
}

/* Printable ASCII, no "=?" that a reader could take for an encoded word. */
static bool header_is_plain(const char *s)
{
    for (const char *c = s; *c; c++) {
        if ((unsigned char)*c < 0x20 || (unsigned char)*c > 0x7e)
            return false;
        if (c[0] == '=' && c[1] == '?')
            return false;
    }
    return true;
}

/* Length of the UTF-8 sequence starting with lead byte c (1 for stray bytes). */
static size_t utf8_seq_len(unsigned char c)
{
    if (c >= 0xf0)
        return 4;
    if (c >= 0xe0)
        return 3;
    if (c >= 0xc0)
        return 2;
    return 1;
}

int mime_encode_header(buf *out, const char *value, size_t used)
{
    if (header_is_plain(value))
        return buf_append_str(out, value);
    (void)used; /* a word of <= 64 characters after a name of <= 12 fits 76 */
    size_t len = strlen(value);
    size_t i = 0;
    bool first = true;
    while (i < len) {
        /* Take whole UTF-8 sequences up to MIME_WORD_BYTES bytes. */
        size_t j = i;
        while (j < len) {
            size_t sl = utf8_seq_len((unsigned char)value[j]);
            if (j + sl > len)
                sl = len - j;
            if (j + sl - i > MIME_WORD_BYTES && j > i)
                break;
            j += sl;
        }
        if (!first && buf_append_str(out, "\r\n ") != 0)
            return -1;
        if (buf_append_str(out, "=?UTF-8?B?") != 0 || mime_base64(out, value + i, j - i) != 0 ||
            buf_append_str(out, "?=") != 0)
            return -1;
        first = false;
        i = j;
    }
    return 0;
}

int mime_encode_qp(buf *out, const char *s, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t col = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\r' && i + 1 < len && s[i + 1] == '\n')
            continue; /* the \n that follows writes the line end */
        if (c == '\n' || c == '\r') {
            if (buf_append(out, "\r\n", 2) != 0)
                return -1;
            col = 0;
            continue;
        }
        /* Spaces and tabs are literal except before a line end (RFC 2045 rule 3). */
        bool at_eol = i + 1 == len || s[i + 1] == '\n' || s[i + 1] == '\r';
        bool literal = (c >= 33 && c <= 126 && c != '=') || ((c == ' ' || c == '\t') && !at_eol);
        /* A "." alone at a line start is left to libcurl's dot-stuffing. */
        size_t w = literal ? 1 : 3;
        if (col + w > MIME_MAX_LINE - 1) {
            if (buf_append(out, "=\r\n", 3) != 0)
                return -1;
            col = 0;
        }
        if (literal) {
            if (buf_append(out, &c, 1) != 0)
                return -1;
        } else {
            char enc[3] = {'=', hex[c >> 4], hex[c & 15]};
            if (buf_append(out, enc, 3) != 0)
                return -1;
        }
        col += w;
    }
    return 0;
}

/* True when the body can go as 7bit: ASCII, no NUL or lone CR, lines <= 998. */
static bool body_is_7bit(const char *s, size_t len)
{
    size_t col = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == 0 || c > 0x7e || (c == '\r' && (i + 1 == len || s[i + 1] != '\n')))
            return false;
        if (c == '\n') {
            col = 0;
            continue;
        }
        if (++col > 998)
            return false;
    }
    return true;
}

/* Copies the body a line at a time, each line end as CRLF (every CR is
 * dropped: body_is_7bit() admits them only before LF). */
static int append_body_7bit(buf *out, const char *s, size_t len)
{
    const char *end = s + len;
    while (s < end) {
        const char *nl = memchr(s, '\n', (size_t)(end - s));
        const char *stop = nl != NULL ? nl : end;
        size_t n = (size_t)(stop - s);
        if (n > 0 && stop[-1] == '\r')
            n--;
        if (buf_append(out, s, n) != 0)
            return -1;
        if (nl == NULL)
            break;
        if (buf_append(out, "\r\n", 2) != 0)
            return -1;
        s = nl + 1;
    }
    return 0;
}

char *mime_format_date(int64_t ms, char *out, size_t outlen)
{
    static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    int64_t day = timeutil_floor_div(ms, 86400000);
    int64_t sec = (ms - day * 86400000) / 1000; /* 0..86399 */
    int64_t y;
    int mo, d;
    timeutil_civil_from_days(day, &y, &mo, &d);
    if (mo < 1 || mo > 12)
        mo = 1;
    snprintf(out, outlen, "%s, %02d %s %04lld %02d:%02d:%02d +0000", days[timeutil_weekday(day)], d,
             months[mo - 1], (long long)y, (int)(sec / 3600), (int)(sec / 60 % 60),
             (int)(sec % 60));
    return out;
}

static bool is_atext(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

char *mime_message_id(const char *key, char *out, size_t outlen)
{
    bool atom = *key != '\0' && key[0] != '.';
    for (const char *c = key; atom && *c; c++) {
        if (*c == '.')
            atom = c[1] != '.' && c[1] != '\0';
        else
            atom = is_atext((unsigned char)*c);
    }
    if (atom) {
        snprintf(out, outlen, "%s", key);
        return out;
    }
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    if (outlen)
        out[o++] = 'h';
    for (const unsigned char *c = (const unsigned char *)key; *c && o + 3 <= outlen; c++) {
        out[o++] = hex[*c >> 4];
        out[o++] = hex[*c & 15];
    }
    if (outlen)
        out[o < outlen ? o : outlen - 1] = '\0';
    return out;
}

static bool has_line_break(const char *s)
{
    return strpbrk(s, "\r\n") != NULL;
}

#define HEADER_LINE_SOFT 78  /* RFC 5322 2.1.1: SHOULD */
#define HEADER_LINE_HARD 998 /* and MUST */

int mime_list_unsubscribe(buf *out, const char *const *links)
{
    static const char name[] = "List-Unsubscribe:";
    size_t col = sizeof name - 1;
    if (buf_append_str(out, name) != 0)
        return -1;
    for (size_t i = 0; links[i] != NULL; i++) {
        const char *l = links[i];
        size_t n = strlen(l);
        /* RFC 2369: a URI between angle brackets, so no space, CTL or
         * bracket inside it, and no encoding a reader would have to undo. */
        for (const char *c = l; *c; c++)
            if (*c <= ' ' || *c > '~' || *c == '<' || *c == '>')
                return -1;
        bool last = links[i + 1] == NULL;
        size_t w = 1 + n + 2 + (last ? 0 : 1); /* " <" link ">" and "," */
        /* Fold (CRLF before the space) rather than pass the soft limit;
         * the first link stays on the name's line, where folding gains nothing. */
        if (i > 0 && col + w > HEADER_LINE_SOFT) {
            if (buf_append(out, "\r\n", 2) != 0)
                return -1;
            col = 0;
        }
        if (col + w > HEADER_LINE_HARD)
            return -1;
        if (buf_printf(out, " <%s>%s", l, last ? "" : ",") != 0)
            return -1;
        col += w;
    }
    return buf_append(out, "\r\n", 2);
}

/* From: "addr" or "Display Name <addr>", the name encoded or quoted as needed. */
static int append_mailbox(buf *out, const char *mbox, char *err, size_t errlen)
{
    const char *lt = strchr(mbox, '<');
    if (lt == NULL) {
        if (strchr(mbox, '>') || strchr(mbox, ' ')) {
            error_set(err, errlen, "address must be addr@host or Name <addr@host>");
            return -1;
        }
        return buf_append_str(out, mbox);
    }
    const char *gt = strchr(lt, '>');
    if (gt == NULL || gt[1] != '\0' || strchr(lt + 1, '<')) {
        error_set(err, errlen, "address must be addr@host or Name <addr@host>");
        return -1;
    }
    size_t nlen = (size_t)(lt - mbox);
    while (nlen && mbox[nlen - 1] == ' ')
        nlen--;
    char name[512];
    if (nlen >= sizeof name) {
        error_set(err, errlen, "display name too long");
        return -1;
    }
    memcpy(name, mbox, nlen);
    name[nlen] = '\0';
    if (nlen) {
        bool plain = header_is_plain(name);
        bool atoms = plain;
        for (size_t i = 0; atoms && i < nlen; i++)
            atoms = is_atext((unsigned char)name[i]) || name[i] == ' ';
        if (atoms) {
            if (buf_append_str(out, name) != 0)
                return -1;
        } else if (plain) {
            if (buf_append(out, "\"", 1) != 0)
                return -1;
            for (size_t i = 0; i < nlen; i++) {
                if ((name[i] == '"' || name[i] == '\\') && buf_append(out, "\\", 1) != 0)
                    return -1;
                if (buf_append(out, &name[i], 1) != 0)
                    return -1;
            }
            if (buf_append(out, "\"", 1) != 0)
                return -1;
        } else if (mime_encode_header(out, name, 6) != 0) {
            return -1;
        }
        if (buf_append(out, " ", 1) != 0)
            return -1;
    }
    return buf_append(out, lt, (size_t)(gt - lt) + 1);
}

int mime_build(const mime_message *m, buf *out, char *err, size_t errlen)
{
    char date[40];
    char mid[600];
    const char *subject = m->subject ? m->subject : "";
    const char *body = m->body ? m->body : "";
    size_t blen = strlen(body);

    if (err && errlen)
        err[0] = '\0';
    if (m->from == NULL || m->to == NULL || has_line_break(m->from) || has_line_break(m->to) ||
        strpbrk(m->to, "<> ") != NULL || strchr(m->to, '@') == NULL) {
        error_set(err, errlen, "from/to must be single addresses without line breaks");
        return -1;
    }
    if (!validate_utf8(body, blen) || !validate_utf8(subject, strlen(subject))) {
        error_set(err, errlen, "subject and body must be UTF-8");
        return -1;
    }
    mime_format_date(m->date_ms, date, sizeof date);
    mime_message_id(m->message_id ? m->message_id : "", mid, sizeof mid);
    bool seven = body_is_7bit(body, blen);

    const char *links[3] = {NULL, NULL, NULL};
    size_t nlinks = 0;
    if (m->unsubscribe_https != NULL)
        links[nlinks++] = m->unsubscribe_https;
    if (m->unsubscribe_mailto != NULL)
        links[nlinks++] = m->unsubscribe_mailto;

    if (buf_append_str(out, "From: ") != 0 || append_mailbox(out, m->from, err, errlen) != 0 ||
        buf_printf(out, "\r\nTo: <%s>\r\nSubject: ", m->to) != 0 ||
        mime_encode_header(out, subject, 9) != 0 ||
        buf_printf(out, "\r\nDate: %s\r\nMessage-ID: <%s@" MAILKEY_MESSAGE_ID_DOMAIN ">\r\n", date,
                   mid) != 0)
        goto toolong;
    if (nlinks > 0 && mime_list_unsubscribe(out, links) != 0) {
        error_set(err, errlen, "a List-Unsubscribe link cannot go into a header");
        return -1;
    }
    /* RFC 8058: one-click is a POST to the https link. */
    if (m->unsubscribe_https != NULL &&
        buf_append_str(out, "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n") != 0)
        goto toolong;
    if (buf_printf(out,
                   "MIME-Version: 1.0\r\n"
                   "Content-Type: text/plain; charset=UTF-8\r\n"
                   "Content-Transfer-Encoding: %s\r\n\r\n",
                   seven ? "7bit" : "quoted-printable") != 0)
        goto toolong;
    if ((seven ? append_body_7bit(out, body, blen) : mime_encode_qp(out, body, blen)) != 0)
        goto toolong;
    if ((out->len < 2 || memcmp(out->data + out->len - 2, "\r\n", 2) != 0) &&
        buf_append(out, "\r\n", 2) != 0)
        goto toolong;
    return 0;
toolong:
    if (err && errlen && err[0] == '\0')
        error_set(err, errlen, "message too large");
    return -1;
}
