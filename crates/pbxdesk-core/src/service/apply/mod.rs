//! The guarded apply: render and validate, read the PBX, refuse drift, lock the PBX, back up,
//! upload atomically, sync the realtime rows in one transaction, reload narrowly, verify what
//! Asterisk loaded, and restore everything on any failure. Each step is timed, typed
//! ([`StepKind`]) and reported as it ends.
//!
//! - `plan`: what to do, decided without I/O (uploads, restores, reloads, verification,
//!   refusals);
//! - `session`: the conversation with the PBX behind a trait (the real one over SSH, AMI and
//!   MariaDB; a scripted one in `run`'s tests);
//! - `run`: the state machine that walks the plan's steps against a session and back;
//! - `pbx_side`: the lock, the backup and the armed rollback on the PBX's file system;
//! - `pin`: a voicemail PIN pushed alone, as this same apply of the last applied render with
//!   that PIN changed;
//! - this module: the service (`Workspace::pbx_apply_with`) and what it reports.

mod pbx_side;
mod pin;
mod plan;
mod run;
mod session;

use super::render::Recorded;
use super::{Actor, Workspace};
use crate::error::{Error, Refusal, Result};
use crate::model::Pbx;
use pbxdesk_remote::realtime::{Credential, Device};
use pbxdesk_render::{Diff, Finding, Rendered, Touched};
use run::Ran;
use secrecy::SecretString;
use serde::Serialize;
use session::{Secrets, Session, SshSession};
use std::sync::Arc;
use std::time::Instant;

/// The first key of pbxdesk's PostgreSQL advisory locks ("pbxd").
const TEAM_LOCK_CLASS: i32 = 0x7062_7864;

#[derive(Debug, Clone, Default, Serialize, serde::Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct ApplyOptions {
    /// Print the preview and change nothing.
    pub dry_run: bool,
    /// Replace files someone changed on the PBX since the last apply.
    pub overwrite_drift: bool,
    /// Add the missing `#tryinclude` lines to extensions.conf / pjsip.conf / voicemail.conf.
    pub add_includes: bool,
    /// Seconds the PBX waits for the confirmation before it rolls back by itself
    /// (default 300, 2 to 600: always under the stale-lock age).
    pub confirm_seconds: Option<u32>,
}

/// The confirm window when none is given, and its bounds.
pub const CONFIRM_DEFAULT: u32 = 300;
const CONFIRM_RANGE: std::ops::RangeInclusive<u32> = 2..=600;

/// The steps of an apply, in the order they run (the rollback's last). Front ends switch on
/// these, never on a step's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum StepKind {
    Render,
    /// A rollback the PBX ran by itself since the last apply, reported once.
    EarlierApply,
    ReadPbx,
    Lock,
    Includes,
    ConnectAmi,
    FileAccess,
    Transports,
    ConnectDatabase,
    /// The backup and the armed rollback.
    Backup,
    Upload,
    Sync,
    Reload,
    VerifyDialplan,
    VerifyEndpoints,
    VerifyVoicemail,
    VerifyTrunks,
    Confirm,
    /// The users' DND and forwards written to AstDB (after the confirm: never rolled back).
    Features,
    /// The laptop takes the rollback over from the PBX's timer (or finds the PBX has it).
    RollBack,
    RestoreFiles,
    RestoreRows,
    /// The old configuration reloaded and its dialplan verified.
    ReloadOld,
    Unlock,
    /// A step recorded by a version that did not type its steps (in the history).
    Other,
}

