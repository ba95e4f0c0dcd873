/*
 * inbox_api: a user's inbox (docs/inapp.md), for the publishing service
 * (publish or admin API key) and for the user's own browser or app (a user
 * token for that user).
 *
 *   GET  /v1/users/{user_id}/inbox          a page, newest first, with filters
 *   GET  /v1/users/{user_id}/inbox/counts   {"unread_count","unseen_count","seq"}
 *   POST /v1/users/{user_id}/inbox/mark     seen, read, unread, archived,
 *                                           unarchived or interacted
 *
 * A mark that moved something is announced on inbox.updates once it is
 * committed; PostgreSQL stays the truth, so a record that cannot be
 * produced is logged and counted, not an error to the client.
 */
#ifndef HERALD_INBOX_API_H
#define HERALD_INBOX_API_H

#include "api.h"

void inbox_api_list(api_env *env, http_request *req, api_call *call, http_phase phase);
void inbox_api_counts(api_env *env, http_request *req, api_call *call, http_phase phase);
void inbox_api_mark(api_env *env, http_request *req, api_call *call, http_phase phase);

#endif
