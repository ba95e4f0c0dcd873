/*
 * pg: a PGconn that reconnects, keeps its prepared statements and tells the
 * caller when its transaction was lost.  See pg.h for the contract.
 */
#include "pg.h"
#include "error.h"
#include "vec.h"

#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"

#define DEFAULT_CONNECT_TIMEOUT_S  5
#define DEFAULT_MAX_WAIT_MS        30000
#define DEFAULT_BACKOFF_INITIAL_MS 100
#define DEFAULT_BACKOFF_MAX_MS     2000

typedef struct pg_stmt {
    char *name;
    char *sql;
    int nparams;
    unsigned gen; /* connection generation it was prepared on; 0: never */
} pg_stmt;

struct pg_conn {
    PGconn *conn; /* NULL while down */
    char *url;
    char shown[512]; /* url with the password redacted: the only form we print */
    pg_options opt;
    unsigned gen; /* bumped on every new connection: invalidates preparations */
    bool txn_open;
    char sqlstate[6];
    pg_stmt *stmts;
    size_t nstmts, capstmts;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    /* A signal cuts the pause short: the caller's stop flag is checked next. */
    (void)nanosleep(&ts, NULL);
}

static bool stopping(const pg_conn *c)
{
    return c->opt.stop != NULL && *c->opt.stop != 0;
}

/* libpq's messages span lines ("...failed: ...\n\tIs the server running"): one line for logs. */
static void one_line(char *dst, size_t dstlen, const char *src)
{
    size_t j = 0;
    bool space = false;
    for (size_t i = 0; src != NULL && src[i] != '\0' && j + 1 < dstlen; i++) {
        char ch = src[i];
        if (ch == '\n' || ch == '\t' || ch == '\r' || ch == ' ') {
            space = j > 0;
            continue;
        }
        if (space && j + 2 < dstlen)
            dst[j++] = ' ';
        space = false;
        dst[j++] = ch;
    }
    dst[j] = '\0';
}

const char *pg_status_name(pg_status st)
{
    switch (st) {
    case PG_OK:
        return "ok";
    case PG_RETRY:
        return "retry";
    case PG_ERROR:
        return "error";
    case PG_DOWN:
        return "down";
    }
    return "unknown";
}

/* ------------------------------------------------------------- connecting */

/* Server notices would otherwise go straight to stderr, bypassing log.h. */
static void notice_receiver(void *arg, const PGresult *res)
{
    (void)arg;
    const char *sev = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
    const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
    if (msg == NULL)
        return;
    if (sev != NULL &&
        (strcmp(sev, "WARNING") == 0 || strcmp(sev, "FATAL") == 0 || strcmp(sev, "PANIC") == 0))
        LOG_WARN("pg", "server warning: %s", msg);
    else
        LOG_DEBUG("pg", "server %s: %s", sev != NULL ? sev : "notice", msg);
}

static PGconn *connect_once(const pg_conn *c, int timeout_s)
{
    char timeout[16];
    snprintf(timeout, sizeof(timeout), "%d", timeout_s);
    /*
     * Keywords after "dbname" override what the expanded URL says: our
     * connect_timeout must win, or the bound on the total wait would not hold.
     */
    const char *keys[5] = {"dbname", "connect_timeout", "fallback_application_name", NULL, NULL};
    const char *vals[5] = {c->url, timeout, "herald", NULL, NULL};
    if (c->opt.application_name != NULL) {
        keys[3] = "application_name";
        vals[3] = c->opt.application_name;
    }
    return PQconnectdbParams(keys, vals, 1);
}

/*
 * Tries until connected, stopped, or max_wait_ms is spent.  Every failure
 * pauses a little longer (capped), so a restarting server is not hammered
 * and a long outage costs few attempts.
 */
