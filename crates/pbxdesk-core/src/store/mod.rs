//! The workspace database: one schema on SQLite (a laptop's own file) or PostgreSQL (a team),
//! reached through sqlx's `Any` driver so every query is written once. Queries use `$N`
//! placeholders, which both engines accept. Each engine has its own migrations folder.

pub(crate) mod api_sessions;
pub(crate) mod api_tokens;
pub(crate) mod audit;
pub(crate) mod devices;
pub(crate) mod dids;
pub(crate) mod features;
pub(crate) mod meta;
pub(crate) mod operators;
pub(crate) mod pbxes;
pub(crate) mod pins;
pub(crate) mod policies;
pub(crate) mod renders;
pub(crate) mod ring_groups;
pub(crate) mod sealed;
pub(crate) mod self_service;
pub(crate) mod snapshot;
pub(crate) mod team_lock;
pub(crate) mod tenants;
pub(crate) mod trunks;
pub(crate) mod users;

use crate::error::{Error, Result};
use sqlx::any::AnyPoolOptions;
use sqlx::migrate::Migrator;
use sqlx::{Any, AnyPool, Executor, Transaction};
use std::path::Path;
use std::time::Duration;
use tokio::sync::{Mutex, MutexGuard};

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("../../migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("../../migrations/postgres");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// SQLite takes one writer at a time; queueing our own writers here keeps them from
    /// failing with SQLITE_BUSY against each other (other processes are covered by the
    /// busy timeout and the services' retry).
    sqlite_writer: Mutex<()>,
    /// The SQLite file, for the bulk reads that go straight to SQLite (`snapshot.rs`).
    sqlite_path: Option<std::path::PathBuf>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Store({:?})", self.backend)
    }
}

/// A write transaction; on SQLite it also holds the in-process writer slot.
pub struct WriteTx<'a> {
    pub tx: Transaction<'static, Any>,
    _writer: Option<MutexGuard<'a, ()>>,
}

impl WriteTx<'_> {
    pub async fn commit(self) -> Result<()> {
        self.tx.commit().await.map_err(db_error)
    }
}

impl Store {
    /// Opens (creating if needed) an SQLite workspace file and brings its schema up to date.
    pub async fn open_sqlite(path: &Path) -> Result<Store> {
        let text = path.to_str().ok_or_else(|| {
            Error::Store(format!(
                "the workspace path {} is not valid UTF-8",
                path.display()
            ))
        })?;
        if text.contains(['?', '#', '%']) {
            return Err(Error::Store(format!(
                "the workspace path {text} contains '?', '#' or '%', which SQLite URLs cannot carry"
            )));
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                Error::Store(format!("cannot create the folder {}: {e}", dir.display()))
            })?;
        }
        let mut store =
            Self::connect_url(&format!("sqlite://{text}?mode=rwc"), Backend::Sqlite).await?;
        store.sqlite_path = Some(path.to_owned());
        Ok(store)
    }

    /// Connects to a PostgreSQL workspace and brings its schema up to date.
    pub async fn open_postgres(url: &str) -> Result<Store> {
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(Error::Store(
                "the database URL must start with postgres:// or postgresql://".into(),
            ));
        }
        Self::connect_url(url, Backend::Postgres).await
    }

    async fn connect_url(url: &str, backend: Backend) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let mut opts = AnyPoolOptions::new().acquire_timeout(Duration::from_secs(15));
        opts = match backend {
            Backend::Sqlite => opts.max_connections(4).after_connect(|conn, _| {
                Box::pin(async move {
                    conn.execute(
                        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                         PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON;",
                    )
                    .await?;
                    Ok(())
                })
            }),
            Backend::Postgres => opts.max_connections(10),
        };
        let pool = opts.connect(url).await.map_err(|e| {
            // The URL may carry a password: never repeat it.
            Error::Store(format!(
                "cannot open the workspace database: {}",
                redact_error(&e)
            ))
        })?;
        let migrator = match backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        };
        migrator
            .run(&pool)
            .await
            .map_err(|e| Error::Store(format!("cannot migrate the workspace schema: {e}")))?;
        Ok(Store {
            pool,
            backend,
            sqlite_writer: Mutex::new(()),
            sqlite_path: None,
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// The SQLite file of an SQLite workspace.
    pub(crate) fn sqlite_path(&self) -> Option<&Path> {
        self.sqlite_path.as_deref()
    }

    pub async fn begin_write(&self) -> Result<WriteTx<'_>> {
        let writer = match self.backend {
            Backend::Sqlite => Some(self.sqlite_writer.lock().await),
            Backend::Postgres => None,
        };
        // SQLite: take the write lock at BEGIN. A deferred transaction that reads first and
        // writes later fails at once with BUSY_SNAPSHOT when another connection (the CLI beside
        // the app, a write outside this lock) committed in between; busy_timeout never helps it.
        let tx = match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => self.pool.begin().await,
        }
        .map_err(db_error)?;
        Ok(WriteTx {
            tx,
            _writer: writer,
        })
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

fn redact_error(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Configuration(_) => "the database URL is not valid".into(),
        sqlx::Error::Io(io) => format!("connection failed: {io}"),
        sqlx::Error::PoolTimedOut => "timed out connecting to the database".into(),
        sqlx::Error::Database(db) => db.message().to_owned(),
        other => other.to_string(),
    }
}

