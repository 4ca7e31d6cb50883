//! The apply's operations on the PBX's file system, over one SSH connection (blocking: the
//! session runs them on tokio's blocking pool): the generated files, the lock, the backup and
//! the armed rollback with its handshake (`armed` -> `changing` | `confirmed` |
//! `laptop-rolling-back`), the notes of rollbacks the PBX ran by itself. Errors are the
//! technician's words (they become a step's detail).

use super::plan::Files;
use pbxdesk_remote::ssh::{Connection, SshError};
use pbxdesk_render::pbx::{DIALPLAN_DIR, PJSIP_DIR, VOICEMAIL_DIR};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

pub(crate) type R<T> = std::result::Result<T, String>;

fn s(e: SshError) -> String {
    e.to_string()
}

/// Where the PBX-side lock lives, under the config folder.
pub(crate) const LOCK_DIR: &str = ".pbxdesk-apply.lock";
/// A lock older than this (by the PBX's clock) was left by a crashed apply and may be broken.
pub(crate) const STALE_LOCK: Duration = Duration::from_secs(15 * 60);
pub(crate) const BACKUP_DIR: &str = "pbxdesk-backups";
/// Backups kept on the PBX; older ones are removed after a confirmed apply.
pub(crate) const KEEP_BACKUPS: usize = 10;
/// The rollback the PBX runs by itself (see the script's own comments).
const ROLLBACK_SCRIPT: &str = include_str!("rollback.sh");
pub(crate) const GENERATED_DIR_MODE: u32 = 0o750;
pub(crate) const GENERATED_FILE_MODE: u32 = 0o640;

/// pbxdesk's generated files as they are on the PBX (path relative to the config folder).
pub(crate) fn read_generated(c: &Connection, dir: &str) -> R<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for sub in [DIALPLAN_DIR, PJSIP_DIR, VOICEMAIL_DIR] {
        for name in c.list_dir(&format!("{dir}/{sub}")).map_err(s)? {
            if !name.ends_with(".conf") {
                continue;
            }
            let rel = format!("{sub}/{name}");
            if let Some(bytes) = c.read_file(&format!("{dir}/{rel}")).map_err(s)? {
                out.insert(rel, String::from_utf8_lossy(&bytes).into_owned());
            }
        }
    }
    Ok(out)
}

/// Text files of the config folder (lossy UTF-8); `None` when absent.
pub(crate) fn read_texts(c: &Connection, dir: &str, names: &[String]) -> R<Files> {
    let mut out = Files::new();
    for n in names {
        let text = c
            .read_file(&format!("{dir}/{n}"))
            .map_err(s)?
            .map(|b| String::from_utf8_lossy(&b).into_owned());
        out.insert(n.clone(), text);
    }
    Ok(out)
}

/// Who may read the generated files on the PBX: their owner (the SSH user) and Asterisk's
/// group, nobody else (they hold trunk passwords and voicemail PINs). `gid` None: Asterisk
/// runs as root (CoreRunGroup empty, capture s11), which reads them anyway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct FileAccess {
    pub gid: Option<u32>,
}

/// How long a change the laptop holds the armed rollback for may last before the PBX's script
/// takes over (the laptop is then presumed gone mid-change): rollback.sh's HOLD. As long as the
/// confirm window, within 5 to 60 s: a swap of files, a sync or a reload takes seconds, and a
/// laptop that died in the middle of one delays the PBX's own rollback by at most this.
fn hold_seconds(window: u32) -> u32 {
    window.clamp(5, 60)
}

/// Takes the armed rollback for one change (`armed` -> `changing`); false when the PBX's own
/// rollback has it already (the confirm window ran out): then nothing more may change.
pub(crate) fn hold(c: &Connection, base: &str) -> R<bool> {
    c.rename(&format!("{base}/armed"), &format!("{base}/changing"))
        .map_err(s)
}

/// Hands the armed rollback back after the change (`changing` -> `armed`).
pub(crate) fn release(c: &Connection, base: &str) -> R<bool> {
    c.rename(&format!("{base}/changing"), &format!("{base}/armed"))
        .map_err(s)
}

