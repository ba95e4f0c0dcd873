/*
 * status: the dispatcher's record in PostgreSQL of what it decided — one
 * events row per event, holding its planned deliveries, and one deliveries
 * row per skipped or scheduled delivery — written once per batch with a
 * single statement.
 *
 * A planned delivery gets its own deliveries row from the worker's claim;
 * until then it is an element of its event's "planned" column, a
 * two-dimensional text array with one {channel, idempotency key, address}
 * row per delivery (migration 010).  The delivery_status view reports both
 * as one.  One row write per event instead of one per delivery: the worker
 * inserts the row it used to update.
 *
 * The rows of a batch are accumulated column by column, one PostgreSQL array
 * literal per column ({"a","b",NULL}), and inserted by one
 * INSERT ... SELECT FROM unnest(...) per table, both in one statement (so in
 * one implicit transaction), with ON CONFLICT DO NOTHING:
 * a batch redone after an aborted Kafka transaction or a crash inserts
 * nothing twice.
 *
 * The dispatcher writes the rows before it commits the Kafka transaction
 * that carries the deliveries, so a delivery visible on a deliveries topic
 * is always visible in delivery_status; a row whose Kafka message was never
 * committed is produced again by the redo of its batch.
 *
 * Building the arrays is pure; status_write() does the I/O.  Not thread-safe.
 */
#ifndef HERALD_DISPATCHER_STATUS_H
#define HERALD_DISPATCHER_STATUS_H

#include <stddef.h>
#include <stdint.h>

#include "event.h"
#include "fanout.h"
#include "pg.h"

typedef struct status_batch status_batch;

/* byte_cap bounds each table's columns together (a batch bigger than that fails to add: write it
 * first). */
status_batch *status_batch_new(size_t byte_cap) __attribute__((warn_unused_result));
void status_batch_free(status_batch *b);

/* Empties the batch, keeping its buffers. */
void status_batch_reset(status_batch *b);

/*
 * Adds the events row of ev with what was decided for it, items[0..n) (none
 * for a broadcast): the planned deliveries in the row, a deliveries row for
 * each skipped or scheduled one.  A redelivered event (generation > 0) has a
 * pending deliveries row for each planned delivery instead: its events row
 * is the first generation's.  0, or -1 when out of memory or past the
 * cap (the batch is then only fit to be reset).
 */
int status_add_event(status_batch *b, const event *ev, const fanout_item *items, size_t n)
    __attribute__((warn_unused_result));

/*
 * Adds deliveries rows for items[0..n) of an event whose events row exists
 * already (a follow-up sent later): planned ones as pending rows.
 */
int status_add_deliveries(status_batch *b, const event *ev, const fanout_item *items, size_t n)
    __attribute__((warn_unused_result));

size_t status_event_count(const status_batch *b);
size_t status_delivery_count(const status_batch *b);

/*
 * The accumulated array literal of one column, for tests: "{...}", or NULL
 * when col is out of range or out of memory.  Events columns: event_id,
 * type, user_id, topic, priority, category, broadcast_id, created_at,
 * planned, api_key_id.  Deliveries columns: idempotency_key, event_id, user_id, channel,
 * address, status, skip_reason, not_before.
 */
#define STATUS_EVENT_COLUMNS    10
#define STATUS_DELIVERY_COLUMNS 8
const char *status_events_column(status_batch *b, size_t col);
const char *status_deliveries_column(status_batch *b, size_t col);

/* Inserts the batch (nothing to do is PG_OK). */
pg_status status_write(status_batch *b, pg_conn *db, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/*
 * The same insert without waiting, so that the dispatcher can fan out the
 * next part of a batch while the database inserts this one: status_send()
 * hands the rows to libpq (which copies them: the batch may be reset at
 * once), status_recv() waits for the outcome.  At most one insert is in
 * flight per connection.  conn is the raw connection (pg_raw()); NULL, a
 * broken connection or a failed send report PG_RETRY, after which the caller
 * checks the pg_conn (pg_ok / pg_reset) before using it again.
 */
pg_status status_send(status_batch *b, PGconn *conn, char *err, size_t errlen)
    __attribute__((warn_unused_result));
pg_status status_recv(PGconn *conn, char *err, size_t errlen) __attribute__((warn_unused_result));

#endif
