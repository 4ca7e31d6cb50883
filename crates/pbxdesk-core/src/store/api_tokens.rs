//! Automation API tokens (`api_tokens`): kept as their SHA-256, revoked but never deleted.

use super::{classify, db_error, DbFailure};
use crate::error::{Error, Result};
use sqlx::{Any, Executor};

#[derive(Debug, sqlx::FromRow)]
pub(crate) struct TokenRow {
    pub id: i64,
    pub name: String,
    pub role: String,
    pub tenant: Option<String>,
    pub tenant_id: Option<i64>,
    pub created_by: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub last_used_at: Option<i64>,
    pub last_used_via: Option<String>,
    pub revoked_at: Option<i64>,
}

const SELECT_TOKENS: &str = "SELECT k.id AS id, k.name AS name, k.role AS role, \
     t.slug AS tenant, k.tenant_id AS tenant_id, k.created_by AS created_by, \
     k.created_at AS created_at, k.expires_at AS expires_at, k.last_used_at AS last_used_at, \
     k.last_used_via AS last_used_via, k.revoked_at AS revoked_at \
     FROM api_tokens k LEFT JOIN tenants t ON t.id = k.tenant_id";

/// A token to keep.
pub(crate) struct NewToken<'a> {
    pub name: &'a str,
    pub token_hash: &'a str,
    pub role: &'a str,
    pub tenant_id: Option<i64>,
    pub created_by: &'a str,
    pub created_at: i64,
    pub expires_at: Option<i64>,
}

/// Keeps a new token; its id. A live token of the same name is a conflict.
pub(crate) async fn insert<'e, E: Executor<'e, Database = Any>>(
    e: E,
    t: NewToken<'_>,
) -> Result<i64> {
    sqlx::query_scalar(
        "INSERT INTO api_tokens (name, token_hash, role, tenant_id, created_by, created_at, \
         expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
    )
    .bind(t.name)
    .bind(t.token_hash)
    .bind(t.role)
    .bind(t.tenant_id)
    .bind(t.created_by)
    .bind(t.created_at)
    .bind(t.expires_at)
    .fetch_one(e)
    .await
    .map_err(|e| match classify(&e) {
        DbFailure::UniqueViolation(_) => Error::Conflict(format!(
            "a token named \"{}\" exists: revoke it first, or choose another name",
            t.name
        )),
        _ => db_error(e),
    })
}

/// Every token, revoked ones too, newest first.
pub(crate) async fn list<'e, E: Executor<'e, Database = Any>>(e: E) -> Result<Vec<TokenRow>> {
    sqlx::query_as(&format!("{SELECT_TOKENS} ORDER BY k.id DESC"))
        .fetch_all(e)
        .await
        .map_err(db_error)
}

/// The live (not revoked) token of that name.
pub(crate) async fn live_by_name<'e, E: Executor<'e, Database = Any>>(
    e: E,
    name: &str,
) -> Result<Option<TokenRow>> {
    sqlx::query_as(&format!(
        "{SELECT_TOKENS} WHERE k.name = $1 AND k.revoked_at IS NULL"
    ))
    .bind(name)
    .fetch_optional(e)
    .await
    .map_err(db_error)
}

pub(crate) async fn revoke<'e, E: Executor<'e, Database = Any>>(
    e: E,
    id: i64,
    now: i64,
) -> Result<()> {
    sqlx::query("UPDATE api_tokens SET revoked_at = $1 WHERE id = $2")
        .bind(now)
        .bind(id)
        .execute(e)
        .await
        .map_err(db_error)?;
    Ok(())
}

/// The token of that hash, if it is neither revoked nor expired at `now`.
pub(crate) async fn usable<'e, E: Executor<'e, Database = Any>>(
    e: E,
    token_hash: &str,
    now: i64,
) -> Result<Option<TokenRow>> {
    sqlx::query_as(&format!(
        "{SELECT_TOKENS} WHERE k.token_hash = $1 AND k.revoked_at IS NULL \
         AND (k.expires_at IS NULL OR k.expires_at > $2)"
    ))
    .bind(token_hash)
    .bind(now)
    .fetch_optional(e)
    .await
    .map_err(db_error)
}

pub(crate) async fn note_use<'e, E: Executor<'e, Database = Any>>(
    e: E,
    id: i64,
    now: i64,
    via: &str,
) -> Result<()> {
    sqlx::query("UPDATE api_tokens SET last_used_at = $1, last_used_via = $2 WHERE id = $3")
        .bind(now)
        .bind(via)
        .bind(id)
        .execute(e)
        .await
        .map_err(db_error)?;
    Ok(())
}
