//! The ring_groups and ring_group_members tables.

use super::db_error;
use crate::error::{Error, Result};
use sqlx::{Any, AnyConnection, Executor};

/// A ring group with its tenant's slug (members apart: [`members_of`]).
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct RingGroupRow {
    pub id: i64,
    pub tenant_id: i64,
    pub tenant: String,
    pub extension: i64,
    pub name: String,
    pub strategy: String,
    pub member_seconds: i64,
    pub total_seconds: i64,
    pub no_answer: String,
    pub version: i64,
}

/// A member, in ringing order.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct MemberRow {
    pub group_id: i64,
    pub extension: i64,
    pub name: String,
}

/// A member row: the group, the user's extension and name, in ringing order.
const MEMBERS: &str = "SELECT m.group_id AS group_id, u.extension AS extension, \
     u.display_name AS name \
     FROM ring_group_members m JOIN ring_groups g ON g.id = m.group_id \
          JOIN tenants t ON t.id = g.tenant_id JOIN users u ON u.id = m.user_id";

const SELECT: &str = "SELECT g.id AS id, g.tenant_id AS tenant_id, t.slug AS tenant, \
     g.extension AS extension, g.name AS name, g.strategy AS strategy, \
     g.member_seconds AS member_seconds, g.total_seconds AS total_seconds, \
     g.no_answer AS no_answer, g.version AS version \
     FROM ring_groups g JOIN tenants t ON t.id = g.tenant_id";

/// A tenant's ring groups, by extension.
pub(crate) async fn of_tenant<'e, E: Executor<'e, Database = Any>>(
    e: E,
    tenant_id: i64,
) -> Result<Vec<RingGroupRow>> {
    sqlx::query_as(&format!(
        "{SELECT} WHERE g.tenant_id = $1 ORDER BY g.extension"
    ))
    .bind(tenant_id)
    .fetch_all(e)
    .await
    .map_err(db_error)
}

pub(crate) async fn by_extension<'e, E: Executor<'e, Database = Any>>(
    e: E,
    tenant_id: i64,
    extension: i64,
) -> Result<Option<RingGroupRow>> {
    sqlx::query_as(&format!(
        "{SELECT} WHERE g.tenant_id = $1 AND g.extension = $2"
    ))
    .bind(tenant_id)
    .bind(extension)
    .fetch_optional(e)
    .await
    .map_err(db_error)
}

/// The members of a tenant's groups (every group's, in order), with their extension and name.
pub(crate) async fn members_of_tenant<'e, E: Executor<'e, Database = Any>>(
    e: E,
    tenant_id: i64,
) -> Result<Vec<MemberRow>> {
    sqlx::query_as(&format!(
        "{MEMBERS} WHERE g.tenant_id = $1 ORDER BY m.group_id, m.position"
    ))
    .bind(tenant_id)
    .fetch_all(e)
    .await
    .map_err(db_error)
}

/// One group's members, in ringing order.
pub(crate) async fn members_of_group<'e, E: Executor<'e, Database = Any>>(
    e: E,
    group_id: i64,
) -> Result<Vec<MemberRow>> {
    sqlx::query_as(&format!("{MEMBERS} WHERE g.id = $1 ORDER BY m.position"))
        .bind(group_id)
        .fetch_all(e)
        .await
        .map_err(db_error)
}

/// The ring groups of every tenant on a PBX, by tenant and extension (the render's snapshot).
pub(crate) async fn of_pbx<'e, E: Executor<'e, Database = Any>>(
    e: E,
    pbx_id: i64,
) -> Result<Vec<RingGroupRow>> {
    sqlx::query_as(&format!(
        "{SELECT} WHERE t.pbx_id = $1 ORDER BY g.tenant_id, g.extension"
    ))
    .bind(pbx_id)
    .fetch_all(e)
    .await
    .map_err(db_error)
}

/// The members of every group on a PBX, by group and position.
pub(crate) async fn members_of_pbx<'e, E: Executor<'e, Database = Any>>(
    e: E,
    pbx_id: i64,
) -> Result<Vec<MemberRow>> {
    sqlx::query_as(&format!(
        "{MEMBERS} WHERE t.pbx_id = $1 ORDER BY m.group_id, m.position"
    ))
    .bind(pbx_id)
    .fetch_all(e)
    .await
    .map_err(db_error)
}

