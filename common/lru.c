/*
 * lru: bounded string-keyed cache with per-entry TTL (see lru.h).
 *
 * Each entry lives in one allocation (header plus key) and sits in two
 * places: common/dict's table, which grows with the cache so lookups stay
 * O(1) without allocating for max_entries up front, and the recency list
 * (head = most recently used, tail = next to evict).
 */
#include "lru.h"
#include "dict.h"

#include <stdlib.h>
#include <string.h>

typedef struct lru_entry {
    dict_node node;
    struct lru_entry *prev; /* towards the head (more recent) */
    struct lru_entry *next; /* towards the tail (less recent) */
    void *value;
    size_t size;
    int64_t expires_at_ms;
    char key[];
} lru_entry;

struct lru_cache {
    dict table;
    lru_entry *head;
    lru_entry *tail;
    size_t max_entries;
    size_t max_bytes; /* 0 = unbounded */
    lru_free_fn free_value;
    lru_stats stats;
};

lru_cache *lru_new(size_t max_entries, size_t max_bytes, lru_free_fn free_value)
{
    lru_cache *c = NULL;
    lru_cache *ret = NULL;

    if (max_entries == 0)
        goto out;
    c = calloc(1, sizeof(*c));
    if (c == NULL)
        goto out;
    if (dict_init(&c->table, 0) < 0)
        goto out;
    c->max_entries = max_entries;
    c->max_bytes = max_bytes;
    c->free_value = free_value;
    ret = c;
    c = NULL;
out:
    if (c != NULL)
        dict_fini(&c->table);
    free(c);
    return ret;
}

static lru_entry *lru_find(const lru_cache *c, const char *key, uint64_t hash)
{
    dict_node *n = dict_find_hashed(&c->table, key, hash);
    return n != NULL ? dict_record(n, lru_entry, node) : NULL;
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

/* Unlinks e everywhere and frees it; destroys its value when destroy_value. */
static void lru_drop(lru_cache *c, lru_entry *e, bool destroy_value)
{
    dict_remove(&c->table, &e->node);
    lru_list_unlink(c, e);
    c->stats.entries--;
    c->stats.bytes -= e->size;
    if (destroy_value && c->free_value != NULL)
        c->free_value(e->value);
    free(e);
}

void *lru_get(lru_cache *c, const char *key, int64_t now_ms)
{
    lru_entry *e = lru_find(c, key, dict_hash(key));
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
    uint64_t hash = dict_hash(key);
    e->value = value;
    e->size = size;
    e->expires_at_ms = expires_at_ms;
    e->prev = e->next = NULL;

    lru_entry *old = lru_find(c, key, hash);
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

    dict_add_hashed(&c->table, &e->node, e->key, hash);
    lru_list_push_head(c, e);
    c->stats.entries++;
    c->stats.bytes += size;
    return 0;
}

bool lru_remove(lru_cache *c, const char *key)
{
    lru_entry *e = lru_find(c, key, dict_hash(key));
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
    dict_fini(&c->table);
    free(c);
}
