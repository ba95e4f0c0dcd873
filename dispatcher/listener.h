/*
 * listener: a dedicated PostgreSQL connection that LISTENs for the schema's
 * cache-invalidation notifications (herald_user_changed,
 * herald_template_changed), polled from the daemon loop without blocking.
 *
 * The connection is separate from the one that runs the batch queries
 * because a notification is only delivered between transactions of the
 * listening session, and because that one can be down for a while without
 * invalidation stopping.  When the connection is lost, notifications sent
 * meanwhile are lost too: listener_poll() then reports LISTENER_RESET, once
 * when the loss is seen and once when listening again, and the caller clears
 * its caches each time (entries loaded in between may be stale as well).
 * Reconnection is attempted on each poll, no more often than a capped
 * backoff allows.  Not thread-safe.
 */
#ifndef HERALD_DISPATCHER_LISTENER_H
#define HERALD_DISPATCHER_LISTENER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct listener listener;

typedef void (*listener_fn)(void *ctx, const char *channel, const char *payload);

typedef enum {
    LISTENER_OK = 0,    /* notifications (if any) were delivered */
    LISTENER_RESET = 1, /* notifications may have been missed: clear the caches */
} listener_status;

/*
 * Creates a listener for the given channel names (copied; NULL-terminated
 * list).  It connects on the first poll, so a database that is down at
 * startup is not an error here.  url is copied.
 */
listener *listener_new(const char *url, const char *const *channels)
    __attribute__((warn_unused_result));
void listener_free(listener *l);

/*
 * Reads what the server sent, without blocking, and calls fn for each
 * notification; (re)connects when due.  now_ms is a monotonic clock.
 */
listener_status listener_poll(listener *l, int64_t now_ms, listener_fn fn, void *ctx);

/* True while connected and listening. */
bool listener_ok(const listener *l);

#endif
