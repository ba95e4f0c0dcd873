/*
 * feeder: turns delivery_history rows into status webhook calls
 * (docs/webhooks.md, "How calls are made").
 *
 * Reads delivery_history in id order after its cursor (webhook_cursor),
 * makes one call per row and enabled endpoint that subscribed to the
 * row's type and may see its event, produces each to the webhooks topic
 * keyed by endpoint id, and only once the broker acknowledged them all
 * records the calls (for replays) and moves the cursor, in one
 * transaction.  A crash in between makes the same calls again with the
 * same ids and bodies; receivers deduplicate by id.
 *
 * Only one feeder runs at a time in a deployment: the one that holds a
 * PostgreSQL session advisory lock.  The others retry the lock each pass
 * and take over within one pass of the holder's session ending.
 *
 * Also carries out replay requests (webhook_replays): the recorded calls
 * of an endpoint's time window, produced again as they were.
 *
 * Runs on a thread of its own, with its own connection and producer.
 */
#ifndef HERALD_WEBHOOKS_FEEDER_H
#define HERALD_WEBHOOKS_FEEDER_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "daemon.h"
#include "metrics.h"
#include "webhooks_config.h"

typedef struct feeder feeder;

/* The advisory lock key of the feeder. */
#define FEEDER_LOCK_KEY 0x68657277686bLL

/*
 * Connects, registers its metrics in reg and starts the thread; it runs
 * until *stop is set.  health->pg_up follows its connection.  The
 * arguments must outlive the feeder.
 */
feeder *feeder_start(const webhooks_config *cfg, const herald_common_config *common,
                     const config_kafka_props *props, metrics_registry *reg, daemon_health *health,
                     const volatile sig_atomic_t *stop, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Whether this process holds the lock and feeds now. */
bool feeder_active(const feeder *f);

/* Waits for the thread (after *stop was set) and frees f.  NULL is a no-op. */
void feeder_stop(feeder *f);

#endif
