//! Carries a plan out against a session, one typed step at a time, and rolls back by walking
//! the changes made so far backwards from the failed step. The rules of the state machine
//! live here, once:
//! - nothing changes before AMI and the realtime database are reached and the rollback is armed;
//! - every change is made while the armed rollback is held (the session answers `TooLate`
//!   when the PBX's own rollback has started: then nothing more is done, and the PBX restores
//!   everything and releases the lock itself);
//! - rows that may have been committed are always undone (the undo is idempotent);
//! - only the lock's owner removes it, and never while the PBX's own rollback runs;
//! - what is reported is what the PBX's state files say happened.

use super::pbx_side::Confirmation;
use super::plan::{self, Decision, Plan, Verification};
use super::session::{Guarded, RunGroup, Session};
use super::{realtime_devices, ApplyOptions, StepKind, Steps};
use crate::error::{Error, Refusal, Result};
use pbxdesk_render::Rendered;
use std::time::Instant;

/// One apply's fixed inputs.
pub(crate) struct Job<'a> {
    pub last: Option<&'a Rendered>,
    pub new: &'a Rendered,
    pub opts: &'a ApplyOptions,
    pub window: u32,
}

/// How the walk ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ran {
    /// The PBX runs the render already (another apply brought it there).
    NothingToDo,
    Applied,
    /// A step failed before anything on the PBX changed.
    Stopped(StepKind),
    /// A step failed after the PBX changed; it was restored. `left_to_pbx`: the PBX's own
    /// rollback does it (and releases the lock).
    RolledBack {
        failed: StepKind,
        left_to_pbx: bool,
    },
}

/// A change made on the PBX, which the rollback undoes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Made {
    Files,
    Rows,
    Reload,
}

/// Where the forward walk stopped.
enum Halt {
    Failed(StepKind),
    /// The PBX's own rollback has the apply.
    TooLate(StepKind),
}

/// Takes the PBX's lock; another apply's is a refusal.
pub(crate) async fn lock<S: Session>(s: &mut S, steps: &mut Steps) -> Result<()> {
    let t = Instant::now();
    match s.lock().await.map_err(Error::Conflict)? {
        Ok(note) => {
            steps.done(StepKind::Lock, t, true, note);
            Ok(())
        }
        Err(h) => Err(Refusal::Locked {
            owner: h.owner,
            since: h.since,
        }
        .into()),
    }
}

/// Releases the lock when it is still this apply's, and not while the PBX's own rollback runs
/// (it releases the lock itself when done).
pub(crate) async fn unlock<S: Session>(s: &mut S, ran: &Result<Ran>, steps: &mut Steps) {
    let t = Instant::now();
    if matches!(
        ran,
        Ok(Ran::RolledBack {
            left_to_pbx: true,
            ..
        })
    ) {
        steps.done(
            StepKind::Unlock,
            t,
            true,
            "left to the PBX's own rollback, which releases it when done",
        );
        return;
    }
    match s.unlock().await {
        Ok(None) => steps.done(StepKind::Unlock, t, true, ""),
        Ok(Some(other)) => steps.done(
            StepKind::Unlock,
            t,
            false,
            format!("not removed: the lock is no longer this apply's (held by {other})"),
        ),
        Err(e) => steps.done(StepKind::Unlock, t, false, e),
    }
}

/// Reads the PBX again (another apply may have finished in between), plans, and changes.
pub(crate) async fn under_lock<S: Session>(
    s: &mut S,
    job: &Job<'_>,
    steps: &mut Steps,
) -> Result<Ran> {
    let t = Instant::now();
    let files = s
        .read(&plan::core_files_to_read(job.new))
        .await
        .map_err(Error::Conflict)?;
    steps.done(
        StepKind::ReadPbx,
        t,
        true,
        format!("{} pbxdesk file(s) on the PBX", files.generated.len()),
    );
    let t = Instant::now();
    let plan = match plan::decide(job.last, job.new, &files, job.opts)? {
        Decision::NothingToDo => return Ok(Ran::NothingToDo),
        Decision::Change(p) => p,
    };
    let mut detail = if plan.includes_added.is_empty() {
        "present".to_owned()
    } else {
        format!("added to {}", plan.includes_added.join(", "))
    };
    if !plan.drift_replaced.is_empty() {
        detail.push_str(&format!(
            "; replacing files changed on the PBX: {}",
            plan.drift_replaced.join(", ")
        ));
    }
    steps.done(StepKind::Includes, t, true, detail);
    change(s, job, &plan, steps).await
}

