-- The audit screen lists entries newest first, a page at a time (keyset on at, id), filtered
-- by who, what kind of thing, which action, which tenant and when: each filter has an index
-- that reads in that order, a time window being a range of it, so a page stays fast at
-- 1,000,000 entries.
CREATE INDEX audit_log_at ON audit_log (at, id);
CREATE INDEX audit_log_actor ON audit_log (actor, at, id);
CREATE INDEX audit_log_action ON audit_log (action, at, id);
CREATE INDEX audit_log_kind ON audit_log (entity_type, at, id);
CREATE INDEX audit_log_tenant_at ON audit_log (tenant_id, at, id);
