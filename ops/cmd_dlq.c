/*
 * heraldctl dlq list|show|stats|requeue
 *
 * Reads the dead-letter topic without a consumer group (partread.h), so
 * looking at it never moves anyone's offsets.  requeue sends records back
 * to the topic they failed on, each at most once (ledger.h).
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd.h"
#include "cmdutil.h"
#include "dlqrec.h"
#include "dlqrequeue.h"
#include "dlqscan.h"
#include "partread.h"
#include "table.h"
#include "timeutil.h"
#include "topics.h"

#define DLQ_USAGE                                                                                  \
    "usage: heraldctl dlq list [--stage S] [--reason R] [--channel C] [--since TIME] [--limit N] " \
    "[--json]\n"                                                                                   \
    "       heraldctl dlq show PARTITION:OFFSET [--json]\n"                                        \
    "       heraldctl dlq stats [--since TIME] [--json]\n"                                         \
    "       heraldctl dlq requeue [--stage S] [--reason R] [--channel C] [--since TIME] "          \
    "[PARTITION:OFFSET ...] [--all] [--dry-run]"

typedef struct dlq_flags {
    char *stage;
    char *reason;
    char *channel;
    char *since;
    long limit;
    bool json;
    bool dry_run;
    bool all;
    long timeout_ms;
} dlq_flags;

#define FLAG_STAGE                                                                                 \
    {                                                                                              \
        .flag = "stage", .type = CONFIG_STRING, .offset = offsetof(dlq_flags, stage),              \
        .help = "only records dead-lettered by this stage (dispatcher, worker.email, ...)"         \
    }
#define FLAG_REASON                                                                                \
    {                                                                                              \
        .flag = "reason", .type = CONFIG_STRING, .offset = offsetof(dlq_flags, reason),            \
        .help = "only records with this reason (max_attempts, permanent_failure, ...)"             \
    }
#define FLAG_CHANNEL                                                                               \
    {                                                                                              \
        .flag = "channel", .type = CONFIG_STRING, .offset = offsetof(dlq_flags, channel),          \
        .help = "only records of this channel (email, sms, push, inapp)"                           \
    }
#define FLAG_SINCE                                                                                 \
    {                                                                                              \
        .flag = "since", .type = CONFIG_STRING, .offset = offsetof(dlq_flags, since),              \
        .help = "only records dead-lettered at or after TIME (RFC 3339, or -15m, -2h, -7d)"        \
    }
#define FLAG_JSON                                                                                  \
    {                                                                                              \
        .flag = "json", .type = CONFIG_BOOL, .def = "false", .offset = offsetof(dlq_flags, json),  \
        .help = "print JSON instead of a table"                                                    \
    }
#define FLAG_TIMEOUT                                                                               \
    {                                                                                              \
        .flag = "timeout", .type = CONFIG_DURATION, .def = "10s",                                  \
        .offset = offsetof(dlq_flags, timeout_ms), .min = 100, .max = 600000,                      \
        .help = "longest wait for the broker"                                                      \
    }

static const config_var list_vars[] = {
    FLAG_STAGE,
    FLAG_REASON,
    FLAG_CHANNEL,
    FLAG_SINCE,
    {.flag = "limit",
     .type = CONFIG_INT,
     .def = "100",
     .offset = offsetof(dlq_flags, limit),
     .min = 0,
     .max = 100000000,
     .help = "show at most N records (0: all)"},
    FLAG_JSON,
    FLAG_TIMEOUT,
    {0},
};
static const config_var show_vars[] = {FLAG_JSON, FLAG_TIMEOUT, {0}};
static const config_var stats_vars[] = {FLAG_SINCE, FLAG_JSON, FLAG_TIMEOUT, {0}};
static const config_var requeue_vars[] = {
    FLAG_STAGE,
    FLAG_REASON,
    FLAG_CHANNEL,
    FLAG_SINCE,
    {.flag = "dry-run",
     .type = CONFIG_BOOL,
     .def = "false",
     .offset = offsetof(dlq_flags, dry_run),
     .help = "list what would be requeued; change nothing"},
    {.flag = "all",
     .type = CONFIG_BOOL,
     .def = "false",
     .offset = offsetof(dlq_flags, all),
     .help = "with no filter and no PARTITION:OFFSET: requeue every record, without asking"},
    FLAG_TIMEOUT,
    {0},
};

/* ------------------------------------------------------------ the scan */

