//! The apply's one conversation with a PBX, behind a narrow trait: read, lock, reach AMI and
//! the realtime database, arm, change (each change made while the armed rollback is held),
//! answer what Asterisk loaded, confirm or roll back. `SshSession` is the real one (libssh2,
//! AMI, MariaDB); `run`'s tests drive the state machine against a scripted one. A session owns
//! its blocking calls (on tokio's blocking pool) and its cleanup: `close` logs off and closes,
//! and dropping it closes the sockets and tunnels, so no exit path can leave one open.

use super::pbx_side::{self as side, Arming, Confirmation, FileAccess, Holder, PbxRollback, R};
use super::plan::{Files, PbxFiles};
use crate::error::{Error, Result};
use crate::model::Pbx;
use crate::service::check::{blocking, target};
use pbxdesk_remote::ami;
use pbxdesk_remote::realtime::{Device, Realtime, RealtimeError};
use pbxdesk_remote::ssh::{Connection, SshError};
use pbxdesk_remote::tunnel::Tunnel;
use secrecy::SecretString;
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// A change made only while the armed rollback is held: `TooLate` when the PBX's own rollback
/// has started (the confirm window ran out), and nothing was done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Guarded<T> {
    Done(T),
    TooLate,
}

/// A sync that failed; `maybe_committed`: its rows may be live (the COMMIT got no answer, or
/// it committed and what followed failed), so a rollback must run the undo (it is idempotent).
#[derive(Debug, Clone)]
pub(crate) struct SyncFailure {
    pub detail: String,
    pub maybe_committed: bool,
}

/// The group Asterisk runs as, as the PBX knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RunGroup {
    /// Asterisk runs as root (CoreRunGroup empty): it reads the files anyway.
    Root,
    Known {
        name: String,
    },
    /// CoreRunGroup names a group `getent` does not know.
    Unknown {
        name: String,
    },
}

/// The state files of the armed rollback, as found (`None`: none of them).
pub(crate) type ArmState = Option<&'static str>;

