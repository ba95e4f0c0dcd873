/*
 * opsstatus: the status document of `heraldctl status --json` and
 * GET /v1/ops/status — consumer lag per group and partition, the DLQ's
 * size, the retry topics' depth, each daemon's /healthz and, with a
 * database, the digest windows and follow-ups held.
 *
 * Committed offsets are read with a consumer of the group's id that never
 * subscribes (rd_kafka_committed is an OffsetFetch request), so asking
 * does not join the group nor trigger a rebalance.
 *
 * Lag, the DLQ's size and the retry depths count records: what a
 * read_committed consumer (as the daemons are) would get from the
 * committed offset (or the log start) up to the end offset.  The producers
 * are transactional, so offsets also hold commit markers and aborted
 * records, which no consumer gets: an idle partition whose last offset is a
 * marker has lag 0.  Counting reads the range (partread.h), only where it
 * spans at most OPSSTATUS_COUNT_SPAN offsets; a longer range reports the
 * offset difference, an upper bound, marked "exact": false.  A partition
 * the group never committed counts whole (the daemons start from the
 * earliest offset).
 *
 * The document:
 *   {"lag":[{"group","topic","partition","committed"|null,"end","lag","exact"}],
 *    "group_lag":{"<group>":n}, "group_lag_exact":{"<group>":bool},
 *    "dlq_size":n, "dlq_size_exact":bool,
 *    "retry_depth":{"<topic>":n}, "retry_depth_exact":{"<topic>":bool},
 *    "daemons":[{"name","addr","healthy","status"}],
 *    "digest_windows":{"open","closing","due"}|{"error"},   (with a database)
 *    "followups":{"pending","running","due"}|{"error"}}     (with a database)
 */
#ifndef HERALD_OPSSTATUS_H
#define HERALD_OPSSTATUS_H

#include <jansson.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>

#include "config.h"

#define OPSSTATUS_DAEMONS 7

/*
 * The longest offset range of one partition that is read to count its
 * records exactly.  Reading a few thousand small records takes a few
 * milliseconds from a broker nearby; a backlog longer than that is large
 * enough that its upper bound tells the operator what matters.
 */
#define OPSSTATUS_COUNT_SPAN 4096

/* The daemons asked, in the document's order. */
extern const char *const opsstatus_daemon_names[OPSSTATUS_DAEMONS];

/* Where each answers by default (the daemons' own defaults). */
#define OPSSTATUS_ADDR_GATEWAY      "127.0.0.1:8080"
#define OPSSTATUS_ADDR_DISPATCHER   "127.0.0.1:9101"
#define OPSSTATUS_ADDR_WORKER_EMAIL "127.0.0.1:9102"
#define OPSSTATUS_ADDR_WORKER_SMS   "127.0.0.1:9103"
#define OPSSTATUS_ADDR_WORKER_PUSH  "127.0.0.1:9104"
#define OPSSTATUS_ADDR_WORKER_INAPP "127.0.0.1:9105"
#define OPSSTATUS_ADDR_REALTIME     "127.0.0.1:9106"

typedef struct opsstatus_config {
    const herald_common_config *common; /* brokers and topic prefix */
    const config_kafka_props *kafka_props;
    const char *groups;                   /* comma-separated; NULL: the daemons' own groups */
    const char *addrs[OPSSTATUS_DAEMONS]; /* by opsstatus_daemon_names; NULL: skipped */
    long timeout_ms;                      /* longest wait for the broker */
    long health_timeout_ms;               /* longest wait for one /healthz */
    bool count_held;                      /* report digest windows and follow-ups */
    PGconn *conn;                         /* borrowed, for count_held; NULL: unreachable */
} opsstatus_config;

typedef enum {
    OPSSTATUS_OK = 0,
    OPSSTATUS_BAD_GROUPS, /* groups is not a list of names (err says why) */
    OPSSTATUS_TOPICS,     /* the topics' watermarks could not be read */
    OPSSTATUS_OFFSETS,    /* a group's committed offsets could not be read */
    OPSSTATUS_NOMEM,
} opsstatus_result;

/*
 * Gathers the document into *out (the caller owns it).  On anything but
 * OPSSTATUS_OK, *out is NULL and err says what failed.  Blocks up to the
 * broker's timeout and each daemon's health timeout.  Calls libcurl: the
 * program has set it up (curl_global_init) before any thread does.
 */
opsstatus_result opsstatus_collect(const opsstatus_config *c, json_t **out, char *err,
                                   size_t errlen) __attribute__((warn_unused_result));

/* Checks a comma-separated group list (a config check); NULL or "" is fine. */
int opsstatus_check_groups(const char *list, char *err, size_t errlen);

#endif
