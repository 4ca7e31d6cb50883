//! "Where does a call to this number go?", answered from the snapshot with the same rules the
//! renderer writes into the dialplan (pattern matching, rule order, trunk order, emergency
//! first, policy per user).

use crate::pattern::Pattern;
use crate::pbx::{dialable, emergency_trunks, rule_trunks, transform, trunk_endpoint, user_policy};
use crate::snapshot::{emergency_numbers, Destination, Ring, Snapshot, Tenant, User};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum HopKind {
    Did,
    Caller,
    User,
    Devices,
    NoAnswer,
    RingGroup,
    Voicemail,
    Feature,
    Emergency,
    Rule,
    Trunks,
    Denied,
    NotInService,
}

/// One step of a call's path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Hop {
    pub kind: HopKind,
    pub title: String,
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Trace {
    pub number: String,
    pub tenant: Option<String>,
    pub path: Vec<Hop>,
}

fn hop(kind: HopKind, title: impl Into<String>, detail: impl Into<String>) -> Hop {
    Hop {
        kind,
        title: title.into(),
        detail: detail.into(),
    }
}

const AT_CALL_TIME: &str = "DND and call forwarding are read from AstDB when the call arrives (set from the phone or the app, no apply needed)";

fn ring_user(t: &Tenant, u: &User, path: &mut Vec<Hop>) {
    path.push(hop(
        HopKind::User,
        format!("{} {}", u.extension, u.name),
        format!("tenant {}; {AT_CALL_TIME}", t.slug),
    ));
    if !u.active {
        path.push(hop(
            HopKind::NotInService,
            "Not in service",
            "the user is suspended",
        ));
        return;
    }
    let ids: Vec<&str> = u.devices.iter().map(|d| d.username.as_str()).collect();
    if ids.is_empty() {
        path.push(hop(HopKind::Devices, "No device", "nothing rings"));
    } else {
        path.push(hop(
            HopKind::Devices,
            format!(
                "Rings {} device(s) at once for {} s",
                ids.len(),
                u.ring_seconds
            ),
            ids.join(", "),
        ));
    }
    if u.voicemail {
        path.push(hop(HopKind::NoAnswer, "No answer or busy", "voicemail"));
        path.push(hop(
            HopKind::Voicemail,
            format!("Voicemail {}", u.extension),
            format!("box {}@{}_vm", u.extension, t.slug),
        ));
    } else {
        path.push(hop(
            HopKind::NoAnswer,
            "No answer or busy",
            "\"nobody available\" or busy tone (voicemail is off)",
        ));
    }
}

fn outbound(s: &Snapshot, t: &Tenant, policy: Option<&str>, number: &str, path: &mut Vec<Hop>) {
    let Some(p) = policy.and_then(|p| t.policies.iter().find(|x| x.name == p)) else {
        path.push(hop(
            HopKind::NotInService,
            "Not in service",
            "no outbound policy applies, so only internal and emergency numbers can be called",
        ));
        return;
    };
    for (i, r) in p.rules.iter().enumerate() {
        let Ok(pat) = Pattern::parse(&r.pattern) else {
            continue;
        };
        if !pat.matches(number) {
            continue;
        }
        if !r.allow {
            path.push(hop(
                HopKind::Rule,
                format!("Policy {}, rule {}: {}", p.name, i + 1, r.pattern),
                "deny",
            ));
            path.push(hop(
                HopKind::Denied,
                "Denied",
                "the caller hears \"cannot be completed as dialled\"",
            ));
            return;
        }
        let sent = transform(number, r.strip, &r.prepend);
        let kept: String = number.chars().skip(r.strip as usize).collect();
        let dropped = if dialable(&kept) == kept {
            String::new()
        } else {
            "; the dialplan keeps only 0-9 * # + of what was dialled".to_owned()
        };
        path.push(hop(
            HopKind::Rule,
            format!("Policy {}, rule {}: {}", p.name, i + 1, r.pattern),
            format!(
                "allow; strip {}, prepend {:?}{dropped}: sends {sent}",
                r.strip, r.prepend
            ),
        ));
        trunks(
            rule_trunks(t, &r.trunks, &s.trunks)
                .iter()
                .map(|k| k.name.as_str()),
            &sent,
            path,
        );
        return;
    }
    path.push(hop(
        HopKind::NotInService,
        "Not in service",
        format!("no rule of policy {} matches {number}", p.name),
    ));
}

