//! A tenant's inbound numbers as CSV: `number, label, destination, trunk`, matched on the
//! number (read in any common form, with the tenant's country for national ones).

use super::table::{self, formula_safe, text_cell, Table};
use super::PROGRESS_EVERY;
use crate::domain::{DialingPlan, DidDestination, DisplayName, TrunkName, E164};
use crate::error::{printable, Result};
use crate::model::{Did, ImportAction, ImportProblem, ImportProgress, ImportReport, ImportRow};
use crate::service::audit::{record, Change};
use crate::service::tenant::TenantKey;
use crate::service::trunk::trunk_usable_by_tenant;
use crate::service::{Actor, Workspace};
use crate::store::{db_error, dids, users};
use sqlx::AnyConnection;
use std::collections::{BTreeSet, HashMap, HashSet};

const COLUMNS: &[&str] = &["number", "label", "destination", "trunk", "tenant"];

struct Line {
    line: u32,
    number: Option<E164>,
    label: Option<DisplayName>,
    destination: Option<DidDestination>,
    trunk: Option<Option<TrunkName>>,
    tenant: Option<String>,
    bad: bool,
}

enum Op {
    Add {
        number: String,
        label: String,
        destination: String,
        trunk: Option<String>,
    },
    Update {
        before: Did,
        after: Did,
    },
}

fn parse_lines(t: &Table, country: &str, problems: &mut Vec<ImportProblem>) -> Vec<Line> {
    let plan = DialingPlan::for_country(country).ok();
    t.rows
        .iter()
        .map(|row| {
            let mut bad = false;
            let cell = |col: &str| -> Option<&str> { row.get(t.col(col)) };
            let mut push = |col: &str, value: &str, rule: String| {
                problems.push(ImportProblem {
                    line: row.line,
                    column: t.spelled(col),
                    value: printable(value),
                    rule,
                });
            };
            let number = match cell("number") {
                None | Some("") => {
                    push(
                        "number",
                        "",
                        "required: the rows are matched on the number".into(),
                    );
                    bad = true;
                    None
                }
                Some(v) => match plan.map(|p| E164::normalize(v, p)) {
                    Some(Ok(n)) => Some(n),
                    Some(Err(e)) => {
                        push("number", v, e.rule);
                        bad = true;
                        None
                    }
                    None => {
                        push(
                            "number",
                            v,
                            format!("the tenant's country {country} has no dialing plan"),
                        );
                        bad = true;
                        None
                    }
                },
            };
            let label = match cell("label") {
                None | Some("") => None,
                Some(v) => match DisplayName::parse("label", text_cell(v)) {
                    Ok(l) => Some(l),
                    Err(e) => {
                        push("label", v, e.rule);
                        bad = true;
                        None
                    }
                },
            };
            let destination = match cell("destination") {
                None | Some("") => None,
                Some(v) => match DidDestination::parse(v) {
                    Ok(d) => Some(d),
                    Err(e) => {
                        push("destination", v, e.rule);
                        bad = true;
                        None
                    }
                },
            };
            let trunk = match cell("trunk") {
                None => None,
                Some("") => Some(None),
                Some(v) => match TrunkName::parse(v) {
                    Ok(x) => Some(Some(x)),
                    Err(e) => {
                        push("trunk", v, e.rule);
                        bad = true;
                        None
                    }
                },
            };
            let tenant = cell("tenant").filter(|s| !s.is_empty()).map(str::to_owned);
            Line {
                line: row.line,
                number,
                label,
                destination,
                trunk,
                tenant,
                bad,
            }
        })
        .collect()
}

