/*
 * bgtask: one background thread that runs one piece of work at a time for
 * the loop thread.
 *
 * The worker's PostgreSQL statements are synchronous (libpq through pg.h)
 * and take milliseconds; run inline they would stall the provider requests
 * and the consumer for as long.  Each bgtask owns its thread and its
 * context (a database connection), takes one argument at a time, and when
 * the work is done writes one byte to wake_fd so the loop's poll returns.
 * While one batch runs the next one accumulates, so batches grow with load
 * by themselves.
 *
 * Only the loop thread calls these functions.
 */
#ifndef HERALD_CHANNELS_BGTASK_H
#define HERALD_CHANNELS_BGTASK_H

#include <stdbool.h>
#include <stddef.h>

typedef struct bgtask bgtask;

/* Runs on the task's thread with the argument submitted and the task's ctx. */
typedef void (*bgtask_fn)(void *arg, void *ctx);

/* Starts the thread.  ctx stays the caller's.  NULL with err on failure. */
bgtask *bgtask_new(bgtask_fn fn, void *ctx, int wake_fd, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* True from bgtask_submit() until the finished argument is taken back. */
bool bgtask_busy(bgtask *t);

/* Hands arg to the thread; the task must not be busy. */
void bgtask_submit(bgtask *t, void *arg);

/* The argument of the finished work, once; NULL while running or idle. */
void *bgtask_take(bgtask *t);

/* Waits for the current work (its argument is then returned by bgtask_take()). */
void bgtask_wait(bgtask *t);

/* Waits for the current work, stops the thread, frees t (NULL is a no-op).
 * An argument finished but not taken is returned through *leftover (may be NULL). */
void bgtask_free(bgtask *t, void **leftover);

#endif