static PGconn *connect_with_backoff(pg_conn *c, char *err, size_t errlen)
{
    int64_t start = now_ms();
    int64_t deadline = start + c->opt.max_wait_ms;
    int delay = c->opt.backoff_initial_ms;
    char last[512] = "";
    int attempt;

    for (attempt = 1;; attempt++) {
        int64_t left_ms = deadline - now_ms();
        int timeout_s = c->opt.connect_timeout_s;
        if (left_ms > 0 && (left_ms + 999) / 1000 < timeout_s)
            timeout_s = (int)((left_ms + 999) / 1000);
        PGconn *conn = connect_once(c, timeout_s);
        if (conn != NULL && PQstatus(conn) == CONNECTION_OK) {
            PQsetNoticeReceiver(conn, notice_receiver, NULL);
            if (attempt > 1)
                LOG_INFO("pg", "connected to %s after %d attempts", c->shown, attempt);
            return conn;
        }
        one_line(last, sizeof(last), conn != NULL ? PQerrorMessage(conn) : "out of memory");
        PQfinish(conn);

        left_ms = deadline - now_ms();
        if (left_ms <= 0 || stopping(c))
            break;
        int pause = delay < left_ms ? delay : (int)left_ms;
        LOG_WARN("pg", "cannot connect to %s (attempt %d): %s; retrying in %d ms", c->shown,
                 attempt, last, pause);
        sleep_ms(pause);
        if (stopping(c))
            break;
        delay = delay > c->opt.backoff_max_ms / 2 ? c->opt.backoff_max_ms : delay * 2;
    }
    error_set(err, errlen, "PostgreSQL at %s unreachable (%d attempt%s in %lld ms): %s", c->shown,
              attempt, attempt == 1 ? "" : "s", (long long)(now_ms() - start), last);
    LOG_ERROR("pg", "PostgreSQL at %s unreachable (%d attempt%s in %lld ms): %s", c->shown, attempt,
              attempt == 1 ? "" : "s", (long long)(now_ms() - start), last);
    return NULL;
}

/* Replaces the connection; whatever was open on the old one is gone. */
static pg_status reconnect(pg_conn *c, char *err, size_t errlen)
{
    if (c->conn != NULL) {
        PQfinish(c->conn);
        c->conn = NULL;
    }
    c->txn_open = false;
    c->gen++;
    c->conn = connect_with_backoff(c, err, errlen);
    return c->conn != NULL ? PG_OK : PG_DOWN;
}

pg_conn *pg_connect(const char *url, const pg_options *opt, char *err, size_t errlen)
{
    pg_conn *c = NULL, *ret = NULL;
    PQconninfoOption *parsed = NULL;
    char *perr = NULL;

    if (url == NULL || *url == '\0') {
        error_set(err, errlen, "no database URL given");
        goto out;
    }
    c = calloc(1, sizeof(*c));
    if (c == NULL || (c->url = strdup(url)) == NULL) {
        error_set(err, errlen, "out of memory");
        goto out;
    }
    log_redact_url(url, c->shown, sizeof(c->shown));
    /* A malformed URL will not get better by waiting. */
    parsed = PQconninfoParse(url, &perr);
    if (parsed == NULL) {
        char why[256];
        one_line(why, sizeof(why), perr != NULL ? perr : "out of memory");
        error_set(err, errlen, "invalid database URL %s: %s", c->shown, why);
        goto out;
    }
    if (opt != NULL)
        c->opt = *opt;
    if (c->opt.connect_timeout_s <= 0)
        c->opt.connect_timeout_s = DEFAULT_CONNECT_TIMEOUT_S;
    if (c->opt.max_wait_ms <= 0)
        c->opt.max_wait_ms = DEFAULT_MAX_WAIT_MS;
    if (c->opt.backoff_initial_ms <= 0)
        c->opt.backoff_initial_ms = DEFAULT_BACKOFF_INITIAL_MS;
    if (c->opt.backoff_max_ms <= 0)
        c->opt.backoff_max_ms = DEFAULT_BACKOFF_MAX_MS;
    if (c->opt.backoff_max_ms < c->opt.backoff_initial_ms)
        c->opt.backoff_max_ms = c->opt.backoff_initial_ms;

    if (reconnect(c, err, errlen) != PG_OK)
        goto out;
    ret = c;
    c = NULL;
out:
    if (parsed != NULL)
        PQconninfoFree(parsed);
    PQfreemem(perr);
    pg_close(c);
    return ret;
}

