//! pbxdesk's embedded HTTP API, versioned under `/api/v1`: one more front end over the same
//! services as the app and the CLI (the same validation, the same error codes, mapped to HTTP
//! statuses). Operators log in for a bearer token (`auth`); the OpenAPI 3.1 document is
//! generated from the handlers and the model's types ([`openapi`]) and served at
//! `/api/v1/openapi.json`.
//!
//! First part: login, refresh and logout; tenants; users; devices (the password revealed,
//! audited, never cached); inbound numbers; PBXs read; the audit. The rest of the operations
//! follow the same shape.

use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, patch, post};
use axum::{Json, Router};
use pbxdesk_core::model::{
    AuditEntry, AuditQuery, Device, Did, DidPatch, NewDevice, NewDid, NewTenant, NewUser, Pbx,
    RevealedDevice, Tenant, TenantPatch, User, UserPatch, UserSummary,
};
use pbxdesk_core::service::ApiTokens;
use pbxdesk_core::{Actor, ErrorCode, Workspace};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use utoipa::OpenApi;

/// An error as every front end words it: the code, the message, the field it concerns.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    /// The input field a validation error concerns.
    pub field: Option<String>,
    #[serde(skip)]
    status: StatusCode,
}

/// The HTTP status of each error code.
pub fn status_of(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::Validation => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorCode::NotFound => StatusCode::NOT_FOUND,
        ErrorCode::Conflict | ErrorCode::Refused => StatusCode::CONFLICT,
        ErrorCode::Forbidden => StatusCode::FORBIDDEN,
        ErrorCode::Unauthenticated => StatusCode::UNAUTHORIZED,
        ErrorCode::Busy => StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::Unreachable => StatusCode::BAD_GATEWAY,
        ErrorCode::Key | ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl From<pbxdesk_core::Error> for ApiError {
    fn from(e: pbxdesk_core::Error) -> Self {
        let field = match &e {
            pbxdesk_core::Error::Validation(v) => Some(v.field.clone()),
            _ => None,
        };
        let code = e.code();
        let message = match code {
            // What went wrong inside is the server's log's, not the caller's.
            ErrorCode::Internal | ErrorCode::Key => {
                tracing::error!(error = %e, "an API request failed");
                "the server could not do it; see its log".to_owned()
            }
            _ => e.to_string(),
        };
        ApiError {
            code,
            message,
            field,
            status: status_of(code),
        }
    }
}

impl ApiError {
    fn new(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            message: message.into(),
            field: None,
            status: status_of(code),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut r = (self.status, Json(&self)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
        }
        r
    }
}

type ApiResult<T> = Result<Json<T>, ApiError>;

/// A JSON request body; one that does not parse is answered in the API's error shape (code
/// `validation`, the parser's words), like every other error.
pub struct Input<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> axum::extract::FromRequest<S> for Input<T> {
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(Input(v)),
            Err(r) => Err(ApiError {
                code: ErrorCode::Validation,
                message: r.body_text(),
                field: None,
                status: r.status(),
            }),
        }
    }
}

/// Query parameters; ones of the wrong type (`?limit=many`) are answered in the error shape.
pub struct Filter<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> FromRequestParts<S> for Filter<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(Filter(v)),
            Err(r) => Err(ApiError {
                code: ErrorCode::Validation,
                message: r.body_text(),
                field: None,
                status: r.status(),
            }),
        }
    }
}

/// A path parameter; one of the wrong type (`/users/abc`) is answered in the error shape.
pub struct Param<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned + Send> FromRequestParts<S> for Param<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(v)) => Ok(Param(v)),
            Err(r) => Err(ApiError {
                code: ErrorCode::Validation,
                message: r.body_text(),
                field: None,
                status: r.status(),
            }),
        }
    }
}

/// The operator a request's bearer token stands for.
pub struct Caller(pub Actor);

/// The bearer token of a request, as sent.
fn bearer(headers: &HeaderMap) -> Result<&str, ApiError> {
    let value = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::Unauthenticated,
                "an `Authorization: Bearer TOKEN` header is needed: POST /api/v1/auth/login gives one",
            )
        })?;
    // The scheme's name is case-insensitive (RFC 9110).
    value
        .get(..7)
        .filter(|scheme| scheme.eq_ignore_ascii_case("bearer "))
        .map(|_| value[7..].trim())
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::Unauthenticated,
                "the Authorization header must be `Bearer TOKEN`",
            )
        })
}

impl FromRequestParts<Workspace> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, ws: &Workspace) -> Result<Self, ApiError> {
        let token = bearer(&parts.headers)?;
        let actor = ws.api_actor(token).await?;
        let from = parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map_or_else(|| "api".to_owned(), |c| format!("api {}", c.0.ip()));
        Ok(Caller(actor.from_source(&from)))
    }
}

