//! The workspace's stories, each run on SQLite and on PostgreSQL.

#![allow(clippy::unwrap_used, clippy::panic)] // tests and benches fail loudly by design

mod harness;

use harness::{ws_admin, Harness};
use pbxdesk_core::domain::{Role, TenantStatus, UserStatus};
use pbxdesk_core::model::{
    AuditQuery, DidPatch, NewDevice, NewDid, NewPbx, NewTenant, NewUser, PbxPatch, TenantPatch,
    UserPatch,
};
use pbxdesk_core::service::KeySource;
use pbxdesk_core::{Actor, ErrorCode, Workspace};
use secrecy::SecretString;
use std::collections::HashSet;
use std::time::Duration;

async fn setup(ws: &Workspace, slugs: &[(&str, &str)]) -> Actor {
    let me = ws_admin(ws).await;
    ws.pbx_add(&me, &NewPbx::at("pbx1", "10.0.0.5"))
        .await
        .expect("pbx");
    for (slug, range) in slugs {
        ws.tenant_create(
            &me,
            &NewTenant {
                name: format!("Tenant {slug}"),
                slug: Some((*slug).into()),
                pbx: "pbx1".into(),
                ext_range: (*range).into(),
                country: None,
            },
        )
        .await
        .expect("tenant");
    }
    me
}

fn new_user(tenant: &str, name: &str, email: &str) -> NewUser {
    NewUser {
        tenant: tenant.into(),
        name: name.into(),
        email: email.into(),
        ..Default::default()
    }
}

async fn user_gets_lowest_free_extension_and_a_device(h: &Harness) {
    let ws = &h.ws;
    let me = setup(ws, &[("acme", "1000-1999")]).await;
    let ann = ws
        .user_create(&me, &new_user("acme", "Ann Example", "ann@acme.example"))
        .await
        .unwrap();
    assert_eq!(ann.extension, 1000);
    assert_eq!(ann.devices.len(), 1);
    assert_eq!(ann.devices[0].sip_username, "acme-1000");
    assert!(ann.voicemail_enabled && ann.voicemail_pin_set);
    let bob = ws
        .user_create(&me, &new_user("acme", "Bob", "bob@acme.example"))
        .await
        .unwrap();
    assert_eq!(bob.extension, 1001);
    // An explicit number leaves a gap; the allocator fills the lowest gap next.
    let mut c = new_user("acme", "Cy", "cy@acme.example");
    c.extension = Some("1005".into());
    assert_eq!(ws.user_create(&me, &c).await.unwrap().extension, 1005);
    let d = ws
        .user_create(&me, &new_user("acme", "Di", "di@acme.example"))
        .await
        .unwrap();
    assert_eq!(d.extension, 1002);
    let listed: Vec<u32> = ws
        .user_list(&me, "acme")
        .await
        .unwrap()
        .iter()
        .map(|u| u.extension)
        .collect();
    assert_eq!(listed, vec![1000, 1001, 1002, 1005]);
    // The same e-mail twice in one tenant is a conflict that says so.
    let e = ws
        .user_create(&me, &new_user("acme", "Dup", "ANN@acme.example"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::Conflict);
    assert!(e.to_string().contains("e-mail"), "{e}");
}

async fn deleted_extension_is_quarantined_then_reused(h: &Harness) {
    let ws = &h.ws;
    let me = setup(ws, &[("acme", "100-199")]).await;
    let a = ws
        .user_create(&me, &new_user("acme", "A", "a@acme.example"))
        .await
        .unwrap();
    let _b = ws
        .user_create(&me, &new_user("acme", "B", "b@acme.example"))
        .await
        .unwrap();
    ws.user_delete(&me, a.id).await.unwrap();
    let c = ws
        .user_create(&me, &new_user("acme", "C", "c@acme.example"))
        .await
        .unwrap();
    assert_eq!(c.extension, 102, "100 is held in quarantine");
    let mut explicit = new_user("acme", "D", "d@acme.example");
    explicit.extension = Some("100".into());
    let err = ws.user_create(&me, &explicit).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::Conflict);
    assert!(err.to_string().contains("quarantine"), "{err}");
    ws.clock().advance(Duration::from_secs(31 * 24 * 3600));
    let d = ws
        .user_create(&me, &new_user("acme", "D", "d@acme.example"))
        .await
        .unwrap();
    assert_eq!(d.extension, 100, "released after 30 days");
    // The same e-mail may come back once its user is deleted.
    assert!(ws
        .user_create(&me, &new_user("acme", "A again", "a@acme.example"))
        .await
        .is_ok());
}

async fn explicit_extension_rules_and_full_range(h: &Harness) {
    let ws = &h.ws;
    let me = setup(ws, &[("tiny", "10-12")]).await;
    let mut out = new_user("tiny", "X", "x@t.example");
    out.extension = Some("13".into());
    let e = ws.user_create(&me, &out).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::Validation);
    assert!(e.to_string().contains("10-12"), "{e}");
    for i in 0..3 {
        ws.user_create(&me, &new_user("tiny", "U", &format!("u{i}@t.example")))
            .await
            .unwrap();
    }
    let mut taken = new_user("tiny", "Y", "y@t.example");
    taken.extension = Some("11".into());
    let e = ws.user_create(&me, &taken).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::Conflict);
    let e = ws
        .user_create(&me, &new_user("tiny", "Z", "z@t.example"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::Conflict);
    let msg = e.to_string();
    assert!(msg.contains("\"tiny\"") && msg.contains("10-12"), "{msg}");
}

