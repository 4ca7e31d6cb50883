#![allow(clippy::unwrap_used, clippy::panic)]
//! The rendered dialplan, uploaded over real SSH, loads whole in the Asterisk double that
//! follows the Asterisk 22.10.1 captures: every context the render expects is there with the
//! expected number of extensions. `tests/fixtures/asterisk22-extensions.conf` and
//! `asterisk22-00-pbx-base.conf` are the capture's live extensions.conf and
//! extensions.d/00-pbx-base.conf (config/etc-asterisk/); pbxdesk's include line is added to the
//! first as an apply would. (Without 00-pbx-base.conf, the capture's own `#include
//! extensions.d/*.conf` matches nothing and the whole reload fails, as it did on Asterisk.)

use pbxdesk_core::service::{KeySource, Location, OpenOptions};
use pbxdesk_core::{demo, Workspace};
use pbxdesk_remote::ami::{Client, Options};
use pbxdesk_remote::ssh::Connection;
use pbxdesk_remote::testkit::asterisk::start_asterisk;
use pbxdesk_remote::testkit::Sshd;
use secrecy::SecretString;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_render_loads_whole_in_the_capture_faithful_asterisk() {
    let dir = tempfile::tempdir().unwrap();
    let ws = Workspace::open(OpenOptions::new(
        Location::Sqlite(dir.path().join("ws.sqlite")),
        KeySource::File(dir.path().join("ws.key")),
    ))
    .await
    .unwrap();
    let me = ws.local_owner().unwrap();
    demo::seed(&ws, &me).await.unwrap();
    let r = ws.pbx_render(&me, "demo-pbx", true).await.unwrap();
    assert!(!r.has_errors(), "{:?}", r.findings);

    let sshd = Sshd::start();
    let etc = sshd.etc();
    let main = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/asterisk22-extensions.conf"
    ))
    .unwrap();
    let include = r
        .includes
        .iter()
        .find(|i| i.file == "extensions.conf")
        .unwrap();
    std::fs::write(
        etc.join("extensions.conf"),
        format!("{main}\n{}\n", include.line),
    )
    .unwrap();
    std::fs::create_dir_all(etc.join("extensions.d")).unwrap();
    std::fs::copy(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/asterisk22-00-pbx-base.conf"
        ),
        etc.join("extensions.d/00-pbx-base.conf"),
    )
    .unwrap();

    // Upload as an apply does: every file written to a temporary name, then renamed at once.
    let (target, fp, etc_s) = (
        sshd.target("user_key", None),
        sshd.fingerprint(),
        etc.display().to_string(),
    );
    let files = r.files.clone();
    tokio::task::spawn_blocking(move || {
        let c = Connection::open(&target, Some(&fp)).unwrap();
        for sub in [
            "extensions.d/pbxdesk",
            "pjsip.d/pbxdesk",
            "voicemail.d/pbxdesk",
        ] {
            c.mkdir_p(&format!("{etc_s}/{sub}")).unwrap();
        }
        let owned: Vec<(String, Vec<u8>)> = files
            .iter()
            .map(|(p, t)| (format!("{etc_s}/{p}"), t.clone().into_bytes()))
            .collect();
        let refs: Vec<(&str, &[u8])> = owned
            .iter()
            .map(|(p, b)| (p.as_str(), b.as_slice()))
            .collect();
        c.write_files_atomic(&refs).unwrap();
    })
    .await
    .unwrap();

    let ast = start_asterisk(etc.clone()).await;
    let c = Client::connect(
        &ast.addr,
        "pbx",
        &SecretString::from("pbx-secret-1"),
        false,
        Options::default(),
    )
    .await
    .unwrap();
    c.reload("pbx_config").await.unwrap();
    let mut checked = 0;
    for (ctx, want) in &r.contexts {
        let got = c
            .dialplan_context(ctx)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("context {ctx} was not loaded"));
        assert_eq!(got.extensions as usize, *want, "extensions of {ctx}");
        checked += 1;
    }
    assert!(checked > 20, "{checked}");
    // And the capture's own contexts are untouched.
    assert!(c.dialplan_context("pbx-generated").await.unwrap().is_some());
}
