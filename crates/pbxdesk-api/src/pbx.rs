//! PBXs: their profiles, what pbxdesk renders for them, the guarded apply, and the live side.

use crate::{no_store, ApiError, ApiResult, Caller, Filter, Input, Param};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use pbxdesk_core::model::{CheckLine, NewPbx, Pbx, PbxPatch};
use pbxdesk_core::service::{
    ApplyOptions, ApplyRecord, ApplyReport, ApplySource, ApplyStep, Live, PbxDiff, Progress,
};
use pbxdesk_core::{ErrorCode, Workspace};
use pbxdesk_render::{Finding, Trace};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The PBXs and how each is reached (no secret: only whether each is set).
#[utoipa::path(get, path = "/api/v1/pbxs", tag = "pbxs", security(("bearer" = [])),
    responses((status = 200, body = [Pbx])))]
pub(crate) async fn pbx_list(
    State(ws): State<Workspace>,
    Caller(a): Caller,
) -> ApiResult<Vec<Pbx>> {
    Ok(Json(ws.pbx_list(&a).await?))
}

/// One PBX.
#[utoipa::path(get, path = "/api/v1/pbxs/{name}", tag = "pbxs", security(("bearer" = [])),
    params(("name" = String, Path, description = "the PBX's name")),
    responses((status = 200, body = Pbx)))]
pub(crate) async fn pbx_show(
    State(ws): State<Workspace>,
    Caller(a): Caller,
    Param(name): Param<String>,
) -> ApiResult<Pbx> {
    Ok(Json(ws.pbx_show(&a, &name).await?))
}

/// Adds a PBX and how it is reached (MSP roles); nothing is contacted. Secrets are write-only.
#[utoipa::path(post, path = "/api/v1/pbxs", tag = "pbxs", security(("bearer" = [])),
    request_body = NewPbx,
    responses((status = 201, body = Pbx), (status = 403, body = ApiError),
        (status = 409, body = ApiError), (status = 422, body = ApiError)))]
pub(crate) async fn pbx_add(
    State(ws): State<Workspace>,
    Caller(a): Caller,
    Input(input): Input<NewPbx>,
) -> Result<(StatusCode, Json<Pbx>), ApiError> {
    Ok((StatusCode::CREATED, Json(ws.pbx_add(&a, &input).await?)))
}

/// Changes how a PBX is reached (MSP roles); `expected_version` refuses a stale change. A new
/// host or port forgets the pinned host key.
#[utoipa::path(patch, path = "/api/v1/pbxs/{name}", tag = "pbxs", security(("bearer" = [])),
    params(("name" = String, Path, description = "the PBX's name")), request_body = PbxPatch,
    responses((status = 200, body = Pbx), (status = 403, body = ApiError),
        (status = 404, body = ApiError), (status = 409, body = ApiError),
        (status = 422, body = ApiError)))]
pub(crate) async fn pbx_update(
    State(ws): State<Workspace>,
    Caller(a): Caller,
    Param(name): Param<String>,
    Input(patch): Input<PbxPatch>,
) -> ApiResult<Pbx> {
    Ok(Json(ws.pbx_update(&a, &name, &patch).await?))
}

/// Removes a PBX no tenant is on (MSP roles).
#[utoipa::path(delete, path = "/api/v1/pbxs/{name}", tag = "pbxs", security(("bearer" = [])),
    params(("name" = String, Path, description = "the PBX's name")),
    responses((status = 200, body = Pbx), (status = 403, body = ApiError),
        (status = 404, body = ApiError), (status = 409, body = ApiError)))]
pub(crate) async fn pbx_remove(
    State(ws): State<Workspace>,
    Caller(a): Caller,
    Param(name): Param<String>,
) -> ApiResult<Pbx> {
    Ok(Json(ws.pbx_remove(&a, &name).await?))
}

/// The SSH host key a PBX offers now, for the technician to compare before trusting it.
#[derive(Serialize, utoipa::ToSchema)]
pub struct HostKey {
    /// `SHA256:…`, as `ssh-keygen -lf` prints it.
    pub fingerprint: String,
}

/// Reads the host key a PBX offers (MSP roles); nothing is trusted by it.
#[utoipa::path(get, path = "/api/v1/pbxs/{name}/host-key", tag = "pbxs",
    security(("bearer" = [])), params(("name" = String, Path, description = "the PBX's name")),
    responses((status = 200, body = HostKey), (status = 403, body = ApiError),
        (status = 404, body = ApiError), (status = 502, body = ApiError)))]
