//! The trunks table: its rows as the services read them.

use super::db_error;
use crate::domain::{parse_codecs, Transport};
use crate::error::{Error, Result};
use crate::model::Trunk;
use sqlx::{Any, Executor};

/// A trunk with its PBX's name; the password only as "set or not" (it stays sealed).
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct TrunkRow {
    pub id: i64,
    pub pbx: String,
    pub name: String,
    pub host: String,
    pub port: i64,
    pub transport: String,
    pub register: i64,
    pub username: Option<String>,
    pub password: Option<Vec<u8>>,
    pub from_domain: Option<String>,
    pub from_user: Option<String>,
    pub codecs: String,
    pub enabled: i64,
    pub version: i64,
}

const SELECT: &str = "SELECT k.id AS id, p.name AS pbx, k.name AS name, k.host AS host, \
     k.port AS port, k.transport AS transport, CAST(k.register AS INTEGER) AS register, \
     k.username AS username, k.password AS password, k.from_domain AS from_domain, \
     k.from_user AS from_user, k.codecs AS codecs, CAST(k.enabled AS INTEGER) AS enabled, \
     k.version AS version \
     FROM trunks k JOIN pbxes p ON p.id = k.pbx_id";

fn damaged(what: &str) -> Error {
    Error::Store(format!("trunk {what} on record is damaged"))
}

impl TrunkRow {
    /// The trunk, its tenants not read yet.
    pub(crate) fn into_trunk(self) -> Result<Trunk> {
        Ok(Trunk {
            id: self.id,
            pbx: self.pbx,
            name: self.name,
            host: self.host,
            port: u16::try_from(self.port).map_err(|_| damaged("port"))?,
            transport: Transport::parse(&self.transport).map_err(|_| damaged("transport"))?,
            register: self.register != 0,
            username: self.username,
            password_set: self.password.is_some(),
            from_domain: self.from_domain,
            from_user: self.from_user,
            codecs: parse_codecs(&self.codecs).map_err(|_| damaged("codecs"))?,
            enabled: self.enabled != 0,
            tenants: Vec::new(),
            version: self.version,
        })
    }
}

pub(crate) async fn by_id<'e, E: Executor<'e, Database = Any>>(
    e: E,
    id: i64,
) -> Result<Option<TrunkRow>> {
    sqlx::query_as(&format!("{SELECT} WHERE k.id = $1"))
        .bind(id)
        .fetch_optional(e)
        .await
        .map_err(db_error)
}

/// Whether trunk `name` of the tenant's PBX is one the tenant may use.
pub(crate) async fn usable_by_tenant<'e, E: Executor<'e, Database = Any>>(
    e: E,
    tenant_id: i64,
    name: &str,
) -> Result<bool> {
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM trunks k JOIN tenants t ON t.pbx_id = k.pbx_id \
         JOIN trunk_tenants kt ON kt.trunk_id = k.id AND kt.tenant_id = t.id \
         WHERE t.id = $1 AND k.name = $2",
    )
    .bind(tenant_id)
    .bind(name)
    .fetch_one(e)
    .await
    .map_err(db_error)?;
    Ok(n > 0)
}

/// The tenant of that slug on the PBX.
pub(crate) async fn tenant_on_pbx<'e, E: Executor<'e, Database = Any>>(
    e: E,
    slug: &str,
    pbx_id: i64,
) -> Result<Option<i64>> {
    sqlx::query_scalar("SELECT id FROM tenants WHERE slug = $1 AND pbx_id = $2")
        .bind(slug)
        .bind(pbx_id)
        .fetch_optional(e)
        .await
        .map_err(db_error)
}

/// The slugs of the tenants that may use a trunk, by slug.
pub(crate) async fn tenant_slugs<'e, E: Executor<'e, Database = Any>>(
    e: E,
    trunk_id: i64,
) -> Result<Vec<String>> {
    sqlx::query_scalar(
        "SELECT t.slug FROM trunk_tenants tt JOIN tenants t ON t.id = tt.tenant_id \
         WHERE tt.trunk_id = $1 ORDER BY t.slug",
    )
    .bind(trunk_id)
    .fetch_all(e)
    .await
    .map_err(db_error)
}

/// The tenants that may use a trunk become exactly `tenant_ids`.
pub(crate) async fn set_tenants(
    c: &mut sqlx::AnyConnection,
    trunk_id: i64,
    tenant_ids: &[i64],
) -> Result<()> {
    sqlx::query("DELETE FROM trunk_tenants WHERE trunk_id = $1")
        .bind(trunk_id)
        .execute(&mut *c)
        .await
        .map_err(db_error)?;
    for id in tenant_ids {
        sqlx::query("INSERT INTO trunk_tenants (trunk_id, tenant_id) VALUES ($1, $2)")
            .bind(trunk_id)
            .bind(id)
            .execute(&mut *c)
            .await
            .map_err(db_error)?;
    }
    Ok(())
}

/// A trunk's settings as written (a new one's, or an edit's: the password apart).
pub(crate) struct TrunkFields<'a> {
    pub host: Option<&'a str>,
    pub port: u16,
    pub transport: &'a str,
    pub register: bool,
    pub username: Option<&'a str>,
    pub from_domain: Option<&'a str>,
    pub from_user: Option<&'a str>,
    pub codecs: String,
    pub enabled: bool,
    pub now: i64,
}

