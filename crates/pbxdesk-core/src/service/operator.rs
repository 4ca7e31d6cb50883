use super::audit::{record, Change};
use super::{Actor, Workspace};
use crate::domain::{LoginName, Role};
use crate::error::{Error, Result};
use crate::model::Operator;
use crate::secret::hash_password;
use crate::store::{classify, db_error, DbFailure};
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
        let existing: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM operators")
            .fetch_one(self.store.pool())
            .await
            .map_err(db_error)?;
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
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO operators (username, password_hash, role, disabled, created_at) VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(username.as_str())
        .bind(hash)
        .bind(role.as_str())
        .bind(false)
        .bind(now)
        .fetch_one(&mut *w.tx)
        .await
        .map_err(|e| match classify(&e) {
            DbFailure::UniqueViolation(_) => Error::Conflict(format!("operator \"{}\" already exists", username.as_str())),
            _ => db_error(e),
        })?;
        for t in &tenant_ids {
            sqlx::query("INSERT INTO operator_tenants (operator_id, tenant_id) VALUES ($1, $2)")
                .bind(id)
                .bind(*t)
                .execute(&mut *w.tx)
                .await
                .map_err(db_error)?;
        }
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
        let rows: Vec<(i64, String, String, i64)> = sqlx::query_as(
            "SELECT id, username, role, CAST(disabled AS INTEGER) FROM operators ORDER BY username",
        )
        .fetch_all(self.store.pool())
        .await
        .map_err(db_error)?;
        let mut out = Vec::new();
        for (id, username, role, disabled) in rows {
            let tenants: Vec<String> = sqlx::query_scalar(
                "SELECT t.slug FROM operator_tenants o JOIN tenants t ON t.id = o.tenant_id WHERE o.operator_id = $1 ORDER BY t.slug",
            )
            .bind(id)
            .fetch_all(self.store.pool())
            .await
            .map_err(db_error)?;
            let role = Role::parse(&role)
                .map_err(|_| Error::Store("operator role on record is unknown".into()))?;
            out.push(Operator {
                id,
                username,
                role,
                tenants,
                disabled: disabled != 0,
            });
        }
        Ok(out)
    }
}
