//! CSV as people make it, read into a table of named columns, and written back.
//!
//! The csv crate does the splitting (quotes, doubled quotes, newlines inside fields, CRLF);
//! this module adds what spreadsheets do around it: a byte-order mark, `;` or tab as the
//! separator (the header line decides), headers in any order and spelling ("Forward always"
//! is `forward_always`), and formula cells: a text that starts with `=`, `+`, `-` or `@` is
//! written with a leading `'` so a spreadsheet shows it instead of running it, and read back
//! without it.

use crate::error::printable;
use crate::model::ImportProblem;

/// The largest import file taken (a 10,000-user file with devices is ~2 MB).
pub(crate) const MAX_BYTES: usize = 64 * 1024 * 1024;
/// The most rows an import file may have.
pub(crate) const MAX_ROWS: usize = 100_000;

/// A file's rows by column name.
pub(crate) struct Table {
    /// Normalized column names, in the file's order.
    columns: Vec<String>,
    /// The columns as the file's header spells them (for messages).
    spelled: Vec<String>,
    pub rows: Vec<Row>,
}

pub(crate) struct Row {
    /// The line where the row starts.
    pub line: u32,
    fields: Vec<String>,
}

impl Table {
    /// The column's index, if the file has it.
    pub fn col(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c == name)
    }

    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    /// The header's own spelling of a column.
    pub fn spelled(&self, name: &str) -> String {
        self.col(name)
            .map_or_else(|| name.to_owned(), |i| self.spelled[i].clone())
    }
}

impl Row {
    /// The field of a column the file has (trimmed); `None` when the file has no such column.
    pub fn get(&self, col: Option<usize>) -> Option<&str> {
        col.map(|i| self.fields.get(i).map_or("", |s| s.trim()))
    }
}

/// A header as a column name: trimmed, lower case, spaces and dashes as `_`.
pub(crate) fn normalize(header: &str) -> String {
    header
        .trim()
        .chars()
        .map(|c| match c {
            ' ' | '-' => '_',
            c => c.to_ascii_lowercase(),
        })
        .collect()
}

/// The separator of a file: of `,`, `;` and tab, the one its header line has most of (outside
/// quotes); `,` when it has none.
fn sniff_delimiter(text: &str) -> u8 {
    let mut counts = [0usize; 3];
    let mut quoted = false;
    for c in text.chars() {
        match c {
            '"' => quoted = !quoted,
            '\n' | '\r' if !quoted => break,
            ',' if !quoted => counts[0] += 1,
            ';' if !quoted => counts[1] += 1,
            '\t' if !quoted => counts[2] += 1,
            _ => {}
        }
    }
    let best = (0..3)
        .max_by_key(|&i| (counts[i], usize::from(i == 0)))
        .unwrap_or(0);
    if counts[best] == 0 {
        b','
    } else {
        [b',', b';', b'\t'][best]
    }
}

fn problem(line: u32, column: &str, value: &str, rule: impl Into<String>) -> ImportProblem {
    ImportProblem {
        line,
        column: column.to_owned(),
        value: printable(value),
        rule: rule.into(),
    }
}

