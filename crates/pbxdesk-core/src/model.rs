//! What the services take and give. Outputs never carry a secret (a password or PIN appears
//! only in `RevealedDevice`, returned by the audited `device_reveal`), so any of them can be
//! logged, audited or printed with `--json` as it is.
//!
//! Ids and counts are i64 here and `number` in TypeScript (`specta(type = i32)`): they stay far
//! below 2^31, and specta-typescript refuses i64 (and types f64 as `number | null`).

use crate::domain::{Codec, Role, SshAuth, TenantStatus, Transport, UserRole, UserStatus, Via};
use serde::{Deserialize, Serialize};

/// A PBX and how to reach it. Secrets are never here, only whether each is set.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Pbx {
    #[cfg_attr(feature = "specta", specta(type = i32))]
    pub id: i64,
    pub name: String,
    pub host: String,
    pub ssh_port: u16,
    pub ssh_user: String,
    pub ssh_auth: SshAuth,
    pub ssh_key_path: Option<String>,
    /// An SSH password or key passphrase is stored (sealed).
    pub ssh_secret_set: bool,
    /// The pinned host key fingerprint; none until the technician trusts the host.
    pub host_key: Option<String>,
    /// The Asterisk config folder (usually /etc/asterisk).
    pub config_dir: String,
    pub ami_via: Via,
    pub ami_port: u16,
    pub ami_user: Option<String>,
    pub ami_secret_set: bool,
    pub db_via: Via,
    pub db_port: u16,
    pub db_name: String,
    pub db_user: Option<String>,
    pub db_password_set: bool,
    pub connect_timeout_ms: u32,
    pub command_timeout_ms: u32,
    #[cfg_attr(feature = "specta", specta(type = i32))]
    pub version: i64,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NewPbx {
    pub name: String,
    /// The connection profile; `host` is required here.
    pub profile: PbxPatch,
}

impl NewPbx {
    /// A PBX at `host` with every other setting at its default.
    pub fn at(name: &str, host: &str) -> NewPbx {
        NewPbx {
            name: name.to_owned(),
            profile: PbxPatch {
                host: Some(host.to_owned()),
                ..PbxPatch::default()
            },
        }
    }
}

/// Connection profile fields; `None` leaves a field as it is. For the optional text fields and
/// the secrets, an empty string clears them. Secrets are write-only.
#[derive(Clone, Default, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PbxPatch {
    pub host: Option<String>,
    pub ssh_port: Option<u16>,
    pub ssh_user: Option<String>,
    pub ssh_auth: Option<SshAuth>,
    pub ssh_key_path: Option<String>,
    pub ssh_secret: Option<String>,
    pub config_dir: Option<String>,
    pub ami_via: Option<Via>,
    pub ami_port: Option<u16>,
    pub ami_user: Option<String>,
    pub ami_secret: Option<String>,
    pub db_via: Option<Via>,
    pub db_port: Option<u16>,
    pub db_name: Option<String>,
    pub db_user: Option<String>,
    pub db_password: Option<String>,
    pub connect_timeout_ms: Option<u32>,
    pub command_timeout_ms: Option<u32>,
    #[cfg_attr(feature = "specta", specta(type = Option<i32>))]
    pub expected_version: Option<i64>,
}

impl std::fmt::Debug for PbxPatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PbxPatch")
            .field("host", &self.host)
            .finish_non_exhaustive()
    }
}

