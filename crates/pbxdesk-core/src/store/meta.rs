//! `workspace_meta`: a few facts about the workspace itself (its key's check value, markers of
//! one-time upgrades), by key.

use super::db_error;
use crate::error::Result;
use sqlx::{Any, Executor};

pub(crate) async fn get<'e, E: Executor<'e, Database = Any>>(
    e: E,
    key: &str,
) -> Result<Option<String>> {
    sqlx::query_scalar("SELECT value FROM workspace_meta WHERE key = $1")
        .bind(key)
        .fetch_optional(e)
        .await
        .map_err(db_error)
}

/// Writes `value` under `key` unless the key is there already (the first writer wins).
pub(crate) async fn put_if_absent<'e, E: Executor<'e, Database = Any>>(
    e: E,
    key: &str,
    value: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO workspace_meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
    )
    .bind(key)
    .bind(value)
    .execute(e)
    .await
    .map_err(db_error)?;
    Ok(())
}
