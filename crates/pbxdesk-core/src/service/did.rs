//! Inbound numbers (DIDs): normalized to E.164, unique on their PBX, each with a destination
//! that must exist when it is set (a user's extension must belong to a live user of the tenant).

use super::audit::{record, Change};
use super::tenant::{check_version, TenantKey};
use super::trunk::trunk_usable_by_tenant;
use super::{clearable, Actor, Workspace};
use crate::domain::{DialingPlan, DidDestination, DisplayName, TrunkName, E164};
use crate::error::{Error, Result};
use crate::model::{Did, DidPatch, NewDid};
use crate::store::dids::{self, DidRow};
use sqlx::AnyConnection;

impl Workspace {
    /// A DID's trunk must be a trunk of the tenant's PBX.
    async fn check_did_trunk(
        &self,
        conn: &mut AnyConnection,
        tenant: &TenantKey,
        trunk: &str,
    ) -> Result<()> {
        if !trunk_usable_by_tenant(conn, tenant.id, trunk).await? {
            return Err(crate::error::ValidationError::new(
                "trunk",
                trunk,
                "a trunk of the tenant's PBX that the tenant may use (see `trunk list`; an MSP operator allows it with `trunk update --tenants`)",
            )
            .into());
        }
        Ok(())
    }

    pub(crate) async fn tenant_country(&self, tenant_id: i64) -> Result<String> {
        crate::store::tenants::country(self.store.pool(), tenant_id).await
    }

    /// Checks that a destination points at something that exists in the tenant.
    pub(crate) async fn check_destination(
        &self,
        conn: &mut AnyConnection,
        tenant: &TenantKey,
        d: &DidDestination,
    ) -> Result<()> {
        if let DidDestination::RingGroup(ext) = d {
            let found = crate::store::ring_groups::by_extension(
                &mut *conn,
                tenant.id,
                i64::from(ext.get()),
            )
            .await?;
            if found.is_none() {
                return Err(crate::error::ValidationError::new(
                    "destination",
                    &d.to_string(),
                    format!(
                        "tenant \"{}\" has no ring group with extension {ext}",
                        tenant.slug
                    ),
                )
                .into());
            }
            return Ok(());
        }
        let Some(ext) = d.extension() else {
            return Ok(());
        };
        let live = crate::store::users::live_with_extension(conn, tenant.id, ext.get()).await?;
        if live == 0 {
            return Err(crate::error::ValidationError::new(
                "destination",
                &d.to_string(),
                format!(
                    "tenant \"{}\" has no user with extension {ext}",
                    tenant.slug
                ),
            )
            .into());
        }
        Ok(())
    }

    pub async fn did_add(&self, actor: &Actor, input: &NewDid) -> Result<Did> {
        actor.require_write()?;
        let tenant = self.tenant_key(actor, &input.tenant).await?;
        // A national number is read with the given country, else the tenant's.
        let country = match input
            .country
            .as_deref()
            .map(str::trim)
            .filter(|c| !c.is_empty())
        {
            Some(c) => c.to_owned(),
            None => self.tenant_country(tenant.id).await?,
        };
        let number = E164::normalize(&input.number, DialingPlan::for_country(&country)?)?;
        let label = DisplayName::parse("label", input.label.as_deref().unwrap_or(number.as_str()))?;
        let destination = DidDestination::parse(&input.destination)?;
        let trunk = input
            .trunk
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(TrunkName::parse)
            .transpose()?;
        let now = self.now();
        let mut w = self.store.begin_write().await?;
        self.check_destination(&mut w.tx, &tenant, &destination)
            .await?;
        if let Some(t) = &trunk {
            self.check_did_trunk(&mut w.tx, &tenant, t.as_str()).await?;
        }
        let id = dids::insert(
            &mut *w.tx,
            dids::NewDidRow {
                tenant_id: tenant.id,
                number: number.as_str(),
                label: label.as_str(),
                destination: destination.to_string(),
                trunk: trunk.as_ref().map(|t| t.as_str()),
                now,
            },
        )
        .await?;
        let did = Did {
            id,
            tenant: tenant.slug.clone(),
            number: number.to_string(),
            label: label.to_string(),
            destination: destination.to_string(),
            trunk: trunk.map(|t| t.to_string()),
            version: 1,
        };
        let c = Change {
            action: "did.add",
            entity_type: "did",
            entity_id: did.number.clone(),
            tenant_id: Some(tenant.id),
        };
        record::<Did, Did>(&mut w, actor, now, c, None, Some(&did)).await?;
        w.commit().await?;
        Ok(did)
    }

