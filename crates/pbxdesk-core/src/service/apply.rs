//! The guarded apply: render and validate, read the PBX, refuse drift, lock the PBX, back up,
//! upload atomically, reload narrowly, verify what Asterisk loaded, sync the realtime rows in
//! one transaction, and restore everything on any failure. Each step is timed and reported.
//!
//! Order matters for "never a mix": files and the dialplan first (restorable from the backup),
//! the realtime rows last (one transaction that either commits or leaves the old rows), so a
//! failure before the commit needs only the files restored.

use super::check::{blocking, target};
use super::{Actor, Workspace};
use crate::error::{Error, Result};
use crate::model::Pbx;
use pbxdesk_remote::ami;
use pbxdesk_remote::realtime::{Credential, Device, Realtime};
use pbxdesk_remote::ssh::Connection;
use pbxdesk_remote::tunnel::Tunnel;
use pbxdesk_render::pbx::{DIALPLAN_DIR, PJSIP_DIR, VOICEMAIL_DIR};
use pbxdesk_render::{Diff, Finding, Rendered};
use secrecy::SecretString;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Where the PBX-side lock lives, under the config folder.
const LOCK_DIR: &str = ".pbxdesk-apply.lock";
/// A lock older than this was left by a crashed apply and may be broken.
const STALE_LOCK: Duration = Duration::from_secs(15 * 60);
const BACKUP_DIR: &str = "pbxdesk-backups";

#[derive(Debug, Clone, Default, serde::Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct ApplyOptions {
    /// Print the preview and change nothing.
    pub dry_run: bool,
    /// Replace files someone changed on the PBX since the last apply.
    pub overwrite_drift: bool,
    /// Add the missing `#tryinclude` lines to extensions.conf / pjsip.conf / voicemail.conf.
    pub add_includes: bool,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct ApplyStep {
    pub step: String,
    pub ok: bool,
    pub ms: u32,
    pub detail: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "snake_case")]
pub enum ApplyOutcome {
    Applied,
    NothingToDo,
    DryRun,
    /// A step failed; the PBX was restored to what it ran before.
    RolledBack,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct ApplyReport {
    pub pbx: String,
    pub outcome: ApplyOutcome,
    pub summary: String,
    pub steps: Vec<ApplyStep>,
    pub diff: Diff,
    pub findings: Vec<Finding>,
    /// The step that failed, when rolled back.
    pub failed: Option<String>,
}

struct Steps(Vec<ApplyStep>);

impl Steps {
    fn done(&mut self, step: &str, started: Instant, ok: bool, detail: impl Into<String>) {
        self.0.push(ApplyStep {
            step: step.into(),
            ok,
            ms: u32::try_from(started.elapsed().as_millis()).unwrap_or(u32::MAX),
            detail: detail.into(),
        });
    }
}

fn conflict(e: impl std::fmt::Display) -> Error {
    Error::Conflict(e.to_string())
}

/// The product's files as they are on the PBX (path relative to the config folder).
fn read_product_files(c: &Connection, dir: &str) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for sub in [DIALPLAN_DIR, PJSIP_DIR, VOICEMAIL_DIR] {
        for name in c.list_dir(&format!("{dir}/{sub}")).map_err(conflict)? {
            if !name.ends_with(".conf") {
                continue;
            }
            let rel = format!("{sub}/{name}");
            if let Some(bytes) = c.read_file(&format!("{dir}/{rel}")).map_err(conflict)? {
                out.insert(rel, String::from_utf8_lossy(&bytes).into_owned());
            }
        }
    }
    Ok(out)
}

/// Writes `files` (relative path -> content; `None` removes) in one batch.
fn write_files(c: &Connection, dir: &str, files: &BTreeMap<String, Option<String>>) -> Result<()> {
    for sub in [DIALPLAN_DIR, PJSIP_DIR, VOICEMAIL_DIR] {
        if files.iter().any(|(p, t)| t.is_some() && p.starts_with(sub)) {
            c.create_dir_all(&format!("{dir}/{sub}"))
                .map_err(conflict)?;
        }
    }
    let writes: Vec<(String, Vec<u8>)> = files
        .iter()
        .filter_map(|(p, t)| {
            t.as_ref()
                .map(|t| (format!("{dir}/{p}"), t.clone().into_bytes()))
        })
        .collect();
    let refs: Vec<(&str, &[u8])> = writes
        .iter()
        .map(|(p, b)| (p.as_str(), b.as_slice()))
        .collect();
    if !refs.is_empty() {
        c.write_files_atomic(&refs).map_err(conflict)?;
    }
    for (p, t) in files {
        if t.is_none() {
            c.remove_file(&format!("{dir}/{p}")).map_err(conflict)?;
        }
    }
    Ok(())
}

