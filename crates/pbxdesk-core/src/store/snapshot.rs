//! What the renderer reads of one PBX: its tenants, their live users and the devices, as rows.

use super::db_error;
use crate::error::Result;
use sqlx::AnyConnection;

#[derive(Debug, sqlx::FromRow)]
pub(crate) struct SnapshotTenant {
    pub id: i64,
    pub slug: String,
    pub name: String,
    pub country: String,
    pub status: String,
    pub unknown_did: String,
    pub caller_id: Option<String>,
    pub default_policy: Option<String>,
}

#[derive(Debug, sqlx::FromRow)]
pub(crate) struct SnapshotUser {
    pub id: i64,
    pub tenant_id: i64,
    pub extension: i64,
    pub display_name: String,
    pub email: String,
    pub status: String,
    pub voicemail_enabled: i64,
    /// Sealed.
    pub voicemail_pin: Option<Vec<u8>>,
    pub outbound_caller_id: Option<String>,
    pub ring_seconds: i64,
    pub policy: Option<String>,
}

#[derive(Debug, sqlx::FromRow)]
pub(crate) struct SnapshotDevice {
    pub id: i64,
    pub user_id: i64,
    pub sip_username: String,
    /// Sealed.
    pub sip_password: Vec<u8>,
    pub transport: String,
    pub codecs: String,
    pub nat: i64,
}

#[derive(Debug, sqlx::FromRow)]
pub(crate) struct SnapshotDid {
    pub tenant_id: i64,
    pub number: String,
    pub label: String,
    pub destination: String,
    pub trunk: Option<String>,
}

/// A policy with one of its rules (none for a policy without rules), in rule order.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct SnapshotPolicyRule {
    pub policy_id: i64,
    pub tenant_id: i64,
    pub name: String,
    pub pattern: Option<String>,
    pub allow: Option<i64>,
    pub strip: Option<i64>,
    pub prepend: Option<String>,
    pub trunks: Option<String>,
}

#[derive(Debug, sqlx::FromRow)]
pub(crate) struct SnapshotTrunkSecret {
    pub id: i64,
    /// Sealed.
    pub password: Option<Vec<u8>>,
}

/// What the renderer reads of one PBX, as rows.
pub(crate) struct SnapshotRows {
    pub tenants: Vec<SnapshotTenant>,
    pub users: Vec<SnapshotUser>,
    pub devices: Vec<SnapshotDevice>,
    pub dids: Vec<SnapshotDid>,
    pub policies: Vec<SnapshotPolicyRule>,
    pub trunk_secrets: Vec<SnapshotTrunkSecret>,
}

/// One PBX's tenants, live users, devices, DIDs, policies with their rules and the trunks'
/// sealed passwords, in one connection (six queries, none per row).
pub(crate) async fn load(conn: &mut AnyConnection, pbx_id: i64) -> Result<SnapshotRows> {
    let tenants = sqlx::query_as(
        "SELECT id, slug, name, country, status, unknown_did, caller_id, default_policy \
         FROM tenants WHERE pbx_id = $1",
    )
    .bind(pbx_id)
    .fetch_all(&mut *conn)
    .await
    .map_err(db_error)?;
    let users = sqlx::query_as(
        "SELECT u.id AS id, u.tenant_id AS tenant_id, u.extension AS extension, \
         u.display_name AS display_name, u.email AS email, u.status AS status, \
         CAST(u.voicemail_enabled AS INTEGER) AS voicemail_enabled, u.voicemail_pin AS voicemail_pin, \
         u.outbound_caller_id AS outbound_caller_id, u.ring_seconds AS ring_seconds, u.policy AS policy \
         FROM users u JOIN tenants t ON t.id = u.tenant_id WHERE t.pbx_id = $1 AND u.status <> 'deleted'",
    )
    .bind(pbx_id)
    .fetch_all(&mut *conn)
    .await
    .map_err(db_error)?;
    let devices = sqlx::query_as(
        "SELECT id, user_id, sip_username, sip_password, transport, codecs, \
         CAST(nat AS INTEGER) AS nat FROM devices WHERE pbx_id = $1",
    )
    .bind(pbx_id)
    .fetch_all(&mut *conn)
    .await
    .map_err(db_error)?;
    let dids = sqlx::query_as(
        "SELECT tenant_id, number, label, destination, trunk FROM dids WHERE pbx_id = $1",
    )
    .bind(pbx_id)
    .fetch_all(&mut *conn)
    .await
    .map_err(db_error)?;
    let policies = sqlx::query_as(
        "SELECT p.id AS policy_id, p.tenant_id AS tenant_id, p.name AS name, r.pattern AS pattern, \
         CAST(r.allow AS INTEGER) AS allow, r.strip AS strip, r.prepend AS prepend, r.trunks AS trunks \
         FROM policies p JOIN tenants t ON t.id = p.tenant_id \
         LEFT JOIN policy_rules r ON r.policy_id = p.id \
         WHERE t.pbx_id = $1 ORDER BY p.id, r.position",
    )
    .bind(pbx_id)
    .fetch_all(&mut *conn)
    .await
    .map_err(db_error)?;
    let trunk_secrets = sqlx::query_as("SELECT id, password FROM trunks WHERE pbx_id = $1")
        .bind(pbx_id)
        .fetch_all(&mut *conn)
        .await
        .map_err(db_error)?;
    Ok(SnapshotRows {
        tenants,
        users,
        devices,
        dids,
        policies,
        trunk_secrets,
    })
}
