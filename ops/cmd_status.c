/*
 * heraldctl status [--group G[,G...]] [--gateway ADDR] [--dispatcher ADDR]
 *                  [--worker-email ADDR] [--worker-sms ADDR] [--worker-push ADDR]
 *                  [--worker-inapp ADDR] [--realtime ADDR]
 *                  [--json]
 *
 * Consumer lag per group and partition, the DLQ's size, the retry topics'
 * depth, whether each daemon's /healthz answers and, when a database is
 * configured, how many digest windows are open and follow-ups pending, and
 * how many of each are due.
 *
 * Committed offsets are read with a consumer of the group's id that never
 * subscribes (rd_kafka_committed is an OffsetFetch request), so asking
 * does not join the group nor trigger a rebalance.  Lag is end offset minus
 * committed offset; a partition the group never committed counts whole
 * (the daemons start from the earliest offset).
 *
 * Exit 0 when the report could be made, whatever it says (scripts read
 * --json); 1 when the broker cannot be reached.
 */
#include <curl/curl.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "cmdutil.h"
#include "error.h"
#include "kafka.h"
#include "table.h"
#include "topics.h"

#define STATUS_USAGE                                                                               \
    "usage: heraldctl status [--group G[,G...]] [--gateway ADDR] [--dispatcher ADDR] "             \
    "[--worker-email ADDR] [--worker-sms ADDR] [--worker-push ADDR] [--worker-inapp ADDR] "        \
    "[--realtime ADDR] [--json]"

#define STATUS_MAX_GROUPS 32
#define STATUS_MAX_TOPICS 16

typedef struct status_flags {
    char *groups;
    char *gateway;
    char *dispatcher;
    char *worker_email;
    char *worker_sms;
    char *worker_push;
    char *worker_inapp;
    char *realtime;
    bool json;
    long timeout_ms;
    long health_timeout_ms;
} status_flags;

#define F(field) offsetof(status_flags, field)

static const config_var status_vars[] = {
    {.flag = "group",
     .type = CONFIG_STRING,
     .offset = F(groups),
     .help = "consumer groups to report, comma-separated (default: herald-dispatcher and "
             "<prefix>worker.email/sms/push/inapp)"},
    {.flag = "gateway",
     .type = CONFIG_ADDR,
     .def = "127.0.0.1:8080",
     .offset = F(gateway),
     .help = "gateway address (its /healthz)"},
    {.flag = "dispatcher",
     .type = CONFIG_ADDR,
     .def = "127.0.0.1:9101",
     .offset = F(dispatcher),
     .help = "dispatcher metrics address"},
    {.flag = "worker-email",
     .type = CONFIG_ADDR,
     .def = "127.0.0.1:9102",
     .offset = F(worker_email),
     .help = "email worker metrics address"},
    {.flag = "worker-sms",
     .type = CONFIG_ADDR,
     .def = "127.0.0.1:9103",
     .offset = F(worker_sms),
     .help = "SMS worker metrics address"},
    {.flag = "worker-push",
     .type = CONFIG_ADDR,
     .def = "127.0.0.1:9104",
     .offset = F(worker_push),
     .help = "push worker metrics address"},
    {.flag = "worker-inapp",
     .type = CONFIG_ADDR,
     .def = "127.0.0.1:9105",
     .offset = F(worker_inapp),
     .help = "in-app worker metrics address"},
    {.flag = "realtime",
     .type = CONFIG_ADDR,
     .def = "127.0.0.1:9106",
     .offset = F(realtime),
     .help = "herald-realtime metrics address"},
    {.flag = "json",
     .type = CONFIG_BOOL,
     .def = "false",
     .offset = F(json),
     .help = "print JSON instead of tables"},
    {.flag = "timeout",
     .type = CONFIG_DURATION,
     .def = "10s",
     .offset = F(timeout_ms),
     .min = 100,
     .max = 600000,
     .help = "longest wait for the broker"},
    {.flag = "health-timeout",
     .type = CONFIG_DURATION,
     .def = "1s",
     .offset = F(health_timeout_ms),
     .min = 50,
     .max = 60000,
     .help = "longest wait for one /healthz"},
    {0},
};

