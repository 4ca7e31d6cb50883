//! The pbx_renders table: the render last applied to each PBX and the one before it, sealed
//! (they hold every secret the PBX has).

use super::db_error;
use crate::error::Result;
use sqlx::{Any, AnyConnection, Executor};

#[derive(Debug, sqlx::FromRow)]
pub(crate) struct LastApplied {
    /// Sealed JSON of the render.
    pub rendered: Vec<u8>,
    pub applied_at: i64,
    pub actor: String,
}

#[derive(Debug, sqlx::FromRow)]
pub(crate) struct PreviousApplied {
    /// Sealed JSON of the render before the last one.
    pub previous: Option<Vec<u8>>,
    pub previous_at: Option<i64>,
}

/// What a PBX's row holds after an apply.
pub(crate) struct Applied<'a> {
    pub pbx_id: i64,
    pub applied_at: i64,
    pub actor: &'a str,
    pub rendered: Vec<u8>,
    pub previous: Option<Vec<u8>>,
    pub previous_at: Option<i64>,
}

pub(crate) async fn last<'e, E: Executor<'e, Database = Any>>(
    e: E,
    pbx_id: i64,
) -> Result<Option<LastApplied>> {
    sqlx::query_as("SELECT rendered, applied_at, actor FROM pbx_renders WHERE pbx_id = $1")
        .bind(pbx_id)
        .fetch_optional(e)
        .await
        .map_err(db_error)
}

pub(crate) async fn previous<'e, E: Executor<'e, Database = Any>>(
    e: E,
    pbx_id: i64,
) -> Result<Option<PreviousApplied>> {
    sqlx::query_as("SELECT previous, previous_at FROM pbx_renders WHERE pbx_id = $1")
        .bind(pbx_id)
        .fetch_optional(e)
        .await
        .map_err(db_error)
}

/// Replaces the PBX's row (in the caller's transaction).
pub(crate) async fn replace(conn: &mut AnyConnection, a: Applied<'_>) -> Result<()> {
    sqlx::query("DELETE FROM pbx_renders WHERE pbx_id = $1")
        .bind(a.pbx_id)
        .execute(&mut *conn)
        .await
        .map_err(db_error)?;
    sqlx::query(
        "INSERT INTO pbx_renders (pbx_id, applied_at, actor, rendered, previous, previous_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(a.pbx_id)
    .bind(a.applied_at)
    .bind(a.actor)
    .bind(a.rendered)
    .bind(a.previous)
    .bind(a.previous_at)
    .execute(&mut *conn)
    .await
    .map_err(db_error)?;
    Ok(())
}