    pub async fn did_list(&self, actor: &Actor, tenant: &str) -> Result<Vec<Did>> {
        let t = self.tenant_key(actor, tenant).await?;
        Ok(dids::of_tenant(self.store.pool(), t.id)
            .await?
            .into_iter()
            .map(DidRow::into_did)
            .collect())
    }

    /// A DID by its number (any common form is accepted if it is already E.164).
    async fn did_by_number(&self, actor: &Actor, number: &str) -> Result<(Did, TenantKey)> {
        let n = E164::parse(number)?;
        let mut rows = dids::by_number(self.store.pool(), n.as_str()).await?;
        // A tenant_admin sees its own tenants' numbers only: another tenant's is "not found",
        // like one that does not exist (never "tenant globex not found").
        if !actor.sees_all_tenants() {
            rows.retain(|r| actor.tenant_ids().contains(&r.tenant_id));
        }
        match rows.len() {
            0 => Err(Error::not_found("DID", n)),
            1 => {
                let did = rows
                    .into_iter()
                    .next()
                    .ok_or_else(|| Error::not_found("DID", number))?
                    .into_did();
                let tenant = self.tenant_key(actor, &did.tenant).await?;
                Ok((did, tenant))
            }
            _ => Err(Error::Conflict(format!(
                "{n} is routed on several PBXs; remove it through its tenant"
            ))),
        }
    }

    pub async fn did_update(&self, actor: &Actor, number: &str, patch: &DidPatch) -> Result<Did> {
        actor.require_write()?;
        let label = patch
            .label
            .as_deref()
            .map(|l| DisplayName::parse("label", l))
            .transpose()?;
        let destination = patch
            .destination
            .as_deref()
            .map(DidDestination::parse)
            .transpose()?;
        let trunk = clearable(patch.trunk.as_deref(), TrunkName::parse)?;
        let (before, tenant) = self.did_by_number(actor, number).await?;
        check_version(
            "DID",
            &before.number,
            before.version,
            patch.expected_version,
        )?;
        let now = self.now();
        let mut w = self.store.begin_write().await?;
        if let Some(d) = &destination {
            self.check_destination(&mut w.tx, &tenant, d).await?;
        }
        if let Some(Some(t)) = &trunk {
            self.check_did_trunk(&mut w.tx, &tenant, t.as_str()).await?;
        }
        let done = dids::update(
            &mut *w.tx,
            before.id,
            before.version,
            &label
                .as_ref()
                .map_or(before.label.clone(), |l| l.to_string()),
            &destination
                .as_ref()
                .map_or(before.destination.clone(), |d| d.to_string()),
            match &trunk {
                Some(t) => t.as_ref().map(|t| t.as_str()),
                None => before.trunk.as_deref(),
            },
            now,
        )
        .await?;
        if !done {
            return Err(Error::Conflict(format!(
                "DID {} was changed by someone else; reload and try again",
                before.number
            )));
        }
        let after = dids::by_id(&mut *w.tx, before.id)
            .await?
            .ok_or_else(|| Error::not_found("DID", before.id))?
            .into_did();
        let c = Change {
            action: "did.update",
            entity_type: "did",
            entity_id: after.number.clone(),
            tenant_id: Some(tenant.id),
        };
        record(&mut w, actor, now, c, Some(&before), Some(&after)).await?;
        w.commit().await?;
        Ok(after)
    }

    pub async fn did_remove(&self, actor: &Actor, number: &str) -> Result<Did> {
        actor.require_write()?;
        let (did, tenant) = self.did_by_number(actor, number).await?;
        let now = self.now();
        let mut w = self.store.begin_write().await?;
        dids::delete(&mut *w.tx, did.id).await?;
        let c = Change {
            action: "did.remove",
            entity_type: "did",
            entity_id: did.number.clone(),
            tenant_id: Some(tenant.id),
        };
        record::<Did, Did>(&mut w, actor, now, c, Some(&did), None).await?;
        w.commit().await?;
        Ok(did)
    }
}
