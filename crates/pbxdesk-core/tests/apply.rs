#![allow(clippy::unwrap_used, clippy::panic)]
//! The guarded apply end to end: Debian's OpenSSH server on loopback plays the PBX (its config
//! folder a temporary folder holding the captured Asterisk 22 config files), the stateful
//! Asterisk double loads the dialplan from that folder by the captured rules and answers AMI,
//! and this machine's MariaDB holds Asterisk's realtime tables. AMI and MariaDB are reached
//! through SSH tunnels, as in production. Faults are injected and the PBX must end exactly in
//! the old state or exactly in the new one.

mod harness;
mod pbx_double;

use pbx_double::{backups, endpoints, product_files, setup};
use pbxdesk_core::model::{AuditQuery, UserPatch};
use pbxdesk_core::service::{ApplyOptions, ApplyOutcome};
use pbxdesk_core::ErrorCode;
use pbxdesk_remote::testkit::asterisk::AsteriskDouble;

fn reloads(ast: &AsteriskDouble) -> usize {
    ast.seen
        .lock()
        .unwrap()
        .iter()
        .filter(|a| a.starts_with("Reload:"))
        .count()
}

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
    assert_eq!(e.code(), ErrorCode::Conflict);
    assert!(e.to_string().contains("--add-includes"), "{e}");
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
    // the files go back, and the realtime rows were never touched.
    let old_files = product_files(&etc);
    let old_rows = endpoints(&pbx.db).await;
    let ada = ws.user_resolve(&me, "acme-dental/100").await.unwrap();
    // A new ring time changes the dialplan (pbx_config is reloaded); the name, the mailbox and
    // the realtime row.
    ws.user_update(
        &me,
        ada,
        &UserPatch {
            name: Some("Ada King".into()),
            ring_seconds: Some(40),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let main = std::fs::read_to_string(etc.join("extensions.conf")).unwrap();
    std::fs::write(etc.join("extensions.conf"), format!("{main}\n[broken\n")).unwrap();
    let failed = ws.pbx_apply(&me, "demo-pbx", &opts).await.unwrap();
    assert_eq!(
        failed.outcome,
        ApplyOutcome::RolledBack,
        "{:?}",
        failed.steps
    );
    assert_eq!(failed.failed.as_deref(), Some("reload"));
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
    assert_eq!(applies.len(), 2, "one applied, one rolled back");
    let text = serde_json::to_string(&applies).unwrap();
    assert!(text.contains("rolled_back") && text.contains("\"applied\""));
    let pw = ws
        .device_reveal(&me, ws.user_show(&me, ada).await.unwrap().devices[0].id)
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
    // A lock left by a crashed apply long ago is broken.
    std::fs::write(etc.join(".pbxdesk-apply.lock/owner"), "ghost 1000").unwrap();
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
        e.to_string().contains("tenant-globex.conf") && e.to_string().contains("--overwrite-drift"),
        "{e}"
    );
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
    assert_eq!(
        outcomes.iter().filter(|o| *o == "Applied").count(),
        1,
        "{outcomes:?}"
    );
    assert!(
        outcomes
            .iter()
            .any(|o| o.contains("another apply") || o == "NothingToDo"),
        "{outcomes:?}"
    );
    let rendered = ws.pbx_render(&me, "demo-pbx", true).await.unwrap();
    assert_eq!(product_files(&etc), rendered.files);

    // The realtime transaction fails (a table gone): the files go back, the rows stay.
    let old_files = product_files(&etc);
    let old_rows = endpoints(&pbx.db).await;
    let ada = ws.user_resolve(&me, "acme-dental/100").await.unwrap();
    ws.user_update(
        &me,
        ada,
        &UserPatch {
            name: Some("Ada Byron".into()),
            ring_seconds: Some(33),
            ..Default::default()
        },
    )
    .await
    .unwrap();
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
    assert_eq!(stopped.failed.as_deref(), Some("connect realtime database"));
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
    assert_eq!(failed.failed.as_deref(), Some("sync realtime rows"));
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
