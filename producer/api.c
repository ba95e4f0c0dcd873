/*
 * api: routing, authentication, rate limiting and per-route metrics.
 *
 * Everything that can refuse a request without its body does so in
 * HTTP_PHASE_HEADERS, so a client without a key, over its rate or with a
 * body too large never makes the gateway buffer that body.  CORS headers
 * for the inbox routes are decided there too, before anything can refuse.
 */
#include "api.h"

#include "bodies.h"
#include "console.h"
#include "console_api.h"
#include "dlq_api.h"
#include "console_ops_api.h"
#include "events_api.h"
#include "inbox_api.h"
#include "log.h"
#include "ops_api.h"
#include "receipts_api.h"
#include "replays_api.h"
#include "rules_api.h"
#include "suppressions_api.h"
#include "templates_api.h"
#include "timeline_api.h"
#include "timeutil.h"
#include "tokens_api.h"
#include "topics_api.h"
#include "unsubscribe_api.h"
#include "users_api.h"
#include "usertoken.h"
#include "validate.h"
#include "webhooks_api.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const api_endpoint ep_publish = {
    .fn = events_api_publish, .json_body = true, .produces = true};
static const api_endpoint ep_batch = {.fn = events_api_batch, .json_body = true, .produces = true};
static const api_endpoint ep_event_get = {.fn = events_api_get};
static const api_endpoint ep_dlq_list = {.fn = dlq_api_list};
static const api_endpoint ep_dlq_stats = {.fn = dlq_api_stats};
static const api_endpoint ep_dlq_get = {.fn = dlq_api_get};
static const api_endpoint ep_dlq_requeue = {.fn = dlq_api_requeue, .json_body = true};
static const api_endpoint ep_event_search = {.fn = timeline_api_search};
static const api_endpoint ep_event_timeline = {.fn = timeline_api_get};
static const api_endpoint ep_suppression_list = {.fn = suppressions_api_list};
static const api_endpoint ep_suppression_add = {.fn = suppressions_api_add, .json_body = true};
static const api_endpoint ep_suppression_get = {.fn = suppressions_api_get};
static const api_endpoint ep_suppression_delete = {.fn = suppressions_api_delete};
static const api_endpoint ep_user_put = {.fn = users_api_put, .json_body = true};
static const api_endpoint ep_user_get = {.fn = users_api_get};
static const api_endpoint ep_user_delete = {.fn = users_api_delete};
static const api_endpoint ep_prefs_put = {.fn = users_api_prefs_put, .json_body = true};
static const api_endpoint ep_prefs_get = {.fn = users_api_prefs_get};
static const api_endpoint ep_token_post = {.fn = tokens_api_post};
static const api_endpoint ep_inbox_get = {.fn = inbox_api_list, .user_token = true};
static const api_endpoint ep_inbox_counts = {.fn = inbox_api_counts, .user_token = true};
static const api_endpoint ep_inbox_mark = {
    .fn = inbox_api_mark, .json_body = true, .user_token = true};
static const api_endpoint ep_subscribe = {.fn = topics_api_subscribe};
static const api_endpoint ep_unsubscribe = {.fn = topics_api_unsubscribe};
static const api_endpoint ep_subscribers = {.fn = topics_api_subscribers};
static const api_endpoint ep_template_put = {.fn = templates_api_put, .json_body = true};
static const api_endpoint ep_template_get = {.fn = templates_api_get};
static const api_endpoint ep_template_delete = {.fn = templates_api_delete};
static const api_endpoint ep_digest_rule_put = {.fn = rules_api_digest_put, .json_body = true};
static const api_endpoint ep_digest_rule_get = {.fn = rules_api_digest_get};
static const api_endpoint ep_digest_rule_list = {.fn = rules_api_digest_list};
static const api_endpoint ep_digest_rule_delete = {.fn = rules_api_digest_delete};
static const api_endpoint ep_throttle_rule_put = {.fn = rules_api_throttle_put, .json_body = true};
static const api_endpoint ep_throttle_rule_get = {.fn = rules_api_throttle_get};
static const api_endpoint ep_throttle_rule_list = {.fn = rules_api_throttle_list};
static const api_endpoint ep_throttle_rule_delete = {.fn = rules_api_throttle_delete};
static const api_endpoint ep_followup_rule_put = {.fn = rules_api_followup_put, .json_body = true};
static const api_endpoint ep_followup_rule_get = {.fn = rules_api_followup_get};
static const api_endpoint ep_followup_rule_list = {.fn = rules_api_followup_list};
static const api_endpoint ep_followup_rule_delete = {.fn = rules_api_followup_delete};
static const api_endpoint ep_unsubscribe_page = {.fn = unsubscribe_api_page};
static const api_endpoint ep_unsubscribe_post = {.fn = unsubscribe_api_post};
static const api_endpoint ep_receipts_twilio = {.fn = receipts_api_twilio,
                                                .body_type = "application/x-www-form-urlencoded"};