void pg_close(pg_conn *c)
{
    if (c == NULL)
        return;
    PQfinish(c->conn);
    for (size_t i = 0; i < c->nstmts; i++) {
        free(c->stmts[i].name);
        free(c->stmts[i].sql);
    }
    free(c->stmts);
    free(c->url);
    free(c);
}

/* -------------------------------------------------------------- executing */

static bool txn_open_now(const pg_conn *c)
{
    PGTransactionStatusType ts = PQtransactionStatus(c->conn);
    return ts == PQTRANS_INTRANS || ts == PQTRANS_INERROR;
}

/*
 * Connection failure, as opposed to a failed statement: libpq lost the
 * socket, or the server says the session is over (class 08), is shutting
 * down (57P01 admin, 57P02 crash) or not accepting sessions yet (57P03).
 */
static bool is_connection_lost(PGconn *conn, const char *sqlstate)
{
    if (conn == NULL || PQstatus(conn) == CONNECTION_BAD)
        return true;
    if (sqlstate[0] == '0' && sqlstate[1] == '8')
        return true;
    return strcmp(sqlstate, "57P01") == 0 || strcmp(sqlstate, "57P02") == 0 ||
           strcmp(sqlstate, "57P03") == 0;
}

typedef enum { SEND_EXEC, SEND_PARAMS, SEND_PREPARE, SEND_PREPARED } send_kind;

typedef struct send_args {
    send_kind kind;
    const char *sql;
    pg_stmt *stmt;
    int nparams;
    const char *const *values;
    const int *lengths;
    const int *formats;
    int result_format;
} send_args;

/* Sends one statement and waits for its result (NULL only when out of memory). */
static PGresult *send_statement(pg_conn *c, const send_args *a)
{
    switch (a->kind) {
    case SEND_EXEC:
        return PQexec(c->conn, a->sql);
    case SEND_PARAMS:
        return PQexecParams(c->conn, a->sql, a->nparams, NULL, a->values, NULL, NULL, 0);
    case SEND_PREPARE:
        return PQprepare(c->conn, a->stmt->name, a->stmt->sql, a->stmt->nparams, NULL);
    case SEND_PREPARED:
        /* Prepared on an earlier connection: this session has never seen it. */
        if (a->stmt->gen != c->gen) {
            PGresult *r = PQprepare(c->conn, a->stmt->name, a->stmt->sql, a->stmt->nparams, NULL);
            if (PQresultStatus(r) != PGRES_COMMAND_OK)
                return r;
            PQclear(r);
            a->stmt->gen = c->gen;
        }
        return PQexecPrepared(c->conn, a->stmt->name, a->nparams, a->values, a->lengths, a->formats,
                              a->result_format);
    }
    return NULL;
}

static void abandon_copy(PGconn *conn, ExecStatusType rs)
{
    if (rs == PGRES_COPY_IN) {
        (void)PQputCopyEnd(conn, "COPY is not supported through pg_exec()");
    } else {
        char *row = NULL;
        while (PQgetCopyData(conn, &row, 0) > 0) {
            PQfreemem(row);
            row = NULL;
        }
    }
    PGresult *r;
    while ((r = PQgetResult(conn)) != NULL)
        PQclear(r);
}

/*
 * Runs one statement with the module's failure policy (see pg.h): reconnect
 * first if the connection is known broken; after sending, never run it again.
 */
