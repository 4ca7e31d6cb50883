//! The guarded apply: render and validate, read the PBX, refuse drift, lock the PBX, back up,
//! upload atomically, reload narrowly, verify what Asterisk loaded, sync the realtime rows in
//! one transaction, and restore everything on any failure. Each step is timed and reported.
//!
//! Order matters for "never a mix": files and the dialplan first (restorable from the backup),
//! the realtime rows last (one transaction that either commits or leaves the old rows), so a
//! failure before the commit needs only the files restored.

use super::check::{blocking, read_text, target};
use super::{Actor, Workspace};
use crate::error::{Error, Result};
use crate::model::Pbx;
use pbxdesk_remote::ami;
use pbxdesk_remote::realtime::{Credential, Device, Realtime};
use pbxdesk_remote::ssh::Connection;
use pbxdesk_remote::tunnel::Tunnel;
use pbxdesk_render::pbx::{
    rendered_mailboxes, rendered_transports, rendered_trunks, DIALPLAN_DIR, PJSIP_DIR,
    VOICEMAIL_DIR,
};
use pbxdesk_render::sorcery;
use pbxdesk_render::{Diff, Finding, Rendered, Touched};
use secrecy::SecretString;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Where the PBX-side lock lives, under the config folder.
const LOCK_DIR: &str = ".pbxdesk-apply.lock";
/// A lock older than this was left by a crashed apply and may be broken.
const STALE_LOCK: Duration = Duration::from_secs(15 * 60);
const BACKUP_DIR: &str = "pbxdesk-backups";
/// The first key of pbxdesk's PostgreSQL advisory locks ("pbxd").
const TEAM_LOCK_CLASS: i32 = 0x7062_7864;
/// Backups kept on the PBX; older ones are removed after a confirmed apply.
const KEEP_BACKUPS: usize = 10;

#[derive(Debug, Clone, Default, serde::Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
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

/// The rollback the PBX runs by itself (see the script's own comments).
const ROLLBACK_SCRIPT: &str = include_str!("rollback.sh");

/// One apply's fixed inputs, shared by its steps.
struct Job<'a> {
    pbx: &'a Pbx,
    conn: Arc<Connection>,
    dir: String,
    rendered: &'a Rendered,
    last: Option<&'a Rendered>,
    ami_secret: Option<SecretString>,
    db_password: Option<SecretString>,
    ssh_secret: Option<SecretString>,
    pinned: String,
    /// The backup folder's name (Unix ms).
    stamp: i64,
    lock_owner: String,
    window: u32,
    /// The mysql client's option file for the PBX's own rollback.
    db_cnf: String,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
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
    /// A step failed after the PBX was changed; it was restored to what it ran before.
    RolledBack,
    /// A step failed before anything on the PBX changed.
    Stopped,
}

/// Where an apply failed, and whether the PBX had been changed by then.
struct Failed {
    step: String,
    touched: bool,
    /// The PBX's own rollback took over (its timer won the race for `armed`): it restores the
    /// PBX and releases the lock itself, so the laptop must leave the lock alone.
    pbx_rolls_back: bool,
}

impl Failed {
    /// The PBX's own rollback has the apply now: it restores and releases the lock itself.
    fn left_to_pbx(step: &str) -> Failed {
        Failed {
            step: step.into(),
            touched: true,
            pbx_rolls_back: true,
        }
    }

