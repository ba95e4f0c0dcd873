/*
 * kafka_admin: topic administration.  See kafka_admin.h.
 */
#include "kafka_admin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

/* Bounded copy that always terminates (truncation is expected, not an error). */
static void copy_str(char *dst, size_t dstlen, const char *src)
{
    size_t n = strlen(src);
    if (n >= dstlen)
        n = dstlen - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

/* ------------------------------------------------------------------- admin */

/*
 * Admin calls use a short-lived producer-type handle of their own: they are
 * rare (startup, heraldctl, tests) and must not share queues with a daemon's
 * clients.
 */
static rd_kafka_t *admin_new(const char *brokers, const config_kafka_props *props, char *err,
                             size_t errlen)
{
    char why[512];
    rd_kafka_conf_t *conf = kafka_conf_new(brokers, props, err, errlen);
    if (conf == NULL)
        return NULL;
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof(why));
    if (rk == NULL) {
        rd_kafka_conf_destroy(conf);
        error_set(err, errlen, "cannot create Kafka admin client: %s", why);
    }
    return rk;
}

/* One admin request: its handle, options, reply queue and reply. */
typedef struct {
    rd_kafka_t *rk;
    rd_kafka_AdminOptions_t *opts;
    rd_kafka_queue_t *q;
    rd_kafka_event_t *ev;
} admin_call;

/* Options and a reply queue for op on c->rk, bounded by timeout_ms. */
static void admin_prepare(admin_call *c, rd_kafka_admin_op_t op, int timeout_ms)
{
    char why[256];
    c->opts = rd_kafka_AdminOptions_new(c->rk, op);
    /* Both bounded: the broker's wait for the operation and ours for the reply. */
    (void)rd_kafka_AdminOptions_set_request_timeout(c->opts, timeout_ms, why, sizeof(why));
    (void)rd_kafka_AdminOptions_set_operation_timeout(c->opts, timeout_ms, why, sizeof(why));
    c->q = rd_kafka_queue_new(c->rk);
}

static void admin_end(admin_call *c)
{
    if (c->ev != NULL)
        rd_kafka_event_destroy(c->ev);
    if (c->q != NULL)
        rd_kafka_queue_destroy(c->q);
    if (c->opts != NULL)
        rd_kafka_AdminOptions_destroy(c->opts);
    if (c->rk != NULL)
        rd_kafka_destroy(c->rk);
}

/*
 * Waits for the admin result event; a little longer than the request timeout
 * so that librdkafka's own timeout answer arrives first.
 */
static rd_kafka_event_t *admin_wait(rd_kafka_queue_t *q, int timeout_ms, const char *what,
                                    char *err, size_t errlen)
{
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, timeout_ms + 2000);
    if (ev == NULL) {
        error_set(err, errlen, "%s: no answer within %d ms", what, timeout_ms);
        return NULL;
    }
    if (rd_kafka_event_error(ev) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        error_set(err, errlen, "%s: %s", what, rd_kafka_event_error_string(ev));
        rd_kafka_event_destroy(ev);
        return NULL;
    }
    return ev;
}

