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
