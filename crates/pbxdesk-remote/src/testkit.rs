//! Test doubles for this crate's tests and other crates' (feature `testkit`): a real OpenSSH
//! server on a loopback port with throwaway keys, and an AMI that replays the Asterisk 22.10.1
//! captures in `tests/fixtures/asterisk22/ami/` byte for byte (only the ActionID is the client's).
//! Asterisk cannot be installed here; the AMI double is the honest stand-in.

#![allow(clippy::unwrap_used, clippy::panic, clippy::zombie_processes)] // test support: fail loudly

pub mod asterisk;
pub mod dialplan;

use crate::ami::Parser;
use crate::ssh::{Auth, Target};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

pub struct Sshd {
    child: Child,
    pub port: u16,
    dir: tempfile::TempDir,
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn keygen(path: &Path, passphrase: &str) {
    let ok = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", passphrase, "-f"])
        .arg(path)
        .status()
        .expect("ssh-keygen");
    assert!(ok.success());
}

pub fn whoami() -> String {
    String::from_utf8(Command::new("id").arg("-un").output().unwrap().stdout)
        .unwrap()
        .trim()
        .to_owned()
}

impl Sshd {
    /// Starts sshd on a free loopback port; the current user logs in with key `user_key` (or
    /// `user_key_pw`, passphrase "key passphrase 1").
    pub fn start() -> Sshd {
        assert!(
            Path::new("/usr/sbin/sshd").exists(),
            "openssh-server is required (bash scripts/setup.sh)"
        );
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        keygen(&d.join("host_key"), "");
        keygen(&d.join("user_key"), "");
        keygen(&d.join("user_key_pw"), "key passphrase 1");
        let mut auth = std::fs::read_to_string(d.join("user_key.pub")).unwrap();
        auth.push_str(&std::fs::read_to_string(d.join("user_key_pw.pub")).unwrap());
        std::fs::write(d.join("authorized_keys"), auth).unwrap();
        std::fs::set_permissions(
            d.join("authorized_keys"),
            std::fs::Permissions::from_mode(0o600),
        )
        .unwrap();
        std::fs::create_dir_all(d.join("etc-asterisk")).unwrap();
        std::fs::create_dir_all(d.join("bin")).unwrap();
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let config = format!(
        "Port {port}\nListenAddress 127.0.0.1\nHostKey {hk}\nPidFile {pid}\nAuthorizedKeysFile {ak}\n\
         StrictModes no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n\
         PermitRootLogin prohibit-password\nSubsystem sftp internal-sftp\nLogLevel ERROR\n\
         SetEnv PATH={bin}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n",
        bin = d.join("bin").display(),
        hk = d.join("host_key").display(),
        pid = d.join("sshd.pid").display(),
        ak = d.join("authorized_keys").display(),
    );
        std::fs::write(d.join("sshd_config"), config).unwrap();
        // sshd's privilege separation folder.
        let _ = std::fs::create_dir_all("/run/sshd");
        // Owned by `Sshd`, whose Drop kills and waits for it.
        #[allow(clippy::zombie_processes)]
        let child = Command::new("/usr/sbin/sshd")
            .args(["-D", "-e", "-f"])
            .arg(d.join("sshd_config"))
            .spawn()
            .expect("start sshd");
        // sshd writes its pid file once it listens (probing the port would log a failed handshake).
        for _ in 0..200 {
            if d.join("sshd.pid").exists() {
                return Sshd { child, port, dir };
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("sshd did not start");
    }

    pub fn target(&self, key: &str, passphrase: Option<&str>) -> Target {
        Target {
            host: "127.0.0.1".into(),
            port: self.port,
            user: whoami(),
            auth: Auth::KeyFile {
                path: self.dir.path().join(key),
                passphrase: passphrase.map(|p| p.to_owned().into()),
            },
            connect_timeout: Duration::from_secs(5),
            op_timeout: Duration::from_secs(10),
            keepalive: Duration::from_secs(5),
        }
    }

    /// The fingerprint as OpenSSH itself prints it.
    pub fn fingerprint(&self) -> String {
        let out = Command::new("ssh-keygen")
            .arg("-lf")
            .arg(self.dir.path().join("host_key.pub"))
            .output()
            .unwrap();
        String::from_utf8(out.stdout)
            .unwrap()
            .split_whitespace()
            .nth(1)
            .unwrap()
            .to_owned()
    }

    /// A user key file of the test server (`user_key`, or `user_key_pw` with a passphrase).
    pub fn key_path(&self, key: &str) -> PathBuf {
        self.dir.path().join(key)
    }

    /// The folder that plays the PBX's /etc/asterisk.
    pub fn etc(&self) -> PathBuf {
        self.dir.path().join("etc-asterisk")
    }

    /// A folder first on the PATH of this server's sessions (for stand-ins of PBX commands).
    pub fn bin(&self) -> PathBuf {
        self.dir.path().join("bin")
    }
}

pub fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/asterisk22/ami")
}

/// One captured exchange: the request's headers (without ActionID), the response bytes and
/// the ActionID used in the capture.
struct Exchange {
    session: String,
    request: Vec<(String, String)>,
    response: Vec<u8>,
    captured_id: String,
}

fn load() -> Vec<Exchange> {
    let mut out = Vec::new();
    let mut names: Vec<_> = std::fs::read_dir(fixtures())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    for name in names {
        let Some(stem) = name.strip_suffix(".request.raw") else {
            continue;
        };
        let mut p = Parser::default();
        p.push(&std::fs::read(fixtures().join(&name)).unwrap());
        let msg = p.next_message().unwrap().unwrap();
        let captured_id = msg.get("ActionID").unwrap().to_owned();
        let request = msg
            .headers()
            .iter()
            .filter(|(k, _)| !k.eq_ignore_ascii_case("ActionID"))
            .cloned()
            .collect();
        let response =
            std::fs::read(fixtures().join(format!("{stem}.response.raw"))).unwrap_or_default();
        out.push(Exchange {
            session: stem.split('_').next().unwrap().to_owned(),
            request,
            response,
            captured_id,
        });
    }
    out
}

#[derive(Clone, Default)]
pub struct Behaviour {
    /// Which capture sessions answer, first match wins (e.g. ["s1"], ["s4", "s1"]).
    pub sessions: Vec<&'static str>,
    pub delay: Duration,
    /// Close the socket after sending this many bytes of a list response.
    pub drop_list_after: Option<usize>,
    /// Bytes sent to every logged-in connection as they come (events, e.g. a slice of a
    /// captured `.received_stream.raw`); an empty message closes the connections.
    pub events: Option<tokio::sync::broadcast::Sender<Vec<u8>>>,
}

/// Starts the double on a loopback port; returns its address and the actions it received.
pub async fn start_ami(b: Behaviour) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let exchanges = Arc::new(load());
    let seen2 = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let (b, ex, seen) = (b.clone(), exchanges.clone(), seen2.clone());
            tokio::spawn(async move {
                // s1_00: the banner.
                sock.write_all(
                    &std::fs::read(fixtures().join("s1_00_banner.response.raw")).unwrap(),
                )
                .await
                .unwrap();
                let mut parser = Parser::default();
                let mut buf = vec![0u8; 4096];
                let mut injected = b.events.as_ref().map(|tx| tx.subscribe());
                let mut logged_in = false;
                loop {
                    let n = tokio::select! {
                        n = sock.read(&mut buf) => match n {
                            Ok(0) | Err(_) => return,
                            Ok(n) => n,
                        },
                        bytes = async {
                            match injected.as_mut() {
                                Some(rx) => rx.recv().await,
                                None => std::future::pending().await,
                            }
                        }, if logged_in => {
                            match bytes {
                                Ok(bytes) if bytes.is_empty() => return,
                                Ok(bytes) => {
                                    if sock.write_all(&bytes).await.is_err() {
                                        return;
                                    }
                                    continue;
                                }
                                Err(_) => return,
                            }
                        }
                    };
                    parser.push(&buf[..n]);
                    while let Some(req) = parser.next_message().unwrap() {
                        let action = req.get("Action").unwrap_or("").to_owned();
                        seen.lock().unwrap().push(action.clone());
                        let id = req.get("ActionID").unwrap_or("").to_owned();
                        tokio::time::sleep(b.delay).await;
                        if action == "Login" && req.get("Secret") != Some("pbx-secret-1") {
                            // s2_badlogin_01: an error, then Asterisk closes the socket.
                            let r =
                                std::fs::read(fixtures().join("s2_badlogin_01_login.response.raw"))
                                    .unwrap();
                            sock.write_all(&with_id(&r, "b1", &id)).await.unwrap();
                            return;
                        }
                        if action == "Login" {
                            // s1_01: the answer, whichever Events the login asked for.
                            let r =
                                std::fs::read(fixtures().join("s1_01_login.response.raw")).unwrap();
                            sock.write_all(&with_login_id(&r, &id)).await.unwrap();
                            logged_in = true;
                            continue;
                        }
                        let wanted: Vec<(String, String)> = req
                            .headers()
                            .iter()
                            .filter(|(k, _)| !k.eq_ignore_ascii_case("ActionID"))
                            .cloned()
                            .collect();
                        let found = b.sessions.iter().find_map(|s| {
                            ex.iter()
                                .find(|e| e.session == *s && same(&e.request, &wanted))
                        });
                        let reply = match found {
                            Some(e) => with_id(&e.response, &e.captured_id, &id),
                            None => format!("Response: Error\r\nActionID: {id}\r\nMessage: Invalid/unknown command\r\n\r\n").into_bytes(),
                        };
                        let is_list = reply.windows(16).any(|w| w == b"EventList: start");
                        match b.drop_list_after {
                            Some(n) if is_list => {
                                sock.write_all(&reply[..n.min(reply.len())]).await.unwrap();
                                return;
                            }
                            _ => sock.write_all(&reply).await.unwrap(),
                        }
                        if action == "Logoff" {
                            return;
                        }
                    }
                }
            });
        }
    });
    (addr, seen)
}

