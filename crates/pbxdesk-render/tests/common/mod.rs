//! The golden fixture: a small PBX with two tenants that exercises every kind of route.
#![allow(dead_code)]

use pbxdesk_render::snapshot::*;

pub fn dev(username: &str, password: &str) -> Device {
    Device {
        username: username.into(),
        password: password.into(),
        transport: "udp".into(),
        codecs: "g722,ulaw".into(),
        nat: true,
    }
}

pub fn user(ext: u32, name: &str, devices: Vec<Device>) -> User {
    User {
        extension: ext,
        name: name.into(),
        email: format!("{ext}@example.com"),
        active: true,
        ring_seconds: 25,
        voicemail: true,
        voicemail_pin: Some(format!("{ext}9")),
        caller_id: None,
        policy: None,
        devices,
    }
}

pub fn rule(pattern: &str, allow: bool, strip: u32, prepend: &str, trunks: &[&str]) -> Rule {
    Rule {
        pattern: pattern.into(),
        allow,
        strip,
        prepend: prepend.into(),
        trunks: trunks.iter().map(|s| (*s).to_owned()).collect(),
    }
}

pub fn did(number: &str, label: &str, destination: Destination) -> Did {
    Did {
        number: number.into(),
        label: label.into(),
        destination,
        trunk: None,
    }
}

pub fn trunk(name: &str, register: bool, enabled: bool, tenants: &[&str]) -> Trunk {
    Trunk {
        name: name.into(),
        host: format!("sip.{name}.example.net"),
        port: 5060,
        transport: "udp".into(),
        register,
        username: register.then(|| format!("{name}-user")),
        password: register.then(|| format!("{name}-Secret-1")),
        from_domain: register.then(|| format!("{name}.example.net")),
        from_user: None,
        codecs: vec!["alaw".into(), "ulaw".into()],
        enabled,
        tenants: tenants.iter().map(|s| (*s).to_owned()).collect(),
    }
}

pub fn golden_snapshot() -> Snapshot {
    let mut anna = user(
        100,
        "Anna Müller",
        vec![
            dev("acme-100", "pw-100-a"),
            dev("acme-100-desk", "pw-100-b"),
        ],
    );
    anna.caller_id = Some("+41445551200".into());
    let mut bruno = user(101, "Bruno \"B\" Keller", vec![dev("acme-101", "pw-101")]);
    bruno.voicemail = false;
    bruno.voicemail_pin = None;
    bruno.policy = Some("intl".into());
    let mut carla = user(102, "Carla Suspended", vec![dev("acme-102", "pw-102")]);
    carla.active = false;
    let acme = Tenant {
        slug: "acme".into(),
        name: "Acme Dental".into(),
        country: "CH".into(),
        active: true,
        unknown_did: Destination::User(100),
        caller_id: Some("+41445551299".into()),
        default_policy: Some("default".into()),
        users: vec![anna, bruno, carla],
        dids: vec![
            Did {
                trunk: Some("sipcall".into()),
                ..did("+41445551200", "Main line", Destination::User(100))
            },
            did(
                "+41445551201",
                "Anna's voicemail",
                Destination::Voicemail(100),
            ),
            did(
                "+41445551202",
                "After hours",
                Destination::External("+41791234567".into()),
            ),
            did("+41445551299", "Old fax", Destination::Hangup),
            did("+41445551210", "Front desk", Destination::RingGroup(150)),
        ],
        policies: vec![
            Policy {
                name: "default".into(),
                rules: vec![
                    rule("_0[1-9]X.", true, 1, "+41", &["sipcall", "backup"]),
                    rule("_00X.", false, 0, "", &[]),
                    rule("_0900X.", false, 0, "", &[]),
                    rule("_+X.", true, 0, "", &["sipcall"]),
                ],
            },
            Policy {
                name: "intl".into(),
                rules: vec![
                    rule("_00X.", true, 2, "+", &["sipcall"]),
                    rule("_0X.", true, 1, "+41", &["sipcall"]),
                ],
            },
        ],
        // All at once (Carla is suspended: left out), then in order, then round robin, each
        // going on to the next when nobody answers.
        ring_groups: vec![
            RingGroup {
                extension: 150,
                name: "Front desk; ${EXTEN}".into(),
                ring: Ring::All,
                members: vec![100, 101, 102],
                member_seconds: 20,
                total_seconds: 30,
                no_answer: Destination::RingGroup(151),
            },
            RingGroup {
                extension: 151,
                name: "Billing".into(),
                ring: Ring::InOrder,
                members: vec![101, 100],
                member_seconds: 15,
                total_seconds: 45,
                no_answer: Destination::RingGroup(152),
            },
            RingGroup {
                extension: 152,
                name: "Everyone".into(),
                ring: Ring::RoundRobin,
                members: vec![100, 101],
                member_seconds: 10,
                total_seconds: 20,
                no_answer: Destination::Voicemail(100),
            },
        ],
    };
    let globex = Tenant {
        slug: "globex".into(),
        name: "Globex Corp".into(),
        country: "US".into(),
        active: true,
        unknown_did: Destination::User(1000),
        caller_id: None,
        default_policy: Some("us".into()),
        users: vec![user(
            1000,
            "Hank Scorpio",
            vec![dev("globex-1000", "pw-1000")],
        )],
        dids: vec![did("+12125551000", "Reception", Destination::User(1000))],
        policies: vec![Policy {
            name: "us".into(),
            rules: vec![rule("_NXXNXXXXXX", true, 0, "+1", &["twilio"])],
        }],
        ring_groups: Vec::new(),
    };
    Snapshot {
        pbx: "demo-pbx".into(),
        tenants: vec![globex, acme],
        trunks: vec![
            trunk("twilio", true, true, &["globex"]),
            trunk("sipcall", true, true, &["acme"]),
            trunk("backup", false, false, &["acme"]),
        ],
    }
}
