//! What the renderer reads of one PBX: its tenants, their live users and the devices, as rows.

use super::db_error;
use crate::error::Result;
use sqlx::AnyConnection;

#[derive(Debug, sqlx::FromRow)]
pub(crate) struct SnapshotTenant {
    pub id: i64,
    pub slug: String,
    pub name: String,
    pub country: String,
    pub status: String,
    pub unknown_did: String,
    pub caller_id: Option<String>,
    pub default_policy: Option<String>,
}

#[derive(Debug, sqlx::FromRow)]
pub(crate) struct SnapshotUser {
    pub id: i64,
    pub tenant_id: i64,
    pub extension: i64,
    pub display_name: String,
    pub email: String,
    pub status: String,
    pub voicemail_enabled: i64,
    /// Sealed.
    pub voicemail_pin: Option<Vec<u8>>,
    pub outbound_caller_id: Option<String>,
    pub ring_seconds: i64,
    pub policy: Option<String>,
}

#[derive(Debug, sqlx::FromRow)]
pub(crate) struct SnapshotDevice {
    pub id: i64,
    pub user_id: i64,
    pub sip_username: String,
    /// Sealed.
    pub sip_password: Vec<u8>,
    pub transport: String,
    pub codecs: String,
    pub nat: i64,
}

#[derive(Debug, sqlx::FromRow)]
pub(crate) struct SnapshotDid {
    pub tenant_id: i64,
    pub number: String,
    pub label: String,
    pub destination: String,
    pub trunk: Option<String>,
}

/// A policy with one of its rules (none for a policy without rules), in rule order.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct SnapshotPolicyRule {
    pub policy_id: i64,
    pub tenant_id: i64,
    pub name: String,
    pub pattern: Option<String>,
    pub allow: Option<i64>,
    pub strip: Option<i64>,
    pub prepend: Option<String>,
    pub trunks: Option<String>,
}

#[derive(Debug, sqlx::FromRow)]
pub(crate) struct SnapshotTrunkSecret {
    pub id: i64,
    /// Sealed.
    pub password: Option<Vec<u8>>,
}

/// What the renderer reads of one PBX, as rows, but for its users and devices: those go to a
/// [`PeopleSink`] one row at a time (100,000 of each at the seed's maximum: held as rows, they
/// cost ~63 MB beside the snapshot made of them).
#[derive(Debug)]
pub(crate) struct SnapshotRows {
    pub tenants: Vec<SnapshotTenant>,
    pub dids: Vec<SnapshotDid>,
    pub policies: Vec<SnapshotPolicyRule>,
    pub trunk_secrets: Vec<SnapshotTrunkSecret>,
}

/// Takes a PBX's devices, then its live users, one row at a time, as they are read.
pub(crate) trait PeopleSink {
    fn device(&mut self, d: SnapshotDevice) -> Result<()>;
    fn user(&mut self, u: SnapshotUser) -> Result<()>;
}

// The six queries, written once for both paths ($1 is the PBX id; SQLite reads `$1` as the
// first parameter too).
const TENANTS: &str =
    "SELECT id, slug, name, country, status, unknown_did, caller_id, default_policy \
     FROM tenants WHERE pbx_id = $1";
const USERS: &str = "SELECT u.id AS id, u.tenant_id AS tenant_id, u.extension AS extension, \
     u.display_name AS display_name, u.email AS email, u.status AS status, \
     CAST(u.voicemail_enabled AS INTEGER) AS voicemail_enabled, u.voicemail_pin AS voicemail_pin, \
     u.outbound_caller_id AS outbound_caller_id, u.ring_seconds AS ring_seconds, u.policy AS policy \
     FROM users u JOIN tenants t ON t.id = u.tenant_id WHERE t.pbx_id = $1 AND u.status <> 'deleted'";
const DEVICES: &str = "SELECT id, user_id, sip_username, sip_password, transport, codecs, \
     CAST(nat AS INTEGER) AS nat FROM devices WHERE pbx_id = $1";
