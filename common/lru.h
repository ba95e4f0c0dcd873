/*
 * lru: a bounded least-recently-used cache keyed by string, with a TTL per
 * entry.
 *
 * The cache owns its keys (copied) and, once lru_put() succeeds, its values:
 * it hands a value to the destructor given at creation exactly once, when
 * the entry is replaced, removed, evicted, expired, cleared or freed.
 *
 * Capacity is a number of entries and, optionally, a number of bytes: the
 * caller gives each entry's size (what "a byte" means is the caller's
 * accounting).  Inserting past either limit evicts least-recently-used
 * entries first.  Expiry is passive: an entry whose expires_at_ms has come is
 * dropped when lru_get() meets it, or by lru_purge_expired().  The cache never
 * reads a clock; callers pass now_ms (any monotonic milliseconds) and choose
 * expires_at_ms themselves, jitter included.
 *
 * All operations are O(1) on average (hash table with chaining plus a doubly
 * linked recency list), except lru_clear(), lru_purge_expired() and lru_free().
 *
 * Not thread-safe: a cache shared between threads needs the caller's lock.
 */
#ifndef HERALD_LRU_H
#define HERALD_LRU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct lru_cache lru_cache;

/* Frees one value; called exactly once per value the cache owned. */
typedef void (*lru_free_fn)(void *value);

/* An expires_at_ms that never comes. */
#define LRU_NEVER INT64_MAX

typedef struct lru_stats {
    uint64_t hits;        /* lru_get found a live entry */
    uint64_t misses;      /* lru_get found nothing, or only an expired entry */
    uint64_t evictions;   /* live entries pushed out to make room */
    uint64_t expirations; /* entries dropped because their time had come */
    size_t entries;       /* entries held now */
    size_t bytes;         /* sum of the sizes of the entries held now */
} lru_stats;

/*
 * Creates a cache of at most max_entries entries (at least 1) and, when
 * max_bytes is not 0, at most max_bytes bytes.  free_value may be NULL when
 * the cache does not own what it stores.  Returns NULL on a zero max_entries
 * or when out of memory.
 */
lru_cache *lru_new(size_t max_entries, size_t max_bytes, lru_free_fn free_value)
    __attribute__((warn_unused_result));

/* Destroys every value and the cache.  NULL is a no-op. */
void lru_free(lru_cache *c);

/*
 * Returns the value stored under key and marks it most recently used, or
 * NULL when there is none or it has expired (now_ms >= its expires_at_ms; an
 * expired entry is destroyed on the spot).  The pointer stays valid until the
 * next call that may remove that entry: put, remove, clear, purge or free.
 */
void *lru_get(lru_cache *c, const char *key, int64_t now_ms);

/*
 * Stores value (not NULL) under key as the most recently used entry,
 * replacing (and destroying) any previous value of that key, and evicts
 * least-recently-used entries until both limits hold.  size counts against
 * max_bytes; expires_at_ms is when the entry stops being returned
 * (LRU_NEVER for never).
 *
 * Returns 0 and takes ownership of value, or -1 when value is NULL, size
 * alone exceeds max_bytes, or memory runs out; then the cache is unchanged
 * and the caller still owns value.
 */
int lru_put(lru_cache *c, const char *key, void *value, size_t size, int64_t expires_at_ms)
    __attribute__((warn_unused_result));

/* Destroys the entry of key; returns whether there was one. */
bool lru_remove(lru_cache *c, const char *key);

/* Destroys every entry.  The hit/miss/eviction counters keep counting. */
void lru_clear(lru_cache *c);

/* Destroys every expired entry (a housekeeping pass, O(n)); returns how many. */
size_t lru_purge_expired(lru_cache *c, int64_t now_ms);

size_t lru_count(const lru_cache *c);

/* Fills *out with the counters and the current occupancy. */
void lru_stats_get(const lru_cache *c, lru_stats *out);

#endif
