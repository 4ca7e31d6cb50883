-- A user's three call forwards (the one forward so far was the unconditional one).
ALTER TABLE users RENAME COLUMN forward_target TO forward_always;
ALTER TABLE users ADD COLUMN forward_busy TEXT;
ALTER TABLE users ADD COLUMN forward_no_answer TEXT;
-- What the PBX is known to hold in AstDB for a user (last written there or read back from it).
-- A user's row differing from it is a change still to push; what is read from the PBX
-- differing from it is a change made on the phone.
CREATE TABLE user_features_on_pbx (
    user_id     BIGINT PRIMARY KEY REFERENCES users(id),
    dnd         BOOLEAN NOT NULL,
    always      TEXT,
    busy        TEXT,
    no_answer   TEXT,
    seen_at     BIGINT NOT NULL
);