static dlqscan_source dlq_source(const ctl_context *ctx, const char *topic, long timeout_ms)
{
    return (dlqscan_source){ctx->common.kafka_brokers, &ctx->kafka_props, topic, (int)timeout_ms};
}

/*
 * Reads the DLQ (range) and calls visit for each record that matches f.
 * Returns a CTL_EXIT_* code; the failure line is printed here.
 */
static int dlq_scan(const ctl_context *ctx, const char *cmd, const char *topic,
                    const partread_range *range, const dlqrec_filter *f, dlqscan_visit_fn visit,
                    void *opaque)
{
    char err[512];
    dlqscan_source src = dlq_source(ctx, topic, range->timeout_ms);
    dlqscan_status st = dlqscan_run(&src, range, f, visit, opaque, err, sizeof(err));
    if (st == DLQSCAN_UNREACHABLE)
        cmdutil_kafka_error(ctx, cmd, "cannot read the DLQ", err);
    else if (st == DLQSCAN_READ_FAILED)
        cmdutil_kafka_error(ctx, cmd, "reading the DLQ failed", err);
    else if (st != DLQSCAN_OK && err[0] != '\0')
        fprintf(stderr, "heraldctl %s: %s\n", cmd, err);
    return st == DLQSCAN_OK ? CTL_EXIT_OK : CTL_EXIT_FAILURE;
}

/* True for what looks like PARTITION:OFFSET (digits, a colon, digits). */
static bool looks_like_position(const char *s)
{
    size_t d1 = strspn(s, "0123456789");
    return d1 > 0 && s[d1] == ':' && s[d1 + 1] != '\0' &&
           s[d1 + 1 + strspn(s + d1 + 1, "0123456789")] == '\0';
}

/*
 * Parses a subcommand's flags.  PARTITION:OFFSET arguments may stand
 * anywhere among the flags ("requeue 0:5 --dry-run"): they are taken out
 * into positions first.  Returns -1 to go on, else the exit code.
 */
static int parse(const char *name, const config_var *vars, dlq_flags *flags, int argc, char **argv,
                 char **positions, int *npos)
{
    char **rest = calloc((size_t)argc + 1, sizeof(*rest));
    int nrest = 0, first = 0, rc = CTL_EXIT_USAGE;
    *npos = 0;
    if (rest == NULL) {
        fprintf(stderr, "heraldctl %s: out of memory\n", name);
        return CTL_EXIT_FAILURE;
    }
    for (int i = 0; i < argc; i++) {
        if (i > 0 && positions != NULL && looks_like_position(argv[i]))
            positions[(*npos)++] = argv[i];
        else
            rest[nrest++] = argv[i];
    }
    config_status st = ctl_parse_flags(name, DLQ_USAGE, vars, flags, nrest, rest, &first);
    if (st != CONFIG_OK) {
        rc = st == CONFIG_HELP ? CTL_EXIT_OK : CTL_EXIT_USAGE;
        goto out;
    }
    if (first < nrest) {
        fprintf(stderr, "heraldctl %s: unexpected argument \"%s\"%s\n", name, rest[first],
                positions != NULL ? " (expected PARTITION:OFFSET)" : "");
        goto out;
    }
    rc = -1;
out:
    free(rest);
    return rc;
}

static void print_json(json_t *j)
{
    char *s = json_dumps(j, JSON_INDENT(2));
    if (s != NULL)
        printf("%s\n", s);
    free(s);
}

static char *fmt_time(int64_t ms, char *buf, size_t len)
{
    if (ms < 0)
        snprintf(buf, len, "-");
    else
        timeutil_format_rfc3339(ms, buf, len);
    return buf;
}

/* ------------------------------------------------------------------ list */

typedef struct list_state {
    long limit;
    long shown;
    bool more;
    json_t *array;
    table *t;
} list_state;

