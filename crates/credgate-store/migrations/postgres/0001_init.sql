-- credgate schema, PostgreSQL flavour: the twin of migrations/sqlite/0001_init.sql, with the
-- same tables, constraints and indexes. Timestamps are seconds since the Unix epoch (BIGINT);
-- JSON is text, so both backends read and write it alike.

CREATE TABLE users (
    id                 TEXT    NOT NULL PRIMARY KEY,
    username           TEXT    NOT NULL UNIQUE,
    admin              BOOLEAN NOT NULL DEFAULT FALSE,
    externally_managed BOOLEAN NOT NULL DEFAULT FALSE,
    profile            TEXT    NOT NULL DEFAULT '{}',
    created_at         BIGINT NOT NULL,
    password_hash      TEXT    NOT NULL,
    credential_version BIGINT NOT NULL DEFAULT 1 CHECK (credential_version >= 1)
);

-- The id a dialect's clients know a user by: unique within the dialect, one per dialect per user.
CREATE TABLE user_aliases (
    dialect     TEXT NOT NULL,
    external_id TEXT NOT NULL,
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (dialect, external_id),
    UNIQUE (user_id, dialect)
);

-- Hashes a user had before the current one; seq orders them (newest = highest).
CREATE TABLE password_history (
    seq        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id    TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    hash       TEXT    NOT NULL,
    changed_at BIGINT NOT NULL
);
CREATE INDEX password_history_user_id ON password_history (user_id, seq);

-- Issued tokens, by SHA-256 digest: the secret itself is never stored.
CREATE TABLE tokens (
    digest     TEXT    NOT NULL PRIMARY KEY,
    kind       TEXT    NOT NULL CHECK (kind IN ('user', 'client', 'refresh')),
    user_id    TEXT    REFERENCES users (id) ON DELETE CASCADE,
    client_id  TEXT,
    dialect    TEXT    NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX tokens_user_id ON tokens (user_id);
CREATE INDEX tokens_expires_at ON tokens (expires_at);

CREATE TABLE clients (
    client_id   TEXT    NOT NULL PRIMARY KEY,
    secret_hash TEXT    NOT NULL,
    name        TEXT,
    created_at  BIGINT NOT NULL
);

CREATE TABLE apps (
    key_digest TEXT    NOT NULL PRIMARY KEY,
    name       TEXT,
    created_at BIGINT NOT NULL
);

-- Append-only; an identity column, so a sequence number is never reused.
CREATE TABLE audit (
    seq         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          BIGINT NOT NULL,
    kind        TEXT    NOT NULL,
    user_id     TEXT,
    dialect     TEXT    NOT NULL,
    request_id  TEXT    NOT NULL,
    client_addr TEXT,
    detail      TEXT    NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_user_id ON audit (user_id, seq);