static pg_status run(pg_conn *c, const char *what, const send_args *a, PGresult **out, char *err,
                     size_t errlen)
{
    PGresult *res = NULL;
    pg_status st = PG_ERROR;

    if (out != NULL)
        *out = NULL;
    c->sqlstate[0] = '\0';

    if (c->conn == NULL || PQstatus(c->conn) != CONNECTION_OK) {
        /* Known broken before sending: nothing of this statement reached the server. */
        bool had_txn = c->txn_open;
        if (reconnect(c, err, errlen) != PG_OK) {
            snprintf(c->sqlstate, sizeof(c->sqlstate), "08006");
            return PG_DOWN;
        }
        if (had_txn) {
            snprintf(c->sqlstate, sizeof(c->sqlstate), "08006");
            error_set(err, errlen, "%s: connection was lost during the transaction; reconnected",
                      what);
            return PG_RETRY;
        }
    }

    res = send_statement(c, a);
    ExecStatusType rs = PQresultStatus(res);
    if (rs == PGRES_COMMAND_OK || rs == PGRES_TUPLES_OK || rs == PGRES_EMPTY_QUERY) {
        c->txn_open = txn_open_now(c);
        if (a->kind == SEND_PREPARE)
            a->stmt->gen = c->gen;
        if (out != NULL) {
            *out = res;
            res = NULL;
        }
        st = PG_OK;
        goto out;
    }

    const char *ss = res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    snprintf(c->sqlstate, sizeof(c->sqlstate), "%s", ss != NULL ? ss : "");
    /*
     * The primary message only: DETAIL quotes row values (emails, phone
     * numbers) that have no place in logs.
     */
    const char *primary = res != NULL ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    char msg[512];
    one_line(msg, sizeof(msg), primary != NULL ? primary : PQerrorMessage(c->conn));

    if (is_connection_lost(c->conn, c->sqlstate)) {
        if (c->sqlstate[0] == '\0')
            snprintf(c->sqlstate, sizeof(c->sqlstate), "08006");
        LOG_WARN("pg", "%s: connection to %s lost: %s; reconnecting", what, c->shown, msg);
        char why[512];
        if (reconnect(c, why, sizeof(why)) != PG_OK) {
            error_set(err, errlen, "%s: connection lost (%s); %s", what, msg, why);
            st = PG_DOWN;
        } else {
            error_set(err, errlen, "%s: connection lost (%s); reconnected, redo the transaction",
                      what, msg);
            st = PG_RETRY;
        }
        goto out;
    }

    if (rs == PGRES_COPY_IN || rs == PGRES_COPY_OUT) {
        /* COPY needs pg_raw(); end it here so that the connection stays usable. */
        abandon_copy(c->conn, rs);
        snprintf(msg, sizeof(msg), "COPY is not supported here: use pg_raw()");
    }
    c->txn_open = txn_open_now(c);
    error_set(err, errlen, "%s: %s%s%s%s", what, msg, c->sqlstate[0] != '\0' ? " (SQLSTATE " : "",
              c->sqlstate, c->sqlstate[0] != '\0' ? ")" : "");
    st = PG_ERROR;
out:
    PQclear(res);
    return st;
}

static pg_stmt *find_stmt(pg_conn *c, const char *name)
{
    for (size_t i = 0; i < c->nstmts; i++)
        if (strcmp(c->stmts[i].name, name) == 0)
            return &c->stmts[i];
    return NULL;
}

