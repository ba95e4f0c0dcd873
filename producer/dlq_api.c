/*
 * dlq_api: see dlq_api.h.  The reading and requeueing are common/dlqscan
 * and common/dlqrequeue, the same code heraldctl runs; this file parses
 * requests and shapes answers.
 */
#include "dlq_api.h"

#include "dlqrec.h"
#include "dlqrequeue.h"
#include "dlqscan.h"
#include "error.h"
#include "pg.h"
#include "timeutil.h"
#include "topics.h"

#include <openssl/evp.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PAGE_DEFAULT    50
#define REQUEUE_IDS_MAX 1000
#define RESULTS_MAX     1000
#define FILTER_TEXT_MAX 256

struct dlq_env {
    char topic[512];
    char *brokers;
    char *prefix;
    char *database_url;
    config_kafka_props props;
    int timeout_ms;
};

dlq_env *dlq_env_new(const herald_common_config *common, const config_kafka_props *props,
                     int timeout_ms, char *err, size_t errlen)
{
    dlq_env *d = calloc(1, sizeof *d);
    if (d == NULL || (d->brokers = strdup(common->kafka_brokers)) == NULL ||
        (d->prefix = strdup(common->topic_prefix != NULL ? common->topic_prefix : "")) == NULL ||
        (d->database_url = strdup(common->database_url)) == NULL ||
        config_kafka_props_copy(props, &d->props) != 0) {
        error_set(err, errlen, "out of memory");
        dlq_env_free(d);
        return NULL;
    }
    config_topic(common, TOPICS_DLQ, d->topic, sizeof d->topic);
    d->timeout_ms = timeout_ms > 0 ? timeout_ms : 10000;
    return d;
}

void dlq_env_free(dlq_env *d)
{
    if (d == NULL)
        return;
    config_free(NULL, 0, &d->props);
    free(d->brokers);
    free(d->prefix);
    free(d->database_url);
    free(d);
}

static dlqscan_source source(const dlq_env *d)
{
    return (dlqscan_source){d->brokers, &d->props, d->topic, d->timeout_ms};
}

/* Answers a failed read of the DLQ. */
static void scan_error(http_request *req, dlqscan_status st, const char *err)
{
    if (st == DLQSCAN_UNREACHABLE || st == DLQSCAN_READ_FAILED)
        http_respond_retry(req, 503, "kafka_unavailable", err, 1);
    else if (st == DLQSCAN_BAD_CURSOR)
        api_bad_field(req, "after", "after is not a cursor this API gave");
    else
        http_respond_error(req, 500, "internal", err[0] != '\0' ? err : "out of memory", NULL);
}

/* A time of the filter (RFC 3339, or relative like -2h) into *ms; -1 after answering 400. */
static int parse_time(http_request *req, const char *field, const char *s, int64_t *ms)
{
    char err[160], msg[220];
    if (s == NULL)
        return 0;
    if (timeutil_parse_time(s, timeutil_now_ms(), ms, err, sizeof err) != 0) {
        snprintf(msg, sizeof msg, "%s: %s", field, err);
        api_bad_field(req, field, msg);
        return -1;
    }
    return 0;
}

/* A filter string: at most FILTER_TEXT_MAX bytes; -1 after answering 400. */
static int check_text(http_request *req, const char *field, const char *s)
{
    char msg[120];
    if (s == NULL || (s[0] != '\0' && strlen(s) <= FILTER_TEXT_MAX))
        return 0;
    snprintf(msg, sizeof msg, "%s must be 1 to %d bytes", field, FILTER_TEXT_MAX);
    api_bad_field(req, field, msg);
    return -1;
}

/* The filter from five strings (any NULL); -1 after answering 400. */
static int make_filter(http_request *req, const char *from, const char *to, const char *channel,
                       const char *reason, const char *stage, dlqrec_filter *f)
{
    *f = (dlqrec_filter){stage, reason, channel, -1, 0};
    if (check_text(req, "channel", channel) != 0 || check_text(req, "reason", reason) != 0 ||
        check_text(req, "stage", stage) != 0 || parse_time(req, "from", from, &f->since_ms) != 0 ||
        parse_time(req, "to", to, &f->until_ms) != 0)
        return -1;
    if (to != NULL && f->until_ms <= 0) {
        api_bad_field(req, "to", "to must be after 1970");
        return -1;
    }
    return 0;
}

