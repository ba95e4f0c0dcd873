/*
 * mime: the Internet Message Format of one Herald email (RFC 5322 with
 * MIME, RFC 2045-2047), built in memory for libcurl to upload over SMTP.
 *
 * A Herald email is a single text/plain part in UTF-8.  Headers that are
 * not plain ASCII (the subject, a display name) become RFC 2047 encoded
 * words ("=?UTF-8?B?...?="), each at most 75 characters and never splitting
 * a UTF-8 sequence, folded onto continuation lines.  The body travels as
 * 7bit when it is ASCII with short lines and as quoted-printable otherwise:
 * quoted-printable passes every relay (no 8BITMIME needed) and keeps mostly
 * Latin text readable.  Line ends are normalised to CRLF.  Dot-stuffing is
 * left to libcurl, which does it while uploading.  An email may carry
 * List-Unsubscribe links (RFC 2369) and, with an http(s) link, the
 * List-Unsubscribe-Post header of one-click unsubscribe (RFC 8058).
 *
 * Pure: no I/O, no clock (the caller passes the Date).
 */
#ifndef HERALD_CHANNELS_MIME_H
#define HERALD_CHANNELS_MIME_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

typedef struct mime_message {
    const char *from;       /* "addr@host" or "Name <addr@host>"; Name may be UTF-8 */
    const char *to;         /* "addr@host" */
    const char *subject;    /* UTF-8, may be NULL or "" */
    const char *body;       /* UTF-8 */
    const char *message_id; /* the id-left part; "@herald" is appended */
    int64_t date_ms;        /* the Date header, ms since the epoch */
    /* List-Unsubscribe links (RFC 2369), each NULL when absent; an http(s)
     * one adds List-Unsubscribe-Post for one-click (RFC 8058). */
    const char *unsubscribe_https;
    const char *unsubscribe_mailto;
} mime_message;

/*
 * Builds the whole message (headers, blank line, body) into out.  Fails
 * when an address contains a line break or angle brackets where none
 * belong, or the body is not valid UTF-8.
 */
int mime_build(const mime_message *m, buf *out, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/*
 * Appends the List-Unsubscribe header of the links (NULL-terminated) and
 * CRLF: each link in angle brackets, a comma
 * between them, folded before a link whenever the line would pass 78
 * characters.  A link is never broken, so a line holds at most one link
 * and its punctuation; -1 when a link has characters a header cannot
 * carry or makes a line longer than RFC 5322's 998.
 */
int mime_list_unsubscribe(buf *out, const char *const *links) __attribute__((warn_unused_result));

/*
 * Appends the value of a header as it must appear after "Name: ":
 * unchanged when it is printable ASCII without "=?", otherwise as folded
 * RFC 2047 B-encoded words.  used is how many characters of the line the
 * header name already takes, to keep the first line within 78.
 */
int mime_encode_header(buf *out, const char *value, size_t used)
    __attribute__((warn_unused_result));

/* Appends s as quoted-printable (RFC 2045 6.7), lines of at most 76, CRLF ends. */
int mime_encode_qp(buf *out, const char *s, size_t len) __attribute__((warn_unused_result));

/* Appends base64 (RFC 4648) of p[0..n) without line breaks. */
int mime_base64(buf *out, const void *p, size_t n) __attribute__((warn_unused_result));

/* "Fri, 27 Nov 2026 22:10:55 +0000" into out (at least 32 bytes). */
char *mime_format_date(int64_t ms, char *out, size_t outlen);

/*
 * Writes a Message-ID left part from an idempotency key: the key itself
 * when it is an RFC 5322 dot-atom, otherwise "h" + hex of its bytes, so the
 * same key always gives the same Message-ID.  Returns out.
 */
char *mime_message_id(const char *key, char *out, size_t outlen);

#endif
