//! A PBX's configuration from the workspace, offline: the snapshot the renderer reads, the
//! render itself, its difference to the render last applied, and call traces.

use super::{Actor, Workspace};
use crate::domain::{DidDestination, E164};
use crate::error::{Error, Result, ValidationError};
use crate::store::snapshot::{self as snapshot_rows, SnapshotDevice, SnapshotUser};
use crate::store::{db_error, renders};
use pbxdesk_render::diff::{masked_text, MASK};
use pbxdesk_render::snapshot::{self as snap, Destination, Snapshot};
use pbxdesk_render::{Diff, Finding, Rendered, Trace};
use secrecy::ExposeSecret;
use serde::Serialize;
use std::collections::BTreeMap;

/// What `diff` shows: the changes since the last apply, and whether this render may be applied.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PbxDiff {
    pub pbx: String,
    /// Unix ms of the last apply, if any.
    #[cfg_attr(feature = "specta", specta(type = Option<f64>))]
    pub last_applied_at: Option<i64>,
    pub last_applied_by: Option<String>,
    pub diff: Diff,
    pub findings: Vec<Finding>,
}

/// Whether a snapshot opens the secrets it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Secrets {
    /// Every SIP password and voicemail PIN opened: what an apply uploads, what a diff compares.
    Open,
    /// Left sealed, for a render masked before it is shown (`masked`): a SIP password is the
    /// mask itself and a stored PIN is `PIN_STAND_IN`, which the mask replaces as it replaces
    /// any PIN. The render is the same after masking (stored PINs are digits, checked when
    /// set), and opens nothing it would hide: ~190 ms of a 100 × 999 render, and no secret in
    /// memory. Trunk passwords (a few) are still opened: the render checks them.
    Masked,
}

/// A voicemail PIN's shape (digits) for a render that is masked.
const PIN_STAND_IN: &str = "0000";

fn destination(s: &str) -> Result<Destination> {
    let d = DidDestination::parse(s)
        .map_err(|_| Error::Store(format!("destination {s:?} on record is damaged")))?;
    Ok(match d {
        DidDestination::User(e) => Destination::User(e.get()),
        DidDestination::Voicemail(e) => Destination::Voicemail(e.get()),
        DidDestination::External(n) => Destination::External(n.to_string()),
        DidDestination::Hangup => Destination::Hangup,
        DidDestination::RingGroup(e) => Destination::RingGroup(e.get()),
    })
}

/// A snapshot's users with their devices, made from the rows as they are read, each row
/// moved in once; secrets opened on the way, or left sealed for a masked render.
struct People {
    ws: Workspace,
    open: bool,
    devices_of: BTreeMap<i64, Vec<snap::Device>>,
    /// By tenant id.
    users_of: BTreeMap<i64, Vec<snap::User>>,
}

impl snapshot_rows::PeopleSink for People {
    fn device(&mut self, d: SnapshotDevice) -> Result<()> {
        let password = if self.open {
            self.ws
                .unseal("devices", "sip_password", d.id, &d.sip_password)?
                .expose_secret()
                .to_owned()
        } else {
            MASK.to_owned()
        };
        self.devices_of
            .entry(d.user_id)
            .or_default()
            .push(snap::Device {
                username: d.sip_username,
                password,
                transport: d.transport,
                codecs: d.codecs,
                nat: d.nat != 0,
            });
        Ok(())
    }

    fn user(&mut self, u: SnapshotUser) -> Result<()> {
        let voicemail_pin = match &u.voicemail_pin {
            Some(p) if self.open => Some(
                self.ws
                    .unseal("users", "voicemail_pin", u.id, p)?
                    .expose_secret()
                    .to_owned(),
            ),
            Some(_) => Some(PIN_STAND_IN.to_owned()),
            None => None,
        };
        let user = snap::User {
            extension: u32::try_from(u.extension)
                .map_err(|_| Error::Store("extension on record is damaged".into()))?,
            name: u.display_name,
            email: u.email,
            active: u.status == "active",
            ring_seconds: u32::try_from(u.ring_seconds).unwrap_or(25),
            voicemail: u.voicemail_enabled != 0,
            voicemail_pin,
            caller_id: u.outbound_caller_id,
            policy: u.policy,
            devices: self.devices_of.remove(&u.id).unwrap_or_default(),
        };
        self.users_of.entry(u.tenant_id).or_default().push(user);
        Ok(())
    }
}

