//! The apply's state machine against a scripted PBX: every exit path, without sshd. (The same
//! paths run against the real sshd, MariaDB and the Asterisk double in tests/apply.rs.)

use super::super::pbx_side::{Confirmation, Holder, PbxRollback, R};
use super::super::plan::tests::{pbx, rendered, D1, INC};
use super::super::plan::{Files, PbxFiles};
use super::super::session::{ArmState, Guarded, RunGroup, Session, SyncFailure};
use super::super::{ApplyOptions, StepKind, Steps};
use super::{lock, under_lock, unlock, Job, Ran};
use crate::error::{Error, Refusal};
use pbxdesk_remote::realtime::Device;
use std::collections::{BTreeMap, BTreeSet};

/// What the scripted PBX does.
#[derive(Default)]
struct Script {
    /// Another apply holds the lock.
    held_by: Option<&'static str>,
    /// Methods that fail, with the error they give.
    fails: Vec<&'static str>,
    /// The confirm window runs out just before this change ("upload", "sync", "reload",
    /// "confirm"): the PBX's timer takes `armed`.
    window_ends_before: Option<&'static str>,
    /// The sync's COMMIT gets no answer.
    commit_unknown: bool,
    /// The confirm's rename works, the removal of the rollback's secrets after it fails.
    cleanup_fails: bool,
    /// The confirm's rename works, its answer is lost.
    confirm_answer_lost: bool,
    /// A context the reload drops.
    drops_context: bool,
}

struct Fake {
    script: Script,
    calls: Vec<String>,
    state: ArmState,
    files: PbxFiles,
}

impl Fake {
    fn new(script: Script) -> Fake {
        Fake {
            script,
            calls: Vec::new(),
            state: None,
            files: pbx(&[], Some(INC)),
        }
    }

    fn call(&mut self, name: &str) -> R<()> {
        self.calls.push(name.to_owned());
        if self.script.fails.contains(&name) {
            return Err(format!("{name} failed (scripted)"));
        }
        Ok(())
    }

    /// A guarded change: too late once the window ran out.
    fn guarded(&mut self, name: &'static str) -> bool {
        if self.script.window_ends_before == Some(name) && self.state == Some("armed") {
            self.state = Some("rolling-back");
        }
        self.state == Some("armed")
    }

    fn called(&self, name: &str) -> bool {
        self.calls.iter().any(|c| c == name)
    }
}

