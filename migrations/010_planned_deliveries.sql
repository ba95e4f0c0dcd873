-- Planned deliveries live in their event's row until a worker claims them.
--
-- The dispatcher used to insert one deliveries row per planned delivery,
-- which the worker's claim then updated and its outcome updated again: three
-- row writes per delivery, the largest single cost of the database.  Now the
-- dispatcher records each event's planned deliveries in the event's own row
-- (one row per event, whatever its fan-out), as a two-dimensional array with
-- one {channel, idempotency key, address} row per delivery.  The worker's
-- claim inserts the deliveries row (it always could: a delivery whose row is
-- missing is inserted by its claim), and the outcome updates it.  Skipped and
-- scheduled deliveries still get their rows from the dispatcher: no worker
-- will claim them yet.
ALTER TABLE events ADD COLUMN planned text[];

-- What to report for each delivery: its row, or, for a planned delivery not
-- yet claimed, a pending entry derived from the event's row.  The status API
-- and anyone looking at the database read this view; a filter on event_id
-- reaches both halves (the events and deliveries indexes on event_id).
-- The claimed check is a subquery kept apart by OFFSET 0: the planner puts
-- 1,000 rows on every generate_subscripts(), and as an anti-join the check
-- became a hash join over the whole deliveries table; as a subquery it is
-- one primary-key probe per planned delivery.
CREATE VIEW delivery_status AS
SELECT d.idempotency_key, d.event_id, d.user_id, d.channel, d.address, d.status, d.attempts,
       d.last_error, d.skip_reason, d.provider, d.provider_message_id, d.not_before,
       d.created_at, d.updated_at
FROM deliveries d
UNION ALL
SELECT e.planned[i][2], e.event_id, e.user_id, e.planned[i][1], e.planned[i][3], 'pending', 0,
       NULL, NULL, NULL, NULL, NULL, e.dispatched_at, e.dispatched_at
FROM events e CROSS JOIN LATERAL generate_subscripts(e.planned, 1) AS i
WHERE e.planned IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.idempotency_key = e.planned[i][2] OFFSET 0);
