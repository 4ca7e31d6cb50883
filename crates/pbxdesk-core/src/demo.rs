//! A small demo workspace, so the app has something to show on first start.

use crate::domain::UserRole;
use crate::error::Result;
use crate::model::{NewPbx, NewTenant, NewUser};
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
    for (tenant, slug, range, domain) in [
        (
            "Acme Dental",
            "acme-dental",
            "100-199",
            "acme-dental.example",
        ),
        ("Globex Logistics", "globex", "1000-1999", "globex.example"),
    ] {
        ws.tenant_create(
            actor,
            &NewTenant {
                name: tenant.into(),
                slug: Some(slug.into()),
                pbx: "demo-pbx".into(),
                ext_range: range.into(),
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
    Ok(true)
}
