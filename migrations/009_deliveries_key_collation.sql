-- Delivery idempotency keys are opaque ASCII identifiers, looked up by
-- equality only (the claim's ON CONFLICT, the outcome updates).  Under the
-- database's default collation every comparison in the primary key index
-- goes through the locale's string comparison; the "C" collation compares
-- bytes, which is all such a key needs.  Equality is the same under both,
-- so no key changes meaning.  Only the index is rebuilt.
ALTER TABLE deliveries ALTER COLUMN idempotency_key TYPE text COLLATE "C";
