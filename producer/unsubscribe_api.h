/*
 * unsubscribe_api: one-click unsubscribe (RFC 8058) from the links the
 * email worker puts in List-Unsubscribe (docs/channels.md).  No API key:
 * the unsubtoken in the query names the user, category and channel and
 * proves Herald wrote the link.
 *
 *   POST /v1/unsubscribe?token=...   body List-Unsubscribe=One-Click, as a
 *                                    mailbox provider sends it: turns the
 *                                    category off on the channel at once
 *   GET  /v1/unsubscribe?token=...   a page saying what the POST would do,
 *                                    with a button that sends it; a GET
 *                                    changes nothing, since link scanners
 *                                    follow every link they see
 *
 * A token for a user deleted since is answered as a success that changes
 * nothing: the user gets no more email either way, and the answer does not
 * tell the holder of a link whether the account still exists.
 */
#ifndef HERALD_UNSUBSCRIBE_API_H
#define HERALD_UNSUBSCRIBE_API_H

#include "api.h"

void unsubscribe_api_page(api_env *env, http_request *req, api_call *call, http_phase phase);
void unsubscribe_api_post(api_env *env, http_request *req, api_call *call, http_phase phase);

#endif