static const api_endpoint ep_receipts_ses = {.fn = receipts_api_ses, .body_type = "*"};
static const api_endpoint ep_receipts_http = {.fn = receipts_api_http, .json_body = true};
static const api_endpoint ep_receipts_smtp = {.fn = receipts_api_smtp, .body_type = "*"};
static const api_endpoint ep_webhook_create = {.fn = webhooks_api_create, .json_body = true};
static const api_endpoint ep_webhook_list = {.fn = webhooks_api_list};
static const api_endpoint ep_webhook_get = {.fn = webhooks_api_get};
static const api_endpoint ep_webhook_delete = {.fn = webhooks_api_delete};
static const api_endpoint ep_webhook_enable = {.fn = webhooks_api_enable};
static const api_endpoint ep_webhook_attempts = {.fn = webhooks_api_attempts};
static const api_endpoint ep_webhook_replay = {.fn = webhooks_api_replay, .json_body = true};
static const api_endpoint ep_console_login = {
    .fn = console_api_login, .json_body = true, .console = true};
static const api_endpoint ep_console_session = {
    .fn = console_api_session, .console = true, .session_only = true};
static const api_endpoint ep_console_logout = {
    .fn = console_api_logout, .console = true, .session_only = true};
static const api_endpoint ep_ops_status = {.fn = console_ops_api_status};
static const api_endpoint ep_ops_history = {.fn = console_ops_api_history};
static const api_endpoint ep_replay_start = {.fn = replays_api_start, .json_body = true};
static const api_endpoint ep_replay_get = {.fn = replays_api_get};
static const api_endpoint ep_replay_list = {.fn = replays_api_list};
static const api_endpoint ep_healthz = {.fn = ops_api_healthz};
static const api_endpoint ep_readyz = {.fn = ops_api_readyz};
static const api_endpoint ep_metrics = {.fn = ops_api_metrics};

