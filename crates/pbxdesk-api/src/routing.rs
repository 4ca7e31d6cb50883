//! Inbound numbers, trunks and outbound policies.

use crate::{ApiError, ApiResult, Caller, Filter, Input, Param};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use pbxdesk_core::model::{
    Did, DidPatch, NewDid, NewPolicy, NewRingGroup, NewTrunk, Policy, PolicyPatch, PolicyRule,
    RingGroup, RingGroupPatch, Trunk, TrunkPatch,
};
use pbxdesk_core::Workspace;
use serde::Deserialize;

/// A tenant's inbound numbers.
#[utoipa::path(get, path = "/api/v1/tenants/{slug}/dids", tag = "dids", security(("bearer" = [])),
    params(("slug" = String, Path, description = "the tenant's slug")),
    responses((status = 200, body = [Did]), (status = 401, body = ApiError),
        (status = 404, body = ApiError)))]
pub(crate) async fn did_list(
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
pub(crate) async fn did_add(
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
pub(crate) async fn did_update(
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
pub(crate) async fn did_remove(
    State(ws): State<Workspace>,
    Caller(a): Caller,
    Param(number): Param<String>,
) -> ApiResult<Did> {
    Ok(Json(ws.did_remove(&a, &number).await?))
}

/// A tenant's ring groups, by extension, with their members in ringing order.
#[utoipa::path(get, path = "/api/v1/tenants/{slug}/ring-groups", tag = "ring groups",
    security(("bearer" = [])),
    params(("slug" = String, Path, description = "the tenant's slug")),
    responses((status = 200, body = [RingGroup]), (status = 401, body = ApiError),
        (status = 404, body = ApiError)))]
pub(crate) async fn ring_group_list(
    State(ws): State<Workspace>,
    Caller(a): Caller,
    Param(slug): Param<String>,
) -> ApiResult<Vec<RingGroup>> {
    Ok(Json(ws.ring_group_list(&a, &slug).await?))
}

/// Makes a ring group (the lowest free extension of the tenant's range unless one is given).
#[utoipa::path(post, path = "/api/v1/ring-groups", tag = "ring groups", security(("bearer" = [])),
    request_body = NewRingGroup,
    responses((status = 201, body = RingGroup), (status = 401, body = ApiError),
        (status = 403, body = ApiError), (status = 404, body = ApiError),
        (status = 409, body = ApiError), (status = 422, body = ApiError)))]
pub(crate) async fn ring_group_create(
    State(ws): State<Workspace>,
    Caller(a): Caller,
    Input(input): Input<NewRingGroup>,
) -> Result<(StatusCode, Json<RingGroup>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(ws.ring_group_create(&a, &input).await?),
    ))
}

/// One ring group.
#[utoipa::path(get, path = "/api/v1/tenants/{slug}/ring-groups/{extension}", tag = "ring groups",
    security(("bearer" = [])),
    params(("slug" = String, Path, description = "the tenant's slug"),
        ("extension" = u32, Path, description = "the group's extension")),
    responses((status = 200, body = RingGroup), (status = 401, body = ApiError),
        (status = 404, body = ApiError)))]
pub(crate) async fn ring_group_show(
    State(ws): State<Workspace>,
    Caller(a): Caller,
    Param((slug, extension)): Param<(String, u32)>,
) -> ApiResult<RingGroup> {
    Ok(Json(ws.ring_group_show(&a, &slug, extension).await?))
}

/// Changes a ring group (members, when given, replace the list).
#[utoipa::path(patch, path = "/api/v1/tenants/{slug}/ring-groups/{extension}", tag = "ring groups",
    security(("bearer" = [])),
    params(("slug" = String, Path, description = "the tenant's slug"),
        ("extension" = u32, Path, description = "the group's extension")),
    request_body = RingGroupPatch,
    responses((status = 200, body = RingGroup), (status = 401, body = ApiError),
        (status = 403, body = ApiError), (status = 404, body = ApiError),
        (status = 409, body = ApiError), (status = 422, body = ApiError)))]
pub(crate) async fn ring_group_update(
    State(ws): State<Workspace>,
    Caller(a): Caller,
    Param((slug, extension)): Param<(String, u32)>,
    Input(patch): Input<RingGroupPatch>,
) -> ApiResult<RingGroup> {
    Ok(Json(
        ws.ring_group_update(&a, &slug, extension, &patch).await?,
    ))
}

/// Deletes a ring group that nothing routes to any more.
#[utoipa::path(delete, path = "/api/v1/tenants/{slug}/ring-groups/{extension}", tag = "ring groups",
    security(("bearer" = [])),
    params(("slug" = String, Path, description = "the tenant's slug"),
        ("extension" = u32, Path, description = "the group's extension")),
    responses((status = 200, body = RingGroup), (status = 401, body = ApiError),
        (status = 403, body = ApiError), (status = 404, body = ApiError),
        (status = 409, body = ApiError)))]
pub(crate) async fn ring_group_delete(
    State(ws): State<Workspace>,
    Caller(a): Caller,
    Param((slug, extension)): Param<(String, u32)>,
) -> ApiResult<RingGroup> {
    Ok(Json(ws.ring_group_delete(&a, &slug, extension).await?))
}