impl StepKind {
    /// The step's name for people (CLI lines, the history).
    pub fn label(self) -> &'static str {
        match self {
            StepKind::Render => "render and validate",
            StepKind::EarlierApply => "earlier apply",
            StepKind::ReadPbx => "read the PBX",
            StepKind::Lock => "lock the PBX",
            StepKind::Includes => "include lines",
            StepKind::ConnectAmi => "connect AMI",
            StepKind::FileAccess => "file access",
            StepKind::Transports => "transports",
            StepKind::ConnectDatabase => "connect realtime database",
            StepKind::Backup => "back up and arm the rollback",
            StepKind::Upload => "upload",
            StepKind::Sync => "sync realtime rows",
            StepKind::Reload => "reload",
            StepKind::VerifyDialplan => "verify dialplan",
            StepKind::VerifyEndpoints => "verify endpoints",
            StepKind::VerifyVoicemail => "verify voicemail",
            StepKind::VerifyTrunks => "verify trunks",
            StepKind::Confirm => "confirm",
            StepKind::Features => "DND and forwards",
            StepKind::RollBack => "roll back",
            StepKind::RestoreFiles => "restore files",
            StepKind::RestoreRows => "restore realtime rows",
            StepKind::ReloadOld => "reload and verify the old state",
            StepKind::Unlock => "unlock",
            StepKind::Other => "step",
        }
    }

    /// Whether the step checks what Asterisk loaded.
    pub fn is_verification(self) -> bool {
        matches!(
            self,
            StepKind::VerifyDialplan
                | StepKind::VerifyEndpoints
                | StepKind::VerifyVoicemail
                | StepKind::VerifyTrunks
        )
    }

    /// Whether the step reaches the PBX's AMI or database (a failure there: unreachable).
    pub fn is_connection(self) -> bool {
        matches!(self, StepKind::ConnectAmi | StepKind::ConnectDatabase)
    }
}

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApplyStep {
    pub kind: StepKind,
    /// The kind's name for people.
    pub step: String,
    pub ok: bool,
    pub ms: u32,
    pub detail: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ApplyOutcome {
    Applied,
    NothingToDo,
    DryRun,
    /// A step failed after the PBX was changed; it was restored to what it ran before.
    RolledBack,
    /// A step failed before anything on the PBX changed.
    Stopped,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApplyReport {
    pub pbx: String,
    pub outcome: ApplyOutcome,
    pub summary: String,
    pub steps: Vec<ApplyStep>,
    pub diff: Diff,
    /// The tenants, users, devices and DIDs the change touches.
    pub touched: Touched,
    pub findings: Vec<Finding>,
    /// The step that failed, when stopped or rolled back.
    pub failed: Option<StepKind>,
}

impl ApplyReport {
    /// The error code a failed apply stands for (the CLI's exit code): `Unreachable` when AMI
    /// or the database could not be reached, else `Conflict`; `None` when it did not fail.
    pub fn failure_code(&self) -> Option<crate::error::ErrorCode> {
        use crate::error::ErrorCode;
        match (self.outcome, self.failed) {
            (ApplyOutcome::Stopped, Some(k)) if k.is_connection() => Some(ErrorCode::Unreachable),
            (ApplyOutcome::Stopped | ApplyOutcome::RolledBack, _) => Some(ErrorCode::Conflict),
            _ => None,
        }
    }
}

/// Called with each step as it ends (the app's live progress, the CLI's lines).
pub type Progress = Arc<dyn Fn(&ApplyStep) + Send + Sync>;

/// What an apply takes to the PBX.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ApplySource {
    /// The workspace as it is now.
    Workspace,
    /// The render applied before the last one: rolls the last apply back, through the same
    /// guarded steps.
    PreviousApply,
}

/// The steps so far, each passed to the progress callback as it ends.
#[derive(Default)]
pub(crate) struct Steps(Vec<ApplyStep>, Option<Progress>);

/// An apply that ended in an error (refused, the PBX unreachable), as its history records it:
/// the same keys as a report's, so the history reads both alike.
#[derive(Serialize)]
struct Attempt<'a> {
    /// `refused` (nothing was tried) or `failed` (it stopped on an error before any change).
    outcome: &'static str,
    summary: String,
    code: crate::error::ErrorCode,
    steps: &'a [ApplyStep],
    failed: Option<StepKind>,
}

impl<'a> Attempt<'a> {
    fn of(e: &Error, steps: &'a [ApplyStep]) -> Attempt<'a> {
        Attempt {
            outcome: if matches!(e, Error::Refused(_)) {
                "refused"
            } else {
                "failed"
            },
            summary: e.to_string(),
            code: e.code(),
            steps,
            failed: steps.iter().rev().find(|s| !s.ok).map(|s| s.kind),
        }
    }
}

impl Steps {
    fn new(progress: Option<Progress>) -> Steps {
        Steps(Vec::new(), progress)
    }

