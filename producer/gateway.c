/*
 * gateway: configuration table, assembly of the parts, ordered shutdown.
 */
#include "gateway.h"

#include "api.h"
#include "console_ops.h"
#include "cors.h"
#include "daemon.h"
#include "error.h"
#include "events_api.h"
#include "http.h"
#include "log.h"
#include "mailkey.h"
#include "opsserver.h"
#include "dlq_api.h"
#include "receipts_api.h"
#include "receipts_verify.h"
#include "replays.h"
#include "timeutil.h"
#include "topics.h"
#include "signedtoken.h"
#include "usertoken.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define GW(field) offsetof(gateway_config, field)

const config_var gateway_config_vars[] = {
    {.env = "HERALD_HTTP_ADDR",
     .flag = "http-addr",
     .type = CONFIG_ADDR,
     .def = "127.0.0.1:8080",
     .offset = GW(http_addr),
     .help = "listen address of the HTTP API (host:port; port 0 picks a free one)"},
    {.env = "HERALD_MAX_BODY_BYTES",
     .flag = "max-body-bytes",
     .type = CONFIG_INT,
     .def = "262144",
     .offset = GW(max_body_bytes),
     .min = 1024,
     .max = 16777216,
     .help = "largest request body accepted; larger ones get 413"},
    {.env = "HERALD_RATE_LIMIT",
     .flag = "rate-limit",
     .type = CONFIG_INT,
     .def = "10000",
     .offset = GW(rate_limit),
     .min = 0,
     .max = 100000000,
     .help = "requests per second per API key (token bucket); 0 = unlimited"},
    {.env = "HERALD_RATE_BURST",
     .flag = "rate-burst",
     .type = CONFIG_INT,
     .def = "20000",
     .offset = GW(rate_burst),
     .min = 0,
     .max = 100000000,
     .help = "requests an idle API key may send at once; 0 = one second's worth"},
    {.env = "HERALD_PUBLISH_TIMEOUT_MS",
     .flag = "publish-timeout",
     .type = CONFIG_DURATION,
     .def = "5000",
     .offset = GW(publish_timeout_ms),
     .min = 100,
     .max = 300000,
     .help = "how long a publish waits for the broker's acknowledgement before 503"},
    {.env = "HERALD_PUBLISH_QUEUE_MAX",
     .flag = "publish-queue-max",
     .type = CONFIG_INT,
     .def = "100000",
     .offset = GW(queue_max_messages),
     .min = 1,
     .max = 10000000,
     .help = "records queued towards Kafka at most; past it publishes get 503"},
    {.env = "HERALD_PUBLISH_LINGER_MS",
     .flag = "publish-linger",
     .type = CONFIG_DURATION,
     .def = "2",
     .offset = GW(linger_ms),
     .min = 0,
     .max = 1000,
     .help = "how long records wait to be batched (latency against throughput)"},
    {.env = "HERALD_HTTP_THREADS",
     .flag = "http-threads",
     .type = CONFIG_INT,
     .def = "0",
     .offset = GW(http_threads),
     .min = 0,
     .max = 256,
     .help = "HTTP worker threads; 0 = one per core"},
    {.env = "HERALD_HTTP_CLIENT_TIMEOUT",
     .flag = "http-client-timeout",
     .type = CONFIG_DURATION,
     .def = "30s",
     .offset = GW(client_timeout_ms),
     .min = 1000,
     .max = 3600000,
     .help = "an idle or slow client connection is closed after this"},
    {.env = "HERALD_HTTP_HEADER_TIMEOUT",
     .flag = "http-header-timeout",
     .type = CONFIG_DURATION,
     .def = "30s",
     .offset = GW(header_timeout_ms),
     .min = 100,
     .max = 3600000,
     .help = "a request head must be in within this of the connection's start or its previous "
             "answer (a slow client gets 408 and is closed)"},
    {.env = "HERALD_HTTP_MIN_BODY_RATE",
     .flag = "http-min-body-rate",
     .type = CONFIG_INT,
     .def = "1024",
     .offset = GW(min_body_rate),
     .min = 0,
     .max = 1000000000,
     .help = "bytes per second a request body must average after its first 5 s (slower: 408 "
             "and closed); 0 = no minimum"},
    {.env = "HERALD_HTTP_MAX_CONNECTIONS",
     .flag = "http-max-connections",
     .type = CONFIG_INT,
     .def = "4096",
     .offset = GW(max_connections),
     .min = 1,
     .max = 1000000,
     .help = "concurrent client connections at most"},
    {.env = "HERALD_DB_POOL_SIZE",
     .flag = "db-pool-size",
     .type = CONFIG_INT,
     .def = "4",
     .offset = GW(db_pool_size),
     .min = 1,
     .max = 64,
     .help = "PostgreSQL connections shared by the HTTP workers"},
    {.env = "HERALD_AUTH_CACHE_TTL",
     .flag = "auth-cache-ttl",
     .type = CONFIG_DURATION,
     .def = "5s",
     .offset = GW(auth_cache_ms),
     .min = 0,
     .max = 600000,
     .help = "how long an API key lookup is trusted (a revocation takes effect within it)"},
    {.env = "HERALD_SHUTDOWN_TIMEOUT",
     .flag = "shutdown-timeout",
     .type = CONFIG_DURATION,
     .def = "15s",
     .offset = GW(shutdown_timeout_ms),
     .min = 0,
     .max = 600000,
     .help = "on SIGTERM, how long requests in flight and the producer get to finish"},
    {.env = "HERALD_ACCESS_LOG",
     .flag = "access-log",
     .type = CONFIG_BOOL,
     .def = "true",
     .offset = GW(access_log),
     .help = "one JSON line per request on stderr"},
    {.env = "HERALD_USER_TOKEN_SECRET",
     .type = CONFIG_STRING,
     .offset = GW(user_token_secret),
     .flags = CONFIG_SECRET,
     .check = usertoken_check_secret,
     .help = "key of the HMAC that signs user tokens (docs/inapp.md), at least 32 bytes; "
             "unset: user tokens are refused and minting answers 503"},
    {.env = "HERALD_UNSUBSCRIBE_SECRET",
     .type = CONFIG_STRING,
     .offset = GW(unsubscribe_secret),
     .flags = CONFIG_SECRET,
     .check = signedtoken_check_secret,
     .help = "key of the HMAC that signs the email workers' unsubscribe links (the same "
             "value as theirs), at least 32 bytes; unset: /v1/unsubscribe answers 503"},
    {.env = "HERALD_CONSOLE_SECRET",
     .type = CONFIG_STRING,
     .offset = GW(console_secret),
     .flags = CONFIG_SECRET,
     .check = signedtoken_check_secret,
     .help = "key of the HMAC that signs the ops console's session cookies (docs/console.md), "
             "at least 32 bytes; unset: the console is disabled and /console/ answers 404"},
    {.env = "HERALD_CONSOLE_SESSION_TTL",
     .flag = "console-session-ttl",
     .type = CONFIG_DURATION,
     .def = "8h",
     .offset = GW(console_session_ms),
     .min = 60000,
     .max = 604800000,
     .help = "how long a console login lasts (its cookie's Max-Age), from 1m to 7 days"},
    /* The gateway speaks plain HTTP (TLS ends in front of it), so the
     * default is false; a deployment behind an HTTPS proxy sets it. */
    {.env = "HERALD_CONSOLE_COOKIE_SECURE",
     .flag = "console-cookie-secure",
     .type = CONFIG_BOOL,
     .def = "false",
     .offset = GW(console_cookie_secure),
     .help = "mark the console's session cookie Secure (sent over HTTPS only): set it when "
             "browsers reach the gateway through an HTTPS proxy"},
    {.env = "HERALD_GATEWAY_CORS_ORIGINS",
     .flag = "cors-origins",
     .type = CONFIG_STRING,
     .offset = GW(cors_origins),
     .check = cors_check_origins,
     .help = "web origins whose pages may call the inbox routes from a browser: "
             "comma-separated exact origins (https://app.example.com) or *; "
             "unset: no CORS headers"},
    {.env = "HERALD_RECEIPTS_BASE_URL",
     .flag = "receipts-base-url",
     .type = CONFIG_STRING,
     .offset = GW(receipts_base_url),
     .check = receipts_check_base_url,
     .help = "the gateway's public URL as providers call it (https://herald.example.com, "
             "behind any proxy): what Twilio signs; required with HERALD_TWILIO_AUTH_TOKEN"},
    {.env = "HERALD_TWILIO_AUTH_TOKEN",
     .type = CONFIG_STRING,
     .offset = GW(twilio_auth_token),
     .flags = CONFIG_SECRET,
     .help = "Twilio auth token that signs status callbacks (X-Twilio-Signature); "
             "unset: POST /v1/receipts/twilio answers 404"},
    {.env = "HERALD_SNS_CERT_FILE",
     .flag = "sns-cert-file",
     .type = CONFIG_STRING,
     .offset = GW(sns_cert_file),
     .check = receipts_sns_check_cert_file,
     .help = "PEM file of the certificates Amazon SNS signs with (one or more); "
             "unset: POST /v1/receipts/ses answers 404"},
    {.env = "HERALD_SNS_TOPIC_ARNS",
     .flag = "sns-topic-arns",
     .type = CONFIG_STRING,
     .offset = GW(sns_topic_arns),
     .check = receipts_check_topic_arns,
     .help = "comma-separated SNS topic ARNs whose SES notifications are taken; "
             "required with HERALD_SNS_CERT_FILE"},
    {.env = "HERALD_SNS_CONFIRM_HOSTS",
     .flag = "sns-confirm-hosts",
     .type = CONFIG_STRING,
     .def = "*.amazonaws.com",
     .offset = GW(sns_confirm_hosts),
     .help = "comma-separated hosts a SubscribeURL may point to (*.example.com takes "
             "subdomains); https only, http also on loopback"},
    {.env = "HERALD_HTTP_CALLBACK_SECRET",
     .type = CONFIG_STRING,
     .offset = GW(http_callback_secret),
     .flags = CONFIG_SECRET,
     .check = signedtoken_check_secret,
     .help = "secret of the Herald-Signature on the generic HTTP provider's callbacks, at "
             "least 32 bytes; unset: POST /v1/receipts/http answers 404"},
    {.env = "HERALD_EMAIL_BOUNCE_ADDRESS",
     .flag = "email-bounce-address",
     .type = CONFIG_STRING,
     .offset = GW(email_bounce_address),
     .check = mailkey_check_bounce_address,
     .help = "LOCAL@DOMAIN whose LOCAL+<key>@DOMAIN addresses bounces come back to (VERP); "
             "unset: bounces are matched by Message-ID only"},
    {.env = "HERALD_SOFT_BOUNCE_LIMIT",
     .flag = "soft-bounce-limit",
     .type = CONFIG_INT,
     .def = "3",
     .offset = GW(soft_bounce_limit),
     .min = 1,
     .max = 1000,
     .help = "transient or undetermined bounces of an address, without a delivery between, "
             "before it is suppressed"},
    /* Named after heraldctl status's flags: the same stack is described the same way. */
    {.env = "HERALD_STATUS_GROUP",
     .flag = "status-group",
     .type = CONFIG_STRING,
     .offset = GW(status_group),
     .check = opsstatus_check_groups,
     .help = "consumer groups GET /v1/ops/status reports, comma-separated (default: "
             "herald-dispatcher and <prefix>worker.email/sms/push/inapp)"},
    {.env = "HERALD_STATUS_GATEWAY",
     .flag = "status-gateway",
     .type = CONFIG_ADDR,
     .offset = GW(status_addrs[0]),
     .help = "address whose /healthz and /metrics stand for the gateway in the status and "
             "history (default: this gateway's own listener on 127.0.0.1)"},
    {.env = "HERALD_STATUS_DISPATCHER",
     .flag = "status-dispatcher",
     .type = CONFIG_ADDR,
     .def = OPSSTATUS_ADDR_DISPATCHER,
     .offset = GW(status_addrs[1]),
     .help = "dispatcher ops address (its /healthz and /metrics)"},
    {.env = "HERALD_STATUS_WORKER_EMAIL",
     .flag = "status-worker-email",
     .type = CONFIG_ADDR,
     .def = OPSSTATUS_ADDR_WORKER_EMAIL,
     .offset = GW(status_addrs[2]),
     .help = "email worker ops address"},
    {.env = "HERALD_STATUS_WORKER_SMS",
     .flag = "status-worker-sms",
     .type = CONFIG_ADDR,
     .def = OPSSTATUS_ADDR_WORKER_SMS,
     .offset = GW(status_addrs[3]),
     .help = "SMS worker ops address"},
    {.env = "HERALD_STATUS_WORKER_PUSH",
     .flag = "status-worker-push",
     .type = CONFIG_ADDR,
     .def = OPSSTATUS_ADDR_WORKER_PUSH,
     .offset = GW(status_addrs[4]),
     .help = "push worker ops address"},
    {.env = "HERALD_STATUS_WORKER_INAPP",
     .flag = "status-worker-inapp",
     .type = CONFIG_ADDR,
     .def = OPSSTATUS_ADDR_WORKER_INAPP,
     .offset = GW(status_addrs[5]),
     .help = "in-app worker ops address"},
    {.env = "HERALD_STATUS_REALTIME",
     .flag = "status-realtime",
     .type = CONFIG_ADDR,
     .def = OPSSTATUS_ADDR_REALTIME,
     .offset = GW(status_addrs[6]),
     .help = "herald-realtime ops address"},
    {.env = "HERALD_STATUS_TIMEOUT",
     .flag = "status-timeout",
     .type = CONFIG_DURATION,
     .def = "10s",
     .offset = GW(status_timeout_ms),
     .min = 100,
     .max = 600000,
     .help = "longest wait for the broker while gathering the status or replaying"},
    {.env = "HERALD_STATUS_HEALTH_TIMEOUT",
     .flag = "status-health-timeout",
     .type = CONFIG_DURATION,
     .def = "1s",
     .offset = GW(status_health_timeout_ms),
     .min = 50,
     .max = 60000,
     .help = "longest wait for one daemon's /healthz or /metrics"},
    {.env = "HERALD_CONSOLE_SAMPLE_INTERVAL_S",
     .flag = "console-sample-interval",
     .type = CONFIG_INT,
     .def = "10",
     .offset = GW(console_sample_interval_s),
     .min = 0,
     .max = 3600,
     .help = "seconds between the samples GET /v1/ops/history keeps (one hour of them); "
             "0: no sampler"},
    {0},
};

