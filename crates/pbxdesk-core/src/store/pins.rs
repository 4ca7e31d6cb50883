//! Voicemail PINs changed here and not yet known to be on the PBX (`users.pin_pending_since`).

use super::db_error;
use crate::error::Result;
use sqlx::{Any, Executor};

/// A user whose PIN waits for the PBX, with the PIN as sealed.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct PendingPin {
    pub user_id: i64,
    pub tenant: String,
    pub extension: i64,
    pub voicemail_pin: Vec<u8>,
}

/// The pending PINs of a PBX's users with voicemail on (only one user's when `only` is given):
/// without a mailbox a PIN waits for nothing.
pub(crate) async fn pending<'e, E: Executor<'e, Database = Any>>(
    e: E,
    pbx_id: i64,
    only: Option<i64>,
) -> Result<Vec<PendingPin>> {
    sqlx::query_as(
        "SELECT u.id AS user_id, t.slug AS tenant, u.extension AS extension, \
         u.voicemail_pin AS voicemail_pin \
         FROM users u JOIN tenants t ON t.id = u.tenant_id \
         WHERE t.pbx_id = $1 AND u.pin_pending_since IS NOT NULL AND u.voicemail_pin IS NOT NULL \
         AND u.status <> 'deleted' AND CAST(u.voicemail_enabled AS INTEGER) = 1 \
         AND ($2 IS NULL OR u.id = $2) \
         ORDER BY t.slug, u.extension",
    )
    .bind(pbx_id)
    .bind(only)
    .fetch_all(e)
    .await
    .map_err(db_error)
}

/// The PIN is on the PBX: no longer pending, unless it changed again since it was read (the
/// sealed value differs then: every seal has its own nonce).
pub(crate) async fn settle<'e, E: Executor<'e, Database = Any>>(
    e: E,
    user_id: i64,
    sealed: &[u8],
) -> Result<()> {
    sqlx::query("UPDATE users SET pin_pending_since = NULL WHERE id = $1 AND voicemail_pin = $2")
        .bind(user_id)
        .bind(sealed.to_vec())
        .execute(e)
        .await
        .map_err(db_error)?;
    Ok(())
}

/// The PBX a user's tenant is on.
pub(crate) async fn pbx_of_user<'e, E: Executor<'e, Database = Any>>(
    e: E,
    user_id: i64,
) -> Result<i64> {
    sqlx::query_scalar(
        "SELECT t.pbx_id FROM users u JOIN tenants t ON t.id = u.tenant_id WHERE u.id = $1",
    )
    .bind(user_id)
    .fetch_one(e)
    .await
    .map_err(db_error)
}
