/*
 * dispatcher_harness: what the herald-dispatcher integration suites share —
 * a scratch database and topic prefix per test, the dispatcher as a child
 * process, events published with a plain producer, and records read back
 * with a read_committed consumer (what a worker sees).
 *
 * Every wait is bounded in count and time; dh_teardown() stops the child,
 * deletes the topics and drops the database.  Only 127.0.0.1 is used.
 */
#ifndef HERALD_TESTS_DISPATCHER_HARNESS_H
#define HERALD_TESTS_DISPATCHER_HARNESS_H

#include <check.h>
#include <errno.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ids.h"
#include "kafka.h"
#include "kafka_admin.h"
#include "testsupport.h"
#include "testutil.h"
#include "timeutil.h"
#include "topics.h"

typedef struct dh_env {
    const char *brokers;
    char *db_url;
    char prefix[40];
    char group[80];
    char log[200];
    char tid[80];
    PGconn *db;
    kafka_producer *producer;
    pid_t pid;
    int starts;
    int guard_fd; /* see dh_guard() */
} dh_env;

/* One record read back. */
typedef struct dh_record {
    char *key;
    char *value;
    json_t *json; /* value parsed, or NULL */
    rd_kafka_headers_t *hdrs;
    int32_t partition;
    int64_t offset;
} dh_record;

typedef struct dh_records {
    dh_record *v;
    size_t n, cap;
} dh_records;

#define dh_sql(e, ...) testsupport_sql((e)->db, __VA_ARGS__)

/* The first column of the first row as text ("" when none); malloc()ed. */
#define dh_text(e, ...) testsupport_sql_text((e)->db, __VA_ARGS__)

#define dh_long(e, ...) testsupport_sql_long((e)->db, __VA_ARGS__)

/* Polls a count query until it reaches want or timeout_ms passes; returns the last value. */
static inline long dh_wait_count(dh_env *e, long want, long timeout_ms, const char *sql)
{
    return testsupport_wait_count(e->db, sql, want, timeout_ms, NULL, NULL);
}

static inline void dh_topic(const dh_env *e, const char *name, char *out, size_t outlen)
{
    snprintf(out, outlen, "%s%s", e->prefix, name);
}

/* The topics and database of e, removed; shared by dh_teardown() and the guard. */
static inline void dh_drop_resources(const char *brokers, const char *prefix, char *db_url)
{
    char err[512], names[16][128];
    const char *topics[16];
    size_t n = 0;
    for (size_t i = 0; topics_all[i].name != NULL && n < 16; i++, n++) {
        snprintf(names[n], sizeof names[n], "%s%s", prefix, topics_all[i].name);
        topics[n] = names[n];
    }
    if (kafka_topics_delete(brokers, NULL, topics, n, 30000, err, sizeof err) != KAFKA_OK)
        fprintf(stderr, "delete topics: %s\n", err);
    if (db_url != NULL)
        testsupport_db_drop(db_url);
}

/*
 * A failed assertion ends the test's process at once (Check calls _exit and
 * kills the process group, dispatcher included), so dh_teardown() never
 * runs.  A guard process outside the group waits on a pipe: a byte means
 * the test cleaned up; end-of-file means it died, and the guard removes its
 * topics and database.  Forked before any client thread or connection exists.
 */
static inline void dh_guard(dh_env *e)
{
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        setsid();
        close(fds[1]);
        char b;
        ssize_t r;
        do
            r = read(fds[0], &b, 1);
        while (r < 0 && errno == EINTR);
        if (r != 1)
            dh_drop_resources(e->brokers, e->prefix, e->db_url);
        _exit(0);
    }
    close(fds[0]);
    e->guard_fd = fds[1];
}

