//! A PBX for apply tests and benches: Debian's OpenSSH server on loopback (its config folder a
//! temporary folder holding the captured Asterisk 22 config files), the stateful Asterisk
//! double serving AMI from that folder, and a fresh database with Asterisk's realtime tables on
//! this machine's MariaDB. The demo workspace's PBX profile is pointed at it and trusted.
#![allow(dead_code, clippy::unwrap_used, clippy::panic)]

use pbxdesk_core::domain::SshAuth;
use pbxdesk_core::model::PbxPatch;
use pbxdesk_core::{demo, Actor, Workspace};
use pbxdesk_remote::realtime::ASTERISK22_SCHEMA;
use pbxdesk_remote::testkit::asterisk::{start_asterisk, AsteriskDouble};
use pbxdesk_remote::testkit::{whoami, Sshd};
use sqlx::{Executor, MySqlPool};
use std::collections::BTreeMap;
use std::path::Path;

/// A fresh SQLite workspace in a temporary folder (kept alive by the returned guard).
pub async fn temp_workspace() -> (tempfile::TempDir, Workspace) {
    let dir = tempfile::tempdir().unwrap();
    let ws = Workspace::open(pbxdesk_core::service::OpenOptions::new(
        pbxdesk_core::service::Location::Sqlite(dir.path().join("ws.sqlite")),
        pbxdesk_core::service::KeySource::File(dir.path().join("ws.key")),
    ))
    .await
    .unwrap();
    (dir, ws)
}

pub fn fixture(name: &str) -> String {
    std::fs::read_to_string(
        // Also compiled into the CLI's tests: the path works from either crate.
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../pbxdesk-core/tests/fixtures")
            .join(name),
    )
    .unwrap()
}

pub struct Pbx {
    pub sshd: Sshd,
    pub ast: AsteriskDouble,
    pub db: MySqlPool,
    /// The throwaway realtime database, dropped with the PBX.
    pub db_name: String,
}

impl Drop for Pbx {
    fn drop(&mut self) {
        // Tests and benches leave no database behind: dropped from a runtime of its own on
        // another thread (Drop cannot await), best effort.
        let name = std::mem::take(&mut self.db_name);
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                if let Ok(admin) = MySqlPool::connect("mysql://root@127.0.0.1:3306/mysql").await {
                    let _ = admin
                        .execute(format!("DROP DATABASE IF EXISTS {name}").as_str())
                        .await;
                    admin.close().await;
                }
            });
        })
        .join();
    }
}

/// Reads the product's files from the "PBX" folder.
pub fn product_files(etc: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for sub in [
        "extensions.d/pbxdesk",
        "pjsip.d/pbxdesk",
        "voicemail.d/pbxdesk",
    ] {
        if let Ok(rd) = std::fs::read_dir(etc.join(sub)) {
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.ends_with(".conf") {
                    out.insert(
                        format!("{sub}/{name}"),
                        std::fs::read_to_string(e.path()).unwrap(),
                    );
                }
            }
        }
    }
    out
}

pub async fn endpoints(db: &MySqlPool) -> BTreeMap<String, (String, Option<String>)> {
    sqlx::query_as::<_, (String, Option<String>, Option<String>)>(
        "SELECT id, callerid, set_var FROM ps_endpoints",
    )
    .fetch_all(db)
    .await
    .unwrap()
    .into_iter()
    .map(|(id, cid, sv)| (id, (cid.unwrap_or_default(), sv)))
    .collect()
}

pub async fn setup(ws: &Workspace, me: &Actor, tag: &str) -> Pbx {
    setup_with_sorcery(ws, me, tag, None).await
}

/// As `setup`, with this sorcery.conf on the PBX when its Asterisk starts (sorcery.conf is
/// read at start only).
pub async fn setup_with_sorcery(
    ws: &Workspace,
    me: &Actor,
    tag: &str,
    sorcery: Option<&str>,
) -> Pbx {
    demo::seed(ws, me).await.unwrap();
    start_pbx(ws, me, "demo-pbx", tag, sorcery).await
}