/// Reaches everything, arms, changes, verifies, confirms; on a failure, rolls back.
async fn change<S: Session>(
    s: &mut S,
    job: &Job<'_>,
    plan: &Plan,
    steps: &mut Steps,
) -> Result<Ran> {
    if let Some(stopped) = prepare(s, job, plan, steps).await {
        return Ok(Ran::Stopped(stopped));
    }
    let t = Instant::now();
    let armed_at = Instant::now();
    match s.arm(&plan.restore, &plan.modules).await {
        Ok((n, base)) => steps.done(
            StepKind::Backup,
            t,
            true,
            format!(
                "{n} file(s) in {base}; the PBX restores them by itself unless the apply is confirmed within {} s",
                job.window
            ),
        ),
        Err(e) => {
            steps.done(StepKind::Backup, t, false, e);
            return Ok(Ran::Stopped(StepKind::Backup));
        }
    }
    let mut made = Vec::new();
    let halt = match forward(s, job, plan, steps, &mut made).await {
        Ok(()) => match confirm(s, steps, armed_at).await {
            Ok(()) => return Ok(Ran::Applied),
            Err(h) => h,
        },
        Err(h) => h,
    };
    match halt {
        Halt::TooLate(failed) => Ok(Ran::RolledBack {
            failed,
            left_to_pbx: true,
        }),
        Halt::Failed(failed) => Ok(roll_back(s, job, plan, steps, &made, failed).await),
    }
}

/// Everything that must be reachable and true before the first change: AMI and the realtime
/// database, the group Asterisk runs as, the transports the render names. `Some(step)`:
/// the step that failed (nothing was changed).
async fn prepare<S: Session>(
    s: &mut S,
    job: &Job<'_>,
    plan: &Plan,
    steps: &mut Steps,
) -> Option<StepKind> {
    let t = Instant::now();
    let (ami, db) = s.connect(&realtime_devices(job.new)).await;
    if let Err(e) = ami {
        steps.done(StepKind::ConnectAmi, t, false, e);
        return Some(StepKind::ConnectAmi);
    }
    steps.done(StepKind::ConnectAmi, t, true, "");
    if let Err(e) = db {
        steps.done(StepKind::ConnectDatabase, t, false, e);
        return Some(StepKind::ConnectDatabase);
    }
    steps.done(
        StepKind::ConnectDatabase,
        t,
        true,
        "reached at the same time as AMI; the rows' undo read",
    );
    let t = Instant::now();
    let access = match s.run_group().await {
        Ok(RunGroup::Root) => Ok("folders 0750, files 0640 (Asterisk runs as root)".to_owned()),
        Ok(RunGroup::Known { name }) => Ok(format!(
            "folders 0750, files 0640, group {name} (Asterisk's)"
        )),
        Ok(RunGroup::Unknown { name }) => Err(format!(
            "Asterisk runs as group {name}, which the PBX does not know (getent group {name})"
        )),
        Err(e) => Err(e),
    };
    let ok = access.is_ok();
    steps.done(StepKind::FileAccess, t, ok, access.unwrap_or_else(|e| e));
    if !ok {
        return Some(StepKind::FileAccess);
    }
    if !plan.verify.transports.is_empty() {
        let t = Instant::now();
        let checked = s
            .transports()
            .await
            .and_then(|have| transports_present(&plan.verify, &have));
        let ok = checked.is_ok();
        steps.done(StepKind::Transports, t, ok, checked.unwrap_or_else(|e| e));
        if !ok {
            return Some(StepKind::Transports);
        }
    }
    None
}

/// Every transport the render names must exist on the PBX: a device or trunk set to
/// transport-tls on a PBX without one would fail at its first packet (or run over UDP).
fn transports_present(v: &Verification, have: &[(String, String)]) -> Result<String, String> {
    let missing: Vec<String> = v
        .transports
        .iter()
        .filter(|(n, _)| !have.iter().any(|(h, _)| h == *n))
        .map(|(n, users)| {
            let some: Vec<&str> = users.iter().take(3).map(String::as_str).collect();
            format!("{n} (used by {})", some.join(", "))
        })
        .collect();
    if missing.is_empty() {
        return Ok(v.transports.keys().cloned().collect::<Vec<_>>().join(", "));
    }
    let has: Vec<String> = have.iter().map(|(n, p)| format!("{n} ({p})")).collect();
    Err(format!(
        "the PBX has no transport {}; it has: {}. add the transport to pjsip.conf (type = transport, protocol = tcp or tls) and reload res_pjsip (or restart Asterisk), or set those devices and trunks to a transport the PBX has",
        missing.join(", "),
        if has.is_empty() { "none".to_owned() } else { has.join(", ") }
    ))
}

