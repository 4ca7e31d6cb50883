//! `pbxdesk version [--check]`: the build's version, and what an update server on loopback
//! (HTTPS under the test's CA) announces. It reports only: nothing is downloaded.

#![allow(clippy::unwrap_used, clippy::panic)] // tests fail loudly by design

use pbxdesk_api::testkit::StaticHttps;
use std::process::{Command, Output};

fn pbxdesk(args: &[&str]) -> Output {
    Command::new(assert_cmd::cargo::cargo_bin("pbxdesk"))
        .args(args)
        .env_remove("PBXDESK_UPDATE_ENDPOINT")
        .env_remove("PBXDESK_UPDATE_CA")
        .output()
        .unwrap()
}

fn manifest(version: &str) -> Vec<u8> {
    serde_json::json!({
        "version": version,
        "notes": "Ring groups.\u{1b}[31m\nFaster renders.",
        "pub_date": "2026-12-04T10:00:00Z",
        "platforms": {"linux-x86_64-deb": {"url": "https://x/pkg.deb", "signature": "c2ln"}},
    })
    .to_string()
    .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_check_tells_what_the_update_server_offers_and_installs_nothing() {
    let own = env!("CARGO_PKG_VERSION");
    let out = pbxdesk(&["version", "--json"]);
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["version"], own);
    assert!(v.get("update").is_none());

    let srv = StaticHttps::start().await;
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, srv.ca_pem()).unwrap();
    let url = srv.url("latest.json");
    let check = |json: bool| {
        let mut a = vec![
            "version",
            "--check",
            "--endpoint",
            &url,
            "--ca-file",
            ca.to_str().unwrap(),
        ];
        if json {
            a.push("--json");
        }
        pbxdesk(&a)
    };

    srv.put("latest.json", &manifest("9.1.0"));
    let out = check(true);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["update"]["standing"], "newer");
    assert_eq!(v["update"]["offered"], "9.1.0");
    assert_eq!(v["update"]["for_this_platform"], true);
    // The notes are shown without the escape sequence a server put into them.
    assert_eq!(v["update"]["notes"], "Ring groups.[31m\nFaster renders.");
    let human = String::from_utf8(check(false).stdout).unwrap();
    assert!(
        human.contains("a newer version is available: 9.1.0"),
        "{human}"
    );
    assert!(human.contains("Faster renders."), "{human}");

    srv.put("latest.json", &manifest("0.0.1"));
    let human = String::from_utf8(check(false).stdout).unwrap();
    assert!(
        human.contains("older than this build: nothing to install"),
        "{human}"
    );
    srv.put("latest.json", &manifest(own));
    assert!(String::from_utf8(check(false).stdout)
        .unwrap()
        .contains("newest version"));

    // Not a manifest: a validation error naming it.
    srv.put("latest.json", b"<html>captive portal</html>");
    let out = check(true);
    assert_eq!(out.status.code(), Some(3));
    let e: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(e["error"]["field"], "manifest", "{e}");

    // The server's certificate is checked: without its CA it is refused.
    let out = pbxdesk(&["version", "--check", "--endpoint", &url]);
    assert_eq!(
        out.status.code(),
        Some(11),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // No server, a plain-HTTP one, a CA file that is none.
    let out = pbxdesk(&["version", "--check"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("PBXDESK_UPDATE_ENDPOINT"));
    let out = pbxdesk(&[
        "version",
        "--check",
        "--endpoint",
        "http://localhost/latest.json",
    ]);
    assert_eq!(out.status.code(), Some(3));
    let bad = dir.path().join("bad.pem");
    std::fs::write(&bad, "hello").unwrap();
    let out = pbxdesk(&[
        "version",
        "--check",
        "--endpoint",
        &url,
        "--ca-file",
        bad.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(3));

    // The server gone: exit 11, with its address.
    srv.stop().await;
    let out = check(false);
    assert_eq!(out.status.code(), Some(11));
    assert!(String::from_utf8_lossy(&out.stderr).contains(&url));
}
