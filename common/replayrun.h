/*
 * replayrun: one run of a replay — reads the events topic between the
 * offsets of the window's bounds on every partition, without a consumer
 * group, and re-publishes the matching events to the same topic, unchanged
 * except for the generation (replay.h) and the herald.replayed headers.
 * `heraldctl replay` and the gateway's POST /v1/replays both run it.
 *
 * The window's end is fixed when the run opens the topic, so it never
 * reads what it publishes.  The run reports through hooks, called on the
 * caller's thread: a progress line, the matches of a dry run, problems.
 */
#ifndef HERALD_REPLAYRUN_H
#define HERALD_REPLAYRUN_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "kafka.h"
#include "replay.h"

/* What a run did so far. */
typedef struct replayrun_counts {
    int64_t total; /* records in the window (an upper bound) */
    int64_t scanned, matched, published, failed, invalid;
} replayrun_counts;

typedef struct replayrun_hooks {
    void *opaque;
    /* After each record (may be NULL); false stops the run (REPLAYRUN_STOPPED). */
    bool (*progress)(void *opaque, const replayrun_counts *c);
    /* Each match of a dry run (may be NULL). */
    void (*listed)(void *opaque, const replay_info *info, int generation);
    /* Before waiting for the broker's acknowledgement of n events (may be NULL). */
    void (*awaiting)(void *opaque, int n);
    /* An event that was not re-published, or not in time (may be NULL). */
    void (*problem)(void *opaque, const char *message);
} replayrun_hooks;

typedef struct replayrun_job {
    const char *brokers;
    const config_kafka_props *props;
    const char *topic; /* the events topic, prefixed */
    replay_filter filter;
    bool redeliver;
    bool dry_run;
    int stamp;      /* replay_stamp() of the run's start */
    int timeout_ms; /* longest wait for the broker */
} replayrun_job;

typedef enum {
    REPLAYRUN_OK = 0,  /* the window was read to its end */
    REPLAYRUN_MISSING, /* no events topic (err says so) */
    REPLAYRUN_OPEN,    /* the topic could not be opened (err) */
    REPLAYRUN_READ,    /* reading stopped part way (err) */
    REPLAYRUN_STOPPED, /* the producer cannot go on (a problem said why) */
} replayrun_result;

/*
 * Runs job: publishes with p (NULL on a dry run; the run sets its delivery
 * callback), counts into *c.  Returns how it ended; with REPLAYRUN_OK,
 * whether every match was replayed is replayrun_complete().
 */
replayrun_result replayrun_run(const replayrun_job *job, kafka_producer *p,
                               const replayrun_hooks *hooks, replayrun_counts *c, char *err,
                               size_t errlen) __attribute__((warn_unused_result));

/* Whether every matching event was published (a dry run: listed) and none failed. */
bool replayrun_complete(const replayrun_job *job, const replayrun_counts *c);

/* Two redelivering runs must not share a stamp (replay.h): waits, bounded, for the next second. */
void replayrun_wait_next_stamp(int stamp);

#endif
