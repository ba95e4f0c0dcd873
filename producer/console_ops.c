/*
 * console_ops: the status settings, the sampler thread and its ring of
 * samples.
 */
#include "console_ops.h"

#include "buf.h"
#include "error.h"
#include "log.h"
#include "promtext.h"
#include "timeutil.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define HISTORY_SPAN_S    3600
#define METRICS_MAX_BYTES (4 * 1024 * 1024)
#define RATE_KEY_SIZE     96

/*
 * The counters whose rates the history keeps: a daemon ("worker" is every
 * worker-<channel>), its counter, a label the samples must carry (NULL:
 * any) and the rate's name after "<daemon>." ("worker.<channel>.").
 */
typedef struct rate_def {
    const char *daemon;
    const char *metric;
    const char *label;
    const char *name;
} rate_def;

static const rate_def rate_defs[] = {
    {"gateway", "herald_gateway_events_published_total", NULL, "accepted"},
    {"dispatcher", "herald_dispatcher_events_total", NULL, "events"},
    {"dispatcher", "herald_dispatcher_deliveries_total", NULL, "deliveries"},
    {"dispatcher", "herald_dispatcher_dead_letters_total", NULL, "dead_letters"},
    {"worker", "herald_worker_sends_total", "outcome=\"sent\"", "sent"},
    {"worker", "herald_worker_retries_scheduled_total", NULL, "retries"},
    {"worker", "herald_worker_dead_letters_total", NULL, "dead_letters"},
    {"realtime", "herald_realtime_events_pushed_total", NULL, "pushed"},
};

#define NRATES (sizeof rate_defs / sizeof rate_defs[0])

struct console_ops {
    herald_common_config common; /* brokers and prefix, owned */
    config_kafka_props props;    /* owned */
    char *groups;
    char *addrs[OPSSTATUS_DAEMONS];
    long timeout_ms, health_timeout_ms, interval_s;

    pthread_t thread;
    bool started;
    pthread_mutex_t mu; /* guards stop and the ring */
    pthread_cond_t wake;
    bool stop;
    json_t **ring; /* cap samples, oldest at (head - count) */
    size_t cap, head, count;

    /* the sampler's own: the counters of the pass before */
    json_t *prev_totals;
    int64_t prev_ms;
};

/* ------------------------------------------------------------- settings */

/* A copy of s (NULL stays NULL) into *out; -1 when out of memory. */
static int copy_str(const char *s, char **out)
{
    *out = s != NULL ? strdup(s) : NULL;
    return s != NULL && *out == NULL ? -1 : 0;
}

static int copy_settings(console_ops *o, const console_ops_config *cfg)
{
    if (copy_str(cfg->common->kafka_brokers, &o->common.kafka_brokers) != 0 ||
        copy_str(cfg->common->topic_prefix != NULL ? cfg->common->topic_prefix : "",
                 &o->common.topic_prefix) != 0 ||
        copy_str(cfg->groups, &o->groups) != 0)
        return -1;
    for (size_t i = 0; i < OPSSTATUS_DAEMONS; i++)
        if (copy_str(cfg->addrs[i], &o->addrs[i]) != 0)
            return -1;
    if (config_kafka_props_copy(cfg->kafka_props, &o->props) != 0)
        return -1;
    o->timeout_ms = cfg->timeout_ms;
    o->health_timeout_ms = cfg->health_timeout_ms;
    o->interval_s = cfg->sample_interval_s;
    return 0;
}

opsstatus_result console_ops_status(console_ops *o, PGconn *conn, json_t **out, char *err,
                                    size_t errlen)
{
    opsstatus_config sc = {
        .common = &o->common,
        .kafka_props = &o->props,
        .groups = o->groups,
        .timeout_ms = o->timeout_ms,
        .health_timeout_ms = o->health_timeout_ms,
        .count_held = true,
        .conn = conn,
    };
    memcpy(sc.addrs, o->addrs, sizeof sc.addrs);
    return opsstatus_collect(&sc, out, err, errlen);
}

/* -------------------------------------------------------------- sampler */

static size_t keep_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    return buf_append(userdata, ptr, size * nmemb) == 0 ? size * nmemb : 0;
}

