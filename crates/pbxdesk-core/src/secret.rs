//! Secrets at rest and operator passwords.
//!
//! - Workspace secrets (SIP passwords, voicemail PINs, connection passwords) are sealed with
//!   AES-256-GCM under the workspace key, a fresh random 96-bit nonce each time. A sealed value
//!   is `version(1) || nonce(12) || ciphertext+tag`, and the purpose of the secret is bound as
//!   associated data, so a sealed PIN cannot be passed off as a SIP password.
//! - The workspace key comes from a 0600 key file (default) or from a passphrase via argon2id.
//! - Operator passwords are argon2id PHC strings: the parameters travel in the hash, so they can
//!   be raised later without breaking old hashes.

use crate::error::{Error, Result, ValidationError};
use aes_gcm::aead::{Aead, KeyInit, OsRng, Payload};
use aes_gcm::{AeadCore, Aes256Gcm, Key, Nonce};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use rand::{distributions::Alphanumeric, Rng, RngCore};
use secrecy::{ExposeSecret, SecretBox, SecretString};
use std::io::Write;
use std::path::Path;

/// Purpose-only associated data: the workspace's key check, and a value on its way into its
/// row (re-sealed for the row in the same transaction, see `Workspace::bind_row_secrets`).
const SEALED_VERSION: u8 = 1;
/// Purpose and row (table, id, column) in the associated data: what the store holds.
const SEALED_ROW_VERSION: u8 = 2;
const NONCE_LEN: usize = 12;

/// The row and column a sealed secret lives in, bound into its ciphertext with the purpose, so
/// that a database writer can neither move one device's password into another device's row
/// nor pass an old render off as the previous one: the blob then fails to open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Row<'a> {
    pub table: &'a str,
    pub id: i64,
    pub column: &'a str,
}

impl Row<'_> {
    fn aad(&self, purpose: Purpose) -> Vec<u8> {
        let mut a = purpose.aad().to_vec();
        for part in [self.table, &self.id.to_string(), self.column] {
            a.push(0);
            a.extend_from_slice(part.as_bytes());
        }
        a
    }
}

/// Whether a stored blob is sealed for its row already.
pub fn is_row_sealed(sealed: &[u8]) -> bool {
    sealed.first() == Some(&SEALED_ROW_VERSION)
}

/// What a sealed secret is for; bound into the ciphertext as associated data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    SipPassword,
    VoicemailPin,
    ConnectionPassword,
    KeyCheck,
    TrunkPassword,
    /// A whole render as last applied (it holds every device's and trunk's secret).
    Render,
}

impl Purpose {
    fn aad(self) -> &'static [u8] {
        match self {
            Purpose::SipPassword => b"pbxdesk:sip_password",
            Purpose::VoicemailPin => b"pbxdesk:voicemail_pin",
            Purpose::ConnectionPassword => b"pbxdesk:connection_password",
            Purpose::KeyCheck => b"pbxdesk:key_check",
            Purpose::TrunkPassword => b"pbxdesk:trunk_password",
            Purpose::Render => b"pbxdesk:render",
        }
    }
}

/// The workspace key in memory. Debug never prints it; it is zeroed on drop (secrecy).
pub struct WorkspaceKey(SecretBox<[u8; 32]>);

impl std::fmt::Debug for WorkspaceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WorkspaceKey(***)")
    }
}

impl WorkspaceKey {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        WorkspaceKey(SecretBox::new(Box::new(bytes)))
    }

    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        OsRng.fill(&mut bytes);
        Self::from_bytes(bytes)
    }

    /// Reads the key file, or creates it (mode 0600, 32 random bytes, hex) when absent.
    pub fn load_or_create_file(path: &Path) -> Result<Self> {
        match std::fs::read_to_string(path) {
            Ok(text) => {
                let bytes = hex::decode(text.trim())
                    .ok()
                    .and_then(|b| <[u8; 32]>::try_from(b).ok());
                bytes.map(Self::from_bytes).ok_or_else(|| {
                    Error::Key(format!(
                        "the workspace key file {} is not a 64-digit hex key",
                        path.display()
                    ))
                })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = Self::generate();
                write_private_file(path, hex::encode(key.0.expose_secret()).as_bytes()).map_err(
                    |e| {
                        Error::Key(format!(
                            "cannot create the workspace key file {}: {e}",
                            path.display()
                        ))
                    },
                )?;
                Ok(key)
            }
            Err(e) => Err(Error::Key(format!(
                "cannot read the workspace key file {}: {e}",
                path.display()
            ))),
        }
    }

    /// Derives the key from a passphrase with argon2id (64 MiB, 3 passes, 1 lane).
    pub fn from_passphrase(passphrase: &SecretString, salt: &[u8]) -> Result<Self> {
        let params = Params::new(64 * 1024, 3, 1, Some(32))
            .map_err(|e| Error::Key(format!("key derivation parameters: {e}")))?;
        let mut out = [0u8; 32];
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password_into(passphrase.expose_secret().as_bytes(), salt, &mut out)
            .map_err(|e| Error::Key(format!("key derivation failed: {e}")))?;
        Ok(Self::from_bytes(out))
    }
}

