//! `cargo bench -p pbxdesk-core --bench apply`: the guarded apply's figures against the test PBX
//! (OpenSSH on loopback, the capture-faithful Asterisk double, MariaDB): a change applied to a
//! PBX with 100 and with 1,000 users, an apply with nothing changed, and the apply's time
//! against the bare floor of the same work (the same bytes uploaded over SFTP, the same reload
//! and the same `dialplan show` commands) measured in the same run; and a fleet of 8 PBXs, each
//! with a change, applied with `--all-pending` 4 at a time and one at a time (`-- fleet`); and
//! a PBX of 100 tenants × 999 users, first apply and a one-user change (`-- scale`, minutes).

#![allow(clippy::unwrap_used, clippy::panic)] // tests and benches fail loudly by design

#[path = "../tests/pbx_double/mod.rs"]
mod pbx_double;

use pbxdesk_core::model::{NewPolicy, NewTenant, NewUser, TrunkPatch, UserPatch};
use pbxdesk_core::service::{parse_rule, realtime_devices, ApplyOptions, ApplyOutcome};
use pbxdesk_remote::ami::{Client, Options};
use pbxdesk_remote::realtime::Realtime;
use pbxdesk_remote::ssh::Connection;
use secrecy::SecretString;
use std::time::{Duration, Instant};

/// `PBXDESK_BENCH_QUICK=1` (what CI runs, in a debug build): one small PBX, one round, so the
/// bench cannot break unnoticed. The figures are the full run's.
fn quick() -> bool {
    std::env::var_os("PBXDESK_BENCH_QUICK").is_some()
}

fn p50(mut v: Vec<Duration>) -> (f64, f64) {
    v.sort();
    (
        v[v.len() / 2].as_secs_f64() * 1e3,
        v[v.len() - 1].as_secs_f64() * 1e3,
    )
}

