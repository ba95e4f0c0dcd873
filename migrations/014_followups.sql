-- Follow-ups (docs/digests.md): "if the in-app message is still unread
-- after D, send it by email".
--
-- A follow-up rule names an event type (and optionally a category), the
-- channel whose read state it watches (in-app: inbox_messages.read_at), the
-- delay, and the channel to follow up on, with the event type whose
-- template renders it (NULL: the event's own).  When the dispatcher sends
-- an event the rule covers to the in-app channel, it records a pending
-- follow-up owned by the user's partition of the events topic, and holds
-- the follow-up channel's own delivery back as "scheduled" (skip_reason
-- "followup").  When the follow-up is due, the partition's owner looks at
-- the in-app message: read or archived, the follow-up is cancelled; else it
-- is rendered and sent with the user's settings as they are then.

CREATE TABLE followup_rules (
    name          text PRIMARY KEY CHECK (name ~ '^[a-z0-9][a-z0-9_.-]{0,127}$'),
    event_type    text NOT NULL CHECK (event_type ~ '^[a-z0-9][a-z0-9_.-]{0,127}$'),
    category      text CHECK (length(category) BETWEEN 1 AND 64),
    after_channel text NOT NULL CHECK (after_channel IN ('inapp')),
    delay_ms      bigint NOT NULL CHECK (delay_ms > 0),
    channel       text NOT NULL CHECK (channel IN ('email', 'sms', 'push')),
    template      text CHECK (template ~ '^[a-z0-9][a-z0-9_.-]{0,127}$'),
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX followup_rules_match_idx
    ON followup_rules (event_type, coalesce(category, ''), channel);
CREATE TRIGGER followup_rules_changed AFTER INSERT OR UPDATE OR DELETE ON followup_rules
    FOR EACH STATEMENT EXECUTE FUNCTION herald_notify_rules_changed();

CREATE TABLE followups (
    event_id        uuid NOT NULL,
    rule_name       text NOT NULL,
    channel         text NOT NULL,
    user_id         text NOT NULL,
    kafka_partition integer NOT NULL,
    due_at          timestamptz NOT NULL,
    status          text NOT NULL CHECK (status IN ('pending', 'running', 'sent', 'skipped',
                                                    'cancelled')),
    reason          text,
    event           jsonb NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    decided_at      timestamptz,
    PRIMARY KEY (event_id, rule_name)
);
CREATE INDEX followups_due_idx ON followups (kafka_partition, due_at)
    WHERE status IN ('pending', 'running');
CREATE INDEX followups_done_idx ON followups (decided_at)
    WHERE status IN ('sent', 'skipped', 'cancelled');
