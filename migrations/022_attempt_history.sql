-- Every attempt of a delivery leaves a history row, the failed ones that
-- will be retried included (status 'retrying', the provider's error as the
-- reason), so that an event's timeline shows each attempt and why it failed.
-- The worker writes the row in the statement that records the outcome, as
-- it already did for the final statuses; attempt is the delivery's attempt
-- number then (NULL for receipts, operators and suppressed deliveries,
-- which are not sends).  Status webhooks are made from final statuses only
-- (webhook_type_of_status), so 'retrying' rows make no calls.
ALTER TABLE delivery_history ADD COLUMN attempt integer CHECK (attempt >= 1);

-- GET /v1/events?user_id= pages a user's events newest first; and
-- ?idempotency_key= looks the publisher's key up under any API key.
CREATE INDEX events_user_idx ON events (user_id, created_at, event_id) WHERE user_id IS NOT NULL;
CREATE INDEX publish_idempotency_key_idx ON publish_idempotency (idempotency_key);
