/*
 * topics_api: subscribe and unsubscribe users to broadcast topics.
 */
#include "topics_api.h"

#include "validate.h"

#include <stdio.h>
#include <string.h>

typedef store_status (*sub_fn)(pg_conn *c, const char *topic, const char *user_id, char *err,
                               size_t errlen);

static void subscription(api_env *env, http_request *req, api_call *call, sub_fn fn)
{
    const char *topic = router_param(&call->params, "topic");
    const char *user = router_param(&call->params, "user_id");
    char why[160], msg[200], err[256];
    if (topic == NULL ||
        validate_name(topic, strlen(topic), VALIDATE_NAME_MAX, why, sizeof why) != 0) {
        snprintf(msg, sizeof msg, "topic %s", topic == NULL ? "is missing" : why);
        api_bad_field(req, "topic", msg);
        return;
    }
    if (user == NULL || validate_user_id(user, strlen(user), why, sizeof why) != 0) {
        snprintf(msg, sizeof msg, "user_id %s", user == NULL ? "is missing" : why);
        api_bad_field(req, "user_id", msg);
        return;
    }
    pg_conn *c = api_db(env, req);
    if (c == NULL)
        return;
    store_status st = fn(c, topic, user, err, sizeof err);
    pgpool_release(env->pool, c);
    if (st != STORE_OK) {
        api_store_error(req, st, "user", err);
        return;
    }
    http_respond_json(req, 204, NULL);
}

void topics_api_subscribe(api_env *env, http_request *req, api_call *call, http_phase phase)
{
    (void)phase;
    subscription(env, req, call, store_subscribe);
}

void topics_api_unsubscribe(api_env *env, http_request *req, api_call *call, http_phase phase)
{
    (void)phase;
    subscription(env, req, call, store_unsubscribe);
}
