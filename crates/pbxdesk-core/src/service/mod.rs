//! The use cases: one place for every operation of the GUI and the CLI. Each public method
//! takes the acting operator, checks its rights, validates the input, and writes the change
//! and its audit entry in one transaction.

mod access;
mod api_session;
mod api_token;
mod apply;
mod apply_history;
mod audit;
mod bulk;
mod check;
mod device;
mod did;
mod features;
mod fleet;
mod live;
mod operator;
mod pbx;
mod policy;
mod render;
mod ring_group;
mod sealed;
mod self_service;
mod tenant;
mod trunk;
mod user;

pub use access::Actor;
pub use api_session::{ApiTokens, ACCESS_TTL_MS, REFRESH_TTL_MS};
pub use api_token::{LAST_USE_RESOLUTION_MS, MAX_TOKEN_DAYS};
pub use apply::{
    realtime_devices, ApplyOptions, ApplyOutcome, ApplyReport, ApplySource, ApplyStep, Progress,
    StepKind, CONFIRM_DEFAULT,
};
pub use apply_history::ApplyRecord;
pub use bulk::write_export;
pub use features::FeatureSync;
pub use fleet::{FleetLine, FleetOutcome, FleetProgress, FleetReport, FLEET_PARALLEL};
pub use pbxdesk_remote::watch::Live;
pub use policy::parse_rule;
pub use render::{masked, PbxDiff, RenderWritten, Secrets};
pub use self_service::{EndUser, END_USER_SESSION_MS, END_USER_TOKEN_PREFIX, INVITE_TTL_MS};

use crate::error::{Error, Result, ValidationError};
use crate::secret::{Cipher, Purpose, WorkspaceKey};
use crate::store::{Backend, Store};
use secrecy::SecretString;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Where the workspace lives.
#[derive(Debug, Clone)]
pub enum Location {
    /// A laptop's own workspace: an SQLite file.
    Sqlite(PathBuf),
    /// A team workspace on PostgreSQL; the URL may hold a password, so it never prints.
    Postgres(SecretString),
}

/// Where the workspace key comes from.
#[derive(Debug, Clone)]
pub enum KeySource {
    /// A 0600 file holding the key, created on first use.
    File(PathBuf),
    /// A passphrase; the key is derived with argon2id and a salt stored in the workspace.
    Passphrase(SecretString),
}

/// The clock the services read. Tests pass a fixed one (quarantine, audit times).
#[derive(Debug, Clone)]
pub enum Clock {
    System,
    Fixed(Arc<AtomicI64>),
}

impl Clock {
    pub fn fixed(ms: i64) -> Self {
        Clock::Fixed(Arc::new(AtomicI64::new(ms)))
    }

    pub fn now_ms(&self) -> i64 {
        match self {
            Clock::System => SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_millis() as i64)
                .unwrap_or_default(),
            Clock::Fixed(t) => t.load(Ordering::SeqCst),
        }
    }

    /// Moves a fixed clock forward; no effect on the system clock.
    pub fn advance(&self, by: Duration) {
        if let Clock::Fixed(t) = self {
            t.fetch_add(by.as_millis() as i64, Ordering::SeqCst);
        }
    }
}

#[derive(Debug, Clone)]
pub struct OpenOptions {
    pub location: Location,
    pub key: KeySource,
    /// How long a deleted user's extension is held back before reuse.
    pub quarantine: Duration,
    pub clock: Clock,
}

impl OpenOptions {
    pub const DEFAULT_QUARANTINE: Duration = Duration::from_secs(30 * 24 * 3600);

    pub fn new(location: Location, key: KeySource) -> Self {
        OpenOptions {
            location,
            key,
            quarantine: Self::DEFAULT_QUARANTINE,
            clock: Clock::System,
        }
    }

    /// The one rule both front ends open a workspace by: a team workspace on PostgreSQL when a
    /// database URL is given, else the SQLite file `workspace` (default: the OS data folder's);
    /// the key from the passphrase, else `key_file`, else the default key file beside the
    /// workspace (the data folder's team.key for PostgreSQL).
    pub fn choose(
        database_url: Option<SecretString>,
        workspace: Option<std::path::PathBuf>,
        key_file: Option<std::path::PathBuf>,
        passphrase: Option<SecretString>,
    ) -> Self {
        let (location, default_key) = match database_url {
            Some(url) => (
                Location::Postgres(url),
                crate::paths::default_team_key_file(),
            ),
            None => {
                let path = workspace.unwrap_or_else(crate::paths::default_workspace);
                let key = crate::paths::key_file_for(&path);
                (Location::Sqlite(path), key)
            }
        };
        let key = match (passphrase, key_file) {
            (Some(p), _) => KeySource::Passphrase(p),
            (None, Some(f)) => KeySource::File(f),
            (None, None) => KeySource::File(default_key),
        };
        OpenOptions::new(location, key)
    }

    /// The workspace as people are shown it (never the database URL: it may hold a password).
    pub fn label(&self) -> String {
        match &self.location {
            Location::Postgres(_) => "team workspace (PostgreSQL)".to_owned(),
            Location::Sqlite(path) => path.display().to_string(),
        }
    }
}

/// An open workspace: the store, the key, the clock. A clone is the same workspace (what a
/// PBX watcher keeps to record what phones change).
#[derive(Debug, Clone)]
pub struct Workspace(Arc<WorkspaceInner>);

