//! DND and forwards act on the PBX at once, both ways, against a real sshd, the real MariaDB
//! and the Asterisk double (whose AstDB and feature-code dialplan follow s14/s15):
//! set here → in AstDB without an apply; set on the phone (*78/*79) → in the workspace,
//! audited as the phone's; unreachable → pending, then written; a wiped AstDB → the apply
//! writes the workspace's state back.
#![allow(clippy::unwrap_used, clippy::panic)]

mod harness;
mod pbx_double;

use pbx_double::setup;
use pbxdesk_core::model::{AuditQuery, PbxPatch, UserPatch};
use pbxdesk_core::service::{ApplyOptions, ApplyOutcome, StepKind};
use std::time::{Duration, Instant};

/// Points the demo PBX's profile at this AMI port.
async fn set_ami_port(ws: &pbxdesk_core::Workspace, me: &pbxdesk_core::Actor, port: u16) {
    ws.pbx_update(
        me,
        "demo-pbx",
        &PbxPatch {
            ami_port: Some(port),
            ..Default::default()
        },
    )
    .await
    .unwrap();
}

fn consent() -> ApplyOptions {
    ApplyOptions {
        add_includes: true,
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dnd_and_forwards_reach_the_pbx_at_once_and_come_back_from_the_phone() {
    let h = harness::Harness::sqlite().await;
    let (ws, me) = (&h.ws, h.ws.local_owner().unwrap());
    let pbx = setup(ws, &me, "features").await;
    // The check says the AMI user reaches AstDB (the double answers DBGetTree as s14 does).
    let lines = ws.pbx_check(&me, "demo-pbx").await.unwrap();
    let astdb = lines
        .iter()
        .find(|l| l.item == "AstDB (DND and forwards)")
        .unwrap();
    assert!(astdb.ok, "{astdb:?}");
    assert!(astdb.detail.contains("writable"), "{astdb:?}");
    assert!(
        !pbx.ast
            .astdb()
            .keys()
            .any(|k| k.starts_with("pbxdesk-check/")),
        "the write probe leaves nothing behind: {:?}",
        pbx.ast.astdb()
    );
    let rep = ws.pbx_apply(&me, "demo-pbx", &consent()).await.unwrap();
    assert_eq!(rep.outcome, ApplyOutcome::Applied, "{:?}", rep.steps);
    let step = rep
        .steps
        .iter()
        .find(|s| s.kind == StepKind::Features)
        .unwrap();
    assert!(step.ok, "{step:?}");
    // Nothing was on; the first full write leaves the marker.
    assert_eq!(
        pbx.ast.astdb().get("pbxdesk/synced").map(String::as_str),
        Some("1")
    );

    // Set here: in AstDB at once, no apply.
    let ada = ws.user_resolve(&me, "acme-dental/100").await.unwrap();
    let reloads = pbx_double::reloads(&pbx.ast);
    let u = ws
        .user_update(
            &me,
            ada,
            &UserPatch {
                dnd: Some(true),
                forward_busy: Some("+41445551234".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(!u.features_pending, "written, not pending");
    let db = pbx.ast.astdb();
    assert_eq!(
        db.get("pbxdesk/acme-dental/100/dnd").map(String::as_str),
        Some("1")
    );
    assert_eq!(
        db.get("pbxdesk/acme-dental/100/cfb").map(String::as_str),
        Some("+41445551234")
    );
    assert_eq!(
        pbx_double::reloads(&pbx.ast),
        reloads,
        "no reload, no apply"
    );
    // Cleared here: the key goes.
    ws.user_update(
        &me,
        ada,
        &UserPatch {
            forward_busy: Some(String::new()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert!(!pbx.ast.astdb().contains_key("pbxdesk/acme-dental/100/cfb"));

    // Set on the phone while the PBX is watched: *79 (DND off) is read back by its event.
    let mut live = ws.pbx_watch(&me, "demo-pbx").await.unwrap();
    live.wait_for(|l| l.connected).await.unwrap();
    let device = u.devices[0].sip_username.clone();
    // The same connection follows the phone: registered (with the details only the contact
    // list has), silent, gone, each from its events.
    let phone_is =
        |live: &mut tokio::sync::watch::Receiver<pbxdesk_core::service::Live>,
         ok: Box<dyn Fn(&pbxdesk_remote::live::Endpoint) -> bool + Send + Sync>| {
            let (mut live, device) = (live.clone(), device.clone());
            async move {
                let seen = live.clone();
                let came = tokio::time::timeout(
                    Duration::from_secs(5),
                    live.wait_for(|l| l.state.endpoints.get(&device).is_some_and(&ok)),
                )
                .await
                .is_ok();
                assert!(came, "the phone's state never came: {:?}", *seen.borrow());
            }
        };
    assert!(!live.borrow().state.endpoints[&device].registered());
    pbx.ast.register(&device, 5070, "Yealink T54W");
    phone_is(
        &mut live,
        Box::new(|e| {
            e.registered()
                && e.contacts[0].user_agent.as_deref() == Some("Yealink T54W")
                && e.contacts[0].source.as_deref() == Some("127.0.0.1:5070")
        }),
    )
    .await;
    pbx.ast.silence(&device);
    phone_is(
        &mut live,
        Box::new(|e| !e.contacts.is_empty() && !e.registered()),
    )
    .await;
    pbx.ast.unregister(&device);
    phone_is(&mut live, Box::new(|e| e.contacts.is_empty())).await;

    let out = pbx.ast.dial(&device, "*79").await.unwrap();
    assert_eq!(out.user_events.len(), 1, "{:?}", out.trace);
    assert!(!pbx.ast.astdb().contains_key("pbxdesk/acme-dental/100/dnd"));
    let t = Instant::now();
    while ws.user_show(&me, ada).await.unwrap().dnd {
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "the phone's change never came back"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // *72 with a target: the forward is taken too, as the dialplan filtered it.
    pbx.ast.dial(&device, "*720445;551234").await.unwrap();
    let t = Instant::now();
    loop {
        let u = ws.user_show(&me, ada).await.unwrap();
        if u.forward_always.is_some() {
            assert_eq!(u.forward_always.as_deref(), Some("0445551234"));
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "the phone's forward never came back"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let audit = ws
        .audit_list(
            &me,
            &AuditQuery {
                limit: Some(50),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let from_phone: Vec<_> = audit
        .iter()
        .filter(|e| e.action == "user.features_from_phone")
        .collect();
    assert_eq!(from_phone.len(), 2, "{audit:?}");
    assert!(from_phone
        .iter()
        .all(|e| e.actor == "phone:acme-dental/100"));
    drop(live);

    // Out of reach: kept, shown pending, written by the next apply.
    let ami_port = pbx
        .ast
        .addr
        .rsplit_once(':')
        .unwrap()
        .1
        .parse::<u16>()
        .unwrap();
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    set_ami_port(ws, &me, closed).await;
    let u = ws
        .user_update(
            &me,
            ada,
            &UserPatch {
                dnd: Some(true),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(u.features_pending, "unreachable: pending");
    assert!(!pbx.ast.astdb().contains_key("pbxdesk/acme-dental/100/dnd"));
    set_ami_port(ws, &me, ami_port).await;

    // A rebuilt PBX (AstDB empty): the next apply writes the workspace's state back.
    pbx.ast.wipe_astdb();
    pbx_double::rename_ada(ws, &me, "Ada Rebuilt", None).await;
    let rep = ws.pbx_apply(&me, "demo-pbx", &consent()).await.unwrap();
    assert_eq!(rep.outcome, ApplyOutcome::Applied, "{:?}", rep.steps);
    let db = pbx.ast.astdb();
    assert_eq!(
        db.get("pbxdesk/acme-dental/100/dnd").map(String::as_str),
        Some("1")
    );
    assert_eq!(
        db.get("pbxdesk/acme-dental/100/cfu").map(String::as_str),
        Some("0445551234"),
        "the forward the phone set comes back too"
    );
    assert_eq!(db.get("pbxdesk/synced").map(String::as_str), Some("1"));
    assert!(!ws.user_show(&me, ada).await.unwrap().features_pending);
}
