//! `/buildman/v1/...`: the build manager's side of the builder protocol (see `docs/builds.md`
//! and `service::content::builds::protocol`). Every call carries `Authorization: Bearer <build
//! token>`; answers are JSON, errors `{"error": ...}` with 401 (unknown token), 410 (the attempt
//! is over: stop), 400 (a bad report) or 500. Served only with `FEATURE_BUILD_SUPPORT`.

use axum::Json;
use axum::Router;
use axum::body::Body as RawBody;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing;
use serde_json::json;

use crate::api::AppState;
use crate::service::content::builds::protocol::{self, Finish, ProtocolError, Report};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/buildman/v1/register", routing::post(register))
        .route("/buildman/v1/report", routing::post(report))
        .route("/buildman/v1/archive", routing::get(archive))
        .route("/buildman/v1/push-token", routing::post(push_token))
        .route("/buildman/v1/finish", routing::post(finish))
}

fn refuse(e: ProtocolError) -> Response {
    let status = match &e {
        ProtocolError::InvalidToken => StatusCode::UNAUTHORIZED,
        ProtocolError::Gone(_) => StatusCode::GONE,
        ProtocolError::Invalid(_) => StatusCode::BAD_REQUEST,
        ProtocolError::Internal(i) => {
            tracing::error!(error = %i, "build manager call failed");
            StatusCode::INTERNAL_SERVER_ERROR
        }
    };
    (status, Json(json!({ "error": e.to_string() }))).into_response()
}

/// The build token, when builds are on (the refusal otherwise).
fn token(s: &AppState, headers: &HeaderMap) -> Result<String, Box<Response>> {
    if !s.ctx.config.builds.enabled {
        return Err(Box::new(StatusCode::NOT_FOUND.into_response()));
    }
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty())
        .ok_or_else(|| Box::new(refuse(ProtocolError::InvalidToken)))
}

fn answer<T: serde::Serialize>(r: Result<T, ProtocolError>) -> Response {
    match r {
        Ok(body) => Json(body).into_response(),
        Err(e) => refuse(e),
    }
}

async fn register(State(s): State<AppState>, headers: HeaderMap) -> Response {
    match token(&s, &headers) {
        Ok(t) => answer(protocol::register(&s.ctx, &t).await),
        Err(r) => *r,
    }
}

async fn report(
    State(s): State<AppState>,
    headers: HeaderMap,
    Json(body): Json<Report>,
) -> Response {
    match token(&s, &headers) {
        Ok(t) => answer(
            protocol::report(&s.ctx, &t, &body)
                .await
                .map(|()| json!({})),
        ),
        Err(r) => *r,
    }
}

async fn archive(State(s): State<AppState>, headers: HeaderMap) -> Response {
    let t = match token(&s, &headers) {
        Ok(t) => t,
        Err(r) => return *r,
    };
    match protocol::archive(&s.ctx, &t).await {
        Ok(stream) => (
            [(header::CONTENT_TYPE, "application/octet-stream")],
            RawBody::from_stream(stream),
        )
            .into_response(),
        Err(e) => refuse(e),
    }
}

async fn push_token(State(s): State<AppState>, headers: HeaderMap) -> Response {
    match token(&s, &headers) {
        Ok(t) => answer(protocol::push_token(&s.ctx, &t).await),
        Err(r) => *r,
    }
}

async fn finish(
    State(s): State<AppState>,
    headers: HeaderMap,
    Json(body): Json<Finish>,
) -> Response {
    match token(&s, &headers) {
        Ok(t) => answer(
            protocol::finish(&s.ctx, &t, &body)
                .await
                .map(|()| json!({})),
        ),
        Err(r) => *r,
    }
}
