//! End users' self-service access (`self_service`: an invite's hash, then the user's own
//! password hash) and their sessions (`self_service_sessions`), all kept as hashes.

use super::db_error;
use crate::error::Result;
use sqlx::{Any, AnyConnection, Executor};

/// A user with self-service, as a session or an invite finds them.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct EndUserRow {
    pub user_id: i64,
    pub tenant_id: i64,
    pub tenant: String,
    pub extension: i64,
}

const SELECT_END_USER: &str = "SELECT u.id AS user_id, u.tenant_id AS tenant_id, \
     t.slug AS tenant, u.extension AS extension \
     FROM self_service s JOIN users u ON u.id = s.user_id JOIN tenants t ON t.id = u.tenant_id";

/// A new invite for a user: it replaces one not taken; a password already set stays.
pub(crate) async fn invite(
    c: &mut AnyConnection,
    user_id: i64,
    invite_hash: &str,
    expires_at: i64,
    by: &str,
    now: i64,
) -> Result<()> {
    let updated = sqlx::query(
        "UPDATE self_service SET invite_hash = $1, invite_expires_at = $2, invited_by = $3, \
         updated_at = $4 WHERE user_id = $5",
    )
    .bind(invite_hash)
    .bind(expires_at)
    .bind(by)
    .bind(now)
    .bind(user_id)
    .execute(&mut *c)
    .await
    .map_err(db_error)?;
    if updated.rows_affected() == 0 {
        sqlx::query(
            "INSERT INTO self_service (user_id, invite_hash, invite_expires_at, invited_by, \
             created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $5)",
        )
        .bind(user_id)
        .bind(invite_hash)
        .bind(expires_at)
        .bind(by)
        .bind(now)
        .execute(&mut *c)
        .await
        .map_err(db_error)?;
    }
    Ok(())
}

/// Removes a user's self-service and every session of theirs; whether they had it.
pub(crate) async fn remove(c: &mut AnyConnection, user_id: i64) -> Result<bool> {
    end_sessions(&mut *c, user_id).await?;
    let gone = sqlx::query("DELETE FROM self_service WHERE user_id = $1")
        .bind(user_id)
        .execute(&mut *c)
        .await
        .map_err(db_error)?;
    Ok(gone.rows_affected() > 0)
}

/// Every session of a user ends.
pub(crate) async fn end_sessions<'e, E: Executor<'e, Database = Any>>(
    e: E,
    user_id: i64,
) -> Result<()> {
    sqlx::query("DELETE FROM self_service_sessions WHERE user_id = $1")
        .bind(user_id)
        .execute(e)
        .await
        .map_err(db_error)?;
    Ok(())
}

/// The active user an invite, not yet used nor expired, is for.
pub(crate) async fn by_invite<'e, E: Executor<'e, Database = Any>>(
    e: E,
    invite_hash: &str,
    now: i64,
) -> Result<Option<EndUserRow>> {
    sqlx::query_as(&format!(
        "{SELECT_END_USER} WHERE s.invite_hash = $1 AND s.invite_expires_at > $2 \
         AND u.status = 'active'"
    ))
    .bind(invite_hash)
    .bind(now)
    .fetch_optional(e)
    .await
    .map_err(db_error)
}

/// Takes the invite (once: of two at once, one gets `false`) and sets the password.
pub(crate) async fn take_invite<'e, E: Executor<'e, Database = Any>>(
    e: E,
    user_id: i64,
    invite_hash: &str,
    password_hash: &str,
    now: i64,
) -> Result<bool> {
    let taken = sqlx::query(
        "UPDATE self_service SET password_hash = $1, invite_hash = NULL, \
         invite_expires_at = NULL, updated_at = $2 WHERE user_id = $3 AND invite_hash = $4",
    )
    .bind(password_hash)
    .bind(now)
    .bind(user_id)
    .bind(invite_hash)
    .execute(e)
    .await
    .map_err(db_error)?;
    Ok(taken.rows_affected() == 1)
}

