/*
 * kafka: Herald's librdkafka clients, admin calls, headers and error
 * classification.  See kafka.h for the contract; the comments here say why
 * the code is shaped the way it is.
 */
#include "kafka.h"
#include "error.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "headers.h"
#include "log.h"
#include "timeutil.h"

struct kafka_producer {
    rd_kafka_t *rk;
    kafka_delivery_cb dr_cb;
    bool transactional;
};

struct kafka_consumer {
    rd_kafka_t *rk;
    kafka_rebalance_cb rb_cb;
    void *rb_ctx;
    bool paused;
    bool closed;
};

typedef struct conf_default {
    const char *key;
    const char *value;
} conf_default;

/*
 * Every client: a recognisable client.id in broker logs; no log line each time
 * a broker closes an idle connection (brokers do that every
 * connections.max.idle.ms, it is not news); never create topics by accident:
 * a typo in a topic name must fail, not create a one-partition topic.
 */
static const conf_default common_defaults[] = {
    {"client.id", "herald"},
    {"log.connection.close", "false"},
    {"allow.auto.create.topics", "false"},
};

/*
 * message.timeout.ms bounds how long a caller waits to learn a message's fate;
 * librdkafka's 5 minutes would hold a gateway request (and its 202) far too
 * long, while 30 s rides out a leader election.  murmur2_random is the Java
 * client's partitioner: Herald keys (user ids) land on the same partition
 * whichever client produced them, which per-user ordering depends on.
 */
static const conf_default producer_defaults[] = {
    {"acks", "all"},
    {"enable.idempotence", "true"},
    {"linger.ms", "5"},
    {"message.timeout.ms", "30000"},
    {"partitioner", "murmur2_random"},
};

/*
 * Offsets are stored by the application once a message is handled and
 * committed by it: at-least-once with no gap.  cooperative-sticky keeps a
 * rebalance from stopping every member of a large group.  A consumer that has
 * no committed offset must start from the beginning: a new dispatcher group
 * must not skip events published before it first joined.
 */
