//! SSH and SFTP to a PBX (the ssh2 crate: libssh2, blocking; callers run it off the async
//! runtime with `spawn_blocking`).
//!
//! - The host key is checked before any authentication: a connection is refused until a key
//!   is pinned (`HostKeyNotPinned` carries the fingerprint to show the technician), and a key
//!   that differs from the pinned one is refused naming both fingerprints. Fingerprints are
//!   OpenSSH's `SHA256:<base64>` form, so they can be compared with `ssh-keygen -lf`.
//! - Writes are atomic: a temporary file in the same folder, written, fsynced
//!   (fsync@openssh.com), given the replaced file's mode and owner, then renamed over the old
//!   one. OpenSSH speaks SFTP version 3, whose RENAME refuses an existing target and has no
//!   overwrite flag, and ssh2 does not expose posix-rename@openssh.com; so the rename is a
//!   `mv -f` on the remote host, which is rename(2) within one folder. Only paths of a strict
//!   alphabet reach that command, and they are single-quoted as well.
//! - Keepalives are sent on a timer (libssh2 sends none by itself); every operation has a
//!   timeout.

use base64::Engine;
use secrecy::{ExposeSecret, SecretString};
use ssh2::{HashType, Session, Sftp};
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum SshError {
    #[error("cannot reach {addr}: {reason}")]
    Connect { addr: String, reason: String },
    #[error("the host key of {host} is not trusted yet; its fingerprint is {fingerprint}. Check it with the PBX's administrator, then pin it (pbxdesk pbx trust)")]
    HostKeyNotPinned { host: String, fingerprint: String },
    #[error("WARNING: the host key of {host} has changed: pinned {pinned}, offered {offered}. This may be an attack; the connection was refused")]
    HostKeyChanged {
        host: String,
        pinned: String,
        offered: String,
    },
    #[error("SSH login as {user} failed: {reason}")]
    Auth { user: String, reason: String },
    #[error("the remote path {path:?} is not allowed: {rule}")]
    InvalidPath { path: String, rule: &'static str },
    #[error("{op} {path} failed: {reason}")]
    Remote {
        op: &'static str,
        path: String,
        reason: String,
    },
    /// A guarded change found its guard gone: the apply's armed rollback has started.
    #[error("not done: the PBX's own rollback has started (the confirm window ran out)")]
    NotArmed,
}

/// How to log in.
pub enum Auth {
    KeyFile {
        path: PathBuf,
        passphrase: Option<SecretString>,
    },
    Agent,
    Password(SecretString),
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auth::KeyFile { path, .. } => write!(f, "KeyFile({})", path.display()),
            Auth::Agent => f.write_str("Agent"),
            Auth::Password(_) => f.write_str("Password(***)"),
        }
    }
}

#[derive(Debug)]
pub struct Target {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub auth: Auth,
    pub connect_timeout: Duration,
    /// For every SSH operation once connected.
    pub op_timeout: Duration,
    pub keepalive: Duration,
}

/// The host's key as offered during the handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostKey {
    /// `SHA256:<base64 without padding>`, as `ssh-keygen -lf` prints it.
    pub fingerprint: String,
}

