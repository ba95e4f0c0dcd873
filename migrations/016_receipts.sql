-- What happens after a provider accepted a delivery (docs/receipts.md).
--
-- A delivery's status moves forward only.  The order is
--
--     queued (pending, scheduled, retrying) < sent < delivered
--         < undelivered < bounced < complained
--
-- and a status never replaces one that ranks higher, so receipts that
-- arrive late, twice or out of order (a "sent" callback after "delivered",
-- a delivery notice after a bounce) end in the same status whatever their
-- order.  `failed` (the worker gave up) and `suppressed` (never sent: the
-- address is on the suppression list) are final; a receipt does not move
-- them.  The dispatcher's own outcomes (skipped, digested, throttled) are
-- never touched by receipts either.
ALTER TABLE deliveries DROP CONSTRAINT deliveries_status_check;
ALTER TABLE deliveries ADD CONSTRAINT deliveries_status_check
    CHECK (status IN ('pending', 'scheduled', 'sent', 'retrying', 'failed', 'skipped',
                      'digested', 'throttled', 'delivered', 'undelivered', 'bounced',
                      'complained', 'suppressed'));

CREATE FUNCTION herald_status_rank(s text) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE s
        WHEN 'pending' THEN 0 WHEN 'scheduled' THEN 0 WHEN 'retrying' THEN 1
        WHEN 'sent' THEN 10 WHEN 'delivered' THEN 20 WHEN 'undelivered' THEN 30
        WHEN 'bounced' THEN 40 WHEN 'complained' THEN 50
        WHEN 'failed' THEN 100 WHEN 'suppressed' THEN 100
        ELSE 1000 END  -- skipped, digested, throttled: not a send at all
$$;

-- The provider's id of a sent message, so that its receipts find the
-- delivery.  Kept apart from deliveries: an index on deliveries'
-- provider_message_id would make the worker's outcome update a non-HOT one
-- (migration 007).  SMTP messages need no row: their Message-ID and VERP
-- return path carry the idempotency key itself.
CREATE TABLE delivery_messages (
    provider        text NOT NULL,
    message_id      text NOT NULL CHECK (length(message_id) BETWEEN 1 AND 256),
    idempotency_key text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (provider, message_id)
);