impl Workspace {
    /// Imports a tenant's inbound numbers from CSV: adds the new ones, updates the ones it has
    /// (label, destination, trunk), leaves the rest. All or nothing; a dry run writes nothing.
    pub async fn dids_import(
        &self,
        actor: &Actor,
        tenant_slug: &str,
        csv: &[u8],
        dry_run: bool,
        progress: &(dyn Fn(ImportProgress) + Send + Sync),
    ) -> Result<ImportReport> {
        actor.require_write()?;
        let tenant = self.tenant_key(actor, tenant_slug).await?;
        let mut problems = Vec::new();
        let mut report = ImportReport {
            tenant: tenant.slug.clone(),
            dry_run,
            written: false,
            created: 0,
            updated: 0,
            unchanged: 0,
            rows: Vec::new(),
            errors: Vec::new(),
        };
        let known = |c: &str| COLUMNS.contains(&c);
        let Some(t) = table::read(csv, &known, &COLUMNS.join(", "), &mut problems) else {
            report.errors = problems;
            return Ok(report);
        };
        let lines = parse_lines(&t, &tenant.country, &mut problems);
        let (rows, ops) = if dry_run {
            let mut conn = self.store.pool().acquire().await.map_err(db_error)?;
            self.plan_dids(&mut conn, &tenant, &t, &lines, &mut problems)
                .await?
        } else {
            let mut w = self.store.begin_write().await?;
            let (rows, ops) = self
                .plan_dids(&mut w.tx, &tenant, &t, &lines, &mut problems)
                .await?;
            if problems.is_empty() {
                let now = self.now();
                let total = u32::try_from(ops.len()).unwrap_or(u32::MAX);
                progress(ImportProgress { done: 0, total });
                for (i, op) in ops.iter().enumerate() {
                    self.write_did(&mut w, actor, &tenant, op, now).await?;
                    if (i + 1) % PROGRESS_EVERY == 0 {
                        let done = u32::try_from(i + 1).unwrap_or(u32::MAX);
                        progress(ImportProgress { done, total });
                    }
                }
                let summary = summary_of(&rows);
                let change = Change {
                    action: "dids.import",
                    entity_type: "tenant",
                    entity_id: tenant.slug.clone(),
                    tenant_id: Some(tenant.id),
                };
                record::<(), _>(&mut w, actor, now, change, None, Some(&summary)).await?;
                w.commit().await?;
                progress(ImportProgress { done: total, total });
                report.written = true;
            }
            (rows, ops)
        };
        drop(ops);
        Ok(super::finish(report, rows, problems))
    }

    async fn plan_dids(
        &self,
        conn: &mut AnyConnection,
        tenant: &TenantKey,
        t: &Table,
        lines: &[Line],
        problems: &mut Vec<ImportProblem>,
    ) -> Result<(Vec<ImportRow>, Vec<Op>)> {
        let ours: HashMap<String, Did> = dids::of_tenant(&mut *conn, tenant.id)
            .await?
            .into_iter()
            .map(|r| {
                let d = r.into_did();
                (d.number.clone(), d)
            })
            .collect();
        let on_pbx: HashSet<String> = dids::numbers_on_pbx_of(&mut *conn, tenant.id)
            .await?
            .into_iter()
            .filter(|(_, t)| *t != tenant.id)
            .map(|(n, _)| n)
            .collect();
        let live: HashSet<u32> = users::of_tenant(&mut *conn, tenant.id)
            .await?
            .into_iter()
            .filter_map(|u| u32::try_from(u.extension).ok())
            .collect();
        let named: BTreeSet<&str> = lines
            .iter()
            .filter_map(|l| {
                l.trunk
                    .as_ref()
                    .and_then(|x| x.as_ref())
                    .map(TrunkName::as_str)
            })
            .collect();
        let mut usable = HashSet::new();
        for name in named {
            if trunk_usable_by_tenant(conn, tenant.id, name).await? {
                usable.insert(name.to_owned());
            }
        }
        let mut seen: HashMap<String, u32> = HashMap::new();
        let mut rows = Vec::new();
        let mut ops = Vec::new();
        for l in lines {
            let mut push = |col: &str, value: &str, rule: String| {
                problems.push(ImportProblem {
                    line: l.line,
                    column: t.spelled(col),
                    value: printable(value),
                    rule,
                });
            };
            let key = l
                .number
                .as_ref()
                .map_or(String::new(), |n| n.as_str().to_owned());
            let mut row = ImportRow {
                line: l.line,
                key: key.clone(),
                action: ImportAction::Error,
                extension: None,
                changes: Vec::new(),
            };
            let Some(number) = &l.number else {
                rows.push(row);
                continue;
            };
            let mut ok = !l.bad;
            if let Some(first) = seen.get(&key) {
                push(
                    "number",
                    &key,
                    format!("given twice in the file (also on line {first})"),
                );
                ok = false;
            }
            seen.entry(key.clone()).or_insert(l.line);
            if let Some(x) = &l.tenant {
                if x != &tenant.slug {
                    push(
                        "tenant",
                        x,
                        format!(
                            "this file is imported into tenant \"{}\"; import this row into its own tenant",
                            tenant.slug
                        ),
                    );
                    ok = false;
                }
            }
            if on_pbx.contains(number.as_str()) {
                push(
                    "number",
                    number.as_str(),
                    "already routed on this PBX (a DID is unique on its PBX)".into(),
                );
                ok = false;
            }
            if let Some(ext) = l.destination.as_ref().and_then(DidDestination::extension) {
                if !live.contains(&ext.get()) {
                    push(
                        "destination",
                        &l.destination
                            .as_ref()
                            .map(ToString::to_string)
                            .unwrap_or_default(),
                        format!(
                            "tenant \"{}\" has no user with extension {ext}",
                            tenant.slug
                        ),
                    );
                    ok = false;
                }
            }
            if let Some(Some(x)) = &l.trunk {
                if !usable.contains(x.as_str()) {
                    push(
                        "trunk",
                        x.as_str(),
                        "a trunk of the tenant's PBX that the tenant may use (see `trunk list`)"
                            .into(),
                    );
                    ok = false;
                }
            }
            match ours.get(number.as_str()) {
                None => {
                    row.action = ImportAction::Create;
                    let Some(dest) = &l.destination else {
                        push("destination", "", "required for a new number".into());
                        rows.push(row);
                        continue;
                    };
                    if ok {
                        ops.push(Op::Add {
                            number: number.as_str().to_owned(),
                            label: l
                                .label
                                .as_ref()
                                .map_or_else(|| number.as_str().to_owned(), |x| x.to_string()),
                            destination: dest.to_string(),
                            trunk: l.trunk.clone().flatten().map(|x| x.to_string()),
                        });
                    }
                }
                Some(before) => {
                    let mut after = before.clone();
                    if let Some(x) = &l.label {
                        after.label = x.to_string();
                    }
                    if let Some(x) = &l.destination {
                        after.destination = x.to_string();
                    }
                    if let Some(x) = &l.trunk {
                        after.trunk = x.as_ref().map(ToString::to_string);
                    }
                    for (field, changed) in [
                        ("label", after.label != before.label),
                        ("destination", after.destination != before.destination),
                        ("trunk", after.trunk != before.trunk),
                    ] {
                        if changed {
                            row.changes.push(field.to_owned());
                        }
                    }
                    if row.changes.is_empty() {
                        row.action = ImportAction::Unchanged;
                    } else {
                        row.action = ImportAction::Update;
                        after.version += 1;
                        if ok {
                            ops.push(Op::Update {
                                before: before.clone(),
                                after,
                            });
                        }
                    }
                }
            }
            rows.push(row);
        }
        Ok((rows, ops))
    }

