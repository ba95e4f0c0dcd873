/*
 * worker_harness: what the herald-worker integration suites share — a
 * scratch database and topic prefix per test, the test providers and the
 * worker as child processes, producing deliveries and reading back rows,
 * topics and provider records.
 *
 * Every wait is bounded in time; every child is killed and reaped by
 * wh_teardown(), which also drops the database and deletes the topics.
 * Only 127.0.0.1 is used.
 */
#ifndef HERALD_TESTS_WORKER_HARNESS_H
#define HERALD_TESTS_WORKER_HARNESS_H

#include <check.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "delivery.h"
#include "ids.h"
#include "kafka.h"
#include "kafka_admin.h"
#include "testsupport.h"
#include "testutil.h"
#include "timeutil.h"

#define WH_MAX_PROCS 8

typedef struct wh_proc {
    pid_t pid;
    int port;    /* the service port (SMTP / HTTP) */
    int control; /* the control port (HTTP provider: same as port) */
    bool exited;
    int status;
    char log[300];
} wh_proc;

typedef struct wh_env {
    const char *channel;
    char suffix[16];
    char db_url[600];
    char *db_url_owned;
    char prefix[32];
    const char *brokers;
    char dir[128]; /* scratch directory for logs and outboxes */
    /* deliveries, retry, dlq; and inbox.updates for the inapp channel */
    char topics[4][128];
    int ntopics;
    PGconn *db;
    kafka_producer *producer;
    wh_proc *procs[WH_MAX_PROCS];
    int nprocs;
} wh_env;

#define wh_db_exec(e, sql) testsupport_sql((e)->db, "%s", (sql))

/* The first column of the first row as text ("" when no row); malloc()ed. */
#define wh_db_text(e, ...) testsupport_sql_text((e)->db, __VA_ARGS__)

#define wh_db_long(e, ...) testsupport_sql_long((e)->db, __VA_ARGS__)

/* Whether every child is still running (reaps the ones that are not). */
static inline bool wh_all_alive(wh_env *e)
{
    bool ok = true;
    for (int i = 0; i < e->nprocs; i++) {
        wh_proc *p = e->procs[i];
        if (p->pid > 0 && !p->exited && waitpid(p->pid, &p->status, WNOHANG) == p->pid) {
            p->exited = true;
            fprintf(stderr, "child %s exited early (status %d)\n", p->log, p->status);
        }
        if (p->pid > 0 && p->exited)
            ok = false;
    }
    return ok;
}

static inline bool wh_alive(void *e)
{
    return wh_all_alive(e);
}

/* Polls a count query until it reaches want or timeout_ms passes; returns the last value. */
static inline long wh_wait_count(wh_env *e, long want, long timeout_ms, const char *fmt, ...)
{
    char sql[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sql, sizeof sql, fmt, ap);
    va_end(ap);
    return testsupport_wait_count(e->db, sql, want, timeout_ms, wh_alive, e);
}

