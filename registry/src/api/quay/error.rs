//! Quay's API error body, written in exactly one place:
//! `{"status", "error_message", "error_type", "detail", "title", "type"}`.

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::service::{AccountError, Internal};

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    /// Quay's `error_type`: `invalid_request`, `invalid_token`, `insufficient_scope`,
    /// `not_found`, `internal_error`, ...
    pub error_type: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(
        status: StatusCode,
        error_type: &'static str,
        message: impl Into<String>,
    ) -> ApiError {
        ApiError {
            status,
            error_type,
            message: message.into(),
        }
    }

    pub fn invalid_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }

    pub fn not_found() -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", "Not Found")
    }

    pub fn unauthorized() -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "invalid_token", "Unauthorized")
    }

    pub fn forbidden() -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "insufficient_scope", "Unauthorized")
    }

    pub fn internal(e: &Internal) -> ApiError {
        tracing::error!(error = %e, "internal error serving /api/v1");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "Internal server error",
        )
    }
}

impl From<AccountError> for ApiError {
    fn from(e: AccountError) -> Self {
        match e {
            AccountError::NotAllowed(m) | AccountError::Conflict(m) => ApiError::invalid_request(m),
            AccountError::Invalid { message, .. } => ApiError::invalid_request(message),
            AccountError::NotFound(m) => ApiError::new(StatusCode::NOT_FOUND, "not_found", m),
            AccountError::Internal(i) => ApiError::internal(&i),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        // The `type` URL is completed with the request's origin by `with_origin`.
        let body = json!({
            "status": self.status.as_u16(),
            "error_message": self.message,
            "error_type": self.error_type,
            "detail": self.message,
            "title": self.error_type,
            "type": format!("/api/v1/error/{}", self.error_type),
        });
        (self.status, axum::Json(body)).into_response()
    }
}

/// Quay's `type` is an absolute URL; build it from the public origin.
pub fn error_type_url(headers: &HeaderMap, ctx: &crate::service::Ctx, error_type: &str) -> String {
    let (scheme, host) = crate::api::public_origin(ctx, headers, None);
    format!("{scheme}://{host}/api/v1/error/{error_type}")
}
