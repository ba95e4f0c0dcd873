/*
 * heraldctl replay --from TIME [--to TIME] [--user U] [--type T] [--dry-run]
 *                  [--redeliver]
 *
 * Reads the events topic between the offsets of --from and --to on every
 * partition, without a consumer group, and re-publishes the matching events
 * to the same topic, unchanged except for the generation (replay.h) and a
 * herald.replayed header.  The window's end is fixed when the command
 * starts, so it never reads what it publishes.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cmd.h"
#include "cmdutil.h"
#include "headers.h"
#include "kafka.h"
#include "partread.h"
#include "replay.h"
#include "timeutil.h"
#include "topics.h"

#define REPLAY_USAGE                                                                               \
    "usage: heraldctl replay --from TIME [--to TIME] [--user U] [--type T] [--dry-run] "           \
    "[--redeliver]"

typedef struct replay_flags {
    char *from;
    char *to;
    char *user;
    char *type;
    bool dry_run;
    bool redeliver;
    long timeout_ms;
} replay_flags;

#define F(field) offsetof(replay_flags, field)

static const config_var replay_vars[] = {
    {.flag = "from",
     .type = CONFIG_STRING,
     .offset = F(from),
     .help = "start of the window (RFC 3339, or -15m, -2h, -7d); required"},
    {.flag = "to",
     .type = CONFIG_STRING,
     .offset = F(to),
     .help = "end of the window, exclusive (default: now)"},
    {.flag = "user", .type = CONFIG_STRING, .offset = F(user), .help = "only this user's events"},
    {.flag = "type", .type = CONFIG_STRING, .offset = F(type), .help = "only events of this type"},
    {.flag = "dry-run",
     .type = CONFIG_BOOL,
     .def = "false",
     .offset = F(dry_run),
     .help = "list the events that would be replayed; publish nothing"},
    {.flag = "redeliver",
     .type = CONFIG_BOOL,
     .def = "false",
     .offset = F(redeliver),
     .help = "send again what was already sent (new generation, new idempotency keys)"},
    {.flag = "timeout",
     .type = CONFIG_DURATION,
     .def = "10s",
     .offset = F(timeout_ms),
     .min = 100,
     .max = 600000,
     .help = "longest wait for the broker"},
    {0},
};

typedef struct replay_run {
    int64_t scanned, matched, published, failed, invalid;
} replay_run;

/* One run of the command: its window, where it reads and publishes, what it did. */
typedef struct replay_job {
    const replay_flags *f;
    replay_filter filter;
    int stamp; /* the generation stamp of --redeliver (replay.h) */
    char topic[512];
    partread *r;
    kafka_producer *p; /* NULL on --dry-run */
    cmdutil_progress progress;
    replay_run run;
} replay_job;

