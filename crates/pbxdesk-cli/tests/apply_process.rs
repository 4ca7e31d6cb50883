//! Applies as separate `pbxdesk` processes against the PBX test double (Debian's sshd on
//! loopback, the stateful Asterisk double, MariaDB with Asterisk's realtime tables; see
//! `pbxdesk-core/tests/pbx_double`): a process killed between upload and confirm must be rolled
//! back by the PBX itself, and two processes applying at once must never both write.

#![allow(clippy::unwrap_used, clippy::panic)] // tests fail loudly by design

#[path = "../../pbxdesk-core/tests/pbx_double/mod.rs"]
mod pbx_double;

use pbx_double::{backups, endpoints, product_files, reloads, rename_ada, setup, wait_for_marker};
use pbxdesk_core::model::AuditQuery;
use pbxdesk_core::service::{ApplyOptions, ApplyOutcome, KeySource, Location, OpenOptions};
use pbxdesk_core::{paths, Workspace};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::Duration;

async fn open(path: &Path) -> Workspace {
    Workspace::open(OpenOptions::new(
        Location::Sqlite(path.to_owned()),
        KeySource::File(paths::key_file_for(path)),
    ))
    .await
    .unwrap()
}

fn pbxdesk(ws: &Path) -> Command {
    let mut c = Command::new(assert_cmd::cargo::cargo_bin("pbxdesk"));
    c.arg("--workspace").arg(ws).arg("--json");
    c.env_remove("PBXDESK_DATABASE_URL")
        .env_remove("PBXDESK_PASSPHRASE")
        .env_remove("PBXDESK_OPERATOR");
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_apply_is_rolled_back_by_the_pbx_and_two_processes_never_both_apply() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ws.sqlite");
    let ws = open(&path).await;
    let me = ws.local_owner().unwrap();
    let pbx = setup(&ws, &me, "kill").await;
    let etc = pbx.sshd.etc();
    let opts = ApplyOptions {
        add_includes: true,
        ..Default::default()
    };
    let first = ws.pbx_apply(&me, "demo-pbx", &opts).await.unwrap();
    assert_eq!(first.outcome, ApplyOutcome::Applied, "{:?}", first.steps);
    let (old_files, old_rows) = (product_files(&etc), endpoints(&pbx.db).await);
    let old_plan = pbx.ast.dialplan.lock().unwrap().clone();

    // A change: a new name (realtime row, dialplan) and ring time (dialplan).
    rename_ada(&ws, &me, "Ada Killed", Some(41)).await;

    // The apply runs in its own process; Asterisk's reload hangs, and while it hangs (after
    // the upload and the realtime sync, before the confirmation) the process is killed.
    pbx.ast.hold_reloads.store(true, Ordering::SeqCst);
    let reloads_before = reloads(&pbx.ast);
    let mut child = pbxdesk(&path)
        .args(["apply", "--pbx", "demo-pbx", "--confirm-seconds", "3"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut waited = 0;
    while reloads(&pbx.ast) == reloads_before {
        assert!(waited < 600, "the apply never reached the reload");
        assert!(child.try_wait().unwrap().is_none(), "the apply ended early");
        tokio::time::sleep(Duration::from_millis(50)).await;
        waited += 1;
    }
    assert_ne!(product_files(&etc), old_files, "the upload happened");
    assert!(endpoints(&pbx.db).await["acme-dental-100"]
        .0
        .contains("Ada Killed"));
    child.kill().unwrap();
    child.wait().unwrap();
    pbx.ast.hold_reloads.store(false, Ordering::SeqCst);

    // Nobody confirms: the PBX restores the files and the rows, reloads, releases the lock.
    assert!(
        wait_for_marker(&etc, "rolled-back", 30).await,
        "{:?}",
        backups(&etc)
    );
    assert_eq!(product_files(&etc), old_files, "exactly the old files");
    assert_eq!(endpoints(&pbx.db).await, old_rows, "exactly the old rows");
    assert!(!etc.join(".pbxdesk-apply.lock").exists(), "lock released");
    let (_, names) = backups(&etc).last().unwrap().clone();
    assert!(
        !names.iter().any(|n| n == "db.cnf" || n == "undo.sql"),
        "{names:?}"
    );
    assert!(pbx
        .ast
        .seen
        .lock()
        .unwrap()
        .contains(&"CLI:module reload pbx_config.so".to_owned()));
    assert_eq!(
        *pbx.ast.dialplan.lock().unwrap(),
        old_plan,
        "Asterisk runs the old dialplan"
    );

    // The next apply reports what the PBX did (audit), then applies.
    let next = ws.pbx_apply(&me, "demo-pbx", &opts).await.unwrap();
    assert_eq!(next.outcome, ApplyOutcome::Applied, "{:?}", next.steps);
    assert!(next.steps.iter().any(|s| s.step == "earlier apply"));
    let audit = ws.audit_list(&me, &AuditQuery::default()).await.unwrap();
    let rb: Vec<_> = audit
        .iter()
        .filter(|a| a.action == "pbx.apply.rolled_back_by_pbx")
        .collect();
    assert_eq!(rb.len(), 1, "reported once");
    let text = serde_json::to_string(&rb).unwrap();
    assert!(text.contains("not confirmed within 3 s"), "{text}");
    assert!(endpoints(&pbx.db).await["acme-dental-100"]
        .0
        .contains("Ada Killed"));

    // Two processes apply the same change at once: one applies, the other is refused by the
    // PBX's lock or finds nothing left to do. Never two writers.
    rename_ada(&ws, &me, "Ada Twice", None).await;
    let spawn = || {
        pbxdesk(&path)
            .args(["apply", "--pbx", "demo-pbx"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let outs: Vec<(Option<i32>, String)> = [a, b]
        .into_iter()
        .map(|c| {
            let o = c.wait_with_output().unwrap();
            (
                o.status.code(),
                String::from_utf8_lossy(&o.stdout).into_owned(),
            )
        })
        .collect();
    let docs: Vec<(Option<i32>, serde_json::Value)> = outs
        .iter()
        .map(|(code, out)| (*code, serde_json::from_str(out).unwrap()))
        .collect();
    let applied = docs
        .iter()
        .filter(|(code, d)| *code == Some(0) && d["outcome"] == "applied")
        .count();
    assert_eq!(applied, 1, "{outs:?}");
    assert!(
        docs.iter().any(|(code, d)| (*code == Some(10)
            && d["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("another apply")))
            || d["outcome"] == "nothing_to_do"),
        "{outs:?}"
    );
    let rendered = ws.pbx_render(&me, "demo-pbx", true).await.unwrap();
    assert_eq!(product_files(&etc), rendered.files);
    assert!(endpoints(&pbx.db).await["acme-dental-100"]
        .0
        .contains("Ada Twice"));
}
