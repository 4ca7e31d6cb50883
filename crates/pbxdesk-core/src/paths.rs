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

fn data_dir() -> PathBuf {
    directories::ProjectDirs::from("", "", "pbxdesk")
        .map(|d| d.data_dir().to_path_buf())
        .unwrap_or_else(|| PathBuf::from(".pbxdesk"))
}