/* docs/openapi.yaml describes each of these; a unit test holds them together. */
static const router_route routes[] = {
    {"POST", "/v1/events", ROUTER_SCOPE_PUBLISH, &ep_publish},
    {"POST", "/v1/events/batch", ROUTER_SCOPE_PUBLISH, &ep_batch},
    {"GET", "/v1/events", ROUTER_SCOPE_ADMIN, &ep_event_search},
    {"GET", "/v1/events/{event_id}", ROUTER_SCOPE_PUBLISH, &ep_event_get},
    {"GET", "/v1/events/{event_id}/timeline", ROUTER_SCOPE_ADMIN, &ep_event_timeline},
    {"PUT", "/v1/users/{user_id}", ROUTER_SCOPE_ADMIN, &ep_user_put},
    {"GET", "/v1/users/{user_id}", ROUTER_SCOPE_ADMIN, &ep_user_get},
    {"DELETE", "/v1/users/{user_id}", ROUTER_SCOPE_ADMIN, &ep_user_delete},
    {"PUT", "/v1/users/{user_id}/preferences", ROUTER_SCOPE_ADMIN, &ep_prefs_put},
    {"GET", "/v1/users/{user_id}/preferences", ROUTER_SCOPE_ADMIN, &ep_prefs_get},
    {"POST", "/v1/users/{user_id}/tokens", ROUTER_SCOPE_PUBLISH, &ep_token_post},
    {"GET", "/v1/users/{user_id}/inbox", ROUTER_SCOPE_PUBLISH, &ep_inbox_get},
    {"GET", "/v1/users/{user_id}/inbox/counts", ROUTER_SCOPE_PUBLISH, &ep_inbox_counts},
    {"POST", "/v1/users/{user_id}/inbox/mark", ROUTER_SCOPE_PUBLISH, &ep_inbox_mark},
    {"GET", "/v1/topics/{topic}/subscribers", ROUTER_SCOPE_ADMIN, &ep_subscribers},
    {"PUT", "/v1/topics/{topic}/subscribers/{user_id}", ROUTER_SCOPE_ADMIN, &ep_subscribe},
    {"DELETE", "/v1/topics/{topic}/subscribers/{user_id}", ROUTER_SCOPE_ADMIN, &ep_unsubscribe},
    {"PUT", "/v1/templates/{event_type}/{channel}", ROUTER_SCOPE_ADMIN, &ep_template_put},
    {"GET", "/v1/templates/{event_type}/{channel}", ROUTER_SCOPE_ADMIN, &ep_template_get},
    {"DELETE", "/v1/templates/{event_type}/{channel}", ROUTER_SCOPE_ADMIN, &ep_template_delete},
    {"GET", "/v1/digest-rules", ROUTER_SCOPE_ADMIN, &ep_digest_rule_list},
    {"PUT", "/v1/digest-rules/{name}", ROUTER_SCOPE_ADMIN, &ep_digest_rule_put},
    {"GET", "/v1/digest-rules/{name}", ROUTER_SCOPE_ADMIN, &ep_digest_rule_get},
    {"DELETE", "/v1/digest-rules/{name}", ROUTER_SCOPE_ADMIN, &ep_digest_rule_delete},
    {"GET", "/v1/throttle-rules", ROUTER_SCOPE_ADMIN, &ep_throttle_rule_list},
    {"PUT", "/v1/throttle-rules/{name}", ROUTER_SCOPE_ADMIN, &ep_throttle_rule_put},
    {"GET", "/v1/throttle-rules/{name}", ROUTER_SCOPE_ADMIN, &ep_throttle_rule_get},
    {"DELETE", "/v1/throttle-rules/{name}", ROUTER_SCOPE_ADMIN, &ep_throttle_rule_delete},
    {"GET", "/v1/followup-rules", ROUTER_SCOPE_ADMIN, &ep_followup_rule_list},
    {"PUT", "/v1/followup-rules/{name}", ROUTER_SCOPE_ADMIN, &ep_followup_rule_put},
    {"GET", "/v1/followup-rules/{name}", ROUTER_SCOPE_ADMIN, &ep_followup_rule_get},
    {"DELETE", "/v1/followup-rules/{name}", ROUTER_SCOPE_ADMIN, &ep_followup_rule_delete},
    {"GET", "/v1/suppressions", ROUTER_SCOPE_ADMIN, &ep_suppression_list},
    {"POST", "/v1/suppressions", ROUTER_SCOPE_ADMIN, &ep_suppression_add},
    {"GET", "/v1/suppressions/{channel}/{address}", ROUTER_SCOPE_ADMIN, &ep_suppression_get},
    {"DELETE", "/v1/suppressions/{channel}/{address}", ROUTER_SCOPE_ADMIN, &ep_suppression_delete},
    /* The token in the query is the credential (unsubscribe_api.h). */
    {"GET", "/v1/unsubscribe", ROUTER_SCOPE_NONE, &ep_unsubscribe_page},
    {"POST", "/v1/unsubscribe", ROUTER_SCOPE_NONE, &ep_unsubscribe_post},
    /* Providers sign their receipts; receipts_api.c checks each signature. */
    {"POST", "/v1/receipts/twilio", ROUTER_SCOPE_NONE, &ep_receipts_twilio},
    {"POST", "/v1/receipts/ses", ROUTER_SCOPE_NONE, &ep_receipts_ses},
    {"POST", "/v1/receipts/http", ROUTER_SCOPE_NONE, &ep_receipts_http},
    {"POST", "/v1/receipts/smtp", ROUTER_SCOPE_ADMIN, &ep_receipts_smtp},
    {"POST", "/v1/webhooks", ROUTER_SCOPE_PUBLISH, &ep_webhook_create},
    {"GET", "/v1/webhooks", ROUTER_SCOPE_PUBLISH, &ep_webhook_list},
    {"GET", "/v1/webhooks/{webhook_id}", ROUTER_SCOPE_PUBLISH, &ep_webhook_get},
    {"DELETE", "/v1/webhooks/{webhook_id}", ROUTER_SCOPE_PUBLISH, &ep_webhook_delete},
    {"POST", "/v1/webhooks/{webhook_id}/enable", ROUTER_SCOPE_PUBLISH, &ep_webhook_enable},
    {"GET", "/v1/webhooks/{webhook_id}/attempts", ROUTER_SCOPE_PUBLISH, &ep_webhook_attempts},
    {"POST", "/v1/webhooks/{webhook_id}/replay", ROUTER_SCOPE_PUBLISH, &ep_webhook_replay},
    /* The key in the body is the credential (console_api.h). */
    {"POST", "/v1/console/session", ROUTER_SCOPE_NONE, &ep_console_login},
    {"GET", "/v1/console/session", ROUTER_SCOPE_ADMIN, &ep_console_session},
    {"DELETE", "/v1/console/session", ROUTER_SCOPE_ADMIN, &ep_console_logout},
    /* stats and requeue before {position}, which would match them */
    {"GET", "/v1/dlq", ROUTER_SCOPE_ADMIN, &ep_dlq_list},
    {"GET", "/v1/dlq/stats", ROUTER_SCOPE_ADMIN, &ep_dlq_stats},
    {"POST", "/v1/dlq/requeue", ROUTER_SCOPE_ADMIN, &ep_dlq_requeue},
    {"GET", "/v1/dlq/{position}", ROUTER_SCOPE_ADMIN, &ep_dlq_get},
    {"GET", "/v1/ops/status", ROUTER_SCOPE_ADMIN, &ep_ops_status},
    {"GET", "/v1/ops/history", ROUTER_SCOPE_ADMIN, &ep_ops_history},
    {"POST", "/v1/replays", ROUTER_SCOPE_ADMIN, &ep_replay_start},
    {"GET", "/v1/replays", ROUTER_SCOPE_ADMIN, &ep_replay_list},
    {"GET", "/v1/replays/{replay_id}", ROUTER_SCOPE_ADMIN, &ep_replay_get},
    {"GET", "/healthz", ROUTER_SCOPE_NONE, &ep_healthz},
    {"GET", "/readyz", ROUTER_SCOPE_NONE, &ep_readyz},
    {"GET", "/metrics", ROUTER_SCOPE_NONE, &ep_metrics},
};