fn devices(r: &Rendered) -> Vec<Device> {
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

/// Checks every context the render expects is loaded with its extensions.
async fn verify_dialplan(
    client: &ami::Client,
    contexts: &BTreeMap<String, usize>,
) -> std::result::Result<usize, String> {
    for (ctx, want) in contexts {
        match client.dialplan_context(ctx).await {
            Ok(Some(got)) if got.extensions as usize == *want => {}
            Ok(Some(got)) => {
                return Err(format!(
                    "context {ctx} has {} extension(s), {want} expected",
                    got.extensions
                ))
            }
            Ok(None) => {
                return Err(format!(
                    "context {ctx} is not loaded (a part of the dialplan was dropped)"
                ))
            }
            Err(e) => return Err(e.to_string()),
        }
    }
    Ok(contexts.len())
}

impl Workspace {
    /// Applies the workspace to a PBX. See the module comment for the steps.
    pub async fn pbx_apply(
        &self,
        actor: &Actor,
        name: &str,
        opts: &ApplyOptions,
    ) -> Result<ApplyReport> {
        actor.require_msp_write()?;
        actor.require_reveal()?;
        let mut steps = Steps(Vec::new());
        let t = Instant::now();
        let pbx = self.pbx_show(actor, name).await?;
        let snapshot = self.pbx_snapshot(actor, name).await?;
        let rendered = pbxdesk_render::render_pbx(&snapshot);
        let last = self.last_applied(pbx.id).await?.map(|l| l.0);
        let diff = pbxdesk_render::diff(last.as_ref(), &rendered);
        let errors: Vec<&Finding> = rendered.findings.iter().filter(|f| f.is_error()).collect();
        steps.done(
            "render and validate",
            t,
            errors.is_empty(),
            format!(
                "{} file(s), {} realtime row(s), {} error(s)",
                rendered.files.len(),
                rendered.realtime.len(),
                errors.len()
            ),
        );
        let report = |outcome, summary: String, steps: Steps, failed: Option<String>| ApplyReport {
            pbx: pbx.name.clone(),
            outcome,
            summary,
            steps: steps.0,
            diff: diff.clone(),
            findings: rendered.findings.clone(),
            failed,
        };
        if !errors.is_empty() {
            let list: Vec<String> = errors
                .iter()
                .map(|f| format!("{}: {}", f.entity, f.message))
                .collect();
            return Err(Error::Conflict(format!(
                "the render has {} error(s); fix them first: {}",
                errors.len(),
                list.join("; ")
            )));
        }
        let summary = format!(
            "{} file(s) changed, {} unchanged; realtime rows: {} to add, {} to change, {} to remove",
            diff.files.len(),
            diff.unchanged_files,
            diff.rows_added.len(),
            diff.rows_changed.len(),
            diff.rows_removed.len()
        );
        if opts.dry_run {
            return Ok(report(ApplyOutcome::DryRun, summary, steps, None));
        }

        // Reach the PBX.
        let t = Instant::now();
        let pinned = pbx.host_key.clone().ok_or_else(|| {
            Error::Conflict(format!(
                "the host key of {name} is not trusted yet: pbxdesk pbx trust {name}"
            ))
        })?;
        let [ssh_secret, ami_secret, db_password] = self.pbx_secrets(pbx.id).await?;
        let tg = target(&pbx, ssh_secret.clone());
        let conn = Arc::new(
            blocking({
                let pinned = pinned.clone();
                move || Connection::open(&tg, Some(&pinned))
            })
            .await?
            .map_err(conflict)?,
        );
        let dir = pbx.config_dir.clone();
        // Nothing to do: the PBX already runs this render. Decided before the lock, so such an
        // apply touches nothing on the PBX.
        let before_lock = blocking({
            let (c, d) = (conn.clone(), dir.clone());
            move || read_product_files(&c, &d)
        })
        .await??;
        let same_rows = last
            .as_ref()
            .is_some_and(|l| l.realtime == rendered.realtime);
        if before_lock == rendered.files && same_rows {
            steps.done(
                "read the PBX",
                t,
                true,
                "it already runs this configuration",
            );
            return Ok(report(
                ApplyOutcome::NothingToDo,
                "the PBX already runs this configuration".into(),
                steps,
                None,
            ));
        }

        // Lock the PBX: one apply at a time, from any laptop.
        let t = Instant::now();
        let lock = format!("{dir}/{LOCK_DIR}");
        let owner = format!("{} {}", actor.name().replace(['\n', '\r'], " "), self.now());
        let took = blocking({
            let (c, lock, owner) = (conn.clone(), lock.clone(), owner.clone());
            let now = self.now();
            move || -> Result<std::result::Result<String, String>> {
                if c.create_dir(&lock).map_err(conflict)? {
                    c.write_new(&format!("{lock}/owner"), owner.as_bytes())
                        .map_err(conflict)?;
                    return Ok(Ok("taken".into()));
                }
                let held = c
                    .read_file(&format!("{lock}/owner"))
                    .map_err(conflict)?
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .unwrap_or_default();
                let since: i64 = held
                    .rsplit(' ')
                    .next()
                    .and_then(|s| s.trim().parse().ok())
                    .unwrap_or(0);
                if now - since > i64::try_from(STALE_LOCK.as_millis()).unwrap_or(i64::MAX) {
                    c.write_new(&format!("{lock}/owner"), owner.as_bytes())
                        .map_err(conflict)?;
                    return Ok(Ok(format!("broke a stale lock left by {}", held.trim())));
                }
                Ok(Err(held))
            }
        })
        .await??;
        let lock_note = match took {
            Ok(n) => n,
            Err(held) => {
                let (who, since) = held.trim().rsplit_once(' ').unwrap_or((held.trim(), "0"));
                let since: i64 = since.parse().unwrap_or(0);
                return Err(Error::Conflict(format!("another apply to {name} is running: {who} since {since} (Unix ms); try again when it is done")));
            }
        };
        steps.done("lock the PBX", t, true, lock_note);

        // Everything from here runs under the lock, which is released whatever happens.
        let under_lock = async {
            // Read again under the lock: another apply may have finished in between.
            let t = Instant::now();
            let on_pbx = blocking({
                let (c, d) = (conn.clone(), dir.clone());
                move || read_product_files(&c, &d)
            })
            .await??;
            steps.done("read the PBX", t, true, format!("{} pbxdesk file(s) on the PBX", on_pbx.len()));
            if on_pbx == rendered.files && same_rows {
                return Ok((ApplyOutcome::NothingToDo, None));
            }
            // Drift: the PBX must hold what was last applied (or nothing of pbxdesk's yet).
            let expected_now = last.as_ref().map(|l| l.files.clone()).unwrap_or_default();
            let drifted: std::collections::BTreeSet<&String> = on_pbx
                .keys()
                .chain(expected_now.keys())
                .filter(|p| on_pbx.get(*p) != expected_now.get(*p))
                .collect();
            if !drifted.is_empty() && !opts.overwrite_drift {
                let list: Vec<&str> = drifted.iter().map(|s| s.as_str()).collect();
                return Err(Error::Conflict(format!(
                    "the PBX was changed by hand since the last apply ({}); look at it, then apply with --overwrite-drift to replace those files",
                    list.join(", ")
                )));
            }
            // Include lines in the core files: added only with consent.
            let t = Instant::now();
            let mut core_edits: BTreeMap<String, Option<String>> = BTreeMap::new();
            let mut core_backup: BTreeMap<String, Option<String>> = BTreeMap::new();
            for inc in &rendered.includes {
                let path = format!("{dir}/{}", inc.file);
                let text = blocking({
                    let (c, p) = (conn.clone(), path.clone());
                    move || c.read_file(&p)
                })
                .await?
                .map_err(conflict)?
                .map(|b| String::from_utf8_lossy(&b).into_owned());
                let Some(text) = text else {
                    if inc.file == "extensions.conf" {
                        return Err(Error::Conflict(format!("{path} does not exist: is {dir} the Asterisk config folder?")));
                    }
                    continue; // no pjsip.conf / voicemail.conf: those modules are not in use
                };
                if !text.lines().any(|l| l.trim() == inc.line) {
                    if !opts.add_includes {
                        return Err(Error::Conflict(format!("{path} lacks the line `{}`; apply with --add-includes to let pbxdesk add it", inc.line)));
                    }
                    core_backup.insert(inc.file.clone(), Some(text.clone()));
                    core_edits.insert(inc.file.clone(), Some(format!("{}\n; added by pbxdesk: its generated files\n{}\n", text.trim_end(), inc.line)));
                }
            }
            let detail = if core_edits.is_empty() { "present".to_owned() } else { format!("added to {}", core_edits.keys().cloned().collect::<Vec<_>>().join(", ")) };
            steps.done("include lines", t, true, detail);
            let result = self
                .apply_locked(&pbx, &conn, &dir, &rendered, last.as_ref(), &on_pbx, core_edits, core_backup, ami_secret, db_password, ssh_secret, &pinned, &mut steps)
                .await;
            match result {
                // Recorded before the lock is released, so the next apply sees it.
                Ok(()) => {
                    self.pbx_mark_applied(actor, name, &rendered).await?;
                    Ok((ApplyOutcome::Applied, None))
                }
                Err(step) => Ok((ApplyOutcome::RolledBack, Some(step))),
            }
        }
        .await;

        let t = Instant::now();
        let unlocked = blocking({
            let (c, lock) = (conn.clone(), lock.clone());
            move || {
                c.remove_file(&format!("{lock}/owner"))
                    .and_then(|()| c.remove_dir(&lock))
            }
        })
        .await?;
        steps.done(
            "unlock",
            t,
            unlocked.is_ok(),
            unlocked.err().map(|e| e.to_string()).unwrap_or_default(),
        );

        let (outcome, failed) = under_lock?;
        if outcome == ApplyOutcome::NothingToDo {
            return Ok(report(
                outcome,
                "another apply brought the PBX to this configuration".into(),
                steps,
                None,
            ));
        }
        let rep = report(outcome, summary, steps, failed);
        self.record_apply(actor, &pbx, &rep).await?;
        Ok(rep)
    }

    #[allow(clippy::too_many_arguments)]
    async fn apply_locked(
        &self,
        pbx: &Pbx,
        conn: &Arc<Connection>,
        dir: &str,
        rendered: &Rendered,
        last: Option<&Rendered>,
        on_pbx: &BTreeMap<String, String>,
        core_edits: BTreeMap<String, Option<String>>,
        core_backup: BTreeMap<String, Option<String>>,
        ami_secret: Option<SecretString>,
        db_password: Option<SecretString>,
        ssh_secret: Option<SecretString>,
        pinned: &str,
        steps: &mut Steps,
    ) -> std::result::Result<(), String> {
        // What changes, and the backup of what it replaces.
        let mut upload: BTreeMap<String, Option<String>> = BTreeMap::new();
        let mut restore: BTreeMap<String, Option<String>> = BTreeMap::new();
        for (p, text) in &rendered.files {
            if on_pbx.get(p) != Some(text) {
                upload.insert(p.clone(), Some(text.clone()));
                restore.insert(p.clone(), on_pbx.get(p).cloned());
            }
        }
        for (p, text) in on_pbx {
            if !rendered.files.contains_key(p) {
                upload.insert(p.clone(), None);
                restore.insert(p.clone(), Some(text.clone()));
            }
        }
        let t = Instant::now();
        let stamp = self.now();
        let backup = blocking({
            let (c, d) = (conn.clone(), dir.to_owned());
            let files: Vec<(String, String)> = restore
                .iter()
                .chain(core_backup.iter())
                .filter_map(|(p, t)| t.clone().map(|t| (p.clone(), t)))
                .collect();
            move || -> std::result::Result<usize, String> {
                // A new folder of pbxdesk's own: plain SFTP writes, no shell, no renames.
                let base = format!("{d}/{BACKUP_DIR}/{stamp}");
                let mut made = std::collections::BTreeSet::new();
                for (p, text) in &files {
                    let full = format!("{base}/{p}");
                    let parent = full
                        .rsplit_once('/')
                        .map_or(base.clone(), |(a, _)| a.to_owned());
                    if made.insert(parent.clone()) {
                        c.create_dir_all(&parent).map_err(|e| e.to_string())?;
                    }
                    c.write_new(&full, text.as_bytes())
                        .map_err(|e| e.to_string())?;
                }
                Ok(files.len())
            }
        })
        .await
        .map_err(|e| e.to_string())?;
        match backup {
            Ok(n) => steps.done(
                "back up",
                t,
                true,
                format!("{n} file(s) in {dir}/{BACKUP_DIR}/{stamp}"),
            ),
            Err(e) => {
                steps.done("back up", t, false, e.clone());
                return Err("back up".into());
            }
        }

        // From here on, any failure restores.
        let t = Instant::now();
        let mut all_upload = upload.clone();
        all_upload.extend(core_edits.clone());
        let up = blocking({
            let (c, d, files) = (conn.clone(), dir.to_owned(), all_upload.clone());
            move || write_files(&c, &d, &files)
        })
        .await
        .map_err(|e| e.to_string())?;
        let mut failed: Option<String> = None;
        match up {
            Ok(()) => steps.done(
                "upload",
                t,
                true,
                format!("{} file(s) written or removed atomically", all_upload.len()),
            ),
            Err(e) => {
                steps.done("upload", t, false, e.to_string());
                failed = Some("upload".to_owned());
            }
        }

        // AMI: reload narrowly, then verify from what Asterisk reports.
        let ami_client = if failed.is_none() {
            let t = Instant::now();
            match self
                .apply_ami(pbx, ami_secret.clone(), ssh_secret.clone(), pinned)
                .await
            {
                Ok(c) => {
                    steps.done("connect AMI", t, true, "");
                    Some(c)
                }
                Err(e) => {
                    steps.done("connect AMI", t, false, e);
                    failed = Some("connect AMI".to_owned());
                    None
                }
            }
        } else {
            None
        };
        if let (None, Some((_, client))) = (&failed, &ami_client) {
            let t = Instant::now();
            let mut modules = Vec::new();
            if all_upload
                .keys()
                .any(|p| p.starts_with(DIALPLAN_DIR) || p == "extensions.conf")
            {
                modules.push("pbx_config");
            }
            if all_upload
                .keys()
                .any(|p| p.starts_with(PJSIP_DIR) || p == "pjsip.conf")
            {
                modules.push("res_pjsip");
            }
            if all_upload
                .keys()
                .any(|p| p.starts_with(VOICEMAIL_DIR) || p == "voicemail.conf")
            {
                modules.push("app_voicemail");
            }
            let mut err = None;
            for m in &modules {
                if let Err(e) = reload_with_retry(client, m).await {
                    err = Some(format!("{m}: {e}"));
                    break;
                }
            }
            match err {
                None => steps.done("reload", t, true, modules.join(", ")),
                Some(e) => {
                    steps.done("reload", t, false, e);
                    failed = Some("reload".to_owned());
                }
            }
        }
        if let (None, Some((_, client))) = (&failed, &ami_client) {
            let t = Instant::now();
            match verify_dialplan(client, &rendered.contexts).await {
                Ok(n) => steps.done(
                    "verify dialplan",
                    t,
                    true,
                    format!("{n} context(s) loaded as rendered"),
                ),
                Err(e) => {
                    steps.done("verify dialplan", t, false, e);
                    failed = Some("verify dialplan".to_owned());
                }
            }
        }

        // Realtime rows: one transaction, last.
        if failed.is_none() {
            let t = Instant::now();
            match self
                .apply_realtime(
                    pbx,
                    db_password.clone(),
                    ssh_secret.clone(),
                    pinned,
                    rendered,
                )
                .await
            {
                Ok(detail) => steps.done("sync realtime rows", t, true, detail),
                Err(e) => {
                    steps.done("sync realtime rows", t, false, e);
                    failed = Some("sync realtime rows".to_owned());
                }
            }
        }

        let Some(step) = failed else {
            if let Some((_t, c)) = ami_client {
                let _ = c.logoff().await;
            }
            return Ok(());
        };

        // Roll back: the files as they were, reloaded, and verified against the last apply.
        let t = Instant::now();
        let mut back = restore.clone();
        back.extend(core_backup);
        let restored = blocking({
            let (c, d) = (conn.clone(), dir.to_owned());
            move || write_files(&c, &d, &back)
        })
        .await
        .map_err(|e| e.to_string())?;
        steps.done(
            "restore files",
            t,
            restored.is_ok(),
            restored.err().map(|e| e.to_string()).unwrap_or_default(),
        );
        let t = Instant::now();
        let client = match ami_client {
            Some(c) => Some(c),
            None => self
                .apply_ami(pbx, ami_secret, ssh_secret, pinned)
                .await
                .ok(),
        };
        match client {
            Some((_t, c)) => {
                let reloaded = reload_with_retry(&c, "pbx_config").await;
                let verified = match (last, &reloaded) {
                    (Some(l), Ok(())) => verify_dialplan(&c, &l.contexts)
                        .await
                        .map(|n| format!("{n} context(s) of the last apply loaded")),
                    (None, Ok(())) => Ok("reloaded".into()),
                    (_, Err(e)) => Err(e.to_string()),
                };
                let _ = c.logoff().await;
                steps.done(
                    "reload and verify the old state",
                    t,
                    verified.is_ok(),
                    verified.unwrap_or_else(|e| e),
                );
            }
            None => steps.done(
                "reload and verify the old state",
                t,
                false,
                "AMI unreachable: reload pbx_config on the PBX by hand",
            ),
        }
        Err(step)
    }

    async fn apply_ami(
        &self,
        pbx: &Pbx,
        secret: Option<SecretString>,
        ssh_secret: Option<SecretString>,
        pinned: &str,
    ) -> std::result::Result<(Option<Tunnel>, ami::Client), String> {
        let (Some(user), Some(secret)) = (pbx.ami_user.clone(), secret) else {
            return Err("no AMI user or secret in the profile".into());
        };
        let (tunnel, addr) = match pbx.ami_via {
            crate::domain::Via::Direct => (None, format!("{}:{}", pbx.host, pbx.ami_port)),
            crate::domain::Via::Tunnel => {
                let t = Tunnel::open(
                    &target(pbx, ssh_secret),
                    Some(pinned),
                    "127.0.0.1",
                    pbx.ami_port,
                )
                .map_err(|e| e.to_string())?;
                let a = t.local_addr();
                (Some(t), a)
            }
        };
        let opts = ami::Options {
            connect_timeout: Duration::from_millis(u64::from(pbx.connect_timeout_ms)),
            action_timeout: Duration::from_millis(u64::from(pbx.command_timeout_ms)),
        };
        let c = ami::Client::connect(&addr, &user, &secret, false, opts)
            .await
            .map_err(|e| e.to_string())?;
        Ok((tunnel, c))
    }

    async fn apply_realtime(
        &self,
        pbx: &Pbx,
        password: Option<SecretString>,
        ssh_secret: Option<SecretString>,
        pinned: &str,
        rendered: &Rendered,
    ) -> std::result::Result<String, String> {
        let user = pbx
            .db_user
            .clone()
            .ok_or("no database user in the profile")?;
        let (_tunnel, addr) = match pbx.db_via {
            crate::domain::Via::Direct => (None, format!("{}:{}", pbx.host, pbx.db_port)),
            crate::domain::Via::Tunnel => {
                let t = Tunnel::open(
                    &target(pbx, ssh_secret),
                    Some(pinned),
                    "127.0.0.1",
                    pbx.db_port,
                )
                .map_err(|e| e.to_string())?;
                let a = t.local_addr();
                (Some(t), a)
            }
        };
        let url = format!("mysql://{user}@{addr}/{}", pbx.db_name);
        let rt = Realtime::connect(&url, password.as_ref(), &format!("pbxdesk:{}", pbx.name))
            .await
            .map_err(|e| e.to_string())?;
        let wanted = devices(rendered);
        let result = rt.sync(&wanted, self.now()).await;
        let after = match &result {
            Ok(_) => rt.plan(&wanted).await.map(|p| p.is_empty()),
            Err(_) => Ok(false),
        };
        rt.close().await;
        let plan = result.map_err(|e| e.to_string())?;
        match after {
            Ok(true) => Ok(format!(
                "{} added, {} changed, {} removed, {} unchanged; the database now holds the render",
                plan.add.len(),
                plan.change.len(),
                plan.remove.len(),
                plan.unchanged
            )),
            Ok(false) => Err("after the sync the rows still differ from the render".into()),
            Err(e) => Err(e.to_string()),
        }
    }

    async fn record_apply(&self, actor: &Actor, pbx: &Pbx, rep: &ApplyReport) -> Result<()> {
        let mut w = self.store.begin_write().await?;
        let c = super::audit::Change {
            action: "pbx.apply",
            entity_type: "pbx",
            entity_id: pbx.name.clone(),
            tenant_id: None,
        };
        super::audit::record::<ApplyReport, ApplyReport>(
            &mut w,
            actor,
            self.now(),
            c,
            None,
            Some(rep),
        )
        .await?;
        w.commit().await
    }
}

/// A reload "already in progress" is retried with backoff, never taken for success.
async fn reload_with_retry(
    c: &ami::Client,
    module: &str,
) -> std::result::Result<(), ami::AmiError> {
    let mut wait = Duration::from_millis(200);
    for _ in 0..5 {
        match c.reload(module).await {
            Err(ami::AmiError::ActionFailed { message, .. })
                if message.to_ascii_lowercase().contains("in progress") =>
            {
                tokio::time::sleep(wait).await;
                wait *= 2;
            }
            other => return other,
        }
    }
    c.reload(module).await
}
