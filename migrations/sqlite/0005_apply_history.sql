-- The render applied before the last one (sealed), so the last apply can be rolled back.
ALTER TABLE pbx_renders ADD COLUMN previous BLOB;
ALTER TABLE pbx_renders ADD COLUMN previous_at INTEGER;
-- The history of applies per PBX is read from the audit log.
CREATE INDEX audit_log_entity ON audit_log (entity_type, entity_id, id);