/// One line of "check this PBX": what was checked, whether it is fine, and how to fix it.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CheckLine {
    pub item: String,
    pub ok: bool,
    pub detail: String,
    /// What to do about it, when not ok.
    pub fix: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Tenant {
    #[cfg_attr(feature = "specta", specta(type = i32))]
    pub id: i64,
    pub pbx: String,
    pub name: String,
    pub slug: String,
    /// "FIRST-LAST", both included.
    pub ext_range: String,
    pub status: TenantStatus,
    /// ISO 3166 alpha-2: how national numbers are read and which emergency numbers apply.
    pub country: String,
    /// Where a call to an unassigned number goes: a DID destination.
    pub unknown_did: String,
    /// E.164 caller ID for outbound calls of users without their own.
    pub caller_id: Option<String>,
    /// The outbound policy of users without their own.
    pub default_policy: Option<String>,
    #[cfg_attr(feature = "specta", specta(type = i32))]
    pub user_count: i64,
    #[cfg_attr(feature = "specta", specta(type = i32))]
    pub version: i64,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NewTenant {
    pub name: String,
    /// Derived from the name when absent.
    pub slug: Option<String>,
    pub pbx: String,
    pub ext_range: String,
    /// ISO 3166 alpha-2; "CH" when absent.
    pub country: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TenantPatch {
    pub name: Option<String>,
    pub ext_range: Option<String>,
    pub country: Option<String>,
    pub unknown_did: Option<String>,
    /// Empty clears.
    pub caller_id: Option<String>,
    /// Empty clears.
    pub default_policy: Option<String>,
    /// When given, the update is refused if the tenant changed since this version was read.
    #[cfg_attr(feature = "specta", specta(type = Option<i32>))]
    pub expected_version: Option<i64>,
}

/// One row of a tenant's user list.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UserSummary {
    #[cfg_attr(feature = "specta", specta(type = i32))]
    pub id: i64,
    pub extension: u32,
    pub display_name: String,
    pub email: String,
    pub role: UserRole,
    pub status: UserStatus,
    #[cfg_attr(feature = "specta", specta(type = i32))]
    pub device_count: i64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct User {
    #[cfg_attr(feature = "specta", specta(type = i32))]
    pub id: i64,
    pub tenant: String,
    pub extension: u32,
    pub display_name: String,
    pub email: String,
    pub role: UserRole,
    pub status: UserStatus,
    pub outbound_caller_id: Option<String>,
    pub voicemail_enabled: bool,
    /// Whether a PIN is stored; the PIN itself is never returned here.
    pub voicemail_pin_set: bool,
    pub dnd: bool,
    /// Forward every call (before ringing).
    pub forward_always: Option<String>,
    /// Forward when the user is busy (or on DND).
    pub forward_busy: Option<String>,
    /// Forward when nobody answers within the ring time.
    pub forward_no_answer: Option<String>,
    /// DND or a forward changed here is not yet known to be on the PBX (it could not be
    /// reached): it is pushed at the next connection or apply.
    pub features_pending: bool,
    /// The voicemail PIN changed here is not yet on the PBX (it could not be reached, or the
    /// mailbox is not there before an apply): it goes at the next connection or apply.
    pub voicemail_pin_pending: bool,
    /// How long all devices ring before voicemail or busy.
    pub ring_seconds: u32,
    /// The user's own outbound policy (class of service); the tenant's default when absent.
    pub policy: Option<String>,
    #[cfg_attr(feature = "specta", specta(type = i32))]
    pub version: i64,
    pub devices: Vec<Device>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NewUser {
    /// The tenant's slug.
    pub tenant: String,
    pub name: String,
    pub email: String,
    /// A specific free extension in the tenant's range; the lowest free one when absent.
    pub extension: Option<String>,
    pub role: Option<UserRole>,
    pub outbound_caller_id: Option<String>,
    /// Voicemail is on unless set to false.
    pub voicemail: Option<bool>,
}

/// A change to a user. `None` leaves a field as it is; for the optional text fields an empty
/// string clears them.
#[derive(Clone, Default, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UserPatch {
    pub name: Option<String>,
    pub email: Option<String>,
    pub role: Option<UserRole>,
    pub outbound_caller_id: Option<String>,
    pub voicemail_enabled: Option<bool>,
    pub voicemail_pin: Option<String>,
    pub dnd: Option<bool>,
    pub forward_always: Option<String>,
    pub forward_busy: Option<String>,
    pub forward_no_answer: Option<String>,
    pub ring_seconds: Option<u32>,
    /// Empty clears (the tenant's default applies).
    pub policy: Option<String>,
    #[cfg_attr(feature = "specta", specta(type = Option<i32>))]
    pub expected_version: Option<i64>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Device {
    #[cfg_attr(feature = "specta", specta(type = i32))]
    pub id: i64,
    #[cfg_attr(feature = "specta", specta(type = i32))]
    pub user_id: i64,
    pub label: String,
    pub sip_username: String,
    pub transport: Transport,
    pub codecs: Vec<Codec>,
    /// NAT handling on (force_rport, rewrite_contact, rtp_symmetric).
    pub nat: bool,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NewDevice {
    pub label: Option<String>,
    pub sip_username: Option<String>,
    pub transport: Option<Transport>,
    /// Comma-separated, in preference order, e.g. "opus,g722,ulaw".
    pub codecs: Option<String>,
    pub nat: Option<bool>,
}

/// A device with its SIP password in clear: only from `device_reveal`, which is audited.
#[derive(Clone, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RevealedDevice {
    pub device: Device,
    pub sip_password: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Operator {
    #[cfg_attr(feature = "specta", specta(type = i32))]
    pub id: i64,
    pub username: String,
    pub role: Role,
    pub tenants: Vec<String>,
    pub disabled: bool,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditEntry {
    pub id: i64,
    /// Unix milliseconds.
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub entity_type: String,
    pub entity_id: String,
    pub tenant_id: Option<i64>,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
    /// Where the change came from: "api ADDRESS", "cli", "app", "phone"; none for entries
    /// made before this was recorded.
    pub via: Option<String>,
}

/// An API token for automation, as made by an msp_admin (the secret is shown once, at creation).
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NewApiToken {
    /// What the audit calls it (`token:NAME`): lowercase letters, digits, `_ - .`.
    pub name: String,
    /// technician, tenant_admin or auditor.
    pub role: String,
    /// The one tenant a tenant_admin token acts on (its slug); none for the other roles.
    pub tenant: Option<String>,
    /// Days until it stops working (1 to 3650); none: until revoked.
    pub expires_in_days: Option<u32>,
}

/// An API token as listed: never its secret.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApiToken {
    pub id: i64,
    pub name: String,
    pub role: Role,
    pub tenant: Option<String>,
    /// The operator who made it.
    pub created_by: String,
    /// Unix milliseconds.
    pub created_at: i64,
    pub expires_at: Option<i64>,
    /// Its last use, to the minute, and where from ("api ADDRESS").
    pub last_used_at: Option<i64>,
    pub last_used_via: Option<String>,
    pub revoked_at: Option<i64>,
}

/// A token just made: `secret` is the bearer token, shown this once and never again.
#[derive(Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreatedApiToken {
    pub token: ApiToken,
    pub secret: String,
}

impl std::fmt::Debug for CreatedApiToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedApiToken")
            .field("token", &self.token)
            .field("secret", &"<redacted>")
            .finish()
    }
}

#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub tenant: Option<String>,
    pub limit: Option<u32>,
}