fn trunks<'a>(names: impl Iterator<Item = &'a str>, sent: &str, path: &mut Vec<Hop>) {
    let names: Vec<String> = names
        .map(|n| format!("{n} ({})", trunk_endpoint(n)))
        .collect();
    if names.is_empty() {
        path.push(hop(
            HopKind::Denied,
            "No usable trunk",
            "the caller hears \"all circuits are busy\"",
        ));
    } else {
        path.push(hop(
            HopKind::Trunks,
            format!("Dials {sent} through {} trunk(s), in order", names.len()),
            names.join(" → "),
        ));
    }
}

/// A ring group: who rings, how and how long, then where the call goes (following further
/// groups; a loop, which validation refuses, is cut where it closes).
fn ring_group(s: &Snapshot, t: &Tenant, ext: u32, path: &mut Vec<Hop>, seen: &mut Vec<u32>) {
    let Some(g) = t.ring_groups.iter().find(|g| g.extension == ext) else {
        path.push(hop(
            HopKind::NotInService,
            "Not in service",
            format!("no ring group has extension {ext} (a validation error)"),
        ));
        return;
    };
    if seen.contains(&ext) {
        path.push(hop(
            HopKind::NotInService,
            "Loop",
            format!("ring group {ext} leads back to itself (a validation error)"),
        ));
        return;
    }
    seen.push(ext);
    let ringing: Vec<&User> = g
        .members
        .iter()
        .filter_map(|m| t.users.iter().find(|u| u.extension == *m))
        .filter(|u| u.active && !u.devices.is_empty())
        .collect();
    let how = match g.ring {
        Ring::All => format!("all at once, {} s", g.total_seconds),
        Ring::InOrder => format!(
            "one after another in this order, {} s each, {} s in all",
            g.member_seconds, g.total_seconds
        ),
        Ring::RoundRobin => format!(
            "one after another, each call starting one further, {} s each, {} s in all",
            g.member_seconds, g.total_seconds
        ),
    };
    path.push(hop(
        HopKind::RingGroup,
        format!("Ring group {} ({})", g.name, g.extension),
        format!(
            "rings {} member(s) {how}; members on DND are skipped (read when the call arrives)",
            ringing.len()
        ),
    ));
    let phones: usize = ringing.iter().map(|u| u.devices.len()).sum();
    path.push(hop(
        HopKind::Devices,
        if ringing.is_empty() {
            "Nobody to ring".to_owned()
        } else {
            format!("Rings {phones} phone(s) of {} member(s)", ringing.len())
        },
        ringing
            .iter()
            .map(|u| format!("{} {}", u.extension, u.name))
            .collect::<Vec<_>>()
            .join(if g.ring == Ring::All { ", " } else { " → " }),
    ));
    path.push(hop(
        HopKind::NoAnswer,
        "Nobody answers",
        format!("after {} s: {}", g.total_seconds, g.no_answer),
    ));
    destination_in(s, t, &g.no_answer, path, seen);
}

fn destination(s: &Snapshot, t: &Tenant, d: &Destination, path: &mut Vec<Hop>) {
    destination_in(s, t, d, path, &mut Vec::new());
}

fn destination_in(
    s: &Snapshot,
    t: &Tenant,
    d: &Destination,
    path: &mut Vec<Hop>,
    seen: &mut Vec<u32>,
) {
    match d {
        Destination::RingGroup(e) => ring_group(s, t, *e, path, seen),
        Destination::User(e) | Destination::Voicemail(e) => {
            let Some(u) = t.users.iter().find(|u| u.extension == *e) else {
                path.push(hop(
                    HopKind::NotInService,
                    "Not in service",
                    format!("no user has extension {e} (a validation error)"),
                ));
                return;
            };
            if matches!(d, Destination::User(_)) {
                ring_user(t, u, path);
            } else {
                path.push(hop(
                    HopKind::Voicemail,
                    format!("Voicemail {}", u.extension),
                    format!("box {}@{}_vm of {}", u.extension, t.slug, u.name),
                ));
            }
        }
        Destination::External(n) => outbound(s, t, t.default_policy.as_deref(), n, path),
        Destination::Hangup => path.push(hop(
            HopKind::NotInService,
            "Not in service",
            "answered with \"the number you have dialled is not in service\"",
        )),
    }
}

