//! A fleet from one console: every PBX whose render differs from its last apply, applied with
//! bounded parallelism, each through the same guarded apply; one line per PBX and the worst
//! outcome. One PBX failing never stops or changes the others: each apply is its own session,
//! lock and rollback, and an error is that PBX's line.

use super::{Actor, ApplyOptions, ApplyOutcome, ApplyReport, StepKind, Workspace};
use crate::error::{Error, ErrorCode, Result};
use futures_util::stream::{self, StreamExt};
use serde::Serialize;
use std::sync::Arc;

/// How one PBX's apply ended, from the best to the worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum FleetOutcome {
    Applied,
    NothingToDo,
    /// Refused before anything changed (drift, a missing include line, the PBX locked, …).
    Refused,
    /// SSH, AMI or the database out of reach; nothing changed.
    Unreachable,
    /// A step failed before anything on the PBX changed.
    Stopped,
    /// A step failed after the PBX changed; it was restored.
    RolledBack,
    /// Anything else (the workspace, an internal error).
    Failed,
}

/// One PBX of the fleet.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FleetLine {
    pub pbx: String,
    pub outcome: FleetOutcome,
    /// Why, in a line: the summary, the failed step and its detail, or the error.
    pub detail: String,
    /// The error code behind a failure (the CLI's exit code).
    pub code: Option<ErrorCode>,
    /// The step that failed, when one did.
    pub failed: Option<StepKind>,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FleetReport {
    /// In the order of the PBX names.
    pub lines: Vec<FleetLine>,
    /// The worst line's code (`None`: every PBX applied or had nothing to do).
    pub worst: Option<ErrorCode>,
}

/// Called with each PBX's line as its apply ends.
pub type FleetProgress = Arc<dyn Fn(&FleetLine) + Send + Sync>;

/// How many PBXs are applied at once by default.
pub const FLEET_PARALLEL: usize = 4;

fn line_of(pbx: &str, result: Result<ApplyReport>) -> FleetLine {
    match result {
        Ok(rep) => {
            let outcome = match rep.outcome {
                ApplyOutcome::Applied => FleetOutcome::Applied,
                ApplyOutcome::NothingToDo | ApplyOutcome::DryRun => FleetOutcome::NothingToDo,
                ApplyOutcome::RolledBack => FleetOutcome::RolledBack,
                ApplyOutcome::Stopped if rep.failure_code() == Some(ErrorCode::Unreachable) => {
                    FleetOutcome::Unreachable
                }
                ApplyOutcome::Stopped => FleetOutcome::Stopped,
            };
            let detail = match rep.failed {
                Some(k) => {
                    let why = rep
                        .steps
                        .iter()
                        .rev()
                        .find(|s| s.kind == k && !s.ok)
                        .map(|s| s.detail.clone())
                        .unwrap_or_default();
                    format!("failed at {}: {why}", k.label())
                }
                None => rep.summary.clone(),
            };
            FleetLine {
                pbx: pbx.to_owned(),
                outcome,
                detail,
                code: rep.failure_code(),
                failed: rep.failed,
            }
        }
        Err(e) => FleetLine {
            pbx: pbx.to_owned(),
            outcome: match e.code() {
                ErrorCode::Refused => FleetOutcome::Refused,
                ErrorCode::Unreachable => FleetOutcome::Unreachable,
                _ => FleetOutcome::Failed,
            },
            detail: e.to_string(),
            code: Some(e.code()),
            failed: None,
        },
    }
}

impl Workspace {
    /// The PBXs whose render differs from their last apply (or that were never applied), by
    /// name. Offline: nothing is contacted.
    pub async fn pbx_pending(&self, actor: &Actor) -> Result<Vec<String>> {
        actor.require_msp_write()?;
        let mut out = Vec::new();
        for pbx in self.pbx_list(actor).await? {
            let snapshot = self.pbx_snapshot(actor, &pbx.name).await?;
            let new = pbxdesk_render::render_pbx(&snapshot);
            let same = self
                .last_applied(pbx.id)
                .await?
                .is_some_and(|(last, _, _)| {
                    last.files == new.files && last.realtime == new.realtime
                });
            if !same {
                out.push(pbx.name);
            }
        }
        Ok(out)
    }

    /// Applies every pending PBX, `parallel` at a time (1 to 16), each guarded as one apply
    /// is; `progress` hears each PBX's line as it ends.
    pub async fn pbx_apply_pending(
        &self,
        actor: &Actor,
        opts: &ApplyOptions,
        parallel: usize,
        progress: Option<FleetProgress>,
    ) -> Result<FleetReport> {
        if !(1..=16).contains(&parallel) {
            return Err(crate::error::ValidationError::new(
                "parallel",
                &parallel.to_string(),
                "1 to 16 PBXs at once",
            )
            .into());
        }
        if opts.dry_run {
            return Err(Error::Validation(crate::error::ValidationError::new(
                "dry_run",
                "true",
                "a fleet apply has no dry run: `pbxdesk diff` shows each PBX's change",
            )));
        }
        let pending = self.pbx_pending(actor).await?;
        let mut lines: Vec<FleetLine> = stream::iter(pending)
            .map(|name| {
                let progress = progress.clone();
                async move {
                    let line = line_of(&name, self.pbx_apply(actor, &name, opts).await);
                    if let Some(on) = &progress {
                        on(&line);
                    }
                    line
                }
            })
            .buffer_unordered(parallel)
            .collect()
            .await;
        lines.sort_by(|a, b| a.pbx.cmp(&b.pbx));
        let worst = lines.iter().max_by_key(|l| l.outcome).and_then(|l| l.code);
        Ok(FleetReport { lines, worst })
    }
}
