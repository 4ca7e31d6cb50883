#![allow(clippy::unwrap_used, clippy::panic)]
//! The PBX-side rollback script on its own, in a config folder laid out as the apply lays it
//! out (the script is POSIX sh; the "PBX" is this machine): it restores only for the apply that
//! armed it, i.e. while that apply still holds the PBX's lock. An `armed` left behind by an
//! apply that stopped (its arm failed after the script had started) must never roll back the
//! next apply.

use std::path::Path;
use std::process::Command;

const SCRIPT: &str = include_str!("../src/service/apply/rollback.sh");
const GENERATED: &str = "extensions.d/pbxdesk/tenant-acme.conf";

/// A config folder with one generated file ("new"), its backup ("old"), and an armed rollback
/// of the apply `armed_by`; the lock held by `lock_holder` (None: no lock).
fn lay_out(etc: &Path, armed_by: &str, lock_holder: Option<&str>) -> std::path::PathBuf {
    let base = etc.join("pbxdesk-backups/1790000000000");
    std::fs::create_dir_all(base.join("files/extensions.d/pbxdesk")).unwrap();
    std::fs::create_dir_all(etc.join("extensions.d/pbxdesk")).unwrap();
    std::fs::write(etc.join(GENERATED), "new").unwrap();
    std::fs::write(base.join("files").join(GENERATED), "old").unwrap();
    std::fs::write(base.join("manifest"), format!("restore {GENERATED}\n")).unwrap();
    std::fs::write(base.join("lock-owner"), armed_by).unwrap();
    std::fs::write(base.join("rollback.sh"), SCRIPT).unwrap();
    std::fs::write(base.join("armed"), armed_by).unwrap();
    if let Some(holder) = lock_holder {
        std::fs::create_dir_all(etc.join(".pbxdesk-apply.lock")).unwrap();
        std::fs::write(etc.join(".pbxdesk-apply.lock/owner"), holder).unwrap();
    }
    base
}

fn run_script(base: &Path) {
    let st = Command::new("sh")
        .arg(base.join("rollback.sh"))
        .args(["0", "5"])
        .status()
        .unwrap();
    assert!(st.success(), "{st}");
}

#[test]
fn the_rollback_restores_while_its_apply_holds_the_lock() {
    let dir = tempfile::tempdir().unwrap();
    let etc = dir.path().join("etc-asterisk");
    let me = "tech (apply 0000beef) 1790000000000";
    let base = lay_out(&etc, me, Some(me));
    run_script(&base);
    assert_eq!(std::fs::read_to_string(etc.join(GENERATED)).unwrap(), "old");
    assert!(base.join("rolled-back").exists());
    assert!(
        !etc.join(".pbxdesk-apply.lock").exists(),
        "its lock released"
    );
    assert!(etc
        .join("pbxdesk-backups/rolled-back.1790000000000")
        .exists());
}

#[test]
fn a_rollback_left_armed_by_an_ended_apply_touches_nothing() {
    for holder in [Some("other (apply 0000cafe) 1790000005000"), None] {
        let dir = tempfile::tempdir().unwrap();
        let etc = dir.path().join("etc-asterisk");
        let base = lay_out(&etc, "tech (apply 0000beef) 1790000000000", holder);
        std::fs::write(base.join("undo.sql"), "DELETE FROM ps_endpoints;").unwrap();
        std::fs::write(base.join("db.cnf"), "[mysql]\npassword=\"s\"\n").unwrap();
        run_script(&base);
        assert_eq!(
            std::fs::read_to_string(etc.join(GENERATED)).unwrap(),
            "new",
            "{holder:?}: the running apply's file stays"
        );
        assert!(base.join("abandoned").exists(), "{holder:?}");
        assert!(!base.join("db.cnf").exists() && !base.join("undo.sql").exists());
        assert!(
            !etc.join("pbxdesk-backups/rolled-back.1790000000000")
                .exists(),
            "nothing to report"
        );
        if let Some(h) = holder {
            let note = std::fs::read_to_string(etc.join(".pbxdesk-apply.lock/owner")).unwrap();
            assert_eq!(note, h, "the other apply's lock stays");
        }
    }
}