const TOO_LATE: &str = "not done: the PBX's own rollback has started (the confirm window ran out)";

/// The changes and the verification, in order. `made` gets each change that may have
/// happened, for the rollback.
async fn forward<S: Session>(
    s: &mut S,
    job: &Job<'_>,
    plan: &Plan,
    steps: &mut Steps,
    made: &mut Vec<Made>,
) -> std::result::Result<(), Halt> {
    let t = Instant::now();
    // A failed upload may have swapped some files (a rename failing half-way): restore.
    made.push(Made::Files);
    match s.upload(&plan.upload).await {
        Ok(Guarded::Done(())) => steps.done(
            StepKind::Upload,
            t,
            true,
            format!(
                "{} file(s) written or removed atomically",
                plan.upload.len()
            ),
        ),
        Ok(Guarded::TooLate) => return Err(too_late(steps, StepKind::Upload, t)),
        Err(e) => return Err(failed(steps, StepKind::Upload, t, e)),
    }
    let t = Instant::now();
    match s.sync(&realtime_devices(job.new)).await {
        Ok(Guarded::Done(detail)) => {
            made.push(Made::Rows);
            steps.done(StepKind::Sync, t, true, detail);
        }
        Ok(Guarded::TooLate) => return Err(too_late(steps, StepKind::Sync, t)),
        Err(f) => {
            if f.maybe_committed {
                made.push(Made::Rows);
            }
            return Err(failed(steps, StepKind::Sync, t, f.detail));
        }
    }
    if !plan.modules.is_empty() {
        let t = Instant::now();
        made.push(Made::Reload);
        match s.reload(&plan.modules, true).await {
            Ok(Guarded::Done(())) => steps.done(StepKind::Reload, t, true, plan.modules.join(", ")),
            Ok(Guarded::TooLate) => return Err(too_late(steps, StepKind::Reload, t)),
            Err(e) => return Err(failed(steps, StepKind::Reload, t, e)),
        }
    }
    verify(s, &plan.verify, steps).await.map_err(Halt::Failed)
}

fn too_late(steps: &mut Steps, kind: StepKind, t: Instant) -> Halt {
    steps.done(kind, t, false, TOO_LATE);
    Halt::TooLate(kind)
}

fn failed(steps: &mut Steps, kind: StepKind, t: Instant, detail: String) -> Halt {
    steps.done(kind, t, false, detail);
    Halt::Failed(kind)
}

/// What Asterisk reports after the reload, not the reload's answer.
async fn verify<S: Session>(
    s: &mut S,
    v: &Verification,
    steps: &mut Steps,
) -> std::result::Result<(), StepKind> {
    let t = Instant::now();
    let r = verify_contexts(s, &v.contexts).await;
    step(
        steps,
        StepKind::VerifyDialplan,
        t,
        r.map(|n| format!("{n} context(s) loaded as rendered")),
    )?;
    let t = Instant::now();
    let r = match v.endpoints.is_empty() {
        true => Ok(0),
        false => s.endpoints().await.and_then(|known| {
            let missing: Vec<&str> = v
                .endpoints
                .iter()
                .filter(|id| !known.contains(*id))
                .map(String::as_str)
                .collect();
            match missing.len() {
                0 => Ok(v.endpoints.len()),
                n => Err(format!(
                    "{n} endpoint(s) unknown to PJSIP, e.g. {}",
                    first_five(&missing)
                )),
            }
        }),
    };
    step(
        steps,
        StepKind::VerifyEndpoints,
        t,
        r.map(|n| format!("{n} endpoint(s) known to PJSIP")),
    )?;
    if !v.mailboxes.is_empty() {
        let t = Instant::now();
        let r = s.mailboxes().await.and_then(|listed| {
            // A set: 99,900 mailboxes looked up in a list took 13 s (the scale bench).
            let have: std::collections::BTreeSet<&(String, String)> = listed.iter().collect();
            let missing: Vec<String> = v
                .mailboxes
                .iter()
                .filter(|w| !have.contains(w))
                .map(|(c, b)| format!("{b}@{c}"))
                .collect();
            let refs: Vec<&str> = missing.iter().map(String::as_str).collect();
            match missing.len() {
                0 => Ok(format!("{} mailbox(es) loaded", v.mailboxes.len())),
                n => Err(format!(
                    "{n} mailbox(es) not loaded by app_voicemail, e.g. {}",
                    first_five(&refs)
                )),
            }
        });
        step(steps, StepKind::VerifyVoicemail, t, r)?;
    }
    if !v.trunks.is_empty() {
        let t = Instant::now();
        let r = verify_trunks(s, v).await;
        step(steps, StepKind::VerifyTrunks, t, r)?;
    }
    Ok(())
}

