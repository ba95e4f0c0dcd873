/*
 * opsstatus: gathers the status document (opsstatus.h) from the broker,
 * the daemons' /healthz and the database.
 */
#include "opsstatus.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "kafka.h"
#include "log.h"
#include "partread.h"
#include "topics.h"

#define OPSSTATUS_MAX_GROUPS 32
#define OPSSTATUS_MAX_TOPICS 16

const char *const opsstatus_daemon_names[OPSSTATUS_DAEMONS] = {
    "gateway",     "dispatcher",   "worker-email", "worker-sms",
    "worker-push", "worker-inapp", "realtime"};

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

/* What is gathered before it becomes the document. */
typedef struct status_report {
    const opsstatus_config *c;
    status_group groups[OPSSTATUS_MAX_GROUPS];
    size_t ngroups;
    topic_marks marks[OPSSTATUS_MAX_TOPICS];
    size_t nmarks;
    int64_t retry_depth[OPSSTATUS_MAX_TOPICS]; /* -1: no reported group covers the topic */
    bool retry_exact[OPSSTATUS_MAX_TOPICS];
    json_t *group_exact;
    json_t *rows, *group_lag;
} status_report;

/* What count_records found on each partition of a topic. */
typedef struct topic_counts {
    int64_t *n;  /* records, or the offset difference when not exact */
    bool *exact; /* n is what a read_committed consumer gets */
} topic_counts;

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