static inline void dh_setup(dh_env *e)
{
    char err[512], bin[512], out[4096], errout[4096], envp[64];
    memset(e, 0, sizeof *e);
    e->brokers = test_require_env("HERALD_KAFKA_BROKERS");
    (void)test_require_env("HERALD_DATABASE_URL");
    testsupport_topic_prefix(e->prefix, sizeof e->prefix);
    snprintf(e->group, sizeof e->group, "%sdispatcher", e->prefix);
    snprintf(e->tid, sizeof e->tid, "%sdispatcher-0", e->prefix);
    snprintf(e->log, sizeof e->log, "/tmp/herald-test-dispatcher-%s-log", e->prefix);

    e->db_url = testsupport_db_create("dispatcher", 1);
    ck_assert_msg(e->db_url != NULL, "cannot create the scratch database");
    dh_guard(e);
    e->db = PQconnectdb(e->db_url);
    ck_assert_msg(PQstatus(e->db) == CONNECTION_OK, "%s", PQerrorMessage(e->db));

    /* The operator's way: heraldctl creates every topic, explicitly. */
    snprintf(envp, sizeof envp, "HERALD_TOPIC_PREFIX=%s", e->prefix);
    const char *env[] = {envp, NULL};
    char *argv[] = {testsupport_bin("heraldctl", bin, sizeof bin),
                    "topics",
                    "create",
                    "--partitions",
                    "3",
                    NULL};
    int rc = testsupport_run(argv, env, out, sizeof out, errout, sizeof errout, 60000);
    ck_assert_msg(rc == 0, "heraldctl topics create: %d: %s%s", rc, out, errout);
    e->producer = kafka_producer_new(e->brokers, NULL, NULL, NULL, err, sizeof err);
    ck_assert_msg(e->producer != NULL, "%s", err);
}

/* Starts herald-dispatcher with the test's database, prefix and group, plus extra "K=V". */
static inline void dh_start(dh_env *e, const char *const *extra)
{
    char bin[512], url[1024], prefix[80], group[128], tid[128], log[256];
    snprintf(url, sizeof url, "HERALD_DATABASE_URL=%s", e->db_url);
    snprintf(prefix, sizeof prefix, "HERALD_TOPIC_PREFIX=%s", e->prefix);
    snprintf(group, sizeof group, "HERALD_DISPATCHER_GROUP=%s", e->group);
    /* A fixed id per test, as a deployment gives each replica: a restarted
     * dispatcher then fences its predecessor's open transaction at once. */
    snprintf(tid, sizeof tid, "HERALD_DISPATCHER_TRANSACTIONAL_ID=%s", e->tid);
    const char *env[32] = {url, prefix, group, "HERALD_METRICS_ADDR=127.0.0.1:0", tid,
                           /* a SIGKILLed member must leave the group quickly */
                           "HERALD_KAFKA_OPTS=session.timeout.ms=6000 heartbeat.interval.ms=500",
                           "HERALD_LOG_LEVEL=info"};
    size_t n = 7;
    for (size_t i = 0; extra != NULL && extra[i] != NULL && n < 31; i++)
        env[n++] = extra[i];
    env[n] = NULL;
    char *argv[] = {testsupport_bin("herald-dispatcher", bin, sizeof bin), NULL};
    snprintf(log, sizeof log, "%s.%d", e->log, e->starts++);
    e->pid = testsupport_spawn(argv, env, NULL, log);
    ck_assert_msg(e->pid > 0, "cannot start herald-dispatcher");
}

/* Sends sig and waits up to timeout_ms; returns the exit status as testsupport_wait(). */
static inline int dh_stop(dh_env *e, int sig, int timeout_ms)
{
    if (e->pid <= 0)
        return -1;
    kill(e->pid, sig);
    int rc = testsupport_wait(e->pid, timeout_ms);
    e->pid = 0;
    return rc;
}

