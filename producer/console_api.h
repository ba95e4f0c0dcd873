/*
 * console_api: the console's session (docs/console.md).
 *
 *   POST   /v1/console/session  {"api_key":"hk_..."}  -> 200
 *          {"csrf_token","expires_at","key_id"} and Set-Cookie herald_console;
 *          401 for a wrong key, 403 for a key that is not admin
 *   GET    /v1/console/session  (cookie)         -> 200, the same body
 *   DELETE /v1/console/session  (cookie + CSRF)  -> 204, the cookie cleared
 *
 * and the check of a session cookie that every route (api.c) and every
 * page (console.c) share: the token's signature and expiry, then whether
 * its API key is still active, asked of the database each time.  Routes
 * answer 404 while HERALD_CONSOLE_SECRET is unset.
 */
#ifndef HERALD_CONSOLE_API_H
#define HERALD_CONSOLE_API_H

#include "api.h"

typedef enum {
    CONSOLE_AUTH_OK = 0,
    CONSOLE_AUTH_NONE,        /* no session cookie (or the console is disabled) */
    CONSOLE_AUTH_INVALID,     /* forged, expired, or its key was revoked */
    CONSOLE_AUTH_UNAVAILABLE, /* the database could not tell: 503 */
} console_auth;

/* Whether req carries a session cookie at all (valid or not), with the console enabled. */
bool console_api_has_cookie(const api_env *env, http_request *req);

/*
 * Checks req's session cookie; on CONSOLE_AUTH_OK fills call's key_id,
 * scope, by_session, session and session_expires.  err says why not.
 */
console_auth console_api_authenticate(api_env *env, http_request *req, api_call *call, char *err,
                                      size_t errlen) __attribute__((warn_unused_result));

void console_api_login(api_env *env, http_request *req, api_call *call, http_phase phase);
void console_api_session(api_env *env, http_request *req, api_call *call, http_phase phase);
void console_api_logout(api_env *env, http_request *req, api_call *call, http_phase phase);

#endif
