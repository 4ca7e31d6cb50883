//! Signed self-updates, through tauri-plugin-updater. Off until the technician names an update
//! server (About → Updates); a check only tells; nothing is downloaded or installed without the
//! technician's click for the very version shown. The artifact's minisign signature is checked
//! against the public key built into the app (tauri.conf.json, `plugins.updater.pubkey`), and
//! the signature must name the version the server announced (`requireSignedVersion`), so a
//! server, or anyone between, can neither change a file nor pass an older signed release off as
//! a newer one. The manifest itself is not signed: it only ever informs.

use crate::settings::UpdateSettings;
use pbxdesk_core::update::{Standing, UpdateNews};
use serde::Serialize;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tauri::{AppHandle, Runtime};
use tauri_plugin_updater::{Error as PluginError, Update, UpdaterExt};

/// Where the updates come from, read from the settings.
#[derive(Debug, Clone)]
pub struct Source {
    pub endpoint: url::Url,
    /// The server's CA (PEM), when it is not one of the system's.
    pub ca_pem: Option<Vec<u8>>,
}

impl Source {
    /// The configured source; none configured is [`UpdateError::NotConfigured`].
    pub fn from_settings(s: &UpdateSettings) -> Result<Source, UpdateError> {
        let endpoint = s.endpoint.as_deref().ok_or(UpdateError::NotConfigured)?;
        let endpoint = pbxdesk_core::update::endpoint(endpoint)
            .map_err(|e| UpdateError::Setting(e.to_string()))?;
        let endpoint =
            url::Url::parse(&endpoint).map_err(|e| UpdateError::Setting(e.to_string()))?;
        let ca_pem = match &s.ca_file {
            Some(f) => Some(read_ca(f)?),
            None => None,
        };
        Ok(Source { endpoint, ca_pem })
    }
}

/// The update server the technician names (an empty endpoint: updates off; an empty CA file:
/// the system's roots), both fields checked at once.
pub fn settings_from(endpoint: &str, ca_file: &str) -> pbxdesk_core::Result<UpdateSettings> {
    let mut bad = pbxdesk_core::Problems::new();
    let endpoint = match endpoint.trim() {
        "" => None,
        e => bad.take(pbxdesk_core::update::endpoint(e)),
    };
    let ca_file = match ca_file.trim() {
        "" => None,
        f => {
            let p = std::path::PathBuf::from(f);
            let checked = if !p.is_absolute() || f.chars().any(char::is_control) {
                Err("an absolute path to a PEM certificate file".to_owned())
            } else {
                read_pem(&p)
            };
            bad.take(
                checked.map_err(|why| pbxdesk_core::ValidationError::new("update_ca_file", f, why)),
            )
            .map(|_| p)
        }
    };
    bad.finish()?;
    Ok(UpdateSettings { endpoint, ca_file })
}

/// A CA file the technician names: a PEM certificate that parses.
pub fn read_ca(file: &std::path::Path) -> Result<Vec<u8>, UpdateError> {
    read_pem(file).map_err(|why| UpdateError::Setting(format!("CA file {}: {why}", file.display())))
}

/// A PEM certificate file's bytes, or why it is not one.
fn read_pem(file: &std::path::Path) -> Result<Vec<u8>, String> {
    let pem = std::fs::read(file).map_err(|e| e.to_string())?;
    if pem.len() > 1024 * 1024 {
        return Err("larger than 1 MiB: not a CA certificate".into());
    }
    certificates(&pem).ok_or("not a PEM certificate (-----BEGIN CERTIFICATE-----)")?;
    Ok(pem)
}

/// The certificates of a PEM file (none parsed: not one).
fn certificates(pem: &[u8]) -> Option<Vec<reqwest::Certificate>> {
    reqwest::Certificate::from_pem_bundle(pem)
        .ok()
        .filter(|c| !c.is_empty())
}