static const conf_default consumer_defaults[] = {
    {"enable.auto.commit", "false"},
    {"enable.auto.offset.store", "false"},
    {"partition.assignment.strategy", "cooperative-sticky"},
    {"auto.offset.reset", "earliest"},
    {"enable.partition.eof", "false"},
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* ---------------------------------------------------------- classification */

kafka_err_class kafka_classify(rd_kafka_resp_err_t err, const rd_kafka_error_t *error)
{
    /* librdkafka knows more than the code says: trust its flags first. */
    if (error != NULL) {
        if (rd_kafka_error_is_fatal(error))
            return KAFKA_ERRCLASS_FATAL;
        if (rd_kafka_error_txn_requires_abort(error))
            return KAFKA_ERRCLASS_ABORT_TXN;
        if (rd_kafka_error_is_retriable(error))
            return KAFKA_ERRCLASS_RETRIABLE;
        if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
            err = rd_kafka_error_code(error);
    }

    switch (err) {
    case RD_KAFKA_RESP_ERR_NO_ERROR:
        return KAFKA_ERRCLASS_NONE;

    /* The instance can no longer produce or consume correctly. */
    case RD_KAFKA_RESP_ERR__FATAL:
    case RD_KAFKA_RESP_ERR__FENCED:
    case RD_KAFKA_RESP_ERR__DESTROY:
    case RD_KAFKA_RESP_ERR__CRIT_SYS_RESOURCE:
    case RD_KAFKA_RESP_ERR_PRODUCER_FENCED:
    case RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH:
    case RD_KAFKA_RESP_ERR_TRANSACTION_COORDINATOR_FENCED:
    case RD_KAFKA_RESP_ERR_FENCED_INSTANCE_ID:
    /* Refused for the whole client, not for one topic: nothing will pass. */
    case RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED:
        return KAFKA_ERRCLASS_FATAL;

    /* Transient: the cluster is moving, busy or unreachable. */
    case RD_KAFKA_RESP_ERR__TRANSPORT:
    case RD_KAFKA_RESP_ERR__RESOLVE:
    case RD_KAFKA_RESP_ERR__MSG_TIMED_OUT:
    case RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN:
    case RD_KAFKA_RESP_ERR__TIMED_OUT:
    case RD_KAFKA_RESP_ERR__TIMED_OUT_QUEUE:
    case RD_KAFKA_RESP_ERR__QUEUE_FULL:
    case RD_KAFKA_RESP_ERR__ISR_INSUFF:
    case RD_KAFKA_RESP_ERR__NODE_UPDATE:
    case RD_KAFKA_RESP_ERR__SSL:
    case RD_KAFKA_RESP_ERR__WAIT_COORD:
    case RD_KAFKA_RESP_ERR__IN_PROGRESS:
    case RD_KAFKA_RESP_ERR__PREV_IN_PROGRESS:
    case RD_KAFKA_RESP_ERR__OUTDATED:
    case RD_KAFKA_RESP_ERR__WAIT_CACHE:
    case RD_KAFKA_RESP_ERR__INTR:
    case RD_KAFKA_RESP_ERR__RETRY:
    /* Purged by the application (shutdown, transaction abort): send again. */
    case RD_KAFKA_RESP_ERR__PURGE_QUEUE:
    case RD_KAFKA_RESP_ERR__PURGE_INFLIGHT:
    /* The consumer left or lost its group; the next poll rejoins. */
    case RD_KAFKA_RESP_ERR__MAX_POLL_EXCEEDED:
    case RD_KAFKA_RESP_ERR__ASSIGNMENT_LOST:
    case RD_KAFKA_RESP_ERR_INVALID_MSG: /* CORRUPT_MESSAGE: a bad transfer */
    case RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION:
    case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT:
    case RD_KAFKA_RESP_ERR_BROKER_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_REPLICA_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_NETWORK_EXCEPTION:
    case RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS:
    case RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_NOT_COORDINATOR:
    case RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS:
    case RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND:
    case RD_KAFKA_RESP_ERR_ILLEGAL_GENERATION:
    case RD_KAFKA_RESP_ERR_UNKNOWN_MEMBER_ID:
    case RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS:
    case RD_KAFKA_RESP_ERR_NOT_CONTROLLER:
    case RD_KAFKA_RESP_ERR_CONCURRENT_TRANSACTIONS:
    case RD_KAFKA_RESP_ERR_KAFKA_STORAGE_ERROR:
    case RD_KAFKA_RESP_ERR_REASSIGNMENT_IN_PROGRESS:
    case RD_KAFKA_RESP_ERR_FETCH_SESSION_ID_NOT_FOUND:
    case RD_KAFKA_RESP_ERR_INVALID_FETCH_SESSION_EPOCH:
    case RD_KAFKA_RESP_ERR_FENCED_LEADER_EPOCH:
    case RD_KAFKA_RESP_ERR_UNKNOWN_LEADER_EPOCH:
    case RD_KAFKA_RESP_ERR_OFFSET_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_PREFERRED_LEADER_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_ELIGIBLE_LEADERS_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_UNSTABLE_OFFSET_COMMIT:
    case RD_KAFKA_RESP_ERR_THROTTLING_QUOTA_EXCEEDED:
        return KAFKA_ERRCLASS_RETRIABLE;

    /*
     * Everything else fails again as is: the message is too large, the topic
     * does not exist (a delivery report says so only after librdkafka waited
     * for it) or is not ours to write, the request is invalid, credentials
     * are wrong.  Listing the common ones keeps the intent readable; the
     * default covers codes newer than this table, as Kafka's own clients
     * treat an unknown error as not retriable.
     */
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_INVALID_MSG_SIZE:
    case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
    case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
    case RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION:
    case RD_KAFKA_RESP_ERR_INVALID_RECORD:
    case RD_KAFKA_RESP_ERR_INVALID_TIMESTAMP:
    case RD_KAFKA_RESP_ERR_INVALID_REQUIRED_ACKS:
    case RD_KAFKA_RESP_ERR_UNSUPPORTED_VERSION:
    case RD_KAFKA_RESP_ERR_UNSUPPORTED_FOR_MESSAGE_FORMAT:
    case RD_KAFKA_RESP_ERR_UNSUPPORTED_COMPRESSION_TYPE:
    case RD_KAFKA_RESP_ERR_POLICY_VIOLATION:
    case RD_KAFKA_RESP_ERR__AUTHENTICATION:
    case RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED:
    case RD_KAFKA_RESP_ERR__INVALID_ARG:
    case RD_KAFKA_RESP_ERR__BAD_MSG:
    case RD_KAFKA_RESP_ERR__STATE:
    case RD_KAFKA_RESP_ERR__NOT_IMPLEMENTED:
    case RD_KAFKA_RESP_ERR__UNSUPPORTED_FEATURE:
    default:
        return KAFKA_ERRCLASS_PERMANENT;
    }
}

const char *kafka_err_class_name(kafka_err_class c)
{
    switch (c) {
    case KAFKA_ERRCLASS_NONE:
        return "none";
    case KAFKA_ERRCLASS_RETRIABLE:
        return "retriable";
    case KAFKA_ERRCLASS_ABORT_TXN:
        return "abort_txn";
    case KAFKA_ERRCLASS_PERMANENT:
        return "permanent";
    case KAFKA_ERRCLASS_FATAL:
        return "fatal";
    }
    return "unknown";
}

/* ------------------------------------------------------------ configuration */

/* syslog(3) levels, as librdkafka uses them. */
static log_level level_from_syslog(int level)
{
    if (level <= 3)
        return LOG_LEVEL_ERROR;
    if (level == 4)
        return LOG_LEVEL_WARN;
    if (level <= 6)
        return LOG_LEVEL_INFO;
    return LOG_LEVEL_DEBUG;
}

/* kafka_client_log_quiet(): client lines at debug level, the last problem kept. */
static atomic_bool log_quiet;
static pthread_mutex_t last_problem_mu = PTHREAD_MUTEX_INITIALIZER;
static char last_problem[512];

void kafka_client_log_quiet(bool quiet)
{
    atomic_store(&log_quiet, quiet);
}

bool kafka_client_last_problem(char *buf, size_t len)
{
    pthread_mutex_lock(&last_problem_mu);
    bool any = last_problem[0] != '\0';
    if (len > 0)
        snprintf(buf, len, "%s", last_problem);
    pthread_mutex_unlock(&last_problem_mu);
    return any;
}

/* Runs on librdkafka's threads: log_write() is thread-safe. */
static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    log_level lvl = level_from_syslog(level);
    if (atomic_load(&log_quiet)) {
        if (lvl >= LOG_LEVEL_WARN) {
            /* "[thrd:127.0.0.1:9092/bootstrap]: 127.0.0.1:9092/bootstrap: Connect ...": the
             * thread tag only repeats what follows it. */
            const char *text = buf, *end;
            if (strncmp(text, "[thrd:", 6) == 0 && (end = strstr(text, "]: ")) != NULL)
                text = end + 3;
            pthread_mutex_lock(&last_problem_mu);
            snprintf(last_problem, sizeof(last_problem), "%s", text);
            pthread_mutex_unlock(&last_problem_mu);
        }
        lvl = LOG_LEVEL_DEBUG;
    }
    LOG_AT(lvl, rk != NULL ? rd_kafka_name(rk) : "rdkafka", "%s: %s", fac, buf);
}

