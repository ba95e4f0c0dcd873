/*
 * base64: RFC 4648 decoding and encoding for the test providers.
 *
 * HTTP basic auth (Twilio) and SMTP AUTH PLAIN/LOGIN carry credentials in
 * base64; both servers decode them here.  Pure functions, no allocation
 * beyond the returned buffer.
 */
#ifndef PROVIDERS_BASE64_H
#define PROVIDERS_BASE64_H

#include <stddef.h>

/*
 * Decodes text (padding optional, whitespace rejected) into a new
 * NUL-terminated buffer the caller frees; *outlen gets the decoded length
 * (the data may contain NULs, as AUTH PLAIN does).  Returns NULL on invalid
 * input or allocation failure.
 */
unsigned char *base64_decode(const char *text, size_t len, size_t *outlen)
    __attribute__((warn_unused_result));

/* Encodes data into a new NUL-terminated string the caller frees, or NULL. */
char *base64_encode(const unsigned char *data, size_t len) __attribute__((warn_unused_result));

#endif
