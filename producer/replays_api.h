/*
 * replays_api: replays of the events topic through the gateway (admin
 * scope), run by replays.c with the code of `heraldctl replay`.
 *
 *   POST /v1/replays         {"from","to","user_id","type","redeliver","dry_run"}
 *                            dry_run: 200 {"events":n}, the window's matches;
 *                            else 202 {"replay_id","state":"running"}
 *   GET  /v1/replays/{id}    the run and its progress
 *   GET  /v1/replays?limit=  the latest runs, newest first
 */
#ifndef HERALD_REPLAYS_API_H
#define HERALD_REPLAYS_API_H

#include "api.h"

void replays_api_start(api_env *env, http_request *req, api_call *call, http_phase phase);
void replays_api_get(api_env *env, http_request *req, api_call *call, http_phase phase);
void replays_api_list(api_env *env, http_request *req, api_call *call, http_phase phase);

#endif