/// How this copy of the app was installed, which decides whether it can replace itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, specta::Type)]
#[serde(rename_all = "snake_case")]
pub enum InstallKind {
    /// From the .deb (installed again with `dpkg -i`, after the system asks for a password).
    Deb,
    /// An AppImage (the file is replaced).
    AppImage,
    /// Built from source or copied: it cannot update itself.
    NotAPackage,
}

/// This process's install kind: the bundler marks the binary it puts into a package.
pub fn install_kind() -> InstallKind {
    use tauri::utils::{config::BundleType, platform::bundle_type};
    match bundle_type() {
        Some(BundleType::Deb) => InstallKind::Deb,
        Some(BundleType::AppImage) if std::env::var_os("APPIMAGE").is_some() => {
            InstallKind::AppImage
        }
        _ => InstallKind::NotAPackage,
    }
}

/// Why an update was not checked or not installed. Every one leaves the installed app as it was.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpdateError {
    #[error("no update server is set (About → Updates)")]
    NotConfigured,
    #[error("{0}")]
    Setting(String),
    #[error("the update server {endpoint} could not be reached: {detail}. Nothing was changed")]
    Unreachable { endpoint: String, detail: String },
    #[error(
        "the update server's answer is not an update manifest ({detail}). Nothing was changed"
    )]
    NotAManifest { detail: String },
    #[error("version {version} has no package for this system ({platform}). Nothing was changed")]
    NoArtifact { version: String, platform: String },
    #[error(
        "the download's signature is not the publisher's: the file was changed on its way, or \
         signed with another key ({detail}). It was not installed, and nothing was changed"
    )]
    BadSignature { detail: String },
    #[error(
        "the download is signed for version {signed}, but the server announced {announced}: \
         a server passing one release off as another. It was not installed, and nothing was \
         changed"
    )]
    SignedForAnother { signed: String, announced: String },
    #[error(
        "the server now offers {now}, not the {agreed} you agreed to install: check again. \
         Nothing was changed"
    )]
    Changed { agreed: String, now: String },
    #[error(
        "the server offers {offered}, which is not newer than this {installed}: nothing to install"
    )]
    NotNewer { offered: String, installed: String },
    #[error(
        "version {version} is verified, but this copy of pbxdesk was not installed from its \
         .deb or AppImage and cannot replace itself: install the package by hand"
    )]
    NotAPackage { version: String },
    #[error("installing {version} failed: {detail}. The installed version is unchanged")]
    InstallFailed { version: String, detail: String },
}

/// A check's wait at most, and a download's wait for its next bytes.
const CHECK_TIMEOUT: Duration = Duration::from_secs(20);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const READ_TIMEOUT: Duration = Duration::from_secs(30);

fn signature_error(e: &PluginError) -> Option<UpdateError> {
    match e {
        PluginError::Minisign(_) | PluginError::Base64(_) | PluginError::SignatureUtf8(_) => {
            Some(UpdateError::BadSignature {
                detail: e.to_string(),
            })
        }
        PluginError::MissingSignedVersion => Some(UpdateError::BadSignature {
            detail: "the signature names no version".into(),
        }),
        PluginError::SignedVersionMismatch { signed, announced } => {
            Some(UpdateError::SignedForAnother {
                signed: signed.clone(),
                announced: announced.clone(),
            })
        }
        _ => None,
    }
}

/// An error of the plugin, worded: the endpoint for the unreachable kind.
fn worded(src: &Source, e: PluginError) -> UpdateError {
    if let Some(s) = signature_error(&e) {
        return s;
    }
    let unreachable = |detail: String| UpdateError::Unreachable {
        endpoint: src.endpoint.to_string(),
        detail,
    };
    match e {
        PluginError::Reqwest(r) if r.is_decode() => UpdateError::NotAManifest {
            detail: "not JSON".into(),
        },
        PluginError::Reqwest(r) => unreachable(pbxdesk_core::error::with_causes(&r)),
        PluginError::Network(m) => unreachable(m),
        PluginError::ReleaseNotFound => unreachable("it answered with an error status".into()),
        PluginError::Serialization(s) => UpdateError::NotAManifest {
            detail: s.to_string(),
        },
        PluginError::Semver(s) => UpdateError::NotAManifest {
            detail: format!("its version: {s}"),
        },
        other => unreachable(other.to_string()),
    }
}

