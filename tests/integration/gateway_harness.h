/*
 * gateway_harness: what the gateway's integration suites share.
 *
 * Once per test process (a constructor, before Check forks the cases) it
 * creates a scratch database herald_test_gateway_<random> with the schema
 * applied (testsupport), the events topic under a random prefix
 * "t<random>.", and two API keys (publish and admin); a destructor in the
 * same process drops the database and deletes the topic.  Each case starts
 * its own gateway in-process (gateway_start) on a free loopback port, talks
 * to it with libcurl, and reads Kafka back with a plain assigned consumer.
 */
#ifndef HERALD_GATEWAY_HARNESS_H
#define HERALD_GATEWAY_HARNESS_H

#include "apikey.h"
#include "gateway.h"
#include "ids.h"
#include "kafka.h"
#include "kafka_admin.h"
#include "log.h"
#include "testsupport.h"
#include "testutil.h"
#include "timeutil.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <stdarg.h>
#include <stddef.h>
#include <strings.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define H_PARTITIONS 3

static char h_prefix[32];
static char h_events_topic[64];
static char *h_dburl;
static char h_pubkey[APIKEY_SIZE];
static char h_adminkey[APIKEY_SIZE];
static int64_t h_pubkey_id;
static pid_t h_owner;

static inline PGconn *h_db(void)
{
    PGconn *c = PQconnectdb(h_dburl);
    ck_assert_msg(PQstatus(c) == CONNECTION_OK, "scratch database: %s", PQerrorMessage(c));
    return c;
}

/* Runs SQL on the scratch database; fails the test on error. */
static inline void h_sql(const char *sql)
{
    PGconn *c = h_db();
    PGresult *r = PQexec(c, sql);
    ck_assert_msg(PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK,
                  "%s: %s", sql, PQerrorMessage(c));
    PQclear(r);
    PQfinish(c);
}

/* The first column of the first row of a query, as text ("" when none). */
static inline void h_sql_value(const char *sql, char *out, size_t outlen)
{
    PGconn *c = h_db();
    PGresult *r = PQexec(c, sql);
    ck_assert_msg(PQresultStatus(r) == PGRES_TUPLES_OK, "%s: %s", sql, PQerrorMessage(c));
    snprintf(out, outlen, "%s", PQntuples(r) > 0 ? PQgetvalue(r, 0, 0) : "");
    PQclear(r);
    PQfinish(c);
}

__attribute__((constructor)) static void h_up(void)
{
    const char *brokers = test_require_env("HERALD_KAFKA_BROKERS");
    (void)test_require_env("HERALD_DATABASE_URL");
    char err[512];
    h_owner = getpid();
    log_init("test-gateway", LOG_LEVEL_WARN, LOG_FORMAT_TEXT);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    testsupport_topic_prefix(h_prefix, sizeof h_prefix);
    snprintf(h_events_topic, sizeof h_events_topic, "%sevents", h_prefix);

    h_dburl = testsupport_db_create("gateway", 1);
    if (h_dburl == NULL)
        exit(1);
    PGconn *c = PQconnectdb(h_dburl);
    int64_t admin_id;
    if (PQstatus(c) != CONNECTION_OK ||
        apikey_db_create(c, "test-publish", APIKEY_SCOPE_PUBLISH, h_pubkey, &h_pubkey_id, err,
                         sizeof err) != 0 ||
        apikey_db_create(c, "test-admin", APIKEY_SCOPE_ADMIN, h_adminkey, &admin_id, err,
                         sizeof err) != 0) {
        fprintf(stderr, "gateway harness: cannot create API keys: %s %s\n", err, PQerrorMessage(c));
        exit(1);
    }
    PQfinish(c);

    kafka_topic_spec spec = {
        .name = h_events_topic, .partitions = H_PARTITIONS, .replication_factor = 1};
    kafka_topic_result res;
    if (kafka_topics_create(brokers, NULL, &spec, 1, 30000, &res, err, sizeof err) != KAFKA_OK ||
        res.outcome == KAFKA_TOPIC_FAILED) {
        fprintf(stderr, "gateway harness: cannot create %s: %s %s\n", h_events_topic, err, res.msg);
        exit(1);
    }
    /* A new topic takes a moment to show in metadata; tests start after. */
    kafka_topic_desc d;
    for (int i = 0; i < 100; i++) {
        if (kafka_topic_describe(brokers, NULL, h_events_topic, 2000, &d, err, sizeof err) ==
                KAFKA_OK &&
            d.partitions == H_PARTITIONS)
            break;
        testsupport_sleep_ms(100);
    }
}

__attribute__((destructor)) static void h_down(void)
{
    if (getpid() != h_owner || h_dburl == NULL)
        return;
    char err[512];
    const char *topics[] = {h_events_topic};
    if (kafka_topics_delete(getenv("HERALD_KAFKA_BROKERS"), NULL, topics, 1, 30000, err,
                            sizeof err) != KAFKA_OK)
        fprintf(stderr, "gateway harness: topic %s not deleted: %s\n", h_events_topic, err);
    testsupport_db_drop(h_dburl);
    h_dburl = NULL;
    curl_global_cleanup();
}

