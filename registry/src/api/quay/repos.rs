//! `/api/v1/repository/...`: repositories and their permissions.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use quayside_client::types as api;

use super::error::ApiError;
use super::{Auth, Body, Query, no_content};
use crate::api::AppState;
use crate::service::{content::repositories, tenancy::permissions};

pub async fn create(
    State(s): State<AppState>,
    Auth(c): Auth,
    Body(b): Body<api::CreateRepositoryRequest>,
) -> Result<Response, ApiError> {
    let created = repositories::create(&s.ctx, &c, &b).await?;
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

pub async fn list(
    State(s): State<AppState>,
    Auth(c): Auth,
    q: Query,
) -> Result<Json<api::RepositoryList>, ApiError> {
    let options = repositories::ListOptions {
        namespace: q
            .get("namespace")
            .filter(|n| !n.is_empty())
            .map(str::to_owned),
        public: q.flag("public", false)?,
        starred: q.flag("starred", false)?,
        last_modified: q.flag("last_modified", false)?,
        popularity: q.flag("popularity", false)?,
        next_page: q
            .get("next_page")
            .filter(|n| !n.is_empty())
            .map(str::to_owned),
    };
    Ok(Json(repositories::list(&s.ctx, &c, &options).await?))
}

pub async fn get(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((ns, repo)): Path<(String, String)>,
    q: Query,
) -> Result<Json<api::Repository>, ApiError> {
    let tags = q.flag("includeTags", true)?;
    let stats = q.flag("includeStats", false)?;
    Ok(Json(
        repositories::get(&s.ctx, &c, &ns, &repo, tags, stats).await?,
    ))
}

pub async fn update(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((ns, repo)): Path<(String, String)>,
    Body(b): Body<api::UpdateRepositoryRequest>,
) -> Result<Json<api::Success>, ApiError> {
    Ok(Json(
        repositories::update(&s.ctx, &c, &ns, &repo, &b.description).await?,
    ))
}

pub async fn delete(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((ns, repo)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    repositories::delete(&s.ctx, &c, &ns, &repo).await?;
    Ok(no_content())
}

pub async fn change_visibility(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((ns, repo)): Path<(String, String)>,
    Body(b): Body<api::ChangeVisibilityRequest>,
) -> Result<Json<api::Success>, ApiError> {
    Ok(Json(
        repositories::change_visibility(&s.ctx, &c, &ns, &repo, &b.visibility).await?,
    ))
}

pub async fn user_permissions(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((ns, repo)): Path<(String, String)>,
) -> Result<Json<api::UserPermissions>, ApiError> {
    Ok(Json(permissions::list_users(&s.ctx, &c, &ns, &repo).await?))
}

pub async fn user_permission(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((ns, repo, user)): Path<(String, String, String)>,
) -> Result<Json<api::UserPermission>, ApiError> {
    Ok(Json(
        permissions::get_user(&s.ctx, &c, &ns, &repo, &user).await?,
    ))
}

pub async fn set_user_permission(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((ns, repo, user)): Path<(String, String, String)>,
    Body(b): Body<api::RoleRequest>,
) -> Result<Json<api::UserPermission>, ApiError> {
    Ok(Json(
        permissions::set_user(&s.ctx, &c, &ns, &repo, &user, &b.role).await?,
    ))
}

pub async fn delete_user_permission(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((ns, repo, user)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    permissions::delete_user(&s.ctx, &c, &ns, &repo, &user).await?;
    Ok(no_content())
}

pub async fn team_permissions(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((ns, repo)): Path<(String, String)>,
) -> Result<Json<api::TeamPermissions>, ApiError> {
    Ok(Json(permissions::list_teams(&s.ctx, &c, &ns, &repo).await?))
}

pub async fn team_permission(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((ns, repo, team)): Path<(String, String, String)>,
) -> Result<Json<api::RoleRequest>, ApiError> {
    Ok(Json(
        permissions::get_team(&s.ctx, &c, &ns, &repo, &team).await?,
    ))
}

pub async fn set_team_permission(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((ns, repo, team)): Path<(String, String, String)>,
    Body(b): Body<api::RoleRequest>,
) -> Result<Json<api::TeamPermission>, ApiError> {
    Ok(Json(
        permissions::set_team(&s.ctx, &c, &ns, &repo, &team, &b.role).await?,
    ))
}

pub async fn delete_team_permission(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((ns, repo, team)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    permissions::delete_team(&s.ctx, &c, &ns, &repo, &team).await?;
    Ok(no_content())
}