/// Everything the apply asks of a PBX. Each method is one step's worth of work; the state it
/// needs between steps (the backup folder, the undo script, the file access) stays inside.
pub(crate) trait Session: Send {
    /// Rollbacks the PBX ran by itself since the last apply.
    fn earlier_rollbacks(&mut self) -> impl Future<Output = R<Vec<PbxRollback>>> + Send;
    /// Removes a rollback's note once it is recorded.
    fn forget_rollback(&mut self, note: &str) -> impl Future<Output = ()> + Send;
    fn read(&mut self, core: &[String]) -> impl Future<Output = R<PbxFiles>> + Send;
    /// Takes the PBX's lock for this apply; `Err(holder)`: another apply has it.
    fn lock(&mut self) -> impl Future<Output = R<std::result::Result<String, Holder>>> + Send;
    /// Removes the lock if it is still this apply's; `Some(note)`: someone else's now.
    fn unlock(&mut self) -> impl Future<Output = R<Option<String>>> + Send;
    /// Reaches AMI and the realtime database (at once), and reads what the undo of syncing
    /// `wanted` needs: (AMI, database).
    fn connect(&mut self, wanted: &[Device]) -> impl Future<Output = (R<()>, R<()>)> + Send;
    /// The group Asterisk runs as; the uploads are given it.
    fn run_group(&mut self) -> impl Future<Output = R<RunGroup>> + Send;
    /// The transports the PBX has (name, protocol).
    fn transports(&mut self) -> impl Future<Output = R<Vec<(String, String)>>> + Send;
    /// Backs up `restore` and arms the PBX's own rollback; the backup folder.
    fn arm(
        &mut self,
        restore: &Files,
        modules: &[&'static str],
    ) -> impl Future<Output = R<(usize, String)>> + Send;
    fn upload(&mut self, files: &Files) -> impl Future<Output = R<Guarded<()>>> + Send;
    fn sync(
        &mut self,
        wanted: &[Device],
    ) -> impl Future<Output = std::result::Result<Guarded<String>, SyncFailure>> + Send;
    /// Reloads `modules`, holding the armed rollback when `guarded` (a rollback's own reload is
    /// not: the laptop holds the rollback then).
    fn reload(
        &mut self,
        modules: &[&'static str],
        guarded: bool,
    ) -> impl Future<Output = R<Guarded<()>>> + Send;
    /// The extension count of each context, `None` when it is not loaded.
    fn contexts(
        &mut self,
        names: Vec<String>,
    ) -> impl Future<Output = R<BTreeMap<String, Option<usize>>>> + Send;
    fn endpoints(&mut self) -> impl Future<Output = R<BTreeSet<String>>> + Send;
    fn mailboxes(&mut self) -> impl Future<Output = R<Vec<(String, String)>>> + Send;
    /// Whether PJSIP shows an identify for the endpoint.
    fn identifies(&mut self, endpoint: &str) -> impl Future<Output = R<bool>> + Send;
    /// The outbound registrations PJSIP loaded.
    fn registrations(&mut self) -> impl Future<Output = R<BTreeSet<String>>> + Send;
    fn confirm(&mut self) -> impl Future<Output = R<Confirmation>> + Send;
    /// Removes old backups; how many.
    fn prune(&mut self) -> impl Future<Output = R<usize>> + Send;
    /// Which state file of the armed rollback exists now.
    fn arm_state(&mut self) -> impl Future<Output = R<ArmState>> + Send;
    /// Takes the rollback from the PBX's timer; false: the timer has it.
    fn claim_rollback(&mut self) -> impl Future<Output = R<bool>> + Send;
    fn restore(&mut self, files: &Files) -> impl Future<Output = R<usize>> + Send;
    /// Runs the rows' undo script.
    fn undo_rows(&mut self) -> impl Future<Output = R<()>> + Send;
    fn finish_rollback(&mut self, complete: bool) -> impl Future<Output = R<()>> + Send;
}

/// The state files, in the order the handshake goes through them.
const ARM_STATES: [&str; 8] = [
    "armed",
    "changing",
    "confirmed",
    "laptop-rolling-back",
    "rolling-back",
    "rolled-back",
    "rollback-failed",
    "abandoned",
];

/// The secrets a session uses, opened for it alone.
pub(crate) struct Secrets {
    pub ssh: Option<SecretString>,
    pub ami: Option<SecretString>,
    pub db: Option<SecretString>,
}

/// The real session: one SSH connection for files and commands, AMI and the realtime database
/// through tunnels (or directly, as the profile says).
pub(crate) struct SshSession {
    conn: Arc<Connection>,
    pbx: Pbx,
    secrets: Secrets,
    pinned: String,
    /// The lock's note: who, this apply's id, since when.
    owner: String,
    window: u32,
    stamp: i64,
    db_cnf: String,
    ami: Option<ami::Client>,
    rt: Option<Realtime>,
    tunnels: Vec<Tunnel>,
    access: FileAccess,
    undo: String,
    base: Option<String>,
}

/// Runs `f` with the connection on the blocking pool; a pool failure reads as an error too.
async fn on_conn<T: Send + 'static>(
    conn: &Arc<Connection>,
    f: impl FnOnce(&Connection) -> R<T> + Send + 'static,
) -> R<T> {
    let c = conn.clone();
    match blocking(move || f(&c)).await {
        Ok(r) => r,
        Err(e) => Err(e.to_string()),
    }
}

fn e<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

impl SshSession {
    /// Opens the SSH connection (pinned host key). An unreachable PBX is
    /// [`Error::Unreachable`]; the other SSH failures (login, a changed host key) say what they are.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn open(
        pbx: Pbx,
        secrets: Secrets,
        pinned: String,
        owner: String,
        window: u32,
        stamp: i64,
        db_cnf: String,
    ) -> Result<SshSession> {
        let tg = target(&pbx, secrets.ssh.clone());
        let conn = blocking({
            let pinned = pinned.clone();
            move || Connection::open(&tg, Some(&pinned))
        })
        .await?
        .map_err(|err| match err {
            SshError::Connect { .. } => Error::Unreachable(err.to_string()),
            other => Error::Conflict(other.to_string()),
        })?;
        Ok(SshSession {
            conn: Arc::new(conn),
            pbx,
            secrets,
            pinned,
            owner,
            window,
            stamp,
            db_cnf,
            ami: None,
            rt: None,
            tunnels: Vec::new(),
            access: FileAccess::default(),
            undo: String::new(),
            base: None,
        })
    }

