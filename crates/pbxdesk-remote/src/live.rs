//! What a PBX is doing, kept from AMI: each endpoint's contacts and device state, each outbound
//! registration, each channel of a call. Pure: the watcher feeds it the full state read after
//! (re)connecting (`load_*`) and then every event (`apply`), with the time each arrived, and
//! asks it what changed. The shapes follow the Asterisk 22.10.1 captures (s9–s19):
//!
//! - A new contact arrives as `ContactStatus: NonQualified`, its first answered qualify as
//!   `Reachable` with `RoundtripUsec`; an unregister and an expiry both as `Removed`; a phone
//!   gone silent as `Unreachable` after the qualify timeout. A refresh sends no ContactStatus,
//!   and a `ContactStatus` event carries neither the user agent nor the source address (only
//!   `PJSIPShowContacts` does): a new contact asks the watcher for its details.
//! - `DeviceStateChange` spells states `NOT_INUSE`, `PJSIPShowEndpoints` spells them `Not in
//!   use`: both map to one [`DeviceState`].
//! - `Registry` names no registration, only its client and server URIs: they are matched with
//!   what `PJSIPShowRegistrationsOutbound` listed. Its `AuthDetail` events carry the trunk's
//!   password in clear: they are never read here.
//! - AstDB changes send no event at all (s15).

use crate::ami::Message;
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum DeviceState {
    NotInUse,
    InUse,
    Busy,
    Ringing,
    RingInUse,
    OnHold,
    Unavailable,
    Invalid,
    Unknown,
}

impl DeviceState {
    /// Either spelling: the event's (`NOT_INUSE`) or the list's (`Not in use`).
    pub fn parse(s: &str) -> DeviceState {
        let k: String = s
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .map(|c| c.to_ascii_lowercase())
            .collect();
        match k.as_str() {
            "notinuse" => DeviceState::NotInUse,
            "inuse" => DeviceState::InUse,
            "busy" => DeviceState::Busy,
            "ringing" => DeviceState::Ringing,
            "ringinuse" => DeviceState::RingInUse,
            "onhold" => DeviceState::OnHold,
            "unavailable" => DeviceState::Unavailable,
            "invalid" => DeviceState::Invalid,
            _ => DeviceState::Unknown,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ContactState {
    /// Registered, not (yet) qualified.
    NonQualified,
    Reachable,
    Unreachable,
    Unknown,
}

impl ContactState {
    fn parse(s: &str) -> ContactState {
        match s {
            "NonQualified" => ContactState::NonQualified,
            "Reachable" => ContactState::Reachable,
            "Unreachable" => ContactState::Unreachable,
            _ => ContactState::Unknown,
        }
    }
}

/// One registered contact of an endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Contact {
    pub uri: String,
    pub state: ContactState,
    /// From the last answered qualify.
    #[cfg_attr(feature = "specta", specta(type = Option<f64>))]
    pub rtt_us: Option<u64>,
    pub user_agent: Option<String>,
    /// Where its packets come from (`ViaAddr:ViaPort`).
    pub source: Option<String>,
    /// Unix seconds.
    #[cfg_attr(feature = "specta", specta(type = Option<f64>))]
    pub expires_at: Option<i64>,
    /// Unix ms when this state was seen.
    #[cfg_attr(feature = "specta", specta(type = f64))]
    pub since: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Endpoint {
    pub device_state: Option<DeviceState>,
    pub contacts: Vec<Contact>,
}

impl Endpoint {
    /// Registered with at least one contact that is not known unreachable.
    pub fn registered(&self) -> bool {
        self.contacts
            .iter()
            .any(|c| c.state != ContactState::Unreachable)
    }
}

/// An outbound registration (a trunk registering with its carrier).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Registration {
    pub name: String,
    pub server_uri: String,
    pub client_uri: String,
    /// `Registered`, `Unregistered`, `Rejected`, … as Asterisk says it.
    pub status: String,
    #[cfg_attr(feature = "specta", specta(type = f64))]
    pub since: i64,
}

/// One channel of a call. Named `CallChannel` in the app's bindings, beside Tauri's `Channel`
/// (the name never appears in JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename = "CallChannel")]
pub struct Channel {
    pub channel: String,
    /// The PJSIP endpoint the channel belongs to (a phone or a trunk), if any.
    pub endpoint: Option<String>,
    pub caller: String,
    pub connected: String,
    pub exten: String,
    pub state: String,
    /// Channels of one call share it.
    pub linkedid: String,
    pub bridge: Option<String>,
    #[cfg_attr(feature = "specta", specta(type = f64))]
    pub since: i64,
}

/// What an event changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Endpoint(String),
    /// A contact the events do not describe fully: read its details (`PJSIPShowContacts`).
    NewContact(String),
    Registration(String),
    Call(String),
    /// A reload: read the full state again.
    Reread,
}

/// How the PBX itself is: polled, since Asterisk sends no event for any of it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Health {
    /// `AsteriskVersion` of CoreSettings.
    pub version: Option<String>,
    /// `CoreStartupDate CoreStartupTime` / `CoreReloadDate CoreReloadTime` of CoreStatus, in
    /// the PBX's local time as Asterisk prints it.
    pub started: Option<String>,
    pub last_reload: Option<String>,
    #[cfg_attr(feature = "specta", specta(type = Option<f64>))]
    pub uptime_s: Option<u64>,
    /// `CoreCurrentCalls` counts channels, not calls (s13: 2 for one call).
    #[cfg_attr(feature = "specta", specta(type = Option<f64>))]
    pub channels: Option<u64>,
    /// Asterisk's own connection to the realtime database (`odbc show`).
    pub realtime_db: Option<OdbcStatus>,
    /// Unix ms of the poll.
    #[cfg_attr(feature = "specta", specta(type = f64))]
    pub checked_at: i64,
}

