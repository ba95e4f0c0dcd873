/*
 * kafka_txn: the transactional producer's calls.  See kafka_txn.h.
 */
#include "kafka_txn.h"

#include "error.h"

/* ----------------------------------------------------------- transactions */

/* Consumes error; returns its class and puts "what: reason" in err. */
static kafka_err_class txn_result(rd_kafka_error_t *error, const char *what, char *err,
                                  size_t errlen)
{
    if (error == NULL)
        return KAFKA_ERRCLASS_NONE;
    kafka_err_class c = kafka_classify(RD_KAFKA_RESP_ERR_NO_ERROR, error);
    error_set(err, errlen, "%s: %s (%s)", what, rd_kafka_error_string(error),
              kafka_err_class_name(c));
    rd_kafka_error_destroy(error);
    return c;
}

static bool txn_check(kafka_producer *p, const char *what, char *err, size_t errlen)
{
    if (kafka_producer_transactional(p))
        return true;
    error_set(err, errlen, "%s: producer has no transactional id", what);
    return false;
}

kafka_err_class kafka_txn_init(kafka_producer *p, int timeout_ms, char *err, size_t errlen)
{
    if (!txn_check(p, "init transactions", err, errlen))
        return KAFKA_ERRCLASS_PERMANENT;
    return txn_result(rd_kafka_init_transactions(kafka_producer_rk(p), timeout_ms),
                      "init transactions", err, errlen);
}

kafka_err_class kafka_txn_begin(kafka_producer *p, char *err, size_t errlen)
{
    if (!txn_check(p, "begin transaction", err, errlen))
        return KAFKA_ERRCLASS_PERMANENT;
    return txn_result(rd_kafka_begin_transaction(kafka_producer_rk(p)), "begin transaction", err,
                      errlen);
}

kafka_err_class kafka_txn_send_offsets(kafka_producer *p, kafka_consumer *c,
                                       const rd_kafka_topic_partition_list_t *offsets,
                                       int timeout_ms, char *err, size_t errlen)
{
    rd_kafka_topic_partition_list_t *position = NULL;
    rd_kafka_consumer_group_metadata_t *cgmd = NULL;
    kafka_err_class ret = KAFKA_ERRCLASS_PERMANENT;

    if (!txn_check(p, "send offsets to transaction", err, errlen))
        goto out;
    if (offsets == NULL) {
        rd_kafka_resp_err_t e = rd_kafka_assignment(kafka_consumer_rk(c), &position);
        if (e == RD_KAFKA_RESP_ERR_NO_ERROR)
            e = rd_kafka_position(kafka_consumer_rk(c), position);
        if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
            error_set(err, errlen, "send offsets to transaction: consumer position: %s",
                      rd_kafka_err2str(e));
            ret = kafka_classify(e, NULL);
            goto out;
        }
        offsets = position;
    }
    cgmd = rd_kafka_consumer_group_metadata(kafka_consumer_rk(c));
    if (cgmd == NULL) {
        error_set(err, errlen, "send offsets to transaction: consumer has no group");
        goto out;
    }
    ret = txn_result(
        rd_kafka_send_offsets_to_transaction(kafka_producer_rk(p), offsets, cgmd, timeout_ms),
        "send offsets to transaction", err, errlen);
out:
    if (cgmd != NULL)
        rd_kafka_consumer_group_metadata_destroy(cgmd);
    if (position != NULL)
        rd_kafka_topic_partition_list_destroy(position);
    return ret;
}

kafka_err_class kafka_txn_commit(kafka_producer *p, int timeout_ms, char *err, size_t errlen)
{
    if (!txn_check(p, "commit transaction", err, errlen))
        return KAFKA_ERRCLASS_PERMANENT;
    return txn_result(rd_kafka_commit_transaction(kafka_producer_rk(p), timeout_ms),
                      "commit transaction", err, errlen);
}

kafka_err_class kafka_txn_abort(kafka_producer *p, int timeout_ms, char *err, size_t errlen)
{
    if (!txn_check(p, "abort transaction", err, errlen))
        return KAFKA_ERRCLASS_PERMANENT;
    return txn_result(rd_kafka_abort_transaction(kafka_producer_rk(p), timeout_ms),
                      "abort transaction", err, errlen);
}