    /// Logs off AMI and closes the database pool (the tunnels close when dropped).
    pub(crate) async fn close(mut self) {
        if let Some(c) = self.ami.take() {
            let _ = c.logoff().await;
        }
        if let Some(rt) = self.rt.take() {
            rt.close().await;
        }
    }

    fn dir(&self) -> String {
        self.pbx.config_dir.clone()
    }

    fn lock_path(&self) -> String {
        format!("{}/{}", self.pbx.config_dir, side::LOCK_DIR)
    }

    /// The AMI connection, when the apply made one.
    pub(crate) fn ami_client(&self) -> Option<&ami::Client> {
        self.ami.as_ref()
    }

    fn ami(&self) -> R<&ami::Client> {
        self.ami
            .as_ref()
            .ok_or_else(|| "AMI is not connected".into())
    }

    fn rt(&self) -> R<&Realtime> {
        self.rt
            .as_ref()
            .ok_or_else(|| "the realtime database is not connected".into())
    }

    fn base(&self) -> R<String> {
        self.base
            .clone()
            .ok_or_else(|| "the rollback is not armed".into())
    }

    /// Where AMI and the database are reached: through one tunnel (one SSH session carries
    /// both forwards), or the PBX itself, as the profile says.
    async fn reach(&mut self) -> R<(String, String)> {
        use crate::domain::Via;
        let p = &self.pbx;
        let mut remotes = Vec::new();
        for (via, port) in [(p.ami_via, p.ami_port), (p.db_via, p.db_port)] {
            if via == Via::Tunnel {
                remotes.push(port);
            }
        }
        let mut local = Vec::new();
        if !remotes.is_empty() {
            let tg = target(p, self.secrets.ssh.clone());
            let pinned = self.pinned.clone();
            let n = remotes.len();
            let t = blocking(move || {
                let to: Vec<(&str, u16)> = remotes.iter().map(|r| ("127.0.0.1", *r)).collect();
                Tunnel::open_all(&tg, Some(&pinned), &to)
            })
            .await
            .map_err(e)?
            .map_err(e)?;
            local = (0..n).map(|i| t.local_addr_of(i)).collect();
            self.tunnels.push(t);
        }
        let mut local = local.into_iter();
        let mut addr = |via, port| match via {
            Via::Direct => format!("{}:{port}", self.pbx.host),
            Via::Tunnel => local.next().unwrap_or_default(),
        };
        let ami = addr(self.pbx.ami_via, self.pbx.ami_port);
        let db = addr(self.pbx.db_via, self.pbx.db_port);
        Ok((ami, db))
    }

    /// Takes the armed rollback for one change; false: the PBX's own rollback has it.
    async fn hold(&self) -> R<bool> {
        let base = self.base()?;
        on_conn(&self.conn, move |c| side::hold(c, &base)).await
    }

    /// Hands it back; false when that failed (the PBX's script takes it over after HOLD).
    async fn release(&self) -> bool {
        let Ok(base) = self.base() else { return false };
        on_conn(&self.conn, move |c| side::release(c, &base))
            .await
            .unwrap_or(false)
    }
}

