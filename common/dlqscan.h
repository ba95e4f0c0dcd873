/*
 * dlqscan: reading the dead-letter topic into dlqrec records, for
 * `heraldctl dlq list/show/stats/requeue` and the gateway's /v1/dlq.
 *
 * Two ways to read:
 * - dlqscan_run calls a visitor for every record of a range that matches a
 *   filter, in per-partition order (what the CLI prints, counts, requeues);
 * - dlqscan_page returns one page of matching records in timestamp order
 *   across partitions, and an opaque cursor for the next page (the API).
 *   It reads no more of each partition than the page can use, so a page
 *   costs about the same whatever the size of the topic.
 * Neither joins a consumer group (partread.h).
 */
#ifndef HERALD_DLQSCAN_H
#define HERALD_DLQSCAN_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "config.h"
#include "dlqrec.h"
#include "partread.h"

typedef enum {
    DLQSCAN_OK = 0,
    DLQSCAN_MISSING = 1,     /* no such topic, partition or offset: err says which */
    DLQSCAN_UNREACHABLE = 2, /* the cluster did not answer opening the reader */
    DLQSCAN_READ_FAILED = 3, /* reading stopped on a broker error */
    DLQSCAN_FAILED = 4,      /* out of memory, a record that is not one, or the visitor failed */
    DLQSCAN_BAD_CURSOR = 5,  /* dlqscan_page: the cursor is not one it gave */
} dlqscan_status;

/* Where the DLQ is and how long a broker call may take. */
typedef struct dlqscan_source {
    const char *brokers;
    const config_kafka_props *props;
    const char *topic;
    int timeout_ms;
} dlqscan_source;

/* Called per matching record; returns 0 to go on, 1 to stop, -1 on failure. */
typedef int (*dlqscan_visit_fn)(dlqrec *rec, void *opaque);

/*
 * Reads range of the DLQ and calls visit for each record matching f (NULL:
 * all).  A visitor that returns -1 has reported its own failure: err is
 * then "".  The timeout in range is the one used.
 */
dlqscan_status dlqscan_run(const dlqscan_source *src, const partread_range *range,
                           const dlqrec_filter *f, dlqscan_visit_fn visit, void *opaque, char *err,
                           size_t errlen) __attribute__((warn_unused_result));

/* Bounds of a page; a cursor is at most this long. */
#define DLQSCAN_PAGE_MAX   500
#define DLQSCAN_CURSOR_MAX 8192

/*
 * One page: at most limit (1..DLQSCAN_PAGE_MAX) records matching f (its
 * since/until bound the read too), oldest first by record timestamp, ties
 * by partition and offset; after is NULL for the first page, else a cursor
 * this function returned.  *records gets a new JSON array of
 * dlqrec_to_json objects, each with "id":"P:O"; next (DLQSCAN_CURSOR_MAX
 * bytes) the next page's cursor, "" when no matching record is left.
 */
dlqscan_status dlqscan_page(const dlqscan_source *src, const dlqrec_filter *f, const char *after,
                            size_t limit, json_t **records, char *next, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* "P:O" of a record, the id the API uses. */
char *dlqscan_id(const dlqrec *r, char *out, size_t outlen);

#endif
