//! pbxdesk's embedded HTTP API, versioned under `/api/v1`: one more front end over the same
//! services as the app and the CLI (the same validation, the same error codes, mapped to HTTP
//! statuses). Operators log in for a bearer token (`auth`); the OpenAPI 3.1 document is
//! generated from the handlers and the model's types ([`openapi`]) and served at
//! `/api/v1/openapi.json`.
//!
//! One module per area, each handler one call into a service: `auth` (sessions, the login
//! throttle, automation tokens), `people` (tenants, users, devices), `routing` (numbers, trunks,
//! policies), `pbx` (profiles, render, diff, trace, apply, history, live), `audit`; `doc` makes
//! the document.

mod audit;
mod auth;
mod doc;
mod me;
mod page;
mod pbx;
mod people;
mod routing;
#[cfg(feature = "testkit")]
pub mod testkit;
mod tls;

pub use auth::{LoginThrottle, LOGIN_FAILURES, LOGIN_WINDOW_MS};
pub use doc::{openapi, openapi_text};
pub use tls::{fingerprint, Tls};

use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, patch, post, put};
use axum::{Json, Router};
use pbxdesk_core::{Actor, ErrorCode, FieldProblem, Workspace};
use serde::Serialize;

/// An error as every front end words it: the code, the message, the field it concerns.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    /// The input field a validation error concerns (the first, when several are wrong).
    pub field: Option<String>,
    /// Every input field that is wrong, each with what is wrong with it.
    pub fields: Vec<FieldProblem>,
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
        let field = e.fields().first().map(|v| v.field.clone());
        let fields = e.field_problems();
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
            fields,
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
            fields: Vec::new(),
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

pub(crate) type ApiResult<T> = Result<Json<T>, ApiError>;

/// An answer that holds a secret (a token, a password, a render with secrets): never kept by
/// a cache or a proxy.
pub(crate) fn no_store<T: Serialize>(status: StatusCode, body: T) -> Response {
    (status, [(header::CACHE_CONTROL, "no-store")], Json(body)).into_response()
}

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
                fields: Vec::new(),
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
                fields: Vec::new(),
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
                fields: Vec::new(),
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
        if token.starts_with(pbxdesk_core::service::END_USER_TOKEN_PREFIX) {
            return Err(ApiError::new(
                ErrorCode::Forbidden,
                "a user's self-service session opens /api/v1/me only",
            ));
        }
        let Source(source) = Source::from_parts(parts);
        Ok(Caller(ws.api_actor(token, &client_via(source)).await?))
    }
}

/// What the audit records as a request's origin: "api ADDRESS".
fn client_via(source: Option<std::net::IpAddr>) -> String {
    source.map_or_else(|| "api".to_owned(), |ip| format!("api {ip}"))
}

/// The address a request came from, when the server knows it (`pbxdesk serve` does).
pub struct Source(pub Option<std::net::IpAddr>);

impl Source {
    fn from_parts(parts: &Parts) -> Source {
        Source(
            parts
                .extensions
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                .map(|c| c.0.ip()),
        )
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Source {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Source::from_parts(parts))
    }
}

