/*
 * api: the gateway's route table and what every handler shares.
 *
 * api_dispatch() is the http server's dispatch function: it routes (404,
 * 405), authenticates an API key or, on the inbox routes, a user token
 * (401, 403), rate-limits (429) and checks the body's
 * headers (415, 413) before the body is read, then hands the request to the
 * route's handler.  Handlers live in one file per resource
 * (events_api.c, users_api.c, topics_api.c, templates_api.c, rules_api.c,
 * tokens_api.c, inbox_api.c, unsubscribe_api.c, receipts_api.c, webhooks_api.c,
 * dlq_api.c, ops_api.c, console_ops_api.c, replays_api.c, console_api.c); the
 * console's pages are console.c's.
 *
 * api_env is shared by every worker thread: its parts are thread-safe, and
 * it is read-only after gateway_start() built it.  It is a plain struct
 * because every handler reads it on the hot path.
 */
#ifndef HERALD_API_H
#define HERALD_API_H

#include "auth.h"
#include "console_session.h"
#include "cors.h"
#include "event.h"
#include "http.h"
#include "metrics.h"
#include "pgpool.h"
#include "publisher.h"
#include "ratelimit.h"
#include "router.h"
#include "store.h"

#include <stdatomic.h>
#include <stdbool.h>

#define API_MAX_BATCH    1000
#define API_DB_WAIT_MS   2000
#define API_STATUS_SLOTS 500 /* HTTP statuses 100..599 */

/* What a one-click unsubscribe did (unsubscribe_api.c), for its metric. */
typedef enum {
    API_UNSUBSCRIBED = 0,    /* the category was on and is now off */
    API_UNSUBSCRIBE_ALREADY, /* it was off already: nothing changed */
    API_UNSUBSCRIBE_NO_USER, /* the user was deleted since: nothing to change */
} api_unsubscribe_result;

#define API_UNSUBSCRIBE_RESULTS 3

typedef struct api_env api_env;
typedef struct receipts_env receipts_env; /* receipts_api.h */
typedef struct dlq_env dlq_env;           /* dlq_api.h */
typedef struct console_ops console_ops;   /* console_ops.h */
typedef struct replays replays;           /* replays.h */
typedef struct api_call api_call;

/* A route's handler: called for HTTP_PHASE_BODY and HTTP_PHASE_RESUMED. */
typedef void (*api_handler)(api_env *env, http_request *req, api_call *call, http_phase phase);

typedef struct api_endpoint {
    api_handler fn;
    bool json_body;  /* the request must carry a JSON body */
    bool produces;   /* it writes to Kafka: refused before its body while the publisher cannot */
    bool user_token; /* a user token for the path's {user_id} may call it (the inbox) */
    const char *body_type; /* not JSON: the body's Content-Type ("*": any), checked like JSON */
    bool console;          /* a console route: 404 while the console is disabled */
    bool session_only;     /* only the console's session cookie authenticates it */
} api_endpoint;

struct api_env {
    pgpool *pool;
    publisher *pub;
    auth_cache *auth;
    ratelimit_table *limits; /* NULL: unlimited */
    metrics_registry *metrics;
    char events_topic[256];
    char inbox_updates_topic[256];
    char *user_token_secret; /* owned; NULL: user tokens are refused, minting is 503 */
    size_t user_token_secret_len;
    char *unsubscribe_secret; /* owned; NULL: /v1/unsubscribe answers 503 */
    size_t unsubscribe_secret_len;
    char *console_secret; /* owned; NULL: the console is disabled (docs/console.md) */
    size_t console_secret_len;
    int64_t console_ttl_s;      /* how long a console session lasts */
    bool console_cookie_secure; /* the session cookie says Secure */
    cors_policy *cors;          /* owned; NULL: no CORS headers */
    receipts_env *receipts;     /* owned: the providers' receipts */
    dlq_env *dlq;               /* owned: where the DLQ is (dlq_api.h) */
    console_ops *ops;           /* owned: status and history of the pipeline */
    replays *replays;           /* owned: the background replays */
    event_limits ev_limits;
    int publish_timeout_ms;
    atomic_bool draining; /* shutting down: readiness fails */

    metrics_histogram *publish_latency;
    metrics_counter *rate_limited;
    metrics_counter *published_events;
    metrics_counter *inbox_updates_failed;
    metrics_counter *unsubscribes[API_UNSUBSCRIBE_RESULTS]; /* by api_unsubscribe_result */
    /* requests by route (index in the table, last = unmatched) and status */
    _Atomic(metrics_counter *) *requests;
    size_t nroutes;

    /* readiness of PostgreSQL, cached briefly so probes cannot load it */
    atomic_llong db_checked_ms;
    atomic_bool db_ok;
};

/* Per-request state, attached to the http_request. */
struct api_call {
    api_env *env;
    size_t route; /* index in the route table; nroutes when unmatched */
    router_params params;
    int64_t key_id; /* the API key's; 0 when a user token authorised the call */
    apikey_scope scope;
    /* set when the console's session cookie authorised the call */
    bool by_session;
    char session[CONSOLE_TOKEN_SIZE];
    int64_t session_expires; /* Unix seconds */
    void *work;              /* the handler's own state */
    void (*work_free)(void *);
};

/* The route table, in match order; *n gets its length. */
const router_route *api_routes(size_t *n);

/* Fills the metric handles of env (after env->metrics is set).  -1 when out of memory. */
int api_env_init_metrics(api_env *env) __attribute__((warn_unused_result));
void api_env_free_metrics(api_env *env);

/* The http_dispatch_fn and http_answered_fn of the gateway; ctx is the api_env. */
void api_dispatch(void *ctx, http_request *req, http_phase phase);
void api_answered(void *ctx, http_request *req);

/* ---- helpers for handlers ---- */

/* Parses the body as a JSON object, or answers 400 and returns -1. */
int api_body_object(http_request *req, json_t **out) __attribute__((warn_unused_result));

/* Borrows a database connection, or answers 503 and returns NULL. */
pg_conn *api_db(api_env *env, http_request *req) __attribute__((warn_unused_result));

/* Answers a store failure: 404 or 409 (with what), 400, 503 or 500. */
void api_store_error(http_request *req, store_status st, const char *what, const char *err);

/* Answers 400 naming field, with message. */
void api_bad_field(http_request *req, const char *field, const char *message);

/*
 * Runs sql (p freed after) whose one row and column is the JSON answer and
 * sends it with status (204: no body); no row or NULL is 404 "<what> not
 * found", a constraint violation 409, a database failure 503.
 */
void api_answer_query(api_env *env, http_request *req, int status, const char *sql, pg_params *p,
                      const char *what);

/* The query's integer argument name, 1..max (absent: def); -1 after answering 400. */
long api_query_long(http_request *req, const char *name, long def, long max);

/* The path's {user_id}, checked; NULL after answering 400. */
const char *api_user_id(http_request *req, api_call *call);

/*
 * raw as an event id, lowercased (Herald stores UUIDs so) into
 * out[ID_UUID_SIZE]; -1 after answering 400 naming field.
 */
int api_event_id(http_request *req, const char *field, const char *raw, char *out)
    __attribute__((warn_unused_result));

/* Reads one document of the path's user from the store. */
typedef store_status (*api_user_get_fn)(pg_conn *c, const char *user_id, json_t **out, char *err,
                                        size_t errlen);

/* GET of a user's document: 200 with what get read, or the store's error (404 names the user). */
void api_user_get(api_env *env, http_request *req, api_call *call, api_user_get_fn get);

#endif