/// What a render recorded as applied is to the PBX's history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Recorded {
    /// An apply: the render it replaces is what rolling it back returns to.
    NewApply,
    /// The last apply with one change pushed alone (a voicemail PIN): the rollback's target
    /// stays the apply before.
    Amendment,
}

impl Workspace {
    /// Loads one PBX's part of the workspace, secrets decrypted, for the renderer.
    pub async fn pbx_snapshot(&self, actor: &Actor, pbx: &str) -> Result<Snapshot> {
        self.pbx_snapshot_with(actor, pbx, Secrets::Open).await
    }

    /// [`Self::pbx_snapshot`], the devices' SIP passwords and the voicemail PINs opened or,
    /// for a render that is masked before anyone sees it, left sealed (`Secrets::Masked`).
    pub async fn pbx_snapshot_with(
        &self,
        actor: &Actor,
        pbx: &str,
        secrets: Secrets,
    ) -> Result<Snapshot> {
        if !actor.sees_all_tenants() {
            return Err(Error::Forbidden(format!(
                "operator \"{}\" ({}) may not render a whole PBX (it holds other tenants)",
                actor.name(),
                actor.role()
            )));
        }
        let pbx = self.pbx_by_name(pbx).await?;
        // Read before a connection is held (trunk_list takes its own).
        let trunks = self.trunk_list(actor, Some(&pbx.name)).await?;
        let mut people = People {
            ws: self.clone(),
            open: secrets == Secrets::Open,
            devices_of: BTreeMap::new(),
            users_of: BTreeMap::new(),
        };
        let rows = match self.store.sqlite_path() {
            // Straight from the file: the bulk of a render's time was sqlx's row hand-over.
            Some(path) => {
                let (path, pbx_id) = (path.to_owned(), pbx.id);
                let (rows, p) = tokio::task::spawn_blocking(move || {
                    let rows = snapshot_rows::load_sqlite(&path, pbx_id, &mut people);
                    (rows, people)
                })
                .await
                .map_err(|e| Error::Store(format!("reading the workspace failed: {e}")))?;
                people = p;
                rows?
            }
            None => {
                let mut conn = self.store.pool().acquire().await.map_err(db_error)?;
                snapshot_rows::load(&mut conn, pbx.id, &mut people).await?
            }
        };
        let mut by_id: BTreeMap<i64, snap::Tenant> = BTreeMap::new();
        for t in rows.tenants {
            by_id.insert(
                t.id,
                snap::Tenant {
                    slug: t.slug,
                    name: t.name,
                    country: t.country,
                    active: t.status == "active",
                    unknown_did: destination(&t.unknown_did)?,
                    caller_id: t.caller_id,
                    default_policy: t.default_policy,
                    users: people.users_of.remove(&t.id).unwrap_or_default(),
                    dids: Vec::new(),
                    policies: Vec::new(),
                    ring_groups: Vec::new(),
                },
            );
        }
        // Ring groups are few: read through the pool beside the bulk read.
        let mut groups: BTreeMap<i64, snap::RingGroup> = BTreeMap::new();
        let mut group_tenant: BTreeMap<i64, i64> = BTreeMap::new();
        for g in crate::store::ring_groups::of_pbx(self.store.pool(), pbx.id).await? {
            let damaged = || Error::Store("ring group on record is damaged".into());
            group_tenant.insert(g.id, g.tenant_id);
            groups.insert(
                g.id,
                snap::RingGroup {
                    extension: u32::try_from(g.extension).map_err(|_| damaged())?,
                    name: g.name,
                    ring: match g.strategy.as_str() {
                        "in_order" => snap::Ring::InOrder,
                        "round_robin" => snap::Ring::RoundRobin,
                        _ => snap::Ring::All,
                    },
                    members: Vec::new(),
                    member_seconds: u32::try_from(g.member_seconds).map_err(|_| damaged())?,
                    total_seconds: u32::try_from(g.total_seconds).map_err(|_| damaged())?,
                    no_answer: destination(&g.no_answer)?,
                },
            );
        }
        for m in crate::store::ring_groups::members_of_pbx(self.store.pool(), pbx.id).await? {
            if let (Some(g), Ok(e)) = (groups.get_mut(&m.group_id), u32::try_from(m.extension)) {
                g.members.push(e);
            }
        }
        for (id, g) in groups {
            if let Some(t) = group_tenant.get(&id).and_then(|t| by_id.get_mut(t)) {
                t.ring_groups.push(g);
            }
        }
        for d in rows.dids {
            if let Some(t) = by_id.get_mut(&d.tenant_id) {
                t.dids.push(snap::Did {
                    number: d.number,
                    label: d.label,
                    destination: destination(&d.destination)?,
                    trunk: d.trunk,
                });
            }
        }
        // Rows come by policy, then rule position; a policy without rules has one row of NULLs.
        let mut last_policy = None;
        for r in rows.policies {
            let Some(t) = by_id.get_mut(&r.tenant_id) else {
                continue;
            };
            if last_policy != Some(r.policy_id) {
                last_policy = Some(r.policy_id);
                t.policies.push(snap::Policy {
                    name: r.name,
                    rules: Vec::new(),
                });
            }
            let (Some(pattern), Some(policy)) = (r.pattern, t.policies.last_mut()) else {
                continue;
            };
            policy.rules.push(snap::Rule {
                pattern,
                allow: r.allow.unwrap_or(0) != 0,
                strip: u32::try_from(r.strip.unwrap_or(0)).unwrap_or(0),
                prepend: r.prepend.unwrap_or_default(),
                trunks: r
                    .trunks
                    .unwrap_or_default()
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect(),
            });
        }
        let sealed: BTreeMap<i64, Vec<u8>> = rows
            .trunk_secrets
            .into_iter()
            .filter_map(|k| Some((k.id, k.password?)))
            .collect();
        let mut out_trunks = Vec::new();
        for k in trunks {
            let password = sealed
                .get(&k.id)
                .map(|s| self.unseal("trunks", "password", k.id, s))
                .transpose()?;
            out_trunks.push(snap::Trunk {
                name: k.name,
                host: k.host,
                port: k.port,
                transport: k.transport.as_str().to_owned(),
                register: k.register,
                username: k.username,
                password: password.map(|p| p.expose_secret().to_owned()),
                from_domain: k.from_domain,
                from_user: k.from_user,
                codecs: k.codecs.iter().map(|c| c.as_str().to_owned()).collect(),
                enabled: k.enabled,
                tenants: k.tenants,
            });
        }
        let mut tenants: Vec<snap::Tenant> = by_id.into_values().collect();
        // In the renderer's order, so it renders what it is given without a copy.
        for t in &mut tenants {
            t.put_in_render_order();
        }
        Ok(Snapshot {
            pbx: pbx.name,
            tenants,
            trunks: out_trunks,
        })
    }