/// Creates a file only its owner can read, refusing to follow an existing one.
fn write_private_file(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(contents)?;
    f.sync_all()
}

/// Seals and opens workspace secrets.
pub struct Cipher {
    aead: Aes256Gcm,
}

impl std::fmt::Debug for Cipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Cipher(***)")
    }
}

impl Cipher {
    pub fn new(key: &WorkspaceKey) -> Self {
        let key = Key::<Aes256Gcm>::from_slice(key.0.expose_secret());
        Cipher {
            aead: Aes256Gcm::new(key),
        }
    }

    fn seal_with(&self, version: u8, aad: &[u8], plaintext: &str) -> Result<Vec<u8>> {
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let ct = self
            .aead
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext.as_bytes(),
                    aad,
                },
            )
            .map_err(|_| Error::Key("encryption failed".into()))?;
        let mut out = Vec::with_capacity(1 + NONCE_LEN + ct.len());
        out.push(version);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        Ok(out)
    }

    fn open_with(&self, version: u8, aad: &[u8], sealed: &[u8]) -> Result<SecretString> {
        let bad = || {
            Error::Key(
                "a stored secret cannot be decrypted with this workspace key (or it was moved \
                 from another row)"
                    .into(),
            )
        };
        if sealed.len() < 1 + NONCE_LEN + 16 || sealed[0] != version {
            return Err(bad());
        }
        let nonce = Nonce::from_slice(&sealed[1..1 + NONCE_LEN]);
        let pt = self
            .aead
            .decrypt(
                nonce,
                Payload {
                    msg: &sealed[1 + NONCE_LEN..],
                    aad,
                },
            )
            .map_err(|_| bad())?;
        String::from_utf8(pt)
            .map(SecretString::from)
            .map_err(|_| bad())
    }

    /// Sealed for its purpose only: the key check, or a value about to be bound to its row.
    pub fn seal(&self, purpose: Purpose, plaintext: &str) -> Result<Vec<u8>> {
        self.seal_with(SEALED_VERSION, purpose.aad(), plaintext)
    }

    pub fn open(&self, purpose: Purpose, sealed: &[u8]) -> Result<SecretString> {
        self.open_with(SEALED_VERSION, purpose.aad(), sealed)
    }

    /// Sealed for its purpose and its row.
    pub fn seal_row(&self, purpose: Purpose, row: Row<'_>, plaintext: &str) -> Result<Vec<u8>> {
        self.seal_with(SEALED_ROW_VERSION, &row.aad(purpose), plaintext)
    }

    /// Opens what the store holds: only a blob sealed for this purpose AND this row.
    pub fn open_row(&self, purpose: Purpose, row: Row<'_>, sealed: &[u8]) -> Result<SecretString> {
        self.open_with(SEALED_ROW_VERSION, &row.aad(purpose), sealed)
    }
}

/// A SIP password: 24 characters from [A-Za-z0-9] drawn from the OS RNG (about 142 bits).
pub fn generate_sip_password() -> SecretString {
    let s: String = OsRng
        .sample_iter(&Alphanumeric)
        .take(24)
        .map(char::from)
        .collect();
    SecretString::from(s)
}

/// An API bearer token: 256 bits from the OS RNG, hex (`pbxd_` and 64 hex digits, so a token
/// pasted into a ticket is recognizable and can be revoked).
pub fn generate_api_token() -> SecretString {
    generate_token("pbxd_")
}

/// A bearer secret: `prefix` and 256 bits from the OS RNG, hex. The prefix says what it is
/// (a session, an automation token, an end user's session, an invite).
pub fn generate_token(prefix: &str) -> SecretString {
    let mut b = [0u8; 32];
    OsRng.fill_bytes(&mut b);
    SecretString::from(format!("{prefix}{}", hex::encode(b)))
}

/// How an automation token begins (a session's access token begins `pbxd_`): the API tells
/// the two apart by it, and a secret scanner can find one pasted where it should not be.
pub const AUTOMATION_TOKEN_PREFIX: &str = "pbxt_";

/// A new automation token: the prefix and 256 random bits, hex.
pub fn generate_automation_token() -> SecretString {
    generate_token(AUTOMATION_TOKEN_PREFIX)
}

/// What the store keeps of an API token: its SHA-256, hex. A token has 256 random bits, so a
/// fast hash suffices (argon2 is for what people choose).
pub fn api_token_hash(token: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(token.as_bytes()))
}

/// A 6-digit voicemail PIN from the OS RNG.
pub fn generate_pin() -> SecretString {
    let n: u32 = OsRng.gen_range(0..1_000_000);
    SecretString::from(format!("{n:06}"))
}

/// Random bytes from the OS RNG (salts).
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    rand::RngCore::fill_bytes(&mut OsRng, &mut b);
    b
}

/// argon2id with OWASP's minimum: 19 MiB, 2 passes, 1 lane.
fn operator_hasher() -> Result<Argon2<'static>> {
    let params = Params::new(19 * 1024, 2, 1, None)
        .map_err(|e| Error::Store(format!("argon2 parameters: {e}")))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