/// A ring group: an extension of the tenant that rings some of its users, then goes on.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RingGroup {
    #[cfg_attr(feature = "specta", specta(type = i32))]
    pub id: i64,
    pub tenant: String,
    pub extension: u32,
    pub name: String,
    pub strategy: crate::domain::RingStrategy,
    /// In ringing order.
    pub members: Vec<RingMember>,
    /// How long each member rings (in order and round robin; all at once: the whole group).
    pub member_seconds: u32,
    /// How long the group rings in all, before the no-answer destination.
    pub total_seconds: u32,
    /// Where the call goes when nobody answers: a destination as DIDs take it.
    pub no_answer: String,
    #[cfg_attr(feature = "specta", specta(type = i32))]
    pub version: i64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RingMember {
    pub extension: u32,
    pub name: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NewRingGroup {
    pub tenant: String,
    pub name: String,
    /// In the tenant's range; none: the lowest free number.
    pub extension: Option<u32>,
    /// "all" when none.
    pub strategy: Option<crate::domain::RingStrategy>,
    /// The members' extensions, in ringing order (live users of the tenant).
    pub members: Vec<u32>,
    /// 20 when none.
    pub member_seconds: Option<u32>,
    /// 60 when none.
    pub total_seconds: Option<u32>,
    /// "hangup" when none.
    pub no_answer: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RingGroupPatch {
    pub name: Option<String>,
    pub strategy: Option<crate::domain::RingStrategy>,
    pub members: Option<Vec<u32>>,
    pub member_seconds: Option<u32>,
    pub total_seconds: Option<u32>,
    pub no_answer: Option<String>,
    #[cfg_attr(feature = "specta", specta(type = Option<i32>))]
    pub expected_version: Option<i64>,
}

/// An inbound number and where it goes.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Did {
    #[cfg_attr(feature = "specta", specta(type = i32))]
    pub id: i64,
    pub tenant: String,
    /// E.164.
    pub number: String,
    pub label: String,
    /// "user:EXT", "voicemail:EXT", "external:+NUMBER" or "hangup".
    pub destination: String,
    /// The trunk (provider) that delivers it, when known.
    pub trunk: Option<String>,
    #[cfg_attr(feature = "specta", specta(type = i32))]
    pub version: i64,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NewDid {
    pub tenant: String,
    /// As typed: "+41 44 555 12 34", "044 555 12 34" (with `country`), …
    pub number: String,
    /// ISO country (e.g. "CH") for numbers typed in national form.
    pub country: Option<String>,
    pub label: Option<String>,
    pub destination: String,
    /// The trunk (provider) that delivers it.
    pub trunk: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DidPatch {
    pub label: Option<String>,
    pub destination: Option<String>,
    /// Empty clears.
    pub trunk: Option<String>,
    #[cfg_attr(feature = "specta", specta(type = Option<i32>))]
    pub expected_version: Option<i64>,
}

/// A SIP trunk of a PBX. The password is write-only: `password_set` says whether one is stored.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Trunk {
    #[cfg_attr(feature = "specta", specta(type = i32))]
    pub id: i64,
    pub pbx: String,
    pub name: String,
    pub host: String,
    pub port: u16,
    pub transport: Transport,
    /// Registers with the provider (true) or is recognised by its address (false).
    pub register: bool,
    pub username: Option<String>,
    pub password_set: bool,
    pub from_domain: Option<String>,
    pub from_user: Option<String>,
    pub codecs: Vec<Codec>,
    pub enabled: bool,
    /// Slugs of the tenants that may use it.
    pub tenants: Vec<String>,
    #[cfg_attr(feature = "specta", specta(type = i32))]
    pub version: i64,
}

#[derive(Clone, Default, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NewTrunk {
    pub pbx: String,
    pub name: String,
    pub host: String,
    /// 5060 when absent.
    pub port: Option<u16>,
    pub transport: Option<Transport>,
    pub register: bool,
    pub username: Option<String>,
    pub password: Option<String>,
    pub from_domain: Option<String>,
    pub from_user: Option<String>,
    /// "alaw,ulaw" when absent.
    pub codecs: Option<String>,
    pub enabled: Option<bool>,
    pub tenants: Vec<String>,
}

#[derive(Clone, Default, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TrunkPatch {
    pub host: Option<String>,
    pub port: Option<u16>,
    pub transport: Option<Transport>,
    pub register: Option<bool>,
    /// Empty clears.
    pub username: Option<String>,
    /// Empty clears.
    pub password: Option<String>,
    /// Empty clears.
    pub from_domain: Option<String>,
    /// Empty clears.
    pub from_user: Option<String>,
    pub codecs: Option<String>,
    pub enabled: Option<bool>,
    /// Replaces the list of tenants allowed on the trunk.
    pub tenants: Option<Vec<String>>,
    #[cfg_attr(feature = "specta", specta(type = Option<i32>))]
    pub expected_version: Option<i64>,
}

