-- One row the readiness probe rewrites: `/readyz` is green only while the database accepts writes.
CREATE TABLE heartbeat (
    name    TEXT PRIMARY KEY,
    beat_at BIGINT NOT NULL
);
