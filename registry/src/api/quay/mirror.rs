//! `/api/v1/repository/{repo}/mirror` (and `.../sync-now`, `.../sync-cancel`) and
//! `PUT /repository/{repo}/changestate`: repository mirroring (the sync itself is the `mirror`
//! worker's, in `service::content::mirror`). Answers are Quay's: `""` 201 for create and update,
//! 204 for sync-now and sync-cancel, `{"success": true}` for a state change, and
//! `{"detail": ...}` for a duplicate configuration (409) or a bad date or state (400). Also
//! the health of mirroring (`/repository/mirror/health`, `/superuser/mirror/health`, see
//! `service::content::mirror_health`).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing;
use quayside_client as api;

use super::error::ApiError;
use super::{Auth, Body, Entry, Query, ep, no_content};
use crate::api::AppState;
use crate::service::content::mirror;
use crate::service::content::mirror_health;
use crate::service::scopes::Scope::RepoAdmin;

/// The endpoints of this area, for the route table.
pub(super) fn endpoints() -> Vec<Entry> {
    use Method as M;
    let none: &[(&str, &str, &str)] = &[];
    vec![
        ep(
            M::GET,
            "/repository/{namespace}/{repository}/mirror",
            "getRepoMirrorConfig",
            Some(RepoAdmin),
            "mirror",
            "Return the Mirror configuration for a given Repository.",
            none,
            routing::get(get_config),
        ),
        ep(
            M::POST,
            "/repository/{namespace}/{repository}/mirror",
            "createRepoMirrorConfig",
            Some(RepoAdmin),
            "mirror",
            "Create a RepoMirrorConfig for a given Repository.",
            none,
            routing::post(create_config),
        ),
        ep(
            M::PUT,
            "/repository/{namespace}/{repository}/mirror",
            "changeRepoMirrorConfig",
            Some(RepoAdmin),
            "mirror",
            "Allow users to modifying the repository's mirroring configuration.",
            none,
            routing::put(update_config),
        ),
        ep(
            M::POST,
            "/repository/{namespace}/{repository}/mirror/sync-now",
            "syncNow",
            Some(RepoAdmin),
            "mirror",
            "Update the sync_status for a given Repository's mirroring configuration.",
            none,
            routing::post(sync_now),
        ),
        ep(
            M::POST,
            "/repository/{namespace}/{repository}/mirror/sync-cancel",
            "syncCancel",
            Some(RepoAdmin),
            "mirror",
            "Update the sync_status for a given Repository's mirroring configuration.",
            none,
            routing::post(sync_cancel),
        ),
        ep(
            M::PUT,
            "/repository/{namespace}/{repository}/changestate",
            "changeRepoState",
            Some(RepoAdmin),
            "repository",
            "Change the state of a repository.",
            none,
            routing::put(change_state),
        ),
        ep(
            M::GET,
            "/repository/mirror/health",
            "getRepositoryMirrorHealth",
            None,
            "mirror",
            "Get the health status of repository mirroring operations (503 when unhealthy).",
            &[
                (
                    "namespace",
                    "string",
                    "Filter health check to specific namespace",
                ),
                ("detailed", "boolean", "Include per-repository breakdown"),
                (
                    "limit",
                    "integer",
                    "Maximum repositories in detailed view (when detailed=true)",
                ),
                (
                    "offset",
                    "integer",
                    "Offset into the sorted mirror list for detailed view",
                ),
            ],
            routing::get(health),
        ),
        ep(
            M::GET,
            "/superuser/mirror/health",
            "getSuperUserRepositoryMirrorHealth",
            None,
            "superuser",
            "Get a global mirror health summary without repository-identifying samples.",
            none,
            routing::get(superuser_health),
        ),
    ]
}

/// Quay's mirror health answer: 200 when healthy, 503 when not, never cached.
fn health_response(h: mirror_health::Health) -> Response {
    let status = match h.healthy {
        true => StatusCode::OK,
        false => StatusCode::SERVICE_UNAVAILABLE,
    };
    (
        status,
        [(
            axum::http::header::CACHE_CONTROL,
            "no-cache, no-store, must-revalidate",
        )],
        Json(h.body),
    )
        .into_response()
}

fn require_feature(s: &AppState) -> Result<(), ApiError> {
    match s.ctx.config.mirror.enabled {
        true => Ok(()),
        false => Err(ApiError::not_found()),
    }
}

pub async fn health(
    State(s): State<AppState>,
    Auth(c): Auth,
    q: Query,
) -> Result<Response, ApiError> {
    require_feature(&s)?;
    let query = mirror_health::HealthQuery {
        namespace: q
            .get("namespace")
            .filter(|n| !n.is_empty())
            .map(str::to_owned),
        detailed: q.flag("detailed", false)?,
        limit: q.int("limit")?.unwrap_or(100),
        offset: q.int("offset")?.unwrap_or(0),
    };
    Ok(health_response(
        mirror_health::repository_health(&s.ctx, &c, &query).await?,
    ))
}

pub async fn superuser_health(
    State(s): State<AppState>,
    Auth(c): Auth,
) -> Result<Response, ApiError> {
    require_feature(&s)?;
    Ok(health_response(
        mirror_health::superuser_health(&s.ctx, &c).await?,
    ))
}

fn empty_created() -> Response {
    (StatusCode::CREATED, Json("")).into_response()
}

pub async fn get_config(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((namespace, repository)): Path<(String, String)>,
) -> Result<Json<api::MirrorConfig>, ApiError> {
    Ok(Json(
        mirror::get_config(&s.ctx, &c, &namespace, &repository).await?,
    ))
}

pub async fn create_config(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((namespace, repository)): Path<(String, String)>,
    Body(b): Body<api::MirrorRequest>,
) -> Result<Response, ApiError> {
    mirror::create_config(&s.ctx, &c, &namespace, &repository, &b).await?;
    Ok(empty_created())
}

pub async fn update_config(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((namespace, repository)): Path<(String, String)>,
    Body(b): Body<api::MirrorRequest>,
) -> Result<Response, ApiError> {
    mirror::update_config(&s.ctx, &c, &namespace, &repository, &b).await?;
    Ok(empty_created())
}

pub async fn sync_now(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((namespace, repository)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    mirror::sync_now(&s.ctx, &c, &namespace, &repository).await?;
    Ok(no_content())
}

pub async fn sync_cancel(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((namespace, repository)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    mirror::sync_cancel(&s.ctx, &c, &namespace, &repository).await?;
    Ok(no_content())
}

pub async fn change_state(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((namespace, repository)): Path<(String, String)>,
    Body(b): Body<api::ChangeStateRequest>,
) -> Result<Json<api::Success>, ApiError> {
    Ok(Json(
        mirror::change_state(&s.ctx, &c, &namespace, &repository, &b.state).await?,
    ))
}
