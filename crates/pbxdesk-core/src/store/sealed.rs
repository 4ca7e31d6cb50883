//! Reading and writing the sealed columns by name (`service/sealed.rs` holds their list). The
//! table, column and key names come from that fixed list, never from input.

use super::db_error;
use crate::error::Result;
use sqlx::{Any, Executor};

/// Where a sealed value lives.
#[derive(Clone, Copy)]
pub(crate) struct Column {
    pub table: &'static str,
    pub column: &'static str,
    pub key: &'static str,
}

/// The sealed value of row `id`, if it has one.
pub(crate) async fn read<'e, E: Executor<'e, Database = Any>>(
    e: E,
    c: Column,
    id: i64,
) -> Result<Option<Vec<u8>>> {
    let v: Option<Option<Vec<u8>>> = sqlx::query_scalar(&format!(
        "SELECT {} FROM {} WHERE {} = $1",
        c.column, c.table, c.key
    ))
    .bind(id)
    .fetch_optional(e)
    .await
    .map_err(db_error)?;
    Ok(v.flatten())
}

/// Every row's sealed value, with its key.
pub(crate) async fn all<'e, E: Executor<'e, Database = Any>>(
    e: E,
    c: Column,
) -> Result<Vec<(i64, Vec<u8>)>> {
    sqlx::query_as(&format!(
        "SELECT {}, {} FROM {} WHERE {} IS NOT NULL",
        c.key, c.column, c.table, c.column
    ))
    .fetch_all(e)
    .await
    .map_err(db_error)
}

pub(crate) async fn write<'e, E: Executor<'e, Database = Any>>(
    e: E,
    c: Column,
    id: i64,
    blob: Vec<u8>,
) -> Result<()> {
    sqlx::query(&format!(
        "UPDATE {} SET {} = $1 WHERE {} = $2",
        c.table, c.column, c.key
    ))
    .bind(blob)
    .bind(id)
    .execute(e)
    .await
    .map_err(db_error)?;
    Ok(())
}
