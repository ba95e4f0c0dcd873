/*
 * timeline_api: finding events and telling what happened to one, for
 * operators (admin API key) and the console (docs/interface.md).
 *
 *   GET /v1/events?event_id=|user_id=|idempotency_key=   exactly one key;
 *       ?limit (1..100, 20), ?after (the "next" of the page before)
 *   GET /v1/events/{event_id}/timeline
 *
 * The search lists events newest first with their deliveries counted by
 * status; idempotency_key matches the publisher's Idempotency-Key (under
 * any API key) or a delivery's idempotency key.  The timeline merges, in
 * time order, the event, the deliveries planned and skipped (with why),
 * every attempt (the failed ones that were retried too, with their error),
 * receipts, operator changes, digests, follow-ups and the dead letter.
 */
#ifndef HERALD_TIMELINE_API_H
#define HERALD_TIMELINE_API_H

#include "api.h"

void timeline_api_search(api_env *env, http_request *req, api_call *call, http_phase phase);
void timeline_api_get(api_env *env, http_request *req, api_call *call, http_phase phase);

#endif