pub(crate) async fn pbx_host_key(
    State(ws): State<Workspace>,
    Caller(a): Caller,
    Param(name): Param<String>,
) -> ApiResult<HostKey> {
    Ok(Json(HostKey {
        fingerprint: ws.pbx_probe_host_key(&a, &name).await?,
    }))
}

/// Pins the host key with this fingerprint (MSP roles), once the technician compared it.
#[utoipa::path(post, path = "/api/v1/pbxs/{name}/trust", tag = "pbxs",
    security(("bearer" = [])), params(("name" = String, Path, description = "the PBX's name")),
    request_body = TrustKey,
    responses((status = 200, body = Pbx), (status = 403, body = ApiError),
        (status = 404, body = ApiError), (status = 409, body = ApiError),
        (status = 422, body = ApiError)))]
pub(crate) async fn pbx_trust(
    State(ws): State<Workspace>,
    Caller(a): Caller,
    Param(name): Param<String>,
    Input(key): Input<TrustKey>,
) -> ApiResult<Pbx> {
    Ok(Json(ws.pbx_trust(&a, &name, &key.fingerprint).await?))
}

/// The host key to pin.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct TrustKey {
    pub fingerprint: String,
}

/// Checks a PBX (MSP roles): SSH, the config folder, include lines, disk, AMI, the realtime
/// database, AstDB; each line with its fix.
#[utoipa::path(post, path = "/api/v1/pbxs/{name}/check", tag = "pbxs",
    security(("bearer" = [])), params(("name" = String, Path, description = "the PBX's name")),
    responses((status = 200, body = [CheckLine]), (status = 403, body = ApiError),
        (status = 404, body = ApiError)))]
pub(crate) async fn pbx_check(
    State(ws): State<Workspace>,
    Caller(a): Caller,
    Param(name): Param<String>,
) -> ApiResult<Vec<CheckLine>> {
    Ok(Json(ws.pbx_check(&a, &name).await?))
}

/// The PBXs whose render differs from what was last applied to them (offline).
#[utoipa::path(get, path = "/api/v1/pending", tag = "apply", security(("bearer" = [])),
    responses((status = 200, body = [String]), (status = 403, body = ApiError)))]
pub(crate) async fn pbx_pending(
    State(ws): State<Workspace>,
    Caller(a): Caller,
) -> ApiResult<Vec<String>> {
    Ok(Json(ws.pbx_pending(&a).await?))
}

/// Whether a render shows its secrets.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RenderParams {
    /// Every SIP password, trunk password and PIN in clear (MSP roles; audited). Masked when
    /// absent or false.
    pub with_secrets: Option<bool>,
}

/// What pbxdesk renders for a PBX (offline): the files under the config folder, the PJSIP
/// Realtime endpoints, the contexts a reload must show, the findings (errors block an apply).
#[derive(Serialize, utoipa::ToSchema)]
pub struct RenderView {
    /// Path under the Asterisk config folder → content.
    pub files: BTreeMap<String, String>,
    /// The PJSIP Realtime endpoints' ids.
    pub endpoints: Vec<String>,
    /// Context → the number of extensions in it.
    pub contexts: BTreeMap<String, usize>,
    pub findings: Vec<Finding>,
}

/// Renders a PBX from the workspace, secrets masked unless asked for.
#[utoipa::path(get, path = "/api/v1/pbxs/{name}/render", tag = "apply",
    security(("bearer" = [])),
    params(("name" = String, Path, description = "the PBX's name"), RenderParams),
    responses((status = 200, body = RenderView), (status = 403, body = ApiError),
        (status = 404, body = ApiError)))]
pub(crate) async fn pbx_render(
    State(ws): State<Workspace>,
    Caller(a): Caller,
    Param(name): Param<String>,
    Filter(q): Filter<RenderParams>,
) -> Result<Response, ApiError> {
    let r = ws
        .pbx_render(&a, &name, q.with_secrets.unwrap_or(false))
        .await?;
    let view = RenderView {
        files: r.files,
        endpoints: r.realtime.into_iter().map(|e| e.id).collect(),
        contexts: r.contexts,
        findings: r.findings,
    };
    Ok(no_store(StatusCode::OK, view))
}

