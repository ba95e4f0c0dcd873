-- Replays started through the gateway (POST /v1/replays, docs/operations.md).
--
-- A gateway thread runs the replay (common/replayrun.c, as heraldctl
-- replay) and keeps its progress here, so every gateway of a deployment
-- answers GET /v1/replays/{id} for runs started on any of them.  The window
-- is fixed when the run is accepted: to_at is "now" when none was given.
CREATE TABLE replay_runs (
    replay_id   uuid PRIMARY KEY,
    state       text NOT NULL DEFAULT 'running' CHECK (state IN ('running', 'done', 'failed')),
    from_at     timestamptz NOT NULL,
    to_at       timestamptz NOT NULL CHECK (to_at > from_at),
    user_id     text,
    event_type  text,
    redeliver   boolean NOT NULL,
    api_key_id  bigint,
    scanned     bigint NOT NULL DEFAULT 0,
    matched     bigint NOT NULL DEFAULT 0,
    published   bigint NOT NULL DEFAULT 0,
    failed      bigint NOT NULL DEFAULT 0,
    error       text CHECK (length(error) <= 1024),
    started_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    CHECK ((state = 'running') = (finished_at IS NULL))
);
CREATE INDEX replay_runs_started_idx ON replay_runs (started_at DESC);
