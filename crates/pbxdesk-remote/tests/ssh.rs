//! SSH and SFTP against a real OpenSSH server (Debian's openssh-server) started on a loopback
//! port with a throwaway host key and user key, serving a temporary folder that plays the
//! PBX's /etc/asterisk. A missing sshd fails the test: `scripts/setup.sh` installs it.

#![allow(clippy::unwrap_used, clippy::panic)] // tests fail loudly by design

use pbxdesk_remote::ssh::{probe_host_key, Connection, SshError};
use pbxdesk_remote::testkit::Sshd;
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

#[test]
fn host_key_is_pinned_on_consent_and_a_changed_key_is_refused() {
    let sshd = Sshd::start();
    let key = probe_host_key("127.0.0.1", sshd.port, Duration::from_secs(5)).unwrap();
    assert_eq!(
        key.fingerprint,
        sshd.fingerprint(),
        "same form as ssh-keygen -lf"
    );
    match Connection::open(&sshd.target("user_key", None), None) {
        Err(SshError::HostKeyNotPinned { fingerprint, .. }) => {
            assert_eq!(fingerprint, key.fingerprint)
        }
        other => panic!("expected HostKeyNotPinned, got {:?}", other.err()),
    }
    let wrong = "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    match Connection::open(&sshd.target("user_key", None), Some(wrong)) {
        Err(e @ SshError::HostKeyChanged { .. }) => {
            let msg = e.to_string();
            assert!(
                msg.contains(wrong) && msg.contains(&key.fingerprint),
                "{msg}"
            );
        }
        other => panic!("expected HostKeyChanged, got {:?}", other.err()),
    }
    assert!(Connection::open(&sshd.target("user_key", None), Some(&key.fingerprint)).is_ok());
    // A key with a passphrase, and a wrong passphrase.
    assert!(Connection::open(
        &sshd.target("user_key_pw", Some("key passphrase 1")),
        Some(&key.fingerprint)
    )
    .is_ok());
    assert!(matches!(
        Connection::open(
            &sshd.target("user_key_pw", Some("wrong")),
            Some(&key.fingerprint)
        ),
        Err(SshError::Auth { .. })
    ));
}

#[test]
fn sftp_reads_writes_atomically_and_keeps_mode() {
    let sshd = Sshd::start();
    let fp = sshd.fingerprint();
    let c = Connection::open(&sshd.target("user_key", None), Some(&fp)).unwrap();
    let etc = sshd.etc();
    let file = etc.join("extensions.conf");
    let path = file.to_str().unwrap();
    assert_eq!(c.read_file(path).unwrap(), None, "absent is not an error");
    c.write_atomic(path, b"[general]\n").unwrap();
    assert_eq!(std::fs::read(&file).unwrap(), b"[general]\n");
    // A new file: owner and group only (generated files hold secrets).
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o640
    );
    // Replacing an existing file (a plain SFTP v3 rename would fail here) keeps its mode.
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o640)).unwrap();
    c.write_atomic(path, b"[general]\nstatic=yes\n").unwrap();
    assert_eq!(
        c.read_file(path).unwrap().unwrap(),
        b"[general]\nstatic=yes\n"
    );
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o640
    );
    // A backup copy, and no temporary file left behind.
    let backup = etc.join("extensions.conf.bak");
    assert!(c.copy(path, backup.to_str().unwrap()).unwrap());
    assert!(!c
        .copy(etc.join("nope").to_str().unwrap(), backup.to_str().unwrap())
        .unwrap());
    assert_eq!(
        c.list_dir(etc.to_str().unwrap()).unwrap(),
        vec!["extensions.conf", "extensions.conf.bak"]
    );
    assert!(c
        .list_dir(etc.join("missing").to_str().unwrap())
        .unwrap()
        .is_empty());
    let sub = etc.join("extensions.d/pbxdesk");
    c.mkdir_p(sub.to_str().unwrap()).unwrap();
    c.write_atomic(
        sub.join("10-acme.conf").to_str().unwrap(),
        &vec![b'x'; 1 << 20],
    )
    .unwrap();
    assert_eq!(
        std::fs::metadata(sub.join("10-acme.conf")).unwrap().len(),
        1 << 20
    );
}

