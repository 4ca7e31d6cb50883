//! Operators' API sessions (`api_sessions`): access and refresh tokens as their SHA-256.

use super::db_error;
use crate::error::Result;
use sqlx::{Any, AnyConnection, Executor};

/// A live session and its operator as the store has them now.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct SessionRow {
    pub operator_id: i64,
    pub username: String,
    pub role: String,
    pub disabled: i64,
}

/// The operator of that name's id.
pub(crate) async fn operator_id<'e, E: Executor<'e, Database = Any>>(
    e: E,
    username: &str,
) -> Result<i64> {
    sqlx::query_scalar("SELECT id FROM operators WHERE username = $1")
        .bind(username)
        .fetch_one(e)
        .await
        .map_err(db_error)
}

/// The live session of that hash and kind (`access` or `refresh`), with its operator.
pub(crate) async fn live<'e, E: Executor<'e, Database = Any>>(
    e: E,
    token_hash: &str,
    kind: &str,
    now: i64,
) -> Result<Option<SessionRow>> {
    sqlx::query_as(
        "SELECT s.operator_id AS operator_id, o.username AS username, o.role AS role, \
         CAST(o.disabled AS INTEGER) AS disabled \
         FROM api_sessions s JOIN operators o ON o.id = s.operator_id \
         WHERE s.token_hash = $1 AND s.kind = $2 AND s.expires_at > $3",
    )
    .bind(token_hash)
    .bind(kind)
    .bind(now)
    .fetch_optional(e)
    .await
    .map_err(db_error)
}

/// Ends the session of that hash (of `kind` only, when given); whether there was one.
pub(crate) async fn end<'e, E: Executor<'e, Database = Any>>(
    e: E,
    token_hash: &str,
    kind: Option<&str>,
) -> Result<bool> {
    let gone =
        sqlx::query("DELETE FROM api_sessions WHERE token_hash = $1 AND ($2 IS NULL OR kind = $2)")
            .bind(token_hash)
            .bind(kind)
            .execute(e)
            .await
            .map_err(db_error)?;
    Ok(gone.rows_affected() == 1)
}

/// Keeps new sessions (hash, kind, expiry) of an operator; the expired ones go.
pub(crate) async fn add(
    c: &mut AnyConnection,
    operator_id: i64,
    sessions: &[(String, &str, i64)],
    now: i64,
) -> Result<()> {
    sqlx::query("DELETE FROM api_sessions WHERE expires_at <= $1")
        .bind(now)
        .execute(&mut *c)
        .await
        .map_err(db_error)?;
    for (hash, kind, expires_at) in sessions {
        sqlx::query(
            "INSERT INTO api_sessions (token_hash, operator_id, kind, expires_at, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(hash)
        .bind(operator_id)
        .bind(*kind)
        .bind(*expires_at)
        .bind(now)
        .execute(&mut *c)
        .await
        .map_err(db_error)?;
    }
    Ok(())
}
