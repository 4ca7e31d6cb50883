//! The users table: its rows as the services read them.

use super::db_error;
use crate::domain::{UserRole, UserStatus};
use crate::error::{Error, Result};
use crate::model::User;
use sqlx::{Any, Executor};

/// A user with its tenant's slug (devices apart).
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct UserRow {
    pub id: i64,
    pub tenant: String,
    pub extension: i64,
    pub display_name: String,
    pub email: String,
    pub role: String,
    pub status: String,
    pub outbound_caller_id: Option<String>,
    pub voicemail_enabled: i64,
    pub voicemail_pin: Option<Vec<u8>>,
    pub dnd: i64,
    pub forward_always: Option<String>,
    pub forward_busy: Option<String>,
    pub forward_no_answer: Option<String>,
    pub features_pending: i64,
    pub pin_pending: i64,
    pub version: i64,
    pub tenant_id: i64,
    pub ring_seconds: i64,
    pub policy: Option<String>,
}

// Booleans as integers: the Any driver maps SQLite booleans poorly.
const SELECT: &str = "SELECT u.id AS id, t.slug AS tenant, u.extension AS extension, \
     u.display_name AS display_name, u.email AS email, u.role AS role, u.status AS status, \
     u.outbound_caller_id AS outbound_caller_id, \
     CAST(u.voicemail_enabled AS INTEGER) AS voicemail_enabled, u.voicemail_pin AS voicemail_pin, \
     CAST(u.dnd AS INTEGER) AS dnd, u.forward_always AS forward_always, \
     u.forward_busy AS forward_busy, u.forward_no_answer AS forward_no_answer, \
     CAST(CASE WHEN COALESCE(CAST(f.dnd AS INTEGER), 0) = CAST(u.dnd AS INTEGER) \
       AND f.always IS NOT DISTINCT FROM u.forward_always AND f.busy IS NOT DISTINCT FROM u.forward_busy \
       AND f.no_answer IS NOT DISTINCT FROM u.forward_no_answer THEN 0 ELSE 1 END AS INTEGER) AS features_pending, \
     CAST(CASE WHEN u.pin_pending_since IS NOT NULL AND CAST(u.voicemail_enabled AS INTEGER) = 1 \
       THEN 1 ELSE 0 END AS INTEGER) AS pin_pending, \
     u.version AS version, \
     u.tenant_id AS tenant_id, u.ring_seconds AS ring_seconds, u.policy AS policy \
     FROM users u JOIN tenants t ON t.id = u.tenant_id \
     LEFT JOIN user_features_on_pbx f ON f.user_id = u.id";

fn damaged(what: &str) -> Error {
    Error::Store(format!("{what} on record is damaged"))
}

impl UserRow {
    /// The user (no devices yet) and its tenant's id.
    pub(crate) fn into_user(self) -> Result<(User, i64)> {
        Ok((
            User {
                id: self.id,
                tenant: self.tenant,
                extension: u32::try_from(self.extension).map_err(|_| damaged("extension"))?,
                display_name: self.display_name,
                email: self.email,
                role: UserRole::parse(&self.role).map_err(|_| damaged("user role"))?,
                status: UserStatus::parse(&self.status).map_err(|_| damaged("user status"))?,
                outbound_caller_id: self.outbound_caller_id,
                voicemail_enabled: self.voicemail_enabled != 0,
                voicemail_pin_set: self.voicemail_pin.is_some(),
                dnd: self.dnd != 0,
                forward_always: self.forward_always,
                forward_busy: self.forward_busy,
                forward_no_answer: self.forward_no_answer,
                features_pending: self.features_pending != 0,
                voicemail_pin_pending: self.pin_pending != 0,
                ring_seconds: u32::try_from(self.ring_seconds).map_err(|_| damaged("ring time"))?,
                policy: self.policy,
                version: self.version,
                devices: Vec::new(),
            },
            self.tenant_id,
        ))
    }
}

pub(crate) async fn by_id<'e, E: Executor<'e, Database = Any>>(
    e: E,
    id: i64,
) -> Result<Option<UserRow>> {
    sqlx::query_as(&format!("{SELECT} WHERE u.id = $1"))
        .bind(id)
        .fetch_optional(e)
        .await
        .map_err(db_error)
}

/// How many live (not deleted) users of a tenant hold `extension` (0 or 1).
pub(crate) async fn live_with_extension<'e, E: Executor<'e, Database = Any>>(
    e: E,
    tenant_id: i64,
    extension: u32,
) -> Result<i64> {
    sqlx::query_scalar(
        "SELECT COUNT(*) FROM users WHERE tenant_id = $1 AND extension = $2 \
         AND status <> 'deleted'",
    )
    .bind(tenant_id)
    .bind(i64::from(extension))
    .fetch_one(e)
    .await
    .map_err(db_error)
}
