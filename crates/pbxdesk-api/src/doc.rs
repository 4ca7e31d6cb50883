//! The OpenAPI 3.1 document, generated from the handlers and the model's types.

use crate::{audit::*, auth::*, me::*, pbx::*, people::*, routing::*, ApiError};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use pbxdesk_core::domain::RingStrategy;
use pbxdesk_core::model::{
    ApiToken, AuditEntry, CheckLine, CreatedApiToken, Device, DeviceStatus, Did, DidPatch, Me,
    MeDevice, MePatch, NewApiToken, NewDevice, NewDid, NewPbx, NewPolicy, NewRingGroup, NewTenant,
    NewTrunk, NewUser, Operator, Pbx, PbxPatch, Policy, PolicyPatch, PolicyRule, RevealedDevice,
    RingGroup, RingGroupPatch, RingMember, SelfServiceInvite, SelfServiceSession, Tenant,
    TenantPatch, Trunk, TrunkPatch, User, UserPatch, UserSummary,
};
use pbxdesk_core::service::ApiTokens;
use pbxdesk_core::service::{ApplyRecord, ApplyReport, Live, PbxDiff};
use pbxdesk_core::FieldProblem;
use utoipa::OpenApi;

/// This document.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "meta",
    responses((status = 200, description = "the OpenAPI 3.1 document of this API")))]
pub(crate) async fn openapi_json() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], openapi_text()).into_response()
}

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        doc.components
            .get_or_insert_with(Default::default)
            .add_security_scheme(
                "bearer",
                SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
            );
    }
}

/// Every operation can answer with the error shape, under these statuses: a request not of the
/// operation's shape (400, 415), no or a bad token (401), a right the caller lacks (403), what it
/// may not see or what is not there (404), a conflict or a refused apply (409), a value breaking
/// a rule (422), the server's own failure (500), a busy workspace (503).
struct ErrorResponses;

const ERROR_STATUSES: [(&str, &str); 10] = [
    ("400", "the request is not of this operation's shape"),
    ("401", "no token, or one unknown or expired"),
    ("403", "the caller's role does not allow it"),
    ("404", "not there, or not the caller's to see"),
    (
        "409",
        "a conflict (changed by someone else, already there) or a refused apply",
    ),
    ("415", "the body is not JSON"),
    ("422", "a value breaks a rule: `field` names it"),
    ("429", "too many failed logins: see Retry-After"),
    ("500", "the server could not do it"),
    ("503", "the workspace is busy: try again"),
];

impl utoipa::Modify for ErrorResponses {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
        for item in doc.paths.paths.values_mut() {
            let ops = [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.patch,
                &mut item.delete,
            ];
            for op in ops.into_iter().flatten() {
                for (code, what) in ERROR_STATUSES {
                    op.responses
                        .responses
                        .entry(code.to_owned())
                        .or_insert_with(|| {
                            RefOr::T(
                                ResponseBuilder::new()
                                    .description(what)
                                    .content(
                                        "application/json",
                                        ContentBuilder::new()
                                            .schema(Some(Ref::from_schema_name("ApiError")))
                                            .build(),
                                    )
                                    .build(),
                            )
                        });
                }
            }
        }
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "pbxdesk API", description = "The pbxdesk workspace over HTTP: the same services, validation and error codes as the app and the CLI."),
    paths(login, refresh, logout, token_create, token_list, token_revoke, operator_list,
        operator_add, tenants, tenant_show, tenant_create, tenant_update, tenant_users,
        user_create, user_show, user_update, user_delete, device_list, device_add, device_remove,
        device_reveal, did_list, did_add, did_update, did_remove, ring_group_list,
        ring_group_create, ring_group_show, ring_group_update, ring_group_delete, trunk_list_all, trunk_list, trunk_add,
        trunk_show, trunk_update, trunk_remove, policy_list, policy_add, policy_show,
        policy_update, policy_remove, policy_rule_insert, policy_rule_remove, pbx_list, pbx_show,
        pbx_add, pbx_update, pbx_remove, pbx_host_key, pbx_trust, pbx_check, pbx_pending,
        pbx_render, pbx_diff, pbx_trace, pbx_history, pbx_apply, pbx_status,
        audit_list, user_invite, user_self_service_remove, me_accept, me_login, me_logout,
        me_show, me_update, me_set_pin, me_password, me_devices, openapi_json),
    components(schemas(ApiError, FieldProblem, ApiTokens, Login, Refresh, NewApiToken, ApiToken, CreatedApiToken,
        Operator, NewOperator, Live, Tenant, NewTenant, TenantPatch,
        UserSummary, User, NewUser, UserPatch, Device, NewDevice, RevealedDevice, Did, NewDid,
        DidPatch, RingGroup, RingMember, NewRingGroup, RingGroupPatch, RingStrategy, Trunk, NewTrunk, TrunkPatch, Policy, NewPolicy, PolicyPatch, PolicyRule, Pbx,
        NewPbx, PbxPatch, HostKey, TrustKey, CheckLine, RenderView, PbxDiff, ApplyRecord,
        ApplyRequest, ApplyEvent, ApplyReport, AuditEntry, SelfServiceInvite,
        SelfServiceSession, Me, MePatch, MeDevice, DeviceStatus, MeLogin, MeAccept, MePin, MePassword)),
    modifiers(&BearerAuth, &ErrorResponses)
)]
struct ApiDoc;

/// The OpenAPI 3.1 document, generated from the handlers and the model's types.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    doc
}

/// The document as served and as checked in (`crates/pbxdesk-api/openapi.json`), pretty-printed.
pub fn openapi_text() -> String {
    let mut s = openapi()
        .to_pretty_json()
        .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    s.push('\n');
    s
}
