/*
 * keyq: see keyq.h.  common/dict's table of held keys, each with a FIFO
 * of waiting items.
 */
#include "keyq.h"
#include "dict.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* A worker holds a batch's worth of keys at once; start past the churn. */
#define KEYQ_INITIAL_BUCKETS 256

typedef struct waiter {
    void *item;
    struct waiter *next;
} waiter;

typedef struct slot {
    dict_node node;
    waiter *head, *tail;
    char key[]; /* in the same allocation: one malloc per held key, not two */
} slot;

struct keyq {
    dict held;
    size_t waiting;
};

keyq *keyq_new(void)
{
    keyq *q = calloc(1, sizeof *q);
    if (q == NULL)
        return NULL;
    if (dict_init(&q->held, KEYQ_INITIAL_BUCKETS) < 0) {
        free(q);
        return NULL;
    }
    return q;
}

void keyq_free(keyq *q)
{
    if (q == NULL)
        return;
    dict_iter it;
    dict_iter_init(&it, &q->held);
    for (dict_node *n; (n = dict_iter_next(&it)) != NULL;) {
        slot *s = dict_record(n, slot, node);
        for (waiter *w = s->head; w;) {
            waiter *wn = w->next;
            free(w);
            w = wn;
        }
        free(s);
    }
    dict_fini(&q->held);
    free(q);
}

int keyq_acquire(keyq *q, const char *key, void *item)
{
    uint64_t h = dict_hash(key);
    dict_node *n = dict_find_hashed(&q->held, key, h);
    if (n != NULL) {
        slot *s = dict_record(n, slot, node);
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
    dict_add_hashed(&q->held, &s->node, s->key, h);
    return 1;
}

void *keyq_release(keyq *q, const char *key)
{
    dict_node *n = dict_find(&q->held, key);
    if (n == NULL)
        return NULL;
    slot *s = dict_record(n, slot, node);
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
    dict_remove(&q->held, &s->node);
    free(s);
    return NULL;
}

size_t keyq_held(const keyq *q)
{
    return dict_count(&q->held);
}

size_t keyq_waiting(const keyq *q)
{
    return q->waiting;
}
