//! The audit log: every change writes one entry in the same transaction as the change.

use super::{Actor, Workspace};
use crate::error::{Error, Result};
use crate::model::{AuditEntry, AuditQuery};
use crate::store::{db_error, WriteTx};
use serde::Serialize;

/// One audit entry in the making. `before`/`after` are the model types, which carry no
/// secrets, so nothing needs redacting here.
pub(crate) struct Change<'a> {
    pub action: &'a str,
    pub entity_type: &'a str,
    pub entity_id: String,
    pub tenant_id: Option<i64>,
}

pub(crate) async fn record<B: Serialize, A: Serialize>(
    w: &mut WriteTx<'_>,
    actor: &Actor,
    at: i64,
    change: Change<'_>,
    before: Option<&B>,
    after: Option<&A>,
) -> Result<()> {
    let before = before
        .map(serde_json::to_string)
        .transpose()
        .map_err(json_err)?;
    let after = after
        .map(serde_json::to_string)
        .transpose()
        .map_err(json_err)?;
    sqlx::query(
        "INSERT INTO audit_log (at, actor, action, entity_type, entity_id, tenant_id, before_json, after_json, via) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(at)
    .bind(actor.name())
    .bind(change.action)
    .bind(change.entity_type)
    .bind(change.entity_id)
    .bind(change.tenant_id)
    .bind(before)
    .bind(after)
    .bind(actor.via())
    .execute(&mut *w.tx)
    .await
    .map_err(db_error)?;
    Ok(())
}

fn json_err(e: serde_json::Error) -> Error {
    Error::Store(format!("audit entry could not be encoded: {e}"))
}

type AuditRow = (
    i64,
    i64,
    String,
    String,
    String,
    String,
    Option<i64>,
    Option<String>,
    Option<String>,
    Option<String>,
);

impl Workspace {
    /// The newest entries first. A tenant_admin sees only its tenants' entries.
    pub async fn audit_list(&self, actor: &Actor, q: &AuditQuery) -> Result<Vec<AuditEntry>> {
        let limit = i64::from(q.limit.unwrap_or(100).clamp(1, 10_000));
        let mut tenant_ids: Vec<i64> = match &q.tenant {
            Some(slug) => vec![self.tenant_by_slug(actor, slug).await?.id],
            None => Vec::new(),
        };
        if !actor.sees_all_tenants() && q.tenant.is_none() {
            tenant_ids = actor.tenant_ids().to_vec();
            if tenant_ids.is_empty() {
                return Ok(Vec::new());
            }
        }
        // `$N` placeholders are numbered by hand: sqlx's QueryBuilder writes `?` for Any,
        // which PostgreSQL does not take.
        let mut sql = String::from(
            "SELECT id, at, actor, action, entity_type, entity_id, tenant_id, before_json, after_json, via \
             FROM audit_log",
        );
        if !tenant_ids.is_empty() {
            let marks: Vec<String> = (1..=tenant_ids.len()).map(|i| format!("${i}")).collect();
            sql.push_str(&format!(" WHERE tenant_id IN ({})", marks.join(", ")));
        }
        sql.push_str(&format!(
            " ORDER BY id DESC LIMIT ${}",
            tenant_ids.len() + 1
        ));
        let mut query = sqlx::query_as::<_, AuditRow>(&sql);
        for id in &tenant_ids {
            query = query.bind(*id);
        }
        let rows = query
            .bind(limit)
            .fetch_all(self.store.pool())
            .await
            .map_err(db_error)?;
        let parse = |s: Option<String>| s.and_then(|t| serde_json::from_str(&t).ok());
        Ok(rows
            .into_iter()
            .map(|r| AuditEntry {
                id: r.0,
                at: r.1,
                actor: r.2,
                action: r.3,
                entity_type: r.4,
                entity_id: r.5,
                tenant_id: r.6,
                before: parse(r.7),
                after: parse(r.8),
                via: r.9,
            })
            .collect())
    }
}
