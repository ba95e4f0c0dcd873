/*
 * dueq: items ordered by the time they become due (a binary min-heap).
 *
 * The worker and the webhook sender hold retry records that are not due
 * yet here rather than blocking their partition: records behind a far-off
 * one (a delivery held for the end of quiet hours, a webhook endpoint's
 * long backoff) still go out on time.  Items are the caller's; ties come
 * out in insertion order.  Pure.
 */
#ifndef HERALD_DUEQ_H
#define HERALD_DUEQ_H

#include <stddef.h>
#include <stdint.h>

typedef struct dueq dueq;

dueq *dueq_new(void) __attribute__((warn_unused_result));
/* Frees the heap, not the items. */
void dueq_free(dueq *q);

int dueq_push(dueq *q, int64_t due_ms, void *item) __attribute__((warn_unused_result));

/* The earliest due time, INT64_MAX when empty. */
int64_t dueq_next_due(const dueq *q);

/* Removes and returns the earliest item if it is due at now_ms, else NULL. */
void *dueq_pop_due(dueq *q, int64_t now_ms);

/* Removes and returns the earliest item whatever its time; NULL when empty. */
void *dueq_pop(dueq *q);

size_t dueq_size(const dueq *q);

#endif