/// What an apply would change (offline): each file's unified diff and the rows, secrets
/// masked, and the findings.
#[utoipa::path(get, path = "/api/v1/pbxs/{name}/diff", tag = "apply", security(("bearer" = [])),
    params(("name" = String, Path, description = "the PBX's name")),
    responses((status = 200, body = PbxDiff), (status = 403, body = ApiError),
        (status = 404, body = ApiError)))]
pub(crate) async fn pbx_diff(
    State(ws): State<Workspace>,
    Caller(a): Caller,
    Param(name): Param<String>,
) -> ApiResult<PbxDiff> {
    Ok(Json(ws.pbx_diff(&a, &name).await?))
}

/// Which number to trace.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TraceParams {
    /// An inbound number (E.164, or its digits); with `from`, what that user dials.
    pub number: String,
    /// The calling user: EXTENSION, or SLUG/EXTENSION when several tenants have it.
    pub from: Option<String>,
}

/// Where a call goes (offline, from the same model the render is made of).
#[utoipa::path(get, path = "/api/v1/pbxs/{name}/trace", tag = "apply", security(("bearer" = [])),
    params(("name" = String, Path, description = "the PBX's name"), TraceParams),
    responses((status = 200, body = Trace), (status = 404, body = ApiError),
        (status = 422, body = ApiError)))]
pub(crate) async fn pbx_trace(
    State(ws): State<Workspace>,
    Caller(a): Caller,
    Param(name): Param<String>,
    Filter(q): Filter<TraceParams>,
) -> ApiResult<Trace> {
    Ok(Json(
        ws.pbx_trace(&a, &name, &q.number, q.from.as_deref())
            .await?,
    ))
}

/// How many applies to list.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryParams {
    /// The newest this many (20 when absent).
    pub limit: Option<u32>,
}

/// A PBX's applies, newest first: outcome, steps, diff; the PBX's own rollbacks with their log.
#[utoipa::path(get, path = "/api/v1/pbxs/{name}/history", tag = "apply",
    security(("bearer" = [])),
    params(("name" = String, Path, description = "the PBX's name"), HistoryParams),
    responses((status = 200, body = [ApplyRecord]), (status = 403, body = ApiError),
        (status = 404, body = ApiError)))]
pub(crate) async fn pbx_history(
    State(ws): State<Workspace>,
    Caller(a): Caller,
    Param(name): Param<String>,
    Filter(q): Filter<HistoryParams>,
) -> ApiResult<Vec<ApplyRecord>> {
    Ok(Json(
        ws.pbx_apply_history(&a, &name, q.limit.unwrap_or(20))
            .await?,
    ))
}

/// An apply to start.
#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(default)]
pub struct ApplyRequest {
    #[serde(flatten)]
    pub options: ApplyOptions,
    /// `previous_apply` rolls the last apply back through the same guarded steps.
    pub source: Option<ApplySource>,
}

/// One line of a streamed apply (`application/x-ndjson`): each step as it ends, then the
/// report (or the error that stopped it before it began).
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ApplyEvent {
    Step(ApplyStep),
    Report(Box<ApplyReport>),
    Error(ApiError),
}

/// Applies the workspace to a PBX: render, validate, lock, back up, upload, reload, verify,
/// confirm, rolling back by itself on any failure (MSP roles). With `Accept:
/// application/x-ndjson` each step is sent as it ends, then the report; otherwise the report
/// comes when it is over. An apply that ran and failed is a report (its outcome says so), not
/// an error status.
#[utoipa::path(post, path = "/api/v1/pbxs/{name}/apply", tag = "apply",
    security(("bearer" = [])),
    params(("name" = String, Path, description = "the PBX's name")), request_body = ApplyRequest,
    responses((status = 200, description = "the apply ran; its report (or its steps, streamed)",
            content((ApplyReport = "application/json"), (ApplyEvent = "application/x-ndjson"))),
        (status = 403, body = ApiError), (status = 404, body = ApiError),
        (status = 409, body = ApiError), (status = 422, body = ApiError),
        (status = 502, body = ApiError)))]