impl Session for SshSession {
    async fn earlier_rollbacks(&mut self) -> R<Vec<PbxRollback>> {
        let root = format!("{}/{}", self.dir(), side::BACKUP_DIR);
        on_conn(&self.conn, move |c| side::pbx_rollbacks(c, &root)).await
    }

    async fn forget_rollback(&mut self, note: &str) {
        let note = note.to_owned();
        let _ = on_conn(&self.conn, move |c| c.remove_file(&note).map_err(e)).await;
    }

    async fn read(&mut self, core: &[String]) -> R<PbxFiles> {
        let (dir, core) = (self.dir(), core.to_vec());
        on_conn(&self.conn, move |c| {
            Ok(PbxFiles {
                generated: side::read_generated(c, &dir)?,
                core: side::read_texts(c, &dir, &core)?,
            })
        })
        .await
    }

    async fn lock(&mut self) -> R<std::result::Result<String, Holder>> {
        let (lock, owner) = (self.lock_path(), self.owner.clone());
        on_conn(&self.conn, move |c| side::take_lock(c, &lock, &owner)).await
    }

    async fn unlock(&mut self) -> R<Option<String>> {
        let (lock, owner) = (self.lock_path(), self.owner.clone());
        on_conn(&self.conn, move |c| side::unlock(c, &lock, &owner)).await
    }

    async fn connect(&mut self, wanted: &[Device]) -> (R<()>, R<()>) {
        let (ami_addr, db_addr) = match self.reach().await {
            Ok(a) => a,
            Err(err) => return (Err(err.clone()), Err(err)),
        };
        let (ami, db) = tokio::join!(
            connect_ami(&self.pbx, self.secrets.ami.clone(), &ami_addr),
            connect_db(&self.pbx, self.secrets.db.as_ref(), &db_addr, wanted)
        );
        let ami = ami.map(|c| self.ami = Some(c));
        let db = db.map(|(rt, undo)| {
            self.rt = Some(rt);
            self.undo = undo;
        });
        (ami, db)
    }

    async fn run_group(&mut self) -> R<RunGroup> {
        // CoreSettings needs no command class; without it the files are given no group.
        let group = self.ami()?.core_settings().await.ok().and_then(|m| {
            m.get("CoreRunGroup")
                .map(str::trim)
                .filter(|g| !g.is_empty())
                .map(str::to_owned)
        });
        let Some(name) = group else {
            self.access = FileAccess { gid: None };
            return Ok(RunGroup::Root);
        };
        let g = name.clone();
        match on_conn(&self.conn, move |c| c.group_id(&g).map_err(e)).await {
            Ok(Some(gid)) => {
                self.access = FileAccess { gid: Some(gid) };
                Ok(RunGroup::Known { name })
            }
            Ok(None) | Err(_) => Ok(RunGroup::Unknown { name }),
        }
    }

    async fn transports(&mut self) -> R<Vec<(String, String)>> {
        self.ami()?.pjsip_transports().await.map_err(e)
    }

