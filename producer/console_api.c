/*
 * console_api: login, session, logout, and the session cookie's check.
 */
#include "console_api.h"

#include "apikey.h"
#include "timeutil.h"

#include <stdio.h>
#include <string.h>

bool console_api_has_cookie(const api_env *env, http_request *req)
{
    size_t len = 0;
    return env->console_secret != NULL &&
           console_cookie_value(http_request_header(req, "Cookie"), CONSOLE_COOKIE, &len) != NULL;
}

console_auth console_api_authenticate(api_env *env, http_request *req, api_call *call, char *err,
                                      size_t errlen)
{
    size_t len = 0;
    const char *token =
        env->console_secret == NULL
            ? NULL
            : console_cookie_value(http_request_header(req, "Cookie"), CONSOLE_COOKIE, &len);
    if (token == NULL) {
        snprintf(err, errlen, "no console session");
        return CONSOLE_AUTH_NONE;
    }
    int64_t key_id = 0, expires = 0;
    signedtoken_result sr =
        len >= CONSOLE_TOKEN_SIZE
            ? SIGNEDTOKEN_MALFORMED
            : console_session_verify(env->console_secret, env->console_secret_len, token, len,
                                     timeutil_now_ms() / 1000, &key_id, &expires);
    if (sr != SIGNEDTOKEN_OK) {
        snprintf(err, errlen, "%s",
                 sr == SIGNEDTOKEN_EXPIRED ? "the console session has expired"
                                           : "invalid console session");
        return CONSOLE_AUTH_INVALID;
    }
    apikey_scope scope;
    switch (auth_check_id(env->auth, key_id, &scope, err, errlen)) {
    case AUTH_OK:
        break;
    case AUTH_UNAVAILABLE:
        return CONSOLE_AUTH_UNAVAILABLE;
    case AUTH_MISSING:
    case AUTH_INVALID:
        return CONSOLE_AUTH_INVALID;
    }
    call->key_id = key_id;
    call->scope = scope;
    call->by_session = true;
    memcpy(call->session, token, len);
    call->session[len] = '\0';
    call->session_expires = expires;
    return CONSOLE_AUTH_OK;
}

/* Answers 200 with the session's CSRF token, expiry and key id (login and reload). */
static void respond_session(api_env *env, http_request *req, const char *token, int64_t expires,
                            int64_t key_id)
{
    char csrf[CONSOLE_CSRF_SIZE], at[TIMEUTIL_RFC3339_SIZE], kid[24];
    console_session_csrf(env->console_secret, env->console_secret_len, token, strlen(token), csrf);
    snprintf(kid, sizeof kid, "%lld", (long long)key_id);
    http_respond_json(req, 200,
                      json_pack("{s:s,s:s,s:s}", "csrf_token", csrf, "expires_at",
                                timeutil_format_rfc3339(expires * 1000, at, sizeof at), "key_id",
                                kid));
}

void console_api_login(api_env *env, http_request *req, api_call *call, http_phase phase)
{
    (void)call;
    (void)phase;
    json_t *body = NULL;
    char err[160], token[CONSOLE_TOKEN_SIZE], cookie[CONSOLE_SET_COOKIE_SIZE];
    if (api_body_object(req, &body) != 0)
        return;
    const char *k;
    json_t *v;
    json_object_foreach(body, k, v)
    {
        if (strcmp(k, "api_key") != 0) {
            api_bad_field(req, k, "unknown field: a login takes api_key only");
            goto out;
        }
    }
    const char *key = json_string_value(json_object_get(body, "api_key"));
    if (key == NULL) {
        api_bad_field(req, "api_key", "api_key must be a string: an admin API key");
        goto out;
    }
    int64_t key_id = 0;
    apikey_scope scope;
    switch (auth_check_key(env->auth, key, strlen(key), &key_id, &scope, err, sizeof err)) {
    case AUTH_OK:
        break;
    case AUTH_UNAVAILABLE:
        http_respond_retry(req, 503, "unavailable", err, 1);
        goto out;
    case AUTH_MISSING:
    case AUTH_INVALID:
        http_respond_error(req, 401, "unauthorized", err, "api_key");
        goto out;
    }
    if (scope != APIKEY_SCOPE_ADMIN) {
        http_respond_error(req, 403, "forbidden", "the console takes an admin API key", "api_key");
        goto out;
    }
    int64_t expires = timeutil_now_ms() / 1000 + env->console_ttl_s;
    if (console_session_mint(env->console_secret, env->console_secret_len, key_id, expires, token,
                             sizeof token) != 0 ||
        console_set_cookie(token, env->console_ttl_s, env->console_cookie_secure, cookie,
                           sizeof cookie) != 0) {
        http_respond_error(req, 500, "internal", "cannot mint a session", NULL);
        goto out;
    }
    char kid[24];
    snprintf(kid, sizeof kid, "%lld", (long long)key_id);
    http_request_log_field(req, "api_key_id", kid);
    http_add_header(req, "Set-Cookie", cookie);
    http_add_header(req, "Cache-Control", "no-store");
    respond_session(env, req, token, expires, key_id);
out:
    json_decref(body);
}

void console_api_session(api_env *env, http_request *req, api_call *call, http_phase phase)
{
    (void)phase;
    http_add_header(req, "Cache-Control", "no-store");
    respond_session(env, req, call->session, call->session_expires, call->key_id);
}

void console_api_logout(api_env *env, http_request *req, api_call *call, http_phase phase)
{
    (void)call;
    (void)phase;
    char cookie[CONSOLE_SET_COOKIE_SIZE];
    if (console_set_cookie(NULL, 0, env->console_cookie_secure, cookie, sizeof cookie) == 0)
        http_add_header(req, "Set-Cookie", cookie);
    http_respond_json(req, 204, NULL);
}
