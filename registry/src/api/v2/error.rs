//! The OCI error envelope, written in exactly one place: `{"errors":[{code,message,detail}]}`
//! with the status the Distribution spec assigns to each code. Messages are bounded
//! (`api::bounded_message`): they may echo input.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::service::RegistryError;

/// A `/v2` error response.
#[derive(Debug)]
pub struct V2Error {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// What only some errors carry (boxed: errors travel through every `?`).
    pub extra: Option<Box<Extra>>,
}

#[derive(Debug, Default)]
pub struct Extra {
    pub detail: Option<serde_json::Value>,
    /// The `WWW-Authenticate` value of a 401.
    pub challenge: Option<String>,
    /// The `Range` header of a 416 on an upload.
    pub range: Option<String>,
    /// The `Content-Range` header of a 416 on a blob (`bytes */<size>`).
    pub content_range: Option<String>,
}

impl V2Error {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> V2Error {
        V2Error {
            status,
            code,
            message: message.into(),
            extra: None,
        }
    }

    pub fn unauthorized(challenge: String) -> V2Error {
        V2Error::new(
            StatusCode::UNAUTHORIZED,
            "UNAUTHORIZED",
            "authentication required",
        )
        .with_challenge(challenge)
    }

    pub fn with_challenge(mut self, challenge: String) -> V2Error {
        self.extra.get_or_insert_with(Default::default).challenge = Some(challenge);
        self
    }

    pub fn with_detail(mut self, detail: serde_json::Value) -> V2Error {
        self.extra.get_or_insert_with(Default::default).detail = Some(detail);
        self
    }

    pub fn with_content_range(mut self, content_range: String) -> V2Error {
        self.extra
            .get_or_insert_with(Default::default)
            .content_range = Some(content_range);
        self
    }

    pub fn with_message(mut self, message: impl Into<String>) -> V2Error {
        self.message = message.into();
        self
    }

    pub fn unsupported(message: impl Into<String>) -> V2Error {
        V2Error::new(StatusCode::METHOD_NOT_ALLOWED, "UNSUPPORTED", message)
    }

    /// Maps a domain error; `challenge` is used if it turns out to be a 401.
    pub fn from_registry(err: RegistryError, challenge: impl FnOnce() -> String) -> V2Error {
        use RegistryError as E;
        let message = err.to_string();
        let (status, code) = match &err {
            E::NameInvalid(_) => (StatusCode::BAD_REQUEST, "NAME_INVALID"),
            E::NameUnknown => (StatusCode::NOT_FOUND, "NAME_UNKNOWN"),
            E::TagInvalid(_) => (StatusCode::BAD_REQUEST, "TAG_INVALID"),
            E::DigestInvalid(_) => (StatusCode::BAD_REQUEST, "DIGEST_INVALID"),
            E::BlobUnknown(_) => (StatusCode::NOT_FOUND, "BLOB_UNKNOWN"),
            E::UploadUnknown => (StatusCode::NOT_FOUND, "BLOB_UPLOAD_UNKNOWN"),
            E::UploadInvalid(_) => (StatusCode::BAD_REQUEST, "BLOB_UPLOAD_INVALID"),
            E::RangeInvalid { .. } => (StatusCode::RANGE_NOT_SATISFIABLE, "BLOB_UPLOAD_INVALID"),
            E::ManifestUnknown(_) => (StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN"),
            E::ManifestInvalid(_) => (StatusCode::BAD_REQUEST, "MANIFEST_INVALID"),
            E::ManifestBlobUnknown(_) => (StatusCode::BAD_REQUEST, "MANIFEST_BLOB_UNKNOWN"),
            E::ManifestTooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "MANIFEST_INVALID"),
            E::Unsupported(_) => (StatusCode::BAD_REQUEST, "UNSUPPORTED"),
            E::Unauthorized => (StatusCode::UNAUTHORIZED, "UNAUTHORIZED"),
            E::Denied => (StatusCode::FORBIDDEN, "DENIED"),
            E::QuotaExceeded => (StatusCode::FORBIDDEN, "DENIED"),
            E::Internal(e) => {
                tracing::error!(error = %e, "internal error serving /v2");
                (StatusCode::INTERNAL_SERVER_ERROR, "UNKNOWN")
            }
        };
        let detail = match &err {
            E::BlobUnknown(d) | E::ManifestBlobUnknown(d) => Some(json!({ "digest": d })),
            E::RangeInvalid { size } => Some(json!({ "size": size })),
            E::QuotaExceeded => Some(json!({})),
            _ => None,
        };
        let range = match &err {
            E::RangeInvalid { size } => Some(format!("0-{}", size.saturating_sub(1))),
            _ => None,
        };
        let message = if matches!(err, E::Internal(_)) {
            "internal server error".to_owned()
        } else {
            message
        };
        let challenge = (status == StatusCode::UNAUTHORIZED).then(challenge);
        let extra = (detail.is_some() || challenge.is_some() || range.is_some()).then(|| {
            Box::new(Extra {
                detail,
                challenge,
                range,
                content_range: None,
            })
        });
        V2Error {
            status,
            code,
            message,
            extra,
        }
    }
}

impl IntoResponse for V2Error {
    fn into_response(self) -> Response {
        let extra = self.extra.map(|e| *e).unwrap_or_default();
        let message = crate::api::bounded_message(self.message);
        let body = json!({ "errors": [{ "code": self.code, "message": message, "detail": extra.detail }] });
        let mut response = (self.status, axum::Json(body)).into_response();
        let headers = response.headers_mut();
        if let Some(c) = extra.challenge.and_then(|c| HeaderValue::from_str(&c).ok()) {
            headers.insert(header::WWW_AUTHENTICATE, c);
        }
        if let Some(r) = extra.range.and_then(|r| HeaderValue::from_str(&r).ok()) {
            headers.insert(header::RANGE, r);
        }
        if let Some(r) = extra
            .content_range
            .and_then(|r| HeaderValue::from_str(&r).ok())
        {
            headers.insert(header::CONTENT_RANGE, r);
        }
        response
    }
}