const DIDS: &str =
    "SELECT tenant_id, number, label, destination, trunk FROM dids WHERE pbx_id = $1";
const POLICIES: &str = "SELECT p.id AS policy_id, p.tenant_id AS tenant_id, p.name AS name, \
     r.pattern AS pattern, CAST(r.allow AS INTEGER) AS allow, r.strip AS strip, \
     r.prepend AS prepend, r.trunks AS trunks \
     FROM policies p JOIN tenants t ON t.id = p.tenant_id \
     LEFT JOIN policy_rules r ON r.policy_id = p.id \
     WHERE t.pbx_id = $1 ORDER BY p.id, r.position";
const TRUNK_SECRETS: &str = "SELECT id, password FROM trunks WHERE pbx_id = $1";

/// One PBX's tenants, DIDs, policies with their rules and the trunks' sealed passwords, and
/// its devices and live users into `people`, in one connection (six queries, none per row),
/// through sqlx.
pub(crate) async fn load(
    conn: &mut AnyConnection,
    pbx_id: i64,
    people: &mut impl PeopleSink,
) -> Result<SnapshotRows> {
    async fn all<T>(conn: &mut AnyConnection, sql: &str, pbx_id: i64) -> Result<Vec<T>>
    where
        T: for<'r> sqlx::FromRow<'r, sqlx::any::AnyRow> + Send + Unpin,
    {
        sqlx::query_as(sql)
            .bind(pbx_id)
            .fetch_all(&mut *conn)
            .await
            .map_err(db_error)
    }
    let tenants = all(conn, TENANTS, pbx_id).await?;
    for d in all(conn, DEVICES, pbx_id).await? {
        people.device(d)?;
    }
    for u in all(conn, USERS, pbx_id).await? {
        people.user(u)?;
    }
    Ok(SnapshotRows {
        tenants,
        dids: all(conn, DIDS, pbx_id).await?,
        policies: all(conn, POLICIES, pbx_id).await?,
        trunk_secrets: all(conn, TRUNK_SECRETS, pbx_id).await?,
    })
}

/// Rows handed from the reading thread to the building one, a thousand at a time.
enum Batch {
    Devices(Vec<SnapshotDevice>),
    Users(Vec<SnapshotUser>),
}

const BATCH: usize = 1024;

struct Batcher<T> {
    rows: Vec<T>,
    wrap: fn(Vec<T>) -> Batch,
}

impl<T> Batcher<T> {
    fn new(wrap: fn(Vec<T>) -> Batch) -> Self {
        Batcher {
            rows: Vec::with_capacity(BATCH),
            wrap,
        }
    }

    fn push(&mut self, row: T, to: &std::sync::mpsc::SyncSender<Batch>) -> Result<()> {
        self.rows.push(row);
        if self.rows.len() == BATCH {
            self.flush(to)?;
        }
        Ok(())
    }

    fn flush(&mut self, to: &std::sync::mpsc::SyncSender<Batch>) -> Result<()> {
        let rows = std::mem::replace(&mut self.rows, Vec::with_capacity(BATCH));
        // The builder stopped (its sink refused a row): it says why.
        to.send((self.wrap)(rows))
            .map_err(|_| crate::error::Error::Store("the render's reader stopped".into()))
    }
}