fn addr_of(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

fn handshake(
    host: &str,
    port: u16,
    connect_timeout: Duration,
    op_timeout: Duration,
) -> Result<(Session, HostKey, TcpStream), SshError> {
    let addr = addr_of(host, port);
    let err = |reason: String| SshError::Connect {
        addr: addr.clone(),
        reason,
    };
    let sock = addr
        .to_socket_addrs()
        .map_err(|e| err(e.to_string()))?
        .next()
        .ok_or_else(|| err("no address".into()))?;
    let tcp = TcpStream::connect_timeout(&sock, connect_timeout).map_err(|e| err(e.to_string()))?;
    // SFTP is request/response in small packets: without this, Nagle and delayed ACKs add up to
    // tens of milliseconds to every file operation.
    tcp.set_nodelay(true).ok();
    // A second handle on the same socket, for waiting on it (the tunnel's pump polls it).
    let watch = tcp.try_clone().map_err(|e| err(e.to_string()))?;
    let mut session = Session::new().map_err(|e| err(e.to_string()))?;
    session.set_timeout(u32::try_from(op_timeout.as_millis()).unwrap_or(u32::MAX));
    session.set_tcp_stream(tcp);
    session
        .handshake()
        .map_err(|e| err(format!("SSH handshake: {e}")))?;
    let hash = session
        .host_key_hash(HashType::Sha256)
        .ok_or_else(|| err("the server offered no host key".into()))?;
    let fingerprint = format!(
        "SHA256:{}",
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(hash)
    );
    Ok((session, HostKey { fingerprint }, watch))
}

/// Connects only to read the host key (for "trust on first use" with the technician's consent).
pub fn probe_host_key(host: &str, port: u16, timeout: Duration) -> Result<HostKey, SshError> {
    handshake(host, port, timeout, timeout).map(|(_, key, _)| key)
}

/// A logged-in SSH connection with an SFTP channel.
pub struct Connection {
    session: Session,
    sftp: Sftp,
    stop_keepalive: Arc<AtomicBool>,
    /// One shell on the PBX that runs every remote command in turn (see [`Shell`]).
    shell: Mutex<Option<Shell>>,
}

/// A shell kept open on the PBX for the connection's remote commands. sshd starts a session
/// for each `exec` (a process, the login shell), which takes ~100 ms before a command's first
/// byte; one shell started when the connection opens (its start overlaps the SFTP work that
/// follows) runs each command in a subshell in a few milliseconds. Each command's standard
/// output, exit status and standard error come back framed by a random marker.
struct Shell {
    channel: ssh2::Channel,
    marker: String,
}

impl Shell {
    fn start(session: &Session) -> Result<Shell, ssh2::Error> {
        let mut channel = session.channel_session()?;
        // The login shell runs `exec sh`; its standard error file keeps each command's.
        channel.exec("exec sh")?;
        let marker = format!("pbxdesk-{:016x}", rand::random::<u64>());
        let _ = channel.write_all(b"e=$(mktemp) || exit 1; trap 'rm -f \"$e\"' EXIT\n");
        Ok(Shell { channel, marker })
    }

    /// Runs `command` in a subshell (an `exit` in it ends only the subshell; it reads nothing
    /// from the shell's input): its output, exit status and error output.
    fn run(&mut self, command: &str) -> std::io::Result<(String, i32, String)> {
        let m = &self.marker;
        let framed = format!(
            "( {command}\n) </dev/null 2>\"$e\"; printf '\\n{m} %s\\n' $?; head -c {MAX_OUTPUT_BYTES} \"$e\"; printf '\\n{m}.\\n'\n"
        );
        self.channel.write_all(framed.as_bytes())?;
        self.channel.flush()?;
        let (status_at, end) = (format!("\n{m} "), format!("\n{m}.\n"));
        let mut got: Vec<u8> = Vec::new();
        let mut buf = [0u8; 16 * 1024];
        loop {
            let n = self.channel.read(&mut buf)?;
            if n == 0 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "the PBX's shell ended",
                ));
            }
            got.extend_from_slice(&buf[..n]);
            if got.len() > 2 * MAX_OUTPUT_BYTES as usize + 4096 {
                return Err(std::io::Error::other("a remote command printed too much"));
            }
            if got.ends_with(end.as_bytes()) {
                break;
            }
        }
        let text = String::from_utf8_lossy(&got[..got.len() - end.len()]).into_owned();
        let Some((out, rest)) = text.rsplit_once(status_at.as_str()) else {
            return Err(std::io::Error::other(
                "a remote command's answer was garbled",
            ));
        };
        let (code, err) = rest.split_once('\n').unwrap_or((rest, ""));
        let code = code.trim().parse().unwrap_or(-1);
        let mut out = out.to_owned();
        out.truncate(MAX_OUTPUT_BYTES as usize);
        Ok((out, code, err.to_owned()))
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.stop_keepalive.store(true, Ordering::Relaxed);
    }
}