/// Starts the doubles of one PBX and points the workspace's profile `name` at them (trusted).
pub async fn start_pbx(
    ws: &Workspace,
    me: &Actor,
    name: &str,
    tag: &str,
    sorcery: Option<&str>,
) -> Pbx {
    let sshd = Sshd::start();
    let etc = sshd.etc();
    std::fs::create_dir_all(etc.join("extensions.d")).unwrap();
    std::fs::write(
        etc.join("extensions.conf"),
        fixture("asterisk22-extensions.conf"),
    )
    .unwrap();
    std::fs::write(
        etc.join("extensions.d/00-pbx-base.conf"),
        fixture("asterisk22-00-pbx-base.conf"),
    )
    .unwrap();
    std::fs::write(etc.join("pjsip.conf"), fixture("asterisk22-pjsip.conf")).unwrap();
    std::fs::write(
        etc.join("voicemail.conf"),
        fixture("asterisk22-voicemail.conf"),
    )
    .unwrap();
    if let Some(text) = sorcery {
        std::fs::write(etc.join("sorcery.conf"), text).unwrap();
    }
    let ast = start_asterisk(etc.clone()).await;
    let ami_port: u16 = ast.addr.rsplit_once(':').unwrap().1.parse().unwrap();
    let db_name = format!("pbxdesk_apply_{tag}_{}", std::process::id());
    let admin = MySqlPool::connect("mysql://root@127.0.0.1:3306/mysql")
        .await
        .expect("MariaDB is required");
    admin
        .execute(format!("DROP DATABASE IF EXISTS {db_name}").as_str())
        .await
        .unwrap();
    admin
        .execute(format!("CREATE DATABASE {db_name}").as_str())
        .await
        .unwrap();
    let url = format!("mysql://root@127.0.0.1:3306/{db_name}");
    let db = MySqlPool::connect(&url).await.unwrap();
    sqlx::raw_sql(ASTERISK22_SCHEMA).execute(&db).await.unwrap();
    // PJSIP reads its endpoints from this database, and `asterisk -rx` reaches the double.
    ast.use_realtime(&url).await;
    ast.install_cli(&sshd.bin());
    let profile = PbxPatch {
        host: Some("127.0.0.1".into()),
        ssh_port: Some(sshd.port),
        ssh_user: Some(whoami()),
        ssh_auth: Some(SshAuth::Key),
        ssh_key_path: Some(sshd.key_path("user_key").display().to_string()),
        config_dir: Some(etc.display().to_string()),
        ami_port: Some(ami_port),
        ami_user: Some("pbx".into()),
        ami_secret: Some("pbx-secret-1".into()),
        db_user: Some("root".into()),
        db_name: Some(db_name.clone()),
        ..Default::default()
    };
    ws.pbx_update(me, name, &profile).await.unwrap();
    let fp = ws.pbx_probe_host_key(me, name).await.unwrap();
    ws.pbx_trust(me, name, &fp).await.unwrap();
    Pbx {
        sshd,
        ast,
        db,
        db_name,
    }
}

/// Another customer's PBX `name` with its doubles: one Swiss tenant (slug `name`) of two
/// users and a provider trunk it may use (emergency numbers must be callable).
pub async fn small_pbx(ws: &Workspace, me: &Actor, name: &str) -> Pbx {
    use pbxdesk_core::model::{NewPbx, NewTenant, NewTrunk, NewUser};
    ws.pbx_add(me, &NewPbx::at(name, "127.0.0.1"))
        .await
        .unwrap();
    let pbx = start_pbx(ws, me, name, &name.replace('-', "_"), None).await;
    ws.tenant_create(
        me,
        &NewTenant {
            name: format!("Customer {name}"),
            slug: Some(name.into()),
            pbx: name.into(),
            ext_range: "100-199".into(),
            country: Some("CH".into()),
        },
    )
    .await
    .unwrap();
    for who in ["Ada", "Bob"] {
        ws.user_create(
            me,
            &NewUser {
                tenant: name.into(),
                name: format!("{who} {name}"),
                email: format!("{}@{name}.example", who.to_lowercase()),
                ..NewUser::default()
            },
        )
        .await
        .unwrap();
    }
    ws.trunk_add(
        me,
        &NewTrunk {
            pbx: name.into(),
            name: "carrier".into(),
            host: "sip.carrier.example".into(),
            tenants: vec![name.into()],
            ..NewTrunk::default()
        },
    )
    .await
    .unwrap();
    pbx
}