pub const PASSWORD_RULE: &str = "at least 12 characters";

pub fn hash_password(password: &SecretString) -> Result<String> {
    let pw = password.expose_secret();
    if pw.chars().count() < 12 {
        return Err(ValidationError::secret("password", PASSWORD_RULE).into());
    }
    let salt = SaltString::generate(&mut OsRng);
    operator_hasher()?
        .hash_password(pw.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::Store(format!("password hashing failed: {e}")))
}

/// Verifies with the parameters stored in the hash itself.
pub fn verify_password(password: &SecretString, phc: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    Argon2::default()
        .verify_password(password.expose_secret().as_bytes(), &parsed)
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_roundtrip_with_fresh_nonces() {
        let c = Cipher::new(&WorkspaceKey::generate());
        let a = c.seal(Purpose::SipPassword, "s3cret").unwrap();
        let b = c.seal(Purpose::SipPassword, "s3cret").unwrap();
        assert_ne!(a, b, "each seal uses a new nonce");
        assert_eq!(
            c.open(Purpose::SipPassword, &a).unwrap().expose_secret(),
            "s3cret"
        );
        assert!(
            !a.windows(6).any(|w| w == b"s3cret"),
            "plaintext is not in the blob"
        );
    }

    #[test]
    fn wrong_key_purpose_or_tampering_is_refused() {
        let c = Cipher::new(&WorkspaceKey::generate());
        let mut sealed = c.seal(Purpose::VoicemailPin, "1234").unwrap();
        assert!(c.open(Purpose::SipPassword, &sealed).is_err());
        assert!(Cipher::new(&WorkspaceKey::generate())
            .open(Purpose::VoicemailPin, &sealed)
            .is_err());
        let last = sealed.len() - 1;
        sealed[last] ^= 1;
        assert!(c.open(Purpose::VoicemailPin, &sealed).is_err());
        assert!(c.open(Purpose::VoicemailPin, &[1, 2, 3]).is_err());
        // Bound to a row: another row, column or table, or the purpose-only opener, fails.
        let row = |table, id, column| Row { table, id, column };
        let b = c
            .seal_row(
                Purpose::SipPassword,
                row("devices", 7, "sip_password"),
                "pw",
            )
            .unwrap();
        assert!(is_row_sealed(&b));
        assert_eq!(
            c.open_row(Purpose::SipPassword, row("devices", 7, "sip_password"), &b)
                .unwrap()
                .expose_secret(),
            "pw"
        );
        for other in [
            row("devices", 8, "sip_password"),
            row("devices", 7, "other"),
            row("trunks", 7, "sip_password"),
        ] {
            assert!(c.open_row(Purpose::SipPassword, other, &b).is_err());
        }
        assert!(c.open(Purpose::SipPassword, &b).is_err());
        let v1 = c.seal(Purpose::SipPassword, "pw").unwrap();
        assert!(!is_row_sealed(&v1));
        assert!(c
            .open_row(Purpose::SipPassword, row("devices", 7, "sip_password"), &v1)
            .is_err());
    }

    #[test]
    fn key_file_is_private_and_stable() {
        let dir = std::env::temp_dir().join(format!("pbxdesk-key-{}", std::process::id()));
        let path = dir.join("ws.key");
        let _ = std::fs::remove_file(&path);
        let k1 = WorkspaceKey::load_or_create_file(&path).unwrap();
        let k2 = WorkspaceKey::load_or_create_file(&path).unwrap();
        assert_eq!(k1.0.expose_secret(), k2.0.expose_secret());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert_eq!(format!("{k1:?}"), "WorkspaceKey(***)");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn passphrase_key_is_deterministic_per_salt() {
        let p = SecretString::from("correct horse battery staple");
        let a = WorkspaceKey::from_passphrase(&p, b"0123456789abcdef").unwrap();
        let b = WorkspaceKey::from_passphrase(&p, b"0123456789abcdef").unwrap();
        let c = WorkspaceKey::from_passphrase(&p, b"fedcba9876543210").unwrap();
        assert_eq!(a.0.expose_secret(), b.0.expose_secret());
        assert_ne!(a.0.expose_secret(), c.0.expose_secret());
    }

    #[test]
    fn operator_password_hash_uses_owasp_parameters() {
        let pw = SecretString::from("a long enough password");
        let h = hash_password(&pw).unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify_password(&pw, &h));
        assert!(!verify_password(
            &SecretString::from("wrong password!!"),
            &h
        ));
        assert!(hash_password(&SecretString::from("short")).is_err());
    }

    #[test]
    fn generated_secrets_have_the_promised_shape() {
        let p = generate_sip_password();
        assert_eq!(p.expose_secret().len(), 24);
        assert!(p.expose_secret().chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(p.expose_secret(), generate_sip_password().expose_secret());
        let pin = generate_pin();
        assert_eq!(pin.expose_secret().len(), 6);
    }
}
