use super::audit::{record, Change};
use super::{clearable, retry_busy, Actor, Workspace};
use crate::domain::{
    DialingPlan, DidDestination, DisplayName, ExtRange, Extension, Slug, TenantStatus, E164,
};
use crate::error::{Error, Result};
use crate::model::{NewTenant, Tenant, TenantPatch};
use crate::store::tenants::{self, TenantKeyRow, TenantRow};
use crate::store::WriteTx;

/// A validated tenant update.
struct TenantChange {
    name: Option<DisplayName>,
    range: Option<ExtRange>,
    country: Option<&'static DialingPlan>,
    unknown_did: Option<DidDestination>,
    caller_id: Option<Option<E164>>,
    default_policy: Option<Option<String>>,
}

impl Tenant {
    pub(crate) fn range(&self) -> Result<ExtRange> {
        ExtRange::parse(&self.ext_range)
            .map_err(|_| Error::Store("tenant range on record is damaged".into()))
    }
}

/// What the services need to act within a tenant, read without counting its users.
#[derive(Debug, Clone)]
pub(crate) struct TenantKey {
    pub id: i64,
    pub slug: String,
    pub range: ExtRange,
    pub status: TenantStatus,
    /// ISO country: its emergency numbers are never given to a user.
    pub country: String,
}

