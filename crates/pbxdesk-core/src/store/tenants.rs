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
