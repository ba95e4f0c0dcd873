/*
 * httphead: the request-head checks the gateway makes in front of
 * libmicrohttpd, against request smuggling (RFC 9112 6.1-6.3).
 *
 * The fields of one request head are fed one by one (as the server parsed
 * them), then httphead_finish() says whether the head is acceptable.  A
 * refused head gets a 400 and its connection is closed: what follows it on
 * the connection is never read as a request.  Refused:
 *   - more than one Content-Length, or one that is not a decimal number of
 *     at most 18 digits ("-1", "+5", "1e3", "5, 5");
 *   - Transfer-Encoding together with Content-Length;
 *   - a Transfer-Encoding other than exactly "chunked" (an unknown coding,
 *     "xchunked", or "chunked" that is not the final coding), or two of them;
 *   - a field name with whitespace or another character outside RFC 9110's
 *     token (whitespace before the colon), and a value with a control
 *     character (what is left of obsolete line folding);
 *   - more than one Authorization.
 */
#ifndef HERALD_HTTPHEAD_H
#define HERALD_HTTPHEAD_H
#include <stdbool.h>
#include <stddef.h>

typedef struct httphead {
    unsigned content_lengths;
    unsigned transfer_encodings;
    unsigned authorizations;
    bool bad_length;
    bool bad_coding;
    const char *bad_field; /* the first malformed field name, or NULL */
    const char *folded;    /* the first field whose value holds a control character */
} httphead;

void httphead_init(httphead *h);
/* One field as parsed; name and value must outlive httphead_finish(). */
void httphead_field(httphead *h, const char *name, const char *value);
/* 0 when acceptable; else -1 with the error's message and field in msg. */
int httphead_finish(const httphead *h, char *msg, size_t msglen, const char **field);

#endif
