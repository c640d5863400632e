//! `/api/v1/repository/{repo}/build/...` (request, list, get, status, logs, cancel) and
//! `POST /api/v1/filedrop/`, plus the upload URL it hands out, `PUT /userfiles/{file_id}`
//! (outside `/api/v1`, as Quay's local user files). The logic is `service::content::builds`.
//! Answers are Quay's: 201 with the build's view and `Location: .../build/{uuid}/status` for a
//! request, 429 when too many builds of the repository are queued, `"Okay"` 201 for a cancel,
//! 400 `invalid_request` for a build that cannot be cancelled any more.

use axum::Json;
use axum::Router;
use axum::body::Body as RawBody;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing;
use futures_util::TryStreamExt;
use quayside_client as api;

use super::error::ApiError;
use super::{Auth, Body, Entry, Query, ep};
use crate::api::{AppState, ConnScheme, public_origin};
use crate::service::content::builds::{self, BuildError, UploadError};
use crate::service::scopes::Scope::{RepoAdmin, RepoRead, RepoWrite};

/// The endpoints of this area, for the route table.
pub(super) fn endpoints() -> Vec<Entry> {
    use Method as M;
    let none: &[(&str, &str, &str)] = &[];
    vec![
        ep(
            M::GET,
            "/repository/{namespace}/{repository}/build/",
            "getRepoBuilds",
            Some(RepoRead),
            "build",
            "Get the list of repository builds.",
            &[
                ("limit", "integer", "The maximum number of builds to return"),
                (
                    "since",
                    "integer",
                    "Returns all builds since the given unix timecode",
                ),
            ],
            routing::get(list),
        ),
        ep(
            M::POST,
            "/repository/{namespace}/{repository}/build/",
            "requestRepoBuild",
            Some(RepoWrite),
            "build",
            "Request that a repository be built and pushed from the specified input.",
            none,
            routing::post(request),
        ),
        ep(
            M::GET,
            "/repository/{namespace}/{repository}/build/{build_uuid}",
            "getRepoBuild",
            Some(RepoRead),
            "build",
            "Returns information about a build.",
            none,
            routing::get(get),
        ),
        ep(
            M::DELETE,
            "/repository/{namespace}/{repository}/build/{build_uuid}",
            "cancelRepoBuild",
            Some(RepoAdmin),
            "build",
            "Cancels a repository build.",
            none,
            routing::delete(cancel),
        ),
        ep(
            M::GET,
            "/repository/{namespace}/{repository}/build/{build_uuid}/status",
            "getRepoBuildStatus",
            Some(RepoRead),
            "build",
            "Return the status for the builds specified by the build uuids.",
            none,
            routing::get(get),
        ),
        ep(
            M::GET,
            "/repository/{namespace}/{repository}/build/{build_uuid}/logs",
            "getRepoBuildLogs",
            Some(RepoRead),
            "build",
            "Return the build logs for the build specified by the build uuid.",
            &[("start", "integer", "The first log entry to return")],
            routing::get(logs),
        ),
        ep(
            M::POST,
            "/filedrop/",
            "getFiledropUrl",
            None,
            "build",
            "Request a URL to which a file may be uploaded.",
            none,
            routing::post(filedrop),
        ),
    ]
}

/// `PUT /userfiles/{file_id}`, outside `/api/v1`.
pub fn userfiles_router() -> Router<AppState> {
    Router::new().route("/userfiles/{file_id}", routing::put(upload))
}

impl From<BuildError> for ApiError {
    fn from(e: BuildError) -> Self {
        match e {
            BuildError::Tenancy(t) => t.into(),
            BuildError::TooManyQueued => ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "invalid_request",
                "Maximum queued build rate exceeded.",
            ),
        }
    }
}

async fn list(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((namespace, repository)): Path<(String, String)>,
    q: Query,
) -> Result<Json<api::BuildList>, ApiError> {
    Ok(Json(
        builds::list(
            &s.ctx,
            &c,
            &namespace,
            &repository,
            q.int("limit")?,
            q.int("since")?,
        )
        .await?,
    ))
}

async fn request(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((namespace, repository)): Path<(String, String)>,
    Body(b): Body<api::BuildRequest>,
) -> Result<Response, ApiError> {
    let build = builds::request(&s.ctx, &c, &namespace, &repository, &b).await?;
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

async fn get(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((namespace, repository, uuid)): Path<(String, String, String)>,
) -> Result<Json<api::Build>, ApiError> {
    Ok(Json(
        builds::get(&s.ctx, &c, &namespace, &repository, &uuid).await?,
    ))
}

async fn logs(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((namespace, repository, uuid)): Path<(String, String, String)>,
    q: Query,
) -> Result<Json<api::BuildLogs>, ApiError> {
    Ok(Json(
        builds::logs(&s.ctx, &c, &namespace, &repository, &uuid, q.int("start")?).await?,
    ))
}

async fn cancel(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((namespace, repository, uuid)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    builds::cancel(&s.ctx, &c, &namespace, &repository, &uuid).await?;
    Ok((StatusCode::CREATED, Json("Okay")).into_response())
}

async fn filedrop(
    State(s): State<AppState>,
    Auth(c): Auth,
    headers: HeaderMap,
    scheme: Option<axum::extract::Extension<ConnScheme>>,
    Body(b): Body<api::FileDropRequest>,
) -> Result<Json<api::FileDrop>, ApiError> {
    let (scheme, host) = public_origin(&s.ctx, &headers, scheme.as_ref().map(|e| &e.0));
    let origin = format!("{scheme}://{host}");
    Ok(Json(
        builds::prepare_drop(&s.ctx, &c, &b.mime_type, &origin).await?,
    ))
}

async fn upload(State(s): State<AppState>, Path(file_id): Path<String>, body: RawBody) -> Response {
    if !s.ctx.config.builds.enabled {
        return StatusCode::NOT_FOUND.into_response();
    }
    let stream = body
        .into_data_stream()
        .map_err(|e| std::io::Error::other(e.to_string()));
    match builds::upload(&s.ctx, &file_id, Box::pin(stream)).await {
        Ok(_) => StatusCode::OK.into_response(),
        Err(UploadError::NotFound) => (StatusCode::NOT_FOUND, "no such file drop").into_response(),
        Err(e @ UploadError::Conflict) => (StatusCode::CONFLICT, e.to_string()).into_response(),
        Err(e @ UploadError::TooLarge) => {
            (StatusCode::PAYLOAD_TOO_LARGE, e.to_string()).into_response()
        }
        Err(UploadError::Internal(e)) => {
            tracing::error!(error = %e, "storing an uploaded build context failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}
