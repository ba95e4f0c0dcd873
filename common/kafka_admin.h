/*
 * kafka_admin: the admin calls Herald needs: create, describe and delete
 * topics.  Each call uses a short-lived client of its own, built like every
 * other (kafka_conf_new(): Herald's defaults, then props).
 */
#ifndef HERALD_KAFKA_ADMIN_H
#define HERALD_KAFKA_ADMIN_H

#include <stddef.h>

#include "kafka.h"

typedef struct kafka_topic_config {
    const char *name; /* e.g. "retention.ms" */
    const char *value;
} kafka_topic_config;

typedef struct kafka_topic_spec {
    const char *name;
    int partitions;         /* -1: the broker's default */
    int replication_factor; /* -1: the broker's default */
    const kafka_topic_config *configs;
    size_t nconfigs;
} kafka_topic_spec;

typedef enum {
    KAFKA_TOPIC_CREATED = 0,
    KAFKA_TOPIC_EXISTS,
    KAFKA_TOPIC_FAILED,
} kafka_topic_outcome;

typedef struct kafka_topic_result {
    kafka_topic_outcome outcome;
    rd_kafka_resp_err_t err; /* NO_ERROR, TOPIC_ALREADY_EXISTS or the failure */
    char msg[256];           /* the broker's reason when FAILED, else "" */
} kafka_topic_result;

/*
 * Creates the topics, waiting up to timeout_ms.  results (n entries, in the
 * order of specs) tells per topic CREATED, EXISTS (left as it is: the
 * partition count is not checked) or FAILED.  Returns KAFKA_OK when the
 * request got an answer, even if some topics failed; KAFKA_ERR (err says why)
 * when it did not, and then results are all FAILED.
 */
kafka_status kafka_topics_create(const char *brokers, const config_kafka_props *props,
                                 const kafka_topic_spec *specs, size_t n, int timeout_ms,
                                 kafka_topic_result *results, char *err,
                                 size_t errlen) KAFKA_MUSTCHECK;

/* What kafka_topics_describe() reports of one topic. */
typedef struct kafka_topic_desc {
    /* NO_ERROR: described; UNKNOWN_TOPIC_OR_PART: no such topic; else why not. */
    rd_kafka_resp_err_t err;
    int partitions;
    /* Replicas of the least-replicated partition: what the topic survives. */
    int replication_factor;
} kafka_topic_desc;

/*
 * Describes n topics from cluster metadata, in one request (never creates
 * them): descs[i] for topics[i].  KAFKA_OK when the cluster answered, even
 * if some topics do not exist; KAFKA_ERR (err says why) when it did not.
 */
kafka_status kafka_topics_describe(const char *brokers, const config_kafka_props *props,
                                   const char *const *topics, size_t n, int timeout_ms,
                                   kafka_topic_desc *descs, char *err,
                                   size_t errlen) KAFKA_MUSTCHECK;

/*
 * As kafka_topics_describe() for one topic: KAFKA_ERR_NOT_FOUND when it
 * does not exist, KAFKA_ERR when it could not be described.
 */
kafka_status kafka_topic_describe(const char *brokers, const config_kafka_props *props,
                                  const char *topic, int timeout_ms, kafka_topic_desc *desc,
                                  char *err, size_t errlen) KAFKA_MUSTCHECK;

/* Deletes the topics; ones already absent count as deleted. */
kafka_status kafka_topics_delete(const char *brokers, const config_kafka_props *props,
                                 const char *const *topics, size_t n, int timeout_ms, char *err,
                                 size_t errlen) KAFKA_MUSTCHECK;

#endif
