//! What an update server announces: the static manifest the Tauri updater reads
//! (`{"version", "notes", "pub_date", "platforms": {"linux-x86_64": {"url", "signature"}}}`),
//! parsed and compared with the running version. Pure: the app downloads, verifies and
//! installs through tauri-plugin-updater; the CLI (`pbxdesk version --check`) only reports.
//!
//! The manifest is not signed (only the artifact is), so nothing here is trusted for more than
//! telling the technician that a version exists: the signature, checked against the public key
//! built into the app and binding the version, decides what is installed.

use crate::error::{Error, Result, ValidationError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The platform key of this build in a manifest (`{os}-{arch}`, as the updater spells it; an
/// installer's own entry adds `-deb` or `-appimage`).
#[cfg(target_arch = "x86_64")]
pub const PLATFORM: &str = "linux-x86_64";
#[cfg(target_arch = "aarch64")]
pub const PLATFORM: &str = "linux-aarch64";

/// The longest endpoint address taken (a URL in a settings file, not a document).
const MAX_ENDPOINT: usize = 2048;
/// The most of a manifest read: a real one is a few KiB; a server sending more is not one.
pub const MAX_MANIFEST: usize = 1024 * 1024;
/// Release notes longer than this are cut for display.
const MAX_NOTES: usize = 16 * 1024;

/// An update server's address: HTTPS only (the updater refuses anything else, and a plain
/// HTTP answer could be changed on the way), no user or password in it.
pub fn endpoint(text: &str) -> Result<String, ValidationError> {
    let t = text.trim();
    let rule =
        "an https:// address of an update manifest (latest.json), without a user or password";
    let bad = || ValidationError::new("update_endpoint", t, rule);
    if t.is_empty() || t.len() > MAX_ENDPOINT || t.chars().any(|c| c.is_control() || c == ' ') {
        return Err(bad());
    }
    let url = url::Url::parse(t).map_err(|_| bad())?;
    if url.scheme() != "https"
        || url.host_str().is_none_or(str::is_empty)
        || !url.username().is_empty()
        || url.password().is_some()
    {
        return Err(bad());
    }
    Ok(url.to_string())
}

/// One platform's artifact in a manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Artifact {
    pub url: String,
    pub signature: String,
}

/// A manifest as served.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Manifest {
    pub version: String,
    #[serde(default)]
    pub notes: Option<String>,
    #[serde(default)]
    pub pub_date: Option<String>,
    #[serde(default)]
    pub platforms: BTreeMap<String, Artifact>,
}

/// Where the announced version stands against the running one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub enum Standing {
    /// Newer than this build: an update.
    Newer,
    /// This very version.
    Current,
    /// Older than this build: never installed (a downgrade).
    Older,
}

/// What a check found, for a front end to show.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct UpdateNews {
    pub installed: String,
    pub offered: String,
    pub standing: Standing,
    /// The release notes, control characters other than newlines and tabs removed, cut to
    /// 16 KiB.
    pub notes: Option<String>,
    pub published: Option<String>,
    /// Whether the manifest has an artifact for this platform (a newer version without one
    /// cannot be installed here).
    pub for_this_platform: bool,
}

fn semver(field: &str, v: &str) -> Result<semver::Version> {
    semver::Version::parse(v.trim().trim_start_matches('v')).map_err(|_| {
        Error::Validation(ValidationError::new(
            field,
            v,
            "a version of the form MAJOR.MINOR.PATCH (semantic versioning)",
        ))
    })
}

/// Where `offered` stands against `installed`.
pub fn standing(installed: &str, offered: &str) -> Result<Standing> {
    let (i, o) = (semver("version", installed)?, semver("version", offered)?);
    Ok(match o.cmp(&i) {
        std::cmp::Ordering::Greater => Standing::Newer,
        std::cmp::Ordering::Equal => Standing::Current,
        std::cmp::Ordering::Less => Standing::Older,
    })
}

fn clean_notes(n: &str) -> String {
    let mut s: String = n
        .chars()
        .filter(|c| !c.is_control() || *c == '\n' || *c == '\t')
        .collect();
    if s.len() > MAX_NOTES {
        let mut cut = MAX_NOTES;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push('…');
    }
    s
}

