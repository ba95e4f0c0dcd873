/*
 * auth: resolves "Authorization: Bearer <key>" to an API key id and scope.
 *
 * Keys are looked up by SHA-256 in api_keys (common/apikey) and the answer,
 * found or not, is cached for a few seconds: a publish costs no database
 * round trip, and a revoked key stops working within the TTL.  When the
 * database cannot be reached, a key that was valid recently stays valid
 * (up to a grace period), so an outage of PostgreSQL does not stop
 * publishing.  Thread-safe.
 */
#ifndef HERALD_AUTH_H
#define HERALD_AUTH_H

#include "apikey.h"
#include "pgpool.h"

#include <stdint.h>

typedef struct auth_cache auth_cache;

typedef enum {
    AUTH_OK = 0,
    AUTH_MISSING,     /* no Authorization header, or not a Bearer */
    AUTH_INVALID,     /* no such active key */
    AUTH_UNAVAILABLE, /* the database could not tell: 503 */
} auth_result;

/* ttl_ms: how long an answer is trusted; grace_ms: how long a known-good key
 * survives a database outage.  The pool is borrowed, not owned. */
auth_cache *auth_new(pgpool *pool, int64_t ttl_ms, int64_t grace_ms)
    __attribute__((warn_unused_result));
void auth_free(auth_cache *a);

/* The token of an Authorization value "Bearer <token>" (blanks trimmed) and
 * its length; NULL when absent or not a Bearer. */
const char *auth_bearer(const char *authorization, size_t *len);

/*
 * Checks an Authorization header value (may be NULL).  On AUTH_OK fills
 * *key_id and *scope.
 */
auth_result auth_check(auth_cache *a, const char *authorization, int64_t *key_id,
                       apikey_scope *scope, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* The same for a key given as such (a login form's), key[0..len). */
auth_result auth_check_key(auth_cache *a, const char *key, size_t len, int64_t *key_id,
                           apikey_scope *scope, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/*
 * Whether the key of id key_id is still active, asking the database every
 * time (no cache: a console session must end with its key's revocation,
 * and a person clicking costs little).  On AUTH_OK fills *scope.
 */
auth_result auth_check_id(auth_cache *a, int64_t key_id, apikey_scope *scope, char *err,
                          size_t errlen) __attribute__((warn_unused_result));

#endif