static inline void wh_setup(wh_env *e, const char *channel)
{
    char err[512];
    memset(e, 0, sizeof *e);
    e->channel = channel;
    e->brokers = test_require_env("HERALD_KAFKA_BROKERS");
    (void)test_require_env("HERALD_DATABASE_URL");
    unsigned char r[4];
    ck_assert_int_eq(id_random_bytes(r, sizeof r), 0);
    char hex[9];
    id_hex(r, sizeof r, hex);
    snprintf(e->suffix, sizeof e->suffix, "%s", hex);
    snprintf(e->prefix, sizeof e->prefix, "t%s.", hex);
    snprintf(e->dir, sizeof e->dir, "/tmp/herald-test-worker-%s", hex);
    ck_assert_int_eq(mkdir(e->dir, 0700), 0);

    char *url = testsupport_db_create("worker", 1);
    ck_assert_msg(url != NULL, "cannot create the scratch database");
    snprintf(e->db_url, sizeof e->db_url, "%s", url);
    e->db_url_owned = url;
    e->db = PQconnectdb(e->db_url);
    ck_assert_msg(PQstatus(e->db) == CONNECTION_OK, "%s", PQerrorMessage(e->db));

    snprintf(e->topics[0], sizeof e->topics[0], "%sdeliveries.%s", e->prefix, channel);
    snprintf(e->topics[1], sizeof e->topics[1], "%sretry.%s", e->prefix, channel);
    snprintf(e->topics[2], sizeof e->topics[2], "%sdlq", e->prefix);
    snprintf(e->topics[3], sizeof e->topics[3], "%sinbox.updates", e->prefix);
    e->ntopics = strcmp(channel, "inapp") == 0 ? 4 : 3;
    kafka_topic_spec specs[4];
    kafka_topic_result results[4];
    for (int i = 0; i < e->ntopics; i++)
        specs[i] = (kafka_topic_spec){e->topics[i], 3, 1, NULL, 0};
    ck_assert_msg(kafka_topics_create(e->brokers, NULL, specs, (size_t)e->ntopics, 30000, results,
                                      err, sizeof err) == KAFKA_OK,
                  "create topics: %s", err);
    for (int i = 0; i < e->ntopics; i++)
        ck_assert_msg(results[i].outcome == KAFKA_TOPIC_CREATED, "topic %s: %s", e->topics[i],
                      results[i].msg);
    e->producer = kafka_producer_new(e->brokers, NULL, NULL, NULL, err, sizeof err);
    ck_assert_msg(e->producer != NULL, "%s", err);
}

/* Stops a child: sig, then SIGKILL after timeout_ms.  Returns its wait status. */
static inline int wh_stop(wh_proc *p, int sig, long timeout_ms)
{
    int status = -1;
    if (p->pid <= 0)
        return status;
    if (p->exited) {
        p->pid = 0;
        return p->status;
    }
    kill(p->pid, sig);
    int64_t deadline = timeutil_monotonic_ms() + timeout_ms;
    for (int i = 0; i < 100000; i++) {
        pid_t r = waitpid(p->pid, &status, WNOHANG);
        if (r == p->pid)
            break;
        if (timeutil_monotonic_ms() > deadline) {
            kill(p->pid, SIGKILL);
            waitpid(p->pid, &status, 0);
            status = -1;
            break;
        }
        testsupport_sleep_ms(20);
    }
    p->pid = 0;
    return status;
}

