/*
 * dict: Herald's one string-keyed hash table (redis's dict, intrusive).
 *
 * The table links nodes that live inside the caller's own records, so an
 * entry costs the caller one allocation (record, node and key together), not
 * two; the table itself only owns its bucket array.  A node names its key by
 * pointer: the key must stay put and unchanged while the node is in a table.
 *
 * Chained buckets, a power of two of them, doubled when the entries outnumber
 * the buckets, so lookups stay O(1) on average however large the table gets.
 * A failed doubling only lengthens the chains, so adding never fails.
 *
 * Not thread-safe: a table shared between threads needs the caller's lock.
 */
#ifndef HERALD_DICT_H
#define HERALD_DICT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct dict_node {
    struct dict_node *next; /* in the same bucket */
    uint64_t hash;
    const char *key;
} dict_node;

/* Exposed so that a table can sit inside its owner; use the functions. */
typedef struct dict {
    dict_node **buckets;
    size_t nbuckets; /* a power of two; 0 before dict_init */
    size_t count;
} dict;

typedef struct dict_iter {
    const dict *d;
    size_t bucket;
    dict_node *next;
} dict_iter;

/* The record holding node, given the record's type and the node's member. */
#define dict_record(node, type, member) ((type *)(void *)((char *)(node)-offsetof(type, member)))

/*
 * Makes d an empty table of at least nbuckets buckets (rounded up to a power
 * of two; 0 means 16).  Returns -1 when out of memory; d is then empty and
 * dict_fini may still be called.
 */
int dict_init(dict *d, size_t nbuckets) __attribute__((warn_unused_result));

/* Frees the bucket array; the nodes are the caller's.  Safe on a zeroed d. */
void dict_fini(dict *d);

/* The hash dict uses; lets a caller that looks up then adds hash once.
 * FNV-1a, then a murmur-style finaliser so the low bits used as the bucket
 * index depend on every byte of the key. */
static inline uint64_t dict_hash(const char *key)
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

/* The node whose key equals key, or NULL.  Safe on a zeroed d.  Inline:
 * it is the lookup of every cache hit. */
static inline dict_node *dict_find_hashed(const dict *d, const char *key, uint64_t hash)
{
    if (d->nbuckets == 0)
        return NULL;
    for (dict_node *n = d->buckets[hash & (d->nbuckets - 1)]; n != NULL; n = n->next) {
        if (n->hash == hash && strcmp(n->key, key) == 0)
            return n;
    }
    return NULL;
}

dict_node *dict_find(const dict *d, const char *key);

/*
 * Links node under key, which must not be in d already (find first).  key is
 * the caller's, usually stored in the same record as node.  d must have been
 * initialised.
 */
void dict_add(dict *d, dict_node *node, const char *key);
void dict_add_hashed(dict *d, dict_node *node, const char *key, uint64_t hash);

/* Unlinks node, which must be in d. */
void dict_remove(dict *d, dict_node *node);

size_t dict_count(const dict *d);

/*
 * Visits every node once, in no particular order:
 *   dict_iter it; dict_iter_init(&it, d);
 *   for (dict_node *n; (n = dict_iter_next(&it)) != NULL;) ...
 * The node just returned may be removed (and freed) during the walk; adding
 * nodes during a walk is not allowed.
 */
void dict_iter_init(dict_iter *it, const dict *d);
dict_node *dict_iter_next(dict_iter *it);

#endif
