#![allow(clippy::unwrap_used, clippy::panic)]
//! The guarded apply end to end: Debian's OpenSSH server on loopback plays the PBX (its config
//! folder a temporary folder holding the captured Asterisk 22 config files), the stateful
//! Asterisk double loads the dialplan from that folder by the captured rules and answers AMI,
//! and this machine's MariaDB holds Asterisk's realtime tables. AMI and MariaDB are reached
//! through SSH tunnels, as in production. Faults are injected and the PBX must end exactly in
//! the old state or exactly in the new one.

mod harness;
mod pbx_double;

use pbx_double::{
    backups, endpoints, fixture, product_files, reloads, rename_ada, setup, setup_with_sorcery,
    small_pbx,
};
use pbxdesk_core::model::AuditQuery;
use pbxdesk_core::service::{ApplyOptions, ApplyOutcome, StepKind};
use pbxdesk_core::{Error, ErrorCode, Refusal};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_then_nothing_to_do_then_a_failed_reload_restores_the_old_state() {
    let h = harness::Harness::sqlite().await;
    let (ws, me) = (&h.ws, h.ws.local_owner().unwrap());
    let pbx = setup(ws, &me, "a").await;
    let etc = pbx.sshd.etc();

    // The include line is added only with consent.
    let e = ws
        .pbx_apply(&me, "demo-pbx", &ApplyOptions::default())
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::Refused);
    assert!(
        matches!(&e, Error::Refused(Refusal::MissingInclude { file, .. }) if file == "extensions.conf"),
        "{e}"
    );
    assert!(
        product_files(&etc).is_empty(),
        "nothing written before consent"
    );

    // A dry run previews and changes nothing.
    let dry = ws
        .pbx_apply(
            &me,
            "demo-pbx",
            &ApplyOptions {
                dry_run: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(dry.outcome, ApplyOutcome::DryRun);
    assert_eq!(dry.diff.rows_added.len(), 16);
    assert!(
        dry.summary
            .starts_with("tenants acme-dental, globex; 16 user(s), 16 device(s),"),
        "{}",
        dry.summary
    );
    assert_eq!(reloads(&pbx.ast), 0);

    let opts = ApplyOptions {
        add_includes: true,
        ..Default::default()
    };
    let rep = ws.pbx_apply(&me, "demo-pbx", &opts).await.unwrap();
    assert_eq!(rep.outcome, ApplyOutcome::Applied, "{:?}", rep.steps);
    assert!(rep.steps.iter().all(|s| s.ok), "{:?}", rep.steps);
    let rendered = ws.pbx_render(&me, "demo-pbx", true).await.unwrap();
    assert_eq!(
        product_files(&etc),
        rendered.files,
        "the PBX holds exactly the render"
    );
    assert!(std::fs::read_to_string(etc.join("extensions.conf"))
        .unwrap()
        .contains("#tryinclude extensions.d/pbxdesk/*.conf"));
    let rows = endpoints(&pbx.db).await;
    assert_eq!(rows.len(), 16);
    assert_eq!(
        rows["acme-dental-100"].1.as_deref(),
        Some("PBXDESK_EXT=100")
    );
    assert!(pbx
        .ast
        .dialplan
        .lock()
        .unwrap()
        .contains_key("acme-dental_users"));
    // Confirmed: the PBX's own rollback is disarmed and the secrets it needed are gone.
    let b = backups(&etc);
    assert_eq!(b.len(), 1, "{b:?}");
    assert!(b[0].1.contains(&"confirmed".to_owned()), "{b:?}");
    assert!(
        !b[0]
            .1
            .iter()
            .any(|n| n == "armed" || n == "db.cnf" || n == "undo.sql"),
        "{b:?}"
    );
    // New realtime endpoints: res_pjsip was reloaded, so none is stuck Unavailable (capture
    // pjsip_show_endpoints_after_insert_no_reload.txt), and PJSIP knows all 16.
    assert!(pbx
        .ast
        .seen
        .lock()
        .unwrap()
        .contains(&"Reload:res_pjsip".to_owned()));
    assert_eq!(pbx.ast.unavailable_endpoints().await, Vec::<String>::new());
    assert!(rep
        .steps
        .iter()
        .any(|s| s.step == "verify endpoints" && s.detail.contains("16 endpoint")));
    assert!(
        !etc.join(".pbxdesk-apply.lock").exists(),
        "the lock is released"
    );
    let verify = rep
        .steps
        .iter()
        .find(|s| s.step == "verify dialplan")
        .unwrap();
    assert!(verify.detail.contains("loaded as rendered"), "{verify:?}");
    assert!(
        ws.pbx_diff(&me, "demo-pbx").await.unwrap().diff.is_empty(),
        "recorded as last applied"
    );

    // Twice in a row with no change: nothing happens on the PBX.
    let before = reloads(&pbx.ast);
    let again = ws.pbx_apply(&me, "demo-pbx", &opts).await.unwrap();
    assert_eq!(again.outcome, ApplyOutcome::NothingToDo);
    assert_eq!(reloads(&pbx.ast), before);

    // A change, and extensions.conf broken by hand: the reload reports the error (capture s5),
    // the files go back and the realtime rows are undone.
    let old_files = product_files(&etc);
    let old_rows = endpoints(&pbx.db).await;
    // A new ring time changes the dialplan (pbx_config is reloaded); the name, the mailbox and
    // the realtime row.
    rename_ada(ws, &me, "Ada King", Some(40)).await;
    let main = std::fs::read_to_string(etc.join("extensions.conf")).unwrap();
    std::fs::write(etc.join("extensions.conf"), format!("{main}\n[broken\n")).unwrap();
    let failed = ws.pbx_apply(&me, "demo-pbx", &opts).await.unwrap();
    assert_eq!(
        failed.outcome,
        ApplyOutcome::RolledBack,
        "{:?}",
        failed.steps
    );
    assert_eq!(failed.failed.map(StepKind::label), Some("reload"));
    assert_eq!(product_files(&etc), old_files, "exactly the old files");
    assert_eq!(endpoints(&pbx.db).await, old_rows, "exactly the old rows");
    assert!(!etc.join(".pbxdesk-apply.lock").exists());
    let b = backups(&etc);
    assert!(
        b.last().unwrap().1.contains(&"rolled-back".to_owned()),
        "{b:?}"
    );
    assert!(!b
        .last()
        .unwrap()
        .1
        .iter()
        .any(|n| n == "db.cnf" || n == "armed"));
    let audit = ws.audit_list(&me, &AuditQuery::default()).await.unwrap();
    let applies: Vec<_> = audit.iter().filter(|a| a.action == "pbx.apply").collect();
    assert_eq!(
        applies.len(),
        3,
        "one refused (no include line yet), one applied, one rolled back"
    );
    let text = serde_json::to_string(&applies).unwrap();
    assert!(text.contains("rolled_back") && text.contains("\"applied\""));
    assert!(text.contains("\"refused\""), "{text}");
    let pw = ws
        .device_reveal(
            &me,
            ws.user_show(&me, ws.user_resolve(&me, "acme-dental/100").await.unwrap())
                .await
                .unwrap()
                .devices[0]
                .id,
        )
        .await
        .unwrap()
        .sip_password;
    assert!(!text.contains(&pw), "no secret in the audit");

    // Mended by hand, the same change applies.
    std::fs::write(etc.join("extensions.conf"), main).unwrap();
    let ok = ws.pbx_apply(&me, "demo-pbx", &opts).await.unwrap();
    assert_eq!(ok.outcome, ApplyOutcome::Applied, "{:?}", ok.steps);
    assert!(endpoints(&pbx.db).await["acme-dental-100"]
        .0
        .contains("Ada King"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_and_locks_are_respected() {
    let h = harness::Harness::sqlite().await;
    let (ws, me) = (&h.ws, h.ws.local_owner().unwrap());
    let pbx = setup(ws, &me, "b").await;
    let etc = pbx.sshd.etc();
    let opts = ApplyOptions {
        add_includes: true,
        ..Default::default()
    };

    // Another apply holds the lock: told who and since when; nothing changes.
    std::fs::create_dir_all(etc.join(".pbxdesk-apply.lock")).unwrap();
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    std::fs::write(
        etc.join(".pbxdesk-apply.lock/owner"),
        format!("alice {now_ms}"),
    )
    .unwrap();
    let e = ws.pbx_apply(&me, "demo-pbx", &opts).await.unwrap_err();
    assert!(e.to_string().contains("alice"), "{e}");
    assert!(product_files(&etc).is_empty());
    // A lock being taken at this moment (the folder made, its note not written yet) is held,
    // not taken for a stale one (two apply processes once both applied through this gap).
    std::fs::remove_file(etc.join(".pbxdesk-apply.lock/owner")).unwrap();
    let note = etc.join(".pbxdesk-apply.lock/owner");
    let writer = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(400));
        std::fs::write(note, format!("bob {now_ms}")).unwrap();
    });
    let e = ws.pbx_apply(&me, "demo-pbx", &opts).await.unwrap_err();
    writer.join().unwrap();
    assert!(e.to_string().contains("bob"), "{e}");
    assert!(product_files(&etc).is_empty());
    // The same with the note created but still empty (its write not landed yet): held too.
    // Read as a lock from 1970, it was broken as stale and two applies ran at once.
    std::fs::write(etc.join(".pbxdesk-apply.lock/owner"), "").unwrap();
    let note = etc.join(".pbxdesk-apply.lock/owner");
    let writer = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(400));
        std::fs::write(note, format!("carol {now_ms}")).unwrap();
    });
    let e = ws.pbx_apply(&me, "demo-pbx", &opts).await.unwrap_err();
    writer.join().unwrap();
    assert!(e.to_string().contains("carol"), "{e}");
    assert!(product_files(&etc).is_empty());
    // A lock left by a crashed apply long ago is broken.
    // Its age is the PBX's clock's (the note's modification time), not the time in the note:
    // a lock written just now by a laptop whose clock is 20 minutes behind is held.
    let skewed = etc.join(".pbxdesk-apply.lock/owner");
    std::fs::write(&skewed, format!("skewed {}", now_ms - 20 * 60 * 1000)).unwrap();
    let e = ws.pbx_apply(&me, "demo-pbx", &opts).await.unwrap_err();
    assert!(e.to_string().contains("skewed"), "a live lock is held: {e}");
    assert!(product_files(&etc).is_empty());
    std::fs::write(etc.join(".pbxdesk-apply.lock/owner"), "ghost 1000").unwrap();
    std::fs::File::options()
        .write(true)
        .open(etc.join(".pbxdesk-apply.lock/owner"))
        .unwrap()
        .set_modified(std::time::SystemTime::now() - std::time::Duration::from_secs(20 * 60))
        .unwrap();
    let rep = ws.pbx_apply(&me, "demo-pbx", &opts).await.unwrap();
    assert_eq!(rep.outcome, ApplyOutcome::Applied, "{:?}", rep.steps);
    assert!(
        rep.steps
            .iter()
            .any(|s| s.detail.contains("stale lock left by ghost")),
        "{:?}",
        rep.steps
    );

    // Someone edits a generated file by hand: the apply shows the drift and stops.
    let f = etc.join("extensions.d/pbxdesk/tenant-globex.conf");
    let text = std::fs::read_to_string(&f).unwrap();
    std::fs::write(&f, format!("{text}; hand edit\n")).unwrap();
    let e = ws.pbx_apply(&me, "demo-pbx", &opts).await.unwrap_err();
    assert!(
        matches!(&e, Error::Refused(Refusal::Drift { files })
            if files == &vec!["extensions.d/pbxdesk/tenant-globex.conf".to_owned()]),
        "{e}"
    );
    // The refused attempt is in the PBX's history, newest first, with the steps it took.
    let hist = ws.pbx_apply_history(&me, "demo-pbx", 1).await.unwrap();
    assert_eq!(hist[0].outcome, "refused", "{hist:?}");
    assert!(hist[0].summary.contains("changed by hand"), "{hist:?}");
    assert!(hist[0].diff.is_empty(), "nothing was applied: {hist:?}");
    let rep = ws
        .pbx_apply(
            &me,
            "demo-pbx",
            &ApplyOptions {
                overwrite_drift: true,
                ..opts
            },
        )
        .await
        .unwrap();
    assert_eq!(rep.outcome, ApplyOutcome::Applied);
    assert_eq!(
        std::fs::read_to_string(&f).unwrap(),
        text,
        "the hand edit was replaced"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_realtime_transaction_and_a_concurrent_apply_leave_no_mix() {
    let h = harness::Harness::sqlite().await;
    let (ws, me) = (&h.ws, h.ws.local_owner().unwrap());
    let pbx = setup(ws, &me, "c").await;
    let etc = pbx.sshd.etc();
    let opts = ApplyOptions {
        add_includes: true,
        ..Default::default()
    };

    // Two applies at once: the PBX lock lets one through; never two writers.
    let (a, b) = tokio::join!(
        ws.pbx_apply(&me, "demo-pbx", &opts),
        ws.pbx_apply(&me, "demo-pbx", &opts)
    );
    let outcomes: Vec<String> = [&a, &b]
        .iter()
        .map(|r| match r {
            Ok(rep) => format!("{:?}", rep.outcome),
            Err(e) => e.to_string(),
        })
        .collect();
    let failed_steps: Vec<String> = [&a, &b]
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .flat_map(|rep| rep.steps.iter().filter(|s| !s.ok))
        .map(|s| format!("{}: {}", s.step, s.detail))
        .collect();
    assert_eq!(
        outcomes.iter().filter(|o| *o == "Applied").count(),
        1,
        "{outcomes:?} {failed_steps:?}"
    );
    assert!(
        outcomes
            .iter()
            .any(|o| o.contains("another apply") || o == "NothingToDo"),
        "{outcomes:?} {failed_steps:?}"
    );
    let rendered = ws.pbx_render(&me, "demo-pbx", true).await.unwrap();
    assert_eq!(product_files(&etc), rendered.files);

    let old_files = product_files(&etc);
    let old_rows = endpoints(&pbx.db).await;
    rename_ada(ws, &me, "Ada Byron", Some(33)).await;
    // A table gone: found before anything changes, so the apply stops with the PBX untouched.
    sqlx::query("RENAME TABLE ps_aors TO ps_aors_gone")
        .execute(&pbx.db)
        .await
        .unwrap();
    let stopped = ws.pbx_apply(&me, "demo-pbx", &opts).await.unwrap();
    assert_eq!(
        stopped.outcome,
        ApplyOutcome::Stopped,
        "{:?}",
        stopped.steps
    );
    assert_eq!(
        stopped.failed.map(StepKind::label),
        Some("connect realtime database")
    );
    assert!(!stopped.steps.iter().any(|s| s.step == "upload"));
    assert_eq!(product_files(&etc), old_files);
    sqlx::query("RENAME TABLE ps_aors_gone TO ps_aors")
        .execute(&pbx.db)
        .await
        .unwrap();

    // The transaction itself fails half-way (the database refuses the aor rows, after the
    // endpoint and auth rows went in): the rows stay as they were, the uploaded files go back.
    sqlx::raw_sql("CREATE TRIGGER pbxdesk_test_fail BEFORE INSERT ON ps_aors FOR EACH ROW SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'injected: the disk is full'")
        .execute(&pbx.db)
        .await
        .unwrap();
    let failed = ws.pbx_apply(&me, "demo-pbx", &opts).await.unwrap();
    assert_eq!(
        failed.outcome,
        ApplyOutcome::RolledBack,
        "{:?}",
        failed.steps
    );
    assert_eq!(
        failed.failed.map(StepKind::label),
        Some("sync realtime rows")
    );
    assert!(failed.steps.iter().any(|s| s.step == "upload" && s.ok));
    assert_eq!(product_files(&etc), old_files, "exactly the old files");
    assert_eq!(endpoints(&pbx.db).await, old_rows, "exactly the old rows");
    let last = failed.steps.last().unwrap();
    assert_eq!(last.step, "unlock");
    assert!(
        failed
            .steps
            .iter()
            .any(|s| s.step == "reload and verify the old state" && s.ok),
        "{:?}",
        failed.steps
    );
    // The old dialplan is what Asterisk runs again.
    let d = pbx.ast.dialplan.lock().unwrap().clone();
    assert!(d.contains_key("acme-dental_users"));
    sqlx::raw_sql("DROP TRIGGER pbxdesk_test_fail")
        .execute(&pbx.db)
        .await
        .unwrap();

    let ok = ws.pbx_apply(&me, "demo-pbx", &opts).await.unwrap();
    assert_eq!(ok.outcome, ApplyOutcome::Applied, "{:?}", ok.steps);
    assert!(endpoints(&pbx.db).await["acme-dental-100"]
        .0
        .contains("Ada Byron"));
}

/// The faults of the issue that end with the PBX unreachable or refusing: the connection cut
/// mid-upload (the laptop cannot even roll back; the PBX does it by itself), a full disk, and
/// a verification that finds a context missing. Each ends exactly in the old state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_connection_a_full_disk_and_a_missing_context_end_in_the_old_state() {
    use pbx_double::{wait_for_marker, CutProxy, FullDisk};
    use pbxdesk_core::model::{NewUser, PbxPatch};
    let h = harness::Harness::sqlite().await;
    let (ws, me) = (&h.ws, h.ws.local_owner().unwrap());
    let pbx = setup(ws, &me, "f").await;
    let etc = pbx.sshd.etc();
    let opts = ApplyOptions {
        add_includes: true,
        confirm_seconds: Some(3),
        ..Default::default()
    };
    let first = ws.pbx_apply(&me, "demo-pbx", &opts).await.unwrap();
    assert_eq!(first.outcome, ApplyOutcome::Applied, "{:?}", first.steps);

    // 1. The connection drops mid-upload. A big change (80 new users: tens of KB of files), and
    //    a proxy that cuts every connection 16 KB after the rollback was armed.
    for i in 0..80 {
        ws.user_create(
            &me,
            &NewUser {
                tenant: "acme-dental".into(),
                name: format!("Cut User {i}"),
                email: format!("cut{i}@acme-dental.example"),
                ..NewUser::default()
            },
        )
        .await
        .unwrap();
    }
    let (old_files, old_rows) = (product_files(&etc), endpoints(&pbx.db).await);
    let old_plan = pbx.ast.dialplan.lock().unwrap().clone();
    let backups_dir = etc.join("pbxdesk-backups");
    let proxy = CutProxy::start(pbx.sshd.port, 16_000, move || {
        std::fs::read_dir(&backups_dir)
            .map(|rd| rd.flatten().any(|e| e.path().join("armed").exists()))
            .unwrap_or(false)
    });
    let to = |port: u16| PbxPatch {
        ssh_port: Some(port),
        ..Default::default()
    };
    // Another port is another endpoint: its key is pinned again (same server, same key).
    let retrust = || async {
        let fp = ws.pbx_probe_host_key(&me, "demo-pbx").await.unwrap();
        ws.pbx_trust(&me, "demo-pbx", &fp).await.unwrap();
    };
    ws.pbx_update(&me, "demo-pbx", &to(proxy.port))
        .await
        .unwrap();
    retrust().await;
    let cut = ws.pbx_apply(&me, "demo-pbx", &opts).await.unwrap();
    assert!(proxy.was_cut(), "{:?}", cut.steps);
    assert_eq!(cut.outcome, ApplyOutcome::RolledBack, "{:?}", cut.steps);
    assert_eq!(
        cut.failed.map(StepKind::label),
        Some("upload"),
        "{:?}",
        cut.steps
    );
    assert!(
        cut.steps
            .iter()
            .any(|s| s.detail.contains("rolling itself back")),
        "{:?}",
        cut.steps
    );
    // The PBX, on its own, within the window.
    assert!(wait_for_marker(&etc, "rolled-back", 30).await);
    assert_eq!(product_files(&etc), old_files, "exactly the old files");
    assert_eq!(endpoints(&pbx.db).await, old_rows, "exactly the old rows");
    assert_eq!(*pbx.ast.dialplan.lock().unwrap(), old_plan);
    assert!(!etc.join(".pbxdesk-apply.lock").exists());
    proxy.heal();

    // 2. A full disk where the generated dialplan lives: the upload fails before any file is
    //    replaced, nothing is half-written, and the laptop rolls back.
    let full = FullDisk::over(&etc.join("extensions.d/pbxdesk"));
    let disk = ws.pbx_apply(&me, "demo-pbx", &opts).await.unwrap();
    assert_eq!(disk.outcome, ApplyOutcome::RolledBack, "{:?}", disk.steps);
    assert_eq!(disk.failed.map(StepKind::label), Some("upload"));
    let upload = disk.steps.iter().find(|s| s.step == "upload").unwrap();
    assert!(
        upload.detail.to_lowercase().contains("write")
            || upload.detail.to_lowercase().contains("space"),
        "{upload:?}"
    );
    assert!(
        disk.steps.iter().any(|s| s.step == "earlier apply"),
        "the PBX's own rollback is reported: {:?}",
        disk.steps
    );
    assert_eq!(product_files(&etc), old_files, "exactly the old files");
    assert_eq!(endpoints(&pbx.db).await, old_rows, "exactly the old rows");
    let leftovers: Vec<String> = std::fs::read_dir(etc.join("extensions.d/pbxdesk"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp"))
        .collect();
    assert!(
        leftovers.is_empty(),
        "no temporary files left: {leftovers:?}"
    );
    full.free();

    // 3. The reload says Success but a context did not load (s4): verification catches it.
    *pbx.ast.drop_next.lock().unwrap() = Some("acme-dental_users".into());
    let missing = ws.pbx_apply(&me, "demo-pbx", &opts).await.unwrap();
    assert_eq!(
        missing.outcome,
        ApplyOutcome::RolledBack,
        "{:?}",
        missing.steps
    );
    assert_eq!(missing.failed.map(StepKind::label), Some("verify dialplan"));
    assert!(missing
        .steps
        .iter()
        .any(|s| s.step == "verify dialplan" && s.detail.contains("acme-dental_users")));
    assert_eq!(product_files(&etc), old_files, "exactly the old files");
    assert_eq!(endpoints(&pbx.db).await, old_rows, "exactly the old rows");
    assert_eq!(*pbx.ast.dialplan.lock().unwrap(), old_plan);

    // With the disk freed and the PBX well, the same change applies.
    let ok = ws.pbx_apply(&me, "demo-pbx", &opts).await.unwrap();
    assert_eq!(ok.outcome, ApplyOutcome::Applied, "{:?}", ok.steps);
    assert_eq!(endpoints(&pbx.db).await.len(), old_rows.len() + 80);
    let audit = ws.audit_list(&me, &AuditQuery::default()).await.unwrap();
    assert!(audit
        .iter()
        .any(|a| a.action == "pbx.apply.rolled_back_by_pbx"));
    drop(full);
}

/// A team's shared PostgreSQL workspace: the whole apply works on it, and a teammate's apply
/// in progress (the workspace's advisory lock on this PBX) refuses a second one at once,
/// before the PBX is touched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_team_workspace_a_teammates_apply_holds_the_pbx() {
    use pbxdesk_core::domain::Role;
    use secrecy::SecretString;
    use sqlx::{Connection, PgConnection};
    let h = harness::Harness::postgres().await;
    let ws = &h.ws;
    let pw = SecretString::from("admin password 123");
    ws.operator_add(None, "admin", Role::MspAdmin, &[], &pw)
        .await
        .unwrap();
    let me = ws.login("admin", &pw).await.unwrap();
    let pbx = setup(ws, &me, "pg").await;
    let etc = pbx.sshd.etc();
    let opts = ApplyOptions {
        add_includes: true,
        ..Default::default()
    };

    // A teammate's apply holds the workspace's lock on this PBX (id 1).
    let base = harness::pg_admin_url()
        .rsplit_once('/')
        .unwrap()
        .0
        .to_owned();
    let url = format!("{base}/{}", h.pg_db.as_ref().unwrap());
    let mut teammate = PgConnection::connect(&url).await.unwrap();
    let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock(1885501540, 1)")
        .fetch_one(&mut teammate)
        .await
        .unwrap();
    assert!(got);
    let e = ws.pbx_apply(&me, "demo-pbx", &opts).await.unwrap_err();
    assert!(
        matches!(&e, Error::Refused(Refusal::TeamLocked { pbx }) if pbx == "demo-pbx"),
        "{e}"
    );
    assert!(e.to_string().contains("this team's workspace"), "{e}");
    assert!(product_files(&etc).is_empty(), "the PBX was not touched");
    assert!(!etc.join(".pbxdesk-apply.lock").exists());

    // The teammate's laptop goes away: its connection closes, the lock with it.
    teammate.close().await.unwrap();
    let rep = ws.pbx_apply(&me, "demo-pbx", &opts).await.unwrap();
    assert_eq!(rep.outcome, ApplyOutcome::Applied, "{:?}", rep.steps);
    let rendered = ws.pbx_render(&me, "demo-pbx", true).await.unwrap();
    assert_eq!(product_files(&etc), rendered.files);
    assert_eq!(endpoints(&pbx.db).await.len(), 16);
    // Released after the apply: the next change applies.
    rename_ada(ws, &me, "Ada Team", None).await;
    let again = ws.pbx_apply(&me, "demo-pbx", &opts).await.unwrap();
    assert_eq!(again.outcome, ApplyOutcome::Applied, "{:?}", again.steps);
}

/// Every apply is in the PBX's history with its diff; the last apply rolls back through the
/// same guarded steps (and rolling back again goes forward again); progress is reported step
/// by step as the apply runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_progress_and_rolling_back_the_last_apply() {
    use pbxdesk_core::service::ApplySource;
    use std::sync::{Arc, Mutex};
    let h = harness::Harness::sqlite().await;
    let (ws, me) = (&h.ws, h.ws.local_owner().unwrap());
    let pbx = setup(ws, &me, "h").await;
    let etc = pbx.sshd.etc();
    let opts = ApplyOptions {
        add_includes: true,
        ..Default::default()
    };
    let e = ws
        .pbx_apply_with(&me, "demo-pbx", &opts, ApplySource::PreviousApply, None)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("no earlier apply"), "{e}");

    let seen = Arc::new(Mutex::new(Vec::new()));
    let progress: pbxdesk_core::service::Progress = {
        let seen = seen.clone();
        Arc::new(move |s| seen.lock().unwrap().push(s.step.clone()))
    };
    let first = ws
        .pbx_apply_with(
            &me,
            "demo-pbx",
            &opts,
            ApplySource::Workspace,
            Some(progress),
        )
        .await
        .unwrap();
    assert_eq!(first.outcome, ApplyOutcome::Applied);
    let names: Vec<String> = first.steps.iter().map(|s| s.step.clone()).collect();
    assert_eq!(
        *seen.lock().unwrap(),
        names,
        "each step reported as it ended"
    );
    let (files_a, rows_a) = (product_files(&etc), endpoints(&pbx.db).await);

    rename_ada(ws, &me, "Ada Second", None).await;
    let second = ws.pbx_apply(&me, "demo-pbx", &opts).await.unwrap();
    assert_eq!(second.outcome, ApplyOutcome::Applied);
    let (files_b, rows_b) = (product_files(&etc), endpoints(&pbx.db).await);

    let hist = ws.pbx_apply_history(&me, "demo-pbx", 50).await.unwrap();
    assert_eq!(hist.len(), 3, "{hist:?}");
    assert_eq!(hist[0].outcome, "applied");
    // The first attempt (no earlier apply to go back to) is listed as refused.
    assert_eq!(hist[2].outcome, "refused", "{hist:?}");
    assert!(hist[2].summary.contains("no earlier apply"), "{hist:?}");
    assert!(
        hist[0].diff.contains("+100 => ********,Ada Second"),
        "{}",
        hist[0].diff
    );
    assert!(!hist[0].steps.is_empty());

    // Roll the last apply back: the PBX runs the first render again.
    let back = ws
        .pbx_apply_with(&me, "demo-pbx", &opts, ApplySource::PreviousApply, None)
        .await
        .unwrap();
    assert_eq!(back.outcome, ApplyOutcome::Applied, "{:?}", back.steps);
    assert!(
        back.summary.starts_with("back to the apply of"),
        "{}",
        back.summary
    );
    assert_eq!(product_files(&etc), files_a);
    assert_eq!(endpoints(&pbx.db).await, rows_a);
    // The workspace still holds the change: the preview shows it again.
    assert!(!ws.pbx_diff(&me, "demo-pbx").await.unwrap().diff.is_empty());
    // And rolling back once more goes forward again.
    ws.pbx_apply_with(&me, "demo-pbx", &opts, ApplySource::PreviousApply, None)
        .await
        .unwrap();
    assert_eq!(product_files(&etc), files_b);
    assert_eq!(endpoints(&pbx.db).await, rows_b);
    assert_eq!(
        ws.pbx_apply_history(&me, "demo-pbx", 50)
            .await
            .unwrap()
            .len(),
        5
    );
}

