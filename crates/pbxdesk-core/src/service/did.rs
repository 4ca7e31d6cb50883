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
use crate::store::{classify, db_error, DbFailure};
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
        sqlx::query_scalar("SELECT country FROM tenants WHERE id = $1")
            .bind(tenant_id)
            .fetch_one(self.store.pool())
            .await
            .map_err(db_error)
    }

    /// Checks that a destination points at something that exists in the tenant.
    pub(crate) async fn check_destination(
        &self,
        conn: &mut AnyConnection,
        tenant: &TenantKey,
        d: &DidDestination,
    ) -> Result<()> {
        let Some(ext) = d.extension() else {
            return Ok(());
        };
        let live: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE tenant_id = $1 AND extension = $2 AND status <> 'deleted'")
            .bind(tenant.id)
            .bind(i64::from(ext.get()))
            .fetch_one(conn)
            .await
            .map_err(db_error)?;
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
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO dids (pbx_id, tenant_id, number, label, destination, version, created_at, updated_at, trunk) \
             SELECT pbx_id, id, $1, $2, $3, 1, $4, $4, $6 FROM tenants WHERE id = $5 RETURNING id",
        )
        .bind(number.as_str())
        .bind(label.as_str())
        .bind(destination.to_string())
        .bind(now)
        .bind(tenant.id)
        .bind(trunk.as_ref().map(|t| t.as_str().to_owned()))
        .fetch_one(&mut *w.tx)
        .await
        .map_err(|e| match classify(&e) {
            DbFailure::UniqueViolation(_) => Error::Conflict(format!("{number} is already routed on this PBX (a DID is unique on its PBX)")),
            _ => db_error(e),
        })?;
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
        let done = sqlx::query(
            "UPDATE dids SET label = $1, destination = $2, version = version + 1, updated_at = $3, trunk = $6 WHERE id = $4 AND version = $5",
        )
        .bind(label.as_ref().map_or(before.label.clone(), |l| l.to_string()))
        .bind(destination.as_ref().map_or(before.destination.clone(), |d| d.to_string()))
        .bind(now)
        .bind(before.id)
        .bind(before.version)
        .bind(match &trunk {
            Some(t) => t.as_ref().map(ToString::to_string),
            None => before.trunk.clone(),
        })
        .execute(&mut *w.tx)
        .await
        .map_err(db_error)?;
        if done.rows_affected() != 1 {
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
        sqlx::query("DELETE FROM dids WHERE id = $1")
            .bind(did.id)
            .execute(&mut *w.tx)
            .await
            .map_err(db_error)?;
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
