//! A small demo workspace, so the app has something to show on first start.

use crate::domain::UserRole;
use crate::error::Result;
use crate::model::{NewDid, NewPbx, NewPolicy, NewTenant, NewTrunk, NewUser, TenantPatch};
use crate::service::parse_rule;
use crate::{Actor, Workspace};

const PEOPLE: &[(&str, &str)] = &[
    ("Ada Lovelace", "ada"),
    ("Grace Hopper", "grace"),
    ("Zoë O'Brien", "zoe"),
    ("José Álvarez", "jose"),
    ("Ingrid Bergström", "ingrid"),
    ("Kenji Watanabe", "kenji"),
    ("Amara Okafor", "amara"),
    ("Liam Dubois", "liam"),
];

/// Fills an empty workspace with one PBX, two tenants and a few users each. Does nothing
/// when the workspace already has a PBX.
pub async fn seed(ws: &Workspace, actor: &Actor) -> Result<bool> {
    if !ws.pbx_list(actor).await?.is_empty() {
        return Ok(false);
    }
    ws.pbx_add(actor, &NewPbx::at("demo-pbx", "pbx.example.net"))
        .await?;
    for (tenant, slug, range, domain, country) in [
        (
            "Acme Dental",
            "acme-dental",
            "100-199",
            "acme-dental.example",
            "CH",
        ),
        (
            "Globex Logistics",
            "globex",
            "1000-1999",
            "globex.example",
            "DE",
        ),
    ] {
        ws.tenant_create(
            actor,
            &NewTenant {
                name: tenant.into(),
                slug: Some(slug.into()),
                pbx: "demo-pbx".into(),
                ext_range: range.into(),
                country: Some(country.into()),
            },
        )
        .await?;
        for (i, (name, local)) in PEOPLE.iter().enumerate() {
            ws.user_create(
                actor,
                &NewUser {
                    tenant: slug.into(),
                    name: (*name).into(),
                    email: format!("{local}@{domain}"),
                    role: Some(if i == 0 {
                        UserRole::Admin
                    } else {
                        UserRole::Member
                    }),
                    ..NewUser::default()
                },
            )
            .await?;
        }
    }
    // Routing: one provider trunk per tenant, a default policy, a few numbers.
    for (slug, trunk, host, cc, dids, caller_id) in [
        (
            "acme-dental",
            "swisscom",
            "sip.swisscom.example",
            "+41",
            [
                ("+41445551000", "user:100"),
                ("+41445551001", "voicemail:101"),
            ],
            "+41445551000",
        ),
        (
            "globex",
            "telekom",
            "sip.telekom.example",
            "+49",
            [
                ("+4930123451000", "user:1000"),
                ("+4930123451099", "hangup"),
            ],
            "+4930123451000",
        ),
    ] {
        ws.trunk_add(
            actor,
            &NewTrunk {
                pbx: "demo-pbx".into(),
                name: trunk.into(),
                host: host.into(),
                register: true,
                username: Some(format!("{slug}-main")),
                password: Some(format!("demo-{trunk}-Trunk-1")),
                tenants: vec![slug.into()],
                ..NewTrunk::default()
            },
        )
        .await?;
        let rules = [
            "_0900X. deny".to_owned(),
            format!("_0[1-9]X. allow strip=1 prepend={cc} trunks={trunk}"),
            format!("_00X. allow strip=2 prepend=+ trunks={trunk}"),
            format!("_+X. allow trunks={trunk}"),
        ];
        ws.policy_add(
            actor,
            &NewPolicy {
                tenant: slug.into(),
                name: "default".into(),
                rules: rules
                    .iter()
                    .map(|r| parse_rule(r))
                    .collect::<Result<_, _>>()?,
                make_default: true,
            },
        )
        .await?;
        // The front desk: the first two people at once, then the first one's voicemail (an
        // extension at the top of the range, so the next user still gets the lowest number).
        let (desk, members) = if slug == "globex" {
            (1990, vec![1000, 1001])
        } else {
            (190, vec![100, 101])
        };
        ws.ring_group_create(
            actor,
            &crate::model::NewRingGroup {
                tenant: slug.into(),
                name: "Front desk".into(),
                extension: Some(desk),
                members: members.clone(),
                no_answer: Some(format!("voicemail:{}", members[0])),
                ..crate::model::NewRingGroup::default()
            },
        )
        .await?;
        for (number, destination) in dids {
            ws.did_add(
                actor,
                &NewDid {
                    tenant: slug.into(),
                    number: number.into(),
                    destination: destination.into(),
                    trunk: Some(trunk.into()),
                    ..NewDid::default()
                },
            )
            .await?;
        }
        let first = if slug == "globex" {
            "user:1000"
        } else {
            "user:100"
        };
        ws.tenant_update(
            actor,
            slug,
            &TenantPatch {
                caller_id: Some(caller_id.into()),
                unknown_did: Some(first.into()),
                ..TenantPatch::default()
            },
        )
        .await?;
    }
    Ok(true)
}