static int list_visit(dlqrec *rec, void *opaque)
{
    list_state *s = opaque;
    if (s->limit > 0 && s->shown >= s->limit) {
        s->more = true;
        return 1;
    }
    s->shown++;
    if (s->array != NULL) {
        json_t *j = dlqrec_to_json(rec);
        if (j == NULL || json_array_append_new(s->array, j) != 0) {
            fprintf(stderr, "heraldctl dlq list: out of memory\n");
            return -1;
        }
        return 0;
    }
    char when[TIMEUTIL_RFC3339_SIZE], at[48], attempts[16];
    snprintf(at, sizeof(at), "%d:%" PRId64, (int)rec->partition, rec->offset);
    snprintf(attempts, sizeof(attempts), "%s", "-");
    if (rec->attempts >= 0)
        snprintf(attempts, sizeof(attempts), "%d", rec->attempts);
    const char *cells[] = {fmt_time(rec->timestamp_ms, when, sizeof(when)),
                           at,
                           rec->stage,
                           rec->reason,
                           rec->user,
                           rec->event_id,
                           attempts,
                           rec->error};
    if (table_add(s->t, cells) != 0) {
        fprintf(stderr, "heraldctl dlq list: out of memory\n");
        return -1;
    }
    return 0;
}

static int dlq_list(const ctl_context *ctx, const char *topic, const dlq_flags *f, int64_t since_ms)
{
    static const char *const headers[] = {"TIME", "AT",    "STAGE",    "REASON",
                                          "USER", "EVENT", "ATTEMPTS", "ERROR"};
    static const size_t caps[] = {24, 0, 16, 20, 24, 36, 0, 60};
    list_state s = {.limit = f->limit};
    int rc = CTL_EXIT_FAILURE;
    partread_range range = PARTREAD_ALL((int)f->timeout_ms);
    range.from_ms = since_ms;
    dlqrec_filter filter = {f->stage, f->reason, f->channel, since_ms, 0};

    if (f->json)
        s.array = json_array();
    else if ((s.t = table_new(8, headers)) != NULL)
        for (size_t c = 0; c < 8; c++)
            table_set_max(s.t, c, caps[c]);
    if (s.array == NULL && s.t == NULL) {
        fprintf(stderr, "heraldctl dlq list: out of memory\n");
        goto out;
    }
    rc = dlq_scan(ctx, "dlq list", topic, &range, &filter, list_visit, &s);
    if (rc != CTL_EXIT_OK)
        goto out;
    if (s.array != NULL) {
        print_json(s.array);
    } else {
        table_print(s.t, stdout);
        printf("%ld record%s%s\n", s.shown, s.shown == 1 ? "" : "s",
               s.more ? " (more match: raise --limit)" : "");
    }
out:
    json_decref(s.array);
    table_free(s.t);
    return rc;
}

/* ------------------------------------------------------------------ show */

typedef struct show_state {
    bool json;
    bool found;
} show_state;

static int show_visit(dlqrec *rec, void *opaque)
{
    show_state *s = opaque;
    s->found = true;
    if (s->json) {
        json_t *j = dlqrec_to_json(rec);
        if (j == NULL)
            return -1;
        print_json(j);
        json_decref(j);
        return 1;
    }
    char when[TIMEUTIL_RFC3339_SIZE], cell[4096];
    printf("record     %d:%" PRId64 "\n", (int)rec->partition, rec->offset);
    printf("time       %s\n", fmt_time(rec->timestamp_ms, when, sizeof(when)));
    table_cell(rec->key != NULL ? rec->key : "(none)", 0, cell, sizeof(cell));
    printf("key        %s\n", cell);
    printf("\nheaders:\n");
    size_t w = 0;
    for (size_t i = 0; i < rec->nheaders; i++)
        if (strlen(rec->headers[i].name) > w)
            w = strlen(rec->headers[i].name);
    for (size_t i = 0; i < rec->nheaders; i++) {
        table_cell(rec->headers[i].value, 0, cell, sizeof(cell));
        printf("  %-*s  %s\n", (int)w, rec->headers[i].name, cell);
    }
    printf("\npayload:\n");
    json_t *payload =
        rec->value != NULL ? json_loadb(rec->value, rec->vlen, JSON_DECODE_ANY, NULL) : NULL;
    if (payload != NULL) {
        print_json(payload);
        json_decref(payload);
    } else if (rec->value == NULL) {
        printf("(none)\n");
    } else {
        /* Not JSON (an invalid_json dead letter): shown sanitised, not cut. */
        char *text = malloc(rec->vlen * 4 + 8);
        if (text == NULL)
            return -1;
        table_cell(rec->value, 0, text, rec->vlen * 4 + 8);
        printf("%s\n", text);
        free(text);
    }
    return 1;
}

