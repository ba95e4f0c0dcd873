-- Digests and throttles (docs/digests.md).
--
-- A digest rule batches the events of one type (and optionally one
-- category) per recipient, and per grouping key taken from the event's data,
-- into one delivery per channel when its window closes.  Windows and their
-- events live here, not in a dispatcher's memory: each window records the
-- partition of the events topic its user's events arrive on, and only the
-- dispatcher that owns that partition closes it, so a crash or a rebalance
-- hands the window on with the partition.
--
-- A throttle rule caps how many deliveries of a category (or of every
-- category) one user gets on a channel within a rolling window; over the cap
-- a delivery is dropped or deferred until the cap allows it.  Every decision
-- is kept per event, so a batch that is redone after a crash decides
-- exactly as before.

ALTER TABLE deliveries DROP CONSTRAINT deliveries_status_check;
ALTER TABLE deliveries ADD CONSTRAINT deliveries_status_check
    CHECK (status IN ('pending', 'scheduled', 'sent', 'retrying', 'failed', 'skipped',
                      'digested', 'throttled'));

CREATE TABLE digest_rules (
    name          text PRIMARY KEY CHECK (name ~ '^[a-z0-9][a-z0-9_.-]{0,127}$'),
    event_type    text NOT NULL CHECK (event_type ~ '^[a-z0-9][a-z0-9_.-]{0,127}$'),
    category      text CHECK (length(category) BETWEEN 1 AND 64),
    channels      text[] NOT NULL CHECK (cardinality(channels) >= 1 AND
                                         channels <@ ARRAY['email', 'sms', 'push', 'inapp']),
    window_kind   text NOT NULL CHECK (window_kind IN ('fixed', 'sliding', 'scheduled')),
    window_ms     bigint CHECK (window_ms > 0),
    max_window_ms bigint CHECK (max_window_ms > 0),
    max_events    integer CHECK (max_events >= 1),
    send_first    boolean NOT NULL DEFAULT false,
    schedule_at   time,
    group_by      text CHECK (group_by ~ '^data(\.[A-Za-z0-9_-]{1,128}){1,16}$'),
    template      text NOT NULL CHECK (template ~ '^[a-z0-9][a-z0-9_.-]{0,127}$'),
    events_shown  integer NOT NULL DEFAULT 10 CHECK (events_shown BETWEEN 1 AND 100),
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CHECK (window_kind <> 'fixed' OR window_ms IS NOT NULL),
    CHECK (window_kind <> 'sliding' OR (window_ms IS NOT NULL AND max_window_ms >= window_ms)),
    CHECK (window_kind <> 'scheduled' OR schedule_at IS NOT NULL)
);
-- One rule per event type and category; a rule without a category covers
-- the categories no rule names.
CREATE UNIQUE INDEX digest_rules_match_idx ON digest_rules (event_type, coalesce(category, ''));

CREATE TABLE digest_windows (
    window_id       uuid PRIMARY KEY,
    rule_name       text NOT NULL,
    channel         text NOT NULL,
    user_id         text NOT NULL,
    group_key       text NOT NULL DEFAULT '',
    kafka_partition integer NOT NULL,
    status          text NOT NULL CHECK (status IN ('open', 'closing', 'sent', 'empty')),
    members         integer NOT NULL DEFAULT 0 CHECK (members >= 0),
    opened_at       timestamptz NOT NULL,
    last_event_at   timestamptz NOT NULL,
    closes_at       timestamptz NOT NULL,
    deadline        timestamptz NOT NULL,
    closed_at       timestamptz,
    sent_at         timestamptz
);
-- At most one open window per rule, channel, user and key.
CREATE UNIQUE INDEX digest_windows_open_idx ON digest_windows (rule_name, channel, user_id, group_key)
    WHERE status = 'open';
-- The timer wheel: what each partition's owner must close next.
CREATE INDEX digest_windows_due_idx ON digest_windows (kafka_partition, closes_at)
    WHERE status IN ('open', 'closing');
CREATE INDEX digest_windows_done_idx ON digest_windows (closed_at) WHERE status IN ('sent', 'empty');

-- One row per event and channel a digest rule took: the event that opened a
-- window and was sent at once ("first"), or a member of the window's digest.
CREATE TABLE digest_events (
    event_id   uuid NOT NULL,
    channel    text NOT NULL,
    window_id  uuid NOT NULL REFERENCES digest_windows (window_id) ON DELETE CASCADE,
    role       text NOT NULL CHECK (role IN ('first', 'member')),
    seq        bigint GENERATED ALWAYS AS IDENTITY,
    actor      jsonb,
    item       jsonb NOT NULL,
    added_at   timestamptz NOT NULL,
    PRIMARY KEY (event_id, channel)
);
CREATE INDEX digest_events_window_idx ON digest_events (window_id, seq);