/// The extensions a tenant's ring groups hold (counted as held by the allocator).
pub(crate) async fn extensions<'e, E: Executor<'e, Database = Any>>(
    e: E,
    tenant_id: i64,
) -> Result<Vec<i64>> {
    sqlx::query_scalar("SELECT extension FROM ring_groups WHERE tenant_id = $1 ORDER BY extension")
        .bind(tenant_id)
        .fetch_all(e)
        .await
        .map_err(db_error)
}

/// A group's fields as written.
pub(crate) struct RingGroupFields<'a> {
    pub name: &'a str,
    pub strategy: &'a str,
    pub member_seconds: i64,
    pub total_seconds: i64,
    pub no_answer: &'a str,
}

/// Makes a group at `extension`; its id. The extension taken by another group is a conflict.
pub(crate) async fn insert(
    conn: &mut AnyConnection,
    tenant_id: i64,
    extension: i64,
    f: &RingGroupFields<'_>,
    now: i64,
) -> Result<i64> {
    sqlx::query_scalar(
        "INSERT INTO ring_groups (tenant_id, extension, name, strategy, member_seconds, \
         total_seconds, no_answer, version, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, 1, $8, $8) RETURNING id",
    )
    .bind(tenant_id)
    .bind(extension)
    .bind(f.name)
    .bind(f.strategy)
    .bind(f.member_seconds)
    .bind(f.total_seconds)
    .bind(f.no_answer)
    .bind(now)
    .fetch_one(conn)
    .await
    .map_err(|e| match super::classify(&e) {
        super::DbFailure::UniqueViolation(_) => {
            Error::Conflict(format!("extension {extension} is already a ring group"))
        }
        _ => db_error(e),
    })
}

/// A group's new fields, if it is still at `version`; whether it was.
pub(crate) async fn update(
    conn: &mut AnyConnection,
    id: i64,
    version: i64,
    f: &RingGroupFields<'_>,
    now: i64,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE ring_groups SET name = $1, strategy = $2, member_seconds = $3, \
         total_seconds = $4, no_answer = $5, version = version + 1, updated_at = $6 \
         WHERE id = $7 AND version = $8",
    )
    .bind(f.name)
    .bind(f.strategy)
    .bind(f.member_seconds)
    .bind(f.total_seconds)
    .bind(f.no_answer)
    .bind(now)
    .bind(id)
    .bind(version)
    .execute(conn)
    .await
    .map_err(db_error)?;
    Ok(done.rows_affected() == 1)
}

/// Replaces a group's members with `users`, in this order.
pub(crate) async fn set_members(
    conn: &mut AnyConnection,
    group_id: i64,
    users: &[i64],
) -> Result<()> {
    sqlx::query("DELETE FROM ring_group_members WHERE group_id = $1")
        .bind(group_id)
        .execute(&mut *conn)
        .await
        .map_err(db_error)?;
    for (position, user) in users.iter().enumerate() {
        sqlx::query(
            "INSERT INTO ring_group_members (group_id, position, user_id) VALUES ($1, $2, $3)",
        )
        .bind(group_id)
        .bind(position as i64)
        .bind(*user)
        .execute(&mut *conn)
        .await
        .map_err(db_error)?;
    }
    Ok(())
}

pub(crate) async fn delete(conn: &mut AnyConnection, id: i64) -> Result<()> {
    sqlx::query("DELETE FROM ring_group_members WHERE group_id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await
        .map_err(db_error)?;
    sqlx::query("DELETE FROM ring_groups WHERE id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await
        .map_err(db_error)?;
    Ok(())
}

/// Takes a user out of every group (a user deleted rings in none).
pub(crate) async fn remove_member<'e, E: Executor<'e, Database = Any>>(
    e: E,
    user_id: i64,
) -> Result<()> {
    sqlx::query("DELETE FROM ring_group_members WHERE user_id = $1")
        .bind(user_id)
        .execute(e)
        .await
        .map_err(db_error)?;
    Ok(())
}
