/*
 * console_session: the pure pieces of the console's session (docs/console.md).
 *
 * A session is a cookie holding a token of common/signedtoken's shape,
 *
 *     c1.<API key id, base64url>.<expiry, Unix seconds>.<signature, base64url>
 *
 * signed under HERALD_CONSOLE_SECRET.  Its CSRF token is derived, never
 * stored: the base64url HMAC-SHA-256 of "csrf" followed by the session
 * token, under the same secret, so a page that can read its own answers
 * (same origin) can learn it and a page of another origin cannot.  This
 * module mints and checks both, finds the cookie in a Cookie header and
 * writes the Set-Cookie value.  No I/O: the caller passes the clock.
 */
#ifndef HERALD_CONSOLE_SESSION_H
#define HERALD_CONSOLE_SESSION_H

#include "signedtoken.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CONSOLE_COOKIE "herald_console"
/* "c1." + base64url(20 digits) + "." + 20 digits + "." + 43 + NUL, rounded up */
#define CONSOLE_TOKEN_SIZE 128
#define CONSOLE_CSRF_SIZE  (SIGNEDTOKEN_SIG_LEN + 1)
/* A Set-Cookie value: the token and its attributes */
#define CONSOLE_SET_COOKIE_SIZE (CONSOLE_TOKEN_SIZE + 128)

/* Writes the session token of key_id expiring at expires_unix; -1 when out is too small. */
int console_session_mint(const void *secret, size_t secretlen, int64_t key_id, int64_t expires_unix,
                         char *out, size_t outlen) __attribute__((warn_unused_result));

/*
 * Checks token[0..len) at now_unix: on SIGNEDTOKEN_OK *key_id and
 * *expires_unix are the session's.  Anything but a positive decimal key id
 * is MALFORMED.
 */
signedtoken_result console_session_verify(const void *secret, size_t secretlen, const char *token,
                                          size_t len, int64_t now_unix, int64_t *key_id,
                                          int64_t *expires_unix)
    __attribute__((warn_unused_result));

/* The CSRF token of a session token into out[CONSOLE_CSRF_SIZE]. */
void console_session_csrf(const void *secret, size_t secretlen, const char *token, size_t len,
                          char out[CONSOLE_CSRF_SIZE]);

/* Whether presented (may be NULL) is the CSRF token of token[0..len), compared in constant time. */
bool console_session_csrf_ok(const void *secret, size_t secretlen, const char *token, size_t len,
                             const char *presented);

/*
 * The value of cookie name in a Cookie request header ("a=1; b=2"), and its
 * length; NULL when header is NULL or has no such cookie.  The first one
 * wins, as browsers send the most specific path first.
 */
const char *console_cookie_value(const char *header, const char *name, size_t *len);

/*
 * Writes the Set-Cookie value that stores token (NULL: clears the cookie)
 * for max_age_s seconds: Path=/, HttpOnly, SameSite=Strict, and Secure when
 * secure.  -1 when out is too small.
 */
int console_set_cookie(const char *token, int64_t max_age_s, bool secure, char *out, size_t outlen)
    __attribute__((warn_unused_result));

#endif