    pub(crate) fn done(
        &mut self,
        kind: StepKind,
        started: Instant,
        ok: bool,
        detail: impl Into<String>,
    ) {
        let s = ApplyStep {
            kind,
            step: kind.label().to_owned(),
            ok,
            ms: u32::try_from(started.elapsed().as_millis()).unwrap_or(u32::MAX),
            detail: detail.into(),
        };
        if let Some(on) = &self.1 {
            on(&s);
        }
        self.0.push(s);
    }
}

/// What the apply takes to the PBX, and what it changes (computed before anything is contacted).
struct Prepared {
    rendered: Rendered,
    last: Option<Rendered>,
    diff: Diff,
    touched: Touched,
    summary: String,
}

impl Prepared {
    fn report(
        &self,
        pbx: &Pbx,
        outcome: ApplyOutcome,
        summary: String,
        steps: Steps,
        failed: Option<StepKind>,
    ) -> ApplyReport {
        ApplyReport {
            pbx: pbx.name.clone(),
            outcome,
            summary,
            steps: steps.0,
            diff: self.diff.clone(),
            touched: self.touched.clone(),
            findings: self.rendered.findings.clone(),
            failed,
        }
    }
}

/// The realtime rows of a render, as the sync takes them.
pub fn realtime_devices(r: &Rendered) -> Vec<Device> {
    r.realtime
        .iter()
        .map(|e| Device {
            id: e.id.clone(),
            username: e.username.clone(),
            credential: Credential::UserPass(SecretString::from(e.password.clone())),
            context: e.context.clone(),
            transport: e.transport.clone(),
            allow: e.allow.clone(),
            callerid: e.callerid.clone(),
            mailboxes: e.mailboxes.clone(),
            nat: e.nat,
            max_contacts: e.max_contacts,
            set_var: Some(e.set_var.clone()),
        })
        .collect()
}

/// The mysql client's option file for the PBX's own rollback (0600, removed once the apply
/// is confirmed or rolled back). The realtime database as the PBX reaches it.
fn db_cnf(pbx: &Pbx, password: Option<&SecretString>) -> Result<String> {
    use secrecy::ExposeSecret;
    let host = match pbx.db_via {
        crate::domain::Via::Direct => pbx.host.clone(),
        crate::domain::Via::Tunnel => "127.0.0.1".to_owned(),
    };
    let quoted = |field: &str, v: &str| -> Result<String> {
        if v.contains(['\n', '\r', '\0']) {
            return Err(Refusal::DbSetting {
                field: field.into(),
            }
            .into());
        }
        Ok(format!(
            "\"{}\"",
            v.replace('\\', "\\\\").replace('"', "\\\"")
        ))
    };
    let mut cnf = format!(
        "[mysql]\nhost={}\nport={}\nuser={}\ndatabase={}\n",
        quoted("host", &host)?,
        pbx.db_port,
        quoted("db_user", pbx.db_user.as_deref().unwrap_or_default())?,
        quoted("db_name", &pbx.db_name)?
    );
    if let Some(p) = password {
        cnf.push_str(&format!(
            "password={}\n",
            quoted("db_password", p.expose_secret())?
        ));
    }
    Ok(cnf)
}

fn confirm_window(opts: &ApplyOptions) -> Result<u32> {
    let window = opts.confirm_seconds.unwrap_or(CONFIRM_DEFAULT);
    if CONFIRM_RANGE.contains(&window) {
        return Ok(window);
    }
    Err(crate::error::ValidationError::new(
        "confirm_seconds",
        &window.to_string(),
        format!(
            "{} to {} seconds (the PBX rolls back by itself if the apply is not confirmed by then)",
            CONFIRM_RANGE.start(),
            CONFIRM_RANGE.end()
        ),
    )
    .into())
}

impl Workspace {
    /// Applies the workspace to a PBX. See the module comment for the steps.
    pub async fn pbx_apply(
        &self,
        actor: &Actor,
        name: &str,
        opts: &ApplyOptions,
    ) -> Result<ApplyReport> {
        self.pbx_apply_with(actor, name, opts, ApplySource::Workspace, None)
            .await
    }

