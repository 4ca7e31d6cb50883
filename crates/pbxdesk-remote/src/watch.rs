//! Watching one PBX: one AMI connection with events on, the full state read after every
//! (re)connect (events may have been lost while away), then kept by the events, published to
//! whoever looks (the app, `--watch`) through a `tokio::sync::watch` channel.
//!
//! Event-driven where Asterisk sends events (contacts, device states, registrations, channels);
//! a new contact's details (user agent, source) and a reload re-read their list. Falling
//! behind (the event channel lagged in a storm) re-reads everything instead of guessing.

use crate::ami::{Action, AmiError, Client, Message};
use crate::astdb;
use crate::live::{parse_odbc_show, parse_uptime, Change, Health, LiveState};
use std::future::Future;
use std::time::Duration;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::sync::watch;

/// What the watcher publishes.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Live {
    pub state: LiveState,
    /// Whether the AMI connection is up (while it is not, `state` is the last known).
    pub connected: bool,
    /// Why the last connection attempt failed or the connection ended.
    pub last_error: Option<String>,
    /// Full reads of the state so far (the first, then one per reconnect, reload or lag).
    #[cfg_attr(feature = "specta", specta(type = f64))]
    pub rereads: u64,
    /// Events applied so far.
    #[cfg_attr(feature = "specta", specta(type = f64))]
    pub events: u64,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

async fn list(c: &Client, action: &str) -> Result<Vec<Message>, AmiError> {
    let reply = c.send(&Action::new(action)?).await?;
    Ok(reply.events)
}

/// The longest wait between two connection attempts: a PBX that comes back is seen within it,
/// so its state is complete again within 5 s (an attempt through the tunnel is one SSH
/// handshake, cheap at this rate).
pub const MAX_BACKOFF: Duration = Duration::from_secs(4);

/// How often the PBX's health is polled: Asterisk sends no event for its uptime, reloads
/// (beyond the `Reload` event), channel count or database connection.
pub const HEALTH_EVERY: Duration = Duration::from_secs(30);

/// The PBX's health. Each part is optional: an AMI user without the `command` class still
/// gets CoreStatus and CoreSettings, and a failed part never ends the connection.
async fn read_health(c: &Client) -> Health {
    let mut h = Health::default();
    let status = c.core_status().await.ok();
    let settings = c.core_settings().await.ok();
    h.read_core(status.as_ref(), settings.as_ref());
    if let Ok(o) = c.command("core show uptime seconds").await {
        h.uptime_s = o.ok.then(|| parse_uptime(&o.lines)).flatten();
    }
    if let Ok(o) = c.command("odbc show").await {
        h.realtime_db = o.ok.then(|| parse_odbc_show(&o.lines)).flatten();
    }
    h.checked_at = now_ms();
    h
}

/// Reads the whole state: endpoints, contacts, outbound registrations, channels, health.
async fn reread(c: &Client, out: &watch::Sender<Live>) -> Result<(), AmiError> {
    let endpoints = list(c, "PJSIPShowEndpoints").await?;
    let contacts = list(c, "PJSIPShowContacts").await?;
    let registrations = list(c, "PJSIPShowRegistrationsOutbound").await?;
    let channels = list(c, "CoreShowChannels").await?;
    let health = read_health(c).await;
    let now = now_ms();
    out.send_modify(|l| {
        let mut s = LiveState::default();
        s.load_endpoints(&endpoints);
        s.load_contacts(&contacts, now);
        s.load_registrations(&registrations, now);
        s.load_channels(&channels, now);
        s.health = health;
        l.state = s;
        l.connected = true;
        l.last_error = None;
        l.rereads += 1;
    });
    Ok(())
}

/// What the owner of a watcher does where only it knows how: AstDB sends no event (s15), so
/// the owner reads the users' features after every full read and when pbxdesk's feature codes
/// say a phone changed them.
pub trait Hooks: Send + Sync + 'static {
    /// After every full read (a connect, a reload, a lag): AstDB may have changed unseen.
    fn after_reread(&self, c: &Client) -> impl Future<Output = ()> + Send;
    /// A phone changed these users' features (tenant slug, extension), each named once.
    fn features_changed(
        &self,
        c: &Client,
        users: &[(String, u32)],
    ) -> impl Future<Output = ()> + Send;
    /// The connection ended (lost, or the watch stopped): a client kept from it is dead.
    fn ended(&self);
}

/// No hooks.
impl Hooks for () {
    async fn after_reread(&self, _: &Client) {}
    async fn features_changed(&self, _: &Client, _: &[(String, u32)]) {}
    fn ended(&self) {}
}

/// The most events applied in one batch (one notification to the watchers).
const BATCH: usize = 512;

