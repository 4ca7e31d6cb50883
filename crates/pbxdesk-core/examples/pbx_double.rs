//! A PBX for the end-to-end test of the app: the same test double as the apply tests (Debian's
//! sshd on loopback playing the PBX, the stateful Asterisk double, MariaDB with Asterisk's
//! realtime tables; see `tests/pbx_double`). It points the demo PBX of the workspace at
//! `PBXDESK_WORKSPACE` to it and pins its host key, prints `ready` and the config folder, and
//! runs until its standard input closes. Not a product binary: it exists for tests.

#![allow(clippy::unwrap_used, clippy::panic)]

#[path = "../tests/pbx_double/mod.rs"]
mod pbx_double;

use pbxdesk_core::service::{KeySource, Location, OpenOptions};
use pbxdesk_core::{paths, Workspace};
use std::io::Read;
use std::path::PathBuf;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let path = PathBuf::from(std::env::var("PBXDESK_WORKSPACE").expect("PBXDESK_WORKSPACE"));
    let ws = Workspace::open(OpenOptions::new(
        Location::Sqlite(path.clone()),
        KeySource::File(paths::key_file_for(&path)),
    ))
    .await
    .unwrap();
    let me = ws.local_owner().unwrap();
    let pbx = pbx_double::setup(&ws, &me, "e2e").await;
    println!("ready {}", pbx.sshd.etc().display());
    // Until the test closes our standard input (then sshd is stopped by its Drop).
    tokio::task::spawn_blocking(|| {
        let mut sink = Vec::new();
        let _ = std::io::stdin().read_to_end(&mut sink);
    })
    .await
    .unwrap();
    drop(pbx);
}
