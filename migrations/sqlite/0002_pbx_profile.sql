-- The PBX connection profile. Secrets (SSH password or key passphrase, AMI secret, database
-- password) are sealed blobs; the pinned host key is an OpenSSH SHA256 fingerprint.
ALTER TABLE pbxes ADD COLUMN config_dir TEXT NOT NULL DEFAULT '/etc/asterisk';
ALTER TABLE pbxes ADD COLUMN ssh_auth TEXT NOT NULL DEFAULT 'agent' CHECK (ssh_auth IN ('key', 'agent', 'password'));
ALTER TABLE pbxes ADD COLUMN ssh_key_path TEXT;
ALTER TABLE pbxes ADD COLUMN ssh_secret BLOB;
ALTER TABLE pbxes ADD COLUMN host_key TEXT;
ALTER TABLE pbxes ADD COLUMN ami_via TEXT NOT NULL DEFAULT 'tunnel' CHECK (ami_via IN ('tunnel', 'direct'));
ALTER TABLE pbxes ADD COLUMN ami_port INTEGER NOT NULL DEFAULT 5038;
ALTER TABLE pbxes ADD COLUMN ami_user TEXT;
ALTER TABLE pbxes ADD COLUMN ami_secret BLOB;
ALTER TABLE pbxes ADD COLUMN db_via TEXT NOT NULL DEFAULT 'tunnel' CHECK (db_via IN ('tunnel', 'direct'));
ALTER TABLE pbxes ADD COLUMN db_port INTEGER NOT NULL DEFAULT 3306;
ALTER TABLE pbxes ADD COLUMN db_name TEXT NOT NULL DEFAULT 'asterisk';
ALTER TABLE pbxes ADD COLUMN db_user TEXT;
ALTER TABLE pbxes ADD COLUMN db_password BLOB;
ALTER TABLE pbxes ADD COLUMN connect_timeout_ms INTEGER NOT NULL DEFAULT 10000;
ALTER TABLE pbxes ADD COLUMN command_timeout_ms INTEGER NOT NULL DEFAULT 30000;
ALTER TABLE pbxes ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