    /// Renders a PBX from the workspace. Secrets are masked unless `with_secrets` (which needs
    /// the right to reveal them).
    pub async fn pbx_render(
        &self,
        actor: &Actor,
        pbx: &str,
        with_secrets: bool,
    ) -> Result<Rendered> {
        if with_secrets {
            actor.require_reveal()?;
        }
        let secrets = if with_secrets {
            Secrets::Open
        } else {
            Secrets::Masked
        };
        let snapshot = self.pbx_snapshot_with(actor, pbx, secrets).await?;
        let rendered = pbxdesk_render::render_pbx(&snapshot);
        if !with_secrets {
            // Freed beside the masking (100,000 users' worth of small allocations: ~30 ms).
            tokio::task::spawn_blocking(move || drop(snapshot));
            return Ok(masked(rendered));
        }
        // Every SIP password, trunk password and voicemail PIN of the PBX: recorded like
        // `device reveal`, before they are handed out.
        let mut w = self.store.begin_write().await?;
        let change = super::audit::Change {
            action: "pbx.render_with_secrets",
            entity_type: "pbx",
            entity_id: snapshot.pbx.clone(),
            tenant_id: None,
        };
        super::audit::record::<(), ()>(&mut w, actor, self.now(), change, None, None).await?;
        w.commit().await?;
        Ok(rendered)
    }

