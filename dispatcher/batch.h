/*
 * batch: what became of one batch of the dispatcher's loop, whether it was
 * a slice of events or one broadcast expanded in chunks.  The loop decides
 * from it alone whether to commit, rewind, back off or stop.
 */
#ifndef HERALD_DISPATCHER_BATCH_H
#define HERALD_DISPATCHER_BATCH_H

#include "txn.h"

typedef enum {
    BATCH_OK = 0,   /* done; its offsets are committed with its output */
    BATCH_RETRY_PG, /* PostgreSQL failed: rewind, pause, back off (a broadcast
                       resumes from its recorded progress) */
    BATCH_ABORTED,  /* a Kafka transaction was aborted: rewind, redo */
    BATCH_STOPPED,  /* shutdown between broadcast chunks: progress kept,
                       offset not committed; rewind and exit */
    BATCH_FATAL,    /* the producer is unusable */
} batch_status;

/* The batch status a transaction's outcome means. */
static inline batch_status batch_from_txn(txn_result r)
{
    return r == TXN_OK ? BATCH_OK : r == TXN_FATAL ? BATCH_FATAL : BATCH_ABORTED;
}

#endif
