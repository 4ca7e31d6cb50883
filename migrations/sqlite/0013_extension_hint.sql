-- Where the allocator starts looking for a tenant's lowest free extension, so a new user costs
-- the same in a tenant of 10 or of 10,000. Every number of the range from `ext_first` up to
-- `next` (excluded) has a user row (live or deleted: rows are never removed) or is one of the
-- country's emergency numbers; so only numbers from `next` on, and deleted users' numbers below
-- it whose quarantine ran out, can be free. Valid only for the range start and the country it
-- was found with: a tenant whose range or country changed starts again from its first number.
CREATE TABLE extension_hints (
    tenant_id  INTEGER PRIMARY KEY REFERENCES tenants(id),
    ext_first  INTEGER NOT NULL,
    country    TEXT    NOT NULL,
    next       INTEGER NOT NULL
);
-- The deleted users' numbers of a tenant, read without the live ones. It holds every column the
-- allocator reads, as users_tenant_extension does: SQLite's planner takes a covering index over
-- a partial one that is not, and would read every user of the tenant.
CREATE INDEX users_deleted_extension ON users(tenant_id, extension, deleted_at)
    WHERE deleted_at IS NOT NULL;
