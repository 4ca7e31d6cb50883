#![allow(clippy::unwrap_used, clippy::panic)]
//! What a caller dials cannot reach another tenant (issue 10, item 1). On a real Asterisk 22 a
//! phone of tenant acme dialled `91,globex,globex-2000` and globex's phone rang: Asterisk
//! substitutes `${EXTEN:1}` into `Gosub(...(${EXTEN:1},acme,trunk))` first and splits the
//! arguments afterwards. Here the render runs in the Asterisk double's dialplan executor
//! (`pbxdesk_remote::testkit::dialplan`), which substitutes and splits in that order; every
//! endpoint a Dial reaches must be a device of the caller's tenant or a trunk it may use.
//! The trunk is not trusted either: numbers arriving from a carrier are tried the same way.

use pbxdesk_remote::testkit::asterisk::load_program;
use pbxdesk_remote::testkit::dialplan::{Dialed, Executor, Program};
use pbxdesk_render::pbx::{render_pbx, trunk_context, trunk_endpoint, Rendered};
use pbxdesk_render::snapshot::*;
use pbxdesk_render::trace::{trace_from, HopKind};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use std::collections::BTreeSet;

fn dev(username: &str) -> Device {
    Device {
        username: username.into(),
        password: format!("pw-{username}-0123456789"),
        transport: "udp".into(),
        codecs: "ulaw".into(),
        nat: true,
    }
}

fn user(ext: u32, name: &str, devices: Vec<Device>) -> User {
    User {
        extension: ext,
        name: name.into(),
        email: String::new(),
        active: true,
        ring_seconds: 20,
        voicemail: true,
        voicemail_pin: Some("4711".into()),
        caller_id: None,
        policy: None,
        devices,
    }
}

fn rule(pattern: &str, allow: bool, strip: u32, prepend: &str, trunks: &[&str]) -> Rule {
    Rule {
        pattern: pattern.into(),
        allow,
        strip,
        prepend: prepend.into(),
        trunks: trunks.iter().map(|s| (*s).to_owned()).collect(),
    }
}

fn trunk(name: &str, tenants: &[&str]) -> Trunk {
    Trunk {
        name: name.into(),
        host: format!("sip.{name}.example.net"),
        port: 5060,
        transport: "udp".into(),
        register: false,
        username: None,
        password: None,
        from_domain: None,
        from_user: None,
        codecs: vec!["ulaw".into()],
        enabled: true,
        tenants: tenants.iter().map(|s| (*s).to_owned()).collect(),
    }
}

fn tenant(slug: &str, users: Vec<User>, dids: Vec<Did>, rules: Vec<Rule>) -> Tenant {
    Tenant {
        slug: slug.into(),
        name: slug.into(),
        country: "CH".into(),
        active: true,
        unknown_did: Destination::User(users[0].extension),
        caller_id: None,
        default_policy: Some("default".into()),
        users,
        dids,
        policies: vec![Policy {
            name: "default".into(),
            rules,
        }],
        ring_groups: Vec::new(),
    }
}

/// The PBX of the report: acme's policy has `_9X. allow strip=1 trunks=carrier`.
fn snapshot() -> Snapshot {
    let did = |n: &str, ext: u32| Did {
        number: n.into(),
        label: n.into(),
        destination: Destination::User(ext),
        trunk: None,
    };
    let mut acme = tenant(
        "acme",
        vec![
            user(1000, "Ada", vec![dev("acme-1000")]),
            user(1001, "Bob", vec![dev("acme-1001"), dev("acme-1001-desk")]),
        ],
        vec![did("+41445550100", 1000)],
        vec![
            rule("_9X.", true, 1, "", &["carrier"]),
            rule("_0[1-9]X.", true, 1, "+41", &["carrier"]),
            rule("_+X.", true, 0, "", &["carrier"]),
            rule("_0900X.", false, 0, "", &[]),
        ],
    );
    // The front desk rings both at once, then the two in turn (round robin), then voicemail.
    acme.dids.push(Did {
        number: "+41445550150".into(),
        label: "Front desk".into(),
        destination: Destination::RingGroup(1500),
        trunk: None,
    });
    acme.ring_groups = vec![
        RingGroup {
            extension: 1500,
            name: "Front desk".into(),
            ring: Ring::All,
            members: vec![1000, 1001],
            member_seconds: 20,
            total_seconds: 30,
            no_answer: Destination::RingGroup(1501),
        },
        RingGroup {
            extension: 1501,
            name: "Everyone; ${EXTEN}".into(),
            ring: Ring::RoundRobin,
            members: vec![1001, 1000],
            member_seconds: 10,
            total_seconds: 15,
            no_answer: Destination::Voicemail(1000),
        },
    ];
    let globex = tenant(
        "globex",
        vec![user(2000, "Hank", vec![dev("globex-2000")])],
        vec![did("+41445550200", 2000)],
        vec![rule("_0X.", true, 0, "", &["gtrunk"])],
    );
    Snapshot {
        pbx: "pbx1".into(),
        tenants: vec![acme, globex],
        trunks: vec![trunk("carrier", &["acme"]), trunk("gtrunk", &["globex"])],
    }
}

