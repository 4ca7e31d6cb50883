//! The trunks table: its rows as the services read them.

use super::db_error;
use crate::domain::{parse_codecs, Transport};
use crate::error::{Error, Result};
use crate::model::Trunk;
use sqlx::{Any, Executor};

/// A trunk with its PBX's name; the password only as "set or not" (it stays sealed).
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct TrunkRow {
    pub id: i64,
    pub pbx: String,
    pub name: String,
    pub host: String,
    pub port: i64,
    pub transport: String,
    pub register: i64,
    pub username: Option<String>,
    pub password: Option<Vec<u8>>,
    pub from_domain: Option<String>,
    pub from_user: Option<String>,
    pub codecs: String,
    pub enabled: i64,
    pub version: i64,
}

const SELECT: &str = "SELECT k.id AS id, p.name AS pbx, k.name AS name, k.host AS host, \
     k.port AS port, k.transport AS transport, CAST(k.register AS INTEGER) AS register, \
     k.username AS username, k.password AS password, k.from_domain AS from_domain, \
     k.from_user AS from_user, k.codecs AS codecs, CAST(k.enabled AS INTEGER) AS enabled, \
     k.version AS version \
     FROM trunks k JOIN pbxes p ON p.id = k.pbx_id";

fn damaged(what: &str) -> Error {
    Error::Store(format!("trunk {what} on record is damaged"))
}

impl TrunkRow {
    /// The trunk, its tenants not read yet.
    pub(crate) fn into_trunk(self) -> Result<Trunk> {
        Ok(Trunk {
            id: self.id,
            pbx: self.pbx,
            name: self.name,
            host: self.host,
            port: u16::try_from(self.port).map_err(|_| damaged("port"))?,
            transport: Transport::parse(&self.transport).map_err(|_| damaged("transport"))?,
            register: self.register != 0,
            username: self.username,
            password_set: self.password.is_some(),
            from_domain: self.from_domain,
            from_user: self.from_user,
            codecs: parse_codecs(&self.codecs).map_err(|_| damaged("codecs"))?,
            enabled: self.enabled != 0,
            tenants: Vec::new(),
            version: self.version,
        })
    }
}

pub(crate) async fn by_id<'e, E: Executor<'e, Database = Any>>(
    e: E,
    id: i64,
) -> Result<Option<TrunkRow>> {
    sqlx::query_as(&format!("{SELECT} WHERE k.id = $1"))
        .bind(id)
        .fetch_optional(e)
        .await
        .map_err(db_error)
}
