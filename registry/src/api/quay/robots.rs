//! Robot accounts of organizations (`/organization/{orgname}/robots/...`) and of the user
//! (`/user/robots/...`).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing;
use quayside_client as api;

use super::error::ApiError;
use super::{Auth, Body, Entry, OptionalBody, Query, ep, no_content};
use crate::api::AppState;
use crate::service::scopes::Scope::{OrgAdmin, UserAdmin};
use crate::service::tenancy::robots::{self, Owner};

const ROBOT_LIST_QUERY: &[(&str, &str, &str)] = &[
    (
        "permissions",
        "boolean",
        "Whether to include repositories and teams in which the robots have permission.",
    ),
    (
        "token",
        "boolean",
        "If false, the robot's token is not returned.",
    ),
    (
        "limit",
        "integer",
        "If specified, the number of robots to return.",
    ),
];

/// The endpoints of this area, for the route table.
pub(super) fn endpoints() -> Vec<Entry> {
    use Method as M;
    let none: &[(&str, &str, &str)] = &[];
    vec![
        ep(
            M::GET,
            "/organization/{orgname}/robots",
            "getOrgRobots",
            Some(OrgAdmin),
            "robot",
            "List the organization's robots.",
            ROBOT_LIST_QUERY,
            routing::get(org_list),
        ),
        ep(
            M::GET,
            "/organization/{orgname}/robots/{robot_shortname}",
            "getOrgRobot",
            Some(OrgAdmin),
            "robot",
            "Returns the organization's robot with the specified name.",
            none,
            routing::get(org_get),
        ),
        ep(
            M::PUT,
            "/organization/{orgname}/robots/{robot_shortname}",
            "createOrgRobot",
            Some(OrgAdmin),
            "robot",
            "Create a new robot in the organization.",
            none,
            routing::put(org_create),
        ),
        ep(
            M::DELETE,
            "/organization/{orgname}/robots/{robot_shortname}",
            "deleteOrgRobot",
            Some(OrgAdmin),
            "robot",
            "Delete an existing organization robot.",
            none,
            routing::delete(org_delete),
        ),
        ep(
            M::POST,
            "/organization/{orgname}/robots/{robot_shortname}/regenerate",
            "regenerateOrgRobotToken",
            Some(OrgAdmin),
            "robot",
            "Regenerates the token for an organization robot.",
            none,
            routing::post(org_regenerate),
        ),
        ep(
            M::GET,
            "/organization/{orgname}/robots/{robot_shortname}/permissions",
            "getOrgRobotPermissions",
            Some(OrgAdmin),
            "robot",
            "Returns the list of repository permissions for the org's robot.",
            none,
            routing::get(org_permissions),
        ),
        ep(
            M::GET,
            "/organization/{orgname}/robots/{robot_shortname}/federation",
            "getOrgRobotFederation",
            Some(OrgAdmin),
            "robot",
            "Returns the federation configuration for the organization's robot.",
            none,
            routing::get(org_federation),
        ),
        ep(
            M::POST,
            "/organization/{orgname}/robots/{robot_shortname}/federation",
            "createOrgRobotFederation",
            Some(OrgAdmin),
            "robot",
            "Create or update federation configuration for the organization's robot.",
            none,
            routing::post(org_set_federation),
        ),
        ep(
            M::DELETE,
            "/organization/{orgname}/robots/{robot_shortname}/federation",
            "deleteOrgRobotFederation",
            Some(OrgAdmin),
            "robot",
            "Delete federation configuration for the organization's robot.",
            none,
            routing::delete(org_delete_federation),
        ),
        // Robots of the user.
        ep(
            M::GET,
            "/user/robots",
            "getUserRobots",
            Some(UserAdmin),
            "robot",
            "List the available robots for the user.",
            ROBOT_LIST_QUERY,
            routing::get(user_list),
        ),
        ep(
            M::GET,
            "/user/robots/{robot_shortname}",
            "getUserRobot",
            Some(UserAdmin),
            "robot",
            "Returns the user's robot with the specified name.",
            none,
            routing::get(user_get),
        ),
        ep(
            M::PUT,
            "/user/robots/{robot_shortname}",
            "createUserRobot",
            Some(UserAdmin),
            "robot",
            "Create a new user robot with the specified name.",
            none,
            routing::put(user_create),
        ),
        ep(
            M::DELETE,
            "/user/robots/{robot_shortname}",
            "deleteUserRobot",
            Some(UserAdmin),
            "robot",
            "Delete an existing robot.",
            none,
            routing::delete(user_delete),
        ),
        ep(
            M::POST,
            "/user/robots/{robot_shortname}/regenerate",
            "regenerateUserRobotToken",
            Some(UserAdmin),
            "robot",
            "Regenerates the token for a user's robot.",
            none,
            routing::post(user_regenerate),
        ),
        ep(
            M::GET,
            "/user/robots/{robot_shortname}/permissions",
            "getUserRobotPermissions",
            Some(UserAdmin),
            "robot",
            "Returns the list of repository permissions for the user's robot.",
            none,
            routing::get(user_permissions),
        ),
        ep(
            M::GET,
            "/user/robots/{robot_shortname}/federation",
            "getUserRobotFederation",
            Some(UserAdmin),
            "robot",
            "Returns the federation configuration for the user's robot.",
            none,
            routing::get(user_federation),
        ),
        ep(
            M::POST,
            "/user/robots/{robot_shortname}/federation",
            "createUserRobotFederation",
            Some(UserAdmin),
            "robot",
            "Create or update federation configuration for the user's robot.",
            none,
            routing::post(user_set_federation),
        ),
        ep(
            M::DELETE,
            "/user/robots/{robot_shortname}/federation",
            "deleteUserRobotFederation",
            Some(UserAdmin),
            "robot",
            "Delete federation configuration for the user's robot.",
            none,
            routing::delete(user_delete_federation),
        ),
    ]
}

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
