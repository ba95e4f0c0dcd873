/*
 * httpframe: the HTTP/1.1 message framing the gateway enforces in front of
 * libmicrohttpd (RFC 9112), as a pure state machine over the bytes of one
 * direction of a connection.
 *
 * In request mode it reads a request head (request line and fields, at
 * most HTTPFRAME_HEAD_MAX bytes and HTTPFRAME_FIELDS_MAX fields), checks
 * it, then delimits the body by Content-Length or by chunked coding
 * (chunk-size lines, extensions, trailers).  Refused, with the status and
 * error code a client gets (docs/security.md):
 *   - a malformed request line, a bare CR, whitespace before the first
 *     field, obsolete line folding (a field line starting with SP or HTAB),
 *     a field name outside RFC 9110's token (whitespace before the colon),
 *     a control character in a value                        400 malformed_request
 *   - two Content-Length fields, one that is not a decimal number, a
 *     Transfer-Encoding other than exactly "chunked", both of them, two
 *     Authorization fields, no Host or two in HTTP/1.1     400 malformed_request
 *   - a Content-Length of more than 18 digits               413 payload_too_large
 *   - a head past the limits                                431 header_too_large
 *   - a chunk size that is not hex, has more than 15 digits, or a chunk
 *     not followed by CRLF, a malformed trailer             400 malformed_request
 * In response mode (what libmicrohttpd answers) it only finds where each
 * response ends: 1xx are interim, HEAD requests and 204/304 have no body,
 * else Content-Length, chunked, or until the connection closes.
 */
#ifndef HERALD_HTTPFRAME_H
#define HERALD_HTTPFRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HTTPFRAME_HEAD_MAX   8192
#define HTTPFRAME_FIELDS_MAX 100
/* A chunk-size line with its extensions. */
#define HTTPFRAME_CHUNK_LINE_MAX 1024

typedef enum {
    HTTPFRAME_HEAD = 0,    /* reading a head (nothing of it yet, or part) */
    HTTPFRAME_BODY,        /* a body of known length */
    HTTPFRAME_CHUNK_SIZE,  /* a chunk-size line */
    HTTPFRAME_CHUNK_DATA,  /* chunk data */
    HTTPFRAME_CHUNK_END,   /* the CRLF after chunk data */
    HTTPFRAME_TRAILER,     /* trailer fields after the last chunk */
    HTTPFRAME_UNTIL_CLOSE, /* response mode: the body ends with the connection */
    HTTPFRAME_DONE,        /* one message is complete */
    HTTPFRAME_ERROR,       /* refused: status, code and message say why */
} httpframe_state;

typedef struct httpframe {
    bool response;     /* response mode */
    bool head_request; /* response mode: the request being answered is a HEAD */
    httpframe_state state;
    char line[HTTPFRAME_HEAD_MAX]; /* the line being read */
    size_t line_len;
    size_t head_bytes;
    unsigned fields;
    bool started; /* the start line is in */
    uint64_t remaining;
    unsigned content_lengths, transfer_encodings, authorizations, hosts;
    bool http11;
    bool bad_length, long_length, bad_coding;
    uint64_t content_length;
    bool is_head; /* request mode: the method is HEAD */
    int status;   /* response mode: the status; error: the status to answer */
    const char *code;
    char message[160];
    char field[64];
} httpframe;

void httpframe_init(httpframe *f, bool response);
/* Starts the next message on the same connection (after HTTPFRAME_DONE). */
void httpframe_next(httpframe *f);
/*
 * Reads up to len bytes and returns how many belong to the current
 * message: all of them while it is incomplete, fewer when it completed
 * (state HTTPFRAME_DONE: the rest is the next message's).  On
 * HTTPFRAME_ERROR what was read must not be passed on.
 */
size_t httpframe_feed(httpframe *f, const char *data, size_t len);
/* In a message's head or between messages (no byte of the next one yet). */
bool httpframe_idle(const httpframe *f);

#endif
