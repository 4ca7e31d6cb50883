-- Call routing: a tenant's country and defaults, a user's ring time and class of service,
-- trunks, outbound policies with ordered rules, and the last render applied to each PBX.
ALTER TABLE tenants ADD COLUMN country TEXT NOT NULL DEFAULT 'CH';
-- Where an unassigned number of the tenant goes: a DID destination ("hangup" = not in service).
ALTER TABLE tenants ADD COLUMN unknown_did TEXT NOT NULL DEFAULT 'hangup';
ALTER TABLE tenants ADD COLUMN caller_id TEXT;
ALTER TABLE tenants ADD COLUMN default_policy TEXT;
ALTER TABLE users ADD COLUMN ring_seconds INTEGER NOT NULL DEFAULT 25;
ALTER TABLE users ADD COLUMN policy TEXT;
-- The trunk (provider) a DID is delivered by, when known.
ALTER TABLE dids ADD COLUMN trunk TEXT;

CREATE TABLE trunks (
    id            INTEGER PRIMARY KEY,
    pbx_id        INTEGER NOT NULL REFERENCES pbxes(id),
    name          TEXT    NOT NULL,
    host          TEXT    NOT NULL,
    port          INTEGER NOT NULL,
    transport     TEXT    NOT NULL CHECK (transport IN ('udp', 'tcp', 'tls')),
    register      INTEGER NOT NULL,
    username      TEXT,
    password      BLOB,
    from_domain   TEXT,
    from_user     TEXT,
    codecs        TEXT    NOT NULL,
    enabled       INTEGER NOT NULL,
    version       INTEGER NOT NULL,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);
CREATE UNIQUE INDEX trunks_pbx_name ON trunks(pbx_id, name);

CREATE TABLE trunk_tenants (
    trunk_id   INTEGER NOT NULL REFERENCES trunks(id),
    tenant_id  INTEGER NOT NULL REFERENCES tenants(id),
    PRIMARY KEY (trunk_id, tenant_id)
);

CREATE TABLE policies (
    id          INTEGER PRIMARY KEY,
    tenant_id   INTEGER NOT NULL REFERENCES tenants(id),
    name        TEXT    NOT NULL,
    version     INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);
CREATE UNIQUE INDEX policies_tenant_name ON policies(tenant_id, name);

-- Rules in order; trunks is the ordered list of trunk names (checked against trunks on write).
CREATE TABLE policy_rules (
    policy_id  INTEGER NOT NULL REFERENCES policies(id),
    position   INTEGER NOT NULL,
    pattern    TEXT    NOT NULL,
    allow      INTEGER NOT NULL,
    strip      INTEGER NOT NULL,
    prepend    TEXT    NOT NULL,
    trunks     TEXT    NOT NULL,
    PRIMARY KEY (policy_id, position)
);

-- The render last applied to each PBX, sealed (it holds secrets): what `diff` compares with.
CREATE TABLE pbx_renders (
    pbx_id      INTEGER PRIMARY KEY REFERENCES pbxes(id),
    applied_at  INTEGER NOT NULL,
    actor       TEXT    NOT NULL,
    rendered    BLOB    NOT NULL
);