pg_status pg_prepare(pg_conn *c, const char *name, const char *sql, int nparams, char *err,
                     size_t errlen)
{
    if (name == NULL || *name == '\0' || sql == NULL || nparams < 0) {
        error_set(err, errlen, "prepare: a name, SQL and nparams >= 0 are required");
        return PG_ERROR;
    }
    pg_stmt *s = find_stmt(c, name);
    if (s != NULL) {
        if (strcmp(s->sql, sql) != 0 || s->nparams != nparams) {
            error_set(err, errlen, "prepare %s: already registered with other SQL", name);
            return PG_ERROR;
        }
        if (s->gen == c->gen && c->conn != NULL)
            return PG_OK;
    } else {
        if (c->nstmts == c->capstmts) {
            pg_stmt *grown = vec_grow(c->stmts, &c->capstmts, sizeof(*grown));
            if (grown == NULL) {
                error_set(err, errlen, "out of memory");
                return PG_ERROR;
            }
            c->stmts = grown;
        }
        s = &c->stmts[c->nstmts];
        s->name = strdup(name);
        s->sql = strdup(sql);
        s->nparams = nparams;
        s->gen = 0;
        if (s->name == NULL || s->sql == NULL) {
            free(s->name);
            free(s->sql);
            error_set(err, errlen, "out of memory");
            return PG_ERROR;
        }
        c->nstmts++;
    }

    char what[128];
    snprintf(what, sizeof(what), "prepare %s", name);
    send_args a = {.kind = SEND_PREPARE, .stmt = s};
    bool had_txn = c->txn_open;
    pg_status st = run(c, what, &a, NULL, err, errlen);
    /* Preparing changes no data: outside a transaction, doing it again is safe. */
    if (st == PG_RETRY && !had_txn)
        st = run(c, what, &a, NULL, err, errlen);
    if (st == PG_ERROR) {
        /* Bad SQL stays bad: keep only statements the server accepted. */
        size_t i = (size_t)(s - c->stmts);
        free(s->name);
        free(s->sql);
        memmove(&c->stmts[i], &c->stmts[i + 1], (c->nstmts - i - 1) * sizeof(*s));
        c->nstmts--;
    }
    return st;
}

pg_status pg_exec_prepared(pg_conn *c, const char *name, int nparams, const char *const *values,
                           const int *lengths, const int *formats, int result_format,
                           PGresult **out, char *err, size_t errlen)
{
    if (out != NULL)
        *out = NULL;
    pg_stmt *s = name != NULL ? find_stmt(c, name) : NULL;
    if (s == NULL) {
        error_set(err, errlen, "execute %s: not prepared", name != NULL ? name : "(null)");
        return PG_ERROR;
    }
    if (nparams != s->nparams) {
        error_set(err, errlen, "execute %s: %d parameters given, %d expected", name, nparams,
                  s->nparams);
        return PG_ERROR;
    }
    char what[128];
    snprintf(what, sizeof(what), "execute %s", name);
    send_args a = {.kind = SEND_PREPARED,
                   .stmt = s,
                   .nparams = nparams,
                   .values = values,
                   .lengths = lengths,
                   .formats = formats,
                   .result_format = result_format};
    return run(c, what, &a, out, err, errlen);
}

pg_status pg_exec(pg_conn *c, const char *sql, char *err, size_t errlen)
{
    send_args a = {.kind = SEND_EXEC, .sql = sql};
    return run(c, "statement", &a, NULL, err, errlen);
}

pg_status pg_query(pg_conn *c, const char *sql, int nparams, const char *const *values,
                   PGresult **out, char *err, size_t errlen)
{
    send_args a = {.kind = SEND_PARAMS, .sql = sql, .nparams = nparams, .values = values};
    return run(c, "query", &a, out, err, errlen);
}

static bool params_room(pg_params *p)
{
    if (p->n < PG_PARAMS_MAX)
        return true;
    p->failed = true;
    return false;
}

void pg_params_text(pg_params *p, const char *s)
{
    if (params_room(p))
        p->v[p->n++] = s;
}

void pg_params_own(pg_params *p, char *s)
{
    if (s == NULL || !params_room(p)) {
        free(s);
        p->failed = true;
        return;
    }
    p->owned[p->n] = s;
    p->v[p->n++] = s;
}

void pg_params_int(pg_params *p, int64_t v)
{
    if (!params_room(p))
        return;
    snprintf(p->num[p->n], sizeof p->num[p->n], "%" PRId64, v);
    p->v[p->n] = p->num[p->n];
    p->n++;
}