    /// The render last applied to a PBX, with who applied it and when.
    pub(crate) async fn last_applied(
        &self,
        pbx_id: i64,
    ) -> Result<Option<(Rendered, i64, String)>> {
        let Some(row) = renders::last(self.store.pool(), pbx_id).await? else {
            return Ok(None);
        };
        let json = self.unseal("pbx_renders", "rendered", pbx_id, &row.rendered)?;
        let r: Rendered = serde_json::from_str(json.expose_secret())
            .map_err(|_| Error::Store("the last applied render on record is damaged".into()))?;
        Ok(Some((r, row.applied_at, row.actor)))
    }

    /// The render applied before the last one, and when: what rolling back the last apply
    /// returns to.
    pub(crate) async fn previous_applied(&self, pbx_id: i64) -> Result<Option<(Rendered, i64)>> {
        let row = renders::previous(self.store.pool(), pbx_id).await?;
        let Some(renders::PreviousApplied {
            previous: Some(sealed),
            previous_at: Some(at),
        }) = row
        else {
            return Ok(None);
        };
        let json = self.unseal("pbx_renders", "previous", pbx_id, &sealed)?;
        let r: Rendered = serde_json::from_str(json.expose_secret())
            .map_err(|_| Error::Store("the previous render on record is damaged".into()))?;
        Ok(Some((r, at)))
    }

    /// Records `rendered` as what the PBX now runs (the apply calls this once the PBX verified
    /// it). Sealed: it holds every secret the PBX has.
    pub async fn pbx_mark_applied(
        &self,
        actor: &Actor,
        pbx: &str,
        rendered: &Rendered,
    ) -> Result<()> {
        actor.require_write()?;
        actor.require_msp_write()?;
        let pbx = self.pbx_by_name(pbx).await?;
        self.record_applied(pbx.id, actor.name(), rendered, Recorded::NewApply)
            .await
    }

    /// Records `rendered` as what PBX `pbx_id` runs, for whoever the apply ran for (rights
    /// were checked by what ran it: a tenant_admin's PIN push records too).
    pub(crate) async fn record_applied(
        &self,
        pbx_id: i64,
        actor: &str,
        rendered: &Rendered,
        how: Recorded,
    ) -> Result<()> {
        let json = serde_json::to_string(rendered).map_err(|e| Error::Store(e.to_string()))?;
        let sealed = self.seal_for_row("pbx_renders", "rendered", pbx_id, &json)?;
        let now = self.now();
        let mut w = self.store.begin_write().await?;
        let before = renders::last(&mut *w.tx, pbx_id).await?;
        let (previous, previous_at) = match (before, how) {
            // An amendment (a PIN pushed alone) keeps the previous apply as the rollback's
            // target: rolling back still means the technician's last apply.
            (Some(_), Recorded::Amendment) => match renders::previous(&mut *w.tx, pbx_id).await? {
                Some(renders::PreviousApplied {
                    previous: Some(p),
                    previous_at: Some(at),
                }) => (Some(p), Some(at)),
                _ => (None, None),
            },
            // The render it replaces becomes "previous": what a rollback of this apply goes
            // back to. Sealed again for that column (a blob bound to "rendered" would not open
            // there, which is what stops an old render being replayed as previous).
            (Some(b), _) => {
                let json = self.unseal("pbx_renders", "rendered", pbx_id, &b.rendered)?;
                let again =
                    self.seal_for_row("pbx_renders", "previous", pbx_id, json.expose_secret())?;
                (Some(again), Some(b.applied_at))
            }
            (None, _) => (None, None),
        };
        renders::replace(
            &mut w.tx,
            renders::Applied {
                pbx_id,
                applied_at: now,
                actor,
                rendered: sealed,
                previous,
                previous_at,
            },
        )
        .await?;
        w.commit().await?;
        Ok(())
    }

    /// What would change on the PBX, against the last applied render (everything is new when
    /// nothing was applied yet). Secrets are never part of it.
    pub async fn pbx_diff(&self, actor: &Actor, pbx: &str) -> Result<PbxDiff> {
        let snapshot = self.pbx_snapshot(actor, pbx).await?;
        let rendered = pbxdesk_render::render_pbx(&snapshot);
        let id = self.pbx_by_name(pbx).await?.id;
        let last = self.last_applied(id).await?;
        let diff = pbxdesk_render::diff(last.as_ref().map(|l| &l.0), &rendered);
        Ok(PbxDiff {
            pbx: snapshot.pbx,
            last_applied_at: last.as_ref().map(|l| l.1),
            last_applied_by: last.map(|l| l.2),
            diff,
            findings: rendered.findings,
        })
    }

