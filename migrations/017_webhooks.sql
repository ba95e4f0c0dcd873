-- Outbound status webhooks (docs/webhooks.md).
--
-- A service registers an endpoint with its API key; herald-webhooks reads
-- delivery_history in id order and makes one call per matching endpoint
-- and history row, then POSTs it, signed with the endpoint's secret.

-- Which API key published an event: an endpoint hears of the events of the
-- key that registered it (NULL for events from before this column, from
-- heraldctl, or from a key since deleted).
ALTER TABLE events ADD COLUMN api_key_id bigint;

CREATE TABLE webhook_endpoints (
    id              uuid PRIMARY KEY,
    api_key_id      bigint NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
    url             text NOT NULL CHECK (url ~ '^https?://' AND length(url) <= 2048),
    secret          text NOT NULL CHECK (length(secret) BETWEEN 16 AND 256),
    -- delivery.sent, delivery.delivered, delivery.bounced, delivery.complained,
    -- delivery.undelivered, delivery.suppressed; inbox.read and inbox.seen
    -- are reserved for the in-app inbox.
    event_types     text[] NOT NULL CHECK (cardinality(event_types) >= 1 AND event_types <@
                        ARRAY['delivery.sent', 'delivery.delivered', 'delivery.bounced',
                              'delivery.complained', 'delivery.undelivered',
                              'delivery.suppressed', 'inbox.read', 'inbox.seen']::text[]),
    -- An admin key's endpoint may hear of every event, whoever published it.
    all_events      boolean NOT NULL DEFAULT false,
    description     text CHECK (length(description) <= 256),
    enabled         boolean NOT NULL DEFAULT true,
    disabled_at     timestamptz,
    disabled_reason text CHECK (length(disabled_reason) <= 1024),
    -- Counters kept by the sender: the disabling rule reads the failure run.
    calls_ok        bigint NOT NULL DEFAULT 0,
    calls_failed    bigint NOT NULL DEFAULT 0,
    failing_since   timestamptz,
    consecutive_failures integer NOT NULL DEFAULT 0,
    last_status     integer,
    last_attempt_at timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    CHECK (enabled = (disabled_at IS NULL))
);
CREATE INDEX webhook_endpoints_key_idx ON webhook_endpoints (api_key_id);

-- Every attempt at every call: what `heraldctl webhooks log` and the
-- attempt log API page through, newest first.  A call's id is the same
-- on every attempt and on a replay.
CREATE TABLE webhook_attempts (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    call_id     uuid NOT NULL,
    endpoint_id uuid NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    type        text NOT NULL,
    attempt     integer NOT NULL CHECK (attempt >= 1),
    http_status integer,               -- NULL: no answer (timeout, refused)
    latency_ms  integer NOT NULL CHECK (latency_ms >= 0),
    outcome     text NOT NULL CHECK (outcome IN ('ok', 'retry', 'dead', 'skipped')),
    error       text CHECK (length(error) <= 1024),
    at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_attempts_endpoint_idx ON webhook_attempts (endpoint_id, id);
-- Retention (HERALD_WEBHOOKS_RETENTION) deletes the oldest first.
CREATE INDEX webhook_attempts_at_idx ON webhook_attempts (at);

-- The calls made, one row per (source row, endpoint): what a replay
-- re-sends, with the same id and body.  source is the stream the row is
-- of: delivery_history, or webhook_inbox_history.
CREATE TABLE webhook_calls (
    id          uuid PRIMARY KEY,
    endpoint_id uuid NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    source      text NOT NULL,
    history_id  bigint NOT NULL,
    type        text NOT NULL,
    body        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_calls_endpoint_idx ON webhook_calls (endpoint_id, created_at);
CREATE INDEX webhook_calls_created_idx ON webhook_calls (created_at);

-- The feeder's position in each stream it reads: the last id whose calls
-- the broker acknowledged.  The feeder holding the advisory lock
-- (docs/webhooks.md) is the only writer.
CREATE TABLE webhook_cursor (
    name       text PRIMARY KEY,
    history_id bigint NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO webhook_cursor (name, history_id)
VALUES ('delivery_history', 0), ('webhook_inbox_history', 0);

-- In-app messages first seen and first read (again, after an unread), in
-- id order: what the inbox.seen and inbox.read webhooks are made from.
-- inbox_messages is updated in place, so a trigger keeps the changes, and
-- only while some enabled endpoint subscribes to them: without one, a mark
-- writes nothing more than it did.
CREATE TABLE webhook_inbox_history (
    id         bigserial PRIMARY KEY,
    message_id uuid NOT NULL,
    user_id    text NOT NULL,
    event_id   uuid NOT NULL,
    event_type text NOT NULL,
    change     text NOT NULL CHECK (change IN ('seen', 'read')),
    at         timestamptz NOT NULL
);

CREATE FUNCTION herald_inbox_history() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM webhook_endpoints
                   WHERE enabled AND event_types && ARRAY['inbox.read', 'inbox.seen']) THEN
        RETURN NULL;
    END IF;
    IF OLD.seen_at IS NULL AND NEW.seen_at IS NOT NULL THEN
        INSERT INTO webhook_inbox_history (message_id, user_id, event_id, event_type, change, at)
        VALUES (NEW.message_id, NEW.user_id, NEW.event_id, NEW.event_type, 'seen', NEW.seen_at);
    END IF;
    IF OLD.read_at IS NULL AND NEW.read_at IS NOT NULL THEN
        INSERT INTO webhook_inbox_history (message_id, user_id, event_id, event_type, change, at)
        VALUES (NEW.message_id, NEW.user_id, NEW.event_id, NEW.event_type, 'read', NEW.read_at);
    END IF;
    RETURN NULL;
END
$$;

-- The WHEN keeps the trigger off the marks that change neither (archive,
-- unread, a message read before).
CREATE TRIGGER inbox_messages_webhooks AFTER UPDATE OF seen_at, read_at ON inbox_messages
    FOR EACH ROW
    WHEN ((OLD.seen_at IS NULL AND NEW.seen_at IS NOT NULL)
          OR (OLD.read_at IS NULL AND NEW.read_at IS NOT NULL))
    EXECUTE FUNCTION herald_inbox_history();

-- Replays asked for through the API: the feeder sends the recorded calls
-- of the endpoint made in [from_at, to_at) again, with their ids, a page
-- at a time (after_at, after_id: where the last page stopped).
CREATE TABLE webhook_replays (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    endpoint_id  uuid NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    from_at      timestamptz NOT NULL,
    to_at        timestamptz NOT NULL CHECK (to_at > from_at),
    requested_at timestamptz NOT NULL DEFAULT now(),
    after_at     timestamptz,
    after_id     uuid,
    calls        integer NOT NULL DEFAULT 0,
    done_at      timestamptz
);
CREATE INDEX webhook_replays_pending_idx ON webhook_replays (id) WHERE done_at IS NULL;
