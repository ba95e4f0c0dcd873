/*
 * templates_api: message templates per event type and channel.
 *
 *   PUT/GET/DELETE /v1/templates/{event_type}/{channel}
 *
 * A template's placeholders ({{user.name}}, {{data.order.id}}) are checked
 * when it is stored, so a broken template fails here and not at delivery.
 */
#ifndef HERALD_TEMPLATES_API_H
#define HERALD_TEMPLATES_API_H

#include "api.h"

void templates_api_put(api_env *env, http_request *req, api_call *call, http_phase phase);
void templates_api_get(api_env *env, http_request *req, api_call *call, http_phase phase);
void templates_api_delete(api_env *env, http_request *req, api_call *call, http_phase phase);

#endif
