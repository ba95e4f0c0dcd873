/*
 * receipts_dsn: see receipts_dsn.h.
 *
 * Header blocks are read where they lie, without copying the message:
 * a field is found by name and its value unfolded into a bounded buffer.
 * The report's parts are found by the boundary of its Content-Type.
 */
#include "receipts_dsn.h"

#include "error.h"
#include "ids.h"
#include "mailkey.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

typedef struct span {
    const char *p;
    size_t n;
} span;

/* The length of the line break at p (CRLF or LF), 0 when none. */
static size_t eol_len(const char *p, const char *end)
{
    if (p < end && *p == '\n')
        return 1;
    if (p + 1 < end && p[0] == '\r' && p[1] == '\n')
        return 2;
    return 0;
}

/* The end of the line starting at p (before its break). */
static const char *line_end(const char *p, const char *end)
{
    while (p < end && eol_len(p, end) == 0)
        p++;
    return p;
}

/*
 * Splits s at its first empty line into a header block and a body
 * (a block without an empty line is all headers).
 */
static void split_headers(span s, span *head, span *body)
{
    const char *p = s.p, *end = s.p + s.n;
    while (p < end) {
        const char *le = line_end(p, end);
        size_t br = eol_len(le, end);
        if (le == p) { /* empty line */
            *head = (span){s.p, (size_t)(p - s.p)};
            *body = (span){p + br, (size_t)(end - p - br)};
            return;
        }
        p = le + br;
    }
    *head = s;
    *body = (span){end, 0};
}

/*
 * The value of the first field name in the header block h, unfolded and
 * trimmed, into out.  Returns false when there is none.
 */
static bool header(span h, const char *name, char *out, size_t outlen)
{
    size_t nl = strlen(name), o = 0;
    const char *p = h.p, *end = h.p + h.n;
    bool found = false;
    while (p < end) {
        const char *le = line_end(p, end);
        bool cont = p < end && (*p == ' ' || *p == '\t');
        if (found && !cont)
            break;
        if (!found && !cont && (size_t)(le - p) > nl && strncasecmp(p, name, nl) == 0 &&
            p[nl] == ':') {
            found = true;
            p += nl + 1;
        }
        if (found && cont) { /* a fold: its blanks read as one space */
            while (p < le && (*p == ' ' || *p == '\t'))
                p++;
            if (o + 1 < outlen)
                out[o++] = ' ';
        }
        if (found)
            for (const char *q = p; q < le && o + 1 < outlen; q++)
                out[o++] = *q == '\t' ? ' ' : *q;
        p = le + eol_len(le, end);
    }
    if (!found)
        return false;
    out[o] = '\0';
    size_t start = 0;
    while (out[start] == ' ')
        start++;
    while (o > start && out[o - 1] == ' ')
        out[--o] = '\0';
    memmove(out, out + start, o - start + 1);
    return true;
}

