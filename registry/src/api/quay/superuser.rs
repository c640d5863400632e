//! `/api/v1/superuser/...`: the superuser's management of every user and organization, and the
//! registry's size, and the superuser's views of any build (`/superuser/{build_uuid}/build`,
//! `.../status`, `.../logs`: the repository's build view and log page, found by uuid alone).
//! (Quotas of any namespace are in [`super::quota`], usage logs in [`super::logs`].)

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
use crate::service::content::{builds, registry_size};
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
            &[
                (
                    "disabled",
                    "boolean",
                    "If false, only enabled users will be returned.",
                ),
                (
                    "limit",
                    "integer",
                    "Limit to the number of results to return per page. Max 100.",
                ),
                ("next_page", "string", "The page token for the next page"),
            ],
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
            "Returns a list of all organizations in the system.",
            &[
                (
                    "limit",
                    "integer",
                    "Limit to the number of results to return per page. Max 100.",
                ),
                ("next_page", "string", "The page token for the next page"),
            ],
            routing::get(list_organizations),
        ),
        ep(
            M::PUT,
            "/superuser/organizations/{name}",
            "changeOrganization",
            Some(SuperUser),
            "superuser",
            "Updates information about the specified organization (its name).",
            none,
            routing::put(change_organization),
        ),
        ep(
            M::DELETE,
            "/superuser/organizations/{name}",
            "deleteOrganization",
            Some(SuperUser),
            "superuser",
            "Deletes the specified organization.",
            none,
            routing::delete(delete_organization),
        ),
        ep(
            M::GET,
            "/superuser/registrysize/",
            "getRegistrySize",
            Some(SuperUser),
            "superuser",
            "Returns size of the registry",
            none,
            routing::get(registry_size),
        ),
        ep(
            M::POST,
            "/superuser/registrysize/",
            "queueRegistrySizeCalculation",
            Some(SuperUser),
            "superuser",
            "Queues registry size calculation",
            none,
            routing::post(queue_registry_size),
        ),
        ep(
            M::GET,
            "/superuser/{build_uuid}/build",
            "getRepoBuildSuperUser",
            Some(SuperUser),
            "superuser",
            "Returns information about a build.",
            none,
            routing::get(build),
        ),
        ep(
            M::GET,
            "/superuser/{build_uuid}/status",
            "getRepoBuildStatusSuperUser",
            Some(SuperUser),
            "superuser",
            "Return the status for the builds specified by the build uuids.",
            none,
            routing::get(build),
        ),
        ep(
            M::GET,
            "/superuser/{build_uuid}/logs",
            "getRepoBuildLogsSuperUser",
            Some(SuperUser),
            "superuser",
            "Return the build logs for the build specified by the build uuid.",
            &[("start", "integer", "The first log entry to return")],
            routing::get(build_logs),
        ),
    ]
}

fn page(q: &Query) -> Result<accounts::PageRequest, ApiError> {
    Ok(accounts::PageRequest {
        limit: q.int("limit")?,
        next_page: q.get("next_page").map(str::to_owned),
    })
}

pub async fn change_organization(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(name): Path<String>,
    Body(b): Body<api::SuperUserUpdateOrganization>,
) -> Result<Json<api::SuperUserOrganization>, ApiError> {
    Ok(Json(
        orgs::rename_by_superuser(&s.ctx, &c, &name, b.name.as_deref()).await?,
    ))
}

pub async fn delete_organization(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    orgs::delete_by_superuser(&s.ctx, &c, &name).await?;
    Ok(no_content())
}

pub async fn registry_size(
    State(s): State<AppState>,
    Auth(c): Auth,
) -> Result<Json<api::RegistrySize>, ApiError> {
    Ok(Json(registry_size::get(&s.ctx, &c).await?))
}

/// Quay answers an empty string: 201 when queued, 202 when one already was.
pub async fn queue_registry_size(
    State(s): State<AppState>,
    Auth(c): Auth,
) -> Result<Response, ApiError> {
    let status = match registry_size::calculate(&s.ctx, &c).await? {
        registry_size::Queued::Done => axum::http::StatusCode::CREATED,
        registry_size::Queued::AlreadyQueued => axum::http::StatusCode::ACCEPTED,
    };
    Ok((status, Json("")).into_response())
}

pub async fn list_organizations(
    State(s): State<AppState>,
    Auth(c): Auth,
    q: Query,
) -> Result<Json<api::SuperUserOrganizations>, ApiError> {
    Ok(Json(
        orgs::list_for_superuser(&s.ctx, &c, &page(&q)?).await?,
    ))
}

pub async fn list_users(
    State(s): State<AppState>,
    Auth(c): Auth,
    q: Query,
) -> Result<Json<api::SuperUserUsers>, ApiError> {
    let include_disabled = q.flag("disabled", true)?;
    Ok(Json(
        accounts::list_users(&s.ctx, &c, include_disabled, &page(&q)?).await?,
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

pub async fn build(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(uuid): Path<String>,
) -> Result<Json<api::Build>, ApiError> {
    Ok(Json(builds::superuser_get(&s.ctx, &c, &uuid).await?))
}

pub async fn build_logs(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(uuid): Path<String>,
    q: Query,
) -> Result<Json<api::BuildLogs>, ApiError> {
    Ok(Json(
        builds::superuser_logs(&s.ctx, &c, &uuid, q.int("start")?).await?,
    ))
}