impl Session for Fake {
    async fn earlier_rollbacks(&mut self) -> R<Vec<PbxRollback>> {
        Ok(Vec::new())
    }
    async fn forget_rollback(&mut self, _note: &str) {}
    async fn read(&mut self, _core: &[String]) -> R<PbxFiles> {
        self.call("read")?;
        Ok(self.files.clone())
    }
    async fn lock(&mut self) -> R<Result<String, Holder>> {
        self.call("lock")?;
        Ok(match self.script.held_by {
            Some(who) => Err(Holder {
                owner: who.into(),
                since: 7,
            }),
            None => Ok("taken".into()),
        })
    }
    async fn unlock(&mut self) -> R<Option<String>> {
        self.call("unlock").map(|()| None)
    }
    async fn connect(&mut self, _wanted: &[Device]) -> (R<()>, R<()>) {
        (self.call("connect_ami"), self.call("connect_db"))
    }
    async fn run_group(&mut self) -> R<RunGroup> {
        self.call("run_group").map(|()| RunGroup::Root)
    }
    async fn transports(&mut self) -> R<Vec<(String, String)>> {
        self.call("transports").map(|()| Vec::new())
    }
    async fn arm(&mut self, _restore: &Files, _modules: &[&'static str]) -> R<(usize, String)> {
        self.call("arm")?;
        self.state = Some("armed");
        Ok((1, "/etc/asterisk/pbxdesk-backups/1".into()))
    }
    async fn upload(&mut self, _files: &Files) -> R<Guarded<()>> {
        if !self.guarded("upload") {
            return Ok(Guarded::TooLate);
        }
        self.call("upload").map(Guarded::Done)
    }
    async fn sync(&mut self, _wanted: &[Device]) -> Result<Guarded<String>, SyncFailure> {
        if !self.guarded("sync") {
            return Ok(Guarded::TooLate);
        }
        if self.script.commit_unknown {
            self.calls.push("sync".into());
            return Err(SyncFailure {
                detail: "the COMMIT got no answer".into(),
                maybe_committed: true,
            });
        }
        self.call("sync")
            .map(|()| Guarded::Done("1 added".into()))
            .map_err(|detail| SyncFailure {
                detail,
                maybe_committed: false,
            })
    }
    async fn reload(&mut self, _modules: &[&'static str], guarded: bool) -> R<Guarded<()>> {
        if guarded && !self.guarded("reload") {
            return Ok(Guarded::TooLate);
        }
        self.call(if guarded { "reload" } else { "reload_old" })
            .map(Guarded::Done)
    }
    async fn contexts(&mut self, names: Vec<String>) -> R<BTreeMap<String, Option<usize>>> {
        self.call("contexts")?;
        let drop = self.script.drops_context && !self.called("reload_old");
        Ok(names
            .into_iter()
            .map(|n| (n, if drop { None } else { Some(3) }))
            .collect())
    }
    async fn endpoints(&mut self) -> R<BTreeSet<String>> {
        self.call("endpoints")?;
        Ok(BTreeSet::from(["acme-100".to_owned()]))
    }
    async fn mailboxes(&mut self) -> R<Vec<(String, String)>> {
        self.call("mailboxes").map(|()| Vec::new())
    }
    async fn identifies(&mut self, _endpoint: &str) -> R<bool> {
        self.call("identifies").map(|()| true)
    }
    async fn registrations(&mut self) -> R<BTreeSet<String>> {
        self.call("registrations").map(|()| BTreeSet::new())
    }
    async fn confirm(&mut self) -> R<Confirmation> {
        if !self.guarded("confirm") {
            self.calls.push("confirm".into());
            return Ok(Confirmation::TooLate);
        }
        self.call("confirm")?;
        self.state = Some("confirmed");
        if self.script.confirm_answer_lost {
            return Err("the connection dropped".into());
        }
        Ok(Confirmation::Confirmed {
            cleanup: self
                .script
                .cleanup_fails
                .then(|| "could not remove db.cnf".to_owned()),
        })
    }
    async fn prune(&mut self) -> R<usize> {
        self.call("prune").map(|()| 0)
    }
    async fn arm_state(&mut self) -> R<ArmState> {
        self.call("arm_state").map(|()| self.state)
    }
    async fn claim_rollback(&mut self) -> R<bool> {
        self.call("claim_rollback")?;
        if self.state == Some("armed") {
            self.state = Some("laptop-rolling-back");
            return Ok(true);
        }
        Ok(false)
    }
    async fn restore(&mut self, _files: &Files) -> R<usize> {
        self.call("restore").map(|()| 1)
    }
    async fn undo_rows(&mut self) -> R<()> {
        self.call("undo_rows")
    }
    async fn finish_rollback(&mut self, complete: bool) -> R<()> {
        self.call(if complete {
            "finish_rollback complete"
        } else {
            "finish_rollback incomplete"
        })
    }
}

/// The walk as the service runs it: lock, under the lock, unlock.
async fn walk(script: Script) -> (Result<Ran, Error>, Fake, Vec<StepKind>) {
    let last = rendered(&[(D1, "a")], &["acme-100"]);
    let new = rendered(&[(D1, "b")], &["acme-100"]);
    let opts = ApplyOptions::default();
    let job = Job {
        last: Some(&last),
        new: &new,
        opts: &opts,
        window: 30,
    };
    let mut fake = Fake::new(script);
    fake.files = pbx(&[(D1, "a")], Some(INC));
    let mut steps = Steps::new(None);
    let ran = match lock(&mut fake, &mut steps).await {
        Ok(()) => {
            let ran = under_lock(&mut fake, &job, &mut steps).await;
            unlock(&mut fake, &ran, &mut steps).await;
            ran
        }
        Err(e) => Err(e),
    };
    let kinds = steps.0.iter().map(|s| s.kind).collect();
    (ran, fake, kinds)
}

fn rolled_back(failed: StepKind, left_to_pbx: bool) -> Ran {
    Ran::RolledBack {
        failed,
        left_to_pbx,
    }
}

#[tokio::test]
async fn an_apply_arms_before_it_changes_and_confirms_after_it_verified() {
    let (ran, fake, kinds) = walk(Script::default()).await;
    assert_eq!(ran.unwrap(), Ran::Applied);
    let order: Vec<&str> = fake.calls.iter().map(String::as_str).collect();
    assert_eq!(
        order,
        [
            "lock",
            "read",
            "connect_ami",
            "connect_db",
            "run_group",
            "arm",
            "upload",
            "sync",
            "reload",
            "contexts",
            "endpoints",
            "confirm",
            "prune",
            "unlock"
        ]
    );
    use StepKind::*;
    assert_eq!(
        kinds,
        [
            Lock,
            ReadPbx,
            Includes,
            ConnectAmi,
            ConnectDatabase,
            FileAccess,
            Backup,
            Upload,
            Sync,
            Reload,
            VerifyDialplan,
            VerifyEndpoints,
            Confirm,
            Unlock
        ]
    );
}

#[tokio::test]
async fn nothing_changes_once_the_confirm_window_ran_out() {
    // The window runs out during a slow upload, sync or reload: the PBX's own rollback has the
    // apply from then on; the laptop makes no further change and leaves the lock to it.
    for at in ["upload", "sync", "reload", "confirm"] {
        let (ran, fake, _) = walk(Script {
            window_ends_before: Some(at),
            ..Script::default()
        })
        .await;
        let kind = match at {
            "upload" => StepKind::Upload,
            "sync" => StepKind::Sync,
            "reload" => StepKind::Reload,
            _ => StepKind::Confirm,
        };
        assert_eq!(ran.unwrap(), rolled_back(kind, true), "{at}");
        let after: Vec<&String> = fake
            .calls
            .iter()
            .skip_while(|c| c.as_str() != "arm")
            .collect();
        for never in [
            "restore",
            "undo_rows",
            "reload_old",
            "unlock",
            "claim_rollback",
        ] {
            assert!(!fake.called(never), "{at}: {never} in {after:?}");
        }
        if at == "upload" {
            assert!(
                !fake.called("sync"),
                "rows synced under old files: {after:?}"
            );
        }
        if at == "sync" {
            assert!(!fake.called("sync") && !fake.called("reload"), "{after:?}");
        }
    }
}

#[tokio::test]
async fn rows_that_may_have_committed_are_undone() {
    let (ran, fake, kinds) = walk(Script {
        commit_unknown: true,
        ..Script::default()
    })
    .await;
    assert_eq!(ran.unwrap(), rolled_back(StepKind::Sync, false));
    assert!(fake.called("undo_rows"), "{:?}", fake.calls);
    assert!(fake.called("restore") && fake.called("reload_old") && fake.called("unlock"));
    assert!(kinds.contains(&StepKind::RestoreRows));
    // A sync that failed before its COMMIT changed no row: nothing to undo.
    let (_, fake, _) = walk(Script {
        fails: vec!["sync"],
        ..Script::default()
    })
    .await;
    assert!(
        !fake.called("undo_rows") && fake.called("restore"),
        "{:?}",
        fake.calls
    );
}

#[tokio::test]
async fn a_failed_verification_is_undone_last_change_first() {
    let (ran, fake, kinds) = walk(Script {
        drops_context: true,
        ..Script::default()
    })
    .await;
    assert_eq!(ran.unwrap(), rolled_back(StepKind::VerifyDialplan, false));
    let tail: Vec<&str> = fake
        .calls
        .iter()
        .skip_while(|c| c.as_str() != "claim_rollback")
        .map(String::as_str)
        .collect();
    assert_eq!(
        tail,
        [
            "claim_rollback",
            "undo_rows",
            "restore",
            "reload_old",
            "contexts",
            "finish_rollback complete",
            "unlock"
        ]
    );
    use StepKind::*;
    assert!(
        kinds.ends_with(&[VerifyDialplan, RestoreRows, RestoreFiles, ReloadOld, Unlock]),
        "{kinds:?}"
    );
}

#[tokio::test]
async fn a_confirmed_apply_is_reported_applied_whatever_the_cleanup_after_it_did() {
    let (ran, fake, _) = walk(Script {
        cleanup_fails: true,
        ..Script::default()
    })
    .await;
    assert_eq!(ran.unwrap(), Ran::Applied);
    assert!(!fake.called("claim_rollback"), "{:?}", fake.calls);
    // The confirm's answer lost: the PBX's state files decide.
    let (ran, fake, _) = walk(Script {
        confirm_answer_lost: true,
        ..Script::default()
    })
    .await;
    assert_eq!(ran.unwrap(), Ran::Applied);
    assert!(fake.called("arm_state") && !fake.called("restore"));
}

#[tokio::test]
async fn a_rollback_the_pbx_has_is_left_to_it_with_the_lock() {
    // The verification fails, and the PBX's timer took `armed` meanwhile.
    let mut script = Script {
        drops_context: true,
        ..Script::default()
    };
    script.fails.push("claim_rollback");
    let (ran, fake, _) = walk(script).await;
    assert_eq!(ran.unwrap(), rolled_back(StepKind::VerifyDialplan, true));
    assert!(
        !fake.called("restore") && !fake.called("unlock"),
        "{:?}",
        fake.calls
    );
}

#[tokio::test]
async fn stops_before_any_change_when_something_is_out_of_reach() {
    for (fails, stopped) in [
        ("connect_ami", StepKind::ConnectAmi),
        ("connect_db", StepKind::ConnectDatabase),
        ("arm", StepKind::Backup),
    ] {
        let (ran, fake, _) = walk(Script {
            fails: vec![fails],
            ..Script::default()
        })
        .await;
        assert_eq!(ran.unwrap(), Ran::Stopped(stopped));
        assert!(!fake.called("upload") && !fake.called("claim_rollback"));
        assert!(fake.called("unlock"), "{fails}: the lock is released");
    }
}

#[tokio::test]
async fn a_held_lock_is_a_refusal_that_touches_nothing() {
    let (ran, fake, _) = walk(Script {
        held_by: Some("alice (apply 0badc0de)"),
        ..Script::default()
    })
    .await;
    match ran {
        Err(Error::Refused(Refusal::Locked { owner, since })) => {
            assert_eq!((owner.as_str(), since), ("alice (apply 0badc0de)", 7));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(fake.calls, ["lock"]);
}

#[tokio::test]
async fn drift_is_refused_under_the_lock_and_the_lock_released() {
    let last = rendered(&[(D1, "a")], &[]);
    let new = rendered(&[(D1, "b")], &[]);
    let opts = ApplyOptions::default();
    let job = Job {
        last: Some(&last),
        new: &new,
        opts: &opts,
        window: 30,
    };
    let mut fake = Fake::new(Script::default());
    fake.files = pbx(&[(D1, "by hand")], Some(INC));
    let mut steps = Steps::new(None);
    lock(&mut fake, &mut steps).await.unwrap();
    let ran = under_lock(&mut fake, &job, &mut steps).await;
    unlock(&mut fake, &ran, &mut steps).await;
    assert!(
        matches!(&ran, Err(Error::Refused(Refusal::Drift { files })) if files == &vec![D1.to_owned()]),
        "{ran:?}"
    );
    assert_eq!(fake.calls, ["lock", "read", "unlock"]);
}
