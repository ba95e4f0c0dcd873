/*
 * lru: bounded string-keyed cache with per-entry TTL (see lru.h).
 *
 * Each entry lives in one allocation (header plus key) and sits on two
 * lists: its hash bucket's chain and the recency list (head = most recently
 * used, tail = next to evict).  The bucket array doubles when the load passes
 * 1, so lookups stay O(1) on average however large max_entries is, without
 * allocating for max_entries up front.
 */
#include "lru.h"

#include <stdlib.h>
#include <string.h>

#define LRU_INITIAL_BUCKETS 16

typedef struct lru_entry {
    struct lru_entry *prev;  /* towards the head (more recent) */
    struct lru_entry *next;  /* towards the tail (less recent) */
    struct lru_entry *hnext; /* next in the hash chain */
    uint64_t hash;
    void *value;
    size_t size;
    int64_t expires_at_ms;
    char key[];
} lru_entry;

struct lru_cache {
    lru_entry **buckets;
    size_t nbuckets; /* a power of two */
    lru_entry *head;
    lru_entry *tail;
    size_t max_entries;
    size_t max_bytes; /* 0 = unbounded */
    lru_free_fn free_value;
    lru_stats stats;
};

/* FNV-1a, then a murmur-style finaliser so the low bits used as the bucket
 * index depend on every byte of the key. */
static uint64_t lru_hash(const char *key)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (const unsigned char *p = (const unsigned char *)key; *p != '\0'; p++) {
        h ^= *p;
        h *= 0x100000001b3ULL;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return h;
}

lru_cache *lru_new(size_t max_entries, size_t max_bytes, lru_free_fn free_value)
{
    lru_cache *c = NULL;
    lru_cache *ret = NULL;

    if (max_entries == 0)
        goto out;
    c = calloc(1, sizeof(*c));
    if (c == NULL)
        goto out;
    c->buckets = calloc(LRU_INITIAL_BUCKETS, sizeof(*c->buckets));
    if (c->buckets == NULL)
        goto out;
    c->nbuckets = LRU_INITIAL_BUCKETS;
    c->max_entries = max_entries;
    c->max_bytes = max_bytes;
    c->free_value = free_value;
    ret = c;
    c = NULL;
out:
    if (c != NULL)
        free(c->buckets);
    free(c);
    return ret;
}

static lru_entry *lru_find(const lru_cache *c, const char *key, uint64_t hash)
{
    for (lru_entry *e = c->buckets[hash & (c->nbuckets - 1)]; e != NULL; e = e->hnext) {
        if (e->hash == hash && strcmp(e->key, key) == 0)
            return e;
    }
    return NULL;
}

static void lru_list_unlink(lru_cache *c, lru_entry *e)
{
    if (e->prev != NULL)
        e->prev->next = e->next;
    else
        c->head = e->next;
    if (e->next != NULL)
        e->next->prev = e->prev;
    else
        c->tail = e->prev;
    e->prev = e->next = NULL;
}

static void lru_list_push_head(lru_cache *c, lru_entry *e)
{
    e->prev = NULL;
    e->next = c->head;
    if (c->head != NULL)
        c->head->prev = e;
    c->head = e;
    if (c->tail == NULL)
        c->tail = e;
}

static void lru_hash_unlink(lru_cache *c, lru_entry *e)
{
    lru_entry **pp = &c->buckets[e->hash & (c->nbuckets - 1)];
    while (*pp != e)
        pp = &(*pp)->hnext;
    *pp = e->hnext;
    e->hnext = NULL;
}

/* Unlinks e everywhere and frees it; destroys its value when destroy_value. */
static void lru_drop(lru_cache *c, lru_entry *e, bool destroy_value)
{
    lru_hash_unlink(c, e);
    lru_list_unlink(c, e);
    c->stats.entries--;
    c->stats.bytes -= e->size;
    if (destroy_value && c->free_value != NULL)
        c->free_value(e->value);
    free(e);
}