static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    (void)opaque;
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        /* reason only says "fatal error raised"; the cause is kept apart. */
        char why[640];
        (void)kafka_fatal_error(rk, why, sizeof(why));
        LOG_ERROR(rd_kafka_name(rk), "fatal error: %s", why);
        return;
    }
    /* A broker dropping a connection is also logged by log_cb as it happens. */
    if (err == RD_KAFKA_RESP_ERR__TRANSPORT) {
        LOG_DEBUG(rd_kafka_name(rk), "%s: %s", rd_kafka_err2name(err), reason);
        return;
    }
    /* The log line behind it, if any, is the one kept as the last problem. */
    if (atomic_load(&log_quiet)) {
        LOG_DEBUG(rd_kafka_name(rk), "%s: %s", rd_kafka_err2name(err), reason);
        return;
    }
    LOG_WARN(rd_kafka_name(rk), "%s: %s", rd_kafka_err2name(err), reason);
}

/* Properties whose values must never reach a log or an error message. */
static bool prop_is_secret(const char *key)
{
    static const char *const words[] = {"password", "secret", "key", "token", "jaas", "credential"};
    for (size_t i = 0; i < COUNT(words); i++)
        if (strstr(key, words[i]) != NULL)
            return true;
    return false;
}

static int conf_set(rd_kafka_conf_t *conf, const char *key, const char *value, char *err,
                    size_t errlen)
{
    char why[512];
    if (rd_kafka_conf_set(conf, key, value, why, sizeof(why)) == RD_KAFKA_CONF_OK)
        return 0;
    /* librdkafka's message quotes the value: drop it for secret properties. */
    if (prop_is_secret(key))
        error_set(err, errlen, "librdkafka property %s: invalid value", key);
    else
        error_set(err, errlen, "librdkafka property %s: %s", key, why);
    return -1;
}

static bool has_builtin_feature(rd_kafka_conf_t *conf, const char *feature)
{
    char features[512];
    size_t size = sizeof(features);
    if (rd_kafka_conf_get(conf, "builtin.features", features, &size) != RD_KAFKA_CONF_OK)
        return false;
    size_t flen = strlen(feature);
    for (const char *p = features; (p = strstr(p, feature)) != NULL; p += flen) {
        bool starts = p == features || p[-1] == ',';
        bool ends = p[flen] == '\0' || p[flen] == ',';
        if (starts && ends)
            return true;
    }
    return false;
}

/* Herald's common defaults, then the program's; the passthrough comes later. */
static rd_kafka_conf_t *conf_build(const char *brokers, const conf_default *defs, size_t ndefs,
                                   char *err, size_t errlen)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_t *ret = NULL;

    if (brokers == NULL || *brokers == '\0') {
        error_set(err, errlen, "no Kafka bootstrap servers given");
        goto out;
    }
    if (conf_set(conf, "bootstrap.servers", brokers, err, errlen) != 0)
        goto out;
    for (size_t i = 0; i < COUNT(common_defaults); i++)
        if (conf_set(conf, common_defaults[i].key, common_defaults[i].value, err, errlen) != 0)
            goto out;
    for (size_t i = 0; i < ndefs; i++)
        if (conf_set(conf, defs[i].key, defs[i].value, err, errlen) != 0)
            goto out;
    rd_kafka_conf_set_log_cb(conf, log_cb);
    rd_kafka_conf_set_error_cb(conf, error_cb);
    ret = conf;
    conf = NULL;
out:
    if (conf != NULL)
        rd_kafka_conf_destroy(conf);
    return ret;
}

/* A program's defaults, then the operator's -X pairs, which win over any default. */
static int conf_apply_props(rd_kafka_conf_t *conf, const config_kafka_props *props, char *err,
                            size_t errlen)
{
    for (size_t i = 0; props != NULL && i < props->count; i++) {
        const config_kv *kv = &props->items[i];
        if (kv->key == NULL || kv->value == NULL) {
            error_set(err, errlen, "librdkafka property without a key or value");
            return -1;
        }
        if (conf_set(conf, kv->key, kv->value, err, errlen) != 0)
            return -1;
    }
    return 0;
}

rd_kafka_conf_t *kafka_conf_new(const char *brokers, const config_kafka_props *props, char *err,
                                size_t errlen)
{
    rd_kafka_conf_t *conf = conf_build(brokers, NULL, 0, err, errlen);
    if (conf != NULL && conf_apply_props(conf, props, err, errlen) != 0) {
        rd_kafka_conf_destroy(conf);
        conf = NULL;
    }
    return conf;
}