/* ------------------------------------------------------------ gateways */

typedef struct h_gateway {
    gateway *gw;
    gateway_config cfg;
    char base[64];
} h_gateway;

/* Starts a gateway on the scratch database and topic; extra flags (NULL-ended) override. */
static inline void h_start(h_gateway *h, ...)
{
    char addr[32];
    int port = testsupport_free_port();
    snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
    snprintf(h->base, sizeof h->base, "http://%s", addr);
    char *argv[64] = {"herald-gateway",
                      "--http-addr",
                      addr,
                      "--database-url",
                      h_dburl,
                      "--topic-prefix",
                      h_prefix,
                      "--access-log=false",
                      "--auth-cache-ttl",
                      "1s",
                      "--shutdown-timeout",
                      "5s"};
    int argc = 12;
    va_list ap;
    va_start(ap, h);
    const char *a;
    while ((a = va_arg(ap, const char *)) != NULL && argc < 63)
        argv[argc++] = (char *)a;
    va_end(ap);
    char err[512];
    memset(&h->cfg, 0, sizeof h->cfg);
    config_status st = gateway_config_load(&h->cfg, argc, argv, err, sizeof err);
    ck_assert_msg(st == CONFIG_OK, "config: %s", err);
    h->gw = gateway_start(&h->cfg, err, sizeof err);
    ck_assert_msg(h->gw != NULL, "gateway_start: %s", err);
}

static inline void h_stop(h_gateway *h)
{
    gateway_stop(h->gw);
    h->gw = NULL;
    gateway_config_free(&h->cfg);
}

/* --------------------------------------------------------------- HTTP */

typedef struct h_resp {
    long status;
    char body[131072];
    size_t len;
    char headers[8192];
    size_t hlen;
    json_t *json;
} h_resp;

static size_t h_body_cb(char *p, size_t sz, size_t n, void *ud)
{
    h_resp *r = ud;
    size_t k = sz * n;
    if (r->len + k >= sizeof r->body)
        k = sizeof r->body - r->len - 1;
    memcpy(r->body + r->len, p, k);
    r->len += k;
    r->body[r->len] = '\0';
    return sz * n;
}

static size_t h_header_cb(char *p, size_t sz, size_t n, void *ud)
{
    h_resp *r = ud;
    size_t k = sz * n;
    if (r->hlen + k >= sizeof r->headers)
        k = sizeof r->headers - r->hlen - 1;
    memcpy(r->headers + r->hlen, p, k);
    r->hlen += k;
    r->headers[r->hlen] = '\0';
    return sz * n;
}

static inline void h_resp_clear(h_resp *r)
{
    json_decref(r->json);
    r->json = NULL; /* a second clear, or a clear before the next request, frees nothing twice */
    memset(r, 0, offsetof(h_resp, body));
    r->len = r->hlen = 0;
    r->body[0] = r->headers[0] = '\0';
}

/*
 * One request.  key may be NULL (no Authorization); body NULL sends none;
 * ctype NULL defaults to application/json when there is a body; extra is
 * more header lines, separated by '\n', or NULL.  r->json is the parsed body when JSON.
 */
static inline void h_http(h_gateway *h, const char *method, const char *path, const char *key,
                          const char *ctype, const char *body, const char *extra, h_resp *r)
{
    memset(r, 0, offsetof(h_resp, body));
    r->len = r->hlen = 0;
    r->body[0] = r->headers[0] = '\0';
    CURL *c = curl_easy_init();
    struct curl_slist *hs = NULL;
    char url[1024], line[512];
    snprintf(url, sizeof url, "%s%s", h->base, path);
    curl_easy_setopt(c, CURLOPT_URL, url);
    if (strcmp(method, "HEAD") == 0)
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L); /* else curl waits for a body */
    else
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 20000L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, h_body_cb);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, h_header_cb);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    hs = curl_slist_append(hs, "Expect:");
    if (key != NULL) {
        snprintf(line, sizeof line, "Authorization: Bearer %s", key);
        hs = curl_slist_append(hs, line);
    }
    if (body != NULL) {
        snprintf(line, sizeof line, "Content-Type: %s", ctype ? ctype : "application/json");
        hs = curl_slist_append(hs, line);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    }
    for (const char *x = extra; x != NULL && *x != '\0';) {
        size_t n = strcspn(x, "\n");
        snprintf(line, sizeof line, "%.*s", (int)n, x);
        hs = curl_slist_append(hs, line);
        x += n + (x[n] == '\n');
    }
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hs);
    CURLcode rc = curl_easy_perform(c);
    ck_assert_msg(rc == CURLE_OK, "%s %s: %s", method, path, curl_easy_strerror(rc));
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    curl_slist_free_all(hs);
    curl_easy_cleanup(c);
    r->json = json_loadb(r->body, r->len, 0, NULL);
}

