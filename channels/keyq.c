/*
 * keyq: see keyq.h.  A chained hash table of held keys, each with a FIFO
 * of waiting items; the table doubles when it gets dense.
 */
#include "keyq.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct waiter {
    void *item;
    struct waiter *next;
} waiter;

typedef struct slot {
    uint64_t hash;
    waiter *head, *tail;
    struct slot *next;
    char key[]; /* in the same allocation: one malloc per held key, not two */
} slot;

struct keyq {
    slot **buckets;
    size_t nbuckets; /* power of two */
    size_t held;
    size_t waiting;
};

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

keyq *keyq_new(void)
{
    keyq *q = calloc(1, sizeof *q);
    if (q == NULL)
        return NULL;
    q->nbuckets = 256;
    q->buckets = calloc(q->nbuckets, sizeof *q->buckets);
    if (q->buckets == NULL) {
        free(q);
        return NULL;
    }
    return q;
}

void keyq_free(keyq *q)
{
    if (q == NULL)
        return;
    for (size_t i = 0; i < q->nbuckets; i++) {
        slot *s = q->buckets[i];
        while (s) {
            slot *n = s->next;
            for (waiter *w = s->head; w;) {
                waiter *wn = w->next;
                free(w);
                w = wn;
            }
            free(s);
            s = n;
        }
    }
    free(q->buckets);
    free(q);
}

static void grow(keyq *q)
{
    size_t nb = q->nbuckets * 2;
    slot **b = calloc(nb, sizeof *b);
    if (b == NULL)
        return; /* stay denser: still correct */
    for (size_t i = 0; i < q->nbuckets; i++) {
        slot *s = q->buckets[i];
        while (s) {
            slot *n = s->next;
            size_t j = s->hash & (nb - 1);
            s->next = b[j];
            b[j] = s;
            s = n;
        }
    }
    free(q->buckets);
    q->buckets = b;
    q->nbuckets = nb;
}

int keyq_acquire(keyq *q, const char *key, void *item)
{
    uint64_t h = hash_str(key);
    slot **bp = &q->buckets[h & (q->nbuckets - 1)];
    for (slot *s = *bp; s; s = s->next) {
        if (s->hash != h || strcmp(s->key, key) != 0)
            continue;
        waiter *w = malloc(sizeof *w);
        if (w == NULL)
            return -1;
        w->item = item;
        w->next = NULL;
        if (s->tail)
            s->tail->next = w;
        else
            s->head = w;
        s->tail = w;
        q->waiting++;
        return 0;
    }
    size_t klen = strlen(key);
    slot *s = malloc(sizeof *s + klen + 1);
    if (s == NULL)
        return -1;
    memcpy(s->key, key, klen + 1);
    s->head = s->tail = NULL;
    s->hash = h;
    s->next = *bp;
    *bp = s;
    q->held++;
    if (q->held > q->nbuckets)
        grow(q);
    return 1;
}

void *keyq_release(keyq *q, const char *key)
{
    uint64_t h = hash_str(key);
    slot **bp = &q->buckets[h & (q->nbuckets - 1)];
    for (slot **pp = bp; *pp; pp = &(*pp)->next) {
        slot *s = *pp;
        if (s->hash != h || strcmp(s->key, key) != 0)
            continue;
        if (s->head) {
            waiter *w = s->head;
            void *item = w->item;
            s->head = w->next;
            if (s->head == NULL)
                s->tail = NULL;
            free(w);
            q->waiting--;
            return item;
        }
        *pp = s->next;
        free(s);
        q->held--;
        return NULL;
    }
    return NULL;
}

size_t keyq_held(const keyq *q)
{
    return q->held;
}

size_t keyq_waiting(const keyq *q)
{
    return q->waiting;
}
