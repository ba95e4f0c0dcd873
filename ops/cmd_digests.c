/*
 * heraldctl digests [--user U] [--limit N] [--json]
 *
 * The digest windows that are open or closing (docs/digests.md), read from
 * PostgreSQL: which rule and channel, whose, the grouping key, how many
 * events wait in it, and when it opened and closes.  Soonest to close
 * first.  Exit 1 when the database cannot be reached.
 */
#include "cmd.h"
#include "cmdutil.h"
#include "table.h"
#include "validate.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DIGESTS_USAGE "usage: heraldctl digests [--user U] [--limit N] [--json]"

#define UTC_MS(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"

static const char windows_sql[] =
    "SELECT window_id, rule_name, channel, user_id, group_key, members, " UTC_MS(
        "opened_at") ", " UTC_MS("closes_at") ", status FROM digest_windows "
                                              "WHERE status IN ('open', 'closing') "
                                              "AND ($1::text IS NULL OR user_id = $1) "
                                              "ORDER BY closes_at, window_id LIMIT $2::int";

typedef struct digests_flags {
    char *user;
    long limit;
    bool json;
} digests_flags;

static const config_var digests_vars[] = {
    {.flag = "user",
     .type = CONFIG_STRING,
     .offset = offsetof(digests_flags, user),
     .help = "only this user's windows"},
    {.flag = "limit",
     .type = CONFIG_INT,
     .def = "1000",
     .offset = offsetof(digests_flags, limit),
     .min = 1,
     .max = 100000,
     .help = "at most this many windows"},
    {.flag = "json",
     .type = CONFIG_BOOL,
     .def = "false",
     .offset = offsetof(digests_flags, json),
     .help = "print JSON instead of a table"},
    {0},
};

static const char *const headers[] = {"WINDOW_ID", "RULE",      "CHANNEL",   "USER",  "KEY",
                                      "MEMBERS",   "OPENED_AT", "CLOSES_AT", "STATUS"};
static const char *const fields[] = {"window_id", "rule",      "channel",   "user",  "key",
                                     "members",   "opened_at", "closes_at", "status"};

static int print_json(PGresult *res)
{
    json_t *list = json_array();
    for (int i = 0; list != NULL && i < PQntuples(res); i++) {
        json_t *w = json_object();
        for (int c = 0; w != NULL && c < 9; c++)
            json_object_set_new(w, fields[c],
                                c == 5 ? json_integer(strtoll(PQgetvalue(res, i, c), NULL, 10))
                                       : json_string(PQgetvalue(res, i, c)));
        json_array_append_new(list, w);
    }
    json_t *doc = json_pack("{s:o}", "windows", list);
    if (doc == NULL) {
        fprintf(stderr, "heraldctl digests: out of memory\n");
        return CTL_EXIT_FAILURE;
    }
    cmdutil_print_json(doc);
    json_decref(doc);
    return CTL_EXIT_OK;
}

static int print_table(PGresult *res)
{
    table *t = table_new(9, headers);
    int rc = CTL_EXIT_FAILURE;
    if (t == NULL)
        goto out;
    table_set_max(t, 4, 40);
    for (int i = 0; i < PQntuples(res); i++) {
        const char *cells[9];
        for (int c = 0; c < 9; c++)
            cells[c] = PQgetvalue(res, i, c);
        if (table_add(t, cells) != 0)
            goto out;
    }
    table_print(t, stdout);
    rc = CTL_EXIT_OK;
out:
    if (rc != CTL_EXIT_OK)
        fprintf(stderr, "heraldctl digests: out of memory\n");
    table_free(t);
    return rc;
}

int cmd_digests(const ctl_context *ctx, int argc, char **argv)
{
    digests_flags f = {0};
    const config_table ctable = {digests_vars, &f};
    PGconn *conn = NULL;
    PGresult *res = NULL;
    char limit[24], why[160];
    int rc = ctl_parse_only_flags("digests", DIGESTS_USAGE, digests_vars, &f, argc, argv);
    if (rc >= 0)
        goto out;
    rc = CTL_EXIT_USAGE;
    if (f.user != NULL && validate_user_id(f.user, strlen(f.user), why, sizeof why) != 0) {
        fprintf(stderr, "heraldctl digests: --user %s\n", why);
        goto out;
    }
    rc = CTL_EXIT_FAILURE;
    if ((conn = ctl_pg_connect(ctx)) == NULL)
        goto out;
    snprintf(limit, sizeof limit, "%ld", f.limit);
    const char *params[2] = {f.user, limit};
    res = PQexecParams(conn, windows_sql, 2, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        fprintf(stderr, "heraldctl digests: %s", PQerrorMessage(conn));
        goto out;
    }
    rc = f.json ? print_json(res) : print_table(res);
out:
    PQclear(res);
    PQfinish(conn);
    config_free(&ctable, 1, NULL);
    return rc;
}