const char gateway_usage[] =
    "usage: herald-gateway [flags] [-X librdkafka.property=value ...]\n"
    "\n"
    "The HTTP API of Herald: publishes events to Kafka and manages users,\n"
    "preferences, topic subscriptions and templates in PostgreSQL.";

config_status gateway_config_load(gateway_config *cfg, int argc, char **argv, char *err,
                                  size_t errlen)
{
    const config_table tables[] = {{config_common_vars, &cfg->common}, {gateway_config_vars, cfg}};
    int first = argc;
    config_status st =
        config_load(tables, 2, argc, argv, &first, &cfg->kafka_props, gateway_usage, err, errlen);
    if (st == CONFIG_OK && first < argc) {
        error_set(err, errlen, "unexpected argument \"%s\" (see --help)", argv[first]);
        return CONFIG_ERROR;
    }
    return st;
}

void gateway_config_free(gateway_config *cfg)
{
    const config_table tables[] = {{config_common_vars, &cfg->common}, {gateway_config_vars, cfg}};
    config_free(tables, 2, &cfg->kafka_props);
}

struct gateway {
    api_env env;
    http_server *http;
    long shutdown_timeout_ms;
};

static double queue_depth(void *ctx)
{
    api_env *env = ctx;
    return env->pub != NULL ? (double)publisher_queue_depth(env->pub) : 0.0;
}