/// Reads a manifest's bytes and compares it with `installed`.
pub fn news(installed: &str, body: &[u8]) -> Result<UpdateNews> {
    let refuse = |why: &str| {
        Error::Validation(ValidationError::new(
            "manifest",
            &String::from_utf8_lossy(&body[..body.len().min(80)]),
            why,
        ))
    };
    if body.len() > MAX_MANIFEST {
        return Err(refuse("an update manifest of at most 1 MiB"));
    }
    let m: Manifest = serde_json::from_slice(body).map_err(|_| {
        refuse("an update manifest: JSON with version, notes, pub_date and platforms")
    })?;
    UpdateNews::new(
        installed,
        &m.version,
        m.notes.as_deref(),
        m.pub_date,
        m.platforms
            .keys()
            .any(|k| k == PLATFORM || k.strip_prefix(PLATFORM).is_some_and(|r| r.starts_with('-'))),
    )
}

impl UpdateNews {
    /// The news of `offered` for a build of `installed`, its notes made safe to show.
    pub fn new(
        installed: &str,
        offered: &str,
        notes: Option<&str>,
        published: Option<String>,
        for_this_platform: bool,
    ) -> Result<UpdateNews> {
        Ok(UpdateNews {
            installed: installed.to_owned(),
            offered: offered.trim().trim_start_matches('v').to_owned(),
            standing: standing(installed, offered)?,
            notes: notes.map(clean_notes),
            published,
            for_this_platform,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn an_endpoint_is_https_without_credentials() {
        assert_eq!(
            endpoint(" https://updates.example.net/pbxdesk/latest.json ").unwrap(),
            "https://updates.example.net/pbxdesk/latest.json"
        );
        for bad in [
            "",
            "http://updates.example.net/latest.json",
            "file:///etc/passwd",
            "https://user:pw@updates.example.net/latest.json",
            "https://updates.example.net/a b",
            "https://updates.example.net/\nx",
            "updates.example.net/latest.json",
            &format!("https://x.net/{}", "a".repeat(3000)),
        ] {
            let e = endpoint(bad).unwrap_err();
            assert_eq!(e.field, "update_endpoint", "{bad:?}");
            assert!(!e.value.contains('\n'));
        }
    }

    #[test]
    fn a_manifest_is_compared_with_the_running_version() {
        let m = |v: &str| {
            format!(
                r#"{{"version":"{v}","notes":"Faster render\u0007\nFixes","pub_date":"2026-12-04T10:00:00Z",
                "platforms":{{"{PLATFORM}":{{"url":"https://x/a.deb","signature":"c2ln"}}}}}}"#
            )
        };
        let n = news("0.1.0", m("0.2.0").as_bytes()).unwrap();
        assert_eq!(n.standing, Standing::Newer);
        assert_eq!(n.offered, "0.2.0");
        assert_eq!(n.notes.as_deref(), Some("Faster render\nFixes"));
        assert!(n.for_this_platform);
        assert_eq!(
            news("0.1.0", m("v0.1.0").as_bytes()).unwrap().standing,
            Standing::Current
        );
        assert_eq!(
            news("0.2.0", m("0.1.9").as_bytes()).unwrap().standing,
            Standing::Older
        );
        // A pre-release sorts before its release.
        assert_eq!(standing("1.0.0", "1.0.0-rc.1").unwrap(), Standing::Older);
        let e = news("0.1.0", b"<html>gateway</html>").unwrap_err();
        assert!(e.to_string().contains("manifest"), "{e}");
        let e = news("0.1.0", m("next").as_bytes()).unwrap_err();
        assert!(e.to_string().contains("MAJOR.MINOR.PATCH"), "{e}");
        let huge = vec![b' '; MAX_MANIFEST + 1];
        assert!(news("0.1.0", &huge).is_err());
        let long = format!(
            r#"{{"version":"0.2.0","notes":"{}"}}"#,
            "é".repeat(MAX_NOTES)
        );
        let n = news("0.1.0", long.as_bytes()).unwrap();
        assert!(n.notes.unwrap().len() <= MAX_NOTES + 3);
        assert!(!n.for_this_platform);
    }
}