/// The render, loaded by the double as pbx_config would load it from /etc/asterisk.
fn load(r: &Rendered) -> (tempfile::TempDir, Program) {
    let dir = tempfile::tempdir().unwrap();
    let etc = dir.path();
    let include = r
        .includes
        .iter()
        .find(|i| i.file == "extensions.conf")
        .unwrap();
    std::fs::write(
        etc.join("extensions.conf"),
        format!("[general]\n\n{}\n", include.line),
    )
    .unwrap();
    for (path, text) in &r.files {
        let p = etc.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    let program = load_program(etc).unwrap();
    (dir, program)
}

/// Endpoints a call of `tenant` may reach: its devices and the trunks it may use.
fn allowed(s: &Snapshot, tenant: &str) -> BTreeSet<String> {
    let t = s.tenants.iter().find(|t| t.slug == tenant).unwrap();
    let mut out: BTreeSet<String> = t
        .users
        .iter()
        .flat_map(|u| u.devices.iter().map(|d| d.username.clone()))
        .collect();
    out.extend(
        s.trunks
            .iter()
            .filter(|k| k.tenants.iter().any(|x| x == tenant))
            .map(|k| trunk_endpoint(&k.name)),
    );
    out
}

struct Pbx {
    snap: Snapshot,
    rendered: Rendered,
    _dir: tempfile::TempDir,
    program: Program,
}

impl Pbx {
    fn new() -> Pbx {
        let snap = snapshot();
        let rendered = render_pbx(&snap);
        assert!(!rendered.has_errors(), "{:?}", rendered.findings);
        let (dir, program) = load(&rendered);
        Pbx {
            snap,
            rendered,
            _dir: dir,
            program,
        }
    }

    /// A call from a device (its realtime context and set_var), with AstDB as given.
    fn call_from_device(&self, device: &str, dialled: &str, db: &[(&str, &str)]) -> Vec<Dialed> {
        let ep = self
            .rendered
            .realtime
            .iter()
            .find(|e| e.id == device)
            .unwrap();
        let (k, v) = ep.set_var.split_once('=').unwrap();
        let mut x = Executor::new(&self.program);
        x.db = db
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        x.call(&ep.context, dialled, &[(k, v)])
            .unwrap_or_else(|e| panic!("{dialled:?}: {e}"))
            .dialed
    }

    fn call_from_trunk(&self, trunk: &str, number: &str) -> Vec<Dialed> {
        Executor::new(&self.program)
            .call(&trunk_context(trunk), number, &[])
            .unwrap_or_else(|e| panic!("{number:?}: {e}"))
            .dialed
    }
}

fn assert_within(s: &Snapshot, tenant: &str, what: &str, dialed: &[Dialed]) {
    let ok = allowed(s, tenant);
    for d in dialed {
        assert!(
            ok.contains(&d.endpoint),
            "{what}: a call of tenant {tenant} reached endpoint {:?} (allowed: {ok:?}); dialled {dialed:?}",
            d.endpoint
        );
        if let Some(n) = &d.number {
            assert!(
                n.chars().all(|c| c.is_ascii_digit() || "*#+".contains(c)),
                "{what}: sent {n:?} to a trunk"
            );
        }
    }
}

#[test]
fn dialled_commas_and_ampersands_cannot_reach_another_tenant() {
    let pbx = Pbx::new();
    // The report's call first: it still goes out through acme's carrier, as the digits of what
    // was dialled after the 9 (FILTER keeps 0-9 * # +): 12000.
    let got = pbx.call_from_device("acme-1000", "91,globex,globex-2000", &[]);
    assert_within(&pbx.snap, "acme", "the reported call", &got);
    assert_eq!(
        got.first(),
        Some(&Dialed {
            endpoint: "pbxdesk-trunk-carrier".into(),
            number: Some("12000".into())
        })
    );
    for dialled in [
        "91@globex-2000&PJSIP/x",
        "91&PJSIP/globex-2000",
        "9&PJSIP/globex-2000",
        "91)&PJSIP/globex-2000",
        "0441234567,globex,globex-2000,pbxdesk-trunk-gtrunk",
        "+4144,x,pbxdesk-trunk-gtrunk",
        "112,globex,pbxdesk-trunk-gtrunk",
        "*721,globex,pbxdesk-trunk-gtrunk",
        "*72${SHELL(id)}",
        "90${EXTEN}:1:2,x",
        "1001&PJSIP/globex-2000",
    ] {
        let got = pbx.call_from_device("acme-1000", dialled, &[]);
        assert_within(&pbx.snap, "acme", dialled, &got);
    }
}

#[test]
fn a_forward_set_from_the_phone_cannot_reach_another_tenant() {
    let pbx = Pbx::new();
    // *72 stores what follows; the ring subroutine dials it through the user's own class of
    // service. Written by the feature code (filtered) or straight into AstDB (filtered on read).
    let mut x = Executor::new(&pbx.program);
    x.call(
        "acme_cos_default",
        "*7291&PJSIP/globex-2000",
        &[("PBXDESK_EXT", "1001")],
    )
    .unwrap();
    let stored =
        x.db.get("pbxdesk/acme/1001/cfu")
            .cloned()
            .unwrap_or_default();
    assert_eq!(
        stored, "912000",
        "the feature code stores only dialable characters"
    );
    for cfu in [
        "91&PJSIP/globex-2000",
        "91,globex,globex-2000",
        "91@globex-2000",
    ] {
        let got = pbx.call_from_device("acme-1000", "1001", &[("pbxdesk/acme/1001/cfu", cfu)]);
        assert_within(&pbx.snap, "acme", cfu, &got);
        assert!(
            got.iter()
                .any(|d| d.endpoint == "pbxdesk-trunk-carrier"
                    && d.number.as_deref() == Some("12000")),
            "the forward is dialled as 912000 through acme's rule: {got:?}"
        );
    }
}

#[test]
fn numbers_from_a_carrier_reach_only_its_tenants() {
    let pbx = Pbx::new();
    let got = pbx.call_from_trunk("carrier", "+41445550100");
    assert_eq!(
        got.iter().map(|d| d.endpoint.as_str()).collect::<Vec<_>>(),
        ["acme-1000"]
    );
    for n in [
        "+41445550100,globex-2000",
        "+41445550200&PJSIP/globex-2000",
        "41445550100)&PJSIP/globex-2000",
        "0,globex,globex-2000",
    ] {
        assert_within(&pbx.snap, "acme", n, &pbx.call_from_trunk("carrier", n));
    }
}

#[test]
fn rendered_dialplan_passes_caller_data_only_through_filter() {
    let pbx = Pbx::new();
    for (path, text) in &pbx.rendered.files {
        if !path.starts_with("extensions.d/") {
            continue;
        }
        for line in text.lines() {
            assert_eq!(
                pbxdesk_render::dialplan::unfiltered_caller_data(line),
                None,
                "{path}: {line}"
            );
        }
    }
}

fn dialled() -> impl Strategy<Value = String> {
    let hostile = "[0-9*#+,&@/()${}:;\"' a-zA-Z\\\\-]";
    let re = |r: String| proptest::string::string_regex(&r).unwrap();
    prop_oneof![
        re(format!("9[0-9]{hostile}{{0,20}}")),
        re(format!("0[1-9]{hostile}{{0,20}}")),
        re(format!("\\*(72|90|92)[0-9]{hostile}{{0,12}}")),
        re(format!("\\+[0-9]{hostile}{{0,16}}")),
        re(format!("{hostile}{{1,24}}")),
        re("[ -~]{1,30}".to_owned()),
    ]
}

/// Arbitrary printable dialled strings, from a phone and from the carrier, never make a Dial
/// reach an endpoint outside the caller's tenant; and `trace --from` says what the dialplan
/// does with the same string.
#[test]
fn arbitrary_dialled_strings_stay_in_the_tenant_and_trace_agrees() {
    let pbx = Pbx::new();
    let mut runner = TestRunner::new(Config {
        cases: 400,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&dialled(), |s| {
            let got = pbx.call_from_device("acme-1000", &s, &[]);
            assert_within(&pbx.snap, "acme", &s, &got);
            assert_within(&pbx.snap, "acme", &s, &pbx.call_from_trunk("carrier", &s));
            assert_within(
                &pbx.snap,
                "globex",
                &s,
                &pbx.call_from_device("globex-2000", &s, &[]),
            );

            let trace = trace_from(&pbx.snap, "acme", 1000, &s).unwrap();
            let last = trace.path.last().unwrap();
            match last.kind {
                HopKind::Trunks => {
                    let sent = last
                        .title
                        .strip_prefix("Dials ")
                        .and_then(|r| r.split(" through ").next())
                        .unwrap();
                    prop_assert_eq!(
                        got.first(),
                        Some(&Dialed {
                            endpoint: "pbxdesk-trunk-carrier".into(),
                            number: Some(sent.to_owned())
                        }),
                        "trace: {:?}",
                        trace.path
                    );
                }
                HopKind::Voicemail | HopKind::NoAnswer => {
                    let ring = trace
                        .path
                        .iter()
                        .find(|h| h.kind == HopKind::Devices)
                        .unwrap();
                    let first = got.first().map(|d| d.endpoint.clone()).unwrap_or_default();
                    prop_assert!(
                        ring.detail.contains(&first),
                        "{:?} vs {:?}",
                        got,
                        trace.path
                    );
                }
                _ => prop_assert!(
                    got.is_empty(),
                    "trace {:?} but dialled {:?}",
                    trace.path,
                    got
                ),
            }
            Ok(())
        })
        .unwrap();
}

/// A call to a ring group, run by the double: the members at once, then in turn from where the
/// last call started, each ring bounded by the group's time, members on DND left out, an
/// answer ending it, and voicemail last.
#[test]
fn a_ring_group_call_rings_its_members_in_turn_and_goes_on() {
    let pbx = Pbx::new();
    let endpoints = |o: &pbxdesk_remote::testkit::dialplan::Outcome| -> Vec<String> {
        o.dialed.iter().map(|d| d.endpoint.clone()).collect()
    };
    let mut x = Executor::new(&pbx.program);
    x.dial_status = Box::new(|_| "NOANSWER".to_owned());
    let first = x
        .call(&trunk_context("carrier"), "+41445550150", &[])
        .unwrap();
    assert_eq!(
        endpoints(&first),
        [
            "acme-1000",
            "acme-1001",
            "acme-1001-desk",
            "acme-1001",
            "acme-1001-desk",
            "acme-1000"
        ],
        "{:#?}",
        first.trace
    );
    // 30 s at once; then 10 s for Bob and the 5 s the group has left for Ada.
    assert_eq!(x.dial_timeouts, ["30", "10", "5"]);
    assert_eq!(first.voicemail, ["1000@acme_vm"]);
    // The next call starts one further: Ada first. Bob on DND is left out everywhere.
    let db = x.db.clone();
    let mut x = Executor::new(&pbx.program);
    x.dial_status = Box::new(|_| "NOANSWER".to_owned());
    x.db = db;
    x.db.insert("pbxdesk/acme/1001/dnd".into(), "1".into());
    let second = x
        .call(&trunk_context("carrier"), "+41445550150", &[])
        .unwrap();
    assert_eq!(
        endpoints(&second),
        ["acme-1000", "acme-1000"],
        "{:#?}",
        second.trace
    );
    assert_eq!(second.voicemail, ["1000@acme_vm"]);
    // An answer ends the call there.
    let mut x = Executor::new(&pbx.program);
    x.dial_status = Box::new(|_| "ANSWER".to_owned());
    let answered = x
        .call(&trunk_context("carrier"), "+41445550150", &[])
        .unwrap();
    assert_eq!(endpoints(&answered).len(), 3);
    assert!(answered.voicemail.is_empty());
    // Dialled from a phone, the group's extension rings the same group.
    let inside = pbx.call_from_device("acme-1000", "1500", &[]);
    assert!(
        inside.iter().any(|d| d.endpoint == "acme-1001"),
        "{inside:?}"
    );
    assert_within(&pbx.snap, "acme", "ring group", &inside);
    // A person's text never reaches the dialplan.
    assert!(pbx.rendered.files.values().all(|f| !f.contains("Everyone")));
}
