//! `/api/v1/repository/{namespace}/{repository}/permissions/...`: what users, robots and teams
//! may do in a repository; and the legacy repository tokens (`.../tokens/...`), which Quay 3.18
//! answers 410 to administrators (after checking the body where it takes one).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::Method;
use axum::response::{IntoResponse, Response};
use axum::routing;
use quayside_client as api;

use super::error::ApiError;
use super::{Auth, Body, Entry, ep, no_content};
use crate::api::AppState;
use crate::service::scopes::Scope::RepoAdmin;
use crate::service::tenancy::permissions;

/// The endpoints of this area, for the route table.
pub(super) fn endpoints() -> Vec<Entry> {
    use Method as M;
    let none: &[(&str, &str, &str)] = &[];
    vec![
        ep(
            M::GET,
            "/repository/{namespace}/{repository}/permissions/user/",
            "listRepoUserPermissions",
            Some(RepoAdmin),
            "permission",
            "List all user permissions.",
            none,
            routing::get(user_permissions),
        ),
        ep(
            M::GET,
            "/repository/{namespace}/{repository}/permissions/user/{username}",
            "getUserPermissions",
            Some(RepoAdmin),
            "permission",
            "Get the permission for the specified user.",
            none,
            routing::get(user_permission),
        ),
        ep(
            M::PUT,
            "/repository/{namespace}/{repository}/permissions/user/{username}",
            "changeUserPermissions",
            Some(RepoAdmin),
            "permission",
            "Update the permissions of a user or robot on the repository.",
            none,
            routing::put(set_user_permission),
        ),
        ep(
            M::DELETE,
            "/repository/{namespace}/{repository}/permissions/user/{username}",
            "deleteUserPermissions",
            Some(RepoAdmin),
            "permission",
            "Delete the permission for the user.",
            none,
            routing::delete(delete_user_permission),
        ),
        ep(
            M::GET,
            "/repository/{namespace}/{repository}/permissions/team/",
            "listRepoTeamPermissions",
            Some(RepoAdmin),
            "permission",
            "List all team permissions.",
            none,
            routing::get(team_permissions),
        ),
        ep(
            M::GET,
            "/repository/{namespace}/{repository}/permissions/team/{teamname}",
            "getTeamPermissions",
            Some(RepoAdmin),
            "permission",
            "Fetch the permission for the specified team.",
            none,
            routing::get(team_permission),
        ),
        ep(
            M::PUT,
            "/repository/{namespace}/{repository}/permissions/team/{teamname}",
            "changeTeamPermissions",
            Some(RepoAdmin),
            "permission",
            "Update the existing team permission.",
            none,
            routing::put(set_team_permission),
        ),
        ep(
            M::DELETE,
            "/repository/{namespace}/{repository}/permissions/team/{teamname}",
            "deleteTeamPermissions",
            Some(RepoAdmin),
            "permission",
            "Delete the permission for the specified team.",
            none,
            routing::delete(delete_team_permission),
        ),
        ep(
            M::GET,
            "/repository/{namespace}/{repository}/permissions/user/{username}/transitive",
            "getUserTransitivePermission",
            Some(RepoAdmin),
            "permission",
            "Get the roles of the specified user on the repository, direct and through teams.",
            none,
            routing::get(user_transitive_permission),
        ),
        ep(
            M::GET,
            "/repository/{namespace}/{repository}/tokens/",
            "listRepoTokens",
            Some(RepoAdmin),
            "repotoken",
            "List the tokens for the specified repository (no longer supported: 410).",
            none,
            routing::get(tokens_gone),
        ),
        ep(
            M::POST,
            "/repository/{namespace}/{repository}/tokens/",
            "createToken",
            Some(RepoAdmin),
            "repotoken",
            "Create a new repository token (no longer supported: 410).",
            none,
            routing::post(create_token_gone),
        ),
        ep(
            M::GET,
            "/repository/{namespace}/{repository}/tokens/{code}",
            "getTokens",
            Some(RepoAdmin),
            "repotoken",
            "Fetch the specified repository token information (no longer supported: 410).",
            none,
            routing::get(token_gone),
        ),
        ep(
            M::PUT,
            "/repository/{namespace}/{repository}/tokens/{code}",
            "changeToken",
            Some(RepoAdmin),
            "repotoken",
            "Update the permissions for the specified repository token (no longer supported: 410).",
            none,
            routing::put(change_token_gone),
        ),
        ep(
            M::DELETE,
            "/repository/{namespace}/{repository}/tokens/{code}",
            "deleteToken",
            Some(RepoAdmin),
            "repotoken",
            "Delete the repository token (no longer supported: 410).",
            none,
            routing::delete(token_gone),
        ),
    ]
}

pub async fn user_transitive_permission(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((ns, repo, user)): Path<(String, String, String)>,
) -> Result<Json<api::TransitivePermissions>, ApiError> {
    Ok(Json(
        permissions::user_roles(&s.ctx, &c, &ns, &repo, &user).await?,
    ))
}

/// Quay 3.18's answer to every legacy token call an administrator makes.
fn gone(message: &str) -> Response {
    (
        axum::http::StatusCode::GONE,
        Json(serde_json::json!({ "message": message })),
    )
        .into_response()
}

const HANDLING_GONE: &str = "Handling of access tokens is no longer supported";

/// The body Quay validates before answering 410: `{"friendlyName": string}`.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewToken {
    #[allow(dead_code)]
    friendly_name: String,
}

/// `{"role": "read" | "write" | "admin"}`.
#[derive(serde::Deserialize)]
pub struct TokenPermission {
    role: String,
}

pub async fn tokens_gone(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((ns, repo)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    permissions::legacy_tokens(&s.ctx, &c, &ns, &repo).await?;
    Ok(gone(HANDLING_GONE))
}

pub async fn create_token_gone(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((ns, repo)): Path<(String, String)>,
    Body(_): Body<NewToken>,
) -> Result<Response, ApiError> {
    permissions::legacy_tokens(&s.ctx, &c, &ns, &repo).await?;
    Ok(gone("Creation of access tokens is no longer supported"))
}

pub async fn token_gone(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((ns, repo, _code)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    permissions::legacy_tokens(&s.ctx, &c, &ns, &repo).await?;
    Ok(gone(HANDLING_GONE))
}

pub async fn change_token_gone(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((ns, repo, _code)): Path<(String, String, String)>,
    Body(b): Body<TokenPermission>,
) -> Result<Response, ApiError> {
    permissions::legacy_tokens(&s.ctx, &c, &ns, &repo).await?;
    if !matches!(b.role.as_str(), "read" | "write" | "admin") {
        return Err(ApiError::invalid_request(format!(
            "role: {:?} is not one of ['read', 'write', 'admin']",
            b.role
        )));
    }
    Ok(gone(HANDLING_GONE))
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