static int dlq_show(const ctl_context *ctx, const char *topic, const dlq_flags *f,
                    const char *position)
{
    char err[256];
    partread_range range = PARTREAD_ALL((int)f->timeout_ms);
    show_state s = {.json = f->json};
    if (dlqrec_parse_position(position, &range.partition, &range.offset, err, sizeof(err)) != 0) {
        fprintf(stderr, "heraldctl dlq show: %s\n", err);
        return CTL_EXIT_USAGE;
    }
    int rc = dlq_scan(ctx, "dlq show", topic, &range, NULL, show_visit, &s);
    if (rc == CTL_EXIT_OK && !s.found) {
        fprintf(stderr, "heraldctl dlq show: record %s is not readable (a transaction marker?)\n",
                position);
        rc = CTL_EXIT_FAILURE;
    }
    return rc;
}

/* ----------------------------------------------------------------- stats */

static int stats_visit(dlqrec *rec, void *opaque)
{
    if (dlqrec_stats_add(opaque, rec) != 0) {
        fprintf(stderr, "heraldctl dlq stats: out of memory\n");
        return -1;
    }
    return 0;
}

static int dlq_stats(const ctl_context *ctx, const char *topic, const dlq_flags *f,
                     int64_t since_ms)
{
    static const char *const headers[] = {"STAGE", "REASON", "COUNT", "OLDEST", "NEWEST"};
    partread_range range = PARTREAD_ALL((int)f->timeout_ms);
    range.from_ms = since_ms;
    dlqrec_filter filter = {NULL, NULL, NULL, since_ms, 0};
    dlqrec_stats *st = dlqrec_stats_new();
    table *t = NULL;
    json_t *j = NULL;
    int rc = CTL_EXIT_FAILURE;
    if (st == NULL)
        goto out;
    rc = dlq_scan(ctx, "dlq stats", topic, &range, &filter, stats_visit, st);
    if (rc != CTL_EXIT_OK)
        goto out;
    const dlqrec_stats_row *rows = NULL;
    size_t n = dlqrec_stats_rows(st, &rows);
    char oldest[TIMEUTIL_RFC3339_SIZE], newest[TIMEUTIL_RFC3339_SIZE], count[32];
    if (f->json) {
        if ((j = dlqrec_stats_to_json(st, "groups")) == NULL)
            goto oom;
        print_json(j);
        goto out;
    }
    if ((t = table_new(5, headers)) == NULL)
        goto oom;
    for (size_t i = 0; i < n; i++) {
        snprintf(count, sizeof(count), "%" PRId64, rows[i].count);
        const char *cells[] = {rows[i].stage[0] ? rows[i].stage : "(none)",
                               rows[i].reason[0] ? rows[i].reason : "(none)", count,
                               fmt_time(rows[i].oldest_ms, oldest, sizeof(oldest)),
                               fmt_time(rows[i].newest_ms, newest, sizeof(newest))};
        if (table_add(t, cells) != 0)
            goto oom;
    }
    table_print(t, stdout);
    printf("%" PRId64 " record%s in %s\n", dlqrec_stats_total(st),
           dlqrec_stats_total(st) == 1 ? "" : "s", topic);
    goto out;
oom:
    fprintf(stderr, "heraldctl dlq stats: out of memory\n");
    rc = CTL_EXIT_FAILURE;
out:
    json_decref(j);
    table_free(t);
    dlqrec_stats_free(st);
    return rc;
}

/* --------------------------------------------------------------- requeue */

/* One line per record the requeue decided about (nothing for already-requeued ones). */
static void requeue_print(const dlqrequeue_result *res, void *opaque)
{
    (void)opaque;
    int p = (int)res->partition;
    switch (res->outcome) {
    case DLQREQUEUE_REQUEUED:
        printf("requeued %d:%" PRId64 " -> %s [%d] @%" PRId64 "\n", p, res->offset, res->topic,
               (int)res->to_partition, res->to_offset);
        break;
    case DLQREQUEUE_WOULD:
        printf("would requeue %d:%" PRId64 " -> %s (stage %s, reason %s, key %s)\n", p, res->offset,
               res->topic, res->rec->stage, res->rec->reason, res->rec->user);
        break;
    case DLQREQUEUE_SETTLED:
        printf("settled %d:%" PRId64 ": found in %s, already requeued\n", p, res->offset,
               res->topic);
        break;
    case DLQREQUEUE_SKIPPED:
        fprintf(stderr, "heraldctl dlq requeue: %d:%" PRId64 " skipped: %s\n", p, res->offset,
                res->error);
        break;
    case DLQREQUEUE_FAILED:
        fprintf(stderr, "heraldctl dlq requeue: %d:%" PRId64 " not sent: %s\n", p, res->offset,
                res->error);
        break;
    case DLQREQUEUE_UNCONFIRMED:
        fprintf(stderr, "heraldctl dlq requeue: %d:%" PRId64 ": %s\n", p, res->offset, res->error);
        break;
    case DLQREQUEUE_ALREADY:
        break;
    }
}

