/*
 * cors: which web origins may call the gateway's inbox routes from a
 * browser (HERALD_GATEWAY_CORS_ORIGINS, docs/inapp-client.md).
 *
 * A policy is a list of exact origins ("https://app.example.com",
 * "http://127.0.0.1:8000") or "*" for any origin.  Pure logic: parsing and
 * matching, no I/O; the gateway decides which routes it applies to and
 * writes the headers.  A policy is read-only once built and may be shared
 * by every worker thread.
 */
#ifndef HERALD_CORS_H
#define HERALD_CORS_H

#include <stdbool.h>
#include <stddef.h>

#define CORS_MAX_ORIGINS 64
#define CORS_ORIGIN_MAX  256 /* bytes of one origin, NUL excluded */

/* The headers of an answer to a preflight from an allowed origin. */
#define CORS_ALLOW_METHODS "GET, POST"
#define CORS_ALLOW_HEADERS "Authorization, Content-Type"
#define CORS_MAX_AGE       "600"

typedef struct cors_policy cors_policy;

/*
 * Checks a value of HERALD_GATEWAY_CORS_ORIGINS: empty, "*", or a
 * comma-separated list of origins "http[s]://host[:port]" (blanks around
 * the commas allowed; no path, no trailing slash, no empty entry).
 * Returns 0, or -1 with what was expected in err (config's check shape).
 */
int cors_check_origins(const char *value, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/*
 * Builds the policy of value (checked as above).  NULL value or "" gives
 * NULL with err empty: no CORS at all.  NULL with err set on a bad value
 * or out of memory.
 */
cors_policy *cors_policy_new(const char *value, char *err, size_t errlen);

void cors_policy_free(cors_policy *p);

/* Whether a request's Origin header value is allowed (NULL policy or
 * origin: false).  Scheme and host compare without case, as browsers send
 * them in lower case anyway. */
bool cors_policy_allows(const cors_policy *p, const char *origin);

#endif
