/*
 * unsubtoken: the token of a one-click unsubscribe link (RFC 8058,
 * docs/channels.md "List-Unsubscribe"): it names one user, one category
 * and one channel, and proves that Herald wrote the link.
 *
 *     u1.<"user|category|channel", base64url>.<expiry, Unix seconds>.<signature>
 *
 * A common/signedtoken under HERALD_UNSUBSCRIBE_SECRET (checked with
 * signedtoken_check_secret: at least 32 bytes); its own version
 * "u1." keeps it apart from user tokens even under one secret.  The email
 * worker mints it into List-Unsubscribe, the gateway verifies it on
 * /v1/unsubscribe.  The separator "|" occurs in no user id, category or
 * channel name.  Pure logic: the caller passes the clock.
 */
#ifndef HERALD_UNSUBTOKEN_H
#define HERALD_UNSUBTOKEN_H

#include "delivery.h"
#include "signedtoken.h"
#include "validate.h"

#include <stddef.h>
#include <stdint.h>

/* "u1." + base64url(199 bytes) + "." + 18 digits + "." + 43 + NUL */
#define UNSUBTOKEN_SIZE 384

typedef struct unsubtoken {
    char user_id[VALIDATE_USER_ID_MAX + 1];
    char category[VALIDATE_CATEGORY_MAX + 1];
    delivery_channel channel;
    int64_t expires_unix;
} unsubtoken;

/*
 * Writes the token of user_id, category and channel expiring at
 * expires_unix into out (UNSUBTOKEN_SIZE is enough).  -1 with err set when
 * a name is not valid or out is too small.
 */
int unsubtoken_mint(const void *secret, size_t secretlen, const char *user_id, const char *category,
                    delivery_channel channel, int64_t expires_unix, char *out, size_t outlen,
                    char *err, size_t errlen) __attribute__((warn_unused_result));

/*
 * Checks token[0..len) at now_unix into *out.  *out is filled on
 * SIGNEDTOKEN_OK and on SIGNEDTOKEN_EXPIRED (so an expired link's page can
 * say what it was for); a signed payload that is not three valid names is
 * SIGNEDTOKEN_MALFORMED.
 */
signedtoken_result unsubtoken_verify(const void *secret, size_t secretlen, const char *token,
                                     size_t len, int64_t now_unix, unsubtoken *out)
    __attribute__((warn_unused_result));

#endif
