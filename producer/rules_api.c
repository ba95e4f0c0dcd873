/*
 * rules_api: store, read, list and delete digest, throttle and follow-up
 * rules.
 *
 * Every kind is handled alike; a rule_kind says which checks and which
 * store functions apply, so the handlers exist once.
 */
#include "rules_api.h"

#include "bodies.h"
#include "validate.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

typedef int (*rule_check_fn)(const json_t *body, const char *name, bodies_error *e);
typedef store_status (*rule_put_fn)(pg_conn *c, const char *name, const json_t *body, json_t **out,
                                    char other[129], char *err, size_t errlen);
typedef store_status (*rule_get_fn)(pg_conn *c, const char *name, json_t **out, char *err,
                                    size_t errlen);
typedef store_status (*rule_list_fn)(pg_conn *c, json_t **out, char *err, size_t errlen);
typedef store_status (*rule_delete_fn)(pg_conn *c, const char *name, char *err, size_t errlen);

typedef struct rule_kind {
    const char *what; /* "digest rule": in 404 and 409 messages */
    bool by_channel;  /* one rule per event type, category and channel, not type and category */
    rule_check_fn check;
    rule_put_fn put;
    rule_get_fn get;
    rule_list_fn list;
    rule_delete_fn del;
} rule_kind;

/* Throttle rules never conflict but by name, which a PUT replaces. */
static store_status throttle_put(pg_conn *c, const char *name, const json_t *body, json_t **out,
                                 char other[129], char *err, size_t errlen)
{
    other[0] = '\0';
    return store_throttle_rule_put(c, name, body, out, err, errlen);
}

static const rule_kind digest_kind = {.what = "digest rule",
                                      .by_channel = false,
                                      .check = bodies_check_digest_rule,
                                      .put = store_digest_rule_put,
                                      .get = store_digest_rule_get,
                                      .list = store_digest_rule_list,
                                      .del = store_digest_rule_delete};
static const rule_kind throttle_kind = {.what = "throttle rule",
                                        .by_channel = false,
                                        .check = bodies_check_throttle_rule,
                                        .put = throttle_put,
                                        .get = store_throttle_rule_get,
                                        .list = store_throttle_rule_list,
                                        .del = store_throttle_rule_delete};
static const rule_kind followup_kind = {.what = "follow-up rule",
                                        .by_channel = true,
                                        .check = bodies_check_followup_rule,
                                        .put = store_followup_rule_put,
                                        .get = store_followup_rule_get,
                                        .list = store_followup_rule_list,
                                        .del = store_followup_rule_delete};

/* The path's {name}, checked; NULL after answering 400. */
static const char *rule_name(http_request *req, api_call *call)
{
    char why[160], msg[200];
    const char *name = router_param(&call->params, "name");
    if (name == NULL ||
        validate_name(name, strlen(name), VALIDATE_NAME_MAX, why, sizeof why) != 0) {
        snprintf(msg, sizeof msg, "name %s", name == NULL ? "is missing" : why);
        api_bad_field(req, "name", msg);
        return NULL;
    }
    return name;
}

static void rule_get(const rule_kind *k, api_env *env, http_request *req, api_call *call)
{
    json_t *doc = NULL;
    char err[256];
    const char *name = rule_name(req, call);
    if (name == NULL)
        return;
    pg_conn *c = api_db(env, req);
    if (c == NULL)
        return;
    store_status st = k->get(c, name, &doc, err, sizeof err);
    pgpool_release(env->pool, c);
    if (st != STORE_OK) {
        api_store_error(req, st, k->what, err);
        return;
    }
    http_respond_json(req, 200, doc);
}

static void rule_list(const rule_kind *k, api_env *env, http_request *req)
{
    json_t *doc = NULL;
    char err[256];
    pg_conn *c = api_db(env, req);
    if (c == NULL)
        return;
    store_status st = k->list(c, &doc, err, sizeof err);
    pgpool_release(env->pool, c);
    if (st != STORE_OK) {
        api_store_error(req, st, k->what, err);
        return;
    }
    http_respond_json(req, 200, doc);
}

