//! Tenants, their users and the users' devices.

use crate::{no_store, ApiError, ApiResult, Caller, Input, Param};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use pbxdesk_core::model::{
    Device, NewDevice, NewTenant, NewUser, RevealedDevice, Tenant, TenantPatch, User, UserPatch,
    UserSummary,
};
use pbxdesk_core::Workspace;

/// The tenants the caller may see.
#[utoipa::path(get, path = "/api/v1/tenants", tag = "tenants", security(("bearer" = [])),
    responses((status = 200, body = [Tenant]), (status = 401, body = ApiError)))]
pub(crate) async fn tenants(
    State(ws): State<Workspace>,
    Caller(a): Caller,
) -> ApiResult<Vec<Tenant>> {
    Ok(Json(ws.tenant_list(&a).await?))
}

/// One tenant.
#[utoipa::path(get, path = "/api/v1/tenants/{slug}", tag = "tenants", security(("bearer" = [])),
    params(("slug" = String, Path, description = "the tenant's slug")),
    responses((status = 200, body = Tenant), (status = 401, body = ApiError),
        (status = 404, body = ApiError)))]
pub(crate) async fn tenant_show(
    State(ws): State<Workspace>,
    Caller(a): Caller,
    Param(slug): Param<String>,
) -> ApiResult<Tenant> {
    Ok(Json(ws.tenant_show(&a, &slug).await?))
}

/// Creates a tenant on a PBX with its extension range (MSP roles).
#[utoipa::path(post, path = "/api/v1/tenants", tag = "tenants", security(("bearer" = [])),
    request_body = NewTenant,
    responses((status = 201, body = Tenant), (status = 401, body = ApiError),
        (status = 403, body = ApiError), (status = 409, body = ApiError),
        (status = 422, body = ApiError)))]
pub(crate) async fn tenant_create(
    State(ws): State<Workspace>,
    Caller(a): Caller,
    Input(input): Input<NewTenant>,
) -> Result<(StatusCode, Json<Tenant>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(ws.tenant_create(&a, &input).await?),
    ))
}

/// Changes a tenant (MSP roles).
#[utoipa::path(patch, path = "/api/v1/tenants/{slug}", tag = "tenants", security(("bearer" = [])),
    params(("slug" = String, Path, description = "the tenant's slug")), request_body = TenantPatch,
    responses((status = 200, body = Tenant), (status = 401, body = ApiError),
        (status = 403, body = ApiError), (status = 404, body = ApiError),
        (status = 409, body = ApiError), (status = 422, body = ApiError)))]
pub(crate) async fn tenant_update(
    State(ws): State<Workspace>,
    Caller(a): Caller,
    Param(slug): Param<String>,
    Input(patch): Input<TenantPatch>,
) -> ApiResult<Tenant> {
    Ok(Json(ws.tenant_update(&a, &slug, &patch).await?))
}

/// A tenant's users.
#[utoipa::path(get, path = "/api/v1/tenants/{slug}/users", tag = "users",
    security(("bearer" = [])), params(("slug" = String, Path, description = "the tenant's slug")),
    responses((status = 200, body = [UserSummary]), (status = 401, body = ApiError),
        (status = 404, body = ApiError)))]
pub(crate) async fn tenant_users(
    State(ws): State<Workspace>,
    Caller(a): Caller,
    Param(slug): Param<String>,
) -> ApiResult<Vec<UserSummary>> {
    Ok(Json(ws.user_list(&a, &slug).await?))
}

/// Creates a user: the lowest free extension of the tenant's range (or the one asked for), a
/// device with its own SIP credentials, voicemail.
#[utoipa::path(post, path = "/api/v1/users", tag = "users", security(("bearer" = [])),
    request_body = NewUser,
    responses((status = 201, body = User), (status = 401, body = ApiError),
        (status = 404, body = ApiError), (status = 409, body = ApiError),
        (status = 422, body = ApiError)))]
pub(crate) async fn user_create(
    State(ws): State<Workspace>,
    Caller(a): Caller,
    Input(input): Input<NewUser>,
) -> Result<(StatusCode, Json<User>), ApiError> {
    Ok((StatusCode::CREATED, Json(ws.user_create(&a, &input).await?)))
}

/// A user with their devices (no secret: a device's password is revealed on its own).
#[utoipa::path(get, path = "/api/v1/users/{id}", tag = "users", security(("bearer" = [])),
    params(("id" = i64, Path, description = "the user's id")),
    responses((status = 200, body = User), (status = 401, body = ApiError),
        (status = 404, body = ApiError)))]