static inline void dh_teardown(dh_env *e)
{
    if (e->pid > 0)
        (void)dh_stop(e, SIGKILL, 10000);
    if (e->producer != NULL)
        kafka_producer_destroy(e->producer);
    e->producer = NULL;
    if (e->db != NULL)
        PQfinish(e->db);
    e->db = NULL;
    dh_drop_resources(e->brokers, e->prefix, e->db_url);
    e->db_url = NULL;
    /* Tell the guard all is clean. */
    if (write(e->guard_fd, "x", 1) != 1)
        fprintf(stderr, "dispatcher harness: guard: %s\n", strerror(errno));
    close(e->guard_fd);
}

/* Builds an event JSON (data: a JSON text or NULL) with a fresh event id into id_out. */
static inline char *dh_event(const char *user, const char *type, const char *data,
                             const char *priority, const char *category, char *id_out)
{
    char id[ID_UUID_SIZE], ts[TIMEUTIL_RFC3339_SIZE], cat[128] = "";
    ck_assert_int_eq(id_uuid_v4(id), 0);
    if (id_out != NULL)
        memcpy(id_out, id, ID_UUID_SIZE);
    if (category != NULL)
        snprintf(cat, sizeof cat, ",\"category\":\"%s\"", category);
    size_t cap = 1024 + (data ? strlen(data) : 0);
    char *s = malloc(cap);
    snprintf(s, cap,
             "{\"event_id\":\"%s\",\"type\":\"%s\",\"%s\":\"%s\",\"data\":%s,"
             "\"priority\":\"%s\"%s,\"created_at\":\"%s\"}",
             id, type, strncmp(user, "topic:", 6) == 0 ? "topic" : "user_id",
             strncmp(user, "topic:", 6) == 0 ? user + 6 : user, data ? data : "{}",
             priority ? priority : "normal", cat,
             timeutil_format_rfc3339(timeutil_now_ms(), ts, sizeof ts));
    return s;
}

/* Publishes value on the events topic with key (and optional headers) and waits for the ack. */
static inline void dh_publish(dh_env *e, const char *key, const char *value,
                              rd_kafka_headers_t *hdrs)
{
    char err[512], topic[128];
    dh_topic(e, TOPICS_EVENTS, topic, sizeof topic);
    kafka_status st = kafka_produce(e->producer, topic, key, strlen(key), value, strlen(value),
                                    hdrs, NULL, err, sizeof err);
    ck_assert_msg(st == KAFKA_OK, "%s", err);
    ck_assert_int_eq(kafka_producer_flush(e->producer, 30000), 0);
}

static inline void dh_records_free(dh_records *r)
{
    for (size_t i = 0; i < r->n; i++) {
        free(r->v[i].key);
        free(r->v[i].value);
        json_decref(r->v[i].json);
        if (r->v[i].hdrs != NULL)
            rd_kafka_headers_destroy(r->v[i].hdrs);
    }
    free(r->v);
    memset(r, 0, sizeof *r);
}

/*
 * Reads topic (relative name) from the beginning with read_committed until
 * want records arrived or timeout_ms passed, then 300 ms more for extras.
 */
