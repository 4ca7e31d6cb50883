//! The app's settings file (`settings.json` in the OS config folder, or PBXDESK_SETTINGS): the
//! local API's switch, the workspace to open at the next start, and the update server. Each
//! writer changes only its own key and keeps the others; the file is written beside and renamed
//! over, so a crash leaves the old file or the new one, whole.

use crate::local_api::LocalApiSetting;
use pbxdesk_core::ValidationError;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Debug, Default, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Settings {
    #[serde(default)]
    pub local_api: LocalApiSetting,
    /// The SQLite workspace file to open when PBXDESK_WORKSPACE and PBXDESK_DATABASE_URL are
    /// not set (none: the OS data folder's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace: Option<PathBuf>,
    /// Where updates are looked for (none: never).
    #[serde(default)]
    pub updates: UpdateSettings,
}

/// The update server: off until the technician names one.
#[derive(Debug, Default, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct UpdateSettings {
    /// The manifest's https:// address (`latest.json`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// A PEM file of the CA the server's certificate is issued by, for an MSP serving updates
    /// under a CA of its own (none: the system's roots).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
}

impl Settings {
    /// The settings in `file`; none, or a file that does not parse, gives the defaults.
    pub fn load(file: &Path) -> Settings {
        std::fs::read(file)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    /// Reads the file again, changes it with `edit`, and writes it whole.
    pub fn update(file: &Path, edit: impl FnOnce(&mut Settings)) -> Result<(), String> {
        let mut s = Settings::load(file);
        edit(&mut s);
        let text = serde_json::to_vec_pretty(&s).map_err(|e| e.to_string())?;
        let dir = file
            .parent()
            .ok_or_else(|| "the settings file has no folder".to_owned())?;
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let tmp = file.with_extension("json.tmp");
        std::fs::write(&tmp, text).map_err(|e| format!("{}: {e}", tmp.display()))?;
        std::fs::rename(&tmp, file).map_err(|e| format!("{}: {e}", file.display()))
    }
}

/// A workspace file the technician names: an absolute path to an SQLite file (`.sqlite` or
/// `.db`) in a folder that exists; it need not exist yet (a new workspace is made there).
pub fn workspace_path(text: &str) -> Result<PathBuf, ValidationError> {
    let t = text.trim();
    let rule = "an absolute path to a .sqlite or .db file, in a folder that exists";
    let p = PathBuf::from(t);
    let ext_ok = matches!(
        p.extension().and_then(|e| e.to_str()),
        Some("sqlite" | "db")
    );
    let dir_ok = p.parent().is_some_and(Path::is_dir);
    if t.is_empty()
        || t.chars().any(char::is_control)
        || !p.is_absolute()
        || !ext_ok
        || !dir_ok
        || p.is_dir()
    {
        return Err(ValidationError::new("workspace", t, rule));
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn each_key_is_kept_when_the_other_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("conf/settings.json");
        let ws = dir.path().join("other.sqlite");
        Settings::update(&f, |s| s.workspace = Some(ws.clone())).unwrap();
        Settings::update(&f, |s| s.local_api.enabled = true).unwrap();
        Settings::update(&f, |s| {
            s.updates.endpoint = Some("https://updates.example.net/latest.json".into())
        })
        .unwrap();
        let s = Settings::load(&f);
        assert_eq!(s.workspace, Some(ws));
        assert!(s.local_api.enabled);
        assert_eq!(
            s.updates.endpoint.as_deref(),
            Some("https://updates.example.net/latest.json")
        );
        // A damaged file reads as the defaults, and is replaced whole by the next write.
        std::fs::write(&f, b"{not json").unwrap();
        assert_eq!(Settings::load(&f), Settings::default());
    }

    #[test]
    fn a_workspace_path_is_checked() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("clinic.sqlite");
        assert_eq!(workspace_path(good.to_str().unwrap()).unwrap(), good);
        for bad in [
            "",
            "relative.sqlite",
            "/no/such/folder/ws.sqlite",
            "/tmp/ws.txt",
            "/tmp/ws\n.sqlite",
        ] {
            let e = workspace_path(bad).unwrap_err();
            assert_eq!(e.field, "workspace", "{bad:?}: {e}");
            assert!(!e.value.contains('\n'), "the value is shown escaped: {e}");
        }
        assert!(workspace_path(dir.path().to_str().unwrap()).is_err());
    }
}
