/*
 * hsig: the Herald-Signature header, with which Herald signs the status
 * webhooks it sends and checks the callbacks of the generic HTTP provider
 * (docs/receipts.md):
 *
 *     Herald-Signature: t=<Unix milliseconds>,v1=<hex HMAC-SHA-256>
 *
 * The MAC is HMAC-SHA-256 (common/ids) under the endpoint's secret over the
 * decimal t, a dot and the raw body.  A header may carry several v1 values
 * (a sender rotating its secret signs with both); one match is enough.
 * The timestamp bounds replays: verification refuses a t further than the
 * tolerance from now, either way.  Pure logic: the caller passes the clock.
 */
#ifndef HERALD_HSIG_H
#define HERALD_HSIG_H

#include <stddef.h>
#include <stdint.h>

#define HSIG_HEADER       "Herald-Signature"
#define HSIG_SIZE         96 /* "t=" 13+ digits ",v1=" 64 hex, NUL: one signature */
#define HSIG_TOLERANCE_MS (5 * 60 * 1000)

typedef enum {
    HSIG_OK = 0,
    HSIG_MALFORMED, /* no t, a bad t, no v1, or a v1 that is not 64 hex digits */
    HSIG_EXPIRED,   /* t outside the tolerance */
    HSIG_MISMATCH,  /* well formed, but no v1 is the body's MAC */
} hsig_result;

/* Writes "t=<t_ms>,v1=<mac>" into out; -1 if outlen is too small. */
int hsig_sign(const void *secret, size_t secretlen, int64_t t_ms, const void *body, size_t len,
              char *out, size_t outlen) __attribute__((warn_unused_result));

/* Checks header (the value only) against body under secret at now_ms. */
hsig_result hsig_verify(const char *header, const void *secret, size_t secretlen, const void *body,
                        size_t len, int64_t now_ms, int64_t tolerance_ms);

const char *hsig_result_name(hsig_result r);

#endif