void pg_params_int_array(pg_params *p, const int32_t *v, size_t n)
{
    char *s = malloc(n * 12 + 3), *w = s;
    if (s != NULL) {
        *w++ = '{';
        for (size_t i = 0; i < n; i++)
            w += sprintf(w, "%s%" PRId32, i > 0 ? "," : "", v[i]);
        *w++ = '}';
        *w = '\0';
    }
    pg_params_own(p, s);
}

void pg_params_free(pg_params *p)
{
    for (int i = 0; i < p->n; i++)
        free(p->owned[i]);
    memset(p, 0, sizeof *p);
}

pg_status pg_query_params(pg_conn *c, const char *sql, const pg_params *p, PGresult **out,
                          char *err, size_t errlen)
{
    if (p->failed) {
        if (out != NULL)
            *out = NULL;
        error_set(err, errlen, "query parameters: out of memory");
        return PG_ERROR;
    }
    return pg_query(c, sql, p->n, p->v, out, err, errlen);
}

pg_status pg_begin(pg_conn *c, char *err, size_t errlen)
{
    send_args a = {.kind = SEND_EXEC, .sql = "BEGIN"};
    return run(c, "begin", &a, NULL, err, errlen);
}

pg_status pg_commit(pg_conn *c, char *err, size_t errlen)
{
    PGresult *res = NULL;
    send_args a = {.kind = SEND_EXEC, .sql = "COMMIT"};
    pg_status st = run(c, "commit", &a, &res, err, errlen);
    if (st == PG_RETRY)
        error_set(err, errlen,
                  "commit: connection lost during COMMIT: outcome unknown, reconnected");
    /* COMMIT of a failed transaction "succeeds" with the tag ROLLBACK. */
    if (st == PG_OK && strcmp(PQcmdStatus(res), "ROLLBACK") == 0) {
        snprintf(c->sqlstate, sizeof(c->sqlstate), "25P02");
        error_set(err, errlen, "commit: the transaction had failed and was rolled back");
        st = PG_ERROR;
    }
    PQclear(res);
    return st;
}

pg_status pg_rollback(pg_conn *c, char *err, size_t errlen)
{
    /* Nothing open (e.g. the connection was lost and replaced): nothing to undo. */
    if (c->conn != NULL && PQstatus(c->conn) == CONNECTION_OK &&
        PQtransactionStatus(c->conn) == PQTRANS_IDLE) {
        c->txn_open = false;
        c->sqlstate[0] = '\0';
        return PG_OK;
    }
    send_args a = {.kind = SEND_EXEC, .sql = "ROLLBACK"};
    pg_status st = run(c, "rollback", &a, NULL, err, errlen);
    /* A transaction dies with its connection: the rollback is done. */
    return st == PG_RETRY ? PG_OK : st;
}

bool pg_in_transaction(const pg_conn *c)
{
    return c->txn_open;
}

bool pg_ok(pg_conn *c)
{
    if (c->conn == NULL || PQstatus(c->conn) != CONNECTION_OK)
        return false;
    if (PQtransactionStatus(c->conn) == PQTRANS_ACTIVE)
        return true;
    /*
     * A terminated backend sends a FATAL message, then its socket reaches
     * end-of-file once the process is gone: libpq only learns of it by
     * reading.  Read only while there is something to read: never blocks.
     */
    for (int i = 0; i < 4 && PQstatus(c->conn) == CONNECTION_OK; i++) {
        struct pollfd pfd = {.fd = PQsocket(c->conn), .events = POLLIN};
        if (poll(&pfd, 1, 0) <= 0 || PQconsumeInput(c->conn) == 0)
            break;
    }
    return PQstatus(c->conn) == CONNECTION_OK;
}

pg_status pg_reset(pg_conn *c, char *err, size_t errlen)
{
    c->sqlstate[0] = '\0';
    return reconnect(c, err, errlen);
}

const char *pg_last_sqlstate(const pg_conn *c)
{
    return c->sqlstate;
}

PGconn *pg_raw(pg_conn *c)
{
    return c->conn;
}