/// The same rows straight from an SQLite workspace file, on a read-only connection of their
/// own, in one read transaction (one consistent state of the file). Blocking: run it off the
/// async threads. SQLite's reading and the building of the snapshot overlap: the rows are read
/// on a thread of their own and handed over in batches. sqlx hands every row over from its
/// worker thread and its `Any` driver converts each value: for the ~200,000 rows of a 100 ×
/// 999 PBX that cost ~1.3 s.
pub(crate) fn load_sqlite(
    path: &std::path::Path,
    pbx_id: i64,
    people: &mut impl PeopleSink,
) -> Result<SnapshotRows> {
    std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Batch>(8);
        let reader = scope.spawn(move || read_sqlite(path, pbx_id, &tx));
        let mut built = Ok(());
        for batch in rx {
            built = match batch {
                Batch::Devices(rows) => rows.into_iter().try_for_each(|d| people.device(d)),
                Batch::Users(rows) => rows.into_iter().try_for_each(|u| people.user(u)),
            };
            if built.is_err() {
                break; // drops the receiver: the reader's next hand-over fails and it ends
            }
        }
        let read = reader.join().unwrap_or_else(|_| {
            Err(crate::error::Error::Store(
                "the render's reader failed".into(),
            ))
        });
        built?;
        read
    })
}

