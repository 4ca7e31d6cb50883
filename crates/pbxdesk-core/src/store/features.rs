//! A user's DND and forwards as the workspace wants them and as the PBX is known to hold them
//! (`user_features_on_pbx`: last written there or read back from it).

use super::db_error;
use crate::error::Result;
use pbxdesk_remote::astdb::Features;
use sqlx::{Any, Executor};

#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct FeatureRow {
    pub user_id: i64,
    pub tenant_id: i64,
    pub pbx_id: i64,
    pub tenant: String,
    pub extension: i64,
    pub dnd: i64,
    pub forward_always: Option<String>,
    pub forward_busy: Option<String>,
    pub forward_no_answer: Option<String>,
    pub known: i64,
    pub known_dnd: i64,
    pub known_always: Option<String>,
    pub known_busy: Option<String>,
    pub known_no_answer: Option<String>,
}

impl FeatureRow {
    /// What the workspace wants on the PBX.
    pub(crate) fn wanted(&self) -> Features {
        Features {
            dnd: self.dnd != 0,
            always: self.forward_always.clone(),
            busy: self.forward_busy.clone(),
            no_answer: self.forward_no_answer.clone(),
        }
    }

    /// What the PBX is known to hold; `None` when nothing was ever written or read for it.
    pub(crate) fn known(&self) -> Option<Features> {
        (self.known != 0).then(|| Features {
            dnd: self.known_dnd != 0,
            always: self.known_always.clone(),
            busy: self.known_busy.clone(),
            no_answer: self.known_no_answer.clone(),
        })
    }
}

const SELECT: &str =
    "SELECT u.id AS user_id, u.tenant_id AS tenant_id, t.pbx_id AS pbx_id, t.slug AS tenant, \
     u.extension AS extension, CAST(u.dnd AS INTEGER) AS dnd, u.forward_always AS forward_always, \
     u.forward_busy AS forward_busy, u.forward_no_answer AS forward_no_answer, \
     CAST(CASE WHEN f.user_id IS NULL THEN 0 ELSE 1 END AS INTEGER) AS known, \
     CAST(COALESCE(CAST(f.dnd AS INTEGER), 0) AS INTEGER) AS known_dnd, f.always AS known_always, \
     f.busy AS known_busy, f.no_answer AS known_no_answer \
     FROM users u JOIN tenants t ON t.id = u.tenant_id \
     LEFT JOIN user_features_on_pbx f ON f.user_id = u.id";

/// Every user of a PBX who is not deleted, by tenant and extension.
pub(crate) async fn of_pbx<'e, E: Executor<'e, Database = Any>>(
    e: E,
    pbx_id: i64,
) -> Result<Vec<FeatureRow>> {
    sqlx::query_as(&format!(
        "{SELECT} WHERE t.pbx_id = $1 AND u.status <> 'deleted' ORDER BY t.slug, u.extension"
    ))
    .bind(pbx_id)
    .fetch_all(e)
    .await
    .map_err(db_error)
}

/// One user (deleted or not).
pub(crate) async fn of_user<'e, E: Executor<'e, Database = Any>>(
    e: E,
    user_id: i64,
) -> Result<Option<FeatureRow>> {
    sqlx::query_as(&format!("{SELECT} WHERE u.id = $1"))
        .bind(user_id)
        .fetch_optional(e)
        .await
        .map_err(db_error)
}

/// The slugs of a PBX's tenants.
pub(crate) async fn tenant_slugs<'e, E: Executor<'e, Database = Any>>(
    e: E,
    pbx_id: i64,
) -> Result<Vec<String>> {
    sqlx::query_scalar("SELECT slug FROM tenants WHERE pbx_id = $1 ORDER BY slug")
        .bind(pbx_id)
        .fetch_all(e)
        .await
        .map_err(db_error)
}

/// Records what the PBX now holds for a user.
pub(crate) async fn set_known<'e, E: Executor<'e, Database = Any>>(
    e: E,
    user_id: i64,
    f: &Features,
    at: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO user_features_on_pbx (user_id, dnd, always, busy, no_answer, seen_at) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (user_id) DO UPDATE SET dnd = excluded.dnd, \
         always = excluded.always, busy = excluded.busy, no_answer = excluded.no_answer, \
         seen_at = excluded.seen_at",
    )
    .bind(user_id)
    .bind(f.dnd)
    .bind(f.always.clone())
    .bind(f.busy.clone())
    .bind(f.no_answer.clone())
    .bind(at)
    .execute(e)
    .await
    .map_err(db_error)?;
    Ok(())
}

/// Takes a user's features as the phone set them.
pub(crate) async fn adopt<'e, E: Executor<'e, Database = Any>>(
    e: E,
    user_id: i64,
    f: &Features,
    at: i64,
) -> Result<()> {
    sqlx::query(
        "UPDATE users SET dnd = $1, forward_always = $2, forward_busy = $3, forward_no_answer = $4, \
         version = version + 1, updated_at = $5 WHERE id = $6",
    )
    .bind(f.dnd)
    .bind(f.always.clone())
    .bind(f.busy.clone())
    .bind(f.no_answer.clone())
    .bind(at)
    .bind(user_id)
    .execute(e)
    .await
    .map_err(db_error)?;
    Ok(())
}
