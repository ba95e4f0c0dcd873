/*
 * heraldctl replay --from TIME [--to TIME] [--user U] [--type T] [--dry-run]
 *                  [--redeliver]
 *
 * Reads the events topic between the offsets of --from and --to on every
 * partition, without a consumer group, and re-publishes the matching events
 * to the same topic, unchanged except for the generation (replay.h) and a
 * herald.replayed header: the run of common/replayrun.c, which the
 * gateway's POST /v1/replays runs too.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "cmdutil.h"
#include "kafka.h"
#include "replayrun.h"
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

/* The command's side of a run: its flags and the progress line. */
typedef struct replay_cli {
    const replay_flags *f;
    cmdutil_progress progress;
} replay_cli;

static bool on_progress(void *opaque, const replayrun_counts *c)
{
    replay_cli *cli = opaque;
    cmdutil_progress_update(&cli->progress, false,
                            "scanned %" PRId64 "/%" PRId64 ", matched %" PRId64
                            ", published %" PRId64,
                            c->scanned, c->total, c->matched, c->published);
    return true;
}

/* A match of --dry-run, listed on stdout. */
static void on_listed(void *opaque, const replay_info *info, int generation)
{
    replay_cli *cli = opaque;
    char when[TIMEUTIL_RFC3339_SIZE];
    cmdutil_progress_done(&cli->progress);
    printf("would replay %s %-24s %-24s %s generation %d\n", info->event_id, info->type,
           info->target, timeutil_format_rfc3339(info->created_at, when, sizeof(when)), generation);
}

static void on_awaiting(void *opaque, int n)
{
    replay_cli *cli = opaque;
    cmdutil_progress_update(&cli->progress, true, "waiting for %d acknowledgements", n);
}

static void on_problem(void *opaque, const char *message)
{
    replay_cli *cli = opaque;
    cmdutil_progress_done(&cli->progress);
    fprintf(stderr, "heraldctl replay: %s\n", message);
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

/* How the run ended, on stderr when it stopped early; returns the exit code. */
static int report_end(const ctl_context *ctx, replayrun_result res, const char *err)
{
    switch (res) {
    case REPLAYRUN_OK:
        return CTL_EXIT_OK;
    case REPLAYRUN_MISSING:
        fprintf(stderr, "heraldctl replay: %s\n", err);
        break;
    case REPLAYRUN_OPEN:
        cmdutil_kafka_error(ctx, "replay", "cannot read the events", err);
        break;
    case REPLAYRUN_READ:
        cmdutil_kafka_error(ctx, "replay", "reading the events failed", err);
        break;
    case REPLAYRUN_STOPPED:
        break; /* the problem was said */
    }
    return CTL_EXIT_FAILURE;
}

/* What the run did, on stdout. */
static void print_summary(const replay_flags *f, const replayrun_counts *run)
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
    char topic[512], err[512];
    replay_cli cli = {.f = &f};
    const replayrun_hooks hooks = {&cli, on_progress, on_listed, on_awaiting, on_problem};
    replayrun_job job = {0};
    replayrun_counts counts;
    kafka_producer *p = NULL;

    int rc = parse_args(argc, argv, &f, &job.filter);
    if (rc >= 0)
        goto out;
    rc = CTL_EXIT_FAILURE;
    config_topic(&ctx->common, TOPICS_EVENTS, topic, sizeof(topic));
    job.brokers = ctx->common.kafka_brokers;
    job.props = &ctx->kafka_props;
    job.topic = topic;
    job.redeliver = f.redeliver;
    job.dry_run = f.dry_run;
    job.stamp = replay_stamp(timeutil_now_ms());
    job.timeout_ms = (int)f.timeout_ms;
    if (!f.dry_run && (p = cmdutil_producer(ctx, "replay", (int)f.timeout_ms)) == NULL)
        goto out;
    cmdutil_progress_init(&cli.progress);
    replayrun_result res = replayrun_run(&job, p, &hooks, &counts, err, sizeof(err));
    cmdutil_progress_done(&cli.progress);
    rc = report_end(ctx, res, err);
    if (res == REPLAYRUN_MISSING || res == REPLAYRUN_OPEN)
        goto out;
    print_summary(&f, &counts);
    if (!replayrun_complete(&job, &counts))
        rc = CTL_EXIT_FAILURE;
    if (f.redeliver && !f.dry_run)
        replayrun_wait_next_stamp(job.stamp);
out:
    kafka_producer_destroy(p);
    config_free(&table, 1, NULL);
    return rc;
}
