/*
 * users_api: PUT/GET/DELETE of users and of their preferences.
 */
#include "users_api.h"

#include "bodies.h"
#include "validate.h"

#include <stdio.h>
#include <string.h>

typedef int (*body_check_fn)(const json_t *body, bodies_error *e);

/* Parses and checks the body; NULL after answering 400. */
static json_t *checked_body(http_request *req, body_check_fn check)
{
    json_t *body = NULL;
    bodies_error e;
    if (api_body_object(req, &body) != 0)
        return NULL;
    if (check(body, &e) != 0) {
        json_decref(body);
        api_bad_field(req, e.field, e.message);
        return NULL;
    }
    return body;
}

typedef store_status (*user_put_fn)(pg_conn *c, const char *user_id, const json_t *body,
                                    json_t **out, char *err, size_t errlen);

static void put_doc(api_env *env, http_request *req, api_call *call, body_check_fn check,
                    user_put_fn put)
{
    json_t *body = NULL, *doc = NULL;
    pg_conn *c = NULL;
    char err[256];
    const char *id = api_user_id(req, call);
    if (id == NULL)
        goto out;
    if ((body = checked_body(req, check)) == NULL)
        goto out;
    if ((c = api_db(env, req)) == NULL)
        goto out;
    store_status st = put(c, id, body, &doc, err, sizeof err);
    if (st != STORE_OK) {
        api_store_error(req, st, "user", err);
        goto out;
    }
    http_respond_json(req, 200, doc);
out:
    pgpool_release(env->pool, c);
    json_decref(body);
}

void users_api_put(api_env *env, http_request *req, api_call *call, http_phase phase)
{
    (void)phase;
    put_doc(env, req, call, bodies_check_user, store_user_put);
}

void users_api_get(api_env *env, http_request *req, api_call *call, http_phase phase)
{
    (void)phase;
    api_user_get(env, req, call, store_user_get);
}

void users_api_delete(api_env *env, http_request *req, api_call *call, http_phase phase)
{
    (void)phase;
    char err[256];
    const char *id = api_user_id(req, call);
    if (id == NULL)
        return;
    pg_conn *c = api_db(env, req);
    if (c == NULL)
        return;
    store_status st = store_user_delete(c, id, err, sizeof err);
    pgpool_release(env->pool, c);
    if (st != STORE_OK) {
        api_store_error(req, st, "user", err);
        return;
    }
    http_respond_json(req, 204, NULL);
}

void users_api_prefs_put(api_env *env, http_request *req, api_call *call, http_phase phase)
{
    (void)phase;
    put_doc(env, req, call, bodies_check_preferences, store_prefs_put);
}

void users_api_prefs_get(api_env *env, http_request *req, api_call *call, http_phase phase)
{
    (void)phase;
    api_user_get(env, req, call, store_prefs_get);
}
