-- pbxdesk workspace, SQLite edition. Keep in step with migrations/postgres/0001_foundation.sql.
-- Times are Unix milliseconds (INTEGER); secrets are AES-256-GCM blobs (see secret.rs).

CREATE TABLE workspace_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE pbxes (
    id          INTEGER PRIMARY KEY,
    name        TEXT    NOT NULL UNIQUE,
    host        TEXT    NOT NULL,
    ssh_port    INTEGER NOT NULL,
    ssh_user    TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);

CREATE TABLE tenants (
    id                INTEGER PRIMARY KEY,
    pbx_id            INTEGER NOT NULL REFERENCES pbxes(id),
    name              TEXT    NOT NULL,
    slug              TEXT    NOT NULL UNIQUE,
    ext_first         INTEGER NOT NULL,
    ext_last          INTEGER NOT NULL,
    status            TEXT    NOT NULL CHECK (status IN ('active', 'suspended')),
    version           INTEGER NOT NULL,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL,
    CHECK (ext_first <= ext_last)
);
CREATE INDEX tenants_pbx ON tenants(pbx_id);

CREATE TABLE users (
    id                  INTEGER PRIMARY KEY,
    tenant_id           INTEGER NOT NULL REFERENCES tenants(id),
    display_name        TEXT    NOT NULL,
    email               TEXT    NOT NULL,
    role                TEXT    NOT NULL CHECK (role IN ('member', 'admin')),
    status              TEXT    NOT NULL CHECK (status IN ('active', 'suspended', 'deleted')),
    extension           INTEGER NOT NULL,
    outbound_caller_id  TEXT,
    voicemail_enabled   INTEGER NOT NULL,
    voicemail_pin       BLOB,
    dnd                 INTEGER NOT NULL,
    forward_target      TEXT,
    version             INTEGER NOT NULL,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL,
    deleted_at          INTEGER
);
-- A live extension is unique in its tenant; deleted users keep theirs on record (quarantine).
CREATE UNIQUE INDEX users_live_extension ON users(tenant_id, extension) WHERE status <> 'deleted';
CREATE UNIQUE INDEX users_live_email ON users(tenant_id, email) WHERE status <> 'deleted';
-- The allocator's index: every number a tenant holds, live or quarantined.
CREATE INDEX users_tenant_extension ON users(tenant_id, extension, deleted_at);

CREATE TABLE devices (
    id              INTEGER PRIMARY KEY,
    user_id         INTEGER NOT NULL REFERENCES users(id),
    pbx_id          INTEGER NOT NULL REFERENCES pbxes(id),
    label           TEXT    NOT NULL,
    sip_username    TEXT    NOT NULL,
    sip_password    BLOB    NOT NULL,
    transport       TEXT    NOT NULL CHECK (transport IN ('udp', 'tcp', 'tls')),
    codecs          TEXT    NOT NULL,
    nat             INTEGER NOT NULL,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);
-- PJSIP endpoint ids are global on one Asterisk: unique per PBX across all its tenants.
CREATE UNIQUE INDEX devices_pbx_username ON devices(pbx_id, sip_username);
CREATE INDEX devices_user ON devices(user_id);

CREATE TABLE operators (
    id             INTEGER PRIMARY KEY,
    username       TEXT    NOT NULL UNIQUE,
    password_hash  TEXT,
    role           TEXT    NOT NULL CHECK (role IN ('msp_admin', 'technician', 'tenant_admin', 'auditor')),
    disabled       INTEGER NOT NULL,
    created_at     INTEGER NOT NULL
);

CREATE TABLE operator_tenants (
    operator_id  INTEGER NOT NULL REFERENCES operators(id),
    tenant_id    INTEGER NOT NULL REFERENCES tenants(id),
    PRIMARY KEY (operator_id, tenant_id)
);

CREATE TABLE audit_log (
    id           INTEGER PRIMARY KEY,
    at           INTEGER NOT NULL,
    actor        TEXT    NOT NULL,
    action       TEXT    NOT NULL,
    entity_type  TEXT    NOT NULL,
    entity_id    TEXT    NOT NULL,
    tenant_id    INTEGER,
    before_json  TEXT,
    after_json   TEXT
);
CREATE INDEX audit_log_tenant ON audit_log(tenant_id, id);
