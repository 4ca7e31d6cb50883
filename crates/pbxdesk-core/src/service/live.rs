//! The live PBX: what it is doing, watched over AMI with events on, through the PBX's tunnel
//! as its profile says. The watching itself is `pbxdesk_remote::watch`; this is who may watch
//! and how the connection is made. While a PBX is watched, its connection also carries the
//! users' DND and forwards both ways (`features.rs`).

use super::check::target;
use super::{Actor, Workspace};
use crate::domain::Via;
use crate::error::{Error, Refusal, Result, ValidationError};
use crate::model::Pbx;
use pbxdesk_remote::ami::{self, AmiError, Client};
use pbxdesk_remote::tunnel::Tunnel;
use pbxdesk_remote::watch::{self, Hooks, Live};
use secrecy::SecretString;
use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

/// The first wait before reconnecting (doubling up to `watch::MAX_BACKOFF`, 4 s).
const BACKOFF: Duration = Duration::from_millis(500);

/// What connecting to a PBX's AMI takes, from its profile (secrets opened for the connection).
#[derive(Clone)]
pub(crate) struct AmiReach {
    pub pbx: Pbx,
    pinned: String,
    ssh: Option<SecretString>,
    user: String,
    secret: SecretString,
    opts: ami::Options,
}

impl AmiReach {
    /// One logged-in connection, through the SSH tunnel when the profile says so; the tunnel
    /// must live as long as the connection.
    pub(crate) async fn connect(&self, events: bool) -> Result<(Client, Option<Tunnel>), AmiError> {
        let pbx = &self.pbx;
        let (tunnel, addr) = match pbx.ami_via {
            Via::Direct => (None, format!("{}:{}", pbx.host, pbx.ami_port)),
            Via::Tunnel => {
                let (tg, pinned, port) = (
                    target(pbx, self.ssh.clone()),
                    self.pinned.clone(),
                    pbx.ami_port,
                );
                let failed = |reason: String| AmiError::Connect {
                    addr: pbx.host.clone(),
                    reason,
                };
                let t = tokio::task::spawn_blocking(move || {
                    Tunnel::open(&tg, Some(&pinned), "127.0.0.1", port)
                })
                .await
                .map_err(|e| failed(e.to_string()))?
                .map_err(|e| failed(e.to_string()))?;
                let addr = t.local_addr();
                (Some(t), addr)
            }
        };
        let client =
            ami::Client::connect(&addr, &self.user, &self.secret, events, self.opts.clone())
                .await?;
        Ok((client, tunnel))
    }
}

impl Workspace {
    /// How to reach a PBX's AMI: refused while its host key is not trusted, and a validation
    /// error when the profile has no AMI user.
    pub(crate) async fn ami_reach(&self, pbx: Pbx) -> Result<AmiReach> {
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
        Ok(AmiReach {
            pbx,
            pinned,
            ssh,
            user,
            secret,
            opts,
        })
    }

    /// Watches a PBX; the state arrives on the receiver, kept current until it (and every
    /// clone of it) is dropped. One watcher (one AMI connection) runs per PBX however many
    /// views there are. An operator who sees every tenant sees the whole PBX; a tenant_admin
    /// only its tenants' devices, the trunks they may use and their calls (`LiveState::only`;
    /// a PBX none of its tenants is on is "not found"; its devices as of the start). Auditors
    /// see, as they see everything, and change nothing. While it runs, the users' DND and
    /// forwards are pushed and read back over its connection.
    pub async fn pbx_watch(
        &self,
        actor: &Actor,
        pbx: &str,
    ) -> Result<tokio::sync::watch::Receiver<Live>> {
        let pbx = self.pbx_by_name(pbx).await?;
        let mine = if actor.sees_all_tenants() {
            None
        } else {
            let ours =
                crate::store::pbxes::of_tenants(self.store.pool(), actor.tenant_ids()).await?;
            if !ours.iter().any(|p| p.id == pbx.id) {
                return Err(Error::not_found("PBX", &pbx.name));
            }
            Some(Scope::read(self, pbx.id, actor.tenant_ids().to_vec()).await?)
        };
        let shared = self.shared_watcher(pbx).await?;
        Ok(view(shared, mine))
    }

    /// Watches one tenant's part of its PBX, whoever looks: its devices, the trunks it may use
    /// and its calls (what the tenant's users list shows beside each device).
    pub async fn tenant_watch(
        &self,
        actor: &Actor,
        tenant: &str,
    ) -> Result<tokio::sync::watch::Receiver<Live>> {
        let t = self.tenant_key(actor, tenant).await?;
        let row = crate::store::tenants::by_id(self.store.pool(), t.id)
            .await?
            .ok_or_else(|| Error::not_found("tenant", tenant))?;
        let pbx = self.pbx_by_name(&row.pbx).await?;
        let scope = Scope::read(self, pbx.id, vec![t.id]).await?;
        let shared = self.shared_watcher(pbx).await?;
        Ok(view(shared, Some(scope)))
    }

    /// The running watcher of a PBX's profile as it is now, or a new one. A profile changed
    /// since (a new AMI secret, a trusted host key) gets a watcher of its own; the old one
    /// ends with its views.
    async fn shared_watcher(&self, pbx: Pbx) -> Result<Arc<Shared>> {
        let key = (pbx.id, pbx.version);
        if let Some(running) = self.watchers.running(key) {
            return Ok(running);
        }
        let pbx_id = pbx.id;
        let reach = self.ami_reach(pbx).await?;
        let hooks = FeatureHooks {
            ws: self.clone(),
            pbx_id,
            pins_tried: std::sync::atomic::AtomicBool::new(false),
        };
        let connect = move || {
            let reach = reach.clone();
            async move { reach.connect(true).await }
        };
        // Two views starting at once may both get here: the later one's watcher wins the slot
        // and the earlier one's stops with its view.
        let shared = Arc::new(Shared(watch::spawn_with(connect, BACKOFF, hooks)));
        self.watchers.keep(key, &shared);
        Ok(shared)
    }
}

