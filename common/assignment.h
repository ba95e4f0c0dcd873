/*
 * assignment: the partitions a consumer group member holds now, each with
 * an epoch, for the daemons that keep records of a partition in progress
 * past a rebalance (the channel worker, the webhook sender).
 *
 * A record read from a partition carries the partition's epoch at that
 * time.  When the partition is revoked and later assigned again, it gets a
 * new epoch, so work begun under the old assignment is recognised as no
 * longer ours (another member has the partition and will redo it) and its
 * offset is never stored.  Revocation also forgets the partition's
 * committable position in the offsets tracker.
 *
 * The topics are a fixed small set named at init; a part refers to one by
 * its index.  The struct is open because the daemons walk the parts on
 * their hot path (pausing, lag); only this module adds or removes parts.
 * Pure bookkeeping: no I/O, called from the rebalance callback's thread.
 */
#ifndef HERALD_ASSIGNMENT_H
#define HERALD_ASSIGNMENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "offsets.h"

#define ASSIGNMENT_MAX_TOPICS 8

typedef struct assignment_part {
    int topic; /* index into the topics given to assignment_init */
    int32_t partition;
    uint64_t epoch;
    bool paused; /* the owner's; a new assignment starts unpaused */
} assignment_part;

typedef struct assignment {
    const char *topics[ASSIGNMENT_MAX_TOPICS]; /* the caller's; must outlive this */
    int ntopics;
    assignment_part *parts;
    size_t nparts, capparts;
    uint64_t epoch_seq;
} assignment;

/* An empty assignment over ntopics (<= ASSIGNMENT_MAX_TOPICS) topic names. */
void assignment_init(assignment *a, const char *const *topics, int ntopics);
void assignment_free(assignment *a);

/* The index of a topic name, or -1 when it is not one of ours. */
int assignment_topic(const assignment *a, const char *name);

/* The part for (topic index, partition), or NULL when it is not assigned. */
assignment_part *assignment_find(assignment *a, int topic, int32_t partition);

/* Whether work read under epoch is still ours. */
bool assignment_live(assignment *a, int topic, int32_t partition, uint64_t epoch);

/*
 * Applies a rebalance: assigned_now adds the list's partitions of our
 * topics with fresh epochs; otherwise it removes them and forgets their
 * positions in offs (may be NULL).  -1 when out of memory (the assignment
 * is then incomplete: the caller must stop).
 */
int assignment_rebalance(assignment *a, bool assigned_now, const rd_kafka_topic_partition_list_t *l,
                         offsets *offs) __attribute__((warn_unused_result));

#endif
