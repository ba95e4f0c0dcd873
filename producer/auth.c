/*
 * auth: a small TTL cache in front of api_keys.
 *
 * The cache is keyed by the hex SHA-256 of the presented key, so no secret
 * is kept in memory longer than the request; the stored hash is compared
 * again in constant time on a hit.  Negative answers are cached too (for a
 * shorter time), so a client hammering with a wrong key costs one lookup
 * per second, not one per request.
 */
#include "auth.h"

#include "error.h"
#include "ids.h"
#include "log.h"
#include "lru.h"
#include "timeutil.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define AUTH_MAX_ENTRIES  10000
#define AUTH_NEGATIVE_TTL 1000
#define AUTH_POOL_WAIT_MS 2000

typedef struct entry {
    unsigned char hash[APIKEY_HASH_LEN];
    bool found;
    int64_t id;
    apikey_scope scope;
    int64_t fresh_until;  /* trust without asking until then */
    int64_t usable_until; /* past fresh, still good while the database is down */
} entry;

struct auth_cache {
    pgpool *pool;
    int64_t ttl_ms, grace_ms;
    pthread_mutex_t lock;
    lru_cache *lru;
};

auth_cache *auth_new(pgpool *pool, int64_t ttl_ms, int64_t grace_ms)
{
    auth_cache *a = calloc(1, sizeof *a);
    if (a == NULL)
        return NULL;
    a->lru = lru_new(AUTH_MAX_ENTRIES, 0, free);
    if (a->lru == NULL) {
        free(a);
        return NULL;
    }
    a->pool = pool;
    a->ttl_ms = ttl_ms;
    a->grace_ms = grace_ms;
    pthread_mutex_init(&a->lock, NULL);
    return a;
}

void auth_free(auth_cache *a)
{
    if (a == NULL)
        return;
    lru_free(a->lru);
    pthread_mutex_destroy(&a->lock);
    free(a);
}

const char *auth_bearer(const char *h, size_t *len)
{
    if (h == NULL)
        return NULL;
    while (*h == ' ')
        h++;
    if (strncasecmp(h, "Bearer ", 7) != 0)
        return NULL;
    h += 7;
    while (*h == ' ')
        h++;
    size_t n = strlen(h);
    while (n > 0 && h[n - 1] == ' ')
        n--;
    if (n == 0)
        return NULL;
    *len = n;
    return h;
}

/*
 * Looks a key up in the database, by hash (hash != NULL) or by id; 0 with
 * *r filled, -1 when it could not.
 */
static int lookup(auth_cache *a, const unsigned char *hash, int64_t id, apikey_lookup_result *r,
                  char *err, size_t errlen)
{
    pg_conn *c = pgpool_acquire(a->pool, AUTH_POOL_WAIT_MS, err, errlen);
    if (c == NULL)
        return -1;
    int rc = -1;
    for (int attempt = 0; attempt < 2 && rc != 0; attempt++) {
        PGconn *raw = pg_raw(c);
        if (raw != NULL && (hash != NULL ? apikey_db_lookup(raw, hash, r, err, errlen)
                                         : apikey_db_lookup_id(raw, id, r, err, errlen)) == 0) {
            rc = 0;
            break;
        }
        /* The connection may have dropped while idle: reconnect once. */
        if (pg_ok(c) || pg_reset(c, err, errlen) != PG_OK)
            break;
    }
    if (rc == 0 && r->found) {
        char terr[128];
        if (apikey_db_touch(pg_raw(c), r->id, terr, sizeof terr) != 0)
            LOG_DEBUG("auth", "last_used_at not updated: %s", terr);
    }
    pgpool_release(a->pool, c);
    return rc;
}

auth_result auth_check(auth_cache *a, const char *authorization, int64_t *key_id,
                       apikey_scope *scope, char *err, size_t errlen)
{
    size_t len = 0;
    const char *key = auth_bearer(authorization, &len);
    if (key == NULL && authorization != NULL) {
        error_set(err, errlen,
                  "the Authorization scheme must be Bearer: send \"Authorization: Bearer <api "
                  "key>\"");
        return AUTH_MISSING;
    }
    if (key == NULL) {
        error_set(err, errlen, "missing \"Authorization: Bearer <api key>\"");
        return AUTH_MISSING;
    }
    return auth_check_key(a, key, len, key_id, scope, err, errlen);
}

auth_result auth_check_key(auth_cache *a, const char *key, size_t len, int64_t *key_id,
                           apikey_scope *scope, char *err, size_t errlen)
{
    if (!apikey_well_formed(key, len)) {
        error_set(err, errlen, "invalid API key");
        return AUTH_INVALID;
    }
    unsigned char hash[APIKEY_HASH_LEN];
    char hex[2 * APIKEY_HASH_LEN + 1];
    apikey_hash(key, len, hash);
    id_hex(hash, sizeof hash, hex);
    int64_t now = timeutil_monotonic_ms();

    entry cached;
    bool have = false;
    pthread_mutex_lock(&a->lock);
    entry *e = lru_get(a->lru, hex, now);
    if (e != NULL && apikey_hash_equal(e->hash, hash)) {
        cached = *e;
        have = true;
    }
    pthread_mutex_unlock(&a->lock);

    if (!have || now >= cached.fresh_until) {
        entry fresh = {0};
        memcpy(fresh.hash, hash, sizeof hash);
        char lerr[256];
        apikey_lookup_result r;
        if (lookup(a, hash, 0, &r, lerr, sizeof lerr) == 0) {
            fresh.found = r.found;
            fresh.id = r.id;
            fresh.scope = r.scope;
            fresh.fresh_until = now + (fresh.found ? a->ttl_ms : AUTH_NEGATIVE_TTL);
            fresh.usable_until = fresh.found ? now + a->ttl_ms + a->grace_ms : fresh.fresh_until;
            entry *copy = malloc(sizeof *copy);
            if (copy != NULL) {
                *copy = fresh;
                pthread_mutex_lock(&a->lock);
                if (lru_put(a->lru, hex, copy, 1, copy->usable_until) != 0)
                    free(copy);
                pthread_mutex_unlock(&a->lock);
            }
            cached = fresh;
            have = true;
        } else if (!have || !cached.found || now >= cached.usable_until) {
            LOG_WARN("auth", "cannot check an API key: %s", lerr);
            error_set(err, errlen, "the API key cannot be checked right now");
            return AUTH_UNAVAILABLE;
        }
    }
    if (!cached.found) {
        error_set(err, errlen, "invalid or revoked API key");
        return AUTH_INVALID;
    }
    *key_id = cached.id;
    *scope = cached.scope;
    return AUTH_OK;
}

auth_result auth_check_id(auth_cache *a, int64_t key_id, apikey_scope *scope, char *err,
                          size_t errlen)
{
    apikey_lookup_result r;
    char lerr[256];
    if (lookup(a, NULL, key_id, &r, lerr, sizeof lerr) != 0) {
        LOG_WARN("auth", "cannot check API key %lld: %s", (long long)key_id, lerr);
        error_set(err, errlen, "the API key cannot be checked right now");
        return AUTH_UNAVAILABLE;
    }
    if (!r.found) {
        error_set(err, errlen, "the session's API key was revoked");
        return AUTH_INVALID;
    }
    *scope = r.scope;
    return AUTH_OK;
}