/// One outbound rule: the first rule whose pattern matches a dialled number decides.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PolicyRule {
    /// Asterisk pattern syntax: "_0[1-9]X.", "_00X.", "_+X.", or a number.
    pub pattern: String,
    pub allow: bool,
    /// Digits removed from the front.
    pub strip: u32,
    /// Put in front after stripping, e.g. "+41".
    pub prepend: String,
    /// Trunk names, tried in this order.
    pub trunks: Vec<String>,
}

/// An outbound policy (class of service) of a tenant.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Policy {
    #[cfg_attr(feature = "specta", specta(type = i32))]
    pub id: i64,
    pub tenant: String,
    pub name: String,
    pub rules: Vec<PolicyRule>,
    /// Whether it is the tenant's default.
    pub is_default: bool,
    #[cfg_attr(feature = "specta", specta(type = i32))]
    pub version: i64,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NewPolicy {
    pub tenant: String,
    pub name: String,
    pub rules: Vec<PolicyRule>,
    /// Makes it the tenant's default.
    pub make_default: bool,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PolicyPatch {
    /// Replaces the rules, in order.
    pub rules: Option<Vec<PolicyRule>>,
    #[cfg_attr(feature = "specta", specta(type = Option<i32>))]
    pub expected_version: Option<i64>,
}

// Debug never prints the plaintext secrets these carry (a `{:?}` in a log line is enough to
// leak them).
pbxdesk_render::debug_redacted!(UserPatch { name, email, role, outbound_caller_id, voicemail_enabled, dnd, forward_always, forward_busy, forward_no_answer, ring_seconds, policy, expected_version } secret { voicemail_pin });
pbxdesk_render::debug_redacted!(NewTrunk { pbx, name, host, port, transport, register, username, from_domain, from_user, codecs, enabled, tenants } secret { password });
pbxdesk_render::debug_redacted!(TrunkPatch { host, port, transport, register, username, from_domain, from_user, codecs, enabled, tenants, expected_version } secret { password });
pbxdesk_render::debug_redacted!(RevealedDevice { device } secret { sip_password });

/// An invite to self-service, shown this once: the user takes it with a password of their own.
#[derive(Clone, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SelfServiceInvite {
    /// The user's tenant (their login names it).
    pub tenant: String,
    /// The user's e-mail (their login name).
    pub email: String,
    /// The invite (`pbxi_…`), for the self-service page's "set your password".
    pub invite: String,
    /// When it stops working (ms since the epoch).
    #[cfg_attr(feature = "specta", specta(type = f64))]
    pub expires_at: i64,
}

