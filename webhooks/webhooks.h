/*
 * webhooks: the herald-webhooks daemon (docs/webhooks.md).
 *
 * Two roles, in one process or apart (HERALD_WEBHOOKS_ROLE):
 *   - the feeder (feeder.h) makes the calls from delivery_history, in one
 *     process of the deployment at a time;
 *   - the sender, a consumer group on the webhooks and webhooks.retry
 *     topics, POSTs the calls (post.h), many at once but one per
 *     endpoint, and settles each: a success is done;
 *     a transient failure goes round webhooks.retry, due later by the
 *     common retry policy (retry.h), held in a dueq meanwhile so the
 *     calls behind it keep going; a permanent failure, the last attempt
 *     or a call to a disabled endpoint goes to the dlq topic with the
 *     herald.dlq.* headers (dlq.h).  Every attempt is logged
 *     (endpoints.h).  A record's offset is committed once its outcome is
 *     durable: the attempt row written and the retry or dead letter
 *     acknowledged by the broker.
 */
#ifndef HERALD_WEBHOOKS_WEBHOOKS_H
#define HERALD_WEBHOOKS_WEBHOOKS_H

#include <signal.h>

#include "config.h"
#include "webhooks_config.h"

typedef struct webhooks webhooks;

webhooks *webhooks_new(const webhooks_config *cfg, const herald_common_config *common,
                       const config_kafka_props *props, const volatile sig_atomic_t *stop,
                       int *config_error, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Runs until *stop; the exit code. */
int webhooks_run(webhooks *w);

void webhooks_free(webhooks *w);

#endif