/// An inbound call to `number` (E.164, with or without '+').
pub fn trace_inbound(s: &Snapshot, number: &str) -> Trace {
    let e164 = if number.starts_with('+') {
        number.to_owned()
    } else {
        format!("+{number}")
    };
    let mut path = Vec::new();
    for t in &s.tenants {
        if let Some(d) = t.dids.iter().find(|d| d.number == e164) {
            path.push(hop(
                HopKind::Did,
                if d.label == d.number {
                    format!("DID {}", d.number)
                } else {
                    format!("DID {} ({})", d.number, d.label)
                },
                match &d.trunk {
                    Some(k) => format!("tenant {} ({}), delivered by trunk {k}", t.slug, t.name),
                    None => format!("tenant {} ({})", t.slug, t.name),
                },
            ));
            if !t.active {
                path.push(hop(
                    HopKind::NotInService,
                    "Not in service",
                    "the tenant is suspended",
                ));
            } else {
                destination(s, t, &d.destination, &mut path);
            }
            return Trace {
                number: e164,
                tenant: Some(t.slug.clone()),
                path,
            };
        }
    }
    path.push(hop(
        HopKind::Did,
        format!("{e164} is not a DID on this PBX"),
        "logged as an unknown number",
    ));
    let single: Vec<(&str, &Tenant)> = s
        .trunks
        .iter()
        .filter_map(|k| match k.tenants.as_slice() {
            [one] => s
                .tenants
                .iter()
                .find(|t| &t.slug == one)
                .map(|t| (k.name.as_str(), t)),
            _ => None,
        })
        .collect();
    if let [(trunk, t)] = single.as_slice() {
        path.push(hop(
            HopKind::Caller,
            format!("Arriving on trunk {trunk}"),
            format!("goes to tenant {}'s unknown-number destination", t.slug),
        ));
        if t.active {
            destination(s, t, &t.unknown_did, &mut path);
        } else {
            path.push(hop(
                HopKind::NotInService,
                "Not in service",
                "the tenant is suspended",
            ));
        }
        return Trace {
            number: e164,
            tenant: Some(t.slug.clone()),
            path,
        };
    }
    path.push(hop(HopKind::NotInService, "Not in service", "a trunk that serves one tenant sends it to that tenant's unknown-number destination; any other answers \"not in service\""));
    Trace {
        number: e164,
        tenant: None,
        path,
    }
}

/// A call dialled by extension `from` of tenant `tenant`.
pub fn trace_from(s: &Snapshot, tenant: &str, from: u32, number: &str) -> Option<Trace> {
    let t = s.tenants.iter().find(|t| t.slug == tenant)?;
    let caller = t.users.iter().find(|u| u.extension == from)?;
    let policy = user_policy(t, caller);
    let mut path = vec![hop(
        HopKind::Caller,
        format!("{} {} dials {number}", caller.extension, caller.name),
        format!(
            "tenant {}, class of service {}",
            t.slug,
            policy.unwrap_or("(none)")
        ),
    )];
    let done = |path| {
        Some(Trace {
            number: number.to_owned(),
            tenant: Some(t.slug.clone()),
            path,
        })
    };
    if !t.active || !caller.active {
        path.push(hop(
            HopKind::NotInService,
            "Cannot call",
            "the caller's devices are not provisioned (suspended)",
        ));
        return done(path);
    }
    if emergency_numbers(&t.country).contains(&number) {
        path.push(hop(
            HopKind::Emergency,
            format!("Emergency number {number} ({})", t.country),
            "always allowed, whatever the policy says",
        ));
        trunks(
            emergency_trunks(t, &s.trunks)
                .iter()
                .map(|k| k.name.as_str()),
            number,
            &mut path,
        );
        return done(path);
    }
    // An extension is matched exactly: "100", never "+100" or "100,x".
    if let Some(u) = Some(number)
        .filter(|n| n.bytes().all(|b| b.is_ascii_digit()) && !n.starts_with('0'))
        .and_then(|n| n.parse::<u32>().ok())
        .and_then(|e| t.users.iter().find(|u| u.extension == e))
    {
        ring_user(t, u, &mut path);
        return done(path);
    }
    for (code, what) in [
        ("*78", "DND on"),
        ("*79", "DND off"),
        ("_*72X.", "forward always on"),
        ("*73", "forward always off"),
        ("_*90X.", "forward on busy on"),
        ("*91", "forward on busy off"),
        ("_*92X.", "forward on no answer on"),
        ("*93", "forward on no answer off"),
        ("*97", "own voicemail"),
        ("*98", "any voicemail box"),
    ] {
        if Pattern::parse(code).is_ok_and(|p| p.matches(number)) {
            // Forward targets are kept to dialable characters, as the dialplan's FILTER does.
            let detail = if code.ends_with("X.") {
                format!(
                    "{what} to {}",
                    dialable(&number.chars().skip(3).collect::<String>())
                )
            } else {
                what.to_owned()
            };
            path.push(hop(
                HopKind::Feature,
                format!("Feature code {code}"),
                detail,
            ));
            return done(path);
        }
    }
    outbound(s, t, policy, number, &mut path);
    done(path)
}
