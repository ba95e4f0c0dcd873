-- Receipts written once (migrations 016, 019).
--
-- A receipt row was inserted as 'unknown' and updated with its outcome
-- once applied: two row versions, and two index entries for its time,
-- per receipt.  Now the delivery's row lock orders a receipt against every
-- other one of the same delivery, its own repeats included, so the
-- duplicate check can come first, the effect next and the row last, with
-- its outcome.  The time index, for retention, becomes BRIN.
--
-- A provider's 'sent' never moves a delivery: the worker records 'sent'
-- itself when the provider accepts the message, and a 'sent' callback that
-- overtook that record would put the send in the history twice.  It is
-- kept as a receipt, outcome 'stale'.
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

CREATE OR REPLACE FUNCTION herald_receipt_effect(p_key text, p_status text, p_kind text, p_reason text,
                                      p_at timestamptz, p_provider text, p_soft_limit integer)
RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    d deliveries%ROWTYPE;
    addr text;
    n integer;
    result text := 'stale';
BEGIN
    SELECT * INTO d FROM deliveries WHERE idempotency_key = p_key FOR UPDATE;
    IF NOT FOUND THEN
        RETURN 'unknown';
    END IF;
    IF p_status <> 'sent' AND herald_status_rank(p_status) > herald_status_rank(d.status)
       AND herald_status_rank(d.status) < 100 THEN
        UPDATE deliveries SET status = p_status, updated_at = now(),
               last_error = CASE WHEN p_status IN ('undelivered', 'bounced', 'complained')
                                 THEN p_reason ELSE last_error END
        WHERE idempotency_key = p_key;
        INSERT INTO delivery_history (idempotency_key, event_id, user_id, channel, address,
                                      status, reason, provider, source, at)
        VALUES (d.idempotency_key, d.event_id, d.user_id, d.channel, d.address, p_status,
                p_reason, p_provider, 'receipt', p_at);
        result := 'applied';
    END IF;
    IF d.address IS NULL OR d.channel NOT IN ('email', 'sms', 'push') THEN
        RETURN result;
    END IF;
    addr := herald_address_key(d.channel, d.address);
    IF p_status = 'complained' OR (p_status = 'bounced' AND p_kind = 'permanent') THEN
        INSERT INTO suppressions (channel, address, reason, detail, idempotency_key, event_id)
        VALUES (d.channel, addr, CASE WHEN p_status = 'complained' THEN 'complaint'
                                      ELSE 'hard_bounce' END,
                p_reason, d.idempotency_key, d.event_id)
        ON CONFLICT (channel, address) DO NOTHING;
    ELSIF p_status = 'bounced' THEN
        INSERT INTO soft_bounces AS s (channel, address, count, last_key, last_at)
        VALUES (d.channel, addr, 1, d.idempotency_key, p_at)
        ON CONFLICT (channel, address) DO UPDATE
            SET count = s.count + 1, last_key = EXCLUDED.last_key,
                last_at = greatest(s.last_at, EXCLUDED.last_at)
        RETURNING count INTO n;
        IF n >= p_soft_limit THEN
            INSERT INTO suppressions (channel, address, reason, detail, idempotency_key,
                                      event_id)
            VALUES (d.channel, addr, 'soft_bounces',
                    n || ' transient bounces, the last: ' || coalesce(p_reason, ''),
                    d.idempotency_key, d.event_id)
            ON CONFLICT (channel, address) DO NOTHING;
        END IF;
    ELSIF p_status = 'delivered' THEN
        DELETE FROM soft_bounces WHERE channel = d.channel AND address = addr;
    END IF;
    RETURN result;
END
$$;