async fn run(users: u32) {
    let (_dir, ws) = pbx_double::temp_workspace().await;
    let me = ws.local_owner().unwrap();
    let pbx = pbx_double::setup(&ws, &me, &format!("bench{users}")).await;
    // A tenant of `users` users on the demo PBX, with the demo trunk and a default policy.
    ws.tenant_create(
        &me,
        &NewTenant {
            name: "Bench".into(),
            slug: Some("bench".into()),
            pbx: "demo-pbx".into(),
            ext_range: "2000-2999".into(),
            country: Some("CH".into()),
        },
    )
    .await
    .unwrap();
    ws.trunk_update(
        &me,
        "demo-pbx",
        "swisscom",
        &TrunkPatch {
            tenants: Some(vec!["acme-dental".into(), "bench".into()]),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    ws.policy_add(
        &me,
        &NewPolicy {
            tenant: "bench".into(),
            name: "default".into(),
            rules: vec![parse_rule("_0X. allow strip=1 prepend=+41 trunks=swisscom").unwrap()],
            make_default: true,
        },
    )
    .await
    .unwrap();
    let extra = users.saturating_sub(16); // the demo has 16
    for i in 0..extra {
        ws.user_create(
            &me,
            &NewUser {
                tenant: "bench".into(),
                name: format!("Bench User {i}"),
                email: format!("u{i}@bench.example"),
                ..NewUser::default()
            },
        )
        .await
        .unwrap();
    }
    let opts = ApplyOptions {
        add_includes: true,
        ..Default::default()
    };
    let first = ws.pbx_apply(&me, "demo-pbx", &opts).await.unwrap();
    assert_eq!(first.outcome, ApplyOutcome::Applied, "{:?}", first.steps);

    // A change: one user's ring time (dialplan, so pbx_config reloads) and name (mailbox, row).
    let target = ws.user_resolve(&me, "acme-dental/100").await.unwrap();
    let mut applies = Vec::new();
    let mut floors = Vec::new();
    let mut nothing = Vec::new();
    let etc = pbx.sshd.etc().display().to_string();
    let fp = pbx.sshd.fingerprint();
    let db_url = format!(
        "mysql://root@127.0.0.1:3306/pbxdesk_apply_bench{users}_{}",
        std::process::id()
    );
    let rounds = if quick() { 1 } else { 5 };
    for round in 0..rounds {
        let old = ws.pbx_render(&me, "demo-pbx", true).await.unwrap();
        ws.user_update(
            &me,
            target,
            &UserPatch {
                ring_seconds: Some(20 + round),
                name: Some(format!("Ada Round {round}")),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        let new = ws.pbx_render(&me, "demo-pbx", true).await.unwrap();
        let changed: Vec<&String> = new
            .files
            .keys()
            .filter(|p| old.files.get(*p) != new.files.get(*p))
            .collect();
        let modules: Vec<&str> = ["pbx_config", "app_voicemail"]
            .into_iter()
            .filter(|m| {
                changed.iter().any(|p| {
                    p.starts_with(if *m == "pbx_config" {
                        "extensions.d"
                    } else {
                        "voicemail.d"
                    })
                })
            })
            .collect();

        // The floor: the same work by hand, timed: the same files uploaded over SFTP, the same
        // realtime rows synced, the same reloads, the same `dialplan show`s and endpoint list.
        let files = |r: &pbxdesk_render::Rendered| -> Vec<(String, Vec<u8>)> {
            changed
                .iter()
                .map(|p| (format!("{etc}/{p}"), r.files[*p].clone().into_bytes()))
                .collect()
        };
        let upload = |files: Vec<(String, Vec<u8>)>| {
            let (tg, fp2) = (pbx.sshd.target("user_key", None), fp.clone());
            tokio::task::spawn_blocking(move || {
                let c = Connection::open(&tg, Some(&fp2)).unwrap();
                let refs: Vec<(&str, &[u8])> = files
                    .iter()
                    .map(|(p, b)| (p.as_str(), b.as_slice()))
                    .collect();
                c.write_files_atomic(&refs).unwrap();
            })
        };
        let (new_files, old_files) = (files(&new), files(&old));
        let t = Instant::now();
        upload(new_files).await.unwrap();
        let rt = Realtime::connect(&db_url, None, "pbxdesk:demo-pbx")
            .await
            .unwrap();
        rt.sync(&realtime_devices(&new), 1).await.unwrap();
        rt.close().await;
        let c = Client::connect(
            &pbx.ast.addr,
            "pbx",
            &SecretString::from("pbx-secret-1"),
            false,
            Options::default(),
        )
        .await
        .unwrap();
        for m in &modules {
            c.reload(m).await.unwrap();
        }
        for ctx in new.contexts.keys() {
            c.dialplan_context(ctx).await.unwrap();
        }
        c.pjsip_endpoints().await.unwrap();
        floors.push(t.elapsed());
        // Back to the old state, untimed, so the apply does the whole change again.
        upload(old_files).await.unwrap();
        let rt = Realtime::connect(&db_url, None, "pbxdesk:demo-pbx")
            .await
            .unwrap();
        rt.sync(&realtime_devices(&old), 1).await.unwrap();
        rt.close().await;
        c.reload("pbx_config").await.unwrap();
        let _ = c.logoff().await;

        let t = Instant::now();
        let rep = ws.pbx_apply(&me, "demo-pbx", &opts).await.unwrap();
        applies.push(t.elapsed());
        assert_eq!(rep.outcome, ApplyOutcome::Applied, "{:?}", rep.steps);
        if round == 0 {
            for s in &rep.steps {
                println!("    {:<28} {:>6} ms  {}", s.step, s.ms, s.detail);
            }
        }

        let t = Instant::now();
        let n = ws.pbx_apply(&me, "demo-pbx", &opts).await.unwrap();
        nothing.push(t.elapsed());
        assert_eq!(n.outcome, ApplyOutcome::NothingToDo);
    }
    let (a, amax) = p50(applies);
    let (f, fmax) = p50(floors);
    let (n, nmax) = p50(nothing);
    println!(
        "| apply a change, {users} users | {rounds} | {a:.0} | {amax:.0} | ≤ {} ms |",
        if users <= 100 { 2000 } else { 5000 }
    );
    println!("| floor: same upload over SFTP + same realtime sync + same reloads + same shows, {users} users | {rounds} | {f:.0} | {fmax:.0} | |");
    println!(
        "| ratio apply / floor, {users} users | | {:.2} | | ≤ 1.5 |",
        a / f
    );
    println!(
        "| apply with nothing changed, {users} users | {rounds} | {n:.0} | {nmax:.0} | ≤ 500 ms |"
    );
}

/// A PBX of 100 tenants × 999 users (the seed's maximum; 2 × 20 in quick mode): the first
/// apply, then a change of one user (one tenant's files and one row).
async fn scale() {
    use pbxdesk_core::model::{NewPbx, NewTrunk};
    let (tenants, users) = if quick() { (2u32, 20u32) } else { (100, 999) };
    let (_dir, ws) = pbx_double::temp_workspace().await;
    let me = ws.local_owner().unwrap();
    ws.pbx_add(&me, &NewPbx::at("big", "127.0.0.1"))
        .await
        .unwrap();
    let pbx = pbx_double::start_pbx(&ws, &me, "big", "scale", None).await;
    let t = Instant::now();
    let mut slugs = Vec::new();
    for k in 0..tenants {
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
        for i in 0..users {
            ws.user_create(
                &me,
                &NewUser {
                    tenant: slug.clone(),
                    name: format!("Person {k}-{i}"),
                    email: format!("p{i}@{slug}.example"),
                    ..NewUser::default()
                },
            )
            .await
            .unwrap();
        }
        slugs.push(slug);
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
    println!(
        "filled {tenants} × {users} users in {:.0} s",
        t.elapsed().as_secs_f64()
    );
    let opts = ApplyOptions {
        add_includes: true,
        ..Default::default()
    };
    let t = Instant::now();
    let first = ws.pbx_apply(&me, "big", &opts).await.unwrap();
    let first_ms = t.elapsed().as_secs_f64() * 1e3;
    assert_eq!(first.outcome, ApplyOutcome::Applied, "{:?}", first.steps);
    for s in &first.steps {
        println!("    {:<28} {:>6} ms  {}", s.step, s.ms, s.detail);
    }
    let one = ws.user_resolve(&me, "customer-001/1005").await.unwrap();
    ws.user_update(
        &me,
        one,
        &UserPatch {
            name: Some("Person Renamed".into()),
            ring_seconds: Some(31),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let t = Instant::now();
    let change = ws.pbx_apply(&me, "big", &opts).await.unwrap();
    let change_ms = t.elapsed().as_secs_f64() * 1e3;
    assert_eq!(change.outcome, ApplyOutcome::Applied, "{:?}", change.steps);
    for s in &change.steps {
        println!("    {:<28} {:>6} ms  {}", s.step, s.ms, s.detail);
    }
    let uploaded = change
        .steps
        .iter()
        .find(|s| s.step == "upload")
        .map(|s| s.detail.clone())
        .unwrap_or_default();
    println!("| first apply, {tenants} tenants × {users} users | 1 | {first_ms:.0} | | |");
    println!("| one user changed, {tenants} × {users} ({uploaded}) | 1 | {change_ms:.0} | | |");
    drop(pbx);
}

/// 8 PBXs (2 in quick mode), each changed, applied as a fleet: `parallel` at a time.
async fn fleet() {
    let (_dir, ws) = pbx_double::temp_workspace().await;
    let me = ws.local_owner().unwrap();
    let n = if quick() { 2 } else { 8 };
    let mut pbxes = Vec::new();
    for i in 0..n {
        pbxes.push(pbx_double::small_pbx(&ws, &me, &format!("fleet-{i}")).await);
    }
    let opts = ApplyOptions {
        add_includes: true,
        ..Default::default()
    };
    let first = ws.pbx_apply_pending(&me, &opts, 4, None).await.unwrap();
    assert!(first.worst.is_none(), "{first:?}");
    let rounds = if quick() { 1 } else { 3 };
    for parallel in [4, 1] {
        let mut times = Vec::new();
        for round in 0..rounds {
            for i in 0..n {
                let ada = ws
                    .user_resolve(&me, &format!("fleet-{i}/100"))
                    .await
                    .unwrap();
                ws.user_update(
                    &me,
                    ada,
                    &UserPatch {
                        name: Some(format!("Ada {parallel} {round}")),
                        ..Default::default()
                    },
                )
                .await
                .unwrap();
            }
            let t = Instant::now();
            let rep = ws
                .pbx_apply_pending(&me, &opts, parallel, None)
                .await
                .unwrap();
            times.push(t.elapsed());
            assert_eq!(rep.lines.len(), n, "{rep:?}");
            assert!(rep.worst.is_none(), "{rep:?}");
        }
        let (p, max) = p50(times);
        println!("| fleet of {n} PBXs, each with a change, {parallel} at a time | {rounds} | {p:.0} | {max:.0} | |");
    }
    drop(pbxes);
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let only = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    println!("| what | samples | p50 ms | max ms | target |\n|---|---|---|---|---|");
    let sizes: &[u32] = if quick() { &[20] } else { &[100, 1000] };
    for &users in sizes {
        if only.as_deref().is_none_or(|o| o == users.to_string()) {
            run(users).await;
        }
    }
    if only.as_deref().is_none_or(|o| o == "fleet") {
        fleet().await;
    }
    // The full size takes minutes (filling 99,900 users through the services): on request.
    if only.as_deref() == Some("scale") || (quick() && only.is_none()) {
        scale().await;
    }
}
