/*
 * heraldctl status [--group G[,G...]] [--gateway ADDR] [--dispatcher ADDR]
 *                  [--worker-email ADDR] [--worker-sms ADDR] [--worker-push ADDR]
 *                  [--worker-inapp ADDR] [--realtime ADDR]
 *                  [--json]
 *
 * Consumer lag per group and partition, the DLQ's size, the retry topics'
 * depth, whether each daemon's /healthz answers and, when a database is
 * configured, how many digest windows are open and follow-ups pending, and
 * how many of each are due.
 *
 * The document is gathered by common/opsstatus.c, which GET /v1/ops/status
 * of the gateway answers too; the tables are printed from it.
 *
 * Exit 0 when the report could be made, whatever it says (scripts read
 * --json); 1 when the broker cannot be reached.
 */
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "cmdutil.h"
#include "opsstatus.h"
#include "table.h"
#include "topics.h"

#define STATUS_USAGE                                                                               \
    "usage: heraldctl status [--group G[,G...]] [--gateway ADDR] [--dispatcher ADDR] "             \
    "[--worker-email ADDR] [--worker-sms ADDR] [--worker-push ADDR] [--worker-inapp ADDR] "        \
    "[--realtime ADDR] [--json]"

typedef struct status_flags {
    char *groups;
    char *gateway;
    char *dispatcher;
    char *worker_email;
    char *worker_sms;
    char *worker_push;
    char *worker_inapp;
    char *realtime;
    bool json;
    long timeout_ms;
    long health_timeout_ms;
} status_flags;

#define F(field) offsetof(status_flags, field)

/* The gateway's settings of the same names describe the same stack (console_ops.h). */
static const config_var status_vars[] = {
    {.env = "HERALD_STATUS_GROUP",
     .flag = "group",
     .type = CONFIG_STRING,
     .offset = F(groups),
     .help = "consumer groups to report, comma-separated (default: herald-dispatcher and "
             "<prefix>worker.email/sms/push/inapp)"},
    {.env = "HERALD_STATUS_GATEWAY",
     .flag = "gateway",
     .type = CONFIG_ADDR,
     .def = OPSSTATUS_ADDR_GATEWAY,
     .offset = F(gateway),
     .help = "gateway address (its /healthz)"},
    {.env = "HERALD_STATUS_DISPATCHER",
     .flag = "dispatcher",
     .type = CONFIG_ADDR,
     .def = OPSSTATUS_ADDR_DISPATCHER,
     .offset = F(dispatcher),
     .help = "dispatcher metrics address"},
    {.env = "HERALD_STATUS_WORKER_EMAIL",
     .flag = "worker-email",
     .type = CONFIG_ADDR,
     .def = OPSSTATUS_ADDR_WORKER_EMAIL,
     .offset = F(worker_email),
     .help = "email worker metrics address"},
    {.env = "HERALD_STATUS_WORKER_SMS",
     .flag = "worker-sms",
     .type = CONFIG_ADDR,
     .def = OPSSTATUS_ADDR_WORKER_SMS,
     .offset = F(worker_sms),
     .help = "SMS worker metrics address"},
    {.env = "HERALD_STATUS_WORKER_PUSH",
     .flag = "worker-push",
     .type = CONFIG_ADDR,
     .def = OPSSTATUS_ADDR_WORKER_PUSH,
     .offset = F(worker_push),
     .help = "push worker metrics address"},
    {.env = "HERALD_STATUS_WORKER_INAPP",
     .flag = "worker-inapp",
     .type = CONFIG_ADDR,
     .def = OPSSTATUS_ADDR_WORKER_INAPP,
     .offset = F(worker_inapp),
     .help = "in-app worker metrics address"},
    {.env = "HERALD_STATUS_REALTIME",
     .flag = "realtime",
     .type = CONFIG_ADDR,
     .def = OPSSTATUS_ADDR_REALTIME,
     .offset = F(realtime),
     .help = "herald-realtime metrics address"},
    {.flag = "json",
     .type = CONFIG_BOOL,
     .def = "false",
     .offset = F(json),
     .help = "print JSON instead of tables"},
    {.env = "HERALD_STATUS_TIMEOUT",
     .flag = "timeout",
     .type = CONFIG_DURATION,
     .def = "10s",
     .offset = F(timeout_ms),
     .min = 100,
     .max = 600000,
     .help = "longest wait for the broker"},
    {.env = "HERALD_STATUS_HEALTH_TIMEOUT",
     .flag = "health-timeout",
     .type = CONFIG_DURATION,
     .def = "1s",
     .offset = F(health_timeout_ms),
     .min = 50,
     .max = 60000,
     .help = "longest wait for one /healthz"},
    {0},
};