/* The value of a response header (case-insensitive name) into out; "" when absent. */
static inline const char *h_header(const h_resp *r, const char *name, char *out, size_t outlen)
{
    size_t n = strlen(name);
    out[0] = '\0';
    for (const char *p = r->headers; *p != '\0';) {
        const char *eol = strstr(p, "\r\n");
        size_t len = eol ? (size_t)(eol - p) : strlen(p);
        if (len > n && strncasecmp(p, name, n) == 0 && p[n] == ':') {
            const char *v = p + n + 1;
            while (*v == ' ')
                v++;
            snprintf(out, outlen, "%.*s", (int)(len - (size_t)(v - p)), v);
            return out;
        }
        p += len + (eol ? 2 : 0);
    }
    return out;
}

/* Asserts the error shape and returns its code. */
static inline const char *h_error_code(const h_resp *r)
{
    ck_assert_msg(r->json != NULL, "not JSON: %s", r->body);
    json_t *e = json_object_get(r->json, "error");
    ck_assert_msg(json_is_object(e), "no error object: %s", r->body);
    ck_assert(json_is_string(json_object_get(e, "code")));
    ck_assert(json_is_string(json_object_get(e, "message")));
    return json_string_value(json_object_get(e, "code"));
}

static inline const char *h_error_field(const h_resp *r)
{
    json_t *f = json_object_get(json_object_get(r->json, "error"), "field");
    return json_is_string(f) ? json_string_value(f) : "";
}

/* -------------------------------------------------------------- Kafka */

typedef struct h_record {
    char key[256];
    int32_t partition;
    json_t *value;
} h_record;

/*
 * Reads the events topic from the beginning until a record whose value
 * has event_id == want (found: returns 1 and fills rec), or timeout_ms.
 * count_idem, when not NULL, counts the records read whose
 * idempotency_key equals *count_idem_key.
 */
static inline int h_find_record(const char *want, int timeout_ms, h_record *rec,
                                const char *count_key, int *count)
{
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", getenv("HERALD_KAFKA_BROKERS"), err, sizeof err);
    rd_kafka_conf_set(conf, "group.id", "test-gateway-reader", err, sizeof err);
    rd_kafka_conf_set(conf, "enable.auto.commit", "false", err, sizeof err);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
    ck_assert_msg(rk != NULL, "%s", err);
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(H_PARTITIONS);
    for (int p = 0; p < H_PARTITIONS; p++)
        rd_kafka_topic_partition_list_add(parts, h_events_topic, p)->offset =
            RD_KAFKA_OFFSET_BEGINNING;
    ck_assert_int_eq(rd_kafka_assign(rk, parts), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_topic_partition_list_destroy(parts);
    int found = 0;
    if (count != NULL)
        *count = 0;
    int64_t deadline = timeutil_monotonic_ms() + timeout_ms;
    while (!found && timeutil_monotonic_ms() < deadline) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
        if (m == NULL)
            continue;
        if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
            json_t *v = json_loadb(m->payload, m->len, 0, NULL);
            const char *id = json_string_value(json_object_get(v, "event_id"));
            const char *ik = json_string_value(json_object_get(v, "idempotency_key"));
            if (count != NULL && ik != NULL && strcmp(ik, count_key) == 0)
                (*count)++;
            if (id != NULL && strcmp(id, want) == 0) {
                found = 1;
                snprintf(rec->key, sizeof rec->key, "%.*s", (int)m->key_len, (const char *)m->key);
                rec->partition = m->partition;
                rec->value = v;
                v = NULL;
            }
            json_decref(v);
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return found;
}

/*
 * Runs heraldctl against h with API key key and the arguments after it
 * (NULL-terminated, at most 30), as an operator would: its exit status,
 * with its output in out and its errors in errout.
 */
static inline int h_heraldctl(const h_gateway *h, const char *key, char *out, size_t outlen,
                              char *errout, size_t errlen, ...)
{
    char bin[1024], env_url[256], env_key[256];
    char *argv[32];
    int n = 0;
    argv[n++] = testsupport_bin("heraldctl", bin, sizeof bin);
    va_list ap;
    va_start(ap, errlen);
    for (char *a; n < 31 && (a = va_arg(ap, char *)) != NULL;)
        argv[n++] = a;
    va_end(ap);
    argv[n] = NULL;
    snprintf(env_url, sizeof env_url, "HERALD_GATEWAY_URL=%s", h->base);
    snprintf(env_key, sizeof env_key, "HERALD_API_KEY=%s", key);
    const char *env[] = {env_url, env_key, NULL};
    return testsupport_run(argv, env, out, outlen, errout, errlen, 60000);
}

/* Publishes one event and returns its id (asserting 202). */
static inline void h_publish(h_gateway *h, const char *body, const char *extra, char *id_out)
{
    h_resp r;
    h_http(h, "POST", "/v1/events", h_pubkey, NULL, body, extra, &r);
    ck_assert_msg(r.status == 202, "publish: %ld %s", r.status, r.body);
    const char *id = json_string_value(json_object_get(r.json, "event_id"));
    ck_assert_ptr_nonnull(id);
    ck_assert(id_is_uuid(id));
    snprintf(id_out, ID_UUID_SIZE, "%s", id);
    h_resp_clear(&r);
}

#endif