    /// Where a call to `number` goes. Without `from`, an inbound call to a DID (E.164, or its
    /// digits); with `from` ("SLUG/EXT", or an extension unique on the PBX), a call that user dials.
    pub async fn pbx_trace(
        &self,
        actor: &Actor,
        pbx: &str,
        number: &str,
        from: Option<&str>,
    ) -> Result<Trace> {
        // A trace shows no secret: none is opened.
        let snapshot = self.pbx_snapshot_with(actor, pbx, Secrets::Masked).await?;
        let Some(from) = from.map(str::trim).filter(|f| !f.is_empty()) else {
            let n = number.trim();
            let e164 = if n.starts_with('+') {
                E164::parse(n)
            } else {
                E164::parse(&format!("+{n}"))
            }
            .map_err(|e| e.for_field("number"))?;
            return Ok(pbxdesk_render::trace_inbound(&snapshot, e164.as_str()));
        };
        let dialled = number.trim();
        if dialled.is_empty()
            || dialled.len() > 32
            || !dialled
                .bytes()
                .all(|b| b.is_ascii_digit() || matches!(b, b'*' | b'#' | b'+'))
        {
            return Err(ValidationError::new(
                "number",
                number,
                "what a phone dials: 1 to 32 of digits, '*', '#', '+'",
            )
            .into());
        }
        let (tenant, ext) = match from.split_once('/') {
            Some((t, e)) => (Some(t.to_owned()), e),
            None => (None, from),
        };
        let ext: u32 = ext
            .parse()
            .map_err(|_| ValidationError::new("from", from, "an extension, or SLUG/EXTENSION"))?;
        let tenant = match tenant {
            Some(t) => t,
            None => {
                let owners: Vec<&str> = snapshot
                    .tenants
                    .iter()
                    .filter(|t| t.users.iter().any(|u| u.extension == ext))
                    .map(|t| t.slug.as_str())
                    .collect();
                match owners.as_slice() {
                    [one] => (*one).to_owned(),
                    [] => {
                        return Err(ValidationError::new(
                            "from",
                            from,
                            "no user of this PBX has that extension",
                        )
                        .into())
                    }
                    many => {
                        return Err(ValidationError::new(
                            "from",
                            from,
                            format!(
                                "several tenants have it ({}); write SLUG/EXTENSION",
                                many.join(", ")
                            ),
                        )
                        .into())
                    }
                }
            }
        };
        pbxdesk_render::trace_from(&snapshot, &tenant, ext, dialled).ok_or_else(|| {
            ValidationError::new(
                "from",
                from,
                format!("no user with extension {ext} in tenant \"{tenant}\""),
            )
            .into()
        })
    }
}

/// A render with every secret replaced by the mask.
pub fn masked(mut r: Rendered) -> Rendered {
    use pbxdesk_render::pbx::{PJSIP_DIR, VOICEMAIL_DIR};
    // Only trunk and voicemail files hold secrets; the dialplan (most of the bytes) has none.
    for (path, text) in r.files.iter_mut() {
        if path.starts_with(PJSIP_DIR) || path.starts_with(VOICEMAIL_DIR) {
            *text = masked_text(path, text);
        }
    }
    for e in &mut r.realtime {
        e.password = MASK.into();
    }
    r
}

/// Marks a folder as one `pbx_render_to` wrote, so writing again may replace its files.
const RENDER_MARK: &str = ".pbxdesk-render";

/// What `pbx_render_to` wrote.
#[derive(Debug, Clone, serde::Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RenderWritten {
    pub out: String,
    /// Paths relative to `out`.
    pub files: Vec<String>,
    #[cfg_attr(feature = "specta", specta(type = u32))]
    pub realtime_rows: usize,
    pub findings: Vec<pbxdesk_render::Finding>,
}

