-- Publish idempotency, second half: a claim is made before the record is
-- produced and confirmed (published_at) once Kafka acknowledged it.  A
-- replay that meets an unconfirmed claim younger than the publish timeout
-- is answered 409 (the first request is still in flight) rather than
-- handed an event id whose publish may yet fail and be released.
ALTER TABLE publish_idempotency ADD COLUMN published_at timestamptz;