static int query_filter(http_request *req, dlqrec_filter *f)
{
    return make_filter(req, http_request_query(req, "from"), http_request_query(req, "to"),
                       http_request_query(req, "channel"), http_request_query(req, "reason"),
                       http_request_query(req, "stage"), f);
}

void dlq_api_list(api_env *env, http_request *req, api_call *call, http_phase phase)
{
    (void)call;
    (void)phase;
    dlqrec_filter f;
    const char *limit_s = http_request_query(req, "limit");
    const char *after = http_request_query(req, "after");
    char next[DLQSCAN_CURSOR_MAX], err[512];
    long limit = PAGE_DEFAULT;
    if (query_filter(req, &f) != 0)
        return;
    if (limit_s != NULL) {
        char *end = NULL;
        limit = strtol(limit_s, &end, 10);
        if (*limit_s == '\0' || *end != '\0' || limit < 1 || limit > DLQSCAN_PAGE_MAX) {
            api_bad_field(req, "limit", "limit must be an integer from 1 to 500");
            return;
        }
    }
    dlqscan_source src = source(env->dlq);
    json_t *records = NULL;
    dlqscan_status st =
        dlqscan_page(&src, &f, after, (size_t)limit, &records, next, err, sizeof err);
    if (st == DLQSCAN_MISSING) {
        /* No DLQ topic yet: nothing was ever dead-lettered. */
        records = json_array();
        next[0] = '\0';
    } else if (st != DLQSCAN_OK) {
        scan_error(req, st, err);
        return;
    }
    http_respond_json(req, 200,
                      json_pack("{s:o,s:o}", "records", records, "next",
                                next[0] != '\0' ? json_string(next) : json_null()));
}

static int stats_visit(dlqrec *rec, void *opaque)
{
    return dlqrec_stats_add(opaque, rec);
}

void dlq_api_stats(api_env *env, http_request *req, api_call *call, http_phase phase)
{
    (void)call;
    (void)phase;
    dlqrec_filter f;
    char err[512];
    if (query_filter(req, &f) != 0)
        return;
    dlqrec_stats *stats = dlqrec_stats_new();
    if (stats == NULL) {
        http_respond_error(req, 500, "internal", "out of memory", NULL);
        return;
    }
    dlqscan_source src = source(env->dlq);
    partread_range range = PARTREAD_ALL(src.timeout_ms);
    range.from_ms = f.since_ms;
    range.to_ms = f.until_ms > 0 ? f.until_ms : -1;
    dlqscan_status st = dlqscan_run(&src, &range, &f, stats_visit, stats, err, sizeof err);
    if (st != DLQSCAN_OK && st != DLQSCAN_MISSING)
        scan_error(req, st, err);
    else
        http_respond_json(req, 200, dlqrec_stats_to_json(stats, "rows"));
    dlqrec_stats_free(stats);
}

/* The record as the API shows it: dlqrec_to_json, its id, and a payload that is not text in
 * base64. */
static json_t *record_json(const dlqrec *rec)
{
    char id[48];
    json_t *j = dlqrec_to_json(rec);
    if (j == NULL || json_object_set_new(j, "id", json_string(dlqscan_id(rec, id, sizeof id))) != 0)
        goto fail;
    if (rec->value != NULL && json_is_null(json_object_get(j, "payload"))) {
        size_t cap = (rec->vlen + 2) / 3 * 4 + 1;
        char *b64 = malloc(cap);
        if (b64 == NULL)
            goto fail;
        EVP_EncodeBlock((unsigned char *)b64, (const unsigned char *)rec->value, (int)rec->vlen);
        int bad = json_object_set_new(j, "payload", json_string(b64)) != 0 ||
                  json_object_set_new(j, "payload_encoding", json_string("base64")) != 0;
        free(b64);
        if (bad)
            goto fail;
    } else if (json_object_set_new(j, "payload_encoding",
                                   json_string(rec->value != NULL ? "text" : "none")) != 0) {
        goto fail;
    }
    return j;
fail:
    json_decref(j);
    return NULL;
}

static int get_visit(dlqrec *rec, void *opaque)
{
    json_t **out = opaque;
    *out = record_json(rec);
    return *out != NULL ? 1 : -1;
}

