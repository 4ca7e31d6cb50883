//! A voicemail PIN changed here reaches its mailbox at once, without the workspace's other
//! edits: the render the PBX runs (the last applied one) with that PIN changed and nothing else
//! goes through the same guarded apply (lock, backup, arm, upload, `app_voicemail` reload,
//! mailbox verification, confirm). A PIN stays pending (`users.pin_pending_since`) until the
//! PBX runs a render holding it; it is settled by comparing renders, never clocks.

use super::run::{self, Ran};
use super::{ApplyOptions, ApplyOutcome, ApplyStep, Recorded, Steps, CONFIRM_DEFAULT};
use crate::error::{Error, Result};
use crate::service::{Actor, Workspace};
use crate::store::pins::{self, PendingPin};
use pbxdesk_render::pbx::{with_voicemail_pin, PinChange};
use pbxdesk_render::Rendered;
use secrecy::ExposeSecret;
use serde::Serialize;

/// What a push did.
#[derive(Debug, Default)]
pub(crate) struct PinPush {
    /// PINs uploaded to their mailboxes now.
    pub pushed: usize,
    /// PINs the PBX already had (nothing to upload).
    pub settled: usize,
    /// Why the others still wait, when some do.
    pub pending: Option<String>,
}

/// The audit entry of a push (who, the mailboxes, the apply's steps).
#[derive(Serialize)]
struct PushRecord<'a> {
    mailboxes: Vec<String>,
    outcome: ApplyOutcome,
    steps: &'a [ApplyStep],
}

impl Workspace {
    /// Pushes the pending PINs of PBX `pbx_id` (only user `only`'s when given). Rights are the
    /// caller's to check (the user's edit, or the system at a watcher's connect); what a
    /// tenant_admin is told of a refusal names nothing of another tenant.
    pub(crate) async fn pins_push(
        &self,
        actor: &Actor,
        pbx_id: i64,
        only: Option<i64>,
    ) -> Result<PinPush> {
        let rows = pins::pending(self.store.pool(), pbx_id, only).await?;
        if rows.is_empty() {
            return Ok(PinPush::default());
        }
        let Some((last, _, _)) = self.last_applied(pbx_id).await? else {
            return Ok(PinPush {
                pending: Some(
                    "nothing was applied to the PBX yet: the first apply brings it".into(),
                ),
                ..PinPush::default()
            });
        };
        let (new, changed, mut waiting) = self.with_pins(&last, &rows)?;
        let mut push = PinPush::default();
        if changed.is_empty() {
            push.settled = self.pins_settle(pbx_id, &last).await?;
        } else {
            match self.push_render(actor, pbx_id, &last, &new, &changed).await {
                Ok(()) => push.pushed = self.pins_settle(pbx_id, &new).await?,
                Err(e) => waiting = Some(said_to(actor, &e)),
            }
        }
        push.pending = waiting;
        Ok(push)
    }

    /// Clears the pending mark of this PBX's users whose PIN `applied` (a render the PBX now
    /// runs) holds; returns how many.
    pub(crate) async fn pins_settle(&self, pbx_id: i64, applied: &Rendered) -> Result<usize> {
        let mut n = 0;
        for row in pins::pending(self.store.pool(), pbx_id, None).await? {
            let pin = self.unseal("users", "voicemail_pin", row.user_id, &row.voicemail_pin)?;
            let ext = u32::try_from(row.extension).unwrap_or(u32::MAX);
            if with_voicemail_pin(applied, &row.tenant, ext, pin.expose_secret()) == PinChange::Same
            {
                let mut w = self.store.begin_write().await?;
                pins::settle(&mut *w.tx, row.user_id, &row.voicemail_pin).await?;
                w.commit().await?;
                n += 1;
            }
        }
        Ok(n)
    }

    /// `last` with each pending PIN in place: the render, the mailboxes changed, and why some
    /// cannot go without an apply.
    fn with_pins(
        &self,
        last: &Rendered,
        rows: &[PendingPin],
    ) -> Result<(Rendered, Vec<String>, Option<String>)> {
        let mut new = last.clone();
        let (mut changed, mut waiting) = (Vec::new(), None);
        for row in rows {
            let pin = self.unseal("users", "voicemail_pin", row.user_id, &row.voicemail_pin)?;
            let ext = u32::try_from(row.extension).unwrap_or(u32::MAX);
            match with_voicemail_pin(&new, &row.tenant, ext, pin.expose_secret()) {
                PinChange::Changed(r) => {
                    new = *r;
                    changed.push(format!("{}/{}", row.tenant, row.extension));
                }
                PinChange::Same => {}
                PinChange::NoMailbox => {
                    waiting = Some(
                        "the mailbox is not on the PBX yet: the next apply brings it".to_owned(),
                    );
                }
                PinChange::NotAPin => {
                    waiting = Some("the stored PIN is not one the PBX takes: edit it".to_owned());
                }
            }
        }
        Ok((new, changed, waiting))
    }

    /// `new` (which differs from `last`, the PBX's render, only in PINs) through the guarded
    /// apply, recorded as an amendment of the last apply and audited.
    async fn push_render(
        &self,
        actor: &Actor,
        pbx_id: i64,
        last: &Rendered,
        new: &Rendered,
        mailboxes: &[String],
    ) -> Result<()> {
        let pbx = crate::store::pbxes::by_id(self.store.pool(), pbx_id).await?;
        let mut session = self.open_session(actor, &pbx, CONFIRM_DEFAULT).await?;
        let mut steps = Steps::new(None);
        let opts = ApplyOptions::default();
        let job = run::Job {
            last: Some(last),
            new,
            opts: &opts,
            window: CONFIRM_DEFAULT,
        };
        let ran = self
            .apply_on(
                actor,
                &pbx,
                &mut session,
                &job,
                Recorded::Amendment,
                &mut steps,
            )
            .await;
        session.close().await;
        let outcome = match ran? {
            Ran::NothingToDo => return Ok(()),
            Ran::Applied => ApplyOutcome::Applied,
            Ran::Stopped(_) => ApplyOutcome::Stopped,
            Ran::RolledBack { .. } => ApplyOutcome::RolledBack,
        };
        let record = PushRecord {
            mailboxes: mailboxes.to_vec(),
            outcome,
            steps: &steps.0,
        };
        self.record_on_pbx(actor, &pbx, "pbx.voicemail_pins", &record)
            .await?;
        match outcome {
            ApplyOutcome::Applied => Ok(()),
            _ => {
                let failed = steps.0.iter().find(|s| !s.ok);
                Err(Error::Unreachable(format!(
                    "the PBX did not take the PIN ({}): it was left as it was",
                    failed.map_or("a step failed", |s| s.step.as_str())
                )))
            }
        }
    }
}

/// Why a push did not happen, as `actor` may be told: a tenant_admin is not told what another
/// tenant's file holds (drift, say), only that the PBX did not take it now.
fn said_to(actor: &Actor, e: &Error) -> String {
    if actor.sees_all_tenants() {
        format!("{e}; it goes at the next connection or apply")
    } else {
        "the PBX did not take it now; it goes at the next connection or apply".to_owned()
    }
}
