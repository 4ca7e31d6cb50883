use super::audit::{record, Change};
use super::{Actor, Workspace};
use crate::domain::{LoginName, Role};
use crate::error::{Error, Result};
use crate::model::Operator;
use crate::secret::hash_password;
use crate::store::operators;
use secrecy::SecretString;

impl Workspace {
    /// Adds an operator. On a workspace with no operator yet, the first one may be added
    /// without an actor and must be an msp_admin (bootstrap of a team workspace).
    pub async fn operator_add(
        &self,
        actor: Option<&Actor>,
        username: &str,
        role: Role,
        tenant_slugs: &[String],
        password: &SecretString,
    ) -> Result<Operator> {
        let username = LoginName::parse("username", username.trim())?;
        let hash = hash_password(password)?;
        let existing = operators::count(self.store.pool()).await?;
        let bootstrap;
        let actor = match actor {
            Some(a) => {
                a.require_admin()?;
                a.clone()
            }
            None if existing == 0 && role == Role::MspAdmin => {
                bootstrap = Actor::bootstrap();
                bootstrap
            }
            None => {
                return Err(Error::Unauthenticated(
                    "only an msp_admin may add operators (the first operator of a workspace must be an msp_admin)".into(),
                ))
            }
        };
        if role != Role::TenantAdmin && !tenant_slugs.is_empty() {
            return Err(Error::Validation(crate::error::ValidationError::new(
                "tenant",
                &tenant_slugs.join(","),
                "only a tenant_admin is limited to tenants",
            )));
        }
        let mut tenant_ids = Vec::new();
        for slug in tenant_slugs {
            tenant_ids.push(self.tenant_by_slug(&actor, slug).await?.id);
        }
        let now = self.now();
        let mut w = self.store.begin_write().await?;
        let id = operators::insert(
            &mut w.tx,
            username.as_str(),
            &hash,
            role.as_str(),
            &tenant_ids,
            now,
        )
        .await?;
        let op = Operator {
            id,
            username: username.as_str().to_owned(),
            role,
            tenants: tenant_slugs.to_vec(),
            disabled: false,
        };
        let change = Change {
            action: "operator.add",
            entity_type: "operator",
            entity_id: op.username.clone(),
            tenant_id: None,
        };
        record::<Operator, Operator>(&mut w, &actor, now, change, None, Some(&op)).await?;
        w.commit().await?;
        Ok(op)
    }

    pub async fn operator_list(&self, actor: &Actor) -> Result<Vec<Operator>> {
        if !matches!(actor.role(), Role::MspAdmin | Role::Auditor) {
            return Err(Error::Forbidden(format!(
                "operator \"{}\" may not list operators",
                actor.name()
            )));
        }
        let mut tenants: std::collections::HashMap<i64, Vec<String>> =
            std::collections::HashMap::new();
        for (id, slug) in operators::tenant_slugs(self.store.pool()).await? {
            tenants.entry(id).or_default().push(slug);
        }
        let mut out = Vec::new();
        for r in operators::list(self.store.pool()).await? {
            let role = Role::parse(&r.role)
                .map_err(|_| Error::Store("operator role on record is unknown".into()))?;
            out.push(Operator {
                id: r.id,
                username: r.username,
                role,
                tenants: tenants.remove(&r.id).unwrap_or_default(),
                disabled: r.disabled != 0,
            });
        }
        Ok(out)
    }
}
