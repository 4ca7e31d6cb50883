//! `cargo bench -p pbxdesk-cli --bench create_loop`: a scripted loop of single `pbxdesk user
//! create` calls, as a technician's shell script runs them: each a process that opens the
//! workspace, allocates the lowest free extension, writes the user, its device and the audit
//! entry, and closes. Timed per call in a tenant of 1,000 and of 10,000 users (the cost must
//! not grow with the tenant). `PBXDESK_BENCH_QUICK=1` (what CI runs, in a debug build): a
//! tenant of 20 and of 40, 3 calls each.

#![allow(clippy::unwrap_used, clippy::panic)] // tests and benches fail loudly by design

use pbxdesk_core::model::{NewPbx, NewTenant, NewUser};
use pbxdesk_core::service::{KeySource, Location, OpenOptions};
use pbxdesk_core::Workspace;
use std::time::{Duration, Instant};

struct Size {
    tenants: [usize; 2],
    calls: usize,
}

fn size() -> Size {
    if std::env::var_os("PBXDESK_BENCH_QUICK").is_some() {
        Size {
            tenants: [20, 40],
            calls: 3,
        }
    } else {
        Size {
            tenants: [1_000, 10_000],
            calls: 100,
        }
    }
}

fn pct(v: &[Duration], p: f64) -> f64 {
    let i = ((v.len() as f64 * p).ceil() as usize).clamp(1, v.len()) - 1;
    v[i].as_secs_f64() * 1000.0
}

fn main() {
    let z = size();
    let dir = tempfile::tempdir().unwrap();
    let opts = || {
        OpenOptions::new(
            Location::Sqlite(dir.path().join("ws.sqlite")),
            KeySource::File(dir.path().join("ws.key")),
        )
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut lines = vec![
        "| what | calls | p50 ms | p95 ms | max ms |".to_owned(),
        "|---|---|---|---|---|".to_owned(),
    ];
    let mut made = 0;
    for size in z.tenants {
        // Filled in-process (the services, as the CLI calls them), then closed.
        rt.block_on(async {
            let ws = Workspace::open(opts()).await.unwrap();
            let me = ws.local_owner().unwrap();
            if made == 0 {
                ws.pbx_add(&me, &NewPbx::at("pbx", "10.0.0.1"))
                    .await
                    .unwrap();
                ws.tenant_create(
                    &me,
                    &NewTenant {
                        name: "Loop".into(),
                        slug: Some("loop".into()),
                        pbx: "pbx".into(),
                        ext_range: "10000-29999".into(),
                        country: None,
                    },
                )
                .await
                .unwrap();
            }
            while made < size {
                ws.user_create(
                    &me,
                    &NewUser {
                        tenant: "loop".into(),
                        name: format!("User {made}"),
                        email: format!("u{made}@loop.example"),
                        ..Default::default()
                    },
                )
                .await
                .unwrap();
                made += 1;
            }
            ws.close().await;
        });
        let mut times = Vec::new();
        for _ in 0..z.calls {
            let t = Instant::now();
            let out = std::process::Command::new(env!("CARGO_BIN_EXE_pbxdesk"))
                .arg("--workspace")
                .arg(dir.path().join("ws.sqlite"))
                .arg("--key-file")
                .arg(dir.path().join("ws.key"))
                .args(["--json", "user", "create", "--tenant", "loop", "--name"])
                .arg(format!("User {made}"))
                .arg("--email")
                .arg(format!("u{made}@loop.example"))
                .output()
                .unwrap();
            times.push(t.elapsed());
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let user: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            assert_eq!(
                user["extension"],
                10_000 + made,
                "the lowest free extension"
            );
            made += 1;
        }
        times.sort();
        let line = format!(
            "| SQLite: `pbxdesk user create`, a process, in a tenant of {size} | {} | {:.1} | {:.1} | {:.1} |",
            z.calls,
            pct(&times, 0.5),
            pct(&times, 0.95),
            pct(&times, 1.0)
        );
        eprintln!("{line}");
        lines.push(line);
    }
    println!("{}", lines.join("\n"));
}
