//! DND and call forwards on the PBX at once, both ways. The dialplan reads them from AstDB at
//! call time (`pbxdesk_remote::astdb` has the keys), so a change needs no apply:
//! - changed here (app, CLI, API): written to AstDB at once over the watcher's connection, or
//!   over a connection of its own; when the PBX cannot be reached the user shows as pending
//!   and the next full pass writes it;
//! - changed on the phone (feature codes): the dialplan's `UserEvent` makes the watcher read
//!   that user back, and every full pass finds what changed while nobody watched; the
//!   workspace takes it, audited as coming from the phone;
//! - a full pass (each watcher connect, each apply) brings everything level. A tree without
//!   pbxdesk's marker was wiped or rebuilt: the workspace's state is written back whole.
//!
//! What the PBX is known to hold is kept per user (`user_features_on_pbx`), so three states
//! tell who changed what: the workspace's, the known, the read. When both sides changed, the
//! workspace's (a technician's explicit change) wins.

use super::access::Actor;
use super::audit::{record, Change};
use super::Workspace;
use crate::error::{Error, Result};
use crate::store::features::{self as rows, FeatureRow};
use pbxdesk_remote::ami::{AmiError, Client};
use pbxdesk_remote::astdb::{self, Features, Tree};
use serde::Serialize;
use std::time::Duration;

/// How long a change made here waits for the PBX before it is left pending.
const PUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// What one pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct FeatureSync {
    /// Users whose features were written to the PBX.
    pub written: u32,
    /// Users (`tenant/extension`) whose features a phone changed, taken into the workspace.
    pub from_phone: Vec<String>,
    /// Families of users no longer in the workspace, removed from the PBX.
    pub removed: u32,
    /// AstDB values that broke the rule (overwritten, never kept).
    pub refused: u32,
}

impl FeatureSync {
    pub fn summary(&self) -> String {
        let mut parts = vec![format!("{} written", self.written)];
        if !self.from_phone.is_empty() {
            parts.push(format!("from the phone: {}", self.from_phone.join(", ")));
        }
        if self.removed > 0 {
            parts.push(format!("{} removed", self.removed));
        }
        if self.refused > 0 {
            parts.push(format!("{} refused values overwritten", self.refused));
        }
        parts.join("; ")
    }
}

/// What to do for one user (or one family left over).
#[derive(Debug, PartialEq, Eq)]
enum Act {
    /// Make the PBX hold `to` (it holds `from`).
    Push {
        row: usize,
        /// What it holds; `None`: unsure, write every key.
        from: Option<Features>,
        to: Features,
    },
    /// The phone changed it: the workspace takes `got`.
    Adopt { row: usize, got: Features },
    /// Already level; only the known state is behind.
    Known { row: usize },
    /// A family of a user no longer in the workspace.
    Remove { slug: String, ext: u32 },
}

/// Decides, without I/O, what a pass does. `slugs` are the PBX's tenants (a family of another
/// tenant is never touched).
fn plan(tree: &Tree, rows: &[FeatureRow], slugs: &[String]) -> Vec<Act> {
    let mut acts = Vec::new();
    for (i, r) in rows.iter().enumerate() {
        let Ok(ext) = u32::try_from(r.extension) else {
            continue;
        };
        let key = (r.tenant.clone(), ext);
        let read = tree.users.get(&key).cloned().unwrap_or_default();
        let want = r.wanted();
        let prefix = format!("/{}/{}/{ext}/", astdb::ROOT, r.tenant);
        let garbage = tree.refused.iter().any(|k| k.starts_with(&prefix));
        let known = r.known();
        let phone_changed = tree.marked && !garbage && known.as_ref().is_some_and(|k| *k != read);
        if phone_changed && known.as_ref() == Some(&want) {
            acts.push(Act::Adopt { row: i, got: read });
        } else if read != want || garbage {
            acts.push(Act::Push {
                row: i,
                // A key holding garbage is written whatever it seemed to hold.
                from: (!garbage).then_some(read),
                to: want,
            });
        } else if known.as_ref() != Some(&want) {
            acts.push(Act::Known { row: i });
        }
    }
    for (slug, ext) in tree.users.keys() {
        let ours = slugs.iter().any(|s| s == slug);
        let live = rows
            .iter()
            .any(|r| r.tenant == *slug && r.extension == i64::from(*ext));
        if ours && !live {
            acts.push(Act::Remove {
                slug: slug.clone(),
                ext: *ext,
            });
        }
    }
    acts
}

fn unreachable(e: AmiError) -> Error {
    Error::Unreachable(e.to_string())
}

impl Workspace {
    /// Brings the PBX and the workspace level for every user of the PBX.
    pub(crate) async fn features_sync(&self, pbx_id: i64, c: &Client) -> Result<FeatureSync> {
        let tree = astdb::read_tree(c, astdb::ROOT)
            .await
            .map_err(unreachable)?;
        let rows = rows::of_pbx(self.store.pool(), pbx_id).await?;
        let slugs = rows::tenant_slugs(self.store.pool(), pbx_id).await?;
        let acts = plan(&tree, &rows, &slugs);
        let mut done = self.carry_out(c, &rows, acts).await?;
        done.refused = u32::try_from(tree.refused.len()).unwrap_or(u32::MAX);
        if !tree.marked {
            astdb::mark(c).await.map_err(unreachable)?;
        }
        Ok(done)
    }

