/*
 * ledger: the dlq_requeues table, which makes `dlq requeue` send each DLQ
 * record back at most once and never lose one (migrations 001 and 005).
 *
 * Protocol, per DLQ record (docs/operations.md explains it for operators):
 *   1. claim:   INSERT ... ON CONFLICT DO NOTHING RETURNING, committed on
 *               its own.  Only the run whose insert returned a row goes on.
 *   2. produce: to the original topic, with herald.requeued_from naming the
 *               DLQ record, and wait for the broker's acknowledgement.
 *   3. ack:     acked_at = now().  A produce that certainly failed deletes
 *               the claim instead (ledger_release), so a later run retries.
 * A claim left without acked_at (crash, or a produce whose fate is unknown)
 * is "in doubt"; the next run lists them (ledger_in_doubt) and settles each
 * by looking for its herald.requeued_from in the target topic.
 *
 * Runs on one DLQ topic are serialised by a session advisory lock
 * (ledger_lock), so an in-doubt row is never settled by two runs at once.
 * All calls take a plain libpq connection in autocommit mode; every
 * statement commits on its own.
 */
#ifndef HERALD_LEDGER_H
#define HERALD_LEDGER_H

#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#define LEDGER_MUSTCHECK __attribute__((warn_unused_result))

/* Takes the session lock of dlq_topic, waiting up to wait_ms. 0 or -1 with err. */
int ledger_lock(PGconn *conn, const char *dlq_topic, int wait_ms, char *err,
                size_t errlen) LEDGER_MUSTCHECK;

/* 1 when this call claimed the record, 0 when it was claimed before, -1 on error. */
int ledger_claim(PGconn *conn, const char *dlq_topic, int32_t partition, int64_t offset,
                 const char *to_topic, char *err, size_t errlen) LEDGER_MUSTCHECK;

/* 1 when the record has a row (claimed or acknowledged), 0 when not, -1 on error. */
int ledger_recorded(PGconn *conn, const char *dlq_topic, int32_t partition, int64_t offset,
                    char *err, size_t errlen) LEDGER_MUSTCHECK;

/* Records the acknowledgement. 0 or -1. */
int ledger_ack(PGconn *conn, const char *dlq_topic, int32_t partition, int64_t offset, char *err,
               size_t errlen) LEDGER_MUSTCHECK;

/* Deletes a claim that was certainly not produced (not an acknowledged one). 0 or -1. */
int ledger_release(PGconn *conn, const char *dlq_topic, int32_t partition, int64_t offset,
                   char *err, size_t errlen) LEDGER_MUSTCHECK;

typedef struct ledger_entry {
    int32_t partition;
    int64_t offset;
    char to_topic[256];
    int64_t claimed_ms;
} ledger_entry;

/* Claims of dlq_topic without acked_at, oldest first, into *out (free()). 0 or -1. */
int ledger_in_doubt(PGconn *conn, const char *dlq_topic, ledger_entry **out, size_t *n, char *err,
                    size_t errlen) LEDGER_MUSTCHECK;

#endif
