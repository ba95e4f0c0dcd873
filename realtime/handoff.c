/*
 * handoff: see handoff.h.
 */
#include "handoff.h"

#include <stdio.h>
#include <stdlib.h>

int handoff_init(handoff *h, size_t cap)
{
    *h = (handoff){.cap = cap};
    h->items = calloc(cap, sizeof *h->items);
    if (h->items == NULL)
        return -1;
    pthread_mutex_init(&h->lock, NULL);
    return 0;
}

void handoff_fini(handoff *h)
{
    if (h->items == NULL)
        return;
    for (size_t i = 0; i < h->count; i++)
        rtframe_unref(h->items[(h->head + i) % h->cap].frame);
    free(h->items);
    h->items = NULL;
    pthread_mutex_destroy(&h->lock);
}

bool handoff_push(handoff *h, const char *user_id, rtframe *f)
{
    bool ok = false;
    pthread_mutex_lock(&h->lock);
    if (h->count < h->cap) {
        handoff_item *it = &h->items[(h->head + h->count) % h->cap];
        snprintf(it->user_id, sizeof it->user_id, "%s", user_id);
        it->frame = f;
        h->count++;
        ok = true;
    }
    pthread_mutex_unlock(&h->lock);
    return ok;
}

size_t handoff_take(handoff *h, handoff_item *out, size_t max)
{
    size_t n = 0;
    pthread_mutex_lock(&h->lock);
    while (n < max && h->count > 0) {
        out[n++] = h->items[h->head];
        h->head = (h->head + 1) % h->cap;
        h->count--;
    }
    pthread_mutex_unlock(&h->lock);
    return n;
}