-- Adds the events of one dispatcher batch to their windows, in order.
-- p_items is a JSON array of objects {rule, channel, user, key, partition,
-- event, new_id (the id a new window gets), closes, deadline (ms since the
-- epoch), slide_ms (0: fixed), max_events (0: none), first (send the event
-- that opens a window at once), actor, item}.  Returns each item's window
-- and role.  An event already taken (a batch redone) returns what it got the
-- first time and changes nothing.  An open window whose close time has
-- passed is handed to the closer and a new one opened, so an event never
-- joins a window that is due.
CREATE FUNCTION herald_digest_add(p_now timestamptz, p_items jsonb)
RETURNS TABLE (ord integer, window_id uuid, role text, closes_at timestamptz)
LANGUAGE plpgsql AS $$
DECLARE
    w digest_windows%ROWTYPE;
    it jsonb;
    r text;
    v_event uuid;
    v_channel text;
    v_max integer;
    v_slide bigint;
BEGIN
    ord := 0;
    FOR it IN SELECT value FROM jsonb_array_elements(p_items) LOOP
        ord := ord + 1;
        v_event := (it->>'event')::uuid;
        v_channel := it->>'channel';
        v_max := coalesce((it->>'max_events')::integer, 0);
        v_slide := coalesce((it->>'slide_ms')::bigint, 0);
        SELECT de.window_id, de.role INTO window_id, role
        FROM digest_events de WHERE de.event_id = v_event AND de.channel = v_channel;
        IF FOUND THEN
            SELECT dw.closes_at INTO closes_at FROM digest_windows dw
            WHERE dw.window_id = herald_digest_add.window_id;
            RETURN NEXT;
            CONTINUE;
        END IF;
        SELECT * INTO w FROM digest_windows dw
        WHERE dw.rule_name = it->>'rule' AND dw.channel = v_channel
          AND dw.user_id = it->>'user' AND dw.group_key = it->>'key' AND dw.status = 'open'
        FOR UPDATE;
        IF FOUND AND w.closes_at <= p_now THEN
            UPDATE digest_windows dw SET status = 'closing', closed_at = p_now
            WHERE dw.window_id = w.window_id;
            w := NULL;
        END IF;
        IF w.window_id IS NULL THEN
            r := CASE WHEN (it->>'first')::boolean THEN 'first' ELSE 'member' END;
            INSERT INTO digest_windows AS dw (window_id, rule_name, channel, user_id, group_key,
                                              kafka_partition, status, members, opened_at,
                                              last_event_at, closes_at, deadline)
            VALUES ((it->>'new_id')::uuid, it->>'rule', v_channel, it->>'user', it->>'key',
                    (it->>'partition')::integer, 'open',
                    CASE WHEN r = 'member' THEN 1 ELSE 0 END, p_now, p_now,
                    CASE WHEN r = 'member' AND v_max = 1 THEN p_now
                         ELSE to_timestamp((it->>'closes')::bigint / 1000.0) END,
                    to_timestamp((it->>'deadline')::bigint / 1000.0))
            RETURNING * INTO w;
        ELSE
            r := 'member';
            UPDATE digest_windows dw
            SET members = dw.members + 1, last_event_at = p_now,
                closes_at = CASE
                    WHEN v_max > 0 AND dw.members + 1 >= v_max THEN p_now
                    WHEN v_slide > 0 THEN
                        least(p_now + v_slide * interval '1 millisecond', dw.deadline)
                    ELSE dw.closes_at END
            WHERE dw.window_id = w.window_id
            RETURNING * INTO w;
        END IF;
        INSERT INTO digest_events (event_id, channel, window_id, role, actor, item, added_at)
        VALUES (v_event, v_channel, w.window_id, r, nullif(it->'actor', 'null'::jsonb),
                it->'item', p_now);
        window_id := w.window_id;
        role := r;
        closes_at := w.closes_at;
        RETURN NEXT;
    END LOOP;
END
$$;