#define NROUTES (sizeof routes / sizeof routes[0])

const router_route *api_routes(size_t *n)
{
    *n = NROUTES;
    return routes;
}

int api_env_init_metrics(api_env *env)
{
    env->nroutes = NROUTES;
    env->requests = calloc((NROUTES + 1) * API_STATUS_SLOTS, sizeof *env->requests);
    if (env->requests == NULL)
        return -1;
    env->publish_latency = metrics_histogram_get(
        env->metrics, "herald_gateway_publish_seconds",
        "Time from a publish request's headers to the broker's acknowledgement", NULL,
        metrics_default_latency_buckets, metrics_default_latency_buckets_n);
    env->rate_limited =
        metrics_counter_get(env->metrics, "herald_gateway_rate_limited_total",
                            "Requests refused with 429 by the per-key rate limit", NULL);
    env->published_events =
        metrics_counter_get(env->metrics, "herald_gateway_events_published_total",
                            "Events acknowledged by Kafka (batch items counted one by one)", NULL);
    env->inbox_updates_failed = metrics_counter_get(
        env->metrics, "herald_gateway_inbox_updates_failed_total",
        "Inbox update records not produced after their change was committed", NULL);
    static const char *const unsubscribe_results[API_UNSUBSCRIBE_RESULTS] = {
        "unsubscribed", "already", "unknown_user"};
    for (int i = 0; i < API_UNSUBSCRIBE_RESULTS; i++) {
        char labels[64];
        if (metrics_labels(labels, sizeof labels, "result", unsubscribe_results[i], NULL) != 0)
            return -1;
        env->unsubscribes[i] = metrics_counter_get(
            env->metrics, "herald_gateway_unsubscribes_total",
            "One-click unsubscribe requests accepted, by what they changed", labels);
    }
    return 0;
}

void api_env_free_metrics(api_env *env)
{
    free(env->requests);
    env->requests = NULL;
}

/* The counter of (route, status), registered on first use. */
static metrics_counter *request_counter(api_env *env, size_t route, int status)
{
    if (env->requests == NULL || status < 100 || status > 599)
        return NULL;
    _Atomic(metrics_counter *) *slot =
        &env->requests[route * API_STATUS_SLOTS + (size_t)(status - 100)];
    metrics_counter *c = atomic_load_explicit(slot, memory_order_acquire);
    if (c != NULL)
        return c;
    char labels[256], code[8];
    snprintf(code, sizeof code, "%d", status);
    const char *rname = route < NROUTES ? routes[route].pattern : "unmatched";
    const char *method = route < NROUTES ? routes[route].method : "any";
    if (metrics_labels(labels, sizeof labels, "route", rname, "method", method, "status", code,
                       NULL) != 0)
        return NULL;
    /* get-or-create: two threads racing here get the same series. */
    c = metrics_counter_get(env->metrics, "herald_gateway_requests_total",
                            "HTTP requests by route, method and status", labels);
    atomic_store_explicit(slot, c, memory_order_release);
    return c;
}

static void call_free(void *p)
{
    api_call *call = p;
    if (call == NULL)
        return;
    if (call->work_free != NULL)
        call->work_free(call->work);
    free(call);
}

