//! `cargo bench -p pbxdesk-render --bench render`: the render issue's figures for a PBX of 100
//! tenants × 999 users (each with one device and one DID): render time and peak memory, the
//! ratio to merely writing the same bytes to disk, the diff after one user changed, and a
//! trace. Linux only for memory (VmHWM, reset through /proc/self/clear_refs).

#![allow(clippy::unwrap_used, clippy::panic)] // tests and benches fail loudly by design

use pbxdesk_render::snapshot::*;
use pbxdesk_render::{diff, render_pbx, trace_from, trace_inbound};
use std::time::{Duration, Instant};

/// The PBX's size and the samples taken. `PBXDESK_BENCH_QUICK=1` (what CI runs, in a debug
/// build): a small PBX and one sample each, so the bench cannot break unnoticed.
struct Size {
    tenants: u32,
    users: u32,
    samples: usize,
    diffs: usize,
    rediffs: usize,
    traces: u32,
}

fn size() -> Size {
    if std::env::var_os("PBXDESK_BENCH_QUICK").is_some() {
        Size {
            tenants: 3,
            users: 40,
            samples: 1,
            diffs: 1,
            rediffs: 1,
            traces: 20,
        }
    } else {
        Size {
            tenants: 100,
            users: 999,
            samples: 7,
            diffs: 15,
            rediffs: 5,
            traces: 2000,
        }
    }
}

fn big(z: &Size) -> Snapshot {
    let mut tenants = Vec::new();
    for t in 0..z.tenants {
        let slug = format!("tenant-{t:03}");
        let users = (0..z.users)
            .map(|i| {
                let ext = 1000 + i;
                User {
                    extension: ext,
                    name: format!("Person {t}-{i} Müller"),
                    email: format!("p{i}@{slug}.example"),
                    active: true,
                    ring_seconds: 25,
                    voicemail: true,
                    voicemail_pin: Some(format!("{:06}", (t * 1000 + i) % 999_999)),
                    caller_id: (i % 10 == 0).then(|| format!("+4144{:03}{:04}", t, i)),
                    policy: (i % 50 == 0).then(|| "intl".to_owned()),
                    devices: vec![Device {
                        username: format!("{slug}-{ext}"),
                        password: format!("pw-{t}-{i}-0123456789abcdef"),
                        transport: "udp".into(),
                        codecs: "g722,ulaw".into(),
                        nat: true,
                    }],
                }
            })
            .collect();
        let dids = (0..z.users)
            .map(|i| Did {
                number: format!("+4143{:03}{:04}", t, i),
                label: format!("Line {i}"),
                destination: if i < 5 {
                    // The main numbers ring the tenant's groups.
                    Destination::RingGroup(2000 + i)
                } else if i % 7 == 0 {
                    Destination::Voicemail(1000 + i)
                } else {
                    Destination::User(1000 + i)
                },
                trunk: Some("main".into()),
            })
            .collect();
        let rule = |p: &str, allow: bool, strip: u32, prepend: &str| Rule {
            pattern: p.into(),
            allow,
            strip,
            prepend: prepend.into(),
            trunks: if allow {
                vec!["main".into(), "backup".into()]
            } else {
                vec![]
            },
        };
        tenants.push(Tenant {
            slug: slug.clone(),
            name: format!("Tenant {t}"),
            country: "CH".into(),
            active: true,
            unknown_did: Destination::User(1000),
            caller_id: Some(format!("+4144{t:03}0000")),
            default_policy: Some("default".into()),
            users,
            dids,
            // Five groups of ten, one of each strategy and two more; each goes on to the next
            // when nobody answers, the last to a voicemail.
            ring_groups: (0..5u32)
                .map(|g| RingGroup {
                    extension: 2000 + g,
                    name: format!("Group {g}"),
                    ring: [Ring::All, Ring::InOrder, Ring::RoundRobin][(g % 3) as usize],
                    members: (0..10)
                        .map(|m| 1000 + (g * 10 + m) % z.users.max(1))
                        .collect(),
                    member_seconds: 15,
                    total_seconds: 60,
                    no_answer: if g < 4 {
                        Destination::RingGroup(2001 + g)
                    } else {
                        Destination::Voicemail(1000)
                    },
                })
                .collect(),
            policies: vec![
                Policy {
                    name: "default".into(),
                    rules: vec![
                        rule("_0900X.", false, 0, ""),
                        rule("_0[1-9]X.", true, 1, "+41"),
                        rule("_00X.", false, 0, ""),
                    ],
                },
                Policy {
                    name: "intl".into(),
                    rules: vec![
                        rule("_0[1-9]X.", true, 1, "+41"),
                        rule("_00X.", true, 2, "+"),
                    ],
                },
            ],
        });
    }
    let all: Vec<String> = tenants.iter().map(|t| t.slug.clone()).collect();
    let trunk = |name: &str| Trunk {
        name: name.into(),
        host: format!("sip.{name}.example"),
        port: 5060,
        transport: "udp".into(),
        register: true,
        username: Some(format!("{name}-user")),
        password: Some("Trunk-Secret-1".into()),
        from_domain: None,
        from_user: None,
        codecs: vec!["alaw".into()],
        enabled: true,
        tenants: all.clone(),
    };
    Snapshot {
        pbx: "big".into(),
        tenants,
        trunks: vec![trunk("main"), trunk("backup")],
    }
}