static inline void wh_teardown(wh_env *e)
{
    char err[256];
    for (int i = 0; i < e->nprocs; i++)
        if (e->procs[i]->pid > 0)
            wh_stop(e->procs[i], SIGKILL, 5000);
    e->nprocs = 0;
    if (e->producer) {
        kafka_producer_flush(e->producer, 5000);
        kafka_producer_destroy(e->producer);
    }
    const char *t[4] = {e->topics[0], e->topics[1], e->topics[2], e->topics[3]};
    if (kafka_topics_delete(e->brokers, NULL, t, (size_t)e->ntopics, 30000, err, sizeof err) !=
        KAFKA_OK)
        fprintf(stderr, "delete topics: %s\n", err);
    if (e->db)
        PQfinish(e->db);
    if (e->db_url_owned)
        testsupport_db_drop(e->db_url_owned);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", e->dir);
    if (getenv("HERALD_TEST_KEEP") == NULL && system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", e->dir);
}

/*
 * Starts argv[0] (a program in HERALD_BIN_DIR) with argv, environment
 * additions env ("K=V", NULL-terminated, may be NULL), stdout read for the
 * "listening on" line when want_listen; stderr (and stdout after that) into
 * <dir>/<log>.log.
 */
static inline void wh_spawn(wh_env *e, wh_proc *p, const char *log, const char *const *argv,
                            const char *const *env, bool want_listen)
{
    const char *bin = test_require_env("HERALD_BIN_DIR");
    char path[512];
    snprintf(path, sizeof path, "%s/%s", bin, argv[0]);
    snprintf(p->log, sizeof p->log, "%s/%s.log", e->dir, log);
    int listen_fd = -1;
    pid_t pid = testsupport_spawn_logged(path, (char *const *)argv, env, p->log,
                                         want_listen ? &listen_fd : NULL, true);
    ck_assert_int_gt(pid, 0);
    p->pid = pid;
    p->exited = false;
    if (e->nprocs < WH_MAX_PROCS)
        e->procs[e->nprocs++] = p;
    if (want_listen) {
        char line[512];
        int rc = testsupport_read_listen_line(listen_fd, 10000, &p->port, &p->control, line,
                                              sizeof line);
        close(listen_fd);
        ck_assert_msg(rc == 0, "%s did not report its port: \"%s\"", argv[0], line);
    }
}

static inline void wh_start_http_provider(wh_env *e, wh_proc *p, const char *name,
                                          const char *const *extra)
{
    const char *argv[32] = {"herald-test-http-provider", "--listen", "127.0.0.1:0"};
    int n = 3;
    for (int i = 0; extra && extra[i] && n < 31; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    wh_spawn(e, p, name, argv, NULL, true);
}

static inline void wh_start_smtp(wh_env *e, wh_proc *p, const char *const *extra)
{
    const char *argv[32] = {"herald-test-smtp-server", "--listen", "127.0.0.1:0", "--control",
                            "127.0.0.1:0"};
    int n = 5;
    for (int i = 0; extra && extra[i] && n < 31; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    wh_spawn(e, p, "smtp", argv, NULL, true);
}

/* Starts herald-worker for e's channel with the scratch database and prefix plus env. */
static inline void wh_start_worker(wh_env *e, wh_proc *p, const char *log, const char *const *env)
{
    char url[700], prefix[64], brokers[300], outbox[200];
    snprintf(url, sizeof url, "HERALD_DATABASE_URL=%s", e->db_url);
    snprintf(prefix, sizeof prefix, "HERALD_TOPIC_PREFIX=%s", e->prefix);
    snprintf(brokers, sizeof brokers, "HERALD_KAFKA_BROKERS=%s", e->brokers);
    snprintf(outbox, sizeof outbox, "HERALD_OUTBOX_DIR=%s/outbox", e->dir);
    const char *all[48] = {url,
                           prefix,
                           brokers,
                           outbox,
                           "HERALD_METRICS_ADDR=127.0.0.1:0",
                           "HERALD_LOG_LEVEL=info",
                           "HERALD_RETRY_BASE_MS=200",
                           "HERALD_WORKER_DRAIN_TIMEOUT=5s"};
    int n = 8;
    for (int i = 0; env && env[i] && n < 47; i++)
        all[n++] = env[i];
    all[n] = NULL;
    const char *argv[] = {"herald-worker", "--channel", e->channel, NULL};
    wh_spawn(e, p, log, argv, all, false);
}

/* ------------------------------------------------------------------ HTTP */

static inline size_t wh_collect(char *ptr, size_t size, size_t nmemb, void *ud)
{
    size_t n = size * nmemb;
    char **s = ud;
    size_t old = *s ? strlen(*s) : 0;
    char *ns = realloc(*s, old + n + 1);
    if (ns == NULL)
        return 0;
    memcpy(ns + old, ptr, n);
    ns[old + n] = '\0';
    *s = ns;
    return n;
}

/* GET (body NULL) or POST JSON to 127.0.0.1:port path; returns the parsed answer. */
static inline json_t *wh_http_json(int port, const char *path, const char *body)
{
    char url[512];
    char *out = NULL;
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    CURL *c = curl_easy_init();
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, wh_collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &out);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    }
    CURLcode rc = curl_easy_perform(c);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    ck_assert_msg(rc == CURLE_OK, "%s: %s", url, curl_easy_strerror(rc));
    json_t *j = out ? json_loads(out, 0, NULL) : NULL;
    ck_assert_msg(j != NULL, "%s: not JSON: %s", url, out ? out : "(empty)");
    free(out);
    return j;
}

static inline void wh_control(const wh_proc *p, const char *json)
{
    json_decref(wh_http_json(p->control, "/_control", json));
}

/* The provider's accepted records (all of them, up to 100000). */
static inline json_t *wh_records(const wh_proc *p)
{
    json_t *r = wh_http_json(p->control, "/_records?since=0&limit=100000", NULL);
    if (json_is_object(r)) {
        json_t *a = json_object_get(r, "records");
        json_incref(a);
        json_decref(r);
        r = a;
    }
    ck_assert_msg(json_is_array(r), "/_records is not an array");
    return r;
}

static inline long wh_stat(const wh_proc *p, const char *name)
{
    json_t *s = wh_http_json(p->control, "/_stats", NULL);
    json_t *v = json_object_get(s, name);
    if (v == NULL)
        v = json_object_get(json_object_get(s, "stats"), name);
    long n = (long)json_integer_value(v);
    json_decref(s);
    return n;
}

/* --------------------------------------------------------------- produce */

/*
 * A delivery for e's channel as the dispatcher writes it (malloc()ed), its
 * idempotency key into key (ID_UUID_SIZE).  subject is the email subject or
 * the push or inapp title; push and inapp carry data.
 */
static inline char *wh_delivery_json(wh_env *e, const char *user, const char *address,
                                     const char *subject, const char *body, char *key)
{
    char *json = NULL;
    size_t len = 0;
    delivery d = {0};
    ck_assert_int_eq(id_uuid_v4(d.event_id), 0);
    ck_assert_int_eq(delivery_channel_parse(e->channel, &d.channel), 0);
    ck_assert_int_eq(delivery_idempotency_key(d.event_id, d.channel, address, 0, d.idempotency_key,
                                              sizeof d.idempotency_key),
                     0);
    d.user_id = (char *)user;
    d.attempt = 1;
    d.address = (char *)address;
    d.body = (char *)body;
    if (d.channel == DELIVERY_EMAIL)
        d.subject = (char *)subject;
    if (d.channel == DELIVERY_PUSH || d.channel == DELIVERY_INAPP) {
        d.title = (char *)subject;
        d.data = json_pack("{s:s, s:i}", "order", "A-1", "n", 3);
    }
    d.event_type = (char *)"order.shipped";
    d.created_at = timeutil_now_ms();
    ck_assert_int_eq(delivery_serialize(&d, &json, &len), 0);
    json_decref(d.data);
    if (key)
        snprintf(key, ID_UUID_SIZE, "%s", d.idempotency_key);
    return json;
}

/* Produces wh_delivery_json() to deliveries.<channel>, keyed by user. */
static inline void wh_produce_delivery(wh_env *e, const char *user, const char *address,
                                       const char *subject, const char *body, char *key)
{
    char err[256];
    char *json = wh_delivery_json(e, user, address, subject, body, key);
    ck_assert(kafka_produce(e->producer, e->topics[0], user, strlen(user), json, strlen(json), NULL,
                            NULL, err, sizeof err) == KAFKA_OK);
    free(json);
}

static inline void wh_produce_raw(wh_env *e, const char *topic, const char *key, const char *value)
{
    char err[256];
    ck_assert(kafka_produce(e->producer, topic, key, strlen(key), value, strlen(value), NULL, NULL,
                            err, sizeof err) == KAFKA_OK);
}

static inline void wh_flush(wh_env *e)
{
    ck_assert_int_eq(kafka_producer_flush(e->producer, 10000), 0);
}

/* ----------------------------------------------------------------- read */

/*
 * Reads every record of topic (all partitions, from the start) until want
 * records were seen or timeout_ms passed; returns how many were seen.  Each
 * is passed to cb (may be NULL) while valid.
 */
typedef void (*wh_record_cb)(rd_kafka_message_t *m, void *ctx);

static inline int wh_read_topic(wh_env *e, const char *topic, int want, long timeout_ms,
                                wh_record_cb cb, void *ctx)
{
    char err[256], group[128];
    snprintf(group, sizeof group, "%sreader.%d", e->prefix, rand());
    kafka_consumer *c = kafka_consumer_new(e->brokers, group, NULL, NULL, err, sizeof err);
    ck_assert_msg(c != NULL, "%s", err);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(3);
    for (int p = 0; p < 3; p++)
        rd_kafka_topic_partition_list_add(l, topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    ck_assert_int_eq(rd_kafka_assign(kafka_consumer_rk(c), l), 0);
    rd_kafka_topic_partition_list_destroy(l);
    int seen = 0;
    int64_t deadline = timeutil_monotonic_ms() + timeout_ms;
    for (int i = 0; i < 100000 && seen < want && timeutil_monotonic_ms() < deadline; i++) {
        rd_kafka_message_t *m = kafka_consumer_poll(c, 100);
        if (m == NULL)
            continue;
        if (m->err == 0) {
            seen++;
            if (cb)
                cb(m, ctx);
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_assign(kafka_consumer_rk(c), NULL);
    kafka_consumer_destroy(c);
    return seen;
}

/*
 * The port after marker ("listening on port ") in p's log, waiting up to
 * 30 s; fails the test with the log's tail when p exits or never says it.
 */
static inline int wh_port_in_log(const wh_proc *p, const char *marker)
{
    for (int i = 0; i < 600; i++) {
        char *s = testsupport_read_file(p->log, NULL);
        const char *m = s ? strstr(s, marker) : NULL;
        int port = m ? atoi(m + strlen(marker)) : 0;
        free(s);
        if (port > 0)
            return port;
        if (p->pid > 0 && waitpid(p->pid, NULL, WNOHANG) == p->pid)
            break;
        testsupport_sleep_ms(50);
    }
    char tail[2048];
    ck_abort_msg("no \"%s\" in %s: %s", marker, p->log,
                 testsupport_file_tail(p->log, tail, sizeof tail));
    return 0;
}

/* The ops port a worker started with HERALD_METRICS_ADDR=127.0.0.1:0 reported in its log. */
static inline int wh_metrics_port(const wh_proc *p)
{
    return wh_port_in_log(p, "[opsserver 127.0.0.1:");
}

/* The value of the unlabelled series name on the /metrics of the ops port. */
static inline long wh_metric(int port, const char *name)
{
    char url[128], *out = NULL;
    snprintf(url, sizeof url, "http://127.0.0.1:%d/metrics", port);
    CURL *c = curl_easy_init();
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, wh_collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &out);
    ck_assert_int_eq(curl_easy_perform(c), CURLE_OK);
    curl_easy_cleanup(c);
    char want[160];
    snprintf(want, sizeof want, "\n%s ", name);
    const char *m = out ? strstr(out, want) : NULL;
    ck_assert_msg(m != NULL, "no %s in /metrics", name);
    long v = atol(m + strlen(want));
    free(out);
    return v;
}

/* A record's headers as a JSON object (last value wins). */
static inline json_t *wh_headers_json(rd_kafka_message_t *m)
{
    json_t *o = json_object();
    rd_kafka_headers_t *h = NULL;
    if (rd_kafka_message_headers(m, &h) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return o;
    const char *name;
    const void *val;
    size_t size;
    for (size_t i = 0; rd_kafka_header_get_all(h, i, &name, &val, &size) == 0; i++)
        json_object_set_new(o, name, json_stringn(val ? val : "", val ? size : 0));
    return o;
}

/* Collects every record of a topic as {"key","value","headers"} objects. */
static inline void wh_collect_record(rd_kafka_message_t *m, void *ctx)
{
    json_t *arr = ctx;
    json_t *o = json_object();
    json_object_set_new(o, "key", json_stringn(m->key ? m->key : "", m->key_len));
    json_object_set_new(o, "value", json_stringn(m->payload ? m->payload : "", m->len));
    json_object_set_new(o, "partition", json_integer(m->partition));
    json_object_set_new(o, "offset", json_integer(m->offset));
    json_object_set_new(o, "headers", wh_headers_json(m));
    json_array_append_new(arr, o);
}

/* The worker's log, for failure messages. */
static inline void wh_dump_log(const wh_proc *p)
{
    char *s = testsupport_read_file(p->log, NULL);
    if (s) {
        size_t n = strlen(s);
        fprintf(stderr, "---- %s (last 4000 bytes)\n%s\n----\n", p->log,
                n > 4000 ? s + n - 4000 : s);
        free(s);
    }
}

#endif