/// The API's routes over a workspace.
pub fn router(ws: Workspace) -> Router {
    use {audit::*, auth::*, doc::*, me::*, pbx::*, people::*, routing::*};
    Router::new()
        .route("/api/v1/auth/login", post(login))
        .route("/api/v1/auth/refresh", post(refresh))
        .route("/api/v1/auth/logout", post(logout))
        .route("/api/v1/tokens", get(token_list).post(token_create))
        .route("/api/v1/tokens/{name}", delete(token_revoke))
        .route("/api/v1/operators", get(operator_list).post(operator_add))
        .route("/api/v1/tenants", get(tenants).post(tenant_create))
        .route(
            "/api/v1/tenants/{slug}",
            get(tenant_show).patch(tenant_update),
        )
        .route("/api/v1/tenants/{slug}/users", get(tenant_users))
        .route("/api/v1/tenants/{slug}/dids", get(did_list))
        .route("/api/v1/tenants/{slug}/ring-groups", get(ring_group_list))
        .route(
            "/api/v1/tenants/{slug}/ring-groups/{extension}",
            get(ring_group_show)
                .patch(ring_group_update)
                .delete(ring_group_delete),
        )
        .route("/api/v1/ring-groups", post(ring_group_create))
        .route("/api/v1/users", post(user_create))
        .route(
            "/api/v1/users/{id}",
            get(user_show).patch(user_update).delete(user_delete),
        )
        .route(
            "/api/v1/users/{id}/devices",
            get(device_list).post(device_add),
        )
        .route("/api/v1/users/{id}/invite", post(user_invite))
        .route(
            "/api/v1/users/{id}/self-service",
            delete(user_self_service_remove),
        )
        .route("/api/v1/me", get(me_show).patch(me_update))
        .route("/api/v1/me/accept", post(me_accept))
        .route("/api/v1/me/login", post(me_login))
        .route("/api/v1/me/logout", post(me_logout))
        .route("/api/v1/me/voicemail-pin", put(me_set_pin))
        .route("/api/v1/me/password", put(me_password))
        .route("/api/v1/me/devices", get(me_devices))
        .route("/api/v1/devices/{id}", delete(device_remove))
        .route("/api/v1/devices/{id}/reveal", post(device_reveal))
        .route("/api/v1/dids", post(did_add))
        .route(
            "/api/v1/dids/{number}",
            patch(did_update).delete(did_remove),
        )
        .route("/api/v1/trunks", get(trunk_list_all).post(trunk_add))
        .route("/api/v1/pbxs/{name}/trunks", get(trunk_list))
        .route(
            "/api/v1/pbxs/{name}/trunks/{trunk}",
            get(trunk_show).patch(trunk_update).delete(trunk_remove),
        )
        .route("/api/v1/policies", post(policy_add))
        .route("/api/v1/tenants/{slug}/policies", get(policy_list))
        .route(
            "/api/v1/tenants/{slug}/policies/{name}",
            get(policy_show).patch(policy_update).delete(policy_remove),
        )
        .route(
            "/api/v1/tenants/{slug}/policies/{name}/rules",
            post(policy_rule_insert),
        )
        .route(
            "/api/v1/tenants/{slug}/policies/{name}/rules/{position}",
            delete(policy_rule_remove),
        )
        .route("/api/v1/pbxs", get(pbx_list).post(pbx_add))
        .route(
            "/api/v1/pbxs/{name}",
            get(pbx_show).patch(pbx_update).delete(pbx_remove),
        )
        .route("/api/v1/pbxs/{name}/host-key", get(pbx_host_key))
        .route("/api/v1/pbxs/{name}/trust", post(pbx_trust))
        .route("/api/v1/pbxs/{name}/check", post(pbx_check))
        .route("/api/v1/pbxs/{name}/render", get(pbx_render))
        .route("/api/v1/pbxs/{name}/diff", get(pbx_diff))
        .route("/api/v1/pbxs/{name}/trace", get(pbx_trace))
        .route("/api/v1/pbxs/{name}/history", get(pbx_history))
        .route("/api/v1/pbxs/{name}/apply", post(pbx_apply))
        .route("/api/v1/pbxs/{name}/status", get(pbx_status))
        .route("/api/v1/pending", get(pbx_pending))
        .route("/api/v1/audit", get(audit_list))
        .route("/api/v1/openapi.json", get(openapi_json))
        .route("/self", get(page::self_root))
        .route("/self/", get(page::self_index))
        .route("/self/{*path}", get(page::self_file))
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

/// A server bound to its address, its certificate read or made: what to tell the operator
/// before it runs.
pub struct Bound {
    ws: Workspace,
    listener: std::net::TcpListener,
    identity: Option<tls::Identity>,
    /// Cross-origin requests are answered only from these origins (none unless configured).
    cors: Option<tower_http::cors::CorsLayer>,
}

/// An origin a browser may call the API from: `https://host[:port]` (or `http://`), nothing
/// more. A wildcard is refused: an API that changes PBXs names the web apps it trusts.
pub fn parse_origin(o: &str) -> Result<header::HeaderValue, pbxdesk_core::ValidationError> {
    const RULE: &str = "scheme://host[:port]: https:// or http://, then a host and maybe a port; \
                        no path, no wildcard";
    let bad = || pbxdesk_core::ValidationError::new("cors_origin", o, RULE);
    let rest = o
        .strip_prefix("https://")
        .or_else(|| o.strip_prefix("http://"))
        .ok_or_else(bad)?;
    if rest.is_empty()
        || !rest
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
    {
        return Err(bad());
    }
    header::HeaderValue::from_str(&o.to_ascii_lowercase()).map_err(|_| bad())
}

/// Binds the API to `listen` with `tls`. Plain HTTP is refused on anything but loopback:
/// tokens and passwords would cross the network in clear.
pub fn bind(ws: Workspace, listen: std::net::SocketAddr, tls: &Tls) -> std::io::Result<Bound> {
    if matches!(tls, Tls::Off) && !listen.ip().is_loopback() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!(
                "{listen}: plain HTTP is served on loopback only (127.0.0.1 or ::1); passwords and tokens would cross the network in clear"
            ),
        ));
    }
    // The names a self-signed certificate is made for: loopback, and the address listened on.
    let mut names = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    if !listen.ip().is_unspecified() && !listen.ip().is_loopback() {
        names.push(listen.ip().to_string());
    }
    let identity = tls.identity(&names)?;
    let listener = std::net::TcpListener::bind(listen)?;
    listener.set_nonblocking(true)?;
    Ok(Bound {
        ws,
        listener,
        identity,
        cors: None,
    })
}

