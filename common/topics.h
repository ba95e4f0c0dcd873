/*
 * topics: the names and settings of every Kafka topic Herald uses, so that
 * `heraldctl topics create`, the daemons and the tests agree on them.
 *
 * Names are relative to HERALD_TOPIC_PREFIX (default "herald.").
 *
 *   events                 event JSON, keyed by user_id (or topic:<name>)
 *   deliveries.<channel>   delivery JSON, keyed by user_id
 *   retry.<channel>        deliveries waiting for a later attempt (or for the
 *                          end of the user's quiet hours), keyed by user_id,
 *                          due time in the delivery's not_before
 *   dlq                    dead letters of every stage, webhook calls too:
 *                          original key, value and headers plus
 *                          the herald.dlq.* / herald.original.* headers
 *   inbox.updates          in-app inbox changes, keyed by user_id
 *                          (docs/inapp.md)
 *   webhooks               status webhook calls, keyed by endpoint id
 *                          (docs/webhooks.md)
 *   webhooks.retry         calls waiting for a later attempt, due time in
 *                          herald.retry.not_before
 */
#ifndef HERALD_TOPICS_H
#define HERALD_TOPICS_H

#include <stddef.h>

typedef struct topics_def {
    const char *name; /* after the prefix */
    const char *retention_ms;
    const char *purpose;
} topics_def;

/* Every topic, terminated by an entry with name == NULL. */
extern const topics_def topics_all[];

#define TOPICS_EVENTS         "events"
#define TOPICS_DLQ            "dlq"
#define TOPICS_INBOX_UPDATES  "inbox.updates"
#define TOPICS_WEBHOOKS       "webhooks"
#define TOPICS_WEBHOOKS_RETRY "webhooks.retry"

/* "deliveries.<channel>" / "retry.<channel>" into out; returns out. */
char *topics_deliveries(const char *channel, char *out, size_t outlen);
char *topics_retry(const char *channel, char *out, size_t outlen);

#endif