rd_kafka_resp_err_t kafka_fatal_error(rd_kafka_t *rk, char *err, size_t errlen)
{
    char why[512] = "";
    rd_kafka_resp_err_t e = rd_kafka_fatal_error(rk, why, sizeof(why));
    /* A static member fenced by a newer one: the operator's mistake, said in their terms. */
    const char *hint = e == RD_KAFKA_RESP_ERR_FENCED_INSTANCE_ID
                           ? "; another live process has the same HERALD_KAFKA_GROUP_INSTANCE_ID"
                           : "";
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
        error_set(err, errlen, "%s: %s%s", rd_kafka_err2name(e), why, hint);
    return e;
}

static bool props_has(const config_kafka_props *props, const char *key)
{
    for (size_t i = 0; props != NULL && i < props->count; i++)
        if (props->items[i].key != NULL && strcmp(props->items[i].key, key) == 0)
            return true;
    return false;
}

/* ---------------------------------------------------------------- producer */

static void dr_msg_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    kafka_producer *p = opaque;
    if (p == NULL || p->dr_cb == NULL)
        return;
    kafka_err_class cls = kafka_classify(m->err, NULL);
    /*
     * After a fatal error (e.g. an idempotence sequence gap) the failed
     * messages carry the original broker code; what matters is that the
     * producer is done.
     */
    if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR &&
        rd_kafka_fatal_error(rk, NULL, 0) != RD_KAFKA_RESP_ERR_NO_ERROR)
        cls = KAFKA_ERRCLASS_FATAL;
    kafka_delivery_report dr = {
        .err = m->err,
        .errclass = cls,
        .errstr = m->err != RD_KAFKA_RESP_ERR_NO_ERROR ? rd_kafka_err2str(m->err) : "Success",
        .topic = m->rkt != NULL ? rd_kafka_topic_name(m->rkt) : "",
        .partition = m->partition,
        .offset = m->err == RD_KAFKA_RESP_ERR_NO_ERROR ? m->offset : RD_KAFKA_OFFSET_INVALID,
        .possibly_persisted = m->err != RD_KAFKA_RESP_ERR_NO_ERROR &&
                              rd_kafka_message_status(m) == RD_KAFKA_MSG_STATUS_POSSIBLY_PERSISTED,
        .key = m->key,
        .keylen = m->key_len,
    };
    p->dr_cb(m->_private, &dr);
}

kafka_producer *kafka_producer_new(const char *brokers, const config_kafka_props *defaults,
                                   const config_kafka_props *props, const char *transactional_id,
                                   char *err, size_t errlen)
{
    kafka_producer *p = NULL, *ret = NULL;
    rd_kafka_conf_t *conf = NULL;
    char why[512];

    p = calloc(1, sizeof(*p));
    if (p == NULL) {
        error_set(err, errlen, "out of memory");
        goto out;
    }
    conf = conf_build(brokers, producer_defaults, COUNT(producer_defaults), err, errlen);
    if (conf == NULL)
        goto out;
    /*
     * lz4 compresses JSON well at little CPU cost; a librdkafka built without
     * it would refuse the property, so fall back to no compression.
     */
    if (conf_set(conf, "compression.type", has_builtin_feature(conf, "lz4") ? "lz4" : "none", err,
                 errlen) != 0)
        goto out;
    if (transactional_id != NULL &&
        conf_set(conf, "transactional.id", transactional_id, err, errlen) != 0)
        goto out;
    if (conf_apply_props(conf, defaults, err, errlen) != 0 ||
        conf_apply_props(conf, props, err, errlen) != 0)
        goto out;
    if (transactional_id != NULL && !props_has(defaults, "message.timeout.ms") &&
        !props_has(props, "message.timeout.ms")) {
        /*
         * librdkafka refuses message.timeout.ms > transaction.timeout.ms; an
         * operator who shortened only the latter meant both.
         */
        char txn[32], msg[32];
        size_t txnlen = sizeof(txn), msglen = sizeof(msg);
        if (rd_kafka_conf_get(conf, "transaction.timeout.ms", txn, &txnlen) == RD_KAFKA_CONF_OK &&
            rd_kafka_conf_get(conf, "message.timeout.ms", msg, &msglen) == RD_KAFKA_CONF_OK &&
            atol(txn) < atol(msg) && conf_set(conf, "message.timeout.ms", txn, err, errlen) != 0)
            goto out;
    }
    rd_kafka_conf_set_dr_msg_cb(conf, dr_msg_cb);
    rd_kafka_conf_set_opaque(conf, p);
    p->transactional = transactional_id != NULL;

    p->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof(why));
    if (p->rk == NULL) {
        error_set(err, errlen, "cannot create Kafka producer: %s", why);
        goto out;
    }
    conf = NULL; /* rd_kafka_new() took it */
    ret = p;
    p = NULL;
out:
    if (conf != NULL)
        rd_kafka_conf_destroy(conf);
    free(p);
    return ret;
}

void kafka_producer_set_delivery_cb(kafka_producer *p, kafka_delivery_cb cb)
{
    p->dr_cb = cb;
}