/* The flags' addresses, in the order of opsstatus_daemon_names. */
static void daemon_addrs(const status_flags *f, const char **out)
{
    const char *const addrs[OPSSTATUS_DAEMONS] = {f->gateway,    f->dispatcher,  f->worker_email,
                                                  f->worker_sms, f->worker_push, f->worker_inapp,
                                                  f->realtime};
    memcpy(out, addrs, sizeof addrs);
}

/* Prints why the report could not be made; returns the exit code. */
static int report_failure(const ctl_context *ctx, opsstatus_result res, const char *err)
{
    switch (res) {
    case OPSSTATUS_BAD_GROUPS:
        fprintf(stderr, "heraldctl status: --group: %s\n", err);
        return CTL_EXIT_USAGE;
    case OPSSTATUS_TOPICS:
        cmdutil_kafka_error(ctx, "status", "cannot read the topics", err);
        break;
    case OPSSTATUS_OFFSETS:
        cmdutil_kafka_error(ctx, "status", "cannot read consumer offsets", err);
        break;
    case OPSSTATUS_NOMEM:
    case OPSSTATUS_OK:
        fprintf(stderr, "heraldctl status: %s\n", err);
        break;
    }
    return CTL_EXIT_FAILURE;
}

/* The integer member name of o, or 0. */
static json_int_t member_int(const json_t *o, const char *name)
{
    return json_integer_value(json_object_get(o, name));
}

/* "<what>: N <a>, N <b>, N due", or why it is unknown, when the document holds it. */
static void print_held(const json_t *h, const char *what, const char *a, const char *b)
{
    if (h == NULL)
        return;
    const char *why = json_string_value(json_object_get(h, "error"));
    if (why != NULL)
        printf("%s: unknown (%s)\n", what, why);
    else
        printf("%s: %lld %s, %lld %s, %lld due\n", what, (long long)member_int(h, a), a,
               (long long)member_int(h, b), b, (long long)member_int(h, "due"));
}

/*
 * A count as text: "<=N" when it is the offset difference (an upper bound,
 * opsstatus.h) rather than the records counted.
 */
static const char *count_text(json_int_t n, const json_t *exact, char *out, size_t outlen)
{
    snprintf(out, outlen, "%s%lld", json_is_false(exact) ? "<=" : "", (long long)n);
    return out;
}

/* Whether some count of the document is an upper bound. */
static bool any_bound(const json_t *doc)
{
    size_t i;
    const char *key;
    json_t *v;
    bool bound = json_is_false(json_object_get(doc, "dlq_size_exact"));
    json_array_foreach(json_object_get(doc, "lag"), i, v)
    {
        bound = bound || json_is_false(json_object_get(v, "exact"));
    }
    json_object_foreach((json_t *)json_object_get(doc, "retry_depth_exact"), key, v)
    {
        bound = bound || json_is_false(v);
    }
    return bound;
}

/* The lag rows worth a line: a partition holding data or a commit. */
static int fill_lag_table(table *t, const json_t *rows)
{
    size_t i;
    json_t *row;
    json_array_foreach(rows, i, row)
    {
        const json_t *committed = json_object_get(row, "committed");
        long long end = (long long)member_int(row, "end");
        if (end <= 0 && json_is_null(committed))
            continue;
        char part[16], com[24], endtxt[24], lagtxt[24];
        snprintf(part, sizeof(part), "%lld", (long long)member_int(row, "partition"));
        if (json_is_integer(committed))
            snprintf(com, sizeof(com), "%lld", (long long)json_integer_value(committed));
        else
            snprintf(com, sizeof(com), "-");
        snprintf(endtxt, sizeof(endtxt), "%lld", end);
        count_text(member_int(row, "lag"), json_object_get(row, "exact"), lagtxt, sizeof lagtxt);
        const char *cells[] = {json_string_value(json_object_get(row, "group")),
                               json_string_value(json_object_get(row, "topic")),
                               part,
                               com,
                               endtxt,
                               lagtxt};
        if (table_add(t, cells) != 0)
            return -1;
    }
    return 0;
}