/// Writes `files` (`None` removes) in one batch, then gives the generated folders and files
/// their modes and Asterisk's group (before any reload reads them). With `armed` (the apply's
/// backup folder), the files are swapped only while the armed rollback is held (see
/// `write_files_atomic_guarded`); `Ok(false)`: the PBX's rollback has started, nothing was
/// swapped.
pub(crate) fn write_files(
    c: &Connection,
    dir: &str,
    files: &Files,
    access: Option<FileAccess>,
    armed: Option<&str>,
) -> R<bool> {
    for sub in [DIALPLAN_DIR, PJSIP_DIR, VOICEMAIL_DIR] {
        if files.iter().any(|(p, t)| t.is_some() && p.starts_with(sub)) {
            let path = format!("{dir}/{sub}");
            c.create_dir_all_mode(&path, GENERATED_DIR_MODE as i32)
                .map_err(s)?;
            if let Some(a) = access {
                c.set_mode(&path, GENERATED_DIR_MODE, a.gid).map_err(s)?;
            }
        }
    }
    let writes: Vec<(String, &[u8])> = files
        .iter()
        .filter_map(|(p, t)| t.as_ref().map(|t| (format!("{dir}/{p}"), t.as_bytes())))
        .collect();
    let refs: Vec<(&str, &[u8])> = writes.iter().map(|(p, b)| (p.as_str(), *b)).collect();
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
        Err(SshError::NotArmed) => return Ok(false),
        Err(e) => return Err(e.to_string()),
    }
    if let Some(a) = access {
        for (p, _) in &writes {
            c.set_mode(p, GENERATED_FILE_MODE, a.gid).map_err(s)?;
        }
    }
    Ok(true)
}

/// Puts `files` back (`None` removes), writing only those that differ from what the PBX holds
/// now: after a failed upload (a full disk, a cut connection) most of them never changed, and
/// writing them again could fail the same way.
pub(crate) fn restore_files(c: &Connection, dir: &str, files: &Files) -> R<usize> {
    let mut todo = Files::new();
    for (p, want) in files {
        let now = c
            .read_file(&format!("{dir}/{p}"))
            .map_err(s)?
            .map(|b| String::from_utf8_lossy(&b).into_owned());
        if now != *want {
            todo.insert(p.clone(), want.clone());
        }
    }
    write_files(c, dir, &todo, None, None)?;
    Ok(todo.len())
}

/// The lock, as another apply holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Holder {
    pub owner: String,
    /// Unix ms, by the holder's clock (for people; staleness is judged by the PBX's clock).
    pub since: i64,
}

impl Holder {
    fn from_note(note: &str) -> Holder {
        let (who, since) = note.trim().rsplit_once(' ').unwrap_or((note.trim(), "0"));
        Holder {
            owner: who.to_owned(),
            since: since.parse().unwrap_or(0),
        }
    }
}

/// A lock note is complete once it ends in its time: the file exists, empty, between its
/// creation and its write (read then, it looked like a lock from 1970 and was broken as stale:
/// two applies at once, found by the concurrent-apply test under load).
fn complete_note(c: &Connection, lock: &str) -> R<Option<String>> {
    Ok(c.read_file(&format!("{lock}/owner"))
        .map_err(s)?
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .filter(|note| {
            note.rsplit(' ')
                .next()
                .is_some_and(|t| t.parse::<i64>().is_ok())
        }))
}

/// Takes the PBX's lock (a folder: creating one is atomic). `Ok(Err(holder))` when another
/// apply holds it. A lock older than `STALE_LOCK` is broken by moving it aside, which is
/// atomic too: of two laptops breaking the same stale lock, one wins and the other finds it
/// held. `Ok(Ok(note))`: taken, and how.
pub(crate) fn take_lock(c: &Connection, lock: &str, owner: &str) -> R<Result<String, Holder>> {
    let mut broke = None;
    let mut last = Holder::from_note("");
    for _ in 0..2 {
        if c.create_dir(lock).map_err(s)? {
            c.write_new(&format!("{lock}/owner"), owner.as_bytes())
                .map_err(s)?;
            return Ok(Ok(broke.unwrap_or_else(|| "taken".into())));
        }
        // The holder writes its note right after creating the folder: a folder without one is
        // being taken at this moment, unless it stays so (an apply that died in between).
        let mut held = None;
        for _ in 0..50 {
            held = complete_note(c, lock)?;
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
        let written = c
            .mtime(&if noted {
                format!("{lock}/owner")
            } else {
                lock.to_owned()
            })
            .map_err(s)?;
        let probe = format!("{lock}.clock-{:08x}", rand::random::<u32>());
        c.write_new(&probe, b"").map_err(s)?;
        let pbx_now = c.mtime(&probe).map_err(s)?;
        let _ = c.remove_file(&probe);
        let age = match (pbx_now, written) {
            (Some(n), Some(w)) => n.saturating_sub(w),
            // Gone meanwhile (released): try again.
            _ => 0,
        };
        if age <= STALE_LOCK.as_secs() {
            return Ok(Err(Holder::from_note(&held)));
        }
        let aside = format!("{lock}.stale-{:08x}", rand::random::<u32>());
        if c.rename(lock, &aside).map_err(s)? {
            let _ = c.remove_file(&format!("{aside}/owner"));
            let _ = c.remove_dir(&aside);
        }
        broke = Some(format!("broke a stale lock left by {held}"));
        last = Holder::from_note(&held);
    }
    // Broken, and taken again by someone else in between.
    Ok(Err(last))
}

/// Removes the lock if it is still `owner`'s; `Ok(Some(note))`: it is someone else's now (this
/// apply's was broken as stale), and it stays.
pub(crate) fn unlock(c: &Connection, lock: &str, owner: &str) -> R<Option<String>> {
    let note = c
        .read_file(&format!("{lock}/owner"))
        .map_err(s)?
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned());
    if note.as_deref() != Some(owner.trim()) {
        return Ok(Some(note.unwrap_or_else(|| "nobody".into())));
    }
    c.remove_file(&format!("{lock}/owner")).map_err(s)?;
    c.remove_dir(lock).map_err(s)?;
    Ok(None)
}

