//! Watching a live PBX end to end: the profile's SSH tunnel to a real OpenSSH server on
//! loopback, and through it the AMI double (answering the lists with the s10, s17 and s11
//! captures, then sending s9's captured events). Asterisk cannot run here; the double replays
//! its bytes.

#![allow(clippy::unwrap_used, clippy::panic)] // tests fail loudly by design

mod harness;

use pbxdesk_core::domain::{Role, SshAuth};
use pbxdesk_core::model::{NewPbx, NewTenant, NewUser, PbxPatch};
use pbxdesk_core::ErrorCode;
use pbxdesk_remote::live::{ContactState, DeviceState};
use pbxdesk_remote::testkit::{captured_events, start_ami, whoami, Behaviour, Sshd};
use secrecy::SecretString;
use std::time::Duration;

/// A PBX profile reaching the AMI double through the test sshd's tunnel.
fn through(sshd: &Sshd, name: &str, ami_port: u16) -> NewPbx {
    NewPbx {
        name: name.into(),
        profile: PbxPatch {
            host: Some("127.0.0.1".into()),
            ssh_port: Some(sshd.port),
            ssh_user: Some(whoami()),
            ssh_auth: Some(SshAuth::Key),
            ssh_key_path: Some(sshd.key_path("user_key").display().to_string()),
            ami_port: Some(ami_port),
            ami_user: Some("pbx".into()),
            ami_secret: Some("pbx-secret-1".into()),
            ..Default::default()
        },
    }
}

/// A tenant on a PBX, by slug and extension range.
async fn tenant(
    ws: &pbxdesk_core::Workspace,
    me: &pbxdesk_core::Actor,
    slug: &str,
    pbx: &str,
    range: &str,
) {
    ws.tenant_create(
        me,
        &NewTenant {
            name: slug.into(),
            slug: Some(slug.into()),
            pbx: pbx.into(),
            ext_range: range.into(),
            country: None,
        },
    )
    .await
    .unwrap();
}

/// acme's Ada at 1001: her device is the one the captures call acme-1001 (s10 registered, s13
/// in a call).
async fn ada(ws: &pbxdesk_core::Workspace, me: &pbxdesk_core::Actor) -> pbxdesk_core::model::User {
    ws.user_create(
        me,
        &NewUser {
            tenant: "acme".into(),
            name: "Ada".into(),
            email: "ada@acme.example".into(),
            extension: Some("1001".into()),
            ..Default::default()
        },
    )
    .await
    .unwrap()
}

/// The view's state once connected (within 15 s).
async fn connected(
    rx: &mut tokio::sync::watch::Receiver<pbxdesk_remote::watch::Live>,
) -> pbxdesk_remote::watch::Live {
    tokio::time::timeout(Duration::from_secs(15), rx.wait_for(|l| l.connected))
        .await
        .unwrap()
        .unwrap()
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pbx_is_watched_through_its_tunnel() {
    let h = harness::Harness::sqlite().await;
    let ws = &h.ws;
    let me = ws.local_owner().unwrap();
    let sshd = Sshd::start();
    let (events, _) = tokio::sync::broadcast::channel(16);
    let (ami_addr, _) = start_ami(Behaviour {
        sessions: vec!["s10", "s17", "s11"],
        events: Some(events.clone()),
        ..Default::default()
    })
    .await;
    let ami_port: u16 = ami_addr.rsplit_once(':').unwrap().1.parse().unwrap();
    ws.pbx_add(&me, &through(&sshd, "pbx1", ami_port))
        .await
        .unwrap();

    // Nothing is contacted with an untrusted host key.
    let e = ws.pbx_watch(&me, "pbx1").await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::Refused, "{e}");
    ws.pbx_trust(&me, "pbx1", &sshd.fingerprint())
        .await
        .unwrap();

    let mut rx = ws.pbx_watch(&me, "pbx1").await.unwrap();
    let wait = |rx: &mut tokio::sync::watch::Receiver<pbxdesk_remote::watch::Live>,
                ok: fn(&pbxdesk_remote::watch::Live) -> bool| {
        let mut rx = rx.clone();
        async move {
            tokio::time::timeout(Duration::from_secs(15), async {
                rx.wait_for(ok).await.map(|l| l.clone()).unwrap()
            })
            .await
            .unwrap_or_else(|_| panic!("not within 15 s: {:?}", *rx.borrow()))
        }
    };
    let l = wait(&mut rx, |l| l.connected).await;
    assert!(l.state.endpoints["acme-1001"].registered());
    assert_eq!(l.state.registrations["trunk-ok"].status, "Registered");

    // s9's events through the tunnel: the phone ends killed.
    events
        .send(captured_events(
            "s9_events_phone_lifecycle.received_stream.raw",
        ))
        .unwrap();
    let l = wait(&mut rx, |l| {
        l.state.endpoints.get("acme-1000").is_some_and(|e| {
            e.device_state == Some(DeviceState::Unavailable)
                && e.contacts
                    .first()
                    .is_some_and(|c| c.state == ContactState::Unreachable && c.user_agent.is_some())
        }) && l.events > 20
    })
    .await;
    assert!(!l.state.endpoints["acme-1000"].registered());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_admin_sees_only_its_own_devices_and_calls() {
    let h = harness::Harness::sqlite().await;
    let ws = &h.ws;
    let me = ws.local_owner().unwrap();
    let sshd = Sshd::start();
    let (ami_addr, _) = start_ami(Behaviour {
        sessions: vec!["s10", "s17", "s13"],
        ..Default::default()
    })
    .await;
    let ami_port: u16 = ami_addr.rsplit_once(':').unwrap().1.parse().unwrap();
    for name in ["pbx1", "pbx2"] {
        ws.pbx_add(&me, &through(&sshd, name, ami_port))
            .await
            .unwrap();
        ws.pbx_trust(&me, name, &sshd.fingerprint()).await.unwrap();
    }
    for (slug, pbx, range) in [
        ("acme", "pbx1", "1000-1099"),
        ("globex", "pbx1", "2000-2099"),
        ("initech", "pbx2", "100-199"),
    ] {
        tenant(ws, &me, slug, pbx, range).await;
    }
    let u = ada(ws, &me).await;
    let devices: Vec<String> = u.devices.iter().map(|d| d.sip_username.clone()).collect();
    assert_eq!(
        devices,
        ["acme-1001"],
        "the first device is named tenant-extension"
    );
    let mut admins = Vec::new();
    for (name, tenant) in [
        ("acme-admin", "acme"),
        ("globex-admin", "globex"),
        ("initech-admin", "initech"),
    ] {
        let pw = SecretString::from(format!("{name} password 1"));
        ws.operator_add(Some(&me), name, Role::TenantAdmin, &[tenant.into()], &pw)
            .await
            .unwrap();
        admins.push(ws.login(name, &pw).await.unwrap());
    }
    let [acme, globex, initech] = <[_; 3]>::try_from(admins).unwrap();
    let all = connected(&mut ws.pbx_watch(&me, "pbx1").await.unwrap()).await;
    assert!(
        all.state.endpoints.len() > 1,
        "{:?}",
        all.state.endpoints.keys()
    );
    let l = connected(&mut ws.pbx_watch(&acme, "pbx1").await.unwrap()).await;
    assert_eq!(l.state.endpoints.keys().collect::<Vec<_>>(), ["acme-1001"]);
    assert!(l.state.endpoints["acme-1001"].registered());
    assert!(l.state.registrations.is_empty(), "no trunk of its own");
    assert!(l.state.health.realtime_db.is_none());
    // The other tenant on the same PBX sees none of it.
    let l = connected(&mut ws.pbx_watch(&globex, "pbx1").await.unwrap()).await;
    assert!(
        l.state.endpoints.is_empty() && l.state.channels.is_empty(),
        "{:?}",
        l.state
    );
    // A PBX none of its tenants is on does not exist for it.
    let e = ws.pbx_watch(&initech, "pbx1").await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::NotFound, "{e}");
}

