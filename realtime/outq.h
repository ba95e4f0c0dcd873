/*
 * outq: the events waiting to be written to one WebSocket connection, and
 * the rule that keeps a client from seeing a change twice.
 *
 * Each connection remembers the highest seq it has been given.  A live
 * event at or below it is skipped: the client already has that change
 * (from the catch-up that ran at connect, or from an earlier record of the
 * same change), so the stream it sees is strictly increasing in seq.
 *
 * The queue of live events is bounded: a client that reads slower than its
 * inbox changes fills it, and the connection is closed instead of the
 * queue growing (the client reconnects and catches up from PostgreSQL).
 * What is queued at connect (the counts and the catch-up, at most
 * OUTQ_INITIAL_MAX frames) does not count against the bound.
 *
 * Pure logic, one thread; the queue holds a reference to each frame.
 */
#ifndef HERALD_OUTQ_H
#define HERALD_OUTQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rtframe.h"

/* The counts, up to INBOX_UPDATE_IDS_MAX catch-up events, or a reset. */
#define OUTQ_INITIAL_MAX 202

typedef struct outq_node outq_node;

typedef struct outq {
    outq_node *head, *tail;
    size_t nlive;  /* live events queued */
    size_t ntotal; /* all queued */
    size_t cap;    /* most live events queued */
    int64_t seq;   /* the highest seq given to the client (queued or written) */
} outq;

typedef enum {
    OUTQ_QUEUED = 0,
    OUTQ_SKIPPED, /* seq not above what the client was given: a change it has */
    OUTQ_FULL,    /* the client is too slow: close it */
    OUTQ_NOMEM,
} outq_result;

void outq_init(outq *q, size_t cap);

/* Drops what is queued. */
void outq_fini(outq *q);

/*
 * Queues an event of the connect-time snapshot (counts, catch-up, reset),
 * whatever its seq (several catch-up events may share none) and outside
 * the bound; raises q->seq to f->seq.  OUTQ_QUEUED or OUTQ_NOMEM.
 */
outq_result outq_push_initial(outq *q, rtframe *f) __attribute__((warn_unused_result));

/* Queues a live event under the seq rule and the bound. */
outq_result outq_offer(outq *q, rtframe *f) __attribute__((warn_unused_result));

/* The next frame to write, still queued; NULL when empty. */
rtframe *outq_peek(const outq *q);

/* Drops the frame outq_peek() returned. */
void outq_pop(outq *q);

static inline bool outq_empty(const outq *q)
{
    return q->head == NULL;
}

const char *outq_result_name(outq_result r);

#endif
