-- The audit screen filters by who, what and when, newest first, a page at a time (keyset on
-- id): each filter has an index that reads in id order, so a page stays fast at 1,000,000
-- entries.
CREATE INDEX audit_log_actor ON audit_log (actor, id);
CREATE INDEX audit_log_action ON audit_log (action, id);
CREATE INDEX audit_log_at ON audit_log (at);
