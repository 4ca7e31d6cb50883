//! "Check this PBX" end to end: a real OpenSSH server on loopback plays the PBX (its config
//! folder is a temporary folder), AMI is the capture-replaying double, the realtime database is
//! this machine's MariaDB, and AMI and MariaDB are reached through SSH tunnels to the "PBX's"
//! 127.0.0.1, as in production.

#![allow(clippy::unwrap_used, clippy::panic)] // tests fail loudly by design

mod harness;

use pbxdesk_core::domain::SshAuth;
use pbxdesk_core::model::{CheckLine, NewPbx, PbxPatch};
use pbxdesk_remote::realtime::ASTERISK22_SCHEMA;
use pbxdesk_remote::testkit::{start_ami, whoami, Behaviour, Sshd};
use sqlx::Executor;

fn find<'a>(lines: &'a [CheckLine], item: &str) -> &'a CheckLine {
    lines
        .iter()
        .find(|l| l.item == item)
        .unwrap_or_else(|| panic!("no line {item}: {lines:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_reports_each_part_with_a_fix() {
    let h = harness::Harness::sqlite().await;
    let ws = &h.ws;
    let me = ws.local_owner().unwrap();
    let sshd = Sshd::start();
    std::fs::write(
        sshd.etc().join("extensions.conf"),
        "[general]\n#tryinclude extensions.d/pbxdesk/*.conf\n",
    )
    .unwrap();
    std::fs::write(sshd.etc().join("pjsip.conf"), "[global]\n").unwrap();
    let (ami_addr, _) = start_ami(Behaviour {
        sessions: vec!["s1", "s11"],
        ..Default::default()
    })
    .await;
    let ami_port: u16 = ami_addr.rsplit_once(':').unwrap().1.parse().unwrap();
    let db = format!("pbxdesk_chk_{}", std::process::id());
    let admin = sqlx::mysql::MySqlPool::connect("mysql://root@127.0.0.1:3306/mysql")
        .await
        .expect("MariaDB is required");
    admin
        .execute(format!("DROP DATABASE IF EXISTS {db}").as_str())
        .await
        .unwrap();
    admin
        .execute(format!("CREATE DATABASE {db}").as_str())
        .await
        .unwrap();
    let rt = sqlx::mysql::MySqlPool::connect(&format!("mysql://root@127.0.0.1:3306/{db}"))
        .await
        .unwrap();
    sqlx::raw_sql(ASTERISK22_SCHEMA).execute(&rt).await.unwrap();

    let profile = PbxPatch {
        host: Some("127.0.0.1".into()),
        ssh_port: Some(sshd.port),
        ssh_user: Some(whoami()),
        ssh_auth: Some(SshAuth::Key),
        ssh_key_path: Some(sshd.key_path("user_key").display().to_string()),
        config_dir: Some(sshd.etc().display().to_string()),
        ami_port: Some(ami_port),
        ami_user: Some("pbx".into()),
        ami_secret: Some("pbx-secret-1".into()),
        db_user: Some("root".into()),
        db_name: Some(db.clone()),
        ..Default::default()
    };
    ws.pbx_add(
        &me,
        &NewPbx {
            name: "pbx1".into(),
            profile,
        },
    )
    .await
    .unwrap();

    // An untrusted host key: only the host is reached (no login), and its key is named.
    let lines = ws.pbx_check(&me, "pbx1").await.unwrap();
    assert_eq!(lines.len(), 1);
    assert!(
        !lines[0].ok && lines[0].fix.as_deref() == Some("pbxdesk pbx trust pbx1"),
        "{lines:?}"
    );
    assert!(lines[0].detail.contains(&sshd.fingerprint()), "{lines:?}");
    // A host that does not resolve is said to be the problem, not its key.
    ws.pbx_add(&me, &NewPbx::at("nowhere", "pbx.does-not-resolve.invalid"))
        .await
        .unwrap();
    let lines = ws.pbx_check(&me, "nowhere").await.unwrap();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0].item, "SSH");
    assert!(lines[0].detail.contains("cannot reach"), "{lines:?}");
    assert!(
        !lines[0].fix.as_deref().unwrap_or("").contains("trust"),
        "{lines:?}"
    );

    let offered = ws.pbx_probe_host_key(&me, "pbx1").await.unwrap();
    assert_eq!(offered, sshd.fingerprint());
    ws.pbx_trust(&me, "pbx1", &offered).await.unwrap();

    let lines = ws.pbx_check(&me, "pbx1").await.unwrap();
    for item in [
        "SSH",
        "config folder",
        "include in extensions.conf",
        "free disk",
        "AMI",
        "realtime database",
    ] {
        assert!(find(&lines, item).ok, "{item}: {lines:?}");
    }
    assert!(
        find(&lines, "AMI").detail.contains("Asterisk 22.10.1"),
        "{lines:?}"
    );
    // The replayed captures have no DBGetTree of `pbxdesk` (s1 read `pbx`): the line says the
    // AMI user cannot reach AstDB, and which classes it needs.
    let astdb = find(&lines, "AstDB (DND and forwards)");
    assert!(
        !astdb.ok && astdb.fix.as_deref().unwrap().contains("write = system"),
        "{astdb:?}"
    );
    // The replayed captures have no `pjsip show transports` over AMI: the line says it
    // cannot list them, and how to fix it.
    let transports = find(&lines, "transports");
    assert!(!transports.ok && transports.fix.is_some(), "{transports:?}");
    // s11: CoreRunGroup is empty (Asterisk runs as root); nothing generated yet.
    let access = find(&lines, "file access");
    assert!(
        access.ok && access.detail.contains("no generated files yet"),
        "{access:?}"
    );
    // A generated file any local user can read is a failing check.
    std::fs::create_dir_all(sshd.etc().join("pjsip.d/pbxdesk")).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        let f = sshd.etc().join("pjsip.d/pbxdesk/trunk-x.conf");
        std::fs::write(&f, "; x\n").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::fs::set_permissions(
            sshd.etc().join("pjsip.d/pbxdesk"),
            std::fs::Permissions::from_mode(0o750),
        )
        .unwrap();
        let lines = ws.pbx_check(&me, "pbx1").await.unwrap();
        let access = find(&lines, "file access");
        assert!(
            !access.ok && access.detail.contains("trunk-x.conf (644)"),
            "{access:?}"
        );
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o640)).unwrap();
        let lines = ws.pbx_check(&me, "pbx1").await.unwrap();
        assert!(find(&lines, "file access").ok, "{lines:?}");
        std::fs::remove_dir_all(sshd.etc().join("pjsip.d")).unwrap();
    }
    let pjsip = find(&lines, "include in pjsip.conf");
    assert!(!pjsip.ok);
    assert!(
        pjsip
            .fix
            .as_deref()
            .unwrap()
            .contains("#tryinclude pjsip.d/pbxdesk/*.conf"),
        "{pjsip:?}"
    );

    // No sorcery.conf: every PJSIP object comes from pjsip.conf, so trunk files load. The
    // captured realtime-only sorcery.conf (Asterisk 22.10.1) hides them: FAIL, with the lines
    // to add and the restart.
    assert!(find(&lines, "sorcery.conf").ok, "{lines:?}");
    std::fs::write(
        sshd.etc().join("sorcery.conf"),
        std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/asterisk22-sorcery.realtime_only.conf"
        ))
        .unwrap(),
    )
    .unwrap();
    let lines = ws.pbx_check(&me, "pbx1").await.unwrap();
    let sorcery = find(&lines, "sorcery.conf");
    assert!(!sorcery.ok, "{sorcery:?}");
    let fix = sorcery.fix.as_deref().unwrap();
    assert!(
        fix.contains("endpoint = config,pjsip.conf,criteria=type=endpoint")
            && fix.contains("[res_pjsip_endpoint_identifier_ip] identify = config,pjsip.conf")
            && fix.contains("restart Asterisk"),
        "{fix}"
    );
    std::fs::remove_file(sshd.etc().join("sorcery.conf")).unwrap();

    // A wrong AMI secret is reported on its own line; the rest still answers.
    ws.pbx_update(
        &me,
        "pbx1",
        &PbxPatch {
            ami_secret: Some("wrong-secret".into()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let lines = ws.pbx_check(&me, "pbx1").await.unwrap();
    let ami = find(&lines, "AMI");
    assert!(!ami.ok && ami.fix.is_some(), "{ami:?}");
    assert!(!ami.detail.contains("wrong-secret"));
    assert!(find(&lines, "realtime database").ok);

    rt.close().await;
    admin
        .execute(format!("DROP DATABASE {db}").as_str())
        .await
        .unwrap();
}
