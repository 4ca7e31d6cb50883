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
    let ast = start_asterisk(etc.clone()).await;
    let ami_port: u16 = ast.addr.rsplit_once(':').unwrap().1.parse().unwrap();
    let name = format!("pbxdesk_apply_{tag}_{}", std::process::id());
    let admin = MySqlPool::connect("mysql://root@127.0.0.1:3306/mysql")
        .await
        .expect("MariaDB is required");
    admin
        .execute(format!("DROP DATABASE IF EXISTS {name}").as_str())
        .await
        .unwrap();
    admin
        .execute(format!("CREATE DATABASE {name}").as_str())
        .await
        .unwrap();
    let url = format!("mysql://root@127.0.0.1:3306/{name}");
    let db = MySqlPool::connect(&url).await.unwrap();
    sqlx::raw_sql(ASTERISK22_SCHEMA).execute(&db).await.unwrap();
    // PJSIP reads its endpoints from this database, and `asterisk -rx` reaches the double.
    ast.use_realtime(&url).await;
    ast.install_cli(&sshd.bin());

    demo::seed(ws, me).await.unwrap();
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
        db_name: Some(name),
        ..Default::default()
    };
    ws.pbx_update(me, "demo-pbx", &profile).await.unwrap();
    let fp = ws.pbx_probe_host_key(me, "demo-pbx").await.unwrap();
    ws.pbx_trust(me, "demo-pbx", &fp).await.unwrap();
    Pbx { sshd, ast, db }
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
