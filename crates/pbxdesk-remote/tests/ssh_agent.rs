//! Login through ssh-agent, against the real OpenSSH server. Its own test binary, because
//! the agent is found through the process-wide SSH_AUTH_SOCK.

#![allow(clippy::unwrap_used, clippy::panic)] // tests fail loudly by design

use pbxdesk_remote::ssh::{Auth, Connection};
use pbxdesk_remote::testkit::Sshd;
use std::process::Command;

#[test]
fn login_through_ssh_agent() {
    let sshd = Sshd::start();
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("agent.sock");
    let agent = Command::new("ssh-agent")
        .arg("-D")
        .arg("-a")
        .arg(&sock)
        .spawn()
        .expect("ssh-agent");
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _agent = Kill(agent);
    for _ in 0..100 {
        if sock.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let added = Command::new("ssh-add")
        .arg(sshd.key_path("user_key"))
        .env("SSH_AUTH_SOCK", &sock)
        .output()
        .unwrap();
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );
    // libssh2 finds the agent through the environment; this binary runs this one test.
    std::env::set_var("SSH_AUTH_SOCK", &sock);
    let mut target = sshd.target("user_key", None);
    target.auth = Auth::Agent;
    let c = Connection::open(&target, Some(&sshd.fingerprint())).unwrap();
    assert!(c.list_dir(sshd.etc().to_str().unwrap()).unwrap().is_empty());
}