/// A laptop that began rolling back and vanished half-way: it had renamed "armed" to
/// "laptop-rolling-back", so the PBX's script (here run at once, as its timer would) finishes
/// the rollback: the old files, the old rows, the reloads, the lock released.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pbx_finishes_a_rollback_the_laptop_began() {
    let h = harness::Harness::sqlite().await;
    let (ws, me) = (&h.ws, h.ws.local_owner().unwrap());
    let pbx = setup(ws, &me, "m").await;
    let etc = pbx.sshd.etc();
    let opts = ApplyOptions {
        add_includes: true,
        ..Default::default()
    };
    ws.pbx_apply(&me, "demo-pbx", &opts).await.unwrap();
    let (old_files, old_rows) = (product_files(&etc), endpoints(&pbx.db).await);
    rename_ada(ws, &me, "Ada Halfway", Some(37)).await;
    // The apply hangs in the reload (after upload and sync) and the laptop goes away.
    pbx_double::apply_and_vanish_in_reload(ws, &me, &pbx, &opts).await;
    assert_ne!(product_files(&etc), old_files);
    // It held the armed rollback for the reload ("changing"), had claimed the rollback, then
    // vanished.
    let (folder, names) = backups(&etc).last().unwrap().clone();
    assert!(names.contains(&"changing".to_owned()), "{names:?}");
    let dir = etc.join("pbxdesk-backups").join(&folder);
    std::fs::rename(dir.join("changing"), dir.join("laptop-rolling-back")).unwrap();
    let path = format!(
        "{}:{}",
        pbx.sshd.bin().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let ok = std::process::Command::new("sh")
        .arg(dir.join("rollback.sh"))
        .arg("0")
        .env("PATH", path)
        .status()
        .unwrap();
    assert!(ok.success());
    let names = backups(&etc).last().unwrap().1.clone();
    assert!(names.contains(&"rolled-back".to_owned()), "{names:?}");
    assert!(!names.iter().any(|n| n == "db.cnf" || n == "undo.sql"));
    assert_eq!(product_files(&etc), old_files, "exactly the old files");
    assert_eq!(endpoints(&pbx.db).await, old_rows, "exactly the old rows");
    assert!(
        !etc.join(".pbxdesk-apply.lock").exists(),
        "the lock released"
    );
    assert!(pbx
        .ast
        .seen
        .lock()
        .unwrap()
        .contains(&"CLI:module reload pbx_config.so".to_owned()));
}

