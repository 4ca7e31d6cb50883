//! PJSIP Realtime rows in the PBX's MariaDB (ps_endpoints, ps_auths, ps_aors).
//!
//! - Only rows pbxdesk owns are ever touched. Ownership is kept on the PBX itself, in
//!   `pbxdesk_owned_endpoints`, so every laptop of a team sees the same record and a
//!   hand-made endpoint on the same PBX is never changed or removed. A wanted id that exists
//!   but is not owned stops the sync before anything is written.
//! - A sync computes the difference first (add, change, remove), then applies it in one
//!   transaction: a device's endpoint, auth and aor appear and disappear together, so no
//!   half-built endpoint is ever live. Removing a device also deletes its registrations
//!   (ps_contacts), so Asterisk stops calling a dead contact.
//! - Auth can be `md5` with `md5_cred` = md5("username:realm:password") (realm "asterisk" by
//!   default), so the PBX's database need not hold the SIP password in clear.

use md5::{Digest, Md5};
use secrecy::{ExposeSecret, SecretString};
use sqlx::mysql::{MySqlConnectOptions, MySqlPool, MySqlPoolOptions};
use sqlx::{Executor, MySql, QueryBuilder, Row};
use std::collections::BTreeMap;
use std::str::FromStr;
use std::time::Duration;

/// The DDL of the realtime tables as Asterisk 22 creates them (for test databases and PBXs
/// set up by hand).
pub const ASTERISK22_SCHEMA: &str = include_str!("../sql/asterisk22_realtime.sql");

const OWNED_TABLE: &str = "CREATE TABLE IF NOT EXISTS pbxdesk_owned_endpoints (\
    id VARCHAR(255) NOT NULL PRIMARY KEY, \
    owner VARCHAR(80) NOT NULL, \
    updated_at BIGINT NOT NULL\
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4";

#[derive(Debug, thiserror::Error)]
pub enum RealtimeError {
    #[error("cannot reach the realtime database: {0}")]
    Connect(String),
    #[error("the realtime database lacks table {0}: is this Asterisk's PJSIP realtime schema?")]
    MissingTable(String),
    #[error("endpoint {0:?} exists on the PBX but was not made by pbxdesk; it is left alone and the sync was stopped (rename the device or remove the hand-made endpoint)")]
    NotOwned(String),
    #[error("invalid realtime value for {field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error("realtime database error: {0}")]
    Db(String),
    /// The COMMIT itself failed (the link dropped during it): the transaction may or may not
    /// have been committed.
    #[error("the realtime database's answer to COMMIT was lost ({0}): the rows may or may not have changed")]
    CommitUnknown(String),
}

fn db(e: sqlx::Error) -> RealtimeError {
    match e {
        sqlx::Error::Database(d) => RealtimeError::Db(d.message().to_owned()),
        other => RealtimeError::Db(other.to_string()),
    }
}

/// How a device authenticates.
#[derive(Clone)]
pub enum Credential {
    /// The password is stored in ps_auths.password.
    UserPass(SecretString),
    /// Only md5("username:realm:password") is stored.
    Md5 {
        realm: String,
        password: SecretString,
    },
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credential::UserPass(_) => f.write_str("UserPass(***)"),
            Credential::Md5 { realm, .. } => write!(f, "Md5 {{ realm: {realm:?}, .. }}"),
        }
    }
}

/// A string as a MariaDB hex literal in utf8mb4: no byte of it can end the literal.
fn hex_literal(s: &str) -> String {
    format!("_utf8mb4 X'{}'", hex::encode(s.as_bytes()))
}

/// md5("username:realm:password") in lowercase hex, as Asterisk's md5_cred expects.
pub fn md5_cred(username: &str, realm: &str, password: &str) -> String {
    hex::encode(Md5::digest(format!("{username}:{realm}:{password}")))
}

/// One device as PJSIP Realtime rows: endpoint, auth and aor share the id.
#[derive(Debug, Clone)]
pub struct Device {
    pub id: String,
    pub username: String,
    pub credential: Credential,
    pub context: String,
    pub transport: Option<String>,
    /// Codecs in preference order, e.g. "opus,g722,ulaw".
    pub allow: String,
    /// `"Name" <1000>`, already encoded by the renderer.
    pub callerid: String,
    pub mailboxes: Option<String>,
    /// force_rport, rewrite_contact and rtp_symmetric.
    pub nat: bool,
    /// `VAR=value` set on the device's channels (pbxdesk: `PBXDESK_EXT=100`).
    pub set_var: Option<String>,
    pub max_contacts: u32,
}

