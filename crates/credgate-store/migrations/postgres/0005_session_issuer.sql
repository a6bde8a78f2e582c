-- Sessions bound to their issuer, and refresh-token families (RFC 9700 reuse detection).
-- session_id: the family an access token and the refresh tokens rotated from it share.
-- app_digest: digest of the application key the token was issued with (Et-App), if any.
-- spent_at:   when a refresh token was exchanged; kept until expiry so a replay is detected.
ALTER TABLE tokens ADD COLUMN session_id TEXT;
ALTER TABLE tokens ADD COLUMN app_digest TEXT;
ALTER TABLE tokens ADD COLUMN spent_at BIGINT;
UPDATE tokens SET session_id = digest WHERE session_id IS NULL;
CREATE INDEX tokens_session_id ON tokens (session_id);