#[derive(Debug)]
pub struct WorkspaceInner {
    store: Store,
    cipher: Cipher,
    clock: Clock,
    quarantine: Duration,
    /// The AMI connection of each PBX watched now, by PBX id: a change of a user's features
    /// goes out over it at once.
    live: std::sync::Mutex<std::collections::HashMap<i64, pbxdesk_remote::ami::Client>>,
    /// The watchers running now, one per PBX, shared by every view of it (`live.rs`).
    watchers: live::Watchers,
}

impl std::ops::Deref for Workspace {
    type Target = WorkspaceInner;
    fn deref(&self) -> &WorkspaceInner {
        &self.0
    }
}

const KEY_CHECK: &str = "pbxdesk workspace key check";
/// How often a write is tried again after lock contention or a lost allocation race.
const WRITE_ATTEMPTS: u32 = 40;

impl Workspace {
    pub async fn open(opts: OpenOptions) -> Result<Workspace> {
        let store = match &opts.location {
            Location::Sqlite(path) => Store::open_sqlite(path).await?,
            Location::Postgres(url) => {
                use secrecy::ExposeSecret;
                Store::open_postgres(url.expose_secret()).await?
            }
        };
        let key = match &opts.key {
            KeySource::File(path) => WorkspaceKey::load_or_create_file(path)?,
            KeySource::Passphrase(p) => {
                let salt = meta_get_or_init(&store, "kdf_salt", || {
                    hex::encode(crate::secret::random_bytes::<16>())
                })
                .await?;
                let salt = hex::decode(salt)
                    .map_err(|_| Error::Key("the workspace's key salt is damaged".into()))?;
                WorkspaceKey::from_passphrase(p, &salt)?
            }
        };
        let cipher = Cipher::new(&key);
        // A canary sealed under the key on first open: a wrong key or passphrase is caught
        // here, before any secret is written under it.
        let canary = hex::encode(cipher.seal(Purpose::KeyCheck, KEY_CHECK)?);
        let stored = meta_get_or_init(&store, "key_check", || canary).await?;
        let ok = hex::decode(stored)
            .ok()
            .and_then(|b| cipher.open(Purpose::KeyCheck, &b).ok())
            .is_some();
        if !ok {
            return Err(Error::Key(
                "this workspace was created with another key: give the right key file \
                 (--key-file) or passphrase (PBXDESK_PASSPHRASE)"
                    .into(),
            ));
        }
        sealed::bind_all_once(&store, &cipher).await?;
        Ok(Workspace(Arc::new(WorkspaceInner {
            store,
            cipher,
            clock: opts.clock,
            quarantine: opts.quarantine,
            live: std::sync::Mutex::new(std::collections::HashMap::new()),
            watchers: live::Watchers::default(),
        })))
    }

    pub fn backend(&self) -> Backend {
        self.store.backend()
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    pub async fn close(&self) {
        self.store.close().await;
    }

    fn now(&self) -> i64 {
        self.clock.now_ms()
    }

    fn live_clients(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<i64, pbxdesk_remote::ami::Client>>
    {
        // A panic while holding it leaves a map that is still whole.
        self.live
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

async fn meta_get_or_init(
    store: &Store,
    key: &str,
    init: impl FnOnce() -> String,
) -> Result<String> {
    // Read first: every open of a workspace passes here, and a write would cost a commit.
    if let Some(v) = crate::store::meta::get(store.pool(), key).await? {
        return Ok(v);
    }
    let value = init();
    let mut w = store.begin_write().await?;
    crate::store::meta::put_if_absent(&mut *w.tx, key, &value).await?;
    let stored = crate::store::meta::get(&mut *w.tx, key)
        .await?
        .ok_or_else(|| Error::Store(format!("workspace_meta lost {key}")))?;
    w.commit().await?;
    Ok(stored)
}

/// Runs a write again when it lost to another writer (lock contention, a lost allocation
/// race); every attempt is a whole transaction, so a retry never sees half of an earlier one.
async fn retry_busy<T, F, Fut>(mut attempt: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let mut n = 0;
    loop {
        match attempt().await {
            Err(Error::Busy) if n + 1 < WRITE_ATTEMPTS => {
                n += 1;
                let jitter: u64 = rand::Rng::gen_range(&mut rand::thread_rng(), 0..5);
                tokio::time::sleep(Duration::from_millis(u64::from(n.min(10)) * 2 + jitter)).await;
            }
            other => return other,
        }
    }
}

/// A TCP port from input: 0 is refused.
pub(crate) fn port(field: &str, p: Option<u16>) -> Result<Option<u16>, ValidationError> {
    match p {
        Some(0) => Err(ValidationError::new(
            field,
            "0",
            "a TCP port from 1 to 65535",
        )),
        other => Ok(other),
    }
}

/// Empty clears; anything else must pass `parse`.
pub(crate) fn clearable<T>(
    v: Option<&str>,
    parse: impl Fn(&str) -> Result<T, ValidationError>,
) -> Result<Option<Option<T>>, ValidationError> {
    match v {
        None => Ok(None),
        Some(s) if s.trim().is_empty() => Ok(Some(None)),
        Some(s) => parse(s).map(|t| Some(Some(t))),
    }
}
