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

/// What a page of the audit log is filtered on (all optional; the tenant list empty means all).
pub(crate) struct PageQuery<'a> {
    pub tenant_ids: &'a [i64],
    pub actor: Option<&'a str>,
    pub action: Option<&'a str>,
    pub entity_type: Option<&'a str>,
    pub from: Option<i64>,
    pub to: Option<i64>,
    pub before: Option<i64>,
    pub limit: i64,
}

/// A page of entries, newest first (keyset on (at, id): each page costs the same at any
/// depth, and a time window is a range of the same order).
pub(crate) async fn page<'e, E: Executor<'e, Database = Any>>(
    e: E,
    q: &PageQuery<'_>,
) -> Result<Vec<(EntryRow, Option<String>)>> {
    // `$N` placeholders are numbered by hand (sqlx's QueryBuilder writes `?` for Any).
    enum Arg<'a> {
        I(i64),
        S(&'a str),
    }
    let mut args: Vec<Arg<'_>> = Vec::new();
    let mut wh: Vec<String> = Vec::new();
    let mark = |args: &Vec<Arg<'_>>| format!("${}", args.len());
    if !q.tenant_ids.is_empty() {
        let mut marks = Vec::new();
        for id in q.tenant_ids {
            args.push(Arg::I(*id));
            marks.push(mark(&args));
        }
        wh.push(format!("a.tenant_id IN ({})", marks.join(", ")));
    }
    if let Some(actor) = q.actor {
        args.push(Arg::S(actor));
        wh.push(format!("a.actor = {}", mark(&args)));
    }
    if let Some(action) = q.action {
        args.push(Arg::S(action));
        wh.push(format!("a.action = {}", mark(&args)));
    }
    if let Some(t) = q.entity_type {
        args.push(Arg::S(t));
        wh.push(format!("a.entity_type = {}", mark(&args)));
    }
    if let Some(from) = q.from {
        args.push(Arg::I(from));
        wh.push(format!("a.at >= {}", mark(&args)));
    }
    if let Some(to) = q.to {
        args.push(Arg::I(to));
        wh.push(format!("a.at < {}", mark(&args)));
    }
    if let Some(before) = q.before {
        // After the entry the last page ended with, in (at, id) order.
        args.push(Arg::I(before));
        let m = mark(&args);
        wh.push(format!(
            "(a.at, a.id) < ((SELECT b.at FROM audit_log b WHERE b.id = {m}), {m})"
        ));
    }
    args.push(Arg::I(q.limit));
    let limit = mark(&args);
    let sql = format!(
        "SELECT a.id AS id, a.at AS at, a.actor AS actor, a.action AS action, \
         a.entity_type AS entity_type, a.entity_id AS entity_id, a.tenant_id AS tenant_id, \
         a.before_json AS before_json, a.after_json AS after_json, a.via AS via, t.slug AS slug \
         FROM audit_log a LEFT JOIN tenants t ON t.id = a.tenant_id {} ORDER BY a.at DESC, a.id DESC LIMIT {limit}",
        if wh.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", wh.join(" AND "))
        }
    );
    let mut query = sqlx::query_as::<_, PageRow>(&sql);
    for a in args {
        query = match a {
            Arg::I(i) => query.bind(i),
            Arg::S(s) => query.bind(s),
        };
    }
    let rows = query.fetch_all(e).await.map_err(db_error)?;
    Ok(rows
        .into_iter()
        .map(|r| {
            (
                EntryRow {
                    id: r.id,
                    at: r.at,
                    actor: r.actor,
                    action: r.action,
                    entity_type: r.entity_type,
                    entity_id: r.entity_id,
                    tenant_id: r.tenant_id,
                    before_json: r.before_json,
                    after_json: r.after_json,
                    via: r.via,
                },
                r.slug,
            )
        })
        .collect())
}

#[derive(sqlx::FromRow)]
struct PageRow {
    id: i64,
    at: i64,
    actor: String,
    action: String,
    entity_type: String,
    entity_id: String,
    tenant_id: Option<i64>,
    before_json: Option<String>,
    after_json: Option<String>,
    via: Option<String>,
    slug: Option<String>,
}