#[test]
fn several_files_are_replaced_together_or_not_at_all() {
    let sshd = Sshd::start();
    let c = Connection::open(&sshd.target("user_key", None), Some(&sshd.fingerprint())).unwrap();
    let etc = sshd.etc();
    let names: Vec<String> = (0..3)
        .map(|i| etc.join(format!("f{i}.conf")).to_str().unwrap().to_owned())
        .collect();
    std::fs::write(&names[0], "old").unwrap();
    let files: Vec<(&str, &[u8])> = names
        .iter()
        .map(|n| (n.as_str(), b"new".as_slice()))
        .collect();
    c.write_files_atomic(&files).unwrap();
    for n in &names {
        assert_eq!(std::fs::read_to_string(n).unwrap(), "new");
    }
    // A bad path in the batch: nothing is replaced and no temporary file stays behind.
    let bad = format!("{}/x;y", etc.display());
    let files: Vec<(&str, &[u8])> = vec![(names[0].as_str(), b"newer"), (bad.as_str(), b"x")];
    assert!(matches!(
        c.write_files_atomic(&files),
        Err(SshError::InvalidPath { .. })
    ));
    assert_eq!(std::fs::read_to_string(&names[0]).unwrap(), "new");
    assert_eq!(
        c.list_dir(etc.to_str().unwrap()).unwrap(),
        vec!["f0.conf", "f1.conf", "f2.conf"]
    );
}

#[test]
fn unsafe_paths_never_reach_the_server() {
    let sshd = Sshd::start();
    let c = Connection::open(&sshd.target("user_key", None), Some(&sshd.fingerprint())).unwrap();
    let etc = sshd.etc();
    for bad in [
        format!("{}/a'; touch /tmp/pwned; '", etc.display()),
        format!("{}/$(id)", etc.display()),
        format!("{}/../escape", etc.display()),
        "relative/path".to_owned(),
    ] {
        assert!(
            matches!(
                c.write_atomic(&bad, b"x"),
                Err(SshError::InvalidPath { .. })
            ),
            "{bad}"
        );
    }
    assert!(c.list_dir(etc.to_str().unwrap()).unwrap().is_empty());
}

#[test]
fn a_tunnel_carries_tcp_to_the_pbx_loopback() {
    use pbxdesk_remote::tunnel::Tunnel;
    use std::io::{Read, Write};
    let sshd = Sshd::start();
    // A TCP echo server on this machine's loopback, standing for AMI on the PBX's 127.0.0.1.
    let echo = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let echo_port = echo.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in echo.incoming() {
            let mut s = stream.unwrap();
            std::thread::spawn(move || {
                let mut buf = [0u8; 8192];
                loop {
                    match s.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => s.write_all(&buf[..n]).unwrap(),
                    }
                }
            });
        }
    });
    let tunnel = Tunnel::open(
        &sshd.target("user_key", None),
        Some(&sshd.fingerprint()),
        "127.0.0.1",
        echo_port,
    )
    .unwrap();
    // Two connections at once, one of them carrying 1 MiB each way.
    let mut a = TcpStream::connect(tunnel.local_addr()).unwrap();
    let mut b = TcpStream::connect(tunnel.local_addr()).unwrap();
    b.write_all(b"ping").unwrap();
    let payload: Vec<u8> = (0..1 << 20).map(|i| (i % 251) as u8).collect();
    let writer = {
        let mut a2 = a.try_clone().unwrap();
        let p = payload.clone();
        std::thread::spawn(move || a2.write_all(&p).unwrap())
    };
    let mut back = vec![0u8; payload.len()];
    a.read_exact(&mut back).unwrap();
    writer.join().unwrap();
    assert!(back == payload, "1 MiB came back intact");
    let mut four = [0u8; 4];
    b.read_exact(&mut four).unwrap();
    assert_eq!(&four, b"ping");
    // Refused before anything is forwarded when the host key is not pinned.
    assert!(matches!(
        Tunnel::open(&sshd.target("user_key", None), None, "127.0.0.1", echo_port),
        Err(SshError::HostKeyNotPinned { .. })
    ));
}