kafka_status kafka_topics_create(const char *brokers, const config_kafka_props *props,
                                 const kafka_topic_spec *specs, size_t n, int timeout_ms,
                                 kafka_topic_result *results, char *err, size_t errlen)
{
    admin_call c = {0};
    rd_kafka_NewTopic_t **nts = NULL;
    bool *answered = NULL;
    size_t nnt = 0;
    kafka_status st = KAFKA_ERR;
    char why[512];

    for (size_t i = 0; i < n; i++) {
        results[i].outcome = KAFKA_TOPIC_FAILED;
        results[i].err = RD_KAFKA_RESP_ERR__FAIL;
        copy_str(results[i].msg, sizeof(results[i].msg), "not created");
    }
    if (n == 0)
        return KAFKA_OK;

    nts = calloc(n, sizeof(*nts));
    answered = calloc(n, sizeof(*answered));
    if (nts == NULL || answered == NULL) {
        error_set(err, errlen, "out of memory");
        goto out;
    }
    c.rk = admin_new(brokers, props, err, errlen);
    if (c.rk == NULL)
        goto out;

    /* A spec librdkafka rejects fails alone; the others are still created. */
    for (size_t i = 0; i < n; i++) {
        const kafka_topic_spec *s = &specs[i];
        rd_kafka_NewTopic_t *nt =
            rd_kafka_NewTopic_new(s->name, s->partitions, s->replication_factor, why, sizeof(why));
        for (size_t k = 0; nt != NULL && k < s->nconfigs; k++) {
            rd_kafka_resp_err_t e =
                rd_kafka_NewTopic_set_config(nt, s->configs[k].name, s->configs[k].value);
            if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
                snprintf(why, sizeof(why), "config %s: %s", s->configs[k].name,
                         rd_kafka_err2str(e));
                rd_kafka_NewTopic_destroy(nt);
                nt = NULL;
            }
        }
        if (nt == NULL) {
            results[i].err = RD_KAFKA_RESP_ERR__INVALID_ARG;
            copy_str(results[i].msg, sizeof(results[i].msg), why);
            answered[i] = true;
            continue;
        }
        nts[nnt++] = nt;
    }

    st = KAFKA_OK;
    if (nnt == 0)
        goto out;
    admin_prepare(&c, RD_KAFKA_ADMIN_OP_CREATETOPICS, timeout_ms);
    rd_kafka_CreateTopics(c.rk, nts, nnt, c.opts, c.q);
    c.ev = admin_wait(c.q, timeout_ms, "create topics", err, errlen);
    if (c.ev == NULL) {
        st = KAFKA_ERR;
        goto out;
    }

    size_t cnt = 0;
    const rd_kafka_topic_result_t **trs =
        rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(c.ev), &cnt);
    for (size_t t = 0; t < cnt; t++) {
        const char *name = rd_kafka_topic_result_name(trs[t]);
        /* Results need not come in request order; match them by name. */
        size_t i = 0;
        while (i < n && (answered[i] || strcmp(specs[i].name, name) != 0))
            i++;
        if (i == n)
            continue;
        answered[i] = true;
        rd_kafka_resp_err_t e = rd_kafka_topic_result_error(trs[t]);
        const char *msg = rd_kafka_topic_result_error_string(trs[t]);
        results[i].err = e;
        if (e == RD_KAFKA_RESP_ERR_NO_ERROR) {
            results[i].outcome = KAFKA_TOPIC_CREATED;
            results[i].msg[0] = '\0';
        } else if (e == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
            results[i].outcome = KAFKA_TOPIC_EXISTS;
            results[i].msg[0] = '\0';
        } else {
            copy_str(results[i].msg, sizeof(results[i].msg),
                     msg != NULL ? msg : rd_kafka_err2str(e));
        }
    }
out:
    if (nts != NULL) {
        rd_kafka_NewTopic_destroy_array(nts, nnt);
        free(nts);
    }
    free(answered);
    admin_end(&c);
    return st;
}

static void describe_one(const struct rd_kafka_metadata_topic *t, kafka_topic_desc *d)
{
    d->err = t->err;
    /* Right after creation leaders may still be elected: the count is known. */
    if (t->err != RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART && t->partition_cnt > 0)
        d->err = RD_KAFKA_RESP_ERR_NO_ERROR;
    if (d->err != RD_KAFKA_RESP_ERR_NO_ERROR)
        return;
    d->partitions = t->partition_cnt;
    for (int i = 0; i < t->partition_cnt; i++)
        if (d->replication_factor < 0 || t->partitions[i].replica_cnt < d->replication_factor)
            d->replication_factor = t->partitions[i].replica_cnt;
}