/// Reads a CSV file. `known` says which normalized column names are allowed; every problem of
/// the file's shape (not UTF-8, an unknown or repeated column, a row with more fields than the
/// header, too many rows) is pushed to `problems`, and `None` is returned when the table cannot
/// be read at all.
pub(crate) fn read(
    bytes: &[u8],
    known: &dyn Fn(&str) -> bool,
    allowed: &str,
    problems: &mut Vec<ImportProblem>,
) -> Option<Table> {
    if bytes.len() > MAX_BYTES {
        problems.push(problem(
            0,
            "",
            "",
            format!(
                "the file is {} MB; at most {} MB are taken",
                bytes.len() / (1024 * 1024),
                MAX_BYTES / (1024 * 1024)
            ),
        ));
        return None;
    }
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let Ok(text) = std::str::from_utf8(bytes) else {
        let at = std::str::from_utf8(bytes)
            .err()
            .map_or(0, |e| e.valid_up_to());
        let line = bytes[..at].iter().filter(|b| **b == b'\n').count() + 1;
        problems.push(problem(
            u32::try_from(line).unwrap_or(u32::MAX),
            "",
            "",
            "the file is not UTF-8 text (save it as \"CSV UTF-8\")",
        ));
        return None;
    };
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(sniff_delimiter(text))
        .flexible(true)
        .has_headers(false)
        .from_reader(text.as_bytes());
    let mut records = reader.records();
    let header = match records.next() {
        Some(Ok(h)) => h,
        Some(Err(e)) => {
            problems.push(problem(
                1,
                "",
                "",
                format!("the header cannot be read: {e}"),
            ));
            return None;
        }
        None => {
            problems.push(problem(
                0,
                "",
                "",
                "the file is empty; it needs a header row",
            ));
            return None;
        }
    };
    let spelled: Vec<String> = header.iter().map(|h| h.trim().to_owned()).collect();
    let columns: Vec<String> = spelled.iter().map(|h| normalize(h)).collect();
    let before = problems.len();
    for (i, c) in columns.iter().enumerate() {
        if c.is_empty() {
            // A trailing separator leaves an empty header: taken only if its fields stay empty.
            continue;
        }
        if !known(c) {
            problems.push(problem(
                1,
                &spelled[i],
                &spelled[i],
                format!("not a known column; the columns are: {allowed}"),
            ));
        } else if columns[..i].contains(c) {
            problems.push(problem(
                1,
                &spelled[i],
                &spelled[i],
                "this column is given twice",
            ));
        }
    }
    if problems.len() > before {
        return None;
    }
    let mut rows = Vec::new();
    let mut lines = LineCounter::new(text.as_bytes());
    for record in records {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = lines.at(e.position().map_or(0, |p| p.byte()));
                let rule = match e.kind() {
                    csv::ErrorKind::Utf8 { .. } => "the row is not UTF-8 text".to_owned(),
                    _ => format!("the row cannot be read: {e}"),
                };
                problems.push(problem(line, "", "", rule));
                continue;
            }
        };
        let line = lines.at(record.position().map_or(0, |p| p.byte()));
        // Blank lines (all fields empty) are skipped, as spreadsheets leave them at the end.
        if record.iter().all(|f| f.trim().is_empty()) {
            continue;
        }
        if record.len() > columns.len() {
            problems.push(problem(
                line,
                "",
                "",
                format!(
                    "the row has {} fields, the header {} (is a value with a separator in it not quoted?)",
                    record.len(),
                    columns.len()
                ),
            ));
            continue;
        }
        for (i, c) in columns.iter().enumerate() {
            if c.is_empty() && record.get(i).is_some_and(|f| !f.trim().is_empty()) {
                problems.push(problem(
                    line,
                    "",
                    record.get(i).unwrap_or(""),
                    format!("field {} has no column name in the header", i + 1),
                ));
            }
        }
        if rows.len() == MAX_ROWS {
            problems.push(problem(
                line,
                "",
                "",
                format!("the file has more than {MAX_ROWS} rows; split it"),
            ));
            return None;
        }
        rows.push(Row {
            line,
            fields: record.iter().map(str::to_owned).collect(),
        });
    }
    Some(Table {
        columns,
        spelled,
        rows,
    })
}

/// The line of a byte offset, counted as the reader goes (csv's own line count starts a
/// record after CRLF at the `\n` before it, one line early).
struct LineCounter<'a> {
    bytes: &'a [u8],
    counted_to: usize,
    line: u32,
}

impl<'a> LineCounter<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self {
            bytes,
            counted_to: 0,
            line: 1,
        }
    }

    /// The line where a record starting at `byte` (line breaks before it skipped) begins.
    fn at(&mut self, byte: u64) -> u32 {
        let mut start = usize::try_from(byte)
            .unwrap_or(usize::MAX)
            .min(self.bytes.len());
        while matches!(self.bytes.get(start), Some(b'\r' | b'\n')) {
            start += 1;
        }
        if start > self.counted_to {
            let breaks = self.bytes[self.counted_to..start]
                .iter()
                .filter(|b| **b == b'\n')
                .count();
            self.line = self
                .line
                .saturating_add(u32::try_from(breaks).unwrap_or(u32::MAX));
            self.counted_to = start;
        }
        self.line
    }
}

/// A text read from a cell that a spreadsheet could take for a formula: the `'` that
/// `formula_safe` put before it is dropped.
pub(crate) fn text_cell(s: &str) -> &str {
    match s.strip_prefix('\'') {
        Some(rest) if rest.starts_with(['=', '+', '-', '@']) => rest,
        _ => s,
    }
}

/// A text written to a cell: one that starts like a formula gets a leading `'`, which
/// spreadsheets show as text and `text_cell` removes again.
pub(crate) fn formula_safe(s: &str) -> String {
    // A number ("+41 44 555 12 34", "-1") runs nothing and stays as it is.
    let number = s.len() > 1
        && s[1..].chars().all(|c| c.is_ascii_digit() || c == ' ')
        && s.starts_with(['+', '-']);
    if s.starts_with(['=', '+', '-', '@']) && !number {
        format!("'{s}")
    } else {
        s.to_owned()
    }
}