/// One DSN of `odbc show`. The count can be stale: right after the database went away it still
/// said 1 active connection (s18_health_06); only a failed query drops it to 0 and adds
/// `Last fail connection attempt` (s18_11), which stays after the database is back (s18_12,
/// with connections again).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OdbcStatus {
    pub name: String,
    pub dsn: String,
    pub active: u32,
    pub max: u32,
    pub last_fail: Option<String>,
}

impl OdbcStatus {
    /// Whether Asterisk holds a connection to its database.
    pub fn connected(&self) -> bool {
        self.active > 0
    }
}

impl Health {
    /// Fills what CoreStatus and CoreSettings answer (s11_core_idle_02/03).
    pub fn read_core(&mut self, status: Option<&Message>, settings: Option<&Message>) {
        let at = |m: &Message, d: &str, t: &str| match (m.get(d), m.get(t)) {
            (Some(d), Some(t)) if !d.is_empty() => Some(format!("{d} {t}")),
            _ => None,
        };
        if let Some(m) = status {
            self.started = at(m, "CoreStartupDate", "CoreStartupTime");
            self.last_reload = at(m, "CoreReloadDate", "CoreReloadTime");
            self.channels = number(m.get("CoreCurrentCalls"));
        }
        if let Some(m) = settings {
            self.version = m.get("AsteriskVersion").map(str::to_owned);
        }
    }
}

/// `core show uptime seconds`: `System uptime: 74` (s18_health_02).
pub fn parse_uptime(lines: &[String]) -> Option<u64> {
    lines
        .iter()
        .find_map(|l| l.trim().strip_prefix("System uptime:"))
        .and_then(|v| v.trim().parse().ok())
}

