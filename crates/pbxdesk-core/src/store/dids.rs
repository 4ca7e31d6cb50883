//! The dids table: its rows as the services read them.

use super::db_error;
use crate::error::Result;
use crate::model::Did;
use sqlx::{Any, Executor};

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
