//! The difference between two renders, as a technician reads it: a unified diff per file and
//! the realtime rows to add, change or remove. Secrets (SIP and trunk passwords, voicemail PINs)
//! never appear: they are masked on both sides before diffing, and a changed secret is named,
//! not shown.

use crate::pbx::{Endpoint, Rendered, PJSIP_DIR, VOICEMAIL_DIR};
use serde::{Deserialize, Serialize};
use similar::TextDiff;
use std::collections::BTreeMap;

pub const MASK: &str = "********";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum FileChange {
    Added,
    Removed,
    Changed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FileDiff {
    pub path: String,
    pub change: FileChange,
    /// Masked texts, for a side-by-side view.
    pub old: String,
    pub new: String,
    /// Unified diff of the masked texts (3 lines of context).
    pub unified: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RowChange {
    pub id: String,
    /// Column names that differ ("password" appears as a name only).
    pub columns: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Diff {
    pub files: Vec<FileDiff>,
    pub rows_added: Vec<String>,
    pub rows_changed: Vec<RowChange>,
    pub rows_removed: Vec<String>,
    /// e.g. "voicemail PIN of 100 (voicemail.d/pbxdesk/tenant-acme.conf)", "SIP password of acme-100".
    pub secrets_changed: Vec<String>,
    pub unchanged_files: u32,
}

impl Diff {
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
            && self.rows_added.is_empty()
            && self.rows_changed.is_empty()
            && self.rows_removed.is_empty()
    }
}

/// A file's text with its secrets masked, and the secrets found (label -> value) so two
/// versions can tell which changed without showing them.
pub fn mask(path: &str, text: &str) -> (String, BTreeMap<String, String>) {
    let mut secrets = BTreeMap::new();
    let out = mask_keeping(path, text, Some(&mut secrets));
    (out, secrets)
}

/// [`mask`] without the secrets it hid: what a masked render shows (100,000 voicemail lines
/// at the seed's maximum, each secret's name formatted for nothing cost most of its time).
pub fn masked_text(path: &str, text: &str) -> String {
    mask_keeping(path, text, None)
}

fn mask_keeping(
    path: &str,
    text: &str,
    mut secrets: Option<&mut BTreeMap<String, String>>,
) -> String {
    let mut out = String::with_capacity(text.len());
    let voicemail = path.starts_with(VOICEMAIL_DIR);
    let pjsip = path.starts_with(PJSIP_DIR);
    for line in text.split_inclusive('\n') {
        if voicemail {
            // "EXT => PIN,Name,email"
            if let Some((ext, rest)) = line.split_once(" => ") {
                if !ext.starts_with(';') {
                    let (pin, tail) = rest.split_once(',').unwrap_or((rest.trim_end(), "\n"));
                    if let Some(s) = secrets.as_deref_mut() {
                        s.insert(format!("voicemail PIN of {ext} ({path})"), pin.to_owned());
                    }
                    for part in [ext, " => ", MASK, ",", tail] {
                        out.push_str(part);
                    }
                    continue;
                }
            }
        }
        if pjsip {
            if let Some(value) = line.strip_prefix("password = ") {
                if let Some(s) = secrets.as_deref_mut() {
                    s.insert(
                        format!("trunk password ({path})"),
                        value.trim_end().to_owned(),
                    );
                }
                for part in ["password = ", MASK, "\n"] {
                    out.push_str(part);
                }
                continue;
            }
        }
        out.push_str(line);
    }
    out
}

fn columns(a: &Endpoint, b: &Endpoint) -> Vec<String> {
    let mut c = Vec::new();
    macro_rules! col {
        ($($f:ident),*) => { $( if a.$f != b.$f { c.push(stringify!($f).to_owned()); } )* };
    }
    col!(
        username,
        password,
        context,
        transport,
        allow,
        callerid,
        mailboxes,
        set_var,
        nat,
        max_contacts
    );
    c
}

/// What changes from `old` (the last applied render, if any) to `new`.
pub fn diff(old: Option<&Rendered>, new: &Rendered) -> Diff {
    let empty = Rendered::default();
    let old = old.unwrap_or(&empty);
    let mut d = Diff::default();
    let paths: std::collections::BTreeSet<&String> =
        old.files.keys().chain(new.files.keys()).collect();
    for path in paths {
        let (a, b) = (old.files.get(path), new.files.get(path));
        if a == b {
            d.unchanged_files = d.unchanged_files.saturating_add(1);
            continue;
        }
        let (ma, sa) = a.map(|t| mask(path, t)).unwrap_or_default();
        let (mb, sb) = b.map(|t| mask(path, t)).unwrap_or_default();
        for (label, v) in &sb {
            if sa.get(label).is_some_and(|old| old != v) {
                d.secrets_changed.push(label.clone());
            }
        }
        let change = match (a, b) {
            (None, _) => FileChange::Added,
            (_, None) => FileChange::Removed,
            _ => FileChange::Changed,
        };
        let unified = TextDiff::from_lines(&ma, &mb)
            .unified_diff()
            .context_radius(3)
            .header(
                &if a.is_some() {
                    format!("a/{path}")
                } else {
                    "/dev/null".into()
                },
                &if b.is_some() {
                    format!("b/{path}")
                } else {
                    "/dev/null".into()
                },
            )
            .to_string();
        d.files.push(FileDiff {
            path: path.clone(),
            change,
            old: ma,
            new: mb,
            unified,
        });
    }
    let by_id: BTreeMap<&str, &Endpoint> =
        old.realtime.iter().map(|e| (e.id.as_str(), e)).collect();
    let new_ids: BTreeMap<&str, &Endpoint> =
        new.realtime.iter().map(|e| (e.id.as_str(), e)).collect();
    for (id, e) in &new_ids {
        match by_id.get(id) {
            None => d.rows_added.push((*id).to_owned()),
            Some(o) if o != e => {
                let cols = columns(o, e);
                if cols.iter().any(|c| c == "password") {
                    d.secrets_changed.push(format!("SIP password of {id}"));
                }
                d.rows_changed.push(RowChange {
                    id: (*id).to_owned(),
                    columns: cols,
                });
            }
            _ => {}
        }
    }
    for id in by_id.keys() {
        if !new_ids.contains_key(id) {
            d.rows_removed.push((*id).to_owned());
        }
    }
    d
}

/// What a change between two renders touches, for an apply's one-line summary: the tenants,
/// the users whose device or mailbox changed, the devices (realtime rows) and the inbound
/// numbers whose route changed. Read from pbxdesk's own generated forms.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Touched {
    pub tenants: Vec<String>,
    pub users: u32,
    pub devices: u32,
    pub dids: u32,
}

impl Touched {
    /// "tenants acme, globex; 2 user(s), 2 device(s), 1 DID(s)".
    pub fn line(&self) -> String {
        format!(
            "tenants {}; {} user(s), {} device(s), {} DID(s)",
            if self.tenants.is_empty() {
                "none".to_owned()
            } else {
                self.tenants.join(", ")
            },
            self.users,
            self.devices,
            self.dids
        )
    }
}

/// Lines that differ between two texts (in either), keyed by `key` (lines without a key are
/// ignored).
fn changed_keys<'a>(
    old: &'a str,
    new: &'a str,
    key: impl Fn(&'a str) -> Option<&'a str>,
) -> std::collections::BTreeSet<&'a str> {
    let index = |t: &'a str| -> BTreeMap<&'a str, Vec<&'a str>> {
        let mut m: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for l in t.lines() {
            if let Some(k) = key(l) {
                m.entry(k).or_default().push(l);
            }
        }
        m
    };
    let (a, b) = (index(old), index(new));
    a.keys()
        .chain(b.keys())
        .filter(|k| a.get(*k) != b.get(*k))
        .copied()
        .collect()
}