static void free_parts(gateway *g)
{
    publisher_free(g->env.pub);
    http_server_stop(g->http);
    console_ops_free(g->env.ops); /* after the requests that read it */
    replays_free(g->env.replays);
    auth_free(g->env.auth);
    ratelimit_table_free(g->env.limits);
    pgpool_free(g->env.pool);
    cors_policy_free(g->env.cors);
    receipts_env_free(g->env.receipts);
    dlq_env_free(g->env.dlq);
    api_env_free_metrics(&g->env);
    metrics_registry_free(g->env.metrics);
    if (g->env.user_token_secret != NULL) {
        memset(g->env.user_token_secret, 0, g->env.user_token_secret_len);
        free(g->env.user_token_secret);
    }
    if (g->env.unsubscribe_secret != NULL) {
        memset(g->env.unsubscribe_secret, 0, g->env.unsubscribe_secret_len);
        free(g->env.unsubscribe_secret);
    }
    if (g->env.console_secret != NULL) {
        memset(g->env.console_secret, 0, g->env.console_secret_len);
        free(g->env.console_secret);
    }
    free(g);
}

/* The status settings, the history sampler and the replays, once the listener's port is known. */
static int start_console_ops(gateway *g, const gateway_config *cfg, char *err, size_t errlen)
{
    char own[32];
    console_ops_config oc = {
        .common = &cfg->common,
        .kafka_props = &cfg->kafka_props,
        .groups = cfg->status_group,
        .timeout_ms = cfg->status_timeout_ms,
        .health_timeout_ms = cfg->status_health_timeout_ms,
        .sample_interval_s = cfg->console_sample_interval_s,
    };
    memcpy(oc.addrs, cfg->status_addrs, sizeof oc.addrs);
    if (oc.addrs[0] == NULL) {
        snprintf(own, sizeof own, "127.0.0.1:%u", (unsigned)http_server_port(g->http));
        oc.addrs[0] = own;
    }
    g->env.ops = console_ops_start(&oc, err, errlen);
    if (g->env.ops == NULL)
        return -1;
    const replays_config rc = {
        .brokers = cfg->common.kafka_brokers,
        .props = &cfg->kafka_props,
        .database_url = cfg->common.database_url,
        .events_topic = g->env.events_topic,
        .timeout_ms = (int)cfg->status_timeout_ms,
    };
    g->env.replays = replays_new(&rc);
    if (g->env.replays == NULL) {
        error_set(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

gateway *gateway_start(const gateway_config *cfg, char *err, size_t errlen)
{
    gateway *g = calloc(1, sizeof *g);
    if (g == NULL) {
        error_set(err, errlen, "out of memory");
        return NULL;
    }
    api_env *env = &g->env;
    g->shutdown_timeout_ms = cfg->shutdown_timeout_ms;
    config_topic(&cfg->common, TOPICS_EVENTS, env->events_topic, sizeof env->events_topic);
    config_topic(&cfg->common, TOPICS_INBOX_UPDATES, env->inbox_updates_topic,
                 sizeof env->inbox_updates_topic);
    env->publish_timeout_ms = (int)cfg->publish_timeout_ms;
    if (cfg->user_token_secret != NULL) {
        env->user_token_secret_len = strlen(cfg->user_token_secret);
        env->user_token_secret = strdup(cfg->user_token_secret);
        if (env->user_token_secret == NULL) {
            error_set(err, errlen, "out of memory");
            goto fail;
        }
    }
    if (cfg->unsubscribe_secret != NULL) {
        env->unsubscribe_secret_len = strlen(cfg->unsubscribe_secret);
        env->unsubscribe_secret = strdup(cfg->unsubscribe_secret);
        if (env->unsubscribe_secret == NULL) {
            error_set(err, errlen, "out of memory");
            goto fail;
        }
    }
    if (cfg->console_secret != NULL) {
        env->console_secret_len = strlen(cfg->console_secret);
        env->console_secret = strdup(cfg->console_secret);
        if (env->console_secret == NULL) {
            error_set(err, errlen, "out of memory");
            goto fail;
        }
    }
    env->console_ttl_s = cfg->console_session_ms / 1000;
    env->console_cookie_secure = cfg->console_cookie_secure;

    if (cfg->cors_origins != NULL && cfg->cors_origins[0] != '\0') {
        env->cors = cors_policy_new(cfg->cors_origins, err, errlen);
        if (env->cors == NULL)
            goto fail;
    }

    env->metrics = metrics_registry_new();
    if (env->metrics == NULL || api_env_init_metrics(env) != 0 ||
        metrics_gauge_fn(env->metrics, "herald_gateway_producer_queue_depth",
                         "Records queued or in flight towards Kafka", NULL, queue_depth,
                         env) != 0) {
        error_set(err, errlen, "cannot set up metrics: out of memory");
        goto fail;
    }
    const receipts_config rc = {
        .base_url = cfg->receipts_base_url,
        .twilio_auth_token = cfg->twilio_auth_token,
        .sns_cert_file = cfg->sns_cert_file,
        .sns_topic_arns = cfg->sns_topic_arns,
        .sns_confirm_hosts = cfg->sns_confirm_hosts,
        .http_callback_secret = cfg->http_callback_secret,
        .bounce_address = cfg->email_bounce_address,
        .soft_bounce_limit = cfg->soft_bounce_limit,
    };
    env->receipts = receipts_env_new(&rc, env->metrics, err, errlen);
    if (env->receipts == NULL)
        goto fail;
    env->dlq =
        dlq_env_new(&cfg->common, &cfg->kafka_props, (int)cfg->publish_timeout_ms, err, errlen);
    if (env->dlq == NULL)
        goto fail;
    env->pool = pgpool_new(cfg->common.database_url, (size_t)cfg->db_pool_size, 1000, store_prepare,
                           err, errlen);
    if (env->pool == NULL)
        goto fail;
    env->auth = auth_new(env->pool, cfg->auth_cache_ms, 300000);
    if (env->auth == NULL) {
        error_set(err, errlen, "out of memory");
        goto fail;
    }
    if (cfg->rate_limit > 0) {
        env->limits = ratelimit_table_new((double)cfg->rate_limit, (double)cfg->rate_burst, 10000);
        if (env->limits == NULL) {
            error_set(err, errlen, "out of memory");
            goto fail;
        }
    }
    const publisher_config pc = {
        .brokers = cfg->common.kafka_brokers,
        .props = &cfg->kafka_props,
        .probe_topic = env->events_topic,
        .timeout_ms = (int)cfg->publish_timeout_ms,
        .queue_max_messages = (int)cfg->queue_max_messages,
        .linger_ms = (int)cfg->linger_ms,
        .done = events_api_delivered,
    };
    env->pub = publisher_new(&pc, err, errlen);
    if (env->pub == NULL)
        goto fail;

    const http_server_config hc = {
        .addr = cfg->http_addr,
        .max_body_bytes = (size_t)cfg->max_body_bytes,
        .threads = (unsigned)cfg->http_threads,
        .connection_timeout_s = (unsigned)((cfg->client_timeout_ms + 999) / 1000),
        .header_timeout_ms = (unsigned)cfg->header_timeout_ms,
        .min_body_rate = (unsigned)cfg->min_body_rate,
        .max_connections = (unsigned)cfg->max_connections,
        .access_log = cfg->access_log,
        .dispatch = api_dispatch,
        .answered = api_answered,
        .ctx = env,
    };
    g->http = http_server_start(&hc, err, errlen);
    if (g->http == NULL)
        goto fail;
    if (start_console_ops(g, cfg, err, errlen) != 0)
        goto fail;
    LOG_INFO("gateway", "listening on port %u, publishing to %s",
             (unsigned)http_server_port(g->http), env->events_topic);
    return g;
fail:
    free_parts(g);
    return NULL;
}

uint16_t gateway_port(const gateway *g)
{
    return http_server_port(g->http);
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

int gateway_stop(gateway *g)
{
    if (g == NULL)
        return 0;
    int64_t deadline = timeutil_monotonic_ms() + g->shutdown_timeout_ms;
    /*
     * From here every request is answered 503 shutting_down with
     * Connection: close (api.c), new connections included.  The listening
     * socket stays open until the server stops: libmicrohttpd's
     * MHD_quiesce_daemon() races its own worker threads in epoll mode (both
     * remove the listening socket from a worker's epoll set, and the loser
     * aborts the process), so it is not called.
     */
    daemon_shutdown(DAEMON_SHUTDOWN_INTAKE);
    atomic_store(&g->env.draining, true);

    /* Requests in flight finish: each waits at most the publish timeout. */
    daemon_shutdown(DAEMON_SHUTDOWN_DRAIN);
    unsigned busy;
    while ((busy = http_server_in_flight(g->http)) > 0 && timeutil_monotonic_ms() < deadline)
        sleep_ms(10);
    daemon_shutdown(DAEMON_SHUTDOWN_DURABLE);
    int64_t left_ms = deadline - timeutil_monotonic_ms();
    int unflushed = publisher_flush(g->env.pub, left_ms > 0 ? (int)left_ms : 0);
    if (busy > 0 || unflushed > 0)
        LOG_WARN("gateway", "shutdown deadline reached: %u requests and %d records left", busy,
                 unflushed);

    /* Purging resumes whatever still waits, with a 503; give those a moment. */
    daemon_shutdown(DAEMON_SHUTDOWN_RELEASE);
    publisher_free(g->env.pub);
    g->env.pub = NULL;
    for (int i = 0; i < 200 && http_server_in_flight(g->http) > 0; i++)
        sleep_ms(10);
    free_parts(g);
    LOG_INFO("gateway", "stopped");
    return unflushed;
}
