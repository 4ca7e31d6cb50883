//! Opens a fresh workspace per test: an SQLite file in a temporary folder, or a new database
//! with a random name on the PostgreSQL of this machine (PBXDESK_TEST_PG_URL, by default
//! postgres://postgres@127.0.0.1:5432/postgres). A PostgreSQL that cannot be reached fails the
//! test: nothing is skipped.

#![allow(dead_code)]

use pbxdesk_core::service::{Clock, KeySource, Location, OpenOptions};
use pbxdesk_core::Workspace;
use secrecy::SecretString;
use sqlx::{Connection, Executor, PgConnection};
use std::path::PathBuf;

pub const T0: i64 = 1_790_000_000_000;

pub struct Harness {
    pub ws: Workspace,
    pub location: Location,
    pub key_file: PathBuf,
    pub pg_db: Option<String>,
    _dir: tempfile::TempDir,
}

pub fn pg_admin_url() -> String {
    std::env::var("PBXDESK_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// The msp_admin: the local owner on SQLite, a bootstrapped operator on PostgreSQL.
pub async fn ws_admin(ws: &Workspace) -> pbxdesk_core::Actor {
    if let Ok(a) = ws.local_owner() {
        return a;
    }
    let pw = SecretString::from("admin password 123");
    ws.operator_add(
        None,
        "admin",
        pbxdesk_core::domain::Role::MspAdmin,
        &[],
        &pw,
    )
    .await
    .expect("bootstrap");
    ws.login("admin", &pw).await.expect("login")
}

impl Harness {
    pub async fn sqlite() -> Harness {
        let dir = tempfile::tempdir().expect("temp dir");
        let location = Location::Sqlite(dir.path().join("ws.sqlite"));
        Self::open(location, dir, None).await
    }

    pub async fn postgres() -> Harness {
        let dir = tempfile::tempdir().expect("temp dir");
        let name = format!("pbxdesk_t_{:016x}", rand::random::<u64>());
        let admin = pg_admin_url();
        let mut conn = PgConnection::connect(&admin)
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL at {admin} is required for this test: {e}"));
        conn.execute(format!("CREATE DATABASE {name}").as_str())
            .await
            .expect("create test database");
        let base = admin
            .rsplit_once('/')
            .map(|(b, _)| b.to_owned())
            .expect("url with a database");
        let location = Location::Postgres(SecretString::from(format!("{base}/{name}")));
        Self::open(location, dir, Some(name)).await
    }

    async fn open(location: Location, dir: tempfile::TempDir, pg_db: Option<String>) -> Harness {
        let key_file = dir.path().join("ws.key");
        let mut opts = OpenOptions::new(location.clone(), KeySource::File(key_file.clone()));
        opts.clock = Clock::fixed(T0);
        let ws = Workspace::open(opts).await.expect("open workspace");
        Harness {
            ws,
            location,
            key_file,
            pg_db,
            _dir: dir,
        }
    }

    /// A second handle on the same workspace (another laptop, another process).
    pub async fn reopen(&self, key: KeySource) -> pbxdesk_core::Result<Workspace> {
        let mut opts = OpenOptions::new(self.location.clone(), key);
        opts.clock = self.ws.clock().clone();
        Workspace::open(opts).await
    }

    async fn raw_conn(&self) -> sqlx::AnyConnection {
        sqlx::any::install_default_drivers();
        let url = match &self.location {
            Location::Sqlite(p) => format!("sqlite://{}", p.display()),
            Location::Postgres(u) => secrecy::ExposeSecret::expose_secret(u).to_owned(),
        };
        sqlx::AnyConnection::connect(&url)
            .await
            .expect("raw connect")
    }

    /// Writes behind the workspace's back, as a database writer could (tamper tests).
    pub async fn raw_exec(&self, sql: &str, blob: Option<Vec<u8>>) {
        let mut conn = self.raw_conn().await;
        let mut q = sqlx::query(sql);
        if let Some(b) = blob {
            q = q.bind(b);
        }
        q.execute(&mut conn).await.expect("raw exec");
    }

    /// Raw SQL access for assertions on what is stored.
    pub async fn raw_blobs(&self, sql: &str) -> Vec<Vec<u8>> {
        let mut conn = self.raw_conn().await;
        let rows: Vec<Vec<u8>> = sqlx::query_scalar(sql)
            .fetch_all(&mut conn)
            .await
            .expect("raw query");
        rows
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        if let Some(name) = self.pg_db.take() {
            // Best effort: drop the test database from a fresh runtime on another thread.
            let admin = pg_admin_url();
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build();
                if let Ok(rt) = rt {
                    rt.block_on(async move {
                        if let Ok(mut c) = PgConnection::connect(&admin).await {
                            let _ = c
                                .execute(
                                    format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str(),
                                )
                                .await;
                        }
                    });
                }
            })
            .join();
        }
    }
}

/// Runs each story once on SQLite and once on PostgreSQL.
#[macro_export]
macro_rules! on_both_stores {
    ($($story:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $story() {
                    let h = $crate::harness::Harness::sqlite().await;
                    super::$story(&h).await;
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $story() {
                    let h = $crate::harness::Harness::postgres().await;
                    super::$story(&h).await;
                }
            )+
        }
    };
}
