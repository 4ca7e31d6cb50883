//! `cargo bench -p pbxdesk-remote --bench live`: the live PBX's figures (issue 12).
//!
//! - memory of the live state of 10,000 registered devices (each with a contact)
//! - an AMI event from the socket to the watcher's published state, one at a time
//! - an event storm of 2,000 events/s for 10 s through the AMI double: how far the watcher is
//!   behind when the storm ends, and whether it fell behind so far it had to re-read
//!
//! The PBX end is the capture-replaying AMI double (`testkit::start_ami`), sending
//! `DeviceStateChange` events shaped like the s9 capture's.

#![allow(clippy::unwrap_used, clippy::panic)] // benches fail loudly by design

use pbxdesk_remote::ami::Parser;
use pbxdesk_remote::live::LiveState;
use pbxdesk_remote::testkit::{ami_connector, start_ami, Behaviour};
use pbxdesk_remote::watch::spawn;
use std::time::{Duration, Instant};

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}

/// A `PJSIPShowContacts` listing of `n` registered phones, shaped like s10's ContactList.
fn contact_list(n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..n {
        out.extend_from_slice(format!(
            "Event: ContactList\r\nObjectType: contact\r\nObjectName: t{t}-{i};@{i:032x}\r\nViaAddr: 10.{a}.{b}.{c}\r\nViaPort: 5060\r\nEndpoint: t{t}-{i}\r\nUri: sip:t{t}-{i}@10.{a}.{b}.{c}:5060\r\nQualifyFrequency: 60\r\nUserAgent: Yealink SIP-T46U 108.86.0.45\r\nExpirationTime: 1796158239\r\nStatus: Reachable\r\nRoundtripUsec: 571\r\n\r\n",
            t = i / 1000, a = i / 65536 % 256, b = i / 256 % 256, c = i % 256
        ).as_bytes());
    }
    out
}

fn device_state(i: usize, busy: bool) -> String {
    format!(
        "Event: DeviceStateChange\r\nPrivilege: call,all\r\nDevice: PJSIP/t{}-{i}\r\nState: {}\r\n\r\n",
        i / 1000,
        if busy { "INUSE" } else { "NOT_INUSE" }
    )
}

fn main() {
    let quick = std::env::var_os("PBXDESK_BENCH_QUICK").is_some();
    let devices = if quick { 100 } else { 10_000 };
    let storm_seconds = if quick { 1 } else { 10 };
    let per_second = 2_000;
    let latency_samples = if quick { 5 } else { 200 };
    println!("| what | samples | p50 | max | target |\n|---|---|---|---|---|");

    // Memory of the state itself.
    let mut p = Parser::default();
    p.push(&contact_list(devices));
    let list: Vec<_> = std::iter::from_fn(|| p.next_message().unwrap()).collect();
    let before = rss_kib();
    let mut s = LiveState::default();
    s.load_contacts(&list, 0);
    drop(list);
    let after = rss_kib();
    assert_eq!(s.endpoints.len(), devices);
    let json = serde_json::to_string(&s).unwrap().len();
    println!(
        "| live state of {devices} registered devices: RSS growth (its JSON: {:.1} MB) | 1 | {:.1} MB | | ≤ 50 MB |",
        json as f64 / 1e6,
        after.saturating_sub(before) as f64 / 1024.0
    );

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (events, _) = tokio::sync::broadcast::channel(4096);
        let (addr, _) = start_ami(Behaviour {
            sessions: vec!["s10", "s17", "s11"],
            events: Some(events.clone()),
            ..Behaviour::default()
        })
        .await;
        let mut rx = spawn(ami_connector(addr.clone()), Duration::from_millis(50));
        rx.wait_for(|l| l.connected).await.unwrap();

        // One event at a time: socket → parser → state → published.
        let mut lat = Vec::new();
        for i in 0..latency_samples {
            let want = rx.borrow().events + 1;
            let t = Instant::now();
            events.send(device_state(i, i % 2 == 0).into_bytes()).unwrap();
            rx.wait_for(|l| l.events >= want).await.unwrap();
            lat.push(t.elapsed());
        }
        lat.sort();
        println!(
            "| an AMI event to the published state (through the double's socket) | {latency_samples} | {:.3} ms | {:.3} ms | ≤ 100 ms |",
            lat[lat.len() / 2].as_secs_f64() * 1e3,
            lat[lat.len() - 1].as_secs_f64() * 1e3
        );

        // The storm: 2,000 events a second, sent in 10 ms slices, for `storm_seconds`.
        let start_events = rx.borrow().events;
        let rereads = rx.borrow().rereads;
        let total = per_second * storm_seconds;
        let slice = per_second / 100;
        let t = Instant::now();
        let mut sent = 0;
        while sent < total {
            let mut bytes = Vec::new();
            for k in 0..slice {
                let i = (sent + k) % devices;
                bytes.extend_from_slice(device_state(i, (sent + k) / devices % 2 == 0).as_bytes());
            }
            events.send(bytes).unwrap();
            sent += slice;
            if sent >= total {
                break;
            }
            let next = Duration::from_millis(10 * (sent / slice) as u64);
            if let Some(wait) = next.checked_sub(t.elapsed()) {
                tokio::time::sleep(wait).await;
            }
        }
        let sent_at = t.elapsed();
        let goal = start_events + total as u64;
        rx.wait_for(|l| l.events >= goal || l.rereads > rereads)
            .await
            .unwrap();
        let behind = t.elapsed().saturating_sub(sent_at);
        let fell_behind = rx.borrow().rereads > rereads;
        println!(
            "| storm: {total} events at {per_second}/s; behind when it ended (re-read because it fell behind: {fell_behind}) | 1 | {:.1} ms | | no growing queue |",
            behind.as_secs_f64() * 1e3
        );
        assert!(!fell_behind, "the watcher fell behind the storm");

        // A dropped connection: from the drop to the state read in full again, with the
        // product's first backoff (500 ms); a PBX away longer is tried every MAX_BACKOFF.
        let mut back = Vec::new();
        let mut rx = spawn(ami_connector(addr.clone()), Duration::from_millis(500));
        rx.wait_for(|l| l.connected).await.unwrap();
        for _ in 0..if quick { 2 } else { 20 } {
            let before = rx.borrow().rereads;
            let t = Instant::now();
            events.send(Vec::new()).unwrap(); // the double closes every connection
            rx.wait_for(|l| l.connected && l.rereads > before).await.unwrap();
            back.push(t.elapsed());
        }
        back.sort();
        println!(
            "| a dropped AMI connection to the state read in full again (PBX back at once; first backoff 500 ms, then at most every {} s) | {} | {:.0} ms | {:.0} ms | within 5 s of the PBX being back |",
            pbxdesk_remote::watch::MAX_BACKOFF.as_secs(),
            back.len(),
            back[back.len() / 2].as_secs_f64() * 1e3,
            back[back.len() - 1].as_secs_f64() * 1e3
        );
    });
}