/* A group and the topics it is expected to consume (names after the prefix). */
typedef struct status_group {
    char name[256];
    const char *expects[3];
} status_group;

typedef struct topic_marks {
    char name[512];
    int npart;
    int64_t *low, *high;
} topic_marks;

/* One daemon's row: its name, the address asked and what /healthz said. */
#define STATUS_DAEMONS 7
typedef struct status_daemon {
    const char *name;
    const char *addr;
    char health[256];
} status_daemon;

/*
 * Where the report is gathered: with --json the objects of the document,
 * else the lag table; the other side stays NULL.
 */
typedef struct status_out {
    json_t *root, *rows, *group_lag, *retry_json;
    table *lag;
} status_out;

/* Everything the report says, gathered before a line of it is printed. */
/* The digest windows or the follow-ups (docs/digests.md), when a database is configured. */
typedef struct status_held {
    bool asked;
    bool read;                       /* false: the database did not answer (why holds it) */
    long long waiting, running, due; /* windows: open, closing; follow-ups: pending, running */
    char why[256];
} status_held;

typedef struct status_report {
    status_group groups[STATUS_MAX_GROUPS];
    size_t ngroups;
    topic_marks marks[STATUS_MAX_TOPICS];
    size_t nmarks;
    int64_t retry_depth[STATUS_MAX_TOPICS]; /* -1: no reported group covers the topic */
    int64_t dlq_size;
    status_daemon daemons[STATUS_DAEMONS];
    size_t ndaemons;
    status_held digests;
    status_held followups;
    status_out out;
} status_report;

#define STATUS_CHANNELS 4
static const char *const status_channels[STATUS_CHANNELS] = {"email", "sms", "push", "inapp"};
static const char *const status_deliveries[STATUS_CHANNELS] = {
    "deliveries.email", "deliveries.sms", "deliveries.push", "deliveries.inapp"};
static const char *const status_retries[STATUS_CHANNELS] = {"retry.email", "retry.sms",
                                                            "retry.push", "retry.inapp"};

/*
 * The topics a group is expected to consume, so that a partition it has not
 * committed yet counts whole: by its name, as the daemons name their groups
 * (dispatcher: "...dispatcher..."; workers: "...worker.<channel>").
 */
static void infer_expects(status_group *g)
{
    size_t len = strlen(g->name);
    for (size_t i = 0; i < STATUS_CHANNELS; i++) {
        char suffix[32];
        size_t slen = (size_t)snprintf(suffix, sizeof(suffix), "worker.%s", status_channels[i]);
        if (len >= slen && strcmp(g->name + len - slen, suffix) == 0) {
            g->expects[0] = status_deliveries[i];
            g->expects[1] = status_retries[i];
            return;
        }
    }
    if (strstr(g->name, "dispatcher") != NULL)
        g->expects[0] = TOPICS_EVENTS;
}

/* Splits "a,b" into groups (NULL: the daemons' own); -1 (exit 2) on an empty name or too many. */
static int parse_groups(const ctl_context *ctx, const char *list, status_group *out, size_t *n)
{
    *n = 0;
    if (list == NULL) {
        for (size_t i = 0; i < STATUS_CHANNELS + 1; i++)
            out[i] = (status_group){0};
        snprintf(out[0].name, sizeof(out[0].name), "herald-dispatcher");
        /* The workers' default group (channels/worker.c). */
        for (size_t i = 0; i < STATUS_CHANNELS; i++)
            snprintf(out[i + 1].name, sizeof(out[i + 1].name), "%sworker.%s",
                     ctx->common.topic_prefix, status_channels[i]);
        for (size_t i = 0; i < STATUS_CHANNELS + 1; i++)
            infer_expects(&out[i]);
        *n = STATUS_CHANNELS + 1;
        return 0;
    }
    const char *s = list;
    while (*s != '\0' || *n == 0) {
        size_t len = strcspn(s, ",");
        if (len == 0 || len >= sizeof(out[0].name) || *n == STATUS_MAX_GROUPS) {
            fprintf(stderr,
                    "heraldctl status: --group: expected comma-separated group names, "
                    "got \"%.64s\"\n",
                    list);
            return -1;
        }
        out[*n] = (status_group){0};
        memcpy(out[*n].name, s, len);
        infer_expects(&out[*n]);
        (*n)++;
        s += len;
        if (*s == ',')
            s++;
        if (*s == '\0')
            break;
    }
    return 0;
}

