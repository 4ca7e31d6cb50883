//! `cargo bench -p pbxdesk-core --bench audit`: the audit screen's pages at 1,000,000 entries.
//!
//! The log is filled straight in SQL (one statement: a recursive CTE on SQLite,
//! generate_series on PostgreSQL) with entries like the real ones: two tenants, a user's
//! before and after (~600 bytes of JSON), actions of several kinds, one operator in a hundred
//! who is rare. Then `audit_page` as the screen calls it: the first page, a page deep in the
//! log, one tenant, the rare operator, a kind of action, a day. `PBXDESK_BENCH_QUICK=1` (what CI
//! runs, in a debug build): 2,000 entries, one sample.

#![allow(clippy::unwrap_used, clippy::panic)] // tests and benches fail loudly by design

use pbxdesk_core::model::{AuditFilter, NewPbx, NewTenant};
use pbxdesk_core::service::{KeySource, Location, OpenOptions};
use pbxdesk_core::{Actor, Workspace};
use secrecy::{ExposeSecret, SecretString};
use sqlx::{Connection, Executor, PgConnection};
use std::time::{Duration, Instant};

const T0: i64 = 1_790_000_000_000;

fn sizes() -> (i64, usize) {
    if std::env::var_os("PBXDESK_BENCH_QUICK").is_some() {
        (2_000, 1)
    } else {
        (1_000_000, 30)
    }
}

/// The row of entry `i` (an SQL expression over `i`), the same on both engines.
const ROW: &str = "CASE WHEN i % 100 = 0 THEN 'rare-operator' ELSE 'admin' END, \
     CASE i % 4 WHEN 0 THEN 'user.create' WHEN 1 THEN 'user.update' WHEN 2 THEN 'did.add' \
       ELSE 'pbx.apply' END, \
     CASE i % 4 WHEN 2 THEN 'did' WHEN 3 THEN 'pbx' ELSE 'user' END, \
     'acme/' || CAST(100 + i % 900 AS TEXT), \
     1 + i % 2, \
     '{\"id\":1,\"tenant\":\"acme\",\"extension\":101,\"display_name\":\"User before\",\"email\":\"u@acme.example\",\"role\":\"member\",\"status\":\"active\",\"outbound_caller_id\":null,\"voicemail_enabled\":true,\"voicemail_pin_set\":true,\"dnd\":false,\"forward_always\":null,\"forward_busy\":null,\"forward_no_answer\":null,\"ring_seconds\":25,\"policy\":null,\"version\":1,\"devices\":[]}', \
     '{\"id\":1,\"tenant\":\"acme\",\"extension\":101,\"display_name\":\"User after\",\"email\":\"u@acme.example\",\"role\":\"member\",\"status\":\"active\",\"outbound_caller_id\":null,\"voicemail_enabled\":true,\"voicemail_pin_set\":true,\"dnd\":true,\"forward_always\":null,\"forward_busy\":null,\"forward_no_answer\":null,\"ring_seconds\":25,\"policy\":null,\"version\":2,\"devices\":[]}', \
     'app'";

async fn open(location: Location, dir: &std::path::Path) -> (Workspace, Actor) {
    let ws = Workspace::open(OpenOptions::new(
        location,
        KeySource::File(dir.join("bench.key")),
    ))
    .await
    .unwrap();
    let me = match ws.local_owner() {
        Ok(a) => a,
        Err(_) => {
            let pw = SecretString::from("bench password 123");
            ws.operator_add(
                None,
                "admin",
                pbxdesk_core::domain::Role::MspAdmin,
                &[],
                &pw,
            )
            .await
            .unwrap();
            ws.login("admin", &pw).await.unwrap()
        }
    };
    ws.pbx_add(&me, &NewPbx::at("pbx", "10.0.0.1"))
        .await
        .unwrap();
    for (slug, range) in [("acme", "100-999"), ("globex", "1000-1999")] {
        ws.tenant_create(
            &me,
            &NewTenant {
                name: slug.into(),
                slug: Some(slug.into()),
                pbx: "pbx".into(),
                ext_range: range.into(),
                country: None,
            },
        )
        .await
        .unwrap();
    }
    (ws, me)
}