static void allow_header(http_request *req, const char *path)
{
    char allow[64] = "";
    size_t idx = 0;
    router_params params;
    static const char *const methods[] = {"GET", "PUT", "POST", "DELETE"};
    for (size_t m = 0; m < sizeof methods / sizeof methods[0]; m++) {
        router_result rr = router_match(routes, NROUTES, methods[m], path, &idx, &params);
        if (rr == ROUTER_MATCH || rr == ROUTER_BAD_PARAM) {
            if (allow[0] != '\0')
                strcat(allow, ", ");
            strcat(allow, methods[m]);
        }
    }
    if (allow[0] != '\0')
        http_add_header(req, "Allow", allow);
}

/*
 * Overload is answered before the body is parsed, validated and serialized:
 * a refusal that costs as much as a publish would let the queue's bound
 * shed no load (profiling under a full queue showed exactly that).
 * publisher_send() still refuses whatever slips past in a race.
 */
static void refuse_if_publisher_busy(api_env *env, http_request *req)
{
    char err[256];
    switch (publisher_admit(env->pub, err, sizeof err)) {
    case PUBLISHER_OK:
        return;
    case PUBLISHER_QUEUE_FULL:
        http_respond_retry(req, 503, "queue_full",
                           "the gateway's publish queue is full; retry shortly", 1);
        return;
    case PUBLISHER_UNAVAILABLE:
    case PUBLISHER_IN_DOUBT:
    case PUBLISHER_FAILED:
        break;
    }
    http_respond_retry(req, 503, "broker_unavailable", err, 1);
}

/* Gives req a fresh call.  Returns NULL, answered, when out of memory. */
static api_call *call_attach(api_env *env, http_request *req)
{
    api_call *call = calloc(1, sizeof *call);
    if (call == NULL) {
        http_respond_error(req, 503, "overloaded", "out of memory", NULL);
        return NULL;
    }
    call->env = env;
    call->route = NROUTES;
    http_request_set_app(req, call, call_free);
    return call;
}

/* Answers a path whose captures did not decode, naming the first that failed. */
static void refuse_bad_param(http_request *req, const router_params *params)
{
    for (size_t i = 0; i < params->count; i++)
        if (params->values[i][0] == '\0') {
            char field[64];
            snprintf(field, sizeof field, "%.*s", (int)params->name_len[i], params->names[i]);
            api_bad_field(req, field, "a path segment is empty, too long or badly escaped");
            return;
        }
    api_bad_field(req, "", "bad path");
}

/*
 * Finds req's route, into call->route and call->params.  Returns -1,
 * answered (404, 405 or 400), when no route takes the request.
 */
static int route_request(http_request *req, api_call *call)
{
    size_t idx = 0;
    router_result rr = router_match(routes, NROUTES, http_request_method(req),
                                    http_request_path(req), &idx, &call->params);
    if (rr == ROUTER_NOT_FOUND) {
        http_respond_error(req, 404, "not_found", "no such route", NULL);
        return -1;
    }
    if (rr == ROUTER_BAD_METHOD) {
        allow_header(req, http_request_path(req));
        http_respond_error(req, 405, "method_not_allowed", "method not allowed on this route",
                           NULL);
        return -1;
    }
    call->route = idx;
    if (rr == ROUTER_BAD_PARAM) {
        refuse_bad_param(req, &call->params);
        return -1;
    }
    return 0;
}

/* Takes one request from the key's rate limit.  Returns -1, answered 429, when spent. */
static int take_rate(api_env *env, http_request *req, const char *kid)
{
    int64_t wait_ms = 0;
    if (env->limits == NULL ||
        ratelimit_table_take(env->limits, kid, timeutil_monotonic_ms(), 1, &wait_ms))
        return 0;
    metrics_counter_inc(env->rate_limited);
    int64_t secs = wait_ms > 0 ? (wait_ms + 999) / 1000 : 1;
    http_respond_retry(req, 429, "rate_limited", "too many requests for this API key", secs);
    return -1;
}

/* Answers 401 with the challenge every refused credential gets. */
static void refuse_credential(http_request *req, const char *message)
{
    http_add_header(req, "WWW-Authenticate", "Bearer");
    http_respond_error(req, 401, "unauthorized", message, NULL);
}

/*
 * Authenticates a user token (docs/inapp.md): valid, unexpired, for the
 * path's {user_id}, on a route that takes user tokens.  Everything else it
 * might open is refused, so a browser holding one reaches its inbox only.
 */
