/*
 * topics_api: topic subscriptions.
 *
 *   PUT/DELETE /v1/topics/{topic}/subscribers/{user_id}   204
 *   GET /v1/topics/{topic}/subscribers?after=&limit=       200, a page
 *
 * Topics are created by their first subscription.  PUT and DELETE are
 * idempotent; both answer 404 when the user does not exist.  The listing
 * pages in user id order (next_after: pass it as after) and answers 404
 * for a topic that never had a subscriber.
 */
#ifndef HERALD_TOPICS_API_H
#define HERALD_TOPICS_API_H

#include "api.h"

void topics_api_subscribe(api_env *env, http_request *req, api_call *call, http_phase phase);
void topics_api_unsubscribe(api_env *env, http_request *req, api_call *call, http_phase phase);
void topics_api_subscribers(api_env *env, http_request *req, api_call *call, http_phase phase);

#endif