pub(crate) async fn pbx_apply(
    State(ws): State<Workspace>,
    Caller(a): Caller,
    Param(name): Param<String>,
    headers: HeaderMap,
    Input(req): Input<ApplyRequest>,
) -> Result<Response, ApiError> {
    let source = req.source.unwrap_or(ApplySource::Workspace);
    if !wants_ndjson(&headers) {
        let report = ws
            .pbx_apply_with(&a, &name, &req.options, source, None)
            .await?;
        return Ok(Json(report).into_response());
    }
    // The apply runs on its own task: a client that goes away mid-apply must not cut it
    // between upload and confirm (the PBX would roll back by itself, but needlessly).
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<ApplyEvent>();
    let steps = tx.clone();
    let progress: Progress = std::sync::Arc::new(move |s: &ApplyStep| {
        let _ = steps.send(ApplyEvent::Step(s.clone()));
    });
    tokio::spawn(async move {
        let end = match ws
            .pbx_apply_with(&a, &name, &req.options, source, Some(progress))
            .await
        {
            Ok(report) => ApplyEvent::Report(Box::new(report)),
            Err(e) => ApplyEvent::Error(ApiError::from(e)),
        };
        let _ = tx.send(end);
    });
    // Refused before a step (a role, a name, an option): answered with its status, as any
    // other error.
    let first = rx.recv().await;
    let first = match first {
        Some(ApplyEvent::Error(e)) => return Err(e),
        Some(ev) => ev,
        None => {
            return Err(ApiError::new(
                ErrorCode::Internal,
                "the apply ended without a report",
            ))
        }
    };
    let lines = futures_util::stream::unfold((Some(first), rx), |(next, mut rx)| async move {
        let ev = match next {
            Some(ev) => ev,
            None => rx.recv().await?,
        };
        Some((
            Ok::<_, std::convert::Infallible>(ndjson_line(&ev)),
            (None, rx),
        ))
    });
    Ok(ndjson_response(axum::body::Body::from_stream(lines)))
}

const NDJSON: &str = "application/x-ndjson";

/// What a PBX is doing now, over AMI: health, trunk registrations, phones, calls (a
/// tenant_admin's view holds only its own). Waits for the first full read; 502 when the PBX
/// cannot be reached. With `Accept: application/x-ndjson` it goes on: one line per change (at
/// most every `STATUS_EVERY`), for as long as the client reads; a lost connection to the PBX is
/// a line too (`connected: false`, the last known state), and so is its return.
#[utoipa::path(get, path = "/api/v1/pbxs/{name}/status", tag = "live",
    security(("bearer" = [])), params(("name" = String, Path, description = "the PBX's name")),
    responses((status = 200, description = "the live state, or one line per change",
            content((Live = "application/json"), (Live = "application/x-ndjson"))),
        (status = 404, body = ApiError), (status = 502, body = ApiError)))]
pub(crate) async fn pbx_status(
    State(ws): State<Workspace>,
    Caller(a): Caller,
    Param(name): Param<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let mut rx = ws.pbx_watch(&a, &name).await?;
    let first = rx
        .wait_for(|l| l.connected || l.last_error.is_some())
        .await
        .map(|l| l.clone())
        .map_err(|_| ApiError::new(ErrorCode::Internal, "the watcher stopped"))?;
    if !first.connected {
        return Err(ApiError::from(pbxdesk_core::Error::Unreachable(format!(
            "PBX \"{name}\": {}",
            first.last_error.unwrap_or_default()
        ))));
    }
    if !wants_ndjson(&headers) {
        return Ok(Json(first).into_response());
    }
    rx.mark_unchanged();
    // The receiver is the view: while the client reads, the PBX stays watched; when it goes,
    // the stream and the view are dropped, and the watcher ends with its last view.
    let lines = futures_util::stream::unfold((Some(first), rx), |(next, mut rx)| async move {
        let live = match next {
            Some(l) => l,
            None => {
                // Changes that come together go as one line.
                tokio::time::sleep(STATUS_EVERY).await;
                rx.changed().await.ok()?;
                rx.borrow_and_update().clone()
            }
        };
        Some((
            Ok::<_, std::convert::Infallible>(ndjson_line(&live)),
            (None, rx),
        ))
    });
    Ok(ndjson_response(axum::body::Body::from_stream(lines)))
}

/// The shortest time between two lines of a streamed status.
const STATUS_EVERY: std::time::Duration = std::time::Duration::from_millis(50);

fn wants_ndjson(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains(NDJSON))
}

fn ndjson_line<T: serde::Serialize>(v: &T) -> axum::body::Bytes {
    let mut line = serde_json::to_vec(v).unwrap_or_default();
    line.push(b'\n');
    axum::body::Bytes::from(line)
}

fn ndjson_response(body: axum::body::Body) -> Response {
    (
        [
            (header::CONTENT_TYPE, NDJSON),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}