static int authorize_user(api_env *env, http_request *req, api_call *call, const api_endpoint *ep,
                          const char *token, size_t len)
{
    if (env->user_token_secret == NULL) {
        refuse_credential(req, "user tokens are not enabled on this gateway "
                               "(HERALD_USER_TOKEN_SECRET is not set)");
        return -1;
    }
    char user[VALIDATE_USER_ID_MAX + 1];
    int64_t expires = 0;
    usertoken_result ur = usertoken_verify(env->user_token_secret, env->user_token_secret_len,
                                           token, len, timeutil_now_ms() / 1000, user, &expires);
    if (ur != USERTOKEN_OK) {
        refuse_credential(req, ur == USERTOKEN_EXPIRED ? "the user token has expired"
                                                       : "invalid user token");
        return -1;
    }
    http_request_log_field(req, "user_token", user);
    if (!ep->user_token) {
        http_respond_error(req, 403, "forbidden",
                           "a user token grants only its own user's inbox, not this route", NULL);
        return -1;
    }
    const char *path_user = router_param(&call->params, "user_id");
    if (path_user == NULL || strcmp(path_user, user) != 0) {
        http_respond_error(req, 403, "forbidden", "this user token is for another user", NULL);
        return -1;
    }
    char bucket[VALIDATE_USER_ID_MAX + 8];
    snprintf(bucket, sizeof bucket, "user:%s", user);
    return take_rate(env, req, bucket);
}

/*
 * What every API key's request goes through once the key is known: the log
 * line names it, its scope must allow the route's, and it takes one
 * request from the key's rate limit.  Returns -1, answered (403 or 429).
 */
static int admit_key(api_env *env, http_request *req, api_call *call, router_scope need)
{
    char kid[24];
    snprintf(kid, sizeof kid, "%lld", (long long)call->key_id);
    http_request_log_field(req, "api_key_id", kid);
    router_scope have =
        call->scope == APIKEY_SCOPE_ADMIN ? ROUTER_SCOPE_ADMIN : ROUTER_SCOPE_PUBLISH;
    if (!router_scope_allows(have, need)) {
        http_respond_error(req, 403, "forbidden", "this route needs an admin API key", NULL);
        return -1;
    }
    return take_rate(env, req, kid);
}

/*
 * Authenticates the console's session cookie (docs/console.md): a session
 * may call what its admin key could, and every request that may change
 * something (not GET or HEAD) must prove with X-CSRF-Token that it comes
 * from a console page, since a browser sends the cookie with any request
 * to the gateway.  Checked before the body, so a refused request changes
 * nothing.
 */
static int authorize_session(api_env *env, http_request *req, api_call *call, router_scope need)
{
    char err[160];
    switch (console_api_authenticate(env, req, call, err, sizeof err)) {
    case CONSOLE_AUTH_OK:
        break;
    case CONSOLE_AUTH_UNAVAILABLE:
        http_respond_retry(req, 503, "unavailable", err, 1);
        return -1;
    case CONSOLE_AUTH_NONE:
    case CONSOLE_AUTH_INVALID:
        http_respond_error(req, 401, "unauthorized", err, NULL);
        return -1;
    }
    http_request_log_field(req, "auth", "console");
    const char *method = http_request_method(req);
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0 &&
        !console_session_csrf_ok(env->console_secret, env->console_secret_len, call->session,
                                 strlen(call->session), http_request_header(req, "X-CSRF-Token"))) {
        http_respond_error(req, 403, "csrf_failed",
                           "a request with the console's session cookie needs the session's "
                           "X-CSRF-Token header",
                           "X-CSRF-Token");
        return -1;
    }
    return admit_key(env, req, call, need);
}

/*
 * Authenticates req's API key (or user token, or console session) into
 * call, checks that its scope allows the route's and takes the request
 * from its rate limit.  An Authorization header wins over a cookie, except
 * on the session's own routes.
 * Returns -1, answered (503, 401, 403 or 429), when the request may not go on.
 */
static int authorize(api_env *env, http_request *req, api_call *call, router_scope need,
                     const api_endpoint *ep)
{
    char err[160];
    const char *authorization = http_request_header(req, "Authorization");
    if ((authorization == NULL || ep->session_only) && console_api_has_cookie(env, req))
        return authorize_session(env, req, call, need);
    if (ep->session_only) {
        http_respond_error(req, 401, "unauthorized", "no console session", NULL);
        return -1;
    }
    size_t len = 0;
    const char *token = auth_bearer(authorization, &len);
    if (token != NULL && usertoken_looks_like(token, len))
        return authorize_user(env, req, call, ep, token, len);
    auth_result ar =
        auth_check(env->auth, authorization, &call->key_id, &call->scope, err, sizeof err);
    if (ar == AUTH_UNAVAILABLE) {
        http_respond_retry(req, 503, "unavailable", err, 1);
        return -1;
    }
    if (ar != AUTH_OK) {
        refuse_credential(req, err);
        return -1;
    }
    return admit_key(env, req, call, need);
}

