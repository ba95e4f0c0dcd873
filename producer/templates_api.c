/*
 * templates_api: store, read and delete templates.
 */
#include "templates_api.h"

#include "bodies.h"
#include "validate.h"

#include <stdio.h>
#include <string.h>

/* Checks {event_type} and {channel}; 0, or -1 after answering 400. */
static int key_params(http_request *req, api_call *call, const char **type, const char **channel)
{
    char why[160], msg[200];
    *type = router_param(&call->params, "event_type");
    *channel = router_param(&call->params, "channel");
    if (*type == NULL ||
        validate_name(*type, strlen(*type), VALIDATE_NAME_MAX, why, sizeof why) != 0) {
        snprintf(msg, sizeof msg, "event_type %s", *type == NULL ? "is missing" : why);
        api_bad_field(req, "event_type", msg);
        return -1;
    }
    if (!bodies_is_channel(*channel)) {
        api_bad_field(req, "channel", "channel must be email, sms, push or inapp");
        return -1;
    }
    return 0;
}

void templates_api_put(api_env *env, http_request *req, api_call *call, http_phase phase)
{
    (void)phase;
    const char *type, *channel;
    json_t *body = NULL, *doc = NULL;
    pg_conn *c = NULL;
    bodies_error e;
    char err[256];
    if (key_params(req, call, &type, &channel) != 0)
        goto out;
    if (api_body_object(req, &body) != 0)
        goto out;
    if (bodies_check_template(body, &e) != 0) {
        api_bad_field(req, e.field, e.message);
        goto out;
    }
    if ((c = api_db(env, req)) == NULL)
        goto out;
    store_status st = store_template_put(c, type, channel, body, &doc, err, sizeof err);
    if (st != STORE_OK) {
        api_store_error(req, st, "template", err);
        goto out;
    }
    http_respond_json(req, 200, doc);
out:
    pgpool_release(env->pool, c);
    json_decref(body);
}

void templates_api_get(api_env *env, http_request *req, api_call *call, http_phase phase)
{
    (void)phase;
    const char *type, *channel;
    json_t *doc = NULL;
    char err[256];
    if (key_params(req, call, &type, &channel) != 0)
        return;
    pg_conn *c = api_db(env, req);
    if (c == NULL)
        return;
    store_status st = store_template_get(c, type, channel, &doc, err, sizeof err);
    pgpool_release(env->pool, c);
    if (st != STORE_OK) {
        api_store_error(req, st, "template", err);
        return;
    }
    http_respond_json(req, 200, doc);
}

void templates_api_delete(api_env *env, http_request *req, api_call *call, http_phase phase)
{
    (void)phase;
    const char *type, *channel;
    char err[256];
    if (key_params(req, call, &type, &channel) != 0)
        return;
    pg_conn *c = api_db(env, req);
    if (c == NULL)
        return;
    store_status st = store_template_delete(c, type, channel, err, sizeof err);
    pgpool_release(env->pool, c);
    if (st != STORE_OK) {
        api_store_error(req, st, "template", err);
        return;
    }
    http_respond_json(req, 204, NULL);
}