/// The active user of a tenant with this e-mail and self-service, with their password hash
/// (none until the invite is taken).
pub(crate) async fn for_login<'e, E: Executor<'e, Database = Any>>(
    e: E,
    tenant: &str,
    email: &str,
) -> Result<Option<(i64, Option<String>)>> {
    sqlx::query_as(
        "SELECT u.id, s.password_hash FROM users u \
         JOIN tenants t ON t.id = u.tenant_id \
         JOIN self_service s ON s.user_id = u.id \
         WHERE t.slug = $1 AND u.email = $2 AND u.status = 'active'",
    )
    .bind(tenant)
    .bind(email)
    .fetch_optional(e)
    .await
    .map_err(db_error)
}

/// A new session (the ended ones go as new ones come).
pub(crate) async fn session_add(
    c: &mut AnyConnection,
    token_hash: &str,
    user_id: i64,
    expires_at: i64,
    now: i64,
) -> Result<()> {
    sqlx::query("DELETE FROM self_service_sessions WHERE expires_at <= $1")
        .bind(now)
        .execute(&mut *c)
        .await
        .map_err(db_error)?;
    sqlx::query(
        "INSERT INTO self_service_sessions (token_hash, user_id, expires_at, created_at) \
         VALUES ($1, $2, $3, $4)",
    )
    .bind(token_hash)
    .bind(user_id)
    .bind(expires_at)
    .bind(now)
    .execute(&mut *c)
    .await
    .map_err(db_error)?;
    Ok(())
}

/// Every session of a user but `keep` (a hash) ends.
pub(crate) async fn end_other_sessions<'e, E: Executor<'e, Database = Any>>(
    e: E,
    user_id: i64,
    keep: &str,
) -> Result<()> {
    sqlx::query("DELETE FROM self_service_sessions WHERE user_id = $1 AND token_hash <> $2")
        .bind(user_id)
        .bind(keep)
        .execute(e)
        .await
        .map_err(db_error)?;
    Ok(())
}

/// The active user of a live session.
pub(crate) async fn by_session<'e, E: Executor<'e, Database = Any>>(
    e: E,
    token_hash: &str,
    now: i64,
) -> Result<Option<EndUserRow>> {
    sqlx::query_as(&format!(
        "{SELECT_END_USER} JOIN self_service_sessions x ON x.user_id = u.id \
         WHERE x.token_hash = $1 AND x.expires_at > $2 AND u.status = 'active'"
    ))
    .bind(token_hash)
    .bind(now)
    .fetch_optional(e)
    .await
    .map_err(db_error)
}

/// Ends one session.
pub(crate) async fn session_end<'e, E: Executor<'e, Database = Any>>(
    e: E,
    token_hash: &str,
) -> Result<()> {
    sqlx::query("DELETE FROM self_service_sessions WHERE token_hash = $1")
        .bind(token_hash)
        .execute(e)
        .await
        .map_err(db_error)?;
    Ok(())
}

/// A user's password hash, if they set one.
pub(crate) async fn password_hash<'e, E: Executor<'e, Database = Any>>(
    e: E,
    user_id: i64,
) -> Result<Option<String>> {
    let h: Option<Option<String>> =
        sqlx::query_scalar("SELECT password_hash FROM self_service WHERE user_id = $1")
            .bind(user_id)
            .fetch_optional(e)
            .await
            .map_err(db_error)?;
    Ok(h.flatten())
}

pub(crate) async fn set_password<'e, E: Executor<'e, Database = Any>>(
    e: E,
    user_id: i64,
    password_hash: &str,
    now: i64,
) -> Result<()> {
    sqlx::query("UPDATE self_service SET password_hash = $1, updated_at = $2 WHERE user_id = $3")
        .bind(password_hash)
        .bind(now)
        .bind(user_id)
        .execute(e)
        .await
        .map_err(db_error)?;
    Ok(())
}
