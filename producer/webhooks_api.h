/*
 * webhooks_api: status webhook endpoints (docs/webhooks.md).
 *
 *   POST   /v1/webhooks                          201, the endpoint with its secret
 *   GET    /v1/webhooks                          200, the key's endpoints
 *   GET    /v1/webhooks/{webhook_id}             200
 *   DELETE /v1/webhooks/{webhook_id}             204
 *   POST   /v1/webhooks/{webhook_id}/enable      200, enabled again
 *   GET    /v1/webhooks/{webhook_id}/attempts    200, newest first, paged
 *   POST   /v1/webhooks/{webhook_id}/replay      202, the window's calls sent again
 *
 * An endpoint belongs to the API key that created it: another publish key
 * gets 404 for it.  Admin keys see and manage every endpoint, and only
 * they may create one with "all_events" (every event, whoever published
 * it).  The secret is shown once, in the answer to the POST.
 */
#ifndef HERALD_WEBHOOKS_API_H
#define HERALD_WEBHOOKS_API_H

#include "api.h"

void webhooks_api_create(api_env *env, http_request *req, api_call *call, http_phase phase);
void webhooks_api_list(api_env *env, http_request *req, api_call *call, http_phase phase);
void webhooks_api_get(api_env *env, http_request *req, api_call *call, http_phase phase);
void webhooks_api_delete(api_env *env, http_request *req, api_call *call, http_phase phase);
void webhooks_api_enable(api_env *env, http_request *req, api_call *call, http_phase phase);
void webhooks_api_attempts(api_env *env, http_request *req, api_call *call, http_phase phase);
void webhooks_api_replay(api_env *env, http_request *req, api_call *call, http_phase phase);

#endif
