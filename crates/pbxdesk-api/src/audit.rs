//! The audit log.

use crate::{ApiResult, Caller, Filter};
use axum::extract::State;
use axum::Json;
use pbxdesk_core::model::{AuditEntry, AuditQuery};
use pbxdesk_core::Workspace;
use serde::Deserialize;

/// Which audit entries to list.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditParams {
    /// One tenant's entries (its slug); all the caller may see when absent.
    pub tenant: Option<String>,
    /// The newest this many (1 to 10,000; 100 when absent).
    pub limit: Option<u32>,
}

/// Who did what, newest first: secrets never in it. A tenant_admin sees its tenants' entries.
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", security(("bearer" = [])),
    params(AuditParams), responses((status = 200, body = [AuditEntry])))]
pub(crate) async fn audit_list(
    State(ws): State<Workspace>,
    Caller(a): Caller,
    Filter(q): Filter<AuditParams>,
) -> ApiResult<Vec<AuditEntry>> {
    let q = AuditQuery {
        tenant: q.tenant,
        limit: q.limit,
    };
    Ok(Json(ws.audit_list(&a, &q).await?))
}