type Columns = BTreeMap<&'static str, Option<String>>;

fn yes_no(b: bool) -> Option<String> {
    Some(if b { "yes" } else { "no" }.to_owned())
}

impl Device {
    fn check(&self) -> Result<(), RealtimeError> {
        let ok_id = !self.id.is_empty()
            && self.id.len() <= 40
            && self
                .id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if !ok_id {
            return Err(RealtimeError::Invalid {
                field: "id",
                reason: format!("{:?} is not a safe endpoint id", self.id),
            });
        }
        for (field, v) in [
            ("context", &self.context),
            ("allow", &self.allow),
            ("callerid", &self.callerid),
            ("set_var", self.set_var.as_ref().unwrap_or(&String::new())),
        ] {
            if v.contains(['\r', '\n', '\0']) {
                return Err(RealtimeError::Invalid {
                    field,
                    reason: "control characters".into(),
                });
            }
        }
        Ok(())
    }

    fn endpoint(&self) -> Columns {
        let mut c = Columns::new();
        c.insert("transport", self.transport.clone());
        c.insert("aors", Some(self.id.clone()));
        c.insert("auth", Some(self.id.clone()));
        c.insert("context", Some(self.context.clone()));
        c.insert("disallow", Some("all".into()));
        c.insert("allow", Some(self.allow.clone()));
        c.insert("direct_media", yes_no(false));
        c.insert("force_rport", yes_no(self.nat));
        c.insert("rewrite_contact", yes_no(self.nat));
        c.insert("rtp_symmetric", yes_no(self.nat));
        c.insert("callerid", Some(self.callerid.clone()));
        c.insert("mailboxes", self.mailboxes.clone());
        c.insert("set_var", self.set_var.clone());
        c
    }

    fn auth(&self) -> Columns {
        let mut c = Columns::new();
        c.insert("username", Some(self.username.clone()));
        match &self.credential {
            Credential::UserPass(p) => {
                c.insert("auth_type", Some("userpass".into()));
                c.insert("password", Some(p.expose_secret().to_owned()));
                c.insert("md5_cred", None);
                c.insert("realm", None);
            }
            Credential::Md5 { realm, password } => {
                c.insert("auth_type", Some("md5".into()));
                c.insert("password", None);
                c.insert(
                    "md5_cred",
                    Some(md5_cred(&self.username, realm, password.expose_secret())),
                );
                c.insert("realm", Some(realm.clone()));
            }
        }
        c
    }

    fn aor(&self) -> Columns {
        let mut c = Columns::new();
        c.insert("max_contacts", Some(self.max_contacts.to_string()));
        c.insert("remove_existing", yes_no(true));
        c.insert("qualify_frequency", Some("0".into()));
        c
    }
}

const TABLES: [&str; 3] = ["ps_endpoints", "ps_auths", "ps_aors"];

fn wanted_columns(d: &Device, table: &str) -> Columns {
    match table {
        "ps_endpoints" => d.endpoint(),
        "ps_auths" => d.auth(),
        _ => d.aor(),
    }
}

/// What a sync will do (secrets are never part of it: a change says which ids, not values).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub add: Vec<String>,
    pub change: Vec<String>,
    pub remove: Vec<String>,
    pub unchanged: usize,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.add.is_empty() && self.change.is_empty() && self.remove.is_empty()
    }
}

pub struct Realtime {
    pool: MySqlPool,
    owner: String,
}

impl Realtime {
    /// Connects to the realtime database (`mysql://user@host:port/db`, password apart).
    pub async fn connect(
        url: &str,
        password: Option<&SecretString>,
        owner: &str,
    ) -> Result<Realtime, RealtimeError> {
        let mut opts = MySqlConnectOptions::from_str(url)
            .map_err(|_| RealtimeError::Connect("the database URL is not valid".into()))?;
        if let Some(p) = password {
            opts = opts.password(p.expose_secret());
        }
        // Statements on this database carry secrets as text (the undo script holds the old SIP
        // passwords as hex literals): sqlx logs statement text at DEBUG, and slow ones at
        // WARN, so statement logging is off for this pool, at every level.
        opts = sqlx::ConnectOptions::log_statements(opts, log::LevelFilter::Off);
        opts = sqlx::ConnectOptions::log_slow_statements(
            opts,
            log::LevelFilter::Off,
            Duration::from_secs(3600),
        );
        let pool = MySqlPoolOptions::new()
            .max_connections(2)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(opts)
            .await
            .map_err(|e| {
                RealtimeError::Connect(match e {
                    sqlx::Error::Database(d) => d.message().to_owned(),
                    other => other.to_string(),
                })
            })?;
        Ok(Realtime {
            pool,
            owner: owner.to_owned(),
        })
    }