    /// Reads back the users a phone just changed (a feature code's event).
    pub(crate) async fn features_read_back(
        &self,
        pbx_id: i64,
        c: &Client,
        users: &[(String, u32)],
    ) -> Result<FeatureSync> {
        let all = rows::of_pbx(self.store.pool(), pbx_id).await?;
        let mut done = FeatureSync::default();
        for (slug, ext) in users {
            let rows: Vec<FeatureRow> = all
                .iter()
                .filter(|r| r.tenant == *slug && r.extension == i64::from(*ext))
                .cloned()
                .collect();
            if rows.is_empty() {
                continue; // not a user of this workspace: nothing to take
            }
            let fam = astdb::family(slug, *ext).map_err(unreachable)?;
            let mut tree = astdb::read_tree(c, &fam).await.map_err(unreachable)?;
            // The event says the phone wrote it: a change, whatever the marker.
            tree.marked = true;
            let acts = plan(&tree, &rows, &[]);
            let d = self.carry_out(c, &rows, acts).await?;
            done.written += d.written;
            done.from_phone.extend(d.from_phone);
            done.refused += u32::try_from(tree.refused.len()).unwrap_or(u32::MAX);
        }
        Ok(done)
    }

    async fn carry_out(
        &self,
        c: &Client,
        rows: &[FeatureRow],
        acts: Vec<Act>,
    ) -> Result<FeatureSync> {
        let mut done = FeatureSync::default();
        for act in acts {
            let now = self.now();
            match act {
                Act::Push { row, from, to } => {
                    let r = &rows[row];
                    let ext = u32::try_from(r.extension).unwrap_or_default();
                    astdb::write_user(c, &r.tenant, ext, from.as_ref(), &to)
                        .await
                        .map_err(unreachable)?;
                    self.note_known(r.user_id, &to, now).await?;
                    done.written += 1;
                }
                Act::Known { row } => {
                    let r = &rows[row];
                    self.note_known(r.user_id, &r.wanted(), now).await?;
                }
                Act::Adopt { row, got } => {
                    let r = &rows[row];
                    self.adopt_from_phone(r, &got, now).await?;
                    done.from_phone
                        .push(format!("{}/{}", r.tenant, r.extension));
                }
                Act::Remove { slug, ext } => {
                    let fam = astdb::family(&slug, ext).map_err(unreachable)?;
                    match c.db_del_tree(&fam).await {
                        Ok(()) => done.removed += 1,
                        Err(AmiError::ActionFailed { message, .. })
                            if message == "Database entry not found" => {}
                        Err(e) => return Err(unreachable(e)),
                    }
                }
            }
        }
        Ok(done)
    }

    /// The workspace takes what a phone set, in one transaction with its audit entry (actor
    /// `phone:TENANT/EXT`).
    async fn adopt_from_phone(&self, r: &FeatureRow, got: &Features, now: i64) -> Result<()> {
        let mut w = self.store.begin_write().await?;
        let before = self.user_in_tx(&mut w, r.user_id).await?;
        rows::adopt(&mut *w.tx, r.user_id, got, now).await?;
        rows::set_known(&mut *w.tx, r.user_id, got, now).await?;
        let after = self.user_in_tx(&mut w, r.user_id).await?;
        let change = Change {
            action: "user.features_from_phone",
            entity_type: "user",
            entity_id: format!("{}/{}", r.tenant, r.extension),
            tenant_id: Some(r.tenant_id),
        };
        let phone = Actor::phone(&r.tenant, r.extension);
        record(&mut w, &phone, now, change, Some(&before), Some(&after)).await?;
        w.commit().await
    }

    /// After a user's DND or forwards changed here: written to the PBX now, over the watcher's
    /// connection when the PBX is watched, else over one of its own. `Ok(false)` when the PBX
    /// could not be reached (the change stays pending); errors are the workspace's own.
    pub(crate) async fn features_push(&self, user_id: i64) -> Result<bool> {
        let Some(row) = rows::of_user(self.store.pool(), user_id).await? else {
            return Ok(false);
        };
        let pbx_id = row.pbx_id;
        let live = self.live_clients().get(&pbx_id).cloned();
        let pushed = match live {
            Some(c) => tokio::time::timeout(PUSH_TIMEOUT, self.push_one(&c, &row)).await,
            None => {
                let pbx = crate::store::pbxes::by_id(self.store.pool(), pbx_id).await?;
                let Ok(reach) = self.ami_reach(pbx).await else {
                    return Ok(false); // untrusted or no AMI user: the next apply writes it
                };
                tokio::time::timeout(PUSH_TIMEOUT, async {
                    let (c, _tunnel) = reach.connect(false).await.map_err(unreachable)?;
                    let r = self.push_one(&c, &row).await;
                    let _ = c.logoff().await;
                    r
                })
                .await
            }
        };
        match pushed {
            Ok(Ok(())) => Ok(true),
            Ok(Err(Error::Unreachable(e))) => {
                tracing::info!(error = %e, "the PBX could not be reached: DND and forwards stay pending");
                Ok(false)
            }
            Ok(Err(e)) => Err(e),
            Err(_) => Ok(false),
        }
    }

