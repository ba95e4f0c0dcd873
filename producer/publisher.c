/*
 * publisher: one producer, a poll thread for delivery reports and a probe
 * thread for cluster reachability.
 *
 * Delivery reports are served by a dedicated thread rather than by the
 * HTTP workers: a report resumes a suspended request, and the workers must
 * never sleep in rd_kafka_poll() while connections wait on them.
 */
#include "publisher.h"

#include "error.h"
#include "kafka.h"
#include "log.h"
#include "timeutil.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PROBE_INTERVAL_MS 1000
#define PROBE_TIMEOUT_MS  1000

struct publisher {
    kafka_producer *kp;
    rd_kafka_topic_t *probe_rkt;
    publisher_done_fn done;
    char *probe_topic;
    int queue_max; /* queue.buffering.max.messages in effect (-X may override ours) */

    pthread_t poll_thread, probe_thread;
    bool poll_started, probe_started;
    atomic_bool running;

    pthread_mutex_t lock; /* guards reason and the stop condition */
    pthread_cond_t stop_cond;
    atomic_int probes;     /* probes finished so far */
    atomic_bool reachable; /* last probe reached a broker */
    atomic_bool topic_ok;  /* ... and found the topic */
    char reason[256];
};

static void on_delivery(void *opaque, const kafka_delivery_report *dr);

/* Each record carries its own callback: events and inbox updates share the
 * producer, and tests start several gateways in one process. */
typedef struct msg_ctx {
    publisher_done_fn done;
    void *opaque;
} msg_ctx;

static void on_delivery(void *opaque, const kafka_delivery_report *dr)
{
    msg_ctx *m = opaque;
    publisher_result r;
    if (dr->err == RD_KAFKA_RESP_ERR_NO_ERROR)
        r = PUBLISHER_OK;
    else if (dr->possibly_persisted)
        r = PUBLISHER_IN_DOUBT;
    else if (dr->errclass == KAFKA_ERRCLASS_RETRIABLE)
        r = PUBLISHER_UNAVAILABLE;
    else
        r = PUBLISHER_FAILED;
    /* Not dr->errstr: for a produced message librdkafka's message error
     * string may be the payload itself, which is not NUL-terminated. */
    const char *why = r == PUBLISHER_OK ? "Success" : rd_kafka_err2str(dr->err);
    if (r != PUBLISHER_OK)
        LOG_DEBUG(dr->topic, "delivery failed: %s", why);
    m->done(m->opaque, r, why, dr->partition, dr->offset);
    free(m);
}

static void *poll_main(void *arg)
{
    publisher *p = arg;
    while (atomic_load(&p->running))
        kafka_producer_poll(p->kp, 100);
    return NULL;
}

static void probe_once(publisher *p)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t err =
        rd_kafka_metadata(kafka_producer_rk(p->kp), 0, p->probe_rkt, &md, PROBE_TIMEOUT_MS);
    bool reachable = err == RD_KAFKA_RESP_ERR_NO_ERROR;
    bool topic_ok = false;
    char reason[256] = "";
    if (!reachable) {
        snprintf(reason, sizeof reason, "Kafka is not reachable: %s", rd_kafka_err2str(err));
    } else if (md->topic_cnt < 1 || md->topics[0].err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        snprintf(reason, sizeof reason, "topic %s: %s", p->probe_topic,
                 md->topic_cnt < 1 ? "no metadata" : rd_kafka_err2str(md->topics[0].err));
    } else {
        topic_ok = true;
    }
    if (md != NULL)
        rd_kafka_metadata_destroy(md);
    pthread_mutex_lock(&p->lock);
    snprintf(p->reason, sizeof p->reason, "%s", reason);
    pthread_mutex_unlock(&p->lock);
    if (reachable != atomic_load(&p->reachable) || topic_ok != atomic_load(&p->topic_ok)) {
        if (topic_ok)
            LOG_INFO(p->probe_topic, "Kafka reachable, topic present");
        else
            LOG_WARN(p->probe_topic, "%s", reason);
    }
    atomic_store(&p->reachable, reachable);
    atomic_store(&p->topic_ok, topic_ok);
    atomic_fetch_add(&p->probes, 1);
}

static void *probe_main(void *arg)
{
    publisher *p = arg;
    while (atomic_load(&p->running)) {
        probe_once(p);
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += PROBE_INTERVAL_MS / 1000;
        pthread_mutex_lock(&p->lock);
        if (atomic_load(&p->running))
            pthread_cond_timedwait(&p->stop_cond, &p->lock, &until);
        pthread_mutex_unlock(&p->lock);
    }
    return NULL;
}