/* Flags into f and the groups to report into r.  Returns -1 to go on, else the exit code. */
static int parse_args(const ctl_context *ctx, int argc, char **argv, status_flags *f,
                      status_report *r)
{
    int rc = ctl_parse_only_flags("status", STATUS_USAGE, status_vars, f, argc, argv);
    if (rc >= 0)
        return rc;
    if (parse_groups(ctx, f->groups, r->groups, &r->ngroups) != 0)
        return CTL_EXIT_USAGE;
    return -1;
}

/*
 * A client of group, for committed offsets; it never joins the group.  The
 * operator's -X pairs go in as the defaults so that auto-commit off, passed
 * last, wins whatever they say.
 */
static kafka_consumer *client_for_group(const ctl_context *ctx, const char *group, char *err,
                                        size_t errlen)
{
    static config_kv fixed_kv[] = {{(char *)"enable.auto.commit", (char *)"false"}};
    static const config_kafka_props fixed = {fixed_kv, 1};
    return kafka_consumer_new(ctx->common.kafka_brokers, group, &ctx->kafka_props, &fixed, err,
                              errlen);
}

/* Reads every Herald topic's watermarks; -1 with err when the broker does not answer. */
static int read_marks(rd_kafka_t *rk, const ctl_context *ctx, int timeout_ms, topic_marks *out,
                      size_t *n, char *err, size_t errlen)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 1, NULL, &md, timeout_ms);
    *n = 0;
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
        error_set(err, errlen, "no answer from the cluster: %s", rd_kafka_err2str(e));
        return -1;
    }
    int rc = 0;
    for (const topics_def *t = topics_all; t->name != NULL && *n < STATUS_MAX_TOPICS; t++) {
        topic_marks *m = &out[*n];
        config_topic(&ctx->common, t->name, m->name, sizeof(m->name));
        m->npart = 0;
        for (int i = 0; i < md->topic_cnt; i++)
            if (strcmp(md->topics[i].topic, m->name) == 0 && md->topics[i].err == 0)
                m->npart = md->topics[i].partition_cnt;
        m->low = calloc((size_t)m->npart + 1, sizeof(int64_t));
        m->high = calloc((size_t)m->npart + 1, sizeof(int64_t));
        (*n)++;
        if (m->low == NULL || m->high == NULL) {
            error_set(err, errlen, "out of memory");
            rc = -1;
            break;
        }
        for (int p = 0; p < m->npart; p++) {
            e = rd_kafka_query_watermark_offsets(rk, m->name, p, &m->low[p], &m->high[p],
                                                 timeout_ms);
            if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
                error_set(err, errlen, "watermarks of %s [%d]: %s", m->name, p,
                          rd_kafka_err2str(e));
                rc = -1;
                break;
            }
        }
        if (rc != 0)
            break;
    }
    rd_kafka_metadata_destroy(md);
    return rc;
}

/* The watermarks of every topic into r, through a client of its own; -1 with the error printed. */
static int read_topics(const ctl_context *ctx, const status_flags *f, status_report *r)
{
    char err[512];
    kafka_consumer *client = client_for_group(ctx, "heraldctl-status", err, sizeof(err));
    rd_kafka_t *rk = client != NULL ? kafka_consumer_rk(client) : NULL;
    int rc = 0;
    if (rk == NULL ||
        read_marks(rk, ctx, (int)f->timeout_ms, r->marks, &r->nmarks, err, sizeof(err)) != 0) {
        cmdutil_kafka_error(ctx, "status", "cannot read the topics", err);
        rc = -1;
    }
    kafka_consumer_destroy(client);
    return rc;
}

/* The JSON objects or the lag table the groups are reported into; -1 when out of memory. */
static int open_output(const status_flags *f, status_out *o)
{
    static const char *const lag_headers[] = {"GROUP",     "TOPIC", "PARTITION",
                                              "COMMITTED", "END",   "LAG"};
    if (f->json) {
        o->root = json_object();
        o->rows = json_array();
        o->group_lag = json_object();
        o->retry_json = json_object();
        if (o->root != NULL && o->rows != NULL && o->group_lag != NULL && o->retry_json != NULL)
            return 0;
    } else if ((o->lag = table_new(6, lag_headers)) != NULL) {
        return 0;
    }
    fprintf(stderr, "heraldctl status: out of memory\n");
    return -1;
}