/// An operator's name and password.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct Login {
    pub username: String,
    pub password: String,
}

/// A refresh token, given at login or at the last refresh.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct Refresh {
    pub refresh_token: String,
}

/// Failed logins allowed per operator name, and per source address, within `LOGIN_WINDOW_MS`.
pub const LOGIN_FAILURES: u32 = 10;
/// The window failed logins are counted in; a name or address over the limit waits it out.
pub const LOGIN_WINDOW_MS: i64 = 5 * 60 * 1000;
/// Past this many names and addresses tracked, windows that ended are dropped.
const LOGIN_TRACKED: usize = 10_000;

/// Failed logins, per operator name and per source address, in this process. Over the limit,
/// that name or address is refused (429, `Retry-After`) until its window ends, even with the
/// right password: guessing stops, and argon2 is not spent on it. Logins that succeed do not
/// count, so a script that logs in often is never slowed. (A failure counter, not a request
/// rate limiter: a GCRA crate such as governor counts every request, the good ones too.)
#[derive(Default)]
pub struct LoginThrottle(std::sync::Mutex<std::collections::HashMap<String, (i64, u32)>>);

impl LoginThrottle {
    fn keys(name: &str, source: Option<std::net::IpAddr>) -> Vec<String> {
        let name: String = name.trim().to_lowercase().chars().take(64).collect();
        let mut keys = vec![format!("name:{name}")];
        if let Some(ip) = source {
            keys.push(format!("addr:{ip}"));
        }
        keys
    }

    fn map(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, (i64, u32)>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Seconds until the first of `keys` over the limit may try again.
    fn blocked(&self, keys: &[String], now: i64) -> Option<i64> {
        let map = self.map();
        keys.iter()
            .filter_map(|k| map.get(k))
            .filter(|(start, n)| *n >= LOGIN_FAILURES && now < start + LOGIN_WINDOW_MS)
            .map(|(start, _)| (start + LOGIN_WINDOW_MS - now + 999) / 1000)
            .max()
    }

    fn failed(&self, keys: &[String], now: i64) {
        let mut map = self.map();
        if map.len() >= LOGIN_TRACKED {
            map.retain(|_, (start, _)| now < *start + LOGIN_WINDOW_MS);
        }
        for k in keys {
            let e = map.entry(k.clone()).or_insert((now, 0));
            if now >= e.0 + LOGIN_WINDOW_MS {
                *e = (now, 0);
            }
            e.1 = e.1.saturating_add(1);
        }
    }
}

/// The address a request came from, when the server knows it (`pbxdesk serve` does).
pub struct Source(pub Option<std::net::IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for Source {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Source(
            parts
                .extensions
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                .map(|c| c.0.ip()),
        ))
    }
}

/// Logs an operator in: an access token (15 minutes) and a refresh token. After
/// `LOGIN_FAILURES` failed logins of a name, or from an address, within 5 minutes, that name or
/// address waits the window out (429).
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = Login,
    responses((status = 200, body = ApiTokens), (status = 401, body = ApiError),
        (status = 429, body = ApiError, description = "too many failed logins: see Retry-After")))]
async fn login(
    State(ws): State<Workspace>,
    axum::Extension(throttle): axum::Extension<std::sync::Arc<LoginThrottle>>,
    Source(source): Source,
    Input(l): Input<Login>,
) -> Result<Json<ApiTokens>, Response> {
    let keys = LoginThrottle::keys(&l.username, source);
    let now = ws.clock().now_ms();
    if let Some(secs) = throttle.blocked(&keys, now) {
        let mut e = ApiError::new(
            ErrorCode::Busy,
            format!("too many failed logins for this operator or from this address: try again in {secs} s"),
        );
        e.status = StatusCode::TOO_MANY_REQUESTS;
        let mut r = e.into_response();
        if let Ok(v) = header::HeaderValue::from_str(&secs.to_string()) {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return Err(r);
    }
    match ws
        .api_login(&l.username, &SecretString::from(l.password))
        .await
    {
        Ok(t) => Ok(Json(t)),
        Err(e) => {
            if e.code() == ErrorCode::Unauthenticated {
                throttle.failed(&keys, now);
            }
            Err(ApiError::from(e).into_response())
        }
    }
}

/// A new token pair for a refresh token, which is used up.
#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "auth", request_body = Refresh,
    responses((status = 200, body = ApiTokens), (status = 401, body = ApiError)))]
async fn refresh(State(ws): State<Workspace>, Input(r): Input<Refresh>) -> ApiResult<ApiTokens> {
    Ok(Json(ws.api_refresh(&r.refresh_token).await?))
}

/// Ends the request's access token.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth", security(("bearer" = [])),
    responses((status = 204), (status = 401, body = ApiError)))]