    /// [`Workspace::pbx_apply`] of `source`, reporting each step to `progress` as it ends.
    pub async fn pbx_apply_with(
        &self,
        actor: &Actor,
        name: &str,
        opts: &ApplyOptions,
        source: ApplySource,
        progress: Option<Progress>,
    ) -> Result<ApplyReport> {
        actor.require_msp_write()?;
        actor.require_reveal()?;
        let window = confirm_window(opts)?;
        let mut steps = Steps::new(progress);
        let pbx = self.pbx_show(actor, name).await?;
        if opts.dry_run {
            let p = self.prepare_apply(actor, &pbx, source, &mut steps).await?;
            return Ok(p.report(&pbx, ApplyOutcome::DryRun, p.summary.clone(), steps, None));
        }
        let ran = self
            .apply_attempt(actor, &pbx, opts, window, source, &mut steps)
            .await;
        if let Err(e) = &ran {
            // A refused or failed attempt belongs in the PBX's history too.
            let attempt = Attempt::of(e, &steps.0);
            if let Err(re) = self.record_on_pbx(actor, &pbx, "pbx.apply", &attempt).await {
                tracing::warn!(error = %re, "the failed apply attempt could not be recorded");
            }
        }
        ran
    }

    async fn apply_attempt(
        &self,
        actor: &Actor,
        pbx: &Pbx,
        opts: &ApplyOptions,
        window: u32,
        source: ApplySource,
        steps: &mut Steps,
    ) -> Result<ApplyReport> {
        // The SSH handshake goes on while the workspace is rendered (most of either is waiting
        // or computing, not both); a refused render still wins over an unreachable PBX.
        let (p, session) = tokio::join!(
            self.prepare_apply(actor, pbx, source, steps),
            self.open_session(actor, pbx, window)
        );
        let p = p?;
        let mut session = session?;
        let job = run::Job {
            last: p.last.as_ref(),
            new: &p.rendered,
            opts,
            window,
        };
        let ran = self
            .apply_on(actor, pbx, &mut session, &job, Recorded::NewApply, steps)
            .await;
        if matches!(ran, Ok(Ran::Applied | Ran::NothingToDo)) {
            self.apply_features(pbx, &session, steps).await;
            // The PINs changed before this render was taken are on the PBX now.
            if let Err(e) = self.pins_settle(pbx.id, &p.rendered).await {
                tracing::warn!(error = %e, "the pending voicemail PINs could not be settled");
            }
        }
        session.close().await;
        let (outcome, failed) = match ran? {
            Ran::NothingToDo => {
                let said = if steps.0.iter().any(|s| s.kind == StepKind::Lock) {
                    "another apply brought the PBX to this configuration"
                } else {
                    "the PBX already runs this configuration"
                };
                return Ok(p.report(
                    pbx,
                    ApplyOutcome::NothingToDo,
                    said.into(),
                    std::mem::take(steps),
                    None,
                ));
            }
            Ran::Applied => (ApplyOutcome::Applied, None),
            Ran::Stopped(k) => (ApplyOutcome::Stopped, Some(k)),
            Ran::RolledBack { failed, .. } => (ApplyOutcome::RolledBack, Some(failed)),
        };
        let rep = p.report(
            pbx,
            outcome,
            p.summary.clone(),
            std::mem::take(steps),
            failed,
        );
        self.record_on_pbx(actor, pbx, "pbx.apply", &rep).await?;
        Ok(rep)
    }

    /// After a good apply, the users' DND and forwards on the PBX brought level with the
    /// workspace (a rebuilt PBX gets them back). Its failure changes nothing applied: they stay
    /// pending and the next connection writes them.
    async fn apply_features(&self, pbx: &Pbx, session: &SshSession, steps: &mut Steps) {
        let Some(c) = session.ami_client() else {
            return;
        };
        let t = Instant::now();
        match self.features_sync(pbx.id, c).await {
            Ok(done) => steps.done(StepKind::Features, t, true, done.summary()),
            Err(e) => steps.done(StepKind::Features, t, false, e.to_string()),
        }
    }

