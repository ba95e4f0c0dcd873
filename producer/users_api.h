/*
 * users_api: users, their contact points and their preferences.
 *
 *   PUT/GET/DELETE /v1/users/{user_id}
 *   PUT/GET        /v1/users/{user_id}/preferences
 *
 * PUT replaces the whole document: a field left out is cleared (push_tokens
 * left out means no tokens), so a PUT says exactly what is stored.
 * Dispatchers learn of every change through the schema's triggers.
 */
#ifndef HERALD_USERS_API_H
#define HERALD_USERS_API_H

#include "api.h"

void users_api_put(api_env *env, http_request *req, api_call *call, http_phase phase);
void users_api_get(api_env *env, http_request *req, api_call *call, http_phase phase);
void users_api_delete(api_env *env, http_request *req, api_call *call, http_phase phase);
void users_api_prefs_put(api_env *env, http_request *req, api_call *call, http_phase phase);
void users_api_prefs_get(api_env *env, http_request *req, api_call *call, http_phase phase);

#endif
