/*
 * partread: see partread.h.
 */
#include "partread.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "error.h"
#include "kafka.h"
#include "log.h"
#include "timeutil.h"

/* Kafka's own limit; a cap keeps a corrupt metadata answer from sizing arrays. */
#define PARTREAD_MAX_PARTITIONS 100000
#define PARTREAD_POLL_MS        200

struct partread {
    kafka_consumer *c;
    rd_kafka_t *rk; /* c's */
    char *topic;
    int npart;
    int64_t *start; /* per partition; end <= start: nothing to read */
    int64_t *end;
    bool *done;
    int remaining; /* partitions not done */
    int64_t total;
    int timeout_ms;
};

/*
 * The operator's -X pairs go in as the defaults, so that the reader's own
 * settings, passed last, win on purpose: a reader must never commit,
 * whatever the passthrough says.
 */
static kafka_consumer *reader_new(const char *brokers, const config_kafka_props *props, char *err,
                                  size_t errlen)
{
    static config_kv fixed_kv[] = {
        {(char *)"enable.auto.commit", (char *)"false"},
        {(char *)"enable.auto.offset.store", (char *)"false"},
        {(char *)"enable.partition.eof", (char *)"true"},
        {(char *)"auto.offset.reset", (char *)"earliest"},
    };
    static const config_kafka_props fixed = {fixed_kv, sizeof fixed_kv / sizeof fixed_kv[0]};
    return kafka_consumer_new(brokers, "heraldctl-reader", props, &fixed, err, errlen);
}

/* Partition count from metadata: -1 unreachable, 0 missing topic. */
static int partition_count(rd_kafka_t *rk, const char *topic, int timeout_ms, char *err,
                           size_t errlen)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    int n = -1;
    if (rkt == NULL) {
        error_set(err, errlen, "%s: %s", topic, rd_kafka_err2str(rd_kafka_last_error()));
        goto out;
    }
    rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 0, rkt, &md, timeout_ms);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
        error_set(err, errlen, "no answer from the cluster: %s", rd_kafka_err2str(e));
        goto out;
    }
    if (md->topic_cnt != 1 || md->topics[0].err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) {
        error_set(err, errlen, "topic %s does not exist", topic);
        n = 0;
        goto out;
    }
    if (md->topics[0].err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        error_set(err, errlen, "topic %s: %s", topic, rd_kafka_err2str(md->topics[0].err));
        goto out;
    }
    n = md->topics[0].partition_cnt;
    if (n <= 0 || n > PARTREAD_MAX_PARTITIONS) {
        error_set(err, errlen, "topic %s: %d partitions", topic, n);
        n = -1;
    }
out:
    if (md != NULL)
        rd_kafka_metadata_destroy(md);
    if (rkt != NULL)
        rd_kafka_topic_destroy(rkt);
    return n;
}

/* Replaces start (from_ms) or end (to_ms) offsets with the time's offsets. */
static int apply_times(partread *r, int64_t ms, int64_t *target, const int64_t *high, char *err,
                       size_t errlen)
{
    int rc = -1;
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(r->npart);
    for (int p = 0; p < r->npart; p++)
        rd_kafka_topic_partition_list_add(list, r->topic, p)->offset = ms;
    rd_kafka_resp_err_t e = rd_kafka_offsets_for_times(r->rk, list, r->timeout_ms);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
        error_set(err, errlen, "offsets for time on %s: %s", r->topic, rd_kafka_err2str(e));
        goto out;
    }
    for (int i = 0; i < list->cnt; i++) {
        const rd_kafka_topic_partition_t *tp = &list->elems[i];
        if (tp->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            error_set(err, errlen, "offsets for time on %s [%d]: %s", r->topic, (int)tp->partition,
                      rd_kafka_err2str(tp->err));
            goto out;
        }
        /* -1: no record at or after the time, i.e. the end of the partition. */
        target[tp->partition] = tp->offset >= 0 ? tp->offset : high[tp->partition];
    }
    rc = 0;
out:
    rd_kafka_topic_partition_list_destroy(list);
    return rc;
}

/* A reader on topic with its consumer, nothing asked of the cluster yet; NULL with err. */
static partread *reader_open(const char *brokers, const config_kafka_props *props,
                             const char *topic, int timeout_ms, char *err, size_t errlen)
{
    partread *r = calloc(1, sizeof(*r));
    if (r == NULL || (r->topic = strdup(topic)) == NULL) {
        error_set(err, errlen, "out of memory");
        goto fail;
    }
    r->timeout_ms = timeout_ms > 0 ? timeout_ms : 10000;
    r->c = reader_new(brokers, props, err, errlen);
    if (r->c == NULL)
        goto fail;
    r->rk = kafka_consumer_rk(r->c);
    return r;
fail:
    partread_close(r);
    return NULL;
}

