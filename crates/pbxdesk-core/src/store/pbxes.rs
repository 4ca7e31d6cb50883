//! The pbxes table: PBX profiles (where and how to reach each PBX), secrets sealed.

use super::{classify, db_error, DbFailure};
use crate::domain::{Host, LoginName, RemotePath, SshAuth, Via};
use crate::error::{Error, Result};
use crate::model::Pbx;
use sqlx::{Any, AnyConnection, Executor};

/// A profile as read: whether each secret is set, never the secret.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct PbxRow {
    pub id: i64,
    pub name: String,
    pub host: String,
    pub ssh_port: i64,
    pub ssh_user: String,
    pub ssh_auth: String,
    pub ssh_key_path: Option<String>,
    pub ssh_secret_set: i64,
    pub host_key: Option<String>,
    pub config_dir: String,
    pub ami_via: String,
    pub ami_port: i64,
    pub ami_user: Option<String>,
    pub ami_secret_set: i64,
    pub db_via: String,
    pub db_port: i64,
    pub db_name: String,
    pub db_user: Option<String>,
    pub db_password_set: i64,
    pub connect_timeout_ms: i64,
    pub command_timeout_ms: i64,
    pub version: i64,
}

const SELECT: &str = "SELECT id, name, host, ssh_port, ssh_user, ssh_auth, ssh_key_path, \
     CASE WHEN ssh_secret IS NULL THEN 0 ELSE 1 END AS ssh_secret_set, host_key, config_dir, \
     ami_via, ami_port, ami_user, CASE WHEN ami_secret IS NULL THEN 0 ELSE 1 END AS ami_secret_set, \
     db_via, db_port, db_name, db_user, \
     CASE WHEN db_password IS NULL THEN 0 ELSE 1 END AS db_password_set, \
     connect_timeout_ms, command_timeout_ms, version FROM pbxes";

impl PbxRow {
    pub(crate) fn into_pbx(self) -> Result<Pbx> {
        let damaged = || Error::Store("PBX profile on record is damaged".into());
        let port = |v: i64| u16::try_from(v).map_err(|_| damaged());
        let ms = |v: i64| u32::try_from(v).map_err(|_| damaged());
        Ok(Pbx {
            id: self.id,
            name: self.name,
            host: self.host,
            ssh_port: port(self.ssh_port)?,
            ssh_user: self.ssh_user,
            ssh_auth: SshAuth::parse(&self.ssh_auth).map_err(|_| damaged())?,
            ssh_key_path: self.ssh_key_path,
            ssh_secret_set: self.ssh_secret_set != 0,
            host_key: self.host_key,
            config_dir: self.config_dir,
            ami_via: Via::parse(&self.ami_via).map_err(|_| damaged())?,
            ami_port: port(self.ami_port)?,
            ami_user: self.ami_user,
            ami_secret_set: self.ami_secret_set != 0,
            db_via: Via::parse(&self.db_via).map_err(|_| damaged())?,
            db_port: port(self.db_port)?,
            db_name: self.db_name,
            db_user: self.db_user,
            db_password_set: self.db_password_set != 0,
            connect_timeout_ms: ms(self.connect_timeout_ms)?,
            command_timeout_ms: ms(self.command_timeout_ms)?,
            version: self.version,
        })
    }
}

/// A validated profile change. `Some(None)` clears an optional field; secrets come sealed.
pub(crate) struct ProfileChange {
    pub host: Option<Host>,
    pub ssh_port: Option<u16>,
    pub ssh_user: Option<LoginName>,
    pub ssh_auth: Option<SshAuth>,
    pub ssh_key_path: Option<Option<String>>,
    pub ssh_secret: Option<Option<Vec<u8>>>,
    pub config_dir: Option<RemotePath>,
    pub ami_via: Option<Via>,
    pub ami_port: Option<u16>,
    pub ami_user: Option<Option<String>>,
    pub ami_secret: Option<Option<Vec<u8>>>,
    pub db_via: Option<Via>,
    pub db_port: Option<u16>,
    pub db_name: Option<String>,
    pub db_user: Option<Option<String>>,
    pub db_password: Option<Option<Vec<u8>>>,
    pub connect_timeout_ms: Option<u32>,
    pub command_timeout_ms: Option<u32>,
}

