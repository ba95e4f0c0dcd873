/*
 * tokens_api: POST /v1/users/{user_id}/tokens.
 */
#include "tokens_api.h"

#include "timeutil.h"
#include "usertoken.h"

#include <stdio.h>
#include <string.h>

/* ttl_seconds of the optional body into *ttl; -1 after answering 400. */
static int read_ttl(http_request *req, int64_t *ttl)
{
    size_t len = 0;
    json_t *body = NULL;
    const char *key;
    json_t *v;
    int rc = -1;
    *ttl = USERTOKEN_TTL_DEFAULT;
    (void)http_request_body(req, &len);
    if (len == 0)
        return 0;
    if (api_body_object(req, &body) != 0)
        return -1;
    json_object_foreach(body, key, v)
    {
        if (strcmp(key, "ttl_seconds") != 0) {
            api_bad_field(req, key, "unknown field: a token request takes ttl_seconds only");
            goto out;
        }
        if (!json_is_integer(v) || json_integer_value(v) < USERTOKEN_TTL_MIN ||
            json_integer_value(v) > USERTOKEN_TTL_MAX) {
            api_bad_field(req, "ttl_seconds", "ttl_seconds must be an integer from 60 to 86400");
            goto out;
        }
        *ttl = json_integer_value(v);
    }
    rc = 0;
out:
    json_decref(body);
    return rc;
}

void tokens_api_post(api_env *env, http_request *req, api_call *call, http_phase phase)
{
    (void)phase;
    char err[256], token[USERTOKEN_SIZE], expires[32];
    int64_t ttl = 0;
    if (env->user_token_secret == NULL) {
        http_respond_error(req, 503, "tokens_disabled",
                           "user tokens are not enabled: HERALD_USER_TOKEN_SECRET is not set",
                           NULL);
        return;
    }
    const char *id = api_user_id(req, call);
    if (id == NULL || read_ttl(req, &ttl) != 0)
        return;
    pg_conn *c = api_db(env, req);
    if (c == NULL)
        return;
    store_status st = store_user_exists(c, id, err, sizeof err);
    pgpool_release(env->pool, c);
    if (st != STORE_OK) {
        api_store_error(req, st, "user", err);
        return;
    }
    int64_t exp = timeutil_now_ms() / 1000 + ttl;
    if (usertoken_mint(env->user_token_secret, env->user_token_secret_len, id, exp, token,
                       sizeof token, err, sizeof err) != 0) {
        api_bad_field(req, "user_id", err);
        return;
    }
    http_respond_json(req, 201,
                      json_pack("{s:s,s:s,s:s}", "token", token, "user_id", id, "expires_at",
                                timeutil_format_rfc3339(exp * 1000, expires, sizeof expires)));
}