    /// Records what the PBX now holds for a user, through the workspace's write lock like
    /// every write (a bare autocommit beside it would race the app's own transactions).
    async fn note_known(&self, user_id: i64, f: &Features, now: i64) -> Result<()> {
        let mut w = self.store.begin_write().await?;
        rows::set_known(&mut *w.tx, user_id, f, now).await?;
        w.commit().await
    }

    async fn push_one(&self, c: &Client, r: &FeatureRow) -> Result<()> {
        let ext = u32::try_from(r.extension).unwrap_or_default();
        let (read, refused) = astdb::read_user(c, &r.tenant, ext)
            .await
            .map_err(unreachable)?;
        let want = r.wanted();
        let from = refused.is_empty().then_some(read);
        astdb::write_user(c, &r.tenant, ext, from.as_ref(), &want)
            .await
            .map_err(unreachable)?;
        self.note_known(r.user_id, &want, self.now()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(ext: i64, want: &Features, known: Option<&Features>) -> FeatureRow {
        FeatureRow {
            user_id: ext,
            tenant_id: 1,
            pbx_id: 1,
            tenant: "acme".into(),
            extension: ext,
            dnd: i64::from(want.dnd),
            forward_always: want.always.clone(),
            forward_busy: want.busy.clone(),
            forward_no_answer: want.no_answer.clone(),
            known: i64::from(known.is_some()),
            known_dnd: i64::from(known.is_some_and(|k| k.dnd)),
            known_always: known.and_then(|k| k.always.clone()),
            known_busy: known.and_then(|k| k.busy.clone()),
            known_no_answer: known.and_then(|k| k.no_answer.clone()),
        }
    }

    fn dnd() -> Features {
        Features {
            dnd: true,
            ..Features::default()
        }
    }

    fn tree(marked: bool, users: &[(u32, Features)]) -> Tree {
        Tree {
            marked,
            users: users
                .iter()
                .map(|(e, f)| (("acme".to_owned(), *e), f.clone()))
                .collect(),
            refused: Vec::new(),
        }
    }

    #[test]
    fn who_changed_what_decides() {
        let off = Features::default();
        let slugs = ["acme".to_owned()];
        // Changed here (wanted DND, PBX known off and reads off): pushed.
        let r = [row(1000, &dnd(), Some(&off))];
        assert_eq!(
            plan(&tree(true, &[]), &r, &slugs),
            [Act::Push {
                row: 0,
                from: Some(off.clone()),
                to: dnd()
            }]
        );
        // Changed on the phone (known off, reads DND, workspace off): taken.
        let r = [row(1000, &off, Some(&off))];
        assert_eq!(
            plan(&tree(true, &[(1000, dnd())]), &r, &slugs),
            [Act::Adopt { row: 0, got: dnd() }]
        );
        // Both changed: the workspace wins.
        let fwd = Features {
            always: Some("+15551230000".into()),
            ..Features::default()
        };
        let r = [row(1000, &fwd, Some(&off))];
        assert_eq!(
            plan(&tree(true, &[(1000, dnd())]), &r, &slugs),
            [Act::Push {
                row: 0,
                from: Some(dnd()),
                to: fwd
            }]
        );
        // A wiped PBX (no marker) reads as off: the workspace's DND is written back, not lost.
        let r = [row(1000, &dnd(), Some(&dnd()))];
        assert_eq!(
            plan(&tree(false, &[]), &r, &slugs),
            [Act::Push {
                row: 0,
                from: Some(off.clone()),
                to: dnd()
            }]
        );
        // Level, but never recorded: only the known state moves.
        let r = [row(1000, &dnd(), None)];
        assert_eq!(
            plan(&tree(true, &[(1000, dnd())]), &r, &slugs),
            [Act::Known { row: 0 }]
        );
        // A family of a user no longer here goes; another tenant's is never touched.
        let mut t = tree(true, &[(1001, dnd())]);
        t.users.insert(("globex".into(), 2000), dnd());
        assert_eq!(
            plan(&t, &[], &slugs),
            [Act::Remove {
                slug: "acme".into(),
                ext: 1001
            }]
        );
    }

    #[test]
    fn a_refused_value_is_overwritten_not_taken() {
        let off = Features::default();
        let mut t = tree(true, &[(1000, off.clone())]);
        t.refused.push("/pbxdesk/acme/1000/cfu".into());
        let r = [row(1000, &off, Some(&dnd()))];
        let acts = plan(&t, &r, &["acme".to_owned()]);
        assert!(
            matches!(&acts[..], [Act::Push { to, from: None, .. }] if *to == off),
            "{acts:?}"
        );
    }
}