/// "Verified" means everything rendered is loaded (issue 10, item 2). With the common realtime
/// sorcery.conf (endpoint, aor, auth, identify from realtime only) Asterisk ignores the trunk
/// files: the apply refuses before touching the PBX and names the lines to add and the
/// restart. If sorcery.conf is mended but Asterisk not restarted (it reads sorcery.conf at
/// start only), the files still do not load: the trunk verification fails and the apply rolls
/// back. After a restart, the trunks are verified loaded: endpoints, identify, registrations.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trunks_must_be_loaded_not_only_uploaded() {
    let h = harness::Harness::sqlite().await;
    let (ws, me) = (&h.ws, h.ws.local_owner().unwrap());
    let realtime_only = fixture("asterisk22-sorcery.realtime_only.conf");
    let pbx = setup_with_sorcery(ws, &me, "sorcery", Some(&realtime_only)).await;
    let etc = pbx.sshd.etc();
    let opts = ApplyOptions {
        add_includes: true,
        ..Default::default()
    };
    let e = ws.pbx_apply(&me, "demo-pbx", &opts).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::Refused, "{e}");
    let msg = e.to_string();
    for want in [
        "sorcery.conf",
        "endpoint = config,pjsip.conf,criteria=type=endpoint",
        "aor = config,pjsip.conf,criteria=type=aor",
        "auth = config,pjsip.conf,criteria=type=auth",
        "restart Asterisk",
    ] {
        assert!(msg.contains(want), "{want} not in {msg}");
    }
    assert!(product_files(&etc).is_empty(), "nothing uploaded");
    assert!(endpoints(&pbx.db).await.is_empty(), "no row written");
    assert!(pbx.ast.loaded_file_objects().endpoints.is_empty());

    // Mended, not restarted: uploaded, reloaded, not loaded -> rolled back.
    std::fs::write(
        etc.join("sorcery.conf"),
        fixture("asterisk22-sorcery.trunks.conf"),
    )
    .unwrap();
    let rep = ws.pbx_apply(&me, "demo-pbx", &opts).await.unwrap();
    assert_eq!(rep.outcome, ApplyOutcome::RolledBack, "{:?}", rep.steps);
    assert_eq!(rep.failed.map(StepKind::label), Some("verify trunks"));
    let step = rep
        .steps
        .iter()
        .find(|s| s.step == "verify trunks")
        .unwrap();
    assert!(step.detail.contains("endpoint pbxdesk-trunk-"), "{step:?}");
    assert!(product_files(&etc).is_empty(), "the upload was taken back");
    assert!(
        endpoints(&pbx.db).await.is_empty(),
        "the rows were taken back"
    );
    drop(pbx);

    // A PBX whose Asterisk started with the file mappings: every trunk object is verified.
    let h = harness::Harness::sqlite().await;
    let (ws, me) = (&h.ws, h.ws.local_owner().unwrap());
    let trunks = fixture("asterisk22-sorcery.trunks.conf");
    let pbx = setup_with_sorcery(ws, &me, "sorcery2", Some(&trunks)).await;
    let rep = ws.pbx_apply(&me, "demo-pbx", &opts).await.unwrap();
    assert_eq!(rep.outcome, ApplyOutcome::Applied, "{:?}", rep.steps);
    let step = rep
        .steps
        .iter()
        .find(|s| s.step == "verify trunks")
        .unwrap();
    let rendered = ws.pbx_render(&me, "demo-pbx", false).await.unwrap();
    let want = pbxdesk_render::pbx::rendered_trunks(&rendered);
    assert!(!want.is_empty());
    assert!(
        step.detail
            .starts_with(&format!("{} trunk endpoint(s)", want.len())),
        "{step:?}"
    );
    let loaded = pbx.ast.loaded_file_objects();
    for k in &want {
        assert!(loaded.endpoints.contains(&k.endpoint), "{k:?}");
    }
    let seen = pbx.ast.seen.lock().unwrap().clone();
    if want.iter().any(|k| k.registration) {
        assert!(seen.iter().any(|s| s == "PJSIPShowRegistrationsOutbound"));
    }
    if want.iter().any(|k| k.identify) {
        assert!(seen
            .iter()
            .any(|s| s.starts_with("PJSIPShowEndpoint:pbxdesk-trunk-")));
    }
}

