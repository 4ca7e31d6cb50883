#![allow(clippy::unwrap_used, clippy::panic)] // tests fail loudly by design
//! Ring groups on SQLite and PostgreSQL: an extension held like a user's, members that are the
//! tenant's users, a no-answer destination that exists and never loops, refused deletes while
//! something routes to a group, and the group through render and trace.

#[macro_use]
mod harness;

use harness::Harness;
use pbxdesk_core::domain::{RingStrategy, Role};
use pbxdesk_core::model::{
    AuditQuery, NewDid, NewPbx, NewRingGroup, NewTenant, NewUser, RingGroupPatch, TenantPatch,
};
use pbxdesk_core::{Actor, Error, ErrorCode, Workspace};
use pbxdesk_render::trace::HopKind;
use secrecy::SecretString;

async fn setup(ws: &Workspace) -> Actor {
    let me = harness::ws_admin(ws).await;
    ws.pbx_add(&me, &NewPbx::at("pbx1", "10.0.0.5"))
        .await
        .unwrap();
    for (slug, range) in [("acme", "100-199"), ("globex", "200-299")] {
        ws.tenant_create(
            &me,
            &NewTenant {
                name: slug.into(),
                slug: Some(slug.into()),
                pbx: "pbx1".into(),
                ext_range: range.into(),
                country: Some("CH".into()),
            },
        )
        .await
        .unwrap();
    }
    for (name, email) in [
        ("Ann Example", "ann@acme.example"),
        ("Bob Example", "bob@acme.example"),
        ("Cleo Example", "cleo@acme.example"),
    ] {
        ws.user_create(
            &me,
            &NewUser {
                tenant: "acme".into(),
                name: name.into(),
                email: email.into(),
                ..NewUser::default()
            },
        )
        .await
        .unwrap();
    }
    me
}

fn group(name: &str, members: &[u32]) -> NewRingGroup {
    NewRingGroup {
        tenant: "acme".into(),
        name: name.into(),
        members: members.to_vec(),
        ..NewRingGroup::default()
    }
}

fn new_user(name: &str, email: &str, extension: Option<&str>) -> NewUser {
    NewUser {
        tenant: "acme".into(),
        name: name.into(),
        email: email.into(),
        extension: extension.map(str::to_owned),
        ..NewUser::default()
    }
}

