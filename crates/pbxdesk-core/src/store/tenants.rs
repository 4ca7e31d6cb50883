//! The tenants table: its rows as the services read them.

use super::db_error;
use crate::domain::TenantStatus;
use crate::error::{Error, Result};
use crate::model::Tenant;
use sqlx::{Any, Executor};

/// A tenant with its PBX's name and its live user count.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct TenantRow {
    pub id: i64,
    pub pbx: String,
    pub name: String,
    pub slug: String,
    pub ext_first: i64,
    pub ext_last: i64,
    pub status: String,
    pub version: i64,
    pub user_count: i64,
    pub country: String,
    pub unknown_did: String,
    pub caller_id: Option<String>,
    pub default_policy: Option<String>,
}

/// What every user and device call needs of its tenant: one indexed read, no count.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct TenantKeyRow {
    pub id: i64,
    pub slug: String,
    pub ext_first: i64,
    pub ext_last: i64,
    pub status: String,
    pub country: String,
}

const SELECT: &str = "SELECT t.id AS id, p.name AS pbx, t.name AS name, t.slug AS slug, \
     t.ext_first AS ext_first, t.ext_last AS ext_last, t.status AS status, t.version AS version, \
     (SELECT COUNT(*) FROM users u WHERE u.tenant_id = t.id AND u.status <> 'deleted') AS user_count, \
     t.country AS country, t.unknown_did AS unknown_did, t.caller_id AS caller_id, \
     t.default_policy AS default_policy \
     FROM tenants t JOIN pbxes p ON p.id = t.pbx_id";

impl TenantRow {
    pub(crate) fn into_tenant(self) -> Result<Tenant> {
        Ok(Tenant {
            id: self.id,
            pbx: self.pbx,
            name: self.name,
            slug: self.slug,
            ext_range: format!("{}-{}", self.ext_first, self.ext_last),
            status: TenantStatus::parse(&self.status)
                .map_err(|_| Error::Store("unknown tenant status on record".into()))?,
            version: self.version,
            user_count: self.user_count,
            country: self.country,
            unknown_did: self.unknown_did,
            caller_id: self.caller_id,
            default_policy: self.default_policy,
        })
    }
}

/// Every tenant, by slug.
pub(crate) async fn all<'e, E: Executor<'e, Database = Any>>(e: E) -> Result<Vec<TenantRow>> {
    sqlx::query_as(&format!("{SELECT} ORDER BY t.slug"))
        .fetch_all(e)
        .await
        .map_err(db_error)
}

pub(crate) async fn by_slug<'e, E: Executor<'e, Database = Any>>(
    e: E,
    slug: &str,
) -> Result<Option<TenantRow>> {
    sqlx::query_as(&format!("{SELECT} WHERE t.slug = $1"))
        .bind(slug)
        .fetch_optional(e)
        .await
        .map_err(db_error)
}

pub(crate) async fn by_id<'e, E: Executor<'e, Database = Any>>(
    e: E,
    id: i64,
) -> Result<Option<TenantRow>> {
    sqlx::query_as(&format!("{SELECT} WHERE t.id = $1"))
        .bind(id)
        .fetch_optional(e)
        .await
        .map_err(db_error)
}

pub(crate) async fn key_by_slug<'e, E: Executor<'e, Database = Any>>(
    e: E,
    slug: &str,
) -> Result<Option<TenantKeyRow>> {
    sqlx::query_as(
        "SELECT id, slug, ext_first, ext_last, status, country FROM tenants WHERE slug = $1",
    )
    .bind(slug)
    .fetch_optional(e)
    .await
    .map_err(db_error)
}

/// Sets (or clears) the tenant's default policy: a new version of the tenant.
pub(crate) async fn set_default_policy(
    conn: &mut sqlx::AnyConnection,
    id: i64,
    policy: Option<&str>,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "UPDATE tenants SET default_policy = $1, version = version + 1, updated_at = $2 WHERE id = $3",
    )
    .bind(policy)
    .bind(now)
    .bind(id)
    .execute(conn)
    .await
    .map_err(db_error)?;
    Ok(())
}

/// A tenant's country (how its national numbers read).
pub(crate) async fn country<'e, E: Executor<'e, Database = Any>>(
    e: E,
    tenant_id: i64,
) -> Result<String> {
    sqlx::query_scalar("SELECT country FROM tenants WHERE id = $1")
        .bind(tenant_id)
        .fetch_one(e)
        .await
        .map_err(db_error)
}