fn step(
    steps: &mut Steps,
    kind: StepKind,
    t: Instant,
    r: std::result::Result<String, String>,
) -> std::result::Result<(), StepKind> {
    let ok = r.is_ok();
    steps.done(kind, t, ok, r.unwrap_or_else(|e| e));
    if ok {
        Ok(())
    } else {
        Err(kind)
    }
}

fn first_five(items: &[&str]) -> String {
    items.iter().take(5).copied().collect::<Vec<_>>().join(", ")
}

/// Checks every context is loaded with the extensions expected (`dialplan show`).
async fn verify_contexts<S: Session>(
    s: &mut S,
    contexts: &std::collections::BTreeMap<String, usize>,
) -> std::result::Result<usize, String> {
    let got = s.contexts(contexts.keys().cloned().collect()).await?;
    for (ctx, want) in contexts {
        match got.get(ctx).copied().flatten() {
            Some(n) if n == *want => {}
            Some(n) => {
                return Err(format!(
                    "context {ctx} has {n} extension(s), {want} expected"
                ))
            }
            None => {
                return Err(format!(
                    "context {ctx} is not loaded (a part of the dialplan was dropped)"
                ))
            }
        }
    }
    Ok(contexts.len())
}

/// Checks PJSIP loaded every trunk: its endpoint, its identify and its outbound registration.
/// Whether the provider accepts the registration is live state, not configuration.
async fn verify_trunks<S: Session>(
    s: &mut S,
    v: &Verification,
) -> std::result::Result<String, String> {
    let known = s.endpoints().await?;
    let registered = if v.trunks.iter().any(|k| k.registration) {
        s.registrations().await?
    } else {
        Default::default()
    };
    let mut missing = Vec::new();
    let (mut identifies, mut regs) = (0, 0);
    for k in &v.trunks {
        if !known.contains(&k.endpoint) {
            missing.push(format!("endpoint {}", k.endpoint));
            continue;
        }
        if k.identify {
            if s.identifies(&k.endpoint).await? {
                identifies += 1;
            } else {
                missing.push(format!("identify of {}", k.endpoint));
            }
        }
        if k.registration {
            if registered.contains(&k.endpoint) {
                regs += 1;
            } else {
                missing.push(format!("registration {}", k.endpoint));
            }
        }
    }
    if missing.is_empty() {
        Ok(format!(
            "{} trunk endpoint(s), {identifies} identify, {regs} registration(s) loaded",
            v.trunks.len()
        ))
    } else {
        Err(format!(
            "not loaded by PJSIP: {} (is sorcery.conf mapping these types to realtime only?)",
            missing.join(", ")
        ))
    }
}