fn proc_status(key: &str) -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    s.lines()
        .find(|l| l.starts_with(key))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn p50(mut v: Vec<Duration>) -> (f64, f64) {
    v.sort();
    (
        v[v.len() / 2].as_secs_f64() * 1e3,
        v[v.len() - 1].as_secs_f64() * 1e3,
    )
}

fn main() {
    let only = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let run = |name: &str| only.as_deref().is_none_or(|o| name.contains(o));
    let z = size();
    let t0 = Instant::now();
    let s = big(&z);
    let rss_snapshot = proc_status("VmRSS:").unwrap_or(0);
    println!(
        "snapshot built in {:.0} ms; RSS with the snapshot: {} MiB",
        t0.elapsed().as_secs_f64() * 1e3,
        rss_snapshot / 1024
    );
    println!("| what | samples | p50 ms | max ms | target |\n|---|---|---|---|---|");

    // Peak memory of one render: reset the high-water mark, render, read it back.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let r = render_pbx(&s);
    let peak = proc_status("VmHWM:").unwrap_or(0);
    let bytes: usize = r.files.values().map(String::len).sum();
    let rows = r.realtime.len();
    if run("parts") {
        let t = Instant::now();
        let f = pbxdesk_render::validate::validate(&s, &[]);
        println!(
            "validate alone: {:.1} ms ({} findings)",
            t.elapsed().as_secs_f64() * 1e3,
            f.len()
        );
        let t = Instant::now();
        let c = s.clone();
        println!(
            "clone of the snapshot: {:.1} ms ({})",
            t.elapsed().as_secs_f64() * 1e3,
            c.tenants.len()
        );
    }
    if run("render") {
        let mut v = Vec::new();
        for _ in 0..z.samples {
            let t = Instant::now();
            let out = render_pbx(&s);
            v.push(t.elapsed());
            assert_eq!(out.files.len(), r.files.len());
        }
        let (a, b) = p50(v);
        println!("| render {} tenants × {} users ({} files, {:.1} MB, {rows} realtime rows, {} findings) | {} | {a:.1} | {b:.1} | ≤ 1000 ms |", z.tenants, z.users, r.files.len(), bytes as f64 / 1e6, r.findings.len(), z.samples);
        // The floor: writing the same bytes to disk (no fsync, like the render's output).
        let dir = std::env::temp_dir().join(format!("pbxdesk-bench-{}", std::process::id()));
        let mut w = Vec::new();
        for _ in 0..z.samples {
            let _ = std::fs::remove_dir_all(&dir);
            let t = Instant::now();
            for (path, text) in &r.files {
                let p = dir.join(path);
                std::fs::create_dir_all(p.parent().unwrap()).unwrap();
                std::fs::write(p, text).unwrap();
            }
            std::fs::write(
                dir.join("realtime.json"),
                serde_json::to_string(&r.realtime).unwrap(),
            )
            .unwrap();
            w.push(t.elapsed());
        }
        let _ = std::fs::remove_dir_all(&dir);
        let (wa, wb) = p50(w);
        println!("| write the same files (and the rows as JSON) to disk | {} | {wa:.1} | {wb:.1} | (floor) |", z.samples);
        println!("| ratio render / write | | {:.2} | | |", a / wa);
        println!("| peak RSS during a render (VmHWM; the snapshot alone: {} MiB) | 1 | {} MiB | | ≤ 500 MB |", rss_snapshot / 1024, peak / 1024);
    }
    if run("diff") {
        let mut changed = s.clone();
        changed.tenants[(z.tenants / 2) as usize].users[(z.users / 2) as usize].name =
            "Renamed Person".into();
        let new = render_pbx(&changed);
        let mut v = Vec::new();
        let mut total = Vec::new();
        for _ in 0..z.diffs {
            let t = Instant::now();
            let d = diff(Some(&r), &new);
            v.push(t.elapsed());
            assert_eq!(d.files.len(), 1, "one voicemail file");
            assert_eq!(d.rows_changed.len(), 1);
        }
        for _ in 0..z.rediffs {
            let t = Instant::now();
            let new = render_pbx(&changed);
            let d = diff(Some(&r), &new);
            total.push(t.elapsed());
            assert_eq!(d.files.len(), 1);
        }
        let (a, b) = p50(v);
        println!(
            "| diff after one user changed (renders given) | {} | {a:.1} | {b:.1} | ≤ 300 ms |",
            z.diffs
        );
        let (a, b) = p50(total);
        println!(
            "| render + diff after one user changed | {} | {a:.1} | {b:.1} | |",
            z.rediffs
        );
    }
    if run("trace") {
        let mut v = Vec::new();
        for i in 0..z.traces {
            let n = format!("+4143{:03}{:04}", (i * 7) % z.tenants, (i * 13) % z.users);
            let t = Instant::now();
            let tr = trace_inbound(&s, &n);
            v.push(t.elapsed());
            assert!(tr.tenant.is_some());
        }
        let (a, b) = p50(v);
        println!("| trace an inbound number (DID → user → devices → voicemail) | {} | {a:.3} | {b:.3} | ≤ 1 ms |", z.traces);
        let mut v = Vec::new();
        for i in 0..z.traces {
            // The tenant's first number: five ring groups one after another, then voicemail.
            let n = format!("+4143{:03}0000", (i * 7) % z.tenants);
            let t = Instant::now();
            let tr = trace_inbound(&s, &n);
            v.push(t.elapsed());
            assert!(tr.path.len() > 15, "{tr:?}");
        }
        let (a, b) = p50(v);
        println!("| trace a number through 5 ring groups of 10 (DID → group → … → voicemail) | {} | {a:.3} | {b:.3} | ≤ 1 ms |", z.traces);
        let mut v = Vec::new();
        let last = format!("tenant-{:03}", z.tenants - 1);
        for i in 0..z.traces {
            let t = Instant::now();
            let tr = trace_from(&s, &last, 1000 + (i % z.users), "0445551234");
            v.push(t.elapsed());
            assert!(tr.is_some());
        }
        let (a, b) = p50(v);
        println!("| trace an outbound call (user → policy rule → trunks) | {} | {a:.3} | {b:.3} | ≤ 1 ms |", z.traces);
    }
}
