//! `cargo bench -p pbxdesk-core --bench bulk`: importing a tenant's users from CSV.
//!
//! A file of 10,000 users (name, e-mail, an automatic extension, a caller ID, a device with
//! its codecs) into an empty tenant of range 10000-29999: the dry run, the import itself, and
//! the same file again (all unchanged), on SQLite and on PostgreSQL. Each sample is a fresh
//! workspace. `PBXDESK_BENCH_QUICK=1` (what CI runs, in a debug build): 200 users, one sample.
//!
//! PostgreSQL: PBXDESK_TEST_PG_URL (default postgres://postgres@127.0.0.1:5432/postgres); a
//! throwaway database per sample, dropped after it.

#![allow(clippy::unwrap_used, clippy::panic)] // tests and benches fail loudly by design

use pbxdesk_core::model::{ImportKey, ImportProgress, NewPbx, NewTenant};
use pbxdesk_core::service::{KeySource, Location, OpenOptions};
use pbxdesk_core::{Actor, Workspace};
use secrecy::SecretString;
use sqlx::{Connection, Executor, PgConnection};
use std::time::{Duration, Instant};

fn quick() -> bool {
    std::env::var_os("PBXDESK_BENCH_QUICK").is_some()
}

fn csv(users: usize) -> String {
    let mut s =
        String::from("email,name,extension,outbound_caller_id,device_1_label,device_1_codecs\n");
    for i in 0..users {
        s.push_str(&format!(
            "user{i}@bench.example,\"Müller, User {i}\",,+4144555{:04},Desk,\"g722,ulaw\"\n",
            i % 10_000
        ));
    }
    s
}

async fn open(location: Location, dir: &std::path::Path) -> (Workspace, Actor) {
    let ws = Workspace::open(OpenOptions::new(
        location,
        KeySource::File(dir.join("bench.key")),
    ))
    .await
    .unwrap();
    let actor = match ws.local_owner() {
        Ok(a) => a,
        Err(_) => {
            let pw = SecretString::from("bench password 123");
            ws.operator_add(
                None,
                "bench",
                pbxdesk_core::domain::Role::MspAdmin,
                &[],
                &pw,
            )
            .await
            .unwrap();
            ws.login("bench", &pw).await.unwrap()
        }
    };
    ws.pbx_add(&actor, &NewPbx::at("pbx", "10.0.0.1"))
        .await
        .unwrap();
    ws.tenant_create(
        &actor,
        &NewTenant {
            name: "Bench".into(),
            slug: Some("bench".into()),
            pbx: "pbx".into(),
            ext_range: "10000-29999".into(),
            country: None,
        },
    )
    .await
    .unwrap();
    (ws, actor)
}

fn quiet(_: ImportProgress) {}

fn p50(v: &mut [Duration]) -> f64 {
    v.sort();
    v[v.len() / 2].as_secs_f64() * 1e3
}

fn max(v: &[Duration]) -> f64 {
    v.iter().max().unwrap().as_secs_f64() * 1e3
}

async fn sample(ws: &Workspace, me: &Actor, file: &[u8], users: usize) -> [Duration; 3] {
    let t = Instant::now();
    let dry = ws
        .users_import(me, "bench", file, ImportKey::Email, true, &quiet)
        .await
        .unwrap();
    let dry_t = t.elapsed();
    assert_eq!(dry.created as usize, users, "{:?}", dry.errors.first());
    let t = Instant::now();
    let done = ws
        .users_import(me, "bench", file, ImportKey::Email, false, &quiet)
        .await
        .unwrap();
    let import_t = t.elapsed();
    assert!(done.written && done.created as usize == users);
    let t = Instant::now();
    let again = ws
        .users_import(me, "bench", file, ImportKey::Email, false, &quiet)
        .await
        .unwrap();
    let again_t = t.elapsed();
    assert_eq!(again.unchanged as usize, users);
    [dry_t, import_t, again_t]
}

fn pg_admin() -> String {
    std::env::var("PBXDESK_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (users, samples) = if quick() { (200, 1) } else { (10_000, 5) };
    let file = csv(users);
    println!("| what | samples | p50 ms | max ms | target |\n|---|---|---|---|---|");
    for engine in ["SQLite", "PostgreSQL"] {
        let mut times: [Vec<Duration>; 3] = Default::default();
        for _ in 0..samples {
            let dir = tempfile::tempdir().unwrap();
            let got = rt.block_on(async {
                if engine == "SQLite" {
                    let (ws, me) =
                        open(Location::Sqlite(dir.path().join("ws.sqlite")), dir.path()).await;
                    let got = sample(&ws, &me, file.as_bytes(), users).await;
                    ws.close().await;
                    got
                } else {
                    let admin = pg_admin();
                    let name = format!("pbxdesk_bench_{:016x}", rand::random::<u64>());
                    let mut conn = PgConnection::connect(&admin).await.unwrap();
                    conn.execute(format!("CREATE DATABASE {name}").as_str())
                        .await
                        .unwrap();
                    let base = admin.rsplit_once('/').map(|(b, _)| b.to_owned()).unwrap();
                    let url = SecretString::from(format!("{base}/{name}"));
                    let (ws, me) = open(Location::Postgres(url), dir.path()).await;
                    let got = sample(&ws, &me, file.as_bytes(), users).await;
                    ws.close().await;
                    conn.execute(format!("DROP DATABASE {name} WITH (FORCE)").as_str())
                        .await
                        .unwrap();
                    got
                }
            });
            for (v, t) in times.iter_mut().zip(got) {
                v.push(t);
            }
        }
        let bar = if engine == "SQLite" {
            "≤ 5000 ms"
        } else {
            "≤ 10000 ms"
        };
        let names = [
            ("dry run", "≤ 2000 ms"),
            ("import", bar),
            ("the same file again (all unchanged)", ""),
        ];
        for ((what, target), v) in names.iter().zip(times.iter_mut()) {
            println!(
                "| {what}, {users} users, {engine} | {} | {:.0} | {:.0} | {target} |",
                v.len(),
                p50(v),
                max(v)
            );
        }
    }
}
