/*
 * replayrun: the loop over the window, the re-publishing and the wait for
 * acknowledgements.
 */
#include "replayrun.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "error.h"
#include "headers.h"
#include "partread.h"
#include "timeutil.h"

/* One run under way: what the delivery reports and the hooks need. */
typedef struct replayrun_state {
    const replayrun_job *job;
    const replayrun_hooks *hooks;
    replayrun_counts *c;
    partread *r;
    kafka_producer *p;
} replayrun_state;

static void problem(const replayrun_state *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void problem(const replayrun_state *s, const char *fmt, ...)
{
    char msg[600];
    va_list ap;
    if (s->hooks == NULL || s->hooks->problem == NULL)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    s->hooks->problem(s->hooks->opaque, msg);
}

/* Delivery reports: counts each re-published event as published or failed. */
static void replay_report(void *opaque, const kafka_delivery_report *dr)
{
    replayrun_state *s = opaque;
    if (dr->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        s->c->published++;
    } else {
        s->c->failed++;
        problem(s, "an event was not re-published: %s", rd_kafka_err2str(dr->err));
    }
}

/* The replay headers of an earlier replay, which this one sets afresh. */
static bool drop_replayed(const char *name, void *arg)
{
    (void)arg;
    return strcmp(name, HDR_REPLAYED) == 0 || strcmp(name, HDR_REPLAYED_AT) == 0;
}

/* The record's headers plus herald.replayed=1 and herald.replayed_at. */
static rd_kafka_headers_t *replay_headers(rd_kafka_message_t *m, int64_t now_ms)
{
    char at[TIMEUTIL_RFC3339_SIZE];
    rd_kafka_headers_t *h = hdr_copy_filtered(kafka_message_headers(m), 2, drop_replayed, NULL);
    if (kafka_header_add_str(h, HDR_REPLAYED, "1") != 0 ||
        kafka_header_add_str(h, HDR_REPLAYED_AT, timeutil_format_rfc3339(now_ms, at, sizeof(at))) !=
            0) {
        rd_kafka_headers_destroy(h);
        return NULL;
    }
    return h;
}

/* Produces one replayed event; 0, or -1 when the producer cannot go on. */
static int replay_publish(replayrun_state *s, rd_kafka_message_t *m, const char *value, size_t vlen)
{
    char err[512];
    rd_kafka_headers_t *hdrs = replay_headers(m, timeutil_now_ms());
    if (hdrs == NULL) {
        problem(s, "out of memory");
        return -1;
    }
    for (int tries = 0;; tries++) {
        kafka_status st = kafka_produce(s->p, s->job->topic, m->key, m->key_len, value, vlen, hdrs,
                                        s, err, sizeof(err));
        if (st == KAFKA_OK)
            break;
        if (st == KAFKA_QUEUE_FULL && tries < 600) {
            kafka_producer_poll(s->p, 100); /* back-pressure: let the queue drain */
            continue;
        }
        rd_kafka_headers_destroy(hdrs);
        problem(s, "cannot re-publish: %s", err);
        s->c->failed++;
        return st == KAFKA_ERR_FATAL || st == KAFKA_QUEUE_FULL ? -1 : 0;
    }
    kafka_producer_poll(s->p, 0);
    return 0;
}

/* Counts one record; a match is listed (dry run) or re-published.  -1 when the producer cannot go
 * on. */
static int replay_record(replayrun_state *s, rd_kafka_message_t *m)
{
    replay_info info;
    char *value = NULL;
    size_t vlen = 0;
    int gen = 0, rc = 0;
    const replayrun_job *job = s->job;
    s->c->scanned++;
    replay_decision d =
        replay_check(m->payload, m->len, rd_kafka_message_timestamp(m, NULL), &job->filter, &info);
    if (d == REPLAY_INVALID)
        s->c->invalid++;
    if (d != REPLAY_MATCH)
        return 0;
    s->c->matched++;
    if (replay_rewrite(m->payload, m->len, job->redeliver, job->stamp, &value, &vlen, &gen) != 0) {
        s->c->invalid++;
    } else if (job->dry_run) {
        if (s->hooks != NULL && s->hooks->listed != NULL)
            s->hooks->listed(s->hooks->opaque, &info, gen);
    } else {
        rc = replay_publish(s, m, value, vlen);
    }
    free(value);
    return rc;
}

/* Waits, bounded, for the broker to acknowledge what was published. */
static void await_acks(replayrun_state *s)
{
    if (s->p == NULL)
        return;
    if (s->hooks != NULL && s->hooks->awaiting != NULL)
        s->hooks->awaiting(s->hooks->opaque, kafka_producer_outq_len(s->p));
    int left = kafka_producer_flush(s->p, s->job->timeout_ms + 5000);
    if (left > 0)
        problem(s, "%d event(s) not acknowledged in time", left);
}

/* Opens the events topic over the window, without a group. */
static replayrun_result open_events(replayrun_state *s, char *err, size_t errlen)
{
    const replayrun_job *job = s->job;
    partread_range range = PARTREAD_ALL(job->timeout_ms);
    range.from_ms = job->filter.from_ms;
    range.to_ms = job->filter.to_ms;
    partread_status pst =
        partread_open(job->brokers, job->props, job->topic, &range, &s->r, err, errlen);
    if (pst == PARTREAD_MISSING)
        return REPLAYRUN_MISSING;
    return pst == PARTREAD_OK ? REPLAYRUN_OK : REPLAYRUN_OPEN;
}

replayrun_result replayrun_run(const replayrun_job *job, kafka_producer *p,
                               const replayrun_hooks *hooks, replayrun_counts *c, char *err,
                               size_t errlen)
{
    replayrun_state s = {.job = job, .hooks = hooks, .c = c, .p = job->dry_run ? NULL : p};
    *c = (replayrun_counts){0};
    if (s.p != NULL)
        kafka_producer_set_delivery_cb(s.p, replay_report);
    replayrun_result rc = open_events(&s, err, errlen);
    if (rc != REPLAYRUN_OK)
        goto out;
    c->total = partread_total(s.r);
    for (;;) {
        rd_kafka_message_t *m = NULL;
        partread_status pst = partread_next(s.r, &m, err, errlen);
        if (pst == PARTREAD_END)
            break;
        if (pst != PARTREAD_OK) {
            rc = REPLAYRUN_READ;
            goto out;
        }
        int stop = replay_record(&s, m);
        rd_kafka_message_destroy(m);
        if (stop != 0) {
            rc = REPLAYRUN_STOPPED;
            error_set(err, errlen, "the producer cannot go on");
            goto out;
        }
        if (hooks != NULL && hooks->progress != NULL && !hooks->progress(hooks->opaque, c)) {
            rc = REPLAYRUN_STOPPED;
            error_set(err, errlen, "stopped");
            goto out;
        }
    }
    await_acks(&s);
out:
    if (s.p != NULL)
        kafka_producer_flush(s.p, 1000); /* reports still due count */
    partread_close(s.r);
    return rc;
}

bool replayrun_complete(const replayrun_job *job, const replayrun_counts *c)
{
    return c->failed == 0 && c->published + (job->dry_run ? c->matched : 0) >= c->matched;
}

void replayrun_wait_next_stamp(int stamp)
{
    for (int i = 0; i < 20 && replay_stamp(timeutil_now_ms()) == stamp; i++) {
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}
