-- Sessions of this gateway that stand for a passthrough upstream's user, by the digest of the
-- token handed to the client. Only the username and the upstream's id for the user are kept:
-- never the upstream's session secret (a change opens one for that call only).
CREATE TABLE upstream_sessions (
    digest     TEXT    NOT NULL PRIMARY KEY,
    upstream   TEXT    NOT NULL,
    dialect    TEXT    NOT NULL,
    app_digest TEXT,
    username   TEXT    NOT NULL,
    user_ref   TEXT,
    client_id  TEXT,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX upstream_sessions_expires_at ON upstream_sessions (expires_at);

-- Shadow mode: one row per request answered by the upstream and compared with what credgate
-- would have answered. Bounded by count and age. Outcomes are canonical kinds and statuses;
-- fields names the fields that differ; exchange is the request and answer with every
-- secret replaced by a placeholder. No password, token or cookie value is ever stored.
CREATE TABLE shadow_comparisons (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at               BIGINT NOT NULL,
    dialect          TEXT    NOT NULL,
    route            TEXT    NOT NULL,
    request_id       TEXT    NOT NULL,
    result           TEXT    NOT NULL CHECK (result IN ('agreement', 'divergence', 'not_synced')),
    kind             TEXT,
    upstream_outcome TEXT    NOT NULL,
    upstream_status  BIGINT NOT NULL,
    local_outcome    TEXT    NOT NULL,
    local_status     BIGINT NOT NULL,
    fields           TEXT    NOT NULL DEFAULT '[]',
    -- The exchange with every secret replaced by a placeholder (for `credgate shadow examples`).
    exchange         TEXT,
    synced           BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX shadow_comparisons_at ON shadow_comparisons (at);
CREATE INDEX shadow_comparisons_route ON shadow_comparisons (dialect, route, seq);