    async fn arm(&mut self, restore: &Files, modules: &[&'static str]) -> R<(usize, String)> {
        let root = format!("{}/{}", self.dir(), side::BACKUP_DIR);
        let (restore, modules) = (restore.clone(), modules.to_vec());
        let (undo, cnf, owner) = (self.undo.clone(), self.db_cnf.clone(), self.owner.clone());
        let (stamp, window) = (self.stamp, self.window);
        let armed = on_conn(&self.conn, move |c| {
            side::arm(
                c,
                &Arming {
                    root: &root,
                    stamp,
                    restore: &restore,
                    undo: &undo,
                    db_cnf: &cnf,
                    modules: &modules,
                    lock_owner: &owner,
                    window,
                },
            )
        })
        .await?;
        self.base = Some(armed.1.clone());
        Ok(armed)
    }

    async fn upload(&mut self, files: &Files) -> R<Guarded<()>> {
        // The swap holds the armed rollback in the same remote command as the renames.
        let (dir, files, access, base) = (self.dir(), files.clone(), self.access, self.base()?);
        let swapped = on_conn(&self.conn, move |c| {
            side::write_files(c, &dir, &files, Some(access), Some(&base))
        })
        .await?;
        Ok(if swapped {
            Guarded::Done(())
        } else {
            Guarded::TooLate
        })
    }

    async fn sync(
        &mut self,
        wanted: &[Device],
    ) -> std::result::Result<Guarded<String>, SyncFailure> {
        let fail = |detail: String, maybe_committed| SyncFailure {
            detail,
            maybe_committed,
        };
        if !self.hold().await.map_err(|d| fail(d, false))? {
            return Ok(Guarded::TooLate);
        }
        let synced = match self.rt() {
            Ok(rt) => sync_rows(rt, wanted, self.stamp).await,
            Err(d) => Err(fail(d, false)),
        };
        let released = self.release().await;
        let detail = synced?;
        if released {
            Ok(Guarded::Done(detail))
        } else {
            Err(fail(
                "could not hand the armed rollback back to the PBX after the sync".into(),
                true,
            ))
        }
    }

    async fn reload(&mut self, modules: &[&'static str], guarded: bool) -> R<Guarded<()>> {
        if !guarded {
            return reload_all(self.ami()?, modules).await.map(Guarded::Done);
        }
        if !self.hold().await? {
            return Ok(Guarded::TooLate);
        }
        let done = match self.ami() {
            Ok(client) => reload_all(client, modules).await,
            Err(d) => Err(d),
        };
        // Released whatever the reload did.
        let released = self.release().await;
        done?;
        if released {
            Ok(Guarded::Done(()))
        } else {
            Err("could not hand the armed rollback back to the PBX".into())
        }
    }

    async fn contexts(&mut self, names: Vec<String>) -> R<BTreeMap<String, Option<usize>>> {
        let client = self.ami()?;
        let mut out = BTreeMap::new();
        for n in names {
            let got = client.dialplan_context(&n).await.map_err(e)?;
            out.insert(n, got.map(|c| c.extensions as usize));
        }
        Ok(out)
    }

    async fn endpoints(&mut self) -> R<BTreeSet<String>> {
        let listed = self.ami()?.pjsip_endpoints().await.map_err(e)?;
        Ok(listed
            .iter()
            .filter_map(|m| m.get("ObjectName").map(str::to_owned))
            .collect())
    }

    async fn mailboxes(&mut self) -> R<Vec<(String, String)>> {
        self.ami()?.voicemail_boxes().await.map_err(e)
    }

    async fn identifies(&mut self, endpoint: &str) -> R<bool> {
        // PJSIPShowEndpoint lists an IdentifyDetail for it (s17_trunks_04).
        let detail = self
            .ami()?
            .pjsip_endpoint(endpoint)
            .await
            .map_err(e)?
            .unwrap_or_default();
        Ok(detail.iter().any(|m| {
            m.get("Event") == Some("IdentifyDetail")
                && m.get("EndpointName").or(m.get("Endpoint")) == Some(endpoint)
        }))
    }

    async fn registrations(&mut self) -> R<BTreeSet<String>> {
        // The client drops AuthDetail (it carries the password in clear, s17_trunks_02).
        let listed = self
            .ami()?
            .pjsip_registrations_outbound()
            .await
            .map_err(e)?;
        Ok(listed
            .iter()
            .filter_map(|m| m.get("ObjectName").map(str::to_owned))
            .collect())
    }

    async fn confirm(&mut self) -> R<Confirmation> {
        let base = self.base()?;
        on_conn(&self.conn, move |c| side::confirm(c, &base)).await
    }

    async fn prune(&mut self) -> R<usize> {
        let root = format!("{}/{}", self.dir(), side::BACKUP_DIR);
        on_conn(&self.conn, move |c| side::prune_backups(c, &root)).await
    }

    async fn arm_state(&mut self) -> R<ArmState> {
        let base = self.base()?;
        on_conn(&self.conn, move |c| {
            for st in ARM_STATES {
                if c.mtime(&format!("{base}/{st}")).map_err(e)?.is_some() {
                    return Ok(Some(st));
                }
            }
            Ok(None)
        })
        .await
    }

    async fn claim_rollback(&mut self) -> R<bool> {
        let base = self.base()?;
        on_conn(&self.conn, move |c| side::claim_rollback(c, &base)).await
    }

    async fn restore(&mut self, files: &Files) -> R<usize> {
        let (dir, files) = (self.dir(), files.clone());
        on_conn(&self.conn, move |c| side::restore_files(c, &dir, &files)).await
    }

    async fn undo_rows(&mut self) -> R<()> {
        self.rt()?.undo(&self.undo).await.map_err(e)
    }

    async fn finish_rollback(&mut self, complete: bool) -> R<()> {
        let base = self.base()?;
        on_conn(&self.conn, move |c| {
            side::finish_rollback(c, &base, complete)
        })
        .await
    }
}

async fn connect_ami(pbx: &Pbx, secret: Option<SecretString>, addr: &str) -> R<ami::Client> {
    let (Some(user), Some(secret)) = (pbx.ami_user.clone(), secret) else {
        return Err("no AMI user or secret in the profile".into());
    };
    let opts = ami::Options {
        connect_timeout: Duration::from_millis(u64::from(pbx.connect_timeout_ms)),
        action_timeout: Duration::from_millis(u64::from(pbx.command_timeout_ms)),
    };
    ami::Client::connect(addr, &user, &secret, false, opts)
        .await
        .map_err(e)
}

/// The realtime database, and the undo script of syncing `wanted` (read now, before anything
/// changes).
async fn connect_db(
    pbx: &Pbx,
    password: Option<&SecretString>,
    addr: &str,
    wanted: &[Device],
) -> R<(Realtime, String)> {
    let user = pbx
        .db_user
        .clone()
        .ok_or("no database user in the profile")?;
    let url = format!("mysql://{user}@{addr}/{}", pbx.db_name);
    let rt = Realtime::connect(&url, password, &format!("pbxdesk:{}", pbx.name))
        .await
        .map_err(e)?;
    match rt.undo_script(wanted).await {
        Ok(undo) => Ok((rt, undo)),
        Err(err) => {
            rt.close().await;
            Err(err.to_string())
        }
    }
}

/// Syncs the rows in one transaction and reads them back.
async fn sync_rows(
    rt: &Realtime,
    wanted: &[Device],
    now: i64,
) -> std::result::Result<String, SyncFailure> {
    // A sync that failed before its COMMIT changed nothing (the transaction is rolled back);
    // one whose COMMIT got no answer may have committed.
    let plan = rt.sync(wanted, now).await.map_err(|err| SyncFailure {
        maybe_committed: matches!(err, RealtimeError::CommitUnknown(_)),
        detail: err.to_string(),
    })?;
    match rt.plan(wanted).await {
        Ok(p) if p.is_empty() => Ok(format!(
            "{} added, {} changed, {} removed, {} unchanged; the database now holds the render",
            plan.add.len(),
            plan.change.len(),
            plan.remove.len(),
            plan.unchanged
        )),
        Ok(_) => Err(SyncFailure {
            detail: "after the sync the rows still differ from the render".into(),
            maybe_committed: true,
        }),
        Err(err) => Err(SyncFailure {
            detail: err.to_string(),
            maybe_committed: true,
        }),
    }
}

/// Reloads each module; the first failure ends it.
async fn reload_all(client: &ami::Client, modules: &[&'static str]) -> R<()> {
    for m in modules {
        reload_with_retry(client, m)
            .await
            .map_err(|err| format!("{m}: {err}"))?;
    }
    Ok(())
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
