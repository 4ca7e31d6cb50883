-- Ring groups (issue 16): an extension of a tenant's range that rings some of its users, all at
-- once, in order or round robin, then goes to its no-answer destination (a destination as DIDs
-- take it: "user:EXT", "voicemail:EXT", "ring_group:EXT", "external:+E164", "hangup").
-- Its extension is held as a user's is: the allocator counts it, a user cannot take it.
CREATE TABLE ring_groups (
    id              INTEGER PRIMARY KEY,
    tenant_id       INTEGER NOT NULL REFERENCES tenants(id),
    extension       INTEGER NOT NULL,
    name            TEXT    NOT NULL,
    strategy        TEXT    NOT NULL CHECK (strategy IN ('all', 'in_order', 'round_robin')),
    member_seconds  INTEGER NOT NULL,
    total_seconds   INTEGER NOT NULL,
    no_answer       TEXT    NOT NULL,
    version         INTEGER NOT NULL,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);
CREATE UNIQUE INDEX ring_groups_extension ON ring_groups(tenant_id, extension);
-- Members in ringing order; a user is in a group once.
CREATE TABLE ring_group_members (
    group_id  INTEGER NOT NULL REFERENCES ring_groups(id) ON DELETE CASCADE,
    position  INTEGER NOT NULL,
    user_id   INTEGER NOT NULL REFERENCES users(id),
    PRIMARY KEY (group_id, position)
);
CREATE UNIQUE INDEX ring_group_members_user ON ring_group_members(group_id, user_id);
CREATE INDEX ring_group_members_of_user ON ring_group_members(user_id);