impl Workspace {
    pub async fn tenant_create(&self, actor: &Actor, input: &NewTenant) -> Result<Tenant> {
        actor.require_write()?;
        actor.require_msp_write()?;
        let name = DisplayName::parse("name", &input.name)?;
        let slug = match input
            .slug
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            Some(s) => Slug::parse(s)?,
            None => Slug::from_name(name.as_str())?,
        };
        let range = ExtRange::parse(&input.ext_range)?;
        let country = DialingPlan::for_country(input.country.as_deref().unwrap_or("CH"))?;
        let pbx = self.pbx_by_name(&input.pbx).await?;
        let now = self.now();
        let mut w = self.store.begin_write().await?;
        let id = tenants::insert(
            &mut *w.tx,
            tenants::NewTenantRow {
                pbx_id: pbx.id,
                name: name.as_str(),
                slug: slug.as_str(),
                ext_first: i64::from(range.first().get()),
                ext_last: i64::from(range.last().get()),
                country: country.country,
                now,
            },
        )
        .await?;
        let tenant = self.tenant_in_tx(&mut w, id).await?;
        let change = Change {
            action: "tenant.create",
            entity_type: "tenant",
            entity_id: slug.to_string(),
            tenant_id: Some(id),
        };
        record::<Tenant, Tenant>(&mut w, actor, now, change, None, Some(&tenant)).await?;
        w.commit().await?;
        Ok(tenant)
    }

    pub async fn tenant_list(&self, actor: &Actor) -> Result<Vec<Tenant>> {
        tenants::all(self.store.pool())
            .await?
            .into_iter()
            .filter(|r| actor.sees_all_tenants() || actor.tenant_ids().contains(&r.id))
            .map(TenantRow::into_tenant)
            .collect()
    }

    pub async fn tenant_show(&self, actor: &Actor, slug: &str) -> Result<Tenant> {
        self.tenant_by_slug(actor, slug).await
    }

    /// Resolves a slug and checks the actor may access that tenant.
    pub(crate) async fn tenant_by_slug(&self, actor: &Actor, slug: &str) -> Result<Tenant> {
        let row = tenants::by_slug(self.store.pool(), slug.trim()).await?;
        let tenant = row
            .ok_or_else(|| Error::not_found("tenant", slug))?
            .into_tenant()?;
        actor.require_tenant(tenant.id, Error::not_found("tenant", slug))?;
        Ok(tenant)
    }

    /// The light lookup behind every user and device call: one indexed read, access checked.
    pub(crate) async fn tenant_key(&self, actor: &Actor, slug: &str) -> Result<TenantKey> {
        let TenantKeyRow {
            id,
            slug,
            ext_first: first,
            ext_last: last,
            status,
            country,
        } = tenants::key_by_slug(self.store.pool(), slug.trim())
            .await?
            .ok_or_else(|| Error::not_found("tenant", slug))?;
        actor.require_tenant(id, Error::not_found("tenant", &slug))?;
        let damaged = || Error::Store("tenant on record is damaged".into());
        let range = Extension::from_number(first)
            .and_then(|f| Extension::from_number(last).and_then(|l| ExtRange::new(f, l)))
            .map_err(|_| damaged())?;
        let status = TenantStatus::parse(&status).map_err(|_| damaged())?;
        Ok(TenantKey {
            id,
            slug,
            range,
            status,
            country,
        })
    }

    pub(crate) async fn tenant_in_tx(&self, w: &mut WriteTx<'_>, id: i64) -> Result<Tenant> {
        tenants::by_id(&mut *w.tx, id)
            .await?
            .ok_or_else(|| Error::not_found("tenant", id))?
            .into_tenant()
    }

    pub async fn tenant_update(
        &self,
        actor: &Actor,
        slug: &str,
        patch: &TenantPatch,
    ) -> Result<Tenant> {
        actor.require_write()?;
        actor.require_msp_write()?;
        let name = patch
            .name
            .as_deref()
            .map(|n| DisplayName::parse("name", n))
            .transpose()?;
        let range = patch
            .ext_range
            .as_deref()
            .map(ExtRange::parse)
            .transpose()?;
        let change = TenantChange {
            name,
            range,
            country: patch
                .country
                .as_deref()
                .map(DialingPlan::for_country)
                .transpose()?,
            unknown_did: patch
                .unknown_did
                .as_deref()
                .map(DidDestination::parse)
                .transpose()?,
            caller_id: clearable(patch.caller_id.as_deref(), |c| {
                E164::parse(c).map_err(|e| e.for_field("caller_id"))
            })?,
            default_policy: clearable(patch.default_policy.as_deref(), |p| {
                crate::domain::PolicyName::parse(p).map(|n| n.to_string())
            })?,
        };
        retry_busy(|| self.try_tenant_update(actor, slug, &change, patch.expected_version)).await
    }

    async fn try_tenant_update(
        &self,
        actor: &Actor,
        slug: &str,
        change: &TenantChange,
        expected_version: Option<i64>,
    ) -> Result<Tenant> {
        let (name, range) = (change.name.as_ref(), change.range);
        let current = self.tenant_by_slug(actor, slug).await?;
        // Read before the transaction: a pool query while it holds its connection would wait
        // for a second one (and for itself, were the pool one connection).
        let key = match &change.unknown_did {
            Some(_) => Some(self.tenant_key(actor, &current.slug).await?),
            None => None,
        };
        let now = self.now();
        let mut w = self.store.begin_write().await?;
        let before = self.tenant_in_tx(&mut w, current.id).await?;
        check_version("tenant", &before.slug, before.version, expected_version)?;
        if let (Some(d), Some(key)) = (&change.unknown_did, &key) {
            self.check_destination(&mut w.tx, key, d).await?;
        }
        if let Some(Some(p)) = &change.default_policy {
            let known = tenants::has_policy(&mut *w.tx, before.id, p).await?;
            if !known {
                return Err(crate::error::ValidationError::new(
                    "default_policy",
                    p,
                    format!(
                        "tenant \"{}\" has no policy named so; create it first",
                        before.slug
                    ),
                )
                .into());
            }
        }
        if let Some(range) = range {
            // Shrinking the range must not strand live users or ring groups outside it.
            let outside = tenants::extensions_outside(
                &mut *w.tx,
                before.id,
                i64::from(range.first().get()),
                i64::from(range.last().get()),
            )
            .await?;
            if outside > 0 {
                return Err(Error::Conflict(format!(
                    "{outside} user(s) or ring group(s) of tenant \"{}\" have extensions outside {range}; move them first",
                    before.slug
                )));
            }
        }
        let range = range.unwrap_or(before.range()?);
        let country = change
            .country
            .map_or(before.country.clone(), |c| c.country.to_owned());
        let unknown_did = change
            .unknown_did
            .as_ref()
            .map_or(before.unknown_did.clone(), ToString::to_string);
        let caller_id = match &change.caller_id {
            Some(c) => c.as_ref().map(|c| c.as_str().to_owned()),
            None => before.caller_id.clone(),
        };
        let default_policy = match &change.default_policy {
            Some(p) => p.clone(),
            None => before.default_policy.clone(),
        };
        tenants::update(
            &mut *w.tx,
            tenants::TenantUpdate {
                id: before.id,
                name: name.map_or(before.name.as_str(), |n| n.as_str()),
                ext_first: i64::from(range.first().get()),
                ext_last: i64::from(range.last().get()),
                country: &country,
                unknown_did: &unknown_did,
                caller_id: caller_id.as_deref(),
                default_policy: default_policy.as_deref(),
                now,
            },
        )
        .await?;
        let after = self.tenant_in_tx(&mut w, before.id).await?;
        let change = Change {
            action: "tenant.update",
            entity_type: "tenant",
            entity_id: after.slug.clone(),
            tenant_id: Some(after.id),
        };
        record(&mut w, actor, now, change, Some(&before), Some(&after)).await?;
        w.commit().await?;
        Ok(after)
    }

    /// Suspends (or, with `suspended = false`, resumes) a tenant.
    pub async fn tenant_set_status(
        &self,
        actor: &Actor,
        slug: &str,
        status: TenantStatus,
    ) -> Result<Tenant> {
        actor.require_write()?;
        actor.require_msp_write()?;
        let current = self.tenant_by_slug(actor, slug).await?;
        let now = self.now();
        let mut w = self.store.begin_write().await?;
        let before = self.tenant_in_tx(&mut w, current.id).await?;
        tenants::set_status(&mut *w.tx, before.id, status.as_str(), now).await?;
        let after = self.tenant_in_tx(&mut w, before.id).await?;
        let action = match status {
            TenantStatus::Suspended => "tenant.suspend",
            TenantStatus::Active => "tenant.resume",
        };
        let change = Change {
            action,
            entity_type: "tenant",
            entity_id: after.slug.clone(),
            tenant_id: Some(after.id),
        };
        record(&mut w, actor, now, change, Some(&before), Some(&after)).await?;
        w.commit().await?;
        Ok(after)
    }
}

pub(crate) fn check_version(
    entity: &str,
    key: &str,
    actual: i64,
    expected: Option<i64>,
) -> Result<()> {
    match expected {
        Some(v) if v != actual => Err(Error::Conflict(format!(
            "{entity} \"{key}\" was changed by someone else since you opened it (version {v}, now {actual}); reload and try again"
        ))),
        _ => Ok(()),
    }
}