static void rule_delete(const rule_kind *k, api_env *env, http_request *req, api_call *call)
{
    char err[256];
    const char *name = rule_name(req, call);
    if (name == NULL)
        return;
    pg_conn *c = api_db(env, req);
    if (c == NULL)
        return;
    store_status st = k->del(c, name, err, sizeof err);
    pgpool_release(env->pool, c);
    if (st != STORE_OK) {
        api_store_error(req, st, k->what, err);
        return;
    }
    http_respond_json(req, 204, NULL);
}

/* The 409 of a PUT whose match another rule (other) already has. */
static void rule_conflict(const rule_kind *k, http_request *req, const json_t *body,
                          const char *other)
{
    char cat[96] = "no category", ch[48] = "", msg[512];
    const char *c = json_string_value(json_object_get(body, "category"));
    if (c != NULL)
        snprintf(cat, sizeof cat, "category \"%s\"", c);
    if (k->by_channel)
        snprintf(ch, sizeof ch, " and channel \"%s\"",
                 json_string_value(json_object_get(body, "channel")));
    snprintf(msg, sizeof msg,
             "%s \"%s\" already covers event_type \"%s\"%s%s%s: one rule per event type%s", k->what,
             other, json_string_value(json_object_get(body, "event_type")),
             k->by_channel ? ", " : " and ", cat, ch,
             k->by_channel ? ", category and channel" : " and category");
    http_respond_error(req, 409, "conflict", msg, "event_type");
}

static void rule_put(const rule_kind *k, api_env *env, http_request *req, api_call *call)
{
    json_t *body = NULL, *doc = NULL;
    pg_conn *c = NULL;
    bodies_error e;
    char err[256], other[129];
    const char *name = rule_name(req, call);
    if (name == NULL)
        goto out;
    if (api_body_object(req, &body) != 0)
        goto out;
    if (k->check(body, name, &e) != 0) {
        api_bad_field(req, e.field, e.message);
        goto out;
    }
    if ((c = api_db(env, req)) == NULL)
        goto out;
    store_status st = k->put(c, name, body, &doc, other, err, sizeof err);
    if (st == STORE_CONFLICT && other[0] != '\0') {
        rule_conflict(k, req, body, other);
        goto out;
    }
    if (st != STORE_OK) {
        api_store_error(req, st, k->what, err);
        goto out;
    }
    http_respond_json(req, 200, doc);
out:
    pgpool_release(env->pool, c);
    json_decref(body);
}

/*
 * The four routes of one kind of rule (rules_api.h): rules_api_<kind>_put,
 * _get, _list and _delete, each handing its kind to the shared handler.
 */
#define RULE_ROUTES(kind)                                                                          \
    void rules_api_##kind##_put(api_env *env, http_request *req, api_call *call, http_phase phase) \
    {                                                                                              \
        (void)phase;                                                                               \
        rule_put(&kind##_kind, env, req, call);                                                    \
    }                                                                                              \
    void rules_api_##kind##_get(api_env *env, http_request *req, api_call *call, http_phase phase) \
    {                                                                                              \
        (void)phase;                                                                               \
        rule_get(&kind##_kind, env, req, call);                                                    \
    }                                                                                              \
    void rules_api_##kind##_list(api_env *env, http_request *req, api_call *call,                  \
                                 http_phase phase)                                                 \
    {                                                                                              \
        (void)call;                                                                                \
        (void)phase;                                                                               \
        rule_list(&kind##_kind, env, req);                                                         \
    }                                                                                              \
    void rules_api_##kind##_delete(api_env *env, http_request *req, api_call *call,                \
                                   http_phase phase)                                               \
    {                                                                                              \
        (void)phase;                                                                               \
        rule_delete(&kind##_kind, env, req, call);                                                 \
    }

RULE_ROUTES(digest)
RULE_ROUTES(throttle)
RULE_ROUTES(followup)
