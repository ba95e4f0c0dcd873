/*
 * ops_api: liveness, readiness and metrics on the main listener.
 *
 *   GET /healthz   200 while the process serves requests
 *   GET /readyz    200 when Kafka (the events topic's metadata) and
 *                  PostgreSQL (SELECT 1, cached for a second) answer and the
 *                  gateway is not shutting down; else 503 with the reason
 *   GET /metrics   Prometheus text format
 */
#ifndef HERALD_OPS_API_H
#define HERALD_OPS_API_H

#include "api.h"

void ops_api_healthz(api_env *env, http_request *req, api_call *call, http_phase phase);
void ops_api_readyz(api_env *env, http_request *req, api_call *call, http_phase phase);
void ops_api_metrics(api_env *env, http_request *req, api_call *call, http_phase phase);

#endif