/// Connects, verifies the host key against `pinned` (required), and logs in.
pub(crate) fn open_session(target: &Target, pinned: Option<&str>) -> Result<Session, SshError> {
    open_session_watched(target, pinned).map(|(s, _)| s)
}

/// [`open_session`], with a second handle on its socket to wait on.
pub(crate) fn open_session_watched(
    target: &Target,
    pinned: Option<&str>,
) -> Result<(Session, TcpStream), SshError> {
    let (session, key, watch) = handshake(
        &target.host,
        target.port,
        target.connect_timeout,
        target.op_timeout,
    )?;
    match pinned {
        None => {
            return Err(SshError::HostKeyNotPinned {
                host: target.host.clone(),
                fingerprint: key.fingerprint,
            })
        }
        Some(p) if p != key.fingerprint => {
            return Err(SshError::HostKeyChanged {
                host: target.host.clone(),
                pinned: p.to_owned(),
                offered: key.fingerprint,
            })
        }
        Some(_) => {}
    }
    let auth_err = |reason: String| SshError::Auth {
        user: target.user.clone(),
        reason,
    };
    match &target.auth {
        Auth::KeyFile { path, passphrase } => session
            .userauth_pubkey_file(
                &target.user,
                None,
                path,
                passphrase.as_ref().map(|p| p.expose_secret()),
            )
            .map_err(|e| auth_err(e.message().to_owned()))?,
        Auth::Agent => session
            .userauth_agent(&target.user)
            .map_err(|e| auth_err(e.message().to_owned()))?,
        Auth::Password(p) => session
            .userauth_password(&target.user, p.expose_secret())
            .map_err(|e| auth_err(e.message().to_owned()))?,
    }
    if !session.authenticated() {
        return Err(auth_err("not authenticated".into()));
    }
    Ok((session, watch))
}

