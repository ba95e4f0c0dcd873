/*
 * heraldctl inbox purge: the inbox's retention (docs/inapp.md).
 *
 *   heraldctl inbox purge [--older-than DURATION] [--batch N]
 *
 * Deletes the messages created more than --older-than ago (default
 * HERALD_INBOX_RETENTION, 90 days) in batches of --batch, each batch one
 * transaction that holds the inbox_state locks of its users, so the counts
 * stay exact while marks and new messages go on: the same lock every other
 * change of an inbox takes (store.c, the in-app worker).  Run it from cron;
 * a purge does not take a seq number (nothing a client holds changed: the
 * messages are older than any page it shows) and announces nothing.
 *
 * A command rather than a gateway thread: the gateway serves requests and
 * runs no timers, and one purge per deployment, not one per gateway, is
 * what retention needs.
 */
#include "cmd.h"

#include "timeutil.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define INBOX_USAGE "usage: heraldctl inbox purge [--older-than DURATION] [--batch N]"

#define UNREAD "(m.archived_at IS NULL AND m.read_at IS NULL)"
#define UNSEEN "(m.archived_at IS NULL AND m.seen_at IS NULL)"

/* The users of the next batch: the oldest messages past the cutoff $1, $2 of them. */
#define BATCH_USERS                                                                                \
    "(SELECT DISTINCT b.user_id FROM (SELECT user_id FROM inbox_messages "                         \
    "WHERE created_at < $1::timestamptz ORDER BY created_at LIMIT $2::int) b)"

/* Users whose inbox never changed get their state row first, so that it can be locked. */
static const char create_sql[] =
    "INSERT INTO inbox_state (user_id, seq, unread, unseen) "
    "SELECT m.user_id, coalesce(max(m.seq), 0), count(*) FILTER (WHERE " UNREAD "), "
    "count(*) FILTER (WHERE " UNSEEN ") FROM inbox_messages m "
    "WHERE m.user_id IN " BATCH_USERS
    " AND NOT EXISTS (SELECT 1 FROM inbox_state s WHERE s.user_id = m.user_id) "
    "GROUP BY m.user_id ON CONFLICT (user_id) DO NOTHING";

/* In user order, as every purge locks them, so two purges cannot deadlock. */
static const char lock_sql[] =
    "SELECT user_id FROM inbox_state WHERE user_id IN " BATCH_USERS " ORDER BY user_id FOR UPDATE";

/* Deletes the batch of the locked users $3 and takes what it removed off their counts. */
static const char delete_sql[] =
    "WITH del AS (DELETE FROM inbox_messages m WHERE m.message_id IN ("
    "SELECT message_id FROM inbox_messages WHERE created_at < $1::timestamptz "
    "AND user_id = ANY ($3::text[]) ORDER BY created_at LIMIT $2::int) "
    "RETURNING m.user_id, " UNREAD "::int AS u, " UNSEEN "::int AS s), "
    "agg AS (SELECT user_id, sum(u) AS u, sum(s) AS s, count(*) AS n FROM del GROUP BY user_id), "
    "upd AS (UPDATE inbox_state st SET unread = st.unread - agg.u, unseen = st.unseen - agg.s, "
    "updated_at = now() FROM agg WHERE st.user_id = agg.user_id) "
    "SELECT coalesce(sum(n), 0) FROM agg";

typedef struct purge_flags {
    long older_than_ms;
    long batch;
} purge_flags;

static const config_var purge_vars[] = {
    {.env = "HERALD_INBOX_RETENTION",
     .flag = "older-than",
     .type = CONFIG_DURATION,
     .def = "2160h",
     .offset = offsetof(purge_flags, older_than_ms),
     .min = 3600000,
     .max = 3153600000000L,
     .help = "delete inbox messages created longer ago than this (default 90 days)"},
    {.flag = "batch",
     .type = CONFIG_INT,
     .def = "1000",
     .offset = offsetof(purge_flags, batch),
     .min = 1,
     .max = 100000,
     .help = "messages deleted per transaction"},
    {0},
};

