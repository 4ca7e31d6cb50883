//! How results and errors are printed: a table or key/value lines for people, JSON for scripts.

use comfy_table::{presets::UTF8_BORDERS_ONLY, Table};
use pbxdesk_core::model::{
    AuditEntry, CheckLine, Device, Did, Operator, Pbx, RevealedDevice, Tenant, User, UserSummary,
};
use pbxdesk_core::Error;
use serde::Serialize;

pub trait Show {
    fn json(&self) -> serde_json::Value;
    fn human(&self) -> String;
}

trait Human {
    fn human(&self) -> String;
}

impl<T: Serialize + Human> Show for T {
    fn json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }
    fn human(&self) -> String {
        Human::human(self)
    }
}

pub fn print_ok(out: &dyn Show, json: bool) {
    if json {
        println!("{}", out.json());
    } else {
        let text = out.human();
        if !text.is_empty() {
            println!("{}", text.trim_end());
        }
    }
}

pub fn print_error(e: &Error, json: bool) {
    if json {
        let field = match e {
            Error::Validation(v) => Some(v.field.clone()),
            _ => None,
        };
        let body = serde_json::json!({ "error": { "code": e.code(), "message": e.to_string(), "field": field } });
        println!("{body}");
    } else {
        eprintln!("error: {e}");
    }
}

fn table(header: &[&str], rows: Vec<Vec<String>>) -> String {
    if rows.is_empty() {
        return "(none)".into();
    }
    let mut t = Table::new();
    t.load_preset(UTF8_BORDERS_ONLY).set_header(header.to_vec());
    for r in rows {
        t.add_row(r);
    }
    t.to_string()
}

fn pairs(items: &[(&str, String)]) -> String {
    let width = items.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    items
        .iter()
        .map(|(k, v)| format!("{k:width$}  {v}\n"))
        .collect()
}

/// Unix milliseconds as an RFC 3339 UTC time, e.g. 2026-11-26T01:02:03.456Z.
fn utc(ms: i64) -> String {
    let t =
        std::time::UNIX_EPOCH + std::time::Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    humantime::format_rfc3339_millis(t).to_string()
}

fn opt(v: &Option<String>) -> String {
    v.clone().unwrap_or_else(|| "-".into())
}

fn set(b: bool) -> String {
    if b {
        "(set)".into()
    } else {
        "-".into()
    }
}

impl Human for Pbx {
    fn human(&self) -> String {
        pairs(&[
            ("name", self.name.clone()),
            (
                "ssh",
                format!(
                    "{}@{}:{} ({})",
                    self.ssh_user, self.host, self.ssh_port, self.ssh_auth
                ),
            ),
            ("ssh key", opt(&self.ssh_key_path)),
            ("ssh secret", set(self.ssh_secret_set)),
            (
                "host key",
                self.host_key
                    .clone()
                    .unwrap_or_else(|| "not trusted yet (pbxdesk pbx trust)".into()),
            ),
            ("config dir", self.config_dir.clone()),
            (
                "ami",
                format!(
                    "{} port {} user {}",
                    self.ami_via,
                    self.ami_port,
                    opt(&self.ami_user)
                ),
            ),
            ("ami secret", set(self.ami_secret_set)),
            (
                "database",
                format!(
                    "{} port {} db {} user {}",
                    self.db_via,
                    self.db_port,
                    self.db_name,
                    opt(&self.db_user)
                ),
            ),
            ("db password", set(self.db_password_set)),
            (
                "timeouts",
                format!(
                    "connect {} ms, command {} ms",
                    self.connect_timeout_ms, self.command_timeout_ms
                ),
            ),
            ("version", self.version.to_string()),
        ])
    }
}

impl Human for Vec<CheckLine> {
    fn human(&self) -> String {
        let mut out = String::new();
        for l in self {
            out.push_str(&format!(
                "{} {}: {}\n",
                if l.ok { "ok  " } else { "FAIL" },
                l.item,
                l.detail
            ));
            if let Some(fix) = &l.fix {
                out.push_str(&format!("     fix: {fix}\n"));
            }
        }
        out
    }
}

impl Human for Vec<Pbx> {
    fn human(&self) -> String {
        table(
            &["NAME", "SSH", "HOST KEY"],
            self.iter()
                .map(|p| {
                    vec![
                        p.name.clone(),
                        format!("{}@{}:{}", p.ssh_user, p.host, p.ssh_port),
                        p.host_key.clone().unwrap_or_else(|| "not trusted".into()),
                    ]
                })
                .collect(),
        )
    }
}

impl Human for Tenant {
    fn human(&self) -> String {
        pairs(&[
            ("slug", self.slug.clone()),
            ("name", self.name.clone()),
            ("pbx", self.pbx.clone()),
            ("extensions", self.ext_range.clone()),
            ("status", self.status.to_string()),
            ("users", self.user_count.to_string()),
            ("version", self.version.to_string()),
        ])
    }
}

