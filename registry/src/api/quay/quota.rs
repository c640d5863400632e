//! `/api/v1/.../quota`: quota management of organizations (`/organization/{orgname}/quota`), the
//! signed-in user's quota (`/user/quota`, read only) and the superuser's quotas of any user or
//! organization (`/superuser/{users,organization}/{namespace}/quota`). The rules are
//! [`crate::service::content::quota`]'s; the endpoints exist while `FEATURE_QUOTA_MANAGEMENT` is
//! on (otherwise Quay's 404).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::Method;
use axum::response::Response;
use axum::routing;
use quayside_client as api;

use super::error::ApiError;
use super::{Auth, Body, Entry, created, ep};
use crate::api::AppState;
use crate::service::content::quota::{self, Owner};
use crate::service::scopes::Scope::{SuperUser, UserAdmin};

/// The endpoints of this area, for the route table.
pub(super) fn endpoints() -> Vec<Entry> {
    use Method as M;
    let none: &[(&str, &str, &str)] = &[];
    vec![
        ep(
            M::GET,
            "/organization/{orgname}/quota",
            "listOrganizationQuota",
            None,
            "quota",
            "The organization's quota (at most one).",
            none,
            routing::get(org_list),
        ),
        ep(
            M::POST,
            "/organization/{orgname}/quota",
            "createOrganizationQuota",
            Some(SuperUser),
            "quota",
            "Create the organization quota (`limit_bytes` or a human `limit`).",
            none,
            routing::post(org_create),
        ),
        ep(
            M::GET,
            "/organization/{orgname}/quota/{quota_id}",
            "getOrganizationQuota",
            None,
            "quota",
            "One quota of the organization.",
            none,
            routing::get(org_get),
        ),
        ep(
            M::PUT,
            "/organization/{orgname}/quota/{quota_id}",
            "changeOrganizationQuota",
            Some(SuperUser),
            "quota",
            "Change the quota's size.",
            none,
            routing::put(org_update),
        ),
        ep(
            M::DELETE,
            "/organization/{orgname}/quota/{quota_id}",
            "deleteOrganizationQuota",
            Some(SuperUser),
            "quota",
            "Delete the quota and its limits.",
            none,
            routing::delete(org_delete),
        ),
        ep(
            M::GET,
            "/organization/{orgname}/quota/{quota_id}/limit",
            "listOrganizationQuotaLimit",
            None,
            "quota",
            "The Warning and Reject limits of a quota.",
            none,
            routing::get(org_limits),
        ),
        ep(
            M::POST,
            "/organization/{orgname}/quota/{quota_id}/limit",
            "createOrganizationQuotaLimit",
            Some(SuperUser),
            "quota",
            "Add a limit (`type` Warning or Reject, `threshold_percent`).",
            none,
            routing::post(org_create_limit),
        ),
        ep(
            M::GET,
            "/organization/{orgname}/quota/{quota_id}/limit/{limit_id}",
            "getOrganizationQuotaLimit",
            None,
            "quota",
            "One limit of a quota.",
            none,
            routing::get(org_limit),
        ),
        ep(
            M::PUT,
            "/organization/{orgname}/quota/{quota_id}/limit/{limit_id}",
            "changeOrganizationQuotaLimit",
            None,
            "quota",
            "Change a limit; answers the quota.",
            none,
            routing::put(org_update_limit),
        ),
        ep(
            M::DELETE,
            "/organization/{orgname}/quota/{quota_id}/limit/{limit_id}",
            "deleteOrganizationQuotaLimit",
            None,
            "quota",
            "Delete a limit.",
            none,
            routing::delete(org_delete_limit),
        ),
        ep(
            M::GET,
            "/user/quota",
            "listUserQuota",
            Some(UserAdmin),
            "quota",
            "The signed-in user's quota.",
            none,
            routing::get(user_list),
        ),
        ep(
            M::GET,
            "/user/quota/{quota_id}",
            "getUserQuota",
            Some(UserAdmin),
            "quota",
            "One quota of the signed-in user.",
            none,
            routing::get(user_get),
        ),
        ep(
            M::GET,
            "/user/quota/{quota_id}/limit",
            "listUserQuotaLimit",
            Some(UserAdmin),
            "quota",
            "The limits of the signed-in user's quota.",
            none,
            routing::get(user_limits),
        ),
        ep(
            M::GET,
            "/user/quota/{quota_id}/limit/{limit_id}",
            "getUserQuotaLimit",
            Some(UserAdmin),
            "quota",
            "One limit of the signed-in user's quota.",
            none,
            routing::get(user_limit),
        ),
        ep(
            M::GET,
            "/superuser/users/{namespace}/quota",
            "listUserQuotaSuperUser",
            Some(SuperUser),
            "quota",
            "The quota of any user.",
            none,
            routing::get(su_user_list),
        ),
        ep(
            M::POST,
            "/superuser/users/{namespace}/quota",
            "createUserQuotaSuperUser",
            Some(SuperUser),
            "quota",
            "Create the quota of any user.",
            none,
            routing::post(su_user_create),
        ),
        ep(
            M::PUT,
            "/superuser/users/{namespace}/quota/{quota_id}",
            "changeUserQuotaSuperUser",
            Some(SuperUser),
            "quota",
            "Change the quota.",
            none,
            routing::put(su_user_update),
        ),
        ep(
            M::DELETE,
            "/superuser/users/{namespace}/quota/{quota_id}",
            "deleteUserQuotaSuperUser",
            Some(SuperUser),
            "quota",
            "Delete the quota.",
            none,
            routing::delete(su_user_delete),
        ),
        ep(
            M::GET,
            "/superuser/organization/{namespace}/quota",
            "listOrganizationQuotaSuperUser",
            Some(SuperUser),
            "quota",
            "The quota of any organization.",
            none,
            routing::get(su_org_list),
        ),
        ep(
            M::POST,
            "/superuser/organization/{namespace}/quota",
            "createOrganizationQuotaSuperUser",
            Some(SuperUser),
            "quota",
            "Create the quota of any organization.",
            none,
            routing::post(su_org_create),
        ),
        ep(
            M::PUT,
            "/superuser/organization/{namespace}/quota/{quota_id}",
            "changeOrganizationQuotaSuperUser",
            Some(SuperUser),
            "quota",
            "Change the quota.",
            none,
            routing::put(su_org_update),
        ),
        ep(
            M::DELETE,
            "/superuser/organization/{namespace}/quota/{quota_id}",
            "deleteOrganizationQuotaSuperUser",
            Some(SuperUser),
            "quota",
            "Delete the quota.",
            none,
            routing::delete(su_org_delete),
        ),
    ]
}

