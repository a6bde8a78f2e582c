-- Password resets. Timestamps are seconds since the Unix epoch.

-- Outstanding and used reset tokens and codes, by SHA-256 digest: the secret itself is never
-- stored. A row is usable while used_at IS NULL and expires_at > now.
CREATE TABLE reset_tokens (
    digest     TEXT    NOT NULL PRIMARY KEY,
    user_id    TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind       TEXT    NOT NULL CHECK (kind IN ('token', 'code')),
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT
);
CREATE INDEX reset_tokens_user_id ON reset_tokens (user_id);

-- One security question per user, with the hash of its answer.
CREATE TABLE security_answers (
    user_id     TEXT    NOT NULL PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    question    TEXT    NOT NULL,
    answer_hash TEXT    NOT NULL,
    updated_at  BIGINT NOT NULL
);