/* A failed resize only lengthens the chains, so it is not an error. */
static void lru_maybe_grow(lru_cache *c)
{
    if (c->stats.entries <= c->nbuckets || c->nbuckets > SIZE_MAX / 2 / sizeof(lru_entry *))
        return;
    size_t n = c->nbuckets * 2;
    lru_entry **b = calloc(n, sizeof(*b));
    if (b == NULL)
        return;
    for (size_t i = 0; i < c->nbuckets; i++) {
        lru_entry *e = c->buckets[i];
        while (e != NULL) {
            lru_entry *next = e->hnext;
            e->hnext = b[e->hash & (n - 1)];
            b[e->hash & (n - 1)] = e;
            e = next;
        }
    }
    free(c->buckets);
    c->buckets = b;
    c->nbuckets = n;
}

void *lru_get(lru_cache *c, const char *key, int64_t now_ms)
{
    lru_entry *e = lru_find(c, key, lru_hash(key));
    if (e == NULL) {
        c->stats.misses++;
        return NULL;
    }
    if (now_ms >= e->expires_at_ms) {
        c->stats.misses++;
        c->stats.expirations++;
        lru_drop(c, e, true);
        return NULL;
    }
    c->stats.hits++;
    if (c->head != e) {
        lru_list_unlink(c, e);
        lru_list_push_head(c, e);
    }
    return e->value;
}

int lru_put(lru_cache *c, const char *key, void *value, size_t size, int64_t expires_at_ms)
{
    if (value == NULL || (c->max_bytes != 0 && size > c->max_bytes))
        return -1;

    /* Allocate before touching anything so that failure leaves the cache
     * exactly as it was. */
    size_t keylen = strlen(key);
    lru_entry *e = malloc(sizeof(*e) + keylen + 1);
    if (e == NULL)
        return -1;
    memcpy(e->key, key, keylen + 1);
    e->hash = lru_hash(key);
    e->value = value;
    e->size = size;
    e->expires_at_ms = expires_at_ms;
    e->prev = e->next = e->hnext = NULL;

    lru_entry *old = lru_find(c, key, e->hash);
    if (old != NULL) {
        /* Re-putting the same value refreshes it; destroying it would leave
         * the cache holding freed memory. */
        lru_drop(c, old, old->value != value);
    }

    while (c->stats.entries >= c->max_entries ||
           (c->max_bytes != 0 && c->stats.bytes + size > c->max_bytes)) {
        c->stats.evictions++;
        lru_drop(c, c->tail, true);
    }

    size_t idx = e->hash & (c->nbuckets - 1);
    e->hnext = c->buckets[idx];
    c->buckets[idx] = e;
    lru_list_push_head(c, e);
    c->stats.entries++;
    c->stats.bytes += size;
    lru_maybe_grow(c);
    return 0;
}

bool lru_remove(lru_cache *c, const char *key)
{
    lru_entry *e = lru_find(c, key, lru_hash(key));
    if (e == NULL)
        return false;
    lru_drop(c, e, true);
    return true;
}

void lru_clear(lru_cache *c)
{
    while (c->tail != NULL)
        lru_drop(c, c->tail, true);
}

size_t lru_purge_expired(lru_cache *c, int64_t now_ms)
{
    size_t n = 0;
    lru_entry *e = c->tail;
    while (e != NULL) {
        lru_entry *prev = e->prev;
        if (now_ms >= e->expires_at_ms) {
            c->stats.expirations++;
            lru_drop(c, e, true);
            n++;
        }
        e = prev;
    }
    return n;
}

size_t lru_count(const lru_cache *c)
{
    return c->stats.entries;
}

void lru_stats_get(const lru_cache *c, lru_stats *out)
{
    *out = c->stats;
}

void lru_free(lru_cache *c)
{
    if (c == NULL)
        return;
    lru_clear(c);
    free(c->buckets);
    free(c);
}
