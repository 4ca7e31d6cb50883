//! Logging in: operators' sessions (access and refresh tokens), the failed-login throttle,
//! and the automation tokens an msp_admin makes.

use crate::{bearer, no_store, ApiError, ApiResult, Caller, Input, Param, Source};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use pbxdesk_core::domain::Role;
use pbxdesk_core::model::{ApiToken, CreatedApiToken, NewApiToken, Operator};
use pbxdesk_core::service::ApiTokens;
use pbxdesk_core::{ErrorCode, Workspace};
use secrecy::SecretString;
use serde::Deserialize;

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
    pub(crate) fn keys(name: &str, source: Option<std::net::IpAddr>) -> Vec<String> {
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

/// Logs an operator in: an access token (15 minutes) and a refresh token. After
/// `LOGIN_FAILURES` failed logins of a name, or from an address, within 5 minutes, that name or
/// address waits the window out (429).
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = Login,
    responses((status = 200, body = ApiTokens), (status = 401, body = ApiError),
        (status = 429, body = ApiError, description = "too many failed logins: see Retry-After")))]
pub(crate) async fn login(
    State(ws): State<Workspace>,
    axum::Extension(throttle): axum::Extension<std::sync::Arc<LoginThrottle>>,
    Source(source): Source,
    Input(l): Input<Login>,
) -> Result<Json<ApiTokens>, Response> {
    let keys = LoginThrottle::keys(&l.username, source);
    let password = SecretString::from(l.password);
    let attempt = ws.api_login(&l.username, &password);
    throttled(&ws, &throttle, &keys, attempt).await
}

/// A login attempt under the throttle: refused (429, `Retry-After`) while one of `keys` is over
/// the limit; a failure counts against each of them.
pub(crate) async fn throttled<T: serde::Serialize>(
    ws: &Workspace,
    throttle: &LoginThrottle,
    keys: &[String],
    attempt: impl std::future::Future<Output = pbxdesk_core::Result<T>>,
) -> Result<Json<T>, Response> {
    let now = ws.clock().now_ms();
    if let Some(secs) = throttle.blocked(keys, now) {
        let mut e = ApiError::new(
            ErrorCode::Busy,
            format!(
                "too many failed logins for this name or from this address: try again in {secs} s"
            ),
        );
        e.status = StatusCode::TOO_MANY_REQUESTS;
        let mut r = e.into_response();
        if let Ok(v) = header::HeaderValue::from_str(&secs.to_string()) {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return Err(r);
    }
    match attempt.await {
        Ok(t) => Ok(Json(t)),
        Err(e) => {
            if e.code() == ErrorCode::Unauthenticated {
                throttle.failed(keys, now);
            }
            Err(ApiError::from(e).into_response())
        }
    }
}

/// A new token pair for a refresh token, which is used up.
#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "auth", request_body = Refresh,
    responses((status = 200, body = ApiTokens), (status = 401, body = ApiError)))]
pub(crate) async fn refresh(
    State(ws): State<Workspace>,
    Input(r): Input<Refresh>,
) -> ApiResult<ApiTokens> {
    Ok(Json(ws.api_refresh(&r.refresh_token).await?))
}

/// Ends the request's access token.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth", security(("bearer" = [])),
    responses((status = 204), (status = 401, body = ApiError)))]
pub(crate) async fn logout(
    State(ws): State<Workspace>,
    Caller(actor): Caller,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let token = bearer(&headers)?;
    if actor.name().starts_with("token:") {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            "an automation token does not log out: an msp_admin revokes it (DELETE /api/v1/tokens/{name})",
        ));
    }
    ws.api_logout(token).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Makes an API token for automation (msp_admin): a name, a role (technician, tenant_admin or
/// auditor) and, for a tenant_admin, its tenant. The answer's `secret` is shown this once.
#[utoipa::path(post, path = "/api/v1/tokens", tag = "auth", security(("bearer" = [])),
    request_body = NewApiToken,
    responses((status = 201, body = CreatedApiToken), (status = 403, body = ApiError),
        (status = 409, body = ApiError), (status = 422, body = ApiError)))]
pub(crate) async fn token_create(
    State(ws): State<Workspace>,
    Caller(a): Caller,
    Input(input): Input<NewApiToken>,
) -> Result<Response, ApiError> {
    Ok(no_store(
        StatusCode::CREATED,
        ws.api_token_create(&a, &input).await?,
    ))
}

/// Every API token made, revoked ones too, with its last use; never a secret (msp_admin,
/// auditor).
#[utoipa::path(get, path = "/api/v1/tokens", tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = [ApiToken]), (status = 403, body = ApiError)))]
pub(crate) async fn token_list(
    State(ws): State<Workspace>,
    Caller(a): Caller,
) -> ApiResult<Vec<ApiToken>> {
    Ok(Json(ws.api_token_list(&a).await?))
}

/// Revokes an API token (msp_admin): refused from its next request on.
#[utoipa::path(delete, path = "/api/v1/tokens/{name}", tag = "auth", security(("bearer" = [])),
    params(("name" = String, Path, description = "the token's name")),
    responses((status = 200, body = ApiToken), (status = 403, body = ApiError),
        (status = 404, body = ApiError)))]
pub(crate) async fn token_revoke(
    State(ws): State<Workspace>,
    Caller(a): Caller,
    Param(name): Param<String>,
) -> ApiResult<ApiToken> {
    Ok(Json(ws.api_token_revoke(&a, &name).await?))
}

/// An operator to add: its password is hashed (argon2id) and never shown.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct NewOperator {
    pub username: String,
    pub role: Role,
    /// For a tenant_admin: the tenants it may act on.
    #[serde(default)]
    pub tenants: Vec<String>,
    pub password: String,
}

/// The operators of pbxdesk and their roles (msp_admin, auditor).
#[utoipa::path(get, path = "/api/v1/operators", tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = [Operator]), (status = 403, body = ApiError)))]
pub(crate) async fn operator_list(
    State(ws): State<Workspace>,
    Caller(a): Caller,
) -> ApiResult<Vec<Operator>> {
    Ok(Json(ws.operator_list(&a).await?))
}

/// Adds an operator (msp_admin).
#[utoipa::path(post, path = "/api/v1/operators", tag = "auth", security(("bearer" = [])),
    request_body = NewOperator,
    responses((status = 201, body = Operator), (status = 403, body = ApiError),
        (status = 409, body = ApiError), (status = 422, body = ApiError)))]
pub(crate) async fn operator_add(
    State(ws): State<Workspace>,
    Caller(a): Caller,
    Input(input): Input<NewOperator>,
) -> Result<(StatusCode, Json<Operator>), ApiError> {
    let op = ws
        .operator_add(
            Some(&a),
            &input.username,
            input.role,
            &input.tenants,
            &SecretString::from(input.password),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(op)))
}
