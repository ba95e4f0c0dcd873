/*
 * dlqrequeue: sends DLQ records back to the topic they failed on, each at
 * most once (ledger.h), for `heraldctl dlq requeue` and POST
 * /v1/dlq/requeue.
 *
 * A run selects records by position or by filter, settles first what an
 * earlier run left in doubt (so nothing is sent twice), then claims,
 * produces and acknowledges each selected record.  Every record it decides
 * about is reported to a callback with its outcome, so the CLI prints a
 * line and the API collects a result; the counts come back at the end.
 */
#ifndef HERALD_DLQREQUEUE_H
#define HERALD_DLQREQUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "config.h"
#include "dlqrec.h"
#include "dlqscan.h"

typedef enum {
    DLQREQUEUE_REQUEUED = 0, /* produced and acknowledged */
    DLQREQUEUE_ALREADY,      /* an earlier run claimed it */
    DLQREQUEUE_SKIPPED,      /* not requeueable (invalid_json, a foreign topic): error says why */
    DLQREQUEUE_FAILED,       /* certainly not written; a later run may retry */
    DLQREQUEUE_UNCONFIRMED,  /* may have been written: the next run settles it */
    DLQREQUEUE_WOULD,        /* dry run: would be requeued */
    DLQREQUEUE_SETTLED,      /* an earlier run's claim, found produced */
} dlqrequeue_outcome;

/* "requeued", "already_requeued", "skipped", "failed", "unconfirmed", "would_requeue", "settled" */
const char *dlqrequeue_outcome_name(dlqrequeue_outcome o);

typedef struct dlqrequeue_result {
    int32_t partition;
    int64_t offset;
    dlqrequeue_outcome outcome;
    const char *topic;    /* where it went or would go; "" when unknown */
    int32_t to_partition; /* REQUEUED: where it was written, else -1 */
    int64_t to_offset;
    const char *error; /* "" when none */
    const dlqrec *rec; /* the record when the outcome came from reading it, else NULL */
} dlqrequeue_result;

typedef void (*dlqrequeue_report_fn)(const dlqrequeue_result *res, void *opaque);

typedef struct dlqrequeue_opts {
    dlqscan_source src;                       /* the DLQ */
    const char *topic_prefix;                 /* records go back only to topics under it */
    const config_kafka_props *producer_props; /* the operator's, over the defaults; NULL: none */
    PGconn *conn;                /* autocommit; the run takes the ledger's lock on it */
    const dlqrec_filter *filter; /* NULL: every record (or every named one) */
    const int32_t *parts;        /* named records (npos of them), else every match */
    const int64_t *offs;
    size_t npos;
    bool dry_run;
    dlqrequeue_report_fn report; /* may be NULL */
    void *opaque;
} dlqrequeue_opts;

typedef struct dlqrequeue_counts {
    long matched; /* records selected, whatever their outcome (settled ones not) */
    long requeued, already, skipped, failed, unconfirmed, would, settled;
} dlqrequeue_counts;

typedef enum {
    DLQREQUEUE_OK = 0,
    DLQREQUEUE_ERR_KAFKA = 1, /* err: "<what failed>: <the client's reason>" */
    DLQREQUEUE_ERR_MISSING,   /* the DLQ is not there (a named record that is not: SKIPPED) */
    DLQREQUEUE_ERR_DB,        /* the ledger failed */
    DLQREQUEUE_ERR_OTHER,     /* out of memory */
} dlqrequeue_status;

/*
 * Runs one requeue.  *counts holds what was done even on failure.  For
 * DLQREQUEUE_ERR_KAFKA, *what (when not NULL) names the step that failed
 * ("cannot read the DLQ", ...) and err the client's reason.
 */
dlqrequeue_status dlqrequeue_run(const dlqrequeue_opts *o, dlqrequeue_counts *counts,
                                 const char **what, char *err, size_t errlen)
    __attribute__((warn_unused_result));

#endif
