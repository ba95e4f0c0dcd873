/*
 * kafka: the one place Herald drives librdkafka.
 *
 * It owns the Herald defaults of every client (idempotent lz4 producer with
 * acks=all; cooperative-sticky consumer that commits only what the caller
 * stored), the routing of librdkafka's logs and errors into log.h, the
 * classification of librdkafka errors into what the caller should do.  The
 * transactional calls are in kafka_txn.h, the admin calls (create, describe
 * and delete topics) in kafka_admin.h.
 *
 * Passthrough: every constructor takes a config_kafka_props (the -X key=value
 * pairs and HERALD_KAFKA_OPTS collected by config.h).  They are applied after
 * Herald's defaults, so an operator can override any of them.  The producer
 * and consumer constructors also take the program's own defaults (a table
 * in the same form, or NULL), applied after Herald's and before props: a
 * program passes its table instead of merging it in front of props.
 *
 * Threads: a producer may be used from several threads for kafka_produce();
 * polling, flushing and the transactional calls belong to one thread.  A
 * consumer belongs to one thread.  The raw handles are there for what this
 * module does not wrap; do not destroy them.
 */
#ifndef HERALD_KAFKA_H
#define HERALD_KAFKA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "config.h"
#include "headers.h"

#define KAFKA_MUSTCHECK __attribute__((warn_unused_result))

/* What a call that talks to librdkafka reports. */
typedef enum {
    KAFKA_OK = 0,
    KAFKA_QUEUE_FULL,    /* local queue full: poll, then retry (a gateway answers 503) */
    KAFKA_ERR_FATAL,     /* the client is unusable: stop, flush what can be, exit non-zero */
    KAFKA_ERR,           /* this call failed; err has the detail */
    KAFKA_ERR_NOT_FOUND, /* kafka_topic_describe(): the topic does not exist */
} kafka_status;

/* What the caller should do about an error. */
typedef enum {
    KAFKA_ERRCLASS_NONE = 0,  /* no error */
    KAFKA_ERRCLASS_RETRIABLE, /* transient: retry the same operation later */
    KAFKA_ERRCLASS_ABORT_TXN, /* abort the transaction and retry the whole batch */
    KAFKA_ERRCLASS_PERMANENT, /* will fail again as is: give up on this message/call */
    KAFKA_ERRCLASS_FATAL,     /* the client instance is unusable: stop */
} kafka_err_class;

/*
 * Classifies an error code and, when the caller has one, the error object of
 * a transactional or admin call (its flags win over the code; its code is used
 * when err is NO_ERROR).  Pure: no I/O, no state.
 *
 * Delivery report codes are final: librdkafka has already retried within
 * message.timeout.ms, so UNKNOWN_TOPIC_OR_PART there means the topic is
 * really missing (PERMANENT) while _MSG_TIMED_OUT means the cluster was not
 * reachable in time (RETRIABLE).
 */
kafka_err_class kafka_classify(rd_kafka_resp_err_t err, const rd_kafka_error_t *error);

/* "retriable", "permanent", ...: for logs and tests. */
const char *kafka_err_class_name(kafka_err_class c);

/*
 * Builds a configuration: bootstrap.servers=brokers, Herald's common defaults,
 * then props (which win).  Installs a log callback that routes librdkafka's
 * logs to LOG_* and an error callback that logs errors (fatal ones at ERROR
 * with the underlying reason, which librdkafka keeps: see kafka_fatal_error()).
 * The callbacks do not use the conf's opaque, so callers may set one.
 * Returns NULL with err naming the offending property (never its value, which
 * may be a secret).  The caller owns the result (rd_kafka_new() takes it).
 */
rd_kafka_conf_t *kafka_conf_new(const char *brokers, const config_kafka_props *props, char *err,
                                size_t errlen) KAFKA_MUSTCHECK;

/*
 * Returns the fatal error raised on rk (RD_KAFKA_RESP_ERR_NO_ERROR when none)
 * and its reason in err.  Thread-safe.
 */
rd_kafka_resp_err_t kafka_fatal_error(rd_kafka_t *rk, char *err, size_t errlen);

/*
 * For command-line tools, which report failures in their own words: with
 * quiet on, librdkafka's own log lines (a refused connection, all brokers
 * down) are logged at debug level instead of as warnings and errors, and
 * the last of those warnings or errors is kept for
 * kafka_client_last_problem().  Affects every client of the process.
 */
void kafka_client_log_quiet(bool quiet);

/* The last client warning or error held back by quiet mode; false when none. */
bool kafka_client_last_problem(char *buf, size_t len);

/* ---------------------------------------------------------------- producer */

typedef struct kafka_producer kafka_producer;

