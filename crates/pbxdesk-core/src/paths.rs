//! Where a laptop keeps its workspace by default (the OS data directory).

use std::path::{Path, PathBuf};

/// `<data dir>/pbxdesk/workspace.sqlite`, e.g. ~/.local/share/pbxdesk/workspace.sqlite on Linux.
pub fn default_workspace() -> PathBuf {
    data_dir().join("workspace.sqlite")
}

/// The key file that belongs to an SQLite workspace: beside it, with ".key" appended.
pub fn key_file_for(workspace: &Path) -> PathBuf {
    let mut s = workspace.as_os_str().to_owned();
    s.push(".key");
    PathBuf::from(s)
}

/// The key file for a team workspace when no passphrase or key file is given.
pub fn default_team_key_file() -> PathBuf {
    data_dir().join("team.key")
}

/// Where `pbxdesk serve` keeps the self-signed certificate it made: beside an SQLite workspace
/// (`<workspace>.tls/`), or in the data directory for a team workspace (`api-tls/`).
pub fn api_tls_dir(sqlite_workspace: Option<&Path>) -> PathBuf {
    match sqlite_workspace {
        Some(ws) => {
            let mut s = ws.as_os_str().to_owned();
            s.push(".tls");
            PathBuf::from(s)
        }
        None => data_dir().join("api-tls"),
    }
}

fn data_dir() -> PathBuf {
    directories::ProjectDirs::from("", "", "pbxdesk")
        .map(|d| d.data_dir().to_path_buf())
        .unwrap_or_else(|| PathBuf::from(".pbxdesk"))
}

/// Where the app writes exports: `PBXDESK_EXPORT_DIR` when set (the end-to-end test), else the
/// person's Downloads folder (~/Downloads), else the home folder.
pub fn export_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("PBXDESK_EXPORT_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    directories::UserDirs::new()
        .and_then(|d| {
            d.download_dir()
                .map(Path::to_path_buf)
                .or_else(|| Some(d.home_dir().to_path_buf()))
        })
        .unwrap_or_else(|| PathBuf::from("."))
}
