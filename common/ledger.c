/*
 * ledger: see ledger.h.
 */
#include "error.h"
#include "ledger.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Runs sql with text parameters; the result when it has status want, else NULL with err. */
static PGresult *run(PGconn *conn, const char *sql, int n, const char *const *values,
                     ExecStatusType want, char *err, size_t errlen)
{
    PGresult *res = PQexecParams(conn, sql, n, NULL, values, NULL, NULL, 0);
    if (res != NULL && PQresultStatus(res) == want)
        return res;
    const char *msg = res != NULL ? PQresultErrorMessage(res) : PQerrorMessage(conn);
    error_set(err, errlen, "PostgreSQL: %.*s", (int)strcspn(msg, "\n"), msg);
    PQclear(res);
    return NULL;
}

/* Text forms of a record's position for the parameters. */
typedef struct pos_text {
    char part[16];
    char off[24];
} pos_text;

static pos_text pos(int32_t partition, int64_t offset)
{
    pos_text p;
    snprintf(p.part, sizeof(p.part), "%d", (int)partition);
    snprintf(p.off, sizeof(p.off), "%" PRId64, offset);
    return p;
}

int ledger_lock(PGconn *conn, const char *dlq_topic, int wait_ms, char *err, size_t errlen)
{
    char timeout[32];
    snprintf(timeout, sizeof(timeout), "%d", wait_ms);
    const char *set_args[] = {timeout};
    PGresult *res = run(conn, "SELECT set_config('lock_timeout', $1, false)", 1, set_args,
                        PGRES_TUPLES_OK, err, errlen);
    if (res == NULL)
        return -1;
    PQclear(res);
    /* The key is namespaced so it cannot meet another advisory lock of Herald's. */
    const char *args[] = {dlq_topic};
    res = run(conn, "SELECT pg_advisory_lock(hashtext('herald.dlq_requeue:' || $1))", 1, args,
              PGRES_TUPLES_OK, err, errlen);
    if (res == NULL) {
        char detail[256];
        snprintf(detail, sizeof(detail), "%s", err);
        error_set(err, errlen, "another dlq requeue on %s is still running (%s)", dlq_topic,
                  detail);
        return -1;
    }
    PQclear(res);
    return 0;
}

int ledger_claim(PGconn *conn, const char *dlq_topic, int32_t partition, int64_t offset,
                 const char *to_topic, char *err, size_t errlen)
{
    pos_text p = pos(partition, offset);
    const char *args[] = {dlq_topic, p.part, p.off, to_topic};
    PGresult *res = run(conn,
                        "INSERT INTO dlq_requeues (dlq_topic, dlq_partition, dlq_offset, "
                        "requeued_to) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING 1",
                        4, args, PGRES_TUPLES_OK, err, errlen);
    if (res == NULL)
        return -1;
    int claimed = PQntuples(res) == 1;
    PQclear(res);
    return claimed;
}

int ledger_recorded(PGconn *conn, const char *dlq_topic, int32_t partition, int64_t offset,
                    char *err, size_t errlen)
{
    pos_text p = pos(partition, offset);
    const char *args[] = {dlq_topic, p.part, p.off};
    PGresult *res = run(conn,
                        "SELECT 1 FROM dlq_requeues WHERE dlq_topic = $1 AND dlq_partition = $2 "
                        "AND dlq_offset = $3",
                        3, args, PGRES_TUPLES_OK, err, errlen);
    if (res == NULL)
        return -1;
    int found = PQntuples(res) == 1;
    PQclear(res);
    return found;
}

int ledger_ack(PGconn *conn, const char *dlq_topic, int32_t partition, int64_t offset, char *err,
               size_t errlen)
{
    pos_text p = pos(partition, offset);
    const char *args[] = {dlq_topic, p.part, p.off};
    PGresult *res = run(conn,
                        "UPDATE dlq_requeues SET acked_at = now() WHERE dlq_topic = $1 AND "
                        "dlq_partition = $2 AND dlq_offset = $3",
                        3, args, PGRES_COMMAND_OK, err, errlen);
    PQclear(res);
    return res != NULL ? 0 : -1;
}

int ledger_release(PGconn *conn, const char *dlq_topic, int32_t partition, int64_t offset,
                   char *err, size_t errlen)
{
    pos_text p = pos(partition, offset);
    const char *args[] = {dlq_topic, p.part, p.off};
    PGresult *res = run(conn,
                        "DELETE FROM dlq_requeues WHERE dlq_topic = $1 AND dlq_partition = $2 "
                        "AND dlq_offset = $3 AND acked_at IS NULL",
                        3, args, PGRES_COMMAND_OK, err, errlen);
    PQclear(res);
    return res != NULL ? 0 : -1;
}

int ledger_in_doubt(PGconn *conn, const char *dlq_topic, ledger_entry **out, size_t *n, char *err,
                    size_t errlen)
{
    const char *args[] = {dlq_topic};
    *out = NULL;
    *n = 0;
    PGresult *res = run(conn,
                        "SELECT dlq_partition, dlq_offset, requeued_to, "
                        "(extract(epoch FROM requeued_at) * 1000)::bigint FROM dlq_requeues "
                        "WHERE dlq_topic = $1 AND acked_at IS NULL ORDER BY requeued_at",
                        1, args, PGRES_TUPLES_OK, err, errlen);
    if (res == NULL)
        return -1;
    int rows = PQntuples(res);
    if (rows > 0) {
        *out = calloc((size_t)rows, sizeof(**out));
        if (*out == NULL) {
            error_set(err, errlen, "out of memory");
            PQclear(res);
            return -1;
        }
    }
    for (int i = 0; i < rows; i++) {
        ledger_entry *e = &(*out)[i];
        e->partition = (int32_t)strtol(PQgetvalue(res, i, 0), NULL, 10);
        e->offset = (int64_t)strtoll(PQgetvalue(res, i, 1), NULL, 10);
        snprintf(e->to_topic, sizeof(e->to_topic), "%s", PQgetvalue(res, i, 2));
        e->claimed_ms = (int64_t)strtoll(PQgetvalue(res, i, 3), NULL, 10);
    }
    *n = (size_t)rows;
    PQclear(res);
    return 0;
}