pub fn touched(old: Option<&Rendered>, new: &Rendered) -> Touched {
    use std::collections::BTreeSet;
    let empty = Rendered::default();
    let old = old.unwrap_or(&empty);
    let mut tenants: BTreeSet<String> = BTreeSet::new();
    let mut users: BTreeSet<(String, String)> = BTreeSet::new();
    // Devices: rows added, removed or changed; their tenant from the context `SLUG_cos_…`,
    // their user from `PBXDESK_EXT=…`.
    let rows = |r: &Rendered| -> BTreeMap<String, Endpoint> {
        r.realtime
            .iter()
            .map(|e| (e.id.clone(), e.clone()))
            .collect()
    };
    let (a, b) = (rows(old), rows(new));
    let mut devices = 0u32;
    for id in a.keys().chain(b.keys()).collect::<BTreeSet<_>>() {
        if a.get(id) == b.get(id) {
            continue;
        }
        devices += 1;
        for e in [a.get(id), b.get(id)].into_iter().flatten() {
            let slug = e
                .context
                .split("_cos_")
                .next()
                .unwrap_or_default()
                .to_owned();
            let ext = e.set_var.strip_prefix("PBXDESK_EXT=").unwrap_or_default();
            users.insert((slug.clone(), ext.to_owned()));
            tenants.insert(slug);
        }
    }
    let none = String::new();
    for path in old
        .files
        .keys()
        .chain(new.files.keys())
        .collect::<BTreeSet<_>>()
    {
        let (o, n) = (
            old.files.get(path).unwrap_or(&none),
            new.files.get(path).unwrap_or(&none),
        );
        if o == n {
            continue;
        }
        let name = path.rsplit('/').next().unwrap_or_default();
        if let Some(slug) = name
            .strip_prefix("tenant-")
            .and_then(|s| s.strip_suffix(".conf"))
        {
            tenants.insert(slug.to_owned());
            // A mailbox line: `EXT => PIN,Name,email`.
            if path.starts_with(VOICEMAIL_DIR) {
                for ext in changed_keys(o, n, |l| {
                    l.split_once(" => ")
                        .map(|(e, _)| e)
                        .filter(|e| !e.is_empty() && e.bytes().all(|b| b.is_ascii_digit()))
                }) {
                    users.insert((slug.to_owned(), ext.to_owned()));
                }
            }
        }
    }
    // DIDs: the map's `exten => +E164,…` lines.
    let inbound = |r: &'_ Rendered| -> String {
        r.files
            .iter()
            .find(|(p, _)| p.ends_with("/01-inbound.conf"))
            .map(|(_, t)| t.clone())
            .unwrap_or_default()
    };
    let (oi, ni) = (inbound(old), inbound(new));
    let dids = changed_keys(&oi, &ni, |l| {
        l.strip_prefix("exten => +")
            .and_then(|r| r.split(',').next())
    })
    .len();
    Touched {
        tenants: tenants.into_iter().filter(|t| !t.is_empty()).collect(),
        users: u32::try_from(users.len()).unwrap_or(u32::MAX),
        devices,
        dids: u32::try_from(dids).unwrap_or(u32::MAX),
    }
}