    fn before(step: &str) -> Failed {
        Failed {
            step: step.into(),
            touched: false,
            pbx_rolls_back: false,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct ApplyReport {
    pub pbx: String,
    pub outcome: ApplyOutcome,
    pub summary: String,
    pub steps: Vec<ApplyStep>,
    pub diff: Diff,
    /// The tenants, users, devices and DIDs the change touches.
    pub touched: Touched,
    pub findings: Vec<Finding>,
    /// The step that failed, when rolled back.
    pub failed: Option<String>,
}

/// Called with each step as it ends (the app's live progress, the CLI's lines).
pub type Progress = Arc<dyn Fn(&ApplyStep) + Send + Sync>;

/// What an apply takes to the PBX.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "snake_case")]
pub enum ApplySource {
    /// The workspace as it is now.
    Workspace,
    /// The render applied before the last one: rolls the last apply back, through the same
    /// guarded steps.
    PreviousApply,
}

struct Steps(Vec<ApplyStep>, Option<Progress>);

impl Steps {
    fn done(&mut self, step: &str, started: Instant, ok: bool, detail: impl Into<String>) {
        let s = ApplyStep {
            step: step.into(),
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

/// Who may read the generated files on the PBX: their owner (the SSH user) and Asterisk's
/// group, nobody else (they hold trunk passwords and voicemail PINs). `gid` None: Asterisk
/// runs as root (CoreRunGroup empty, capture s11), which reads them anyway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FileAccess {
    pub gid: Option<u32>,
}

pub(crate) const GENERATED_DIR_MODE: u32 = 0o750;
pub(crate) const GENERATED_FILE_MODE: u32 = 0o640;

/// How long a change the laptop holds the armed rollback for may last before the PBX's script
/// takes over (the laptop is then presumed gone mid-change): rollback.sh's HOLD. As long as the
/// confirm window, within 5 to 60 s: a swap of files, a sync or a reload takes seconds, and a
/// laptop that died in the middle of one delays the PBX's own rollback by at most this.
fn hold_seconds(window: u32) -> u32 {
    window.clamp(5, 60)
}

/// Takes the armed rollback for one change (`armed` -> `changing`); false when the PBX's own
/// rollback has it already (the confirm window ran out): then nothing more may change.
fn hold(c: &Connection, base: &str) -> std::result::Result<bool, pbxdesk_remote::ssh::SshError> {
    c.rename(&format!("{base}/armed"), &format!("{base}/changing"))
}

/// Hands the armed rollback back after the change (`changing` -> `armed`).
fn release(c: &Connection, base: &str) -> std::result::Result<bool, pbxdesk_remote::ssh::SshError> {
    c.rename(&format!("{base}/changing"), &format!("{base}/armed"))
}

/// `hold` off the async runtime: `Ok(false)` when the PBX's rollback has it, `Err` when it
/// could not be told (the connection).
async fn hold_for_change(conn: &Arc<Connection>, base: &str) -> std::result::Result<bool, String> {
    let (c, b) = (conn.clone(), base.to_owned());
    match blocking(move || hold(&c, &b)).await {
        Ok(Ok(held)) => Ok(held),
        Ok(Err(e)) => Err(e.to_string()),
        Err(e) => Err(e.to_string()),
    }
}

/// `release` off the async runtime; false when the hold could not be handed back.
async fn release_after_change(conn: &Arc<Connection>, base: &str) -> bool {
    let (c, b) = (conn.clone(), base.to_owned());
    matches!(blocking(move || release(&c, &b)).await, Ok(Ok(true)))
}

/// Writes `files` (relative path -> content; `None` removes) in one batch, then gives the
/// generated folders and files their modes and Asterisk's group (before any reload reads them).
/// With `armed` (the apply's backup folder), the files are swapped only while the armed
/// rollback is held (see `write_files_atomic_guarded`); `Ok(false)`: the PBX's rollback has
/// started, nothing was swapped.
fn write_files(
    c: &Connection,
    dir: &str,
    files: &BTreeMap<String, Option<String>>,
    access: Option<FileAccess>,
    armed: Option<&str>,
) -> Result<bool> {
    for sub in [DIALPLAN_DIR, PJSIP_DIR, VOICEMAIL_DIR] {
        if files.iter().any(|(p, t)| t.is_some() && p.starts_with(sub)) {
            c.create_dir_all_mode(&format!("{dir}/{sub}"), GENERATED_DIR_MODE as i32)
                .map_err(conflict)?;
            if let Some(a) = access {
                c.set_mode(&format!("{dir}/{sub}"), GENERATED_DIR_MODE, a.gid)
                    .map_err(conflict)?;
            }
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
    let removes: Vec<String> = files
        .iter()
        .filter(|(_, t)| t.is_none())
        .map(|(p, _)| format!("{dir}/{p}"))
        .collect();
    let remove_refs: Vec<&str> = removes.iter().map(String::as_str).collect();
    let guard = armed.map(|b| (format!("{b}/armed"), format!("{b}/changing")));
    match c.write_files_atomic_guarded(
        &refs,
        &remove_refs,
        guard.as_ref().map(|(a, h)| (a.as_str(), h.as_str())),
    ) {
        Ok(()) => {}
        Err(pbxdesk_remote::ssh::SshError::NotArmed) => return Ok(false),
        Err(e) => return Err(conflict(e)),
    }
    if let Some(a) = access {
        for (p, _) in &writes {
            c.set_mode(p, GENERATED_FILE_MODE, a.gid)
                .map_err(conflict)?;
        }
    }
    Ok(true)
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

/// Takes the PBX's lock (a folder: creating one is atomic). `Ok(Err(note))` when another apply
/// holds it. A lock older than `STALE_LOCK` is broken by moving it aside, which is atomic too:
/// of two laptops breaking the same stale lock, one wins and the other finds it held.
fn take_lock(
    c: &Connection,
    lock: &str,
    owner: &str,
    now: i64,
) -> Result<std::result::Result<String, String>> {
    let mut broke = None;
    let mut last = String::new();
    for _ in 0..2 {
        if c.create_dir(lock).map_err(conflict)? {
            c.write_new(&format!("{lock}/owner"), owner.as_bytes())
                .map_err(conflict)?;
            return Ok(Ok(broke.unwrap_or_else(|| "taken".into())));
        }
        // The holder writes its note right after creating the folder: a folder without one is
        // being taken at this moment, unless it stays so (an apply that died in between). A
        // note is complete once it ends in its time: the file exists, empty, between its
        // creation and its write, and read then it looked like a lock from 1970 and was broken
        // as stale (two applies at once, found by the concurrent-apply test under load).
        let mut held = None;
        for _ in 0..50 {
            held = c
                .read_file(&format!("{lock}/owner"))
                .map_err(conflict)?
                .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
                .filter(|note| {
                    note.rsplit(' ')
                        .next()
                        .is_some_and(|t| t.parse::<i64>().is_ok())
                });
            if held.is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let noted = held.is_some();
        let held = held.unwrap_or_else(|| "(an apply that left no owner note) 0".into());
        // Staleness by the PBX's own clock (the note's, or the folder's, modification time
        // against a file written now), never by comparing this laptop's clock with the
        // holder's: two laptops 15 minutes apart would break each other's live lock.
        let written = if noted {
            c.mtime(&format!("{lock}/owner")).map_err(conflict)?
        } else {
            c.mtime(lock).map_err(conflict)?
        };
        let probe = format!("{lock}.clock-{:08x}", rand::random::<u32>());
        c.write_new(&probe, b"").map_err(conflict)?;
        let pbx_now = c.mtime(&probe).map_err(conflict)?;
        let _ = c.remove_file(&probe);
        let age = match (pbx_now, written) {
            (Some(n), Some(w)) => n.saturating_sub(w),
            // Gone meanwhile (released): try again.
            (_, None) => 0,
            (None, Some(_)) => 0,
        };
        if age <= STALE_LOCK.as_secs() {
            return Ok(Err(held));
        }
        let aside = format!("{lock}.stale-{now}-{:08x}", rand::random::<u32>());
        if c.rename(lock, &aside).map_err(conflict)? {
            let _ = c.remove_file(&format!("{aside}/owner"));
            let _ = c.remove_dir(&aside);
        }
        broke = Some(format!("broke a stale lock left by {held}"));
        last = held;
    }
    // Broken, and taken again by someone else in between.
    Ok(Err(last))
}

/// Only paths of this alphabet go into the rollback manifest, which a shell reads.
fn manifest_path(p: &str) -> std::result::Result<&str, String> {
    let ok = !p.is_empty()
        && !p.starts_with('/')
        && !p.split('/').any(|c| c.is_empty() || c == "..")
        && p.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'/'));
    if ok {
        Ok(p)
    } else {
        Err(format!("{p:?} cannot go into the rollback manifest"))
    }
}

/// The mysql client's option file for the PBX's own rollback (0600, removed once the apply
/// is confirmed or rolled back). The realtime database as the PBX reaches it.
fn db_cnf(pbx: &Pbx, password: Option<&SecretString>) -> Result<String> {
    use secrecy::ExposeSecret;
    let host = match pbx.db_via {
        crate::domain::Via::Direct => pbx.host.clone(),
        crate::domain::Via::Tunnel => "127.0.0.1".to_owned(),
    };
    let quoted = |v: &str| -> Result<String> {
        if v.contains(['\n', '\r', '\0']) {
            return Err(Error::Conflict(
                "a database setting holds a line break; the PBX's rollback cannot use it".into(),
            ));
        }
        Ok(format!(
            "\"{}\"",
            v.replace('\\', "\\\\").replace('"', "\\\"")
        ))
    };
    let mut cnf = format!(
        "[mysql]\nhost={}\nport={}\nuser={}\ndatabase={}\n",
        quoted(&host)?,
        pbx.db_port,
        quoted(pbx.db_user.as_deref().unwrap_or_default())?,
        quoted(&pbx.db_name)?
    );
    if let Some(p) = password {
        cnf.push_str(&format!("password={}\n", quoted(p.expose_secret())?));
    }
    Ok(cnf)
}

/// Writes the backup and the rollback into `base` (a new folder of pbxdesk's own: plain SFTP
/// writes, owner-only), then starts the PBX's timer. "armed" is written last: until it exists
/// the script does nothing. Returns how many files were backed up.
#[allow(clippy::too_many_arguments)]
fn arm(
    c: &Connection,
    root: &str,
    stamp: i64,
    restore: &BTreeMap<String, Option<String>>,
    undo: &str,
    cnf: &str,
    modules: &[String],
    lock_owner: &str,
    window: u32,
) -> std::result::Result<(usize, String), String> {
    let e = |e: pbxdesk_remote::ssh::SshError| e.to_string();
    // A folder of this apply's own (creating a folder is atomic: two applies never share one).
    c.create_dir_all(root).map_err(e)?;
    let mut base = format!("{root}/{stamp}");
    let mut n = 0;
    while !c.create_dir(&base).map_err(e)? {
        n += 1;
        if n > 100 {
            return Err(format!("cannot make a backup folder in {root}"));
        }
        base = format!("{root}/{stamp}-{n}");
    }
    let base = base.as_str();
    let mut manifest = String::new();
    let mut made = BTreeSet::new();
    let mut saved = 0;
    for (p, old) in restore {
        let p = manifest_path(p)?;
        match old {
            Some(text) => {
                let full = format!("{base}/files/{p}");
                let parent = full
                    .rsplit_once('/')
                    .map_or(base.to_owned(), |(a, _)| a.to_owned());
                if made.insert(parent.clone()) {
                    c.create_dir_all(&parent).map_err(e)?;
                }
                c.write_new(&full, text.as_bytes()).map_err(e)?;
                manifest.push_str(&format!("restore {p}\n"));
                saved += 1;
            }
            None => manifest.push_str(&format!("remove {p}\n")),
        }
    }
    for m in modules {
        manifest.push_str(&format!("reload {m}\n"));
    }
    c.write_new(&format!("{base}/manifest"), manifest.as_bytes())
        .map_err(e)?;
    if !undo.is_empty() {
        c.write_new(&format!("{base}/undo.sql"), undo.as_bytes())
            .map_err(e)?;
        c.write_new(&format!("{base}/db.cnf"), cnf.as_bytes())
            .map_err(e)?;
    }
    c.write_new(&format!("{base}/lock-owner"), lock_owner.as_bytes())
        .map_err(e)?;
    c.write_new(&format!("{base}/rollback.sh"), ROLLBACK_SCRIPT.as_bytes())
        .map_err(e)?;
    c.write_new(&format!("{base}/armed"), lock_owner.as_bytes())
        .map_err(e)?;
    let mut needed = vec!["sh", "setsid", "nohup", "sleep", "asterisk"];
    if !undo.is_empty() {
        needed.push("mysql");
    }
    let missing = c
        .spawn_detached(
            &format!("{base}/rollback.sh"),
            &[window, hold_seconds(window)],
            &needed,
        )
        .map_err(e)?;
    if !missing.is_empty() {
        let _ = c.remove_file(&format!("{base}/armed"));
        let _ = c.remove_file(&format!("{base}/db.cnf"));
        return Err(format!(
            "the PBX lacks {} (needed to roll back by itself); install it on the PBX",
            missing.join(", ")
        ));
    }
    Ok((saved, base.to_owned()))
}

/// Disarms the PBX's rollback; `false` when its timer already took over. The secrets the
/// rollback needed are removed from the PBX at once.
fn confirm(c: &Connection, base: &str) -> std::result::Result<bool, pbxdesk_remote::ssh::SshError> {
    if !c.rename(&format!("{base}/armed"), &format!("{base}/confirmed"))? {
        return Ok(false);
    }
    c.remove_file(&format!("{base}/db.cnf"))?;
    c.remove_file(&format!("{base}/undo.sql"))?;
    Ok(true)
}

/// Puts `files` back (`None` removes), writing only those that differ from what the PBX holds
/// now: after a failed upload (a full disk, a cut connection) most of them never changed, and
/// writing them again could fail the same way.
fn restore_files(
    c: &Connection,
    dir: &str,
    files: &BTreeMap<String, Option<String>>,
) -> Result<usize> {
    let mut todo = BTreeMap::new();
    for (p, want) in files {
        let now = c
            .read_file(&format!("{dir}/{p}"))
            .map_err(conflict)?
            .map(|b| String::from_utf8_lossy(&b).into_owned());
        if now != *want {
            todo.insert(p.clone(), want.clone());
        }
    }
    write_files(c, dir, &todo, None, None)?;
    Ok(todo.len())
}

/// Syncs the rows and reads them back. On failure: the reason, and whether the transaction
/// had committed (then the rows must be undone).
async fn sync_rows(
    rt: &Realtime,
    wanted: &[Device],
    now: i64,
) -> std::result::Result<String, (String, bool)> {
    // A sync that failed before its COMMIT changed nothing (the transaction is rolled back);
    // one whose COMMIT got no answer may have committed: it counts as synced, so the rollback
    // runs the undo, which is idempotent (it deletes the owned rows and puts the old ones back).
    let plan = rt.sync(wanted, now).await.map_err(|e| {
        let maybe = matches!(e, pbxdesk_remote::realtime::RealtimeError::CommitUnknown(_));
        (e.to_string(), maybe)
    })?;
    match rt.plan(wanted).await {
        Ok(p) if p.is_empty() => Ok(format!(
            "{} added, {} changed, {} removed, {} unchanged; the database now holds the render",
            plan.add.len(),
            plan.change.len(),
            plan.remove.len(),
            plan.unchanged
        )),
        Ok(_) => Err((
            "after the sync the rows still differ from the render".into(),
            true,
        )),
        Err(e) => Err((e.to_string(), true)),
    }
}

/// Checks PJSIP knows every endpoint the render expects (PJSIPShowEndpoints).
async fn verify_endpoints(
    client: &ami::Client,
    ids: &[&str],
) -> std::result::Result<usize, String> {
    if ids.is_empty() {
        return Ok(0);
    }
    let listed = client.pjsip_endpoints().await.map_err(|e| e.to_string())?;
    let known: BTreeSet<&str> = listed.iter().filter_map(|m| m.get("ObjectName")).collect();
    let missing: Vec<&&str> = ids.iter().filter(|id| !known.contains(**id)).collect();
    match missing.len() {
        0 => Ok(ids.len()),
        n => Err(format!(
            "{n} endpoint(s) unknown to PJSIP, e.g. {}",
            missing
                .iter()
                .take(5)
                .map(|s| **s)
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// Checks PJSIP loaded every trunk the render holds: its endpoint (PJSIPShowEndpoints), its
/// identify (PJSIPShowEndpoint lists an IdentifyDetail for it, s17_trunks_04) and its outbound
/// registration (PJSIPShowRegistrationsOutbound, s17_trunks_02). Whether the provider accepts
/// the registration is live state, not configuration: only that Asterisk loaded it counts.
async fn verify_trunks(
    client: &ami::Client,
    trunks: &[pbxdesk_render::pbx::RenderedTrunk],
) -> std::result::Result<String, String> {
    let listed = client.pjsip_endpoints().await.map_err(|e| e.to_string())?;
    let known: BTreeSet<&str> = listed.iter().filter_map(|m| m.get("ObjectName")).collect();
    let registrations = if trunks.iter().any(|k| k.registration) {
        client
            .pjsip_registrations_outbound()
            .await
            .map_err(|e| e.to_string())?
    } else {
        Vec::new()
    };
    let registered: BTreeSet<&str> = registrations
        .iter()
        .filter_map(|m| m.get("ObjectName"))
        .collect();
    let mut missing = Vec::new();
    let (mut identifies, mut regs) = (0, 0);
    for k in trunks {
        if !known.contains(k.endpoint.as_str()) {
            missing.push(format!("endpoint {}", k.endpoint));
            continue;
        }
        if k.identify {
            let detail = client
                .pjsip_endpoint(&k.endpoint)
                .await
                .map_err(|e| e.to_string())?
                .unwrap_or_default();
            let found = detail.iter().any(|m| {
                m.get("Event") == Some("IdentifyDetail")
                    && m.get("EndpointName").or(m.get("Endpoint")) == Some(k.endpoint.as_str())
            });
            if found {
                identifies += 1;
            } else {
                missing.push(format!("identify of {}", k.endpoint));
            }
        }
        if k.registration {
            if registered.contains(k.endpoint.as_str()) {
                regs += 1;
            } else {
                missing.push(format!("registration {}", k.endpoint));
            }
        }
    }
    if missing.is_empty() {
        Ok(format!(
            "{} trunk endpoint(s), {identifies} identify, {regs} registration(s) loaded",
            trunks.len()
        ))
    } else {
        Err(format!(
            "not loaded by PJSIP: {} (is sorcery.conf mapping these types to realtime only?)",
            missing.join(", ")
        ))
    }
}

/// Removes all but the newest `KEEP_BACKUPS` backup folders (named `MS` or `MS-N`).
fn prune_backups(c: &Connection, root: &str) -> std::result::Result<usize, String> {
    let mut folders: Vec<((i64, u32), String)> = c
        .list_dir(root)
        .map_err(|e| e.to_string())?
        .into_iter()
        .filter_map(|n| {
            let (ms, k) = n.split_once('-').unwrap_or((n.as_str(), "0"));
            Some(((ms.parse().ok()?, k.parse().ok()?), n))
        })
        .collect();
    folders.sort();
    let old: Vec<String> = folders
        .iter()
        .rev()
        .skip(KEEP_BACKUPS)
        .map(|(_, n)| format!("{root}/{n}"))
        .collect();
    let refs: Vec<&str> = old.iter().map(String::as_str).collect();
    c.remove_trees(&refs).map_err(|e| e.to_string())?;
    Ok(old.len())
}

/// A rollback the PBX ran by itself: the apply's laptop went away before it confirmed.
#[derive(Debug, Clone, Serialize)]
struct PbxRollback {
    backup: String,
    complete: bool,
    log: String,
}

/// The notes the PBX's rollback leaves beside the backups (`rolled-back.FOLDER`).
fn pbx_rollbacks(c: &Connection, root: &str) -> Result<Vec<(String, PbxRollback)>> {
    let mut out = Vec::new();
    for name in c.list_dir(root).map_err(conflict)? {
        let (complete, folder) = match name.split_once('.') {
            Some(("rolled-back", f)) => (true, f.to_owned()),
            Some(("rollback-failed", f)) => (false, f.to_owned()),
            _ => continue,
        };
        let log = c
            .read_file(&format!("{root}/{folder}/rollback.log"))
            .map_err(conflict)?
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        out.push((
            format!("{root}/{name}"),
            PbxRollback {
                backup: folder,
                complete,
                log: log.chars().take(8000).collect(),
            },
        ));
    }
    Ok(out)
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
        let window = opts.confirm_seconds.unwrap_or(CONFIRM_DEFAULT);
        if !CONFIRM_RANGE.contains(&window) {
            return Err(crate::error::ValidationError::new(
                "confirm_seconds",
                &window.to_string(),
                format!(
                    "{} to {} seconds (the PBX rolls back by itself if the apply is not confirmed by then)",
                    CONFIRM_RANGE.start(),
                    CONFIRM_RANGE.end()
                ),
            )
            .into());
        }
        let mut steps = Steps(Vec::new(), progress);
        let t = Instant::now();
        let pbx = self.pbx_show(actor, name).await?;
        let (rendered, what) = match source {
            ApplySource::Workspace => {
                let snapshot = self.pbx_snapshot(actor, name).await?;
                (pbxdesk_render::render_pbx(&snapshot), String::new())
            }
            ApplySource::PreviousApply => {
                let (r, at) = self.previous_applied(pbx.id).await?.ok_or_else(|| {
                    Error::Conflict(format!(
                        "{name} has no earlier apply on record to go back to"
                    ))
                })?;
                (r, format!("back to the apply of {at} (Unix ms): "))
            }
        };
        let last = self.last_applied(pbx.id).await?.map(|l| l.0);
        let diff = pbxdesk_render::diff(last.as_ref(), &rendered);
        let touched = pbxdesk_render::touched(last.as_ref(), &rendered);
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
            touched: touched.clone(),
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
            "{what}{}; {} file(s) changed, {} unchanged; realtime rows: {} to add, {} to change, {} to remove",
            touched.line(),
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
        // The PBX's own rollback needs the database settings in a mysql option file: refused
        // here, before anything is contacted, if they cannot go there.
        let db_cnf = db_cnf(&pbx, db_password.as_ref())?;
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
        // An earlier apply whose laptop went away was rolled back by the PBX: say so, once.
        let t_notes = Instant::now();
        let noted = blocking({
            let (c, root) = (conn.clone(), format!("{dir}/{BACKUP_DIR}"));
            move || pbx_rollbacks(&c, &root)
        })
        .await??;
        for (note, rb) in &noted {
            self.record_on_pbx(actor, &pbx, "pbx.apply.rolled_back_by_pbx", rb)
                .await?;
            let _ = blocking({
                let (c, note) = (conn.clone(), note.clone());
                move || c.remove_file(&note)
            })
            .await;
            steps.done(
                "earlier apply",
                t_notes,
                rb.complete,
                format!(
                    "the apply backed up in {} was not confirmed; the PBX rolled it back by itself{}",
                    rb.backup,
                    if rb.complete { "" } else { " INCOMPLETELY (see its rollback.log)" }
                ),
            );
        }
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

        // A team shares one workspace: its lock refuses a teammate's apply to this PBX at once,
        // before either touches the PBX (the PBX's own lock below covers everyone else).
        let team_lock = self.team_apply_lock(&pbx).await?;

        // Lock the PBX: one apply at a time, from any laptop.
        let t = Instant::now();
        let lock = format!("{dir}/{LOCK_DIR}");
        let owner = format!("{} {}", actor.name().replace(['\n', '\r'], " "), self.now());
        let took = blocking({
            let (c, lock, owner) = (conn.clone(), lock.clone(), owner.clone());
            let now = self.now();
            move || take_lock(&c, &lock, &owner, now)
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
                return Ok((ApplyOutcome::NothingToDo, None, false));
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
                let text = read_text(&conn, &path).await?.map_err(conflict)?;
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
            // Trunk files load only if sorcery.conf lets file objects in; pbxdesk never edits
            // sorcery.conf nor restarts Asterisk (it is read at start only), so it refuses.
            let objects = sorcery::file_objects(&rendered);
            if !objects.is_empty() {
                let path = format!("{dir}/sorcery.conf");
                let text = read_text(&conn, &path).await?.map_err(conflict)?;
                let gaps = sorcery::file_object_gaps(text.as_deref(), &objects);
                if !gaps.is_empty() {
                    let types: Vec<&str> = gaps.iter().map(|g| g.object.as_str()).collect();
                    return Err(Error::Conflict(format!(
                        "{path} maps {} to realtime only, so Asterisk would ignore the trunk files of this render; {}",
                        types.join(", "),
                        sorcery::gaps_fix(&gaps)
                    )));
                }
            }
            let job = Job {
                pbx: &pbx,
                conn: conn.clone(),
                dir: dir.clone(),
                rendered: &rendered,
                last: last.as_ref(),
                ami_secret,
                db_password,
                ssh_secret,
                pinned: pinned.clone(),
                stamp: self.now(),
                lock_owner: owner.clone(),
                window,
                db_cnf: db_cnf.clone(),
            };
            let result = self.apply_locked(&job, &on_pbx, core_edits, core_backup, &mut steps).await;
            match result {
                // Recorded before the lock is released, so the next apply sees it.
                Ok(()) => {
                    self.pbx_mark_applied(actor, name, &rendered).await?;
                    Ok((ApplyOutcome::Applied, None, false))
                }
                Err(f) if f.touched => {
                    Ok((ApplyOutcome::RolledBack, Some(f.step), f.pbx_rolls_back))
                }
                Err(f) => Ok((ApplyOutcome::Stopped, Some(f.step), false)),
            }
        }
        .await;

        // Only the lock's owner removes it: not a lock another apply took since (this one's was
        // broken as stale), and not while the PBX's own rollback runs (it releases the lock
        // itself when done, if it is still this apply's).
        let t = Instant::now();
        let pbx_owns_lock = matches!(&under_lock, Ok((_, _, true)));
        if pbx_owns_lock {
            steps.done(
                "unlock",
                t,
                true,
                "left to the PBX's own rollback, which releases it when done",
            );
        } else {
            let unlocked = blocking({
                let (c, lock, owner) = (conn.clone(), lock.clone(), owner.clone());
                move || -> std::result::Result<Option<String>, pbxdesk_remote::ssh::SshError> {
                    let note = c
                        .read_file(&format!("{lock}/owner"))?
                        .map(|b| String::from_utf8_lossy(&b).trim().to_owned());
                    if note.as_deref() != Some(owner.trim()) {
                        return Ok(note);
                    }
                    c.remove_file(&format!("{lock}/owner"))?;
                    c.remove_dir(&lock)?;
                    Ok(None)
                }
            })
            .await?;
            match unlocked {
                Ok(None) => steps.done("unlock", t, true, ""),
                Ok(Some(other)) => steps.done(
                    "unlock",
                    t,
                    false,
                    format!("not removed: the lock is no longer this apply's (held by {other})"),
                ),
                Err(e) => steps.done("unlock", t, false, e.to_string()),
            }
        }

        if let Some(conn) = team_lock {
            Self::team_apply_unlock(conn, pbx.id).await;
        }
        let (outcome, failed, _) = under_lock?;
        if outcome == ApplyOutcome::NothingToDo {
            return Ok(report(
                outcome,
                "another apply brought the PBX to this configuration".into(),
                steps,
                None,
            ));
        }
        let rep = report(outcome, summary, steps, failed);
        self.record_on_pbx(actor, &pbx, "pbx.apply", &rep).await?;
        Ok(rep)
    }

    async fn apply_locked(
        &self,
        job: &Job<'_>,
        on_pbx: &BTreeMap<String, String>,
        core_edits: BTreeMap<String, Option<String>>,
        core_backup: BTreeMap<String, Option<String>>,
        steps: &mut Steps,
    ) -> std::result::Result<(), Failed> {
        let (rendered, dir, conn) = (job.rendered, job.dir.as_str(), &job.conn);
        // What changes, and what it replaces (`None`: the file is new, or goes away).
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
        upload.extend(core_edits);
        restore.extend(core_backup);

        // Reach AMI and the realtime database before anything changes: if either is out of
        // reach, the apply stops with the PBX untouched.
        let t = Instant::now();
        let (_ami_tunnel, client) = match self
            .apply_ami(
                job.pbx,
                job.ami_secret.clone(),
                job.ssh_secret.clone(),
                &job.pinned,
            )
            .await
        {
            Ok(c) => c,
            Err(e) => {
                steps.done("connect AMI", t, false, e);
                return Err(Failed::before("connect AMI"));
            }
        };
        steps.done("connect AMI", t, true, "");

        // The group Asterisk runs as (CoreSettings, no command class): the generated folders
        // and files are made readable by it and by nobody else but their owner.
        let t = Instant::now();
        let group = client.core_settings().await.ok().and_then(|m| {
            m.get("CoreRunGroup")
                .map(str::trim)
                .filter(|g| !g.is_empty())
                .map(str::to_owned)
        });
        let access = match &group {
            None => FileAccess { gid: None },
            Some(g) => {
                let found = blocking({
                    let (c, g) = (conn.clone(), g.clone());
                    move || c.group_id(&g)
                })
                .await
                .map_err(|e| Failed {
                    step: format!("internal error: {e}"),
                    touched: false,
                    pbx_rolls_back: false,
                })?;
                match found {
                    Ok(Some(gid)) => FileAccess { gid: Some(gid) },
                    Ok(None) | Err(_) => {
                        steps.done(
                            "file access",
                            t,
                            false,
                            format!("Asterisk runs as group {g}, which the PBX does not know (getent group {g})"),
                        );
                        let _ = client.logoff().await;
                        return Err(Failed::before("file access"));
                    }
                }
            }
        };
        steps.done(
            "file access",
            t,
            true,
            match &group {
                Some(g) => format!("folders 0750, files 0640, group {g} (Asterisk's)"),
                None => "folders 0750, files 0640 (Asterisk runs as root)".to_owned(),
            },
        );

        // Every transport the render names must exist on the PBX: a device or trunk set to
        // transport-tls on a PBX without one would fail at its first packet (or run over UDP).
        let needed = rendered_transports(rendered);
        if !needed.is_empty() {
            let t2 = Instant::now();
            let have = client.pjsip_transports().await.map_err(|e| e.to_string());
            let missing: Vec<String> = match &have {
                Ok(have) => needed
                    .iter()
                    .filter(|(n, _)| !have.iter().any(|(h, _)| h == *n))
                    .map(|(n, users)| {
                        format!(
                            "{n} (used by {})",
                            users.iter().take(3).cloned().collect::<Vec<_>>().join(", ")
                        )
                    })
                    .collect(),
                Err(e) => vec![format!("cannot list them: {e}")],
            };
            if missing.is_empty() {
                steps.done(
                    "transports",
                    t2,
                    true,
                    needed.keys().cloned().collect::<Vec<_>>().join(", "),
                );
            } else {
                let has = have
                    .map(|h| {
                        h.into_iter()
                            .map(|(n, p)| format!("{n} ({p})"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    })
                    .unwrap_or_default();
                steps.done(
                    "transports",
                    t2,
                    false,
                    format!(
                        "the PBX has no transport {}; it has: {}. add the transport to pjsip.conf (type = transport, protocol = tcp or tls) and reload res_pjsip (or restart Asterisk), or set those devices and trunks to a transport the PBX has",
                        missing.join(", "),
                        if has.is_empty() { "none".to_owned() } else { has }
                    ),
                );
                let _ = client.logoff().await;
                return Err(Failed::before("transports"));
            }
        }
        let t = Instant::now();
        let wanted = realtime_devices(rendered);
        let (_db_tunnel, rt) = match self.open_realtime(job).await {
            Ok(r) => r,
            Err(e) => {
                steps.done("connect realtime database", t, false, e);
                let _ = client.logoff().await;
                return Err(Failed::before("connect realtime database"));
            }
        };
        let undo = match rt.undo_script(&wanted).await {
            Ok(u) => u,
            Err(e) => {
                steps.done("connect realtime database", t, false, e.to_string());
                rt.close().await;
                let _ = client.logoff().await;
                return Err(Failed::before("connect realtime database"));
            }
        };
        steps.done("connect realtime database", t, true, "");

        // Newly inserted realtime endpoints report DeviceState Unavailable until res_pjsip is
        // reloaded (captured on Asterisk 22), so an apply that adds devices reloads it too.
        let adds_rows = job.last.map_or(!rendered.realtime.is_empty(), |l| {
            let had: BTreeSet<&str> = l.realtime.iter().map(|e| e.id.as_str()).collect();
            rendered
                .realtime
                .iter()
                .any(|e| !had.contains(e.id.as_str()))
        });
        let mut modules: Vec<&'static str> = Vec::new();
        if upload
            .keys()
            .any(|p| p.starts_with(DIALPLAN_DIR) || p == "extensions.conf")
        {
            modules.push("pbx_config");
        }
        if adds_rows
            || upload
                .keys()
                .any(|p| p.starts_with(PJSIP_DIR) || p == "pjsip.conf")
        {
            modules.push("res_pjsip");
        }
        if upload
            .keys()
            .any(|p| p.starts_with(VOICEMAIL_DIR) || p == "voicemail.conf")
        {
            modules.push("app_voicemail");
        }

        // The backup, and the rollback the PBX runs by itself unless this apply confirms.
        let t = Instant::now();
        let root = format!("{dir}/{BACKUP_DIR}");
        let armed = blocking({
            let conn = conn.clone();
            let (root, stamp, restore, undo) =
                (root.clone(), job.stamp, restore.clone(), undo.clone());
            let modules: Vec<String> = modules.iter().map(|m| (*m).to_owned()).collect();
            let cnf = job.db_cnf.clone();
            let (owner, window) = (job.lock_owner.clone(), job.window);
            move || {
                arm(
                    &conn, &root, stamp, &restore, &undo, &cnf, &modules, &owner, window,
                )
            }
        })
        .await
        .map_err(|e| Failed {
            step: format!("internal error: {e}"),
            touched: false,
            pbx_rolls_back: false,
        })?;
        let base = match armed {
            Ok((n, base)) => {
                steps.done(
                "back up and arm the rollback",
                t,
                true,
                format!(
                    "{n} file(s) in {base}; the PBX restores them by itself unless the apply is confirmed within {} s",
                    job.window
                ),
                );
                base
            }
            Err(e) => {
                steps.done("back up and arm the rollback", t, false, e);
                rt.close().await;
                let _ = client.logoff().await;
                return Err(Failed::before("back up and arm the rollback"));
            }
        };
        let armed_at = Instant::now();

        // From here on, any failure restores.
        let mut failed: Option<&str> = None;
        let mut synced = false;
        let t = Instant::now();
        let up = blocking({
            let (c, d, files, b) = (conn.clone(), dir.to_owned(), upload.clone(), base.clone());
            move || write_files(&c, &d, &files, Some(access), Some(&b))
        })
        .await
        .map_err(|e| Failed {
            step: format!("internal error: {e}"),
            touched: true,
            pbx_rolls_back: false,
        })?;
        // Every change from here on is made while this apply holds the armed rollback
        // (`armed` -> `changing` -> `armed`): the PBX's own rollback never runs beside a change,
        // and no change is made after it started (old files with new rows).
        let too_late = "not done: the PBX's own rollback has started (the confirm window ran out)";
        match up {
            Ok(true) => steps.done(
                "upload",
                t,
                true,
                format!("{} file(s) written or removed atomically", upload.len()),
            ),
            Ok(false) => {
                steps.done("upload", t, false, too_late);
                rt.close().await;
                let _ = client.logoff().await;
                return Err(Failed::left_to_pbx("upload"));
            }
            Err(e) => {
                steps.done("upload", t, false, e.to_string());
                failed = Some("upload");
            }
        }

        // Realtime rows: one transaction, then read back.
        if failed.is_none() {
            let t = Instant::now();
            match hold_for_change(conn, &base).await {
                Ok(true) => {}
                Ok(false) => {
                    steps.done("sync realtime rows", t, false, too_late);
                    rt.close().await;
                    let _ = client.logoff().await;
                    return Err(Failed::left_to_pbx("sync realtime rows"));
                }
                Err(e) => {
                    steps.done("sync realtime rows", t, false, e);
                    failed = Some("sync realtime rows");
                }
            }
        }
        if failed.is_none() {
            let t = Instant::now();
            let synced_now = sync_rows(&rt, &wanted, self.now()).await;
            if !release_after_change(conn, &base).await {
                failed = Some("sync realtime rows");
            }
            match synced_now {
                Ok(detail) => {
                    synced = true;
                    steps.done("sync realtime rows", t, true, detail);
                }
                Err((detail, committed)) => {
                    synced = committed;
                    steps.done("sync realtime rows", t, false, detail);
                    failed = Some("sync realtime rows");
                }
            }
        }

        if failed.is_none() && !modules.is_empty() {
            let t = Instant::now();
            match hold_for_change(conn, &base).await {
                Ok(true) => {}
                Ok(false) => {
                    steps.done("reload", t, false, too_late);
                    rt.close().await;
                    let _ = client.logoff().await;
                    return Err(Failed::left_to_pbx("reload"));
                }
                Err(e) => {
                    steps.done("reload", t, false, e);
                    failed = Some("reload");
                }
            }
        }
        if failed.is_none() {
            let t = Instant::now();
            let mut err = None;
            for m in &modules {
                if let Err(e) = reload_with_retry(&client, m).await {
                    err = Some(format!("{m}: {e}"));
                    break;
                }
            }
            // Released whatever the reload did (the left operands run first).
            if !modules.is_empty() && !release_after_change(conn, &base).await && err.is_none() {
                err = Some("could not hand the armed rollback back to the PBX".into());
            }
            match err {
                None => steps.done("reload", t, true, modules.join(", ")),
                Some(e) => {
                    steps.done("reload", t, false, e);
                    failed = Some("reload");
                }
            }
        }
        // Verify from what Asterisk reports, not from the reload's answer.
        if failed.is_none() {
            let t = Instant::now();
            match verify_dialplan(&client, &rendered.contexts).await {
                Ok(n) => steps.done(
                    "verify dialplan",
                    t,
                    true,
                    format!("{n} context(s) loaded as rendered"),
                ),
                Err(e) => {
                    steps.done("verify dialplan", t, false, e);
                    failed = Some("verify dialplan");
                }
            }
        }
        if failed.is_none() {
            let t = Instant::now();
            let ids: Vec<&str> = rendered.realtime.iter().map(|e| e.id.as_str()).collect();
            match verify_endpoints(&client, &ids).await {
                Ok(n) => steps.done(
                    "verify endpoints",
                    t,
                    true,
                    format!("{n} endpoint(s) known to PJSIP"),
                ),
                Err(e) => {
                    steps.done("verify endpoints", t, false, e);
                    failed = Some("verify endpoints");
                }
            }
        }
        if failed.is_none() {
            let want = rendered_mailboxes(rendered);
            if !want.is_empty() {
                let t = Instant::now();
                match client.voicemail_boxes().await {
                    Ok(have) => {
                        let missing: Vec<String> = want
                            .iter()
                            .filter(|w| !have.contains(w))
                            .map(|(c, b)| format!("{b}@{c}"))
                            .collect();
                        if missing.is_empty() {
                            steps.done(
                                "verify voicemail",
                                t,
                                true,
                                format!("{} mailbox(es) loaded", want.len()),
                            );
                        } else {
                            steps.done(
                                "verify voicemail",
                                t,
                                false,
                                format!(
                                    "{} mailbox(es) not loaded by app_voicemail, e.g. {}",
                                    missing.len(),
                                    missing
                                        .iter()
                                        .take(5)
                                        .cloned()
                                        .collect::<Vec<_>>()
                                        .join(", ")
                                ),
                            );
                            failed = Some("verify voicemail");
                        }
                    }
                    Err(e) => {
                        steps.done("verify voicemail", t, false, e.to_string());
                        failed = Some("verify voicemail");
                    }
                }
            }
        }
        if failed.is_none() {
            let trunks = rendered_trunks(rendered);
            if !trunks.is_empty() {
                let t = Instant::now();
                match verify_trunks(&client, &trunks).await {
                    Ok(detail) => steps.done("verify trunks", t, true, detail),
                    Err(e) => {
                        steps.done("verify trunks", t, false, e);
                        failed = Some("verify trunks");
                    }
                }
            }
        }

        if failed.is_none() {
            // Confirm: disarm the PBX's rollback. If its timer won the race, the PBX is already
            // going back to the old configuration, and this apply did not happen.
            let t = Instant::now();
            let confirmed = blocking({
                let (c, base) = (conn.clone(), base.clone());
                move || confirm(&c, &base)
            })
            .await
            .map_err(|e| Failed {
                step: format!("internal error: {e}"),
                touched: true,
                pbx_rolls_back: false,
            })?;
            match confirmed {
                Ok(true) => {
                    let pruned = blocking({
                        let (c, root) = (conn.clone(), root.clone());
                        move || prune_backups(&c, &root)
                    })
                    .await
                    .ok()
                    .and_then(|r| r.ok())
                    .unwrap_or(0);
                    steps.done(
                        "confirm",
                        t,
                        true,
                        format!(
                            "the PBX's rollback was disarmed {} ms after it was armed{}",
                            armed_at.elapsed().as_millis(),
                            if pruned > 0 {
                                format!("; {pruned} old backup(s) removed (the last {KEEP_BACKUPS} are kept)")
                            } else {
                                String::new()
                            }
                        ),
                    );
                    rt.close().await;
                    let _ = client.logoff().await;
                    return Ok(());
                }
                Ok(false) => {
                    steps.done(
                        "confirm",
                        t,
                        false,
                        format!(
                            "too late: the PBX's own rollback started after {} s (the confirm window); it restores {base}",
                            job.window
                        ),
                    );
                    rt.close().await;
                    let _ = client.logoff().await;
                    return Err(Failed {
                        step: "confirm".into(),
                        touched: true,
                        pbx_rolls_back: true,
                    });
                }
                Err(e) => {
                    steps.done("confirm", t, false, e.to_string());
                    failed = Some("confirm");
                }
            }
        }
        let step = failed.unwrap_or("confirm").to_owned();

        // Roll back from the laptop (it reports and verifies; the PBX's script cannot). The
        // claim on "armed" keeps the PBX's timer from running the same rollback at once, unless
        // this laptop is gone before it finishes.
        let t = Instant::now();
        let claimed = blocking({
            let (c, base) = (conn.clone(), base.clone());
            // The PBX's timer stays armed in another form: if this laptop vanishes before it is
            // done, the script finds "laptop-rolling-back" and finishes the rollback.
            move || {
                c.rename(
                    &format!("{base}/armed"),
                    &format!("{base}/laptop-rolling-back"),
                )
            }
        })
        .await
        .map_err(|e| Failed {
            step: format!("internal error: {e}"),
            touched: true,
            pbx_rolls_back: false,
        })?;
        if !matches!(claimed, Ok(true)) {
            steps.done(
                "roll back",
                t,
                false,
                format!("the PBX is rolling itself back ({base}/rollback.log)"),
            );
            rt.close().await;
            let _ = client.logoff().await;
            return Err(Failed {
                step,
                touched: true,
                pbx_rolls_back: true,
            });
        }
        let restored = blocking({
            let (c, d, files) = (conn.clone(), dir.to_owned(), restore.clone());
            move || restore_files(&c, &d, &files)
        })
        .await
        .map_err(|e| Failed {
            step: format!("internal error: {e}"),
            touched: true,
            pbx_rolls_back: false,
        })?;
        let files_ok = restored.is_ok();
        steps.done(
            "restore files",
            t,
            files_ok,
            match restored {
                Ok(n) => format!("{n} file(s) put back"),
                Err(e) => e.to_string(),
            },
        );
        let mut rows_ok = true;
        if synced {
            let t = Instant::now();
            let r = rt.undo(&undo).await;
            rows_ok = r.is_ok();
            steps.done(
                "restore realtime rows",
                t,
                rows_ok,
                r.err().map(|e| e.to_string()).unwrap_or_default(),
            );
        }
        rt.close().await;
        let t = Instant::now();
        let mut reloaded = Ok(());
        for m in &modules {
            if let Err(e) = reload_with_retry(&client, m).await {
                reloaded = Err(format!("{m}: {e}"));
                break;
            }
        }
        // What counts is what Asterisk runs now: a failed reload keeps the old dialplan loaded.
        let verified = match (job.last, reloaded) {
            (Some(l), r) => verify_dialplan(&client, &l.contexts).await.map(|n| {
                let mut d = format!("{n} context(s) of the last apply loaded");
                if let Err(e) = r {
                    d.push_str(&format!(" (the reload failed, {e}; Asterisk kept them)"));
                }
                d
            }),
            (None, Ok(())) => Ok("reloaded".into()),
            (None, Err(e)) => Err(e),
        };
        let _ = client.logoff().await;
        let all_ok = files_ok && rows_ok && verified.is_ok();
        steps.done(
            "reload and verify the old state",
            t,
            verified.is_ok(),
            verified.unwrap_or_else(|e| e),
        );
        let _ = blocking({
            let (c, base) = (conn.clone(), base.clone());
            let to = if all_ok {
                "rolled-back"
            } else {
                "rollback-failed"
            };
            move || {
                let _ = c.remove_file(&format!("{base}/db.cnf"));
                let _ = c.remove_file(&format!("{base}/undo.sql"));
                c.rename(
                    &format!("{base}/laptop-rolling-back"),
                    &format!("{base}/{to}"),
                )
            }
        })
        .await;
        Err(Failed {
            step,
            touched: true,
            pbx_rolls_back: false,
        })
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

    async fn open_realtime(
        &self,
        job: &Job<'_>,
    ) -> std::result::Result<(Option<Tunnel>, Realtime), String> {
        let pbx = job.pbx;
        let user = pbx
            .db_user
            .clone()
            .ok_or("no database user in the profile")?;
        let (tunnel, addr) = match pbx.db_via {
            crate::domain::Via::Direct => (None, format!("{}:{}", pbx.host, pbx.db_port)),
            crate::domain::Via::Tunnel => {
                let t = Tunnel::open(
                    &target(pbx, job.ssh_secret.clone()),
                    Some(&job.pinned),
                    "127.0.0.1",
                    pbx.db_port,
                )
                .map_err(|e| e.to_string())?;
                let a = t.local_addr();
                (Some(t), a)
            }
        };
        let url = format!("mysql://{user}@{addr}/{}", pbx.db_name);
        let rt = Realtime::connect(
            &url,
            job.db_password.as_ref(),
            &format!("pbxdesk:{}", pbx.name),
        )
        .await
        .map_err(|e| e.to_string())?;
        Ok((tunnel, rt))
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
        let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1, $2)")
            .bind(TEAM_LOCK_CLASS)
            .bind(key)
            .fetch_one(&mut conn)
            .await
            .map_err(crate::store::db_error)?;
        if !got {
            return Err(Error::Conflict(format!(
                "another apply to {} is running from this team's workspace; try again when it is done",
                pbx.name
            )));
        }
        Ok(Some(conn))
    }

    async fn team_apply_unlock(mut conn: sqlx::AnyConnection, pbx_id: i64) {
        use sqlx::Connection as _;
        let key = i32::try_from(pbx_id).unwrap_or(i32::MAX);
        let _ = sqlx::query("SELECT pg_advisory_unlock($1, $2)")
            .bind(TEAM_LOCK_CLASS)
            .bind(key)
            .execute(&mut conn)
            .await;
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

#[cfg(test)]
mod send_check {
    #[allow(dead_code)]
    fn apply_future_is_send(ws: &super::Workspace, a: &super::Actor, o: &super::ApplyOptions) {
        fn send<T: Send>(_: T) {}
        send(ws.pbx_apply_with(a, "x", o, super::ApplySource::Workspace, None));
    }
}
