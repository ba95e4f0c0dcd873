-- `heraldctl dlq requeue` claims a DLQ record here (the primary key makes
-- the claim unique) and commits the claim BEFORE producing the record back
-- to its original topic; acked_at is set once the broker acknowledged it.
-- A row with acked_at NULL is therefore in doubt: a requeue that crashed (or
-- whose produce timed out) between claim and acknowledgement.  The next
-- requeue resolves every such row first, by looking for the record's
-- herald.requeued_from header in the target topic after requeued_at:
-- found means it was sent (mark it acked), absent means it was not (send
-- it now).  So a crash neither loses a requeue nor sends one twice.
ALTER TABLE dlq_requeues ADD COLUMN acked_at timestamptz;

-- Rows written before this column existed were recorded after success.
UPDATE dlq_requeues SET acked_at = requeued_at;

CREATE INDEX dlq_requeues_in_doubt_idx ON dlq_requeues (dlq_topic) WHERE acked_at IS NULL;
