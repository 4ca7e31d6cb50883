//! The history of applies to a PBX, read from the audit log (each apply records its report
//! there, with the diff and every step; a rollback the PBX ran by itself is recorded by the
//! next apply that finds it).

use super::{Actor, ApplyStep, Workspace};
use crate::error::Result;
use serde::Serialize;

/// One apply, as the history shows it. `diff` is the unified diff of every file (secrets
/// masked, as in the report).
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApplyRecord {
    #[cfg_attr(feature = "specta", specta(type = i32))]
    pub id: i64,
    /// Unix milliseconds (beyond i32; a JavaScript number holds it exactly).
    #[cfg_attr(feature = "specta", specta(type = f64))]
    pub at: i64,
    pub actor: String,
    /// `applied`, `rolled_back`, `stopped`, or `rolled_back_by_pbx` (the laptop went away
    /// before it confirmed).
    pub outcome: String,
    pub summary: String,
    pub failed: Option<String>,
    pub steps: Vec<ApplyStep>,
    pub diff: String,
    /// For a rollback the PBX ran by itself: its rollback.log.
    pub log: Option<String>,
}

fn text(v: &serde_json::Value, key: &str) -> String {
    v.get(key)
        .and_then(|x| x.as_str())
        .unwrap_or_default()
        .to_owned()
}

/// Steps recorded before steps had kinds get the kind `other`.
fn with_kinds(mut steps: serde_json::Value) -> serde_json::Value {
    if let Some(list) = steps.as_array_mut() {
        for s in list.iter_mut().filter_map(|s| s.as_object_mut()) {
            s.entry("kind").or_insert_with(|| "other".into());
        }
    }
    steps
}

impl Workspace {
    /// The last `limit` applies to a PBX, newest first.
    pub async fn pbx_apply_history(
        &self,
        actor: &Actor,
        pbx: &str,
        limit: u32,
    ) -> Result<Vec<ApplyRecord>> {
        // The history holds every tenant's changes: MSP operators and auditors only.
        if !actor.sees_all_tenants() {
            return Err(crate::error::Error::Forbidden(format!(
                "operator \"{}\" may not read the apply history of a shared PBX",
                actor.name()
            )));
        }
        let pbx = self.pbx_show(actor, pbx).await?;
        let rows = crate::store::audit::applies_of_pbx(
            self.store.pool(),
            &pbx.name,
            i64::from(limit.clamp(1, 1000)),
        )
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| {
                let (id, at, who, action) = (r.id, r.at, r.actor, r.action);
                let v: serde_json::Value = r
                    .after_json
                    .and_then(|a| serde_json::from_str(&a).ok())
                    .unwrap_or_default();
                if action == "pbx.apply.rolled_back_by_pbx" {
                    let complete = v.get("complete").and_then(|c| c.as_bool()) == Some(true);
                    return ApplyRecord {
                        id,
                        at,
                        actor: who,
                        outcome: "rolled_back_by_pbx".into(),
                        summary: format!(
                            "the apply backed up in {} was not confirmed; the PBX rolled it back by itself{}",
                            text(&v, "backup"),
                            if complete { "" } else { " INCOMPLETELY" }
                        ),
                        failed: Some(super::StepKind::Confirm.label().into()),
                        steps: Vec::new(),
                        diff: String::new(),
                        log: Some(text(&v, "log")),
                    };
                }
                let steps = v
                    .get("steps")
                    .and_then(|s| serde_json::from_value(with_kinds(s.clone())).ok())
                    .unwrap_or_default();
                let diff = v
                    .pointer("/diff/files")
                    .and_then(|f| f.as_array())
                    .map(|files| {
                        files
                            .iter()
                            .map(|f| text(f, "unified"))
                            .collect::<Vec<_>>()
                            .join("")
                    })
                    .unwrap_or_default();
                ApplyRecord {
                    id,
                    at,
                    actor: who,
                    outcome: text(&v, "outcome"),
                    summary: text(&v, "summary"),
                    // A step's kind (or, recorded by an older version, its name).
                    failed: v.get("failed").and_then(|f| {
                        serde_json::from_value::<super::StepKind>(f.clone())
                            .map(|k| k.label().to_owned())
                            .ok()
                            .or_else(|| f.as_str().map(str::to_owned))
                    }),
                    steps,
                    diff,
                    log: None,
                }
            })
            .collect())
    }
}
