//! The watcher against the AMI double: the full state read at connect (the double answers the
//! lists with the s10, s17 and s11 captures), a captured event stream (s9) applied as it
//! comes, a new contact's details read back, and a dropped connection followed by a reconnect
//! and a full re-read. Asterisk itself cannot run here; the double replays its bytes.

#![allow(clippy::unwrap_used, clippy::panic)] // tests fail loudly by design

use pbxdesk_remote::ami::Parser;
use pbxdesk_remote::live::{ContactState, DeviceState};
use pbxdesk_remote::testkit::{ami_connector, captured_events, start_ami, Behaviour};
use pbxdesk_remote::watch::{spawn, Live};
use std::time::Duration;
use tokio::sync::watch::Receiver;

async fn wait_for(rx: &mut Receiver<Live>, what: &str, ok: impl Fn(&Live) -> bool) -> Live {
    let got = tokio::time::timeout(Duration::from_secs(10), async {
        rx.wait_for(|l| ok(l)).await.map(|l| l.clone()).ok()
    })
    .await;
    match got {
        Ok(Some(l)) => l,
        _ => panic!("{what}: not within 10 s; last: {:?}", *rx.borrow()),
    }
}

#[tokio::test]
async fn the_watcher_reads_follows_and_reconnects() {
    let (events, _) = tokio::sync::broadcast::channel(64);
    let (addr, seen) = start_ami(Behaviour {
        sessions: vec!["s10", "s17", "s11", "s18"],
        events: Some(events.clone()),
        ..Behaviour::default()
    })
    .await;
    let mut rx = spawn(ami_connector(addr), Duration::from_millis(50));

    // Connected: the lists read in full.
    let l = wait_for(&mut rx, "the first read", |l| l.connected && l.rereads == 1).await;
    assert!(l.state.endpoints["acme-1001"].registered());
    assert_eq!(
        l.state.endpoints["acme-1001"].device_state,
        Some(DeviceState::NotInUse)
    );
    assert_eq!(l.state.registrations["trunk-ok"].status, "Registered");
    assert_eq!(l.state.registrations["trunk-dead"].status, "Rejected");
    assert!(l.state.channels.is_empty());
    // Health, polled (no event tells it): CoreSettings, CoreStatus, uptime, `odbc show`.
    let h = &l.state.health;
    assert_eq!(h.version.as_deref(), Some("22.10.1"));
    assert_eq!(h.uptime_s, Some(74));
    assert!(
        h.realtime_db.as_ref().is_some_and(|d| d.connected()),
        "{h:?}"
    );

    // s9's events, as Asterisk sent them: the phone's life ends killed.
    let s9 = captured_events("s9_events_phone_lifecycle.received_stream.raw");
    let n = {
        let mut p = Parser::default();
        p.push(&s9);
        std::iter::from_fn(|| p.next_message().unwrap()).count() as u64
    };
    events.send(s9).unwrap();
    // The events in a batch, then the new contact's details (ContactStatus carries no user
    // agent) read back once after it.
    let l = wait_for(&mut rx, "s9 applied, details read", |l| {
        l.events == n
            && l.state.endpoints["acme-1000"]
                .contacts
                .first()
                .is_some_and(|c| c.user_agent.is_some())
    })
    .await;
    assert_eq!(
        l.state.endpoints["acme-1000"].device_state,
        Some(DeviceState::Unavailable)
    );
    let me = &l.state.endpoints["acme-1000"];
    assert_eq!(me.contacts[0].state, ContactState::Unreachable);
    assert_eq!(
        me.contacts[0].user_agent.as_deref(),
        Some("sipp-acme-phone/3.6.1")
    );
    let contacts_reads = seen
        .lock()
        .unwrap()
        .iter()
        .filter(|a| *a == "PJSIPShowContacts")
        .count();
    // The first read, then one per batch that had new contacts: s9 registers twice, so one
    // (both in one batch) or two (the bytes came in two reads), never one per event.
    assert!((2..=3).contains(&contacts_reads), "{contacts_reads}");

    // The PBX drops the connection: the watcher says so, connects again and reads it all.
    events.send(Vec::new()).unwrap();
    let l = wait_for(&mut rx, "reconnected", |l| l.connected && l.rereads == 2).await;
    assert!(l.last_error.is_none());
    assert!(l.state.endpoints["acme-1001"].registered());
    let logins = seen
        .lock()
        .unwrap()
        .iter()
        .filter(|a| *a == "Login")
        .count();
    assert_eq!(logins, 2);
}

#[tokio::test]
async fn an_unreachable_pbx_is_reported_and_retried() {
    // A port nothing listens on.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    drop(l);
    let mut rx = spawn(ami_connector(addr), Duration::from_millis(20));
    let l = wait_for(&mut rx, "the failure", |l| l.last_error.is_some()).await;
    assert!(!l.connected);
    assert_eq!(l.rereads, 0);
}
