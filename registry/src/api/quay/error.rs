//! Quay's API error answers, written in exactly one place: the error body
//! `{"status", "error_message", "error_type", "detail", "title", "type"}` (with `type` an absolute
//! URL, completed by [`absolute_error_types`]), or `{"message": ...}` where Quay answers that way.
//! Messages are bounded (`api::bounded_message`): they may echo input.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::api::{AppState, ConnScheme, bounded_message, public_origin};
use crate::service::content::mirror::MirrorError;
use crate::service::{AccountError, Internal, TenancyError};

/// Every `error_type` an error body may carry, with its description: Quay's table, then the
/// types Quayside adds (`internal_error`, `not_implemented`, `too_many_requests`). The `type`
/// URL of an error body (`/api/v1/error/{error_type}`) answers from this table.
pub const ERROR_TYPES: &[(&str, &str)] = &[
    (
        "external_service_timeout",
        "An external service timed out. Retrying the request may resolve the issue.",
    ),
    (
        "invalid_request",
        "The request was invalid. It may have contained invalid values or was improperly formatted.",
    ),
    ("invalid_response", "The response was invalid."),
    ("invalid_token", "The access token provided was invalid."),
    ("expired_token", "The access token provided has expired."),
    (
        "insufficient_scope",
        "The access token did not have sufficient scope to access the requested resource.",
    ),
    (
        "fresh_login_required",
        "The action requires a fresh login to succeed.",
    ),
    (
        "exceeds_license",
        "The action was refused because the current license does not allow it.",
    ),
    ("not_found", "The resource was not found."),
    (
        "downstream_issue",
        "An error occurred in a downstream service.",
    ),
    (
        "tag_immutable",
        "The tag is immutable and cannot be modified or deleted.",
    ),
    ("token_rotation_failed", "Token rotation failed."),
    (
        "internal_error",
        "The server failed to answer the request. Retrying later may succeed; the server's log has the cause.",
    ),
    (
        "not_implemented",
        "The feature is not implemented in this version of Quayside.",
    ),
    (
        "too_many_requests",
        "Too many requests are being served. Retry after a short wait.",
    ),
];

/// The description of `error_type`, when it is one of [`ERROR_TYPES`].
pub fn error_description(error_type: &str) -> Option<&'static str> {
    ERROR_TYPES
        .iter()
        .find(|(t, _)| *t == error_type)
        .map(|(_, d)| *d)
}

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    /// Quay's `error_type`: `invalid_request`, `invalid_token`, `insufficient_scope`,
    /// `not_found`, `internal_error`, ...
    pub error_type: &'static str,
    pub message: String,
    /// Answer `{"message": ...}` instead of the error body.
    pub plain: bool,
    /// Answer `{"detail": ...}` instead of the error body (Quay's mirror endpoints).
    pub detail_only: bool,
}

/// Marks a response as a Quay error body whose `type` URL is still relative.
#[derive(Clone, Copy, Debug)]
struct PendingErrorType;

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
            plain: false,
            detail_only: false,
        }
    }

    pub fn invalid_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }

    /// `{"message": ...}` with 400.
    pub fn message(message: impl Into<String>) -> ApiError {
        ApiError {
            plain: true,
            ..ApiError::invalid_request(message)
        }
    }

    pub fn not_found() -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", "Not Found")
    }

    /// 401: the request needs (valid) credentials.
    pub fn unauthorized() -> ApiError {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            "Requires authentication",
        )
    }

    pub fn invalid_token() -> ApiError {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            "The access token provided was invalid.",
        )
    }

    /// 403: known caller, not allowed (or the token lacks the scope).
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

impl From<TenancyError> for ApiError {
    fn from(e: TenancyError) -> Self {
        match e {
            TenancyError::Invalid(m) => ApiError::invalid_request(m),
            TenancyError::Refused(m) => ApiError::message(m),
            TenancyError::NotFound => ApiError::not_found(),
            TenancyError::Unavailable(m) => ApiError {
                status: StatusCode::SERVICE_UNAVAILABLE,
                ..ApiError::message(m)
            },
            TenancyError::Forbidden { anonymous: true } => ApiError::unauthorized(),
            TenancyError::Forbidden { anonymous: false } => ApiError::forbidden(),
            TenancyError::Internal(i) => ApiError::internal(&i),
        }
    }
}

impl From<MirrorError> for ApiError {
    fn from(e: MirrorError) -> Self {
        match e {
            MirrorError::Tenancy(t) => t.into(),
            MirrorError::Detail { status, detail } => ApiError {
                detail_only: true,
                ..ApiError::new(
                    StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
                    "invalid_request",
                    detail,
                )
            },
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(mut self) -> Response {
        self.message = bounded_message(self.message);
        if self.detail_only {
            return (self.status, axum::Json(json!({ "detail": self.message }))).into_response();
        }
        if self.plain {
            return (self.status, axum::Json(json!({ "message": self.message }))).into_response();
        }
        let body = json!({
            "status": self.status.as_u16(),
            "error_message": self.message,
            "error_type": self.error_type,
            "detail": self.message,
            "title": self.error_type,
            "type": format!("/api/v1/error/{}", self.error_type),
        });
        let mut response = (self.status, axum::Json(body)).into_response();
        response.extensions_mut().insert(PendingErrorType);
        response
    }
}

/// Middleware of the `/api/v1` surface: makes the `type` of error bodies an absolute URL on the
/// public origin, as Quay writes it.
pub async fn absolute_error_types(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let (scheme, host) = public_origin(
        &state.ctx,
        request.headers(),
        request.extensions().get::<ConnScheme>(),
    );
    let response = next.run(request).await;
    if response.extensions().get::<PendingErrorType>().is_none() {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 64 * 1024).await else {
        return Response::from_parts(parts, Body::empty());
    };
    let mut value: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
    if let Some(kind) = value
        .get("type")
        .and_then(|t| t.as_str())
        .map(str::to_owned)
    {
        value["type"] = json!(format!("{scheme}://{host}{kind}"));
    }
    let bytes = serde_json::to_vec(&value).unwrap_or_default();
    parts
        .headers
        .insert(header::CONTENT_LENGTH, bytes.len().into());
    Response::from_parts(parts, Body::from(bytes))
}