/// Starts an apply that hangs in its reload (after the upload and the sync) and abandons it
/// there, as a laptop that goes away mid-apply.
pub async fn apply_and_vanish_in_reload(
    ws: &Workspace,
    me: &Actor,
    pbx: &Pbx,
    opts: &pbxdesk_core::service::ApplyOptions,
) {
    use std::sync::atomic::Ordering;
    pbx.ast.hold_reloads.store(true, Ordering::SeqCst);
    let before = reloads(&pbx.ast);
    tokio::select! {
        r = ws.pbx_apply(me, "demo-pbx", opts) => panic!("the apply ended: {r:?}"),
        () = async {
            while reloads(&pbx.ast) == before {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        } => {}
    }
    pbx.ast.hold_reloads.store(false, Ordering::SeqCst);
}

/// Each backup folder on the "PBX" (oldest first) with the names of its top-level entries.
pub fn backups(etc: &Path) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = std::fs::read_dir(etc.join("pbxdesk-backups"))
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.path().is_dir())
                .map(|e| {
                    let mut names: Vec<String> = std::fs::read_dir(e.path())
                        .unwrap()
                        .flatten()
                        .map(|f| f.file_name().to_string_lossy().into_owned())
                        .collect();
                    names.sort();
                    (e.file_name().to_string_lossy().into_owned(), names)
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// Waits (at most `secs`) until the newest backup folder holds `marker`.
pub async fn wait_for_marker(etc: &Path, marker: &str, secs: u64) -> bool {
    for _ in 0..secs * 10 {
        if backups(etc)
            .last()
            .is_some_and(|(_, names)| names.iter().any(|n| n == marker))
        {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    false
}

/// A TCP proxy in front of the PBX's SSH port that, once `trigger` holds, lets `budget` more
/// bytes from the laptop through and then cuts every connection and refuses new ones: the
/// laptop loses the PBX mid-way (until `heal`).
pub struct CutProxy {
    pub port: u16,
    cut: std::sync::Arc<std::sync::atomic::AtomicBool>,
    armed: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl CutProxy {
    pub fn start(
        to_port: u16,
        budget: usize,
        trigger: impl Fn() -> bool + Send + Sync + 'static,
    ) -> CutProxy {
        use std::io::{Read, Write};
        use std::net::{Shutdown, TcpListener, TcpStream};
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
        use std::sync::{Arc, Mutex};
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let cut = Arc::new(AtomicBool::new(false));
        let armed = Arc::new(AtomicBool::new(true));
        let sent = Arc::new(AtomicUsize::new(0));
        let open: Arc<Mutex<Vec<TcpStream>>> = Arc::new(Mutex::new(Vec::new()));
        let trigger = Arc::new(trigger);
        let (cut2, armed2) = (cut.clone(), armed.clone());
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                if cut2.load(Ordering::SeqCst) {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect(("127.0.0.1", to_port)) else {
                    continue;
                };
                open.lock().unwrap().push(client.try_clone().unwrap());
                open.lock().unwrap().push(server.try_clone().unwrap());
                let pipe = |mut from: TcpStream, mut to: TcpStream, upstream: bool| {
                    let (cut, armed, sent, open, trigger) = (
                        cut2.clone(),
                        armed2.clone(),
                        sent.clone(),
                        open.clone(),
                        trigger.clone(),
                    );
                    std::thread::spawn(move || {
                        let mut buf = [0u8; 4096];
                        loop {
                            let n = match from.read(&mut buf) {
                                Ok(0) | Err(_) => break,
                                Ok(n) => n,
                            };
                            if upstream && armed.load(Ordering::SeqCst) && trigger() {
                                let total = sent.fetch_add(n, Ordering::SeqCst) + n;
                                if total > budget {
                                    cut.store(true, Ordering::SeqCst);
                                    armed.store(false, Ordering::SeqCst);
                                    for s in open.lock().unwrap().drain(..) {
                                        let _ = s.shutdown(Shutdown::Both);
                                    }
                                    break;
                                }
                            }
                            if cut.load(Ordering::SeqCst) || to.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                        let _ = to.shutdown(Shutdown::Both);
                        let _ = from.shutdown(Shutdown::Both);
                    });
                };
                pipe(
                    client.try_clone().unwrap(),
                    server.try_clone().unwrap(),
                    true,
                );
                pipe(server, client, false);
            }
        });
        CutProxy { port, cut, armed }
    }

    pub fn was_cut(&self) -> bool {
        self.cut.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Lets connections through again (and never cuts again).
    pub fn heal(&self) {
        use std::sync::atomic::Ordering;
        self.armed.store(false, Ordering::SeqCst);
        self.cut.store(false, Ordering::SeqCst);
    }
}

/// A TCP proxy in front of the PBX's SSH port that, once `trigger` holds, delays every chunk
/// from the laptop by `delay`: a slow link, so that an upload outlasts the confirm window.
pub struct SlowProxy {
    pub port: u16,
}

impl SlowProxy {
    pub fn start(
        to_port: u16,
        delay: std::time::Duration,
        trigger: impl Fn() -> bool + Send + Sync + 'static,
    ) -> SlowProxy {
        use std::io::{Read, Write};
        use std::net::{Shutdown, TcpListener, TcpStream};
        use std::sync::Arc;
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let trigger = Arc::new(trigger);
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(server) = TcpStream::connect(("127.0.0.1", to_port)) else {
                    continue;
                };
                let pipe = |mut from: TcpStream, mut to: TcpStream, upstream: bool| {
                    let trigger = trigger.clone();
                    std::thread::spawn(move || {
                        let mut buf = [0u8; 4096];
                        loop {
                            let n = match from.read(&mut buf) {
                                Ok(0) | Err(_) => break,
                                Ok(n) => n,
                            };
                            if upstream && trigger() {
                                std::thread::sleep(delay);
                            }
                            if to.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                        let _ = to.shutdown(Shutdown::Both);
                        let _ = from.shutdown(Shutdown::Both);
                    });
                };
                pipe(
                    client.try_clone().unwrap(),
                    server.try_clone().unwrap(),
                    true,
                );
                pipe(server, client, false);
            }
        });
        SlowProxy { port }
    }
}

/// A tiny filesystem mounted over a folder of the "PBX" (its files copied in), filled up so
/// the next write fails with ENOSPC; unmounted (files copied back) on drop.
pub struct FullDisk {
    dir: std::path::PathBuf,
    saved: BTreeMap<String, Vec<u8>>,
}

impl FullDisk {
    pub fn over(dir: &Path) -> FullDisk {
        let mut saved = BTreeMap::new();
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            saved.insert(
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            );
        }
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=256k", "tmpfs"])
            .arg(dir)
            .status()
            .expect("mount");
        assert!(
            ok.success(),
            "mounting a tmpfs needs root (CI runs as root); cannot simulate a full disk"
        );
        for (n, b) in &saved {
            std::fs::write(dir.join(n), b).unwrap();
        }
        // Fill what is left.
        use std::io::Write;
        let mut f = std::fs::File::create(dir.join(".filler")).unwrap();
        let block = vec![0u8; 4096];
        while f.write_all(&block).and_then(|()| f.flush()).is_ok() {}
        let _ = f.sync_all();
        FullDisk {
            dir: dir.to_owned(),
            saved,
        }
    }

    /// Frees the space (the folder stays mounted).
    pub fn free(&self) {
        let _ = std::fs::remove_file(self.dir.join(".filler"));
    }
}

impl Drop for FullDisk {
    fn drop(&mut self) {
        let now: BTreeMap<String, Vec<u8>> = std::fs::read_dir(&self.dir)
            .map(|rd| {
                rd.flatten()
                    .filter(|e| e.file_name() != ".filler")
                    .map(|e| {
                        (
                            e.file_name().to_string_lossy().into_owned(),
                            std::fs::read(e.path()).unwrap_or_default(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_else(|_| self.saved.clone());
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.dir)
            .status();
        for (n, b) in now {
            let _ = std::fs::write(self.dir.join(n), b);
        }
    }
}

/// How many `Reload` actions the double was sent.
pub fn reloads(ast: &AsteriskDouble) -> usize {
    ast.seen
        .lock()
        .unwrap()
        .iter()
        .filter(|a| a.starts_with("Reload:"))
        .count()
}

/// The change most apply tests make: Ada's (acme-dental/100) name, which changes her mailbox
/// line and her device's realtime row, and, when given, her ring time (the dialplan).
pub async fn rename_ada(ws: &Workspace, me: &Actor, name: &str, ring_seconds: Option<u32>) {
    let ada = ws.user_resolve(me, "acme-dental/100").await.unwrap();
    ws.user_update(
        me,
        ada,
        &pbxdesk_core::model::UserPatch {
            name: Some(name.into()),
            ring_seconds,
            ..Default::default()
        },
    )
    .await
    .unwrap();
}