publisher *publisher_new(const publisher_config *cfg, char *err, size_t errlen)
{
    publisher *p = NULL;
    char timeout[24], qmax[24], linger[24];

    p = calloc(1, sizeof *p);
    if (p == NULL)
        goto fail;
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->stop_cond, NULL);
    p->done = cfg->done;
    p->probe_topic = strdup(cfg->probe_topic);
    if (p->probe_topic == NULL)
        goto fail;

    /* The gateway's own settings; the operator's win. */
    snprintf(timeout, sizeof timeout, "%d", cfg->timeout_ms);
    snprintf(qmax, sizeof qmax, "%d", cfg->queue_max_messages);
    snprintf(linger, sizeof linger, "%d", cfg->linger_ms);
    const config_kv defaults[] = {
        {(char *)"message.timeout.ms", timeout},
        {(char *)"queue.buffering.max.messages", qmax},
        /* Bounded bytes too, so big bodies cannot grow the queue past the RSS budget. */
        {(char *)"queue.buffering.max.kbytes", (char *)"65536"},
        {(char *)"linger.ms", linger},
        /* Come back quickly once a broker returns after an outage. */
        {(char *)"reconnect.backoff.max.ms", (char *)"1000"},
    };
    config_kafka_props props = {(config_kv *)defaults, sizeof defaults / sizeof defaults[0]};

    p->kp = kafka_producer_new(cfg->brokers, &props, cfg->props, NULL, err, errlen);
    if (p->kp == NULL)
        goto fail_quiet;
    kafka_producer_set_delivery_cb(p->kp, on_delivery);
    char qeff[24];
    size_t qefflen = sizeof qeff;
    p->queue_max =
        rd_kafka_conf_get(rd_kafka_conf(kafka_producer_rk(p->kp)), "queue.buffering.max.messages",
                          qeff, &qefflen) == RD_KAFKA_CONF_OK
            ? atoi(qeff)
            : cfg->queue_max_messages;
    p->probe_rkt = rd_kafka_topic_new(kafka_producer_rk(p->kp), cfg->probe_topic, NULL);
    if (p->probe_rkt == NULL)
        goto fail;

    atomic_store(&p->running, true);
    if (pthread_create(&p->poll_thread, NULL, poll_main, p) != 0)
        goto fail;
    p->poll_started = true;
    if (pthread_create(&p->probe_thread, NULL, probe_main, p) != 0)
        goto fail;
    p->probe_started = true;
    return p;
fail:
    error_set(err, errlen, "cannot start the Kafka producer: out of resources");
fail_quiet:
    publisher_free(p);
    return NULL;
}

/* While the probe says the cluster is unreachable, holding a request for the
 * whole timeout helps nobody: refuse at once.  Only unreachability: a topic
 * the probe did not see may be one just created whose metadata is still
 * spreading; its records wait for it. */
static bool unreachable(publisher *p, char *err, size_t errlen)
{
    if (atomic_load(&p->probes) == 0 || atomic_load(&p->reachable))
        return false;
    pthread_mutex_lock(&p->lock);
    error_set(err, errlen, "%s", p->reason);
    pthread_mutex_unlock(&p->lock);
    return true;
}

publisher_result publisher_admit(publisher *p, char *err, size_t errlen)
{
    if (unreachable(p, err, errlen))
        return PUBLISHER_UNAVAILABLE;
    if (p->queue_max > 0 && kafka_producer_outq_len(p->kp) >= p->queue_max) {
        error_set(err, errlen, "the local producer queue is full");
        return PUBLISHER_QUEUE_FULL;
    }
    return PUBLISHER_OK;
}

publisher_result publisher_send(publisher *p, const char *topic, const void *key, size_t keylen,
                                const void *value, size_t vlen, void *opaque, char *err,
                                size_t errlen)
{
    return publisher_send_with(p, p->done, topic, key, keylen, value, vlen, opaque, err, errlen);
}

publisher_result publisher_send_with(publisher *p, publisher_done_fn done, const char *topic,
                                     const void *key, size_t keylen, const void *value, size_t vlen,
                                     void *opaque, char *err, size_t errlen)
{
    if (unreachable(p, err, errlen))
        return PUBLISHER_UNAVAILABLE;
    msg_ctx *m = malloc(sizeof *m);
    if (m == NULL) {
        error_set(err, errlen, "out of memory");
        return PUBLISHER_QUEUE_FULL;
    }
    m->done = done;
    m->opaque = opaque;
    kafka_status st = kafka_produce(p->kp, topic, key, keylen, value, vlen, NULL, m, err, errlen);
    if (st == KAFKA_OK)
        return PUBLISHER_OK;
    free(m);
    if (st == KAFKA_QUEUE_FULL)
        return PUBLISHER_QUEUE_FULL;
    if (st == KAFKA_ERR_FATAL)
        LOG_ERROR(topic, "%s", err);
    return PUBLISHER_FAILED;
}

bool publisher_ready(publisher *p, char *reason, size_t reasonlen)
{
    if (atomic_load(&p->probes) == 0) {
        snprintf(reason, reasonlen, "Kafka not probed yet");
        return false;
    }
    char why[256];
    if (kafka_producer_fatal(p->kp, why, sizeof why)) {
        snprintf(reason, reasonlen, "Kafka producer failed: %s", why);
        return false;
    }
    if (atomic_load(&p->topic_ok))
        return true;
    pthread_mutex_lock(&p->lock);
    snprintf(reason, reasonlen, "%s", p->reason);
    pthread_mutex_unlock(&p->lock);
    return false;
}

int publisher_queue_depth(publisher *p)
{
    return kafka_producer_outq_len(p->kp);
}

int publisher_flush(publisher *p, int timeout_ms)
{
    /* The poll thread keeps serving reports; only watch the queue drain. */
    int64_t deadline = timeutil_monotonic_ms() + timeout_ms;
    int left;
    while ((left = kafka_producer_outq_len(p->kp)) > 0 && timeutil_monotonic_ms() < deadline) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return left;
}

void publisher_free(publisher *p)
{
    if (p == NULL)
        return;
    pthread_mutex_lock(&p->lock);
    atomic_store(&p->running, false);
    pthread_cond_broadcast(&p->stop_cond);
    pthread_mutex_unlock(&p->lock);
    if (p->probe_started)
        pthread_join(p->probe_thread, NULL);
    if (p->poll_started)
        pthread_join(p->poll_thread, NULL);
    if (p->probe_rkt != NULL)
        rd_kafka_topic_destroy(p->probe_rkt);
    /* Purges what is left: each purged record still gets its callback. */
    kafka_producer_destroy(p->kp);
    pthread_cond_destroy(&p->stop_cond);
    pthread_mutex_destroy(&p->lock);
    free(p->probe_topic);
    free(p);
}
