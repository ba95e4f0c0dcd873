/*
 * partread: reads a bounded range of every partition of one topic without
 * joining a consumer group, for the operator commands that look at a topic
 * (dlq, replay) while the daemons keep consuming it.
 *
 * Partitions are assigned with explicit start offsets (rd_kafka_assign), so
 * no group coordinator is involved, nothing is committed and no member of a
 * running group is disturbed.  librdkafka still wants a group.id on a
 * consumer; the one set here is never used to commit.
 *
 * The range of each partition is fixed when the reader opens:
 *   start: the log start, or the first offset whose timestamp is >= from_ms
 *   end:   the high watermark at open time, or the first offset whose
 *          timestamp is >= to_ms
 * so a command that writes back into the topic it reads (replay, requeue of
 * dispatcher records) never reads its own output, and a reader always
 * stops.  Reading ends at the first of: every partition reached its end,
 * every partition reported end-of-partition (transaction markers make the
 * high watermark unreachable), or no progress within the timeout.
 */
#ifndef HERALD_PARTREAD_H
#define HERALD_PARTREAD_H

#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "config.h"

typedef struct partread partread;

typedef struct partread_range {
    int64_t from_ms;   /* < 0: from the log start */
    int64_t to_ms;     /* < 0: up to the high watermark at open time */
    int32_t partition; /* >= 0: only this partition... */
    int64_t offset;    /* ...from this offset, one record (from/to ignored) */
    int timeout_ms;    /* broker calls, and the longest wait for progress */
    /* When set, partition p starts no earlier than starts[p] (p < nstarts):
     * where a previous read of the same range left off. */
    const int64_t *starts;
    int nstarts;
} partread_range;

/* A range covering every partition from the start, up to the high watermark. */
#define PARTREAD_ALL(timeout)                                                                      \
    {                                                                                              \
        .from_ms = -1, .to_ms = -1, .partition = -1, .offset = -1, .timeout_ms = (timeout)         \
    }

typedef enum {
    PARTREAD_OK = 0,       /* *out is a record */
    PARTREAD_END = 1,      /* the range is exhausted */
    PARTREAD_ERROR = -1,   /* err says why */
    PARTREAD_MISSING = -2, /* open: no such topic, partition or offset */
} partread_status;

/*
 * Opens a reader on topic.  Returns PARTREAD_OK with *out set (the caller
 * owns it: partread_close), PARTREAD_MISSING when the topic does not exist
 * or the asked partition/offset is not in it (err says which),
 * PARTREAD_ERROR when the cluster did not answer within timeout_ms.
 */
partread_status partread_open(const char *brokers, const config_kafka_props *props,
                              const char *topic, const partread_range *range, partread **out,
                              char *err, size_t errlen) __attribute__((warn_unused_result));

/*
 * The next record of the range, in per-partition order.  The caller owns
 * *out (rd_kafka_message_destroy).
 */
partread_status partread_next(partread *r, rd_kafka_message_t **out, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Records in the range (an upper bound: transaction markers count), for progress. */
int64_t partread_total(const partread *r);

/* Partitions of the topic. */
int partread_partitions(const partread *r);

/* The end of partition p's range (exclusive), fixed at open; -1 for no such partition. */
int64_t partread_end(const partread *r, int32_t p);

/*
 * Stops reading partition p: partread_next returns no more of its records,
 * and the range ends without waiting for it.  For readers that took what
 * they need from one partition early.
 */
void partread_stop(partread *r, int32_t p);

/* The underlying consumer, still owned by r (for offsets_for_times and metadata). */
rd_kafka_t *partread_rk(partread *r);

/* Closes the consumer without committing and frees r.  NULL is a no-op. */
void partread_close(partread *r);

#endif
