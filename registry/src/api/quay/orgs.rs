//! `/api/v1/organization/...`: organizations, teams, default permissions, applications.

use axum::Json;
use axum::extract::{Path, State};
use axum::response::Response;
use quayside_client::types as api;

use super::error::ApiError;
use super::{Auth, Body, Query, created, no_content};
use crate::api::AppState;
use crate::service::{tenancy::apps, tenancy::orgs, tenancy::permissions, tenancy::teams};

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

pub async fn put_team(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((org, team)): Path<(String, String)>,
    Body(b): Body<api::TeamRequest>,
) -> Result<Json<api::Team>, ApiError> {
    Ok(Json(
        teams::put(&s.ctx, &c, &org, &team, &b.role, b.description.as_deref()).await?,
    ))
}

pub async fn delete_team(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((org, team)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    teams::delete(&s.ctx, &c, &org, &team).await?;
    Ok(no_content())
}

pub async fn team_members(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((org, team)): Path<(String, String)>,
    q: Query,
) -> Result<Json<api::TeamMembers>, ApiError> {
    let pending = q.flag("includePending", false)?;
    Ok(Json(
        teams::members(&s.ctx, &c, &org, &team, pending).await?,
    ))
}

pub async fn add_team_member(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((org, team, member)): Path<(String, String, String)>,
) -> Result<Json<api::TeamMember>, ApiError> {
    Ok(Json(
        teams::add_member(&s.ctx, &c, &org, &team, &member).await?,
    ))
}

pub async fn remove_team_member(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((org, team, member)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    teams::remove_member(&s.ctx, &c, &org, &team, &member).await?;
    Ok(no_content())
}

pub async fn invite_email(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((org, team, email)): Path<(String, String, String)>,
) -> Result<Json<api::TeamMember>, ApiError> {
    Ok(Json(
        teams::invite_email(&s.ctx, &c, &org, &team, &email).await?,
    ))
}

pub async fn delete_invite(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((org, team, email)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    teams::delete_email_invite(&s.ctx, &c, &org, &team, &email).await?;
    Ok(no_content())
}

pub async fn team_permissions(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((org, team)): Path<(String, String)>,
) -> Result<Json<api::RepositoryGrants>, ApiError> {
    Ok(Json(teams::permissions(&s.ctx, &c, &org, &team).await?))
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
