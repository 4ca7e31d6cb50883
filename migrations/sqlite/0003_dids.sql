-- Inbound numbers (DIDs): unique on their PBX; the destination is "user:EXT", "voicemail:EXT",
-- "external:+E164" or "hangup".
CREATE TABLE dids (
    id           INTEGER PRIMARY KEY,
    pbx_id       INTEGER NOT NULL REFERENCES pbxes(id),
    tenant_id    INTEGER NOT NULL REFERENCES tenants(id),
    number       TEXT    NOT NULL,
    label        TEXT    NOT NULL,
    destination  TEXT    NOT NULL,
    version      INTEGER NOT NULL,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
);
CREATE UNIQUE INDEX dids_pbx_number ON dids(pbx_id, number);
CREATE INDEX dids_tenant ON dids(tenant_id);