/* GET http://addr/metrics into b; -1 when the daemon does not answer 200. */
static int fetch_metrics(const char *addr, long timeout_ms, buf *b)
{
    char url[300];
    long code = 0;
    CURL *c = curl_easy_init();
    if (c == NULL)
        return -1;
    snprintf(url, sizeof url, "http://%s/metrics", addr);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*"); /* as the health checks (opsstatus.c) */
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, keep_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, b);
    CURLcode rc = curl_easy_perform(c);
    if (rc == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_cleanup(c);
    return rc == CURLE_OK && code == 200 ? 0 : -1;
}

/* The rate's name for daemon (an opsstatus name), or false when def is not one of its. */
static bool rate_key(const rate_def *def, const char *daemon, char *out, size_t outlen)
{
    if (strcmp(def->daemon, "worker") == 0 && strncmp(daemon, "worker-", 7) == 0) {
        snprintf(out, outlen, "worker.%s.%s", daemon + 7, def->name);
        return true;
    }
    if (strcmp(def->daemon, daemon) != 0)
        return false;
    snprintf(out, outlen, "%s.%s", daemon, def->name);
    return true;
}

/* Every counter of rate_defs that the daemons serve now, by rate name, into totals. */
static void read_counters(const console_ops *o, json_t *totals)
{
    buf b;
    for (size_t d = 0; d < OPSSTATUS_DAEMONS; d++) {
        buf_init(&b, METRICS_MAX_BYTES);
        if (fetch_metrics(o->addrs[d], o->health_timeout_ms, &b) == 0)
            for (size_t i = 0; i < NRATES; i++) {
                char key[RATE_KEY_SIZE];
                double v = 0;
                if (rate_key(&rate_defs[i], opsstatus_daemon_names[d], key, sizeof key) &&
                    promtext_sum(b.data != NULL ? b.data : "", b.len, rate_defs[i].metric,
                                 rate_defs[i].label, &v))
                    json_object_set_new(totals, key, json_real(v));
            }
        buf_free(&b);
    }
}

/* The rates since the pass before, and this pass's counters kept for the next. */
static json_t *sample_rates(console_ops *o, int64_t now_ms)
{
    json_t *totals = json_object(), *rates = json_object();
    if (totals == NULL || rates == NULL) {
        json_decref(totals);
        return rates;
    }
    read_counters(o, totals);
    double dt = (double)(now_ms - o->prev_ms) / 1000.0;
    const char *key;
    json_t *v;
    json_object_foreach(totals, key, v)
    {
        json_t *prev = json_object_get(o->prev_totals, key);
        if (prev == NULL || dt <= 0)
            continue;
        double delta = json_real_value(v) - json_real_value(prev);
        /* A counter that went back was restarted from zero. */
        if (delta < 0)
            delta = json_real_value(v);
        json_object_set_new(rates, key, json_real(delta / dt));
    }
    json_decref(o->prev_totals);
    o->prev_totals = totals;
    o->prev_ms = now_ms;
    return rates;
}

/* {"<daemon>": healthy} from the status document's daemons. */
static json_t *health_of(const json_t *doc)
{
    json_t *out = json_object(), *d;
    size_t i;
    json_array_foreach(json_object_get(doc, "daemons"), i, d) json_object_set(
        out, json_string_value(json_object_get(d, "name")), json_object_get(d, "healthy"));
    return out;
}

/* One sample (console_ops.h); NULL when out of memory. */
static json_t *take_sample(console_ops *o)
{
    char err[512];
    json_t *doc = NULL, *sample = NULL;
    opsstatus_config sc = {
        .common = &o->common,
        .kafka_props = &o->props,
        .groups = o->groups,
        .timeout_ms = o->timeout_ms,
        .health_timeout_ms = o->health_timeout_ms,
    };
    memcpy(sc.addrs, o->addrs, sizeof sc.addrs);
    opsstatus_result res = opsstatus_collect(&sc, &doc, err, sizeof err);
    int64_t now = timeutil_now_ms();
    json_t *rates = sample_rates(o, now);
    if (res != OPSSTATUS_OK)
        return json_pack("{s:I,s:s,s:o*}", "t", (json_int_t)now, "error", err, "rates", rates);
    sample = json_pack("{s:I,s:O,s:O,s:O,s:o*,s:o*}", "t", (json_int_t)now, "lag",
                       json_object_get(doc, "group_lag"), "dlq", json_object_get(doc, "dlq_size"),
                       "retry", json_object_get(doc, "retry_depth"), "rates", rates, "health",
                       health_of(doc));
    json_decref(doc);
    return sample;
}