    /// Renders (or takes the previous apply's render), validates and summarizes the change.
    async fn prepare_apply(
        &self,
        actor: &Actor,
        pbx: &Pbx,
        source: ApplySource,
        steps: &mut Steps,
    ) -> Result<Prepared> {
        let t = Instant::now();
        let (rendered, what) = match source {
            ApplySource::Workspace => {
                let snapshot = self.pbx_snapshot(actor, &pbx.name).await?;
                (pbxdesk_render::render_pbx(&snapshot), String::new())
            }
            ApplySource::PreviousApply => {
                let (r, at) = self.previous_applied(pbx.id).await?.ok_or_else(|| {
                    Refusal::NoEarlierApply {
                        pbx: pbx.name.clone(),
                    }
                })?;
                (r, format!("back to the apply of {at} (Unix ms): "))
            }
        };
        let last = self.last_applied(pbx.id).await?.map(|l| l.0);
        let diff = pbxdesk_render::diff(last.as_ref(), &rendered);
        let touched = pbxdesk_render::touched(last.as_ref(), &rendered);
        let errors: Vec<String> = rendered
            .findings
            .iter()
            .filter(|f| f.is_error())
            .map(|f| format!("{}: {}", f.entity, f.message))
            .collect();
        steps.done(
            StepKind::Render,
            t,
            errors.is_empty(),
            format!(
                "{} file(s), {} realtime row(s), {} error(s)",
                rendered.files.len(),
                rendered.realtime.len(),
                errors.len()
            ),
        );
        if !errors.is_empty() {
            return Err(Refusal::RenderErrors { errors }.into());
        }
        let summary = format!(
            "{what}{}; {} file(s) changed, {} unchanged; realtime rows: {} to add, {} to change, {} to remove",
            touched.line(),
            diff.files.len(),
            diff.unchanged_files,
            diff.rows_added.len(),
            diff.rows_changed.len(),
            diff.rows_removed.len()
        );
        Ok(Prepared {
            rendered,
            last,
            diff,
            touched,
            summary,
        })
    }

    /// Opens the apply's session: the pinned host key, the profile's secrets, the lock's note
    /// (who, a random apply id, when: the PBX's rollback acts only while this note holds the lock).
    async fn open_session(&self, actor: &Actor, pbx: &Pbx, window: u32) -> Result<SshSession> {
        let pinned = pbx.host_key.clone().ok_or_else(|| Refusal::Untrusted {
            pbx: pbx.name.clone(),
        })?;
        let [ssh, ami, db] = self.pbx_secrets(pbx.id).await?;
        // The PBX's own rollback needs the database settings in a mysql option file: refused
        // here, before anything is contacted, if they cannot go there.
        let cnf = db_cnf(pbx, db.as_ref())?;
        let owner = format!(
            "{} (apply {:08x}) {}",
            actor.name().replace(['\n', '\r'], " "),
            rand::random::<u32>(),
            self.now()
        );
        SshSession::open(
            pbx.clone(),
            Secrets { ssh, ami, db },
            pinned,
            owner,
            window,
            self.now(),
            cnf,
        )
        .await
    }

