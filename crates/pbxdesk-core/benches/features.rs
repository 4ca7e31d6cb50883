//! `cargo bench -p pbxdesk-core --bench features`: DND set through the service until AstDB
//! holds it, against the test PBX (OpenSSH on loopback, the Asterisk double, MariaDB) through
//! the SSH tunnel: over a connection of its own (the CLI: SSH handshake, tunnel, AMI login,
//! read, write, logoff) and over the watcher's connection (the app while it watches the PBX).
//! Each sample toggles DND and ends when the double's AstDB holds the new value. Then a phone's
//! registration to the tenant's live view (what the app's status dot reads; the Tauri channel's
//! hop to the window is not in it): the double sends s9's events through the tunnel, the
//! watcher reads the new contact's details (`PJSIPShowContacts`), the tenant's view takes it.
//! Also: a voicemail PIN pushed through the guarded apply, and a dropped AMI connection to the
//! state read in full again through a new tunnel.

#![allow(clippy::unwrap_used, clippy::panic)] // benches fail loudly by design

#[path = "../tests/pbx_double/mod.rs"]
mod pbx_double;

use pbxdesk_core::model::UserPatch;
use pbxdesk_core::service::{ApplyOptions, ApplyOutcome};
use pbxdesk_core::Workspace;
use std::time::{Duration, Instant};

/// `PBXDESK_BENCH_QUICK=1` (what CI runs, in a debug build): a few samples, so the bench
/// cannot break unnoticed. The figures are the full run's.
fn quick() -> bool {
    std::env::var_os("PBXDESK_BENCH_QUICK").is_some()
}

fn summary(mut v: Vec<Duration>) -> String {
    v.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    format!(
        "p50 {:.1} ms, p95 {:.1} ms, max {:.1} ms ({} samples)",
        ms(v[v.len() / 2]),
        ms(v[v.len() * 95 / 100]),
        ms(v[v.len() - 1]),
        v.len()
    )
}

async fn toggle(
    ws: &Workspace,
    me: &pbxdesk_core::Actor,
    pbx: &pbx_double::Pbx,
    id: i64,
    n: usize,
) -> Vec<Duration> {
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let on = i % 2 == 0;
        let t = Instant::now();
        let u = ws
            .user_update(
                me,
                id,
                &UserPatch {
                    dnd: Some(on),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let held = pbx.ast.astdb().contains_key("pbxdesk/acme-dental/100/dnd");
        out.push(t.elapsed());
        assert!(!u.features_pending && held == on, "sample {i}: not written");
    }
    out
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let (_dir, ws) = pbx_double::temp_workspace().await;
    let me = ws.local_owner().unwrap();
    let pbx = pbx_double::setup(&ws, &me, "benchfeatures").await;
    let opts = ApplyOptions {
        add_includes: true,
        ..Default::default()
    };
    let rep = ws.pbx_apply(&me, "demo-pbx", &opts).await.unwrap();
    assert_eq!(rep.outcome, ApplyOutcome::Applied);
    let ada = ws.user_resolve(&me, "acme-dental/100").await.unwrap();
    let n = if quick() { 4 } else { 100 };

    let own = toggle(&ws, &me, &pbx, ada, n).await;
    println!(
        "DND to AstDB, a connection of its own through the tunnel: {}",
        summary(own)
    );

    let mut live = ws.pbx_watch(&me, "demo-pbx").await.unwrap();
    live.wait_for(|l| l.connected).await.unwrap();
    // The watcher's first full pass has run once its state is published.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let watched = toggle(&ws, &me, &pbx, ada, n).await;
    println!(
        "DND to AstDB, over the watcher's connection: {}",
        summary(watched)
    );

    // A voicemail PIN changed while the app watches the PBX: the guarded apply of the PBX's
    // render with that PIN changed, until `user_update` returns with it on the PBX.
    let etc = pbx.sshd.etc();
    let mut pins = Vec::new();
    for i in 0..(if quick() { 2 } else { 20 }) {
        let pin = if i % 2 == 0 { "13579" } else { "24680" };
        let t = Instant::now();
        let u = ws
            .user_update(
                &me,
                ada,
                &UserPatch {
                    voicemail_pin: Some(pin.into()),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        pins.push(t.elapsed());
        let files = pbx_double::product_files(&etc);
        assert!(
            !u.voicemail_pin_pending
                && files["voicemail.d/pbxdesk/tenant-acme-dental.conf"]
                    .contains(&format!("100 => {pin},")),
            "sample {i}: the PIN is not on the PBX"
        );
    }
    println!(
        "a voicemail PIN to its mailbox on the PBX (lock, backup, arm, upload, reload, verify, confirm): {}",
        summary(pins)
    );

    // The AMI connection dropped (Asterisk restarting, the link cut) and the PBX back at once:
    // until the watcher, through a new SSH tunnel, has read the state in full again.
    let mut back = Vec::new();
    for _ in 0..(if quick() { 2 } else { 20 }) {
        let t = Instant::now();
        pbx.ast.drop_connections();
        // Seen gone (the backoff's 500 ms leave time to see it), then back and read in full.
        live.wait_for(|l| !l.connected).await.unwrap();
        let gone = live.borrow().rereads;
        live.wait_for(|l| l.connected && l.rereads > gone)
            .await
            .unwrap();
        back.push(t.elapsed());
    }
    println!(
        "a dropped AMI connection to the state read in full again, through the SSH tunnel (first backoff 500 ms): {}",
        summary(back)
    );

    let mut view = ws.tenant_watch(&me, "acme-dental").await.unwrap();
    view.wait_for(|l| l.connected).await.unwrap();
    let device = "acme-dental-100";
    let (mut up, mut down) = (Vec::new(), Vec::new());
    for _ in 0..n {
        let t = Instant::now();
        pbx.ast.register(device, 5070, "bench-phone/1.0");
        view.wait_for(|l| {
            l.state.endpoints.get(device).is_some_and(|e| {
                e.registered() && e.contacts[0].user_agent.as_deref() == Some("bench-phone/1.0")
            })
        })
        .await
        .unwrap();
        up.push(t.elapsed());
        let t = Instant::now();
        pbx.ast.unregister(device);
        view.wait_for(|l| {
            l.state
                .endpoints
                .get(device)
                .is_some_and(|e| e.contacts.is_empty())
        })
        .await
        .unwrap();
        down.push(t.elapsed());
    }
    println!(
        "a phone registers, to the tenant's view with its user agent: {}",
        summary(up)
    );
    println!(
        "a phone unregisters, to the tenant's view: {}",
        summary(down)
    );
}
