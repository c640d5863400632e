//! `/api/v1/organization/{orgname}/members...` and `.../collaborators`: who belongs to an
//! organization (see `service::tenancy::members`).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::Method;
use axum::response::Response;
use axum::routing;
use quayside_client as api;

use super::error::ApiError;
use super::{Auth, Entry, ep, no_content};
use crate::api::AppState;
use crate::service::scopes::Scope::OrgAdmin;
use crate::service::tenancy::members;

/// The endpoints of this area, for the route table.
pub(super) fn endpoints() -> Vec<Entry> {
    use Method as M;
    let none: &[(&str, &str, &str)] = &[];
    vec![
        ep(
            M::GET,
            "/organization/{orgname}/members",
            "getOrganizationMembers",
            Some(OrgAdmin),
            "organization",
            "List the human members of the specified organization.",
            none,
            routing::get(list),
        ),
        ep(
            M::GET,
            "/organization/{orgname}/members/{membername}",
            "getOrganizationMember",
            Some(OrgAdmin),
            "organization",
            "Retrieves the details of a member of the organization.",
            none,
            routing::get(get),
        ),
        ep(
            M::DELETE,
            "/organization/{orgname}/members/{membername}",
            "removeOrganizationMember",
            Some(OrgAdmin),
            "organization",
            "Removes a member from an organization, revoking all its repository privileges and removing it from all teams in the organization.",
            none,
            routing::delete(remove),
        ),
        ep(
            M::GET,
            "/organization/{orgname}/collaborators",
            "getOrganizationCollaborators",
            Some(OrgAdmin),
            "organization",
            "List outside collaborators of the specified organization.",
            none,
            routing::get(collaborators),
        ),
    ]
}

pub async fn list(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(org): Path<String>,
) -> Result<Json<api::OrganizationMembers>, ApiError> {
    Ok(Json(members::list(&s.ctx, &c, &org).await?))
}

pub async fn get(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((org, member)): Path<(String, String)>,
) -> Result<Json<api::OrganizationMember>, ApiError> {
    Ok(Json(members::get(&s.ctx, &c, &org, &member).await?))
}

pub async fn remove(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((org, member)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    members::remove(&s.ctx, &c, &org, &member).await?;
    Ok(no_content())
}

pub async fn collaborators(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(org): Path<String>,
) -> Result<Json<api::Collaborators>, ApiError> {
    Ok(Json(members::collaborators(&s.ctx, &c, &org).await?))
}