-- Every status a delivery reached after it was queued, with when and why:
-- what the event status API shows as a delivery's history, and what the
-- status webhooks are made from (in id order).
CREATE TABLE delivery_history (
    id              bigserial PRIMARY KEY,
    idempotency_key text NOT NULL,
    event_id        uuid NOT NULL,
    user_id         text NOT NULL,
    channel         text NOT NULL,
    address         text,
    status          text NOT NULL,
    reason          text,
    provider        text,
    source          text NOT NULL CHECK (source IN ('worker', 'receipt', 'operator')),
    at              timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX delivery_history_event_idx ON delivery_history (event_id);
CREATE INDEX delivery_history_at_idx ON delivery_history (at);

-- Receipts as they arrived, one row per provider notification: a provider
-- that sends the same notification again finds its row and changes nothing.
-- idempotency_key is NULL while no delivery is known for the message (the
-- receipt came before the worker recorded the provider's id, or it is for
-- a message Herald never sent); such a receipt is applied when the id is
-- recorded.
CREATE TABLE receipts (
    provider        text NOT NULL,
    receipt_id      text NOT NULL CHECK (length(receipt_id) BETWEEN 1 AND 512),
    message_id      text NOT NULL CHECK (length(message_id) BETWEEN 1 AND 256),
    status          text NOT NULL CHECK (status IN ('sent', 'delivered', 'undelivered',
                                                    'bounced', 'complained')),
    bounce_kind     text CHECK (bounce_kind IN ('permanent', 'transient', 'undetermined')),
    reason          text CHECK (length(reason) <= 1024),
    address         text,
    occurred_at     timestamptz NOT NULL,
    received_at     timestamptz NOT NULL DEFAULT now(),
    idempotency_key text,
    outcome         text NOT NULL CHECK (outcome IN ('applied', 'stale', 'unknown')),
    soft_limit      integer NOT NULL DEFAULT 3 CHECK (soft_limit >= 1),
    PRIMARY KEY (provider, receipt_id)
);
CREATE INDEX receipts_unmatched_idx ON receipts (provider, message_id)
    WHERE idempotency_key IS NULL;
CREATE INDEX receipts_received_idx ON receipts (received_at);

-- Addresses Herald does not send to, per channel.  Email addresses are
-- kept lowercased.  Hard bounces and complaints add to it, transient
-- bounces once soft_bounces reaches the configured count, operators
-- through the API and `heraldctl suppress`.
CREATE TABLE suppressions (
    channel         text NOT NULL CHECK (channel IN ('email', 'sms', 'push')),
    address         text NOT NULL CHECK (length(address) BETWEEN 1 AND 4096),
    reason          text NOT NULL CHECK (reason IN ('hard_bounce', 'complaint', 'soft_bounces',
                                                    'manual')),
    detail          text CHECK (length(detail) <= 1024),
    idempotency_key text,
    event_id        uuid,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (channel, address)
);

CREATE TABLE soft_bounces (
    channel  text NOT NULL,
    address  text NOT NULL,
    count    integer NOT NULL,
    last_key text,
    last_at  timestamptz NOT NULL,
    PRIMARY KEY (channel, address)
);

CREATE FUNCTION herald_address_key(p_channel text, p_address text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN p_channel = 'email' THEN lower(p_address) ELSE p_address END
$$;

-- What a receipt does to its delivery, already matched: moves the status
-- forward (or not: 'stale'), writes the history and suppresses the address
-- after a hard bounce, a complaint or p_soft_limit transient bounces.
CREATE FUNCTION herald_receipt_effect(p_key text, p_status text, p_kind text, p_reason text,
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
    IF herald_status_rank(p_status) > herald_status_rank(d.status)
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

-- Records one receipt and applies it.  p_key is the idempotency key when
-- the receipt itself names it (an SMTP bounce through the VERP address or
-- the Message-ID); otherwise the delivery is found by the provider's
-- message id.  Returns 'applied', 'stale' (recorded, nothing moved),
-- 'unknown' (recorded, no such delivery yet) or 'duplicate' (this
-- receipt was recorded before: nothing changes).
CREATE FUNCTION herald_receipt_apply(p_provider text, p_receipt_id text, p_message_id text,
                                     p_key text, p_status text, p_kind text, p_reason text,
                                     p_address text, p_at timestamptz, p_soft_limit integer)
RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    k text := p_key;
    result text;
BEGIN
    IF k IS NULL THEN
        SELECT idempotency_key INTO k FROM delivery_messages
        WHERE provider = p_provider AND message_id = p_message_id;
    END IF;
    IF k IS NOT NULL AND NOT EXISTS (SELECT 1 FROM deliveries WHERE idempotency_key = k) THEN
        k := NULL;
    END IF;
    INSERT INTO receipts (provider, receipt_id, message_id, status, bounce_kind, reason,
                          address, occurred_at, idempotency_key, outcome, soft_limit)
    VALUES (p_provider, p_receipt_id, coalesce(p_message_id, p_key), p_status, p_kind,
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

-- A receipt that came before the worker recorded its message's id waits in
-- receipts; recording the id applies it, in the order the provider says
-- things happened.
CREATE FUNCTION herald_receipts_match() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    r receipts%ROWTYPE;
    result text;
BEGIN
    FOR r IN SELECT * FROM receipts
             WHERE provider = NEW.provider AND message_id = NEW.message_id
               AND idempotency_key IS NULL
             ORDER BY occurred_at, received_at
    LOOP
        result := herald_receipt_effect(NEW.idempotency_key, r.status, r.bounce_kind, r.reason,
                                        r.occurred_at, r.provider, r.soft_limit);
        UPDATE receipts SET idempotency_key = NEW.idempotency_key, outcome = result
        WHERE provider = r.provider AND receipt_id = r.receipt_id;
    END LOOP;
    RETURN NULL;
END
$$;

CREATE TRIGGER delivery_messages_match AFTER INSERT ON delivery_messages
    FOR EACH ROW EXECUTE FUNCTION herald_receipts_match();
