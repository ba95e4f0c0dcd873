/*
 * outq: see outq.h.
 */
#include "outq.h"

#include <stdlib.h>

struct outq_node {
    outq_node *next;
    rtframe *frame;
    bool live;
};

void outq_init(outq *q, size_t cap)
{
    *q = (outq){.cap = cap};
}

void outq_fini(outq *q)
{
    while (q->head != NULL)
        outq_pop(q);
}

static outq_result append(outq *q, rtframe *f, bool live)
{
    outq_node *n = malloc(sizeof *n);
    if (n == NULL)
        return OUTQ_NOMEM;
    *n = (outq_node){.frame = rtframe_ref(f), .live = live};
    if (q->tail != NULL)
        q->tail->next = n;
    else
        q->head = n;
    q->tail = n;
    q->ntotal++;
    q->nlive += live;
    if (f->seq > q->seq)
        q->seq = f->seq;
    return OUTQ_QUEUED;
}

outq_result outq_push_initial(outq *q, rtframe *f)
{
    return append(q, f, false);
}

outq_result outq_offer(outq *q, rtframe *f)
{
    if (f->seq <= q->seq)
        return OUTQ_SKIPPED;
    if (q->nlive >= q->cap)
        return OUTQ_FULL;
    return append(q, f, true);
}

rtframe *outq_peek(const outq *q)
{
    return q->head != NULL ? q->head->frame : NULL;
}

void outq_pop(outq *q)
{
    outq_node *n = q->head;
    if (n == NULL)
        return;
    q->head = n->next;
    if (q->head == NULL)
        q->tail = NULL;
    q->ntotal--;
    q->nlive -= n->live;
    rtframe_unref(n->frame);
    free(n);
}

const char *outq_result_name(outq_result r)
{
    switch (r) {
    case OUTQ_QUEUED:
        return "queued";
    case OUTQ_SKIPPED:
        return "skipped";
    case OUTQ_FULL:
        return "full";
    case OUTQ_NOMEM:
        return "out of memory";
    }
    return "?";
}