    async fn write_did(
        &self,
        w: &mut crate::store::WriteTx<'_>,
        actor: &Actor,
        tenant: &TenantKey,
        op: &Op,
        now: i64,
    ) -> Result<()> {
        match op {
            Op::Add {
                number,
                label,
                destination,
                trunk,
            } => {
                let id = dids::insert(
                    &mut *w.tx,
                    dids::NewDidRow {
                        tenant_id: tenant.id,
                        number,
                        label,
                        destination: destination.clone(),
                        trunk: trunk.as_deref(),
                        now,
                    },
                )
                .await?;
                let did = Did {
                    id,
                    tenant: tenant.slug.clone(),
                    number: number.clone(),
                    label: label.clone(),
                    destination: destination.clone(),
                    trunk: trunk.clone(),
                    version: 1,
                };
                let c = Change {
                    action: "did.add",
                    entity_type: "did",
                    entity_id: number.clone(),
                    tenant_id: Some(tenant.id),
                };
                record::<Did, Did>(w, actor, now, c, None, Some(&did)).await
            }
            Op::Update { before, after } => {
                let done = dids::update(
                    &mut *w.tx,
                    before.id,
                    before.version,
                    &after.label,
                    &after.destination,
                    after.trunk.as_deref(),
                    now,
                )
                .await?;
                if !done {
                    return Err(crate::error::Error::Conflict(format!(
                        "DID {} changed while importing; run the import again",
                        before.number
                    )));
                }
                let c = Change {
                    action: "did.update",
                    entity_type: "did",
                    entity_id: after.number.clone(),
                    tenant_id: Some(tenant.id),
                };
                record(w, actor, now, c, Some(before), Some(after)).await
            }
        }
    }

    /// A tenant's inbound numbers as CSV, by number: the import's columns.
    pub async fn dids_export(&self, actor: &Actor, tenant_slug: &str) -> Result<String> {
        let list = self.did_list(actor, tenant_slug).await?;
        let header: Vec<String> = ["number", "label", "destination", "trunk"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        let rows: Vec<Vec<String>> = list
            .into_iter()
            .map(|d| {
                vec![
                    d.number,
                    formula_safe(&d.label),
                    d.destination,
                    d.trunk.unwrap_or_default(),
                ]
            })
            .collect();
        table::write(&header, &rows)
    }
}

fn summary_of(rows: &[ImportRow]) -> serde_json::Value {
    let count = |a: ImportAction| rows.iter().filter(|r| r.action == a).count();
    serde_json::json!({
        "created": count(ImportAction::Create),
        "updated": count(ImportAction::Update),
        "unchanged": count(ImportAction::Unchanged),
        "rows": rows.len(),
    })
}
