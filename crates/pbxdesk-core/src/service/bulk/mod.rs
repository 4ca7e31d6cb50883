//! Bulk import and export of a tenant's users and numbers as CSV.
//!
//! An import is planned whole before anything is written: every row is parsed and checked
//! (all problems of the file at once, each with its line, column, value and rule), matched
//! with the tenant's users or numbers, and given an action (create, update, unchanged). Only a
//! file with no problem is written, in one transaction, planned again inside it so that what is
//! written is what the state read in that transaction allows. New extensions are allocated in
//! memory from the tenant's held numbers, read once: the cost of a row does not grow with the
//! tenant. Importing a tenant's own export changes nothing.

mod dids;
mod table;

pub(crate) use table::formula_safe;
mod users;

use crate::model::ImportProblem;

/// A cell's boolean: yes/no, true/false, 1/0, on/off (any case).
fn parse_bool(field: &str, s: &str) -> Result<bool, crate::error::ValidationError> {
    match s.trim().to_ascii_lowercase().as_str() {
        "yes" | "y" | "true" | "1" | "on" | "x" => Ok(true),
        "no" | "n" | "false" | "0" | "off" => Ok(false),
        _ => Err(crate::error::ValidationError::new(
            field,
            s,
            "yes or no (also true/false, 1/0, on/off)",
        )),
    }
}

fn yes_no(b: bool) -> String {
    if b { "yes" } else { "no" }.to_owned()
}

/// The report of a planned file: its problems in file order, every row with a problem marked
/// an error, and the counts of what the others do.
fn finish(
    mut report: crate::model::ImportReport,
    rows: Vec<crate::model::ImportRow>,
    mut problems: Vec<ImportProblem>,
) -> crate::model::ImportReport {
    use crate::model::ImportAction;
    problems.sort_by(|a, b| (a.line, &a.column).cmp(&(b.line, &b.column)));
    let bad: std::collections::HashSet<u32> = problems.iter().map(|p| p.line).collect();
    for mut r in rows {
        if bad.contains(&r.line) {
            r.action = ImportAction::Error;
        }
        match r.action {
            ImportAction::Create => report.created += 1,
            ImportAction::Update => report.updated += 1,
            ImportAction::Unchanged => report.unchanged += 1,
            ImportAction::Error => {}
        }
        report.rows.push(r);
    }
    report.errors = problems;
    report
}

/// Calls `progress` every this many rows written.
const PROGRESS_EVERY: usize = 250;

/// Writes an export whole or not at all: to a new file beside `path`, then renamed over it.
/// `owner_only` (an export with secrets) makes it readable by its owner alone.
pub fn write_export(path: &std::path::Path, csv: &str, owner_only: bool) -> crate::Result<()> {
    use std::io::Write;
    let io = |e: std::io::Error| {
        crate::error::ValidationError::new(
            "out",
            &path.display().to_string(),
            format!("cannot be written: {e}"),
        )
    };
    let tmp = path.with_extension("csv.tmp~");
    // Made anew, so the mode below is the file's (an old one would keep its own).
    let _ = std::fs::remove_file(&tmp);
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(if owner_only { 0o600 } else { 0o644 });
    }
    let mut f = opts.open(&tmp).map_err(io)?;
    f.write_all(csv.as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)?;
    Ok(())
}

/// A name in `dir` no file has yet: "STEM.csv", then "STEM (2).csv", …
fn free_name(dir: &std::path::Path, stem: &str) -> std::path::PathBuf {
    (1..)
        .map(|n| {
            if n == 1 {
                dir.join(format!("{stem}.csv"))
            } else {
                dir.join(format!("{stem} ({n}).csv"))
            }
        })
        .find(|p| !p.exists())
        .unwrap_or_else(|| dir.join(format!("{stem}.csv")))
}

impl crate::service::Workspace {
    /// Exports a tenant's users or numbers (no secret) into a new file of `dir`, named after
    /// the tenant and what it holds; the file's path and its number of rows.
    pub async fn export_to_folder(
        &self,
        actor: &crate::service::Actor,
        tenant: &str,
        what: crate::model::ExportKind,
        dir: &std::path::Path,
    ) -> crate::Result<crate::model::ExportedFile> {
        use crate::model::ExportKind;
        let (csv, kind) = match what {
            ExportKind::Users => (self.users_export(actor, tenant, false).await?, "users"),
            ExportKind::Dids => (self.dids_export(actor, tenant).await?, "numbers"),
        };
        self.write_into(dir, &format!("{}-{kind}", tenant.trim()), &csv)
    }

    /// The audit entries of a filter as CSV, into a new file of `dir`.
    pub async fn audit_export_to_folder(
        &self,
        actor: &crate::service::Actor,
        filter: &crate::model::AuditFilter,
        dir: &std::path::Path,
    ) -> crate::Result<crate::model::ExportedFile> {
        let csv = self.audit_export(actor, filter).await?;
        let stem = match filter
            .tenant
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
        {
            Some(t) => format!("{t}-audit"),
            None => "audit".to_owned(),
        };
        self.write_into(dir, &stem, &csv)
    }

    fn write_into(
        &self,
        dir: &std::path::Path,
        stem: &str,
        csv: &str,
    ) -> crate::Result<crate::model::ExportedFile> {
        std::fs::create_dir_all(dir).map_err(|e| {
            crate::error::ValidationError::new(
                "folder",
                &dir.display().to_string(),
                format!("cannot be made: {e}"),
            )
        })?;
        let path = free_name(dir, stem);
        write_export(&path, csv, false)?;
        Ok(crate::model::ExportedFile {
            path: path.display().to_string(),
            rows: u32::try_from(csv.lines().count().saturating_sub(1)).unwrap_or(u32::MAX),
        })
    }
}
