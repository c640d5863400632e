//! Text that enters through any surface holds no NUL character. PostgreSQL cannot store one in
//! `text` (a query binding one fails, which surfaced as 500s, some to anonymous callers), SQLite
//! can (so the backends would disagree), and no name, tag, description or parameter of Quay's
//! API or the OCI protocol has a use for one. It is refused once, at the edge, with 400 in the
//! surface's format, before any handler or service sees the request:
//!
//! - every `/api/v1` request: its percent-decoded path and its query ([`quay_text`], a layer of
//!   that router), in Quay's error body;
//! - every `/v2` request: its query, and the form body of `POST /v2/auth` ([`v2_text`], a layer of
//!   that router), in the OCI envelope (the token endpoint's form in its OAuth2 error shape).
//!   `/v2` paths are matched without decoding, so a `%00` stays three characters there, which the
//!   name, reference, digest and upload id parsers refuse;
//! - JSON bodies of `/api/v1`: the `Body` extractor ([`nul_in_json`]);
//! - manifests: `oci::manifest::parse` refuses NUL in the fields the registry keeps;
//! - Basic credentials: `api::credentials`.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{Method, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::quay::error::ApiError;
use super::v2::error::V2Error;

/// Where a NUL character is, if any, in the query (and, when `decode_path`, the path).
pub fn nul_in_uri(uri: &Uri, decode_path: bool) -> Option<String> {
    if decode_path && percent_encoding::percent_decode_str(uri.path()).any(|b| b == 0) {
        return Some("the path".to_owned());
    }
    nul_in_form(uri.query().unwrap_or_default().as_bytes())
        .map(|at| format!("query parameter {at}"))
}

/// The first form field (`application/x-www-form-urlencoded`) holding a NUL character.
pub fn nul_in_form(form: &[u8]) -> Option<String> {
    form_urlencoded::parse(form).find_map(|(k, v)| {
        if k.contains('\0') {
            Some("names".to_owned())
        } else {
            v.contains('\0').then(|| k.into_owned())
        }
    })
}

/// The path (`description`, `labels[0].key`) of the first string or object key of a JSON value
/// holding a NUL character.
pub fn nul_in_json(value: &Value) -> Option<String> {
    fn walk(value: &Value, at: &mut String) -> bool {
        match value {
            Value::String(s) => s.contains('\0'),
            Value::Array(items) => items.iter().enumerate().any(|(i, item)| {
                let len = at.len();
                at.push_str(&format!("[{i}]"));
                let found = walk(item, at);
                if !found {
                    at.truncate(len);
                }
                found
            }),
            Value::Object(map) => map.iter().any(|(k, v)| {
                if k.contains('\0') {
                    at.push_str(if at.is_empty() { "keys" } else { ".keys" });
                    return true;
                }
                let len = at.len();
                if !at.is_empty() {
                    at.push('.');
                }
                at.push_str(k);
                let found = walk(v, at);
                if !found {
                    at.truncate(len);
                }
                found
            }),
            Value::Null | Value::Bool(_) | Value::Number(_) => false,
        }
    }
    let mut at = String::new();
    walk(value, &mut at).then(|| {
        if at.is_empty() {
            "the body".to_owned()
        } else {
            at
        }
    })
}

/// The refusal's message.
pub fn refusal(at: &str) -> String {
    format!("{at} must not contain NUL characters")
}

/// Layer of `/api/v1`: refuses NUL in the decoded path and the query, with Quay's error body.
pub async fn quay_text(request: Request, next: Next) -> Response {
    match nul_in_uri(request.uri(), true) {
        Some(at) => ApiError::invalid_request(refusal(&at)).into_response(),
        None => next.run(request).await,
    }
}

/// Layer of `/v2`: refuses NUL in the query with the OCI envelope, and in the form body of
/// `POST /v2/auth` with the OAuth2 error the token endpoint answers.
pub async fn v2_text(request: Request, next: Next) -> Response {
    if let Some(at) = nul_in_uri(request.uri(), false) {
        return V2Error::new(StatusCode::BAD_REQUEST, "UNSUPPORTED", refusal(&at)).into_response();
    }
    if request.method() != Method::POST || request.uri().path() != "/v2/auth" {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    // The token endpoint's own bound.
    let Ok(bytes) = axum::body::to_bytes(body, 64 * 1024).await else {
        return oauth_invalid_request("the request body is too large");
    };
    if let Some(at) = nul_in_form(&bytes) {
        return oauth_invalid_request(&refusal(&format!("form field {at}")));
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

fn oauth_invalid_request(description: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(json!({ "error": "invalid_request", "error_description": description })),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_nul_where_it_hides() {
        let uri = |s: &str| s.parse::<Uri>().unwrap();
        assert_eq!(
            nul_in_uri(&uri("/v2/_catalog?last=%00"), false).as_deref(),
            Some("query parameter last")
        );
        assert_eq!(
            nul_in_uri(&uri("/x?a=1&b=x%00y"), false).as_deref(),
            Some("query parameter b")
        );
        assert_eq!(
            nul_in_uri(&uri("/x?a%00=1"), false).as_deref(),
            Some("query parameter names")
        );
        assert_eq!(
            nul_in_uri(&uri("/api/v1/organization/a%00b"), true).as_deref(),
            Some("the path")
        );
        assert_eq!(nul_in_uri(&uri("/api/v1/organization/a%00b"), false), None);
        // `%2500` is the text `%00`, not a NUL; `%%00` is `%` then a NUL.
        assert_eq!(nul_in_uri(&uri("/a%2500?q=%2500"), true), None);
        assert!(nul_in_uri(&uri("/a?q=%%00"), true).is_some());
        assert_eq!(nul_in_uri(&uri("/a/b?c=d&e"), true), None);

        let v = json!({ "a": "ok", "labels": [{ "key": "k" }, { "key": "x\u{0}" }] });
        assert_eq!(nul_in_json(&v).as_deref(), Some("labels[1].key"));
        assert_eq!(nul_in_json(&json!({ "d": "a\u{0}" })).as_deref(), Some("d"));
        assert_eq!(
            nul_in_json(&json!({ "m": { "k\u{0}": 1 } })).as_deref(),
            Some("m.keys")
        );
        assert_eq!(nul_in_json(&json!(["\u{0}"])).as_deref(), Some("[0]"));
        assert_eq!(nul_in_json(&json!("\u{0}")).as_deref(), Some("the body"));
        assert_eq!(
            nul_in_json(&json!({ "a": ["b", 1, null, { "c": "\\u0000" }] })),
            None
        );
    }
}
