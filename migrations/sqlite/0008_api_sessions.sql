-- The HTTP API's bearer tokens, kept as their SHA-256 (hex): a short-lived access token and the
-- refresh token that renews it, both an operator's. In the workspace, so every `pbxdesk serve`
-- sharing it takes them.
CREATE TABLE api_sessions (
    token_hash   TEXT    PRIMARY KEY,
    operator_id  INTEGER NOT NULL REFERENCES operators(id),
    kind         TEXT    NOT NULL CHECK (kind IN ('access', 'refresh')),
    expires_at   INTEGER NOT NULL,
    created_at   INTEGER NOT NULL
);
CREATE INDEX api_sessions_operator ON api_sessions(operator_id);