/// However many views look at a PBX, one watcher (one AMI login) serves them; a tenant's view
/// holds only its devices, whoever asks; the watcher stops with the last view.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_watcher_serves_every_view_and_stops_with_the_last() {
    let h = harness::Harness::sqlite().await;
    let ws = &h.ws;
    let me = ws.local_owner().unwrap();
    let sshd = Sshd::start();
    let (ami_addr, seen) = start_ami(Behaviour {
        sessions: vec!["s10", "s17", "s11"],
        ..Default::default()
    })
    .await;
    let ami_port: u16 = ami_addr.rsplit_once(':').unwrap().1.parse().unwrap();
    ws.pbx_add(&me, &through(&sshd, "pbx1", ami_port))
        .await
        .unwrap();
    ws.pbx_trust(&me, "pbx1", &sshd.fingerprint())
        .await
        .unwrap();
    tenant(ws, &me, "acme", "pbx1", "1000-1099").await;
    ada(ws, &me).await;
    let logins = || {
        seen.lock()
            .unwrap()
            .iter()
            .filter(|a| *a == "Login")
            .count()
    };
    let mut whole = ws.pbx_watch(&me, "pbx1").await.unwrap();
    let mut acme_view = ws.tenant_watch(&me, "acme").await.unwrap();
    let all = connected(&mut whole).await;
    let mine = connected(&mut acme_view).await;
    assert_eq!(logins(), 1, "both views share one connection");
    assert!(all.state.endpoints.len() > 1);
    assert_eq!(
        mine.state.endpoints.keys().collect::<Vec<_>>(),
        ["acme-1001"],
        "the tenant's view holds its device only"
    );
    assert!(mine.state.endpoints["acme-1001"].registered());
    // An unknown tenant is not found, before anything is contacted.
    let e = ws.tenant_watch(&me, "nobody").await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::NotFound, "{e}");

    drop(whole);
    drop(acme_view);
    // The watcher's connection ends with its last view: the next view logs in anew.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut again = ws.pbx_watch(&me, "pbx1").await.unwrap();
    connected(&mut again).await;
    assert_eq!(logins(), 2, "a new watcher after the last view was dropped");
    // A profile changed while a view is open: the next view watches it as it is now (the open
    // one keeps its own connection until it ends).
    ws.pbx_update(
        &me,
        "pbx1",
        &PbxPatch {
            command_timeout_ms: Some(9000),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let mut fresh = ws.pbx_watch(&me, "pbx1").await.unwrap();
    connected(&mut fresh).await;
    assert_eq!(logins(), 3, "the changed profile gets a watcher of its own");
    assert!(again.borrow().connected, "the open view still runs");
}