impl std::fmt::Debug for SelfServiceInvite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SelfServiceInvite")
            .field("tenant", &self.tenant)
            .field("email", &self.email)
            .field("invite", &"<redacted>")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// An end user's session, given at login or when an invite is taken.
#[derive(Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SelfServiceSession {
    /// The bearer token (`pbxu_…`) for `Authorization: Bearer …` on `/api/v1/me`.
    pub token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds the session lasts.
    pub expires_in: u64,
}

impl std::fmt::Debug for SelfServiceSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SelfServiceSession")
            .field("token", &"<redacted>")
            .field("expires_in", &self.expires_in)
            .finish()
    }
}

/// What an end user sees of themselves: their own settings, nothing of anyone else.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Me {
    pub tenant: String,
    pub extension: u32,
    pub display_name: String,
    pub email: String,
    pub dnd: bool,
    pub forward_always: Option<String>,
    pub forward_busy: Option<String>,
    pub forward_no_answer: Option<String>,
    /// DND or a forward is saved but not yet on the PBX (it could not be reached).
    pub features_pending: bool,
    pub voicemail_enabled: bool,
    pub voicemail_pin_set: bool,
    /// The PIN is saved but not yet in the mailbox.
    pub voicemail_pin_pending: bool,
    /// Give it back as `expected_version` so a change made meanwhile is not overwritten.
    pub version: i64,
}

impl Me {
    pub(crate) fn of(u: User) -> Me {
        Me {
            tenant: u.tenant,
            extension: u.extension,
            display_name: u.display_name,
            email: u.email,
            dnd: u.dnd,
            forward_always: u.forward_always,
            forward_busy: u.forward_busy,
            forward_no_answer: u.forward_no_answer,
            features_pending: u.features_pending,
            voicemail_enabled: u.voicemail_enabled,
            voicemail_pin_set: u.voicemail_pin_set,
            voicemail_pin_pending: u.voicemail_pin_pending,
            version: u.version,
        }
    }
}

/// What an end user may change of themselves. A forward: an extension of their tenant or an
/// external number; empty clears it.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct MePatch {
    pub dnd: Option<bool>,
    pub forward_always: Option<String>,
    pub forward_busy: Option<String>,
    pub forward_no_answer: Option<String>,
    pub expected_version: Option<i64>,
}

/// Whether a device is registered now.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum DeviceStatus {
    /// At least one contact that answers.
    Registered,
    /// Registered, but its contacts do not answer.
    Unreachable,
    /// Not registered.
    Offline,
    /// The PBX could not be reached or read just now.
    Unknown,
}

/// One of an end user's devices and its status.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MeDevice {
    pub label: String,
    pub sip_username: String,
    pub status: DeviceStatus,
    /// Where it registered from and what it is, one line per contact.
    pub contacts: Vec<String>,
}