/* The daemons' rows. */
static int fill_daemon_table(table *t, const json_t *daemons)
{
    size_t i;
    json_t *d;
    json_array_foreach(daemons, i, d)
    {
        const char *cells[] = {json_string_value(json_object_get(d, "name")),
                               json_string_value(json_object_get(d, "addr")),
                               json_string_value(json_object_get(d, "status"))};
        if (table_add(t, cells) != 0)
            return -1;
    }
    return 0;
}

/* The document as the lag table, the backlogs and the daemon table on stdout. */
static int print_tables(const ctl_context *ctx, const json_t *doc)
{
    static const char *const lh[] = {"GROUP", "TOPIC", "PARTITION", "COMMITTED", "END", "LAG"};
    static const char *const dh[] = {"DAEMON", "ADDRESS", "HEALTH"};
    int rc = CTL_EXIT_FAILURE;
    table *lag = table_new(6, lh), *daemons = table_new(3, dh);
    if (lag == NULL || daemons == NULL || fill_lag_table(lag, json_object_get(doc, "lag")) != 0 ||
        fill_daemon_table(daemons, json_object_get(doc, "daemons")) != 0)
        goto out;
    printf("consumer lag:\n");
    table_print(lag, stdout);
    char n[32];
    printf("\ndead letters: %s in %s%s\n",
           count_text(member_int(doc, "dlq_size"), json_object_get(doc, "dlq_size_exact"), n,
                      sizeof n),
           ctx->common.topic_prefix, TOPICS_DLQ);
    const char *topic;
    json_t *depth;
    const json_t *depth_exact = json_object_get(doc, "retry_depth_exact");
    json_object_foreach((json_t *)json_object_get(doc, "retry_depth"), topic, depth)
    {
        const json_t *exact = json_object_get(depth_exact, topic);
        printf("retry depth:  %s in %s\n",
               count_text(json_integer_value(depth), exact, n, sizeof n), topic);
    }
    if (any_bound(doc))
        printf("(<=N: more than %d offsets to read on a partition; N is the offset difference, "
               "an upper bound)\n",
               OPSSTATUS_COUNT_SPAN);
    print_held(json_object_get(doc, "digest_windows"), "digest windows", "open", "closing");
    print_held(json_object_get(doc, "followups"), "follow-ups", "pending", "running");
    printf("\n");
    table_print(daemons, stdout);
    rc = CTL_EXIT_OK;
out:
    if (rc != CTL_EXIT_OK)
        fprintf(stderr, "heraldctl status: out of memory\n");
    table_free(lag);
    table_free(daemons);
    return rc;
}

/* The document on stdout, indented. */
static int print_json(const json_t *doc)
{
    char *s = json_dumps(doc, JSON_INDENT(2));
    if (s == NULL) {
        fprintf(stderr, "heraldctl status: out of memory\n");
        return CTL_EXIT_FAILURE;
    }
    printf("%s\n", s);
    free(s);
    return CTL_EXIT_OK;
}

int cmd_status(const ctl_context *ctx, int argc, char **argv)
{
    status_flags f = {0};
    const config_table ctable = {status_vars, &f};
    char err[512];
    json_t *doc = NULL;
    PGconn *conn = NULL;
    opsstatus_config oc = {.common = &ctx->common, .kafka_props = &ctx->kafka_props};

    int rc = ctl_parse_only_flags("status", STATUS_USAGE, status_vars, &f, argc, argv);
    if (rc >= 0)
        goto out;
    if (opsstatus_check_groups(f.groups, err, sizeof err) != 0) {
        rc = report_failure(ctx, OPSSTATUS_BAD_GROUPS, err);
        goto out;
    }
    /* The rest of the report does not need a database: it is asked only when named. */
    oc.count_held = ctl_database_configured(ctx);
    if (oc.count_held)
        conn = ctl_pg_connect(ctx);
    oc.groups = f.groups;
    daemon_addrs(&f, oc.addrs);
    oc.timeout_ms = f.timeout_ms;
    oc.health_timeout_ms = f.health_timeout_ms;
    oc.conn = conn;
    opsstatus_result res = opsstatus_collect(&oc, &doc, err, sizeof err);
    if (res != OPSSTATUS_OK)
        rc = report_failure(ctx, res, err);
    else
        rc = f.json ? print_json(doc) : print_tables(ctx, doc);
out:
    json_decref(doc);
    PQfinish(conn);
    config_free(&ctable, 1, NULL);
    return rc;
}