kafka_status kafka_produce(kafka_producer *p, const char *topic, const void *key, size_t keylen,
                           const void *value, size_t vlen, rd_kafka_headers_t *hdrs,
                           void *msg_opaque, char *err, size_t errlen)
{
    rd_kafka_vu_t vu[6];
    size_t n = 0;

    if (topic == NULL || *topic == '\0') {
        error_set(err, errlen, "produce: no topic");
        return KAFKA_ERR;
    }
    vu[n].vtype = RD_KAFKA_VTYPE_TOPIC;
    vu[n++].u.cstr = topic;
    vu[n].vtype = RD_KAFKA_VTYPE_KEY;
    vu[n].u.mem.ptr = (void *)key;
    vu[n++].u.mem.size = key != NULL ? keylen : 0;
    vu[n].vtype = RD_KAFKA_VTYPE_VALUE;
    vu[n].u.mem.ptr = (void *)value;
    vu[n++].u.mem.size = value != NULL ? vlen : 0;
    /* Copy: callers produce from stack and request buffers. */
    vu[n].vtype = RD_KAFKA_VTYPE_MSGFLAGS;
    vu[n++].u.i = RD_KAFKA_MSG_F_COPY;
    vu[n].vtype = RD_KAFKA_VTYPE_OPAQUE;
    vu[n++].u.ptr = msg_opaque;
    if (hdrs != NULL) {
        vu[n].vtype = RD_KAFKA_VTYPE_HEADERS;
        vu[n++].u.headers = hdrs;
    }

    rd_kafka_error_t *error = rd_kafka_produceva(p->rk, vu, n);
    if (error == NULL)
        return KAFKA_OK;

    kafka_status st;
    rd_kafka_resp_err_t code = rd_kafka_error_code(error);
    if (code == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
        error_set(err, errlen, "produce to %s: local queue full", topic);
        st = KAFKA_QUEUE_FULL;
    } else if (code == RD_KAFKA_RESP_ERR__FATAL || rd_kafka_error_is_fatal(error)) {
        char why[512];
        if (kafka_fatal_error(p->rk, why, sizeof(why)) == RD_KAFKA_RESP_ERR_NO_ERROR)
            snprintf(why, sizeof(why), "%s", rd_kafka_error_string(error));
        error_set(err, errlen, "produce to %s: producer failed fatally: %s", topic, why);
        st = KAFKA_ERR_FATAL;
    } else {
        error_set(err, errlen, "produce to %s: %s", topic, rd_kafka_error_string(error));
        st = KAFKA_ERR;
    }
    rd_kafka_error_destroy(error);
    return st;
}

int kafka_producer_poll(kafka_producer *p, int timeout_ms)
{
    return rd_kafka_poll(p->rk, timeout_ms);
}

int kafka_producer_flush(kafka_producer *p, int timeout_ms)
{
    /* The result is the same as outq_len afterwards; no need to look at it. */
    (void)rd_kafka_flush(p->rk, timeout_ms);
    return rd_kafka_outq_len(p->rk);
}

int kafka_producer_outq_len(kafka_producer *p)
{
    return rd_kafka_outq_len(p->rk);
}

bool kafka_producer_fatal(kafka_producer *p, char *err, size_t errlen)
{
    return kafka_fatal_error(p->rk, err, errlen) != RD_KAFKA_RESP_ERR_NO_ERROR;
}

rd_kafka_t *kafka_producer_rk(kafka_producer *p)
{
    return p->rk;
}

bool kafka_producer_transactional(const kafka_producer *p)
{
    return p->transactional;
}

void kafka_producer_destroy(kafka_producer *p)
{
    if (p == NULL)
        return;
    /*
     * Purged messages get their delivery report here, so a caller that keeps
     * state per message (msg_opaque) can release it; otherwise rd_kafka_destroy
     * would drop them silently.  The flush only serves those reports: bounded.
     */
    rd_kafka_purge(p->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    int64_t deadline = timeutil_monotonic_ms() + 2000;
    while (rd_kafka_outq_len(p->rk) > 0 && timeutil_monotonic_ms() < deadline)
        rd_kafka_poll(p->rk, 50);
    rd_kafka_poll(p->rk, 0);
    rd_kafka_destroy(p->rk);
    free(p);
}

/* ---------------------------------------------------------------- consumer */

static bool is_cooperative(rd_kafka_t *rk)
{
    const char *proto = rd_kafka_rebalance_protocol(rk);
    return proto != NULL && strcmp(proto, "COOPERATIVE") == 0;
}

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    kafka_consumer *c = opaque;
    bool coop = is_cooperative(rk);
    rd_kafka_error_t *error = NULL;
    rd_kafka_resp_err_t e = RD_KAFKA_RESP_ERR_NO_ERROR;

    switch (err) {
    case RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS:
        LOG_INFO(rd_kafka_name(rk), "assigned %d partition(s) (%s)", parts->cnt,
                 coop ? "incremental" : "eager");
        if (coop)
            error = rd_kafka_incremental_assign(rk, parts);
        else
            e = rd_kafka_assign(rk, parts);
        /* New partitions must not bypass back-pressure. */
        if (error == NULL && e == RD_KAFKA_RESP_ERR_NO_ERROR && c->paused)
            (void)rd_kafka_pause_partitions(rk, parts);
        if (c->rb_cb != NULL)
            c->rb_cb(c->rb_ctx, true, parts, false);
        break;

    case RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS: {
        bool lost = rd_kafka_assignment_lost(rk) != 0;
        LOG_INFO(rd_kafka_name(rk), "%s %d partition(s) (%s)", lost ? "lost" : "revoked",
                 parts->cnt, coop ? "incremental" : "eager");
        /*
         * Commit what was processed before handing the partitions over, so
         * the next owner does not redo it.  Lost partitions may already be
         * someone else's: committing for them would be rejected or, worse,
         * overwrite the new owner's progress.
         */
        if (!lost) {
            rd_kafka_resp_err_t ce = rd_kafka_commit(rk, NULL, 0);
            if (ce != RD_KAFKA_RESP_ERR_NO_ERROR && ce != RD_KAFKA_RESP_ERR__NO_OFFSET)
                LOG_WARN(rd_kafka_name(rk), "commit on revoke failed: %s", rd_kafka_err2str(ce));
        }
        if (c->rb_cb != NULL)
            c->rb_cb(c->rb_ctx, false, parts, lost);
        if (coop)
            error = rd_kafka_incremental_unassign(rk, parts);
        else
            e = rd_kafka_assign(rk, NULL);
        break;
    }

    default:
        /* librdkafka's advice: drop the assignment to stay in sync. */
        LOG_ERROR(rd_kafka_name(rk), "rebalance failed: %s", rd_kafka_err2str(err));
        if (c->rb_cb != NULL)
            c->rb_cb(c->rb_ctx, false, parts, true);
        e = rd_kafka_assign(rk, NULL);
        break;
    }

    if (error != NULL) {
        LOG_ERROR(rd_kafka_name(rk), "incremental %s failed: %s",
                  err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS ? "assign" : "unassign",
                  rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
    } else if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
        LOG_ERROR(rd_kafka_name(rk), "assign failed: %s", rd_kafka_err2str(e));
    }
}