/* The committed offsets of group on every partition but the DLQ's; NULL with err. */
static rd_kafka_topic_partition_list_t *committed_offsets(const ctl_context *ctx, const char *group,
                                                          const status_report *r, int timeout_ms,
                                                          char *err, size_t errlen)
{
    rd_kafka_topic_partition_list_t *list = NULL;
    kafka_consumer *client = client_for_group(ctx, group, err, errlen);
    rd_kafka_t *rk = client != NULL ? kafka_consumer_rk(client) : NULL;
    size_t plen = strlen(ctx->common.topic_prefix);
    if (rk == NULL)
        goto out;
    list = rd_kafka_topic_partition_list_new(64);
    for (size_t i = 0; i < r->nmarks; i++) {
        if (strcmp(r->marks[i].name + plen, TOPICS_DLQ) == 0)
            continue;
        for (int p = 0; p < r->marks[i].npart; p++)
            rd_kafka_topic_partition_list_add(list, r->marks[i].name, p);
    }
    rd_kafka_resp_err_t e = rd_kafka_committed(rk, list, timeout_ms);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
        error_set(err, errlen, "committed offsets of group %s: %s", group, rd_kafka_err2str(e));
        rd_kafka_topic_partition_list_destroy(list);
        list = NULL;
    }
out:
    kafka_consumer_destroy(client);
    return list;
}

/* The offset committed on topic [p], or -1 when there is none. */
static int64_t committed_at(const rd_kafka_topic_partition_list_t *list, const char *topic, int p)
{
    rd_kafka_topic_partition_t *tp = rd_kafka_topic_partition_list_find(list, topic, p);
    return tp != NULL && tp->offset >= 0 ? tp->offset : -1;
}

/* Whether the group committed on some partition of m. */
static bool any_committed(const rd_kafka_topic_partition_list_t *list, const topic_marks *m)
{
    for (int p = 0; p < m->npart; p++)
        if (committed_at(list, m->name, p) >= 0)
            return true;
    return false;
}

/* Whether g is expected to consume the topic named topic_suffix after the prefix. */
static bool expected(const status_group *g, const char *topic_suffix)
{
    for (size_t i = 0; i < 3 && g->expects[i] != NULL; i++)
        if (strcmp(g->expects[i], topic_suffix) == 0)
            return true;
    return false;
}

/*
 * One partition's row: always in the JSON; in the table only once the
 * partition holds data or a commit.  -1 when out of memory.
 */
static int add_lag_row(status_out *o, const char *group, const char *topic, int p,
                       int64_t committed, int64_t end, int64_t lag)
{
    if (o->rows != NULL) {
        json_t *row = json_pack("{s:s,s:s,s:i,s:o,s:I,s:I}", "group", group, "topic", topic,
                                "partition", p, "committed",
                                committed >= 0 ? json_integer((json_int_t)committed) : json_null(),
                                "end", (json_int_t)end, "lag", (json_int_t)lag);
        if (row != NULL)
            json_array_append_new(o->rows, row);
    }
    if (o->lag == NULL || (end <= 0 && committed < 0))
        return 0;
    char part[16], com[24], endtxt[24], lagtxt[24];
    snprintf(part, sizeof(part), "%d", p);
    if (committed >= 0)
        snprintf(com, sizeof(com), "%" PRId64, committed);
    else
        snprintf(com, sizeof(com), "-");
    snprintf(endtxt, sizeof(endtxt), "%" PRId64, end);
    snprintf(lagtxt, sizeof(lagtxt), "%" PRId64, lag);
    const char *cells[] = {group, topic, part, com, endtxt, lagtxt};
    return table_add(o->lag, cells);
}

