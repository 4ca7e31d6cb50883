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

/// Entries an audit page holds when the filter does not say.
const PAGE: u32 = 50;
/// The most entries a page holds.
const MAX_PAGE: u32 = 500;
/// The most entries an audit export writes.
const MAX_EXPORT: usize = 1_000_000;

/// A JSON value as the audit screen shows it: text as it is, anything else in JSON.
fn shown(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::Null => None,
        serde_json::Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// A field that could hold a secret shows that it changed, never a value. (Audit entries are
/// made of model types, which carry none; this keeps it so if one ever did.)
fn secret_field(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    !n.ends_with("_set")
        && !n.ends_with("_pending")
        && ["password", "secret", "pin", "token", "passphrase"]
            .iter()
            .any(|s| n.contains(s))
}

/// The fields whose values differ between `before` and `after` (top-level keys of objects),
/// in their order; a value that is not an object counts as one field, `value`.
pub(crate) fn changed_fields(
    before: Option<&serde_json::Value>,
    after: Option<&serde_json::Value>,
) -> Vec<crate::model::FieldChange> {
    use serde_json::{Map, Value};
    let as_map = |v: Option<&Value>| -> Option<Map<String, Value>> {
        match v {
            None => Some(Map::new()),
            Some(Value::Object(m)) => Some(m.clone()),
            Some(_) => None,
        }
    };
    let (Some(b), Some(a)) = (as_map(before), as_map(after)) else {
        return vec![crate::model::FieldChange {
            field: "value".into(),
            before: before.and_then(shown),
            after: after.and_then(shown),
        }];
    };
    let mut keys: Vec<&String> = b.keys().collect();
    keys.extend(a.keys().filter(|k| !b.contains_key(*k)));
    keys.into_iter()
        .filter(|k| b.get(*k) != a.get(*k) && k.as_str() != "version")
        .filter(|k| {
            // A new or removed entity lists what it has, not its empty fields.
            b.get(*k).and_then(shown).is_some() || a.get(*k).and_then(shown).is_some()
        })
        .map(|k| {
            let secret = secret_field(k);
            crate::model::FieldChange {
                field: k.clone(),
                before: if secret {
                    None
                } else {
                    b.get(k).and_then(shown)
                },
                after: if secret {
                    Some("changed".into())
                } else {
                    a.get(k).and_then(shown)
                },
            }
        })
        .collect()
}

impl Workspace {
    /// A page of the audit log, newest first, filtered by tenant, who, what and when. A
    /// tenant_admin sees only its tenants' entries (another tenant is "not found").
    pub async fn audit_page(
        &self,
        actor: &Actor,
        f: &crate::model::AuditFilter,
    ) -> Result<crate::model::AuditPage> {
        let limit = f.limit.unwrap_or(PAGE).clamp(1, MAX_PAGE);
        let (entries, more) = self.audit_entries(actor, f, limit as usize).await?;
        let next_before = if more {
            entries.last().map(|e| e.id)
        } else {
            None
        };
        Ok(crate::model::AuditPage {
            entries,
            next_before,
        })
    }

    /// Up to `limit` entries of the filter, and whether more follow.
    async fn audit_entries(
        &self,
        actor: &Actor,
        f: &crate::model::AuditFilter,
        limit: usize,
    ) -> Result<(Vec<crate::model::AuditEntryView>, bool)> {
        let clean = |s: &Option<String>| {
            s.as_deref()
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        let tenant_ids: Vec<i64> = match clean(&f.tenant) {
            Some(slug) => vec![self.tenant_by_slug(actor, &slug).await?.id],
            None if actor.sees_all_tenants() => Vec::new(),
            None => {
                let ids = actor.tenant_ids().to_vec();
                if ids.is_empty() {
                    return Ok((Vec::new(), false));
                }
                ids
            }
        };
        let actor_name = clean(&f.actor);
        let action = clean(&f.action);
        let entity_type = clean(&f.entity_type);
        let q = audit::PageQuery {
            tenant_ids: &tenant_ids,
            actor: actor_name.as_deref(),
            action: action.as_deref(),
            entity_type: entity_type.as_deref(),
            from: f.from,
            to: f.to,
            before: f.before,
            limit: i64::try_from(limit + 1).unwrap_or(i64::MAX),
        };
        let mut rows = audit::page(self.store.pool(), &q).await?;
        let more = rows.len() > limit;
        rows.truncate(limit);
        let parse = |s: Option<String>| s.and_then(|t| serde_json::from_str(&t).ok());
        let entries = rows
            .into_iter()
            .map(|(r, slug)| {
                let before: Option<serde_json::Value> = parse(r.before_json);
                let after: Option<serde_json::Value> = parse(r.after_json);
                crate::model::AuditEntryView {
                    id: r.id,
                    at: r.at,
                    actor: r.actor,
                    via: r.via,
                    action: r.action,
                    entity_type: r.entity_type,
                    entity_id: r.entity_id,
                    tenant: slug,
                    changes: changed_fields(before.as_ref(), after.as_ref()),
                }
            })
            .collect();
        Ok((entries, more))
    }

    /// The audit entries of a filter as CSV (newest first, at most 1,000,000): time (UTC,
    /// RFC 3339), who, from where, what, which, tenant, and the fields that changed.
    pub async fn audit_export(
        &self,
        actor: &Actor,
        f: &crate::model::AuditFilter,
    ) -> Result<String> {
        let mut out = csv::WriterBuilder::new()
            .terminator(csv::Terminator::Any(b'\n'))
            .from_writer(Vec::new());
        let fail = |e: csv::Error| Error::Store(format!("cannot write CSV: {e}"));
        out.write_record([
            "time",
            "actor",
            "via",
            "action",
            "entity_type",
            "entity_id",
            "tenant",
            "changes",
        ])
        .map_err(fail)?;
        let mut filter = f.clone();
        let mut written = 0usize;
        loop {
            let (page, more) = self
                .audit_entries(actor, &filter, MAX_PAGE as usize)
                .await?;
            for e in &page {
                let changes: Vec<String> = e
                    .changes
                    .iter()
                    .map(|c| {
                        format!(
                            "{}: {} → {}",
                            c.field,
                            c.before.as_deref().unwrap_or("—"),
                            c.after.as_deref().unwrap_or("—")
                        )
                    })
                    .collect();
                let text = |s: &str| super::bulk::formula_safe(s);
                out.write_record([
                    rfc3339(e.at),
                    text(&e.actor),
                    e.via.clone().unwrap_or_default(),
                    e.action.clone(),
                    e.entity_type.clone(),
                    text(&e.entity_id),
                    e.tenant.clone().unwrap_or_default(),
                    text(&changes.join("; ")),
                ])
                .map_err(fail)?;
            }
            written += page.len();
            match page.last() {
                Some(last) if more && written < MAX_EXPORT => filter.before = Some(last.id),
                _ => break,
            }
        }
        let bytes = out
            .into_inner()
            .map_err(|e| Error::Store(format!("cannot write CSV: {e}")))?;
        String::from_utf8(bytes).map_err(|e| Error::Store(format!("cannot write CSV: {e}")))
    }
}

/// Unix milliseconds as an RFC 3339 UTC time, to the second.
fn rfc3339(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| ms.to_string())
}
