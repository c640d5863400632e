//! `/api/v1/repository/{repo}/trigger/...` (list, create, get, toggle, delete, activate,
//! analyze, manual start, a trigger's builds), Quay's web route that creates a custom git
//! trigger (`GET /customtrigger/setup/{repo}`), and the webhooks the git servers call
//! (`POST /webhooks/push/trigger/{uuid}`, also under `/webhooks/push/{repo}/trigger/{uuid}`).
//! The logic is `service::content::triggers`. Answers are Quay's: a trigger's view, 204 for a
//! delete, 201 with the build's view and `Location` for a start; a webhook answers `Okay`
//! (200) whether it queued a build or skipped the commit, and Quay's `{"error": ...}` bodies
//! otherwise (403 for a caller that does not prove the trigger's secret). `fields`,
//! `namespaces`, `sources` and `subdir` (listing a git host's content) answer 501 from
//! `not_implemented`.

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing;
use base64::Engine as _;
use quayside_client as api;
use serde_json::{Value, json};

use super::error::ApiError;
use super::{Auth, Entry, OptionalBody, Query, ep, no_content};
use crate::api::{AppState, ConnScheme, PeerAddr, public_origin};
use crate::service::content::triggers::{self, WebhookAuth, WebhookError, WebhookOutcome};
use crate::service::scopes::Scope::{RepoAdmin, RepoRead};

/// The endpoints of this area, for the route table.
pub(super) fn endpoints() -> Vec<Entry> {
    use Method as M;
    let none: &[(&str, &str, &str)] = &[];
    vec![
        ep(
            M::GET,
            "/repository/{namespace}/{repository}/trigger/",
            "listBuildTriggers",
            Some(RepoAdmin),
            "trigger",
            "List the triggers for the specified repository.",
            none,
            routing::get(list),
        ),
        ep(
            M::POST,
            "/repository/{namespace}/{repository}/trigger/",
            "createBuildTrigger",
            Some(RepoAdmin),
            "trigger",
            "Create an inactive build trigger of a service (custom-git, github, gitlab); a Quayside extension.",
            none,
            routing::post(create),
        ),
        ep(
            M::GET,
            "/repository/{namespace}/{repository}/trigger/{trigger_uuid}",
            "getBuildTrigger",
            Some(RepoAdmin),
            "trigger",
            "Get information for the specified build trigger.",
            none,
            routing::get(get),
        ),
        ep(
            M::PUT,
            "/repository/{namespace}/{repository}/trigger/{trigger_uuid}",
            "updateBuildTrigger",
            Some(RepoAdmin),
            "trigger",
            "Updates the specified build trigger.",
            none,
            routing::put(update),
        ),
        ep(
            M::DELETE,
            "/repository/{namespace}/{repository}/trigger/{trigger_uuid}",
            "deleteBuildTrigger",
            Some(RepoAdmin),
            "trigger",
            "Delete the specified build trigger.",
            none,
            routing::delete(delete),
        ),
        ep(
            M::POST,
            "/repository/{namespace}/{repository}/trigger/{trigger_uuid}/activate",
            "activateBuildTrigger",
            Some(RepoAdmin),
            "trigger",
            "Activate the specified build trigger.",
            none,
            routing::post(activate),
        ),
        ep(
            M::POST,
            "/repository/{namespace}/{repository}/trigger/{trigger_uuid}/analyze",
            "analyzeBuildTrigger",
            Some(RepoAdmin),
            "trigger",
            "Analyze the specified build trigger configuration.",
            none,
            routing::post(analyze),
        ),
        ep(
            M::POST,
            "/repository/{namespace}/{repository}/trigger/{trigger_uuid}/start",
            "manuallyStartBuildTrigger",
            Some(RepoAdmin),
            "trigger",
            "Manually start a build from the specified trigger.",
            none,
            routing::post(start),
        ),
        ep(
            M::GET,
            "/repository/{namespace}/{repository}/trigger/{trigger_uuid}/builds",
            "listTriggerRecentBuilds",
            Some(RepoRead),
            "trigger",
            "List the builds started by the specified trigger.",
            &[("limit", "integer", "The maximum number of builds to return")],
            routing::get(builds),
        ),
    ]
}

/// Quay's web route for a new custom git trigger, and the webhooks (outside `/api/v1`).
pub fn web_router() -> Router<AppState> {
    Router::new()
        .route(
            "/customtrigger/setup/{namespace}/{repository}",
            routing::get(setup_custom),
        )
        .route("/webhooks/push/trigger/{trigger_uuid}", routing::post(hook))
        .route(
            "/webhooks/push/{namespace}/{repository}/trigger/{trigger_uuid}",
            routing::post(hook_under_repo),
        )
}

fn origin(s: &AppState, headers: &HeaderMap, scheme: Option<&ConnScheme>) -> String {
    let (scheme, host) = public_origin(&s.ctx, headers, scheme);
    format!("{scheme}://{host}")
}

async fn list(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((namespace, repository)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(
        triggers::list(&s.ctx, &c, &namespace, &repository).await?,
    ))
}

async fn create(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((namespace, repository)): Path<(String, String)>,
    OptionalBody(b): OptionalBody<Value>,
) -> Result<Response, ApiError> {
    let service = b
        .as_ref()
        .and_then(|b| b.get("service"))
        .and_then(Value::as_str)
        .unwrap_or(triggers::CUSTOM_GIT)
        .to_owned();
    let view = triggers::create(&s.ctx, &c, &namespace, &repository, &service).await?;
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

async fn get(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((namespace, repository, uuid)): Path<(String, String, String)>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(
        triggers::get(&s.ctx, &c, &namespace, &repository, &uuid).await?,
    ))
}

