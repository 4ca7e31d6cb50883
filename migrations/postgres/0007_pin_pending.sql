-- Set when a user's voicemail PIN changes here and cleared once the PBX runs a render holding
-- it (a PIN push or an apply): the PIN is sealed, so the stored values cannot be compared.
ALTER TABLE users ADD COLUMN pin_pending_since BIGINT;
