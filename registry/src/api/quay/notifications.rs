//! `/api/v1/repository/{namespace}/{repository}/notification/...` (repository notifications),
//! `.../authorizedemail/{email}` (addresses allowed to receive e-mail notifications),
//! `PUT /api/v1/user/notifications/{uuid}` (dismiss an in-app notification), and the
//! confirmation link `GET /authrepoemail?code=...`. The rules are
//! [`crate::service::operations::notifications`]'s.

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing;
use quayside_client as api;
use serde_json::json;

use super::error::ApiError;
use super::{Auth, Body, Entry, ep};
use crate::api::AppState;
use crate::service::operations::notifications;
use crate::service::scopes::Scope::{RepoAdmin, UserAdmin};

/// The endpoints of this area, for the route table.
pub(super) fn endpoints() -> Vec<Entry> {
    use Method as M;
    let none: &[(&str, &str, &str)] = &[];
    const LIST: &str = "/repository/{namespace}/{repository}/notification/";
    const ONE: &str = "/repository/{namespace}/{repository}/notification/{uuid}";
    const EMAIL: &str = "/repository/{namespace}/{repository}/authorizedemail/{email}";
    vec![
        ep(
            M::GET,
            LIST,
            "listRepoNotifications",
            Some(RepoAdmin),
            "repositorynotification",
            "List the notifications of the repository.",
            none,
            routing::get(list),
        ),
        ep(
            M::POST,
            LIST,
            "createRepoNotification",
            Some(RepoAdmin),
            "repositorynotification",
            "Create a notification: `event`, `method`, `config`, `eventConfig`, optional `title`.",
            none,
            routing::post(create),
        ),
        ep(
            M::GET,
            ONE,
            "getRepoNotification",
            Some(RepoAdmin),
            "repositorynotification",
            "Get information for the specified notification.",
            none,
            routing::get(get),
        ),
        ep(
            M::DELETE,
            ONE,
            "deleteRepoNotification",
            Some(RepoAdmin),
            "repositorynotification",
            "Delete the notification (and its queued deliveries).",
            none,
            routing::delete(delete),
        ),
        ep(
            M::POST,
            ONE,
            "resetRepositoryNotificationFailures",
            Some(RepoAdmin),
            "repositorynotification",
            "Set the notification's number of failures back to 0, so delivery resumes.",
            none,
            routing::post(reset),
        ),
        ep(
            M::POST,
            "/repository/{namespace}/{repository}/notification/{uuid}/test",
            "testRepoNotification",
            Some(RepoAdmin),
            "repositorynotification",
            "Queue a delivery of the event's sample payload.",
            none,
            routing::post(test),
        ),
        ep(
            M::GET,
            EMAIL,
            "checkRepoEmailAuthorized",
            Some(RepoAdmin),
            "repository",
            "Whether the e-mail address is confirmed to receive the repository's notifications.",
            none,
            routing::get(email_get),
        ),
        ep(
            M::POST,
            EMAIL,
            "sendAuthorizeRepoEmail",
            Some(RepoAdmin),
            "repository",
            "Mail the address a link that authorizes it for the repository's notifications.",
            none,
            routing::post(email_post),
        ),
        ep(
            M::PUT,
            "/user/notifications/{uuid}",
            "updateUserNotification",
            Some(UserAdmin),
            "user",
            "Dismiss (`{\"dismissed\": true}`) or restore one of the user's notifications.",
            none,
            routing::put(dismiss),
        ),
    ]
}

/// Routes outside `/api/v1`: the confirmation link of an authorization e-mail.
pub fn web_router() -> Router<AppState> {
    Router::new().route("/authrepoemail", routing::get(confirm_email))
}

pub async fn list(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((ns, repo)): Path<(String, String)>,
) -> Result<Json<api::RepoNotifications>, ApiError> {
    Ok(Json(notifications::list(&s.ctx, &c, &ns, &repo).await?))
}

pub async fn create(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((ns, repo)): Path<(String, String)>,
    Body(b): Body<api::CreateRepoNotification>,
) -> Result<Response, ApiError> {
    let created = notifications::create(&s.ctx, &c, &ns, &repo, &b).await?;
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

pub async fn get(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((ns, repo, uuid)): Path<(String, String, String)>,
) -> Result<Json<api::RepoNotification>, ApiError> {
    Ok(Json(
        notifications::get(&s.ctx, &c, &ns, &repo, &uuid).await?,
    ))
}

pub async fn delete(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((ns, repo, uuid)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    notifications::delete(&s.ctx, &c, &ns, &repo, &uuid).await?;
    Ok(empty_json())
}

pub async fn reset(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((ns, repo, uuid)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    notifications::reset(&s.ctx, &c, &ns, &repo, &uuid).await?;
    Ok(empty_json())
}

/// Quay answers a reset or delete with an empty 204 that still says `application/json`.
fn empty_json() -> Response {
    (
        StatusCode::NO_CONTENT,
        [(header::CONTENT_TYPE, "application/json")],
    )
        .into_response()
}

pub async fn test(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((ns, repo, uuid)): Path<(String, String, String)>,
) -> Result<Json<serde_json::Value>, ApiError> {
    notifications::test(&s.ctx, &c, &ns, &repo, &uuid).await?;
    Ok(Json(json!({})))
}

pub async fn email_get(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((ns, repo, email)): Path<(String, String, String)>,
) -> Result<Json<api::AuthorizedEmail>, ApiError> {
    Ok(Json(
        notifications::authorized_email(&s.ctx, &c, &ns, &repo, &email).await?,
    ))
}

pub async fn email_post(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((ns, repo, email)): Path<(String, String, String)>,
) -> Result<Json<api::AuthorizedEmail>, ApiError> {
    Ok(Json(
        notifications::authorize_email(&s.ctx, &c, &ns, &repo, &email).await?,
    ))
}

pub async fn dismiss(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(uuid): Path<String>,
    Body(b): Body<api::UpdateUserNotification>,
) -> Result<Json<api::Notification>, ApiError> {
    Ok(Json(
        notifications::dismiss(&s.ctx, &c, &uuid, b.dismissed).await?,
    ))
}

#[derive(serde::Deserialize)]
pub struct ConfirmQuery {
    #[serde(default)]
    code: String,
}

/// The page the confirmation link opens: plain text saying what was confirmed.
pub async fn confirm_email(
    State(s): State<AppState>,
    axum::extract::Query(q): axum::extract::Query<ConfirmQuery>,
) -> Response {
    let text_plain = [(header::CONTENT_TYPE, "text/plain; charset=utf-8")];
    match notifications::confirm_email(&s.ctx, &q.code).await {
        Ok((repository, email)) => (
            StatusCode::OK,
            text_plain,
            format!("The e-mail address {email} may now receive notifications of {repository}.\n"),
        )
            .into_response(),
        Err(crate::service::TenancyError::NotFound) => (
            StatusCode::NOT_FOUND,
            text_plain,
            "This authorization link is invalid.\n".to_owned(),
        )
            .into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}
