-- The in-app channel (docs/inapp.md): one inbox message per in-app delivery,
-- and each user's inbox state (change sequence and counts).
--
-- A message is keyed by its delivery's idempotency key, so a redelivered
-- record never makes a second message.  Every change to a user's inbox (a
-- new message, a state change) takes the next number of that user's seq in
-- inbox_state, in the same transaction, and stamps it on the messages it
-- touched: a live client that reconnects with the last number it saw asks
-- for the messages whose seq is greater.  The counts are kept in the same
-- row under the same lock, so two devices changing one inbox at once leave
-- them exact.

ALTER TABLE templates DROP CONSTRAINT templates_channel_check;
ALTER TABLE templates ADD CONSTRAINT templates_channel_check
    CHECK (channel IN ('email', 'sms', 'push', 'inapp'));
ALTER TABLE deliveries DROP CONSTRAINT deliveries_channel_check;
ALTER TABLE deliveries ADD CONSTRAINT deliveries_channel_check
    CHECK (channel IN ('email', 'sms', 'push', 'inapp'));

CREATE TABLE inbox_state (
    user_id   text PRIMARY KEY REFERENCES users (user_id) ON DELETE CASCADE,
    seq       bigint NOT NULL DEFAULT 0 CHECK (seq >= 0),
    unread    integer NOT NULL DEFAULT 0 CHECK (unread >= 0),
    unseen    integer NOT NULL DEFAULT 0 CHECK (unseen >= 0),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE inbox_messages (
    message_id    uuid PRIMARY KEY,
    user_id       text NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    delivery_key  text COLLATE "C" NOT NULL UNIQUE,
    event_id      uuid NOT NULL,
    event_type    text NOT NULL,
    category      text,
    title         text,
    body          text NOT NULL,
    data          jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(data) = 'object'),
    created_at    timestamptz NOT NULL DEFAULT now(),
    seen_at       timestamptz,
    read_at       timestamptz,
    archived_at   timestamptz,
    interacted_at timestamptz,
    seq           bigint NOT NULL
);
-- Newest first, cursor paging on (created_at, message_id).
CREATE INDEX inbox_messages_user_idx ON inbox_messages (user_id, created_at DESC, message_id DESC);
-- Catch-up after a reconnect: what changed after seq N.
CREATE INDEX inbox_messages_seq_idx ON inbox_messages (user_id, seq);
-- Retention removes the oldest messages in bounded batches.
CREATE INDEX inbox_messages_created_idx ON inbox_messages (created_at);