CREATE TABLE throttle_rules (
    name        text PRIMARY KEY CHECK (name ~ '^[a-z0-9][a-z0-9_.-]{0,127}$'),
    category    text CHECK (length(category) BETWEEN 1 AND 64),
    channel     text CHECK (channel IN ('email', 'sms', 'push', 'inapp')),
    max_count   integer NOT NULL CHECK (max_count >= 1),
    window_ms   bigint NOT NULL CHECK (window_ms > 0),
    action      text NOT NULL CHECK (action IN ('drop', 'defer')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Every delivery a throttle rule counted: when it goes out ("pass", or
-- "defer" to a later time) or that it was dropped.
CREATE TABLE throttle_sends (
    rule_name  text NOT NULL REFERENCES throttle_rules (name) ON DELETE CASCADE,
    channel    text NOT NULL,
    event_id   uuid NOT NULL,
    user_id    text NOT NULL,
    at         timestamptz NOT NULL,
    outcome    text NOT NULL CHECK (outcome IN ('pass', 'defer', 'drop')),
    PRIMARY KEY (rule_name, channel, event_id)
);
CREATE INDEX throttle_sends_user_idx ON throttle_sends (rule_name, user_id, channel, at)
    WHERE outcome <> 'drop';

-- Decides each item of p_items, a JSON array of objects {rule, channel,
-- user, event, max, window_ms, action}, in order, against the deliveries the
-- rule counted for the same user and channel in the rolling window: "pass"
-- at p_now while fewer than max went out in the window before it;
-- otherwise "drop", or "defer" to the first instant at which the window
-- holds fewer than max again (after any delivery already deferred: deferred
-- ones keep their order).  An event already decided returns its decision
-- unchanged.
CREATE FUNCTION herald_throttle_check(p_now timestamptz, p_items jsonb)
RETURNS TABLE (ord integer, outcome text, at timestamptz)
LANGUAGE plpgsql AS $$
DECLARE
    it jsonb;
    v_rule text;
    v_channel text;
    v_user text;
    v_event uuid;
    v_max integer;
    win interval;
    nth timestamptz;
    latest timestamptz;
    recent integer;
BEGIN
    ord := 0;
    FOR it IN SELECT value FROM jsonb_array_elements(p_items) LOOP
        ord := ord + 1;
        v_rule := it->>'rule';
        v_channel := it->>'channel';
        v_user := it->>'user';
        v_event := (it->>'event')::uuid;
        v_max := (it->>'max')::integer;
        SELECT ts.outcome, ts.at INTO outcome, at FROM throttle_sends ts
        WHERE ts.rule_name = v_rule AND ts.channel = v_channel AND ts.event_id = v_event;
        IF FOUND THEN
            RETURN NEXT;
            CONTINUE;
        END IF;
        win := (it->>'window_ms')::bigint * interval '1 millisecond';
        SELECT count(*) INTO recent FROM throttle_sends ts
        WHERE ts.rule_name = v_rule AND ts.user_id = v_user AND ts.channel = v_channel
          AND ts.outcome <> 'drop' AND ts.at > p_now - win;
        IF recent < v_max THEN
            outcome := 'pass';
            at := p_now;
        ELSIF it->>'action' = 'drop' THEN
            outcome := 'drop';
            at := p_now;
        ELSE
            -- The max-th latest counted delivery leaves the window at nth + win.
            SELECT ts.at INTO nth FROM throttle_sends ts
            WHERE ts.rule_name = v_rule AND ts.user_id = v_user AND ts.channel = v_channel
              AND ts.outcome <> 'drop'
            ORDER BY ts.at DESC OFFSET v_max - 1 LIMIT 1;
            SELECT max(ts.at) INTO latest FROM throttle_sends ts
            WHERE ts.rule_name = v_rule AND ts.user_id = v_user AND ts.channel = v_channel
              AND ts.outcome <> 'drop';
            outcome := 'defer';
            at := greatest(p_now, nth + win, latest);
        END IF;
        INSERT INTO throttle_sends (rule_name, channel, event_id, user_id, at, outcome)
        VALUES (v_rule, v_channel, v_event, v_user, at, outcome);
        RETURN NEXT;
    END LOOP;
END
$$;

-- The dispatchers cache the rules and reload them when told.
CREATE FUNCTION herald_notify_rules_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('herald_rules_changed', TG_TABLE_NAME);
    RETURN NULL;
END
$$;
CREATE TRIGGER digest_rules_changed AFTER INSERT OR UPDATE OR DELETE ON digest_rules
    FOR EACH STATEMENT EXECUTE FUNCTION herald_notify_rules_changed();
CREATE TRIGGER throttle_rules_changed AFTER INSERT OR UPDATE OR DELETE ON throttle_rules
    FOR EACH STATEMENT EXECUTE FUNCTION herald_notify_rules_changed();