    /// The realtime schema's alembic version, checked before using newer columns.
    pub async fn schema_version(&self) -> Result<Option<String>, RealtimeError> {
        for t in TABLES {
            let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = ?")
                .bind(t)
                .fetch_one(&self.pool)
                .await
                .map_err(db)?;
            if n == 0 {
                return Err(RealtimeError::MissingTable(t.to_owned()));
            }
        }
        sqlx::query_scalar("SELECT version_num FROM alembic_version LIMIT 1")
            .fetch_optional(&self.pool)
            .await
            .map_err(db)
    }

    async fn current(&self) -> Result<BTreeMap<String, [Columns; 3]>, RealtimeError> {
        self.pool.execute(OWNED_TABLE).await.map_err(db)?;
        let owned: Vec<String> = sqlx::query_scalar("SELECT id FROM pbxdesk_owned_endpoints")
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        let mut out: BTreeMap<String, [Columns; 3]> = owned
            .into_iter()
            .map(|id| (id, Default::default()))
            .collect();
        let sample = Device {
            id: "x".into(),
            username: String::new(),
            credential: Credential::UserPass(SecretString::from(String::new())),
            context: String::new(),
            transport: None,
            allow: String::new(),
            callerid: String::new(),
            mailboxes: None,
            nat: false,
            max_contacts: 0,
            set_var: None,
        };
        for (i, table) in TABLES.iter().enumerate() {
            let cols: Vec<&str> = wanted_columns(&sample, table).keys().copied().collect();
            let list: Vec<String> = cols
                .iter()
                .map(|c| format!("CAST(t.`{c}` AS CHAR)"))
                .collect();
            let sql = format!(
                "SELECT t.id, {} FROM {table} t JOIN pbxdesk_owned_endpoints o ON o.id = t.id",
                list.join(", ")
            );
            let rows = sqlx::query(&sql).fetch_all(&self.pool).await.map_err(db)?;
            for row in rows {
                let id: String = row.try_get(0).map_err(db)?;
                let mut c = Columns::new();
                for (j, name) in cols.iter().enumerate() {
                    c.insert(name, row.try_get::<Option<String>, _>(j + 1).map_err(db)?);
                }
                if let Some(entry) = out.get_mut(&id) {
                    entry[i] = c;
                }
            }
        }
        Ok(out)
    }

    /// What `sync` would do; writes nothing (but creates the ownership table if missing).
    pub async fn plan(&self, wanted: &[Device]) -> Result<Plan, RealtimeError> {
        Ok(self.plan_with(wanted, &self.current().await?))
    }

    fn plan_with(&self, wanted: &[Device], current: &BTreeMap<String, [Columns; 3]>) -> Plan {
        let mut plan = Plan::default();
        let wanted_ids: std::collections::BTreeSet<&str> =
            wanted.iter().map(|d| d.id.as_str()).collect();
        for d in wanted {
            match current.get(&d.id) {
                None => plan.add.push(d.id.clone()),
                Some(cur) => {
                    let same = TABLES.iter().enumerate().all(|(i, t)| {
                        let want = wanted_columns(d, t);
                        want.iter()
                            .all(|(k, v)| cur[i].get(k).cloned().flatten() == *v)
                    });
                    if same {
                        plan.unchanged += 1;
                    } else {
                        plan.change.push(d.id.clone());
                    }
                }
            }
        }
        plan.remove = current
            .keys()
            .filter(|id| !wanted_ids.contains(id.as_str()))
            .cloned()
            .collect();
        plan
    }