impl Connection {
    /// Connects, verifies the host key against `pinned` (required), and logs in.
    pub fn open(target: &Target, pinned: Option<&str>) -> Result<Connection, SshError> {
        let session = open_session(target, pinned)?;
        let sftp = session.sftp().map_err(|e| SshError::Remote {
            op: "open SFTP",
            path: String::new(),
            reason: e.to_string(),
        })?;
        let stop = Arc::new(AtomicBool::new(false));
        session.set_keepalive(
            false,
            u32::try_from(target.keepalive.as_secs())
                .unwrap_or(30)
                .max(1),
        );
        let (s, flag, every) = (session.clone(), stop.clone(), target.keepalive);
        std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                std::thread::sleep(every.min(Duration::from_secs(1)));
                if s.keepalive_send().is_err() {
                    break;
                }
            }
        });
        // Started now: it comes up while the SFTP work that follows goes on.
        let shell = Shell::start(&session).ok();
        Ok(Connection {
            session,
            sftp,
            stop_keepalive: stop,
            shell: Mutex::new(shell),
        })
    }

    /// A file's bytes, or `None` when it does not exist.
    pub fn read_file(&self, path: &str) -> Result<Option<Vec<u8>>, SshError> {
        let p = checked_path(path)?;
        let mut file = match self.sftp.open(&p) {
            Ok(f) => f,
            Err(e) if is_no_such_file(&e) => return Ok(None),
            Err(e) => return Err(remote("read", path, e)),
        };
        let mut out = Vec::new();
        // Config files are kilobytes; a runaway one must not fill the laptop's memory.
        (&mut file)
            .take(MAX_READ_BYTES + 1)
            .read_to_end(&mut out)
            .map_err(|e| SshError::Remote {
                op: "read",
                path: path.into(),
                reason: e.to_string(),
            })?;
        if out.len() as u64 > MAX_READ_BYTES {
            return Err(SshError::Remote {
                op: "read",
                path: path.into(),
                reason: format!("larger than {} MiB", MAX_READ_BYTES / (1024 * 1024)),
            });
        }
        Ok(Some(out))
    }

    /// Replaces (or creates) a file atomically; keeps the mode and owner of the file it
    /// replaces (a new file gets mode 0640). On any failure the old file is untouched and the
    /// temporary file is removed.
    pub fn write_atomic(&self, path: &str, bytes: &[u8]) -> Result<(), SshError> {
        self.write_files_atomic(&[(path, bytes)])
    }

    /// Replaces several files, each atomically: every temporary file is written and fsynced
    /// first, then all are renamed in one remote command (a remote command costs a round of
    /// channel set-up, so one per file would dominate an upload). If anything fails before the
    /// renames, no target file has changed and the temporary files are removed. (Should a rename
    /// itself fail, the files before it are already replaced: the apply's backup restores them.)
    pub fn write_files_atomic(&self, files: &[(&str, &[u8])]) -> Result<(), SshError> {
        self.write_files_atomic_guarded(files, &[], None)
    }

    /// As `write_files_atomic`; with a guard `(armed, held)` the renames happen only if `armed`
    /// can be renamed to `held` first, in the same remote command, and `held` goes back to
    /// `armed` right after: the apply's armed rollback (which claims `armed` itself) can then
    /// never run while the files are being swapped, and the files are never swapped after it
    /// started. A guard that cannot be taken is [`SshError::NotArmed`]; nothing is renamed.
    pub fn write_files_atomic_guarded(
        &self,
        files: &[(&str, &[u8])],
        removes: &[&str],
        guard: Option<(&str, &str)>,
    ) -> Result<(), SshError> {
        if let Some((a, h)) = guard {
            checked_path(a)?;
            checked_path(h)?;
        }
        for r in removes {
            checked_path(r)?;
        }
        let mut temps: Vec<(PathBuf, String)> = Vec::new();
        let result = (|| {
            for (path, bytes) in files {
                let p = checked_path(path)?;
                let (dir, name) = split(&p, path)?;
                let old = match self.sftp.stat(&p) {
                    Ok(s) => Some(s),
                    Err(e) if is_no_such_file(&e) => None,
                    Err(e) => return Err(remote("stat", path, e)),
                };
                let tmp = dir.join(format!(
                    ".{name}.pbxdesk-{:016x}.tmp",
                    rand::random::<u64>()
                ));
                let tmp_s = tmp.to_string_lossy().into_owned();
                // A new file is readable by its owner and group only: generated files hold
                // trunk passwords and voicemail PINs.
                let mode = old
                    .as_ref()
                    .and_then(|s| s.perm)
                    .map_or(0o640, |m| m & 0o7777);
                let mut f = self
                    .sftp
                    .open_mode(
                        &tmp,
                        ssh2::OpenFlags::WRITE
                            | ssh2::OpenFlags::CREATE
                            | ssh2::OpenFlags::EXCLUSIVE,
                        mode as i32,
                        ssh2::OpenType::File,
                    )
                    .map_err(|e| remote("create", &tmp_s, e))?;
                temps.push((tmp.clone(), (*path).to_owned()));
                f.write_all(bytes).map_err(|e| SshError::Remote {
                    op: "write",
                    path: tmp_s.clone(),
                    reason: e.to_string(),
                })?;
                f.fsync().map_err(|e| remote("fsync", &tmp_s, e))?;
                drop(f);
                if let Some(old) = &old {
                    let stat = ssh2::FileStat {
                        size: None,
                        uid: old.uid,
                        gid: old.gid,
                        perm: Some(mode),
                        atime: None,
                        mtime: None,
                    };
                    self.sftp
                        .setstat(&tmp, stat)
                        .map_err(|e| remote("keep owner and mode of", path, e))?;
                }
            }
            if temps.is_empty() && removes.is_empty() {
                return Ok(());
            }
            let mut moves: Vec<String> = temps
                .iter()
                .map(|(tmp, dst)| {
                    format!("mv -f -- {} {}", quote(&tmp.to_string_lossy()), quote(dst))
                })
                .collect();
            if !removes.is_empty() {
                let list: Vec<String> = removes.iter().map(|r| quote(r)).collect();
                moves.push(format!("rm -f -- {}", list.join(" ")));
            }
            // The renames go into a script written over SFTP and run by one remote command: a
            // command line of hundreds of renames (a first apply of 100 tenants) would pass
            // libssh2's packet size and the kernel's limit on one argument (128 KiB).
            let folder = temps
                .first()
                .and_then(|(t, _)| t.parent().map(Path::to_path_buf))
                .or_else(|| Path::new(removes[0]).parent().map(Path::to_path_buf))
                .unwrap_or_else(|| PathBuf::from("/tmp"));
            let script = folder.join(format!(".pbxdesk-swap-{:016x}.sh", rand::random::<u64>()));
            let script_s = script.to_string_lossy().into_owned();
            {
                let mut f = self
                    .sftp
                    .open_mode(
                        &script,
                        ssh2::OpenFlags::WRITE
                            | ssh2::OpenFlags::CREATE
                            | ssh2::OpenFlags::EXCLUSIVE,
                        0o600,
                        ssh2::OpenType::File,
                    )
                    .map_err(|e| remote("create", &script_s, e))?;
                temps.push((script.clone(), String::new()));
                f.write_all(format!("{}\n", moves.join(" &&\n")).as_bytes())
                    .map_err(|e| SshError::Remote {
                        op: "write",
                        path: script_s.clone(),
                        reason: e.to_string(),
                    })?;
            }
            let run = format!("sh {0}; r=$?; rm -f -- {0}", quote(&script_s));
            let ran = match guard {
                None => self.exec(&format!("{run}; exit $r"), "rename"),
                Some((armed, held)) => {
                    let (a, h) = (quote(armed), quote(held));
                    let out = self.exec_output(
                        &format!(
                            "if mv -- {a} {h} 2>/dev/null; then {run}; mv -- {h} {a}; exit $r; else rm -f -- {}; echo not-armed; fi",
                            quote(&script_s)
                        ),
                        "rename",
                    )?;
                    if out.trim() == "not-armed" {
                        return Err(SshError::NotArmed);
                    }
                    Ok(())
                }
            };
            // On a failure the script goes with the temporary files, below.
            ran
        })();
        if result.is_err() {
            for (tmp, _) in &temps {
                let _ = self.sftp.unlink(tmp);
            }
        }
        result
    }

    /// Copies a file on the PBX (for backups), atomically at the destination.
    pub fn copy(&self, from: &str, to: &str) -> Result<bool, SshError> {
        match self.read_file(from)? {
            Some(bytes) => self.write_atomic(to, &bytes).map(|_| true),
            None => Ok(false),
        }
    }

    /// The names in a folder, sorted; an absent folder is empty.
    pub fn list_dir(&self, path: &str) -> Result<Vec<String>, SshError> {
        let p = checked_path(path)?;
        match self.sftp.readdir(&p) {
            Ok(entries) => {
                let mut names: Vec<String> = entries
                    .into_iter()
                    .filter_map(|(p, _)| p.file_name().map(|n| n.to_string_lossy().into_owned()))
                    .collect();
                names.sort();
                Ok(names)
            }
            Err(e) if is_no_such_file(&e) => Ok(Vec::new()),
            Err(e) => Err(remote("list", path, e)),
        }
    }

    /// Creates one folder; `false` when it already exists. Creating a folder is atomic on the
    /// PBX's filesystem, which makes it a lock every laptop can take.
    pub fn create_dir(&self, path: &str) -> Result<bool, SshError> {
        let p = checked_path(path)?;
        match self.sftp.mkdir(&p, 0o700) {
            Ok(()) => Ok(true),
            Err(e) => match self.sftp.stat(&p) {
                Ok(st) if st.is_dir() => Ok(false),
                _ => Err(remote("mkdir", path, e)),
            },
        }
    }

    /// Writes a new file in a folder pbxdesk owns (a backup, the lock's owner note): SFTP only,
    /// no rename. A reader may find it empty until the write lands (the lock's reader waits
    /// for a complete note). Fsynced.
    pub fn write_new(&self, path: &str, bytes: &[u8]) -> Result<(), SshError> {
        let p = checked_path(path)?;
        let mut f = self
            .sftp
            .open_mode(
                &p,
                ssh2::OpenFlags::WRITE | ssh2::OpenFlags::CREATE | ssh2::OpenFlags::TRUNCATE,
                0o600,
                ssh2::OpenType::File,
            )
            .map_err(|e| remote("create", path, e))?;
        f.write_all(bytes).map_err(|e| SshError::Remote {
            op: "write",
            path: path.into(),
            reason: e.to_string(),
        })?;
        f.fsync().map_err(|e| remote("fsync", path, e))
    }

    /// Creates a folder and its missing parents over SFTP (no shell started on the PBX).
    pub fn create_dir_all(&self, path: &str) -> Result<(), SshError> {
        self.create_dir_all_mode(path, 0o700)
    }

    /// As `create_dir_all`, the folders it creates with `mode` (0750 for folders Asterisk
    /// must read, e.g. `pjsip.d` and `pjsip.d/pbxdesk`).
    pub fn create_dir_all_mode(&self, path: &str, mode: i32) -> Result<(), SshError> {
        checked_path(path)?;
        let mut at = String::new();
        for part in path.split('/').filter(|p| !p.is_empty()) {
            at.push('/');
            at.push_str(part);
            if self.sftp.stat(Path::new(&at)).is_err() {
                match self.sftp.mkdir(Path::new(&at), mode) {
                    Ok(()) => {}
                    Err(e) => match self.sftp.stat(Path::new(&at)) {
                        Ok(st) if st.is_dir() => {}
                        _ => return Err(remote("mkdir", &at, e)),
                    },
                }
            }
        }
        Ok(())
    }

    /// Removes a file; an absent file is fine.
    pub fn remove_file(&self, path: &str) -> Result<(), SshError> {
        let p = checked_path(path)?;
        match self.sftp.unlink(&p) {
            Ok(()) => Ok(()),
            Err(e) if is_no_such_file(&e) => Ok(()),
            Err(e) => Err(remote("remove", path, e)),
        }
    }

    /// Removes an empty folder; an absent one is fine.
    pub fn remove_dir(&self, path: &str) -> Result<(), SshError> {
        let p = checked_path(path)?;
        match self.sftp.rmdir(&p) {
            Ok(()) => Ok(()),
            Err(e) if is_no_such_file(&e) => Ok(()),
            Err(e) => Err(remote("rmdir", path, e)),
        }
    }

    /// Renames a file over SFTP; `false` when `from` does not exist. The target must not
    /// exist (SFTP v3), which makes this a compare-and-swap two parties can race on safely.
    pub fn rename(&self, from: &str, to: &str) -> Result<bool, SshError> {
        let (f, t) = (checked_path(from)?, checked_path(to)?);
        match self.sftp.rename(&f, &t, None) {
            Ok(()) => Ok(true),
            Err(e) if is_no_such_file(&e) => Ok(false),
            Err(e) => Err(remote("rename", from, e)),
        }
    }

    /// Starts `sh SCRIPT ARG` on the PBX detached from this session (its own session, no
    /// terminal, no inherited descriptors), so it outlives the laptop's connection. First
    /// checks, in the same remote command, that the PBX has every one of `requires`; returns
    /// the missing ones (and starts nothing) otherwise.
    pub fn spawn_detached(
        &self,
        script: &str,
        args: &[u32],
        requires: &[&str],
    ) -> Result<Vec<String>, SshError> {
        let arg = args
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(" ");
        checked_path(script)?;
        for c in requires {
            let ok = !c.is_empty()
                && c.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'));
            if !ok {
                return Err(SshError::InvalidPath {
                    path: (*c).to_owned(),
                    rule: "a command name",
                });
            }
        }
        let out = self.exec_output(
            &format!(
                "m=; for c in {}; do command -v \"$c\" >/dev/null 2>&1 || m=\"$m $c\"; done; \
                 if [ -n \"$m\" ]; then echo \"missing:$m\"; else \
                 setsid nohup sh {} {arg} </dev/null >/dev/null 2>&1 & fi",
                requires.join(" "),
                quote(script)
            ),
            "start",
        )?;
        Ok(out
            .trim()
            .strip_prefix("missing:")
            .map(|m| m.split_whitespace().map(str::to_owned).collect())
            .unwrap_or_default())
    }

    /// Removes folders with everything in them, in one remote command (pruning old backups).
    pub fn remove_trees(&self, paths: &[&str]) -> Result<(), SshError> {
        if paths.is_empty() {
            return Ok(());
        }
        let mut args = Vec::new();
        for p in paths {
            checked_path(p)?;
            // Never a short path: this is for folders deep inside the config folder.
            if p.split('/').filter(|c| !c.is_empty()).count() < 3 {
                return Err(SshError::InvalidPath {
                    path: (*p).to_owned(),
                    rule: "a folder at least three levels deep",
                });
            }
            args.push(quote(p));
        }
        self.exec(&format!("rm -rf -- {}", args.join(" ")), "remove")
    }

    pub fn mkdir_p(&self, path: &str) -> Result<(), SshError> {
        checked_path(path)?;
        self.exec(&format!("mkdir -p -- {}", quote(path)), "mkdir")
    }

    /// The numeric id of a group on the PBX (`getent group NAME`), None when there is none.
    pub fn group_id(&self, name: &str) -> Result<Option<u32>, SshError> {
        let ok = (1..=32).contains(&name.len())
            && name.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if !ok {
            return Err(SshError::Remote {
                op: "getent",
                path: name.chars().take(40).collect(),
                reason: "not a group name".into(),
            });
        }
        // getent exits 2 for a name it does not know.
        match self.exec_output(&format!("getent group {}", quote(name)), "getent") {
            Ok(out) => Ok(out
                .lines()
                .next()
                .and_then(|l| l.split(':').nth(2))
                .and_then(|g| g.trim().parse().ok())),
            Err(SshError::Remote { reason, .. }) if reason.starts_with("exit 2") => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Sets a file's or folder's mode and, when given, its group (the owner stays).
    pub fn set_mode(&self, path: &str, mode: u32, gid: Option<u32>) -> Result<(), SshError> {
        let p = checked_path(path)?;
        let st = self.sftp.stat(&p).map_err(|e| remote("stat", path, e))?;
        // SFTP sets owner and group together (either given sends both, a missing one as 0,
        // i.e. root): the owner is sent back as it is.
        let (uid, gid) = match (gid, st.uid) {
            (None, _) => (None, None),
            (Some(g), Some(u)) => (Some(u), Some(g)),
            (Some(_), None) => {
                return Err(SshError::Remote {
                    op: "set group of",
                    path: path.into(),
                    reason: "the server does not report the owner".into(),
                })
            }
        };
        let stat = ssh2::FileStat {
            size: None,
            uid,
            gid,
            perm: Some(mode),
            atime: None,
            mtime: None,
        };
        self.sftp
            .setstat(&p, stat)
            .map_err(|e| remote("set mode and group of", path, e))
    }

    /// A file's or folder's modification time (seconds since 1970, the PBX's clock), None when
    /// it does not exist.
    pub fn mtime(&self, path: &str) -> Result<Option<u64>, SshError> {
        let p = checked_path(path)?;
        match self.sftp.stat(&p) {
            Ok(st) => Ok(st.mtime),
            Err(e) if is_no_such_file(&e) => Ok(None),
            Err(e) => Err(remote("stat", path, e)),
        }
    }

    /// A file's or folder's mode bits and group, None when it does not exist.
    pub fn stat_mode(&self, path: &str) -> Result<Option<(u32, Option<u32>)>, SshError> {
        let p = checked_path(path)?;
        match self.sftp.stat(&p) {
            Ok(st) => Ok(Some((st.perm.unwrap_or(0) & 0o7777, st.gid))),
            Err(e) if is_no_such_file(&e) => Ok(None),
            Err(e) => Err(remote("stat", path, e)),
        }
    }

    /// Free space, in KiB, on the filesystem holding `path` (`df -Pk`).
    pub fn disk_free_kib(&self, path: &str) -> Result<u64, SshError> {
        checked_path(path)?;
        let out = self.exec_output(&format!("df -Pk -- {}", quote(path)), "df")?;
        // POSIX format: a header line, then "fs blocks used available capacity mount".
        out.lines()
            .nth(1)
            .and_then(|l| l.split_whitespace().nth(3))
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| SshError::Remote {
                op: "df",
                path: path.into(),
                reason: format!(
                    "unexpected output {:?}",
                    out.chars().take(120).collect::<String>()
                ),
            })
    }

    /// Runs a fixed command built only from checked paths; fails on a non-zero exit.
    fn exec(&self, command: &str, op: &'static str) -> Result<(), SshError> {
        self.exec_output(command, op).map(|_| ())
    }

    fn exec_output(&self, command: &str, op: &'static str) -> Result<String, SshError> {
        let failed = |reason: String| SshError::Remote {
            op,
            path: command.chars().take(200).collect(),
            reason,
        };
        let mut shell = self
            .shell
            .lock()
            .map_err(|_| failed("the PBX's shell is unusable".into()))?;
        if shell.is_none() {
            *shell = Some(Shell::start(&self.session).map_err(|e| failed(e.to_string()))?);
        }
        let ran = shell.as_mut().map(|sh| sh.run(command));
        match ran {
            Some(Ok((out, 0, _))) => Ok(out),
            Some(Ok((_, code, err))) => Err(failed(format!("exit {code}: {}", err.trim()))),
            Some(Err(e)) => {
                // A shell whose answer was lost is not used again.
                *shell = None;
                Err(failed(e.to_string()))
            }
            None => Err(failed("the PBX's shell is unusable".into())),
        }
    }
}