impl MeDevice {
    pub(crate) fn of(d: &Device, live: Option<&pbxdesk_remote::live::LiveState>) -> MeDevice {
        let endpoint = live.map(|l| l.endpoints.get(&d.sip_username));
        let status = match endpoint {
            None => DeviceStatus::Unknown,
            Some(None) => DeviceStatus::Offline,
            Some(Some(e)) if e.contacts.is_empty() => DeviceStatus::Offline,
            Some(Some(e)) if e.registered() => DeviceStatus::Registered,
            Some(Some(_)) => DeviceStatus::Unreachable,
        };
        let contacts = endpoint
            .flatten()
            .map(|e| {
                e.contacts
                    .iter()
                    .map(|c| match &c.user_agent {
                        Some(ua) => format!("{} ({ua})", c.uri),
                        None => c.uri.clone(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        MeDevice {
            label: d.label.clone(),
            sip_username: d.sip_username.clone(),
            status,
            contacts,
        }
    }
}

/// What a bulk import does with one row of its file.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ImportAction {
    Create,
    Update,
    Unchanged,
    Error,
}

/// One row of an import file and what it does (or would do, in a dry run).
#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ImportRow {
    /// The file's line where the row starts (the header is line 1).
    pub line: u32,
    /// What the row is matched on: the user's e-mail (or extension), the number.
    pub key: String,
    pub action: ImportAction,
    /// A user's extension, as it is or will be (a new user's allocated one).
    pub extension: Option<u32>,
    /// The fields an update changes.
    pub changes: Vec<String>,
}

/// A value of an import file that breaks a rule: where it is, what it is, and the rule.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ImportProblem {
    /// The file's line (the header is line 1); 0 for the file as a whole.
    pub line: u32,
    /// The column's name as the file's header spells it; empty for the row or the file.
    pub column: String,
    /// The value, made printable (control characters escaped, long values cut; secrets never).
    pub value: String,
    pub rule: String,
}

/// The outcome of an import: every row's action, and every problem of the file at once.
/// Nothing is written unless `errors` is empty (all or nothing); a dry run writes nothing.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ImportReport {
    pub tenant: String,
    pub dry_run: bool,
    /// Whether the changes were written (no error, not a dry run).
    pub written: bool,
    pub created: u32,
    pub updated: u32,
    pub unchanged: u32,
    pub rows: Vec<ImportRow>,
    pub errors: Vec<ImportProblem>,
}

/// What an import matches the file's users on.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ImportKey {
    /// A row updates the tenant's user with the same e-mail (the default).
    #[default]
    Email,
    /// A row updates the user with the same extension (its e-mail may then change).
    Extension,
}

/// How far a long import has come (sent while it writes).
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct ImportProgress {
    pub done: u32,
    pub total: u32,
}

/// What an export holds.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ExportKind {
    Users,
    Dids,
}

/// An export written to a file.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct ExportedFile {
    pub path: String,
    pub rows: u32,
}

/// Which audit entries to list, newest first, a page at a time. Every filter is optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema, utoipa::IntoParams))]
pub struct AuditFilter {
    /// A tenant's slug; all the operator may see when absent.
    pub tenant: Option<String>,
    /// Who: an operator's name, `token:NAME`, `user:TENANT/EXT`, `phone:TENANT/EXT`.
    pub actor: Option<String>,
    /// An action, e.g. `user.update`, `users.import`, `pbx.apply`.
    pub action: Option<String>,
    /// What kind of thing changed: user, device, did, tenant, pbx, trunk, policy, operator.
    pub entity_type: Option<String>,
    /// From this time on (Unix milliseconds).
    #[cfg_attr(feature = "specta", specta(type = Option<f64>))]
    pub from: Option<i64>,
    /// Before this time (Unix milliseconds).
    #[cfg_attr(feature = "specta", specta(type = Option<f64>))]
    pub to: Option<i64>,
    /// The page after the one that ended here (`next_before` of the last page).
    #[cfg_attr(feature = "specta", specta(type = Option<f64>))]
    pub before: Option<i64>,
    /// Entries a page (50 when absent, at most 500).
    pub limit: Option<u32>,
}

/// One page of the audit log, newest first.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditPage {
    pub entries: Vec<AuditEntryView>,
    /// Pass as `before` for the next page; none when this is the last.
    #[cfg_attr(feature = "specta", specta(type = Option<f64>))]
    pub next_before: Option<i64>,
}

/// An audit entry as a screen shows it: the tenant by slug, and the fields that changed.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditEntryView {
    #[cfg_attr(feature = "specta", specta(type = f64))]
    pub id: i64,
    /// Unix milliseconds.
    #[cfg_attr(feature = "specta", specta(type = f64))]
    pub at: i64,
    pub actor: String,
    /// "app", "cli", "api ADDRESS", "phone"; none for entries made before this was recorded.
    pub via: Option<String>,
    pub action: String,
    pub entity_type: String,
    pub entity_id: String,
    pub tenant: Option<String>,
    /// The fields whose values differ between before and after, each with both values as
    /// text. A secret's field (a PIN, a password) never carries a value: only that it changed.
    pub changes: Vec<FieldChange>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FieldChange {
    pub field: String,
    pub before: Option<String>,
    pub after: Option<String>,
}
