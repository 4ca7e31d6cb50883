//! Signed updates against an update server on loopback (HTTPS under a CA the test makes), with
//! the real tauri-plugin-updater on the mock runtime and a throwaway minisign key pair made here
//! (the publisher's private key is never in the repository). Every refusal leaves the running
//! binary as it was: its bytes are compared before and after.

#![allow(clippy::unwrap_used, clippy::panic)] // tests fail loudly by design

use base64::Engine as _;
use pbxdesk_api::testkit::StaticHttps;
use pbxdesk_app::settings::UpdateSettings;
use pbxdesk_app::update::{self, InstallKind, Source, UpdateError};
use pbxdesk_core::update::Standing;

/// The update server's source as the app reads it from its settings, trusting the test's CA.
fn source(srv: &StaticHttps) -> Source {
    let mut s = Source::from_settings(&UpdateSettings {
        endpoint: Some(srv.url("latest.json")),
        ca_file: None,
    })
    .unwrap();
    s.ca_pem = Some(srv.ca_pem().to_vec());
    s
}

struct Signer {
    pk: minisign::PublicKey,
    sk: minisign::SecretKey,
}

impl Signer {
    fn new() -> Signer {
        let minisign::KeyPair { pk, sk } =
            minisign::KeyPair::generate_unencrypted_keypair().unwrap();
        Signer { pk, sk }
    }

    /// The public key as tauri.conf.json carries it: the key file's text, base64.
    fn pubkey(&self) -> String {
        b64(&self.pk.to_box().unwrap().to_string())
    }

