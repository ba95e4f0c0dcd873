/*
 * usertoken: mint and verify "v1.<user>.<expiry>.<signature>", a
 * signedtoken whose payload is the user id.
 */
#include "usertoken.h"

#include "error.h"
#include "signedtoken.h"

#include <stdio.h>
#include <string.h>

#define VERSION     "v1."
#define VERSION_LEN 3

_Static_assert(USERTOKEN_SECRET_MIN == SIGNEDTOKEN_SECRET_MIN, "one rule for secrets");

int usertoken_check_secret(const char *secret, char *err, size_t errlen)
{
    return signedtoken_check_secret(secret, err, errlen);
}

int usertoken_mint(const char *secret, size_t secretlen, const char *user_id, int64_t expires_unix,
                   char *out, size_t outlen, char *err, size_t errlen)
{
    char why[160];
    size_t ulen = user_id != NULL ? strlen(user_id) : 0;
    if (user_id == NULL || validate_user_id(user_id, ulen, why, sizeof why) != 0)
        return error_set(err, errlen, "user_id: %s", user_id == NULL ? "required" : why);
    if (expires_unix < 0)
        return error_set(err, errlen, "the expiry is before 1970");
    if (signedtoken_mint(VERSION, secret, secretlen, user_id, ulen, expires_unix, out, outlen) != 0)
        return error_set(err, errlen, "the token buffer is too small");
    return 0;
}

usertoken_result usertoken_verify(const char *secret, size_t secretlen, const char *token,
                                  size_t len, int64_t now_unix, char *user_out,
                                  int64_t *expires_unix)
{
    size_t ulen = 0;
    int64_t expires = 0;
    char why[160];
    signedtoken_result r = signedtoken_verify(VERSION, secret, secretlen, token, len, now_unix,
                                              user_out, VALIDATE_USER_ID_MAX + 1, &ulen, &expires);
    /* Signed by us, so a valid user unless the minting side had a bug. */
    if ((r == SIGNEDTOKEN_OK || r == SIGNEDTOKEN_EXPIRED) &&
        (memchr(user_out, '\0', ulen) != NULL ||
         validate_user_id(user_out, ulen, why, sizeof why) != 0))
        return USERTOKEN_MALFORMED;
    switch (r) {
    case SIGNEDTOKEN_OK:
        *expires_unix = expires;
        return USERTOKEN_OK;
    case SIGNEDTOKEN_EXPIRED:
        return USERTOKEN_EXPIRED;
    case SIGNEDTOKEN_BAD_SIGNATURE:
        return USERTOKEN_BAD_SIGNATURE;
    case SIGNEDTOKEN_MALFORMED:
        break;
    }
    return USERTOKEN_MALFORMED;
}

int usertoken_looks_like(const char *token, size_t len)
{
    return token != NULL && len > VERSION_LEN && memcmp(token, VERSION, VERSION_LEN) == 0;
}

const char *usertoken_result_name(usertoken_result r)
{
    switch (r) {
    case USERTOKEN_OK:
        return "ok";
    case USERTOKEN_MALFORMED:
        return "malformed";
    case USERTOKEN_BAD_SIGNATURE:
        return "bad signature";
    case USERTOKEN_EXPIRED:
        return "expired";
    }
    return "?";
}