async fn update(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((namespace, repository, uuid)): Path<(String, String, String)>,
    OptionalBody(b): OptionalBody<Value>,
) -> Result<Json<Value>, ApiError> {
    let body = b.unwrap_or_else(|| json!({}));
    Ok(Json(
        triggers::update(&s.ctx, &c, &namespace, &repository, &uuid, &body).await?,
    ))
}

async fn delete(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((namespace, repository, uuid)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    triggers::delete(&s.ctx, &c, &namespace, &repository, &uuid).await?;
    Ok(no_content())
}

async fn activate(
    State(s): State<AppState>,
    Auth(c): Auth,
    headers: HeaderMap,
    scheme: Option<axum::extract::Extension<ConnScheme>>,
    Path((namespace, repository, uuid)): Path<(String, String, String)>,
    OptionalBody(b): OptionalBody<Value>,
) -> Result<Json<Value>, ApiError> {
    let origin = origin(&s, &headers, scheme.as_ref().map(|e| &e.0));
    let body = b.unwrap_or_else(|| json!({}));
    Ok(Json(
        triggers::activate(&s.ctx, &c, &namespace, &repository, &uuid, &body, &origin).await?,
    ))
}

async fn analyze(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((namespace, repository, uuid)): Path<(String, String, String)>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(
        triggers::analyze(&s.ctx, &c, &namespace, &repository, &uuid).await?,
    ))
}

async fn start(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((namespace, repository, uuid)): Path<(String, String, String)>,
    OptionalBody(b): OptionalBody<Value>,
) -> Result<Response, ApiError> {
    let body = b.unwrap_or_else(|| json!({}));
    let build = triggers::start(&s.ctx, &c, &namespace, &repository, &uuid, &body).await?;
    let location = format!(
        "/api/v1/repository/{namespace}/{repository}/build/{}/status",
        build.id
    );
    let mut response = (StatusCode::CREATED, Json(build)).into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    Ok(response)
}

async fn builds(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((namespace, repository, uuid)): Path<(String, String, String)>,
    q: Query,
) -> Result<Json<api::BuildList>, ApiError> {
    Ok(Json(
        triggers::builds_of(&s.ctx, &c, &namespace, &repository, &uuid, q.int("limit")?).await?,
    ))
}

/// `GET /customtrigger/setup/{repo}`: Quay's setup of a custom git trigger; redirects to the
/// repository's builds with the new (inactive) trigger.
async fn setup_custom(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((namespace, repository)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let view = triggers::create(&s.ctx, &c, &namespace, &repository, triggers::CUSTOM_GIT).await?;
    let location = format!(
        "/repository/{namespace}/{repository}?tab=builds&newtrigger={}",
        view["id"].as_str().unwrap_or_default()
    );
    let mut response = StatusCode::FOUND.into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    Ok(response)
}

fn header_text(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// Quay's webhook error body (`util.http.abort`): `{"error": message}`.
fn hook_error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

async fn hook_under_repo(
    s: State<AppState>,
    Path((_, _, uuid)): Path<(String, String, String)>,
    peer: Option<axum::extract::Extension<PeerAddr>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    hook(s, Path(uuid), peer, headers, body).await
}

async fn hook(
    State(s): State<AppState>,
    Path(uuid): Path<String>,
    peer: Option<axum::extract::Extension<PeerAddr>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let basic = header_text(&headers, "authorization").and_then(|v| {
        let (scheme, rest) = v.split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("basic") {
            return None;
        }
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(rest.trim())
            .ok()?;
        let text = String::from_utf8(decoded).ok()?;
        let (user, password) = text.split_once(':')?;
        Some((user.to_owned(), password.to_owned()))
    });
    let auth = WebhookAuth {
        basic,
        github_signature: header_text(&headers, "x-hub-signature-256"),
        github_event: header_text(&headers, "x-github-event"),
        gitlab_token: header_text(&headers, "x-gitlab-token"),
    };
    let ip = peer.map(|p| p.0.0.ip());
    match triggers::webhook(&s.ctx, &uuid, &auth, &body, ip).await {
        Ok(outcome) => {
            if let WebhookOutcome::Skipped(why) = outcome {
                tracing::info!(trigger = %uuid, reason = why, "webhook: build skipped");
            }
            (StatusCode::OK, "Okay").into_response()
        }
        Err(WebhookError::NotFound) => hook_error(StatusCode::NOT_FOUND, "Not Found"),
        Err(WebhookError::Forbidden) => hook_error(StatusCode::FORBIDDEN, "Permission Denied"),
        Err(WebhookError::Invalid(m)) => hook_error(StatusCode::BAD_REQUEST, &m),
        Err(WebhookError::Unavailable(m)) => hook_error(StatusCode::SERVICE_UNAVAILABLE, &m),
        Err(e @ WebhookError::TooManyQueued) => {
            hook_error(StatusCode::TOO_MANY_REQUESTS, &e.to_string())
        }
        Err(WebhookError::Internal(e)) => {
            tracing::error!(error = %e, "a trigger webhook failed");
            hook_error(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
        }
    }
}
