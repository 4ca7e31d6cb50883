//! `cargo bench -p pbxdesk-remote --bench remote`: the figures for reaching a PBX, on loopback
//! against a real OpenSSH server (the testkit's) and this machine's MariaDB.
//!
//! - SSH connect + authenticate, next to OpenSSH's own `ssh -o BatchMode=yes host true`
//! - the first AMI answer through a tunnel (connect, tunnel, AMI login, Ping) against the
//!   capture-replaying AMI double
//! - uploading 100 files of 10 KB atomically
//! - syncing 10,000 devices to an empty realtime database, then a sync with nothing changed

#![allow(clippy::unwrap_used, clippy::panic)] // benches fail loudly by design

use pbxdesk_remote::ami;
use pbxdesk_remote::realtime::{Credential, Device, Realtime, ASTERISK22_SCHEMA};
use pbxdesk_remote::ssh::Connection;
use pbxdesk_remote::testkit::{start_ami, whoami, Behaviour, Sshd};
use pbxdesk_remote::tunnel::Tunnel;
use secrecy::SecretString;
use sqlx::Executor;
use std::process::Command;
use std::time::{Duration, Instant};

fn median(mut v: Vec<Duration>) -> f64 {
    v.sort();
    v[v.len() / 2].as_secs_f64() * 1e3
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let sshd = Sshd::start();
    let fp = sshd.fingerprint();
    let mut rows = vec![
        "| what | runs | median ms |".to_owned(),
        "|---|---|---|".to_owned(),
    ];

    // `PBXDESK_BENCH_QUICK=1` (what CI runs, in a debug build): a few runs of small sizes, so the
    // bench cannot break unnoticed. The figures are the full run's.
    let quick = std::env::var_os("PBXDESK_BENCH_QUICK").is_some();
    let runs = if quick { 2 } else { 20 };
    let rounds = if quick { 1 } else { 5 };
    let files_n = if quick { 10 } else { 100 };
    let devices_n = if quick { 100 } else { 10_000 };
    let connect: Vec<Duration> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            let c = Connection::open(&sshd.target("user_key", None), Some(&fp)).unwrap();
            let d = t.elapsed();
            drop(c);
            d
        })
        .collect();
    rows.push(format!(
        "| SSH connect + key auth (pbxdesk, libssh2) | {runs} | {:.1} |",
        median(connect)
    ));

    let known = sshd.etc().join("known_hosts");
    let key_line = std::fs::read_to_string(sshd.key_path("host_key.pub")).unwrap();
    std::fs::write(&known, format!("[127.0.0.1]:{} {key_line}", sshd.port)).unwrap();
    let openssh: Vec<Duration> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            let ok = Command::new("ssh")
                .args([
                    "-o",
                    "BatchMode=yes",
                    "-o",
                    &format!("UserKnownHostsFile={}", known.display()),
                    "-i",
                ])
                .arg(sshd.key_path("user_key"))
                .args([
                    "-p",
                    &sshd.port.to_string(),
                    &format!("{}@127.0.0.1", whoami()),
                    "true",
                ])
                .status()
                .unwrap();
            assert!(ok.success(), "ssh true");
            t.elapsed()
        })
        .collect();
    rows.push(format!(
        "| OpenSSH `ssh -o BatchMode=yes host true` (reference) | {runs} | {:.1} |",
        median(openssh)
    ));

    rt.block_on(async {
        let (ami_addr, _) = start_ami(Behaviour {
            sessions: vec!["s1"],
            ..Default::default()
        })
        .await;
        let ami_port: u16 = ami_addr.rsplit_once(':').unwrap().1.parse().unwrap();
        let mut first = Vec::new();
        for _ in 0..runs {
            let t = Instant::now();
            let tunnel = Tunnel::open(
                &sshd.target("user_key", None),
                Some(&fp),
                "127.0.0.1",
                ami_port,
            )
            .unwrap();
            let c = ami::Client::connect(
                &tunnel.local_addr(),
                "pbx",
                &SecretString::from("pbx-secret-1"),
                false,
                ami::Options::default(),
            )
            .await
            .unwrap();
            c.ping().await.unwrap();
            first.push(t.elapsed());
        }
        rows.push(format!(
            "| SSH connect + tunnel + AMI login + first answer (Ping) | {runs} | {:.1} |",
            median(first)
        ));
    });

    let conn = Connection::open(&sshd.target("user_key", None), Some(&fp)).unwrap();
    let dir = sshd.etc().join("upload");
    conn.mkdir_p(dir.to_str().unwrap()).unwrap();
    let body = vec![b';'; 10 * 1024];
    let mut uploads = Vec::new();
    for round in 0..rounds {
        let names: Vec<String> = (0..files_n)
            .map(|i| {
                dir.join(format!("f{i:03}.conf"))
                    .to_str()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        let files: Vec<(&str, &[u8])> = names
            .iter()
            .map(|n| (n.as_str(), body.as_slice()))
            .collect();
        let t = Instant::now();
        conn.write_files_atomic(&files).unwrap();
        uploads.push(t.elapsed());
        let _ = round;
    }
    rows.push(format!(
        "| upload {files_n} files of 10 KB, each atomically (`write_files_atomic`) | {rounds} | {:.1} |",
        median(uploads)
    ));

    rt.block_on(async {
        let db = format!("pbxdesk_bench_rt_{}", std::process::id());
        let admin = sqlx::mysql::MySqlPool::connect("mysql://root@127.0.0.1:3306/mysql")
            .await
            .unwrap();
        admin
            .execute(format!("DROP DATABASE IF EXISTS {db}").as_str())
            .await
            .unwrap();
        admin
            .execute(format!("CREATE DATABASE {db}").as_str())
            .await
            .unwrap();
        let url = format!("mysql://root@127.0.0.1:3306/{db}");
        let pool = sqlx::mysql::MySqlPool::connect(&url).await.unwrap();
        sqlx::raw_sql(ASTERISK22_SCHEMA)
            .execute(&pool)
            .await
            .unwrap();
        let realtime = Realtime::connect(&url, None, "bench").await.unwrap();
        let devices: Vec<Device> = (0..devices_n)
            .map(|i| Device {
                id: format!("t{}-{}", i / 1000, 1000 + i % 1000),
                username: format!("t{}-{}", i / 1000, 1000 + i % 1000),
                credential: Credential::Md5 {
                    realm: "asterisk".into(),
                    password: SecretString::from(format!("pw{i:024}")),
                },
                context: format!("t{}-internal", i / 1000),
                transport: Some("transport-udp".into()),
                allow: "opus,g722,ulaw".into(),
                callerid: format!("\"User {i}\" <{}>", 1000 + i % 1000),
                mailboxes: Some(format!("{}@t{}", 1000 + i % 1000, i / 1000)),
                nat: true,
                max_contacts: 1,
                set_var: None,
            })
            .collect();
        let t = Instant::now();
        let plan = realtime.sync(&devices, 1).await.unwrap();
        let full = t.elapsed();
        assert_eq!(plan.add.len(), devices_n);
        let mut nothing = Vec::new();
        for _ in 0..rounds {
            let t = Instant::now();
            let plan = realtime.sync(&devices, 2).await.unwrap();
            nothing.push(t.elapsed());
            assert!(plan.is_empty());
        }
        rows.push(format!(
            "| realtime sync of {devices_n} devices to an empty database | 1 | {:.1} |",
            full.as_secs_f64() * 1e3
        ));
        rows.push(format!(
            "| realtime sync of {devices_n} devices, nothing changed | {rounds} | {:.1} |",
            median(nothing)
        ));
        realtime.close().await;
        pool.close().await;
        admin
            .execute(format!("DROP DATABASE {db}").as_str())
            .await
            .unwrap();
    });
    for r in rows {
        println!("{r}");
    }
}