/* The member's settings as librdkafka properties; -1 with err on a bad one. */
static int conf_apply_member(rd_kafka_conf_t *conf, const config_group_member *member, char *err,
                             size_t errlen)
{
    if (member == NULL)
        return 0;
    if (member->instance_id != NULL && *member->instance_id != '\0' &&
        conf_set(conf, "group.instance.id", member->instance_id, err, errlen) != 0)
        return -1;
    if (member->session_timeout_ms > 0) {
        char session[24], heartbeat[24];
        long hb = member->session_timeout_ms / 3;
        snprintf(session, sizeof session, "%ld", member->session_timeout_ms);
        snprintf(heartbeat, sizeof heartbeat, "%ld", hb < 3000 ? hb : 3000);
        if (conf_set(conf, "session.timeout.ms", session, err, errlen) != 0 ||
            conf_set(conf, "heartbeat.interval.ms", heartbeat, err, errlen) != 0)
            return -1;
    }
    return 0;
}

kafka_consumer *kafka_consumer_new(const char *brokers, const char *group_id,
                                   const config_kafka_props *defaults,
                                   const config_kafka_props *props, char *err, size_t errlen)
{
    return kafka_member_consumer_new(brokers, group_id, NULL, defaults, props, err, errlen);
}

kafka_consumer *kafka_member_consumer_new(const char *brokers, const char *group_id,
                                          const config_group_member *member,
                                          const config_kafka_props *defaults,
                                          const config_kafka_props *props, char *err, size_t errlen)
{
    kafka_consumer *c = NULL, *ret = NULL;
    rd_kafka_conf_t *conf = NULL;
    char why[512];

    if (group_id == NULL || *group_id == '\0') {
        error_set(err, errlen, "Kafka consumer: no group id");
        goto out;
    }
    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        error_set(err, errlen, "out of memory");
        goto out;
    }
    conf = conf_build(brokers, consumer_defaults, COUNT(consumer_defaults), err, errlen);
    if (conf == NULL)
        goto out;
    if (conf_set(conf, "group.id", group_id, err, errlen) != 0 ||
        conf_apply_member(conf, member, err, errlen) != 0)
        goto out;
    if (conf_apply_props(conf, defaults, err, errlen) != 0 ||
        conf_apply_props(conf, props, err, errlen) != 0)
        goto out;
    rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);
    rd_kafka_conf_set_opaque(conf, c);

    c->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, why, sizeof(why));
    if (c->rk == NULL) {
        error_set(err, errlen, "cannot create Kafka consumer: %s", why);
        goto out;
    }
    conf = NULL;
    /* One queue: kafka_consumer_poll() also serves errors, logs and rebalances. */
    rd_kafka_poll_set_consumer(c->rk);
    if (member != NULL && member->instance_id != NULL && *member->instance_id != '\0')
        LOG_INFO(rd_kafka_name(c->rk), "group %s: static member %s", group_id, member->instance_id);
    ret = c;
    c = NULL;
out:
    if (conf != NULL)
        rd_kafka_conf_destroy(conf);
    free(c);
    return ret;
}

void kafka_consumer_set_rebalance_cb(kafka_consumer *c, kafka_rebalance_cb cb, void *ctx)
{
    c->rb_cb = cb;
    c->rb_ctx = ctx;
}

kafka_status kafka_consumer_subscribe(kafka_consumer *c, const char *const *topics, size_t n,
                                      char *err, size_t errlen)
{
    if (n == 0 || n > INT_MAX) {
        error_set(err, errlen, "subscribe: no topics");
        return KAFKA_ERR;
    }
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new((int)n);
    for (size_t i = 0; i < n; i++)
        rd_kafka_topic_partition_list_add(list, topics[i], RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t e = rd_kafka_subscribe(c->rk, list);
    rd_kafka_topic_partition_list_destroy(list);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
        error_set(err, errlen, "subscribe: %s", rd_kafka_err2str(e));
        return e == RD_KAFKA_RESP_ERR__FATAL ? KAFKA_ERR_FATAL : KAFKA_ERR;
    }
    return KAFKA_OK;
}

rd_kafka_message_t *kafka_consumer_poll(kafka_consumer *c, int timeout_ms)
{
    return rd_kafka_consumer_poll(c->rk, timeout_ms);
}

