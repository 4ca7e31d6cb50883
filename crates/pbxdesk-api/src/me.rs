//! End users' self-service under `/api/v1/me`: a user taking their invite, logging in, and
//! seeing and changing their own DND, forwards and voicemail PIN, and their devices' status.
//! An end user's token (`pbxu_…`) opens these routes only; an operator's opens none of them.
//! The operator's side (invite, remove) is here too, on `/api/v1/users/{id}`.

use crate::auth::throttled;
use crate::{
    bearer, client_via, no_store, ApiError, ApiResult, Caller, Input, LoginThrottle, Param, Source,
};
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Json;
use pbxdesk_core::model::{Me, MeDevice, MePatch, SelfServiceInvite, SelfServiceSession};
use pbxdesk_core::service::{EndUser, END_USER_TOKEN_PREFIX};
use pbxdesk_core::{ErrorCode, Workspace};
use secrecy::SecretString;
use serde::Deserialize;

/// The end user a request's bearer token stands for.
pub struct EndUserCaller(pub EndUser);

impl FromRequestParts<Workspace> for EndUserCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, ws: &Workspace) -> Result<Self, ApiError> {
        let token = bearer(&parts.headers)?;
        if !token.starts_with(END_USER_TOKEN_PREFIX) {
            return Err(ApiError::new(
                ErrorCode::Forbidden,
                "these routes are a user's own self-service: operators and tokens use /api/v1/users",
            ));
        }
        let Source(source) = Source::from_parts(parts);
        Ok(EndUserCaller(
            ws.end_user(token, &client_via(source)).await?,
        ))
    }
}

/// A user's login: their tenant, e-mail and the password they set with their invite.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MeLogin {
    /// The tenant's slug (in the invite's link).
    pub tenant: String,
    pub email: String,
    pub password: String,
}

/// An invite taken with the user's new password.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MeAccept {
    /// The invite (`pbxi_…`) an operator gave.
    pub invite: String,
    /// 12 to 1,024 characters.
    pub password: String,
}

/// A new voicemail PIN.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MePin {
    /// 4 to 10 digits.
    pub pin: String,
}

/// A password change: the current one, then the new one.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MePassword {
    pub current_password: String,
    /// 12 to 1,024 characters.
    pub new_password: String,
}

/// Takes an invite: sets the user's password and logs them in.
#[utoipa::path(post, path = "/api/v1/me/accept", tag = "self-service", request_body = MeAccept,
    responses((status = 200, body = SelfServiceSession), (status = 401, body = ApiError),
        (status = 422, body = ApiError)))]
pub(crate) async fn me_accept(
    State(ws): State<Workspace>,
    Source(source): Source,
    Input(a): Input<MeAccept>,
) -> Result<Response, ApiError> {
    let via = client_via(source);
    let session = ws
        .self_service_accept(&a.invite, &SecretString::from(a.password), Some(&via))
        .await?;
    Ok(no_store(StatusCode::OK, session))
}

/// Logs a user in for self-service. Failed logins are throttled like operators' (per e-mail
/// and per source address).
#[utoipa::path(post, path = "/api/v1/me/login", tag = "self-service", request_body = MeLogin,
    responses((status = 200, body = SelfServiceSession), (status = 401, body = ApiError),
        (status = 429, body = ApiError, description = "too many failed logins: see Retry-After")))]
pub(crate) async fn me_login(
    State(ws): State<Workspace>,
    axum::Extension(throttle): axum::Extension<std::sync::Arc<LoginThrottle>>,
    Source(source): Source,
    Input(l): Input<MeLogin>,
) -> Result<Json<SelfServiceSession>, Response> {
    // An end user's name never meets an operator's in the throttle (operators' have no ':').
    let keys = LoginThrottle::keys(&format!("user:{}/{}", l.tenant, l.email), source);
    let password = SecretString::from(l.password);
    let attempt = ws.self_service_login(&l.tenant, &l.email, &password);
    throttled(&ws, &throttle, &keys, attempt).await
}

/// Ends the request's session.
#[utoipa::path(post, path = "/api/v1/me/logout", tag = "self-service", security(("bearer" = [])),
    responses((status = 204), (status = 401, body = ApiError)))]