/// The version and notes a server announced, as the version comparator saw them.
type Seen = Arc<Mutex<Option<(String, Option<String>)>>>;

/// What a check found: the news, and the update to fetch when it is newer.
pub struct Found {
    pub news: UpdateNews,
    pub update: Option<Update>,
}

/// Asks the server what it offers. `pubkey` replaces the built-in key (tests only sign with a
/// throwaway pair; the app passes none).
pub async fn check<R: Runtime>(
    app: &AppHandle<R>,
    src: &Source,
    pubkey: Option<&str>,
    timeout: Option<Duration>,
) -> Result<Found, UpdateError> {
    let installed = app.package_info().version.to_string();
    // The plugin returns nothing for a version that is not newer; what it saw is kept here so
    // the technician is told what the server offers (an older version is a downgrade).
    let seen: Seen = Arc::default();
    let keep = seen.clone();
    let ca = match &src.ca_pem {
        Some(p) => certificates(p)
            .ok_or_else(|| UpdateError::Setting("the CA file holds no PEM certificate".into()))?,
        None => Vec::new(),
    };
    let mut b = app
        .updater_builder()
        .endpoints(vec![src.endpoint.clone()])
        .map_err(|e| UpdateError::Setting(e.to_string()))?
        .version_comparator(move |current, release| {
            if let Ok(mut k) = keep.lock() {
                *k = Some((release.version.to_string(), release.notes.clone()));
            }
            release.version > current
        })
        .configure_client(move |c| {
            let c = c
                .connect_timeout(CONNECT_TIMEOUT)
                .read_timeout(READ_TIMEOUT);
            ca.iter()
                .fold(c, |c, ca| c.add_root_certificate(ca.clone()))
        });
    if let Some(t) = timeout {
        b = b.timeout(t);
    }
    if let Some(k) = pubkey {
        b = b.pubkey(k);
    }
    let updater = b.build().map_err(|e| UpdateError::Setting(e.to_string()))?;
    let update = updater.check().await.map_err(|e| match e {
        PluginError::TargetNotFound(p) => UpdateError::NoArtifact {
            version: seen_version(&seen),
            platform: p,
        },
        PluginError::TargetsNotFound(p) => UpdateError::NoArtifact {
            version: seen_version(&seen),
            platform: p.join(", "),
        },
        e => worded(src, e),
    })?;
    let news = match &update {
        Some(u) => UpdateNews::new(
            &installed,
            &u.version,
            u.body.as_deref(),
            u.raw_json
                .get("pub_date")
                .and_then(|d| d.as_str())
                .map(str::to_owned),
            true,
        ),
        None => {
            let (offered, notes) = seen
                .lock()
                .ok()
                .and_then(|s| s.clone())
                .unwrap_or_else(|| (installed.clone(), None));
            UpdateNews::new(&installed, &offered, notes.as_deref(), None, false)
        }
    }
    .map_err(|e| UpdateError::NotAManifest {
        detail: e.to_string(),
    })?;
    Ok(Found { news, update })
}

fn seen_version(seen: &Mutex<Option<(String, Option<String>)>>) -> String {
    seen.lock()
        .ok()
        .and_then(|s| s.as_ref().map(|(v, _)| v.clone()))
        .unwrap_or_default()
}

/// A download whose signature was checked: the only thing [`install`] takes.
pub struct Verified {
    update: Update,
    bytes: Vec<u8>,
}

impl Verified {
    pub fn version(&self) -> &str {
        &self.update.version
    }
}

