-- Progress of topic broadcasts being expanded by the dispatcher.
--
-- A topic:<name> event can reach a million subscribers, far more than one
-- Kafka transaction should carry, so the dispatcher expands it in chunks of
-- subscribers (keyset order on user_id), each chunk's per-user events in
-- their own transaction.  After a chunk commits, last_user_id records where
-- the next chunk starts; a dispatcher that crashes resumes there instead of
-- from the first subscriber.  Per-user event ids are derived from
-- (broadcast event_id, user_id), so the one chunk a crash may repeat yields
-- the same events and idempotency keys again: harmless downstream.
--
-- The row is deleted once the broadcast's own offset has been committed; a
-- replay with a new generation expands the topic anew.
CREATE TABLE broadcast_progress (
    event_id      uuid NOT NULL,
    generation    integer NOT NULL DEFAULT 0 CHECK (generation >= 0),
    topic         text NOT NULL,
    last_user_id  text NOT NULL DEFAULT '',
    expanded      bigint NOT NULL DEFAULT 0 CHECK (expanded >= 0),
    started_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (event_id, generation)
);