void dlq_api_get(api_env *env, http_request *req, api_call *call, http_phase phase)
{
    (void)phase;
    const char *position = router_param(&call->params, "position");
    char err[512], msg[600];
    dlqscan_source src = source(env->dlq);
    partread_range range = PARTREAD_ALL(src.timeout_ms);
    if (dlqrec_parse_position(position, &range.partition, &range.offset, err, sizeof err) != 0) {
        api_bad_field(req, "position", err);
        return;
    }
    json_t *doc = NULL;
    dlqscan_status st = dlqscan_run(&src, &range, NULL, get_visit, &doc, err, sizeof err);
    if (st == DLQSCAN_OK && doc != NULL) {
        http_respond_json(req, 200, doc);
        return;
    }
    if (st == DLQSCAN_MISSING || st == DLQSCAN_OK) {
        /* OK without a record: the offset holds a transaction marker. */
        snprintf(msg, sizeof msg, "no DLQ record %s", position);
        http_respond_error(req, 404, "not_found", msg, "position");
        return;
    }
    scan_error(req, st, err);
}

/* ---- requeue ---- */

typedef struct requeue_answer {
    json_t *results;
    bool truncated;
    bool oom;
} requeue_answer;

static void requeue_collect(const dlqrequeue_result *res, void *opaque)
{
    requeue_answer *a = opaque;
    char id[48];
    if (res->outcome == DLQREQUEUE_SETTLED)
        return; /* an earlier run's record: not one this request named */
    if (json_array_size(a->results) >= RESULTS_MAX) {
        a->truncated = true;
        return;
    }
    snprintf(id, sizeof id, "%d:%" PRId64, (int)res->partition, res->offset);
    json_t *r =
        json_pack("{s:s,s:s,s:s*,s:s*}", "id", id, "outcome", dlqrequeue_outcome_name(res->outcome),
                  "topic", res->topic[0] != '\0' ? res->topic : NULL, "error",
                  res->error[0] != '\0' ? res->error : NULL);
    if (r == NULL || json_array_append_new(a->results, r) != 0)
        a->oom = true;
}

/* The "ids" of the body into parts/offs (malloc'd); -1 after answering 400. */
static int parse_ids(http_request *req, json_t *ids, int32_t **parts, int64_t **offs, size_t *n)
{
    char err[256], msg[320];
    size_t count = json_array_size(ids);
    if (!json_is_array(ids) || count == 0 || count > REQUEUE_IDS_MAX) {
        api_bad_field(req, "ids", "ids must be an array of 1 to 1000 \"P:O\" strings");
        return -1;
    }
    *parts = calloc(count, sizeof **parts);
    *offs = calloc(count, sizeof **offs);
    if (*parts == NULL || *offs == NULL) {
        http_respond_error(req, 500, "internal", "out of memory", NULL);
        return -1;
    }
    for (size_t i = 0; i < count; i++) {
        const char *s = json_string_value(json_array_get(ids, i));
        if (s == NULL ||
            dlqrec_parse_position(s, &(*parts)[i], &(*offs)[i], err, sizeof err) != 0) {
            snprintf(msg, sizeof msg, "ids[%zu]: %s", i, s == NULL ? "must be a string" : err);
            api_bad_field(req, "ids", msg);
            return -1;
        }
    }
    *n = count;
    return 0;
}

/* A string member of the filter object, or NULL; *bad after answering 400. */
static const char *filter_member(http_request *req, json_t *filter, const char *name, bool *bad)
{
    json_t *v = json_object_get(filter, name);
    if (v == NULL || json_is_null(v))
        return NULL;
    if (!json_is_string(v)) {
        char field[32], msg[64];
        snprintf(field, sizeof field, "filter.%s", name);
        snprintf(msg, sizeof msg, "%s must be a string", field);
        api_bad_field(req, field, msg);
        *bad = true;
    }
    return json_string_value(v);
}

static int parse_filter(http_request *req, json_t *filter, dlqrec_filter *f)
{
    bool bad = false;
    if (!json_is_object(filter)) {
        api_bad_field(req, "filter", "filter must be an object");
        return -1;
    }
    const char *from = filter_member(req, filter, "from", &bad);
    const char *to = bad ? NULL : filter_member(req, filter, "to", &bad);
    const char *channel = bad ? NULL : filter_member(req, filter, "channel", &bad);
    const char *reason = bad ? NULL : filter_member(req, filter, "reason", &bad);
    const char *stage = bad ? NULL : filter_member(req, filter, "stage", &bad);
    if (bad)
        return -1;
    return make_filter(req, from, to, channel, reason, stage, f);
}