/// Every message of a captured file (a response, or a whole events-on stream without its
/// banner line).
pub fn captured_messages(name: &str) -> Vec<crate::ami::Message> {
    let mut bytes = std::fs::read(fixtures().join(name)).unwrap();
    if bytes.starts_with(b"Asterisk Call Manager/") {
        let eol = bytes.windows(2).position(|w| w == b"\r\n").unwrap();
        bytes.drain(..eol + 2);
    }
    let mut p = Parser::default();
    p.push(&bytes);
    std::iter::from_fn(|| p.next_message().unwrap()).collect()
}

/// The event messages of a captured events-on stream (`*.received_stream.raw`), as bytes to
/// send again through [`Behaviour::events`]: the capture's own answers left out.
pub fn captured_events(name: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for m in captured_messages(name).iter().filter(|m| m.is_event()) {
        for (k, v) in m.headers() {
            out.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
        }
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// A logged-in connection to the double, with nothing to keep alive beside it.
pub type Connecting = std::pin::Pin<
    Box<
        dyn std::future::Future<Output = Result<(crate::ami::Client, ()), crate::ami::AmiError>>
            + Send,
    >,
>;

/// What `watch::spawn` needs to reach the double at `addr` directly, events on.
pub fn ami_connector(addr: String) -> impl Fn() -> Connecting + Send + 'static {
    move || {
        let addr = addr.clone();
        Box::pin(async move {
            crate::ami::Client::connect(
                &addr,
                "pbx",
                &secrecy::SecretString::from("pbx-secret-1"),
                true,
                crate::ami::Options::default(),
            )
            .await
            .map(|c| (c, ()))
        })
    }
}

/// The captured login answer with its ActionID replaced by `to`.
fn with_login_id(bytes: &[u8], to: &str) -> Vec<u8> {
    let mut p = Parser::default();
    p.push(bytes);
    let from = p
        .next_message()
        .ok()
        .flatten()
        .and_then(|m| m.get("ActionID").map(str::to_owned))
        .unwrap_or_default();
    with_id(bytes, &from, to)
}

fn same(a: &[(String, String)], b: &[(String, String)]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|((ka, va), (kb, vb))| ka.eq_ignore_ascii_case(kb) && va == vb)
}

fn with_id(bytes: &[u8], from: &str, to: &str) -> Vec<u8> {
    let text = String::from_utf8_lossy(bytes);
    text.replace(
        &format!("ActionID: {from}\r\n"),
        &format!("ActionID: {to}\r\n"),
    )
    .into_bytes()
}