/// Quay answers a quota or limit delete with an empty 204 that still says `application/json`.
fn deleted() -> Response {
    use axum::response::IntoResponse;
    (
        axum::http::StatusCode::NO_CONTENT,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
    )
        .into_response()
}

type Json2<T> = Result<Json<T>, ApiError>;

pub async fn org_list(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(org): Path<String>,
) -> Json2<Vec<api::QuotaView>> {
    Ok(Json(quota::list(&s.ctx, &c, Owner::Org(&org)).await?))
}

pub async fn org_create(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(org): Path<String>,
    Body(b): Body<api::QuotaRequest>,
) -> Result<Response, ApiError> {
    quota::create(&s.ctx, &c, Owner::Org(&org), &b).await?;
    Ok(created())
}

pub async fn org_get(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((org, id)): Path<(String, String)>,
) -> Json2<api::QuotaView> {
    Ok(Json(quota::get(&s.ctx, &c, Owner::Org(&org), &id).await?))
}

pub async fn org_update(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((org, id)): Path<(String, String)>,
    Body(b): Body<api::QuotaRequest>,
) -> Json2<api::QuotaView> {
    Ok(Json(
        quota::update(&s.ctx, &c, Owner::Org(&org), &id, &b).await?,
    ))
}

pub async fn org_delete(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((org, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    quota::delete(&s.ctx, &c, Owner::Org(&org), &id).await?;
    Ok(deleted())
}

pub async fn org_limits(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((org, id)): Path<(String, String)>,
) -> Json2<Vec<api::QuotaLimit>> {
    Ok(Json(
        quota::limits(&s.ctx, &c, Owner::Org(&org), &id).await?,
    ))
}

pub async fn org_create_limit(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((org, id)): Path<(String, String)>,
    Body(b): Body<api::CreateQuotaLimitRequest>,
) -> Result<Response, ApiError> {
    quota::create_limit(&s.ctx, &c, Owner::Org(&org), &id, &b).await?;
    Ok(created())
}

pub async fn org_limit(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((org, id, limit)): Path<(String, String, String)>,
) -> Json2<api::QuotaLimit> {
    Ok(Json(
        quota::limit(&s.ctx, &c, Owner::Org(&org), &id, &limit).await?,
    ))
}

pub async fn org_update_limit(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((org, id, limit)): Path<(String, String, String)>,
    Body(b): Body<api::UpdateQuotaLimitRequest>,
) -> Json2<api::QuotaView> {
    Ok(Json(
        quota::update_limit(&s.ctx, &c, Owner::Org(&org), &id, &limit, &b).await?,
    ))
}

pub async fn org_delete_limit(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((org, id, limit)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    quota::delete_limit(&s.ctx, &c, Owner::Org(&org), &id, &limit).await?;
    Ok(deleted())
}

pub async fn user_list(State(s): State<AppState>, Auth(c): Auth) -> Json2<Vec<api::QuotaView>> {
    Ok(Json(quota::list(&s.ctx, &c, Owner::Me).await?))
}

pub async fn user_get(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(id): Path<String>,
) -> Json2<api::QuotaView> {
    Ok(Json(quota::get(&s.ctx, &c, Owner::Me, &id).await?))
}

pub async fn user_limits(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(id): Path<String>,
) -> Json2<Vec<api::QuotaLimit>> {
    Ok(Json(quota::limits(&s.ctx, &c, Owner::Me, &id).await?))
}

pub async fn user_limit(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((id, limit)): Path<(String, String)>,
) -> Json2<api::QuotaLimit> {
    Ok(Json(
        quota::limit(&s.ctx, &c, Owner::Me, &id, &limit).await?,
    ))
}

pub async fn su_user_list(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(ns): Path<String>,
) -> Json2<Vec<api::QuotaView>> {
    Ok(Json(
        quota::list(&s.ctx, &c, Owner::SuperUserUser(&ns)).await?,
    ))
}

pub async fn su_user_create(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(ns): Path<String>,
    Body(b): Body<api::QuotaRequest>,
) -> Result<Response, ApiError> {
    quota::create(&s.ctx, &c, Owner::SuperUserUser(&ns), &b).await?;
    Ok(created())
}

pub async fn su_user_update(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((ns, id)): Path<(String, String)>,
    Body(b): Body<api::QuotaRequest>,
) -> Json2<api::QuotaView> {
    Ok(Json(
        quota::update(&s.ctx, &c, Owner::SuperUserUser(&ns), &id, &b).await?,
    ))
}

pub async fn su_user_delete(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((ns, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    quota::delete(&s.ctx, &c, Owner::SuperUserUser(&ns), &id).await?;
    Ok(deleted())
}

pub async fn su_org_list(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(ns): Path<String>,
) -> Json2<Vec<api::QuotaView>> {
    Ok(Json(
        quota::list(&s.ctx, &c, Owner::SuperUserOrg(&ns)).await?,
    ))
}

pub async fn su_org_create(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(ns): Path<String>,
    Body(b): Body<api::QuotaRequest>,
) -> Result<Response, ApiError> {
    quota::create(&s.ctx, &c, Owner::SuperUserOrg(&ns), &b).await?;
    Ok(created())
}

pub async fn su_org_update(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((ns, id)): Path<(String, String)>,
    Body(b): Body<api::QuotaRequest>,
) -> Json2<api::QuotaView> {
    Ok(Json(
        quota::update(&s.ctx, &c, Owner::SuperUserOrg(&ns), &id, &b).await?,
    ))
}

pub async fn su_org_delete(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((ns, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    quota::delete(&s.ctx, &c, Owner::SuperUserOrg(&ns), &id).await?;
    Ok(deleted())
}