kafka_status kafka_topics_describe(const char *brokers, const config_kafka_props *props,
                                   const char *const *topics, size_t n, int timeout_ms,
                                   kafka_topic_desc *descs, char *err, size_t errlen)
{
    const struct rd_kafka_metadata *md = NULL;
    kafka_status st = KAFKA_ERR;
    size_t nrkt = 0;
    rd_kafka_topic_t **rkts = calloc(n > 0 ? n : 1, sizeof *rkts);

    for (size_t i = 0; i < n; i++)
        descs[i] = (kafka_topic_desc){.err = RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART,
                                      .partitions = -1,
                                      .replication_factor = -1};
    rd_kafka_t *rk = rkts != NULL ? admin_new(brokers, props, err, errlen) : NULL;
    if (rkts == NULL)
        error_set(err, errlen, "describe topics: out of memory");
    if (rk == NULL)
        goto out;
    /*
     * A handle per topic makes them the client's "locally known" topics: one
     * metadata request asks for exactly those.  allow.auto.create.topics=false
     * (common default): asking does not create them.
     */
    for (; nrkt < n; nrkt++) {
        if ((rkts[nrkt] = rd_kafka_topic_new(rk, topics[nrkt], NULL)) == NULL) {
            error_set(err, errlen, "describe topic %s: %s", topics[nrkt],
                      rd_kafka_err2str(rd_kafka_last_error()));
            goto out;
        }
    }
    rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 0, NULL, &md, timeout_ms);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
        error_set(err, errlen, "describe topics: %s", rd_kafka_err2str(e));
        goto out;
    }
    for (int t = 0; t < md->topic_cnt; t++)
        for (size_t i = 0; i < n; i++)
            if (strcmp(md->topics[t].topic, topics[i]) == 0)
                describe_one(&md->topics[t], &descs[i]);
    st = KAFKA_OK;
out:
    if (md != NULL)
        rd_kafka_metadata_destroy(md);
    for (size_t i = 0; i < nrkt; i++)
        rd_kafka_topic_destroy(rkts[i]);
    free(rkts);
    if (rk != NULL)
        rd_kafka_destroy(rk);
    return st;
}

kafka_status kafka_topic_describe(const char *brokers, const config_kafka_props *props,
                                  const char *topic, int timeout_ms, kafka_topic_desc *desc,
                                  char *err, size_t errlen)
{
    kafka_status st =
        kafka_topics_describe(brokers, props, &topic, 1, timeout_ms, desc, err, errlen);
    if (st != KAFKA_OK)
        return st;
    if (desc->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ||
        desc->err == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC) {
        error_set(err, errlen, "topic %s does not exist", topic);
        return KAFKA_ERR_NOT_FOUND;
    }
    if (desc->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        error_set(err, errlen, "describe topic %s: %s", topic, rd_kafka_err2str(desc->err));
        return KAFKA_ERR;
    }
    return KAFKA_OK;
}

kafka_status kafka_topics_delete(const char *brokers, const config_kafka_props *props,
                                 const char *const *topics, size_t n, int timeout_ms, char *err,
                                 size_t errlen)
{
    admin_call c = {0};
    rd_kafka_DeleteTopic_t **dts = NULL;
    kafka_status st = KAFKA_ERR;

    if (n == 0)
        return KAFKA_OK;
    dts = calloc(n, sizeof(*dts));
    if (dts == NULL) {
        error_set(err, errlen, "out of memory");
        goto out;
    }
    c.rk = admin_new(brokers, props, err, errlen);
    if (c.rk == NULL)
        goto out;
    for (size_t i = 0; i < n; i++)
        dts[i] = rd_kafka_DeleteTopic_new(topics[i]);
    admin_prepare(&c, RD_KAFKA_ADMIN_OP_DELETETOPICS, timeout_ms);
    rd_kafka_DeleteTopics(c.rk, dts, n, c.opts, c.q);
    c.ev = admin_wait(c.q, timeout_ms, "delete topics", err, errlen);
    if (c.ev == NULL)
        goto out;

    size_t cnt = 0;
    const rd_kafka_topic_result_t **trs =
        rd_kafka_DeleteTopics_result_topics(rd_kafka_event_DeleteTopics_result(c.ev), &cnt);
    st = KAFKA_OK;
    for (size_t t = 0; t < cnt; t++) {
        rd_kafka_resp_err_t e = rd_kafka_topic_result_error(trs[t]);
        if (e == RD_KAFKA_RESP_ERR_NO_ERROR || e == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART)
            continue;
        if (st == KAFKA_OK) {
            const char *msg = rd_kafka_topic_result_error_string(trs[t]);
            error_set(err, errlen, "delete topic %s: %s", rd_kafka_topic_result_name(trs[t]),
                      msg != NULL ? msg : rd_kafka_err2str(e));
        }
        st = KAFKA_ERR;
    }
out:
    if (dts != NULL) {
        rd_kafka_DeleteTopic_destroy_array(dts, n);
        free(dts);
    }
    admin_end(&c);
    return st;
}