/* Runs sql with params; the result, or NULL after one line on stderr. */
static PGresult *exec(PGconn *conn, const char *sql, int n, const char *const *params,
                      ExecStatusType want)
{
    PGresult *res = PQexecParams(conn, sql, n, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != want) {
        fprintf(stderr, "heraldctl inbox purge: %s", PQerrorMessage(conn));
        PQclear(res);
        return NULL;
    }
    return res;
}

/* "{a,b}" of the first column (user ids hold no commas, braces or quotes); malloc'd. */
static char *text_array(PGresult *res)
{
    size_t len = 3;
    for (int i = 0; i < PQntuples(res); i++)
        len += (size_t)PQgetlength(res, i, 0) + 1;
    char *s = malloc(len);
    if (s == NULL)
        return NULL;
    size_t o = 0;
    s[o++] = '{';
    for (int i = 0; i < PQntuples(res); i++) {
        if (i > 0)
            s[o++] = ',';
        memcpy(s + o, PQgetvalue(res, i, 0), (size_t)PQgetlength(res, i, 0));
        o += (size_t)PQgetlength(res, i, 0);
    }
    s[o++] = '}';
    s[o] = '\0';
    return s;
}

/* One batch in one transaction; the messages it deleted, or -1 after a line on stderr. */
static long purge_batch(PGconn *conn, const char *cutoff, const char *batch)
{
    PGresult *res = NULL;
    char *users = NULL;
    long deleted = -1;
    const char *params[3] = {cutoff, batch, NULL};
    if ((res = exec(conn, "BEGIN", 0, NULL, PGRES_COMMAND_OK)) == NULL)
        return -1;
    PQclear(res);
    if ((res = exec(conn, create_sql, 2, params, PGRES_COMMAND_OK)) == NULL)
        goto out;
    PQclear(res);
    if ((res = exec(conn, lock_sql, 2, params, PGRES_TUPLES_OK)) == NULL)
        goto out;
    users = text_array(res);
    PQclear(res);
    if (users == NULL) {
        fprintf(stderr, "heraldctl inbox purge: out of memory\n");
        goto out;
    }
    params[2] = users;
    if ((res = exec(conn, delete_sql, 3, params, PGRES_TUPLES_OK)) == NULL)
        goto out;
    long n = strtol(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    if ((res = exec(conn, "COMMIT", 0, NULL, PGRES_COMMAND_OK)) == NULL)
        goto out;
    PQclear(res);
    deleted = n;
out:
    if (deleted < 0)
        PQclear(PQexec(conn, "ROLLBACK"));
    free(users);
    return deleted;
}

static int inbox_purge(const ctl_context *ctx, int argc, char **argv)
{
    purge_flags f = {0};
    PGconn *conn = NULL;
    char cutoff[32], batch[16];
    int rc = ctl_parse_only_flags("inbox purge", INBOX_USAGE, purge_vars, &f, argc, argv);
    if (rc >= 0)
        return rc;
    rc = CTL_EXIT_FAILURE;
    if ((conn = ctl_pg_connect(ctx)) == NULL)
        goto out;
    timeutil_format_rfc3339(timeutil_now_ms() - f.older_than_ms, cutoff, sizeof cutoff);
    snprintf(batch, sizeof batch, "%ld", f.batch);
    long total = 0, n;
    /* A batch smaller than asked was the last one past the cutoff. */
    do {
        if ((n = purge_batch(conn, cutoff, batch)) < 0)
            goto out;
        total += n;
    } while (n == f.batch);
    printf("%ld\n", total);
    fprintf(stderr, "deleted %ld inbox messages created before %s\n", total, cutoff);
    rc = CTL_EXIT_OK;
out:
    PQfinish(conn);
    return rc;
}

int cmd_inbox(const ctl_context *ctx, int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "heraldctl inbox: expected purge (see heraldctl inbox --help)\n");
        return CTL_EXIT_USAGE;
    }
    const char *sub = argv[1];
    if (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0) {
        printf("%s\n", INBOX_USAGE);
        return CTL_EXIT_OK;
    }
    if (strcmp(sub, "purge") == 0)
        return inbox_purge(ctx, argc - 1, argv + 1);
    fprintf(stderr, "heraldctl inbox: unknown subcommand \"%s\" (purge)\n", sub);
    return CTL_EXIT_USAGE;
}