static json_t *requeue_doc(const dlqrequeue_counts *n, bool dry_run, requeue_answer *a)
{
    if (dry_run)
        return json_pack("{s:I,s:I,s:I,s:I}", "matched", (json_int_t)n->matched, "would_requeue",
                         (json_int_t)n->would, "already_requeued", (json_int_t)n->already,
                         "skipped", (json_int_t)n->skipped);
    json_t *doc =
        json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:O}", "matched", (json_int_t)n->matched, "requeued",
                  (json_int_t)n->requeued, "already_requeued", (json_int_t)n->already, "skipped",
                  (json_int_t)n->skipped, "failed", (json_int_t)n->failed, "unconfirmed",
                  (json_int_t)n->unconfirmed, "results", a->results);
    if (doc != NULL && a->truncated)
        json_object_set_new(doc, "results_truncated", json_true());
    return doc;
}

void dlq_api_requeue(api_env *env, http_request *req, api_call *call, http_phase phase)
{
    (void)call;
    (void)phase;
    json_t *body = NULL;
    int32_t *parts = NULL;
    int64_t *offs = NULL;
    size_t npos = 0;
    pg_conn *db = NULL;
    requeue_answer answer = {0};
    dlqrec_filter f = {NULL, NULL, NULL, -1, 0};
    char err[512];
    const dlq_env *d = env->dlq;

    if (api_body_object(req, &body) != 0)
        return;
    json_t *ids = json_object_get(body, "ids"), *filter = json_object_get(body, "filter");
    json_t *dry = json_object_get(body, "dry_run");
    if ((ids == NULL) == (filter == NULL)) {
        api_bad_field(req, ids != NULL ? "filter" : "ids", "give exactly one of ids and filter");
        goto out;
    }
    if (dry != NULL && !json_is_boolean(dry)) {
        api_bad_field(req, "dry_run", "dry_run must be true or false");
        goto out;
    }
    if (ids != NULL ? parse_ids(req, ids, &parts, &offs, &npos) != 0
                    : parse_filter(req, filter, &f) != 0)
        goto out;
    /* Its own connection: the ledger's advisory lock is per session, and
     * ends with it, whatever happens to this request. */
    const pg_options po = {.connect_timeout_s = 5,
                           .max_wait_ms = 5000,
                           .application_name = "herald-gateway dlq requeue"};
    db = pg_connect(d->database_url, &po, err, sizeof err);
    if (db == NULL) {
        http_respond_retry(req, 503, "database_unavailable", err, 1);
        goto out;
    }
    answer.results = json_array();
    if (answer.results == NULL) {
        http_respond_error(req, 500, "internal", "out of memory", NULL);
        goto out;
    }
    const dlqrequeue_opts o = {
        .src = source(d),
        .topic_prefix = d->prefix,
        .producer_props = &d->props,
        .conn = pg_raw(db),
        .filter = ids != NULL ? NULL : &f,
        .parts = parts,
        .offs = offs,
        .npos = npos,
        .dry_run = json_is_true(dry),
        .report = requeue_collect,
        .opaque = &answer,
    };
    dlqrequeue_counts n;
    const char *what = NULL;
    dlqrequeue_status st = dlqrequeue_run(&o, &n, &what, err, sizeof err);
    if (st == DLQREQUEUE_ERR_MISSING && ids == NULL) {
        st = DLQREQUEUE_OK; /* no DLQ topic: nothing matches */
    }
    if (st == DLQREQUEUE_ERR_KAFKA) {
        char msg[700];
        snprintf(msg, sizeof msg, "%s: %s", what != NULL ? what : "Kafka", err);
        http_respond_retry(req, 503, "kafka_unavailable", msg, 1);
    } else if (st == DLQREQUEUE_ERR_DB) {
        http_respond_retry(req, 503, "database_unavailable", err, 1);
    } else if (st != DLQREQUEUE_OK || answer.oom) {
        http_respond_error(req, 500, "internal", st != DLQREQUEUE_OK ? err : "out of memory", NULL);
    } else {
        http_respond_json(req, 200, requeue_doc(&n, o.dry_run, &answer));
    }
out:
    pg_close(db);
    json_decref(answer.results);
    json_decref(body);
    free(parts);
    free(offs);
}
