/*
 * tokens_api: minting user tokens (docs/inapp.md).
 *
 *   POST /v1/users/{user_id}/tokens   {"ttl_seconds": 60..86400}?  -> 201
 *       {"token","user_id","expires_at"}
 *
 * Called by the publishing service with its API key, to hand the token to
 * that user's browser or app.  503 when the gateway has no
 * HERALD_USER_TOKEN_SECRET.
 */
#ifndef HERALD_TOKENS_API_H
#define HERALD_TOKENS_API_H

#include "api.h"

void tokens_api_post(api_env *env, http_request *req, api_call *call, http_phase phase);

#endif