static inline void dh_read(dh_env *e, const char *name, size_t want, long timeout_ms,
                           dh_records *out)
{
    char err[512], topic[128], group[160];
    dh_topic(e, name, topic, sizeof topic);
    unsigned char r[4];
    char hex[9];
    ck_assert_int_eq(id_random_bytes(r, sizeof r), 0);
    snprintf(group, sizeof group, "%sreader-%s", e->prefix, id_hex(r, sizeof r, hex));
    config_kv kv[] = {{"isolation.level", "read_committed"}};
    config_kafka_props props = {kv, 1};
    kafka_consumer *c = kafka_consumer_new(e->brokers, group, NULL, &props, err, sizeof err);
    ck_assert_msg(c != NULL, "%s", err);
    const char *topics[] = {topic};
    ck_assert(kafka_consumer_subscribe(c, topics, 1, err, sizeof err) == KAFKA_OK);
    memset(out, 0, sizeof *out);
    int64_t deadline = timeutil_monotonic_ms() + timeout_ms, extra = 0;
    for (int i = 0; i < 1000000; i++) {
        int64_t now = timeutil_monotonic_ms();
        if (now > deadline || (extra != 0 && now > extra))
            break;
        rd_kafka_message_t *m = kafka_consumer_poll(c, 100);
        if (m == NULL)
            continue;
        if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            rd_kafka_message_destroy(m);
            continue;
        }
        if (out->n == out->cap) {
            out->cap = out->cap ? out->cap * 2 : 64;
            out->v = realloc(out->v, out->cap * sizeof(dh_record));
        }
        dh_record *rec = &out->v[out->n++];
        rec->key = strndup(m->key ? m->key : "", m->key_len);
        rec->value = strndup(m->payload ? m->payload : "", m->len);
        rec->json = json_loads(rec->value, 0, NULL);
        rec->hdrs = kafka_headers_copy(m);
        rec->partition = m->partition;
        rec->offset = m->offset;
        rd_kafka_message_destroy(m);
        if (out->n >= want && extra == 0)
            extra = timeutil_monotonic_ms() + 300;
    }
    kafka_consumer_destroy(c);
}

/* The string member of a record's JSON, or "". */
static inline const char *dh_str(const dh_record *r, const char *field)
{
    const char *s = json_string_value(json_object_get(r->json, field));
    return s != NULL ? s : "";
}

/* A header of a record as text ("" when absent), in a static buffer per call site use. */
static inline const char *dh_header(const dh_record *r, const char *name, char *buf, size_t len)
{
    const void *v = NULL;
    size_t n = 0;
    buf[0] = '\0';
    if (r->hdrs != NULL &&
        rd_kafka_header_get_last(r->hdrs, name, &v, &n) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        snprintf(buf, len, "%.*s", (int)n, v ? (const char *)v : "");
        return buf;
    }
    return buf;
}

/* Records of r whose JSON has field == value. */
static inline size_t dh_count(const dh_records *r, const char *field, const char *value)
{
    size_t n = 0;
    for (size_t i = 0; i < r->n; i++)
        if (strcmp(dh_str(&r->v[i], field), value) == 0)
            n++;
    return n;
}

/* The first record with field == value, or NULL. */
static inline const dh_record *dh_find(const dh_records *r, const char *field, const char *value)
{
    for (size_t i = 0; i < r->n; i++)
        if (strcmp(dh_str(&r->v[i], field), value) == 0)
            return &r->v[i];
    return NULL;
}

/*
 * Waits until the dispatcher's log shows its first partition assignment
 * (bounded).  Fails at once if the process exits meanwhile; either failure
 * quotes the end of the log.
 */
static inline void dh_wait_ready(dh_env *e, long timeout_ms)
{
    char path[256], tail[1536];
    snprintf(path, sizeof path, "%s.%d", e->log, e->starts - 1);
    int64_t deadline = timeutil_monotonic_ms() + timeout_ms;
    for (int i = 0; i < 10000 && timeutil_monotonic_ms() < deadline; i++) {
        FILE *f = fopen(path, "r");
        char line[2048];
        bool assigned = false;
        while (f != NULL && fgets(line, sizeof line, f) != NULL)
            if (strstr(line, "assigned") != NULL)
                assigned = true;
        if (f != NULL)
            fclose(f);
        if (assigned)
            return;
        int status;
        if (e->pid > 0 && waitpid(e->pid, &status, WNOHANG) == e->pid) {
            e->pid = 0;
            ck_abort_msg("herald-dispatcher exited (status 0x%x) before joining its group; "
                         "log %s ends:\n%s",
                         status, path, testsupport_file_tail(path, tail, sizeof tail));
        }
        testsupport_sleep_ms(100);
    }
    ck_abort_msg("herald-dispatcher did not join its group within %ld ms; log %s ends:\n%s",
                 timeout_ms, path, testsupport_file_tail(path, tail, sizeof tail));
}

#endif
