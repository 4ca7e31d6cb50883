//! A PBX for the end-to-end test of the app: the same test double as the apply tests (Debian's
//! sshd on loopback playing the PBX, the stateful Asterisk double, MariaDB with Asterisk's
//! realtime tables; see `tests/pbx_double`). It points the demo PBX of the workspace at
//! `PBXDESK_WORKSPACE` to it and pins its host key, prints `ready` and the config folder, and
//! runs until its standard input closes. Each line it reads there is what a phone does (the
//! double has no SIP stack): `register ENDPOINT PORT`, `silence ENDPOINT` (stops answering its
//! qualify), `unregister ENDPOINT`; it answers `ok` (or `error: …`). Not a product binary: it
//! exists for tests.

#![allow(clippy::unwrap_used, clippy::panic)]

#[path = "../tests/pbx_double/mod.rs"]
mod pbx_double;

use pbxdesk_core::service::{KeySource, Location, OpenOptions};
use pbxdesk_core::{paths, Workspace};
use std::io::BufRead;
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
    let (tx, mut lines) = tokio::sync::mpsc::unbounded_channel::<String>();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    while let Some(line) = lines.recv().await {
        let words: Vec<&str> = line.split_whitespace().collect();
        let answer = match words.as_slice() {
            ["register", endpoint, port] => match port.parse::<u16>() {
                Ok(port) => {
                    pbx.ast.register(endpoint, port, "pbxdesk-e2e-phone/1.0");
                    "ok".to_owned()
                }
                Err(_) => format!("error: port {port:?} is not a number"),
            },
            ["silence", endpoint] => {
                pbx.ast.silence(endpoint);
                "ok".to_owned()
            }
            ["unregister", endpoint] => {
                pbx.ast.unregister(endpoint);
                "ok".to_owned()
            }
            _ => format!("error: unknown command {line:?}"),
        };
        println!("{answer}");
    }
    drop(pbx);
}
