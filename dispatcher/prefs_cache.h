/*
 * prefs_cache: the users the dispatcher decides for — contacts, push tokens
 * and preferences — held in a bounded LRU in front of PostgreSQL
 * (cache-aside).
 *
 * A batch first looks every user up (prefs_cache_get); the misses of the
 * whole batch are then read with one query (prefs_cache_load: WHERE user_id
 * = ANY($1)).  Users the database does not know are cached as negative
 * entries with a shorter TTL, so a flood of events for a deleted user costs
 * one query per negative TTL, not one per event.
 *
 * Freshness: an entry lives cache_ttl ± 10% (the jitter keeps a batch of
 * users loaded together from expiring together), but changes normally land
 * much sooner: the database notifies herald_user_changed on every change of
 * users, push_tokens and preferences, and the dispatcher calls
 * prefs_cache_invalidate() for each notification.  A lost notification
 * connection may have missed some, so the caller then clears everything.
 * Race-free as long as notifications are drained after a load's entries are
 * stored (the dispatcher's loop does so): a change committed before the
 * load's query is in its result, one committed after it is notified later.
 *
 * Entries are reference counted: a pointer from prefs_cache_get() stays valid
 * until prefs_user_unref(), even if the cache evicts or invalidates it
 * meanwhile.  Memory is bounded by the entry count and by a byte budget.
 * Not thread-safe.
 */
#ifndef HERALD_DISPATCHER_PREFS_CACHE_H
#define HERALD_DISPATCHER_PREFS_CACHE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pg.h"
#include "quiet.h"
#include "tz.h"

typedef struct prefs_cache prefs_cache;

/* One user, immutable once cached (read on the hot path, hence public). */
typedef struct prefs_user {
    int refs;
    bool known; /* false: a negative entry, the user does not exist */
    char *user_id;
    char *email; /* NULL when none */
    char *phone; /* NULL when none */
    char **push_tokens;
    size_t npush_tokens;
    json_t *channels;   /* preferences, or NULL */
    json_t *categories; /* preferences, or NULL */
    quiet_hours quiet;
    const tz_zone *zone;            /* from tz_get (shared), NULL: UTC */
    char *name, *timezone, *locale; /* NULL when none; only templates read them */
    size_t bytes;                   /* approximate footprint, for the byte budget */
} prefs_user;

/*
 * The user as templates see it, {"user_id","name","email","phone","timezone",
 * "locale"} (absent fields left out): a new object, or NULL when out of
 * memory.  Built per rendered event rather than cached, because a jansson
 * tree per cached user would double the cache's memory.
 */
json_t *prefs_user_json(const prefs_user *u) __attribute__((warn_unused_result));

/* The text columns of a user row as the database returns them (NULL for SQL NULL). */
typedef struct prefs_row {
    const char *user_id;
    const char *email, *phone, *name, *timezone, *locale;
    const char *channels_json;   /* preferences.channels, NULL without a row */
    const char *categories_json; /* preferences.categories */
    const char *quiet_start, *quiet_end;
    const char *push_tokens_json; /* JSON array of strings */
} prefs_row;

typedef struct prefs_cache_options {
    size_t max_entries;
    size_t max_bytes; /* 0: no byte budget */
    int64_t ttl_ms;
    int64_t negative_ttl_ms;
    uint64_t seed; /* for the TTL jitter */
} prefs_cache_options;

prefs_cache *prefs_cache_new(const prefs_cache_options *opt) __attribute__((warn_unused_result));
void prefs_cache_free(prefs_cache *c);

/*
 * The cached user (a known user or a negative entry), with one reference the
 * caller must drop with prefs_user_unref(); NULL on a miss.
 */
prefs_user *prefs_cache_get(prefs_cache *c, const char *user_id, int64_t now_ms);

void prefs_user_unref(prefs_user *u);

/*
 * Builds an entry from a row and stores it (pure: no I/O); row NULL stores a
 * negative entry for user_id.  Returns 0, or -1 with err set (out of memory;
 * a malformed preference document is logged and treated as absent instead).
 */
int prefs_cache_put(prefs_cache *c, const char *user_id, const prefs_row *row, int64_t now_ms,
                    char *err, size_t errlen) __attribute__((warn_unused_result));

/*
 * Reads the n users (ids may repeat) with one query and stores them, absent
 * ones as negative entries.  When out is not NULL, out[i] receives the entry
 * of ids[i] with a reference the caller drops (prefs_user_unref), so a batch
 * larger than the cache still sees every user.  PG_OK, or the pg status of
 * the failed query (then out is all NULL).
 */
pg_status prefs_cache_load(prefs_cache *c, pg_conn *db, const char *const *ids, size_t n,
                           int64_t now_ms, prefs_user **out, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Drops one user (a herald_user_changed notification). */
void prefs_cache_invalidate(prefs_cache *c, const char *user_id);

/* Drops every user (the notification connection was lost). */
void prefs_cache_clear(prefs_cache *c);

typedef struct prefs_cache_stats {
    uint64_t hits, misses, evictions, expirations, invalidations;
    size_t entries, bytes;
} prefs_cache_stats;

void prefs_cache_stats_get(const prefs_cache *c, prefs_cache_stats *out);

/*
 * Appends a PostgreSQL array literal {"a","b"} of the n strings to a new
 * string (free() it), for = ANY($1::text[]).  NULL when out of memory.
 */
char *prefs_pg_array(const char *const *items, size_t n) __attribute__((warn_unused_result));

#endif
