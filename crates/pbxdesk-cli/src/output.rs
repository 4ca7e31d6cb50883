//! How results and errors are printed: a table or key/value lines for people, JSON for scripts.

use comfy_table::{presets::UTF8_BORDERS_ONLY, Table};
use pbxdesk_core::model::{
    ApiToken, AuditEntry, AuditPage, CheckLine, CreatedApiToken, Device, Did, ImportAction,
    ImportReport, Operator, Pbx, Policy, PolicyRule, RevealedDevice, RingGroup, SelfServiceInvite,
    Tenant, Trunk, User, UserSummary,
};
use pbxdesk_core::service::{
    ApplyRecord, ApplyReport, ApplyStep, FleetLine, FleetReport, Live, PbxDiff, RenderWritten,
};
use pbxdesk_core::{Error, Refusal};
use pbxdesk_render::{Finding, Severity, Trace};
use serde::Serialize;

pub trait Show {
    fn json(&self) -> serde_json::Value;
    fn human(&self) -> String;
}

pub(crate) trait Human {
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

/// Writes a line to standard output. A reader that went away (`pbxdesk diff | head`,
/// `| grep -q`) is not an error: the rest of the output is simply not wanted.
fn out_line(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{text}").and_then(|()| out.flush());
}

pub fn print_ok(out: &dyn Show, json: bool) {
    if json {
        out_line(&out.json().to_string());
    } else {
        let text = out.human();
        if !text.is_empty() {
            out_line(text.trim_end());
        }
    }
}

pub fn print_error(e: &Error, json: bool) {
    let hint = match e {
        Error::Refused(r) => refusal_hint(r),
        _ => None,
    };
    if json {
        let field = e.fields().first().map(|v| v.field.clone());
        let fields = e.field_problems();
        let refusal = match e {
            Error::Refused(r) => Some(r),
            _ => None,
        };
        let body = serde_json::json!({ "error": { "code": e.code(), "message": e.to_string(), "field": field, "fields": fields, "refusal": refusal, "hint": hint } });
        out_line(&body.to_string());
    } else {
        use std::io::Write;
        let mut err = std::io::stderr().lock();
        match e.fields() {
            // Several fields: one line each, so none is lost in a long line.
            many @ [_, _, ..] => {
                let _ = writeln!(err, "error: {} fields are not valid:", many.len());
                for v in many {
                    let _ = writeln!(err, "  {v}");
                }
            }
            _ => {
                let _ = writeln!(err, "error: {e}");
            }
        }
        if let Some(h) = hint {
            let _ = writeln!(err, "hint: {h}");
        }
    }
}

/// What the technician can do about a refused apply, in the CLI's terms (the app words its own).
pub fn refusal_hint(r: &Refusal) -> Option<String> {
    Some(match r {
        Refusal::Drift { .. } => {
            "look at those files on the PBX, then apply with --overwrite-drift to replace them"
                .into()
        }
        Refusal::MissingInclude { .. } => {
            "apply with --add-includes to let pbxdesk add the line".into()
        }
        Refusal::Untrusted { pbx } => format!("check the key, then: pbxdesk pbx trust {pbx}"),
        Refusal::Locked { .. } | Refusal::TeamLocked { .. } => "try again when it is done".into(),
        Refusal::NoEarlierApply { .. } => "apply without --previous".into(),
        Refusal::RenderErrors { .. } => {
            "pbxdesk render --pbx NAME lists them with their fixes".into()
        }
        Refusal::NoDialplan { .. } => "pbxdesk pbx check NAME checks the config folder".into(),
        Refusal::SorceryUnmapped { .. } | Refusal::DbSetting { .. } => return None,
    })
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
            ("country", self.country.clone()),
            ("unknown numbers", self.unknown_did.clone()),
            ("caller id", opt(&self.caller_id)),
            ("default policy", opt(&self.default_policy)),
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
            ("forward always", opt(&self.forward_always)),
            ("forward busy", opt(&self.forward_busy)),
            ("forward no answer", opt(&self.forward_no_answer)),
            (
                "on the PBX",
                if self.features_pending {
                    "pending: DND and forwards reach the PBX at its next connection or apply".into()
                } else {
                    "up to date".into()
                },
            ),
            (
                "voicemail pin",
                match (self.voicemail_pin_set, self.voicemail_pin_pending) {
                    (false, _) => "not set".into(),
                    (true, false) => "set".into(),
                    (true, true) => {
                        "set, pending: it reaches the PBX at its next connection or apply".into()
                    }
                },
            ),
            ("ring time", format!("{} s", self.ring_seconds)),
            ("policy", opt(&self.policy)),
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

impl Human for ApiToken {
    fn human(&self) -> String {
        pairs(&[
            ("name", self.name.clone()),
            ("role", self.role.to_string()),
            ("tenant", self.tenant.clone().unwrap_or_default()),
            (
                "expires",
                self.expires_at.map(utc).unwrap_or_else(|| "never".into()),
            ),
            ("revoked", self.revoked_at.map(utc).unwrap_or_default()),
        ])
    }
}

impl Human for CreatedApiToken {
    fn human(&self) -> String {
        format!(
            "{}\n{}\n(shown this once: keep it where the automation reads it)",
            Human::human(&self.token),
            pairs(&[("token", self.secret.clone())])
        )
    }
}

impl Human for SelfServiceInvite {
    fn human(&self) -> String {
        format!(
            "{}\n(shown this once: the user opens the self-service page of `pbxdesk serve`, \
             /self/?tenant={}#invite=…, and sets their password; good until {})",
            pairs(&[
                ("tenant", self.tenant.clone()),
                ("login", self.email.clone()),
                ("invite", self.invite.clone()),
            ]),
            self.tenant,
            utc(self.expires_at)
        )
    }
}

impl Human for Vec<ApiToken> {
    fn human(&self) -> String {
        table(
            &[
                "NAME",
                "ROLE",
                "TENANT",
                "CREATED",
                "LAST USED",
                "EXPIRES",
                "REVOKED",
            ],
            self.iter()
                .map(|t| {
                    vec![
                        t.name.clone(),
                        t.role.to_string(),
                        t.tenant.clone().unwrap_or_default(),
                        format!("{} by {}", utc(t.created_at), t.created_by),
                        t.last_used_at
                            .map(|at| {
                                format!(
                                    "{} ({})",
                                    utc(at),
                                    t.last_used_via.as_deref().unwrap_or("")
                                )
                            })
                            .unwrap_or_else(|| "never".into()),
                        t.expires_at.map(utc).unwrap_or_else(|| "never".into()),
                        t.revoked_at.map(utc).unwrap_or_default(),
                    ]
                })
                .collect(),
        )
    }
}

impl Human for Vec<AuditEntry> {
    fn human(&self) -> String {
        table(
            &["ID", "AT (UTC)", "ACTOR", "VIA", "ACTION", "ENTITY"],
            self.iter()
                .map(|e| {
                    vec![
                        e.id.to_string(),
                        utc(e.at),
                        e.actor.clone(),
                        e.via.clone().unwrap_or_default(),
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

impl Human for AuditPage {
    fn human(&self) -> String {
        let mut s = table(
            &[
                "ID", "AT (UTC)", "ACTOR", "VIA", "ACTION", "ENTITY", "CHANGED",
            ],
            self.entries
                .iter()
                .map(|e| {
                    let changed: Vec<&str> = e.changes.iter().map(|c| c.field.as_str()).collect();
                    vec![
                        e.id.to_string(),
                        utc(e.at),
                        e.actor.clone(),
                        e.via.clone().unwrap_or_default(),
                        e.action.clone(),
                        format!("{} {}", e.entity_type, e.entity_id),
                        changed.join(", "),
                    ]
                })
                .collect(),
        );
        if let Some(b) = self.next_before {
            s.push_str(&format!("\nolder entries: --before {b}\n"));
        }
        s
    }
}

impl Human for Vec<RingGroup> {
    fn human(&self) -> String {
        table(
            &["EXT", "NAME", "STRATEGY", "MEMBERS", "RINGS", "NO ANSWER"],
            self.iter()
                .map(|g| {
                    vec![
                        g.extension.to_string(),
                        g.name.clone(),
                        g.strategy.to_string(),
                        g.members
                            .iter()
                            .map(|m| m.extension.to_string())
                            .collect::<Vec<_>>()
                            .join(", "),
                        match g.strategy {
                            pbxdesk_core::domain::RingStrategy::All => {
                                format!("{} s", g.total_seconds)
                            }
                            _ => {
                                format!("{} s each, {} s in all", g.member_seconds, g.total_seconds)
                            }
                        },
                        g.no_answer.clone(),
                    ]
                })
                .collect(),
        )
    }
}

impl Human for RingGroup {
    fn human(&self) -> String {
        let mut s = Human::human(&vec![self.clone()]);
        for (i, m) in self.members.iter().enumerate() {
            s.push_str(&format!("\n{}. {} {}", i + 1, m.extension, m.name));
        }
        s
    }
}

impl Human for Vec<Did> {
    fn human(&self) -> String {
        table(
            &["NUMBER", "LABEL", "DESTINATION", "TRUNK", "TENANT"],
            self.iter()
                .map(|d| {
                    vec![
                        d.number.clone(),
                        d.label.clone(),
                        d.destination.clone(),
                        opt(&d.trunk),
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

impl Human for Trunk {
    fn human(&self) -> String {
        pairs(&[
            ("pbx", self.pbx.clone()),
            ("name", self.name.clone()),
            (
                "host",
                format!("{}:{} ({})", self.host, self.port, self.transport),
            ),
            (
                "authentication",
                if self.register {
                    "registration".into()
                } else {
                    "by address".into()
                },
            ),
            ("username", opt(&self.username)),
            (
                "password",
                if self.password_set {
                    "set (write-only)".into()
                } else {
                    "-".into()
                },
            ),
            ("from domain", opt(&self.from_domain)),
            ("from user", opt(&self.from_user)),
            (
                "codecs",
                self.codecs
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(","),
            ),
            (
                "enabled",
                if self.enabled {
                    "yes".into()
                } else {
                    "no".into()
                },
            ),
            ("tenants", self.tenants.join(", ")),
            ("version", self.version.to_string()),
        ])
    }
}

impl Human for Vec<Trunk> {
    fn human(&self) -> String {
        table(
            &["PBX", "NAME", "HOST", "AUTH", "ENABLED", "TENANTS"],
            self.iter()
                .map(|t| {
                    vec![
                        t.pbx.clone(),
                        t.name.clone(),
                        format!("{}:{}", t.host, t.port),
                        if t.register {
                            "register".into()
                        } else {
                            "ip".into()
                        },
                        if t.enabled { "yes".into() } else { "no".into() },
                        t.tenants.join(", "),
                    ]
                })
                .collect(),
        )
    }
}

fn rule_text(r: &PolicyRule) -> String {
    let mut s = format!("{} {}", r.pattern, if r.allow { "allow" } else { "deny" });
    if r.strip > 0 {
        s.push_str(&format!(" strip={}", r.strip));
    }
    if !r.prepend.is_empty() {
        s.push_str(&format!(" prepend={}", r.prepend));
    }
    if !r.trunks.is_empty() {
        s.push_str(&format!(" trunks={}", r.trunks.join(",")));
    }
    s
}

impl Human for Policy {
    fn human(&self) -> String {
        let mut s = pairs(&[
            ("tenant", self.tenant.clone()),
            ("name", self.name.clone()),
            (
                "default",
                if self.is_default {
                    "yes".into()
                } else {
                    "no".into()
                },
            ),
            ("version", self.version.to_string()),
        ]);
        s.push_str("rules (first match wins; emergency numbers are always allowed):\n");
        for (i, r) in self.rules.iter().enumerate() {
            s.push_str(&format!("  {}. {}\n", i + 1, rule_text(r)));
        }
        s
    }
}

impl Human for Vec<Policy> {
    fn human(&self) -> String {
        table(
            &["NAME", "DEFAULT", "RULES"],
            self.iter()
                .map(|p| {
                    vec![
                        p.name.clone(),
                        if p.is_default {
                            "yes".into()
                        } else {
                            String::new()
                        },
                        p.rules.iter().map(rule_text).collect::<Vec<_>>().join("\n"),
                    ]
                })
                .collect(),
        )
    }
}

fn findings(list: &[Finding]) -> String {
    if list.is_empty() {
        return "findings: none\n".into();
    }
    let errors = list.iter().filter(|f| f.is_error()).count();
    let mut s = format!(
        "findings: {errors} error(s) (block an apply), {} warning(s)\n",
        list.len() - errors
    );
    for f in list {
        let level = if f.severity == Severity::Error {
            "error"
        } else {
            "warning"
        };
        s.push_str(&format!(
            "  {level}: {}: {}\n    fix: {}\n",
            f.entity, f.message, f.fix
        ));
    }
    s
}

impl Human for RenderWritten {
    fn human(&self) -> String {
        let mut s = format!(
            "wrote {} file(s) and {} realtime row(s) to {}\n",
            self.files.len(),
            self.realtime_rows,
            self.out
        );
        for f in &self.files {
            s.push_str(&format!("  {f}\n"));
        }
        s.push_str(&findings(&self.findings));
        s
    }
}

impl Human for PbxDiff {
    fn human(&self) -> String {
        let d = &self.diff;
        let mut s = match (&self.last_applied_at, &self.last_applied_by) {
            (Some(at), Some(by)) => format!(
                "PBX {}: changes since the apply of {} by {by}\n",
                self.pbx,
                utc(*at)
            ),
            _ => format!("PBX {}: nothing applied yet; everything is new\n", self.pbx),
        };
        if d.is_empty() {
            s.push_str("no changes\n");
        }
        for f in &d.files {
            s.push_str(&f.unified);
            if !f.unified.ends_with('\n') {
                s.push('\n');
            }
        }
        if !d.rows_added.is_empty() || !d.rows_changed.is_empty() || !d.rows_removed.is_empty() {
            s.push_str("realtime rows (ps_endpoints, ps_auths, ps_aors):\n");
            for id in &d.rows_added {
                s.push_str(&format!("  + {id}\n"));
            }
            for r in &d.rows_changed {
                s.push_str(&format!("  ~ {} ({})\n", r.id, r.columns.join(", ")));
            }
            for id in &d.rows_removed {
                s.push_str(&format!("  - {id}\n"));
            }
        }
        for secret in &d.secrets_changed {
            s.push_str(&format!("secret changed: {secret} (not shown)\n"));
        }
        s.push_str(&findings(&self.findings));
        s
    }
}

impl Human for Trace {
    fn human(&self) -> String {
        let mut s = format!("call to {}\n", self.number);
        for (i, h) in self.path.iter().enumerate() {
            s.push_str(&format!("{}. {}\n", i + 1, h.title));
            if !h.detail.is_empty() {
                s.push_str(&format!("   {}\n", h.detail));
            }
        }
        s
    }
}

/// One apply step as a line (also printed live, as each step ends).
pub fn step_line(st: &ApplyStep) -> String {
    format!(
        "  {} {:<34} {:>6} ms  {}",
        if st.ok { "ok  " } else { "FAIL" },
        st.step,
        st.ms,
        st.detail
    )
}

/// One PBX of a fleet apply as a line (also printed live, as each PBX ends).
pub fn fleet_line(l: &FleetLine) -> String {
    let outcome = serde_json::to_value(l.outcome)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    format!("{:<24} {:<14} {}", l.pbx, outcome, l.detail)
}

impl Human for FleetReport {
    fn human(&self) -> String {
        if self.lines.is_empty() {
            return "every PBX runs its render already\n".into();
        }
        let mut s = String::new();
        for l in &self.lines {
            s.push_str(&fleet_line(l));
            s.push('\n');
        }
        s
    }
}

impl Human for Vec<ApplyRecord> {
    fn human(&self) -> String {
        table(
            &["id", "when (UTC)", "by", "outcome", "summary"],
            self.iter()
                .map(|r| {
                    vec![
                        r.id.to_string(),
                        utc(r.at),
                        r.actor.clone(),
                        r.outcome.clone(),
                        r.summary.clone(),
                    ]
                })
                .collect(),
        )
    }
}

impl Human for ApplyReport {
    fn human(&self) -> String {
        let mut s = format!("PBX {}: {:?}: {}\n", self.pbx, self.outcome, self.summary);
        for st in &self.steps {
            s.push_str(&format!(
                "  {} {:<34} {:>6} ms  {}\n",
                if st.ok { "ok  " } else { "FAIL" },
                st.step,
                st.ms,
                st.detail
            ));
        }
        if let Some(f) = self.failed {
            s.push_str(&format!("failed at: {}\n", f.label()));
        }
        s
    }
}

/// One line for `pbx status --watch`: the PBX's state in figures.
pub fn live_line(l: &Live) -> String {
    let s = &l.state;
    let registered = s.endpoints.values().filter(|e| e.registered()).count();
    let up = s
        .registrations
        .values()
        .filter(|r| r.status == "Registered")
        .count();
    let calls: std::collections::BTreeSet<&str> =
        s.channels.values().map(|c| c.linkedid.as_str()).collect();
    let link = if l.connected {
        "connected".to_owned()
    } else {
        format!(
            "NOT CONNECTED ({}), last known",
            l.last_error.as_deref().unwrap_or("connecting")
        )
    };
    format!(
        "{link}: {registered}/{} endpoint(s) registered, {up}/{} registration(s) up, {} call(s)",
        s.endpoints.len(),
        s.registrations.len(),
        calls.len()
    )
}

impl Human for Live {
    fn human(&self) -> String {
        let s = &self.state;
        let mut rows = Vec::new();
        for (name, e) in &s.endpoints {
            let state = e
                .device_state
                .map_or_else(|| "-".to_owned(), |d| format!("{d:?}"));
            if e.contacts.is_empty() {
                rows.push(vec![
                    name.clone(),
                    state.clone(),
                    "-".into(),
                    "not registered".into(),
                    String::new(),
                    String::new(),
                    String::new(),
                ]);
            }
            for c in &e.contacts {
                rows.push(vec![
                    name.clone(),
                    state.clone(),
                    c.uri.clone(),
                    format!("{:?}", c.state),
                    c.rtt_us
                        .map_or_else(String::new, |u| format!("{:.1}", u as f64 / 1000.0)),
                    c.user_agent.clone().unwrap_or_default(),
                    c.source.clone().unwrap_or_default(),
                ]);
            }
        }
        let registrations = s
            .registrations
            .values()
            .map(|r| vec![r.name.clone(), r.status.clone(), r.server_uri.clone()])
            .collect();
        let calls = s
            .channels
            .values()
            .map(|c| {
                vec![
                    c.linkedid.clone(),
                    c.channel.clone(),
                    c.caller.clone(),
                    c.connected.clone(),
                    c.state.clone(),
                ]
            })
            .collect();
        let h = &s.health;
        let db = match &h.realtime_db {
            Some(d) if d.connected() => format!("connected ({}/{})", d.active, d.max),
            Some(d) => format!(
                "NOT connected (last failure {})",
                d.last_fail.as_deref().unwrap_or("unknown")
            ),
            None => "unknown".into(),
        };
        let health = format!(
            "Asterisk {}, up {}, started {}, last reload {}; realtime database: {db}",
            h.version.as_deref().unwrap_or("?"),
            h.uptime_s.map_or_else(
                || "?".to_owned(),
                |s| format!("{}h{:02}m", s / 3600, s / 60 % 60)
            ),
            h.started.as_deref().unwrap_or("?"),
            h.last_reload.as_deref().unwrap_or("?"),
        );
        format!(
            "{}\n{health}\n{}\n{}\n{}",
            live_line(self),
            table(
                &["endpoint", "state", "contact", "status", "rtt ms", "agent", "from"],
                rows
            ),
            table(&["registration", "status", "server"], registrations),
            table(&["call", "channel", "caller", "to", "state"], calls),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::{live_line, refusal_hint, Human};
    use pbxdesk_core::service::Live;
    use pbxdesk_core::Refusal;

    /// The watch line says when the state is only the last known one, and counts what is up.
    #[test]
    fn the_status_line_counts_and_says_when_it_is_stale() {
        let mut l = Live::default();
        l.state
            .endpoints
            .insert("acme-100".into(), Default::default());
        l.last_error = Some("connection refused".into());
        let line = live_line(&l);
        assert!(
            line.starts_with("NOT CONNECTED (connection refused)"),
            "{line}"
        );
        assert!(line.contains("0/1 endpoint(s) registered"), "{line}");
        l.connected = true;
        assert!(live_line(&l).starts_with("connected: "));
        assert!(l.human().contains("not registered"));
    }

    /// The CLI words a refusal's remedy with the flag that fixes it (the core says only why).
    #[test]
    fn refusals_name_the_flag_that_fixes_them() {
        let drift = Refusal::Drift {
            files: vec!["extensions.d/pbxdesk/tenant-globex.conf".into()],
        };
        assert!(refusal_hint(&drift).unwrap().contains("--overwrite-drift"));
        let include = Refusal::MissingInclude {
            file: "extensions.conf".into(),
            line: "#tryinclude extensions.d/pbxdesk/*.conf".into(),
        };
        assert!(refusal_hint(&include).unwrap().contains("--add-includes"));
        let untrusted = Refusal::Untrusted { pbx: "pbx1".into() };
        assert!(refusal_hint(&untrusted)
            .unwrap()
            .contains("pbxdesk pbx trust pbx1"));
    }
}

/// Rows of an import listed for people before "…and N more".
const IMPORT_ROWS_SHOWN: usize = 50;

impl Human for ImportReport {
    fn human(&self) -> String {
        let mut s = String::new();
        if !self.errors.is_empty() {
            s.push_str(&format!(
                "{} problem(s); nothing was written:\n",
                self.errors.len()
            ));
            for e in &self.errors {
                let at = match (e.line, e.column.is_empty()) {
                    (0, _) => "the file".to_owned(),
                    (l, true) => format!("line {l}"),
                    (l, false) => format!("line {l}, column {}", e.column),
                };
                if e.value.is_empty() {
                    s.push_str(&format!("  {at}: {}\n", e.rule));
                } else {
                    s.push_str(&format!("  {at}: \"{}\": {}\n", e.value, e.rule));
                }
            }
            return s;
        }
        let verb = if self.written {
            "created"
        } else {
            "would create"
        };
        s.push_str(&format!(
            "{}: {verb} {}, {} {}, {} unchanged{}\n",
            self.tenant,
            self.created,
            if self.written {
                "updated"
            } else {
                "would update"
            },
            self.updated,
            self.unchanged,
            if self.dry_run {
                " (dry run: nothing written)"
            } else {
                ""
            }
        ));
        let changing: Vec<_> = self
            .rows
            .iter()
            .filter(|r| matches!(r.action, ImportAction::Create | ImportAction::Update))
            .collect();
        for r in changing.iter().take(IMPORT_ROWS_SHOWN) {
            let ext = r.extension.map(|e| format!(" ({e})")).unwrap_or_default();
            match r.action {
                ImportAction::Create => {
                    s.push_str(&format!("  line {}: create {}{ext}\n", r.line, r.key))
                }
                _ => s.push_str(&format!(
                    "  line {}: update {}{ext}: {}\n",
                    r.line,
                    r.key,
                    r.changes.join(", ")
                )),
            }
        }
        if changing.len() > IMPORT_ROWS_SHOWN {
            s.push_str(&format!(
                "  …and {} more\n",
                changing.len() - IMPORT_ROWS_SHOWN
            ));
        }
        s
    }
}

/// A CSV export: printed, or written to a file (replaced whole, owner-only).
#[derive(Serialize)]
pub struct Exported {
    /// The CSV itself when it went to standard output.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub csv: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub out: Option<String>,
    pub rows: usize,
}

impl Exported {
    pub fn write(csv: String, out: Option<&std::path::Path>, secret: bool) -> Result<Self, Error> {
        let rows = csv.lines().count().saturating_sub(1);
        let Some(path) = out else {
            return Ok(Self {
                csv: Some(csv),
                out: None,
                rows,
            });
        };
        pbxdesk_core::service::write_export(path, &csv, secret)?;
        Ok(Self {
            csv: None,
            out: Some(path.display().to_string()),
            rows,
        })
    }
}

impl Human for Exported {
    fn human(&self) -> String {
        match (&self.csv, &self.out) {
            (Some(csv), _) => csv.clone(),
            (None, Some(out)) => format!("wrote {} row(s) to {out}", self.rows),
            (None, None) => String::new(),
        }
    }
}