/* Reports each partition of m for group; returns the topic's lag, or -1 with err. */
static int64_t report_topic(const char *group, const topic_marks *m,
                            const rd_kafka_topic_partition_list_t *list, status_out *o, char *err,
                            size_t errlen)
{
    int64_t sum = 0;
    for (int p = 0; p < m->npart; p++) {
        int64_t committed = committed_at(list, m->name, p);
        int64_t lag = committed >= 0 ? m->high[p] - committed : m->high[p] - m->low[p];
        if (lag < 0)
            lag = 0;
        sum += lag;
        if (add_lag_row(o, group, m->name, p, committed, m->high[p], lag) != 0) {
            error_set(err, errlen, "out of memory");
            return -1;
        }
    }
    return sum;
}

/*
 * Reports the topics g consumes or is expected to and adds its retry lag to
 * r's retry depths; returns its total lag, or -1 with err.
 */
static int64_t report_group(const ctl_context *ctx, const status_group *g, status_report *r,
                            int timeout_ms, char *err, size_t errlen)
{
    size_t plen = strlen(ctx->common.topic_prefix);
    rd_kafka_topic_partition_list_t *list =
        committed_offsets(ctx, g->name, r, timeout_ms, err, errlen);
    int64_t total = list != NULL ? 0 : -1;
    for (size_t i = 0; i < r->nmarks && list != NULL; i++) {
        const char *suffix = r->marks[i].name + plen;
        if (!any_committed(list, &r->marks[i]) && !expected(g, suffix))
            continue;
        int64_t lag = report_topic(g->name, &r->marks[i], list, &r->out, err, errlen);
        if (lag < 0) {
            total = -1;
            break;
        }
        total += lag;
        if (strncmp(suffix, "retry.", 6) == 0)
            r->retry_depth[i] = (r->retry_depth[i] < 0 ? 0 : r->retry_depth[i]) + lag;
    }
    if (list != NULL)
        rd_kafka_topic_partition_list_destroy(list);
    return total;
}

/* Every group's lag into r; -1 with the error printed when offsets cannot be read. */
static int report_groups(const ctl_context *ctx, const status_flags *f, status_report *r)
{
    char err[512];
    for (size_t i = 0; i < STATUS_MAX_TOPICS; i++)
        r->retry_depth[i] = -1;
    for (size_t i = 0; i < r->ngroups; i++) {
        int64_t lag = report_group(ctx, &r->groups[i], r, (int)f->timeout_ms, err, sizeof(err));
        if (lag < 0) {
            cmdutil_kafka_error(ctx, "status", "cannot read consumer offsets", err);
            return -1;
        }
        if (r->out.group_lag != NULL)
            json_object_set_new(r->out.group_lag, r->groups[i].name, json_integer((json_int_t)lag));
    }
    return 0;
}

/*
 * Returns the DLQ's size and completes retry_depth: a retry topic no
 * reported group covers counts what it retains.  With retry_json non-NULL,
 * adds each retry topic's depth to it.
 */
static int64_t backlog_depths(const ctl_context *ctx, const topic_marks *marks, size_t nmarks,
                              int64_t *retry_depth, json_t *retry_json)
{
    int64_t dlq_size = 0;
    size_t plen = strlen(ctx->common.topic_prefix);
    for (size_t i = 0; i < nmarks; i++) {
        const char *suffix = marks[i].name + plen;
        if (strcmp(suffix, TOPICS_DLQ) == 0)
            for (int p = 0; p < marks[i].npart; p++)
                dlq_size += marks[i].high[p] - marks[i].low[p];
        if (strncmp(suffix, "retry.", 6) == 0 && retry_depth[i] < 0) {
            retry_depth[i] = 0;
            for (int p = 0; p < marks[i].npart; p++)
                retry_depth[i] += marks[i].high[p] - marks[i].low[p];
        }
        if (retry_json != NULL && strncmp(suffix, "retry.", 6) == 0)
            json_object_set_new(retry_json, marks[i].name, json_integer(retry_depth[i]));
    }
    return dlq_size;
}

/* A curl write callback that keeps nothing: only the status code matters. */
static size_t discard_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    (void)ptr;
    (void)userdata;
    return size * nmemb;
}

