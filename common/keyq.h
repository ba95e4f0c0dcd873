/*
 * keyq: at most one job in flight per key, the rest waiting in order.
 *
 * The worker keys jobs by user_id: a user's deliveries are sent one after
 * the other, in the order they were consumed, while different users' go
 * out concurrently.  That keeps per-user order (what Kafka's keying by
 * user_id promised) without serialising a whole partition.  The webhook
 * sender keys calls by endpoint, so an endpoint that is slow to answer
 * holds one request slot, not all of them.
 *
 * Pure, single-threaded.  Items are the caller's; keys are copied.
 */
#ifndef HERALD_KEYQ_H
#define HERALD_KEYQ_H

#include <stdbool.h>
#include <stddef.h>

typedef struct keyq keyq;

keyq *keyq_new(void) __attribute__((warn_unused_result));
/* Frees the table; items still waiting are not touched. */
void keyq_free(keyq *q);

/*
 * Takes key for item: returns 1 when key was free (item may start now),
 * 0 when item was queued behind the key's current holder, -1 when out of
 * memory.
 */
int keyq_acquire(keyq *q, const char *key, void *item) __attribute__((warn_unused_result));

/*
 * The holder of key finished: returns the next waiting item, which now
 * holds the key, or NULL when none waited (the key is free).
 */
void *keyq_release(keyq *q, const char *key);

/* Keys held. */
size_t keyq_held(const keyq *q);
/* Items waiting behind a holder. */
size_t keyq_waiting(const keyq *q);

#endif
