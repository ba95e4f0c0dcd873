/*
 * heraldctl status [--group G[,G...]] [--gateway ADDR] [--dispatcher ADDR]
 *                  [--worker-email ADDR] [--worker-sms ADDR] [--worker-push ADDR]
 *                  [--json]
 *
 * Consumer lag per group and partition, the DLQ's size, the retry topics'
 * depth and whether each daemon's /healthz answers.
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
    "[--worker-email ADDR] [--worker-sms ADDR] [--worker-push ADDR] [--json]"

#define STATUS_MAX_GROUPS 32
#define STATUS_MAX_TOPICS 16

typedef struct status_flags {
    char *groups;
    char *gateway;
    char *dispatcher;
    char *worker_email;
    char *worker_sms;
    char *worker_push;
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
             "<prefix>worker.email/sms/push)"},
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

static bool expected(const status_group *g, const char *topic_suffix)
{
    for (size_t i = 0; i < 3 && g->expects[i] != NULL; i++)
        if (strcmp(g->expects[i], topic_suffix) == 0)
            return true;
    return false;
}

/* Adds one group's rows to rows (JSON array) and table; returns its total lag or -1. */
static int64_t report_group(const ctl_context *ctx, const status_group *g, const topic_marks *marks,
                            size_t nmarks, int timeout_ms, json_t *rows, table *t,
                            int64_t *retry_depth, char *err, size_t errlen)
{
    rd_kafka_topic_partition_list_t *list = NULL;
    kafka_consumer *client = client_for_group(ctx, g->name, err, errlen);
    rd_kafka_t *rk = client != NULL ? kafka_consumer_rk(client) : NULL;
    int64_t total = -1;
    size_t plen = strlen(ctx->common.topic_prefix);
    if (rk == NULL)
        goto out;
    list = rd_kafka_topic_partition_list_new(64);
    for (size_t i = 0; i < nmarks; i++) {
        if (strcmp(marks[i].name + plen, TOPICS_DLQ) == 0)
            continue;
        for (int p = 0; p < marks[i].npart; p++)
            rd_kafka_topic_partition_list_add(list, marks[i].name, p);
    }
    rd_kafka_resp_err_t e = rd_kafka_committed(rk, list, timeout_ms);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
        error_set(err, errlen, "committed offsets of group %s: %s", g->name, rd_kafka_err2str(e));
        goto out;
    }
    total = 0;
    for (size_t i = 0; i < nmarks; i++) {
        const topic_marks *m = &marks[i];
        const char *suffix = m->name + plen;
        bool any = false;
        for (int p = 0; p < m->npart; p++) {
            rd_kafka_topic_partition_t *tp = rd_kafka_topic_partition_list_find(list, m->name, p);
            if (tp != NULL && tp->offset >= 0)
                any = true;
        }
        if (!any && !expected(g, suffix))
            continue;
        for (int p = 0; p < m->npart; p++) {
            rd_kafka_topic_partition_t *tp = rd_kafka_topic_partition_list_find(list, m->name, p);
            int64_t committed = tp != NULL && tp->offset >= 0 ? tp->offset : -1;
            int64_t lag = committed >= 0 ? m->high[p] - committed : m->high[p] - m->low[p];
            if (lag < 0)
                lag = 0;
            total += lag;
            if (strncmp(suffix, "retry.", 6) == 0)
                retry_depth[i] = (retry_depth[i] < 0 ? 0 : retry_depth[i]) + lag;
            if (rows != NULL) {
                json_t *row = json_pack(
                    "{s:s,s:s,s:i,s:o,s:I,s:I}", "group", g->name, "topic", m->name, "partition", p,
                    "committed", committed >= 0 ? json_integer((json_int_t)committed) : json_null(),
                    "end", (json_int_t)m->high[p], "lag", (json_int_t)lag);
                if (row != NULL)
                    json_array_append_new(rows, row);
            }
            if (t != NULL && (m->high[p] > 0 || committed >= 0)) {
                char part[16], com[24], end[24], lagtxt[24];
                snprintf(part, sizeof(part), "%d", p);
                snprintf(com, sizeof(com), "%" PRId64, committed);
                if (committed < 0)
                    snprintf(com, sizeof(com), "-");
                snprintf(end, sizeof(end), "%" PRId64, m->high[p]);
                snprintf(lagtxt, sizeof(lagtxt), "%" PRId64, lag);
                const char *cells[] = {g->name, m->name, part, com, end, lagtxt};
                if (table_add(t, cells) != 0)
                    total = -1;
            }
        }
    }
