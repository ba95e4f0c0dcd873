/*
 * dict: chained string-keyed hash table over caller-owned nodes (see dict.h).
 */
#include "dict.h"

#include <stdlib.h>
#include <string.h>

#define DICT_MIN_BUCKETS 16

int dict_init(dict *d, size_t nbuckets)
{
    size_t n = DICT_MIN_BUCKETS;
    while (n < nbuckets && n <= SIZE_MAX / 2 / sizeof(*d->buckets))
        n *= 2;
    d->count = 0;
    d->nbuckets = 0;
    d->buckets = calloc(n, sizeof(*d->buckets));
    if (d->buckets == NULL)
        return -1;
    d->nbuckets = n;
    return 0;
}

void dict_fini(dict *d)
{
    free(d->buckets);
    d->buckets = NULL;
    d->nbuckets = 0;
    d->count = 0;
}

dict_node *dict_find(const dict *d, const char *key)
{
    return dict_find_hashed(d, key, dict_hash(key));
}

/* A failed resize only lengthens the chains, so it is not an error. */
static void dict_maybe_grow(dict *d)
{
    if (d->count <= d->nbuckets || d->nbuckets > SIZE_MAX / 2 / sizeof(*d->buckets))
        return;
    size_t nb = d->nbuckets * 2;
    dict_node **b = calloc(nb, sizeof(*b));
    if (b == NULL)
        return;
    for (size_t i = 0; i < d->nbuckets; i++) {
        dict_node *n = d->buckets[i];
        while (n != NULL) {
            dict_node *next = n->next;
            n->next = b[n->hash & (nb - 1)];
            b[n->hash & (nb - 1)] = n;
            n = next;
        }
    }
    free(d->buckets);
    d->buckets = b;
    d->nbuckets = nb;
}

void dict_add_hashed(dict *d, dict_node *node, const char *key, uint64_t hash)
{
    dict_node **bp = &d->buckets[hash & (d->nbuckets - 1)];
    node->hash = hash;
    node->key = key;
    node->next = *bp;
    *bp = node;
    d->count++;
    dict_maybe_grow(d);
}

void dict_add(dict *d, dict_node *node, const char *key)
{
    dict_add_hashed(d, node, key, dict_hash(key));
}

void dict_remove(dict *d, dict_node *node)
{
    dict_node **pp = &d->buckets[node->hash & (d->nbuckets - 1)];
    while (*pp != node)
        pp = &(*pp)->next;
    *pp = node->next;
    node->next = NULL;
    d->count--;
}

size_t dict_count(const dict *d)
{
    return d->count;
}

/* Moves it->next to the first node at or after bucket it->bucket. */
static void dict_iter_advance(dict_iter *it)
{
    while (it->next == NULL && it->bucket < it->d->nbuckets)
        it->next = it->d->buckets[it->bucket++];
}

void dict_iter_init(dict_iter *it, const dict *d)
{
    it->d = d;
    it->bucket = 0;
    it->next = NULL;
    dict_iter_advance(it);
}

dict_node *dict_iter_next(dict_iter *it)
{
    dict_node *n = it->next;
    if (n == NULL)
        return NULL;
    it->next = n->next;
    dict_iter_advance(it);
    return n;
}
