/*
 * suppressions_api: the suppression list (docs/receipts.md), for
 * operators (admin API key).
 *
 *   GET    /v1/suppressions                     a page: ?channel, ?reason,
 *                                               ?limit (1..1000, 100), ?after
 *   POST   /v1/suppressions                     {"channel", "address", "detail"}
 *   GET    /v1/suppressions/{channel}/{address}
 *   DELETE /v1/suppressions/{channel}/{address}
 *
 * Hard bounces and complaints add entries through receipts; a POST adds a
 * manual one (201, or 200 with the entry already there); a DELETE lets
 * Herald send to the address again.
 */
#ifndef HERALD_SUPPRESSIONS_API_H
#define HERALD_SUPPRESSIONS_API_H

#include "api.h"

void suppressions_api_list(api_env *env, http_request *req, api_call *call, http_phase phase);
void suppressions_api_add(api_env *env, http_request *req, api_call *call, http_phase phase);
void suppressions_api_get(api_env *env, http_request *req, api_call *call, http_phase phase);
void suppressions_api_delete(api_env *env, http_request *req, api_call *call, http_phase phase);

#endif
