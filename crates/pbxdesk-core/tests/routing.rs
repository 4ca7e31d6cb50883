#![allow(clippy::unwrap_used, clippy::panic)]
//! Call routing in the workspace, on SQLite and PostgreSQL: trunks, policies, tenant defaults,
//! a user's class of service, and the offline render, diff and trace built from them.

#[macro_use]
mod harness;

use harness::Harness;
use pbxdesk_core::domain::Role;
use pbxdesk_core::model::{
    AuditQuery, NewDid, NewPbx, NewPolicy, NewTenant, NewTrunk, NewUser, TenantPatch, TrunkPatch,
    UserPatch,
};
use pbxdesk_core::service::parse_rule;
use pbxdesk_core::{Actor, ErrorCode, Workspace};
use pbxdesk_render::trace::HopKind;
use secrecy::SecretString;

async fn admin(ws: &Workspace) -> Actor {
    if let Ok(a) = ws.local_owner() {
        return a;
    }
    let pw = SecretString::from("admin password 123");
    ws.operator_add(None, "admin", Role::MspAdmin, &[], &pw)
        .await
        .unwrap();
    ws.login("admin", &pw).await.unwrap()
}

async fn setup(ws: &Workspace) -> Actor {
    let me = admin(ws).await;
    ws.pbx_add(&me, &NewPbx::at("pbx1", "10.0.0.5"))
        .await
        .unwrap();
    for (slug, range, country) in [("acme", "100-199", "CH"), ("globex", "200-299", "DE")] {
        ws.tenant_create(
            &me,
            &NewTenant {
                name: slug.into(),
                slug: Some(slug.into()),
                pbx: "pbx1".into(),
                ext_range: range.into(),
                country: Some(country.into()),
            },
        )
        .await
        .unwrap();
    }
    for (name, email) in [
        ("Ann Example", "ann@acme.example"),
        ("Bob Example", "bob@acme.example"),
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

fn sipcall() -> NewTrunk {
    NewTrunk {
        pbx: "pbx1".into(),
        name: "sipcall".into(),
        host: "sip.sipcall.example".into(),
        register: true,
        username: Some("acme-main".into()),
        password: Some("Trunk-Secret-42".into()),
        tenants: vec!["acme".into()],
        ..NewTrunk::default()
    }
}

async fn routing_is_configured_rendered_diffed_and_traced(h: &Harness) {
    let ws = &h.ws;
    let me = setup(ws).await;

    // Trunks: a password pjsip.conf could not hold is refused, never echoed.
    let mut bad = sipcall();
    bad.password = Some("pw;--x".into());
    let e = ws.trunk_add(&me, &bad).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::Validation);
    assert!(!e.to_string().contains("pw;--x"));
    let mut bad = sipcall();
    bad.tenants = vec!["nope".into()];
    assert_eq!(
        ws.trunk_add(&me, &bad).await.unwrap_err().code(),
        ErrorCode::Validation
    );
    let mut bad = sipcall();
    bad.password = None;
    assert_eq!(
        ws.trunk_add(&me, &bad).await.unwrap_err().code(),
        ErrorCode::Validation,
        "registering needs credentials"
    );
    let k = ws.trunk_add(&me, &sipcall()).await.unwrap();
    assert!(k.password_set && k.enabled);
    assert_eq!(k.tenants, ["acme"]);
    assert_eq!(
        ws.trunk_add(&me, &sipcall()).await.unwrap_err().code(),
        ErrorCode::Conflict
    );

    // Policies: rules checked, trunks must exist.
    let rules = vec![
        parse_rule("_0[1-9]X. allow strip=1 prepend=+41 trunks=sipcall").unwrap(),
        parse_rule("_00X. deny").unwrap(),
        parse_rule("_+X. allow trunks=sipcall").unwrap(),
    ];
    let e = ws
        .policy_add(
            &me,
            &NewPolicy {
                tenant: "acme".into(),
                name: "default".into(),
                rules: vec![parse_rule("_0X. allow trunks=ghost").unwrap()],
                make_default: true,
            },
        )
        .await
        .unwrap_err();
    assert!(e.to_string().contains("rules[1].trunks"), "{e}");
    let p = ws
        .policy_add(
            &me,
            &NewPolicy {
                tenant: "acme".into(),
                name: "default".into(),
                rules: rules.clone(),
                make_default: true,
            },
        )
        .await
        .unwrap();
    assert!(p.is_default);
    assert_eq!(p.rules, rules);
    let mut intl = rules.clone();
    intl[1] = parse_rule("_00X. allow strip=2 prepend=+ trunks=sipcall").unwrap();
    ws.policy_add(
        &me,
        &NewPolicy {
            tenant: "acme".into(),
            name: "intl".into(),
            rules: intl,
            make_default: false,
        },
    )
    .await
    .unwrap();

    // Tenant defaults.
    let e = ws
        .tenant_update(
            &me,
            "acme",
            &TenantPatch {
                default_policy: Some("nope".into()),
                ..TenantPatch::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::Validation);
    let e = ws
        .tenant_update(
            &me,
            "acme",
            &TenantPatch {
                unknown_did: Some("user:199".into()),
                ..TenantPatch::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::Validation);
    let t = ws
        .tenant_update(
            &me,
            "acme",
            &TenantPatch {
                caller_id: Some("+41 44 555 00 00".into()),
                unknown_did: Some("user:100".into()),
                ..TenantPatch::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (
            t.caller_id.as_deref(),
            t.unknown_did.as_str(),
            t.default_policy.as_deref(),
            t.country.as_str()
        ),
        (Some("+41445550000"), "user:100", Some("default"), "CH")
    );

    // A user's class of service and ring time.
    let bob = ws.user_resolve(&me, "acme/101").await.unwrap();
    let e = ws
        .user_update(
            &me,
            bob,
            &UserPatch {
                ring_seconds: Some(2),
                ..UserPatch::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::Validation);
    let e = ws
        .user_update(
            &me,
            bob,
            &UserPatch {
                policy: Some("vip".into()),
                ..UserPatch::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::Validation);
    let u = ws
        .user_update(
            &me,
            bob,
            &UserPatch {
                ring_seconds: Some(40),
                policy: Some("intl".into()),
                ..UserPatch::default()
            },
        )
        .await
        .unwrap();
    assert_eq!((u.ring_seconds, u.policy.as_deref()), (40, Some("intl")));

    // A national number is read with the tenant's country.
    let d = ws
        .did_add(
            &me,
            &NewDid {
                tenant: "acme".into(),
                number: "044 555 12 00".into(),
                country: None,
                label: None,
                destination: "user:100".into(),
                trunk: Some("sipcall".into()),
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (d.number.as_str(), d.trunk.as_deref()),
        ("+41445551200", Some("sipcall"))
    );
    let e = ws
        .did_add(
            &me,
            &NewDid {
                tenant: "acme".into(),
                number: "+41445551201".into(),
                destination: "hangup".into(),
                trunk: Some("ghost".into()),
                ..NewDid::default()
            },
        )
        .await
        .unwrap_err();
    assert!(e.to_string().contains("trunk"), "{e}");

    // Render, offline; secrets masked unless asked for.
    let r = ws.pbx_render(&me, "pbx1", false).await.unwrap();
    assert!(r
        .files
        .contains_key("extensions.d/pbxdesk/tenant-acme.conf"));
    assert!(r.files["extensions.d/pbxdesk/tenant-acme.conf"].contains("acme_cos_intl"));
    assert!(r.files["pjsip.d/pbxdesk/trunk-sipcall.conf"].contains("password = ********"));
    let json = serde_json::to_string(&r).unwrap();
    assert!(!json.contains("Trunk-Secret-42"));
    let ann = ws
        .user_show(&me, ws.user_resolve(&me, "acme/100").await.unwrap())
        .await
        .unwrap();
    let pw = ws
        .device_reveal(&me, ann.devices[0].id)
        .await
        .unwrap()
        .sip_password;
    assert!(!json.contains(&pw), "a SIP password in a masked render");
    assert!(
        !r.findings
            .iter()
            .any(|f| f.is_error() && f.entity.contains("acme")),
        "{:?}",
        r.findings
    );
    let full = ws.pbx_render(&me, "pbx1", true).await.unwrap();
    assert!(full.realtime.iter().any(|e| e.password == pw));
    // Revealing every secret of the PBX is audited, as `device reveal` is; a masked render
    // is not.
    let reveals: Vec<_> = ws
        .audit_list(&me, &AuditQuery::default())
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.action == "pbx.render_with_secrets")
        .collect();
    assert_eq!(reveals.len(), 1, "{reveals:?}");
    assert_eq!(reveals[0].entity_id, "pbx1");
    assert_eq!(reveals[0].actor, me.name());
    let bob_row = full
        .realtime
        .iter()
        .find(|e| e.set_var == "PBXDESK_EXT=101")
        .unwrap();
    assert_eq!(bob_row.context, "acme_cos_intl");
    // globex has no trunk: its emergency numbers have no route, an error that blocks an apply.
    assert!(full
        .findings
        .iter()
        .any(|f| f.code == "emergency.no_route" && f.entity.contains("globex")));

    // Diff: everything is new, then nothing once applied, then only what changed.
    let d0 = ws.pbx_diff(&me, "pbx1").await.unwrap();
    assert_eq!(d0.last_applied_at, None);
    assert_eq!(d0.diff.rows_added.len(), full.realtime.len());
    ws.pbx_mark_applied(&me, "pbx1", &full).await.unwrap();
    let d1 = ws.pbx_diff(&me, "pbx1").await.unwrap();
    assert!(d1.diff.is_empty(), "{:?}", d1.diff);
    assert_eq!(d1.last_applied_by.as_deref(), Some(me.name()));
    ws.user_update(
        &me,
        bob,
        &UserPatch {
            name: Some("Robert Example".into()),
            ..UserPatch::default()
        },
    )
    .await
    .unwrap();
    ws.trunk_update(
        &me,
        "pbx1",
        "sipcall",
        &TrunkPatch {
            password: Some("Another-Secret-7".into()),
            ..TrunkPatch::default()
        },
    )
    .await
    .unwrap();
    let d2 = ws.pbx_diff(&me, "pbx1").await.unwrap();
    let text = serde_json::to_string(&d2).unwrap();
    assert!(!text.contains("Another-Secret-7") && !text.contains("Trunk-Secret-42"));
    assert!(d2
        .diff
        .secrets_changed
        .iter()
        .any(|s| s.starts_with("trunk password")));
    assert_eq!(d2.diff.rows_changed.len(), bob_devices(&full));
    assert!(d2
        .diff
        .rows_changed
        .iter()
        .all(|r| r.columns == ["callerid"]));

    // Trace, from the same model.
    let t = ws
        .pbx_trace(&me, "pbx1", "+41445551200", None)
        .await
        .unwrap();
    assert_eq!(t.path[1].kind, HopKind::User);
    assert!(t.path[2].detail.contains(&ann.devices[0].sip_username));
    let t = ws
        .pbx_trace(&me, "pbx1", "0445551234", Some("101"))
        .await
        .unwrap();
    assert!(t.path[1].title.contains("rule 1") && t.path[1].detail.contains("+41445551234"));
    let t = ws
        .pbx_trace(&me, "pbx1", "0049301234", Some("acme/101"))
        .await
        .unwrap();
    assert!(
        t.path[1].detail.contains("+49301234"),
        "Bob's own policy allows it: {:?}",
        t.path
    );
    let t = ws
        .pbx_trace(&me, "pbx1", "0049301234", Some("acme/100"))
        .await
        .unwrap();
    assert_eq!(t.path.last().unwrap().kind, HopKind::Denied);
    let t = ws.pbx_trace(&me, "pbx1", "112", Some("100")).await.unwrap();
    assert_eq!(t.path[1].kind, HopKind::Emergency);
    assert_eq!(
        ws.pbx_trace(&me, "pbx1", "12;3", Some("100"))
            .await
            .unwrap_err()
            .code(),
        ErrorCode::Validation
    );
    assert_eq!(
        ws.pbx_trace(&me, "pbx1", "+41", None)
            .await
            .unwrap_err()
            .code(),
        ErrorCode::Validation
    );

    // What is in use cannot be removed.
    assert_eq!(
        ws.trunk_remove(&me, "pbx1", "sipcall")
            .await
            .unwrap_err()
            .code(),
        ErrorCode::Conflict
    );
    assert_eq!(
        ws.policy_remove(&me, "acme", "default")
            .await
            .unwrap_err()
            .code(),
        ErrorCode::Conflict
    );
    assert_eq!(
        ws.policy_remove(&me, "acme", "intl")
            .await
            .unwrap_err()
            .code(),
        ErrorCode::Conflict
    );

    // Audited, without secrets.
    let audit = ws.audit_list(&me, &AuditQuery::default()).await.unwrap();
    let actions: Vec<&str> = audit.iter().map(|e| e.action.as_str()).collect();
    for a in ["trunk.add", "trunk.update", "policy.add"] {
        assert!(actions.contains(&a), "{a}: {actions:?}");
    }
    let all = serde_json::to_string(
        &audit
            .iter()
            .map(|e| (&e.before, &e.after))
            .collect::<Vec<_>>(),
    )
    .unwrap();
    assert!(!all.contains("Trunk-Secret-42") && !all.contains("Another-Secret-7"));
}

fn bob_devices(r: &pbxdesk_render::Rendered) -> usize {
    r.realtime
        .iter()
        .filter(|e| e.set_var == "PBXDESK_EXT=101")
        .count()
}

async fn a_tenant_admin_cannot_render_the_whole_pbx(h: &Harness) {
    let ws = &h.ws;
    let me = setup(ws).await;
    let pw = SecretString::from("tenant admin password 1");
    ws.operator_add(
        Some(&me),
        "ta",
        Role::TenantAdmin,
        &["acme".to_owned()],
        &pw,
    )
    .await
    .unwrap();
    let ta = ws.login("ta", &pw).await.unwrap();
    assert_eq!(
        ws.pbx_render(&ta, "pbx1", false).await.unwrap_err().code(),
        ErrorCode::Forbidden
    );
    assert_eq!(
        ws.trunk_add(&ta, &sipcall()).await.unwrap_err().code(),
        ErrorCode::Forbidden
    );
    // `pbx check` runs with the MSP's SSH, AMI and database credentials: MSP roles only.
    assert_eq!(
        ws.pbx_check(&ta, "pbx1").await.unwrap_err().code(),
        ErrorCode::Forbidden
    );
    let apw = SecretString::from("auditor password 1");
    ws.operator_add(Some(&me), "au", Role::Auditor, &[], &apw)
        .await
        .unwrap();
    let au = ws.login("au", &apw).await.unwrap();
    assert_eq!(
        ws.pbx_check(&au, "pbx1").await.unwrap_err().code(),
        ErrorCode::Forbidden
    );
    assert_eq!(
        ws.pbx_render(&au, "pbx1", true).await.unwrap_err().code(),
        ErrorCode::Forbidden,
        "an auditor may not reveal secrets"
    );

    // Trunks: one for acme and globex, one for globex alone.
    let mut shared = sipcall();
    shared.tenants = vec!["acme".into(), "globex".into()];
    ws.trunk_add(&me, &shared).await.unwrap();
    let mut theirs = sipcall();
    theirs.name = "globex-line".into();
    theirs.username = Some("globex-account".into());
    theirs.tenants = vec!["globex".into()];
    ws.trunk_add(&me, &theirs).await.unwrap();
    // The tenant_admin sees only the trunk acme may use, with acme alone and no provider account.
    let seen = ws.trunk_list(&ta, Some("pbx1")).await.unwrap();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].tenants, ["acme"]);
    assert_eq!(seen[0].username, None);
    let text = format!("{seen:?}");
    assert!(!text.contains("globex"), "{text}");
    assert_eq!(
        ws.trunk_show(&ta, "pbx1", "globex-line")
            .await
            .unwrap_err()
            .code(),
        ErrorCode::NotFound
    );
    // Naming a trunk acme may not use (it would put an error into the whole PBX's render and
    // block every tenant's apply) is refused at input, worded as for a trunk that does not exist.
    let policy = |trunk: &str| NewPolicy {
        tenant: "acme".into(),
        name: "p".into(),
        rules: vec![parse_rule(&format!("_0X. allow trunks={trunk}")).unwrap()],
        make_default: false,
    };
    let theirs_err = ws
        .policy_add(&ta, &policy("globex-line"))
        .await
        .unwrap_err();
    let ghost_err = ws.policy_add(&ta, &policy("ghost-line")).await.unwrap_err();
    assert_eq!(theirs_err.code(), ErrorCode::Validation, "{theirs_err}");
    assert!(
        theirs_err.to_string().contains("rules[1].trunks"),
        "{theirs_err}"
    );
    assert_eq!(
        theirs_err.to_string().replace("globex-line", "X"),
        ghost_err.to_string().replace("ghost-line", "X")
    );
    ws.policy_add(&ta, &policy("sipcall")).await.unwrap();
    let did = |trunk: &str| NewDid {
        tenant: "acme".into(),
        number: "+41445550123".into(),
        country: None,
        label: None,
        destination: "hangup".into(),
        trunk: Some(trunk.into()),
    };
    let e = ws.did_add(&ta, &did("globex-line")).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::Validation, "{e}");
    ws.did_add(&ta, &did("sipcall")).await.unwrap();
}

/// A render without secrets opens none, and is what the render with secrets is once masked:
/// every file and realtime row, and the same findings (the demo has PINs, SIP passwords and a
/// trunk password).
async fn a_masked_render_is_the_open_render_masked(h: &Harness) {
    let ws = &h.ws;
    let me = admin(ws).await;
    pbxdesk_core::demo::seed(ws, &me).await.unwrap();
    let open = ws.pbx_render(&me, "demo-pbx", true).await.unwrap();
    let shown = ws.pbx_render(&me, "demo-pbx", false).await.unwrap();
    assert!(open.files.values().any(|f| f.contains("password = ")));
    assert!(!open.realtime.is_empty());
    let masked = pbxdesk_core::service::masked(open);
    assert_eq!(shown.files, masked.files);
    assert_eq!(shown.realtime, masked.realtime);
    assert_eq!(shown.findings, masked.findings);
}

on_both_stores!(
    routing_is_configured_rendered_diffed_and_traced,
    a_tenant_admin_cannot_render_the_whole_pbx,
    a_masked_render_is_the_open_render_masked
);