fn filters(n: i64) -> Vec<(&'static str, AuditFilter)> {
    let day = 86_400_000;
    vec![
        (
            "the first page (50 entries), all tenants",
            AuditFilter::default(),
        ),
        (
            "a page in the middle of the log",
            AuditFilter {
                before: Some(n / 2),
                ..Default::default()
            },
        ),
        (
            "one tenant's first page",
            AuditFilter {
                tenant: Some("globex".into()),
                ..Default::default()
            },
        ),
        (
            "one operator in a hundred",
            AuditFilter {
                actor: Some("rare-operator".into()),
                ..Default::default()
            },
        ),
        (
            "one kind of thing (users)",
            AuditFilter {
                entity_type: Some("user".into()),
                ..Default::default()
            },
        ),
        (
            "one action (did.add)",
            AuditFilter {
                action: Some("did.add".into()),
                ..Default::default()
            },
        ),
        (
            "one day, in the middle",
            AuditFilter {
                from: Some(T0 + (n / 2) * 1000),
                to: Some(T0 + (n / 2) * 1000 + day),
                ..Default::default()
            },
        ),
    ]
}

async fn measure(ws: &Workspace, me: &Actor, engine: &str, n: i64, samples: usize) {
    for (what, f) in filters(n) {
        // Warm once, then sample.
        let first = ws.audit_page(me, &f).await.unwrap();
        assert!(!first.entries.is_empty(), "{what}: no entries");
        let mut v: Vec<Duration> = (0..samples).map(|_| Duration::ZERO).collect();
        for t in &mut v {
            let s = Instant::now();
            let p = ws.audit_page(me, &f).await.unwrap();
            *t = s.elapsed();
            assert_eq!(p.entries.len(), first.entries.len());
        }
        v.sort();
        println!(
            "| {what}, {n} entries, {engine} | {} | {:.1} | {:.1} | ≤ 50 ms |",
            v.len(),
            v[v.len() / 2].as_secs_f64() * 1e3,
            v[v.len() - 1].as_secs_f64() * 1e3
        );
    }
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (n, samples) = sizes();
    println!("| what | samples | p50 ms | max ms | target |\n|---|---|---|---|---|");
    rt.block_on(async {
        // SQLite.
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("ws.sqlite");
        let (ws, me) = open(Location::Sqlite(file.clone()), dir.path()).await;
        let t = Instant::now();
        let mut raw = sqlx::SqliteConnection::connect(&format!("sqlite://{}", file.display()))
            .await
            .unwrap();
        raw.execute(
            format!(
                "INSERT INTO audit_log (actor, action, entity_type, entity_id, tenant_id, \
                 before_json, after_json, via, at) \
                 WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {n}) \
                 SELECT {ROW}, {T0} + i * 1000 FROM s"
            )
            .as_str(),
        )
        .await
        .unwrap();
        // No ANALYZE: the product never runs it on SQLite (with its statistics, SQLite 3.46
        // picks a skip-scan of the action index for a time window: see BENCHMARKS.md).
        raw.close().await.unwrap();
        eprintln!("SQLite: {n} entries written in {:?}", t.elapsed());
        measure(&ws, &me, "SQLite", n, samples).await;
        ws.close().await;

        // PostgreSQL.
        let admin = std::env::var("PBXDESK_TEST_PG_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        let name = format!("pbxdesk_bench_{:016x}", rand::random::<u64>());
        let mut conn = PgConnection::connect(&admin).await.unwrap();
        conn.execute(format!("CREATE DATABASE {name}").as_str())
            .await
            .unwrap();
        let base = admin.rsplit_once('/').map(|(b, _)| b.to_owned()).unwrap();
        let url = SecretString::from(format!("{base}/{name}"));
        let dir = tempfile::tempdir().unwrap();
        let (ws, me) = open(Location::Postgres(url.clone()), dir.path()).await;
        let t = Instant::now();
        let mut raw = PgConnection::connect(url.expose_secret()).await.unwrap();
        raw.execute(
            format!(
                "INSERT INTO audit_log (actor, action, entity_type, entity_id, tenant_id, \
                 before_json, after_json, via, at) \
                 SELECT {ROW}, {T0} + i * 1000 FROM generate_series(1, {n}) AS s(i)"
            )
            .as_str(),
        )
        .await
        .unwrap();
        raw.execute("ANALYZE audit_log").await.unwrap();
        raw.close().await.unwrap();
        eprintln!("PostgreSQL: {n} entries written in {:?}", t.elapsed());
        measure(&ws, &me, "PostgreSQL", n, samples).await;
        ws.close().await;
        conn.execute(format!("DROP DATABASE {name} WITH (FORCE)").as_str())
            .await
            .unwrap();
    });
}
