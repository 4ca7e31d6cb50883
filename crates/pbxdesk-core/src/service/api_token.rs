//! API tokens for automation: a PSA or an RMM onboarding an employee calls the API with a token
//! an msp_admin made for it, with a name (what the audit calls it: `token:NAME`), a role and,
//! for a tenant_admin token, the one tenant it acts on. The token is shown once; the store
//! keeps its SHA-256. Listed with its last use (to the minute: a request does not write the
//! workspace each time), revoked at once, never deleted.
//!
//! A token cannot be an msp_admin: a leaked automation token must not mint more tokens or
//! manage operators.

use super::audit::{record, Change};
use super::{Actor, Workspace};
use crate::domain::{LoginName, Role};
use crate::error::{Error, Result, ValidationError};
use crate::model::{ApiToken, CreatedApiToken, NewApiToken};
use crate::secret::{api_token_hash, generate_automation_token};
use crate::store::api_tokens::{self, NewToken, TokenRow};
use secrecy::ExposeSecret;

/// A token's last use is written again only when it is older than this.
pub const LAST_USE_RESOLUTION_MS: i64 = 60 * 1000;
/// The longest a token may be made for.
pub const MAX_TOKEN_DAYS: u32 = 3650;

/// A token as the model shows it (never its secret).
fn model(r: TokenRow) -> Result<ApiToken> {
    Ok(ApiToken {
        id: r.id,
        name: r.name,
        role: Role::parse(&r.role)
            .map_err(|_| Error::Store("token role on record is unknown".into()))?,
        tenant: r.tenant,
        created_by: r.created_by,
        created_at: r.created_at,
        expires_at: r.expires_at,
        last_used_at: r.last_used_at,
        last_used_via: r.last_used_via,
        revoked_at: r.revoked_at,
    })
}

impl Workspace {
    /// Makes an API token (msp_admin). Its secret is in the answer, once.
    pub async fn api_token_create(
        &self,
        actor: &Actor,
        input: &NewApiToken,
    ) -> Result<CreatedApiToken> {
        actor.require_admin()?;
        let name = LoginName::parse("name", input.name.trim())?;
        let role = Role::parse(&input.role)?;
        let tenant = match (role, input.tenant.as_deref().map(str::trim)) {
            (Role::MspAdmin, _) => {
                return Err(Error::Validation(ValidationError::new(
                    "role",
                    role.as_str(),
                    "a token is a technician, tenant_admin or auditor: an msp_admin token could make more tokens",
                )))
            }
            (Role::TenantAdmin, Some(slug)) if !slug.is_empty() => {
                Some(self.tenant_by_slug(actor, slug).await?)
            }
            (Role::TenantAdmin, _) => {
                return Err(Error::Validation(ValidationError::new(
                    "tenant",
                    "",
                    "a tenant_admin token acts on one tenant: give its slug",
                )))
            }
            (_, Some(slug)) if !slug.is_empty() => {
                return Err(Error::Validation(ValidationError::new(
                    "tenant",
                    slug,
                    "only a tenant_admin token is limited to a tenant",
                )))
            }
            _ => None,
        };
        let tenant_id = tenant.as_ref().map(|t| t.id);
        let expires_at = match input.expires_in_days {
            None => None,
            Some(d) if (1..=MAX_TOKEN_DAYS).contains(&d) => {
                Some(self.now() + i64::from(d) * 24 * 3600 * 1000)
            }
            Some(d) => {
                return Err(Error::Validation(ValidationError::new(
                    "expires_in_days",
                    &d.to_string(),
                    format!("1 to {MAX_TOKEN_DAYS} days, or none for a token that does not expire"),
                )))
            }
        };
        let secret = generate_automation_token();
        let now = self.now();
        let mut w = self.store.begin_write().await?;
        let id = api_tokens::insert(
            &mut *w.tx,
            NewToken {
                name: name.as_str(),
                token_hash: &api_token_hash(secret.expose_secret()),
                role: role.as_str(),
                tenant_id,
                created_by: actor.name(),
                created_at: now,
                expires_at,
            },
        )
        .await?;
        let token = ApiToken {
            id,
            name: name.as_str().to_owned(),
            role,
            tenant: tenant.map(|t| t.slug),
            created_by: actor.name().to_owned(),
            created_at: now,
            expires_at,
            last_used_at: None,
            last_used_via: None,
            revoked_at: None,
        };
        let change = Change {
            action: "api_token.create",
            entity_type: "api_token",
            entity_id: token.name.clone(),
            tenant_id,
        };
        record::<ApiToken, ApiToken>(&mut w, actor, now, change, None, Some(&token)).await?;
        w.commit().await?;
        Ok(CreatedApiToken {
            token,
            secret: secret.expose_secret().to_owned(),
        })
    }

    /// Every token made, revoked ones too, newest first (msp_admin, auditor). No secret.
    pub async fn api_token_list(&self, actor: &Actor) -> Result<Vec<ApiToken>> {
        if !matches!(actor.role(), Role::MspAdmin | Role::Auditor) {
            return Err(Error::Forbidden(format!(
                "operator \"{}\" may not list API tokens",
                actor.name()
            )));
        }
        api_tokens::list(self.store.pool())
            .await?
            .into_iter()
            .map(model)
            .collect()
    }

    /// Revokes the live token of that name (msp_admin): refused from its next request on.
    pub async fn api_token_revoke(&self, actor: &Actor, name: &str) -> Result<ApiToken> {
        actor.require_admin()?;
        let now = self.now();
        let mut w = self.store.begin_write().await?;
        let row = api_tokens::live_by_name(&mut *w.tx, name).await?;
        let Some(row) = row else {
            return Err(Error::not_found("API token", name));
        };
        api_tokens::revoke(&mut *w.tx, row.id, now).await?;
        let tenant_id = row.tenant_id;
        let before = model(row)?;
        let after = ApiToken {
            revoked_at: Some(now),
            ..before.clone()
        };
        let change = Change {
            action: "api_token.revoke",
            entity_type: "api_token",
            entity_id: before.name.clone(),
            tenant_id,
        };
        record(&mut w, actor, now, change, Some(&before), Some(&after)).await?;
        w.commit().await?;
        Ok(after)
    }

    /// The actor an automation token stands for, its last use noted (`via`: where from).
    pub(crate) async fn api_token_actor(&self, token: &str, via: &str) -> Result<Actor> {
        let now = self.now();
        let row = api_tokens::usable(self.store.pool(), &api_token_hash(token), now).await?;
        let Some(row) = row else {
            return Err(Error::Unauthenticated(
                "the API token is unknown, revoked or expired".into(),
            ));
        };
        if row
            .last_used_at
            .is_none_or(|t| now - t >= LAST_USE_RESOLUTION_MS)
        {
            let mut w = self.store.begin_write().await?;
            api_tokens::note_use(&mut *w.tx, row.id, now, via).await?;
            w.commit().await?;
        }
        let role = Role::parse(&row.role)
            .map_err(|_| Error::Store("token role on record is unknown".into()))?;
        Ok(Actor::token(&row.name, role, row.tenant_id.into_iter().collect()).from_source(via))
    }
}