/* Keeps sample in the ring (taking it), dropping the oldest when full. */
static void keep_sample(console_ops *o, json_t *sample)
{
    pthread_mutex_lock(&o->mu);
    size_t slot = o->head;
    json_decref(o->ring[slot]);
    o->ring[slot] = sample;
    o->head = (o->head + 1) % o->cap;
    if (o->count < o->cap)
        o->count++;
    pthread_mutex_unlock(&o->mu);
}

/* Waits one interval or until asked to stop; returns whether to go on. */
static bool wait_interval(console_ops *o)
{
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += o->interval_s;
    pthread_mutex_lock(&o->mu);
    while (!o->stop && pthread_cond_timedwait(&o->wake, &o->mu, &until) == 0)
        ;
    bool go_on = !o->stop;
    pthread_mutex_unlock(&o->mu);
    return go_on;
}

/* The first sample comes one interval after the start, so a short-lived gateway takes none. */
static void *sampler_main(void *arg)
{
    console_ops *o = arg;
    while (wait_interval(o)) {
        json_t *sample = take_sample(o);
        if (sample != NULL)
            keep_sample(o, sample);
        else
            LOG_WARN("console", "history sample dropped: out of memory");
    }
    return NULL;
}

/* ------------------------------------------------------------ lifecycle */

static int start_sampler(console_ops *o, char *err, size_t errlen)
{
    pthread_condattr_t ca;
    o->cap = (size_t)(HISTORY_SPAN_S / o->interval_s);
    if (o->cap == 0)
        o->cap = 1;
    o->ring = calloc(o->cap, sizeof *o->ring);
    if (o->ring == NULL) {
        error_set(err, errlen, "out of memory");
        return -1;
    }
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&o->wake, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&o->thread, NULL, sampler_main, o) != 0) {
        error_set(err, errlen, "cannot start the history sampler");
        return -1;
    }
    o->started = true;
    return 0;
}

console_ops *console_ops_start(const console_ops_config *cfg, char *err, size_t errlen)
{
    console_ops *o = calloc(1, sizeof *o);
    if (o == NULL) {
        error_set(err, errlen, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&o->mu, NULL);
    if (copy_settings(o, cfg) != 0) {
        error_set(err, errlen, "out of memory");
        goto fail;
    }
    if (o->interval_s > 0 && start_sampler(o, err, errlen) != 0)
        goto fail;
    return o;
fail:
    console_ops_free(o);
    return NULL;
}

void console_ops_free(console_ops *o)
{
    if (o == NULL)
        return;
    if (o->started) {
        pthread_mutex_lock(&o->mu);
        o->stop = true;
        pthread_cond_signal(&o->wake);
        pthread_mutex_unlock(&o->mu);
        pthread_join(o->thread, NULL);
    }
    if (o->ring != NULL) {
        for (size_t i = 0; i < o->cap; i++)
            json_decref(o->ring[i]);
        pthread_cond_destroy(&o->wake);
    }
    free(o->ring);
    json_decref(o->prev_totals);
    pthread_mutex_destroy(&o->mu);
    config_kafka_props_free(&o->props);
    free(o->common.kafka_brokers);
    free(o->common.topic_prefix);
    free(o->groups);
    for (size_t i = 0; i < OPSSTATUS_DAEMONS; i++)
        free(o->addrs[i]);
    free(o);
}

json_t *console_ops_history(console_ops *o, int64_t since_ms)
{
    json_t *samples = json_array();
    if (samples == NULL)
        return NULL;
    pthread_mutex_lock(&o->mu);
    for (size_t i = 0; i < o->count; i++) {
        const json_t *s = o->ring[(o->head + o->cap - o->count + i) % o->cap];
        if (json_integer_value(json_object_get(s, "t")) >= since_ms)
            json_array_append_new(samples, json_deep_copy(s));
    }
    pthread_mutex_unlock(&o->mu);
    return json_pack("{s:I,s:o}", "interval_s", (json_int_t)o->interval_s, "samples", samples);
}
