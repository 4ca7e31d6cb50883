//! The committed TypeScript contract must match the Rust commands. Run with
//! UPDATE_BINDINGS=1 to rewrite ui/src/bindings.ts after changing a command or a type.

#![allow(clippy::unwrap_used, clippy::panic)] // tests and benches fail loudly by design

#[test]
fn committed_bindings_are_current() {
    let committed = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../ui/src/bindings.ts");
    let fresh = std::env::temp_dir().join(format!("pbxdesk-bindings-{}.ts", std::process::id()));
    pbxdesk_app::specta_builder::<tauri::Wry>()
        .export(pbxdesk_app::typescript(), &fresh)
        .expect("export bindings");
    let fresh_text = std::fs::read_to_string(&fresh).expect("read fresh bindings");
    std::fs::remove_file(&fresh).ok();
    if std::env::var("UPDATE_BINDINGS").is_ok_and(|v| v == "1") {
        std::fs::write(&committed, &fresh_text).expect("write bindings");
        return;
    }
    let old = std::fs::read_to_string(&committed).unwrap_or_default();
    assert!(
        old == fresh_text,
        "ui/src/bindings.ts is stale: run `UPDATE_BINDINGS=1 cargo test -p pbxdesk-app --test bindings` and commit it"
    );
}