/// Writes rows as CSV (comma-separated, quoted where needed, `\n` line ends, no BOM).
pub(crate) fn write(header: &[String], rows: &[Vec<String>]) -> crate::error::Result<String> {
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(Vec::new());
    let fail = |e: csv::Error| crate::error::Error::Store(format!("cannot write CSV: {e}"));
    w.write_record(header).map_err(fail)?;
    for r in rows {
        w.write_record(r).map_err(fail)?;
    }
    let bytes = w
        .into_inner()
        .map_err(|e| crate::error::Error::Store(format!("cannot write CSV: {e}")))?;
    String::from_utf8(bytes)
        .map_err(|e| crate::error::Error::Store(format!("cannot write CSV: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(text: &[u8]) -> (Option<Table>, Vec<ImportProblem>) {
        let mut p = Vec::new();
        let t = read(
            text,
            &|c| ["email", "name", "extension"].contains(&c),
            "email, name, extension",
            &mut p,
        );
        (t, p)
    }

    #[test]
    fn header_spellings_and_order() {
        let (t, p) = table(b"Extension,EMAIL , name\n101,a@x.ch,A\n");
        assert!(p.is_empty(), "{p:?}");
        let t = t.unwrap();
        let row = &t.rows[0];
        assert_eq!(row.get(t.col("email")), Some("a@x.ch"));
        assert_eq!(row.get(t.col("name")), Some("A"));
        assert_eq!(row.get(t.col("extension")), Some("101"));
        assert_eq!(row.get(t.col("missing")), None);
        assert_eq!(row.line, 2);
    }

    #[test]
    fn semicolons_quotes_newlines_and_crlf() {
        let (t, p) = table(
            b"\xEF\xBB\xBFname;email;extension\r\n\"Doe; \"\"Jo\"\"\nJr\";jo@x.ch;101\r\n\r\nAl;al@x.ch;\r\n",
        );
        assert!(p.is_empty(), "{p:?}");
        let t = t.unwrap();
        assert_eq!(t.rows.len(), 2);
        assert_eq!(t.rows[0].get(t.col("name")), Some("Doe; \"Jo\"\nJr"));
        assert_eq!(t.rows[0].line, 2);
        // The quoted newline made the first row two lines long; the blank line is skipped.
        assert_eq!(t.rows[1].line, 5);
        assert_eq!(t.rows[1].get(t.col("extension")), Some(""));
    }

    #[test]
    fn every_shape_problem_at_once() {
        let (t, p) = table(b"name,mail,name\n");
        assert!(t.is_none());
        assert_eq!(p.len(), 2, "{p:?}");
        assert_eq!(p[0].column, "mail");
        assert!(p[0].rule.contains("not a known column"));
        assert!(p[1].rule.contains("twice"));

        let (t, p) = table(b"name,email\nA,a@x.ch,extra\nB,b@x.ch\n\xFF\xFE,c@x.ch\n");
        assert!(t.is_none());
        assert_eq!(p[0].line, 4, "{p:?}");
        assert!(p[0].rule.contains("UTF-8"));

        let (t, p) = table(b"name,email\nA,a@x.ch,extra\nB,b@x.ch\n");
        let t = t.unwrap();
        assert_eq!(t.rows.len(), 1);
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].line, 2);
        assert!(p[0].rule.contains("3 fields"));

        let (t, p) = table(b"");
        assert!(t.is_none());
        assert!(p[0].rule.contains("empty"));
    }

    #[test]
    fn formulas_are_written_as_text_and_read_back() {
        for s in [
            "=HYPERLINK(\"http://x\")",
            "+41",
            "-1",
            "@SUM(A1)",
            "plain",
            "'quoted",
        ] {
            assert_eq!(text_cell(&formula_safe(s)), s);
        }
        assert_eq!(formula_safe("=1+1"), "'=1+1");
        assert_eq!(formula_safe("+41 44 555 12 34"), "+41 44 555 12 34");
        assert_eq!(
            formula_safe("+1+cmd|' /C calc'!A0"),
            "'+1+cmd|' /C calc'!A0"
        );
        let out = write(&["name".into()], &[vec!["a,b \"c\"\nd".into()]]).unwrap();
        assert_eq!(out, "name\n\"a,b \"\"c\"\"\nd\"\n");
    }
}
