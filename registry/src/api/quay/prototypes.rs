//! `/api/v1/organization/{orgname}/prototypes/...`: default permissions (Quay's permission
//! prototypes) granted on the organization's new repositories.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::Method;
use axum::response::Response;
use axum::routing;
use quayside_client as api;

use super::error::ApiError;
use super::{Auth, Body, Entry, ep, no_content};
use crate::api::AppState;
use crate::service::scopes::Scope::OrgAdmin;
use crate::service::tenancy::permissions;

/// The endpoints of this area, for the route table.
pub(super) fn endpoints() -> Vec<Entry> {
    use Method as M;
    let none: &[(&str, &str, &str)] = &[];
    vec![
        ep(
            M::GET,
            "/organization/{orgname}/prototypes",
            "getOrganizationPrototypePermissions",
            Some(OrgAdmin),
            "prototype",
            "List the existing prototypes for this organization.",
            none,
            routing::get(prototypes),
        ),
        ep(
            M::POST,
            "/organization/{orgname}/prototypes",
            "createOrganizationPrototypePermission",
            Some(OrgAdmin),
            "prototype",
            "Create a new permission prototype.",
            none,
            routing::post(create_prototype),
        ),
        ep(
            M::PUT,
            "/organization/{orgname}/prototypes/{prototypeid}",
            "updateOrganizationPrototypePermission",
            Some(OrgAdmin),
            "prototype",
            "Update the role of an existing permission prototype.",
            none,
            routing::put(update_prototype),
        ),
        ep(
            M::DELETE,
            "/organization/{orgname}/prototypes/{prototypeid}",
            "deleteOrganizationPrototypePermission",
            Some(OrgAdmin),
            "prototype",
            "Delete an existing permission prototype.",
            none,
            routing::delete(delete_prototype),
        ),
    ]
}

pub async fn prototypes(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(org): Path<String>,
) -> Result<Json<api::Prototypes>, ApiError> {
    Ok(Json(permissions::prototypes(&s.ctx, &c, &org).await?))
}

pub async fn create_prototype(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(org): Path<String>,
    Body(b): Body<api::CreatePrototypeRequest>,
) -> Result<Json<api::Prototype>, ApiError> {
    Ok(Json(
        permissions::create_prototype(&s.ctx, &c, &org, &b).await?,
    ))
}

pub async fn update_prototype(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((org, id)): Path<(String, String)>,
    Body(b): Body<api::RoleRequest>,
) -> Result<Json<api::Prototype>, ApiError> {
    Ok(Json(
        permissions::update_prototype(&s.ctx, &c, &org, &id, &b.role).await?,
    ))
}

pub async fn delete_prototype(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((org, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    permissions::delete_prototype(&s.ctx, &c, &org, &id).await?;
    Ok(no_content())
}
