/*
 * pgpool: a handful of pg_conn shared by the HTTP worker threads.
 *
 * A pg_conn is single-threaded, and the gateway serves requests on several
 * threads, so each request borrows a whole connection for the few
 * statements it runs and gives it back.  Connections are opened on first
 * use and re-opened by pg.c after a failure; a borrower waits at most the
 * given time for a free one, so a stalled database turns into 503s rather
 * than into a pile of blocked workers.
 */
#ifndef HERALD_PGPOOL_H
#define HERALD_PGPOOL_H

#include "pg.h"

#include <stddef.h>

typedef struct pgpool pgpool;

/* Called once on every fresh connection, e.g. to prepare statements. */
typedef int (*pgpool_setup_fn)(pg_conn *c, char *err, size_t errlen);

/*
 * A pool of size connections to url (copied).  reconnect_wait_ms bounds how
 * long one request may spend reconnecting.  Connects nothing yet.
 */
pgpool *pgpool_new(const char *url, size_t size, int reconnect_wait_ms, pgpool_setup_fn setup,
                   char *err, size_t errlen) __attribute__((warn_unused_result));

/*
 * Borrows a connection, waiting up to wait_ms for one to be free and then
 * connecting it if needed.  NULL with err set when none could be had.
 */
pg_conn *pgpool_acquire(pgpool *p, int wait_ms, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Gives c back (rolling back a transaction left open).  NULL is a no-op. */
void pgpool_release(pgpool *p, pg_conn *c);

/* Closes every connection; none may be borrowed.  NULL is a no-op. */
void pgpool_free(pgpool *p);

#endif
