/*
 * txn: see txn.h.
 */
#include "txn.h"

#include <stdio.h>

#include "error.h"
#include "kafka_txn.h"
#include "log.h"
#include "timeutil.h"

/* Each call waits this long; a broker election fits in it, a dead cluster does not. */
#define TXN_CALL_TIMEOUT_MS 10000
#define TXN_RETRIES         6
#define TXN_ABORT_RETRIES   30

txn_result txn_begin(kafka_producer *p, char *err, size_t errlen)
{
    kafka_err_class c = kafka_txn_begin(p, err, errlen);
    if (c == KAFKA_ERRCLASS_NONE)
        return TXN_OK;
    return c == KAFKA_ERRCLASS_FATAL || c == KAFKA_ERRCLASS_PERMANENT ? TXN_FATAL : TXN_ABORTED;
}

txn_result txn_produce(kafka_producer *p, const char *topic, const void *key, size_t keylen,
                       const void *value, size_t vlen, rd_kafka_headers_t *hdrs, int timeout_ms,
                       char *err, size_t errlen)
{
    int64_t deadline = 0; /* read the clock only once the queue is full */
    for (;;) {
        kafka_status st =
            kafka_produce(p, topic, key, keylen, value, vlen, hdrs, NULL, err, errlen);
        if (st == KAFKA_OK)
            return TXN_OK;
        if (st == KAFKA_QUEUE_FULL && deadline == 0)
            deadline = timeutil_monotonic_ms() + timeout_ms;
        if (st == KAFKA_QUEUE_FULL && timeutil_monotonic_ms() < deadline) {
            /* Back-pressure: serve delivery reports so the queue drains. */
            kafka_producer_poll(p, 10);
            continue;
        }
        if (hdrs != NULL)
            rd_kafka_headers_destroy(hdrs);
        return st == KAFKA_ERR_FATAL ? TXN_FATAL : TXN_ABORTED;
    }
}

txn_result txn_abort(kafka_producer *p, char *err, size_t errlen)
{
    /*
     * An abort that cannot reach the cluster is retried for minutes rather
     * than seconds: giving up would mean exiting, and a broker outage is
     * something to wait out.
     */
    for (int i = 0; i < TXN_ABORT_RETRIES; i++) {
        kafka_err_class c = kafka_txn_abort(p, TXN_CALL_TIMEOUT_MS, err, errlen);
        if (c == KAFKA_ERRCLASS_NONE)
            return TXN_OK;
        if (c == KAFKA_ERRCLASS_FATAL)
            return TXN_FATAL;
        if (c == KAFKA_ERRCLASS_PERMANENT) /* no transaction in progress */
            return TXN_OK;
        LOG_WARN(NULL, "%s; retrying", err);
    }
    return TXN_FATAL;
}

static txn_result abort_after(kafka_producer *p, const char *why, char *err, size_t errlen)
{
    char first[512];
    snprintf(first, sizeof first, "%s", why);
    if (txn_abort(p, err, errlen) != TXN_OK)
        return TXN_FATAL;
    error_set(err, errlen, "%s", first);
    return TXN_ABORTED;
}

txn_result txn_commit(kafka_producer *p, kafka_consumer *c,
                      const rd_kafka_topic_partition_list_t *offsets, char *err, size_t errlen)
{
    kafka_err_class cls = KAFKA_ERRCLASS_NONE;
    if (offsets != NULL && offsets->cnt > 0) {
        for (int i = 0; i < TXN_RETRIES; i++) {
            cls = kafka_txn_send_offsets(p, c, offsets, TXN_CALL_TIMEOUT_MS, err, errlen);
            if (cls != KAFKA_ERRCLASS_RETRIABLE)
                break;
            LOG_WARN(NULL, "%s; retrying", err);
        }
        if (cls == KAFKA_ERRCLASS_FATAL)
            return TXN_FATAL;
        if (cls != KAFKA_ERRCLASS_NONE)
            return abort_after(p, err, err, errlen);
    }
    for (int i = 0; i < TXN_RETRIES; i++) {
        cls = kafka_txn_commit(p, TXN_CALL_TIMEOUT_MS, err, errlen);
        if (cls != KAFKA_ERRCLASS_RETRIABLE)
            break;
        LOG_WARN(NULL, "%s; retrying", err);
    }
    if (cls == KAFKA_ERRCLASS_NONE)
        return TXN_OK;
    if (cls == KAFKA_ERRCLASS_FATAL)
        return TXN_FATAL;
    return abort_after(p, err, err, errlen);
}
