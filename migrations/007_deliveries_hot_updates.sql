-- Cheaper delivery rows.  Every delivery row is inserted once (dispatcher,
-- or the worker's claim) and then updated twice: the claim takes the lease
-- and the outcome releases it.  Neither update touches an indexed column,
-- so both can be HOT updates (the new row version goes on the same page and
-- no index is written) -- but only when the page has room for it.  With the
-- default fillfactor of 100 the dispatcher's inserts fill each page to the
-- brim and almost every update moved the row to another page and inserted
-- into every index again.  Half a page kept free holds the extra versions
-- until page pruning reclaims them; the table stays smaller than it was with
-- full pages and non-HOT updates.  Applies to pages written from now on.
ALTER TABLE deliveries SET (fillfactor = 50);

-- Nothing reads deliveries by (user_id, created_at): the gateway reads by
-- event_id (deliveries_event_idx), workers by idempotency key (primary key).
-- The index was one more write per inserted row.
DROP INDEX IF EXISTS deliveries_user_idx;