/// A tenant to create.
pub(crate) struct NewTenantRow<'a> {
    pub pbx_id: i64,
    pub name: &'a str,
    pub slug: &'a str,
    pub ext_first: i64,
    pub ext_last: i64,
    pub country: &'a str,
    pub now: i64,
}

/// Creates a tenant; its id. A slug taken is a conflict.
pub(crate) async fn insert<'e, E: Executor<'e, Database = Any>>(
    e: E,
    t: NewTenantRow<'_>,
) -> Result<i64> {
    sqlx::query_scalar(
        "INSERT INTO tenants (pbx_id, name, slug, ext_first, ext_last, status, version, \
         created_at, updated_at, country) \
         VALUES ($1, $2, $3, $4, $5, 'active', 1, $6, $6, $7) RETURNING id",
    )
    .bind(t.pbx_id)
    .bind(t.name)
    .bind(t.slug)
    .bind(t.ext_first)
    .bind(t.ext_last)
    .bind(t.now)
    .bind(t.country)
    .fetch_one(e)
    .await
    .map_err(|e| match super::classify(&e) {
        super::DbFailure::UniqueViolation(_) => Error::Conflict(format!(
            "a tenant with slug \"{}\" already exists; choose another with --slug",
            t.slug
        )),
        _ => db_error(e),
    })
}

/// Whether the tenant has a policy of that name.
pub(crate) async fn has_policy<'e, E: Executor<'e, Database = Any>>(
    e: E,
    tenant_id: i64,
    name: &str,
) -> Result<bool> {
    let n: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM policies WHERE tenant_id = $1 AND name = $2")
            .bind(tenant_id)
            .bind(name)
            .fetch_one(e)
            .await
            .map_err(db_error)?;
    Ok(n > 0)
}

/// How many live users of the tenant have an extension outside `first..=last`.
pub(crate) async fn extensions_outside<'e, E: Executor<'e, Database = Any>>(
    e: E,
    tenant_id: i64,
    first: i64,
    last: i64,
) -> Result<i64> {
    // A ring group's extension is the tenant's as a user's is.
    sqlx::query_scalar(
        "SELECT (SELECT COUNT(*) FROM users WHERE tenant_id = $1 AND status <> 'deleted' \
                 AND (extension < $2 OR extension > $3)) \
              + (SELECT COUNT(*) FROM ring_groups WHERE tenant_id = $1 \
                 AND (extension < $2 OR extension > $3))",
    )
    .bind(tenant_id)
    .bind(first)
    .bind(last)
    .fetch_one(e)
    .await
    .map_err(db_error)
}

/// A tenant's settings as they are to be.
pub(crate) struct TenantUpdate<'a> {
    pub id: i64,
    pub name: &'a str,
    pub ext_first: i64,
    pub ext_last: i64,
    pub country: &'a str,
    pub unknown_did: &'a str,
    pub caller_id: Option<&'a str>,
    pub default_policy: Option<&'a str>,
    pub now: i64,
}

pub(crate) async fn update<'e, E: Executor<'e, Database = Any>>(
    e: E,
    t: TenantUpdate<'_>,
) -> Result<()> {
    sqlx::query(
        "UPDATE tenants SET name = $1, ext_first = $2, ext_last = $3, version = version + 1, \
         updated_at = $4, country = $6, unknown_did = $7, caller_id = $8, default_policy = $9 \
         WHERE id = $5",
    )
    .bind(t.name)
    .bind(t.ext_first)
    .bind(t.ext_last)
    .bind(t.now)
    .bind(t.id)
    .bind(t.country)
    .bind(t.unknown_did)
    .bind(t.caller_id)
    .bind(t.default_policy)
    .execute(e)
    .await
    .map_err(db_error)?;
    Ok(())
}

pub(crate) async fn set_status<'e, E: Executor<'e, Database = Any>>(
    e: E,
    id: i64,
    status: &str,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "UPDATE tenants SET status = $1, version = version + 1, updated_at = $2 WHERE id = $3",
    )
    .bind(status)
    .bind(now)
    .bind(id)
    .execute(e)
    .await
    .map_err(db_error)?;
    Ok(())
}

/// Locks the tenant's row to the end of the transaction (PostgreSQL): allocations of one
/// tenant queue, whichever laptop or server of a team makes them.
pub(crate) async fn lock_for_allocation<'e, E: Executor<'e, Database = Any>>(
    e: E,
    id: i64,
) -> Result<()> {
    sqlx::query("SELECT id FROM tenants WHERE id = $1 FOR UPDATE")
        .bind(id)
        .execute(e)
        .await
        .map_err(db_error)?;
    Ok(())
}
