/*
 * What the heraldctl operator-command suites share: a topic prefix of their
 * own with every topic created by `heraldctl topics create`, a scratch
 * database, running heraldctl with that environment, producing records
 * with headers, and reading a topic back.
 */
#ifndef HERALD_TEST_CTL_HARNESS_H
#define HERALD_TEST_CTL_HARNESS_H

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kafka.h"
#include "kafka_admin.h"
#include "kafka_txn.h"
#include "partread.h"
#include "testsupport.h"
#include "testutil.h"
#include "topics.h"

#define CTL_OUT_SIZE (64 * 1024)

typedef struct ctl_harness {
    const char *brokers;
    char prefix[64];
    char env_prefix[96];
    char env_db[512];
    char *db_url;
    char bin[1024];
    char out[CTL_OUT_SIZE];
    char err[CTL_OUT_SIZE];
} ctl_harness;

static inline void ctl_topic(const ctl_harness *h, const char *name, char *out, size_t outlen)
{
    snprintf(out, outlen, "%s%s", h->prefix, name);
}

/* Runs heraldctl with the harness's environment; args end with NULL. */
static inline int ctl_run(ctl_harness *h, ...)
{
    char *argv[64];
    int n = 0;
    va_list ap;
    va_start(ap, h);
    argv[n++] = h->bin;
    for (char *a; n < 63 && (a = va_arg(ap, char *)) != NULL;)
        argv[n++] = a;
    va_end(ap);
    argv[n] = NULL;
    const char *env[] = {h->env_prefix, h->db_url ? h->env_db : NULL, NULL};
    return testsupport_run(argv, env, h->out, sizeof(h->out), h->err, sizeof(h->err), 90000);
}

static inline void ctl_setup(ctl_harness *h, int with_db)
{
    memset(h, 0, sizeof(*h));
    h->brokers = test_require_env("HERALD_KAFKA_BROKERS");
    test_require_env("HERALD_DATABASE_URL");
    testsupport_topic_prefix(h->prefix, sizeof(h->prefix));
    snprintf(h->env_prefix, sizeof(h->env_prefix), "HERALD_TOPIC_PREFIX=%s", h->prefix);
    testsupport_bin("heraldctl", h->bin, sizeof(h->bin));
    if (with_db) {
        h->db_url = testsupport_db_create("ctl", 1);
        ck_assert_ptr_nonnull(h->db_url);
        snprintf(h->env_db, sizeof(h->env_db), "HERALD_DATABASE_URL=%s", h->db_url);
    }
    int rc = ctl_run(h, "topics", "create", "--partitions", "2", NULL);
    ck_assert_msg(rc == 0, "topics create: %s %s", h->out, h->err);
}

static inline void ctl_teardown(ctl_harness *h)
{
    char names[32][256], err[512];
    const char *ptrs[32];
    size_t n = 0;
    for (const topics_def *t = topics_all; t->name && n < 32; t++, n++) {
        ctl_topic(h, t->name, names[n], sizeof(names[n]));
        ptrs[n] = names[n];
    }
    if (kafka_topics_delete(h->brokers, NULL, ptrs, n, 30000, err, sizeof(err)) != KAFKA_OK)
        fprintf(stderr, "deleting test topics: %s\n", err);
    if (h->db_url != NULL)
        testsupport_db_drop(h->db_url);
    h->db_url = NULL;
}

typedef struct ctl_produced {
    int done;
    rd_kafka_resp_err_t err;
    int32_t partition;
    int64_t offset;
} ctl_produced;

static inline void ctl_on_report(void *opaque, const kafka_delivery_report *dr)
{
    ctl_produced *p = opaque;
    p->done = 1;
    p->err = dr->err;
    p->partition = dr->partition;
    p->offset = dr->offset;
}

/*
 * Produces one record to partition 0 (so tests know its offset order) with
 * headers given as name, value pairs ending with NULL.  Returns its offset.
 */
static inline int64_t ctl_produce(const ctl_harness *h, const char *topic, const char *key,
                                  const char *value, ...)
{
    char err[512];
    ctl_produced rep = {0};
    kafka_producer *p = kafka_producer_new(h->brokers, NULL, NULL, NULL, err, sizeof(err));
    ck_assert_msg(p != NULL, "%s", err);
    kafka_producer_set_delivery_cb(p, ctl_on_report);
    rd_kafka_headers_t *hdrs = rd_kafka_headers_new(16);
    va_list ap;
    va_start(ap, value);
    for (const char *name; (name = va_arg(ap, const char *)) != NULL;) {
        const char *v = va_arg(ap, const char *);
        ck_assert_int_eq(kafka_header_add_str(hdrs, name, v), 0);
    }
    va_end(ap);
    /* Partition 0 explicitly: rd_kafka_producev, since kafka_produce lets the partitioner pick. */
    rd_kafka_resp_err_t e = rd_kafka_producev(
        kafka_producer_rk(p), RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(0),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_KEY(key, key ? strlen(key) : 0),
        RD_KAFKA_V_VALUE((void *)value, strlen(value)), RD_KAFKA_V_HEADERS(hdrs),
        RD_KAFKA_V_OPAQUE(&rep), RD_KAFKA_V_END);
    ck_assert_msg(e == RD_KAFKA_RESP_ERR_NO_ERROR, "produce: %s", rd_kafka_err2str(e));
    ck_assert_int_eq(kafka_producer_flush(p, 30000), 0);
    ck_assert_msg(rep.done && rep.err == 0, "delivery: %s", rd_kafka_err2str(rep.err));
    kafka_producer_destroy(p);
    return rep.offset;
}

