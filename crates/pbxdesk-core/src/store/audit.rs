//! The audit log: one row per change (written in the change's own transaction), read newest
//! first.

use super::db_error;
use crate::error::Result;
use sqlx::{Any, AnyConnection, Executor};

/// An entry to write: `before`/`after` are JSON of model types (never a secret).
pub(crate) struct NewEntry<'a> {
    pub at: i64,
    pub actor: &'a str,
    pub via: Option<&'a str>,
    pub action: &'a str,
    pub entity_type: &'a str,
    pub entity_id: &'a str,
    pub tenant_id: Option<i64>,
    pub before_json: Option<String>,
    pub after_json: Option<String>,
}

/// An entry as stored.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct EntryRow {
    pub id: i64,
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub entity_type: String,
    pub entity_id: String,
    pub tenant_id: Option<i64>,
    pub before_json: Option<String>,
    pub after_json: Option<String>,
    pub via: Option<String>,
}

const COLUMNS: &str =
    "id, at, actor, action, entity_type, entity_id, tenant_id, before_json, after_json, via";

pub(crate) async fn insert(c: &mut AnyConnection, e: NewEntry<'_>) -> Result<()> {
    sqlx::query(
        "INSERT INTO audit_log (at, actor, action, entity_type, entity_id, tenant_id, \
         before_json, after_json, via) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(e.at)
    .bind(e.actor)
    .bind(e.action)
    .bind(e.entity_type)
    .bind(e.entity_id)
    .bind(e.tenant_id)
    .bind(e.before_json)
    .bind(e.after_json)
    .bind(e.via)
    .execute(c)
    .await
    .map_err(db_error)?;
    Ok(())
}

/// The newest `limit` entries, of `tenant_ids` only when any are given.
pub(crate) async fn newest<'e, E: Executor<'e, Database = Any>>(
    e: E,
    tenant_ids: &[i64],
    limit: i64,
) -> Result<Vec<EntryRow>> {
    // `$N` placeholders are numbered by hand: sqlx's QueryBuilder writes `?` for Any, which
    // PostgreSQL does not take.
    let mut sql = format!("SELECT {COLUMNS} FROM audit_log");
    if !tenant_ids.is_empty() {
        let marks: Vec<String> = (1..=tenant_ids.len()).map(|i| format!("${i}")).collect();
        sql.push_str(&format!(" WHERE tenant_id IN ({})", marks.join(", ")));
    }
    sql.push_str(&format!(
        " ORDER BY id DESC LIMIT ${}",
        tenant_ids.len() + 1
    ));
    let mut query = sqlx::query_as::<_, EntryRow>(&sql);
    for id in tenant_ids {
        query = query.bind(*id);
    }
    query.bind(limit).fetch_all(e).await.map_err(db_error)
}

/// The applies of a PBX and the PBX's own rollbacks, newest first.
pub(crate) async fn applies_of_pbx<'e, E: Executor<'e, Database = Any>>(
    e: E,
    pbx: &str,
    limit: i64,
) -> Result<Vec<EntryRow>> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM audit_log \
         WHERE entity_type = 'pbx' AND entity_id = $1 \
           AND action IN ('pbx.apply', 'pbx.apply.rolled_back_by_pbx') \
         ORDER BY id DESC LIMIT $2"
    ))
    .bind(pbx)
    .bind(limit)
    .fetch_all(e)
    .await
    .map_err(db_error)
}
