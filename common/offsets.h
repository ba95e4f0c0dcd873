/*
 * offsets: which offset of each partition may be committed, when records
 * finish out of order.
 *
 * The worker and the webhook sender have many records of a partition in
 * progress at once (sends in flight, retries being produced, rows being
 * written) and they finish in any order.  Committing offset N+1 says every
 * record up to N is done, so the committable position is the first record
 * still in progress, or one past the last record seen when none is.  This
 * is the "contiguous completion" rule: a record is done when its outcome
 * is durable (the produce to the retry topic or the DLQ was acknowledged,
 * or the row saying sent/failed was written).
 *
 * Offsets of a partition are tracked in the order they were consumed
 * (increasing); tracking a lower offset means the partition was rewound
 * (seek, reassignment) and starts it afresh.  Pure: no I/O.
 */
#ifndef HERALD_OFFSETS_H
#define HERALD_OFFSETS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct offsets offsets;

/* One partition's committable position (the next offset to consume). */
typedef struct offsets_position {
    const char *topic; /* owned by the tracker; valid until offsets_forget/free */
    int32_t partition;
    int64_t offset;
} offsets_position;

offsets *offsets_new(void) __attribute__((warn_unused_result));
void offsets_free(offsets *t);

/* Registers offset as in progress.  -1 when out of memory. */
int offsets_track(offsets *t, const char *topic, int32_t partition, int64_t offset)
    __attribute__((warn_unused_result));

/* Marks a tracked offset done; unknown offsets (forgotten partition) are ignored. */
void offsets_done(offsets *t, const char *topic, int32_t partition, int64_t offset);

/*
 * Writes up to max positions that moved since the last call into out and
 * returns how many.  Positions stay valid until the next call that changes
 * the tracker's partitions.
 */
size_t offsets_collect(offsets *t, offsets_position *out, size_t max);

/* The committable position of one partition: -1 when nothing was tracked. */
int64_t offsets_position_of(const offsets *t, const char *topic, int32_t partition);

/*
 * Moves an idle partition's position (nothing in progress) forward to the
 * consumer's position pos.  Transactional producers end every transaction
 * with a control record that the consumer skips but never returns; without
 * this the committed offset would stop one short of the end and the group's
 * lag never reach 0.  Ignored when records are in progress, when pos is not
 * ahead, or when the partition is not tracked.
 */
void offsets_advance_idle(offsets *t, const char *topic, int32_t partition, int64_t pos);

/* Drops a partition (revoked or lost): later offsets_done() for it are ignored. */
void offsets_forget(offsets *t, const char *topic, int32_t partition);

/* Records in progress on every partition. */
size_t offsets_in_progress(const offsets *t);

#endif
