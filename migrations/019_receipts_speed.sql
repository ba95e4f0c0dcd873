-- Cheaper receipts bookkeeping on the worker's hot path (migration 016).
--
-- Every recorded send inserts a delivery_history row.  The history is read
-- by event (the status API) and by id (the webhooks); its time index only
-- serves retention, which reads ranges: a BRIN index on an append-only
-- table does that at a fraction of a B-tree's cost per insert.
DROP INDEX delivery_history_at_idx;
CREATE INDEX delivery_history_at_brin ON delivery_history USING brin (at);

-- Receipts name Herald's own idempotency key (docs/receipts.md): the
-- Twilio status callback URL Herald gives each message carries it, the
-- generic HTTP provider's callback echoes it, an email's Message-ID and
-- VERP return path hold it.  The look-up table from the provider's message
-- ids cost an index insert per send for nothing, and goes; a receipt
-- without a key Herald knows is 'unknown'.
DROP TRIGGER delivery_messages_match ON delivery_messages;
DROP FUNCTION herald_receipts_match();
DROP TABLE delivery_messages;

CREATE OR REPLACE FUNCTION herald_receipt_apply(p_provider text, p_receipt_id text,
                                                p_message_id text, p_key text, p_status text,
                                                p_kind text, p_reason text, p_address text,
                                                p_at timestamptz, p_soft_limit integer)
RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    k text := p_key;
    result text;
BEGIN
    IF k IS NOT NULL AND NOT EXISTS (SELECT 1 FROM deliveries WHERE idempotency_key = k) THEN
        k := NULL;
    END IF;
    INSERT INTO receipts (provider, receipt_id, message_id, status, bounce_kind, reason,
                          address, occurred_at, idempotency_key, outcome, soft_limit)
    VALUES (p_provider, p_receipt_id, coalesce(p_message_id, p_key, '-'), p_status, p_kind,
            left(p_reason, 1024), p_address, p_at, k, 'unknown', p_soft_limit)
    ON CONFLICT (provider, receipt_id) DO NOTHING;
    IF NOT FOUND THEN
        RETURN 'duplicate';
    END IF;
    IF k IS NULL THEN
        RETURN 'unknown';
    END IF;
    result := herald_receipt_effect(k, p_status, p_kind, left(p_reason, 1024), p_at,
                                    p_provider, p_soft_limit);
    UPDATE receipts SET outcome = result
    WHERE provider = p_provider AND receipt_id = p_receipt_id;
    RETURN result;
END
$$;

DROP INDEX receipts_unmatched_idx;
