//! `/api/v1/organization/{orgname}`: organizations themselves (their teams, default permissions,
//! applications and robots have their own modules).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::Method;
use axum::response::Response;
use axum::routing;
use quayside_client as api;

use super::error::ApiError;
use super::{Auth, Body, Entry, created, ep, no_content};
use crate::api::AppState;
use crate::service::scopes::Scope::{OrgAdmin, UserAdmin};
use crate::service::tenancy::orgs;

/// The endpoints of this area, for the route table.
pub(super) fn endpoints() -> Vec<Entry> {
    use Method as M;
    let none: &[(&str, &str, &str)] = &[];
    vec![
        ep(
            M::POST,
            "/organization/",
            "createOrganization",
            Some(UserAdmin),
            "organization",
            "Create a new organization.",
            none,
            routing::post(create),
        ),
        ep(
            M::GET,
            "/organization/{orgname}",
            "getOrganization",
            None,
            "organization",
            "Get the details for the specified organization.",
            none,
            routing::get(get),
        ),
        ep(
            M::PUT,
            "/organization/{orgname}",
            "changeOrganizationDetails",
            Some(OrgAdmin),
            "organization",
            "Change the details for the specified organization.",
            none,
            routing::put(update),
        ),
        ep(
            M::DELETE,
            "/organization/{orgname}",
            "deleteAdminedOrganization",
            Some(OrgAdmin),
            "organization",
            "Deletes the specified organization.",
            none,
            routing::delete(delete),
        ),
    ]
}

pub async fn create(
    State(s): State<AppState>,
    Auth(c): Auth,
    Body(b): Body<api::CreateOrganizationRequest>,
) -> Result<Response, ApiError> {
    orgs::create(&s.ctx, &c, &b.name, b.email.as_deref()).await?;
    Ok(created())
}

pub async fn get(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(org): Path<String>,
) -> Result<Json<api::Organization>, ApiError> {
    Ok(Json(orgs::get(&s.ctx, &c, &org).await?))
}

pub async fn update(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(org): Path<String>,
    Body(b): Body<api::UpdateOrganizationRequest>,
) -> Result<Json<api::Organization>, ApiError> {
    Ok(Json(orgs::update(&s.ctx, &c, &org, &b).await?))
}

pub async fn delete(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(org): Path<String>,
) -> Result<Response, ApiError> {
    orgs::delete(&s.ctx, &c, &org).await?;
    Ok(no_content())
}
