//! Local port forwarding over SSH: AMI and the realtime MariaDB listen on the PBX's own
//! 127.0.0.1 and are reached through the SSH connection, so neither is exposed on the network.
//!
//! A tunnel has its own SSH session (libssh2's non-blocking mode is per session, and the
//! pump needs it while SFTP work elsewhere stays blocking), and that one session carries every
//! forward it was opened with (AMI and MariaDB: one SSH handshake, not one each). One thread
//! accepts local connections on 127.0.0.1:<ephemeral>, one port per forward, and moves bytes
//! both ways for all of them.

use crate::ssh::{self, SshError, Target};
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub struct Tunnel {
    local_ports: Vec<u16>,
    stop: Arc<AtomicBool>,
}

/// One forward: connections to its local port reach `host:port` as seen from the PBX.
struct Forward {
    listener: TcpListener,
    host: String,
    port: u16,
}

impl Tunnel {
    /// Forwards 127.0.0.1:<local_port> to `remote_host:remote_port` as seen from the PBX.
    pub fn open(
        target: &Target,
        pinned: Option<&str>,
        remote_host: &str,
        remote_port: u16,
    ) -> Result<Tunnel, SshError> {
        Self::open_all(target, pinned, &[(remote_host, remote_port)])
    }

    /// One SSH session forwarding a local port to each of `remotes` (in that order: see
    /// [`Tunnel::local_addr_of`]).
    pub fn open_all(
        target: &Target,
        pinned: Option<&str>,
        remotes: &[(&str, u16)],
    ) -> Result<Tunnel, SshError> {
        let mut forwards = Vec::new();
        for (host, port) in remotes {
            let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| SshError::Connect {
                addr: "127.0.0.1:0".into(),
                reason: e.to_string(),
            })?;
            listener.set_nonblocking(true).ok();
            forwards.push(Forward {
                listener,
                host: (*host).to_owned(),
                port: *port,
            });
        }
        let local_ports = forwards
            .iter()
            .map(|f| f.listener.local_addr().map(|a| a.port()).unwrap_or(0))
            .collect();
        let (session, socket) = ssh::open_session_watched(target, pinned)?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let keepalive = target.keepalive;
        std::thread::spawn(move || pump(session, &socket, &forwards, &flag, keepalive));
        Ok(Tunnel { local_ports, stop })
    }

    /// The local address of the first forward, e.g. "127.0.0.1:41234".
    pub fn local_addr(&self) -> String {
        self.local_addr_of(0)
    }

    /// The local address of forward `i` (as given to [`Tunnel::open_all`]).
    pub fn local_addr_of(&self, i: usize) -> String {
        format!(
            "127.0.0.1:{}",
            self.local_ports.get(i).copied().unwrap_or(0)
        )
    }

    pub fn local_port(&self) -> u16 {
        self.local_ports.first().copied().unwrap_or(0)
    }
}