pub(crate) async fn me_logout(
    State(ws): State<Workspace>,
    EndUserCaller(_me): EndUserCaller,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    ws.self_service_logout(bearer(&headers)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The user's own settings.
#[utoipa::path(get, path = "/api/v1/me", tag = "self-service", security(("bearer" = [])),
    responses((status = 200, body = Me), (status = 401, body = ApiError)))]
pub(crate) async fn me_show(
    State(ws): State<Workspace>,
    EndUserCaller(me): EndUserCaller,
) -> ApiResult<Me> {
    Ok(Json(ws.me_show(&me).await?))
}

/// Changes the user's DND and forwards (on the PBX at once when it can be reached).
#[utoipa::path(patch, path = "/api/v1/me", tag = "self-service", security(("bearer" = [])),
    request_body = MePatch,
    responses((status = 200, body = Me), (status = 409, body = ApiError),
        (status = 422, body = ApiError)))]
pub(crate) async fn me_update(
    State(ws): State<Workspace>,
    EndUserCaller(me): EndUserCaller,
    Input(patch): Input<MePatch>,
) -> ApiResult<Me> {
    Ok(Json(ws.me_update(&me, &patch).await?))
}

/// Sets the user's voicemail PIN (in the mailbox at once when the PBX can be reached).
#[utoipa::path(put, path = "/api/v1/me/voicemail-pin", tag = "self-service",
    security(("bearer" = [])), request_body = MePin,
    responses((status = 200, body = Me), (status = 422, body = ApiError)))]
pub(crate) async fn me_set_pin(
    State(ws): State<Workspace>,
    EndUserCaller(me): EndUserCaller,
    Input(p): Input<MePin>,
) -> ApiResult<Me> {
    Ok(Json(
        ws.me_set_voicemail_pin(&me, &SecretString::from(p.pin))
            .await?,
    ))
}

/// Changes the user's password; their other sessions end, this one goes on.
#[utoipa::path(put, path = "/api/v1/me/password", tag = "self-service",
    security(("bearer" = [])), request_body = MePassword,
    responses((status = 204), (status = 422, body = ApiError)))]
pub(crate) async fn me_password(
    State(ws): State<Workspace>,
    EndUserCaller(me): EndUserCaller,
    Input(p): Input<MePassword>,
) -> Result<StatusCode, ApiError> {
    ws.me_change_password(
        &me,
        &SecretString::from(p.current_password),
        &SecretString::from(p.new_password),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The user's devices and whether each is registered now (`unknown` when the PBX cannot be
/// reached within a few seconds).
#[utoipa::path(get, path = "/api/v1/me/devices", tag = "self-service",
    security(("bearer" = [])),
    responses((status = 200, body = [MeDevice]), (status = 401, body = ApiError)))]
pub(crate) async fn me_devices(
    State(ws): State<Workspace>,
    EndUserCaller(me): EndUserCaller,
) -> ApiResult<Vec<MeDevice>> {
    Ok(Json(ws.me_devices(&me).await?))
}

/// Invites a user to self-service (whoever may edit the user). The invite is in the answer,
/// this once; a new one replaces one not yet taken.
#[utoipa::path(post, path = "/api/v1/users/{id}/invite", tag = "users",
    security(("bearer" = [])), params(("id" = i64, Path, description = "the user's id")),
    responses((status = 201, body = SelfServiceInvite), (status = 403, body = ApiError),
        (status = 404, body = ApiError), (status = 409, body = ApiError)))]
pub(crate) async fn user_invite(
    State(ws): State<Workspace>,
    Caller(a): Caller,
    Param(id): Param<i64>,
) -> Result<Response, ApiError> {
    Ok(no_store(StatusCode::CREATED, ws.user_invite(&a, id).await?))
}

/// Ends a user's self-service: invite, password and sessions.
#[utoipa::path(delete, path = "/api/v1/users/{id}/self-service", tag = "users",
    security(("bearer" = [])), params(("id" = i64, Path, description = "the user's id")),
    responses((status = 204), (status = 403, body = ApiError), (status = 404, body = ApiError)))]
pub(crate) async fn user_self_service_remove(
    State(ws): State<Workspace>,
    Caller(a): Caller,
    Param(id): Param<i64>,
) -> Result<StatusCode, ApiError> {
    ws.user_self_service_remove(&a, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
