/*
 * handoff: the events the Kafka thread hands to the WebSocket service
 * thread, under one lock.
 *
 * Bounded: when the service thread falls this far behind, the Kafka thread
 * waits (and Kafka, not memory, holds the backlog).  The producer wakes the
 * consumer itself (lws_cancel_service) after pushing.
 */
#ifndef HERALD_HANDOFF_H
#define HERALD_HANDOFF_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include "rtframe.h"
#include "validate.h"

typedef struct handoff_item {
    char user_id[VALIDATE_USER_ID_MAX + 1];
    rtframe *frame;
} handoff_item;

typedef struct handoff {
    pthread_mutex_t lock;
    handoff_item *items; /* a ring of cap */
    size_t cap, head, count;
} handoff;

int handoff_init(handoff *h, size_t cap) __attribute__((warn_unused_result));

/* Unrefs what is still queued. */
void handoff_fini(handoff *h);

/* Takes the frame's reference on true; false (nothing taken) when full. */
bool handoff_push(handoff *h, const char *user_id, rtframe *f);

/* Moves up to max items into out (the caller owns their frames); returns how many. */
size_t handoff_take(handoff *h, handoff_item *out, size_t max);

#endif