/* True when f selects nothing: no filter, so every record of the DLQ. */
static bool requeue_unfiltered(const dlq_flags *f, int64_t since_ms, int npos)
{
    return npos == 0 && f->stage == NULL && f->reason == NULL && f->channel == NULL && since_ms < 0;
}

/* Whether the command can ask the operator: its input and output are a terminal. */
static bool requeue_can_ask(void)
{
    return isatty(STDIN_FILENO) == 1 && isatty(STDOUT_FILENO) == 1;
}

/* Runs o, printing a failure on stderr; the status and *n as dlqrequeue_run(). */
static dlqrequeue_status requeue_run(const ctl_context *ctx, const dlqrequeue_opts *o,
                                     dlqrequeue_counts *n)
{
    const char *what = NULL;
    char err[512];
    dlqrequeue_status st = dlqrequeue_run(o, n, &what, err, sizeof(err));
    if (st == DLQREQUEUE_ERR_KAFKA)
        cmdutil_kafka_error(ctx, "dlq requeue", what, err);
    else if (st != DLQREQUEUE_OK)
        fprintf(stderr, "heraldctl dlq requeue: %s\n", err);
    return st;
}

/* The counts line of a run of o. */
static void requeue_print_counts(const dlqrequeue_opts *o, const dlqrequeue_counts *n)
{
    if (o->dry_run)
        printf("%ld would be requeued, %ld already requeued, %ld skipped\n", n->would, n->already,
               n->skipped);
    else
        printf("%ld requeued, %ld already requeued, %ld skipped, %ld failed, %ld unconfirmed\n",
               n->requeued, n->already, n->skipped, n->failed, n->unconfirmed);
}

/*
 * Before requeueing the whole DLQ unasked: counts what would go (a dry
 * run) and asks.  -1 to go on, else the exit code.
 */
static int requeue_confirm(const ctl_context *ctx, const dlqrequeue_opts *o)
{
    dlqrequeue_opts dry = *o;
    dry.dry_run = true;
    dry.report = NULL;
    dlqrequeue_counts n;
    char answer[16];
    if (requeue_run(ctx, &dry, &n) != DLQREQUEUE_OK)
        return CTL_EXIT_FAILURE;
    requeue_print_counts(&dry, &n);
    if (n.would == 0)
        return CTL_EXIT_OK;
    printf("Requeue %ld record%s? [y/N] ", n.would, n.would == 1 ? "" : "s");
    fflush(stdout);
    if (fgets(answer, sizeof(answer), stdin) == NULL || (answer[0] != 'y' && answer[0] != 'Y')) {
        printf("nothing requeued\n");
        return CTL_EXIT_FAILURE;
    }
    return -1;
}