async fn a_ring_group_holds_its_extension_and_rings_its_members(h: &Harness) {
    let ws = &h.ws;
    let me = setup(ws).await;
    // Users 100-102; the group gets the lowest free number, and holds it.
    let desk = ws
        .ring_group_create(&me, &group("Front ${EXTEN}; desk", &[100, 101]))
        .await
        .unwrap();
    assert_eq!(desk.extension, 103);
    assert_eq!(desk.strategy, RingStrategy::All);
    assert_eq!(
        desk.members.iter().map(|m| m.extension).collect::<Vec<_>>(),
        [100, 101]
    );
    assert_eq!((desk.member_seconds, desk.total_seconds), (20, 60));
    assert_eq!(desk.no_answer, "hangup");
    let next = ws
        .user_create(&me, &new_user("Dan", "dan@acme.example", None))
        .await
        .unwrap();
    assert_eq!(
        next.extension, 104,
        "the allocator skips the group's number"
    );
    let e = ws
        .user_create(&me, &new_user("Eve", "eve@acme.example", Some("103")))
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::Conflict, "{e}");
    assert!(e.to_string().contains("ring group"), "{e}");
    let e = ws
        .ring_group_create(
            &me,
            &NewRingGroup {
                extension: Some(104),
                ..group("Taken", &[100])
            },
        )
        .await
        .unwrap_err();
    assert!(e.to_string().contains("in use by Dan"), "{e}");

    // Every wrong field at once, nothing written.
    let e = ws
        .ring_group_create(
            &me,
            &NewRingGroup {
                tenant: "acme".into(),
                name: "\n".into(),
                extension: Some(5),
                members: vec![],
                member_seconds: Some(1),
                total_seconds: Some(100_000),
                no_answer: Some("ring_group:1;Hangup".into()),
                strategy: None,
            },
        )
        .await
        .unwrap_err();
    let fields: Vec<String> = e.fields().iter().map(|f| f.field.clone()).collect();
    for f in [
        "name",
        "extension",
        "members",
        "member_seconds",
        "total_seconds",
        "no_answer",
    ] {
        assert!(fields.contains(&f.to_owned()), "{f} not in {fields:?}: {e}");
    }
    for (members, why) in [
        (vec![100, 199], "live users"),
        (vec![100, 100], "once"),
        (vec![100, 205], "live users"),
    ] {
        let e = ws
            .ring_group_create(&me, &group("Bad", &members))
            .await
            .unwrap_err();
        assert_eq!(
            e.fields().first().map(|f| f.field.as_str()),
            Some("members")
        );
        assert!(e.to_string().contains(why), "{members:?}: {e}");
    }
    assert_eq!(ws.ring_group_list(&me, "acme").await.unwrap().len(), 1);

    // A number rings the group; the trace follows it to its members and on.
    ws.did_add(
        &me,
        &NewDid {
            tenant: "acme".into(),
            number: "+41445551200".into(),
            destination: "ring_group:103".into(),
            ..NewDid::default()
        },
    )
    .await
    .unwrap();
    let e = ws
        .did_add(
            &me,
            &NewDid {
                tenant: "acme".into(),
                number: "+41445551201".into(),
                destination: "ring_group:150".into(),
                ..NewDid::default()
            },
        )
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("no ring group with extension 150"),
        "{e}"
    );
    let sales = ws
        .ring_group_create(
            &me,
            &NewRingGroup {
                extension: Some(110),
                strategy: Some(RingStrategy::InOrder),
                member_seconds: Some(15),
                total_seconds: Some(40),
                no_answer: Some("voicemail:102".into()),
                ..group("Sales", &[102, 100])
            },
        )
        .await
        .unwrap();
    ws.ring_group_update(
        &me,
        "acme",
        103,
        &RingGroupPatch {
            no_answer: Some("ring_group:110".into()),
            ..RingGroupPatch::default()
        },
    )
    .await
    .unwrap();
    // A user a group goes on to cannot be deleted from under it.
    let cleo = ws.user_resolve(&me, "acme/102").await.unwrap();
    let e = ws.user_delete(&me, cleo).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::Conflict, "{e}");
    assert!(
        e.to_string()
            .contains("ring group Sales (110) when nobody answers"),
        "{e}"
    );
    let t = ws
        .pbx_trace(&me, "pbx1", "+41445551200", None)
        .await
        .unwrap();
    let kinds: Vec<HopKind> = t.path.iter().map(|h| h.kind.clone()).collect();
    assert_eq!(
        kinds,
        [
            HopKind::Did,
            HopKind::RingGroup,
            HopKind::Devices,
            HopKind::NoAnswer,
            HopKind::RingGroup,
            HopKind::Devices,
            HopKind::NoAnswer,
            HopKind::Voicemail
        ],
        "{t:#?}"
    );
    assert!(t.path[1].detail.contains("all at once"), "{:?}", t.path[1]);
    assert!(t.path[4].title.contains("Sales (110)"));
    assert!(t.path[5]
        .detail
        .contains("102 Cleo Example → 100 Ann Example"));

    // No loop: Sales cannot send its callers back to the front desk that sends them to Sales.
    let e = ws
        .ring_group_update(
            &me,
            "acme",
            110,
            &RingGroupPatch {
                no_answer: Some("ring_group:103".into()),
                ..RingGroupPatch::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(
        e.fields().first().map(|f| f.field.as_str()),
        Some("no_answer")
    );
    assert!(
        e.to_string()
            .contains("ring group 110 → ring group 103 → ring group 110"),
        "{e}"
    );
    let e = ws
        .ring_group_update(
            &me,
            "acme",
            110,
            &RingGroupPatch {
                no_answer: Some("ring_group:110".into()),
                ..RingGroupPatch::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::Validation, "{e}");

    // The render: the group in the users context, the walk of an in-order group, the round
    // robin's AstDB start; the group's name is nowhere in the dialplan.
    ws.ring_group_update(
        &me,
        "acme",
        110,
        &RingGroupPatch {
            strategy: Some(RingStrategy::RoundRobin),
            expected_version: Some(sales.version),
            ..RingGroupPatch::default()
        },
    )
    .await
    .unwrap();
    let r = ws.pbx_render(&me, "pbx1", false).await.unwrap();
    let acme = r
        .files
        .iter()
        .find(|(p, _)| p.ends_with("tenant-acme.conf"))
        .map(|(_, f)| f.clone())
        .unwrap();
    assert!(
        acme.contains("exten => 103,1,Gosub(pbxdesk_group_start,s,1(60))"),
        "{acme}"
    );
    assert!(
        acme.contains("Gosub(pbxdesk_member,s,1(acme/100,PJSIP/acme-100))"),
        "{acme}"
    );
    assert!(
        acme.contains("Gosub(pbxdesk_group_next,s,1(pbxdesk_rg/acme/110,2))"),
        "{acme}"
    );
    assert!(acme.contains("[acme_rg110]"), "{acme}");
    assert!(
        !acme.contains("Front"),
        "a person's text is not written into the dialplan"
    );
    assert!(
        r.findings.iter().all(|f| !f.code.starts_with("ring_group")),
        "{:?}",
        r.findings
    );
    // A stale version is refused.
    let e = ws
        .ring_group_update(
            &me,
            "acme",
            110,
            &RingGroupPatch {
                name: Some("Sales team".into()),
                expected_version: Some(sales.version),
                ..RingGroupPatch::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::Conflict, "{e}");

    // Nothing that still routes to a group lets it go.
    let e = ws.ring_group_delete(&me, "acme", 110).await.unwrap_err();
    assert!(
        e.to_string()
            .contains("ring group Front ${EXTEN}; desk (103) when nobody answers"),
        "{e}"
    );
    ws.tenant_update(
        &me,
        "acme",
        &TenantPatch {
            unknown_did: Some("ring_group:103".into()),
            ..TenantPatch::default()
        },
    )
    .await
    .unwrap();
    let e = ws.ring_group_delete(&me, "acme", 103).await.unwrap_err();
    let said = e.to_string();
    assert!(
        said.contains("+41445551200") && said.contains("unknown numbers"),
        "{said}"
    );

    // A deleted user rings in no group.
    let ann = ws.user_resolve(&me, "acme/100").await.unwrap();
    ws.user_delete(&me, ann).await.unwrap();
    let desk = ws.ring_group_show(&me, "acme", 103).await.unwrap();
    assert_eq!(
        desk.members.iter().map(|m| m.extension).collect::<Vec<_>>(),
        [101]
    );

    // Its number is free again once it is deleted.
    ws.ring_group_update(
        &me,
        "acme",
        103,
        &RingGroupPatch {
            no_answer: Some("hangup".into()),
            ..RingGroupPatch::default()
        },
    )
    .await
    .unwrap();
    ws.ring_group_delete(&me, "acme", 110).await.unwrap();
    let u = ws
        .user_create(&me, &new_user("Fay", "fay@acme.example", Some("110")))
        .await
        .unwrap();
    assert_eq!(u.extension, 110);
    let audit = ws
        .audit_list(
            &me,
            &AuditQuery {
                tenant: Some("acme".into()),
                ..AuditQuery::default()
            },
        )
        .await
        .unwrap();
    for a in [
        "ring_group.create",
        "ring_group.update",
        "ring_group.delete",
    ] {
        assert!(audit.iter().any(|e| e.action == a), "{a} not audited");
    }
}

/// Another tenant's operator learns nothing of a group: "not found", as for a missing one.
async fn a_tenant_admin_sees_only_its_own_ring_groups(h: &Harness) {
    let ws = &h.ws;
    let me = setup(ws).await;
    ws.ring_group_create(&me, &group("Desk", &[100]))
        .await
        .unwrap();
    // The range cannot shrink past a group (users 100-102, the group 103).
    let e = ws
        .tenant_update(
            &me,
            "acme",
            &TenantPatch {
                ext_range: Some("100-102".into()),
                ..TenantPatch::default()
            },
        )
        .await
        .unwrap_err();
    assert!(e.to_string().contains("1 user(s) or ring group(s)"), "{e}");
    let pw = SecretString::from("tenant admin pw 123");
    ws.operator_add(
        Some(&me),
        "ta",
        Role::TenantAdmin,
        &["globex".to_owned()],
        &pw,
    )
    .await
    .unwrap();
    let ta = ws.login("ta", &pw).await.unwrap();
    let missing = ws.ring_group_list(&ta, "nosuch").await.unwrap_err();
    let hidden = ws.ring_group_list(&ta, "acme").await.unwrap_err();
    assert_eq!(hidden.code(), ErrorCode::NotFound);
    assert_eq!(
        hidden.to_string().replace("acme", "X"),
        missing.to_string().replace("nosuch", "X")
    );
    assert!(matches!(
        ws.ring_group_show(&ta, "acme", 103).await.unwrap_err(),
        Error::NotFound { .. }
    ));
    assert!(ws
        .ring_group_create(&ta, &group("Mine", &[100]))
        .await
        .is_err());
    assert!(ws.ring_group_list(&ta, "globex").await.unwrap().is_empty());
}

/// Users and groups made at once, on two connections each, never share an extension.
async fn users_and_groups_made_at_once_get_distinct_extensions(h: &Harness) {
    let ws = &h.ws;
    let me = setup(ws).await;
    let mut jobs = Vec::new();
    for i in 0..6 {
        let (ws, me) = (ws.clone(), me.clone());
        jobs.push(tokio::spawn(async move {
            if i % 2 == 0 {
                ws.ring_group_create(&me, &group(&format!("Group {i}"), &[100]))
                    .await
                    .map(|g| g.extension)
            } else {
                ws.user_create(
                    &me,
                    &new_user(
                        &format!("Racer {i}"),
                        &format!("racer{i}@acme.example"),
                        None,
                    ),
                )
                .await
                .map(|u| u.extension)
            }
        }));
    }
    let mut got = Vec::new();
    for j in jobs {
        got.push(j.await.unwrap().unwrap());
    }
    got.sort_unstable();
    assert_eq!(got, [103, 104, 105, 106, 107, 108], "{got:?}");
}

on_both_stores!(
    a_ring_group_holds_its_extension_and_rings_its_members,
    a_tenant_admin_sees_only_its_own_ring_groups,
    users_and_groups_made_at_once_get_distinct_extensions
);