/// Every PBX's trunks (a tenant_admin: those its tenants may use, without provider accounts).
#[utoipa::path(get, path = "/api/v1/trunks", tag = "trunks", security(("bearer" = [])),
    responses((status = 200, body = [Trunk])))]
pub(crate) async fn trunk_list_all(
    State(ws): State<Workspace>,
    Caller(a): Caller,
) -> ApiResult<Vec<Trunk>> {
    Ok(Json(ws.trunk_list(&a, None).await?))
}

/// A PBX's trunks.
#[utoipa::path(get, path = "/api/v1/pbxs/{name}/trunks", tag = "trunks", security(("bearer" = [])),
    params(("name" = String, Path, description = "the PBX's name")),
    responses((status = 200, body = [Trunk]), (status = 404, body = ApiError)))]
pub(crate) async fn trunk_list(
    State(ws): State<Workspace>,
    Caller(a): Caller,
    Param(pbx): Param<String>,
) -> ApiResult<Vec<Trunk>> {
    Ok(Json(ws.trunk_list(&a, Some(&pbx)).await?))
}

/// Adds a SIP trunk to a PBX (MSP roles); its password is sealed and never shown again.
#[utoipa::path(post, path = "/api/v1/trunks", tag = "trunks", security(("bearer" = [])),
    request_body = NewTrunk,
    responses((status = 201, body = Trunk), (status = 403, body = ApiError),
        (status = 404, body = ApiError), (status = 409, body = ApiError),
        (status = 422, body = ApiError)))]
pub(crate) async fn trunk_add(
    State(ws): State<Workspace>,
    Caller(a): Caller,
    Input(input): Input<NewTrunk>,
) -> Result<(StatusCode, Json<Trunk>), ApiError> {
    Ok((StatusCode::CREATED, Json(ws.trunk_add(&a, &input).await?)))
}

/// One trunk.
#[utoipa::path(get, path = "/api/v1/pbxs/{name}/trunks/{trunk}", tag = "trunks",
    security(("bearer" = [])),
    params(("name" = String, Path, description = "the PBX's name"),
        ("trunk" = String, Path, description = "the trunk's name")),
    responses((status = 200, body = Trunk), (status = 404, body = ApiError)))]
pub(crate) async fn trunk_show(
    State(ws): State<Workspace>,
    Caller(a): Caller,
    Param((pbx, name)): Param<(String, String)>,
) -> ApiResult<Trunk> {
    Ok(Json(ws.trunk_show(&a, &pbx, &name).await?))
}

/// Changes a trunk (MSP roles); `expected_version` refuses a change made on a stale view.
#[utoipa::path(patch, path = "/api/v1/pbxs/{name}/trunks/{trunk}", tag = "trunks",
    security(("bearer" = [])),
    params(("name" = String, Path, description = "the PBX's name"),
        ("trunk" = String, Path, description = "the trunk's name")),
    request_body = TrunkPatch,
    responses((status = 200, body = Trunk), (status = 403, body = ApiError),
        (status = 404, body = ApiError), (status = 409, body = ApiError),
        (status = 422, body = ApiError)))]
pub(crate) async fn trunk_update(
    State(ws): State<Workspace>,
    Caller(a): Caller,
    Param((pbx, name)): Param<(String, String)>,
    Input(patch): Input<TrunkPatch>,
) -> ApiResult<Trunk> {
    Ok(Json(ws.trunk_update(&a, &pbx, &name, &patch).await?))
}

/// Removes a trunk no number or policy uses (MSP roles).
#[utoipa::path(delete, path = "/api/v1/pbxs/{name}/trunks/{trunk}", tag = "trunks",
    security(("bearer" = [])),
    params(("name" = String, Path, description = "the PBX's name"),
        ("trunk" = String, Path, description = "the trunk's name")),
    responses((status = 200, body = Trunk), (status = 403, body = ApiError),
        (status = 404, body = ApiError), (status = 409, body = ApiError)))]
pub(crate) async fn trunk_remove(
    State(ws): State<Workspace>,
    Caller(a): Caller,
    Param((pbx, name)): Param<(String, String)>,
) -> ApiResult<Trunk> {
    Ok(Json(ws.trunk_remove(&a, &pbx, &name).await?))
}

/// A tenant's outbound policies, each with its ordered rules.
#[utoipa::path(get, path = "/api/v1/tenants/{slug}/policies", tag = "policies",
    security(("bearer" = [])),
    params(("slug" = String, Path, description = "the tenant's slug")),
    responses((status = 200, body = [Policy]), (status = 404, body = ApiError)))]
pub(crate) async fn policy_list(
    State(ws): State<Workspace>,
    Caller(a): Caller,
    Param(slug): Param<String>,
) -> ApiResult<Vec<Policy>> {
    Ok(Json(ws.policy_list(&a, &slug).await?))
}

