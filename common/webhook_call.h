/*
 * webhook_call: one status webhook call, the record the herald-webhooks
 * feeder writes to the webhooks topic and its sender POSTs (docs/webhooks.md).
 *
 * The value is the body sent, byte for byte:
 *
 *     {"id":"<uuid>","type":"delivery.bounced","created_at":"<RFC 3339>",
 *      "data":{...the delivery...}}
 *
 * keyed by the endpoint's id, with the call's id and type in the
 * herald.webhook.* headers.  The id is a UUIDv5 of the row the call was
 * made from (delivery_history, webhook_inbox_history) and the endpoint, so
 * a call made again (after a crash, by a replay) has the id it had:
 * receivers deduplicate by it.
 *
 * Also the list of event types an endpoint may subscribe to, which the
 * gateway checks and the schema's CHECK repeats, and which row makes which
 * type.  No I/O.
 */
#ifndef HERALD_WEBHOOK_CALL_H
#define HERALD_WEBHOOK_CALL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "buf.h"

/* The HTTP headers of a call besides Herald-Signature (common/hsig.h). */
#define WEBHOOK_HTTP_ID      "Herald-Webhook-Id"
#define WEBHOOK_HTTP_ATTEMPT "Herald-Webhook-Attempt"

/* Every type, terminated by NULL; the inbox.* ones are reserved. */
extern const char *const webhook_types[];

/* Whether s is one of webhook_types. */
bool webhook_type_valid(const char *s);

/*
 * The type a delivery status makes: "delivery.<status>" for sent,
 * delivered, undelivered, bounced, complained and suppressed,
 * "delivery.undelivered" for failed (the worker gave up); NULL for a
 * status no webhook reports (pending, skipped, ...).
 */
const char *webhook_type_of_status(const char *status);

/* "inbox.read" for "read", "inbox.seen" for "seen" (webhook_inbox_history); NULL otherwise. */
const char *webhook_type_of_inbox(const char *change);

/*
 * The id of the call for row row_id of source (the table the feeder read:
 * "delivery_history", "webhook_inbox_history") to endpoint_id, into out[37].
 */
int webhook_call_id(const char *source, int64_t row_id, const char *endpoint_id, char *out)
    __attribute__((warn_unused_result));

/*
 * Appends the body of a call to b: data_json is the JSON object that
 * describes what happened, created_at an RFC 3339 time.  -1 when b is
 * full (b is then as it was).
 */
int webhook_call_body(buf *b, const char *id, const char *type, const char *created_at,
                      const char *data_json) __attribute__((warn_unused_result));

/* The record's headers, for the caller to produce with; NULL when out of memory. */
rd_kafka_headers_t *webhook_call_headers(const char *id, const char *type)
    __attribute__((warn_unused_result));

#endif