/* Splits "a,b" into out (at most max); -1 with err on an empty name or too many. */
static int split_groups(const char *list, status_group *out, size_t max, size_t *n, char *err,
                        size_t errlen)
{
    const char *s = list;
    *n = 0;
    while (*s != '\0' || *n == 0) {
        size_t len = strcspn(s, ",");
        if (len == 0 || len >= sizeof(out[0].name) || *n == max) {
            error_set(err, errlen, "expected comma-separated group names, got \"%.64s\"", list);
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

int opsstatus_check_groups(const char *list, char *err, size_t errlen)
{
    status_group *scratch = NULL;
    size_t n = 0;
    int rc = 0;
    if (list == NULL || list[0] == '\0')
        return 0;
    scratch = calloc(OPSSTATUS_MAX_GROUPS, sizeof *scratch);
    if (scratch == NULL) {
        error_set(err, errlen, "out of memory");
        return -1;
    }
    rc = split_groups(list, scratch, OPSSTATUS_MAX_GROUPS, &n, err, errlen);
    free(scratch);
    return rc;
}

/* The groups of c (NULL: the daemons' own) into r; -1 with err on a bad list. */
static int parse_groups(status_report *r, char *err, size_t errlen)
{
    const opsstatus_config *c = r->c;
    if (c->groups != NULL)
        return split_groups(c->groups, r->groups, OPSSTATUS_MAX_GROUPS, &r->ngroups, err, errlen);
    snprintf(r->groups[0].name, sizeof(r->groups[0].name), "herald-dispatcher");
    /* The workers' default group (channels/worker.c). */
    for (size_t i = 0; i < STATUS_CHANNELS; i++)
        snprintf(r->groups[i + 1].name, sizeof(r->groups[i + 1].name), "%sworker.%s",
                 c->common->topic_prefix, status_channels[i]);
    r->ngroups = STATUS_CHANNELS + 1;
    for (size_t i = 0; i < r->ngroups; i++)
        infer_expects(&r->groups[i]);
    return 0;
}

/*
 * A client of group, for committed offsets; it never joins the group.  The
 * operator's -X pairs go in as the defaults so that auto-commit off, passed
 * last, wins whatever they say.
 */
static kafka_consumer *client_for_group(const opsstatus_config *c, const char *group, char *err,
                                        size_t errlen)
{
    static config_kv fixed_kv[] = {{(char *)"enable.auto.commit", (char *)"false"}};
    static const config_kafka_props fixed = {fixed_kv, 1};
    return kafka_consumer_new(c->common->kafka_brokers, group, c->kafka_props, &fixed, err, errlen);
}

/* Reads every Herald topic's watermarks; -1 with err when the broker does not answer. */
static int read_marks(rd_kafka_t *rk, status_report *r, char *err, size_t errlen)
{
    const struct rd_kafka_metadata *md = NULL;
    int timeout_ms = (int)r->c->timeout_ms;
    rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 1, NULL, &md, timeout_ms);
    r->nmarks = 0;
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
        error_set(err, errlen, "no answer from the cluster: %s", rd_kafka_err2str(e));
        return -1;
    }
    int rc = 0;
    for (const topics_def *t = topics_all; t->name != NULL && r->nmarks < OPSSTATUS_MAX_TOPICS;
         t++) {
        topic_marks *m = &r->marks[r->nmarks];
        config_topic(r->c->common, t->name, m->name, sizeof(m->name));
        m->npart = 0;
        for (int i = 0; i < md->topic_cnt; i++)
            if (strcmp(md->topics[i].topic, m->name) == 0 && md->topics[i].err == 0)
                m->npart = md->topics[i].partition_cnt;
        m->low = calloc((size_t)m->npart + 1, sizeof(int64_t));
        m->high = calloc((size_t)m->npart + 1, sizeof(int64_t));
        r->nmarks++;
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

/* The watermarks of every topic into r, through a client of its own; -1 with err. */
static int read_topics(status_report *r, char *err, size_t errlen)
{
    kafka_consumer *client = client_for_group(r->c, "heraldctl-status", err, errlen);
    rd_kafka_t *rk = client != NULL ? kafka_consumer_rk(client) : NULL;
    int rc = rk != NULL && read_marks(rk, r, err, errlen) == 0 ? 0 : -1;
    kafka_consumer_destroy(client);
    return rc;
}

/* The committed offsets of group on every partition but the DLQ's; NULL with err. */
static rd_kafka_topic_partition_list_t *committed_offsets(const status_report *r, const char *group,
                                                          char *err, size_t errlen)
{
    rd_kafka_topic_partition_list_t *list = NULL;
    kafka_consumer *client = client_for_group(r->c, group, err, errlen);
    rd_kafka_t *rk = client != NULL ? kafka_consumer_rk(client) : NULL;
    size_t plen = strlen(r->c->common->topic_prefix);
    if (rk == NULL)
        goto out;
    list = rd_kafka_topic_partition_list_new(64);
    for (size_t i = 0; i < r->nmarks; i++) {
        if (strcmp(r->marks[i].name + plen, TOPICS_DLQ) == 0)
            continue;
        for (int p = 0; p < r->marks[i].npart; p++)
            rd_kafka_topic_partition_list_add(list, r->marks[i].name, p);
    }
    rd_kafka_resp_err_t e = rd_kafka_committed(rk, list, (int)r->c->timeout_ms);
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

static void counts_free(topic_counts *t)
{
    free(t->n);
    free(t->exact);
    t->n = NULL;
    t->exact = NULL;
}

/*
 * Counts, on each partition p of m, the records a read_committed consumer
 * (the daemons read that way) gets from from[p] up to the high watermark
 * read earlier: transaction markers and aborted records are offsets, not
 * records.  A partition whose range spans more than OPSSTATUS_COUNT_SPAN
 * offsets is not read, so that status stays quick: it gets the offset
 * difference, an upper bound, and exact false; so does every partition of
 * a topic the reader could not read.  -1 with err when out of memory.
 */
static int count_records(const status_report *r, const topic_marks *m, const int64_t *from,
                         topic_counts *out, char *err, size_t errlen)
{
    int64_t *starts = calloc((size_t)m->npart + 1, sizeof *starts);
    int64_t *last = calloc((size_t)m->npart + 1, sizeof *last);
    partread *rd = NULL;
    char why[256] = "";
    int rc = -1, reading = 0;
    out->n = calloc((size_t)m->npart + 1, sizeof *out->n);
    out->exact = calloc((size_t)m->npart + 1, sizeof *out->exact);
    if (starts == NULL || last == NULL || out->n == NULL || out->exact == NULL) {
        error_set(err, errlen, "out of memory");
        counts_free(out);
        goto out;
    }
    for (int p = 0; p < m->npart; p++) {
        int64_t span = m->high[p] - from[p];
        /* A partition not to read starts past any end the reader can see. */
        starts[p] = INT64_MAX;
        out->exact[p] = span <= OPSSTATUS_COUNT_SPAN;
        out->n[p] = span > 0 && !out->exact[p] ? span : 0;
        if (span > 0 && out->exact[p]) {
            starts[p] = from[p];
            last[p] = m->high[p] - 1;
            reading++;
        }
    }
    rc = 0;
    if (reading == 0)
        goto out;
    partread_range range = PARTREAD_ALL((int)r->c->timeout_ms);
    range.starts = starts;
    range.nstarts = m->npart;
    partread_status st = partread_open(r->c->common->kafka_brokers, r->c->kafka_props, m->name,
                                       &range, &rd, why, sizeof why);
    /* Bounded: the reader ends at its range's end, or after timeout_ms without progress. */
    while (st == PARTREAD_OK) {
        rd_kafka_message_t *msg = NULL;
        st = partread_next(rd, &msg, why, sizeof why);
        if (st != PARTREAD_OK)
            break;
        int32_t p = msg->partition;
        /* Records written since the watermarks were read are not counted. */
        if (p >= 0 && p < m->npart && msg->offset <= last[p])
            out->n[p]++;
        if (p >= 0 && p < m->npart && msg->offset >= last[p])
            partread_stop(rd, p);
        rd_kafka_message_destroy(msg);
    }
    if (st != PARTREAD_END) {
        LOG_WARN(m->name, "counting records: %s; reporting offset differences", why);
        for (int p = 0; p < m->npart; p++)
            if (starts[p] != INT64_MAX) {
                out->n[p] = m->high[p] - from[p];
                out->exact[p] = false;
            }
    }
out:
    partread_close(rd);
    free(starts);
    free(last);
    return rc;
}

/*
 * Adds one row per partition of m for group; returns the topic's lag
 * (*exact: every row counted), or -1 with err.
 */
static int64_t report_topic(status_report *r, const char *group, const topic_marks *m,
                            const rd_kafka_topic_partition_list_t *list, bool *exact, char *err,
                            size_t errlen)
{
    int64_t sum = 0;
    topic_counts counts = {0};
    int64_t *from = calloc((size_t)m->npart + 1, sizeof *from);
    *exact = true;
    for (int p = 0; from != NULL && p < m->npart; p++) {
        int64_t committed = committed_at(list, m->name, p);
        from[p] = committed >= 0 ? committed : m->low[p];
    }
    if (from == NULL) {
        error_set(err, errlen, "out of memory");
        sum = -1;
        goto out;
    }
    if (count_records(r, m, from, &counts, err, errlen) != 0) {
        sum = -1;
        goto out;
    }
    for (int p = 0; p < m->npart; p++) {
        int64_t committed = committed_at(list, m->name, p);
        sum += counts.n[p];
        *exact = *exact && counts.exact[p];
        json_t *row = json_pack(
            "{s:s,s:s,s:i,s:o,s:I,s:I,s:b}", "group", group, "topic", m->name, "partition", p,
            "committed", committed >= 0 ? json_integer((json_int_t)committed) : json_null(), "end",
            (json_int_t)m->high[p], "lag", (json_int_t)counts.n[p], "exact", counts.exact[p]);
        if (row == NULL || json_array_append_new(r->rows, row) != 0) {
            error_set(err, errlen, "out of memory");
            sum = -1;
            goto out;
        }
    }
out:
    counts_free(&counts);
    free(from);
    return sum;
}

/*
 * Reports the topics g consumes or is expected to and adds its retry lag to
 * r's retry depths; returns its total lag, or -1 with err.
 */
static int64_t report_group(status_report *r, const status_group *g, bool *exact, char *err,
                            size_t errlen)
{
    size_t plen = strlen(r->c->common->topic_prefix);
    rd_kafka_topic_partition_list_t *list = committed_offsets(r, g->name, err, errlen);
    int64_t total = list != NULL ? 0 : -1;
    *exact = true;
    for (size_t i = 0; i < r->nmarks && list != NULL; i++) {
        const char *suffix = r->marks[i].name + plen;
        bool topic_exact = true;
        if (!any_committed(list, &r->marks[i]) && !expected(g, suffix))
            continue;
        int64_t lag = report_topic(r, g->name, &r->marks[i], list, &topic_exact, err, errlen);
        if (lag < 0) {
            total = -1;
            break;
        }
        total += lag;
        *exact = *exact && topic_exact;
        if (strncmp(suffix, "retry.", 6) == 0) {
            r->retry_exact[i] = (r->retry_depth[i] < 0 || r->retry_exact[i]) && topic_exact;
            r->retry_depth[i] = (r->retry_depth[i] < 0 ? 0 : r->retry_depth[i]) + lag;
        }
    }
    if (list != NULL)
        rd_kafka_topic_partition_list_destroy(list);
    return total;
}

/* Every group's lag into r; -1 with err when offsets cannot be read. */
static int report_groups(status_report *r, char *err, size_t errlen)
{
    for (size_t i = 0; i < OPSSTATUS_MAX_TOPICS; i++)
        r->retry_depth[i] = -1;
    for (size_t i = 0; i < r->ngroups; i++) {
        bool exact = true;
        int64_t lag = report_group(r, &r->groups[i], &exact, err, errlen);
        if (lag < 0)
            return -1;
        json_object_set_new(r->group_lag, r->groups[i].name, json_integer((json_int_t)lag));
        json_object_set_new(r->group_exact, r->groups[i].name, json_boolean(exact));
    }
    return 0;
}

/* The records m holds (*exact: counted, not an upper bound), or -1 with err. */
static int64_t topic_size(const status_report *r, const topic_marks *m, bool *exact, char *err,
                          size_t errlen)
{
    topic_counts counts = {0};
    int64_t size = 0;
    *exact = true;
    if (count_records(r, m, m->low, &counts, err, errlen) != 0)
        return -1;
    for (int p = 0; p < m->npart; p++) {
        size += counts.n[p];
        *exact = *exact && counts.exact[p];
    }
    counts_free(&counts);
    return size;
}

/*
 * Sets the DLQ's size and the retry topics' depths in root, completing
 * retry_depth: a retry topic no reported group covers counts what it
 * retains.  -1 with err when out of memory.
 */
static int backlog_depths(status_report *r, json_t *root, char *err, size_t errlen)
{
    json_t *depth = json_object(), *depth_exact = json_object();
    size_t plen = strlen(r->c->common->topic_prefix);
    int rc = -1;
    if (depth == NULL || depth_exact == NULL) {
        error_set(err, errlen, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < r->nmarks; i++) {
        const topic_marks *m = &r->marks[i];
        const char *suffix = m->name + plen;
        bool exact = true;
        if (strcmp(suffix, TOPICS_DLQ) == 0) {
            int64_t size = topic_size(r, m, &exact, err, errlen);
            if (size < 0)
                goto out;
            json_object_set_new(root, "dlq_size", json_integer((json_int_t)size));
            json_object_set_new(root, "dlq_size_exact", json_boolean(exact));
        }
        if (strncmp(suffix, "retry.", 6) != 0)
            continue;
        if (r->retry_depth[i] < 0) {
            if ((r->retry_depth[i] = topic_size(r, m, &r->retry_exact[i], err, errlen)) < 0)
                goto out;
        }
        json_object_set_new(depth, m->name, json_integer((json_int_t)r->retry_depth[i]));
        json_object_set_new(depth_exact, m->name, json_boolean(r->retry_exact[i]));
    }
    /* No DLQ topic yet: nothing dead-lettered. */
    if (json_object_get(root, "dlq_size") == NULL) {
        json_object_set_new(root, "dlq_size", json_integer(0));
        json_object_set_new(root, "dlq_size_exact", json_true());
    }
    json_object_set_new(root, "retry_depth", depth);
    json_object_set_new(root, "retry_depth_exact", depth_exact);
    depth = depth_exact = NULL;
    rc = 0;
out:
    json_decref(depth);
    json_decref(depth_exact);
    return rc;
}

/* A curl write callback that keeps nothing: only the status code matters. */
static size_t discard_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    (void)ptr;
    (void)userdata;
    return size * nmemb;
}

/* A /healthz request to addr, for the multi handle. */
static CURL *health_request(const char *addr, long timeout_ms)
{
    char url[512];
    CURL *c = curl_easy_init();
    if (c == NULL)
        return NULL;
    snprintf(url, sizeof(url), "http://%s/healthz", addr);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    /* The daemons are asked directly: an http_proxy meant for the internet
     * would answer for them. */
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard_body);
    return c;
}

/* "up", or why not, into out, from how the request ended. */
static bool health_of(CURL *c, CURLcode rc, char *out, size_t outlen)
{
    long code = 0;
    if (c == NULL) {
        snprintf(out, outlen, "cannot check (no curl handle)");
        return false;
    }
    if (rc != CURLE_OK) {
        snprintf(out, outlen, "down (%s)", curl_easy_strerror(rc));
        return false;
    }
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    if (code >= 200 && code < 300) {
        snprintf(out, outlen, "up");
        return true;
    }
    snprintf(out, outlen, "unhealthy (HTTP %ld)", code);
    return false;
}

/*
 * Asks every daemon's /healthz at once, so the whole check takes one
 * health timeout at most (the gateway answers GET /v1/ops/status from an
 * HTTP thread); NULL when out of memory.
 */
static json_t *check_daemons(const opsstatus_config *c)
{
    CURL *req[OPSSTATUS_DAEMONS] = {0};
    CURLcode done[OPSSTATUS_DAEMONS];
    json_t *daemons = json_array();
    CURLM *multi = curl_multi_init();
    for (size_t i = 0; i < OPSSTATUS_DAEMONS; i++) {
        done[i] = CURLE_FAILED_INIT;
        if (c->addrs[i] != NULL && multi != NULL &&
            (req[i] = health_request(c->addrs[i], c->health_timeout_ms)) != NULL)
            curl_multi_add_handle(multi, req[i]);
    }
    /* Bounded: every request ends within its own timeout. */
    for (int running = 1; multi != NULL && running > 0;) {
        if (curl_multi_perform(multi, &running) != CURLM_OK ||
            (running > 0 && curl_multi_poll(multi, NULL, 0, 100, NULL) != CURLM_OK))
            break;
    }
    CURLMsg *msg;
    int left = 0;
    while (multi != NULL && (msg = curl_multi_info_read(multi, &left)) != NULL)
        for (size_t i = 0; i < OPSSTATUS_DAEMONS; i++)
            if (msg->msg == CURLMSG_DONE && msg->easy_handle == req[i])
                done[i] = msg->data.result;
    for (size_t i = 0; i < OPSSTATUS_DAEMONS && daemons != NULL; i++) {
        char health[256];
        if (c->addrs[i] == NULL)
            continue;
        bool up = health_of(req[i], done[i], health, sizeof health);
        if (json_array_append_new(daemons, json_pack("{s:s,s:s,s:b,s:s}", "name",
                                                     opsstatus_daemon_names[i], "addr", c->addrs[i],
                                                     "healthy", up, "status", health)) != 0) {
            json_decref(daemons);
            daemons = NULL;
        }
    }
    for (size_t i = 0; i < OPSSTATUS_DAEMONS; i++)
        if (req[i] != NULL) {
            curl_multi_remove_handle(multi, req[i]);
            curl_easy_cleanup(req[i]);
        }
    curl_multi_cleanup(multi);
    return daemons;
}

/* {"<a>": n, "<b>": n, "due": n} from one row of three counts (sql), or {"error": why}. */
static json_t *count_held(PGconn *conn, const char *sql, const char *a, const char *b)
{
    if (conn == NULL)
        return json_pack("{s:s}", "error", "database unreachable");
    json_t *out = NULL;
    PGresult *res = PQexec(conn, sql);
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1) {
        out = json_pack("{s:I,s:I,s:I}", a, (json_int_t)strtoll(PQgetvalue(res, 0, 0), NULL, 10), b,
                        (json_int_t)strtoll(PQgetvalue(res, 0, 1), NULL, 10), "due",
                        (json_int_t)strtoll(PQgetvalue(res, 0, 2), NULL, 10));
    } else {
        char why[256];
        const char *msg = PQerrorMessage(conn);
        snprintf(why, sizeof why, "%.*s", (int)strcspn(msg, "\n"), msg);
        out = json_pack("{s:s}", "error", why);
    }
    PQclear(res);
    return out;
}

/*
 * The open and closing digest windows and the pending and running
 * follow-ups, and those due (their time passed: a dispatcher should be
 * closing or sending them), into root.
 */
static void count_held_work(PGconn *conn, json_t *root)
{
    static const char windows_sql[] =
        "SELECT count(*) FILTER (WHERE status = 'open'), "
        "count(*) FILTER (WHERE status = 'closing'), count(*) FILTER (WHERE closes_at <= now()) "
        "FROM digest_windows WHERE status IN ('open', 'closing')";
    static const char followups_sql[] =
        "SELECT count(*) FILTER (WHERE status = 'pending'), "
        "count(*) FILTER (WHERE status = 'running'), count(*) FILTER (WHERE due_at <= now()) "
        "FROM followups WHERE status IN ('pending', 'running')";
    json_object_set_new(root, "digest_windows", count_held(conn, windows_sql, "open", "closing"));
    json_object_set_new(root, "followups", count_held(conn, followups_sql, "pending", "running"));
}

opsstatus_result opsstatus_collect(const opsstatus_config *c, json_t **out, char *err,
                                   size_t errlen)
{
    status_report *r = calloc(1, sizeof *r);
    json_t *root = json_object(), *daemons = NULL;
    opsstatus_result rc = OPSSTATUS_NOMEM;
    *out = NULL;
    if (r == NULL || root == NULL) {
        error_set(err, errlen, "out of memory");
        goto out;
    }
    r->c = c;
    r->rows = json_array();
    r->group_lag = json_object();
    r->group_exact = json_object();
    if (r->rows == NULL || r->group_lag == NULL || r->group_exact == NULL) {
        error_set(err, errlen, "out of memory");
        goto out;
    }
    if (parse_groups(r, err, errlen) != 0) {
        rc = OPSSTATUS_BAD_GROUPS;
        goto out;
    }
    if (read_topics(r, err, errlen) != 0) {
        rc = OPSSTATUS_TOPICS;
        goto out;
    }
    if (report_groups(r, err, errlen) != 0) {
        rc = OPSSTATUS_OFFSETS;
        goto out;
    }
    json_object_set_new(root, "lag", r->rows);
    json_object_set_new(root, "group_lag", r->group_lag);
    json_object_set_new(root, "group_lag_exact", r->group_exact);
    r->rows = r->group_lag = r->group_exact = NULL;
    if (backlog_depths(r, root, err, errlen) != 0)
        goto out;
    if ((daemons = check_daemons(c)) == NULL) {
        error_set(err, errlen, "out of memory");
        goto out;
    }
    json_object_set_new(root, "daemons", daemons);
    if (c->count_held)
        count_held_work(c->conn, root);
    *out = root;
    root = NULL;
    rc = OPSSTATUS_OK;
out:
    if (r != NULL) {
        for (size_t i = 0; i < OPSSTATUS_MAX_TOPICS; i++) {
            free(r->marks[i].low);
            free(r->marks[i].high);
        }
        json_decref(r->rows);
        json_decref(r->group_lag);
        json_decref(r->group_exact);
    }
    free(r);
    json_decref(root);
    return rc;
}
