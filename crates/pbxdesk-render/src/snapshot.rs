//! What the renderer reads: one PBX's part of the workspace, already loaded and decrypted.
//! The workspace validated every value on its way in; the renderer still refuses (as a
//! finding) anything it cannot write safely, so a snapshot from any source is safe to render.

use serde::{Deserialize, Serialize};

/// One PBX's workspace, as the renderer sees it. Order of the vectors does not matter: the
/// renderer sorts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    pub pbx: String,
    pub tenants: Vec<Tenant>,
    pub trunks: Vec<Trunk>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tenant {
    /// Names the tenant's contexts: a-z, 0-9, '-' (see the core's `Slug`).
    pub slug: String,
    pub name: String,
    /// ISO 3166 alpha-2; decides the emergency numbers.
    pub country: String,
    pub active: bool,
    /// Where a call to an unassigned number of this tenant goes.
    pub unknown_did: Destination,
    /// E.164 caller ID for outbound calls of users without their own.
    pub caller_id: Option<String>,
    /// Name of the policy users without their own follow.
    pub default_policy: Option<String>,
    pub users: Vec<User>,
    pub dids: Vec<Did>,
    pub policies: Vec<Policy>,
    /// By extension.
    #[serde(default)]
    pub ring_groups: Vec<RingGroup>,
}

/// How a ring group rings its members.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Ring {
    /// Every member's devices at once.
    All,
    /// One member after another, in the order given.
    InOrder,
    /// One member after another, each call starting one further (the start is kept in AstDB).
    RoundRobin,
}

/// A ring group: an extension of the tenant that rings some of its users.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RingGroup {
    pub extension: u32,
    pub name: String,
    pub ring: Ring,
    /// Extensions of the tenant's users, in ringing order.
    pub members: Vec<u32>,
    pub member_seconds: u32,
    pub total_seconds: u32,
    pub no_answer: Destination,
}

impl Tenant {
    /// Whether the tenant is in the order the renderer writes it: users by extension, each
    /// user's devices by name, DIDs by number, policies by name (rules keep their order: it is
    /// their meaning).
    pub fn is_in_render_order(&self) -> bool {
        self.users.is_sorted_by_key(|u| u.extension)
            && self
                .users
                .iter()
                .all(|u| u.devices.is_sorted_by(|a, b| a.username <= b.username))
            && self.dids.is_sorted_by(|a, b| a.number <= b.number)
            && self.policies.is_sorted_by(|a, b| a.name <= b.name)
            && self.ring_groups.is_sorted_by_key(|g| g.extension)
    }

    /// Puts the tenant in that order (a loader that does so spares the renderer a copy).
    pub fn put_in_render_order(&mut self) {
        self.users.sort_by_key(|u| u.extension);
        for u in &mut self.users {
            u.devices.sort_by(|a, b| a.username.cmp(&b.username));
        }
        self.dids.sort_by(|a, b| a.number.cmp(&b.number));
        self.policies.sort_by(|a, b| a.name.cmp(&b.name));
        self.ring_groups.sort_by_key(|g| g.extension);
    }
}

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub extension: u32,
    pub name: String,
    pub email: String,
    pub active: bool,
    pub ring_seconds: u32,
    pub voicemail: bool,
    pub voicemail_pin: Option<String>,
    pub caller_id: Option<String>,
    pub policy: Option<String>,
    pub devices: Vec<Device>,
}

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Device {
    /// The PJSIP endpoint id and auth username (unique on the PBX).
    pub username: String,
    pub password: String,
    pub transport: String,
    /// In preference order, comma-separated as PJSIP's `allow` takes them, e.g.
    /// "opus,g722,ulaw" (one string, not one per codec: 100,000 devices' worth of small
    /// allocations at the seed's maximum).
    pub codecs: String,
    pub nat: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "value")]
pub enum Destination {
    User(u32),
    Voicemail(u32),
    /// An E.164 number, dialled through the tenant's default policy.
    External(String),
    /// "Not in service".
    Hangup,
    /// The tenant's ring group with this extension.
    RingGroup(u32),
}

impl std::fmt::Display for Destination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Destination::User(e) => write!(f, "user:{e}"),
            Destination::Voicemail(e) => write!(f, "voicemail:{e}"),
            Destination::External(n) => write!(f, "external:{n}"),
            Destination::Hangup => f.write_str("hangup"),
            Destination::RingGroup(e) => write!(f, "ring_group:{e}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Did {
    /// E.164, e.g. "+41445551234".
    pub number: String,
    pub label: String,
    pub destination: Destination,
    /// The trunk (provider) that delivers it, when known.
    pub trunk: Option<String>,
}

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trunk {
    /// a-z, 0-9, '-'; names the trunk's endpoint `pbxdesk-trunk-NAME`.
    pub name: String,
    pub host: String,
    pub port: u16,
    pub transport: String,
    /// Registers with the provider (true) or is identified by its IP (false).
    pub register: bool,
    pub username: Option<String>,
    pub password: Option<String>,
    pub from_domain: Option<String>,
    pub from_user: Option<String>,
    pub codecs: Vec<String>,
    pub enabled: bool,
    /// Slugs of the tenants that may use it.
    pub tenants: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    pub name: String,
    pub rules: Vec<Rule>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    /// Asterisk pattern text; parsed by the renderer (an invalid one is a finding).
    pub pattern: String,
    pub allow: bool,
    /// Digits removed from the front of the dialled number.
    pub strip: u32,
    /// Prepended after stripping.
    pub prepend: String,
    /// Trunk names, tried in this order.
    pub trunks: Vec<String>,
}

crate::debug_redacted!(User { extension, name, email, active, ring_seconds, voicemail, caller_id, policy, devices } secret { voicemail_pin });
crate::debug_redacted!(Device { username, transport, codecs, nat } secret { password });
crate::debug_redacted!(Trunk { name, host, port, transport, register, username, from_domain, from_user, codecs, enabled, tenants } secret { password });

/// Emergency numbers per country (ISO 3166 alpha-2). Always routed, never deniable.
pub fn emergency_numbers(country: &str) -> &'static [&'static str] {
    match country {
        "CH" => &["112", "117", "118", "144", "143", "147"],
        "DE" => &["112", "110"],
        "AT" => &["112", "122", "133", "144"],
        "FR" => &["112", "15", "17", "18", "114", "115", "119"],
        "GB" => &["112", "999"],
        "NL" => &["112"],
        "US" | "CA" => &["911", "933"],
        _ => &["112"],
    }
}
