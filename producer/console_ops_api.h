/*
 * console_ops_api: the pipeline's state for the ops console (admin scope).
 *
 *   GET /v1/ops/status            the document of `heraldctl status --json`
 *                                 (common/opsstatus.c); 503 when the broker
 *                                 does not answer
 *   GET /v1/ops/history?minutes=  the sampler's samples of the last minutes
 *                                 (1..60, default 60; console_ops.h)
 */
#ifndef HERALD_CONSOLE_OPS_API_H
#define HERALD_CONSOLE_OPS_API_H

#include "api.h"

void console_ops_api_status(api_env *env, http_request *req, api_call *call, http_phase phase);
void console_ops_api_history(api_env *env, http_request *req, api_call *call, http_phase phase);

#endif
