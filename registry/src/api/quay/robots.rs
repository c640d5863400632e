//! Robot accounts of organizations (`/organization/{orgname}/robots/...`) and of the user
//! (`/user/robots/...`).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use quayside_client::types as api;

use super::error::ApiError;
use super::{Auth, Body, OptionalBody, Query, no_content};
use crate::api::AppState;
use crate::service::tenancy::robots::{self, Owner};

async fn list(
    s: &AppState,
    c: &crate::service::operations::audit::Caller,
    owner: Owner<'_>,
    q: &Query,
) -> Result<Json<api::Robots>, ApiError> {
    let permissions = q.flag("permissions", false)?;
    let token = q.flag("token", true)?;
    let limit = q.int("limit")?;
    Ok(Json(
        robots::list(&s.ctx, c, owner, permissions, token, limit).await?,
    ))
}

async fn create(
    s: &AppState,
    c: &crate::service::operations::audit::Caller,
    owner: Owner<'_>,
    name: &str,
    body: Option<api::CreateRobotRequest>,
) -> Result<Response, ApiError> {
    let body = body.unwrap_or_default();
    let robot = robots::create(
        &s.ctx,
        c,
        owner,
        name,
        body.description.as_deref(),
        body.unstructured_metadata.as_ref(),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(robot)).into_response())
}

pub async fn org_list(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(org): Path<String>,
    q: Query,
) -> Result<Json<api::Robots>, ApiError> {
    list(&s, &c, Owner::Org(&org), &q).await
}

pub async fn user_list(
    State(s): State<AppState>,
    Auth(c): Auth,
    q: Query,
) -> Result<Json<api::Robots>, ApiError> {
    list(&s, &c, Owner::User, &q).await
}

pub async fn org_get(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((org, name)): Path<(String, String)>,
) -> Result<Json<api::Robot>, ApiError> {
    Ok(Json(
        robots::get(&s.ctx, &c, Owner::Org(&org), &name).await?,
    ))
}

pub async fn user_get(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(name): Path<String>,
) -> Result<Json<api::Robot>, ApiError> {
    Ok(Json(robots::get(&s.ctx, &c, Owner::User, &name).await?))
}

pub async fn org_create(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((org, name)): Path<(String, String)>,
    OptionalBody(b): OptionalBody<api::CreateRobotRequest>,
) -> Result<Response, ApiError> {
    create(&s, &c, Owner::Org(&org), &name, b).await
}

pub async fn user_create(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(name): Path<String>,
    OptionalBody(b): OptionalBody<api::CreateRobotRequest>,
) -> Result<Response, ApiError> {
    create(&s, &c, Owner::User, &name, b).await
}

pub async fn org_delete(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((org, name)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    robots::delete(&s.ctx, &c, Owner::Org(&org), &name).await?;
    Ok(no_content())
}

pub async fn user_delete(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    robots::delete(&s.ctx, &c, Owner::User, &name).await?;
    Ok(no_content())
}

pub async fn org_regenerate(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((org, name)): Path<(String, String)>,
) -> Result<Json<api::Robot>, ApiError> {
    Ok(Json(
        robots::regenerate(&s.ctx, &c, Owner::Org(&org), &name).await?,
    ))
}

pub async fn user_regenerate(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(name): Path<String>,
) -> Result<Json<api::Robot>, ApiError> {
    Ok(Json(
        robots::regenerate(&s.ctx, &c, Owner::User, &name).await?,
    ))
}

pub async fn org_permissions(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((org, name)): Path<(String, String)>,
) -> Result<Json<api::RepositoryGrants>, ApiError> {
    Ok(Json(
        robots::permissions(&s.ctx, &c, Owner::Org(&org), &name).await?,
    ))
}

pub async fn user_permissions(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(name): Path<String>,
) -> Result<Json<api::RepositoryGrants>, ApiError> {
    Ok(Json(
        robots::permissions(&s.ctx, &c, Owner::User, &name).await?,
    ))
}

pub async fn org_federation(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((org, name)): Path<(String, String)>,
) -> Result<Json<Vec<api::FederationEntry>>, ApiError> {
    Ok(Json(
        robots::federation(&s.ctx, &c, Owner::Org(&org), &name).await?,
    ))
}

pub async fn user_federation(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(name): Path<String>,
) -> Result<Json<Vec<api::FederationEntry>>, ApiError> {
    Ok(Json(
        robots::federation(&s.ctx, &c, Owner::User, &name).await?,
    ))
}

pub async fn org_set_federation(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((org, name)): Path<(String, String)>,
    Body(b): Body<Vec<api::FederationEntry>>,
) -> Result<Json<Vec<api::FederationEntry>>, ApiError> {
    Ok(Json(
        robots::set_federation(&s.ctx, &c, Owner::Org(&org), &name, &b).await?,
    ))
}

pub async fn user_set_federation(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(name): Path<String>,
    Body(b): Body<Vec<api::FederationEntry>>,
) -> Result<Json<Vec<api::FederationEntry>>, ApiError> {
    Ok(Json(
        robots::set_federation(&s.ctx, &c, Owner::User, &name, &b).await?,
    ))
}

pub async fn org_delete_federation(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((org, name)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    robots::set_federation(&s.ctx, &c, Owner::Org(&org), &name, &[]).await?;
    Ok(no_content())
}

pub async fn user_delete_federation(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    robots::set_federation(&s.ctx, &c, Owner::User, &name, &[]).await?;
    Ok(no_content())
}
