//! The policies and policy_rules tables: a tenant's outbound policies and their ordered rules.

use super::{classify, db_error, DbFailure};
use crate::error::{Error, Result};
use crate::model::PolicyRule;
use sqlx::{Any, AnyConnection, Executor};

/// A policy's own row, with its tenant's slug and default policy.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct PolicyHead {
    pub tenant: String,
    pub name: String,
    pub version: i64,
    pub tenant_default: Option<String>,
}

#[derive(Debug, sqlx::FromRow)]
pub(crate) struct RuleRow {
    pub pattern: String,
    pub allow: i64,
    pub strip: i64,
    pub prepend: String,
    /// Trunk names in order, comma-separated.
    pub trunks: String,
}

impl RuleRow {
    pub(crate) fn into_rule(self) -> PolicyRule {
        PolicyRule {
            pattern: self.pattern,
            allow: self.allow != 0,
            strip: u32::try_from(self.strip).unwrap_or(0),
            prepend: self.prepend,
            trunks: self
                .trunks
                .split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
        }
    }
}

pub(crate) async fn head<'e, E: Executor<'e, Database = Any>>(
    e: E,
    id: i64,
) -> Result<Option<PolicyHead>> {
    sqlx::query_as(
        "SELECT t.slug AS tenant, p.name AS name, p.version AS version, \
         t.default_policy AS tenant_default \
         FROM policies p JOIN tenants t ON t.id = p.tenant_id WHERE p.id = $1",
    )
    .bind(id)
    .fetch_optional(e)
    .await
    .map_err(db_error)
}

/// A policy's rules, in order.
pub(crate) async fn rules<'e, E: Executor<'e, Database = Any>>(
    e: E,
    id: i64,
) -> Result<Vec<RuleRow>> {
    sqlx::query_as(
        "SELECT pattern, CAST(allow AS INTEGER) AS allow, strip, prepend, trunks \
         FROM policy_rules WHERE policy_id = $1 ORDER BY position",
    )
    .bind(id)
    .fetch_all(e)
    .await
    .map_err(db_error)
}

pub(crate) async fn id_by_name<'e, E: Executor<'e, Database = Any>>(
    e: E,
    tenant_id: i64,
    name: &str,
) -> Result<Option<i64>> {
    sqlx::query_scalar("SELECT id FROM policies WHERE tenant_id = $1 AND name = $2")
        .bind(tenant_id)
        .bind(name)
        .fetch_optional(e)
        .await
        .map_err(db_error)
}

/// A tenant's policies, by name.
pub(crate) async fn ids_of_tenant<'e, E: Executor<'e, Database = Any>>(
    e: E,
    tenant_id: i64,
) -> Result<Vec<i64>> {
    sqlx::query_scalar("SELECT id FROM policies WHERE tenant_id = $1 ORDER BY name")
        .bind(tenant_id)
        .fetch_all(e)
        .await
        .map_err(db_error)
}

/// A new policy without rules; a name the tenant already has is a conflict.
pub(crate) async fn insert(
    conn: &mut AnyConnection,
    tenant_id: i64,
    tenant_slug: &str,
    name: &str,
    now: i64,
) -> Result<i64> {
    sqlx::query_scalar(
        "INSERT INTO policies (tenant_id, name, version, created_at, updated_at) \
         VALUES ($1, $2, 1, $3, $3) RETURNING id",
    )
    .bind(tenant_id)
    .bind(name)
    .bind(now)
    .fetch_one(&mut *conn)
    .await
    .map_err(|e| match classify(&e) {
        DbFailure::UniqueViolation(_) => Error::Conflict(format!(
            "tenant \"{tenant_slug}\" already has a policy named \"{name}\""
        )),
        _ => db_error(e),
    })
}

/// Replaces a policy's rules with `rules`, in order (positions from 1).
pub(crate) async fn replace_rules(
    conn: &mut AnyConnection,
    policy_id: i64,
    rules: &[PolicyRule],
) -> Result<()> {
    sqlx::query("DELETE FROM policy_rules WHERE policy_id = $1")
        .bind(policy_id)
        .execute(&mut *conn)
        .await
        .map_err(db_error)?;
    for (i, r) in rules.iter().enumerate() {
        sqlx::query(
            "INSERT INTO policy_rules (policy_id, position, pattern, allow, strip, prepend, trunks) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(policy_id)
        .bind(i as i64 + 1)
        .bind(&r.pattern)
        .bind(r.allow)
        .bind(i64::from(r.strip))
        .bind(&r.prepend)
        .bind(r.trunks.join(","))
        .execute(&mut *conn)
        .await
        .map_err(db_error)?;
    }
    Ok(())
}

/// A new version of the policy (its rules changed).
pub(crate) async fn touch(conn: &mut AnyConnection, id: i64, now: i64) -> Result<()> {
    sqlx::query("UPDATE policies SET version = version + 1, updated_at = $1 WHERE id = $2")
        .bind(now)
        .bind(id)
        .execute(conn)
        .await
        .map_err(db_error)?;
    Ok(())
}

/// How many live users of the tenant follow the policy as their own.
pub(crate) async fn users_following(
    conn: &mut AnyConnection,
    tenant_id: i64,
    name: &str,
) -> Result<i64> {
    sqlx::query_scalar(
        "SELECT COUNT(*) FROM users WHERE tenant_id = $1 AND policy = $2 AND status <> 'deleted'",
    )
    .bind(tenant_id)
    .bind(name)
    .fetch_one(conn)
    .await
    .map_err(db_error)
}

/// Deletes a policy and its rules.
pub(crate) async fn delete(conn: &mut AnyConnection, id: i64) -> Result<()> {
    sqlx::query("DELETE FROM policy_rules WHERE policy_id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await
        .map_err(db_error)?;
    sqlx::query("DELETE FROM policies WHERE id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await
        .map_err(db_error)?;
    Ok(())
}