/* One message's outcome; every pointer is valid only during the callback. */
typedef struct kafka_delivery_report {
    rd_kafka_resp_err_t err;  /* NO_ERROR when the broker acknowledged it */
    kafka_err_class errclass; /* kafka_classify(err, NULL) */
    const char *errstr;       /* "Success" or librdkafka's reason */
    const char *topic;
    int32_t partition;       /* the partition it went to (or was meant for) */
    int64_t offset;          /* RD_KAFKA_OFFSET_INVALID when not known */
    bool possibly_persisted; /* failed, but the broker may have written it */
    const void *key;
    size_t keylen;
} kafka_delivery_report;

/*
 * Called from kafka_producer_poll()/kafka_producer_flush() on the polling
 * thread, once per produced message, with the msg_opaque given to
 * kafka_produce().
 */
typedef void (*kafka_delivery_cb)(void *msg_opaque, const kafka_delivery_report *dr);

/*
 * A producer with acks=all, enable.idempotence=true, linger.ms=5, lz4
 * compression (none when this librdkafka build lacks it), murmur2_random
 * partitioning (the Java client's, so keys land on the same partition
 * whichever client wrote them), message.timeout.ms=30000 (override with
 * props) and no topic auto-creation.  With transactional_id non-NULL it is a
 * transactional producer: call kafka_txn_init() (kafka_txn.h) before producing.
 */
kafka_producer *kafka_producer_new(const char *brokers, const config_kafka_props *defaults,
                                   const config_kafka_props *props, const char *transactional_id,
                                   char *err, size_t errlen) KAFKA_MUSTCHECK;

/* Sets the delivery callback (NULL: reports are dropped).  Set it before producing. */
void kafka_producer_set_delivery_cb(kafka_producer *p, kafka_delivery_cb cb);

/*
 * Enqueues one message (key, value and topic name are copied).  hdrs may be
 * NULL; librdkafka takes ownership of it on KAFKA_OK only: on any other
 * result the caller still owns it.  The outcome arrives later through the
 * delivery callback, with msg_opaque, unless this call failed.
 */
kafka_status kafka_produce(kafka_producer *p, const char *topic, const void *key, size_t keylen,
                           const void *value, size_t vlen, rd_kafka_headers_t *hdrs,
                           void *msg_opaque, char *err, size_t errlen) KAFKA_MUSTCHECK;

/* Serves delivery reports and callbacks; returns how many events were served. */
int kafka_producer_poll(kafka_producer *p, int timeout_ms);

/*
 * Waits up to timeout_ms for every queued message to be delivered (serving
 * delivery reports) and returns how many are still queued or in flight.
 */
int kafka_producer_flush(kafka_producer *p, int timeout_ms);

/* Messages and requests queued or in flight. */
int kafka_producer_outq_len(kafka_producer *p);

/* As kafka_fatal_error() on the producer; true when it is unusable. */
bool kafka_producer_fatal(kafka_producer *p, char *err, size_t errlen);

/* The underlying handle, still owned by p. */
rd_kafka_t *kafka_producer_rk(kafka_producer *p);

/* True when p was created with a transactional id (see kafka_txn.h). */
bool kafka_producer_transactional(const kafka_producer *p);

/*
 * Purges what is still queued (each purged message gets its delivery report,
 * with _PURGE_QUEUE or _PURGE_INFLIGHT, so callers can free their opaques) and
 * destroys p.  Flush first to deliver them instead.  NULL is a no-op.
 */
void kafka_producer_destroy(kafka_producer *p);

typedef struct kafka_consumer kafka_consumer;

/* ---------------------------------------------------------------- consumer */

/*
 * Told about rebalances on the polling thread, after the assignment changed
 * (assigned) or before it changes (revoked; stored offsets of the revoked
 * partitions have just been committed unless lost is true, in which case
 * another member may already own them).
 */
typedef void (*kafka_rebalance_cb)(void *ctx, bool assigned,
                                   const rd_kafka_topic_partition_list_t *parts, bool lost);

/*
 * A group consumer with enable.auto.commit=false, enable.auto.offset.store=
 * false (only what the caller stores gets committed: at-least-once),
 * partition.assignment.strategy=cooperative-sticky, auto.offset.reset=
 * earliest.  The rebalance callback handles incremental (cooperative) and
 * eager protocols, so props may change the strategy.
 */
kafka_consumer *kafka_consumer_new(const char *brokers, const char *group_id,
                                   const config_kafka_props *defaults,
                                   const config_kafka_props *props, char *err,
                                   size_t errlen) KAFKA_MUSTCHECK;

