/*
 * topics_api: subscribe and unsubscribe users to broadcast topics.
 */
#include "topics_api.h"

#include "validate.h"

#include <stdio.h>
#include <string.h>

#define PAGE_DEFAULT 100
#define PAGE_MAX     1000

/* The path's {topic}, checked; NULL after answering 400. */
static const char *topic_param(http_request *req, api_call *call)
{
    const char *topic = router_param(&call->params, "topic");
    char why[160], msg[200];
    if (topic == NULL ||
        validate_name(topic, strlen(topic), VALIDATE_NAME_MAX, why, sizeof why) != 0) {
        snprintf(msg, sizeof msg, "topic %s", topic == NULL ? "is missing" : why);
        api_bad_field(req, "topic", msg);
        return NULL;
    }
    return topic;
}

typedef store_status (*sub_fn)(pg_conn *c, const char *topic, const char *user_id, char *err,
                               size_t errlen);

static void subscription(api_env *env, http_request *req, api_call *call, sub_fn fn)
{
    const char *topic = topic_param(req, call);
    const char *user = router_param(&call->params, "user_id");
    char why[160], msg[200], err[256];
    if (topic == NULL)
        return;
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

void topics_api_subscribers(api_env *env, http_request *req, api_call *call, http_phase phase)
{
    (void)phase;
    pg_params p = {0};
    const char *topic = topic_param(req, call);
    const char *after = http_request_query(req, "after");
    char why[160];
    if (topic == NULL)
        return;
    /* The cursor is the page's last user id: keyset order of the primary key. */
    if (after != NULL && validate_user_id(after, strlen(after), why, sizeof why) != 0) {
        api_bad_field(req, "after", "after is not a cursor this API gave");
        return;
    }
    long limit = api_query_long(req, "limit", PAGE_DEFAULT, PAGE_MAX);
    if (limit < 0)
        return;
    pg_params_text(&p, topic);
    pg_params_text(&p, after);
    pg_params_int(&p, limit);
    /* No topics row: no row, so 404; a full page gives its last user as next_after. */
    api_answer_query(env, req, 200,
                     "WITH page AS (SELECT user_id, created_at FROM topic_subscriptions"
                     "               WHERE topic = $1 AND ($2::text IS NULL OR user_id > $2)"
                     "               ORDER BY user_id LIMIT $3::int)"
                     " SELECT json_strip_nulls(json_build_object('topic', t.name, 'subscribers',"
                     "   coalesce((SELECT json_agg(json_build_object('user_id', user_id, "
                     "'subscribed_at', " STORE_SQL_RFC3339(
                         "created_at") ") ORDER BY user_id) FROM page), '[]'::json),"
                                       "   'next_after', (SELECT max(user_id) FROM page"
                                       "                  HAVING count(*) = $3::int)))::text"
                                       " FROM topics t WHERE t.name = $1",
                     &p, "topic");
}
