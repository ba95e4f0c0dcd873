-- Receipts written once (migrations 016, 019).
--
-- A receipt row was inserted as 'unknown' and updated with its outcome
-- once applied: two row versions, and two index entries for its time,
-- per receipt.  Now the delivery's row lock orders a receipt against every
-- other one of the same delivery, its own repeats included, so the
-- duplicate check can come first, the effect next and the row last, with
-- its outcome.  The time index, for retention, becomes BRIN.
DROP INDEX receipts_received_idx;
CREATE INDEX receipts_received_brin ON receipts USING brin (received_at);

CREATE OR REPLACE FUNCTION herald_receipt_apply(p_provider text, p_receipt_id text,
                                                p_message_id text, p_key text, p_status text,
                                                p_kind text, p_reason text, p_address text,
                                                p_at timestamptz, p_soft_limit integer)
RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    k text := p_key;
    result text := 'unknown';
BEGIN
    IF k IS NOT NULL THEN
        PERFORM 1 FROM deliveries WHERE idempotency_key = k FOR UPDATE;
        IF NOT FOUND THEN
            k := NULL;
        END IF;
    END IF;
    IF k IS NOT NULL THEN
        IF EXISTS (SELECT 1 FROM receipts
                   WHERE provider = p_provider AND receipt_id = p_receipt_id) THEN
            RETURN 'duplicate';
        END IF;
        result := herald_receipt_effect(k, p_status, p_kind, left(p_reason, 1024), p_at,
                                        p_provider, p_soft_limit);
    END IF;
    INSERT INTO receipts (provider, receipt_id, message_id, status, bounce_kind, reason,
                          address, occurred_at, idempotency_key, outcome, soft_limit)
    VALUES (p_provider, p_receipt_id, coalesce(p_message_id, p_key, '-'), p_status, p_kind,
            left(p_reason, 1024), p_address, p_at, k, result, p_soft_limit)
    ON CONFLICT (provider, receipt_id) DO NOTHING;
    IF NOT FOUND THEN
        RETURN 'duplicate';
    END IF;
    RETURN result;
END
$$;