/* Delivery reports: counts each re-published event as published or failed. */
static void replay_report(void *opaque, const kafka_delivery_report *dr)
{
    replay_run *run = opaque;
    if (dr->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        run->published++;
    } else {
        run->failed++;
        fprintf(stderr, "heraldctl replay: an event was not re-published: %s\n",
                rd_kafka_err2str(dr->err));
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
static int replay_publish(kafka_producer *p, const char *topic, rd_kafka_message_t *m,
                          const char *value, size_t vlen, replay_run *run)
{
    char err[512];
    rd_kafka_headers_t *hdrs = replay_headers(m, timeutil_now_ms());
    if (hdrs == NULL) {
        fprintf(stderr, "heraldctl replay: out of memory\n");
        return -1;
    }
    for (int tries = 0;; tries++) {
        kafka_status st =
            kafka_produce(p, topic, m->key, m->key_len, value, vlen, hdrs, run, err, sizeof(err));
        if (st == KAFKA_OK)
            break;
        if (st == KAFKA_QUEUE_FULL && tries < 600) {
            kafka_producer_poll(p, 100); /* back-pressure: let the queue drain */
            continue;
        }
        rd_kafka_headers_destroy(hdrs);
        fprintf(stderr, "heraldctl replay: cannot re-publish: %s\n", err);
        run->failed++;
        return st == KAFKA_ERR_FATAL || st == KAFKA_QUEUE_FULL ? -1 : 0;
    }
    kafka_producer_poll(p, 0);
    return 0;
}

/* Two --redeliver runs must not share a stamp (replay.h): waits for the second to turn. */
static void wait_for_next_second(int stamp)
{
    for (int i = 0; i < 20 && replay_stamp(timeutil_now_ms()) == stamp; i++) {
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

/* --from (required) and --to (optional, later): 0, or -1 with the reason printed. */
static int parse_window(const replay_flags *f, int64_t *from_ms, int64_t *to_ms)
{
    if (f->from == NULL) {
        fprintf(stderr, "heraldctl replay: --from is required (%s)\n", REPLAY_USAGE);
        return -1;
    }
    if (cmdutil_time_flag("replay", "from", f->from, from_ms) != 0 ||
        cmdutil_time_flag("replay", "to", f->to, to_ms) != 0)
        return -1;
    if (*to_ms >= 0 && *to_ms <= *from_ms) {
        fprintf(stderr, "heraldctl replay: --to must be later than --from\n");
        return -1;
    }
    return 0;
}

/* Flags into f and the events they select into filter.  Returns -1 to go on, else the exit code. */
static int parse_args(int argc, char **argv, replay_flags *f, replay_filter *filter)
{
    int64_t from_ms = -1, to_ms = -1;
    int rc = ctl_parse_only_flags("replay", REPLAY_USAGE, replay_vars, f, argc, argv);
    if (rc >= 0)
        return rc;
    if (parse_window(f, &from_ms, &to_ms) != 0)
        return CTL_EXIT_USAGE;
    *filter = (replay_filter){f->user, f->type, from_ms, to_ms};
    return -1;
}

/* Opens the events topic over the window, without a group; -1 with the error printed. */
static int open_events(const ctl_context *ctx, replay_job *j)
{
    char err[512];
    config_topic(&ctx->common, TOPICS_EVENTS, j->topic, sizeof(j->topic));
    partread_range range = PARTREAD_ALL((int)j->f->timeout_ms);
    range.from_ms = j->filter.from_ms;
    range.to_ms = j->filter.to_ms;
    partread_status pst = partread_open(ctx->common.kafka_brokers, &ctx->kafka_props, j->topic,
                                        &range, &j->r, err, sizeof(err));
    if (pst == PARTREAD_MISSING) {
        fprintf(stderr, "heraldctl replay: %s\n", err);
        return -1;
    }
    if (pst != PARTREAD_OK) {
        cmdutil_kafka_error(ctx, "replay", "cannot read the events", err);
        return -1;
    }
    return 0;
}

/* The producer that re-publishes, none on --dry-run; -1 with the error printed. */
static int open_producer(const ctl_context *ctx, replay_job *j)
{
    if (j->f->dry_run)
        return 0;
    j->p = cmdutil_producer(ctx, "replay", (int)j->f->timeout_ms);
    if (j->p == NULL)
        return -1;
    kafka_producer_set_delivery_cb(j->p, replay_report);
    return 0;
}

/* Counts one record; a match is listed (--dry-run) or re-published.  -1 when the producer cannot go
 * on. */
static int replay_record(replay_job *j, rd_kafka_message_t *m)
{
    replay_info info;
    char *value = NULL;
    size_t vlen = 0;
    int gen = 0, rc = 0;
    j->run.scanned++;
    replay_decision d =
        replay_check(m->payload, m->len, rd_kafka_message_timestamp(m, NULL), &j->filter, &info);
    if (d == REPLAY_INVALID)
        j->run.invalid++;
    if (d != REPLAY_MATCH)
        return 0;
    j->run.matched++;
    if (replay_rewrite(m->payload, m->len, j->f->redeliver, j->stamp, &value, &vlen, &gen) != 0) {
        j->run.invalid++;
    } else if (j->f->dry_run) {
        char when[TIMEUTIL_RFC3339_SIZE];
        cmdutil_progress_done(&j->progress);
        printf("would replay %s %-24s %-24s %s generation %d\n", info.event_id, info.type,
               info.target, timeutil_format_rfc3339(info.created_at, when, sizeof(when)), gen);
    } else {
        rc = replay_publish(j->p, j->topic, m, value, vlen, &j->run);
    }
    free(value);
    return rc;
}

/* Waits, bounded, for the broker to acknowledge what was published; clears the progress line. */
static void await_acks(replay_job *j)
{
    if (j->p != NULL) {
        cmdutil_progress_update(&j->progress, true, "waiting for %d acknowledgements",
                                kafka_producer_outq_len(j->p));
        int left = kafka_producer_flush(j->p, (int)j->f->timeout_ms + 5000);
        if (left > 0)
            fprintf(stderr, "heraldctl replay: %d event(s) not acknowledged in time\n", left);
    }
    cmdutil_progress_done(&j->progress);
}

/* Replays every record of the window; 0, or -1 with the error printed when it stopped early. */
static int replay_window(const ctl_context *ctx, replay_job *j)
{
    char err[512];
    cmdutil_progress_init(&j->progress);
    int64_t total = partread_total(j->r);
    for (;;) {
        rd_kafka_message_t *m = NULL;
        partread_status pst = partread_next(j->r, &m, err, sizeof(err));
        if (pst == PARTREAD_END)
            break;
        if (pst != PARTREAD_OK) {
            cmdutil_progress_done(&j->progress);
            cmdutil_kafka_error(ctx, "replay", "reading the events failed", err);
            return -1;
        }
        int rc = replay_record(j, m);
        rd_kafka_message_destroy(m);
        if (rc != 0) {
            cmdutil_progress_done(&j->progress);
            return -1;
        }
        cmdutil_progress_update(&j->progress, false,
                                "scanned %" PRId64 "/%" PRId64 ", matched %" PRId64
                                ", published %" PRId64,
                                j->run.scanned, total, j->run.matched, j->run.published);
    }
    await_acks(j);
    return 0;
}

/* What the run did, on stdout. */
static void print_summary(const replay_flags *f, const replay_run *run)
{
    if (f->dry_run)
        printf("scanned %" PRId64 ", matched %" PRId64 " (dry run: nothing published)\n",
               run->scanned, run->matched);
    else
        printf("scanned %" PRId64 ", matched %" PRId64 ", published %" PRId64 "%s\n", run->scanned,
               run->matched, run->published,
               f->redeliver ? " with a new generation (sent again)"
                            : " with their generation (already sent ones are not sent again)");
    if (run->invalid > 0)
        printf("%" PRId64 " record(s) in the window are not valid events (see `heraldctl dlq "
               "list --stage dispatcher`)\n",
               run->invalid);
}

/* Whether every matching event was published (on --dry-run: listed) and none failed. */
static bool all_replayed(const replay_flags *f, const replay_run *run)
{
    return run->failed == 0 && run->published + (f->dry_run ? run->matched : 0) >= run->matched;
}

int cmd_replay(const ctl_context *ctx, int argc, char **argv)
{
    replay_flags f = {0};
    const config_table table = {replay_vars, &f};
    replay_job j = {.f = &f};

    int rc = parse_args(argc, argv, &f, &j.filter);
    if (rc >= 0)
        goto out;
    j.stamp = replay_stamp(timeutil_now_ms());
    rc = CTL_EXIT_FAILURE;
    if (open_events(ctx, &j) != 0 || open_producer(ctx, &j) != 0)
        goto out;
    rc = replay_window(ctx, &j) == 0 ? CTL_EXIT_OK : CTL_EXIT_FAILURE;
    if (j.p != NULL)
        kafka_producer_flush(j.p, 1000); /* reports still due count in the summary */
    print_summary(&f, &j.run);
    if (!all_replayed(&f, &j.run))
        rc = CTL_EXIT_FAILURE;
    if (f.redeliver && !f.dry_run)
        wait_for_next_second(j.stamp);
out:
    kafka_producer_destroy(j.p);
    partread_close(j.r);
    config_free(&table, 1, NULL);
    return rc;
}
