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
