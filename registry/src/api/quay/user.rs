//! `/api/v1/user/...`, `/api/v1/superuser/users/...` and `/api/v1/teaminvite/...`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use quayside_client::types as api;
use serde::Deserialize;
use serde_json::json;

use super::error::ApiError;
use super::{Auth, Body, Query, no_content};
use crate::api::AppState;
use crate::service::{AccountError, content::repositories, tenancy::accounts, tenancy::teams};

#[derive(Deserialize)]
pub struct InitializeRequest {
    username: Option<String>,
    password: Option<String>,
    email: Option<String>,
    #[serde(default)]
    access_token: bool,
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

pub async fn notifications(
    State(s): State<AppState>,
    Auth(c): Auth,
) -> Result<Json<api::Notifications>, ApiError> {
    Ok(Json(teams::notifications(&s.ctx, &c).await?))
}

pub async fn accept_invite(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(code): Path<String>,
) -> Result<Json<api::AcceptedInvite>, ApiError> {
    Ok(Json(teams::accept_invite(&s.ctx, &c, &code).await?))
}

pub async fn decline_invite(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(code): Path<String>,
) -> Result<Response, ApiError> {
    teams::decline_invite(&s.ctx, &c, &code).await?;
    Ok(no_content())
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