/// What a database error means for the caller.
pub enum DbFailure {
    UniqueViolation(String),
    ForeignKeyViolation,
    /// Lock contention or a serialization failure: the whole transaction may be retried.
    Retry,
    Other,
}

pub fn classify(e: &sqlx::Error) -> DbFailure {
    let sqlx::Error::Database(db) = e else {
        return DbFailure::Other;
    };
    if db.is_unique_violation() {
        // PostgreSQL names the constraint; SQLite names the columns in the message.
        let what = db
            .constraint()
            .map(str::to_owned)
            .unwrap_or_else(|| db.message().to_owned());
        return DbFailure::UniqueViolation(what);
    }
    if db.is_foreign_key_violation() {
        return DbFailure::ForeignKeyViolation;
    }
    match db.code().as_deref() {
        // SQLite BUSY, BUSY_SNAPSHOT, LOCKED; PostgreSQL serialization failure, deadlock.
        Some("5" | "517" | "6" | "40001" | "40P01") => DbFailure::Retry,
        _ => DbFailure::Other,
    }
}

/// Maps an unexpected storage error to `Error::Store`, logging the detail.
pub fn db_error(e: sqlx::Error) -> Error {
    match classify(&e) {
        DbFailure::Retry => Error::Busy,
        _ => {
            tracing::error!(error = %e, "workspace database error");
            Error::Store(redact_error(&e))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A write transaction that reads first keeps its place when another connection to the
    /// same file (the CLI beside the app) writes meanwhile: the other writer waits for it,
    /// instead of this one failing with BUSY_SNAPSHOT at its first write.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_write_transaction_survives_another_connections_write() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_sqlite(&dir.path().join("ws.sqlite"))
            .await
            .unwrap();
        sqlx::query("CREATE TABLE race (who TEXT NOT NULL)")
            .execute(store.pool())
            .await
            .unwrap();
        let mut w = store.begin_write().await.unwrap();
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM race")
            .fetch_one(&mut *w.tx)
            .await
            .unwrap();
        assert_eq!(n, 0);
        // A bare autocommit write on another connection, outside the workspace's lock.
        let other = {
            let pool = store.pool().clone();
            tokio::spawn(async move {
                sqlx::query("INSERT INTO race (who) VALUES ('other')")
                    .execute(&pool)
                    .await
                    .map(|_| ())
            })
        };
        tokio::time::sleep(Duration::from_millis(200)).await;
        sqlx::query("INSERT INTO race (who) VALUES ('mine')")
            .execute(&mut *w.tx)
            .await
            .expect("the transaction's own write after another connection's");
        w.commit().await.unwrap();
        other.await.unwrap().expect("the other write, after it");
        let who: Vec<String> = sqlx::query_scalar("SELECT who FROM race ORDER BY rowid")
            .fetch_all(store.pool())
            .await
            .unwrap();
        assert_eq!(who, ["mine", "other"]);
    }
}