async fn logout(State(ws): State<Workspace>, headers: HeaderMap) -> Result<StatusCode, ApiError> {
    let token = bearer(&headers)?;
    ws.api_actor(token).await?;
    ws.api_logout(token).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The tenants the caller may see.
#[utoipa::path(get, path = "/api/v1/tenants", tag = "tenants", security(("bearer" = [])),
    responses((status = 200, body = [Tenant]), (status = 401, body = ApiError)))]
async fn tenants(State(ws): State<Workspace>, Caller(a): Caller) -> ApiResult<Vec<Tenant>> {
    Ok(Json(ws.tenant_list(&a).await?))
}

/// A tenant's users.
#[utoipa::path(get, path = "/api/v1/tenants/{slug}/users", tag = "users",
    security(("bearer" = [])), params(("slug" = String, Path, description = "the tenant's slug")),
    responses((status = 200, body = [UserSummary]), (status = 401, body = ApiError),
        (status = 404, body = ApiError)))]
async fn tenant_users(
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
async fn user_create(
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
async fn user_show(
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
async fn user_update(
    State(ws): State<Workspace>,
    Caller(a): Caller,
    Param(id): Param<i64>,
    Input(patch): Input<UserPatch>,
) -> ApiResult<User> {
    Ok(Json(ws.user_update(&a, id, &patch).await?))
}

/// One tenant.
#[utoipa::path(get, path = "/api/v1/tenants/{slug}", tag = "tenants", security(("bearer" = [])),
    params(("slug" = String, Path, description = "the tenant's slug")),
    responses((status = 200, body = Tenant), (status = 401, body = ApiError),
        (status = 404, body = ApiError)))]
async fn tenant_show(
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
async fn tenant_create(
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
async fn tenant_update(
    State(ws): State<Workspace>,
    Caller(a): Caller,
    Param(slug): Param<String>,
    Input(patch): Input<TenantPatch>,
) -> ApiResult<Tenant> {
    Ok(Json(ws.tenant_update(&a, &slug, &patch).await?))
}

/// Deletes a user: the devices go with it; the extension is held back for the quarantine.
#[utoipa::path(delete, path = "/api/v1/users/{id}", tag = "users", security(("bearer" = [])),
    params(("id" = i64, Path, description = "the user's id")),
    responses((status = 200, body = User), (status = 401, body = ApiError),
        (status = 403, body = ApiError), (status = 404, body = ApiError)))]
async fn user_delete(
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
async fn device_list(
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
async fn device_add(
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
async fn device_remove(
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
async fn device_reveal(
    State(ws): State<Workspace>,
    Caller(a): Caller,
    Param(id): Param<i64>,
) -> Result<Response, ApiError> {
    let revealed = ws.device_reveal(&a, id).await?;
    Ok(([(header::CACHE_CONTROL, "no-store")], Json(revealed)).into_response())
}

/// A tenant's inbound numbers.
#[utoipa::path(get, path = "/api/v1/tenants/{slug}/dids", tag = "dids", security(("bearer" = [])),
    params(("slug" = String, Path, description = "the tenant's slug")),
    responses((status = 200, body = [Did]), (status = 401, body = ApiError),
        (status = 404, body = ApiError)))]
async fn did_list(
    State(ws): State<Workspace>,
    Caller(a): Caller,
    Param(slug): Param<String>,
) -> ApiResult<Vec<Did>> {
    Ok(Json(ws.did_list(&a, &slug).await?))
}

/// Routes an inbound number (normalized to E.164, unique on its PBX) to a destination.
#[utoipa::path(post, path = "/api/v1/dids", tag = "dids", security(("bearer" = [])),
    request_body = NewDid,
    responses((status = 201, body = Did), (status = 401, body = ApiError),
        (status = 403, body = ApiError), (status = 404, body = ApiError),
        (status = 409, body = ApiError), (status = 422, body = ApiError)))]
async fn did_add(
    State(ws): State<Workspace>,
    Caller(a): Caller,
    Input(input): Input<NewDid>,
) -> Result<(StatusCode, Json<Did>), ApiError> {
    Ok((StatusCode::CREATED, Json(ws.did_add(&a, &input).await?)))
}

/// Changes where a number goes.
#[utoipa::path(patch, path = "/api/v1/dids/{number}", tag = "dids", security(("bearer" = [])),
    params(("number" = String, Path, description = "the number in E.164, e.g. +41445551234")),
    request_body = DidPatch,
    responses((status = 200, body = Did), (status = 401, body = ApiError),
        (status = 403, body = ApiError), (status = 404, body = ApiError),
        (status = 409, body = ApiError), (status = 422, body = ApiError)))]
async fn did_update(
    State(ws): State<Workspace>,
    Caller(a): Caller,
    Param(number): Param<String>,
    Input(patch): Input<DidPatch>,
) -> ApiResult<Did> {
    Ok(Json(ws.did_update(&a, &number, &patch).await?))
}