/// Only paths of this alphabet go into the rollback manifest, which a shell reads.
fn manifest_path(p: &str) -> R<&str> {
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

/// What the armed rollback needs.
pub(crate) struct Arming<'a> {
    pub root: &'a str,
    /// The backup folder's name (Unix ms).
    pub stamp: i64,
    pub restore: &'a Files,
    /// The realtime rows' undo script (empty: no rows to restore).
    pub undo: &'a str,
    /// The mysql client's option file for the undo.
    pub db_cnf: &'a str,
    pub modules: &'a [&'static str],
    /// The lock's note: the script restores only while the lock is still this apply's.
    pub lock_owner: &'a str,
    pub window: u32,
}

/// Writes the backup and the rollback into a new folder of the apply's own (plain SFTP writes,
/// owner-only), then starts the PBX's timer. "armed" is written last: until it exists the
/// script does nothing. Returns how many files were backed up, and the folder. On any failure
/// after "armed" was written it is removed again (a timer that did start must not find it).
pub(crate) fn arm(c: &Connection, a: &Arming) -> R<(usize, String)> {
    c.create_dir_all(a.root).map_err(s)?;
    // A folder of this apply's own (creating a folder is atomic: two applies never share one).
    let mut base = format!("{}/{}", a.root, a.stamp);
    let mut n = 0;
    while !c.create_dir(&base).map_err(s)? {
        n += 1;
        if n > 100 {
            return Err(format!("cannot make a backup folder in {}", a.root));
        }
        base = format!("{}/{}-{n}", a.root, a.stamp);
    }
    let saved = write_backup(c, &base, a)?;
    c.write_new(&format!("{base}/armed"), a.lock_owner.as_bytes())
        .map_err(s)?;
    let mut needed = vec!["sh", "setsid", "nohup", "sleep", "asterisk", "cmp"];
    if !a.undo.is_empty() {
        needed.push("mysql");
    }
    let started = c.spawn_detached(
        &format!("{base}/rollback.sh"),
        &[a.window, hold_seconds(a.window)],
        &needed,
    );
    let failure = match started {
        Ok(missing) if missing.is_empty() => return Ok((saved, base)),
        Ok(missing) => format!(
            "the PBX lacks {} (needed to roll back by itself); install it on the PBX",
            missing.join(", ")
        ),
        // The script may have started before the answer was lost: disarm it.
        Err(e) => e.to_string(),
    };
    disarm(c, &base);
    Err(failure)
}

/// A backup that will never be used: its rollback must not run, and its secrets go.
pub(crate) fn disarm(c: &Connection, base: &str) {
    for f in ["armed", "db.cnf", "undo.sql"] {
        let _ = c.remove_file(&format!("{base}/{f}"));
    }
}

