-- Where a change came from, beside who made it: "api 192.0.2.7", "cli", "app", "phone".
ALTER TABLE audit_log ADD COLUMN via TEXT;