impl Workspace {
    /// Renders a PBX into a folder on this machine (offline: nothing is contacted): each file
    /// at its path relative to the Asterisk config folder, written to a temporary name and
    /// renamed, owner-only (with secrets they hold passwords and PINs); the realtime rows as
    /// JSON. Files an earlier render wrote there that this one no longer has are removed; a
    /// folder that holds anything else is refused.
    pub async fn pbx_render_to(
        &self,
        actor: &Actor,
        pbx: &str,
        with_secrets: bool,
        dir: &std::path::Path,
    ) -> Result<RenderWritten> {
        let r = self.pbx_render(actor, pbx, with_secrets).await?;
        let dir = dir.to_owned();
        tokio::task::spawn_blocking(move || write_render(&r, &dir))
            .await
            .map_err(|e| Error::Store(format!("background task failed: {e}")))?
    }
}

fn write_render(r: &Rendered, dir: &std::path::Path) -> Result<RenderWritten> {
    use pbxdesk_render::pbx::{DIALPLAN_DIR, PJSIP_DIR, VOICEMAIL_DIR};
    let io = |what: &str, p: &std::path::Path, e: std::io::Error| {
        Error::Store(format!("cannot {what} {}: {e}", p.display()))
    };
    if dir.exists() {
        let empty = std::fs::read_dir(dir)
            .map_err(|e| io("read", dir, e))?
            .next()
            .is_none();
        if !empty && !dir.join(RENDER_MARK).exists() {
            return Err(Error::Conflict(format!(
                "{} is not empty and was not written by `pbxdesk render`; choose an empty or new folder",
                dir.display()
            )));
        }
    }
    std::fs::create_dir_all(dir).map_err(|e| io("create", dir, e))?;
    std::fs::write(dir.join(RENDER_MARK), "written by pbxdesk render\n")
        .map_err(|e| io("write", dir, e))?;
    for sub in [DIALPLAN_DIR, PJSIP_DIR, VOICEMAIL_DIR] {
        let d = dir.join(sub);
        if let Ok(entries) = std::fs::read_dir(&d) {
            for e in entries.flatten() {
                let rel = format!("{sub}/{}", e.file_name().to_string_lossy());
                if !r.files.contains_key(&rel) {
                    std::fs::remove_file(e.path()).map_err(|err| io("remove", &e.path(), err))?;
                }
            }
        }
    }
    // Each file to a temporary name, owner-only, then renamed over the old one.
    let put = |rel: &str, write: &dyn Fn(&mut dyn std::io::Write) -> std::io::Result<()>| {
        let path = dir.join(rel);
        let parent = path.parent().unwrap_or(dir);
        std::fs::create_dir_all(parent).map_err(|e| io("create", parent, e))?;
        let tmp = path.with_extension("tmp~");
        let file = std::fs::File::create(&tmp).map_err(|e| io("write", &tmp, e))?;
        #[cfg(unix)]
        file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .map_err(|e| io("protect", &tmp, e))?;
        let mut out = std::io::BufWriter::new(file);
        write(&mut out)
            .and_then(|()| std::io::Write::flush(&mut out))
            .map_err(|e| io("write", &tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| io("rename", &path, e))
    };
    // The rows streamed as JSON (100,000 of them at the seed's maximum: no copy in memory), on
    // a thread of their own beside the files.
    let rows = "realtime/ps_endpoints.json";
    let (files, json) = std::thread::scope(|scope| {
        let json = scope.spawn(|| {
            // A JSON array, one row a line: line-diffable, and a fifth smaller than pretty JSON.
            put(rows, &|out| {
                out.write_all(b"[")?;
                for (i, row) in r.realtime.iter().enumerate() {
                    out.write_all(if i == 0 { b"\n" } else { b",\n" })?;
                    serde_json::to_writer(&mut *out, row).map_err(std::io::Error::other)?;
                }
                out.write_all(b"\n]\n")
            })
        });
        let files = r
            .files
            .iter()
            .map(|(rel, text)| {
                put(rel, &|out| out.write_all(text.as_bytes())).map(|()| rel.clone())
            })
            .collect::<Result<Vec<String>>>();
        let json = json
            .join()
            .unwrap_or_else(|_| Err(Error::Store("writing the realtime rows failed".into())));
        (files, json)
    });
    let mut files = files?;
    json?;
    files.push(rows.to_owned());
    Ok(RenderWritten {
        out: dir.display().to_string(),
        files,
        realtime_rows: r.realtime.len(),
        findings: r.findings.clone(),
    })
}
