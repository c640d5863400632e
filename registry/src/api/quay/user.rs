//! The signed-in user: `/api/v1/user/...` (initialization, sign-up, notifications, stars).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing;
use quayside_client as api;
use serde::Deserialize;
use serde_json::json;

use super::error::ApiError;
use super::{Auth, Body, Entry, Query, ep, no_content};
use crate::api::AppState;
use crate::service::operations::notifications;
use crate::service::scopes::Scope::{RepoRead, UserAdmin, UserRead};
use crate::service::{AccountError, content::repositories, tenancy::accounts, tenancy::teams};

/// The endpoints of this area, for the route table.
pub(super) fn endpoints() -> Vec<Entry> {
    use Method as M;
    let none: &[(&str, &str, &str)] = &[];
    vec![
        ep(
            M::POST,
            "/user/initialize",
            "initializeUser",
            None,
            "user",
            "Create the first user (a superuser) of an empty registry, optionally with an access token.",
            none,
            routing::post(initialize),
        ),
        ep(
            M::GET,
            "/user/",
            "getLoggedInUser",
            Some(UserRead),
            "user",
            "Get user information for the authenticated user.",
            none,
            routing::get(current),
        ),
        ep(
            M::GET,
            "/users/{username}",
            "getUserInformation",
            None,
            "user",
            "Get user information for the specified user.",
            none,
            routing::get(user_information),
        ),
        ep(
            M::POST,
            "/user/",
            "createNewUser",
            None,
            "user",
            "Create a new user (when FEATURE_USER_CREATION is on).",
            none,
            routing::post(sign_up),
        ),
        ep(
            M::GET,
            "/user/notifications",
            "listUserNotifications",
            Some(UserRead),
            "user",
            "List the notifications of the user: team invitations and repository events (`quay_notification`).",
            &[
                ("page", "integer", "Offset page number. (int)"),
                ("limit", "integer", "Limit on the number of results (int)"),
            ],
            routing::get(notifications),
        ),
        ep(
            M::GET,
            "/user/starred",
            "listStarredRepos",
            Some(UserAdmin),
            "user",
            "List all starred repositories.",
            &[("next_page", "string", "The page token for the next page")],
            routing::get(starred),
        ),
        ep(
            M::POST,
            "/user/starred",
            "createStar",
            Some(RepoRead),
            "user",
            "Star a repository.",
            none,
            routing::post(star),
        ),
        ep(
            M::DELETE,
            "/user/starred/{namespace}/{repository}",
            "deleteStar",
            Some(RepoRead),
            "user",
            "Removes a star from a repository.",
            none,
            routing::delete(unstar),
        ),
    ]
}

#[derive(Deserialize)]
pub struct InitializeRequest {
    username: Option<String>,
    password: Option<String>,
    email: Option<String>,
    #[serde(default)]
    access_token: bool,
    /// Quayside: the `USER_INITIALIZE_TOKEN` of the configuration, when it sets one.
    initialize_token: Option<String>,
}

fn message(status: StatusCode, message: String) -> Response {
    (status, Json(json!({ "message": message }))).into_response()
}

/// `POST /api/v1/user/initialize`: the first user, in an empty database. Quay answers errors of
/// this endpoint as `{"message": ...}` with status 400.
pub async fn initialize(State(state): State<AppState>, body: axum::body::Bytes) -> Response {
    let request: InitializeRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return message(
                StatusCode::BAD_REQUEST,
                format!("Failed to initialize user: invalid JSON body: {e}"),
            );
        }
    };
    let (Some(username), Some(password)) = (request.username, request.password) else {
        return message(
            StatusCode::BAD_REQUEST,
            "Failed to initialize user: username and password are required".into(),
        );
    };
    let email = request.email.unwrap_or_default();
    match accounts::initialize(
        &state.ctx,
        &username,
        &password,
        &email,
        request.access_token,
        request.initialize_token.as_deref(),
    )
    .await
    {
        Ok(done) => Json(api::Initialized {
            username: done.username,
            email: done.email,
            encrypted_password: done.encrypted_password,
            access_token: done.access_token,
        })
        .into_response(),
        Err(AccountError::NotAllowed(m)) => message(StatusCode::BAD_REQUEST, m),
        Err(AccountError::Internal(e)) => ApiError::internal(&e).into_response(),
        Err(e) => message(
            StatusCode::BAD_REQUEST,
            format!("Failed to initialize user: {e}"),
        ),
    }
}

pub async fn current(
    State(s): State<AppState>,
    Auth(c): Auth,
) -> Result<Json<api::User>, ApiError> {
    Ok(Json(accounts::current_user(&s.ctx, &c).await?))
}

pub async fn user_information(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(username): Path<String>,
) -> Result<Json<api::UserInformation>, ApiError> {
    Ok(Json(
        accounts::user_information(&s.ctx, &c, &username).await?,
    ))
}

#[derive(Deserialize)]
pub struct SignUp {
    username: String,
    password: String,
    #[serde(default)]
    email: Option<String>,
}

pub async fn sign_up(
    State(s): State<AppState>,
    Auth(c): Auth,
    Body(b): Body<SignUp>,
) -> Result<Json<api::User>, ApiError> {
    Ok(Json(
        accounts::sign_up(&s.ctx, &c, &b.username, &b.password, b.email.as_deref()).await?,
    ))
}

/// Quay's page of notifications: `limit` (default 5, at most 100) from page `page` (1-based; 0
/// is the first page too, as Quay counts), team invitations first, then the rest newest first;
/// `additional` when more follow.
pub async fn notifications(
    State(s): State<AppState>,
    Auth(c): Auth,
    q: Query,
) -> Result<Json<api::Notifications>, ApiError> {
    let limit = q.int("limit")?.unwrap_or(5);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::invalid_request(
            "limit: must be between 1 and 100",
        ));
    }
    let page = q.int("page")?.unwrap_or(0).max(1);
    if page > 1000 {
        return Err(ApiError::invalid_request("page: must be at most 1000"));
    }
    let offset = (page - 1) * limit;
    let mut all = teams::notifications(&s.ctx, &c).await?.notifications;
    all.extend(notifications::user_notifications(&s.ctx, &c, offset + limit + 1).await?);
    let additional = all.len() as i64 > offset + limit;
    Ok(Json(api::Notifications {
        notifications: all
            .into_iter()
            .skip(offset as usize)
            .take(limit as usize)
            .collect(),
        additional,
    }))
}

pub async fn starred(
    State(s): State<AppState>,
    Auth(c): Auth,
    q: Query,
) -> Result<Json<api::StarredRepositories>, ApiError> {
    Ok(Json(
        repositories::starred(&s.ctx, &c, q.get("next_page")).await?,
    ))
}

pub async fn star(
    State(s): State<AppState>,
    Auth(c): Auth,
    Body(b): Body<api::StarRequest>,
) -> Result<Response, ApiError> {
    repositories::star(&s.ctx, &c, &b.namespace, &b.repository, true).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "namespace": b.namespace, "repository": b.repository })),
    )
        .into_response())
}

pub async fn unstar(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((ns, repo)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    repositories::star(&s.ctx, &c, &ns, &repo, false).await?;
    Ok(no_content())
}