out:
    if (list != NULL)
        rd_kafka_topic_partition_list_destroy(list);
    kafka_consumer_destroy(client);
    return total;
}

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

/* Splits "a,b" into groups; -1 (exit 2) on an empty name or too many. */
static const char *const status_channels[] = {"email", "sms", "push"};
static const char *const status_deliveries[] = {"deliveries.email", "deliveries.sms",
                                                "deliveries.push"};
static const char *const status_retries[] = {"retry.email", "retry.sms", "retry.push"};

/*
 * The topics a group is expected to consume, so that a partition it has not
 * committed yet counts whole: by its name, as the daemons name their groups
 * (dispatcher: "...dispatcher..."; workers: "...worker.<channel>").
 */
static void infer_expects(status_group *g)
{
    size_t len = strlen(g->name);
    for (size_t i = 0; i < 3; i++) {
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

static int parse_groups(const ctl_context *ctx, const char *list, status_group *out, size_t *n)
{
    *n = 0;
    if (list == NULL) {
        for (size_t i = 0; i < 4; i++)
            out[i] = (status_group){0};
        snprintf(out[0].name, sizeof(out[0].name), "herald-dispatcher");
        /* The workers' default group (channels/worker.c). */
        for (size_t i = 0; i < 3; i++)
            snprintf(out[i + 1].name, sizeof(out[i + 1].name), "%sworker.%s",
                     ctx->common.topic_prefix, status_channels[i]);
        for (size_t i = 0; i < 4; i++)
            infer_expects(&out[i]);
        *n = 4;
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

/* One daemon's row: its name, the address asked and what /healthz said. */
#define STATUS_DAEMONS 5
typedef struct status_daemon {
    const char *name;
    const char *addr;
    char health[256];
} status_daemon;

/* Asks every daemon's /healthz; returns how many rows out holds. */
static size_t check_daemons(const status_flags *f, status_daemon *out)
{
    const char *const names[STATUS_DAEMONS] = {"gateway", "dispatcher", "worker-email",
                                               "worker-sms", "worker-push"};
    const char *const addrs[STATUS_DAEMONS] = {f->gateway, f->dispatcher, f->worker_email,
                                               f->worker_sms, f->worker_push};
    curl_global_init(CURL_GLOBAL_DEFAULT);
    for (size_t i = 0; i < STATUS_DAEMONS; i++) {
        out[i].name = names[i];
        out[i].addr = addrs[i];
        check_health(addrs[i], f->health_timeout_ms, out[i].health, sizeof(out[i].health));
    }
    curl_global_cleanup();
    return STATUS_DAEMONS;
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

int cmd_status(const ctl_context *ctx, int argc, char **argv)
{
    status_flags f = {0};
    const config_table ctable = {status_vars, &f};
    status_group groups[STATUS_MAX_GROUPS];
    topic_marks marks[STATUS_MAX_TOPICS] = {0};
    int64_t retry_depth[STATUS_MAX_TOPICS];
    size_t ngroups = 0, nmarks = 0;
    kafka_consumer *client = NULL;
    rd_kafka_t *rk = NULL;
    table *lag_t = NULL, *t2 = NULL;
    json_t *out = NULL, *rows = NULL;
    char err[512];
    int first = argc, rc = CTL_EXIT_USAGE;

    config_status st = ctl_parse_flags("status", STATUS_USAGE, status_vars, &f, argc, argv, &first);
    if (st != CONFIG_OK) {
        rc = st == CONFIG_HELP ? CTL_EXIT_OK : CTL_EXIT_USAGE;
        goto out;
    }
    if (first < argc) {
        fprintf(stderr, "heraldctl status: unexpected argument \"%s\"\n", argv[first]);
        goto out;
    }
    if (parse_groups(ctx, f.groups, groups, &ngroups) != 0)
        goto out;
    rc = CTL_EXIT_FAILURE;
    for (size_t i = 0; i < STATUS_MAX_TOPICS; i++)
        retry_depth[i] = -1;

    client = client_for_group(ctx, "heraldctl-status", err, sizeof(err));
    rk = client != NULL ? kafka_consumer_rk(client) : NULL;
    if (rk == NULL ||
        read_marks(rk, ctx, (int)f.timeout_ms, marks, &nmarks, err, sizeof(err)) != 0) {
        cmdutil_kafka_error(ctx, "status", "cannot read the topics", err);
        goto out;
    }

    static const char *const lag_headers[] = {"GROUP",     "TOPIC", "PARTITION",
                                              "COMMITTED", "END",   "LAG"};
    if (f.json) {
        out = json_object();
        rows = json_array();
        if (out == NULL || rows == NULL)
            goto oom;
    } else if ((lag_t = table_new(6, lag_headers)) == NULL) {
        goto oom;
    }
    json_t *group_totals = f.json ? json_object() : NULL;
    for (size_t i = 0; i < ngroups; i++) {
        int64_t lag = report_group(ctx, &groups[i], marks, nmarks, (int)f.timeout_ms, rows, lag_t,
                                   retry_depth, err, sizeof(err));
        if (lag < 0) {
            cmdutil_kafka_error(ctx, "status", "cannot read consumer offsets", err);
            json_decref(group_totals);
            goto out;
        }
        if (group_totals != NULL)
            json_object_set_new(group_totals, groups[i].name, json_integer((json_int_t)lag));
    }

    size_t plen = strlen(ctx->common.topic_prefix);
    json_t *retry_json = f.json ? json_object() : NULL;
    int64_t dlq_size = backlog_depths(ctx, marks, nmarks, retry_depth, retry_json);

    status_daemon daemons[STATUS_DAEMONS];
    size_t ndaemons = check_daemons(&f, daemons);

    if (f.json) {
        json_t *daemons_json = json_array();
        for (size_t i = 0; i < ndaemons; i++)
            json_array_append_new(daemons_json,
                                  json_pack("{s:s,s:s,s:b,s:s}", "name", daemons[i].name, "addr",
                                            daemons[i].addr, "healthy",
                                            strcmp(daemons[i].health, "up") == 0, "status",
                                            daemons[i].health));
        json_object_set_new(out, "lag", rows);
        rows = NULL;
        json_object_set_new(out, "group_lag", group_totals);
        json_object_set_new(out, "dlq_size", json_integer(dlq_size));
        json_object_set_new(out, "retry_depth", retry_json);
        json_object_set_new(out, "daemons", daemons_json);
        char *s = json_dumps(out, JSON_INDENT(2));
        if (s != NULL)
            printf("%s\n", s);
        free(s);
    } else {
        printf("consumer lag:\n");
        table_print(lag_t, stdout);
        printf("\ndead letters: %" PRId64 " in %s%s\n", dlq_size, ctx->common.topic_prefix,
               TOPICS_DLQ);
        for (size_t i = 0; i < nmarks; i++)
            if (strncmp(marks[i].name + plen, "retry.", 6) == 0)
                printf("retry depth:  %" PRId64 " in %s\n", retry_depth[i], marks[i].name);
        static const char *const dh[] = {"DAEMON", "ADDRESS", "HEALTH"};
        if ((t2 = table_new(3, dh)) == NULL)
            goto oom;
        for (size_t i = 0; i < ndaemons; i++) {
            const char *cells[] = {daemons[i].name, daemons[i].addr, daemons[i].health};
            if (table_add(t2, cells) != 0)
                goto oom;
        }
        printf("\n");
        table_print(t2, stdout);
    }
    rc = CTL_EXIT_OK;
    goto out;
oom:
    fprintf(stderr, "heraldctl status: out of memory\n");
out:
    for (size_t i = 0; i < STATUS_MAX_TOPICS; i++) {
        free(marks[i].low);
        free(marks[i].high);
    }
    kafka_consumer_destroy(client);
    table_free(lag_t);
    table_free(t2);
    json_decref(rows);
    json_decref(out);
    config_free(&ctable, 1, NULL);
    return rc;
}
