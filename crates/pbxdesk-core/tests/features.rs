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

/// The double's AMI port, and a port where nothing listens (the PBX out of reach).
fn ami_ports(pbx: &pbx_double::Pbx) -> (u16, u16) {
    let ami = pbx.ast.addr.rsplit_once(':').unwrap().1.parse().unwrap();
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    (ami, closed)
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
    // …and that a feature code's event would reach pbxdesk: a test UserEvent came back.
    assert!(
        astdb
            .detail
            .contains("events reach pbxdesk (`read = user`)"),
        "{astdb:?}"
    );
    // An AMI user without `read = user`: writes work, the phone's changes would go unseen.
    pbx.ast.set_read_user(false);
    let lines = ws.pbx_check(&me, "demo-pbx").await.unwrap();
    let astdb = lines
        .iter()
        .find(|l| l.item == "AstDB (DND and forwards)")
        .unwrap();
    assert!(
        !astdb.ok
            && astdb.detail.contains("do not reach pbxdesk")
            && astdb.fix.as_deref().unwrap().contains("read = user"),
        "{astdb:?}"
    );
    pbx.ast.set_read_user(true);
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
        .all(|e| e.actor == "phone:acme-dental/100" && e.via.as_deref() == Some("phone")));
    drop(live);

    // Out of reach: kept, shown pending, written by the next apply.
    let (ami_port, closed) = ami_ports(&pbx);
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

/// The line of mailbox `ext` in a tenant's voicemail file on the PBX.
fn mailbox_line(etc: &std::path::Path, tenant: &str, ext: u32) -> String {
    let files = pbx_double::product_files(etc);
    let file = &files[&format!("voicemail.d/pbxdesk/tenant-{tenant}.conf")];
    let start = format!("{ext} => ");
    file.lines()
        .find(|l| l.starts_with(&start))
        .unwrap_or_else(|| panic!("no mailbox {ext} in {file}"))
        .to_owned()
}

/// A voicemail PIN changed by a tenant_admin reaches its mailbox at once, and nothing else of
/// the workspace's unapplied edits goes with it; out of reach it stays pending and goes at the
/// watcher's next connect; an apply settles it too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_voicemail_pin_reaches_its_mailbox_at_once_and_nothing_else_goes_with_it() {
    pin_story(harness::Harness::sqlite().await, "pins").await;
}

/// The same on a team's PostgreSQL workspace (its own queries, the team lock around the push).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_voicemail_pin_reaches_its_mailbox_at_once_on_postgres() {
    pin_story(harness::Harness::postgres().await, "pins_pg").await;
}

