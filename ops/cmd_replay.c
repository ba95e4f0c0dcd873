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

static void wait_for_next_second(int stamp)
{
    /* Two --redeliver runs must not share a stamp (replay.h). */
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

int cmd_replay(const ctl_context *ctx, int argc, char **argv)
{
    replay_flags f = {0};
    const config_table table = {replay_vars, &f};
    partread *r = NULL;
    kafka_producer *p = NULL;
    char topic[512], err[512];
    int first = argc, rc = CTL_EXIT_USAGE;
    replay_run run = {0};
    replay_filter filter = {0};
    cmdutil_progress progress;
    int64_t from_ms = -1, to_ms = -1;

    config_status st = ctl_parse_flags("replay", REPLAY_USAGE, replay_vars, &f, argc, argv, &first);
    if (st != CONFIG_OK) {
        rc = st == CONFIG_HELP ? CTL_EXIT_OK : CTL_EXIT_USAGE;
        goto out;
    }
    if (first < argc) {
        fprintf(stderr, "heraldctl replay: unexpected argument \"%s\"\n", argv[first]);
        goto out;
    }
    if (parse_window(&f, &from_ms, &to_ms) != 0)
        goto out;
    filter = (replay_filter){f.user, f.type, from_ms, to_ms};
    int stamp = replay_stamp(timeutil_now_ms());

    rc = CTL_EXIT_FAILURE;
    config_topic(&ctx->common, TOPICS_EVENTS, topic, sizeof(topic));
    partread_range range = PARTREAD_ALL((int)f.timeout_ms);
    range.from_ms = from_ms;
    range.to_ms = to_ms;
    partread_status pst = partread_open(ctx->common.kafka_brokers, &ctx->kafka_props, topic, &range,
                                        &r, err, sizeof(err));
    if (pst == PARTREAD_MISSING) {
        fprintf(stderr, "heraldctl replay: %s\n", err);
        goto out;
    }
    if (pst != PARTREAD_OK) {
        cmdutil_kafka_error(ctx, "replay", "cannot read the events", err);
        goto out;
    }
    if (!f.dry_run) {
        p = cmdutil_producer(ctx, "replay", (int)f.timeout_ms);
        if (p == NULL)
            goto out;
        kafka_producer_set_delivery_cb(p, replay_report);
    }
    cmdutil_progress_init(&progress);
    int64_t total = partread_total(r);
    for (;;) {
        rd_kafka_message_t *m = NULL;
        pst = partread_next(r, &m, err, sizeof(err));
        if (pst == PARTREAD_END)
            break;
        if (pst != PARTREAD_OK) {
            cmdutil_progress_done(&progress);
            cmdutil_kafka_error(ctx, "replay", "reading the events failed", err);
            goto summary;
        }
        run.scanned++;
        replay_info info;
        replay_decision d =
            replay_check(m->payload, m->len, rd_kafka_message_timestamp(m, NULL), &filter, &info);
        if (d == REPLAY_INVALID)
            run.invalid++;
        if (d == REPLAY_MATCH) {
            char *value = NULL;
            size_t vlen = 0;
            int gen = 0;
            run.matched++;
            if (replay_rewrite(m->payload, m->len, f.redeliver, stamp, &value, &vlen, &gen) != 0) {
                run.invalid++;
            } else if (f.dry_run) {
                char when[TIMEUTIL_RFC3339_SIZE];
                cmdutil_progress_done(&progress);
                printf("would replay %s %-24s %-24s %s generation %d\n", info.event_id, info.type,
                       info.target, timeutil_format_rfc3339(info.created_at, when, sizeof(when)),
                       gen);
            } else if (replay_publish(p, topic, m, value, vlen, &run) != 0) {
                free(value);
                rd_kafka_message_destroy(m);
                cmdutil_progress_done(&progress);
                goto summary;
            }
            free(value);
        }
        rd_kafka_message_destroy(m);
        cmdutil_progress_update(&progress, false,
                                "scanned %" PRId64 "/%" PRId64 ", matched %" PRId64
                                ", published %" PRId64,
                                run.scanned, total, run.matched, run.published);
    }
    if (p != NULL) {
        cmdutil_progress_update(&progress, true, "waiting for %d acknowledgements",
                                kafka_producer_outq_len(p));
        int left = kafka_producer_flush(p, (int)f.timeout_ms + 5000);
        if (left > 0)
            fprintf(stderr, "heraldctl replay: %d event(s) not acknowledged in time\n", left);
    }
    cmdutil_progress_done(&progress);
    rc = CTL_EXIT_OK;
summary:
    if (p != NULL)
        kafka_producer_flush(p, 1000);
    print_summary(&f, &run);
    if (run.failed > 0 || run.published + (f.dry_run ? run.matched : 0) < run.matched)
        rc = CTL_EXIT_FAILURE;
    if (f.redeliver && !f.dry_run)
        wait_for_next_second(stamp);
out:
    kafka_producer_destroy(p);
    partread_close(r);
    config_free(&table, 1, NULL);
    return rc;
}
