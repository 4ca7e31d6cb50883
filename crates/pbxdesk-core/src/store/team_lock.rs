//! The team's apply lock on PostgreSQL: a session-level advisory lock per PBX, held by the
//! applying connection (detached from the pool) and gone with it if the process dies.

use super::db_error;
use crate::error::Result;
use sqlx::AnyConnection;

/// Takes the lock `(class, key)` on this connection; whether it was free.
pub(crate) async fn try_take(conn: &mut AnyConnection, class: i32, key: i32) -> Result<bool> {
    sqlx::query_scalar("SELECT pg_try_advisory_lock($1, $2)")
        .bind(class)
        .bind(key)
        .fetch_one(conn)
        .await
        .map_err(db_error)
}

/// Gives the lock back (closing the connection would too).
pub(crate) async fn give_back(conn: &mut AnyConnection, class: i32, key: i32) {
    let _ = sqlx::query("SELECT pg_advisory_unlock($1, $2)")
        .bind(class)
        .bind(key)
        .execute(conn)
        .await;
}