/* The partition count into r; MISSING when the topic, or the one partition asked, is not there. */
static partread_status count_partitions(partread *r, int32_t only, char *err, size_t errlen)
{
    r->npart = partition_count(r->rk, r->topic, r->timeout_ms, err, errlen);
    if (r->npart <= 0)
        return r->npart == 0 ? PARTREAD_MISSING : PARTREAD_ERROR;
    if (only >= r->npart) {
        error_set(err, errlen, "topic %s has no partition %d (it has %d)", r->topic, (int)only,
                  r->npart);
        return PARTREAD_MISSING;
    }
    return PARTREAD_OK;
}

/* The per-partition arrays of r, and *low for open's own use; -1 with err. */
static int alloc_ranges(partread *r, int64_t **low, char *err, size_t errlen)
{
    size_t n = (size_t)r->npart;
    r->start = calloc(n, sizeof(*r->start));
    r->end = calloc(n, sizeof(*r->end));
    r->done = calloc(n, sizeof(*r->done));
    *low = calloc(n, sizeof(**low));
    if (r->start == NULL || r->end == NULL || r->done == NULL || *low == NULL) {
        error_set(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

/*
 * The watermarks of partition p, retried while the cluster settles (a leader
 * moving, a topic just made), within the reader's timeout.
 */
static rd_kafka_resp_err_t query_watermarks(partread *r, int32_t p, int64_t *lo, int64_t *hi)
{
    int64_t deadline = timeutil_monotonic_ms() + r->timeout_ms;
    rd_kafka_resp_err_t e;
    for (int attempt = 0;; attempt++) {
        int64_t left = deadline - timeutil_monotonic_ms();
        e = rd_kafka_query_watermark_offsets(r->rk, r->topic, p, lo, hi, left > 0 ? (int)left : 1);
        if (e == RD_KAFKA_RESP_ERR_NO_ERROR || attempt >= 50 ||
            kafka_classify(e, NULL) != KAFKA_ERRCLASS_RETRIABLE ||
            timeutil_monotonic_ms() + 200 >= deadline)
            break;
        struct timespec ts = {0, 200 * 1000 * 1000};
        (void)nanosleep(&ts, NULL);
    }
    return e;
}

/* Each partition's range set to its watermarks, low to the log starts; the others done. */
static int read_watermarks(partread *r, int32_t only, int64_t *low, char *err, size_t errlen)
{
    for (int p = 0; p < r->npart; p++) {
        int64_t lo = 0, hi = 0;
        if (only >= 0 && p != only) {
            r->done[p] = true;
            continue;
        }
        rd_kafka_resp_err_t e = query_watermarks(r, p, &lo, &hi);
        if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
            error_set(err, errlen, "watermarks of %s [%d]: %s", r->topic, p, rd_kafka_err2str(e));
            return -1;
        }
        low[p] = lo;
        r->start[p] = lo;
        r->end[p] = hi;
    }
    return 0;
}

/* Narrows the asked partition to its one record at the asked offset; MISSING when it is not there.
 */
static partread_status narrow_to_record(partread *r, const partread_range *range,
                                        const int64_t *low, char *err, size_t errlen)
{
    int32_t p = range->partition;
    if (range->offset < low[p] || range->offset >= r->end[p]) {
        error_set(err, errlen,
                  "no record %d:%" PRId64 " in %s (partition %d holds %" PRId64 "..%" PRId64 ")",
                  (int)p, range->offset, r->topic, (int)p, low[p], r->end[p] - 1);
        return PARTREAD_MISSING;
    }
    r->start[p] = range->offset;
    r->end[p] = range->offset + 1;
    return PARTREAD_OK;
}

/* Narrows every range to from_ms..to_ms; high is npart entries of scratch for the watermarks. */
static partread_status narrow_to_times(partread *r, const partread_range *range, int64_t *high,
                                       char *err, size_t errlen)
{
    /* The end first: it must be computed against the watermarks. */
    for (int p = 0; p < r->npart; p++)
        high[p] = r->end[p];
    if (range->to_ms >= 0 && apply_times(r, range->to_ms, r->end, high, err, errlen) != 0)
        return PARTREAD_ERROR;
    if (range->from_ms >= 0 && apply_times(r, range->from_ms, r->start, high, err, errlen) != 0)
        return PARTREAD_ERROR;
    for (int p = 0; p < r->npart && p < range->nstarts && range->starts != NULL; p++)
        if (range->starts[p] > r->start[p])
            r->start[p] = range->starts[p];
    return PARTREAD_OK;
}

/* Assigns every partition with records in its range, from its start, and counts them; -1 with err.
 */
static int assign_ranges(partread *r, char *err, size_t errlen)
{
    int rc = 0;
    rd_kafka_topic_partition_list_t *assign = rd_kafka_topic_partition_list_new(r->npart);
    for (int p = 0; p < r->npart; p++) {
        if (r->done[p] || r->start[p] >= r->end[p]) {
            r->done[p] = true;
            continue;
        }
        r->total += r->end[p] - r->start[p];
        r->remaining++;
        rd_kafka_topic_partition_list_add(assign, r->topic, p)->offset = r->start[p];
    }
    if (assign->cnt > 0) {
        rd_kafka_resp_err_t e = rd_kafka_assign(r->rk, assign);
        if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
            error_set(err, errlen, "assign %s: %s", r->topic, rd_kafka_err2str(e));
            rc = -1;
        }
    }
    rd_kafka_topic_partition_list_destroy(assign);
    return rc;
}

partread_status partread_open(const char *brokers, const config_kafka_props *props,
                              const char *topic, const partread_range *range, partread **out,
                              char *err, size_t errlen)
{
    partread_status st = PARTREAD_ERROR;
    partread *r = NULL;
    int64_t *low = NULL; /* the log starts; then scratch for narrow_to_times */

    *out = NULL;
    r = reader_open(brokers, props, topic, range->timeout_ms, err, errlen);
    if (r == NULL)
        goto out;
    st = count_partitions(r, range->partition, err, errlen);
    if (st != PARTREAD_OK)
        goto out;
    st = PARTREAD_ERROR;
    if (alloc_ranges(r, &low, err, errlen) != 0 ||
        read_watermarks(r, range->partition, low, err, errlen) != 0)
        goto out;
    if (range->partition >= 0)
        st = narrow_to_record(r, range, low, err, errlen);
    else
        st = narrow_to_times(r, range, low, err, errlen);
    if (st != PARTREAD_OK)
        goto out;
    st = PARTREAD_ERROR;
    if (assign_ranges(r, err, errlen) != 0)
        goto out;
    *out = r;
    r = NULL;
    st = PARTREAD_OK;
out:
    free(low);
    partread_close(r);
    return st;
}

static void finish_partition(partread *r, int32_t p)
{
    if (p >= 0 && p < r->npart && !r->done[p]) {
        r->done[p] = true;
        r->remaining--;
    }
}

partread_status partread_next(partread *r, rd_kafka_message_t **out, char *err, size_t errlen)
{
    int64_t deadline = timeutil_monotonic_ms() + r->timeout_ms;
    *out = NULL;
    while (r->remaining > 0) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(r->rk, PARTREAD_POLL_MS);
        if (m == NULL) {
            if (timeutil_monotonic_ms() >= deadline) {
                error_set(err, errlen,
                          "no progress reading %s for %d ms (%d partitions not finished)", r->topic,
                          r->timeout_ms, r->remaining);
                return PARTREAD_ERROR;
            }
            continue;
        }
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            finish_partition(r, m->partition);
            rd_kafka_message_destroy(m);
            deadline = timeutil_monotonic_ms() + r->timeout_ms;
            continue;
        }
        if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            char fatal[256];
            kafka_err_class c = kafka_classify(m->err, NULL);
            if (c == KAFKA_ERRCLASS_FATAL ||
                kafka_fatal_error(r->rk, fatal, sizeof(fatal)) != RD_KAFKA_RESP_ERR_NO_ERROR ||
                m->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ||
                m->err == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED) {
                error_set(err, errlen, "reading %s: %s", r->topic, rd_kafka_message_errstr(m));
                rd_kafka_message_destroy(m);
                return PARTREAD_ERROR;
            }
            /* Transient (a broker connection dropped): librdkafka recovers;
             * the deadline bounds the wait. */
            LOG_DEBUG(r->topic, "reading: %s", rd_kafka_message_errstr(m));
            rd_kafka_message_destroy(m);
            continue;
        }
        int32_t p = m->partition;
        if (p < 0 || p >= r->npart || r->done[p] || m->offset >= r->end[p]) {
            finish_partition(r, p);
            rd_kafka_message_destroy(m);
            continue;
        }
        if (m->offset + 1 >= r->end[p])
            finish_partition(r, p);
        *out = m;
        return PARTREAD_OK;
    }
    return PARTREAD_END;
}

int64_t partread_end(const partread *r, int32_t p)
{
    return p >= 0 && p < r->npart ? r->end[p] : -1;
}

void partread_stop(partread *r, int32_t p)
{
    if (p < 0 || p >= r->npart || r->done[p])
        return;
    finish_partition(r, p);
    /* Paused, so the fetcher stops filling the queue with what nobody reads. */
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(list, r->topic, p);
    (void)rd_kafka_pause_partitions(r->rk, list);
    rd_kafka_topic_partition_list_destroy(list);
}

int64_t partread_total(const partread *r)
{
    return r->total;
}

int partread_partitions(const partread *r)
{
    return r->npart;
}

rd_kafka_t *partread_rk(partread *r)
{
    return r->rk;
}

void partread_close(partread *r)
{
    if (r == NULL)
        return;
    /* No group was joined and nothing is stored: closing only stops fetching. */
    kafka_consumer_destroy(r->c);
    free(r->start);
    free(r->end);
    free(r->done);
    free(r->topic);
    free(r);
}
