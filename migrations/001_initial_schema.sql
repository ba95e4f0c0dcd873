-- Herald's initial schema: users and their contacts, preferences, topics and
-- subscriptions, templates, API keys, publish idempotency, events and
-- deliveries.  Applied by `heraldctl migrate` in one transaction.

-- Users and their contact points.  user_id is the caller's own identifier.
CREATE TABLE users (
    user_id     text PRIMARY KEY CHECK (length(user_id) BETWEEN 1 AND 128),
    email       text CHECK (length(email) <= 254),
    phone       text CHECK (phone ~ '^\+[1-9][0-9]{1,14}$'),
    name        text CHECK (length(name) <= 256),
    timezone    text CHECK (length(timezone) <= 64),
    locale      text CHECK (length(locale) <= 35),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- One row per device; push fans out to every token of a user.  A token the
-- provider reports dead (404/410, FCM UNREGISTERED) is deleted by the worker.
CREATE TABLE push_tokens (
    user_id     text NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    token       text NOT NULL CHECK (length(token) BETWEEN 1 AND 4096),
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, token)
);

-- Preferences as documents, read whole by the dispatcher's cache:
--   channels:   {"email": true, "sms": false, ...}       (absent = enabled)
--   categories: {"marketing": {"email": false}, ...}     (absent = enabled)
--   quiet hours in the user's own time zone; NULL = none.
CREATE TABLE preferences (
    user_id     text PRIMARY KEY REFERENCES users (user_id) ON DELETE CASCADE,
    channels    jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(channels) = 'object'),
    categories  jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(categories) = 'object'),
    quiet_start time,
    quiet_end   time,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CHECK ((quiet_start IS NULL) = (quiet_end IS NULL))
);

-- Broadcast topics.  Subscriptions are walked by keyset pagination on the
-- primary key (topic, user_id) when a topic:<name> event fans out.
CREATE TABLE topics (
    name        text PRIMARY KEY CHECK (name ~ '^[a-z0-9][a-z0-9_.-]{0,127}$'),
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE topic_subscriptions (
    topic       text NOT NULL REFERENCES topics (name) ON DELETE CASCADE,
    user_id     text NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (topic, user_id)
);
CREATE INDEX topic_subscriptions_user_idx ON topic_subscriptions (user_id);

-- Templates per (event type, channel).  category, when set, is the category
-- events of this type fall under unless the event names its own.
CREATE TABLE templates (
    event_type  text NOT NULL CHECK (event_type ~ '^[a-z0-9][a-z0-9_.-]{0,127}$'),
    channel     text NOT NULL CHECK (channel IN ('email', 'sms', 'push')),
    subject     text,
    body        text NOT NULL,
    category    text,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (event_type, channel)
);

-- API keys are stored as SHA-256 of the secret; prefix is shown in listings.
CREATE TABLE api_keys (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 128),
    scope       text NOT NULL CHECK (scope IN ('publish', 'admin')),
    key_hash    bytea NOT NULL UNIQUE CHECK (length(key_hash) = 32),
    key_prefix  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz,
    last_used_at timestamptz
);

-- Publish idempotency: (API key, Idempotency-Key) → event_id for 24 hours,
-- shared by every gateway instance and kept across restarts.
CREATE TABLE publish_idempotency (
    api_key_id      bigint NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
    idempotency_key text NOT NULL CHECK (length(idempotency_key) BETWEEN 1 AND 255),
    event_id        uuid NOT NULL,
    request_hash    bytea,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (api_key_id, idempotency_key)
);
CREATE INDEX publish_idempotency_created_idx ON publish_idempotency (created_at);

-- Events the dispatcher has processed (written in batches), so that
-- GET /v1/events/{id} can tell an unknown event from one with no deliveries.
CREATE TABLE events (
    event_id      uuid PRIMARY KEY,
    type          text NOT NULL,
    user_id       text,
    topic         text,
    priority      text NOT NULL CHECK (priority IN ('critical', 'high', 'normal', 'low')),
    category      text,
    broadcast_id  uuid,
    created_at    timestamptz NOT NULL,
    dispatched_at timestamptz NOT NULL DEFAULT now(),
    CHECK ((user_id IS NULL) <> (topic IS NULL))
);
CREATE INDEX events_broadcast_idx ON events (broadcast_id) WHERE broadcast_id IS NOT NULL;

-- One row per planned delivery (user, channel, address) or per skipped
-- channel, keyed by the deterministic idempotency key.  Workers claim a row
-- with a lease before sending; a row already 'sent' is never sent again.
CREATE TABLE deliveries (
    idempotency_key text PRIMARY KEY,
    event_id        uuid NOT NULL,
    user_id         text NOT NULL,
    channel         text NOT NULL CHECK (channel IN ('email', 'sms', 'push')),
    address         text,
    status          text NOT NULL CHECK (status IN ('pending', 'scheduled', 'sent',
                                                    'retrying', 'failed', 'skipped')),
    attempts        integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    last_error      text,
    skip_reason     text,
    provider        text,
    provider_message_id text,
    not_before      timestamptz,
    lease_owner     text,
    lease_until     timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX deliveries_event_idx ON deliveries (event_id);
CREATE INDEX deliveries_user_idx ON deliveries (user_id, created_at);

-- DLQ records already requeued by `heraldctl dlq requeue`, so that no record
-- is requeued twice.  Recorded before the requeue reports success.
CREATE TABLE dlq_requeues (
    dlq_topic     text NOT NULL,
    dlq_partition integer NOT NULL,
    dlq_offset    bigint NOT NULL,
    requeued_at   timestamptz NOT NULL DEFAULT now(),
    requeued_to   text NOT NULL,
    PRIMARY KEY (dlq_topic, dlq_partition, dlq_offset)
);

-- Cache invalidation: every change to a user's contacts, tokens or
-- preferences notifies 'herald_user_changed' with the user_id, whatever
-- wrote it (gateway, heraldctl, a DBA).  Dispatchers LISTEN and drop the
-- cached copy.  Template changes notify 'herald_template_changed'.
CREATE FUNCTION herald_notify_user_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('herald_user_changed', OLD.user_id);
        RETURN OLD;
    END IF;
    PERFORM pg_notify('herald_user_changed', NEW.user_id);
    RETURN NEW;
END;
$$;

CREATE TRIGGER users_changed AFTER INSERT OR UPDATE OR DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION herald_notify_user_changed();
CREATE TRIGGER push_tokens_changed AFTER INSERT OR UPDATE OR DELETE ON push_tokens
    FOR EACH ROW EXECUTE FUNCTION herald_notify_user_changed();
CREATE TRIGGER preferences_changed AFTER INSERT OR UPDATE OR DELETE ON preferences
    FOR EACH ROW EXECUTE FUNCTION herald_notify_user_changed();

CREATE FUNCTION herald_notify_template_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('herald_template_changed', OLD.event_type || '/' || OLD.channel);
        RETURN OLD;
    END IF;
    PERFORM pg_notify('herald_template_changed', NEW.event_type || '/' || NEW.channel);
    RETURN NEW;
END;
$$;

CREATE TRIGGER templates_changed AFTER INSERT OR UPDATE OR DELETE ON templates
    FOR EACH ROW EXECUTE FUNCTION herald_notify_template_changed();