/* Whether the Content-Type value ct is type (case-insensitive, parameters after ';'). */
static bool is_type(const char *ct, const char *type)
{
    size_t n = strlen(type);
    return strncasecmp(ct, type, n) == 0 && (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ');
}

/* The parameter name of a Content-Type value, unquoted, into out. */
static bool ct_param(const char *ct, const char *name, char *out, size_t outlen)
{
    size_t nl = strlen(name);
    for (const char *p = strchr(ct, ';'); p != NULL; p = strchr(p + 1, ';')) {
        const char *q = p + 1;
        while (*q == ' ')
            q++;
        if (strncasecmp(q, name, nl) != 0 || q[nl] != '=')
            continue;
        q += nl + 1;
        size_t o = 0;
        if (*q == '"') {
            for (q++; *q != '\0' && *q != '"' && o + 1 < outlen; q++)
                out[o++] = *q;
        } else {
            for (; *q != '\0' && *q != ';' && *q != ' ' && o + 1 < outlen; q++)
                out[o++] = *q;
        }
        out[o] = '\0';
        return o > 0;
    }
    return false;
}

/*
 * The next part of a multipart body after *pos, delimited by "--boundary"
 * lines.  Returns false at the closing delimiter or when there is no more.
 */
static bool next_part(span body, const char *boundary, const char **pos, span *part)
{
    size_t bl = strlen(boundary);
    const char *end = body.p + body.n, *p = *pos, *start = NULL;
    while (p < end) {
        const char *le = line_end(p, end);
        size_t br = eol_len(le, end);
        bool delim = (size_t)(le - p) >= bl + 2 && p[0] == '-' && p[1] == '-' &&
                     memcmp(p + 2, boundary, bl) == 0;
        if (delim) {
            if (start != NULL) {
                /* The line break before the delimiter belongs to it. */
                const char *stop = p;
                if (stop > start && stop[-1] == '\n')
                    stop--;
                if (stop > start && stop[-1] == '\r')
                    stop--;
                *part = (span){start, (size_t)(stop - start)};
                *pos = p;
                return true;
            }
            if ((size_t)(le - p) >= bl + 4 && p[bl + 2] == '-' && p[bl + 3] == '-')
                return false;
            start = le + br;
        }
        p = le + br;
    }
    return false;
}

/* The status of an RFC 3464 Action and Status. */
static void classify(const char *action, const char *status, receipt *r)
{
    r->status = NULL;
    r->bounce_kind = NULL;
    if (strcasecmp(action, "failed") == 0) {
        r->status = "bounced";
        r->bounce_kind = status[0] == '5'   ? "permanent"
                         : status[0] == '4' ? "transient"
                                            : "undetermined";
    } else if (strcasecmp(action, "delivered") == 0 || strcasecmp(action, "relayed") == 0 ||
               strcasecmp(action, "expanded") == 0) {
        r->status = "delivered";
    }
}

/* The address of a Final-Recipient "rfc822; a@b". */
static const char *after_type(const char *v)
{
    const char *semi = strchr(v, ';');
    if (semi == NULL)
        return v;
    for (semi++; *semi == ' ';)
        semi++;
    return semi;
}

typedef struct dsn_state {
    span status_part; /* message/delivery-status */
    char message_id[RECEIPTS_MESSAGE_MAX + 1];
    char key[ID_UUID_SIZE];
} dsn_state;

/* Looks at one part of the report (depth: nested multiparts are walked once). */
static void look_at(span part, dsn_state *st, int depth)
{
    span head, body;
    char ct[512] = "text/plain";
    split_headers(part, &head, &body);
    (void)header(head, "Content-Type", ct, sizeof ct);
    if (is_type(ct, "message/delivery-status") || is_type(ct, "message/global-delivery-status")) {
        if (st->status_part.p == NULL)
            st->status_part = body;
    } else if (is_type(ct, "message/rfc822") || is_type(ct, "text/rfc822-headers") ||
               is_type(ct, "message/global") || is_type(ct, "message/global-headers")) {
        span ohead, obody;
        char mid[RECEIPTS_MESSAGE_MAX + 1];
        split_headers(body, &ohead, &obody);
        if (st->message_id[0] == '\0' && header(ohead, "Message-ID", mid, sizeof mid)) {
            snprintf(st->message_id, sizeof st->message_id, "%s", mid);
            if (st->key[0] == '\0' && mailkey_from_message_id(mid, strlen(mid), st->key) != 0)
                st->key[0] = '\0';
        }
    } else if (depth == 0 && strncasecmp(ct, "multipart/", 10) == 0) {
        char boundary[128];
        const char *pos = body.p;
        span sub;
        if (ct_param(ct, "boundary", boundary, sizeof boundary))
            while (next_part(body, boundary, &pos, &sub))
                look_at(sub, st, depth + 1);
    }
}

int receipts_dsn(const char *msg, size_t len, const char *bounce, const char *recipient,
                 receipt *out, size_t max, size_t *n, char *err, size_t errlen)
{
    span all = {msg, len}, head, body, part;
    char ct[512], boundary[128], v[RECEIPTS_ADDRESS_MAX + 1];
    dsn_state st = {0};
    *n = 0;
    split_headers(all, &head, &body);
    if (!header(head, "Content-Type", ct, sizeof ct) || !is_type(ct, "multipart/report"))
        return error_set(err, errlen,
                         "not a delivery status notification: the message is "
                         "not multipart/report");
    if (!ct_param(ct, "boundary", boundary, sizeof boundary))
        return error_set(err, errlen, "the multipart/report has no boundary");

    /* The VERP address first: it survives an MTA that returns no headers. */
    static const char *const to_fields[] = {"Delivered-To", "X-Original-To", "To"};
    if (bounce != NULL && recipient != NULL &&
        mailkey_from_verp(bounce, recipient, strlen(recipient), st.key) != 0)
        st.key[0] = '\0';
    for (size_t i = 0; bounce != NULL && st.key[0] == '\0' && i < 3; i++)
        if (header(head, to_fields[i], v, sizeof v) &&
            mailkey_from_verp(bounce, v, strlen(v), st.key) != 0)
            st.key[0] = '\0';

    const char *pos = body.p;
    while (next_part(body, boundary, &pos, &part))
        look_at(part, &st, 0);
    if (st.status_part.p == NULL)
        return error_set(err, errlen, "the report has no message/delivery-status part");

    char digest[ID_SHA256_HEX_SIZE];
    id_sha256_hex(msg, len, digest);
    /* Per-message fields, then one block per recipient, blank lines apart. */
    const char *p = st.status_part.p, *end = st.status_part.p + st.status_part.n;
    bool first = true;
    while (p < end && *n < max) {
        while (p < end && eol_len(p, end) > 0)
            p += eol_len(p, end);
        const char *start = p;
        while (p < end) {
            const char *le = line_end(p, end);
            if (le == p)
                break;
            p = le + eol_len(le, end);
        }
        span group = {start, (size_t)(p - start)};
        if (group.n == 0)
            break;
        char action[32], status[32], rcpt[RECEIPTS_ADDRESS_MAX + 1];
        if (first && !header(group, "Action", action, sizeof action)) {
            first = false;
            continue;
        }
        first = false;
        if (!header(group, "Action", action, sizeof action) ||
            !header(group, "Final-Recipient", rcpt, sizeof rcpt))
            continue;
        if (!header(group, "Status", status, sizeof status))
            status[0] = '\0';
        receipt *r = &out[(*n)++];
        memset(r, 0, sizeof *r);
        classify(action, status, r);
        const char *addr = after_type(rcpt);
        snprintf(r->address, sizeof r->address, "%s", addr);
        /* The key too: the same text may reach two VERP addresses. */
        snprintf(r->receipt_id, sizeof r->receipt_id, "%s:%s:%s", digest, st.key, addr);
        memcpy(r->key, st.key, sizeof st.key);
        memcpy(r->message_id, st.message_id, sizeof st.message_id);
        char diag[RECEIPTS_REASON_MAX + 1];
        if (header(group, "Diagnostic-Code", diag, sizeof diag))
            snprintf(r->reason, sizeof r->reason, "%s", after_type(diag));
        else if (status[0] != '\0')
            snprintf(r->reason, sizeof r->reason, "status %s", status);
    }
    if (*n == 0)
        return error_set(err, errlen, "the delivery-status part names no recipient");
    return 0;
}
