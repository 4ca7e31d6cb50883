//! The live PBX: what it is doing, watched over AMI with events on, through the PBX's tunnel
//! as its profile says. The watching itself is `pbxdesk_remote::watch`; this is who may watch
//! and how the connection is made.

use super::check::target;
use super::{Actor, Workspace};
use crate::domain::Via;
use crate::error::{Error, Refusal, Result, ValidationError};
use pbxdesk_remote::ami::{self, AmiError};
use pbxdesk_remote::tunnel::Tunnel;
use pbxdesk_remote::watch::{self, Live};
use std::time::Duration;

/// The first wait before reconnecting (doubling up to 30 s).
const BACKOFF: Duration = Duration::from_millis(500);

impl Workspace {
    /// Starts watching a PBX; the state arrives on the receiver and is kept until every clone
    /// of it is dropped. The whole PBX is watched, so only an operator who sees every tenant
    /// may (a tenant's own view is a filter over it, still to come).
    pub async fn pbx_watch(
        &self,
        actor: &Actor,
        pbx: &str,
    ) -> Result<tokio::sync::watch::Receiver<Live>> {
        if !actor.sees_all_tenants() {
            return Err(Error::Forbidden(format!(
                "operator \"{}\" ({}) may not watch a whole PBX (it holds other tenants)",
                actor.name(),
                actor.role()
            )));
        }
        let pbx = self.pbx_by_name(pbx).await?;
        let pinned = pbx.host_key.clone().ok_or_else(|| Refusal::Untrusted {
            pbx: pbx.name.clone(),
        })?;
        let [ssh, ami_secret, _] = self.pbx_secrets(pbx.id).await?;
        let (Some(user), Some(secret)) = (pbx.ami_user.clone(), ami_secret) else {
            return Err(ValidationError::new(
                "ami_user",
                pbx.ami_user.as_deref().unwrap_or(""),
                "an AMI user and secret in the PBX's profile",
            )
            .into());
        };
        let opts = ami::Options {
            connect_timeout: Duration::from_millis(u64::from(pbx.connect_timeout_ms)),
            action_timeout: Duration::from_millis(u64::from(pbx.command_timeout_ms)),
        };
        let connect = move || {
            let (pbx, pinned, ssh, user, secret, opts) = (
                pbx.clone(),
                pinned.clone(),
                ssh.clone(),
                user.clone(),
                secret.clone(),
                opts.clone(),
            );
            async move {
                let (tunnel, addr) = match pbx.ami_via {
                    Via::Direct => (None, format!("{}:{}", pbx.host, pbx.ami_port)),
                    Via::Tunnel => {
                        let tg = target(&pbx, ssh);
                        let port = pbx.ami_port;
                        let t = tokio::task::spawn_blocking(move || {
                            Tunnel::open(&tg, Some(&pinned), "127.0.0.1", port)
                        })
                        .await
                        .map_err(|e| AmiError::Connect {
                            addr: pbx.host.clone(),
                            reason: e.to_string(),
                        })?
                        .map_err(|e| AmiError::Connect {
                            addr: pbx.host.clone(),
                            reason: e.to_string(),
                        })?;
                        let addr = t.local_addr();
                        (Some(t), addr)
                    }
                };
                let client = ami::Client::connect(&addr, &user, &secret, true, opts).await?;
                // The tunnel lives as long as the connection through it.
                Ok((client, tunnel))
            }
        };
        Ok(watch::spawn(connect, BACKOFF))
    }
}