async fn pin_story(h: harness::Harness, tag: &str) {
    use pbxdesk_core::domain::Role;
    use secrecy::SecretString;
    let ws = &h.ws;
    // A team workspace has no local owner: its first operator logs in.
    let me = match ws.local_owner() {
        Ok(me) => me,
        Err(_) => {
            let pw = SecretString::from("admin password 123".to_owned());
            ws.operator_add(None, "admin", Role::MspAdmin, &[], &pw)
                .await
                .unwrap();
            ws.login("admin", &pw).await.unwrap()
        }
    };
    let pbx = setup(ws, &me, tag).await;
    let etc = pbx.sshd.etc();
    let rep = ws.pbx_apply(&me, "demo-pbx", &consent()).await.unwrap();
    assert_eq!(rep.outcome, ApplyOutcome::Applied, "{:?}", rep.steps);
    let pw = SecretString::from("acme admin password 1".to_owned());
    ws.operator_add(
        Some(&me),
        "acme-admin",
        Role::TenantAdmin,
        &["acme-dental".into()],
        &pw,
    )
    .await
    .unwrap();
    let admin = ws.login("acme-admin", &pw).await.unwrap();
    // An edit waiting for an apply: Ada's name, which is on her mailbox line too.
    let line = mailbox_line(&etc, "acme-dental", 100);
    pbx_double::rename_ada(ws, &me, "Ada Unapplied", None).await;
    let before = pbx_double::product_files(&etc);
    let reloads = pbx_double::reloads(&pbx.ast);

    let ada = ws.user_resolve(&admin, "acme-dental/100").await.unwrap();
    let pin = |p: &str| UserPatch {
        voicemail_pin: Some(p.into()),
        ..Default::default()
    };
    let u = ws.user_update(&admin, ada, &pin("4321")).await.unwrap();
    assert!(!u.voicemail_pin_pending, "pushed at once");
    let now = mailbox_line(&etc, "acme-dental", 100);
    assert!(now.starts_with("100 => 4321,"), "{now}");
    assert_eq!(
        now.split_once(',').unwrap().1,
        line.split_once(',').unwrap().1,
        "only the PIN changed on the line, the unapplied name stayed behind"
    );
    let after = pbx_double::product_files(&etc);
    let changed: Vec<&String> = after
        .iter()
        .filter(|(k, v)| before.get(*k) != Some(v))
        .map(|(k, _)| k)
        .collect();
    assert_eq!(
        changed,
        ["voicemail.d/pbxdesk/tenant-acme-dental.conf"],
        "one file changed, and only that"
    );
    let reloaded: Vec<String> = pbx
        .ast
        .seen
        .lock()
        .unwrap()
        .iter()
        .filter(|a| a.starts_with("Reload:"))
        .skip(reloads)
        .cloned()
        .collect();
    assert_eq!(
        reloaded,
        ["Reload:app_voicemail"],
        "only voicemail reloaded"
    );
    let audit = ws
        .audit_list(
            &me,
            &AuditQuery {
                limit: Some(20),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let push = audit
        .iter()
        .find(|e| e.action == "pbx.voicemail_pins")
        .unwrap_or_else(|| panic!("the push is audited: {audit:?}"));
    assert_eq!(push.actor, "acme-admin");
    let said = serde_json::to_string(&push.after).unwrap();
    assert!(said.contains("acme-dental/100"), "{said}");
    assert!(
        !said.contains("4321"),
        "the PIN is never in the audit: {said}"
    );
    // Rolling back still means the technician's last apply, not the PIN's push: there was
    // one apply, so there is nothing earlier to go back to.
    let back = ws
        .pbx_apply_with(
            &me,
            "demo-pbx",
            &ApplyOptions {
                dry_run: true,
                ..Default::default()
            },
            pbxdesk_core::service::ApplySource::PreviousApply,
            None,
        )
        .await;
    assert!(
        matches!(
            back,
            Err(pbxdesk_core::Error::Refused(
                pbxdesk_core::error::Refusal::NoEarlierApply { .. }
            ))
        ),
        "{back:?}"
    );

    // Out of reach (AMI): kept, shown pending, the PBX untouched.
    let (ami_port, closed) = ami_ports(&pbx);
    set_ami_port(ws, &me, closed).await;
    let u = ws.user_update(&admin, ada, &pin("9876")).await.unwrap();
    assert!(u.voicemail_pin_pending, "unreachable: pending");
    assert!(
        ws.user_show(&admin, ada)
            .await
            .unwrap()
            .voicemail_pin_pending
    );
    assert!(mailbox_line(&etc, "acme-dental", 100).starts_with("100 => 4321,"));

    // Back: the watcher's connect pushes it, by itself.
    set_ami_port(ws, &me, ami_port).await;
    let live = ws.pbx_watch(&me, "demo-pbx").await.unwrap();
    let t = Instant::now();
    while ws.user_show(&me, ada).await.unwrap().voicemail_pin_pending {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "the pending PIN never went"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let now = mailbox_line(&etc, "acme-dental", 100);
    assert!(
        now.starts_with("100 => 9876,") && !now.contains("Unapplied"),
        "{now}"
    );
    drop(live);

    // Pending again, then a full apply takes it with everything else and settles it.
    set_ami_port(ws, &me, closed).await;
    assert!(
        ws.user_update(&me, ada, &pin("5555"))
            .await
            .unwrap()
            .voicemail_pin_pending
    );
    set_ami_port(ws, &me, ami_port).await;
    let rep = ws.pbx_apply(&me, "demo-pbx", &consent()).await.unwrap();
    assert_eq!(rep.outcome, ApplyOutcome::Applied, "{:?}", rep.steps);
    let now = mailbox_line(&etc, "acme-dental", 100);
    assert!(now.starts_with("100 => 5555,Ada Unapplied,"), "{now}");
    assert!(!ws.user_show(&me, ada).await.unwrap().voicemail_pin_pending);

    // A PIN of a user without voicemail waits for nothing: not pending, nothing pushed.
    let grace = ws.user_resolve(&me, "acme-dental/101").await.unwrap();
    ws.user_update(
        &me,
        grace,
        &UserPatch {
            voicemail_enabled: Some(false),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let before = pbx_double::product_files(&etc);
    let u = ws.user_update(&me, grace, &pin("2468")).await.unwrap();
    assert!(u.voicemail_pin_set && !u.voicemail_pin_pending, "{u:?}");
    assert_eq!(pbx_double::product_files(&etc), before);
}

/// A tenant's view (the users list's dots) takes a device added after it opened once the
/// device is on the PBX: the apply's reload (the double sends s6's `Reload` event) brings a
/// full read, and the view reads its tenant's devices again with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenants_view_takes_a_device_added_after_it_opened() {
    let h = harness::Harness::sqlite().await;
    let (ws, me) = (&h.ws, h.ws.local_owner().unwrap());
    let _pbx = setup(ws, &me, "scope").await;
    let rep = ws.pbx_apply(&me, "demo-pbx", &consent()).await.unwrap();
    assert_eq!(rep.outcome, ApplyOutcome::Applied, "{:?}", rep.steps);
    let mut view = ws.tenant_watch(&me, "acme-dental").await.unwrap();
    view.wait_for(|l| l.connected).await.unwrap();
    let u = ws
        .user_create(
            &me,
            &pbxdesk_core::model::NewUser {
                tenant: "acme-dental".into(),
                name: "Nina Neu".into(),
                email: "nina@acme-dental.example".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let device = u.devices[0].sip_username.clone();
    assert!(!view.borrow().state.endpoints.contains_key(&device));
    let rep = ws.pbx_apply(&me, "demo-pbx", &consent()).await.unwrap();
    assert_eq!(rep.outcome, ApplyOutcome::Applied, "{:?}", rep.steps);
    let came = tokio::time::timeout(
        Duration::from_secs(5),
        view.wait_for(|l| l.state.endpoints.contains_key(&device)),
    )
    .await
    .is_ok();
    assert!(came, "the new device never came into the view");
    // Another tenant's devices stay out of it.
    assert!(view
        .borrow()
        .state
        .endpoints
        .keys()
        .all(|e| !e.starts_with("globex-")));
}