/// Adds an outbound policy to a tenant (emergency numbers are always allowed, whatever it says).
#[utoipa::path(post, path = "/api/v1/policies", tag = "policies", security(("bearer" = [])),
    request_body = NewPolicy,
    responses((status = 201, body = Policy), (status = 403, body = ApiError),
        (status = 404, body = ApiError), (status = 409, body = ApiError),
        (status = 422, body = ApiError)))]
pub(crate) async fn policy_add(
    State(ws): State<Workspace>,
    Caller(a): Caller,
    Input(input): Input<NewPolicy>,
) -> Result<(StatusCode, Json<Policy>), ApiError> {
    Ok((StatusCode::CREATED, Json(ws.policy_add(&a, &input).await?)))
}

/// One policy.
#[utoipa::path(get, path = "/api/v1/tenants/{slug}/policies/{name}", tag = "policies",
    security(("bearer" = [])),
    params(("slug" = String, Path, description = "the tenant's slug"),
        ("name" = String, Path, description = "the policy's name")),
    responses((status = 200, body = Policy), (status = 404, body = ApiError)))]
pub(crate) async fn policy_show(
    State(ws): State<Workspace>,
    Caller(a): Caller,
    Param((slug, name)): Param<(String, String)>,
) -> ApiResult<Policy> {
    Ok(Json(ws.policy_show(&a, &slug, &name).await?))
}

/// Replaces a policy's rules, in order; `expected_version` refuses a change on a stale view.
#[utoipa::path(patch, path = "/api/v1/tenants/{slug}/policies/{name}", tag = "policies",
    security(("bearer" = [])),
    params(("slug" = String, Path, description = "the tenant's slug"),
        ("name" = String, Path, description = "the policy's name")),
    request_body = PolicyPatch,
    responses((status = 200, body = Policy), (status = 403, body = ApiError),
        (status = 404, body = ApiError), (status = 409, body = ApiError),
        (status = 422, body = ApiError)))]
pub(crate) async fn policy_update(
    State(ws): State<Workspace>,
    Caller(a): Caller,
    Param((slug, name)): Param<(String, String)>,
    Input(patch): Input<PolicyPatch>,
) -> ApiResult<Policy> {
    Ok(Json(ws.policy_update(&a, &slug, &name, &patch).await?))
}

/// Removes a policy that is neither the tenant's default nor any user's own.
#[utoipa::path(delete, path = "/api/v1/tenants/{slug}/policies/{name}", tag = "policies",
    security(("bearer" = [])),
    params(("slug" = String, Path, description = "the tenant's slug"),
        ("name" = String, Path, description = "the policy's name")),
    responses((status = 200, body = Policy), (status = 403, body = ApiError),
        (status = 404, body = ApiError), (status = 409, body = ApiError)))]
pub(crate) async fn policy_remove(
    State(ws): State<Workspace>,
    Caller(a): Caller,
    Param((slug, name)): Param<(String, String)>,
) -> ApiResult<Policy> {
    Ok(Json(ws.policy_remove(&a, &slug, &name).await?))
}

/// Where a rule goes in a policy.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RuleAt {
    /// Its position, 1-based (1 is tried first); last when absent.
    pub at: Option<u32>,
}

/// Inserts a rule into a policy, at a position or last.
#[utoipa::path(post, path = "/api/v1/tenants/{slug}/policies/{name}/rules", tag = "policies",
    security(("bearer" = [])),
    params(("slug" = String, Path, description = "the tenant's slug"),
        ("name" = String, Path, description = "the policy's name"), RuleAt),
    request_body = PolicyRule,
    responses((status = 200, body = Policy), (status = 403, body = ApiError),
        (status = 404, body = ApiError), (status = 409, body = ApiError),
        (status = 422, body = ApiError)))]
pub(crate) async fn policy_rule_insert(
    State(ws): State<Workspace>,
    Caller(a): Caller,
    Param((slug, name)): Param<(String, String)>,
    Filter(q): Filter<RuleAt>,
    Input(rule): Input<PolicyRule>,
) -> ApiResult<Policy> {
    let at = q.at.map(|n| usize::try_from(n).unwrap_or(usize::MAX));
    Ok(Json(
        ws.policy_rule_insert(&a, &slug, &name, at, rule).await?,
    ))
}

/// Removes the rule at a position (1-based) from a policy.
#[utoipa::path(delete, path = "/api/v1/tenants/{slug}/policies/{name}/rules/{position}",
    tag = "policies", security(("bearer" = [])),
    params(("slug" = String, Path, description = "the tenant's slug"),
        ("name" = String, Path, description = "the policy's name"),
        ("position" = u32, Path, description = "the rule's position, 1-based")),
    responses((status = 200, body = Policy), (status = 403, body = ApiError),
        (status = 404, body = ApiError), (status = 409, body = ApiError),
        (status = 422, body = ApiError)))]
pub(crate) async fn policy_rule_remove(
    State(ws): State<Workspace>,
    Caller(a): Caller,
    Param((slug, name, position)): Param<(String, String, u32)>,
) -> ApiResult<Policy> {
    let position = usize::try_from(position).unwrap_or(usize::MAX);
    Ok(Json(
        ws.policy_rule_remove(&a, &slug, &name, position).await?,
    ))
}