/* "up", or why not, into out. */
static bool check_health(const char *addr, long timeout_ms, char *out, size_t outlen)
{
    char url[512];
    long code = 0;
    bool up = false;
    CURL *c = curl_easy_init();
    if (c == NULL) {
        snprintf(out, outlen, "cannot check (no curl handle)");
        return false;
    }
    snprintf(url, sizeof(url), "http://%s/healthz", addr);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    /* The daemons are asked directly: an http_proxy meant for the internet
     * would answer for them. */
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard_body);
    CURLcode rc = curl_easy_perform(c);
    if (rc != CURLE_OK) {
        snprintf(out, outlen, "down (%s)", curl_easy_strerror(rc));
    } else {
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
        up = code >= 200 && code < 300;
        if (up)
            snprintf(out, outlen, "up");
        else
            snprintf(out, outlen, "unhealthy (HTTP %ld)", code);
    }
    curl_easy_cleanup(c);
    return up;
}

/* Asks every daemon's /healthz; returns how many rows out holds. */
static size_t check_daemons(const status_flags *f, status_daemon *out)
{
    const char *const names[STATUS_DAEMONS] = {"gateway",    "dispatcher",  "worker-email",
                                               "worker-sms", "worker-push", "worker-inapp",
                                               "realtime"};
    const char *const addrs[STATUS_DAEMONS] = {f->gateway,    f->dispatcher,  f->worker_email,
                                               f->worker_sms, f->worker_push, f->worker_inapp,
                                               f->realtime};
    curl_global_init(CURL_GLOBAL_DEFAULT);
    for (size_t i = 0; i < STATUS_DAEMONS; i++) {
        out[i].name = names[i];
        out[i].addr = addrs[i];
        check_health(addrs[i], f->health_timeout_ms, out[i].health, sizeof(out[i].health));
    }
    curl_global_cleanup();
    return STATUS_DAEMONS;
}

/* One row of three counts (sql) into h; why says what failed. */
static void count_held(PGconn *conn, const char *sql, status_held *h)
{
    h->asked = true;
    if (conn == NULL) {
        snprintf(h->why, sizeof h->why, "database unreachable");
        return;
    }
    PGresult *res = PQexec(conn, sql);
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1) {
        h->waiting = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
        h->running = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
        h->due = strtoll(PQgetvalue(res, 0, 2), NULL, 10);
        h->read = true;
    } else {
        const char *msg = PQerrorMessage(conn);
        snprintf(h->why, sizeof h->why, "%.*s", (int)strcspn(msg, "\n"), msg);
    }
    PQclear(res);
}

/*
 * Counts the open and closing digest windows and the pending and running
 * follow-ups, and those due (their time passed: a dispatcher should be
 * closing or sending them), when the operator named a database; the rest
 * of the report does not need one.
 */
static void count_held_work(const ctl_context *ctx, status_held *windows, status_held *followups)
{
    static const char windows_sql[] =
        "SELECT count(*) FILTER (WHERE status = 'open'), "
        "count(*) FILTER (WHERE status = 'closing'), count(*) FILTER (WHERE closes_at <= now()) "
        "FROM digest_windows WHERE status IN ('open', 'closing')";
    static const char followups_sql[] =
        "SELECT count(*) FILTER (WHERE status = 'pending'), "
        "count(*) FILTER (WHERE status = 'running'), count(*) FILTER (WHERE due_at <= now()) "
        "FROM followups WHERE status IN ('pending', 'running')";
    if (!ctl_database_configured(ctx))
        return;
    PGconn *conn = ctl_pg_connect(ctx);
    count_held(conn, windows_sql, windows);
    count_held(conn, followups_sql, followups);
    PQfinish(conn);
}

/* {"<a>": n, "<b>": n, "due": n}, or {"error": why}. */
static json_t *held_json(const status_held *h, const char *a, const char *b)
{
    if (!h->read)
        return json_pack("{s:s}", "error", h->why);
    return json_pack("{s:I,s:I,s:I}", a, (json_int_t)h->waiting, b, (json_int_t)h->running, "due",
                     (json_int_t)h->due);
}

/* "<what>: N <a>, N <b>, N due", when asked. */
static void print_held(const status_held *h, const char *what, const char *a, const char *b)
{
    if (h->asked && h->read)
        printf("%s: %lld %s, %lld %s, %lld due\n", what, h->waiting, a, h->running, b, h->due);
    else if (h->asked)
        printf("%s: unknown (%s)\n", what, h->why);
}

