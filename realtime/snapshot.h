/*
 * snapshot: the connect-time read of a user's inbox (the counts, then the
 * changes after the client's last event id, or a reset), run by a small
 * pool of threads with a PostgreSQL connection each, so that a slow query
 * or a reconnect storm never stalls the service thread and the live
 * events of every other connection (docs/inapp.md, "Live updates").
 *
 * The service thread submits a job per new connection and takes finished
 * ones back; the pool calls wake() after each, from its own thread.  A job
 * is the service thread's again only once taken: the pool touches nothing
 * of it but the inputs and the results.
 */
#ifndef HERALD_SNAPSHOT_H
#define HERALD_SNAPSHOT_H

#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "outq.h"
#include "rtframe.h"
#include "validate.h"

typedef struct snapshot_job {
    /* in */
    void *owner; /* the service thread's (its connection); the pool never reads it */
    char user_id[VALIDATE_USER_ID_MAX + 1];
    int64_t last_event_id; /* -1: none */
    /* out */
    bool ok;
    rtframe *frames[OUTQ_INITIAL_MAX]; /* the counts first; each a reference */
    size_t nframes;
    char err[256];
    struct snapshot_job *next;
} snapshot_job;

typedef struct snapshot_pool snapshot_pool;

typedef struct snapshot_options {
    const char *database_url;
    int threads;
    long statement_ms; /* longest query, and longest wait for a lost connection */
    const volatile sig_atomic_t *stop;
    atomic_bool *pg_up; /* set after each query: the database answered or not */
    void (*wake)(void *ctx);
    void *wake_ctx;
} snapshot_options;

/* Connects every thread's connection and starts them; NULL with err set. */
snapshot_pool *snapshot_pool_new(const snapshot_options *opt, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* A job for user after last_event_id; NULL when out of memory. */
snapshot_job *snapshot_job_new(void *owner, const char *user_id, int64_t last_event_id)
    __attribute__((warn_unused_result));

/* Frees the job and the frames it still holds.  NULL is a no-op. */
void snapshot_job_free(snapshot_job *j);

void snapshot_pool_submit(snapshot_pool *p, snapshot_job *j);

/* Moves up to max finished jobs into out; returns how many. */
size_t snapshot_pool_take(snapshot_pool *p, snapshot_job **out, size_t max);

/*
 * Stops the threads (a query running ends within statement_ms): no wake()
 * after it returns.  Jobs not taken back stay until snapshot_pool_free.
 * Idempotent; NULL is a no-op.
 */
void snapshot_pool_stop(snapshot_pool *p);

/* Stops the pool and frees it with every job not taken back.  NULL is a no-op. */
void snapshot_pool_free(snapshot_pool *p);

#endif
