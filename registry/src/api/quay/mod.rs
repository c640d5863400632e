//! Quay's REST API under `/api/v1`, with Quay's paths, verbs, status codes and JSON shapes.

pub mod error;
pub mod user;

use axum::Router;
use axum::routing::post;

use self::error::ApiError;
use super::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/user/initialize", post(user::initialize))
        .fallback(|| async { ApiError::not_found() })
}