/// Disarms the PBX's rollback. What is reported is what the PBX's state files say: confirmed
/// (whatever a cleanup after it did), or taken by the PBX's own rollback.
async fn confirm<S: Session>(
    s: &mut S,
    steps: &mut Steps,
    armed_at: Instant,
) -> std::result::Result<(), Halt> {
    let t = Instant::now();
    let answer = match s.confirm().await {
        Ok(c) => Ok(c),
        // The rename's answer was lost: the state files tell whether it happened.
        Err(e) => match s.arm_state().await {
            Ok(Some("confirmed")) => Ok(Confirmation::Confirmed {
                cleanup: Some(format!("the confirmation's answer was lost ({e}); the PBX shows it confirmed, and the rollback's secrets may still be there")),
            }),
            Ok(Some("armed")) => Err(e),
            Ok(_) => Ok(Confirmation::TooLate),
            Err(_) => Err(e),
        },
    };
    match answer {
        Ok(Confirmation::Confirmed { cleanup }) => {
            let pruned = s.prune().await.unwrap_or(0);
            let mut detail = format!(
                "the PBX's rollback was disarmed {} ms after it was armed",
                armed_at.elapsed().as_millis()
            );
            if pruned > 0 {
                detail.push_str(&format!(
                    "; {pruned} old backup(s) removed (the last {} are kept)",
                    super::pbx_side::KEEP_BACKUPS
                ));
            }
            if let Some(c) = &cleanup {
                detail.push_str(&format!("; warning: {c}"));
            }
            steps.done(StepKind::Confirm, t, true, detail);
            Ok(())
        }
        Ok(Confirmation::TooLate) => {
            steps.done(
                StepKind::Confirm,
                t,
                false,
                "too late: the PBX's own rollback started (the confirm window ran out); it restores the backup",
            );
            Err(Halt::TooLate(StepKind::Confirm))
        }
        Err(e) => Err(failed(steps, StepKind::Confirm, t, e)),
    }
}

/// Undoes what was made, last change first, from the laptop (it reports and verifies; the
/// PBX's script cannot). Claiming the rollback keeps the PBX's timer from running the same one
/// at once; should this laptop vanish half-way, the timer finishes it.
async fn roll_back<S: Session>(
    s: &mut S,
    job: &Job<'_>,
    plan: &Plan,
    steps: &mut Steps,
    made: &[Made],
    failed: StepKind,
) -> Ran {
    let t = Instant::now();
    let claimed = s.claim_rollback().await;
    if !matches!(claimed, Ok(true)) {
        let state = s.arm_state().await.ok().flatten();
        steps.done(
            StepKind::RollBack,
            t,
            false,
            match state {
                Some("confirmed") => "the PBX shows this apply confirmed".to_owned(),
                Some(st) => format!("the PBX is rolling itself back (its rollback is {st}; see rollback.log in the backup)"),
                None => "the PBX is rolling itself back when the confirm window ends (its state cannot be read from here)".to_owned(),
            },
        );
        return Ran::RolledBack {
            failed,
            left_to_pbx: true,
        };
    }
    let mut complete = true;
    for m in made.iter().rev() {
        let t = Instant::now();
        match m {
            Made::Rows => {
                let r = s.undo_rows().await;
                complete &= r.is_ok();
                steps.done(
                    StepKind::RestoreRows,
                    t,
                    r.is_ok(),
                    r.err().unwrap_or_default(),
                );
            }
            Made::Files => {
                let r = s.restore(&plan.restore).await;
                complete &= r.is_ok();
                steps.done(
                    StepKind::RestoreFiles,
                    t,
                    r.is_ok(),
                    r.map(|n| format!("{n} file(s) put back"))
                        .unwrap_or_else(|e| e),
                );
            }
            // Reloaded below, once the files and rows are back.
            Made::Reload => {}
        }
    }
    complete &= reload_old(s, job, plan, steps).await;
    let _ = s.finish_rollback(complete).await;
    Ran::RolledBack {
        failed,
        left_to_pbx: false,
    }
}

/// Reloads what the rollback put back and verifies the old dialplan is what Asterisk runs (a
/// failed reload keeps the old dialplan loaded: that counts). Whether it is.
async fn reload_old<S: Session>(s: &mut S, job: &Job<'_>, plan: &Plan, steps: &mut Steps) -> bool {
    let t = Instant::now();
    let reloaded = s.reload(&plan.modules, false).await.map(|_| ());
    let verified = match (job.last, reloaded) {
        (Some(l), r) => verify_contexts(s, &l.contexts).await.map(|n| {
            let mut d = format!("{n} context(s) of the last apply loaded");
            if let Err(e) = r {
                d.push_str(&format!(" (the reload failed, {e}; Asterisk kept them)"));
            }
            d
        }),
        (None, Ok(())) => Ok("reloaded".into()),
        (None, Err(e)) => Err(e),
    };
    let ok = verified.is_ok();
    steps.done(StepKind::ReloadOld, t, ok, verified.unwrap_or_else(|e| e));
    ok
}

#[cfg(test)]
mod tests;
