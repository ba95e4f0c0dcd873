/*
 * topics_api: topic subscriptions.
 *
 *   PUT/DELETE /v1/topics/{topic}/subscribers/{user_id}   204
 *
 * Topics are created by their first subscription.  Both calls are
 * idempotent; both answer 404 when the user does not exist.
 */
#ifndef HERALD_TOPICS_API_H
#define HERALD_TOPICS_API_H

#include "api.h"

void topics_api_subscribe(api_env *env, http_request *req, api_call *call, http_phase phase);
void topics_api_unsubscribe(api_env *env, http_request *req, api_call *call, http_phase phase);

#endif
