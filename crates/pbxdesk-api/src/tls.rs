//! TLS for `pbxdesk serve`: the operator's certificate and key (PEM), or a self-signed pair made
//! on first start and kept (so its fingerprint, which clients pin, stays the same across
//! restarts). rustls with ring: no OpenSSL in the server's path.

use sha2::Digest;
use std::io;
use std::path::{Path, PathBuf};

/// How the API is served.
#[derive(Debug, Clone)]
pub enum Tls {
    /// Plain HTTP, for loopback only.
    Off,
    /// The operator's own certificate chain and private key, PEM.
    Files { cert: PathBuf, key: PathBuf },
    /// A self-signed certificate kept in this folder (`cert.pem`, `key.pem`), made the first time.
    SelfSigned { dir: PathBuf },
}

/// A certificate and key ready to serve, with the certificate's fingerprint.
pub struct Identity {
    pub cert_pem: Vec<u8>,
    pub key_pem: Vec<u8>,
    /// SHA-256 of the (first) certificate's DER, as `openssl x509 -fingerprint -sha256` prints it.
    pub fingerprint: String,
    /// Whether this start made the self-signed pair.
    pub made: bool,
}

fn invalid(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, what)
}

/// The SHA-256 fingerprint of a PEM certificate (the first of a chain): `AB:CD:…`.
pub fn fingerprint(cert_pem: &[u8]) -> io::Result<String> {
    let der = first_cert_der(cert_pem)?;
    Ok(sha2::Sha256::digest(&der)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":"))
}

fn first_cert_der(pem: &[u8]) -> io::Result<Vec<u8>> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;
    CertificateDer::pem_slice_iter(pem)
        .next()
        .ok_or_else(|| invalid("no certificate in the PEM file".into()))?
        .map(|c| c.to_vec())
        .map_err(|e| invalid(format!("the certificate does not parse: {e}")))
}

impl Tls {
    /// The certificate and key to serve: read, or made and kept the first time.
    pub fn identity(&self, names: &[String]) -> io::Result<Option<Identity>> {
        match self {
            Tls::Off => Ok(None),
            Tls::Files { cert, key } => {
                let read = |p: &Path, what: &str| {
                    std::fs::read(p).map_err(|e| {
                        io::Error::new(e.kind(), format!("{what} {}: {e}", p.display()))
                    })
                };
                let (cert_pem, key_pem) = (read(cert, "--tls-cert")?, read(key, "--tls-key")?);
                Ok(Some(Identity {
                    fingerprint: fingerprint(&cert_pem)?,
                    cert_pem,
                    key_pem,
                    made: false,
                }))
            }
            Tls::SelfSigned { dir } => self_signed(dir, names).map(Some),
        }
    }
}

fn self_signed(dir: &Path, names: &[String]) -> io::Result<Identity> {
    let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
    if cert_path.exists() && key_path.exists() {
        let cert_pem = std::fs::read(&cert_path)?;
        return Ok(Identity {
            fingerprint: fingerprint(&cert_pem)?,
            key_pem: std::fs::read(&key_path)?,
            cert_pem,
            made: false,
        });
    }
    let made = rcgen::generate_simple_self_signed(names.to_vec())
        .map_err(|e| io::Error::other(format!("cannot make a certificate: {e}")))?;
    let cert_pem = made.cert.pem().into_bytes();
    let key_pem = made.signing_key.serialize_pem().into_bytes();
    create_private_dir(dir)?;
    // The key first, then the certificate: a start that sees both sees a whole pair.
    write_atomically(&key_path, &key_pem, 0o600)?;
    write_atomically(&cert_path, &cert_pem, 0o644)?;
    Ok(Identity {
        fingerprint: fingerprint(&cert_pem)?,
        cert_pem,
        key_pem,
        made: true,
    })
}

fn create_private_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
    }
    #[cfg(not(unix))]
    {
        std::fs::create_dir_all(dir)
    }
}

/// Written to a temporary file beside it, then renamed: never half a key. (The core's
/// `write_private_file` refuses an existing file, which a start cut mid-write would leave.)
fn write_atomically(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let mut f = opts.open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_self_signed_pair_is_made_once_kept_private_and_its_fingerprint_stays() {
        let dir = tempfile::tempdir().unwrap();
        let tls = Tls::SelfSigned {
            dir: dir.path().join("tls"),
        };
        let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
        let first = tls.identity(&names).unwrap().unwrap();
        assert!(first.made);
        assert_eq!(first.fingerprint.len(), 32 * 3 - 1, "{}", first.fingerprint);
        let again = tls.identity(&names).unwrap().unwrap();
        assert!(!again.made, "kept, not made again");
        assert_eq!(again.fingerprint, first.fingerprint);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &str| {
                std::fs::metadata(dir.path().join(p))
                    .unwrap()
                    .permissions()
                    .mode()
                    & 0o777
            };
            assert_eq!(mode("tls"), 0o700);
            assert_eq!(mode("tls/key.pem"), 0o600);
        }
        // The operator's own files give the same fingerprint for the same certificate.
        let files = Tls::Files {
            cert: dir.path().join("tls/cert.pem"),
            key: dir.path().join("tls/key.pem"),
        };
        assert_eq!(
            files.identity(&[]).unwrap().unwrap().fingerprint,
            first.fingerprint
        );
        let missing = Tls::Files {
            cert: dir.path().join("nope.pem"),
            key: dir.path().join("tls/key.pem"),
        };
        let e = missing.identity(&[]).err().unwrap();
        assert!(e.to_string().contains("--tls-cert"), "{e}");
        assert!(fingerprint(b"not a certificate").is_err());
    }
}