impl Human for Vec<Tenant> {
    fn human(&self) -> String {
        table(
            &["SLUG", "NAME", "PBX", "EXTENSIONS", "STATUS", "USERS"],
            self.iter()
                .map(|t| {
                    vec![
                        t.slug.clone(),
                        t.name.clone(),
                        t.pbx.clone(),
                        t.ext_range.clone(),
                        t.status.to_string(),
                        t.user_count.to_string(),
                    ]
                })
                .collect(),
        )
    }
}

impl Human for User {
    fn human(&self) -> String {
        let mut s = pairs(&[
            ("id", self.id.to_string()),
            ("tenant", self.tenant.clone()),
            ("extension", self.extension.to_string()),
            ("name", self.display_name.clone()),
            ("email", self.email.clone()),
            ("role", self.role.to_string()),
            ("status", self.status.to_string()),
            ("caller id", opt(&self.outbound_caller_id)),
            (
                "voicemail",
                if self.voicemail_enabled {
                    "on".into()
                } else {
                    "off".into()
                },
            ),
            ("dnd", if self.dnd { "on".into() } else { "off".into() }),
            ("forward to", opt(&self.forward_target)),
            ("version", self.version.to_string()),
        ]);
        s.push_str("devices:\n");
        s.push_str(&Human::human(&self.devices));
        s
    }
}

impl Human for Vec<UserSummary> {
    fn human(&self) -> String {
        table(
            &["ID", "EXT", "NAME", "EMAIL", "ROLE", "STATUS", "DEVICES"],
            self.iter()
                .map(|u| {
                    vec![
                        u.id.to_string(),
                        u.extension.to_string(),
                        u.display_name.clone(),
                        u.email.clone(),
                        u.role.to_string(),
                        u.status.to_string(),
                        u.device_count.to_string(),
                    ]
                })
                .collect(),
        )
    }
}

impl Human for Device {
    fn human(&self) -> String {
        Human::human(&vec![self.clone()])
    }
}

impl Human for Vec<Device> {
    fn human(&self) -> String {
        table(
            &["ID", "SIP USERNAME", "LABEL", "TRANSPORT", "CODECS", "NAT"],
            self.iter()
                .map(|d| {
                    let codecs: Vec<&str> = d.codecs.iter().map(|c| c.as_str()).collect();
                    vec![
                        d.id.to_string(),
                        d.sip_username.clone(),
                        d.label.clone(),
                        d.transport.to_string(),
                        codecs.join(","),
                        d.nat.to_string(),
                    ]
                })
                .collect(),
        )
    }
}

impl Human for RevealedDevice {
    fn human(&self) -> String {
        pairs(&[
            ("sip username", self.device.sip_username.clone()),
            ("sip password", self.sip_password.clone()),
        ])
    }
}

impl Human for Operator {
    fn human(&self) -> String {
        pairs(&[
            ("username", self.username.clone()),
            ("role", self.role.to_string()),
            ("tenants", self.tenants.join(",")),
        ])
    }
}

impl Human for Vec<Operator> {
    fn human(&self) -> String {
        table(
            &["USERNAME", "ROLE", "TENANTS", "DISABLED"],
            self.iter()
                .map(|o| {
                    vec![
                        o.username.clone(),
                        o.role.to_string(),
                        o.tenants.join(","),
                        o.disabled.to_string(),
                    ]
                })
                .collect(),
        )
    }
}

impl Human for Vec<AuditEntry> {
    fn human(&self) -> String {
        table(
            &["ID", "AT (UTC)", "ACTOR", "ACTION", "ENTITY"],
            self.iter()
                .map(|e| {
                    vec![
                        e.id.to_string(),
                        utc(e.at),
                        e.actor.clone(),
                        e.action.clone(),
                        format!("{} {}", e.entity_type, e.entity_id),
                    ]
                })
                .collect(),
        )
    }
}

impl Human for Did {
    fn human(&self) -> String {
        Human::human(&vec![self.clone()])
    }
}

impl Human for Vec<Did> {
    fn human(&self) -> String {
        table(
            &["NUMBER", "LABEL", "DESTINATION", "TENANT"],
            self.iter()
                .map(|d| {
                    vec![
                        d.number.clone(),
                        d.label.clone(),
                        d.destination.clone(),
                        d.tenant.clone(),
                    ]
                })
                .collect(),
        )
    }
}

/// The outcome of `demo seed`.
#[derive(Serialize)]
pub struct Seeded(pub bool);

impl Human for Seeded {
    fn human(&self) -> String {
        if self.0 {
            "demo data added".into()
        } else {
            "the workspace already has data; nothing added".into()
        }
    }
}