async fn fifty_parallel_creates_get_distinct_extensions(h: &Harness) {
    let me = setup(&h.ws, &[("acme", "1000-1999")]).await;
    // A second handle on the same workspace, as another laptop or process would have.
    let other = h.reopen(KeySource::File(h.key_file.clone())).await.unwrap();
    let other_me = ws_admin_again(&other, &me).await;
    let mut tasks = Vec::new();
    for i in 0..50 {
        let (ws, actor) = if i % 2 == 0 {
            (&h.ws, &me)
        } else {
            (&other, &other_me)
        };
        tasks.push(async move {
            ws.user_create(
                actor,
                &new_user("acme", &format!("P{i}"), &format!("p{i}@acme.example")),
            )
            .await
        });
    }
    let results = futures_join_all(tasks).await;
    let exts: HashSet<u32> = results
        .into_iter()
        .map(|r| r.expect("create").extension)
        .collect();
    assert_eq!(exts.len(), 50);
    assert_eq!(*exts.iter().min().unwrap(), 1000);
    assert_eq!(
        *exts.iter().max().unwrap(),
        1049,
        "no gaps: the lowest free each time"
    );
}

async fn ws_admin_again(ws: &Workspace, first: &Actor) -> Actor {
    match ws.local_owner() {
        Ok(a) => a,
        Err(_) => {
            let _ = first;
            ws.login("admin", &SecretString::from("admin password 123"))
                .await
                .unwrap()
        }
    }
}

async fn futures_join_all<F: std::future::Future>(fs: Vec<F>) -> Vec<F::Output> {
    // Runs them concurrently on this task (the store's pool gives real parallelism).
    let mut set = Vec::new();
    for f in fs {
        set.push(Box::pin(f));
    }
    let mut out = Vec::new();
    let joined = join_vec(set).await;
    out.extend(joined);
    out
}