/// Adds a trunk to a PBX; its id. A name the PBX has already is a conflict.
pub(crate) async fn insert<'e, E: Executor<'e, Database = Any>>(
    e: E,
    pbx_id: i64,
    pbx_name: &str,
    name: &str,
    password: Option<Vec<u8>>,
    f: TrunkFields<'_>,
) -> Result<i64> {
    sqlx::query_scalar(
        "INSERT INTO trunks (pbx_id, name, host, port, transport, register, username, password, \
         from_domain, from_user, codecs, enabled, version, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 1, $13, $13) RETURNING id",
    )
    .bind(pbx_id)
    .bind(name)
    .bind(f.host)
    .bind(i64::from(f.port))
    .bind(f.transport)
    .bind(f.register)
    .bind(f.username)
    .bind(password)
    .bind(f.from_domain)
    .bind(f.from_user)
    .bind(f.codecs)
    .bind(f.enabled)
    .bind(f.now)
    .fetch_one(e)
    .await
    .map_err(|e| match super::classify(&e) {
        super::DbFailure::UniqueViolation(_) => Error::Conflict(format!(
            "PBX \"{pbx_name}\" already has a trunk named \"{name}\""
        )),
        _ => db_error(e),
    })
}

pub(crate) async fn update<'e, E: Executor<'e, Database = Any>>(
    e: E,
    id: i64,
    f: TrunkFields<'_>,
) -> Result<()> {
    sqlx::query(
        "UPDATE trunks SET host = $1, port = $2, transport = $3, register = $4, username = $5, \
         from_domain = $6, from_user = $7, codecs = $8, enabled = $9, version = version + 1, \
         updated_at = $10 WHERE id = $11",
    )
    .bind(f.host)
    .bind(i64::from(f.port))
    .bind(f.transport)
    .bind(f.register)
    .bind(f.username)
    .bind(f.from_domain)
    .bind(f.from_user)
    .bind(f.codecs)
    .bind(f.enabled)
    .bind(f.now)
    .bind(id)
    .execute(e)
    .await
    .map_err(db_error)?;
    Ok(())
}

/// A trunk's password (sealed), or none.
pub(crate) async fn set_password<'e, E: Executor<'e, Database = Any>>(
    e: E,
    id: i64,
    sealed: Option<Vec<u8>>,
) -> Result<()> {
    sqlx::query("UPDATE trunks SET password = $1 WHERE id = $2")
        .bind(sealed)
        .bind(id)
        .execute(e)
        .await
        .map_err(db_error)?;
    Ok(())
}

/// The trunks of a PBX by name, or of every PBX.
pub(crate) async fn ids<'e, E: Executor<'e, Database = Any>>(
    e: E,
    pbx_id: Option<i64>,
) -> Result<Vec<i64>> {
    sqlx::query_scalar(
        "SELECT id FROM trunks WHERE ($1 IS NULL OR pbx_id = $1) ORDER BY pbx_id, name",
    )
    .bind(pbx_id)
    .fetch_all(e)
    .await
    .map_err(db_error)
}

pub(crate) async fn id_by_name<'e, E: Executor<'e, Database = Any>>(
    e: E,
    pbx_id: i64,
    name: &str,
) -> Result<Option<i64>> {
    sqlx::query_scalar("SELECT id FROM trunks WHERE pbx_id = $1 AND name = $2")
        .bind(pbx_id)
        .bind(name)
        .fetch_optional(e)
        .await
        .map_err(db_error)
}

pub(crate) async fn pbx_of<'e, E: Executor<'e, Database = Any>>(e: E, id: i64) -> Result<i64> {
    sqlx::query_scalar("SELECT pbx_id FROM trunks WHERE id = $1")
        .bind(id)
        .fetch_one(e)
        .await
        .map_err(db_error)
}

/// A policy rule of a tenant on the trunk's PBX, with the trunks it names (comma-separated).
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct RuleOnPbx {
    pub tenant: String,
    pub policy: String,
    pub position: i64,
    pub trunks: String,
}

/// The policy rules of every tenant on the trunk's PBX.
pub(crate) async fn rules_on_its_pbx<'e, E: Executor<'e, Database = Any>>(
    e: E,
    trunk_id: i64,
) -> Result<Vec<RuleOnPbx>> {
    sqlx::query_as(
        "SELECT t.slug AS tenant, p.name AS policy, r.position AS position, r.trunks AS trunks \
         FROM policy_rules r JOIN policies p ON p.id = r.policy_id \
         JOIN tenants t ON t.id = p.tenant_id JOIN trunks k ON k.pbx_id = t.pbx_id \
         WHERE k.id = $1 ORDER BY t.slug, p.name, r.position",
    )
    .bind(trunk_id)
    .fetch_all(e)
    .await
    .map_err(db_error)
}

/// Removes a trunk and its tenants.
pub(crate) async fn delete(c: &mut sqlx::AnyConnection, id: i64) -> Result<()> {
    set_tenants(&mut *c, id, &[]).await?;
    sqlx::query("DELETE FROM trunks WHERE id = $1")
        .bind(id)
        .execute(&mut *c)
        .await
        .map_err(db_error)?;
    Ok(())
}