/// One connection's life: read everything, then follow the events until it ends. Events that
/// are already waiting are applied as one batch, and the lists a batch calls for are read once
/// after it: a storm of new contacts costs one `PJSIPShowContacts`, not one each.
async fn follow(c: &Client, out: &watch::Sender<Live>, hooks: &impl Hooks) -> AmiError {
    let mut events = c.events();
    if let Err(e) = reread(c, out).await {
        return e;
    }
    hooks.after_reread(c).await;
    let mut features: Vec<(String, u32)> = Vec::new();
    let mut batch = Vec::with_capacity(BATCH);
    let mut health = tokio::time::interval(HEALTH_EVERY);
    health.reset(); // just read with the rest
    loop {
        let first = tokio::select! {
            m = events.recv() => m,
            () = c.closed() => return AmiError::ConnectionLost,
            _ = health.tick() => {
                let h = read_health(c).await;
                out.send_modify(|l| l.state.health = h);
                continue;
            }
        };
        let mut lagged = false;
        match first {
            Ok(m) => batch.push(m),
            Err(RecvError::Lagged(_)) => lagged = true,
            Err(RecvError::Closed) => return AmiError::ConnectionLost,
        }
        while batch.len() < BATCH {
            match events.try_recv() {
                Ok(m) => batch.push(m),
                Err(TryRecvError::Lagged(_)) => lagged = true,
                Err(TryRecvError::Empty | TryRecvError::Closed) => break,
            }
        }
        let (mut contacts, mut all) = (false, lagged);
        out.send_if_modified(|l| {
            let now = now_ms();
            let mut changed = false;
            for m in batch.drain(..) {
                l.events += 1;
                if let Some(u) = astdb::feature_event(&m) {
                    if !features.contains(&u) {
                        features.push(u);
                    }
                    continue;
                }
                match l.state.apply(&m, now) {
                    Some(Change::NewContact(_)) => {
                        contacts = true;
                        changed = true;
                    }
                    Some(Change::Reread) => all = true,
                    Some(_) => changed = true,
                    None => {}
                }
            }
            changed
        });
        // Fell behind (the channel dropped events) or Asterisk reloaded: read it all again.
        if !features.is_empty() {
            hooks.features_changed(c, &features).await;
            features.clear();
        }
        let again = if all {
            let r = reread(c, out).await;
            if r.is_ok() {
                hooks.after_reread(c).await;
            }
            r
        } else if contacts {
            list(c, "PJSIPShowContacts").await.map(|contacts| {
                let now = now_ms();
                out.send_modify(|l| l.state.load_contacts(&contacts, now));
            })
        } else {
            Ok(())
        };
        if let Err(e) = again {
            return e;
        }
    }
}

/// Watches a PBX until the returned receiver and every clone of it are dropped. `connect`
/// makes one logged-in connection with events on, with whatever must live as long as it (the
/// SSH tunnel it goes through, say; `()` when direct); a failed or lost connection is tried
/// again after `backoff`, doubling up to [`MAX_BACKOFF`], and the state is read in full once it
/// is back.
pub fn spawn<F, Fut, G>(connect: F, backoff: Duration) -> watch::Receiver<Live>
where
    F: Fn() -> Fut + Send + 'static,
    Fut: Future<Output = Result<(Client, G), AmiError>> + Send,
    G: Send + 'static,
{
    spawn_with(connect, backoff, ())
}

/// [`spawn`] with the owner's [`Hooks`].
pub fn spawn_with<F, Fut, G, H>(connect: F, backoff: Duration, hooks: H) -> watch::Receiver<Live>
where
    F: Fn() -> Fut + Send + 'static,
    Fut: Future<Output = Result<(Client, G), AmiError>> + Send,
    G: Send + 'static,
    H: Hooks,
{
    let (tx, rx) = watch::channel(Live::default());
    tokio::spawn(async move {
        let mut wait = backoff;
        loop {
            let ended = tokio::select! {
                c = connect() => match c {
                    Ok((c, _guard)) => {
                        wait = backoff;
                        let e = tokio::select! {
                            e = follow(&c, &tx, &hooks) => e,
                            () = tx.closed() => {
                                hooks.ended();
                                return;
                            }
                        };
                        hooks.ended();
                        e.to_string()
                    }
                    Err(e) => e.to_string(),
                },
                () = tx.closed() => return,
            };
            tracing::info!(error = %ended, "watching the PBX: connection ended; trying again");
            tx.send_modify(|l| {
                l.connected = false;
                l.last_error = Some(ended);
            });
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = tx.closed() => return,
            }
            wait = (wait * 2).min(MAX_BACKOFF);
        }
    });
    rx
}
