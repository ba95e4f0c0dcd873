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
-- Each input row i is (rule, channel, user, key, partition, event, the
-- window id a new window gets, its close time and deadline, the sliding
-- extension in ms (0: fixed), max_events (0: none), send_first, actor,
-- item).  Returns each row's window and role.  An event already taken (a
-- batch redone) returns what it got the first time and changes nothing.  An
-- open window whose close time has passed is handed to the closer and a new
-- one opened, so an event never joins a window that is due.
CREATE FUNCTION herald_digest_add(p_now timestamptz, p_rule text[], p_channel text[],
                                  p_user text[], p_key text[], p_partition integer[],
                                  p_event uuid[], p_new_id uuid[], p_closes timestamptz[],
                                  p_deadline timestamptz[], p_slide_ms bigint[],
                                  p_max_events integer[], p_first boolean[], p_actor jsonb[],
                                  p_item jsonb[])
RETURNS TABLE (ord integer, window_id uuid, role text, closes_at timestamptz)
LANGUAGE plpgsql AS $$
DECLARE
    w digest_windows%ROWTYPE;
    i integer;
    r text;
BEGIN
    FOR i IN 1 .. coalesce(array_length(p_event, 1), 0) LOOP
        ord := i;
        SELECT de.window_id, de.role INTO window_id, role
        FROM digest_events de WHERE de.event_id = p_event[i] AND de.channel = p_channel[i];
        IF FOUND THEN
            SELECT dw.closes_at INTO closes_at FROM digest_windows dw
            WHERE dw.window_id = herald_digest_add.window_id;
            RETURN NEXT;
            CONTINUE;
        END IF;
        SELECT * INTO w FROM digest_windows dw
        WHERE dw.rule_name = p_rule[i] AND dw.channel = p_channel[i] AND dw.user_id = p_user[i]
          AND dw.group_key = p_key[i] AND dw.status = 'open'
        FOR UPDATE;
        IF FOUND AND w.closes_at <= p_now THEN
            UPDATE digest_windows dw SET status = 'closing', closed_at = p_now
            WHERE dw.window_id = w.window_id;
            w := NULL;
        END IF;
        IF w.window_id IS NULL THEN
            r := CASE WHEN p_first[i] THEN 'first' ELSE 'member' END;
            INSERT INTO digest_windows AS dw (window_id, rule_name, channel, user_id, group_key,
                                              kafka_partition, status, members, opened_at,
                                              last_event_at, closes_at, deadline)
            VALUES (p_new_id[i], p_rule[i], p_channel[i], p_user[i], p_key[i], p_partition[i],
                    'open', CASE WHEN r = 'member' THEN 1 ELSE 0 END, p_now, p_now,
                    CASE WHEN r = 'member' AND p_max_events[i] = 1 THEN p_now
                         ELSE p_closes[i] END,
                    p_deadline[i])
            RETURNING * INTO w;
        ELSE
            r := 'member';
            UPDATE digest_windows dw
            SET members = dw.members + 1, last_event_at = p_now,
                closes_at = CASE
                    WHEN p_max_events[i] > 0 AND dw.members + 1 >= p_max_events[i] THEN p_now
                    WHEN p_slide_ms[i] > 0 THEN
                        least(p_now + p_slide_ms[i] * interval '1 millisecond', dw.deadline)
                    ELSE dw.closes_at END
            WHERE dw.window_id = w.window_id
            RETURNING * INTO w;
        END IF;
        INSERT INTO digest_events (event_id, channel, window_id, role, actor, item, added_at)
        VALUES (p_event[i], p_channel[i], w.window_id, r, p_actor[i], p_item[i], p_now);
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

-- Decides each input row (rule, channel, user, event, max, window ms,
-- action) in order, against the deliveries the rule counted for the same
-- user and channel in the rolling window: "pass" at p_now while fewer than
-- max went out in the window before it; otherwise "drop", or "defer" to the
-- first instant at which the window holds fewer than max again (after any
-- delivery already deferred: deferred ones keep their order).  An event
-- already decided returns its decision unchanged.
CREATE FUNCTION herald_throttle_check(p_now timestamptz, p_rule text[], p_channel text[],
                                      p_user text[], p_event uuid[], p_max integer[],
                                      p_window_ms bigint[], p_action text[])
RETURNS TABLE (ord integer, outcome text, at timestamptz)
LANGUAGE plpgsql AS $$
DECLARE
    i integer;
    win interval;
    nth timestamptz;
    latest timestamptz;
    recent integer;
BEGIN
    FOR i IN 1 .. coalesce(array_length(p_event, 1), 0) LOOP
        ord := i;
        SELECT ts.outcome, ts.at INTO outcome, at FROM throttle_sends ts
        WHERE ts.rule_name = p_rule[i] AND ts.channel = p_channel[i] AND ts.event_id = p_event[i];
        IF FOUND THEN
            RETURN NEXT;
            CONTINUE;
        END IF;
        win := p_window_ms[i] * interval '1 millisecond';
        SELECT count(*) INTO recent FROM throttle_sends ts
        WHERE ts.rule_name = p_rule[i] AND ts.user_id = p_user[i] AND ts.channel = p_channel[i]
          AND ts.outcome <> 'drop' AND ts.at > p_now - win;
        IF recent < p_max[i] THEN
            outcome := 'pass';
            at := p_now;
        ELSIF p_action[i] = 'drop' THEN
            outcome := 'drop';
            at := p_now;
        ELSE
            -- The max-th latest counted delivery leaves the window at nth + win.
            SELECT ts.at INTO nth FROM throttle_sends ts
            WHERE ts.rule_name = p_rule[i] AND ts.user_id = p_user[i]
              AND ts.channel = p_channel[i] AND ts.outcome <> 'drop'
            ORDER BY ts.at DESC OFFSET p_max[i] - 1 LIMIT 1;
            SELECT max(ts.at) INTO latest FROM throttle_sends ts
            WHERE ts.rule_name = p_rule[i] AND ts.user_id = p_user[i]
              AND ts.channel = p_channel[i] AND ts.outcome <> 'drop';
            outcome := 'defer';
            at := greatest(p_now, nth + win, latest);
        END IF;
        INSERT INTO throttle_sends (rule_name, channel, event_id, user_id, at, outcome)
        VALUES (p_rule[i], p_channel[i], p_event[i], p_user[i], at, outcome);
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
