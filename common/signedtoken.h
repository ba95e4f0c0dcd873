/*
 * signedtoken: the one shape of Herald's bearer tokens that carry their own
 * proof, shared by the user token (common/usertoken) and the unsubscribe
 * token (common/unsubtoken):
 *
 *     <version>.<payload, base64url>.<expiry, Unix seconds>.<signature, base64url>
 *
 * The signature is HMAC-SHA-256 (common/ids) under the deployment's secret
 * over the text before the last dot, the version included, so a token of
 * one kind never verifies as another even under the same secret.  It is
 * compared in constant time and checked before anything in the token is
 * believed: the expiry, then the payload.  What the payload means is the
 * caller's.  Pure logic: the caller passes the clock.
 */
#ifndef HERALD_SIGNEDTOKEN_H
#define HERALD_SIGNEDTOKEN_H

#include <stddef.h>
#include <stdint.h>

#define SIGNEDTOKEN_SIG_LEN    43 /* base64url of an HMAC-SHA-256 */
#define SIGNEDTOKEN_SECRET_MIN 32 /* bytes of a signing secret at least */

typedef enum {
    SIGNEDTOKEN_OK = 0,
    SIGNEDTOKEN_MALFORMED,     /* another version, wrong shape, bad base64url or expiry */
    SIGNEDTOKEN_BAD_SIGNATURE, /* not signed by this secret */
    SIGNEDTOKEN_EXPIRED,       /* signed, but its expiry has passed */
} signedtoken_result;

/* Whether secret may sign tokens: 0, or -1 with "expected ..." in err (a config check). */
int signedtoken_check_secret(const char *secret, char *err, size_t errlen);

/*
 * Writes the token of payload[0..len) expiring at expires_unix into out.
 * version is "v1." or the like, dot included.  -1 when expires_unix is
 * negative or out is too small.
 */
int signedtoken_mint(const char *version, const void *secret, size_t secretlen, const void *payload,
                     size_t len, int64_t expires_unix, char *out, size_t outlen)
    __attribute__((warn_unused_result));

/*
 * Checks token[0..len) at now_unix.  On SIGNEDTOKEN_OK and on
 * SIGNEDTOKEN_EXPIRED payload_out holds the decoded payload (*payload_len
 * bytes, then a NUL: payload_cap must leave room for it) and *expires_unix
 * the expiry, so a caller can still judge the payload of an expired token.
 * A payload that does not fit is MALFORMED.
 */
signedtoken_result signedtoken_verify(const char *version, const void *secret, size_t secretlen,
                                      const char *token, size_t len, int64_t now_unix,
                                      char *payload_out, size_t payload_cap, size_t *payload_len,
                                      int64_t *expires_unix) __attribute__((warn_unused_result));

#endif