/// Removes a number.
#[utoipa::path(delete, path = "/api/v1/dids/{number}", tag = "dids", security(("bearer" = [])),
    params(("number" = String, Path, description = "the number in E.164")),
    responses((status = 200, body = Did), (status = 401, body = ApiError),
        (status = 403, body = ApiError), (status = 404, body = ApiError)))]
async fn did_remove(
    State(ws): State<Workspace>,
    Caller(a): Caller,
    Param(number): Param<String>,
) -> ApiResult<Did> {
    Ok(Json(ws.did_remove(&a, &number).await?))
}

/// The PBXs and how each is reached (no secret: only whether each is set).
#[utoipa::path(get, path = "/api/v1/pbxs", tag = "pbxs", security(("bearer" = [])),
    responses((status = 200, body = [Pbx])))]
async fn pbx_list(State(ws): State<Workspace>, Caller(a): Caller) -> ApiResult<Vec<Pbx>> {
    Ok(Json(ws.pbx_list(&a).await?))
}

/// One PBX.
#[utoipa::path(get, path = "/api/v1/pbxs/{name}", tag = "pbxs", security(("bearer" = [])),
    params(("name" = String, Path, description = "the PBX's name")),
    responses((status = 200, body = Pbx)))]
async fn pbx_show(
    State(ws): State<Workspace>,
    Caller(a): Caller,
    Param(name): Param<String>,
) -> ApiResult<Pbx> {
    Ok(Json(ws.pbx_show(&a, &name).await?))
}

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
async fn audit_list(
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

/// This document.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "meta",
    responses((status = 200, description = "the OpenAPI 3.1 document of this API")))]
async fn openapi_json() -> Response {
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
    paths(login, refresh, logout, tenants, tenant_show, tenant_create, tenant_update, tenant_users,
        user_create, user_show, user_update, user_delete, device_list, device_add, device_remove,
        device_reveal, did_list, did_add, did_update, did_remove, pbx_list, pbx_show,
        audit_list, openapi_json),
    components(schemas(ApiError, ApiTokens, Login, Refresh, Tenant, NewTenant, TenantPatch,
        UserSummary, User, NewUser, UserPatch, Device, NewDevice, RevealedDevice, Did, NewDid,
        DidPatch, Pbx, AuditEntry)),
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

/// The API's routes over a workspace.
pub fn router(ws: Workspace) -> Router {
    Router::new()
        .route("/api/v1/auth/login", post(login))
        .route("/api/v1/auth/refresh", post(refresh))
        .route("/api/v1/auth/logout", post(logout))
        .route("/api/v1/tenants", get(tenants).post(tenant_create))
        .route(
            "/api/v1/tenants/{slug}",
            get(tenant_show).patch(tenant_update),
        )
        .route("/api/v1/tenants/{slug}/users", get(tenant_users))
        .route("/api/v1/tenants/{slug}/dids", get(did_list))
        .route("/api/v1/users", post(user_create))
        .route(
            "/api/v1/users/{id}",
            get(user_show).patch(user_update).delete(user_delete),
        )
        .route(
            "/api/v1/users/{id}/devices",
            get(device_list).post(device_add),
        )
        .route("/api/v1/devices/{id}", delete(device_remove))
        .route("/api/v1/devices/{id}/reveal", post(device_reveal))
        .route("/api/v1/pbxs", get(pbx_list))
        .route("/api/v1/pbxs/{name}", get(pbx_show))
        .route("/api/v1/audit", get(audit_list))
        .route("/api/v1/dids", post(did_add))
        .route(
            "/api/v1/dids/{number}",
            patch(did_update).delete(did_remove),
        )
        .route("/api/v1/openapi.json", get(openapi_json))
        .layer(axum::Extension(std::sync::Arc::new(
            LoginThrottle::default(),
        )))
        .fallback(|| async {
            ApiError::new(
                ErrorCode::NotFound,
                "no such API route: see /api/v1/openapi.json",
            )
        })
        .with_state(ws)
}

/// Serves the API on `listen` until the process is stopped. Plain HTTP is refused on anything
/// but loopback: tokens and passwords would cross the network in clear (TLS comes next).
pub async fn serve(ws: Workspace, listen: std::net::SocketAddr) -> std::io::Result<()> {
    if !listen.ip().is_loopback() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!(
                "{listen}: plain HTTP is served on loopback only (127.0.0.1 or ::1); passwords and tokens would cross the network in clear"
            ),
        ));
    }
    let listener = tokio::net::TcpListener::bind(listen).await?;
    // The peer's address reaches the handlers (the login throttle counts by it).
    axum::serve(
        listener,
        router(ws).into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .await
}
