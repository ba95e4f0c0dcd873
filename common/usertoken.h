/*
 * usertoken: the short-lived token that lets one user's browser or app
 * read and mark that user's inbox (docs/inapp.md), without holding a
 * service API key.
 *
 *     v1.<user id, base64url>.<expiry, Unix seconds>.<signature, base64url>
 *
 * The signature is HMAC-SHA-256 under the deployment's secret over the
 * text before the last dot, compared in constant time (common/signedtoken
 * owns the shape and the signing).  Pure
 * logic: the caller passes the clock, so tests need no sleeping.  Used by
 * the gateway (verify, mint) and heraldctl token (mint).
 */
#ifndef HERALD_USERTOKEN_H
#define HERALD_USERTOKEN_H

#include "validate.h"

#include <stddef.h>
#include <stdint.h>

#define USERTOKEN_SECRET_MIN  32 /* bytes of HERALD_USER_TOKEN_SECRET at least */
#define USERTOKEN_TTL_MIN     60
#define USERTOKEN_TTL_MAX     86400
#define USERTOKEN_TTL_DEFAULT 3600
/* "v1." + base64url(128 bytes) + "." + 20 digits + "." + 43 + NUL */
#define USERTOKEN_SIZE 256

typedef enum {
    USERTOKEN_OK = 0,
    USERTOKEN_MALFORMED,     /* not v1, wrong shape, bad base64url or user id */
    USERTOKEN_BAD_SIGNATURE, /* not signed by this secret */
    USERTOKEN_EXPIRED,       /* signed, but its expiry has passed */
} usertoken_result;

/* Whether secret may sign tokens: 0, or -1 with "expected ..." in err (a config check). */
int usertoken_check_secret(const char *secret, char *err, size_t errlen);

/*
 * Writes the token of user_id expiring at expires_unix into out
 * (USERTOKEN_SIZE is enough).  -1 with err set: "user_id: <problem>" when
 * user_id is not a valid user id, else why (out too small, ...).
 */
int usertoken_mint(const char *secret, size_t secretlen, const char *user_id, int64_t expires_unix,
                   char *out, size_t outlen, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/*
 * Checks token[0..len) at now_unix.  On USERTOKEN_OK user_out
 * (VALIDATE_USER_ID_MAX + 1 bytes) holds the user id and *expires_unix the
 * expiry.  The signature is checked before the expiry, so an expired
 * forgery reads as a forgery.
 */
usertoken_result usertoken_verify(const char *secret, size_t secretlen, const char *token,
                                  size_t len, int64_t now_unix, char *user_out,
                                  int64_t *expires_unix) __attribute__((warn_unused_result));

/* Whether an Authorization bearer value is shaped like a user token ("v1."). */
int usertoken_looks_like(const char *token, size_t len);

const char *usertoken_result_name(usertoken_result r);

#endif
