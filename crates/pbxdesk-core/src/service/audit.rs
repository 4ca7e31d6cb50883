//! The audit log: every change writes one entry in the same transaction as the change.

use super::{Actor, Workspace};
use crate::error::{Error, Result};
use crate::model::{AuditEntry, AuditQuery};
use crate::store::{audit, WriteTx};
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
    let entry = audit::NewEntry {
        at,
        actor: actor.name(),
        via: actor.via(),
        action: change.action,
        entity_type: change.entity_type,
        entity_id: &change.entity_id,
        tenant_id: change.tenant_id,
        before_json: before,
        after_json: after,
    };
    audit::insert(&mut w.tx, entry).await
}

fn json_err(e: serde_json::Error) -> Error {
    Error::Store(format!("audit entry could not be encoded: {e}"))
}

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
        let rows = audit::newest(self.store.pool(), &tenant_ids, limit).await?;
        let parse = |s: Option<String>| s.and_then(|t| serde_json::from_str(&t).ok());
        Ok(rows
            .into_iter()
            .map(|r| AuditEntry {
                id: r.id,
                at: r.at,
                actor: r.actor,
                action: r.action,
                entity_type: r.entity_type,
                entity_id: r.entity_id,
                tenant_id: r.tenant_id,
                before: parse(r.before_json),
                after: parse(r.after_json),
                via: r.via,
            })
            .collect())
    }
}