fn read_sqlite(
    path: &std::path::Path,
    pbx_id: i64,
    people: &std::sync::mpsc::SyncSender<Batch>,
) -> Result<SnapshotRows> {
    use rusqlite::{Connection, OpenFlags};
    let failed = |e: rusqlite::Error| {
        tracing::error!(error = %e, "reading the workspace for a render");
        crate::error::Error::Store(format!("cannot read the workspace: {e}"))
    };
    let mut conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(failed)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))
        .map_err(failed)?;
    let tx = conn.transaction().map_err(failed)?;
    fn all<T>(
        tx: &rusqlite::Transaction<'_>,
        sql: &str,
        pbx_id: i64,
        row: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<Vec<T>> {
        let mut stmt = tx.prepare(sql)?;
        let rows = stmt.query_map([pbx_id], row)?;
        rows.collect()
    }
    /// Each row to `take` as it is read; its error (a damaged row) ends the read.
    fn each<T>(
        tx: &rusqlite::Transaction<'_>,
        sql: &str,
        pbx_id: i64,
        row: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
        mut take: impl FnMut(T) -> Result<()>,
    ) -> Result<std::result::Result<(), rusqlite::Error>> {
        let mut stmt = match tx.prepare(sql) {
            Ok(s) => s,
            Err(e) => return Ok(Err(e)),
        };
        let rows = match stmt.query_map([pbx_id], row) {
            Ok(r) => r,
            Err(e) => return Ok(Err(e)),
        };
        for r in rows {
            match r {
                Ok(r) => take(r)?,
                Err(e) => return Ok(Err(e)),
            }
        }
        Ok(Ok(()))
    }
    let (mut devices, mut users) = (Batcher::new(Batch::Devices), Batcher::new(Batch::Users));
    each(
        &tx,
        DEVICES,
        pbx_id,
        |r| {
            Ok(SnapshotDevice {
                id: r.get(0)?,
                user_id: r.get(1)?,
                sip_username: r.get(2)?,
                sip_password: r.get(3)?,
                transport: r.get(4)?,
                codecs: r.get(5)?,
                nat: r.get(6)?,
            })
        },
        |d| devices.push(d, people),
    )?
    .map_err(failed)?;
    devices.flush(people)?;
    each(
        &tx,
        USERS,
        pbx_id,
        |r| {
            Ok(SnapshotUser {
                id: r.get(0)?,
                tenant_id: r.get(1)?,
                extension: r.get(2)?,
                display_name: r.get(3)?,
                email: r.get(4)?,
                status: r.get(5)?,
                voicemail_enabled: r.get(6)?,
                voicemail_pin: r.get(7)?,
                outbound_caller_id: r.get(8)?,
                ring_seconds: r.get(9)?,
                policy: r.get(10)?,
            })
        },
        |u| users.push(u, people),
    )?
    .map_err(failed)?;
    users.flush(people)?;
    let rows = (|| -> rusqlite::Result<SnapshotRows> {
        Ok(SnapshotRows {
            tenants: all(&tx, TENANTS, pbx_id, |r| {
                Ok(SnapshotTenant {
                    id: r.get(0)?,
                    slug: r.get(1)?,
                    name: r.get(2)?,
                    country: r.get(3)?,
                    status: r.get(4)?,
                    unknown_did: r.get(5)?,
                    caller_id: r.get(6)?,
                    default_policy: r.get(7)?,
                })
            })?,
            dids: all(&tx, DIDS, pbx_id, |r| {
                Ok(SnapshotDid {
                    tenant_id: r.get(0)?,
                    number: r.get(1)?,
                    label: r.get(2)?,
                    destination: r.get(3)?,
                    trunk: r.get(4)?,
                })
            })?,
            policies: all(&tx, POLICIES, pbx_id, |r| {
                Ok(SnapshotPolicyRule {
                    policy_id: r.get(0)?,
                    tenant_id: r.get(1)?,
                    name: r.get(2)?,
                    pattern: r.get(3)?,
                    allow: r.get(4)?,
                    strip: r.get(5)?,
                    prepend: r.get(6)?,
                    trunks: r.get(7)?,
                })
            })?,
            trunk_secrets: all(&tx, TRUNK_SECRETS, pbx_id, |r| {
                Ok(SnapshotTrunkSecret {
                    id: r.get(0)?,
                    password: r.get(1)?,
                })
            })?,
        })
    })()
    .map_err(failed)?;
    tx.finish().map_err(failed)?;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::{PeopleSink, SnapshotDevice, SnapshotUser};
    use crate::error::{Error, Result};

    #[derive(Debug, Default)]
    struct Kept {
        devices: Vec<SnapshotDevice>,
        users: Vec<SnapshotUser>,
    }

    impl PeopleSink for Kept {
        fn device(&mut self, d: SnapshotDevice) -> Result<()> {
            self.devices.push(d);
            Ok(())
        }
        fn user(&mut self, u: SnapshotUser) -> Result<()> {
            self.users.push(u);
            Ok(())
        }
    }

    struct Refusing;

    impl PeopleSink for Refusing {
        fn device(&mut self, _: SnapshotDevice) -> Result<()> {
            Err(Error::Store("refused".into()))
        }
        fn user(&mut self, _: SnapshotUser) -> Result<()> {
            Ok(())
        }
    }

    /// Both paths read the same rows from one workspace: the demo's tenants, users (with a
    /// PIN), devices, DIDs, policies with and without rules, and a trunk with a password.
    #[tokio::test]
    async fn sqlx_and_sqlite_read_the_same_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ws.sqlite");
        let ws = crate::Workspace::open(crate::OpenOptions::new(
            crate::Location::Sqlite(path.clone()),
            crate::KeySource::File(dir.path().join("ws.key")),
        ))
        .await
        .unwrap();
        let me = ws.local_owner().unwrap();
        crate::demo::seed(&ws, &me).await.unwrap();
        let pbx = ws.pbx_by_name("demo-pbx").await.unwrap();
        let store = super::super::Store::open_sqlite(&path).await.unwrap();
        let mut conn = store.pool().acquire().await.unwrap();
        let mut sqlx_people = Kept::default();
        let through_sqlx = super::load(&mut conn, pbx.id, &mut sqlx_people)
            .await
            .unwrap();
        let mut people = Kept::default();
        let direct = super::load_sqlite(&path, pbx.id, &mut people).unwrap();
        assert!(!people.users.is_empty() && !people.devices.is_empty());
        assert!(people.users.iter().any(|u| u.voicemail_pin.is_some()));
        assert!(!direct.dids.is_empty() && !direct.policies.is_empty());
        assert!(direct.trunk_secrets.iter().any(|t| t.password.is_some()));
        assert_eq!(format!("{through_sqlx:?}"), format!("{direct:?}"));
        assert_eq!(format!("{sqlx_people:?}"), format!("{people:?}"));
        // A sink's error ends the read with it.
        let e = super::load_sqlite(&path, pbx.id, &mut Refusing).unwrap_err();
        assert!(e.to_string().contains("refused"), "{e}");
    }
}