    /// Brings the owned rows to exactly `wanted`, in one transaction; returns what it did.
    pub async fn sync(&self, wanted: &[Device], now_ms: i64) -> Result<Plan, RealtimeError> {
        for d in wanted {
            d.check()?;
        }
        let current = self.current().await?;
        let plan = self.plan_with(wanted, &current);
        if plan.is_empty() {
            return Ok(plan);
        }
        let mut tx = self.pool.begin().await.map_err(db)?;
        // Refuse to take over hand-made endpoints: an added id must not exist in any table.
        for chunk in plan.add.chunks(500) {
            for table in TABLES {
                let mut q =
                    QueryBuilder::<MySql>::new(format!("SELECT id FROM {table} WHERE id IN ("));
                let mut sep = q.separated(", ");
                for id in chunk {
                    sep.push_bind(id);
                }
                q.push(") LIMIT 1");
                let taken: Option<String> = q
                    .build_query_scalar()
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(db)?;
                if let Some(id) = taken {
                    return Err(RealtimeError::NotOwned(id));
                }
            }
        }
        let gone: Vec<&String> = plan.remove.iter().chain(plan.change.iter()).collect();
        for chunk in gone.chunks(500) {
            for table in TABLES.iter().chain(["ps_contacts"].iter()) {
                let col = if *table == "ps_contacts" {
                    "endpoint"
                } else {
                    "id"
                };
                // A changed device keeps its registrations; only removed ones lose them.
                let ids: Vec<&&String> = if *table == "ps_contacts" {
                    chunk.iter().filter(|id| plan.remove.contains(id)).collect()
                } else {
                    chunk.iter().collect()
                };
                if ids.is_empty() {
                    continue;
                }
                let mut q =
                    QueryBuilder::<MySql>::new(format!("DELETE FROM {table} WHERE {col} IN ("));
                let mut sep = q.separated(", ");
                for id in ids {
                    sep.push_bind(id.as_str());
                }
                q.push(")");
                q.build().execute(&mut *tx).await.map_err(db)?;
            }
        }
        for chunk in plan.remove.chunks(500) {
            let mut q =
                QueryBuilder::<MySql>::new("DELETE FROM pbxdesk_owned_endpoints WHERE id IN (");
            let mut sep = q.separated(", ");
            for id in chunk {
                sep.push_bind(id);
            }
            q.push(")");
            q.build().execute(&mut *tx).await.map_err(db)?;
        }
        let by_id: BTreeMap<&str, &Device> = wanted.iter().map(|d| (d.id.as_str(), d)).collect();
        let fresh: Vec<&Device> = plan
            .add
            .iter()
            .chain(plan.change.iter())
            .filter_map(|id| by_id.get(id.as_str()).copied())
            .collect();
        for chunk in fresh.chunks(500) {
            for table in TABLES {
                let names: Vec<&str> = wanted_columns(chunk[0], table).keys().copied().collect();
                let mut q = QueryBuilder::<MySql>::new(format!(
                    "INSERT INTO {table} (id, {}) ",
                    names
                        .iter()
                        .map(|n| format!("`{n}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
                q.push_values(chunk.iter(), |mut b, d| {
                    b.push_bind(d.id.clone());
                    for v in wanted_columns(d, table).into_values() {
                        b.push_bind(v);
                    }
                });
                q.build().execute(&mut *tx).await.map_err(db)?;
            }
            let mut q = QueryBuilder::<MySql>::new(
                "INSERT INTO pbxdesk_owned_endpoints (id, owner, updated_at) ",
            );
            q.push_values(chunk.iter(), |mut b, d| {
                b.push_bind(d.id.clone())
                    .push_bind(self.owner.clone())
                    .push_bind(now_ms);
            });
            q.push(
                " ON DUPLICATE KEY UPDATE owner = VALUES(owner), updated_at = VALUES(updated_at)",
            );
            q.build().execute(&mut *tx).await.map_err(db)?;
        }
        tx.commit()
            .await
            .map_err(|e| RealtimeError::CommitUnknown(e.to_string()))?;
        Ok(plan)
    }

    /// The statements that take the rows a sync to `wanted` would touch back to what they are
    /// now (endpoint, auth, aor and ownership), for the apply's armed rollback: the laptop runs
    /// them with [`Realtime::undo`], the PBX with the mysql client if the laptop is gone. Every
    /// value travels as a hex literal, so nothing in a row can become SQL. Registrations of
    /// removed devices are not restored (their phones register again).
    pub async fn undo_script(&self, wanted: &[Device]) -> Result<String, RealtimeError> {
        let current = self.current().await?;
        let plan = self.plan_with(wanted, &current);
        let touched: Vec<&String> = plan
            .add
            .iter()
            .chain(&plan.change)
            .chain(&plan.remove)
            .collect();
        let mut sql = String::new();
        if touched.is_empty() {
            return Ok(sql);
        }
        // Every owned row's owner, in one query without a list of ids: a first apply of a
        // 100 × 999 PBX touches 99,900 ids, more than a statement may hold placeholders
        // (65,535), and was stopped by it.
        let touched_set: std::collections::BTreeSet<&str> =
            touched.iter().map(|id| id.as_str()).collect();
        let owners: BTreeMap<String, (String, i64)> = sqlx::query_as::<_, (String, String, i64)>(
            "SELECT id, owner, updated_at FROM pbxdesk_owned_endpoints",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(db)?
        .into_iter()
        .filter(|(id, _, _)| touched_set.contains(id.as_str()))
        .map(|(id, o, t)| (id, (o, t)))
        .collect();
        let ids: Vec<String> = touched.iter().map(|id| hex_literal(id)).collect();
        for chunk in ids.chunks(500) {
            for table in TABLES.iter().chain(["pbxdesk_owned_endpoints"].iter()) {
                sql.push_str(&format!(
                    "DELETE FROM {table} WHERE id IN ({});\n",
                    chunk.join(", ")
                ));
            }
        }
        let before: Vec<(&String, &[Columns; 3])> = touched
            .iter()
            .filter_map(|id| current.get(*id).map(|c| (*id, c)))
            .collect();
        for chunk in before.chunks(500) {
            for (i, table) in TABLES.iter().enumerate() {
                // An owned id with no row in this table (deleted by hand, or never written)
                // has nothing to put back here; it must not become `INSERT … (id, ) VALUES`.
                let present: Vec<&(&String, &[Columns; 3])> = chunk
                    .iter()
                    .filter(|(_, cols)| !cols[i].is_empty())
                    .collect();
                let Some((_, first)) = present.first() else {
                    continue;
                };
                let names: Vec<String> = first[i].keys().map(|n| format!("`{n}`")).collect();
                let rows: Vec<String> = present
                    .iter()
                    .map(|(id, cols)| {
                        let mut v = vec![hex_literal(id)];
                        v.extend(cols[i].values().map(|c| match c {
                            Some(s) => hex_literal(s),
                            None => "NULL".into(),
                        }));
                        format!("({})", v.join(", "))
                    })
                    .collect();
                sql.push_str(&format!(
                    "INSERT INTO {table} (id, {}) VALUES {};\n",
                    names.join(", "),
                    rows.join(", ")
                ));
            }
            let rows: Vec<String> = chunk
                .iter()
                .filter_map(|(id, _)| {
                    owners
                        .get(*id)
                        .map(|(o, t)| format!("({}, {}, {t})", hex_literal(id), hex_literal(o)))
                })
                .collect();
            if !rows.is_empty() {
                sql.push_str(&format!(
                    "INSERT INTO pbxdesk_owned_endpoints (id, owner, updated_at) VALUES {};\n",
                    rows.join(", ")
                ));
            }
        }
        Ok(sql)
    }

    /// Runs an [`Realtime::undo_script`] in one transaction.
    pub async fn undo(&self, script: &str) -> Result<(), RealtimeError> {
        if script.trim().is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await.map_err(db)?;
        // A plain-text query (several statements); `raw_sql` would make this future !Send.
        Executor::execute(&mut *tx, script).await.map_err(db)?;
        tx.commit().await.map_err(db)
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn md5_cred_matches_asterisks_test_vector() {
        assert_eq!(
            md5_cred("alice", "asterisk", "swordfish"),
            "c9b9e23e2160fd69b19f99116da19711"
        );
    }

    #[test]
    fn credentials_never_print() {
        let c = Credential::Md5 {
            realm: "asterisk".into(),
            password: SecretString::from("swordfish"),
        };
        assert!(!format!("{c:?}").contains("swordfish"));
        assert!(!format!(
            "{:?}",
            Credential::UserPass(SecretString::from("swordfish"))
        )
        .contains("swordfish"));
    }
}

#[cfg(test)]
mod send_check {
    #[allow(dead_code)]
    fn futures_are_send(rt: &super::Realtime, w: &[super::Device]) {
        fn send<T: Send>(_: T) {}
        send(rt.undo("x"));
        send(rt.undo_script(w));
        send(rt.sync(w, 1));
    }
}