/* The report as one JSON document on stdout; its parts move into the root. */
static int print_json(status_report *r)
{
    status_out *o = &r->out;
    json_t *daemons_json = json_array();
    for (size_t i = 0; i < r->ndaemons; i++)
        json_array_append_new(daemons_json,
                              json_pack("{s:s,s:s,s:b,s:s}", "name", r->daemons[i].name, "addr",
                                        r->daemons[i].addr, "healthy",
                                        strcmp(r->daemons[i].health, "up") == 0, "status",
                                        r->daemons[i].health));
    json_object_set_new(o->root, "lag", o->rows);
    json_object_set_new(o->root, "group_lag", o->group_lag);
    json_object_set_new(o->root, "dlq_size", json_integer(r->dlq_size));
    json_object_set_new(o->root, "retry_depth", o->retry_json);
    json_object_set_new(o->root, "daemons", daemons_json);
    if (r->digests.asked)
        json_object_set_new(o->root, "digest_windows", held_json(&r->digests, "open", "closing"));
    if (r->followups.asked)
        json_object_set_new(o->root, "followups", held_json(&r->followups, "pending", "running"));
    o->rows = o->group_lag = o->retry_json = NULL;
    char *s = json_dumps(o->root, JSON_INDENT(2));
    if (s != NULL)
        printf("%s\n", s);
    free(s);
    return CTL_EXIT_OK;
}

/* The report as the lag table, the backlogs and the daemon table on stdout. */
static int print_tables(const ctl_context *ctx, const status_report *r)
{
    static const char *const dh[] = {"DAEMON", "ADDRESS", "HEALTH"};
    size_t plen = strlen(ctx->common.topic_prefix);
    int rc = CTL_EXIT_FAILURE;
    table *t = NULL;
    printf("consumer lag:\n");
    table_print(r->out.lag, stdout);
    printf("\ndead letters: %" PRId64 " in %s%s\n", r->dlq_size, ctx->common.topic_prefix,
           TOPICS_DLQ);
    for (size_t i = 0; i < r->nmarks; i++)
        if (strncmp(r->marks[i].name + plen, "retry.", 6) == 0)
            printf("retry depth:  %" PRId64 " in %s\n", r->retry_depth[i], r->marks[i].name);
    print_held(&r->digests, "digest windows", "open", "closing");
    print_held(&r->followups, "follow-ups", "pending", "running");
    if ((t = table_new(3, dh)) == NULL)
        goto out;
    for (size_t i = 0; i < r->ndaemons; i++) {
        const char *cells[] = {r->daemons[i].name, r->daemons[i].addr, r->daemons[i].health};
        if (table_add(t, cells) != 0)
            goto out;
    }
    printf("\n");
    table_print(t, stdout);
    rc = CTL_EXIT_OK;
out:
    if (rc != CTL_EXIT_OK)
        fprintf(stderr, "heraldctl status: out of memory\n");
    table_free(t);
    return rc;
}

/* Frees what r gathered; r may be partly filled. */
static void status_report_free(status_report *r)
{
    for (size_t i = 0; i < STATUS_MAX_TOPICS; i++) {
        free(r->marks[i].low);
        free(r->marks[i].high);
    }
    table_free(r->out.lag);
    json_decref(r->out.rows);
    json_decref(r->out.group_lag);
    json_decref(r->out.retry_json);
    json_decref(r->out.root);
}

int cmd_status(const ctl_context *ctx, int argc, char **argv)
{
    status_flags f = {0};
    const config_table ctable = {status_vars, &f};
    status_report r = {0};

    int rc = parse_args(ctx, argc, argv, &f, &r);
    if (rc >= 0)
        goto out;
    rc = CTL_EXIT_FAILURE;
    if (read_topics(ctx, &f, &r) != 0 || open_output(&f, &r.out) != 0 ||
        report_groups(ctx, &f, &r) != 0)
        goto out;
    r.dlq_size = backlog_depths(ctx, r.marks, r.nmarks, r.retry_depth, r.out.retry_json);
    r.ndaemons = check_daemons(&f, r.daemons);
    count_held_work(ctx, &r.digests, &r.followups);
    rc = f.json ? print_json(&r) : print_tables(ctx, &r);
out:
    status_report_free(&r);
    config_free(&ctable, 1, NULL);
    return rc;
}