fn write_backup(c: &Connection, base: &str, a: &Arming) -> R<usize> {
    let mut manifest = String::new();
    let mut made = BTreeSet::new();
    let mut saved = 0;
    for (p, old) in a.restore {
        let p = manifest_path(p)?;
        match old {
            Some(text) => {
                let full = format!("{base}/files/{p}");
                let parent = full
                    .rsplit_once('/')
                    .map_or(base.to_owned(), |(d, _)| d.to_owned());
                if made.insert(parent.clone()) {
                    c.create_dir_all(&parent).map_err(s)?;
                }
                c.write_new(&full, text.as_bytes()).map_err(s)?;
                manifest.push_str(&format!("restore {p}\n"));
                saved += 1;
            }
            None => manifest.push_str(&format!("remove {p}\n")),
        }
    }
    for m in a.modules {
        manifest.push_str(&format!("reload {m}\n"));
    }
    let write = |name: &str, bytes: &[u8]| c.write_new(&format!("{base}/{name}"), bytes).map_err(s);
    write("manifest", manifest.as_bytes())?;
    if !a.undo.is_empty() {
        write("undo.sql", a.undo.as_bytes())?;
        write("db.cnf", a.db_cnf.as_bytes())?;
    }
    write("lock-owner", a.lock_owner.as_bytes())?;
    write("rollback.sh", ROLLBACK_SCRIPT.as_bytes())?;
    Ok(saved)
}

/// What the confirmation found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Confirmation {
    /// `armed` is `confirmed`: the new configuration stays. `cleanup`: what could not be
    /// removed afterwards (the rollback's secrets), which changes nothing about that.
    Confirmed { cleanup: Option<String> },
    /// The PBX's own rollback took `armed` first: it restores the old configuration.
    TooLate,
}

/// Disarms the PBX's rollback. The secrets the rollback needed are removed from the PBX at
/// once; a failure to remove them is reported as such, never as a rollback.
pub(crate) fn confirm(c: &Connection, base: &str) -> R<Confirmation> {
    if !c
        .rename(&format!("{base}/armed"), &format!("{base}/confirmed"))
        .map_err(s)?
    {
        return Ok(Confirmation::TooLate);
    }
    let mut left = Vec::new();
    for f in ["db.cnf", "undo.sql"] {
        if let Err(e) = c.remove_file(&format!("{base}/{f}")) {
            left.push(format!("{base}/{f} ({e})"));
        }
    }
    Ok(Confirmation::Confirmed {
        cleanup: (!left.is_empty()).then(|| format!("could not remove {}", left.join(", "))),
    })
}

/// Takes the rollback from the PBX's timer for the laptop: `armed` -> `laptop-rolling-back`
/// (the timer finishes it should this laptop vanish half-way). False: the timer has it.
pub(crate) fn claim_rollback(c: &Connection, base: &str) -> R<bool> {
    c.rename(
        &format!("{base}/armed"),
        &format!("{base}/laptop-rolling-back"),
    )
    .map_err(s)
}

/// Ends the laptop's rollback: its secrets removed, its state `rolled-back` or
/// `rollback-failed`.
pub(crate) fn finish_rollback(c: &Connection, base: &str, complete: bool) -> R<()> {
    let _ = c.remove_file(&format!("{base}/db.cnf"));
    let _ = c.remove_file(&format!("{base}/undo.sql"));
    let to = if complete {
        "rolled-back"
    } else {
        "rollback-failed"
    };
    c.rename(
        &format!("{base}/laptop-rolling-back"),
        &format!("{base}/{to}"),
    )
    .map(|_| ())
    .map_err(s)
}

/// Removes all but the newest `KEEP_BACKUPS` backup folders (named `MS` or `MS-N`).
pub(crate) fn prune_backups(c: &Connection, root: &str) -> R<usize> {
    let mut folders: Vec<((i64, u32), String)> = c
        .list_dir(root)
        .map_err(s)?
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
    c.remove_trees(&refs).map_err(s)?;
    Ok(old.len())
}

/// A rollback the PBX ran by itself: the apply's laptop went away before it confirmed.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct PbxRollback {
    /// The note beside the backups (removed once reported).
    #[serde(skip)]
    pub note: String,
    pub backup: String,
    pub complete: bool,
    pub log: String,
}

/// The notes the PBX's rollback leaves beside the backups (`rolled-back.FOLDER`).
pub(crate) fn pbx_rollbacks(c: &Connection, root: &str) -> R<Vec<PbxRollback>> {
    let mut out = Vec::new();
    for name in c.list_dir(root).map_err(s)? {
        let (complete, folder) = match name.split_once('.') {
            Some(("rolled-back", f)) => (true, f.to_owned()),
            Some(("rollback-failed", f)) => (false, f.to_owned()),
            _ => continue,
        };
        let log = c
            .read_file(&format!("{root}/{folder}/rollback.log"))
            .map_err(s)?
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        out.push(PbxRollback {
            note: format!("{root}/{name}"),
            backup: folder,
            complete,
            log: log.chars().take(8000).collect(),
        });
    }
    Ok(out)
}
