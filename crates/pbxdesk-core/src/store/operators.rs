//! Operators (who logs in to the workspace) and the tenants a tenant_admin is limited to.

use super::{classify, db_error, DbFailure};
use crate::error::{Error, Result};
use sqlx::{Any, AnyConnection, Executor};

/// An operator as the login reads them.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct LoginRow {
    pub id: i64,
    pub password_hash: Option<String>,
    pub role: String,
    pub disabled: i64,
}

/// An operator as listed.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct OperatorRow {
    pub id: i64,
    pub username: String,
    pub role: String,
    pub disabled: i64,
}

pub(crate) async fn count<'e, E: Executor<'e, Database = Any>>(e: E) -> Result<i64> {
    sqlx::query_scalar("SELECT COUNT(*) FROM operators")
        .fetch_one(e)
        .await
        .map_err(db_error)
}

/// Adds an operator and the tenants they are limited to; their id. A name taken is a conflict.
pub(crate) async fn insert(
    c: &mut AnyConnection,
    username: &str,
    password_hash: &str,
    role: &str,
    tenant_ids: &[i64],
    now: i64,
) -> Result<i64> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO operators (username, password_hash, role, disabled, created_at) \
         VALUES ($1, $2, $3, $4, $5) RETURNING id",
    )
    .bind(username)
    .bind(password_hash)
    .bind(role)
    .bind(false)
    .bind(now)
    .fetch_one(&mut *c)
    .await
    .map_err(|e| match classify(&e) {
        DbFailure::UniqueViolation(_) => {
            Error::Conflict(format!("operator \"{username}\" already exists"))
        }
        _ => db_error(e),
    })?;
    for t in tenant_ids {
        sqlx::query("INSERT INTO operator_tenants (operator_id, tenant_id) VALUES ($1, $2)")
            .bind(id)
            .bind(*t)
            .execute(&mut *c)
            .await
            .map_err(db_error)?;
    }
    Ok(id)
}

/// Every operator by name.
pub(crate) async fn list<'e, E: Executor<'e, Database = Any>>(e: E) -> Result<Vec<OperatorRow>> {
    sqlx::query_as(
        "SELECT id, username, role, CAST(disabled AS INTEGER) AS disabled \
         FROM operators ORDER BY username",
    )
    .fetch_all(e)
    .await
    .map_err(db_error)
}

/// Every operator's tenants as (operator id, slug), by slug: one query for all operators.
pub(crate) async fn tenant_slugs<'e, E: Executor<'e, Database = Any>>(
    e: E,
) -> Result<Vec<(i64, String)>> {
    sqlx::query_as(
        "SELECT x.operator_id, t.slug FROM operator_tenants x \
         JOIN tenants t ON t.id = x.tenant_id ORDER BY t.slug",
    )
    .fetch_all(e)
    .await
    .map_err(db_error)
}

pub(crate) async fn for_login<'e, E: Executor<'e, Database = Any>>(
    e: E,
    username: &str,
) -> Result<Option<LoginRow>> {
    sqlx::query_as(
        "SELECT id, password_hash, role, CAST(disabled AS INTEGER) AS disabled \
         FROM operators WHERE username = $1",
    )
    .bind(username)
    .fetch_optional(e)
    .await
    .map_err(db_error)
}

/// The tenants operator `id` is limited to (none: not limited, or no tenant yet).
pub(crate) async fn tenant_ids<'e, E: Executor<'e, Database = Any>>(
    e: E,
    id: i64,
) -> Result<Vec<i64>> {
    sqlx::query_scalar("SELECT tenant_id FROM operator_tenants WHERE operator_id = $1")
        .bind(id)
        .fetch_all(e)
        .await
        .map_err(db_error)
}