/// Largest file `read_file` takes (the PBX's config files are kilobytes).
pub const MAX_READ_BYTES: u64 = 16 * 1024 * 1024;
/// Most output kept of a remote command, per stream.
pub const MAX_OUTPUT_BYTES: u64 = 1024 * 1024;

const PATH_RULE: &str = "an absolute path of letters, digits, '.', '_', '-' and '/', without '..'";

/// Only absolute paths of a strict alphabet reach SFTP or a remote command.
fn checked_path(path: &str) -> Result<PathBuf, SshError> {
    let ok = path.starts_with('/')
        && path.len() <= 1024
        && !path.split('/').any(|c| c == "..")
        && path
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'/'));
    if ok {
        Ok(PathBuf::from(path))
    } else {
        Err(SshError::InvalidPath {
            path: path.chars().take(80).collect(),
            rule: PATH_RULE,
        })
    }
}

fn split<'a>(p: &'a Path, raw: &str) -> Result<(&'a Path, String), SshError> {
    match (p.parent(), p.file_name()) {
        (Some(d), Some(n)) => Ok((d, n.to_string_lossy().into_owned())),
        _ => Err(SshError::InvalidPath {
            path: raw.into(),
            rule: "a file path, not a folder",
        }),
    }
}

/// Single-quotes for a POSIX shell (the paths are already restricted; this is a second wall).
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

fn is_no_such_file(e: &ssh2::Error) -> bool {
    // SSH_FX_NO_SUCH_FILE
    matches!(e.code(), ssh2::ErrorCode::SFTP(2))
}

fn remote(op: &'static str, path: &str, e: ssh2::Error) -> SshError {
    SshError::Remote {
        op,
        path: path.into(),
        reason: e.message().to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_strict_absolute_paths_pass() {
        assert!(checked_path("/etc/asterisk/extensions.d/pbxdesk/10-acme.conf").is_ok());
        for bad in [
            "etc/x",
            "/etc/../x",
            "/etc/a b",
            "/etc/a;rm",
            "/etc/$(id)",
            "/etc/a'b",
            "/etc/a\nb",
            "",
        ] {
            assert!(checked_path(bad).is_err(), "{bad:?}");
        }
        assert_eq!(quote("/a/b"), "'/a/b'");
    }
}