    /// A signature as `tauri signer sign --app-version` makes it: the .sig file's text, base64,
    /// its trusted comment naming the file and the version.
    fn sign(&self, bytes: &[u8], version: &str) -> String {
        let trusted =
            format!("timestamp:1764806400\tfile:pbxdesk_{version}_amd64.deb\tversion:{version}");
        let sig = minisign::sign(
            Some(&self.pk),
            &self.sk,
            std::io::Cursor::new(bytes),
            Some(&trusted),
            Some("signature from tauri secret key"),
        )
        .unwrap();
        b64(&sig.to_string())
    }
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn manifest(version: &str, url: &str, signature: &str) -> Vec<u8> {
    let mut platforms = serde_json::Map::new();
    platforms.insert(
        pbxdesk_core::update::PLATFORM.to_owned(),
        serde_json::json!({ "url": url, "signature": signature }),
    );
    serde_json::json!({
        "version": version,
        "notes": "Ring groups.\nFaster renders.",
        "pub_date": "2026-12-04T10:00:00Z",
        "platforms": platforms,
    })
    .to_string()
    .into_bytes()
}

fn app(pubkey: &str) -> tauri::App<tauri::test::MockRuntime> {
    let mut ctx = tauri::test::mock_context(tauri::test::noop_assets());
    ctx.config_mut().plugins.0.insert(
        "updater".into(),
        serde_json::json!({ "pubkey": pubkey, "requireSignedVersion": true }),
    );
    tauri::test::mock_builder()
        .plugin(tauri_plugin_updater::Builder::new().build())
        .build(ctx)
        .unwrap()
}

fn me() -> Vec<u8> {
    std::fs::read(std::env::current_exe().unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_is_installed_only_when_the_publisher_signed_that_version() {
    let before = me();
    let publisher = Signer::new();
    let stranger = Signer::new();
    // The key is the app's, from its config: no key is passed below.
    let app = app(&publisher.pubkey());
    let h = app.handle();
    let installed = h.package_info().version.to_string();
    let newer = "9.1.0";
    let srv = StaticHttps::start().await;
    let src = source(&srv);
    let package = b"!<arch>\ndebian-binary   a package of version 9.1.0".to_vec();
    srv.put("pkg.deb", &package);
    let good = publisher.sign(&package, newer);

    // An older build sees the newer version and its notes; nothing is downloaded by a check.
    srv.put("latest.json", &manifest(newer, &srv.url("pkg.deb"), &good));
    let found = update::check(h, &src, None, None).await.unwrap();
    assert_eq!(found.news.standing, Standing::Newer);
    assert_eq!(found.news.offered, newer);
    assert_eq!(found.news.installed, installed);
    assert_eq!(
        found.news.notes.as_deref(),
        Some("Ring groups.\nFaster renders.")
    );
    assert_eq!(
        found.news.published.as_deref(),
        Some("2026-12-04T10:00:00Z")
    );

    // The publisher's signature for this version: downloaded and verified, with progress.
    let mut seen = 0;
    let verified = update::fetch(h, &src, None, newer, |got, _| seen = got)
        .await
        .unwrap();
    assert_eq!(verified.version(), newer);
    assert_eq!(seen, package.len() as u64);
    // This test binary is no package: verified, still not installed over itself.
    let e = update::install(verified, update::install_kind()).unwrap_err();
    assert_eq!(update::install_kind(), InstallKind::NotAPackage);
    assert!(matches!(e, UpdateError::NotAPackage { .. }), "{e}");

    // Signed by another key: refused.
    srv.put(
        "latest.json",
        &manifest(newer, &srv.url("pkg.deb"), &stranger.sign(&package, newer)),
    );
    let e = update::fetch(h, &src, None, newer, |_, _| {})
        .await
        .err()
        .unwrap();
    assert!(matches!(e, UpdateError::BadSignature { .. }), "{e}");
    assert!(e.to_string().contains("not the publisher's"), "{e}");

    // The artifact changed after it was signed: refused.
    srv.put("latest.json", &manifest(newer, &srv.url("pkg.deb"), &good));
    let mut tampered = package.clone();
    tampered.extend_from_slice(b"\n#!/bin/sh rm -rf ~");
    srv.put("pkg.deb", &tampered);
    let e = update::fetch(h, &src, None, newer, |_, _| {})
        .await
        .err()
        .unwrap();
    assert!(matches!(e, UpdateError::BadSignature { .. }), "{e}");
    srv.put("pkg.deb", &package);

    // A signature that is not one at all.
    srv.put(
        "latest.json",
        &manifest(newer, &srv.url("pkg.deb"), "bm90IGEgc2lnbmF0dXJl"),
    );
    let e = update::fetch(h, &src, None, newer, |_, _| {})
        .await
        .err()
        .unwrap();
    assert!(matches!(e, UpdateError::BadSignature { .. }), "{e}");

    // A downgrade: an older version is told, and never fetched.
    let old = publisher.sign(&package, "0.0.9");
    srv.put("latest.json", &manifest("0.0.9", &srv.url("pkg.deb"), &old));
    let found = update::check(h, &src, None, None).await.unwrap();
    assert_eq!(found.news.standing, Standing::Older);
    assert_eq!(found.news.offered, "0.0.9");
    assert!(found.update.is_none());
    let e = update::fetch(h, &src, None, "0.0.9", |_, _| {})
        .await
        .err()
        .unwrap();
    assert!(matches!(e, UpdateError::NotNewer { .. }), "{e}");

    // A downgrade passed off as an update: an old release's genuine signature under a new
    // version number.
    srv.put("latest.json", &manifest(newer, &srv.url("pkg.deb"), &old));
    let e = update::fetch(h, &src, None, newer, |_, _| {})
        .await
        .err()
        .unwrap();
    assert_eq!(
        e,
        UpdateError::SignedForAnother {
            signed: "0.0.9".into(),
            announced: newer.into()
        }
    );

    // The server changed its offer after the technician agreed: nothing else is installed.
    srv.put(
        "latest.json",
        &manifest(
            "9.2.0",
            &srv.url("pkg.deb"),
            &publisher.sign(&package, "9.2.0"),
        ),
    );
    let e = update::fetch(h, &src, None, newer, |_, _| {})
        .await
        .err()
        .unwrap();
    assert!(matches!(e, UpdateError::Changed { .. }), "{e}");

    // Not a manifest, no package for this system.
    srv.put("latest.json", b"<html>captive portal</html>");
    let e = update::check(h, &src, None, None).await.err().unwrap();
    assert!(matches!(e, UpdateError::NotAManifest { .. }), "{e}");
    srv.put(
        "latest.json",
        serde_json::json!({"version": newer, "platforms": {"windows-x86_64": {"url": srv.url("pkg.deb"), "signature": good}}})
            .to_string()
            .as_bytes(),
    );
    let e = update::check(h, &src, None, None).await.err().unwrap();
    assert!(matches!(e, UpdateError::NoArtifact { .. }), "{e}");

    // A server whose certificate the app does not trust is not an update server.
    srv.put("latest.json", &manifest(newer, &srv.url("pkg.deb"), &good));
    let mut untrusted = src.clone();
    untrusted.ca_pem = None;
    let e = update::check(h, &untrusted, None, None)
        .await
        .err()
        .unwrap();
    assert!(matches!(e, UpdateError::Unreachable { .. }), "{e}");

    // The server gone: said, with its address.
    srv.stop().await;
    let e = update::check(h, &src, None, None).await.err().unwrap();
    assert!(matches!(e, UpdateError::Unreachable { .. }), "{e}");
    assert!(e.to_string().contains(&srv.url("latest.json")), "{e}");

    assert!(me() == before, "the running binary is untouched");
}

#[test]
fn updates_are_off_until_a_server_is_set_and_only_over_https() {
    let none = Source::from_settings(&UpdateSettings::default()).unwrap_err();
    assert_eq!(none, UpdateError::NotConfigured);
    for bad in [
        "http://updates.example.net/latest.json",
        "ftp://x/latest.json",
        "https://u:p@x/l.json",
    ] {
        let e = Source::from_settings(&UpdateSettings {
            endpoint: Some(bad.into()),
            ca_file: None,
        })
        .unwrap_err();
        assert!(matches!(e, UpdateError::Setting(_)), "{bad}: {e}");
    }
    let dir = tempfile::tempdir().unwrap();
    let not_pem = dir.path().join("ca.pem");
    std::fs::write(&not_pem, "hello").unwrap();
    let e = update::read_ca(&not_pem).unwrap_err();
    assert!(e.to_string().contains("PEM"), "{e}");
    // As the technician sets them: both fields checked at once, each named.
    let e = update::settings_from(
        "http://u.example.net/latest.json",
        not_pem.to_str().unwrap(),
    )
    .unwrap_err();
    let fields: Vec<String> = e.fields().iter().map(|f| f.field.clone()).collect();
    assert_eq!(fields, ["update_endpoint", "update_ca_file"], "{e}");
    let e = update::settings_from("", "relative/ca.pem").unwrap_err();
    assert_eq!(e.fields()[0].field, "update_ca_file");
    let off = update::settings_from(" ", "").unwrap();
    assert_eq!(off, UpdateSettings::default());
    let on = update::settings_from("https://u.example.net/latest.json", "").unwrap();
    assert_eq!(
        on.endpoint.as_deref(),
        Some("https://u.example.net/latest.json")
    );
}

/// The key the app ships with is a minisign public key (so a release signed with its private
/// half verifies), and the config requires a signature to name its version.
#[test]
fn the_app_ships_the_publishers_public_key_and_requires_signed_versions() {
    let conf: serde_json::Value = serde_json::from_str(include_str!("../tauri.conf.json")).unwrap();
    let u = &conf["plugins"]["updater"];
    assert_eq!(u["requireSignedVersion"], true);
    assert!(u.get("dangerousInsecureTransportProtocol").is_none());
    assert!(u.get("dangerousAcceptInvalidCerts").is_none());
    let text = base64::engine::general_purpose::STANDARD
        .decode(u["pubkey"].as_str().unwrap())
        .unwrap();
    let text = String::from_utf8(text).unwrap();
    assert!(minisign::PublicKeyBox::from_string(&text)
        .and_then(|b| b.into_public_key())
        .is_ok());
    // No endpoint is built in: off until the technician sets one.
    assert!(u.get("endpoints").is_none());
}
