//! `GET /health/instance` and `/health/endtoend` (Quay's health shape) and `GET /metrics`.

use std::sync::atomic::Ordering;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use super::AppState;
use crate::telemetry::RouteLabel;

/// How long the health check waits for storage: well inside a kubelet probe's timeout, so a
/// hanging backend reads as unhealthy rather than as a probe timeout.
const PROBE_WITHIN: std::time::Duration = std::time::Duration::from_secs(3);

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/health/instance", get(instance))
        .route("/health/endtoend", get(instance))
        .route("/metrics", get(metrics))
}

async fn instance(State(state): State<AppState>) -> Response {
    let database = state.ctx.db.ping().await.is_ok();
    let storage = crate::storage::probe(state.ctx.store.as_ref(), PROBE_WITHIN)
        .await
        .is_ok();
    let draining = state.metrics.draining.load(Ordering::Relaxed);
    let healthy = database && storage && !draining;
    let status = if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "data": { "services": {
            "auth": true,
            "database": database,
            "storage": storage,
            "disk_space": true,
            "shutting_down": draining,
        } },
        "status_code": status.as_u16(),
    });
    let mut response = (status, axum::Json(body)).into_response();
    response.extensions_mut().insert(RouteLabel("health"));
    response
}

async fn metrics(State(state): State<AppState>) -> Response {
    let text = state.metrics.render(&state.ctx);
    let mut response = text.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response.extensions_mut().insert(RouteLabel("metrics"));
    response
}
