//! `cargo bench -p pbxdesk-cli --bench render`: the whole `pbxdesk render` of a PBX of 100
//! tenants × 999 users, as a technician runs it: a process that opens the workspace, loads the
//! snapshot (decrypting every SIP password and voicemail PIN), renders, masks and writes the
//! folder. Wall time per run and the process's peak RSS (its VmHWM, sampled), plus the
//! same steps in-process for the breakdown.
//!
//! Filling the workspace through the services takes minutes at full size, so it is kept in
//! Cargo's target tmp folder and reused (`--refill` makes it again). `PBXDESK_BENCH_QUICK=1`
//! (what CI runs, in a debug build): 3 tenants × 20 users, one run.

#![allow(clippy::unwrap_used, clippy::panic)] // tests and benches fail loudly by design

use pbxdesk_core::model::{NewPbx, NewTenant, NewTrunk, NewUser};
use pbxdesk_core::service::{KeySource, Location, OpenOptions};
use pbxdesk_core::Workspace;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

struct Size {
    tenants: u32,
    users: u32,
    runs: usize,
}

fn size() -> Size {
    if std::env::var_os("PBXDESK_BENCH_QUICK").is_some() {
        Size {
            tenants: 3,
            users: 20,
            runs: 1,
        }
    } else {
        Size {
            tenants: 100,
            users: 999,
            runs: 7,
        }
    }
}

fn options(dir: &Path) -> OpenOptions {
    OpenOptions::new(
        Location::Sqlite(dir.join("ws.sqlite")),
        KeySource::File(dir.join("ws.key")),
    )
}

/// The workspace of `z`, made once: a `complete` mark says the fill ended.
async fn workspace(z: &Size, refill: bool) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("render-bench-{}x{}", z.tenants, z.users));
    if !refill && dir.join("complete").exists() {
        return dir;
    }
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let ws = Workspace::open(options(&dir)).await.unwrap();
    let me = ws.local_owner().unwrap();
    ws.pbx_add(&me, &NewPbx::at("big", "10.0.0.1"))
        .await
        .unwrap();
    let t = Instant::now();
    let mut slugs = Vec::new();
    for k in 0..z.tenants {
        let slug = format!("customer-{k:03}");
        ws.tenant_create(
            &me,
            &NewTenant {
                name: format!("Customer {k}"),
                slug: Some(slug.clone()),
                pbx: "big".into(),
                ext_range: "1000-1999".into(),
                country: Some("CH".into()),
            },
        )
        .await
        .unwrap();
        for i in 0..z.users {
            ws.user_create(
                &me,
                &NewUser {
                    tenant: slug.clone(),
                    name: format!("Person {k}-{i} Müller"),
                    email: format!("p{i}@{slug}.example"),
                    ..NewUser::default()
                },
            )
            .await
            .unwrap();
        }
        slugs.push(slug);
        eprintln!(
            "filled {}/{} tenants in {:.0} s",
            k + 1,
            z.tenants,
            t.elapsed().as_secs_f64()
        );
    }
    ws.trunk_add(
        &me,
        &NewTrunk {
            pbx: "big".into(),
            name: "carrier".into(),
            host: "sip.carrier.example".into(),
            tenants: slugs,
            ..NewTrunk::default()
        },
    )
    .await
    .unwrap();
    ws.close().await;
    std::fs::write(dir.join("complete"), b"").unwrap();
    dir
}

fn p50(mut v: Vec<Duration>) -> (f64, f64) {
    v.sort();
    (
        v[v.len() / 2].as_secs_f64() * 1e3,
        v[v.len() - 1].as_secs_f64() * 1e3,
    )
}

/// Runs the process to its end, sampling its high-water RSS (VmHWM, which only grows) every
/// 2 ms; the last sample misses at most the last 2 ms of its life. In KiB.
fn run_sampling_peak(cmd: &mut std::process::Command) -> (std::process::ExitStatus, u64) {
    let mut child = cmd.spawn().unwrap();
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak = 0;
    loop {
        if let Ok(s) = std::fs::read_to_string(&status_file) {
            if let Some(kib) = s
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            {
                peak = peak.max(kib);
            }
        }
        if let Some(status) = child.try_wait().unwrap() {
            return (status, peak);
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn main() {
    let z = size();
    let refill = std::env::args().any(|a| a == "--refill");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = rt.block_on(workspace(&z, refill));
    let out = dir.join("out");
    println!("| what | samples | p50 ms | max ms | target |\n|---|---|---|---|---|");

    let mut wall = Vec::new();
    let mut peak = 0;
    for _ in 0..z.runs {
        let _ = std::fs::remove_dir_all(&out);
        let t = Instant::now();
        let (status, kib) = run_sampling_peak(
            std::process::Command::new(env!("CARGO_BIN_EXE_pbxdesk"))
                .arg("--workspace")
                .arg(dir.join("ws.sqlite"))
                .arg("--key-file")
                .arg(dir.join("ws.key"))
                .args(["render", "--pbx", "big", "--out"])
                .arg(&out)
                .stdout(std::process::Stdio::null()),
        );
        wall.push(t.elapsed());
        peak = peak.max(kib);
        assert!(status.success(), "pbxdesk render failed: {status}");
    }
    let files = std::fs::read_dir(out.join("extensions.d/pbxdesk"))
        .unwrap()
        .count();
    assert_eq!(
        files,
        z.tenants as usize + 2,
        "a file per tenant, common, inbound"
    );
    let (a, b) = p50(wall);
    println!(
        "| `pbxdesk render` of {} tenants × {} users, a process (open, snapshot, render, mask, write) | {} | {a:.0} | {b:.0} | ≤ 500 ms |",
        z.tenants, z.users, z.runs
    );
    println!(
        "| peak RSS of that process (VmHWM) | {} | {} MiB | | ≤ 200 MB |",
        z.runs,
        peak / 1024
    );

    // In-process, for the breakdown.
    rt.block_on(async {
        let ws = Workspace::open(options(&dir)).await.unwrap();
        let me = ws.local_owner().unwrap();
        let (mut snap, mut render, mut whole) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..z.runs {
            let t = Instant::now();
            let s = ws.pbx_snapshot(&me, "big").await.unwrap();
            snap.push(t.elapsed());
            let t = Instant::now();
            let r = pbxdesk_render::render_pbx(&s);
            render.push(t.elapsed());
            assert_eq!(r.realtime.len(), (z.tenants * z.users) as usize);
            drop((s, r));
            let _ = std::fs::remove_dir_all(&out);
            let t = Instant::now();
            ws.pbx_render_to(&me, "big", false, &out).await.unwrap();
            whole.push(t.elapsed());
        }
        for (what, v) in [
            ("load the snapshot (SQL, decrypt)", snap),
            ("the pure render of it", render),
            (
                "`pbx_render_to` in-process (snapshot, render, mask, write)",
                whole,
            ),
        ] {
            let (a, b) = p50(v);
            println!("| {what} | {} | {a:.0} | {b:.0} | |", z.runs);
        }
        ws.close().await;
    });
    let _ = std::fs::remove_dir_all(&out);
}
