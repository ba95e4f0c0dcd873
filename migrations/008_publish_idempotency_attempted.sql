-- Publish idempotency, third part: when the current publish of a key began.
-- A claim whose publish was in doubt is taken again by a later retry once
-- its in-flight window has passed; that retry is a new attempt (it is in
-- flight from now on) but not a new key: the 24 hours during which the key
-- returns the same event id still count from created_at, the first claim.
-- NULL: the first attempt, which began at created_at.
ALTER TABLE publish_idempotency ADD COLUMN attempted_at timestamptz;
