//! Findings about a snapshot: each names the entity and how to fix it. Errors block an apply,
//! warnings do not.

use crate::dialplan::RenderError;
use crate::pattern::Pattern;
use crate::pbx::{emergency_trunks, is_pin, pjsip_value_ok, trunk_endpoint, vm_email_ok};
use crate::snapshot::{emergency_numbers, Destination, Snapshot, Tenant, Trunk, User};
use rustc_hash::FxHashMap as HashMap;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Severity {
    Error,
    Warning,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Finding {
    pub severity: Severity,
    /// Stable machine-readable code, e.g. "did.dangling".
    pub code: String,
    /// The entity, e.g. "tenant acme-dental, DID +41445551234".
    pub entity: String,
    pub message: String,
    pub fix: String,
}

impl Finding {
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

struct Findings(Vec<Finding>);

impl Findings {
    fn push(&mut self, severity: Severity, code: &str, entity: String, message: String, fix: &str) {
        self.0.push(Finding {
            severity,
            code: code.into(),
            entity,
            message,
            fix: fix.into(),
        });
    }
    fn error(&mut self, code: &str, entity: String, message: String, fix: &str) {
        self.push(Severity::Error, code, entity, message, fix);
    }
    fn warn(&mut self, code: &str, entity: String, message: String, fix: &str) {
        self.push(Severity::Warning, code, entity, message, fix);
    }
}

/// Which rule of the tenant's default policy decides a number: Some((index, allow)).
pub fn first_rule(t: &Tenant, policy: &str, number: &str) -> Option<(usize, bool)> {
    let p = t.policies.iter().find(|p| p.name == policy)?;
    p.rules.iter().enumerate().find_map(|(i, r)| {
        Pattern::parse(&r.pattern)
            .ok()
            .filter(|pat| pat.matches(number))
            .map(|_| (i, r.allow))
    })
}

fn check_destination(
    f: &mut Findings,
    t: &Tenant,
    users: &HashMap<u32, &User>,
    entity: impl Fn() -> String,
    d: &Destination,
) {
    let user = |e: u32| users.get(&e).copied();
    let no_user = |e: u32| format!("no user of tenant {} has extension {e}", t.slug);
    match d {
        Destination::User(e) => match user(*e) {
            None => f.error("destination.dangling", entity(), format!("goes to extension {e}, but {}", no_user(*e)), "point it at an existing user, or recreate the user"),
            Some(u) if !u.active => f.warn("destination.suspended", entity(), format!("goes to extension {e}, whose user is suspended: callers hear \"not in service\""), "resume the user or point it elsewhere"),
            _ => {}
        },
        Destination::Voicemail(e) => match user(*e) {
            None => f.error("destination.dangling", entity(), format!("goes to the voicemail of extension {e}, but {}", no_user(*e)), "point it at an existing user's voicemail"),
            Some(u) if !u.voicemail => f.error("destination.no_voicemail", entity(), format!("goes to the voicemail of extension {e}, but that user has voicemail off"), "turn the user's voicemail on, or route the number to the user"),
            _ => {}
        },
        Destination::External(num) => match t.default_policy.as_deref() {
            None => f.error("destination.no_route", entity(), format!("forwards to {num}, but tenant {} has no default outbound policy", t.slug), "give the tenant a default policy with a rule that allows this number"),
            Some(p) => match first_rule(t, p, num) {
                Some((_, true)) => {}
                Some((i, false)) => f.error("destination.denied", entity(), format!("forwards to {num}, which rule {} of policy {p} denies", i + 1), "allow the number in the tenant's default policy, or route it elsewhere"),
                None => f.error("destination.no_route", entity(), format!("forwards to {num}, which no rule of policy {p} matches"), "add a rule like _+X. to the default policy"),
            },
        },
        Destination::Hangup => {}
        Destination::RingGroup(e) => {
            if !t.ring_groups.iter().any(|g| g.extension == *e) {
                f.error("destination.dangling", entity(), format!("goes to ring group {e}, but tenant {} has no ring group with that extension", t.slug), "point it at an existing ring group");
            }
        }
    }
}

/// A tenant's ring groups: members that exist, no user at a group's extension, a no-answer
/// destination that exists and does not lead back (the workspace refuses both; a snapshot
/// from elsewhere is checked here too).
fn check_ring_groups(f: &mut Findings, t: &Tenant, users: &HashMap<u32, &User>) {
    let te = |g: &crate::snapshot::RingGroup| {
        format!("tenant {}, ring group {} ({})", t.slug, g.name, g.extension)
    };
    for g in &t.ring_groups {
        if users.contains_key(&g.extension) {
            f.error(
                "ring_group.clash",
                te(g),
                format!(
                    "has extension {}, which a user has too: the group is not reachable",
                    g.extension
                ),
                "give the group or the user another extension",
            );
        }
        for m in &g.members {
            match users.get(m) {
                None => f.error(
                    "ring_group.member_missing",
                    te(g),
                    format!("rings extension {m}, but no user of the tenant has it"),
                    "remove the member or recreate the user",
                ),
                Some(u) if !u.active => f.warn(
                    "ring_group.member_suspended",
                    te(g),
                    format!("rings {m}, whose user is suspended: skipped"),
                    "resume the user or remove the member",
                ),
                Some(u) if u.devices.is_empty() => f.warn(
                    "ring_group.member_no_device",
                    te(g),
                    format!("rings {m}, who has no device: skipped"),
                    "give the user a device",
                ),
                _ => {}
            }
        }
        if g.members.is_empty() {
            f.warn(
                "ring_group.empty",
                te(g),
                "has no members: every call goes to its no-answer destination".into(),
                "add members",
            );
        }
        check_destination(
            f,
            t,
            users,
            || format!("{} when nobody answers", te(g)),
            &g.no_answer,
        );
        let mut seen = vec![g.extension];
        let mut at = &g.no_answer;
        while let Destination::RingGroup(e) = at {
            if seen.contains(e) {
                f.error(
                    "ring_group.loop",
                    te(g),
                    format!(
                        "leads back to itself when nobody answers ({})",
                        seen.iter()
                            .map(|x| format!("ring group {x}"))
                            .collect::<Vec<_>>()
                            .join(" → ")
                    ),
                    "give one of the groups another no-answer destination",
                );
                break;
            }
            seen.push(*e);
            match t.ring_groups.iter().find(|x| x.extension == *e) {
                Some(next) => at = &next.no_answer,
                None => break,
            }
        }
    }
}

/// Validates a (sorted) snapshot; `skipped` are parts the renderer refused to write.
pub fn validate(s: &Snapshot, skipped: &[RenderError]) -> Vec<Finding> {
    let tenants: Vec<&Tenant> = s.tenants.iter().collect();
    let mut all = validate_pbx(&tenants, &s.trunks, skipped);
    for t in &s.tenants {
        all.extend(validate_tenant(t, &s.trunks));
    }
    all.sort();
    all.dedup();
    all
}

/// What spans tenants (one number routes to one place, one endpoint id is one device), the
/// trunks, and the refusals the renderer met.
pub fn validate_pbx(
    tenants: &[&Tenant],
    trunks: &[Trunk],
    skipped: &[RenderError],
) -> Vec<Finding> {
    let mut f = Findings(Vec::new());
    for e in skipped {
        f.error(
            "render.refused",
            format!("{} {:?}", e.what, e.value),
            format!("cannot be written safely: {}", e.rule),
            "change the value to fit the rule",
        );
    }
    let trunk_ids: BTreeSet<String> = trunks.iter().map(|k| trunk_endpoint(&k.name)).collect();
    // FxHash: the keys are the workspace's own (an offline render), and SipHash was a tenth
    // of the render of a large PBX.
    let dids: usize = tenants.iter().map(|t| t.dids.len()).sum();
    let users: usize = tenants.iter().map(|t| t.users.len()).sum();
    let mut numbers: HashMap<&str, &str> = HashMap::default();
    numbers.reserve(dids);
    let mut devices: HashMap<&str, (&str, u32)> = HashMap::default();
    devices.reserve(users);
    for t in tenants {
        for d in &t.dids {
            if let Some(other) = numbers.insert(&d.number, &t.slug) {
                f.error(
                    "did.duplicate",
                    format!("tenant {}, DID {}", t.slug, d.number),
                    format!("{} is also a DID of tenant {other}", d.number),
                    "remove one of them: a number routes to one place",
                );
            }
        }
        for u in t.users.iter().filter(|u| t.active && u.active) {
            for d in &u.devices {
                let entity = || {
                    format!(
                        "tenant {}, user {} ({}), device {}",
                        t.slug, u.extension, u.name, d.username
                    )
                };
                if let Some(other) = devices.insert(&d.username, (t.slug.as_str(), u.extension)) {
                    f.error(
                        "device.duplicate",
                        entity(),
                        format!(
                            "endpoint id also used by tenant {}, user {}",
                            other.0, other.1
                        ),
                        "rename one of the devices",
                    );
                }
                if trunk_ids.contains(&d.username) {
                    f.error(
                        "device.trunk_name",
                        entity(),
                        "endpoint id is that of a trunk".into(),
                        "rename the device",
                    );
                }
            }
        }
    }
    for k in trunks {
        let ke = format!("trunk {}", k.name);
        for (field, v) in [
            ("host", Some(&k.host)),
            ("username", k.username.as_ref()),
            ("password", k.password.as_ref()),
            ("from_domain", k.from_domain.as_ref()),
            ("from_user", k.from_user.as_ref()),
        ] {
            if let Some(v) = v {
                let bad = if field == "host" {
                    crate::pbx::uri_host(v).is_none()
                } else {
                    !pjsip_value_ok(v)
                };
                if bad {
                    // Never echo a password.
                    let shown = if field == "password" {
                        String::new()
                    } else {
                        format!(" ({v:?})")
                    };
                    f.error("trunk.value", ke.clone(), format!("{field}{shown} cannot be written to pjsip.conf: no ';', '[', ']', control characters or spaces at the ends"), "correct the value; the trunk file is not written until then");
                }
            }
        }
        if k.register && (k.username.is_none() || k.password.is_none()) {
            f.error(
                "trunk.credentials",
                ke.clone(),
                "registers but has no username and password".into(),
                "set the credentials, or switch it to IP authentication",
            );
        }
        if k.tenants.is_empty() {
            f.warn(
                "trunk.unused",
                ke,
                "no tenant may use it".into(),
                "allow tenants on it, or remove it",
            );
        }
    }
    f.0
}

/// One tenant's findings: independent of the other tenants, so tenants can be checked in
/// parallel.
pub fn validate_tenant(t: &Tenant, trunks: &[Trunk]) -> Vec<Finding> {
    let mut f = Findings(Vec::new());
    let te = |what: String| format!("tenant {}, {what}", t.slug);
    let emergency = emergency_numbers(&t.country);
    let by_ext: HashMap<u32, &User> = t.users.iter().map(|u| (u.extension, u)).collect();
    if !t.active {
        return f.0;
    }
    for d in &t.dids {
        check_destination(
            &mut f,
            t,
            &by_ext,
            || te(format!("DID {}", d.number)),
            &d.destination,
        );
        if let Some(name) = &d.trunk {
            let de = || te(format!("DID {}", d.number));
            match trunks.iter().find(|k| &k.name == name) {
                None => f.error("did.trunk_missing", de(), format!("is delivered by trunk {name:?}, which does not exist"), "create the trunk or clear the DID's trunk"),
                Some(k) if !k.tenants.contains(&t.slug) => f.error("did.trunk_forbidden", de(), format!("is delivered by trunk {name}, which tenant {} may not use", t.slug), "allow the tenant on the trunk"),
                Some(k) if !k.enabled => f.warn("did.trunk_disabled", de(), format!("is delivered by trunk {name}, which is disabled: calls to it will not arrive"), "enable the trunk"),
                Some(_) => {}
            }
        }
    }
    check_destination(
        &mut f,
        t,
        &by_ext,
        || te("unknown-number destination".into()),
        &t.unknown_did,
    );
    check_ring_groups(&mut f, t, &by_ext);
    if let Some(p) = t.default_policy.as_deref() {
        if !t.policies.iter().any(|x| x.name == p) {
            f.error(
                "policy.missing",
                te("default policy".into()),
                format!("names policy {p:?}, which does not exist"),
                "create the policy or choose another default",
            );
        }
    } else {
        f.warn(
            "policy.none",
            te("default policy".into()),
            "none is set: users can call each other and emergency numbers only".into(),
            "set a default outbound policy for the tenant",
        );
    }
    if emergency_trunks(t, trunks).is_empty() {
        f.error(
            "emergency.no_route",
            te("emergency numbers".into()),
            format!(
                "no enabled trunk may be used by this tenant, so {} cannot be called",
                emergency.join(", ")
            ),
            "allow the tenant on an enabled trunk",
        );
    }
    let emergency_exts: Vec<u32> = emergency.iter().filter_map(|e| e.parse().ok()).collect();
    for u in &t.users {
        let ue = || te(format!("user {} ({})", u.extension, u.name));
        if emergency_exts.contains(&u.extension) {
            f.error("user.emergency_extension", ue(), format!("extension {} is an emergency number in {}: dialling it calls the emergency services, never this user", u.extension, t.country), "give the user another extension");
        }
        if !u.active {
            continue;
        }
        if let Some(p) = u.policy.as_deref() {
            if !t.policies.iter().any(|x| x.name == p) {
                f.error(
                    "policy.missing",
                    ue(),
                    format!("follows policy {p:?}, which does not exist"),
                    "create the policy or clear the user's own policy",
                );
            }
        }
        if u.voicemail && !u.voicemail_pin.as_deref().is_some_and(is_pin) {
            f.error(
                "voicemail.pin",
                ue(),
                "has voicemail on but no valid PIN (4 to 10 digits)".into(),
                "set a voicemail PIN",
            );
        }
        if u.voicemail && !u.email.is_empty() && !vm_email_ok(&u.email) {
            f.warn("voicemail.email", ue(), "e-mail contains characters voicemail.conf cannot hold; it is left out of the mailbox".into(), "use a plain address");
        }
        if u.devices.is_empty() {
            f.warn(
                "user.no_device",
                ue(),
                "has no device: calls go straight to voicemail or \"unavailable\"".into(),
                "add a device",
            );
        }
    }
    for p in &t.policies {
        let mut parsed: Vec<(usize, Pattern)> = Vec::new();
        for (i, r) in p.rules.iter().enumerate() {
            let re = te(format!("policy {}, rule {} ({})", p.name, i + 1, r.pattern));
            let pat = match Pattern::parse(&r.pattern) {
                Ok(pat) => pat,
                Err(why) => {
                    f.error(
                        "rule.pattern",
                        re,
                        format!("invalid pattern: {why}"),
                        Pattern::RULE,
                    );
                    continue;
                }
            };
            if let Some((j, _)) = parsed.iter().find(|(_, earlier)| earlier.covers(&pat)) {
                f.warn(
                    "rule.shadowed",
                    re.clone(),
                    format!(
                        "can never match: rule {} ({}) matches every number it does",
                        j + 1,
                        p.rules[*j].pattern
                    ),
                    "move this rule above the broader one, or remove it",
                );
            }
            parsed.push((i, pat));
            if !r.allow {
                continue;
            }
            if r.trunks.is_empty() {
                f.error(
                    "rule.no_trunk",
                    re.clone(),
                    "allows calls but names no trunk".into(),
                    "add at least one trunk to the rule",
                );
            }
            let mut usable = 0;
            for name in &r.trunks {
                match trunks.iter().find(|k| &k.name == name) {
                    None => f.error(
                        "rule.trunk_missing",
                        re.clone(),
                        format!("names trunk {name:?}, which does not exist"),
                        "create the trunk or remove it from the rule",
                    ),
                    Some(k) if !k.tenants.contains(&t.slug) => f.error(
                        "rule.trunk_forbidden",
                        re.clone(),
                        format!("names trunk {name}, which tenant {} may not use", t.slug),
                        "allow the tenant on the trunk or remove it from the rule",
                    ),
                    Some(k) if !k.enabled => f.warn(
                        "rule.trunk_disabled",
                        re.clone(),
                        format!("names trunk {name}, which is disabled and is skipped"),
                        "enable the trunk or remove it from the rule",
                    ),
                    Some(_) => usable += 1,
                }
            }
            if usable == 0 && !r.trunks.is_empty() {
                f.error(
                    "rule.no_usable_trunk",
                    re,
                    "none of its trunks can be used, so its calls fail".into(),
                    "add an enabled trunk the tenant may use",
                );
            }
        }
    }
    f.0
}
