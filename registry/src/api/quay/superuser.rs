//! `/api/v1/superuser/users/...`: the superuser's management of every user.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::Method;
use axum::response::{IntoResponse, Response};
use axum::routing;
use quayside_client as api;
use serde_json::json;

use super::error::ApiError;
use super::{Auth, Body, Entry, Query, ep, no_content};
use crate::api::AppState;
use crate::service::scopes::Scope::SuperUser;
use crate::service::tenancy::{accounts, orgs};

/// The endpoints of this area, for the route table.
pub(super) fn endpoints() -> Vec<Entry> {
    use Method as M;
    let none: &[(&str, &str, &str)] = &[];
    vec![
        ep(
            M::GET,
            "/superuser/users/",
            "listAllUsers",
            Some(SuperUser),
            "superuser",
            "Returns a list of all users in the system.",
            &[(
                "disabled",
                "boolean",
                "If false, only enabled users will be returned.",
            )],
            routing::get(list_users),
        ),
        ep(
            M::POST,
            "/superuser/users/",
            "createInstallUser",
            Some(SuperUser),
            "superuser",
            "Creates a new user with a generated password.",
            none,
            routing::post(create_user),
        ),
        ep(
            M::GET,
            "/superuser/users/{username}",
            "getInstallUser",
            Some(SuperUser),
            "superuser",
            "Returns information about the specified user.",
            none,
            routing::get(get_user),
        ),
        ep(
            M::PUT,
            "/superuser/users/{username}",
            "changeInstallUser",
            Some(SuperUser),
            "superuser",
            "Updates information about the specified user (password, email, enabled).",
            none,
            routing::put(update_user),
        ),
        ep(
            M::DELETE,
            "/superuser/users/{username}",
            "deleteInstallUser",
            Some(SuperUser),
            "superuser",
            "Deletes the specified user and the repositories of their namespace.",
            none,
            routing::delete(delete_user),
        ),
        ep(
            M::GET,
            "/superuser/organizations/",
            "listAllOrganizations",
            Some(SuperUser),
            "superuser",
            "Returns every organization with its quota and storage use.",
            none,
            routing::get(list_organizations),
        ),
    ]
}

pub async fn list_organizations(
    State(s): State<AppState>,
    Auth(c): Auth,
) -> Result<Json<api::SuperUserOrganizations>, ApiError> {
    Ok(Json(orgs::list_for_superuser(&s.ctx, &c).await?))
}

pub async fn list_users(
    State(s): State<AppState>,
    Auth(c): Auth,
    q: Query,
) -> Result<Json<api::SuperUserUsers>, ApiError> {
    let include_disabled = q.flag("disabled", true)?;
    Ok(Json(
        accounts::list_users(&s.ctx, &c, include_disabled).await?,
    ))
}

pub async fn create_user(
    State(s): State<AppState>,
    Auth(c): Auth,
    Body(b): Body<api::CreateUserRequest>,
) -> Result<Json<api::CreatedUser>, ApiError> {
    Ok(Json(
        accounts::create_user_by_superuser(&s.ctx, &c, &b.username, b.email.as_deref()).await?,
    ))
}

pub async fn get_user(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(username): Path<String>,
) -> Result<Json<api::SuperUserUser>, ApiError> {
    Ok(Json(accounts::get_user(&s.ctx, &c, &username).await?))
}

pub async fn update_user(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(username): Path<String>,
    Body(b): Body<api::UpdateUserRequest>,
) -> Result<Response, ApiError> {
    let view = accounts::update_user(
        &s.ctx,
        &c,
        &username,
        b.password.as_deref(),
        b.email.as_deref(),
        b.enabled,
    )
    .await?;
    let mut body = serde_json::to_value(view).unwrap_or_default();
    if let Some(password) = &b.password {
        body["encrypted_password"] = json!(s.ctx.sealer().seal(password));
    }
    Ok(Json(body).into_response())
}

pub async fn delete_user(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(username): Path<String>,
) -> Result<Response, ApiError> {
    accounts::delete_user(&s.ctx, &c, &username).await?;
    Ok(no_content())
}