/// Checks again, refuses anything but the version the technician agreed to, downloads it
/// (`progress`: bytes so far, and the whole when the server says it) and checks its signature.
pub async fn fetch<R: Runtime>(
    app: &AppHandle<R>,
    src: &Source,
    pubkey: Option<&str>,
    agreed: &str,
    mut progress: impl FnMut(u64, Option<u64>),
) -> Result<Verified, UpdateError> {
    let found = check(app, src, pubkey, None).await?;
    let Some(update) = found.update else {
        return Err(match found.news.standing {
            Standing::Newer => UpdateError::NotAManifest {
                detail: "no update".into(),
            },
            _ => UpdateError::NotNewer {
                offered: found.news.offered,
                installed: found.news.installed,
            },
        });
    };
    if update.version.trim_start_matches('v') != agreed.trim_start_matches('v') {
        return Err(UpdateError::Changed {
            agreed: agreed.to_owned(),
            now: update.version.clone(),
        });
    }
    let mut got = 0u64;
    let bytes = update
        .download(
            |n, total| {
                got += n as u64;
                progress(got, total);
            },
            || {},
        )
        .await
        .map_err(|e| worded(src, e))?;
    Ok(Verified { update, bytes })
}

/// Installs a verified download when this copy came from a package; the new version runs after
/// a restart.
pub fn install(v: Verified, kind: InstallKind) -> Result<String, UpdateError> {
    let version = v.update.version.clone();
    if kind == InstallKind::NotAPackage {
        return Err(UpdateError::NotAPackage { version });
    }
    // `install` checks the signature again before it touches anything.
    v.update
        .install(&v.bytes)
        .map_err(|e| match signature_error(&e) {
            Some(s) => s,
            None => UpdateError::InstallFailed {
                version: version.clone(),
                detail: e.to_string(),
            },
        })?;
    Ok(version)
}

impl From<UpdateError> for crate::ApiError {
    fn from(e: UpdateError) -> Self {
        use pbxdesk_core::ErrorCode;
        let (code, field) = match &e {
            UpdateError::NotConfigured => (ErrorCode::Validation, Some("update_endpoint")),
            UpdateError::Setting(_) => (ErrorCode::Validation, None),
            UpdateError::Unreachable { .. } => (ErrorCode::Unreachable, None),
            UpdateError::BadSignature { .. }
            | UpdateError::SignedForAnother { .. }
            | UpdateError::NotAPackage { .. } => (ErrorCode::Refused, None),
            UpdateError::NotAManifest { .. }
            | UpdateError::NoArtifact { .. }
            | UpdateError::Changed { .. }
            | UpdateError::NotNewer { .. } => (ErrorCode::Conflict, None),
            UpdateError::InstallFailed { .. } => (ErrorCode::Internal, None),
        };
        let message = e.to_string();
        crate::ApiError {
            code,
            fields: field
                .map(|f| {
                    vec![pbxdesk_core::FieldProblem {
                        field: f.into(),
                        message: message.clone(),
                    }]
                })
                .unwrap_or_default(),
            field: field.map(str::to_owned),
            message,
            refusal: None,
        }
    }
}

type Boxed<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The app's updater with its runtime erased, so the commands (which name no runtime) reach it
/// through the app's state; an `AppHandle` of any runtime is one.
pub trait AppUpdater: Send + Sync {
    fn check<'a>(&'a self, src: &'a Source) -> Boxed<'a, Result<Found, UpdateError>>;
    fn fetch<'a>(
        &'a self,
        src: &'a Source,
        agreed: &'a str,
        progress: Box<dyn FnMut(u64, Option<u64>) + Send + 'a>,
    ) -> Boxed<'a, Result<Verified, UpdateError>>;
}

impl<R: Runtime> AppUpdater for AppHandle<R> {
    fn check<'a>(&'a self, src: &'a Source) -> Boxed<'a, Result<Found, UpdateError>> {
        Box::pin(check(self, src, None, Some(CHECK_TIMEOUT)))
    }

    fn fetch<'a>(
        &'a self,
        src: &'a Source,
        agreed: &'a str,
        progress: Box<dyn FnMut(u64, Option<u64>) + Send + 'a>,
    ) -> Boxed<'a, Result<Verified, UpdateError>> {
        Box::pin(fetch(self, src, None, agreed, progress))
    }
}