/// One watcher's state, held by its views only: when the last view goes, the receiver is
/// dropped and the watcher stops.
pub(crate) struct Shared(tokio::sync::watch::Receiver<Live>);

/// The watchers of this process, by PBX id and profile version, held weakly.
#[derive(Default)]
pub(crate) struct Watchers(std::sync::Mutex<HashMap<(i64, i64), Weak<Shared>>>);

impl std::fmt::Debug for Watchers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let keys: Vec<(i64, i64)> = self.lock().keys().copied().collect();
        f.debug_struct("Watchers")
            .field("pbx_versions", &keys)
            .finish()
    }
}

impl Watchers {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(i64, i64), Weak<Shared>>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn running(&self, key: (i64, i64)) -> Option<Arc<Shared>> {
        self.lock().get(&key).and_then(Weak::upgrade)
    }

    fn keep(&self, key: (i64, i64), shared: &Arc<Shared>) {
        let mut map = self.lock();
        map.retain(|_, w| w.strong_count() > 0);
        map.insert(key, Arc::downgrade(shared));
    }
}

/// The part of a PBX a tenant's view holds: its tenants' devices and the trunks they may use,
/// read again at every full read of the watcher, so a device added or removed since the view
/// opened is in or out of it once it is on the PBX (an apply's reload brings a full read).
struct Scope {
    ws: Workspace,
    pbx_id: i64,
    tenant_ids: Vec<i64>,
    endpoints: std::collections::BTreeSet<String>,
}

impl Scope {
    async fn read(ws: &Workspace, pbx_id: i64, tenant_ids: Vec<i64>) -> Result<Scope> {
        let endpoints =
            crate::store::devices::endpoints_of_tenants(ws.store.pool(), pbx_id, &tenant_ids)
                .await?;
        Ok(Scope {
            ws: ws.clone(),
            pbx_id,
            tenant_ids,
            endpoints,
        })
    }

    /// Reads the endpoints again; on a failure the ones known stay (logged).
    async fn refresh(&mut self) {
        match crate::store::devices::endpoints_of_tenants(
            self.ws.store.pool(),
            self.pbx_id,
            &self.tenant_ids,
        )
        .await
        {
            Ok(e) => self.endpoints = e,
            Err(e) => tracing::warn!(error = %e, "a tenant's devices could not be read again"),
        }
    }
}

/// A view of a shared watcher, all of it or only a scope's; it keeps the watcher running
/// while it (or a clone of it) lives.
fn view(shared: Arc<Shared>, mut scope: Option<Scope>) -> tokio::sync::watch::Receiver<Live> {
    fn only(l: &Live, scope: Option<&Scope>) -> Live {
        match scope {
            Some(s) => Live {
                state: l.state.only(&s.endpoints),
                ..l.clone()
            },
            None => l.clone(),
        }
    }
    let mut all = shared.0.clone();
    let mut rereads = all.borrow().rereads;
    let (tx, rx) = tokio::sync::watch::channel(only(&all.borrow_and_update(), scope.as_ref()));
    tokio::spawn(async move {
        let _keep = shared;
        loop {
            tokio::select! {
                changed = all.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    let now = all.borrow_and_update().rereads;
                    if now != rereads {
                        rereads = now;
                        if let Some(s) = scope.as_mut() {
                            s.refresh().await;
                        }
                    }
                    let v = only(&all.borrow(), scope.as_ref());
                    tx.send_if_modified(|old| {
                        let differs = *old != v;
                        *old = v;
                        differs
                    });
                }
                () = tx.closed() => return,
            }
        }
    });
    rx
}

/// The watcher's connection carries the users' features: everything is brought level after
/// each full read, a feature code's event reads its user back, and a change made here while
/// it is up goes out over it.
struct FeatureHooks {
    ws: Workspace,
    pbx_id: i64,
    /// The pending voicemail PINs were pushed on this connection (once: the push reloads,
    /// and each reload brings another full read).
    pins_tried: std::sync::atomic::AtomicBool,
}

impl Hooks for FeatureHooks {
    async fn after_reread(&self, c: &Client) {
        self.ws.live_clients().insert(self.pbx_id, c.clone());
        if let Err(e) = self.ws.features_sync(self.pbx_id, c).await {
            tracing::warn!(error = %e, "the users' DND and forwards could not be brought level with the PBX");
        }
        if !self
            .pins_tried
            .swap(true, std::sync::atomic::Ordering::SeqCst)
        {
            // An apply takes seconds: the events go on meanwhile.
            let (ws, pbx_id) = (self.ws.clone(), self.pbx_id);
            tokio::spawn(async move {
                match ws.pins_push(&Actor::pending_push(), pbx_id, None).await {
                    Ok(p) => {
                        if let Some(why) = p.pending {
                            tracing::info!(reason = %why, "pending voicemail PINs still wait");
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "the pending voicemail PINs could not be pushed")
                    }
                }
            });
        }
    }

    async fn features_changed(&self, c: &Client, users: &[(String, u32)]) {
        if let Err(e) = self.ws.features_read_back(self.pbx_id, c, users).await {
            tracing::warn!(error = %e, "a change made on a phone could not be read back");
        }
    }

    fn ended(&self) {
        self.ws.live_clients().remove(&self.pbx_id);
        self.pins_tried
            .store(false, std::sync::atomic::Ordering::SeqCst);
    }
}
