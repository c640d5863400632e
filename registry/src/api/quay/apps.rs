//! `/api/v1/organization/{orgname}/applications/...`: OAuth applications of organizations and
//! their access tokens.

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
use crate::service::tenancy::apps;

/// The endpoints of this area, for the route table.
pub(super) fn endpoints() -> Vec<Entry> {
    use Method as M;
    let none: &[(&str, &str, &str)] = &[];
    vec![
        ep(
            M::GET,
            "/app/{client_id}",
            "getApplicationInformation",
            None,
            "organization",
            "Get information on the specified application.",
            none,
            routing::get(application_information),
        ),
        ep(
            M::GET,
            "/organization/{orgname}/applications",
            "getOrganizationApplications",
            Some(OrgAdmin),
            "organization",
            "List the applications for the specified organization.",
            none,
            routing::get(applications),
        ),
        ep(
            M::POST,
            "/organization/{orgname}/applications",
            "createOrganizationApplication",
            Some(OrgAdmin),
            "organization",
            "Creates a new application under this organization.",
            none,
            routing::post(create_application),
        ),
        ep(
            M::GET,
            "/organization/{orgname}/applications/{client_id}",
            "getOrganizationApplication",
            Some(OrgAdmin),
            "organization",
            "Retrieves the application with the specified client_id.",
            none,
            routing::get(application),
        ),
        ep(
            M::PUT,
            "/organization/{orgname}/applications/{client_id}",
            "updateOrganizationApplication",
            Some(OrgAdmin),
            "organization",
            "Updates an application under this organization.",
            none,
            routing::put(update_application),
        ),
        ep(
            M::DELETE,
            "/organization/{orgname}/applications/{client_id}",
            "deleteOrganizationApplication",
            Some(OrgAdmin),
            "organization",
            "Deletes the application under this organization.",
            none,
            routing::delete(delete_application),
        ),
        ep(
            M::POST,
            "/organization/{orgname}/applications/{client_id}/resetclientsecret",
            "resetOrganizationApplicationClientSecret",
            Some(OrgAdmin),
            "organization",
            "Resets the client secret of the application.",
            none,
            routing::post(reset_client_secret),
        ),
        ep(
            M::GET,
            "/organization/{orgname}/applications/{client_id}/tokens",
            "listOrganizationApplicationTokens",
            Some(OrgAdmin),
            "organization",
            "List all tokens for the specified application (without their secrets).",
            none,
            routing::get(application_tokens),
        ),
        ep(
            M::POST,
            "/organization/{orgname}/applications/{client_id}/tokens",
            "createOrganizationApplicationToken",
            Some(OrgAdmin),
            "organization",
            "Create an access token for the application with the given scopes; the token is shown once.",
            none,
            routing::post(create_application_token),
        ),
        ep(
            M::DELETE,
            "/organization/{orgname}/applications/{client_id}/tokens/{token_uuid}",
            "deleteOrganizationApplicationToken",
            Some(OrgAdmin),
            "organization",
            "Revoke a specific token for the specified application.",
            none,
            routing::delete(revoke_application_token),
        ),
    ]
}

pub async fn application_information(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(client_id): Path<String>,
) -> Result<Json<api::ApplicationInformation>, ApiError> {
    Ok(Json(apps::information(&s.ctx, &c, &client_id).await?))
}

pub async fn applications(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(org): Path<String>,
) -> Result<Json<api::Applications>, ApiError> {
    Ok(Json(apps::list(&s.ctx, &c, &org).await?))
}

pub async fn create_application(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(org): Path<String>,
    Body(b): Body<api::ApplicationRequest>,
) -> Result<Json<api::Application>, ApiError> {
    Ok(Json(apps::create(&s.ctx, &c, &org, &b).await?))
}

pub async fn application(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((org, client_id)): Path<(String, String)>,
) -> Result<Json<api::Application>, ApiError> {
    Ok(Json(apps::get(&s.ctx, &c, &org, &client_id).await?))
}

pub async fn update_application(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((org, client_id)): Path<(String, String)>,
    Body(b): Body<api::ApplicationRequest>,
) -> Result<Json<api::Application>, ApiError> {
    Ok(Json(apps::update(&s.ctx, &c, &org, &client_id, &b).await?))
}

pub async fn delete_application(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((org, client_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    apps::delete(&s.ctx, &c, &org, &client_id).await?;
    Ok(no_content())
}

pub async fn reset_client_secret(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((org, client_id)): Path<(String, String)>,
) -> Result<Json<api::Application>, ApiError> {
    Ok(Json(
        apps::reset_secret(&s.ctx, &c, &org, &client_id).await?,
    ))
}

pub async fn application_tokens(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((org, client_id)): Path<(String, String)>,
) -> Result<Json<api::ApplicationTokens>, ApiError> {
    Ok(Json(apps::tokens(&s.ctx, &c, &org, &client_id).await?))
}

pub async fn create_application_token(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((org, client_id)): Path<(String, String)>,
    Body(b): Body<api::CreateTokenRequest>,
) -> Result<Json<api::ApplicationToken>, ApiError> {
    Ok(Json(
        apps::create_token(&s.ctx, &c, &org, &client_id, &b).await?,
    ))
}

pub async fn revoke_application_token(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((org, client_id, uuid)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    apps::revoke_token(&s.ctx, &c, &org, &client_id, &uuid).await?;
    Ok(no_content())
}