pub(crate) async fn by_name<'e, E: Executor<'e, Database = Any>>(
    e: E,
    name: &str,
) -> Result<Option<Pbx>> {
    let row: Option<PbxRow> = sqlx::query_as(&format!("{SELECT} WHERE name = $1"))
        .bind(name)
        .fetch_optional(e)
        .await
        .map_err(db_error)?;
    row.map(PbxRow::into_pbx).transpose()
}

pub(crate) async fn by_id<'e, E: Executor<'e, Database = Any>>(e: E, id: i64) -> Result<Pbx> {
    let row: PbxRow = sqlx::query_as(&format!("{SELECT} WHERE id = $1"))
        .bind(id)
        .fetch_one(e)
        .await
        .map_err(db_error)?;
    row.into_pbx()
}

/// Every PBX, by name.
pub(crate) async fn all<'e, E: Executor<'e, Database = Any>>(e: E) -> Result<Vec<Pbx>> {
    let rows: Vec<PbxRow> = sqlx::query_as(&format!("{SELECT} ORDER BY name"))
        .fetch_all(e)
        .await
        .map_err(db_error)?;
    rows.into_iter().map(PbxRow::into_pbx).collect()
}

/// The PBXs these tenants are on, by name.
pub(crate) async fn of_tenants<'e, E: Executor<'e, Database = Any>>(
    e: E,
    tenant_ids: &[i64],
) -> Result<Vec<Pbx>> {
    if tenant_ids.is_empty() {
        return Ok(Vec::new());
    }
    let marks: Vec<String> = (1..=tenant_ids.len()).map(|i| format!("${i}")).collect();
    let sql = format!(
        "{SELECT} WHERE id IN (SELECT pbx_id FROM tenants WHERE id IN ({})) ORDER BY name",
        marks.join(", ")
    );
    let mut q = sqlx::query_as::<_, PbxRow>(&sql);
    for id in tenant_ids {
        q = q.bind(*id);
    }
    let rows = q.fetch_all(e).await.map_err(db_error)?;
    rows.into_iter().map(PbxRow::into_pbx).collect()
}

/// A new profile with the defaults; a taken name is a conflict.
pub(crate) async fn insert(
    conn: &mut AnyConnection,
    name: &str,
    host: Option<&str>,
    now: i64,
) -> Result<i64> {
    sqlx::query_scalar(
        "INSERT INTO pbxes (name, host, ssh_port, ssh_user, created_at, updated_at) \
         VALUES ($1, $2, 22, 'root', $3, $3) RETURNING id",
    )
    .bind(name)
    .bind(host.map(str::to_owned))
    .bind(now)
    .fetch_one(&mut *conn)
    .await
    .map_err(|e| match classify(&e) {
        DbFailure::UniqueViolation(_) => {
            Error::Conflict(format!("a PBX named \"{name}\" already exists"))
        }
        _ => db_error(e),
    })
}

