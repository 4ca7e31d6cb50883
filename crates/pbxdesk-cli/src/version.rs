//! `pbxdesk version [--check]`: this build's version and, asked, what the update server
//! announces. Reports only: installing is the app's, after the technician agrees, with the
//! signature checked (a manifest is not signed, so it is never more than news here).

use pbxdesk_core::error::with_causes;
use pbxdesk_core::update::{self, Standing, UpdateNews};
use pbxdesk_core::{Error, ValidationError};
use serde::Serialize;
use std::path::Path;
use std::time::Duration;

#[derive(Debug, Serialize)]
pub struct VersionReport {
    pub version: String,
    /// What the server announces (with --check).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub update: Option<UpdateNews>,
}

impl crate::output::Human for VersionReport {
    fn human(&self) -> String {
        let mut out = format!("pbxdesk {}\n", self.version);
        if let Some(n) = &self.update {
            let published = n
                .published
                .as_deref()
                .map(|p| format!(", published {p}"))
                .unwrap_or_default();
            out.push_str(&match n.standing {
                Standing::Newer if n.for_this_platform => format!(
                    "a newer version is available: {}{published} (install it from the app: About → Updates)\n",
                    n.offered
                ),
                Standing::Newer => format!(
                    "a newer version is announced: {}{published}, but with no package for this system\n",
                    n.offered
                ),
                Standing::Current => "this is the newest version\n".to_owned(),
                Standing::Older => format!(
                    "the server offers {}, older than this build: nothing to install\n",
                    n.offered
                ),
            });
            if let (Standing::Newer, Some(notes)) = (n.standing, &n.notes) {
                out.push('\n');
                out.push_str(notes);
                out.push('\n');
            }
        }
        out
    }
}

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const TIMEOUT: Duration = Duration::from_secs(20);

/// Reads the manifest at `endpoint` and compares it with this build.
pub async fn check(endpoint: Option<&str>, ca_file: Option<&Path>) -> Result<UpdateNews, Error> {
    let endpoint = endpoint.ok_or_else(|| {
        Error::Validation(ValidationError::new(
            "update_endpoint",
            "",
            "an update server: --endpoint URL or PBXDESK_UPDATE_ENDPOINT (the app's About → Updates names the same)",
        ))
    })?;
    let endpoint = update::endpoint(endpoint)?;
    // One crypto provider for rustls, as the API's server uses; a second install is a no-op.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut client = reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(TIMEOUT)
        .user_agent(concat!("pbxdesk/", env!("CARGO_PKG_VERSION")));
    if let Some(f) = ca_file {
        let bad = |why: &str| {
            Error::Validation(ValidationError::new(
                "update_ca_file",
                &f.display().to_string(),
                why,
            ))
        };
        let pem = std::fs::read(f).map_err(|_| bad("a PEM certificate file that can be read"))?;
        let cas = reqwest::Certificate::from_pem_bundle(&pem)
            .ok()
            .filter(|c| !c.is_empty())
            .ok_or_else(|| bad("a PEM certificate (-----BEGIN CERTIFICATE-----)"))?;
        for ca in cas {
            client = client.add_root_certificate(ca);
        }
    }
    let client = client
        .build()
        .map_err(|e| Error::Conflict(format!("cannot make an HTTPS client: {e}")))?;
    let unreachable = |detail: String| {
        Error::Unreachable(format!(
            "the update server {endpoint} could not be reached: {detail}"
        ))
    };
    let mut res = client
        .get(&endpoint)
        .header("accept", "application/json")
        .send()
        .await
        .map_err(|e| unreachable(with_causes(&e)))?;
    if !res.status().is_success() {
        return Err(unreachable(format!("it answered {}", res.status())));
    }
    // Read at most a manifest's size: a server sending more is not an update server.
    let mut body = Vec::new();
    while let Some(chunk) = res
        .chunk()
        .await
        .map_err(|e| unreachable(with_causes(&e)))?
    {
        body.extend_from_slice(&chunk);
        if body.len() > update::MAX_MANIFEST {
            break;
        }
    }
    update::news(env!("CARGO_PKG_VERSION"), &body)
}
