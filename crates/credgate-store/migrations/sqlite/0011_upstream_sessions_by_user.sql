-- A password changed through a passthrough upstream ends that user's other passthrough
-- sessions: they are found by upstream and username (case-insensitive).
CREATE INDEX upstream_sessions_user ON upstream_sessions (upstream, lower(username));