    /// The apply on an open session: earlier rollbacks reported, nothing to do decided before
    /// any lock, the team's lock, the PBX's lock, the walk, the last render recorded before the
    /// PBX's lock is released (so the next apply sees it).
    async fn apply_on<S: Session>(
        &self,
        actor: &Actor,
        pbx: &Pbx,
        s: &mut S,
        job: &run::Job<'_>,
        how: Recorded,
        steps: &mut Steps,
    ) -> Result<Ran> {
        self.report_pbx_rollbacks(actor, pbx, s, steps).await?;
        let t = Instant::now();
        let files = s.read(&[]).await.map_err(Error::Conflict)?;
        if plan::runs_already(job.last, job.new, &files.generated) {
            steps.done(
                StepKind::ReadPbx,
                t,
                true,
                "it already runs this configuration",
            );
            return Ok(Ran::NothingToDo);
        }
        // A team shares one workspace: its lock refuses a teammate's apply to this PBX at once,
        // before either touches the PBX (the PBX's own lock covers everyone else).
        let team_lock = self.team_apply_lock(pbx).await?;
        let ran = async {
            run::lock(s, steps).await?;
            let ran = run::under_lock(s, job, steps).await;
            let marked = match ran {
                Ok(Ran::Applied) => {
                    self.record_applied(pbx.id, actor.name(), job.new, how)
                        .await
                }
                _ => Ok(()),
            };
            run::unlock(s, &ran, steps).await;
            marked?;
            ran
        }
        .await;
        if let Some(conn) = team_lock {
            Self::team_apply_unlock(conn, pbx.id).await;
        }
        ran
    }

    /// An earlier apply whose laptop went away was rolled back by the PBX: recorded and said,
    /// once (the note is removed after it is recorded).
    async fn report_pbx_rollbacks<S: Session>(
        &self,
        actor: &Actor,
        pbx: &Pbx,
        s: &mut S,
        steps: &mut Steps,
    ) -> Result<()> {
        let t = Instant::now();
        for rb in s.earlier_rollbacks().await.map_err(Error::Conflict)? {
            self.record_on_pbx(actor, pbx, "pbx.apply.rolled_back_by_pbx", &rb)
                .await?;
            s.forget_rollback(&rb.note).await;
            steps.done(
                StepKind::EarlierApply,
                t,
                rb.complete,
                format!(
                    "the apply backed up in {} was not confirmed; the PBX rolled it back by itself{}",
                    rb.backup,
                    if rb.complete { "" } else { " INCOMPLETELY (see its rollback.log)" }
                ),
            );
        }
        Ok(())
    }

    /// PostgreSQL only: a session advisory lock on (pbxdesk's key, the PBX's id), held on a
    /// connection of its own taken out of the pool: if this process dies, the connection
    /// closes and PostgreSQL releases the lock.
    async fn team_apply_lock(&self, pbx: &Pbx) -> Result<Option<sqlx::AnyConnection>> {
        if self.store.backend() != crate::store::Backend::Postgres {
            return Ok(None);
        }
        let mut conn = self
            .store
            .pool()
            .acquire()
            .await
            .map_err(crate::store::db_error)?
            .detach();
        let key = i32::try_from(pbx.id).unwrap_or(i32::MAX);
        let got = crate::store::team_lock::try_take(&mut conn, TEAM_LOCK_CLASS, key).await?;
        if !got {
            return Err(Refusal::TeamLocked {
                pbx: pbx.name.clone(),
            }
            .into());
        }
        Ok(Some(conn))
    }

    async fn team_apply_unlock(mut conn: sqlx::AnyConnection, pbx_id: i64) {
        use sqlx::Connection as _;
        let key = i32::try_from(pbx_id).unwrap_or(i32::MAX);
        crate::store::team_lock::give_back(&mut conn, TEAM_LOCK_CLASS, key).await;
        let _ = conn.close().await;
    }

    /// An audit entry about the PBX as a whole (an apply, a rollback the PBX ran), in its own
    /// transaction.
    async fn record_on_pbx<T: Serialize>(
        &self,
        actor: &Actor,
        pbx: &Pbx,
        action: &'static str,
        what: &T,
    ) -> Result<()> {
        let mut w = self.store.begin_write().await?;
        let c = super::audit::Change {
            action,
            entity_type: "pbx",
            entity_id: pbx.name.clone(),
            tenant_id: None,
        };
        super::audit::record::<T, T>(&mut w, actor, self.now(), c, None, Some(what)).await?;
        w.commit().await
    }
}

#[cfg(test)]
mod send_check {
    #[allow(dead_code)]
    fn apply_future_is_send(ws: &super::Workspace, a: &super::Actor, o: &super::ApplyOptions) {
        fn send<T: Send>(_: T) {}
        send(ws.pbx_apply_with(a, "x", o, super::ApplySource::Workspace, None));
    }
}