/// `odbc show`: the first DSN's settings (s18_health_04, _11).
pub fn parse_odbc_show(lines: &[String]) -> Option<OdbcStatus> {
    let mut out: Option<OdbcStatus> = None;
    for l in lines.iter().map(|l| l.trim()) {
        if let Some(name) = l.strip_prefix("Name:") {
            if out.is_some() {
                break; // the next DSN
            }
            out = Some(OdbcStatus {
                name: name.trim().to_owned(),
                ..OdbcStatus::default()
            });
            continue;
        }
        let Some(o) = out.as_mut() else { continue };
        if let Some(d) = l.strip_prefix("DSN:") {
            o.dsn = d.trim().to_owned();
        } else if let Some(rest) = l.strip_prefix("Number of active connections:") {
            // "1 (out of 5)"
            let mut it = rest
                .split(|c: char| !c.is_ascii_digit())
                .filter(|s| !s.is_empty());
            o.active = it.next().and_then(|v| v.parse().ok()).unwrap_or(0);
            o.max = it.next().and_then(|v| v.parse().ok()).unwrap_or(0);
        } else if let Some(t) = l.strip_prefix("Last fail connection attempt:") {
            o.last_fail = Some(t.trim().to_owned());
        }
    }
    out
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LiveState {
    pub endpoints: BTreeMap<String, Endpoint>,
    pub registrations: BTreeMap<String, Registration>,
    /// By Uniqueid.
    pub channels: BTreeMap<String, Channel>,
    pub health: Health,
}

/// `PJSIP/acme-1000` (a device) or `PJSIP/acme-1001-00000000` (a channel) → `acme-1000`.
fn endpoint_of(channel: &str, is_channel: bool) -> Option<String> {
    let rest = channel.strip_prefix("PJSIP/")?;
    let name = if is_channel {
        rest.rsplit_once('-').map_or(rest, |(n, _)| n)
    } else {
        rest
    };
    (!name.is_empty()).then(|| name.to_owned())
}

fn number(v: Option<&str>) -> Option<u64> {
    v.and_then(|s| s.trim().parse().ok())
}

impl LiveState {
    /// Only what `endpoints` (devices and trunk endpoints, which also name their outbound
    /// registrations) may see: their endpoints and registrations, their calls' channels (with
    /// the other legs of those calls, a trunk's among them), and of the health what is not
    /// another's (the channel count becomes theirs; Asterisk's database connection is left out).
    pub fn only(&self, endpoints: &std::collections::BTreeSet<String>) -> LiveState {
        let calls: std::collections::BTreeSet<&str> = self
            .channels
            .values()
            .filter(|c| c.endpoint.as_ref().is_some_and(|e| endpoints.contains(e)))
            .map(|c| c.linkedid.as_str())
            .collect();
        let channels: BTreeMap<String, Channel> = self
            .channels
            .iter()
            .filter(|(_, c)| calls.contains(c.linkedid.as_str()))
            .map(|(k, c)| (k.clone(), c.clone()))
            .collect();
        LiveState {
            endpoints: self
                .endpoints
                .iter()
                .filter(|(k, _)| endpoints.contains(*k))
                .map(|(k, e)| (k.clone(), e.clone()))
                .collect(),
            registrations: self
                .registrations
                .iter()
                .filter(|(k, _)| endpoints.contains(*k))
                .map(|(k, r)| (k.clone(), r.clone()))
                .collect(),
            health: Health {
                channels: Some(channels.len() as u64),
                realtime_db: None,
                ..self.health.clone()
            },
            channels,
        }
    }

    /// The contacts as `PJSIPShowContacts` lists them (`ContactList` events): they replace
    /// every endpoint's contacts.
    pub fn load_contacts(&mut self, list: &[Message], now: i64) {
        for e in self.endpoints.values_mut() {
            e.contacts.clear();
        }
        for m in list
            .iter()
            .filter(|m| m.get("Event") == Some("ContactList"))
        {
            let (Some(endpoint), Some(uri)) = (m.get("Endpoint"), m.get("Uri")) else {
                continue;
            };
            let source = match (m.get("ViaAddr"), m.get("ViaPort")) {
                (Some(a), Some(p)) if !a.is_empty() => Some(format!("{a}:{p}")),
                _ => None,
            };
            let contact = Contact {
                uri: uri.to_owned(),
                state: ContactState::parse(m.get("Status").unwrap_or("")),
                rtt_us: number(m.get("RoundtripUsec")),
                user_agent: m
                    .get("UserAgent")
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned),
                source,
                expires_at: number(m.get("ExpirationTime")).and_then(|v| i64::try_from(v).ok()),
                since: now,
            };
            self.endpoints
                .entry(endpoint.to_owned())
                .or_default()
                .contacts
                .push(contact);
        }
    }

    /// Device states as `PJSIPShowEndpoints` lists them (`EndpointList` events).
    pub fn load_endpoints(&mut self, list: &[Message]) {
        for m in list
            .iter()
            .filter(|m| m.get("Event") == Some("EndpointList"))
        {
            if let Some(name) = m.get("ObjectName") {
                self.endpoints
                    .entry(name.to_owned())
                    .or_default()
                    .device_state = m.get("DeviceState").map(DeviceState::parse);
            }
        }
    }

    /// The outbound registrations as `PJSIPShowRegistrationsOutbound` lists them. Only the
    /// `OutboundRegistrationDetail` events are read: the `AuthDetail` ones carry the password.
    pub fn load_registrations(&mut self, list: &[Message], now: i64) {
        self.registrations.clear();
        for m in list
            .iter()
            .filter(|m| m.get("Event") == Some("OutboundRegistrationDetail"))
        {
            let Some(name) = m.get("ObjectName") else {
                continue;
            };
            self.registrations.insert(
                name.to_owned(),
                Registration {
                    name: name.to_owned(),
                    server_uri: m.get("ServerUri").unwrap_or("").to_owned(),
                    client_uri: m.get("ClientUri").unwrap_or("").to_owned(),
                    status: m.get("Status").unwrap_or("Unknown").to_owned(),
                    since: now,
                },
            );
        }
    }

    /// The channels as `CoreShowChannels` lists them (`CoreShowChannel` events).
    pub fn load_channels(&mut self, list: &[Message], now: i64) {
        self.channels.clear();
        for m in list
            .iter()
            .filter(|m| m.get("Event") == Some("CoreShowChannel"))
        {
            if let Some(c) = channel_from(m, now) {
                self.channels.insert(
                    m.get("Uniqueid").unwrap_or(&c.channel).to_owned(),
                    Channel {
                        bridge: m
                            .get("BridgeId")
                            .filter(|b| !b.is_empty())
                            .map(str::to_owned),
                        ..c
                    },
                );
            }
        }
    }

    /// The channels of one call (sharing a Linkedid), oldest first.
    pub fn call(&self, linkedid: &str) -> Vec<&Channel> {
        let mut v: Vec<&Channel> = self
            .channels
            .values()
            .filter(|c| c.linkedid == linkedid)
            .collect();
        v.sort_by(|a, b| (a.since, &a.channel).cmp(&(b.since, &b.channel)));
        v
    }

    /// Applies one AMI event that arrived at `now` (Unix ms); what it changed, if anything.
    pub fn apply(&mut self, m: &Message, now: i64) -> Option<Change> {
        match m.get("Event")? {
            "ContactStatus" => self.contact_status(m, now),
            "DeviceStateChange" => {
                let name = endpoint_of(m.get("Device")?, false)?;
                let state = DeviceState::parse(m.get("State")?);
                let e = self.endpoints.entry(name.clone()).or_default();
                (e.device_state != Some(state)).then(|| {
                    e.device_state = Some(state);
                    Change::Endpoint(name)
                })
            }
            "Registry" => {
                let (client, server) = (m.get("Username")?, m.get("Domain")?);
                let status = m.get("Status")?;
                let r = self
                    .registrations
                    .values_mut()
                    .find(|r| r.client_uri == client && r.server_uri == server)?;
                r.status = status.to_owned();
                r.since = now;
                Some(Change::Registration(r.name.clone()))
            }
            "Newchannel" => {
                let id = m.get("Uniqueid")?.to_owned();
                let c = channel_from(m, now)?;
                let linkedid = c.linkedid.clone();
                self.channels.insert(id, c);
                Some(Change::Call(linkedid))
            }
            "Newstate" | "NewConnectedLine" | "Newexten" => {
                let c = self.channels.get_mut(m.get("Uniqueid")?)?;
                if let Some(s) = m.get("ChannelStateDesc") {
                    c.state = s.to_owned();
                }
                if let Some(n) = m.get("ConnectedLineNum") {
                    c.connected = n.to_owned();
                }
                if let Some(x) = m.get("Exten") {
                    c.exten = x.to_owned();
                }
                Some(Change::Call(c.linkedid.clone()))
            }
            "BridgeEnter" | "BridgeLeave" => {
                let c = self.channels.get_mut(m.get("Uniqueid")?)?;
                c.bridge = (m.get("Event") == Some("BridgeEnter"))
                    .then(|| m.get("BridgeUniqueid").unwrap_or("").to_owned());
                Some(Change::Call(c.linkedid.clone()))
            }
            "Hangup" => {
                let c = self.channels.remove(m.get("Uniqueid")?)?;
                Some(Change::Call(c.linkedid))
            }
            // A reload may add or drop endpoints and registrations. (FullyBooted is sent to every
            // new events-on session, right after the read that follows login: nothing new.)
            "Reload" => Some(Change::Reread),
            _ => None,
        }
    }

    fn contact_status(&mut self, m: &Message, now: i64) -> Option<Change> {
        let name = m.get("EndpointName").or(m.get("AOR"))?.to_owned();
        let uri = m.get("URI")?;
        let status = m.get("ContactStatus")?;
        let e = self.endpoints.entry(name.clone()).or_default();
        let at = e.contacts.iter().position(|c| c.uri == uri);
        match (status, at) {
            ("Removed", Some(i)) => {
                e.contacts.remove(i);
                Some(Change::Endpoint(name))
            }
            ("Removed", None) => None,
            (_, Some(i)) => {
                let c = &mut e.contacts[i];
                c.state = ContactState::parse(status);
                c.since = now;
                if c.state == ContactState::Reachable {
                    c.rtt_us = number(m.get("RoundtripUsec"));
                }
                Some(Change::Endpoint(name))
            }
            (_, None) => {
                let state = ContactState::parse(status);
                e.contacts.push(Contact {
                    uri: uri.to_owned(),
                    state,
                    rtt_us: (state == ContactState::Reachable)
                        .then(|| number(m.get("RoundtripUsec")))
                        .flatten(),
                    user_agent: None,
                    source: None,
                    expires_at: None,
                    since: now,
                });
                Some(Change::NewContact(name))
            }
        }
    }
}

