-- API tokens for automation (a PSA or an RMM calling the API): made by an msp_admin with a
-- name, a role and an optional tenant; kept as their SHA-256 (hex) only; revoked, never
-- deleted, so the list keeps what existed. A name is taken again only once its token is revoked.
CREATE TABLE api_tokens (
    id            INTEGER PRIMARY KEY,
    name          TEXT    NOT NULL,
    token_hash    TEXT    NOT NULL UNIQUE,
    role          TEXT    NOT NULL CHECK (role IN ('technician', 'tenant_admin', 'auditor')),
    tenant_id     INTEGER REFERENCES tenants(id),
    created_by    TEXT    NOT NULL,
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER,
    last_used_at  INTEGER,
    last_used_via TEXT,
    revoked_at    INTEGER
);
CREATE UNIQUE INDEX api_tokens_live_name ON api_tokens(name) WHERE revoked_at IS NULL;
