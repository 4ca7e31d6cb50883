//! The devices table: its rows as the services read them (the SIP password stays sealed).

use super::db_error;
use crate::domain::{parse_codecs, Transport};
use crate::error::{Error, Result};
use crate::model::Device;
use sqlx::{Any, Executor};

#[derive(Debug, sqlx::FromRow)]
pub(crate) struct DeviceRow {
    pub id: i64,
    pub user_id: i64,
    pub label: String,
    pub sip_username: String,
    pub transport: String,
    pub codecs: String,
    pub nat: i64,
}

const SELECT: &str = "SELECT id, user_id, label, sip_username, transport, codecs, \
     CAST(nat AS INTEGER) AS nat FROM devices";

impl DeviceRow {
    pub(crate) fn into_device(self) -> Result<Device> {
        let damaged = |what: &str| Error::Store(format!("device {what} on record is damaged"));
        Ok(Device {
            id: self.id,
            user_id: self.user_id,
            label: self.label,
            sip_username: self.sip_username,
            transport: Transport::parse(&self.transport).map_err(|_| damaged("transport"))?,
            codecs: parse_codecs(&self.codecs).map_err(|_| damaged("codecs"))?,
            nat: self.nat != 0,
        })
    }
}

/// A user's devices, oldest first.
pub(crate) async fn of_user<'e, E: Executor<'e, Database = Any>>(
    e: E,
    user_id: i64,
) -> Result<Vec<DeviceRow>> {
    sqlx::query_as(&format!("{SELECT} WHERE user_id = $1 ORDER BY id"))
        .bind(user_id)
        .fetch_all(e)
        .await
        .map_err(db_error)
}

/// The devices of a tenant's live users (not deleted), by user, oldest first.
pub(crate) async fn of_tenant<'e, E: Executor<'e, Database = Any>>(
    e: E,
    tenant_id: i64,
) -> Result<Vec<DeviceRow>> {
    sqlx::query_as(
        "SELECT d.id AS id, d.user_id AS user_id, d.label AS label, d.sip_username AS sip_username, \
         d.transport AS transport, d.codecs AS codecs, CAST(d.nat AS INTEGER) AS nat \
         FROM devices d JOIN users u ON u.id = d.user_id \
         WHERE u.tenant_id = $1 AND u.status <> 'deleted' ORDER BY d.user_id, d.id",
    )
    .bind(tenant_id)
    .fetch_all(e)
    .await
    .map_err(db_error)
}

pub(crate) async fn by_id<'e, E: Executor<'e, Database = Any>>(
    e: E,
    id: i64,
) -> Result<Option<DeviceRow>> {
    sqlx::query_as(&format!("{SELECT} WHERE id = $1"))
        .bind(id)
        .fetch_optional(e)
        .await
        .map_err(db_error)
}

/// The PJSIP endpoints these tenants may see on a PBX: their devices, and the endpoints of the
/// trunks they may use (`pbxdesk-trunk-NAME`, which also names the trunk's registration).
pub(crate) async fn endpoints_of_tenants<'e, E: Executor<'e, Database = Any>>(
    e: E,
    pbx_id: i64,
    tenant_ids: &[i64],
) -> Result<std::collections::BTreeSet<String>> {
    if tenant_ids.is_empty() {
        return Ok(std::collections::BTreeSet::new());
    }
    let marks: Vec<String> = (2..=tenant_ids.len() + 1)
        .map(|i| format!("${i}"))
        .collect();
    let marks = marks.join(", ");
    let sql = format!(
        "SELECT d.sip_username FROM devices d JOIN users u ON u.id = d.user_id \
         JOIN tenants t ON t.id = u.tenant_id WHERE t.pbx_id = $1 AND u.tenant_id IN ({marks}) \
         UNION SELECT 'pbxdesk-trunk-' || k.name FROM trunks k \
         JOIN trunk_tenants tt ON tt.trunk_id = k.id WHERE k.pbx_id = $1 AND tt.tenant_id IN ({marks})"
    );
    let mut q = sqlx::query_scalar::<_, String>(&sql).bind(pbx_id);
    for id in tenant_ids {
        q = q.bind(*id);
    }
    Ok(q.fetch_all(e)
        .await
        .map_err(db_error)?
        .into_iter()
        .collect())
}

/// The PBX a tenant is on (a device's `pbx_id`: SIP usernames are unique per PBX).
pub(crate) async fn pbx_of_tenant<'e, E: Executor<'e, Database = Any>>(
    e: E,
    tenant_id: i64,
) -> Result<i64> {
    sqlx::query_scalar("SELECT pbx_id FROM tenants WHERE id = $1")
        .bind(tenant_id)
        .fetch_one(e)
        .await
        .map_err(db_error)
}

/// Which of `names` a device of the PBX already has: point lookups on the
/// (pbx_id, sip_username) index, so the cost does not grow with the PBX (a `LIKE 'base-%'`
/// read every device of it, and a range would depend on the database's collation).
pub(crate) async fn usernames_taken<'e, E: Executor<'e, Database = Any>>(
    e: E,
    pbx_id: i64,
    names: &[String],
) -> Result<Vec<String>> {
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let marks: Vec<String> = (0..names.len()).map(|i| format!("${}", i + 2)).collect();
    let sql = format!(
        "SELECT sip_username FROM devices WHERE pbx_id = $1 AND sip_username IN ({})",
        marks.join(", ")
    );
    let mut q = sqlx::query_scalar(&sql).bind(pbx_id);
    for n in names {
        q = q.bind(n);
    }
    q.fetch_all(e).await.map_err(db_error)
}

