/*
 * rules_api: digest, throttle and follow-up rules (docs/digests.md).
 *
 *   GET                /v1/digest-rules            every rule, by name
 *   PUT/GET/DELETE     /v1/digest-rules/{name}
 *   GET                /v1/throttle-rules
 *   PUT/GET/DELETE     /v1/throttle-rules/{name}
 *   GET                /v1/followup-rules
 *   PUT/GET/DELETE     /v1/followup-rules/{name}
 *
 * A PUT creates or replaces the rule and answers it as stored.  The
 * dispatchers reload their rules when the tables change (pg_notify).
 */
#ifndef HERALD_RULES_API_H
#define HERALD_RULES_API_H

#include "api.h"

void rules_api_digest_put(api_env *env, http_request *req, api_call *call, http_phase phase);
void rules_api_digest_get(api_env *env, http_request *req, api_call *call, http_phase phase);
void rules_api_digest_list(api_env *env, http_request *req, api_call *call, http_phase phase);
void rules_api_digest_delete(api_env *env, http_request *req, api_call *call, http_phase phase);

void rules_api_throttle_put(api_env *env, http_request *req, api_call *call, http_phase phase);
void rules_api_throttle_get(api_env *env, http_request *req, api_call *call, http_phase phase);
void rules_api_throttle_list(api_env *env, http_request *req, api_call *call, http_phase phase);
void rules_api_throttle_delete(api_env *env, http_request *req, api_call *call, http_phase phase);

void rules_api_followup_put(api_env *env, http_request *req, api_call *call, http_phase phase);
void rules_api_followup_get(api_env *env, http_request *req, api_call *call, http_phase phase);
void rules_api_followup_list(api_env *env, http_request *req, api_call *call, http_phase phase);
void rules_api_followup_delete(api_env *env, http_request *req, api_call *call, http_phase phase);

#endif
