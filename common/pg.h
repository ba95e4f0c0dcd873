/*
 * pg: one PostgreSQL connection that survives server restarts.
 *
 * A pg_conn owns its PGconn, the registry of its prepared statements and the
 * knowledge of whether a transaction is open.  When the connection breaks
 * (PQstatus CONNECTION_BAD, SQLSTATE class 08, 57P01 admin_shutdown, 57P02
 * crash_shutdown, 57P03 cannot_connect_now) it reconnects with capped
 * exponential backoff, within a bounded total wait, and re-prepares the
 * registered statements on first use.
 *
 * It never re-runs a statement that reached the server: the statement may
 * have committed, and only the caller knows whether redoing it is safe.  It
 * reports PG_RETRY instead, and the caller redoes its transaction.  The one
 * exception is a statement outside a transaction on a connection already
 * known to be broken before sending: it reconnects first, then runs it.
 *
 * Passwords never reach logs or error messages (log_redact_url()).
 * A pg_conn is not thread-safe: one per thread.
 */
#ifndef HERALD_PG_H
#define HERALD_PG_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#define PG_MUSTCHECK __attribute__((warn_unused_result))

typedef struct pg_conn pg_conn;

typedef enum {
    PG_OK = 0,
    PG_RETRY, /* connection lost and re-established: redo the whole transaction */
    PG_ERROR, /* the statement failed (pg_last_sqlstate() says why); connection fine */
    PG_DOWN,  /* connection lost and not back within max_wait_ms (a transaction is lost too) */
} pg_status;

/* Zero fields take the default in brackets. */
typedef struct pg_options {
    int connect_timeout_s;        /* one attempt [5]; libpq rounds below 2 up to 2 */
    int max_wait_ms;              /* total time spent (re)connecting before PG_DOWN [30000] */
    int backoff_initial_ms;       /* first pause between attempts [100], doubling... */
    int backoff_max_ms;           /* ...up to [2000] */
    const char *application_name; /* [the URL's, else "herald"] */
    /* When non-NULL and set (e.g. by SIGTERM), (re)connecting gives up at once. */
    const volatile sig_atomic_t *stop;
} pg_options;

/*
 * Connects to url (a postgresql:// URL or "key=value" string), retrying with
 * backoff for up to max_wait_ms (plus one connect_timeout_s).  opt may be
 * NULL; it is copied, but opt->stop is kept as a pointer.  Returns NULL when
 * the server could not be reached in time (PG_DOWN) or url is malformed; err
 * says which, with the password redacted.  The caller owns the result:
 * pg_close().
 */
pg_conn *pg_connect(const char *url, const pg_options *opt, char *err, size_t errlen) PG_MUSTCHECK;

/* Closes the connection and frees c (an open transaction rolls back).  NULL is a no-op. */
void pg_close(pg_conn *c);

/*
 * Registers a statement under name and prepares it now, so that SQL errors
 * show at startup.  Registering the same name and SQL again is a no-op; the
 * same name with other SQL is PG_ERROR.  It is re-prepared transparently
 * after a reconnect.  PG_RETRY only when a transaction was open (it is lost).
 */
pg_status pg_prepare(pg_conn *c, const char *name, const char *sql, int nparams, char *err,
                     size_t errlen) PG_MUSTCHECK;

/*
 * Executes a registered statement (arguments as PQexecPrepared; lengths and
 * formats may be NULL for text).  On PG_OK and out non-NULL, *out is the
 * result, owned by the caller (PQclear); otherwise *out is NULL.
 */
pg_status pg_exec_prepared(pg_conn *c, const char *name, int nparams, const char *const *values,
                           const int *lengths, const int *formats, int result_format,
                           PGresult **out, char *err, size_t errlen) PG_MUSTCHECK;

/* Runs a simple statement (or several separated by ';'), discarding results. */
pg_status pg_exec(pg_conn *c, const char *sql, char *err, size_t errlen) PG_MUSTCHECK;

/*
 * Runs a one-off parameterised statement ($1.. as text, results as text),
 * for ad-hoc queries not worth a registered name.  out as pg_exec_prepared().
 */
pg_status pg_query(pg_conn *c, const char *sql, int nparams, const char *const *values,
                   PGresult **out, char *err, size_t errlen) PG_MUSTCHECK;

/*
 * Text parameters of one statement, built in order ($1, $2, ...) and run
 * with pg_query_params.  A failed addition (out of memory, or more than
 * PG_PARAMS_MAX) is remembered and reported by the run, so callers add
 * without checking each step.  `pg_params p = {0};` is empty; free with
 * pg_params_free.
 */
#define PG_PARAMS_MAX 12
typedef struct pg_params {
    const char *v[PG_PARAMS_MAX];
    char *owned[PG_PARAMS_MAX];
    char num[PG_PARAMS_MAX][24];
    int n;
    bool failed;
} pg_params;

void pg_params_text(pg_params *p, const char *s); /* borrowed: must outlive the run */
void pg_params_own(pg_params *p, char *s); /* a malloc()ed string, freed with p; NULL fails */
void pg_params_int(pg_params *p, int64_t v);
void pg_params_int_array(pg_params *p, const int32_t *v, size_t n); /* "{1,2,3}" for int[] */
void pg_params_free(pg_params *p);

/* pg_query with p's parameters; PG_ERROR ("out of memory") when an addition failed. */
pg_status pg_query_params(pg_conn *c, const char *sql, const pg_params *p, PGresult **out,
                          char *err, size_t errlen) PG_MUSTCHECK;

/*
 * Transactions.  After PG_ERROR inside a transaction it is aborted: roll
 * back.  pg_commit() reports PG_ERROR (SQLSTATE 25P02) when the server rolled
 * back instead because of an earlier error, and PG_RETRY when the connection
 * broke during COMMIT, in which case the outcome is unknown: the redo must
 * be idempotent.  pg_rollback() after a lost connection is PG_OK once
 * reconnected (the server rolled back).
 */
pg_status pg_begin(pg_conn *c, char *err, size_t errlen) PG_MUSTCHECK;
pg_status pg_commit(pg_conn *c, char *err, size_t errlen) PG_MUSTCHECK;
pg_status pg_rollback(pg_conn *c, char *err, size_t errlen) PG_MUSTCHECK;

/* True inside a transaction (begun by pg_begin() or a statement). */
bool pg_in_transaction(const pg_conn *c);

/*
 * True when the connection is usable.  Without blocking, it first reads what
 * the server sent while the connection was idle, so a backend that was
 * terminated or a server that shut down shows here (for readiness checks).
 */
bool pg_ok(pg_conn *c);

/* Drops the connection and reconnects with backoff: PG_OK or PG_DOWN. */
pg_status pg_reset(pg_conn *c, char *err, size_t errlen) PG_MUSTCHECK;

/* The SQLSTATE of the last failed call ("" after success), e.g. "23505". */
const char *pg_last_sqlstate(const pg_conn *c);

/* "ok", "retry", "error", "down": for logs. */
const char *pg_status_name(pg_status st);

/*
 * The live PGconn, still owned by c, for COPY and what this module does not
 * wrap; NULL while down.  It changes on reconnect: do not keep it across
 * calls.  Leave it idle (no pending results, no COPY in progress) when done.
 */
PGconn *pg_raw(pg_conn *c);

#endif
