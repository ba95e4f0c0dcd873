-- Finished digest windows, follow-ups and old throttle counts are deleted
-- after HERALD_DIGEST_RETENTION (docs/digests.md); throttle counts are read
-- by user, so their age needs an index of its own for that.
CREATE INDEX throttle_sends_at_idx ON throttle_sends (at);