/// The generated folders and files hold trunk passwords and voicemail PINs: an apply makes
/// them readable by their owner and Asterisk's group only (0750 / 0640, group = CoreRunGroup),
/// before Asterisk reloads them. Old 0644 files are corrected too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_files_are_readable_by_asterisks_group_only() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let h = harness::Harness::sqlite().await;
    let (ws, me) = (&h.ws, h.ws.local_owner().unwrap());
    let pbx = setup(ws, &me, "modes").await;
    let etc = pbx.sshd.etc();
    // Debian's `daemon` group stands in for `asterisk` (a group every machine here has).
    let groups = std::fs::read_to_string("/etc/group").unwrap();
    let gid: u32 = groups
        .lines()
        .find_map(|l| l.strip_prefix("daemon:"))
        .and_then(|r| r.split(':').nth(1))
        .and_then(|g| g.parse().ok())
        .unwrap();
    *pbx.ast.run_as.lock().unwrap() = ("asterisk".into(), "daemon".into());
    // A folder made earlier by someone else, world-readable: corrected too.
    std::fs::create_dir_all(etc.join("voicemail.d/pbxdesk")).unwrap();
    std::fs::set_permissions(
        etc.join("voicemail.d/pbxdesk"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let opts = ApplyOptions {
        add_includes: true,
        ..Default::default()
    };
    let rep = ws.pbx_apply(&me, "demo-pbx", &opts).await.unwrap();
    assert_eq!(rep.outcome, ApplyOutcome::Applied, "{:?}", rep.steps);
    let step = rep.steps.iter().find(|s| s.step == "file access").unwrap();
    assert!(step.detail.contains("group daemon"), "{step:?}");
    let mut checked = 0;
    for sub in [
        "extensions.d/pbxdesk",
        "pjsip.d/pbxdesk",
        "voicemail.d/pbxdesk",
    ] {
        let m = std::fs::metadata(etc.join(sub)).unwrap();
        assert_eq!(m.permissions().mode() & 0o777, 0o750, "{sub}");
        assert_eq!(m.gid(), gid, "{sub}");
        for e in std::fs::read_dir(etc.join(sub)).unwrap().flatten() {
            let m = e.metadata().unwrap();
            assert_eq!(m.permissions().mode() & 0o777, 0o640, "{:?}", e.path());
            assert_eq!(m.gid(), gid, "{:?}", e.path());
            checked += 1;
        }
    }
    assert!(checked >= 6, "{checked}");
    // A generated file loosened by hand is tightened again by the next apply that writes it.
    let f = etc.join("voicemail.d/pbxdesk/tenant-acme-dental.conf");
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
    rename_ada(ws, &me, "Ada Byron", None).await;
    let rep = ws.pbx_apply(&me, "demo-pbx", &opts).await.unwrap();
    assert_eq!(rep.outcome, ApplyOutcome::Applied, "{:?}", rep.steps);
    assert_eq!(
        std::fs::metadata(&f).unwrap().permissions().mode() & 0o777,
        0o640
    );
    // Asterisk running as a group the PBX does not know: stopped before anything changes.
    *pbx.ast.run_as.lock().unwrap() = ("asterisk".into(), "no-such-group".into());
    rename_ada(ws, &me, "Ada Lovelace", None).await;
    let rep = ws.pbx_apply(&me, "demo-pbx", &opts).await.unwrap();
    assert_eq!(
        rep.failed.map(StepKind::label),
        Some("file access"),
        "{:?}",
        rep.steps
    );
    assert!(!rep.steps.iter().any(|s| s.step == "upload"));
}

/// What the render names must exist and load on the PBX: a TLS trunk on a PBX without a TLS
/// transport is refused before anything changes (naming the transport and who uses it), and
/// applies once the PBX has one; voicemail boxes are verified loaded by app_voicemail (an
/// include line commented out by hand passes the include check but loads nothing: rolled back).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transports_exist_and_voicemail_is_verified_loaded() {
    let h = harness::Harness::sqlite().await;
    let (ws, me) = (&h.ws, h.ws.local_owner().unwrap());
    let pbx = setup(ws, &me, "transports").await;
    let etc = pbx.sshd.etc();
    let opts = ApplyOptions {
        add_includes: true,
        ..Default::default()
    };
    let trunk = ws
        .trunk_list(&me, Some("demo-pbx"))
        .await
        .unwrap()
        .into_iter()
        .next()
        .unwrap();
    ws.trunk_update(
        &me,
        "demo-pbx",
        &trunk.name,
        &pbxdesk_core::model::TrunkPatch {
            transport: Some(pbxdesk_core::domain::Transport::Tls),
            port: Some(5061),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let rep = ws.pbx_apply(&me, "demo-pbx", &opts).await.unwrap();
    assert_eq!(
        rep.failed.map(StepKind::label),
        Some("transports"),
        "{:?}",
        rep.steps
    );
    let step = rep.steps.iter().find(|s| s.step == "transports").unwrap();
    assert!(
        step.detail.contains("transport-tls")
            && step
                .detail
                .contains(&format!("pbxdesk-trunk-{}", trunk.name))
            && step.detail.contains("transport-udp (udp)"),
        "{step:?}"
    );
    assert!(product_files(&etc).is_empty(), "nothing uploaded");

    // The PBX gets a TLS transport (res_pjsip loads it): the apply goes through.
    let pjsip = std::fs::read_to_string(etc.join("pjsip.conf")).unwrap();
    std::fs::write(
        etc.join("pjsip.conf"),
        format!(
            "{pjsip}\n[transport-tls]\ntype = transport\nprotocol = tls\nbind = 127.0.0.1:5061\n"
        ),
    )
    .unwrap();
    assert!(pbx.ast.reload_module("res_pjsip").await);
    let rep = ws.pbx_apply(&me, "demo-pbx", &opts).await.unwrap();
    assert_eq!(rep.outcome, ApplyOutcome::Applied, "{:?}", rep.steps);
    let file =
        std::fs::read_to_string(etc.join(format!("pjsip.d/pbxdesk/trunk-{}.conf", trunk.name)))
            .unwrap();
    assert!(
        file.contains("transport = transport-tls") && file.contains(";transport=tls"),
        "{file}"
    );
    let vm = rep
        .steps
        .iter()
        .find(|s| s.step == "verify voicemail")
        .unwrap();
    assert!(vm.ok && vm.detail.contains("mailbox(es) loaded"), "{vm:?}");

    // voicemail.conf's include line commented out by hand (a block comment): present to the
    // include check, ignored by app_voicemail. The next change to the boxes is rolled back.
    let main = std::fs::read_to_string(etc.join("voicemail.conf")).unwrap();
    let line = "#tryinclude voicemail.d/pbxdesk/*.conf";
    std::fs::write(
        etc.join("voicemail.conf"),
        main.replace(line, &format!(";--\n{line}\n--;")),
    )
    .unwrap();
    let before = product_files(&etc);
    rename_ada(ws, &me, "Ada Voicemail", None).await;
    let rep = ws.pbx_apply(&me, "demo-pbx", &opts).await.unwrap();
    assert_eq!(rep.outcome, ApplyOutcome::RolledBack, "{:?}", rep.steps);
    assert_eq!(rep.failed.map(StepKind::label), Some("verify voicemail"));
    assert_eq!(product_files(&etc), before, "exactly the old files");
}

/// Only the lock's owner removes it (issue 11's state-machine defects): a lock another apply
/// holds by now (this one's was broken as stale while it ran) is left in place. (While the
/// PBX's own rollback runs the laptop leaves the lock to it: see
/// `nothing_changes_after_the_confirm_window_ran_out`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_owner_unlocks_and_never_during_the_pbxs_rollback() {
    use std::sync::atomic::Ordering;
    let h = harness::Harness::sqlite().await;
    let (ws, me) = (&h.ws, h.ws.local_owner().unwrap());
    let pbx = setup(ws, &me, "unlock").await;
    let etc = pbx.sshd.etc();
    let note = etc.join(".pbxdesk-apply.lock/owner");
    let opts = ApplyOptions {
        add_includes: true,
        ..Default::default()
    };
    ws.pbx_apply(&me, "demo-pbx", &opts).await.unwrap();

    // A. While the apply waits on its reload, another apply takes the lock over.
    rename_ada(ws, &me, "Ada Overtaken", Some(31)).await;
    pbx.ast.hold_reloads.store(true, Ordering::SeqCst);
    let before = reloads(&pbx.ast);
    let meddle = async {
        while reloads(&pbx.ast) == before {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        std::fs::write(&note, "mallory 1790000000000").unwrap();
        pbx.ast.hold_reloads.store(false, Ordering::SeqCst);
    };
    let (rep, ()) = tokio::join!(ws.pbx_apply(&me, "demo-pbx", &opts), meddle);
    let rep = rep.unwrap();
    let unlock = rep.steps.iter().find(|s| s.step == "unlock").unwrap();
    assert!(
        !unlock.ok && unlock.detail.contains("mallory"),
        "{unlock:?}"
    );
    assert_eq!(
        std::fs::read_to_string(&note).unwrap(),
        "mallory 1790000000000",
        "another apply's lock stays"
    );
    std::fs::remove_file(&note).unwrap();
    std::fs::remove_dir(etc.join(".pbxdesk-apply.lock")).unwrap();
}

/// The confirm window runs out while a slow upload is still going (issue 11's first defect):
/// the PBX restores the files and runs the undo by itself, and the laptop must change nothing
/// after that: no files swapped in after the PBX's restore, no new rows synced (old files with
/// new rows). Every change is made while the apply holds the armed rollback, which the PBX's
/// script waits for; once the script has it, the laptop's next change is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_changes_after_the_confirm_window_ran_out() {
    use pbx_double::{wait_for_marker, SlowProxy};
    use pbxdesk_core::model::{NewUser, PbxPatch};
    let h = harness::Harness::sqlite().await;
    let (ws, me) = (&h.ws, h.ws.local_owner().unwrap());
    let pbx = setup(ws, &me, "window").await;
    let etc = pbx.sshd.etc();
    let opts = ApplyOptions {
        add_includes: true,
        confirm_seconds: Some(2),
        ..Default::default()
    };
    ws.pbx_apply(&me, "demo-pbx", &opts).await.unwrap();
    // A change big enough that a slow link makes its upload outlast the window.
    for i in 0..40 {
        ws.user_create(
            &me,
            &NewUser {
                tenant: "acme-dental".into(),
                name: format!("Slow User {i}"),
                email: format!("slow{i}@acme-dental.example"),
                ..NewUser::default()
            },
        )
        .await
        .unwrap();
    }
    let (old_files, old_rows) = (product_files(&etc), endpoints(&pbx.db).await);
    let backups_dir = etc.join("pbxdesk-backups");
    let proxy = SlowProxy::start(
        pbx.sshd.port,
        std::time::Duration::from_millis(150),
        move || {
            std::fs::read_dir(&backups_dir)
                .map(|rd| {
                    rd.flatten().any(|e| {
                        let p = e.path();
                        p.join("armed").exists() || p.join("rolling-back").exists()
                    })
                })
                .unwrap_or(false)
        },
    );
    ws.pbx_update(
        &me,
        "demo-pbx",
        &PbxPatch {
            ssh_port: Some(proxy.port),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let fp = ws.pbx_probe_host_key(&me, "demo-pbx").await.unwrap();
    ws.pbx_trust(&me, "demo-pbx", &fp).await.unwrap();
    let rep = ws.pbx_apply(&me, "demo-pbx", &opts).await.unwrap();
    assert_eq!(rep.outcome, ApplyOutcome::RolledBack, "{:?}", rep.steps);
    assert!(
        rep.steps
            .iter()
            .any(|s| !s.ok && s.detail.contains("the PBX's own rollback has started")),
        "{:?}",
        rep.steps
    );
    assert!(!rep
        .steps
        .iter()
        .any(|s| s.step == "sync realtime rows" && s.ok));
    // The PBX's rollback runs: the laptop leaves the lock to it, and it releases it when done.
    let unlock = rep.steps.iter().find(|s| s.step == "unlock").unwrap();
    assert!(
        unlock.detail.contains("left to the PBX's own rollback"),
        "{unlock:?}"
    );
    assert!(wait_for_marker(&etc, "rolled-back", 30).await);
    assert_eq!(product_files(&etc), old_files, "exactly the old files");
    assert_eq!(endpoints(&pbx.db).await, old_rows, "exactly the old rows");
    assert!(
        !etc.join(".pbxdesk-apply.lock").exists(),
        "released by the PBX"
    );
}

/// The laptop vanishes while it holds the armed rollback for a change ("changing"): the PBX's
/// script waits HOLD seconds for it to come back, then takes it over and rolls back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pbx_takes_over_a_change_the_laptop_never_finished() {
    let h = harness::Harness::sqlite().await;
    let (ws, me) = (&h.ws, h.ws.local_owner().unwrap());
    let pbx = setup(ws, &me, "changing").await;
    let etc = pbx.sshd.etc();
    let opts = ApplyOptions {
        add_includes: true,
        ..Default::default()
    };
    ws.pbx_apply(&me, "demo-pbx", &opts).await.unwrap();
    let (old_files, old_rows) = (product_files(&etc), endpoints(&pbx.db).await);
    rename_ada(ws, &me, "Ada Held", Some(39)).await;
    // The apply hangs in its reload, holding the armed rollback, and the laptop goes away.
    pbx_double::apply_and_vanish_in_reload(ws, &me, &pbx, &opts).await;
    let (folder, names) = backups(&etc).last().unwrap().clone();
    assert!(
        names.contains(&"changing".to_owned()),
        "held during the reload: {names:?}"
    );
    let dir = etc.join("pbxdesk-backups").join(&folder);
    let path = format!(
        "{}:{}",
        pbx.sshd.bin().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    // Window 0, HOLD 1 s: the script waits a second for the change, then takes it over.
    let t = std::time::Instant::now();
    let ok = std::process::Command::new("sh")
        .arg(dir.join("rollback.sh"))
        .args(["0", "1"])
        .env("PATH", path)
        .status()
        .unwrap();
    assert!(ok.success());
    assert!(
        t.elapsed() >= std::time::Duration::from_secs(1),
        "it waited for the change"
    );
    let names = backups(&etc).last().unwrap().1.clone();
    assert!(names.contains(&"rolled-back".to_owned()), "{names:?}");
    assert_eq!(product_files(&etc), old_files, "exactly the old files");
    assert_eq!(endpoints(&pbx.db).await, old_rows, "exactly the old rows");
}

/// A first apply of 100 tenants swaps hundreds of files in one go: the renames go through a
/// script, not one command line (libssh2's packet and the kernel's argument limits).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_apply_of_a_hundred_tenants_swaps_every_file() {
    use pbxdesk_core::model::{NewTenant, NewUser};
    let h = harness::Harness::sqlite().await;
    let (ws, me) = (&h.ws, h.ws.local_owner().unwrap());
    let pbx = setup(ws, &me, "hundred").await;
    let etc = pbx.sshd.etc();
    for t in 0..100 {
        let slug = format!("a-long-customer-name-{t:03}");
        ws.tenant_create(
            &me,
            &NewTenant {
                name: format!("Tenant {t}"),
                slug: Some(slug.clone()),
                pbx: "demo-pbx".into(),
                ext_range: "200-299".into(),
                country: Some("CH".into()),
            },
        )
        .await
        .unwrap();
        ws.user_create(
            &me,
            &NewUser {
                tenant: slug,
                name: format!("User {t}"),
                email: format!("user{t}@example.com"),
                ..NewUser::default()
            },
        )
        .await
        .unwrap();
    }
    // Emergency numbers must stay callable: every tenant may use the demo's Swiss trunk.
    let mut tenants = vec!["acme-dental".to_owned()];
    tenants.extend((0..100).map(|t| format!("a-long-customer-name-{t:03}")));
    ws.trunk_update(
        &me,
        "demo-pbx",
        "swisscom",
        &pbxdesk_core::model::TrunkPatch {
            tenants: Some(tenants),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let opts = ApplyOptions {
        add_includes: true,
        ..Default::default()
    };
    let rep = ws.pbx_apply(&me, "demo-pbx", &opts).await.unwrap();
    assert_eq!(rep.outcome, ApplyOutcome::Applied, "{:?}", rep.steps);
    let rendered = ws.pbx_render(&me, "demo-pbx", true).await.unwrap();
    assert!(rendered.files.len() > 200, "{}", rendered.files.len());
    assert_eq!(product_files(&etc), rendered.files);
    // No rename script or temporary file is left in the generated folders.
    for sub in [
        "extensions.d/pbxdesk",
        "voicemail.d/pbxdesk",
        "pjsip.d/pbxdesk",
    ] {
        let Ok(dir) = std::fs::read_dir(etc.join(sub)) else {
            continue;
        };
        let hidden: Vec<String> = dir
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with('.'))
            .collect();
        assert!(hidden.is_empty(), "{sub}: {hidden:?}");
    }
}

/// A PBX out of reach is its own error (and exit code), not a conflict: SSH, then AMI.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_pbx_is_its_own_error() {
    use pbx_double::CutProxy;
    use std::sync::atomic::{AtomicBool, Ordering};
    let h = harness::Harness::sqlite().await;
    let (ws, me) = (&h.ws, h.ws.local_owner().unwrap());
    let pbx = setup(ws, &me, "unreach").await;
    let opts = ApplyOptions {
        add_includes: true,
        ..Default::default()
    };
    // SSH: the key pinned through a proxy, which then drops every connection.
    let down = std::sync::Arc::new(AtomicBool::new(false));
    let proxy = CutProxy::start(pbx.sshd.port, 0, {
        let down = down.clone();
        move || down.load(Ordering::SeqCst)
    });
    let to = |port| pbxdesk_core::model::PbxPatch {
        ssh_port: Some(port),
        ..Default::default()
    };
    ws.pbx_update(&me, "demo-pbx", &to(proxy.port))
        .await
        .unwrap();
    let fp = ws.pbx_probe_host_key(&me, "demo-pbx").await.unwrap();
    ws.pbx_trust(&me, "demo-pbx", &fp).await.unwrap();
    down.store(true, Ordering::SeqCst);
    let e = ws.pbx_apply(&me, "demo-pbx", &opts).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::Unreachable, "{e}");
    assert!(product_files(&pbx.sshd.etc()).is_empty());

    // AMI: SSH works, AMI's port is closed: stopped before any change, unreachable.
    proxy.heal();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    ws.pbx_update(
        &me,
        "demo-pbx",
        &pbxdesk_core::model::PbxPatch {
            ami_port: Some(port),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let rep = ws.pbx_apply(&me, "demo-pbx", &opts).await.unwrap();
    assert_eq!(rep.outcome, ApplyOutcome::Stopped, "{:?}", rep.steps);
    assert_eq!(rep.failed, Some(StepKind::ConnectAmi));
    assert_eq!(rep.failure_code(), Some(ErrorCode::Unreachable));
    assert!(product_files(&pbx.sshd.etc()).is_empty());
    assert!(
        !pbx.sshd.etc().join(".pbxdesk-apply.lock").exists(),
        "the lock is released"
    );
}

/// `apply --all-pending`: every PBX whose render differs from its last apply, a few at a time,
/// each guarded as one apply; one failing its reload is rolled back and changes nothing of the
/// others; the next run finds only that one pending.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_applies_what_is_pending_and_a_failure_stays_its_own() {
    use pbxdesk_core::service::FleetOutcome;
    let h = harness::Harness::sqlite().await;
    let (ws, me) = (&h.ws, h.ws.local_owner().unwrap());
    let demo = setup(ws, &me, "fleet").await;
    let b = small_pbx(ws, &me, "branch-b").await;
    let c = small_pbx(ws, &me, "branch-c").await;
    // Branch B's extensions.conf is broken by hand: its reload fails (capture s5).
    let main_b = b.sshd.etc().join("extensions.conf");
    let good = std::fs::read_to_string(&main_b).unwrap();
    std::fs::write(&main_b, format!("{good}\n[broken\n")).unwrap();
    let opts = ApplyOptions {
        add_includes: true,
        ..Default::default()
    };
    assert_eq!(
        ws.pbx_pending(&me).await.unwrap(),
        ["branch-b", "branch-c", "demo-pbx"]
    );
    let e = ws.pbx_apply_pending(&me, &opts, 0, None).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::Validation);

    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let progress: pbxdesk_core::service::FleetProgress = {
        let seen = seen.clone();
        std::sync::Arc::new(move |l| seen.lock().unwrap().push(l.pbx.clone()))
    };
    let rep = ws
        .pbx_apply_pending(&me, &opts, 2, Some(progress))
        .await
        .unwrap();
    let outcomes: Vec<(&str, FleetOutcome)> = rep
        .lines
        .iter()
        .map(|l| (l.pbx.as_str(), l.outcome))
        .collect();
    assert_eq!(
        outcomes,
        [
            ("branch-b", FleetOutcome::RolledBack),
            ("branch-c", FleetOutcome::Applied),
            ("demo-pbx", FleetOutcome::Applied)
        ],
        "{rep:?}"
    );
    assert!(rep.lines[0].detail.contains("reload"), "{:?}", rep.lines[0]);
    assert_eq!(rep.worst, Some(ErrorCode::Conflict));
    assert_eq!(
        seen.lock().unwrap().len(),
        3,
        "each line reported as it ended"
    );
    assert!(
        product_files(&b.sshd.etc()).is_empty(),
        "B is back to before"
    );
    for (pbx, name) in [(&c, "branch-c"), (&demo, "demo-pbx")] {
        let rendered = ws.pbx_render(&me, name, true).await.unwrap();
        assert_eq!(product_files(&pbx.sshd.etc()), rendered.files, "{name}");
    }

    // Mended: only B is pending, and the others are not touched again.
    std::fs::write(&main_b, &good).unwrap();
    let before = (reloads(&c.ast), reloads(&demo.ast));
    assert_eq!(ws.pbx_pending(&me).await.unwrap(), ["branch-b"]);
    let rep = ws.pbx_apply_pending(&me, &opts, 4, None).await.unwrap();
    assert_eq!(rep.lines.len(), 1, "{rep:?}");
    assert_eq!(rep.lines[0].outcome, FleetOutcome::Applied, "{rep:?}");
    assert_eq!(rep.worst, None);
    assert_eq!((reloads(&c.ast), reloads(&demo.ast)), before);
    assert!(ws.pbx_pending(&me).await.unwrap().is_empty());
}
