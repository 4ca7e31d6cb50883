-- End users' self-service: an operator invites a user (the invite kept as its SHA-256, good
-- until it is used or expires); taking the invite sets the user's own password (argon2id). A
-- user has at most one row; removing self-service deletes it and the user's sessions.
CREATE TABLE self_service (
    user_id           INTEGER PRIMARY KEY REFERENCES users(id),
    password_hash     TEXT,
    invite_hash       TEXT    UNIQUE,
    invite_expires_at INTEGER,
    invited_by        TEXT    NOT NULL,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL
);
-- An end user's sessions (a bearer token, `pbxu_…`), kept as their SHA-256.
CREATE TABLE self_service_sessions (
    token_hash  TEXT    PRIMARY KEY,
    user_id     INTEGER NOT NULL REFERENCES users(id),
    expires_at  INTEGER NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE INDEX self_service_sessions_user ON self_service_sessions(user_id);