kafka_status kafka_consumer_store_offset(kafka_consumer *c, const rd_kafka_message_t *msg,
                                         char *err, size_t errlen)
{
    if (msg == NULL || msg->rkt == NULL || msg->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        error_set(err, errlen, "store offset: not a consumed message");
        return KAFKA_ERR;
    }
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(1);
    /* Kafka's committed offset is the next one to read, hence + 1. */
    rd_kafka_topic_partition_list_add(list, rd_kafka_topic_name(msg->rkt), msg->partition)->offset =
        msg->offset + 1;
    rd_kafka_resp_err_t e = rd_kafka_offsets_store(c->rk, list);
    if (e == RD_KAFKA_RESP_ERR_NO_ERROR || e == RD_KAFKA_RESP_ERR__INVALID_ARG)
        e = list->elems[0].err != RD_KAFKA_RESP_ERR_NO_ERROR ? list->elems[0].err : e;
    kafka_status st = KAFKA_OK;
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
        error_set(err, errlen, "store offset %s [%" PRId32 "] @%" PRId64 ": %s",
                  rd_kafka_topic_name(msg->rkt), msg->partition, msg->offset, rd_kafka_err2str(e));
        st = KAFKA_ERR;
    }
    rd_kafka_topic_partition_list_destroy(list);
    return st;
}

kafka_status kafka_consumer_commit(kafka_consumer *c, bool async, char *err, size_t errlen)
{
    rd_kafka_resp_err_t e = rd_kafka_commit(c->rk, NULL, async ? 1 : 0);
    if (e == RD_KAFKA_RESP_ERR_NO_ERROR || e == RD_KAFKA_RESP_ERR__NO_OFFSET)
        return KAFKA_OK;
    error_set(err, errlen, "commit offsets: %s", rd_kafka_err2str(e));
    return e == RD_KAFKA_RESP_ERR__FATAL ? KAFKA_ERR_FATAL : KAFKA_ERR;
}

static kafka_status set_paused(kafka_consumer *c, bool pause, char *err, size_t errlen)
{
    rd_kafka_topic_partition_list_t *parts = NULL;
    kafka_status st = KAFKA_ERR;
    rd_kafka_resp_err_t e = rd_kafka_assignment(c->rk, &parts);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
        goto fail;
    e = pause ? rd_kafka_pause_partitions(c->rk, parts) : rd_kafka_resume_partitions(c->rk, parts);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
        goto fail;
    c->paused = pause;
    st = KAFKA_OK;
    goto out;
fail:
    error_set(err, errlen, "%s: %s", pause ? "pause" : "resume", rd_kafka_err2str(e));
out:
    if (parts != NULL)
        rd_kafka_topic_partition_list_destroy(parts);
    return st;
}

/* The high watermark of topic [part], retrying within timeout_ms while a
 * new topic's partitions are still electing their leaders. */
static rd_kafka_resp_err_t watermark_high(rd_kafka_t *rk, const char *topic, int32_t part,
                                          int timeout_ms, int64_t *high)
{
    int64_t low = 0, deadline = timeutil_monotonic_ms() + timeout_ms;
    rd_kafka_resp_err_t e = RD_KAFKA_RESP_ERR_NO_ERROR;
    for (int i = 0; i < 1000; i++) {
        int64_t left = deadline - timeutil_monotonic_ms();
        e = rd_kafka_query_watermark_offsets(rk, topic, part, &low, high, left > 0 ? (int)left : 1);
        if (e == RD_KAFKA_RESP_ERR_NO_ERROR || left <= 0 ||
            kafka_classify(e, NULL) != KAFKA_ERRCLASS_RETRIABLE)
            break;
        const struct timespec pause = {0, 100 * 1000000L};
        nanosleep(&pause, NULL);
    }
    return e;
}

/*
 * The metadata of topic into *md (rd_kafka_metadata_destroy), with at
 * least one partition: KAFKA_OK, KAFKA_ERR_NOT_FOUND, or KAFKA_ERR.
 */
static kafka_status topic_metadata(kafka_consumer *c, const char *topic, int timeout_ms,
                                   const rd_kafka_metadata_t **md, char *err, size_t errlen)
{
    kafka_status st = KAFKA_ERR;
    *md = NULL;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(c->rk, topic, NULL);
    if (rkt == NULL) {
        error_set(err, errlen, "%s: %s", topic, rd_kafka_err2str(rd_kafka_last_error()));
        return KAFKA_ERR;
    }
    rd_kafka_resp_err_t e = rd_kafka_metadata(c->rk, 0, rkt, md, timeout_ms);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
        error_set(err, errlen, "%s: metadata: %s", topic, rd_kafka_err2str(e));
        *md = NULL;
        goto out;
    }
    const rd_kafka_metadata_t *m = *md;
    if (m->topic_cnt != 1 || m->topics[0].err != RD_KAFKA_RESP_ERR_NO_ERROR ||
        m->topics[0].partition_cnt == 0) {
        e = m->topic_cnt == 1 ? m->topics[0].err : RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART;
        error_set(err, errlen, "%s: %s", topic,
                  e != RD_KAFKA_RESP_ERR_NO_ERROR ? rd_kafka_err2str(e) : "no partitions");
        rd_kafka_metadata_destroy(*md);
        *md = NULL;
        st = KAFKA_ERR_NOT_FOUND;
        goto out;
    }
    st = KAFKA_OK;
out:
    rd_kafka_topic_destroy(rkt);
    return st;
}