static int dlq_requeue(const ctl_context *ctx, const char *topic, const dlq_flags *f,
                       int64_t since_ms, int npos, char **positions)
{
    int32_t *parts = NULL;
    int64_t *offs = NULL;
    PGconn *conn = NULL;
    char err[512];
    int rc = CTL_EXIT_USAGE;
    dlqrec_filter filter = {f->stage, f->reason, f->channel, since_ms, 0};
    dlqrequeue_counts n;
    bool ask = !f->all && !f->dry_run && requeue_unfiltered(f, since_ms, npos);

    if (f->all && !requeue_unfiltered(f, since_ms, npos)) {
        fprintf(stderr,
                "heraldctl dlq requeue: --all requeues every record: give it without filters "
                "and PARTITION:OFFSET\n");
        goto out;
    }
    if (ask && !requeue_can_ask()) {
        fprintf(stderr, "heraldctl dlq requeue: without a filter or PARTITION:OFFSET this requeues "
                        "every record of the DLQ: give --all (see them first with --dry-run)\n");
        goto out;
    }
    if (npos > 0) {
        parts = calloc((size_t)npos, sizeof(*parts));
        offs = calloc((size_t)npos, sizeof(*offs));
        if (parts == NULL || offs == NULL) {
            fprintf(stderr, "heraldctl dlq requeue: out of memory\n");
            rc = CTL_EXIT_FAILURE;
            goto out;
        }
        for (int i = 0; i < npos; i++) {
            if (dlqrec_parse_position(positions[i], &parts[i], &offs[i], err, sizeof(err)) != 0) {
                fprintf(stderr, "heraldctl dlq requeue: %s\n", err);
                goto out;
            }
        }
    }
    rc = CTL_EXIT_FAILURE;
    conn = ctl_pg_connect(ctx);
    if (conn == NULL)
        goto out;
    const dlqrequeue_opts o = {
        .src = dlq_source(ctx, topic, f->timeout_ms),
        .topic_prefix = ctx->common.topic_prefix,
        .producer_props = &ctx->kafka_props,
        .conn = conn,
        .filter = &filter,
        .parts = parts,
        .offs = offs,
        .npos = (size_t)npos,
        .dry_run = f->dry_run,
        .report = requeue_print,
    };
    if (ask && (rc = requeue_confirm(ctx, &o)) >= 0)
        goto out;
    rc = CTL_EXIT_FAILURE;
    dlqrequeue_status st = requeue_run(ctx, &o, &n);
    requeue_print_counts(&o, &n);
    if (st == DLQREQUEUE_OK && n.failed == 0 && n.unconfirmed == 0)
        rc = CTL_EXIT_OK;
out:
    PQfinish(conn);
    free(parts);
    free(offs);
    return rc;
}

/* ------------------------------------------------------------- dispatch */

int cmd_dlq(const ctl_context *ctx, int argc, char **argv)
{
    dlq_flags flags = {0};
    const config_var *vars = NULL;
    char topic[512], name[32];
    int npos = 0, rc = CTL_EXIT_USAGE;
    int64_t since_ms = -1;
    char **positions = NULL;

    if (argc < 2) {
        fprintf(stderr, "heraldctl dlq: expected list, show, stats or requeue\n");
        return CTL_EXIT_USAGE;
    }
    const char *sub = argv[1];
    if (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0) {
        printf("%s\n", DLQ_USAGE);
        return CTL_EXIT_OK;
    }
    if (strcmp(sub, "list") == 0)
        vars = list_vars;
    else if (strcmp(sub, "show") == 0)
        vars = show_vars;
    else if (strcmp(sub, "stats") == 0)
        vars = stats_vars;
    else if (strcmp(sub, "requeue") == 0)
        vars = requeue_vars;
    else {
        fprintf(stderr,
                "heraldctl dlq: unknown subcommand \"%s\" (expected list, show, stats or "
                "requeue)\n",
                sub);
        return CTL_EXIT_USAGE;
    }
    snprintf(name, sizeof(name), "dlq %s", sub);
    bool positional = strcmp(sub, "show") == 0 || strcmp(sub, "requeue") == 0;
    positions = calloc((size_t)argc, sizeof(*positions));
    if (positions == NULL) {
        rc = CTL_EXIT_FAILURE;
        goto out;
    }
    int prc = parse(name, vars, &flags, argc - 1, argv + 1, positional ? positions : NULL, &npos);
    if (prc >= 0) {
        rc = prc;
        goto out;
    }
    if (cmdutil_time_flag(name, "since", flags.since, &since_ms) != 0)
        goto out;
    config_topic(&ctx->common, TOPICS_DLQ, topic, sizeof(topic));

    if (strcmp(sub, "list") == 0)
        rc = dlq_list(ctx, topic, &flags, since_ms);
    else if (strcmp(sub, "stats") == 0)
        rc = dlq_stats(ctx, topic, &flags, since_ms);
    else if (strcmp(sub, "show") == 0) {
        if (npos != 1) {
            fprintf(stderr, "heraldctl dlq show: expected one PARTITION:OFFSET\n");
            goto out;
        }
        rc = dlq_show(ctx, topic, &flags, positions[0]);
    } else {
        rc = dlq_requeue(ctx, topic, &flags, since_ms, npos, positions);
    }
out : {
    const config_table ctable = {vars, &flags};
    config_free(&ctable, 1, NULL);
}
    free(positions);
    return rc;
}