impl Drop for Tunnel {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

struct Link {
    local: TcpStream,
    channel: ssh2::Channel,
    to_remote: Vec<u8>,
    to_local: Vec<u8>,
    local_eof: bool,
    eof_sent: bool,
}

/// LIBSSH2_ERROR_EAGAIN: the non-blocking session would block; try again.
const EAGAIN: i32 = -37;

fn would_block(e: &std::io::Error) -> bool {
    e.kind() == ErrorKind::WouldBlock
}

/// Sleeps until something may have moved: a local connection or data on a local socket, data
/// from the PBX on the SSH socket (or room to write, when libssh2 is blocked writing), or the
/// timeout. Waiting on the sockets rather than polling on a timer keeps a round trip through
/// the tunnel near a direct one (a 1 ms sleep per idle pass cost ~2 ms per MySQL round trip).
fn wait(
    session: &ssh2::Session,
    socket: &TcpStream,
    forwards: &[Forward],
    links: &[Link],
    timeout: Duration,
) {
    use rustix::event::{poll, PollFd, PollFlags, Timespec};
    let mut ssh_flags = PollFlags::IN;
    if session
        .block_directions()
        .eq(&ssh2::BlockDirections::Outbound)
        || session.block_directions() == ssh2::BlockDirections::Both
        || links.iter().any(|l| !l.to_remote.is_empty())
    {
        ssh_flags |= PollFlags::OUT;
    }
    let mut fds = vec![PollFd::new(socket, ssh_flags)];
    for f in forwards {
        fds.push(PollFd::new(&f.listener, PollFlags::IN));
    }
    for l in links {
        let mut f = PollFlags::empty();
        if !l.local_eof && l.to_remote.len() < 1 << 20 {
            f |= PollFlags::IN;
        }
        if !l.to_local.is_empty() {
            f |= PollFlags::OUT;
        }
        fds.push(PollFd::new(&l.local, f));
    }
    let t = Timespec {
        tv_sec: 0,
        tv_nsec: i64::try_from(timeout.as_nanos().min(999_999_999)).unwrap_or(0),
    };
    let _ = poll(&mut fds, Some(&t));
}

fn pump(
    session: ssh2::Session,
    socket: &TcpStream,
    forwards: &[Forward],
    stop: &AtomicBool,
    keepalive: Duration,
) {
    session.set_blocking(false);
    let mut links: Vec<Link> = Vec::new();
    let mut buf = vec![0u8; 32 * 1024];
    let mut last_keepalive = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        let mut progress = false;
        for f in forwards {
            let Ok((local, _)) = f.listener.accept() else {
                continue;
            };
            progress = true;
            let opened = loop {
                match session.channel_direct_tcpip(&f.host, f.port, None) {
                    Ok(ch) => break Some(ch),
                    Err(e) if matches!(e.code(), ssh2::ErrorCode::Session(EAGAIN)) => {
                        std::thread::sleep(Duration::from_millis(1))
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "tunnel: the PBX refused the forwarded connection");
                        break None;
                    }
                }
            };
            if let Some(channel) = opened {
                local.set_nonblocking(true).ok();
                local.set_nodelay(true).ok();
                links.push(Link {
                    local,
                    channel,
                    to_remote: Vec::new(),
                    to_local: Vec::new(),
                    local_eof: false,
                    eof_sent: false,
                });
            }
        }
        links.retain_mut(|l| {
            // Local -> PBX.
            if !l.local_eof && l.to_remote.len() < 1 << 20 {
                match l.local.read(&mut buf) {
                    Ok(0) => l.local_eof = true,
                    Ok(n) => {
                        l.to_remote.extend_from_slice(&buf[..n]);
                        progress = true;
                    }
                    Err(e) if would_block(&e) => {}
                    Err(_) => return false,
                }
            }
            if !l.to_remote.is_empty() {
                match l.channel.write(&l.to_remote) {
                    Ok(n) => {
                        l.to_remote.drain(..n);
                        progress |= n > 0;
                    }
                    Err(e) if would_block(&e) => {}
                    Err(_) => return false,
                }
            }
            if l.local_eof && l.to_remote.is_empty() && !l.eof_sent {
                l.eof_sent = l.channel.send_eof().is_ok();
            }
            // PBX -> local.
            if l.to_local.len() < 1 << 20 {
                match l.channel.read(&mut buf) {
                    Ok(0) => {}
                    Ok(n) => {
                        l.to_local.extend_from_slice(&buf[..n]);
                        progress = true;
                    }
                    Err(e) if would_block(&e) => {}
                    Err(_) => return false,
                }
            }
            if !l.to_local.is_empty() {
                match l.local.write(&l.to_local) {
                    Ok(n) => {
                        l.to_local.drain(..n);
                        progress |= n > 0;
                    }
                    Err(e) if would_block(&e) => {}
                    Err(_) => return false,
                }
            }
            if l.channel.eof() && l.to_local.is_empty() {
                let _ = l.local.shutdown(Shutdown::Write);
                if l.local_eof {
                    return false;
                }
            }
            true
        });
        if last_keepalive.elapsed() >= keepalive {
            let _ = session.keepalive_send();
            last_keepalive = Instant::now();
        }
        // sshd forwards with Nagle on (its socket is not "interactive" without a terminal): a
        // reply split over two packets waits for our ACK of the first, which Linux delays up
        // to 40 ms. Acknowledging at once keeps a MySQL round trip near a direct one (it was
        // ~25 ms through the tunnel). TCP_QUICKACK does not stick: it is set on every pass.
        #[cfg(target_os = "linux")]
        let _ = rustix::net::sockopt::set_tcp_quickack(socket, true);
        if !progress {
            wait(
                &session,
                socket,
                forwards,
                &links,
                Duration::from_millis(100),
            );
        }
    }
}
