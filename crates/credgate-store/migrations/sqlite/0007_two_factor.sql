-- Two-factor login. Timestamps are seconds since the Unix epoch.

-- Each enrolled user's method: a delivered one-time code, or an authenticator app's RFC 6238
-- code (with its shared secret, base32, and the newest time step accepted, against replay).
CREATE TABLE two_factor (
    user_id     TEXT    NOT NULL PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    method      TEXT    NOT NULL CHECK (method IN ('code', 'totp')),
    totp_secret TEXT,
    last_step   INTEGER,
    updated_at  INTEGER NOT NULL
);

-- Logins whose password was right, awaiting the second factor: by the keyed digest of the
-- interim token handed to the client (the token itself is never stored), with the keyed digest
-- of the delivered code when there is one. Bound to the dialect and application key that
-- started them, as sessions are.
CREATE TABLE login_challenges (
    digest      TEXT    NOT NULL PRIMARY KEY,
    user_id     TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_digest TEXT,
    dialect     TEXT    NOT NULL,
    app_digest  TEXT,
    client_id   TEXT,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
);
CREATE INDEX login_challenges_user_id ON login_challenges (user_id);