/* The last offset delivered of a batch (ctl_on_txn_report's opaque). */
static inline void ctl_on_txn_report(void *opaque, const kafka_delivery_report *dr)
{
    ctl_produced *p = opaque;
    ck_assert_msg(dr->err == 0, "delivery: %s", dr->errstr);
    p->done++;
    if (dr->offset > p->offset)
        p->offset = dr->offset;
}

/* A transactional producer, initialised, as the pipeline's daemons write. */
static inline kafka_producer *ctl_txn_producer(const ctl_harness *h, const char *name)
{
    char txid[160], err[512];
    snprintf(txid, sizeof txid, "%s%s", h->prefix, name);
    kafka_producer *p = kafka_producer_new(h->brokers, NULL, NULL, txid, err, sizeof err);
    ck_assert_msg(p != NULL, "%s", err);
    kafka_producer_set_delivery_cb(p, ctl_on_txn_report);
    kafka_err_class ec = KAFKA_ERRCLASS_RETRIABLE;
    for (int tries = 0; ec == KAFKA_ERRCLASS_RETRIABLE && tries < 3; tries++)
        ec = kafka_txn_init(p, 20000, err, sizeof err);
    ck_assert_msg(ec == KAFKA_ERRCLASS_NONE, "%s", err);
    return p;
}

/*
 * Writes n records of value to partition of topic in one transaction of p
 * (ctl_txn_producer), each with a copy of hdrs (NULL: none), and commits
 * it, or aborts it once the records reached the log when commit is 0.
 * Each transaction ends with a marker offset.  Returns the last record's
 * offset.
 */
static inline int64_t ctl_produce_txn(kafka_producer *p, const char *topic, int32_t partition,
                                      int n, const char *value, const rd_kafka_headers_t *hdrs,
                                      int commit)
{
    char err[512];
    ctl_produced rep = {.offset = -1};
    ck_assert_msg(kafka_txn_begin(p, err, sizeof err) == KAFKA_ERRCLASS_NONE, "%s", err);
    for (int i = 0; i < n; i++) {
        rd_kafka_headers_t *copy = hdrs != NULL ? rd_kafka_headers_copy(hdrs) : NULL;
        rd_kafka_resp_err_t e = rd_kafka_producev(
            kafka_producer_rk(p), RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(partition),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_KEY("k", 1),
            RD_KAFKA_V_VALUE((void *)value, strlen(value)), RD_KAFKA_V_HEADERS(copy),
            RD_KAFKA_V_OPAQUE(&rep), RD_KAFKA_V_END);
        ck_assert_msg(e == RD_KAFKA_RESP_ERR_NO_ERROR, "produce: %s", rd_kafka_err2str(e));
    }
    ck_assert_int_eq(kafka_producer_flush(p, 30000), 0);
    ck_assert_int_eq(rep.done, n);
    kafka_err_class ec = commit ? kafka_txn_commit(p, 20000, err, sizeof err)
                                : kafka_txn_abort(p, 20000, err, sizeof err);
    ck_assert_msg(ec == KAFKA_ERRCLASS_NONE, "%s", err);
    return rep.offset;
}

/* Commits offset on partition of topic for group, without joining it. */
static inline void ctl_commit(const ctl_harness *h, const char *group, const char *topic,
                              int32_t partition, int64_t offset)
{
    char err[512];
    kafka_consumer *c = kafka_consumer_new(h->brokers, group, NULL, NULL, err, sizeof(err));
    ck_assert_msg(c != NULL, "%s", err);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, topic, partition)->offset = offset;
    ck_assert_int_eq(rd_kafka_commit(kafka_consumer_rk(c), l, 0), 0);
    rd_kafka_topic_partition_list_destroy(l);
    kafka_consumer_destroy(c);
}

/* Reads every record of topic; calls fn with each (the record is destroyed after). */
static inline int ctl_read_all(const ctl_harness *h, const char *topic,
                               void (*fn)(rd_kafka_message_t *m, void *opaque), void *opaque)
{
    partread *r = NULL;
    char err[512];
    partread_range range = PARTREAD_ALL(15000);
    int n = 0;
    ck_assert_msg(partread_open(h->brokers, NULL, topic, &range, &r, err, sizeof(err)) ==
                      PARTREAD_OK,
                  "%s", err);
    for (int i = 0; i < 100000; i++) {
        rd_kafka_message_t *m = NULL;
        partread_status st = partread_next(r, &m, err, sizeof(err));
        if (st == PARTREAD_END)
            break;
        ck_assert_msg(st == PARTREAD_OK, "%s", err);
        if (fn != NULL)
            fn(m, opaque);
        rd_kafka_message_destroy(m);
        n++;
    }
    partread_close(r);
    return n;
}

#endif