fn channel_from(m: &Message, now: i64) -> Option<Channel> {
    let channel = m.get("Channel")?.to_owned();
    Some(Channel {
        endpoint: endpoint_of(&channel, true),
        caller: m.get("CallerIDNum").unwrap_or("").to_owned(),
        connected: m.get("ConnectedLineNum").unwrap_or("").to_owned(),
        exten: m.get("Exten").unwrap_or("").to_owned(),
        state: m.get("ChannelStateDesc").unwrap_or("").to_owned(),
        linkedid: m.get("Linkedid").unwrap_or("").to_owned(),
        bridge: None,
        since: now,
        channel,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_spellings_of_a_device_state_are_one() {
        assert_eq!(DeviceState::parse("NOT_INUSE"), DeviceState::NotInUse);
        assert_eq!(DeviceState::parse("Not in use"), DeviceState::NotInUse);
        assert_eq!(DeviceState::parse("INUSE"), DeviceState::InUse);
        assert_eq!(DeviceState::parse("In use"), DeviceState::InUse);
        assert_eq!(DeviceState::parse("UNAVAILABLE"), DeviceState::Unavailable);
        assert_eq!(DeviceState::parse("what"), DeviceState::Unknown);
    }

    #[test]
    fn endpoint_names_from_devices_and_channels() {
        assert_eq!(
            endpoint_of("PJSIP/acme-1000", false).as_deref(),
            Some("acme-1000")
        );
        assert_eq!(
            endpoint_of("PJSIP/acme-1001-00000000", true).as_deref(),
            Some("acme-1001")
        );
        assert_eq!(endpoint_of("Local/dnd-on@acme-test-00000000;1", true), None);
        assert_eq!(endpoint_of("PJSIP/", false), None);
    }
}