kafka_status kafka_consumer_assign_all(kafka_consumer *c, const char *topic, int64_t offset,
                                       int timeout_ms, char *err, size_t errlen)
{
    const rd_kafka_metadata_t *md = NULL;
    rd_kafka_topic_partition_list_t *list = NULL;
    kafka_status st = topic_metadata(c, topic, timeout_ms, &md, err, errlen);
    if (st != KAFKA_OK)
        return st;
    st = KAFKA_ERR;
    list = rd_kafka_topic_partition_list_new(md->topics[0].partition_cnt);
    for (int i = 0; i < md->topics[0].partition_cnt; i++) {
        int32_t part = md->topics[0].partitions[i].id;
        int64_t at = offset, high = 0;
        /* The end as of now, not as of the first fetch: what is produced
         * after this call returns is read. */
        if (offset == RD_KAFKA_OFFSET_END) {
            rd_kafka_resp_err_t e = watermark_high(c->rk, topic, part, timeout_ms, &high);
            if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
                error_set(err, errlen, "%s [%" PRId32 "]: end offset: %s", topic, part,
                          rd_kafka_err2str(e));
                goto out;
            }
            at = high;
        }
        rd_kafka_topic_partition_list_add(list, topic, part)->offset = at;
    }
    rd_kafka_resp_err_t e = rd_kafka_assign(c->rk, list);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
        error_set(err, errlen, "%s: assign: %s", topic, rd_kafka_err2str(e));
        goto out;
    }
    LOG_INFO(rd_kafka_name(c->rk), "reading all %d partition(s) of %s", list->cnt, topic);
    st = KAFKA_OK;
out:
    rd_kafka_topic_partition_list_destroy(list);
    rd_kafka_metadata_destroy(md);
    return st;
}

kafka_status kafka_consumer_assign_added(kafka_consumer *c, const char *topic, int timeout_ms,
                                         int *added, char *err, size_t errlen)
{
    const rd_kafka_metadata_t *md = NULL;
    rd_kafka_topic_partition_list_t *cur = NULL, *list = NULL;
    *added = 0;
    kafka_status st = topic_metadata(c, topic, timeout_ms, &md, err, errlen);
    if (st != KAFKA_OK)
        return st;
    st = KAFKA_ERR;
    rd_kafka_resp_err_t e = rd_kafka_assignment(c->rk, &cur);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
        error_set(err, errlen, "%s: assignment: %s", topic, rd_kafka_err2str(e));
        goto out;
    }
    list = rd_kafka_topic_partition_list_new(md->topics[0].partition_cnt);
    for (int i = 0; i < md->topics[0].partition_cnt; i++) {
        int32_t part = md->topics[0].partitions[i].id;
        if (rd_kafka_topic_partition_list_find(cur, topic, part) == NULL)
            rd_kafka_topic_partition_list_add(list, topic, part)->offset =
                RD_KAFKA_OFFSET_BEGINNING;
    }
    if (list->cnt > 0) {
        rd_kafka_error_t *ke = rd_kafka_incremental_assign(c->rk, list);
        if (ke != NULL) {
            error_set(err, errlen, "%s: assign: %s", topic, rd_kafka_error_string(ke));
            rd_kafka_error_destroy(ke);
            goto out;
        }
        LOG_INFO(rd_kafka_name(c->rk), "reading %d new partition(s) of %s from their beginning",
                 list->cnt, topic);
    }
    *added = list->cnt;
    st = KAFKA_OK;
out:
    if (list != NULL)
        rd_kafka_topic_partition_list_destroy(list);
    if (cur != NULL)
        rd_kafka_topic_partition_list_destroy(cur);
    rd_kafka_metadata_destroy(md);
    return st;
}

kafka_status kafka_consumer_pause(kafka_consumer *c, char *err, size_t errlen)
{
    return set_paused(c, true, err, errlen);
}

kafka_status kafka_consumer_resume(kafka_consumer *c, char *err, size_t errlen)
{
    return set_paused(c, false, err, errlen);
}

bool kafka_consumer_paused(const kafka_consumer *c)
{
    return c->paused;
}

bool kafka_consumer_fatal(kafka_consumer *c, char *err, size_t errlen)
{
    return kafka_fatal_error(c->rk, err, errlen) != RD_KAFKA_RESP_ERR_NO_ERROR;
}

rd_kafka_t *kafka_consumer_rk(kafka_consumer *c)
{
    return c->rk;
}

kafka_status kafka_consumer_close(kafka_consumer *c, char *err, size_t errlen)
{
    kafka_status st = KAFKA_OK;
    if (c->closed)
        return KAFKA_OK;
    c->closed = true;
    /* A fenced or failed consumer cannot commit; still leave the group. */
    if (!kafka_consumer_fatal(c, NULL, 0))
        st = kafka_consumer_commit(c, false, err, errlen);
    rd_kafka_resp_err_t e = rd_kafka_consumer_close(c->rk);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR && st == KAFKA_OK) {
        error_set(err, errlen, "close consumer: %s", rd_kafka_err2str(e));
        st = KAFKA_ERR;
    }
    return st;
}

void kafka_consumer_destroy(kafka_consumer *c)
{
    if (c == NULL)
        return;
    if (!c->closed) {
        char why[256];
        if (kafka_consumer_close(c, why, sizeof(why)) != KAFKA_OK)
            LOG_WARN(rd_kafka_name(c->rk), "%s", why);
    }
    rd_kafka_destroy(c->rk);
    free(c);
}
