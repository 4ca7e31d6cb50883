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

/// Problems in file order: by line, then column.
fn sort_problems(p: &mut [ImportProblem]) {
    p.sort_by(|a, b| (a.line, &a.column).cmp(&(b.line, &b.column)));
}

/// Calls `progress` every this many rows written.
const PROGRESS_EVERY: usize = 250;
