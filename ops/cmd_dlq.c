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

#include "cmd.h"
#include "cmdutil.h"
#include "dlqrec.h"
#include "headers.h"
#include "kafka.h"
#include "ledger.h"
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
    "[PARTITION:OFFSET ...] [--dry-run]"

/* Margin before a claim's time when looking for its requeued record:
 * the claim time is the database server's clock, the record's the broker's
 * or this host's. */
#define DLQ_CLOCK_SKEW_MS (5 * 60 * 1000)

typedef struct dlq_flags {
    char *stage;
    char *reason;
    char *channel;
    char *since;
    long limit;
    bool json;
    bool dry_run;
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
    FLAG_TIMEOUT,
    {0},
};

/* ------------------------------------------------------------ the scan */

/* Called per matching record; returns 0 to go on, 1 to stop, -1 on failure. */
typedef int (*dlq_visit_fn)(dlqrec *rec, void *opaque);

/*
 * Reads the DLQ (range) and calls visit for each record that matches f.
 * Returns a CTL_EXIT_* code; the failure line is printed here.
 */
static int dlq_scan(const ctl_context *ctx, const char *cmd, const char *topic,
                    const partread_range *range, const dlqrec_filter *f, dlq_visit_fn visit,
                    void *opaque)
{
    partread *r = NULL;
    char err[512];
    int rc = CTL_EXIT_FAILURE;
    partread_status st = partread_open(ctx->common.kafka_brokers, &ctx->kafka_props, topic, range,
                                       &r, err, sizeof(err));
    if (st == PARTREAD_MISSING) {
        fprintf(stderr, "heraldctl %s: %s\n", cmd, err);
        goto out;
    }
    if (st != PARTREAD_OK) {
        cmdutil_kafka_error(ctx, cmd, "cannot read the DLQ", err);
        goto out;
    }
    for (;;) {
        rd_kafka_message_t *m = NULL;
        st = partread_next(r, &m, err, sizeof(err));
        if (st == PARTREAD_END)
            break;
        if (st != PARTREAD_OK) {
            cmdutil_kafka_error(ctx, cmd, "reading the DLQ failed", err);
            goto out;
        }
        rd_kafka_headers_t *hdrs = kafka_message_headers(m);
        dlqrec rec;
        int ok = dlqrec_init(&rec, m->partition, m->offset, rd_kafka_message_timestamp(m, NULL),
                             m->key, m->key_len, m->payload, m->len, hdrs, err, sizeof(err));
        rd_kafka_message_destroy(m);
        if (ok != 0) {
            fprintf(stderr, "heraldctl %s: %s\n", cmd, err);
            goto out;
        }
        int v = dlqrec_matches(&rec, f) ? visit(&rec, opaque) : 0;
        dlqrec_free(&rec);
        if (v < 0)
            goto out;
        if (v > 0)
            break;
    }
    rc = CTL_EXIT_OK;
out:
    partread_close(r);
    return rc;
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
    dlqrec_filter filter = {f->stage, f->reason, f->channel, since_ms};

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
    dlqrec_filter filter = {NULL, NULL, NULL, since_ms};
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
        json_t *groups = json_array();
        j = json_pack("{s:I,s:o}", "total", (json_int_t)dlqrec_stats_total(st), "groups", groups);
        for (size_t i = 0; j != NULL && i < n; i++) {
            json_t *g = json_pack("{s:s,s:s,s:I,s:s,s:s}", "stage", rows[i].stage, "reason",
                                  rows[i].reason, "count", (json_int_t)rows[i].count, "oldest",
                                  fmt_time(rows[i].oldest_ms, oldest, sizeof(oldest)), "newest",
                                  fmt_time(rows[i].newest_ms, newest, sizeof(newest)));
            if (g == NULL || json_array_append_new(groups, g) != 0)
                goto oom;
        }
        if (j == NULL)
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

/* One record produced and not yet acknowledged. */
typedef struct requeue_pending {
    struct requeue_state *s;
    int32_t partition;
    int64_t offset;
} requeue_pending;

typedef struct requeue_state {
    const ctl_context *ctx;
    const char *dlq_topic;
    char prefix[256];
    bool dry_run;
    PGconn *conn;
    kafka_producer *producer;
    /* Positions given on the command line (NULL: every matching record). */
    const int32_t *only_part;
    const int64_t *only_off;
    size_t only_n;
    /* In-doubt claims being settled: their records are produced again. */
    const ledger_entry *redo;
    size_t redo_n;
    long requeued, already, skipped, failed, in_doubt, would;
} requeue_state;

static void requeue_report(void *opaque, const kafka_delivery_report *dr)
{
    requeue_pending *p = opaque;
    requeue_state *s = p->s;
    char err[512];
    if (dr->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        if (ledger_ack(s->conn, s->dlq_topic, p->partition, p->offset, err, sizeof(err)) != 0) {
            /* Stays in doubt: the next run finds the record and acks it. */
            fprintf(stderr, "heraldctl dlq requeue: %d:%" PRId64 " sent, not recorded: %s\n",
                    (int)p->partition, p->offset, err);
            s->in_doubt++;
        } else {
            printf("requeued %d:%" PRId64 " -> %s [%d] @%" PRId64 "\n", (int)p->partition,
                   p->offset, dr->topic, (int)dr->partition, dr->offset);
            s->requeued++;
        }
    } else if (dr->possibly_persisted) {
        fprintf(stderr,
                "heraldctl dlq requeue: %d:%" PRId64 ": %s; it may have been written: the next "
                "requeue checks and settles it\n",
                (int)p->partition, p->offset, rd_kafka_err2str(dr->err));
        s->in_doubt++;
    } else {
        if (ledger_release(s->conn, s->dlq_topic, p->partition, p->offset, err, sizeof(err)) != 0) {
            fprintf(stderr, "heraldctl dlq requeue: %d:%" PRId64 ": claim kept: %s\n",
                    (int)p->partition, p->offset, err);
            s->in_doubt++;
        }
        fprintf(stderr, "heraldctl dlq requeue: %d:%" PRId64 " not sent: %s\n", (int)p->partition,
                p->offset, rd_kafka_err2str(dr->err));
        s->failed++;
    }
    free(p);
}

static bool wanted_position(const requeue_state *s, const dlqrec *rec)
{
    if (s->only_n == 0)
        return true;
    for (size_t i = 0; i < s->only_n; i++)
        if (s->only_part[i] == rec->partition && s->only_off[i] == rec->offset)
            return true;
    return false;
}

static bool is_redo(const requeue_state *s, const dlqrec *rec)
{
    for (size_t i = 0; i < s->redo_n; i++)
        if (s->redo[i].partition == rec->partition && s->redo[i].offset == rec->offset)
            return true;
    return false;
}

/* Produces the record back (the claim is held); 0, or -1 on a fatal producer error. */
static int requeue_produce(requeue_state *s, const dlqrec *rec)
{
    char *value = NULL, err[512];
    size_t vlen = 0;
    rd_kafka_headers_t *hdrs = NULL;
    requeue_pending *p = NULL;
    int rc = 0;

    if (dlqrec_requeue_value(rec, &value, &vlen) != 0 ||
        (hdrs = dlqrec_requeue_headers(rec, s->dlq_topic, timeutil_now_ms())) == NULL ||
        (p = malloc(sizeof(*p))) == NULL) {
        fprintf(stderr, "heraldctl dlq requeue: out of memory\n");
        rc = -1;
        goto out;
    }
    *p = (requeue_pending){s, rec->partition, rec->offset};
    for (int tries = 0;; tries++) {
        kafka_status st = kafka_produce(s->producer, rec->orig_topic, rec->key, rec->keylen, value,
                                        vlen, hdrs, p, err, sizeof(err));
        if (st == KAFKA_OK) {
            hdrs = NULL;
            p = NULL;
            break;
        }
        if (st == KAFKA_QUEUE_FULL && tries < 100) {
            kafka_producer_poll(s->producer, 100);
            continue;
        }
        /* Not enqueued, so certainly not written: give the claim back. */
        fprintf(stderr, "heraldctl dlq requeue: %d:%" PRId64 " not sent: %s\n", (int)rec->partition,
                rec->offset, err);
        char lerr[256];
        if (ledger_release(s->conn, s->dlq_topic, rec->partition, rec->offset, lerr,
                           sizeof(lerr)) != 0)
            s->in_doubt++;
        s->failed++;
        rc = st == KAFKA_ERR_FATAL ? -1 : 0;
        break;
    }
    kafka_producer_poll(s->producer, 0);
out:
    if (hdrs != NULL)
        rd_kafka_headers_destroy(hdrs);
    free(p);
    free(value);
    return rc;
}

static int requeue_visit(dlqrec *rec, void *opaque)
{
    requeue_state *s = opaque;
    char err[512];
    if (!wanted_position(s, rec))
        return 0;
    bool redo = is_redo(s, rec);
    if (s->redo_n > 0 && !redo)
        return 0;
    /* Only topics of this installation: a forged header must not make the
     * requeue write anywhere else, nor loop records back into the DLQ. */
    size_t plen = strlen(s->prefix);
    if (rec->orig_topic[0] == '\0' || strncmp(rec->orig_topic, s->prefix, plen) != 0 ||
        strcmp(rec->orig_topic, s->dlq_topic) == 0) {
        fprintf(stderr,
                "heraldctl dlq requeue: %d:%" PRId64 " skipped: original topic \"%s\" is "
                "not a topic under prefix \"%s\"\n",
                (int)rec->partition, rec->offset, rec->orig_topic, s->prefix);
        s->skipped++;
        return 0;
    }
    if (s->dry_run) {
        int rec_state =
            ledger_recorded(s->conn, s->dlq_topic, rec->partition, rec->offset, err, sizeof(err));
        if (rec_state < 0) {
            fprintf(stderr, "heraldctl dlq requeue: %s\n", err);
            return -1;
        }
        if (rec_state == 1) {
            s->already++;
            return 0;
        }
        printf("would requeue %d:%" PRId64 " -> %s (stage %s, reason %s, key %s)\n",
               (int)rec->partition, rec->offset, rec->orig_topic, rec->stage, rec->reason,
               rec->user);
        s->would++;
        return 0;
    }
    if (!redo) {
        int claimed = ledger_claim(s->conn, s->dlq_topic, rec->partition, rec->offset,
                                   rec->orig_topic, err, sizeof(err));
        if (claimed < 0) {
            fprintf(stderr, "heraldctl dlq requeue: %s\n", err);
            return -1;
        }
        if (claimed == 0) {
            s->already++;
            return 0;
        }
    }
    return requeue_produce(s, rec);
}

/*
 * Finds which in-doubt claims were in fact produced: reads each target
 * topic from the oldest claim's time for herald.requeued_from.  Marks those
 * acknowledged; the rest stay in *left for producing again.
 */
static int settle_in_doubt(requeue_state *s, const dlq_flags *f, ledger_entry *doubt, size_t n,
                           size_t *left)
{
    char err[512];
    *left = n;
    for (size_t i = 0; i < n; i++) {
        if (doubt[i].to_topic[0] == '\0')
            continue;
        const char *topic = doubt[i].to_topic;
        int64_t since = doubt[i].claimed_ms;
        for (size_t k = i + 1; k < n; k++)
            if (strcmp(doubt[k].to_topic, topic) == 0 && doubt[k].claimed_ms < since)
                since = doubt[k].claimed_ms;
        partread *r = NULL;
        partread_range range = PARTREAD_ALL((int)f->timeout_ms);
        range.from_ms = since > DLQ_CLOCK_SKEW_MS ? since - DLQ_CLOCK_SKEW_MS : 0;
        partread_status st = partread_open(s->ctx->common.kafka_brokers, &s->ctx->kafka_props,
                                           topic, &range, &r, err, sizeof(err));
        if (st != PARTREAD_OK && st != PARTREAD_MISSING) {
            cmdutil_kafka_error(s->ctx, "dlq requeue", "cannot check earlier requeues", err);
            return -1;
        }
        while (st == PARTREAD_OK) {
            rd_kafka_message_t *m = NULL;
            partread_status nst = partread_next(r, &m, err, sizeof(err));
            if (nst == PARTREAD_END)
                break;
            if (nst != PARTREAD_OK) {
                cmdutil_kafka_error(s->ctx, "dlq requeue", "cannot check earlier requeues", err);
                partread_close(r);
                return -1;
            }
            char from[512];
            if (kafka_header_get(m, HDR_REQUEUED_FROM, from, sizeof(from)) > 0) {
                for (size_t k = i; k < n; k++) {
                    char id[512];
                    snprintf(id, sizeof(id), "%s:%d:%" PRId64, s->dlq_topic,
                             (int)doubt[k].partition, doubt[k].offset);
                    if (strcmp(doubt[k].to_topic, topic) == 0 && strcmp(id, from) == 0) {
                        if (ledger_ack(s->conn, s->dlq_topic, doubt[k].partition, doubt[k].offset,
                                       err, sizeof(err)) != 0) {
                            fprintf(stderr, "heraldctl dlq requeue: %s\n", err);
                            rd_kafka_message_destroy(m);
                            partread_close(r);
                            return -1;
                        }
                        printf("settled %d:%" PRId64 ": found in %s, already requeued\n",
                               (int)doubt[k].partition, doubt[k].offset, topic);
                        doubt[k].partition = -1; /* done */
                    }
                }
            }
            rd_kafka_message_destroy(m);
        }
        partread_close(r);
        /* This topic is done: mark its entries so the loop skips them. */
        for (size_t k = i; k < n; k++)
            if (k != i && strcmp(doubt[k].to_topic, topic) == 0)
                doubt[k].to_topic[0] = '\0';
        doubt[i].to_topic[0] = '\0';
    }
    size_t w = 0;
    for (size_t i = 0; i < n; i++)
        if (doubt[i].partition >= 0)
            doubt[w++] = doubt[i];
    *left = w;
    return 0;
}

/* Produces every record of the DLQ that visit selects, then waits for the acks. */
static int requeue_pass(requeue_state *s, const dlq_flags *f, int64_t since_ms,
                        const dlqrec_filter *filter)
{
    int rc = CTL_EXIT_OK;
    if (s->only_n > 0 || s->redo_n > 0) {
        /* Named records: read each one alone instead of the whole topic. */
        size_t n = s->redo_n > 0 ? s->redo_n : s->only_n;
        for (size_t i = 0; i < n && rc == CTL_EXIT_OK; i++) {
            partread_range range = PARTREAD_ALL((int)f->timeout_ms);
            range.partition = s->redo_n > 0 ? s->redo[i].partition : s->only_part[i];
            range.offset = s->redo_n > 0 ? s->redo[i].offset : s->only_off[i];
            rc = dlq_scan(s->ctx, "dlq requeue", s->dlq_topic, &range,
                          s->redo_n > 0 ? NULL : filter, requeue_visit, s);
        }
    } else {
        partread_range range = PARTREAD_ALL((int)f->timeout_ms);
        range.from_ms = since_ms;
        rc = dlq_scan(s->ctx, "dlq requeue", s->dlq_topic, &range, filter, requeue_visit, s);
    }
    if (s->producer != NULL) {
        int left = kafka_producer_flush(s->producer, (int)f->timeout_ms + 5000);
        if (left > 0) {
            /* Purged on destroy; their reports count them in doubt. */
            fprintf(stderr, "heraldctl dlq requeue: %d record(s) not acknowledged in time\n", left);
            rc = CTL_EXIT_FAILURE;
        }
    }
    return rc;
}

static int dlq_requeue(const ctl_context *ctx, const char *topic, const dlq_flags *f,
                       int64_t since_ms, int npos, char **positions)
{
    requeue_state s = {.ctx = ctx, .dlq_topic = topic, .dry_run = f->dry_run};
    int32_t *parts = NULL;
    int64_t *offs = NULL;
    ledger_entry *doubt = NULL;
    size_t ndoubt = 0;
    char err[512];
    int rc = CTL_EXIT_USAGE;
    dlqrec_filter filter = {f->stage, f->reason, f->channel, since_ms};

    snprintf(s.prefix, sizeof(s.prefix), "%s", ctx->common.topic_prefix);
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
    s.conn = ctl_pg_connect(ctx);
    if (s.conn == NULL)
        goto out;
    if (!f->dry_run) {
        if (ledger_lock(s.conn, topic, 30000, err, sizeof(err)) != 0) {
            fprintf(stderr, "heraldctl dlq requeue: %s\n", err);
            goto out;
        }
        s.producer = cmdutil_producer(ctx, "dlq requeue", (int)f->timeout_ms);
        if (s.producer == NULL)
            goto out;
        kafka_producer_set_delivery_cb(s.producer, requeue_report);

        /* First what an earlier run left in doubt, so nothing is sent twice. */
        if (ledger_in_doubt(s.conn, topic, &doubt, &ndoubt, err, sizeof(err)) != 0) {
            fprintf(stderr, "heraldctl dlq requeue: %s\n", err);
            goto out;
        }
        if (ndoubt > 0) {
            size_t left = 0;
            printf("settling %zu requeue(s) an earlier run left unconfirmed\n", ndoubt);
            if (settle_in_doubt(&s, f, doubt, ndoubt, &left) != 0)
                goto out;
            s.redo = doubt;
            s.redo_n = left;
            if (left > 0 && requeue_pass(&s, f, -1, NULL) != CTL_EXIT_OK)
                goto out;
            s.redo = NULL;
            s.redo_n = 0;
        }
    }
    s.only_part = parts;
    s.only_off = offs;
    s.only_n = (size_t)npos;
    rc = requeue_pass(&s, f, since_ms, &filter);
    if (f->dry_run)
        printf("%ld would be requeued, %ld already requeued, %ld skipped\n", s.would, s.already,
               s.skipped);
    else
        printf("%ld requeued, %ld already requeued, %ld skipped, %ld failed, %ld unconfirmed\n",
               s.requeued, s.already, s.skipped, s.failed, s.in_doubt);
    if (s.failed > 0 || s.in_doubt > 0)
        rc = CTL_EXIT_FAILURE;
out:
    kafka_producer_destroy(s.producer);
    PQfinish(s.conn);
    free(doubt);
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