/// Writes the given fields; untouched ones keep their value (COALESCE on a NULL parameter).
pub(crate) async fn update_profile(
    conn: &mut AnyConnection,
    id: i64,
    c: &ProfileChange,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "UPDATE pbxes SET host = COALESCE($1, host), ssh_port = COALESCE($2, ssh_port), ssh_user = COALESCE($3, ssh_user), \
         ssh_auth = COALESCE($4, ssh_auth), config_dir = COALESCE($5, config_dir), ami_via = COALESCE($6, ami_via), \
         ami_port = COALESCE($7, ami_port), db_via = COALESCE($8, db_via), db_port = COALESCE($9, db_port), \
         db_name = COALESCE($10, db_name), connect_timeout_ms = COALESCE($11, connect_timeout_ms), \
         command_timeout_ms = COALESCE($12, command_timeout_ms), version = version + 1, updated_at = $13 WHERE id = $14",
    )
    .bind(c.host.as_ref().map(|h| h.as_str().to_owned()))
    .bind(c.ssh_port.map(i64::from))
    .bind(c.ssh_user.as_ref().map(|u| u.as_str().to_owned()))
    .bind(c.ssh_auth.map(|a| a.as_str()))
    .bind(c.config_dir.as_ref().map(|d| d.as_str().to_owned()))
    .bind(c.ami_via.map(|v| v.as_str()))
    .bind(c.ami_port.map(i64::from))
    .bind(c.db_via.map(|v| v.as_str()))
    .bind(c.db_port.map(i64::from))
    .bind(c.db_name.clone())
    .bind(c.connect_timeout_ms.map(i64::from))
    .bind(c.command_timeout_ms.map(i64::from))
    .bind(now)
    .bind(id)
    .execute(&mut *conn)
    .await
    .map_err(db_error)?;
    // Clearable fields: set only those given (Some), to a value or to NULL.
    for (column, value) in [
        ("ssh_key_path", &c.ssh_key_path),
        ("ami_user", &c.ami_user),
        ("db_user", &c.db_user),
    ] {
        set_clearable(conn, id, column, value).await?;
    }
    for (column, value) in [
        ("ssh_secret", &c.ssh_secret),
        ("ami_secret", &c.ami_secret),
        ("db_password", &c.db_password),
    ] {
        set_clearable(conn, id, column, value).await?;
    }
    Ok(())
}

/// Sets one clearable column when the change names it: `Some(None)` writes NULL. `column` is
/// one of the names above, never input.
async fn set_clearable<T>(
    conn: &mut AnyConnection,
    id: i64,
    column: &'static str,
    value: &Option<Option<T>>,
) -> Result<()>
where
    T: for<'q> sqlx::Encode<'q, sqlx::Any> + sqlx::Type<sqlx::Any> + Clone + Send + 'static,
{
    if let Some(v) = value {
        sqlx::query(&format!("UPDATE pbxes SET {column} = $1 WHERE id = $2"))
            .bind(v.clone())
            .bind(id)
            .execute(&mut *conn)
            .await
            .map_err(db_error)?;
    }
    Ok(())
}

/// Pins a host key (`None` forgets it: the next connection asks again). Pinning is a new
/// version of the profile.
pub(crate) async fn set_host_key(
    conn: &mut AnyConnection,
    id: i64,
    fingerprint: Option<&str>,
    now: i64,
) -> Result<()> {
    match fingerprint {
        Some(fp) => sqlx::query(
            "UPDATE pbxes SET host_key = $1, version = version + 1, updated_at = $2 WHERE id = $3",
        )
        .bind(fp)
        .bind(now)
        .bind(id),
        None => sqlx::query("UPDATE pbxes SET host_key = NULL WHERE id = $1").bind(id),
    }
    .execute(conn)
    .await
    .map_err(db_error)?;
    Ok(())
}

pub(crate) async fn tenant_count(conn: &mut AnyConnection, id: i64) -> Result<i64> {
    sqlx::query_scalar("SELECT COUNT(*) FROM tenants WHERE pbx_id = $1")
        .bind(id)
        .fetch_one(conn)
        .await
        .map_err(db_error)
}

pub(crate) async fn delete(conn: &mut AnyConnection, id: i64) -> Result<()> {
    sqlx::query("DELETE FROM pbxes WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await
        .map_err(db_error)?;
    Ok(())
}

/// The sealed SSH secret, AMI secret and database password, as stored.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct SealedSecrets {
    pub ssh_secret: Option<Vec<u8>>,
    pub ami_secret: Option<Vec<u8>>,
    pub db_password: Option<Vec<u8>>,
}

pub(crate) async fn sealed_secrets<'e, E: Executor<'e, Database = Any>>(
    e: E,
    id: i64,
) -> Result<SealedSecrets> {
    sqlx::query_as("SELECT ssh_secret, ami_secret, db_password FROM pbxes WHERE id = $1")
        .bind(id)
        .fetch_one(e)
        .await
        .map_err(db_error)
}
