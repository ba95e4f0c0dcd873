/*
 * heraldctl digests   [--user U] [--limit N] [--json]
 * heraldctl followups [--user U] [--limit N] [--json]
 *
 * The work the dispatchers hold for later (docs/digests.md), read from
 * PostgreSQL.  digests: the digest windows that are open or closing, with
 * their rule and channel, whose, the grouping key, how many events wait in
 * them, and when they opened and close.  followups: the follow-ups pending
 * or running, with their event, rule, channel, whose, and when they are
 * due.  Soonest first.  Both are one listing with its own query and
 * columns.  Exit 1 when the database cannot be reached.
 */
#include "cmd.h"
#include "cmdutil.h"
#include "table.h"
#include "validate.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define UTC_MS(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"

#define LISTING_MAX_COLS 9

/* What one command lists: $1 is the user or NULL, $2 the limit. */
typedef struct listing {
    const char *cmd;
    const char *usage;
    const char *sql;
    const char *key; /* the JSON answer's member: {"<key>": [...]} */
    size_t ncols;
    const char *const *headers;
    const char *const *fields;
    int int_col;  /* the column printed as a JSON integer, or -1 */
    int wide_col; /* the column whose cells the table cuts at 40 characters, or -1 */
} listing;

static const char *const window_headers[] = {"WINDOW_ID", "RULE",      "CHANNEL",   "USER",  "KEY",
                                             "MEMBERS",   "OPENED_AT", "CLOSES_AT", "STATUS"};
static const char *const window_fields[] = {"window_id", "rule",      "channel",   "user",  "key",
                                            "members",   "opened_at", "closes_at", "status"};

static const listing windows_listing = {
    .cmd = "digests",
    .usage = "usage: heraldctl digests [--user U] [--limit N] [--json]",
    .sql = "SELECT window_id, rule_name, channel, user_id, group_key, members, " UTC_MS(
        "opened_at") ", " UTC_MS("closes_at") ", status FROM digest_windows "
                                              "WHERE status IN ('open', 'closing') "
                                              "AND ($1::text IS NULL OR user_id = $1) "
                                              "ORDER BY closes_at, window_id LIMIT $2::int",
    .key = "windows",
    .ncols = 9,
    .headers = window_headers,
    .fields = window_fields,
    .int_col = 5,
    .wide_col = 4,
};

static const char *const followup_headers[] = {"EVENT_ID", "RULE",   "CHANNEL",
                                               "USER",     "STATUS", "DUE_AT"};
static const char *const followup_fields[] = {"event_id", "rule",   "channel",
                                              "user",     "status", "due_at"};

static const listing followups_listing = {
    .cmd = "followups",
    .usage = "usage: heraldctl followups [--user U] [--limit N] [--json]",
    .sql = "SELECT event_id, rule_name, channel, user_id, status, " UTC_MS(
        "due_at") " FROM followups WHERE status IN ('pending', 'running') "
                  "AND ($1::text IS NULL OR user_id = $1) "
                  "ORDER BY due_at, event_id, rule_name LIMIT $2::int",
    .key = "followups",
    .ncols = 6,
    .headers = followup_headers,
    .fields = followup_fields,
    .int_col = -1,
    .wide_col = -1,
};

typedef struct listing_flags {
    char *user;
    long limit;
    bool json;
} listing_flags;

static const config_var listing_vars[] = {
    {.flag = "user",
     .type = CONFIG_STRING,
     .offset = offsetof(listing_flags, user),
     .help = "only this user's rows"},
    {.flag = "limit",
     .type = CONFIG_INT,
     .def = "1000",
     .offset = offsetof(listing_flags, limit),
     .min = 1,
     .max = 100000,
     .help = "at most this many rows"},
    {.flag = "json",
     .type = CONFIG_BOOL,
     .def = "false",
     .offset = offsetof(listing_flags, json),
     .help = "print JSON instead of a table"},
    {0},
};

static int print_json(const listing *l, PGresult *res)
{
    json_t *list = json_array();
    for (int i = 0; list != NULL && i < PQntuples(res); i++) {
        json_t *w = json_object();
        for (int c = 0; w != NULL && c < (int)l->ncols; c++)
            json_object_set_new(w, l->fields[c],
                                c == l->int_col
                                    ? json_integer(strtoll(PQgetvalue(res, i, c), NULL, 10))
                                    : json_string(PQgetvalue(res, i, c)));
        json_array_append_new(list, w);
    }
    json_t *doc = json_pack("{s:o}", l->key, list);
    if (doc == NULL) {
        fprintf(stderr, "heraldctl %s: out of memory\n", l->cmd);
        return CTL_EXIT_FAILURE;
    }
    cmdutil_print_json(doc);
    json_decref(doc);
    return CTL_EXIT_OK;
}

static int print_table(const listing *l, PGresult *res)
{
    table *t = table_new(l->ncols, l->headers);
    int rc = CTL_EXIT_FAILURE;
    if (t == NULL)
        goto out;
    if (l->wide_col >= 0)
        table_set_max(t, (size_t)l->wide_col, 40);
    for (int i = 0; i < PQntuples(res); i++) {
        const char *cells[LISTING_MAX_COLS];
        for (int c = 0; c < (int)l->ncols; c++)
            cells[c] = PQgetvalue(res, i, c);
        if (table_add(t, cells) != 0)
            goto out;
    }
    table_print(t, stdout);
    rc = CTL_EXIT_OK;
out:
    if (rc != CTL_EXIT_OK)
        fprintf(stderr, "heraldctl %s: out of memory\n", l->cmd);
    table_free(t);
    return rc;
}

static int run_listing(const listing *l, const ctl_context *ctx, int argc, char **argv)
{
    listing_flags f = {0};
    const config_table ctable = {listing_vars, &f};
    PGconn *conn = NULL;
    PGresult *res = NULL;
    char limit[24], why[160];
    int rc = ctl_parse_only_flags(l->cmd, l->usage, listing_vars, &f, argc, argv);
    if (rc >= 0)
        goto out;
    rc = CTL_EXIT_USAGE;
    if (f.user != NULL && validate_user_id(f.user, strlen(f.user), why, sizeof why) != 0) {
        fprintf(stderr, "heraldctl %s: --user %s\n", l->cmd, why);
        goto out;
    }
    rc = CTL_EXIT_FAILURE;
    if ((conn = ctl_pg_connect(ctx)) == NULL)
        goto out;
    snprintf(limit, sizeof limit, "%ld", f.limit);
    const char *params[2] = {f.user, limit};
    res = PQexecParams(conn, l->sql, 2, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        fprintf(stderr, "heraldctl %s: %s", l->cmd, PQerrorMessage(conn));
        goto out;
    }
    rc = f.json ? print_json(l, res) : print_table(l, res);
out:
    PQclear(res);
    PQfinish(conn);
    config_free(&ctable, 1, NULL);
    return rc;
}

int cmd_digests(const ctl_context *ctx, int argc, char **argv)
{
    return run_listing(&windows_listing, ctx, argc, argv);
}

int cmd_followups(const ctl_context *ctx, int argc, char **argv)
{
    return run_listing(&followups_listing, ctx, argc, argv);
}
