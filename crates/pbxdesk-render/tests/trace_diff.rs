#![allow(clippy::unwrap_used, clippy::panic)]
//! Call tracing and diffs over the golden fixture.

mod common;

use pbxdesk_render::diff::FileChange;
use pbxdesk_render::trace::HopKind;
use pbxdesk_render::{diff, render_pbx, trace_from, trace_inbound};

fn kinds(t: &pbxdesk_render::Trace) -> Vec<HopKind> {
    t.path.iter().map(|h| h.kind.clone()).collect()
}

#[test]
fn inbound_numbers_go_where_the_dialplan_sends_them() {
    let s = common::golden_snapshot();
    let t = trace_inbound(&s, "+41445551200");
    assert_eq!(t.tenant.as_deref(), Some("acme"));
    assert_eq!(
        kinds(&t),
        [
            HopKind::Did,
            HopKind::User,
            HopKind::Devices,
            HopKind::NoAnswer,
            HopKind::Voicemail
        ]
    );
    assert_eq!(t.path[2].detail, "acme-100, acme-100-desk");
    assert!(
        t.path[0].detail.contains("delivered by trunk sipcall"),
        "{:?}",
        t.path[0]
    );
    assert!(t.path[2].title.contains("25 s"));

    // Without '+', as some providers send it.
    assert_eq!(
        trace_inbound(&s, "41445551201").path[1].kind,
        HopKind::Voicemail
    );

    let ext = trace_inbound(&s, "+41445551202");
    assert_eq!(kinds(&ext), [HopKind::Did, HopKind::Rule, HopKind::Trunks]);
    assert!(ext.path[1].title.contains("rule 4"), "{:?}", ext.path[1]);

    assert_eq!(
        kinds(&trace_inbound(&s, "+41445551299")),
        [HopKind::Did, HopKind::NotInService]
    );
    let unknown = trace_inbound(&s, "+41445559999");
    assert_eq!(unknown.tenant, None);
    assert_eq!(unknown.path.last().unwrap().kind, HopKind::NotInService);
}

#[test]
fn outbound_calls_follow_rule_order_and_trunk_priority() {
    let s = common::golden_snapshot();
    let t = trace_from(&s, "acme", 100, "0445550000").unwrap();
    assert!(t.path[1].title.contains("rule 1"));
    assert!(t.path[1].detail.contains("+41445550000"));
    // backup is disabled: skipped, as in the dialplan.
    assert_eq!(t.path[2].detail, "sipcall (pbxdesk-trunk-sipcall)");

    let denied = trace_from(&s, "acme", 100, "0049301234").unwrap();
    assert_eq!(denied.path.last().unwrap().kind, HopKind::Denied);
    assert!(denied.path[1].title.contains("rule 2"));

    // Bruno's own class of service allows it.
    let intl = trace_from(&s, "acme", 101, "0049301234").unwrap();
    assert!(intl.path[1].detail.contains("+49301234"), "{:?}", intl.path);

    // Emergency is always routed, before any rule.
    let e = trace_from(&s, "acme", 101, "112").unwrap();
    assert_eq!(
        kinds(&e),
        [HopKind::Caller, HopKind::Emergency, HopKind::Trunks]
    );
    assert_eq!(
        trace_from(&s, "globex", 1000, "911").unwrap().path[1].kind,
        HopKind::Emergency
    );

    assert_eq!(
        trace_from(&s, "acme", 100, "101").unwrap().path[1].kind,
        HopKind::User
    );
    assert_eq!(
        trace_from(&s, "acme", 100, "*7241791234567").unwrap().path[1].kind,
        HopKind::Feature
    );
    assert_eq!(
        trace_from(&s, "acme", 100, "102")
            .unwrap()
            .path
            .last()
            .unwrap()
            .kind,
        HopKind::NotInService
    );
    assert!(trace_from(&s, "acme", 555, "101").is_none());
    assert!(trace_from(&s, "nope", 100, "101").is_none());
}

#[test]
fn no_change_no_diff() {
    let r = render_pbx(&common::golden_snapshot());
    let d = diff(Some(&r), &r);
    assert!(d.is_empty());
    assert_eq!(d.unchanged_files as usize, r.files.len());
    let first = diff(None, &r);
    assert_eq!(first.files.len(), r.files.len());
    assert!(first.files.iter().all(|f| f.change == FileChange::Added));
    assert_eq!(first.rows_added.len(), r.realtime.len());
}

#[test]
fn secrets_never_appear_in_a_diff() {
    let old = render_pbx(&common::golden_snapshot());
    let mut s = common::golden_snapshot();
    let acme = s.tenants.iter_mut().find(|t| t.slug == "acme").unwrap();
    acme.users[0].voicemail_pin = Some("87654321".into());
    acme.users[1].devices[0].password = "new-secret-pw".into();
    acme.users[0].name = "Anna Muller-Meier".into();
    s.trunks
        .iter_mut()
        .find(|k| k.name == "sipcall")
        .unwrap()
        .password = Some("trunk-new-pw".into());
    let new = render_pbx(&s);
    let d = diff(Some(&old), &new);
    let json = serde_json::to_string(&d).unwrap();
    for secret in [
        "87654321",
        "1009",
        "new-secret-pw",
        "pw-101",
        "trunk-new-pw",
        "sipcall-Secret-1",
    ] {
        assert!(!json.contains(secret), "{secret} leaked into the diff");
    }
    assert!(
        d.secrets_changed
            .iter()
            .any(|s| s.starts_with("voicemail PIN of 100")),
        "{:?}",
        d.secrets_changed
    );
    assert!(d
        .secrets_changed
        .contains(&"SIP password of acme-101".to_owned()));
    assert!(d
        .secrets_changed
        .iter()
        .any(|s| s.starts_with("trunk password")));
    let changed: Vec<&str> = d.files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(
        changed,
        [
            "pjsip.d/pbxdesk/trunk-sipcall.conf",
            "voicemail.d/pbxdesk/tenant-acme.conf"
        ]
    );
    let vm = &d.files[1];
    assert!(
        vm.unified.contains("-100 => ********,Anna Müller"),
        "{}",
        vm.unified
    );
    assert!(vm.unified.contains("+100 => ********,Anna Muller-Meier"));
    let row = d.rows_changed.iter().find(|r| r.id == "acme-100").unwrap();
    assert_eq!(row.columns, ["callerid"]);
}

#[test]
fn what_a_change_touches_is_counted_for_the_summary() {
    use pbxdesk_render::touched;
    let old = render_pbx(&common::golden_snapshot());
    assert_eq!(
        touched(Some(&old), &old).line(),
        "tenants none; 0 user(s), 0 device(s), 0 DID(s)"
    );
    let mut s = common::golden_snapshot();
    let acme = s.tenants.iter_mut().find(|t| t.slug == "acme").unwrap();
    // Anna's name: her mailbox line and the caller ID of her two devices.
    acme.users[0].name = "Anna Muller-Meier".into();
    // One number leaves.
    acme.dids.retain(|d| d.number != "+41445551299");
    let t = touched(Some(&old), &render_pbx(&s));
    assert_eq!(t.tenants, vec!["acme".to_owned()]);
    assert_eq!((t.users, t.devices, t.dids), (1, 2, 1), "{t:?}");
    // Everything is new on a first apply.
    let first = touched(None, &old);
    assert_eq!(first.devices as usize, old.realtime.len());
    assert_eq!(first.tenants, vec!["acme".to_owned(), "globex".to_owned()]);
}
