/*
 * rtrequest: whether a request for the live stream names a user and
 * carries that user's token (docs/inapp.md, "Live updates"), from the
 * request's parts as libwebsockets has parsed them: the path, the decoded
 * query arguments and two headers.  What depends on the instance's state
 * (capacity, per-user limits, shutdown) is the caller's.  Pure logic: no
 * I/O, so the fuzz target drives it directly.
 */
#ifndef HERALD_RTREQUEST_H
#define HERALD_RTREQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "validate.h"

#define RTREQUEST_PREFIX "/v1/users/"
#define RTREQUEST_SUFFIX "/live"

typedef struct rtrequest {
    const char *path;        /* the URI path */
    const char *const *args; /* query arguments, "name=value", decoded */
    size_t nargs;
    const char *authorization;     /* the Authorization header, or NULL */
    const char *last_event_header; /* the Last-Event-ID header, or NULL */
} rtrequest;

typedef struct rtrequest_admission {
    char user_id[VALIDATE_USER_ID_MAX + 1];
    int64_t last_event_id; /* -1: none given */
    bool token_refused;    /* refused for the token (counted as an auth failure) */
} rtrequest_admission;

/*
 * 0 when req is for /v1/users/{id}/live with a valid token of that user
 * (the token query argument before "Authorization: Bearer"), checked with
 * secret at now_s, and a well-formed last event id (the Last-Event-ID
 * header before the last_event_id argument); *out holds the user and the
 * id.  Otherwise the HTTP status that refuses it (404, 401, 403, 400) with
 * *why, a static text for the client.
 */
unsigned rtrequest_admit(const rtrequest *req, const char *secret, int64_t now_s,
                         rtrequest_admission *out, const char **why)
    __attribute__((warn_unused_result));

#endif