impl Bound {
    /// Lets web apps of `origins` call the API from a browser (CORS); with none, no
    /// cross-origin request is answered with CORS headers, so browsers refuse them.
    pub fn allow_origins(
        mut self,
        origins: &[String],
    ) -> Result<Bound, pbxdesk_core::ValidationError> {
        if origins.is_empty() {
            return Ok(self);
        }
        let list = origins
            .iter()
            .map(|o| parse_origin(o.trim()))
            .collect::<Result<Vec<_>, _>>()?;
        self.cors = Some(cors_layer(list));
        Ok(self)
    }

    /// Where it answers, e.g. `https://127.0.0.1:8443/api/v1`.
    pub fn url(&self) -> String {
        let scheme = if self.identity.is_some() {
            "https"
        } else {
            "http"
        };
        match self.listener.local_addr() {
            Ok(a) => format!("{scheme}://{a}/api/v1"),
            Err(_) => format!("{scheme}://?/api/v1"),
        }
    }

    /// The SHA-256 fingerprint of the certificate served, for clients to pin.
    pub fn fingerprint(&self) -> Option<&str> {
        self.identity.as_ref().map(|i| i.fingerprint.as_str())
    }

    /// Whether this start made the self-signed certificate (its first).
    pub fn made_certificate(&self) -> bool {
        self.identity.as_ref().is_some_and(|i| i.made)
    }

    /// Serves until the process is stopped.
    pub async fn run(self) -> std::io::Result<()> {
        // The peer's address reaches the handlers (the login throttle counts by it).
        let app = match self.cors {
            Some(cors) => router(self.ws).layer(cors),
            None => router(self.ws),
        };
        let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
        match self.identity {
            None => axum::serve(tokio::net::TcpListener::from_std(self.listener)?, app).await,
            Some(id) => {
                // One provider compiled in (ring); installing it twice is harmless.
                let _ = rustls::crypto::ring::default_provider().install_default();
                let config =
                    axum_server::tls_rustls::RustlsConfig::from_pem(id.cert_pem, id.key_pem)
                        .await?;
                axum_server::from_tcp_rustls(self.listener, config)?
                    .serve(app)
                    .await
            }
        }
    }
}

/// Serves the API on `listen` over plain HTTP (loopback only) until the process is stopped.
pub async fn serve(ws: Workspace, listen: std::net::SocketAddr) -> std::io::Result<()> {
    bind(ws, listen, &Tls::Off)?.run().await
}

/// CORS for `origins`: the API's methods and the headers its clients send, no cookies.
pub fn cors_layer(origins: Vec<header::HeaderValue>) -> tower_http::cors::CorsLayer {
    use axum::http::Method;
    tower_http::cors::CorsLayer::new()
        .allow_origin(origins)
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PATCH,
            Method::PUT,
            Method::DELETE,
        ])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE, header::ACCEPT])
        .max_age(std::time::Duration::from_secs(600))
}

/// `router` with CORS for the given origins (what `serve --cors-origin` runs).
pub fn router_with_origins(
    ws: Workspace,
    origins: &[String],
) -> Result<Router, pbxdesk_core::ValidationError> {
    let list = origins
        .iter()
        .map(|o| parse_origin(o.trim()))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(router(ws).layer(cors_layer(list)))
}