/* Whether path is that of a route a user token may call, by any method. */
static bool takes_user_token(const char *path)
{
    static const char *const methods[] = {"GET", "POST"};
    router_params params;
    size_t idx = 0;
    for (size_t m = 0; m < sizeof methods / sizeof methods[0]; m++)
        if (router_match(routes, NROUTES, methods[m], path, &idx, &params) == ROUTER_MATCH &&
            ((const api_endpoint *)routes[idx].handler)->user_token)
            return true;
    return false;
}

/*
 * CORS (docs/inapp-client.md): a page of an allowed origin may call the
 * routes a user token opens, and nothing else, since a browser holds no
 * API key.  Adds Access-Control-Allow-Origin to whatever the request is
 * answered, refusals included, so the page can read why it was refused;
 * answers a preflight (OPTIONS) at once, before any credential, as a
 * browser sends none with it.  Returns true when req is answered.
 */
static bool cors_headers(api_env *env, http_request *req)
{
    if (env->cors == NULL)
        return false;
    const char *origin = http_request_header(req, "Origin");
    if (!cors_policy_allows(env->cors, origin) || !takes_user_token(http_request_path(req)))
        return false;
    http_add_header(req, "Access-Control-Allow-Origin", origin);
    http_add_header(req, "Vary", "Origin");
    if (strcmp(http_request_method(req), "OPTIONS") != 0)
        return false;
    http_add_header(req, "Access-Control-Allow-Methods", CORS_ALLOW_METHODS);
    http_add_header(req, "Access-Control-Allow-Headers", CORS_ALLOW_HEADERS);
    http_add_header(req, "Access-Control-Max-Age", CORS_MAX_AGE);
    http_respond(req, 204, NULL, NULL, 0);
    return true;
}

/* Refuses in turn what can be refused before the body: see the file's comment. */
static void on_headers(api_env *env, http_request *req)
{
    api_call *call = call_attach(env, req);
    if (call == NULL)
        return;
    if (cors_headers(env, req))
        return;
    /* Shutting down: requests arriving on kept-alive connections are sent
     * elsewhere, and the connection closes, so the drain ends promptly. */
    if (atomic_load(&env->draining)) {
        http_add_header(req, "Connection", "close");
        http_respond_retry(req, 503, "shutting_down", "the gateway is shutting down", 1);
        return;
    }
    if (console_owns(http_request_path(req))) {
        console_serve(env, req, call);
        return;
    }
    if (route_request(req, call) != 0)
        return;
    const router_route *r = &routes[call->route];
    const api_endpoint *ep = r->handler;
    if (ep->console && env->console_secret == NULL) {
        http_respond_error(req, 404, "not_found",
                           "the console is disabled (HERALD_CONSOLE_SECRET is not set)", NULL);
        return;
    }
    if (r->scope != ROUTER_SCOPE_NONE && authorize(env, req, call, r->scope, ep) != 0)
        return;
    if (ep->json_body && http_request_expect_json(req) != 0)
        return;
    if (ep->body_type != NULL && http_request_expect_body(req, ep->body_type) != 0)
        return;
    if (ep->produces)
        refuse_if_publisher_busy(env, req);
}

void api_dispatch(void *ctx, http_request *req, http_phase phase)
{
    api_env *env = ctx;
    if (phase == HTTP_PHASE_HEADERS) {
        on_headers(env, req);
        return;
    }
    api_call *call = http_request_app(req);
    if (call == NULL || call->route >= NROUTES) {
        http_respond_error(req, 500, "internal", "request lost its route", NULL);
        return;
    }
    const api_endpoint *ep = routes[call->route].handler;
    ep->fn(env, req, call, phase);
}

void api_answered(void *ctx, http_request *req)
{
    api_env *env = ctx;
    api_call *call = http_request_app(req);
    size_t route = call != NULL ? call->route : NROUTES;
    metrics_counter_inc(request_counter(env, route, http_request_status(req)));
}

int api_body_object(http_request *req, json_t **out)
{
    size_t len = 0;
    const char *body = http_request_body(req, &len);
    bodies_error e;
    if (bodies_parse_object(body, len, out, &e) != 0) {
        http_respond_error(req, 400, "invalid_json", e.message, e.field);
        return -1;
    }
    return 0;
}

pg_conn *api_db(api_env *env, http_request *req)
{
    char err[256];
    pg_conn *c = pgpool_acquire(env->pool, API_DB_WAIT_MS, err, sizeof err);
    if (c == NULL) {
        LOG_WARN(http_request_id(req), "database unavailable: %s", err);
        http_respond_retry(req, 503, "database_unavailable", "the database is not reachable", 1);
    }
    return c;
}

