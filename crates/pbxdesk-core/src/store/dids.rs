//! The dids table: its rows as the services read them.

use super::db_error;
use crate::error::Result;
use crate::model::Did;
use sqlx::{Any, AnyConnection, Executor};

/// A DID with its tenant's slug.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct DidRow {
    pub id: i64,
    pub tenant: String,
    pub number: String,
    pub label: String,
    pub destination: String,
    pub version: i64,
    pub tenant_id: i64,
    pub trunk: Option<String>,
}

const SELECT: &str = "SELECT d.id AS id, t.slug AS tenant, d.number AS number, d.label AS label, \
     d.destination AS destination, d.version AS version, d.tenant_id AS tenant_id, d.trunk AS trunk \
     FROM dids d JOIN tenants t ON t.id = d.tenant_id";

impl DidRow {
    pub(crate) fn into_did(self) -> Did {
        Did {
            id: self.id,
            tenant: self.tenant,
            number: self.number,
            label: self.label,
            destination: self.destination,
            trunk: self.trunk,
            version: self.version,
        }
    }
}

/// A tenant's DIDs, by number.
pub(crate) async fn of_tenant<'e, E: Executor<'e, Database = Any>>(
    e: E,
    tenant_id: i64,
) -> Result<Vec<DidRow>> {
    sqlx::query_as(&format!(
        "{SELECT} WHERE d.tenant_id = $1 ORDER BY d.number"
    ))
    .bind(tenant_id)
    .fetch_all(e)
    .await
    .map_err(db_error)
}

/// The DIDs with this E.164 number (one per PBX at most).
pub(crate) async fn by_number<'e, E: Executor<'e, Database = Any>>(
    e: E,
    number: &str,
) -> Result<Vec<DidRow>> {
    sqlx::query_as(&format!("{SELECT} WHERE d.number = $1"))
        .bind(number)
        .fetch_all(e)
        .await
        .map_err(db_error)
}

pub(crate) async fn by_id<'e, E: Executor<'e, Database = Any>>(
    e: E,
    id: i64,
) -> Result<Option<DidRow>> {
    sqlx::query_as(&format!("{SELECT} WHERE d.id = $1"))
        .bind(id)
        .fetch_optional(e)
        .await
        .map_err(db_error)
}

/// A number to route (the PBX is the tenant's).
pub(crate) struct NewDidRow<'a> {
    pub tenant_id: i64,
    pub number: &'a str,
    pub label: &'a str,
    pub destination: String,
    pub trunk: Option<&'a str>,
    pub now: i64,
}

/// Routes a number; its id. A number already routed on the PBX is a conflict.
pub(crate) async fn insert<'e, E: Executor<'e, Database = Any>>(
    e: E,
    d: NewDidRow<'_>,
) -> Result<i64> {
    sqlx::query_scalar(
        "INSERT INTO dids (pbx_id, tenant_id, number, label, destination, version, created_at, \
         updated_at, trunk) \
         SELECT pbx_id, id, $1, $2, $3, 1, $4, $4, $6 FROM tenants WHERE id = $5 RETURNING id",
    )
    .bind(d.number)
    .bind(d.label)
    .bind(d.destination)
    .bind(d.now)
    .bind(d.tenant_id)
    .bind(d.trunk)
    .fetch_one(e)
    .await
    .map_err(|e| match super::classify(&e) {
        super::DbFailure::UniqueViolation(_) => crate::error::Error::Conflict(format!(
            "{} is already routed on this PBX (a DID is unique on its PBX)",
            d.number
        )),
        _ => db_error(e),
    })
}

/// A number's new label, destination and trunk, if it is still at `version`; whether it was.
pub(crate) async fn update<'e, E: Executor<'e, Database = Any>>(
    e: E,
    id: i64,
    version: i64,
    label: &str,
    destination: &str,
    trunk: Option<&str>,
    now: i64,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE dids SET label = $1, destination = $2, version = version + 1, updated_at = $3, \
         trunk = $6 WHERE id = $4 AND version = $5",
    )
    .bind(label)
    .bind(destination)
    .bind(now)
    .bind(id)
    .bind(version)
    .bind(trunk)
    .execute(e)
    .await
    .map_err(db_error)?;
    Ok(done.rows_affected() == 1)
}

pub(crate) async fn delete<'e, E: Executor<'e, Database = Any>>(e: E, id: i64) -> Result<()> {
    sqlx::query("DELETE FROM dids WHERE id = $1")
        .bind(id)
        .execute(e)
        .await
        .map_err(db_error)?;
    Ok(())
}

/// Every number routed on the PBX of a tenant, with its tenant's id.
pub(crate) async fn numbers_on_pbx_of<'e, E: Executor<'e, Database = Any>>(
    e: E,
    tenant_id: i64,
) -> Result<Vec<(String, i64)>> {
    sqlx::query_as(
        "SELECT d.number, d.tenant_id FROM dids d \
         WHERE d.pbx_id = (SELECT pbx_id FROM tenants WHERE id = $1)",
    )
    .bind(tenant_id)
    .fetch_all(e)
    .await
    .map_err(db_error)
}

/// What of the tenant sends calls to any of `destinations` (as written, e.g. "user:101"): its
/// numbers, its unknown-number route and its ring groups' no-answer routes, each named for a
/// message. What a user or a group cannot be deleted under.
pub(crate) async fn routed_to(
    conn: &mut AnyConnection,
    tenant_id: i64,
    destinations: &[&str],
) -> Result<Vec<String>> {
    // $2… one per destination, numbered in code; only bound values.
    let list = (2..destinations.len() + 2)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ");
    let numbers_sql = format!(
        "SELECT number FROM dids WHERE tenant_id = $1 AND destination IN ({list}) ORDER BY number"
    );
    let unknown_sql =
        format!("SELECT unknown_did FROM tenants WHERE id = $1 AND unknown_did IN ({list})");
    let groups_sql = format!(
        "SELECT extension, name FROM ring_groups WHERE tenant_id = $1 AND no_answer IN ({list}) \
         ORDER BY extension"
    );
    let mut numbers = sqlx::query_scalar::<_, String>(&numbers_sql).bind(tenant_id);
    let mut unknown = sqlx::query_scalar::<_, String>(&unknown_sql).bind(tenant_id);
    let mut groups = sqlx::query_as::<_, (i64, String)>(&groups_sql).bind(tenant_id);
    for d in destinations {
        numbers = numbers.bind(*d);
        unknown = unknown.bind(*d);
        groups = groups.bind(*d);
    }
    let mut out = numbers.fetch_all(&mut *conn).await.map_err(db_error)?;
    if unknown
        .fetch_optional(&mut *conn)
        .await
        .map_err(db_error)?
        .is_some()
    {
        out.push("the tenant's unknown numbers".into());
    }
    out.extend(
        groups
            .fetch_all(&mut *conn)
            .await
            .map_err(db_error)?
            .into_iter()
            .map(|(e, n)| format!("ring group {n} ({e}) when nobody answers")),
    );
    Ok(out)
}