async fn join_vec<F: std::future::Future + Unpin>(mut fs: Vec<F>) -> Vec<F::Output> {
    use std::task::Poll;
    let mut results: Vec<Option<F::Output>> = (0..fs.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in fs.iter_mut().enumerate() {
            if results[i].is_none() {
                match std::pin::Pin::new(f).poll(cx) {
                    Poll::Ready(v) => results[i] = Some(v),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    results.into_iter().map(|r| r.expect("ready")).collect()
}

async fn tenant_admin_is_confined_to_its_tenants(h: &Harness) {
    let ws = &h.ws;
    let me = setup(ws, &[("acme", "100-199"), ("globex", "200-299")]).await;
    let g = ws
        .user_create(&me, &new_user("globex", "G", "g@globex.example"))
        .await
        .unwrap();
    let pw = SecretString::from("tenant admin pass 1");
    if ws.local_owner().is_ok() {
        // Laptop workspace: operators can still be added and log in.
        ws.operator_add(
            Some(&me),
            "acme-admin",
            Role::TenantAdmin,
            &["acme".into()],
            &pw,
        )
        .await
        .unwrap();
    } else {
        ws.operator_add(
            Some(&me),
            "acme-admin",
            Role::TenantAdmin,
            &["acme".into()],
            &pw,
        )
        .await
        .unwrap();
    }
    let ta = ws.login("acme-admin", &pw).await.unwrap();
    // Own tenant: read and write.
    let own = ws
        .user_create(&ta, &new_user("acme", "Own", "own@acme.example"))
        .await
        .unwrap();
    assert_eq!(own.extension, 100);
    let tenants: Vec<String> = ws
        .tenant_list(&ta)
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.slug)
        .collect();
    assert_eq!(tenants, vec!["acme"]);
    // Other tenant: neither read nor change, and not even told it exists: the answer is the
    // "not found" a tenant, user or device that does not exist gets, word for word.
    let forbidden = |r: pbxdesk_core::Error| assert_eq!(r.code(), ErrorCode::Forbidden, "{r}");
    let missing_tenant = ws.tenant_show(&ta, "nosuch").await.unwrap_err().to_string();
    let missing_user = ws.user_show(&ta, 999_999).await.unwrap_err().to_string();
    let hidden = |r: pbxdesk_core::Error, like: &str, key: &str| {
        assert_eq!(r.code(), ErrorCode::NotFound, "{r}");
        assert_eq!(
            r.to_string(),
            like.replace("nosuch", key).replace("999999", key)
        );
    };
    let gid = g.id.to_string();
    let did = g.devices[0].id.to_string();
    let missing_device = ws
        .device_reveal(&ta, 999_999)
        .await
        .unwrap_err()
        .to_string();
    hidden(
        ws.tenant_show(&ta, "globex").await.unwrap_err(),
        &missing_tenant,
        "globex",
    );
    hidden(
        ws.user_list(&ta, "globex").await.unwrap_err(),
        &missing_tenant,
        "globex",
    );
    hidden(
        ws.user_show(&ta, g.id).await.unwrap_err(),
        &missing_user,
        &gid,
    );
    hidden(
        ws.user_create(&ta, &new_user("globex", "X", "x@globex.example"))
            .await
            .unwrap_err(),
        &missing_tenant,
        "globex",
    );
    hidden(
        ws.user_update(
            &ta,
            g.id,
            &UserPatch {
                name: Some("Hacked".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap_err(),
        &missing_user,
        &gid,
    );
    hidden(
        ws.user_delete(&ta, g.id).await.unwrap_err(),
        &missing_user,
        &gid,
    );
    hidden(
        ws.device_reveal(&ta, g.devices[0].id).await.unwrap_err(),
        &missing_device,
        &did,
    );
    hidden(
        ws.device_remove(&ta, g.devices[0].id).await.unwrap_err(),
        &missing_device,
        &did,
    );
    hidden(
        ws.device_add(&ta, g.id, &NewDevice::default())
            .await
            .unwrap_err(),
        &missing_user,
        &gid,
    );
    forbidden(
        ws.tenant_create(
            &ta,
            &NewTenant {
                name: "N".into(),
                slug: None,
                pbx: "pbx1".into(),
                ext_range: "300-399".into(),
                country: None,
            },
        )
        .await
        .unwrap_err(),
    );
    // Another tenant's number: "not found", as a number nobody has; never its tenant's name.
    ws.did_add(
        &me,
        &NewDid {
            tenant: "globex".into(),
            number: "+41445550999".into(),
            country: None,
            label: None,
            destination: "hangup".into(),
            trunk: None,
        },
    )
    .await
    .unwrap();
    let theirs = ws.did_remove(&ta, "+41445550999").await.unwrap_err();
    let nobody = ws.did_remove(&ta, "+41445550998").await.unwrap_err();
    assert_eq!(theirs.code(), ErrorCode::NotFound, "{theirs}");
    assert_eq!(
        theirs.to_string().replace("999", "998"),
        nobody.to_string(),
        "{theirs}"
    );
    assert!(ws
        .did_update(&ta, "+41445550999", &DidPatch::default())
        .await
        .is_err());
    hidden(
        ws.audit_list(
            &ta,
            &AuditQuery {
                tenant: Some("globex".into()),
                limit: None,
            },
        )
        .await
        .unwrap_err(),
        &missing_tenant,
        "globex",
    );
    // Its audit view holds only its tenant's entries.
    let audit = ws.audit_list(&ta, &AuditQuery::default()).await.unwrap();
    assert!(!audit.is_empty());
    let acme_id = ws.tenant_show(&me, "acme").await.unwrap().id;
    assert!(audit.iter().all(|e| e.tenant_id == Some(acme_id)));
    // Globex is untouched.
    assert_eq!(ws.user_show(&me, g.id).await.unwrap().display_name, "G");
    // An auditor reads but never writes or reveals.
    let apw = SecretString::from("auditor password 1");
    ws.operator_add(Some(&me), "audit", Role::Auditor, &[], &apw)
        .await
        .unwrap();
    let au = ws.login("audit", &apw).await.unwrap();
    assert_eq!(ws.user_list(&au, "globex").await.unwrap().len(), 1);
    forbidden(
        ws.user_create(&au, &new_user("acme", "X", "x2@acme.example"))
            .await
            .unwrap_err(),
    );
    forbidden(ws.device_reveal(&au, g.devices[0].id).await.unwrap_err());
    assert_eq!(
        ws.login("audit", &SecretString::from("wrong password!!"))
            .await
            .unwrap_err()
            .code(),
        ErrorCode::Unauthenticated
    );
}

async fn secrets_are_sealed_and_never_in_audit_or_output(h: &Harness) {
    let ws = &h.ws;
    let me = setup(ws, &[("acme", "100-199")]).await;
    let u = ws
        .user_create(&me, &new_user("acme", "Ann", "ann@acme.example"))
        .await
        .unwrap();
    let revealed = ws.device_reveal(&me, u.devices[0].id).await.unwrap();
    let pw = revealed.sip_password.clone();
    assert_eq!(pw.len(), 24);
    let blobs = h.raw_blobs("SELECT sip_password FROM devices").await;
    assert_eq!(blobs.len(), 1);
    assert!(
        !blobs[0].windows(pw.len()).any(|w| w == pw.as_bytes()),
        "stored sealed, not in clear"
    );
    ws.user_update(
        &me,
        u.id,
        &UserPatch {
            voicemail_pin: Some("482916".into()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let json = serde_json::to_string(&ws.user_show(&me, u.id).await.unwrap()).unwrap();
    assert!(!json.contains(&pw) && !json.contains("482916"));
    let audit = ws
        .audit_list(
            &me,
            &AuditQuery {
                tenant: None,
                limit: Some(1000),
            },
        )
        .await
        .unwrap();
    let audit_json = serde_json::to_string(&audit).unwrap();
    assert!(
        !audit_json.contains(&pw) && !audit_json.contains("482916"),
        "audit holds no secret"
    );
    let actions: Vec<&str> = audit.iter().map(|e| e.action.as_str()).collect();
    for a in [
        "pbx.add",
        "tenant.create",
        "user.create",
        "device.reveal",
        "user.update",
    ] {
        assert!(actions.contains(&a), "audit has {a}: {actions:?}");
    }
    let upd = audit.iter().find(|e| e.action == "user.update").unwrap();
    assert!(upd.before.is_some() && upd.after.is_some());
    assert_eq!(upd.after.as_ref().unwrap()["voicemail_pin_set"], true);
    // A bad PIN is refused without being echoed.
    let e = ws
        .user_update(
            &me,
            u.id,
            &UserPatch {
                voicemail_pin: Some("12ab".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert!(!e.to_string().contains("12ab"));
    // Another key cannot open this workspace.
    let dir = tempfile::tempdir().unwrap();
    let e = h
        .reopen(KeySource::File(dir.path().join("other.key")))
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::Key);
}

async fn nasty_input_is_refused_with_field_and_rule(h: &Harness) {
    let ws = &h.ws;
    let me = setup(ws, &[("acme", "100-199")]).await;
    let cases: Vec<(NewUser, &str)> = vec![
        (new_user("acme", "Ann\nEvil", "a@acme.example"), "name"),
        (new_user("acme", "", "a@acme.example"), "name"),
        (
            new_user("acme", &"x".repeat(10_000), "a@acme.example"),
            "name",
        ),
        (new_user("acme", "Ann", "a;b@acme.example"), "email"),
        (
            new_user("acme", "Ann", "${SHELL(id)}@acme.example"),
            "email",
        ),
        (
            new_user("acme", "Ann", "a@acme.example\r\nAction: Originate"),
            "email",
        ),
        (
            NewUser {
                extension: Some("1e3".into()),
                ..new_user("acme", "Ann", "a@acme.example")
            },
            "extension",
        ),
        (
            NewUser {
                outbound_caller_id: Some("+41;1".into()),
                ..new_user("acme", "Ann", "a@acme.example")
            },
            "outbound_caller_id",
        ),
    ];
    for (input, field) in cases {
        match ws.user_create(&me, &input).await {
            Err(pbxdesk_core::Error::Validation(v)) => assert_eq!(v.field, field, "{v}"),
            other => panic!("expected a validation error on {field}, got {other:?}"),
        }
    }
    // Unicode and characters Asterisk cares about are stored as given (rendering encodes them).
    let odd = ws
        .user_create(
            &me,
            &new_user("acme", "Zoë ${SHELL(id)}; [x] \"q\"", "zoe@acme.example"),
        )
        .await
        .unwrap();
    assert_eq!(odd.display_name, "Zoë ${SHELL(id)}; [x] \"q\"");
    let bad_tenant = ws
        .tenant_create(
            &me,
            &NewTenant {
                name: "T".into(),
                slug: Some("bad;slug".into()),
                pbx: "pbx1".into(),
                ext_range: "1-2".into(),
                country: None,
            },
        )
        .await
        .unwrap_err();
    assert_eq!(bad_tenant.code(), ErrorCode::Validation);
    let e = ws.tenant_show(&me, "nope").await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::NotFound);
    assert_eq!(
        ws.user_list(&me, "acme").await.unwrap().len(),
        1,
        "nothing half-written"
    );
    // Every wrong field of one input at once, each worded without its field's name.
    let e = ws
        .user_create(
            &me,
            &NewUser {
                extension: Some("250".into()),
                outbound_caller_id: Some("+41;1".into()),
                ..new_user("acme", "", "a;b@acme.example")
            },
        )
        .await
        .unwrap_err();
    let fields: Vec<&str> = e.fields().iter().map(|v| v.field.as_str()).collect();
    assert_eq!(
        fields,
        ["name", "email", "outbound_caller_id", "extension"],
        "{e}"
    );
    assert!(e.fields()[3].explain().contains("range 100-199"), "{e}");
    let e = ws
        .user_update(
            &me,
            odd.id,
            &UserPatch {
                name: Some("Zoë\u{7}".into()),
                forward_always: Some("${SHELL(id)}".into()),
                forward_busy: Some("1;2".into()),
                ring_seconds: Some(999),
                voicemail_pin: Some("12ab".into()),
                policy: Some("no such;policy".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    let fields: Vec<&str> = e.fields().iter().map(|v| v.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "name",
            "forward_always",
            "forward_busy",
            "voicemail_pin",
            "ring_seconds",
            "policy"
        ],
        "{e}"
    );
    assert!(
        !e.to_string().contains("12ab"),
        "a PIN is never echoed: {e}"
    );
    assert_eq!(
        ws.user_show(&me, odd.id).await.unwrap().display_name,
        "Zoë ${SHELL(id)}; [x] \"q\"",
        "nothing written"
    );
}

async fn concurrent_edit_with_stale_version_is_refused(h: &Harness) {
    let ws = &h.ws;
    let me = setup(ws, &[("acme", "100-199")]).await;
    let u = ws
        .user_create(&me, &new_user("acme", "Ann", "ann@acme.example"))
        .await
        .unwrap();
    let v = u.version;
    let first = ws
        .user_update(
            &me,
            u.id,
            &UserPatch {
                name: Some("Ann B".into()),
                expected_version: Some(v),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(first.version, v + 1);
    let e = ws
        .user_update(
            &me,
            u.id,
            &UserPatch {
                name: Some("Ann C".into()),
                expected_version: Some(v),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::Conflict);
    assert_eq!(ws.user_show(&me, u.id).await.unwrap().display_name, "Ann B");
}

async fn tenant_lifecycle_and_devices(h: &Harness) {
    let ws = &h.ws;
    let me = setup(ws, &[("acme", "100-199")]).await;
    let u = ws
        .user_create(&me, &new_user("acme", "Ann", "ann@acme.example"))
        .await
        .unwrap();
    let d2 = ws
        .device_add(
            &me,
            u.id,
            &NewDevice {
                label: Some("Softphone".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(d2.sip_username, "acme-100-2");
    let dup = ws
        .device_add(
            &me,
            u.id,
            &NewDevice {
                sip_username: Some("acme-100".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(dup.code(), ErrorCode::Conflict);
    assert_eq!(ws.device_resolve(&me, "acme-100-2").await.unwrap(), d2.id);
    // An all-digit SIP username is found by name, not taken for an id.
    let digits = ws
        .device_add(
            &me,
            u.id,
            &NewDevice {
                sip_username: Some(d2.id.to_string().repeat(3)),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        ws.device_resolve(&me, &digits.sip_username).await.unwrap(),
        digits.id
    );
    assert_eq!(
        ws.device_resolve(&me, &u.devices[0].id.to_string())
            .await
            .unwrap(),
        u.devices[0].id
    );
    ws.device_remove(&me, digits.id).await.unwrap();
    ws.device_remove(&me, d2.id).await.unwrap();
    assert_eq!(ws.device_list(&me, u.id).await.unwrap().len(), 1);
    // Shrinking the range below a live user is refused.
    let e = ws
        .tenant_update(
            &me,
            "acme",
            &TenantPatch {
                ext_range: Some("150-199".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::Conflict);
    let t = ws
        .tenant_update(
            &me,
            "acme",
            &TenantPatch {
                name: Some("Acme AG".into()),
                ext_range: Some("100-299".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (t.name.as_str(), t.ext_range.as_str()),
        ("Acme AG", "100-299")
    );
    let s = ws
        .tenant_set_status(&me, "acme", TenantStatus::Suspended)
        .await
        .unwrap();
    assert_eq!(s.status, TenantStatus::Suspended);
    let e = ws
        .user_create(&me, &new_user("acme", "B", "b@acme.example"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::Conflict);
    let su = ws
        .user_set_status(&me, u.id, UserStatus::Suspended)
        .await
        .unwrap();
    assert_eq!(su.status, UserStatus::Suspended);
    let del = ws.user_delete(&me, u.id).await.unwrap();
    assert_eq!(del.status, UserStatus::Deleted);
    assert!(
        del.devices.is_empty(),
        "a deleted user's devices go with it"
    );
    assert_eq!(
        ws.user_resolve(&me, "acme/100").await.unwrap_err().code(),
        ErrorCode::NotFound
    );
}

async fn pbx_profile_validates_seals_and_pins(h: &Harness) {
    let ws = &h.ws;
    let me = ws_admin(ws).await;
    let mut input = NewPbx::at("pbx1", "pbx1.example.net");
    input.profile.ami_user = Some("pbxdesk".into());
    input.profile.ami_secret = Some("ami-Secret-123".into());
    input.profile.db_user = Some("asterisk".into());
    input.profile.db_password = Some("db-Secret-456".into());
    let p = ws.pbx_add(&me, &input).await.unwrap();
    assert!(p.ami_secret_set && p.db_password_set && !p.ssh_secret_set);
    assert_eq!(
        (
            p.config_dir.as_str(),
            p.ami_port,
            p.db_port,
            p.host_key.as_deref()
        ),
        ("/etc/asterisk", 5038, 3306, None)
    );
    let json = serde_json::to_string(&ws.pbx_show(&me, "pbx1").await.unwrap()).unwrap();
    let audit =
        serde_json::to_string(&ws.audit_list(&me, &AuditQuery::default()).await.unwrap()).unwrap();
    for secret in ["ami-Secret-123", "db-Secret-456"] {
        assert!(
            !json.contains(secret) && !audit.contains(secret),
            "{secret} leaked"
        );
    }
    let blobs = h.raw_blobs("SELECT ami_secret FROM pbxes").await;
    assert!(
        !blobs[0].windows(14).any(|w| w == b"ami-Secret-123"),
        "sealed at rest"
    );
    // Bad values name their field.
    let bad: Vec<(PbxPatch, &str)> = vec![
        (
            PbxPatch {
                config_dir: Some("/etc/asterisk/../x".into()),
                ..Default::default()
            },
            "config_dir",
        ),
        (
            PbxPatch {
                config_dir: Some("/etc/a;b".into()),
                ..Default::default()
            },
            "config_dir",
        ),
        (
            PbxPatch {
                ami_secret: Some("x\r\nAction: Originate".into()),
                ..Default::default()
            },
            "ami_secret",
        ),
        (
            PbxPatch {
                ami_user: Some("a b".into()),
                ..Default::default()
            },
            "ami_user",
        ),
        (
            PbxPatch {
                ssh_port: Some(0),
                ..Default::default()
            },
            "ssh_port",
        ),
        (
            PbxPatch {
                connect_timeout_ms: Some(5),
                ..Default::default()
            },
            "connect_timeout_ms",
        ),
        (
            PbxPatch {
                host: Some("$(id)".into()),
                ..Default::default()
            },
            "host",
        ),
    ];
    for (patch, field) in bad {
        match ws.pbx_update(&me, "pbx1", &patch).await {
            Err(pbxdesk_core::Error::Validation(v)) => {
                assert_eq!(v.field, field);
                assert!(
                    !v.to_string().contains("Originate"),
                    "secrets are not echoed"
                );
            }
            other => panic!("expected a validation error on {field}, got {other:?}"),
        }
    }
    let e = ws.pbx_trust(&me, "pbx1", "MD5:aa:bb").await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::Validation);
    let fp = "SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s";
    let trusted = ws.pbx_trust(&me, "pbx1", fp).await.unwrap();
    assert_eq!(trusted.host_key.as_deref(), Some(fp));
    // Clearing a secret, changing the port: another machine for SSH, so the pin is dropped.
    let v = trusted.version;
    let p = ws
        .pbx_update(
            &me,
            "pbx1",
            &PbxPatch {
                ami_secret: Some(String::new()),
                ssh_port: Some(2222),
                expected_version: Some(v),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(!p.ami_secret_set);
    assert_eq!((p.ssh_port, p.host_key), (2222, None));
    let stale = ws
        .pbx_update(
            &me,
            "pbx1",
            &PbxPatch {
                db_port: Some(3307),
                expected_version: Some(v),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(stale.code(), ErrorCode::Conflict);
    assert!(ws
        .pbx_add(
            &me,
            &NewPbx {
                name: "nohost".into(),
                profile: PbxPatch::default()
            }
        )
        .await
        .is_err());
}

async fn dids_are_normalized_unique_and_point_at_something_real(h: &Harness) {
    let ws = &h.ws;
    let me = setup(ws, &[("acme", "100-199"), ("globex", "200-299")]).await;
    ws.user_create(&me, &new_user("acme", "Ann", "ann@acme.example"))
        .await
        .unwrap();
    let d = ws
        .did_add(
            &me,
            &NewDid {
                tenant: "acme".into(),
                number: "044 555 12 34".into(),
                country: Some("CH".into()),
                label: Some("Main line".into()),
                destination: "user:100".into(),
                trunk: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (d.number.as_str(), d.destination.as_str()),
        ("+41445551234", "user:100")
    );
    // The same number again, in another form and for another tenant of the PBX: refused.
    let dup = ws
        .did_add(
            &me,
            &NewDid {
                tenant: "globex".into(),
                number: "+41 44 555 12 34".into(),
                destination: "hangup".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(dup.code(), ErrorCode::Conflict);
    // A destination must exist; a national number needs its country.
    let e = ws
        .did_add(
            &me,
            &NewDid {
                tenant: "acme".into(),
                number: "+41445551235".into(),
                destination: "user:150".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&e, pbxdesk_core::Error::Validation(v) if v.field == "destination"),
        "{e}"
    );
    // Without a country, a national form is read with the tenant's (CH by default)...
    let national = ws
        .did_add(
            &me,
            &NewDid {
                tenant: "acme".into(),
                number: "044 555 12 35".into(),
                destination: "hangup".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(national.number, "+41445551235");
    // ...and what fits no form of it is refused, naming the field.
    let e = ws
        .did_add(
            &me,
            &NewDid {
                tenant: "acme".into(),
                number: "445551236".into(),
                destination: "hangup".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&e, pbxdesk_core::Error::Validation(v) if v.field == "number"),
        "{e}"
    );
    for bad in [
        "user:abc",
        "external:0445551234",
        "somewhere",
        "voicemail:100;x",
    ] {
        let e = ws
            .did_update(
                &me,
                "+41445551234",
                &DidPatch {
                    destination: Some(bad.into()),
                    ..Default::default()
                },
            )
            .await
            .unwrap_err();
        assert_eq!(e.code(), ErrorCode::Validation, "{bad}");
    }
    let u = ws
        .did_update(
            &me,
            "+41445551234",
            &DidPatch {
                destination: Some("voicemail:100".into()),
                expected_version: Some(d.version),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (u.destination.as_str(), u.version),
        ("voicemail:100", d.version + 1)
    );
    let stale = ws
        .did_update(
            &me,
            "+41445551234",
            &DidPatch {
                label: Some("x".into()),
                expected_version: Some(d.version),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(stale.code(), ErrorCode::Conflict);
    assert_eq!(ws.did_list(&me, "acme").await.unwrap().len(), 2);
    // A user that a DID routes to cannot be deleted until the DID goes elsewhere.
    let ann = ws.user_resolve(&me, "acme/100").await.unwrap();
    let e = ws.user_delete(&me, ann).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::Conflict);
    assert!(e.to_string().contains("+41445551234"), "{e}");
    assert!(ws.did_list(&me, "globex").await.unwrap().is_empty());
    ws.did_remove(&me, "+41445551234").await.unwrap();
    assert_eq!(
        ws.did_remove(&me, "+41445551234").await.unwrap_err().code(),
        ErrorCode::NotFound
    );
}

async fn emergency_numbers_are_never_given_to_a_user(h: &Harness) {
    let ws = &h.ws;
    // Swiss tenant (the default country): 112, 117, 118, 143, 144, 147 are emergency numbers.
    let me = setup(ws, &[("acme", "110-120")]).await;
    let mut got = Vec::new();
    for i in 0..8 {
        let u = ws
            .user_create(
                &me,
                &new_user("acme", &format!("U {i}"), &format!("u{i}@acme.example")),
            )
            .await
            .unwrap();
        got.push(u.extension);
    }
    assert_eq!(got, vec![110, 111, 113, 114, 115, 116, 119, 120]);
    let e = ws
        .user_create(&me, &new_user("acme", "Full", "full@acme.example"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::Conflict, "{e}");
    let mut c = new_user("acme", "Explicit", "x@acme.example");
    c.extension = Some("117".into());
    let e = ws.user_create(&me, &c).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::Validation);
    assert!(e.to_string().contains("emergency"), "{e}");
}

/// Sealed secrets are bound to their row (table, id, column in the AAD): a database writer who
/// moves one device's password into another device's row, or a PIN into a password column, gets
/// a blob that does not open. A workspace from before row binding is bound once at open.
async fn sealed_secrets_are_bound_to_their_row(h: &Harness) {
    let ws = &h.ws;
    let me = setup(ws, &[("acme", "100-199")]).await;
    let a = ws
        .user_create(&me, &new_user("acme", "Ann", "ann@acme.example"))
        .await
        .unwrap();
    let b = ws
        .user_create(&me, &new_user("acme", "Bob", "bob@acme.example"))
        .await
        .unwrap();
    let (da, db) = (a.devices[0].id, b.devices[0].id);
    let pw_b = ws.device_reveal(&me, db).await.unwrap().sip_password;
    assert!(ws.device_reveal(&me, da).await.is_ok());
    // Every stored blob is sealed for its row (format version 2).
    for sql in [
        "SELECT sip_password FROM devices",
        "SELECT voicemail_pin FROM users",
    ] {
        assert!(h.raw_blobs(sql).await.iter().all(|b| b[0] == 2), "{sql}");
    }
    // Bob's password copied into Ann's row: Ann's device no longer opens, and never shows
    // Bob's password.
    h.raw_exec(
        &format!("UPDATE devices SET sip_password = (SELECT sip_password FROM devices WHERE id = {db}) WHERE id = {da}"),
        None,
    )
    .await;
    let e = ws.device_reveal(&me, da).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::Key, "{e}");
    assert!(!e.to_string().contains(&pw_b));
    // The render refuses too: it would hand the PBX a password from another row.
    assert_eq!(
        ws.pbx_render(&me, "pbx1", true).await.unwrap_err().code(),
        ErrorCode::Key
    );
    // A PIN moved into a password column does not open either.
    h.raw_exec(
        &format!("UPDATE devices SET sip_password = (SELECT voicemail_pin FROM users WHERE id = {}) WHERE id = {da}", a.id),
        None,
    )
    .await;
    assert_eq!(
        ws.device_reveal(&me, da).await.unwrap_err().code(),
        ErrorCode::Key
    );

    // A workspace from before: purpose-only blobs (version 1), bound at the next open.
    let key = pbxdesk_core::secret::WorkspaceKey::load_or_create_file(&h.key_file).unwrap();
    let legacy = pbxdesk_core::secret::Cipher::new(&key)
        .seal(
            pbxdesk_core::secret::Purpose::SipPassword,
            "legacy-password-1",
        )
        .unwrap();
    h.raw_exec(
        &format!("UPDATE devices SET sip_password = $1 WHERE id = {da}"),
        Some(legacy),
    )
    .await;
    h.raw_exec(
        "DELETE FROM workspace_meta WHERE key = 'secrets_bound_to_rows'",
        None,
    )
    .await;
    let again = h.reopen(KeySource::File(h.key_file.clone())).await.unwrap();
    assert_eq!(
        again.device_reveal(&me, da).await.unwrap().sip_password,
        "legacy-password-1"
    );
    assert!(h
        .raw_blobs("SELECT sip_password FROM devices")
        .await
        .iter()
        .all(|b| b[0] == 2));
    // Once bound, a purpose-only blob written later is refused, not taken.
    let late = pbxdesk_core::secret::Cipher::new(&key)
        .seal(pbxdesk_core::secret::Purpose::SipPassword, "late")
        .unwrap();
    h.raw_exec(
        &format!("UPDATE devices SET sip_password = $1 WHERE id = {db}"),
        Some(late),
    )
    .await;
    assert_eq!(
        again.device_reveal(&me, db).await.unwrap_err().code(),
        ErrorCode::Key
    );
}

/// API sessions: a login gives tokens stored as hashes only; the access token stands for its
/// operator as the store says now (a disabled operator is out at once); a refresh is used once;
/// a logout ends the access token.
async fn api_tokens_stand_for_their_operator_and_end(h: &Harness) {
    let ws = &h.ws;
    let me = setup(ws, &[("acme", "100-199")]).await;
    let pw = SecretString::from("api operator password 1");
    ws.operator_add(
        Some(&me),
        "api-op",
        Role::TenantAdmin,
        &["acme".into()],
        &pw,
    )
    .await
    .unwrap();
    let wrong = ws
        .api_login("api-op", &SecretString::from("nope"))
        .await
        .unwrap_err();
    assert_eq!(wrong.code(), ErrorCode::Unauthenticated);
    let t = ws.api_login("api-op", &pw).await.unwrap();
    assert!(t.access_token.starts_with("pbxd_") && t.access_token.len() == 69);
    let a = ws.api_actor(&t.access_token, "api test").await.unwrap();
    assert_eq!(a.name(), "api-op");
    assert_eq!(a.role(), Role::TenantAdmin);
    // Not a refresh token, nor a refresh token an access token.
    assert!(ws.api_actor(&t.refresh_token, "api test").await.is_err());
    assert!(ws.api_refresh(&t.access_token).await.is_err());
    // The store keeps the hash; the hash itself opens nothing.
    let hash = pbxdesk_core::secret::api_token_hash(&t.access_token);
    assert!(ws.api_actor(&hash, "api test").await.is_err());
    let again = ws.api_refresh(&t.refresh_token).await.unwrap();
    assert!(ws.api_refresh(&t.refresh_token).await.is_err(), "used once");
    ws.api_logout(&again.access_token).await.unwrap();
    assert!(ws.api_actor(&again.access_token, "api test").await.is_err());
    assert!(
        ws.api_actor(&t.access_token, "api test").await.is_ok(),
        "another session goes on"
    );
    h.raw_exec(
        "UPDATE operators SET disabled = TRUE WHERE username = 'api-op'",
        None,
    )
    .await;
    let e = ws.api_actor(&t.access_token, "api test").await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::Unauthenticated, "{e}");
}

async fn a_device_gets_a_new_password_shown_once(h: &Harness) {
    let ws = &h.ws;
    let me = setup(ws, &[("acme", "100-199")]).await;
    let u = ws
        .user_create(&me, &new_user("acme", "Ann", "ann@acme.example"))
        .await
        .unwrap();
    let id = u.devices[0].id;
    let old = ws.device_reveal(&me, id).await.unwrap().sip_password;
    let new = ws.device_new_password(&me, id).await.unwrap().sip_password;
    assert_ne!(old, new);
    assert!(new.len() >= 16, "a strong password");
    assert_eq!(ws.device_reveal(&me, id).await.unwrap().sip_password, new);
    let audit = ws
        .audit_list(
            &me,
            &AuditQuery {
                tenant: Some("acme".into()),
                limit: Some(20),
            },
        )
        .await
        .unwrap();
    let entry = audit
        .iter()
        .find(|e| e.action == "device.new_password")
        .unwrap();
    let text = format!("{:?}{:?}", entry.before, entry.after);
    assert!(!text.contains(&new) && !text.contains(&old), "{text}");
    let pw = SecretString::from("auditor password 1");
    ws.operator_add(Some(&me), "aud", Role::Auditor, &[], &pw)
        .await
        .unwrap();
    let aud = ws.login("aud", &pw).await.unwrap();
    let e = ws.device_new_password(&aud, id).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::Forbidden);
    assert_eq!(ws.device_reveal(&me, id).await.unwrap().sip_password, new);
}

on_both_stores!(
    a_device_gets_a_new_password_shown_once,
    api_tokens_stand_for_their_operator_and_end,
    sealed_secrets_are_bound_to_their_row,
    emergency_numbers_are_never_given_to_a_user,
    dids_are_normalized_unique_and_point_at_something_real,
    pbx_profile_validates_seals_and_pins,
    user_gets_lowest_free_extension_and_a_device,
    deleted_extension_is_quarantined_then_reused,
    explicit_extension_rules_and_full_range,
    fifty_parallel_creates_get_distinct_extensions,
    tenant_admin_is_confined_to_its_tenants,
    secrets_are_sealed_and_never_in_audit_or_output,
    nasty_input_is_refused_with_field_and_rule,
    concurrent_edit_with_stale_version_is_refused,
    tenant_lifecycle_and_devices,
);
