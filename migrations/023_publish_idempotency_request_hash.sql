-- A reused Idempotency-Key is refused (422 idempotency_key_reused) when
-- its request differs from the first one: request_hash is now the SHA-256
-- of the request (the event record without the event id and creation time
-- the gateway assigns), compared on every claim.  Until now it was the
-- hash of the whole record, which differs on every request; those hashes
-- are cleared, and a claim without a hash matches any request, as before,
-- until it expires after 24 hours.
UPDATE publish_idempotency SET request_hash = NULL WHERE request_hash IS NOT NULL;