#[tokio::test]
async fn the_realtime_database_is_reached_through_the_tunnel() {
    use pbxdesk_remote::tunnel::Tunnel;
    let sshd = Sshd::start();
    let tunnel = Tunnel::open(
        &sshd.target("user_key", None),
        Some(&sshd.fingerprint()),
        "127.0.0.1",
        3306,
    )
    .unwrap();
    let pool =
        sqlx::mysql::MySqlPool::connect(&format!("mysql://root@{}/mysql", tunnel.local_addr()))
            .await
            .expect("MariaDB through the tunnel");
    let one: i64 = sqlx::query_scalar("SELECT 1")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(one, 1);
    pool.close().await;
}

/// One SSH session carries both of the apply's forwards (AMI and MariaDB): both work at once.
#[tokio::test]
async fn one_tunnel_carries_several_forwards() {
    use pbxdesk_remote::tunnel::Tunnel;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let sshd = Sshd::start();
    let echo = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let echo_port = echo.local_addr().unwrap().port();
    tokio::spawn(async move {
        let (mut s, _) = echo.accept().await.unwrap();
        let mut buf = [0u8; 64];
        let n = s.read(&mut buf).await.unwrap();
        s.write_all(&buf[..n]).await.unwrap();
    });
    let tunnel = Tunnel::open_all(
        &sshd.target("user_key", None),
        Some(&sshd.fingerprint()),
        &[("127.0.0.1", 3306), ("127.0.0.1", echo_port)],
    )
    .unwrap();
    assert_ne!(tunnel.local_addr_of(0), tunnel.local_addr_of(1));
    let pool =
        sqlx::mysql::MySqlPool::connect(&format!("mysql://root@{}/mysql", tunnel.local_addr_of(0)))
            .await
            .expect("MariaDB through the first forward");
    let mut e = tokio::net::TcpStream::connect(tunnel.local_addr_of(1))
        .await
        .unwrap();
    e.write_all(b"AMI?").await.unwrap();
    let (one, back) = tokio::join!(
        sqlx::query_scalar::<_, i64>("SELECT 1").fetch_one(&pool),
        async {
            let mut four = [0u8; 4];
            e.read_exact(&mut four).await.map(|_| four)
        }
    );
    assert_eq!(one.unwrap(), 1);
    assert_eq!(&back.unwrap(), b"AMI?");
    pool.close().await;
}

/// The connection's one remote shell runs command after command: failures (with their error
/// output) leave it usable, and an `exit` in a command ends only that command.
#[test]
fn remote_commands_share_one_shell_and_survive_failures() {
    let sshd = Sshd::start();
    let c = Connection::open(&sshd.target("user_key", None), Some(&sshd.fingerprint())).unwrap();
    assert_eq!(c.group_id("root").unwrap(), Some(0));
    assert_eq!(c.group_id("no-such-group-here").unwrap(), None);
    let file = sshd.etc().join("a-file");
    std::fs::write(&file, "x").unwrap();
    // mkdir -p over a file fails; its error output is in the error.
    let e = c.mkdir_p(&format!("{}/below", file.display())).unwrap_err();
    assert!(
        e.to_string().contains("exit 1") && e.to_string().contains("a-file"),
        "{e}"
    );
    // The guarded swap ends its command with `exit`: the shell goes on.
    let target = sshd.etc().join("swapped.conf");
    let t = target.to_str().unwrap();
    for round in 0..3 {
        let body = format!("round {round}");
        c.write_files_atomic(&[(t, body.as_bytes())]).unwrap();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), body);
    }
    assert!(c.disk_free_kib(sshd.etc().to_str().unwrap()).unwrap() > 0);
    assert_eq!(c.group_id("root").unwrap(), Some(0));
}

/// A file larger than MAX_READ_BYTES is refused, not read into memory whole.
#[test]
fn an_oversized_file_is_refused() {
    use pbxdesk_remote::ssh::MAX_READ_BYTES;
    let sshd = Sshd::start();
    let c = Connection::open(&sshd.target("user_key", None), Some(&sshd.fingerprint())).unwrap();
    let path = sshd.etc().join("huge.conf");
    std::fs::write(&path, vec![b';'; MAX_READ_BYTES as usize + 1]).unwrap();
    let e = c.read_file(&path.display().to_string()).unwrap_err();
    assert!(e.to_string().contains("larger than"), "{e}");
    std::fs::write(&path, vec![b';'; 1000]).unwrap();
    assert_eq!(
        c.read_file(&path.display().to_string())
            .unwrap()
            .unwrap()
            .len(),
        1000
    );
}