pub(crate) async fn user_show(
    State(ws): State<Workspace>,
    Caller(a): Caller,
    Param(id): Param<i64>,
) -> ApiResult<User> {
    Ok(Json(ws.user_show(&a, id).await?))
}

/// Changes a user; DND, forwards and the voicemail PIN go to the PBX at once when it can be
/// reached (else they are pending, as the answer says).
#[utoipa::path(patch, path = "/api/v1/users/{id}", tag = "users", security(("bearer" = [])),
    params(("id" = i64, Path, description = "the user's id")), request_body = UserPatch,
    responses((status = 200, body = User), (status = 401, body = ApiError),
        (status = 404, body = ApiError), (status = 409, body = ApiError),
        (status = 422, body = ApiError)))]
pub(crate) async fn user_update(
    State(ws): State<Workspace>,
    Caller(a): Caller,
    Param(id): Param<i64>,
    Input(patch): Input<UserPatch>,
) -> ApiResult<User> {
    Ok(Json(ws.user_update(&a, id, &patch).await?))
}

/// Deletes a user: the devices go with it; the extension is held back for the quarantine.
#[utoipa::path(delete, path = "/api/v1/users/{id}", tag = "users", security(("bearer" = [])),
    params(("id" = i64, Path, description = "the user's id")),
    responses((status = 200, body = User), (status = 401, body = ApiError),
        (status = 403, body = ApiError), (status = 404, body = ApiError)))]
pub(crate) async fn user_delete(
    State(ws): State<Workspace>,
    Caller(a): Caller,
    Param(id): Param<i64>,
) -> ApiResult<User> {
    Ok(Json(ws.user_delete(&a, id).await?))
}

/// A user's devices.
#[utoipa::path(get, path = "/api/v1/users/{id}/devices", tag = "devices", security(("bearer" = [])),
    params(("id" = i64, Path, description = "the user's id")),
    responses((status = 200, body = [Device]), (status = 401, body = ApiError),
        (status = 404, body = ApiError)))]
pub(crate) async fn device_list(
    State(ws): State<Workspace>,
    Caller(a): Caller,
    Param(id): Param<i64>,
) -> ApiResult<Vec<Device>> {
    Ok(Json(ws.device_list(&a, id).await?))
}

/// Adds a device to a user, with SIP credentials of its own.
#[utoipa::path(post, path = "/api/v1/users/{id}/devices", tag = "devices", security(("bearer" = [])),
    params(("id" = i64, Path, description = "the user's id")), request_body = NewDevice,
    responses((status = 201, body = Device), (status = 401, body = ApiError),
        (status = 403, body = ApiError), (status = 404, body = ApiError),
        (status = 409, body = ApiError), (status = 422, body = ApiError)))]
pub(crate) async fn device_add(
    State(ws): State<Workspace>,
    Caller(a): Caller,
    Param(id): Param<i64>,
    Input(input): Input<NewDevice>,
) -> Result<(StatusCode, Json<Device>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(ws.device_add(&a, id, &input).await?),
    ))
}

/// Removes a device.
#[utoipa::path(delete, path = "/api/v1/devices/{id}", tag = "devices", security(("bearer" = [])),
    params(("id" = i64, Path, description = "the device's id")),
    responses((status = 200, body = Device), (status = 401, body = ApiError),
        (status = 403, body = ApiError), (status = 404, body = ApiError)))]
pub(crate) async fn device_remove(
    State(ws): State<Workspace>,
    Caller(a): Caller,
    Param(id): Param<i64>,
) -> ApiResult<Device> {
    Ok(Json(ws.device_remove(&a, id).await?))
}

/// A device's SIP password in clear, for provisioning a phone; audited. Never cached.
#[utoipa::path(post, path = "/api/v1/devices/{id}/reveal", tag = "devices", security(("bearer" = [])),
    params(("id" = i64, Path, description = "the device's id")),
    responses((status = 200, body = RevealedDevice), (status = 401, body = ApiError),
        (status = 403, body = ApiError), (status = 404, body = ApiError)))]
pub(crate) async fn device_reveal(
    State(ws): State<Workspace>,
    Caller(a): Caller,
    Param(id): Param<i64>,
) -> Result<Response, ApiError> {
    Ok(no_store(StatusCode::OK, ws.device_reveal(&a, id).await?))
}