/*
 * kafka_consumer_new() for a daemon's consumer that joins its group with
 * kafka_consumer_subscribe(), with how it is a member (NULL: as
 * kafka_consumer_new()), applied after Herald's defaults and before the
 * program's defaults and props:
 *  - member->instance_id (optional) makes it a static member
 *    (group.instance.id): a restart with the same id takes its partitions
 *    back at once, without a rebalance and without waiting out the dead
 *    process's session.  The broker keys it by group: one consumer per group
 *    and process (no daemon has two in one group), and never the same id in
 *    two live processes (the older one is fenced: a fatal error).  A static
 *    member does not leave the group on close: its partitions wait for it
 *    until its session runs out.
 *  - member->session_timeout_ms (> 0) is session.timeout.ms, with
 *    heartbeat.interval.ms a third of it, at most 3000 (librdkafka's default:
 *    members hear of a rebalance at their next heartbeat).
 */
kafka_consumer *kafka_member_consumer_new(const char *brokers, const char *group_id,
                                          const config_group_member *member,
                                          const config_kafka_props *defaults,
                                          const config_kafka_props *props, char *err,
                                          size_t errlen) KAFKA_MUSTCHECK;

/* Optional; ctx stays the caller's. */
void kafka_consumer_set_rebalance_cb(kafka_consumer *c, kafka_rebalance_cb cb, void *ctx);

/* Subscribes to topics (names or "^regex"), replacing any subscription. */
kafka_status kafka_consumer_subscribe(kafka_consumer *c, const char *const *topics, size_t n,
                                      char *err, size_t errlen) KAFKA_MUSTCHECK;

/*
 * Reads every partition of topic from offset (RD_KAFKA_OFFSET_END: what
 * is produced after this call returns; RD_KAFKA_OFFSET_BEGINNING) without joining a
 * group: no rebalance ever moves a partition away, and nothing is
 * committed.  For a reader that wants the whole stream on every instance.
 * The partitions are those the topic has now.  KAFKA_ERR_NOT_FOUND when
 * the topic does not exist.
 */
kafka_status kafka_consumer_assign_all(kafka_consumer *c, const char *topic, int64_t offset,
                                       int timeout_ms, char *err, size_t errlen) KAFKA_MUSTCHECK;

/*
 * After kafka_consumer_assign_all(): adds the partitions topic has gained
 * since, read from their beginning (everything on a partition that did
 * not exist at the assignment is new to this reader).  *added says how
 * many; 0 and KAFKA_OK when none.
 */
kafka_status kafka_consumer_assign_added(kafka_consumer *c, const char *topic, int timeout_ms,
                                         int *added, char *err, size_t errlen) KAFKA_MUSTCHECK;

/*
 * Returns the next message or event, NULL when none came within timeout_ms.
 * The caller owns it: rd_kafka_message_destroy().  A message with err != 0 is
 * an event, not data: classify it (FATAL: stop; otherwise log and go on).
 */
rd_kafka_message_t *kafka_consumer_poll(kafka_consumer *c, int timeout_ms) KAFKA_MUSTCHECK;

/*
 * Marks msg processed: the next commit will record msg->offset + 1 for its
 * partition.  Fails (KAFKA_ERR) when the partition is no longer assigned.
 */
kafka_status kafka_consumer_store_offset(kafka_consumer *c, const rd_kafka_message_t *msg,
                                         char *err, size_t errlen) KAFKA_MUSTCHECK;

/* Commits the stored offsets; nothing stored is success.  async: don't wait. */
kafka_status kafka_consumer_commit(kafka_consumer *c, bool async, char *err,
                                   size_t errlen) KAFKA_MUSTCHECK;

/*
 * Stops (resumes) fetching from every assigned partition; partitions assigned
 * while paused start paused, so a back-pressured consumer stays paused.
 */
kafka_status kafka_consumer_pause(kafka_consumer *c, char *err, size_t errlen) KAFKA_MUSTCHECK;
kafka_status kafka_consumer_resume(kafka_consumer *c, char *err, size_t errlen) KAFKA_MUSTCHECK;
bool kafka_consumer_paused(const kafka_consumer *c);

/* As kafka_fatal_error() on the consumer; true when it is unusable. */
bool kafka_consumer_fatal(kafka_consumer *c, char *err, size_t errlen);

/* The underlying handle, still owned by c. */
rd_kafka_t *kafka_consumer_rk(kafka_consumer *c);

/*
 * Commits the stored offsets, then leaves the group (revoking the assignment,
 * so the group rebalances at once instead of after session.timeout.ms; a
 * static member keeps its place until then, for its restart).  Reports the
 * first failure; the consumer is closed either way.
 */
kafka_status kafka_consumer_close(kafka_consumer *c, char *err, size_t errlen) KAFKA_MUSTCHECK;

/* Closes (if not done) and frees c.  NULL is a no-op. */
void kafka_consumer_destroy(kafka_consumer *c);

#endif
