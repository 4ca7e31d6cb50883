//! One version: the Cargo workspace's. tauri.conf.json names none (Tauri then takes the crate's),
//! the About dialog shows `CARGO_PKG_VERSION`, and `pbxdesk --version` prints the same (checked
//! in the CLI's tests).

#![allow(clippy::unwrap_used)] // tests fail loudly by design

#[test]
fn the_app_the_bundle_and_the_cli_carry_the_workspace_version() {
    let conf: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tauri.conf.json")).unwrap(),
    )
    .unwrap();
    assert!(
        conf.get("version").is_none(),
        "tauri.conf.json must not name a version of its own: the workspace's Cargo.toml is the one place"
    );
    let workspace =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.toml")).unwrap();
    let declared = workspace
        .lines()
        .skip_while(|l| l.trim() != "[workspace.package]")
        .find_map(|l| l.trim().strip_prefix("version = "))
        .map(|v| v.trim_matches('"').to_owned())
        .unwrap();
    assert_eq!(declared, env!("CARGO_PKG_VERSION"));
}