/// A device to add (its password sealed).
pub(crate) struct NewDeviceRow<'a> {
    pub user_id: i64,
    pub pbx_id: i64,
    pub label: &'a str,
    pub sip_username: &'a str,
    pub sip_password: Vec<u8>,
    pub transport: &'a str,
    pub codecs: String,
    pub nat: bool,
    pub now: i64,
}

/// Adds a device; its id. A SIP username taken on the PBX is a conflict.
pub(crate) async fn insert<'e, E: Executor<'e, Database = Any>>(
    e: E,
    d: NewDeviceRow<'_>,
) -> Result<i64> {
    sqlx::query_scalar(
        "INSERT INTO devices (user_id, pbx_id, label, sip_username, sip_password, transport, \
         codecs, nat, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) RETURNING id",
    )
    .bind(d.user_id)
    .bind(d.pbx_id)
    .bind(d.label)
    .bind(d.sip_username)
    .bind(d.sip_password)
    .bind(d.transport)
    .bind(d.codecs)
    .bind(d.nat)
    .bind(d.now)
    .fetch_one(e)
    .await
    .map_err(|e| match super::classify(&e) {
        super::DbFailure::UniqueViolation(_) => Error::Conflict(format!(
            "SIP username \"{}\" is already used on this PBX (usernames are unique across all its tenants)",
            d.sip_username
        )),
        _ => db_error(e),
    })
}

/// The devices with this SIP username (one per PBX at most).
pub(crate) async fn ids_by_username<'e, E: Executor<'e, Database = Any>>(
    e: E,
    sip_username: &str,
) -> Result<Vec<i64>> {
    sqlx::query_scalar("SELECT id FROM devices WHERE sip_username = $1")
        .bind(sip_username)
        .fetch_all(e)
        .await
        .map_err(db_error)
}

/// The tenant a device belongs to (through its user).
pub(crate) async fn tenant_of<'e, E: Executor<'e, Database = Any>>(
    e: E,
    id: i64,
) -> Result<Option<i64>> {
    sqlx::query_scalar(
        "SELECT u.tenant_id FROM devices d JOIN users u ON u.id = d.user_id WHERE d.id = $1",
    )
    .bind(id)
    .fetch_optional(e)
    .await
    .map_err(db_error)
}

/// Removes a device; whether it was there.
pub(crate) async fn delete<'e, E: Executor<'e, Database = Any>>(e: E, id: i64) -> Result<bool> {
    let gone = sqlx::query("DELETE FROM devices WHERE id = $1")
        .bind(id)
        .execute(e)
        .await
        .map_err(db_error)?;
    Ok(gone.rows_affected() > 0)
}

/// A device's SIP password, sealed.
pub(crate) async fn sealed_password<'e, E: Executor<'e, Database = Any>>(
    e: E,
    id: i64,
) -> Result<Vec<u8>> {
    sqlx::query_scalar("SELECT sip_password FROM devices WHERE id = $1")
        .bind(id)
        .fetch_one(e)
        .await
        .map_err(db_error)
}

/// Every SIP username on a PBX (a new device's must be none of them).
pub(crate) async fn usernames_of_pbx<'e, E: Executor<'e, Database = Any>>(
    e: E,
    pbx_id: i64,
) -> Result<Vec<String>> {
    sqlx::query_scalar("SELECT sip_username FROM devices WHERE pbx_id = $1")
        .bind(pbx_id)
        .fetch_all(e)
        .await
        .map_err(db_error)
}

/// A device's settings as they are to be (its username and password stay).
pub(crate) async fn update<'e, E: Executor<'e, Database = Any>>(
    e: E,
    id: i64,
    label: &str,
    transport: &str,
    codecs: &str,
    nat: bool,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "UPDATE devices SET label = $1, transport = $2, codecs = $3, nat = $4, updated_at = $5 \
         WHERE id = $6",
    )
    .bind(label)
    .bind(transport)
    .bind(codecs)
    .bind(nat)
    .bind(now)
    .bind(id)
    .execute(e)
    .await
    .map_err(db_error)?;
    Ok(())
}

/// The sealed SIP passwords of a tenant's live users' devices, by device id.
pub(crate) async fn passwords_of_tenant<'e, E: Executor<'e, Database = Any>>(
    e: E,
    tenant_id: i64,
) -> Result<Vec<(i64, Vec<u8>)>> {
    sqlx::query_as(
        "SELECT d.id, d.sip_password FROM devices d JOIN users u ON u.id = d.user_id \
         WHERE u.tenant_id = $1 AND u.status <> 'deleted'",
    )
    .bind(tenant_id)
    .fetch_all(e)
    .await
    .map_err(db_error)
}

/// A device's new SIP password (sealed for its row).
pub(crate) async fn set_password<'e, E: Executor<'e, Database = Any>>(
    e: E,
    id: i64,
    sealed: Vec<u8>,
    now: i64,
) -> Result<()> {
    sqlx::query("UPDATE devices SET sip_password = $1, updated_at = $2 WHERE id = $3")
        .bind(sealed)
        .bind(now)
        .bind(id)
        .execute(e)
        .await
        .map_err(db_error)?;
    Ok(())
}
