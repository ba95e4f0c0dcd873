/*
 * events_api: publishing events and reading where they stand.
 *
 *   POST /v1/events         one event, 202 {"event_id"} once Kafka acknowledged it
 *   POST /v1/events/batch   up to 1000, one result per item, in order
 *   GET  /v1/events/{id}    the event's deliveries, from events/deliveries
 *
 * A publish suspends its HTTP request while the record is in flight and is
 * resumed from the delivery report (events_api_delivered, the publisher's
 * done callback), so no worker thread waits on the broker.  Idempotency-Key
 * claims (api key, key) in publish_idempotency before producing; once Kafka
 * acknowledged the record the claim is confirmed, and a publish that fails
 * releases it so that the client's retry can succeed.  A replay that meets
 * a claim not yet confirmed gets 409: its event id cannot be promised yet.
 */
#ifndef HERALD_EVENTS_API_H
#define HERALD_EVENTS_API_H

#include "api.h"

void events_api_publish(api_env *env, http_request *req, api_call *call, http_phase phase);
void events_api_batch(api_env *env, http_request *req, api_call *call, http_phase phase);
void events_api_get(api_env *env, http_request *req, api_call *call, http_phase phase);

/* The publisher's done callback (runs on the publisher's poll thread). */
void events_api_delivered(void *opaque, publisher_result result, const char *errstr,
                          int32_t partition, int64_t offset);

#endif