void api_store_error(http_request *req, store_status st, const char *what, const char *err)
{
    char msg[160];
    switch (st) {
    case STORE_OK:
        return;
    case STORE_NOT_FOUND:
        snprintf(msg, sizeof msg, "%s not found", what);
        http_respond_error(req, 404, "not_found", msg, NULL);
        return;
    case STORE_INVALID:
        http_respond_error(req, 400, "invalid_field", "the database refused a value", NULL);
        return;
    case STORE_CONFLICT:
        snprintf(msg, sizeof msg, "%s conflicts with one that exists", what);
        http_respond_error(req, 409, "conflict", msg, NULL);
        return;
    case STORE_UNAVAILABLE:
        LOG_WARN(http_request_id(req), "database unavailable: %s", err);
        http_respond_retry(req, 503, "database_unavailable", "the database is not reachable", 1);
        return;
    case STORE_ERROR:
        break;
    }
    LOG_ERROR(http_request_id(req), "database error: %s", err);
    http_respond_error(req, 500, "internal", "database error", NULL);
}

void api_bad_field(http_request *req, const char *field, const char *message)
{
    http_respond_error(req, 400, "invalid_field", message, field);
}

void api_answer_query(api_env *env, http_request *req, int status, const char *sql, pg_params *p,
                      const char *what)
{
    char err[256], msg[160];
    PGresult *res = NULL;
    pg_conn *c = api_db(env, req);
    if (c == NULL)
        goto out;
    pg_status st = pg_query_params(c, sql, p, &res, err, sizeof err);
    bool conflict = st == PG_ERROR && strncmp(pg_last_sqlstate(c), "23", 2) == 0;
    pgpool_release(env->pool, c);
    if (conflict) {
        snprintf(msg, sizeof msg, "the %s conflicts with the database", what);
        http_respond_error(req, 409, "conflict", msg, NULL);
        goto out;
    }
    if (st != PG_OK) {
        LOG_WARN(http_request_id(req), "%s: %s", what, err);
        http_respond_retry(req, 503, "database_unavailable", "the database is not reachable", 1);
        goto out;
    }
    if (PQntuples(res) == 0 || PQgetisnull(res, 0, 0)) {
        snprintf(msg, sizeof msg, "%s not found", what);
        http_respond_error(req, 404, "not_found", msg, NULL);
        goto out;
    }
    if (status == 204)
        http_respond_json(req, 204, NULL);
    else
        http_respond(req, status, "application/json", PQgetvalue(res, 0, 0),
                     (size_t)PQgetlength(res, 0, 0));
out:
    PQclear(res);
    pg_params_free(p);
}

long api_query_long(http_request *req, const char *name, long def, long max)
{
    const char *s = http_request_query(req, name);
    if (s == NULL)
        return def;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || errno != 0 || v < 1 || v > max) {
        char msg[96];
        snprintf(msg, sizeof msg, "%s must be an integer from 1 to %ld", name, max);
        api_bad_field(req, name, msg);
        return -1;
    }
    return v;
}

void api_user_get(api_env *env, http_request *req, api_call *call, api_user_get_fn get)
{
    json_t *doc = NULL;
    char err[256];
    const char *id = api_user_id(req, call);
    if (id == NULL)
        return;
    pg_conn *c = api_db(env, req);
    if (c == NULL)
        return;
    store_status st = get(c, id, &doc, err, sizeof err);
    pgpool_release(env->pool, c);
    if (st != STORE_OK) {
        api_store_error(req, st, "user", err);
        return;
    }
    http_respond_json(req, 200, doc);
}

const char *api_user_id(http_request *req, api_call *call)
{
    const char *id = router_param(&call->params, "user_id");
    char why[160], msg[200];
    if (id == NULL || validate_user_id(id, strlen(id), why, sizeof why) != 0) {
        snprintf(msg, sizeof msg, "user_id %s", id == NULL ? "is missing" : why);
        api_bad_field(req, "user_id", msg);
        return NULL;
    }
    return id;
}

int api_event_id(http_request *req, const char *field, const char *raw, char *out)
{
    size_t len = raw != NULL ? strlen(raw) : 0;
    /* UUIDs are case-insensitive; Herald stores them lowercase. */
    for (size_t i = 0; i < len && i < ID_UUID_LEN; i++)
        out[i] = (raw[i] >= 'A' && raw[i] <= 'F') ? (char)(raw[i] - 'A' + 'a') : raw[i];
    out[len < ID_UUID_LEN ? len : ID_UUID_LEN] = '\0';
    if (len == ID_UUID_LEN && id_is_uuid(out))
        return 0;
    char msg[96];
    snprintf(msg, sizeof msg, "%s must be a UUID", field);
    api_bad_field(req, field, msg);
    return -1;
}
