/*
 * dueq: see dueq.h.  A sequence number breaks ties so equal times keep
 * their order.
 */
#include "dueq.h"
#include "vec.h"

#include <stdlib.h>

typedef struct node {
    int64_t due;
    uint64_t seq;
    void *item;
} node;

struct dueq {
    node *h;
    size_t n, cap;
    uint64_t seq;
};

dueq *dueq_new(void)
{
    return calloc(1, sizeof(dueq));
}

void dueq_free(dueq *q)
{
    if (q == NULL)
        return;
    free(q->h);
    free(q);
}

static int before(const node *a, const node *b)
{
    return a->due < b->due || (a->due == b->due && a->seq < b->seq);
}

int dueq_push(dueq *q, int64_t due_ms, void *item)
{
    if (q->n == q->cap) {
        node *nh = vec_grow(q->h, &q->cap, sizeof *nh);
        if (nh == NULL)
            return -1;
        q->h = nh;
    }
    size_t i = q->n++;
    node nd = {due_ms, q->seq++, item};
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!before(&nd, &q->h[parent]))
            break;
        q->h[i] = q->h[parent];
        i = parent;
    }
    q->h[i] = nd;
    return 0;
}

int64_t dueq_next_due(const dueq *q)
{
    return q->n ? q->h[0].due : INT64_MAX;
}

void *dueq_pop(dueq *q)
{
    if (q->n == 0)
        return NULL;
    void *item = q->h[0].item;
    node last = q->h[--q->n];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        const node *best = &last;
        if (l < q->n && before(&q->h[l], best)) {
            m = l;
            best = &q->h[l];
        }
        if (r < q->n && before(&q->h[r], best))
            m = r;
        if (m == i)
            break;
        q->h[i] = q->h[m];
        i = m;
    }
    if (q->n)
        q->h[i] = last;
    return item;
}

void *dueq_pop_due(dueq *q, int64_t now_ms)
{
    if (q->n == 0 || q->h[0].due > now_ms)
        return NULL;
    return dueq_pop(q);
}

size_t dueq_size(const dueq *q)
{
    return q->n;
}
