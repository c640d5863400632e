//! HTTP surfaces. Each router extracts what a request carries, calls one service function and
//! maps the result; errors are mapped to the surface's format in one place per surface.
//! No SQL and no storage access here.

pub mod buildman;
pub mod edge;
pub mod federation;
pub mod fuzzing;
pub mod health;
pub mod quay;
pub mod v2;

use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderMap, header};
use base64::Engine;

use crate::service::Ctx;
use crate::service::access::auth::Credentials;
use crate::telemetry::Metrics;

#[derive(Clone)]
pub struct AppState {
    pub ctx: Arc<Ctx>,
    pub metrics: Arc<Metrics>,
}

/// The scheme a connection arrived on, set by the server for each connection.
#[derive(Clone, Copy, Debug)]
pub struct ConnScheme(pub &'static str);

/// The client's address, set by the server for each connection.
#[derive(Clone, Copy, Debug)]
pub struct PeerAddr(pub std::net::SocketAddr);

pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(v2::router())
        .nest(
            "/api/v1",
            quay::router()
                .layer(axum::middleware::from_fn(edge::quay_text))
                .layer(axum::middleware::from_fn_with_state(
                    state.clone(),
                    quay::error::absolute_error_types,
                )),
        )
        .merge(quay::logs::download_router())
        .merge(quay::notifications::web_router())
        .merge(federation::router())
        .merge(quay::builds::userfiles_router())
        .merge(quay::triggers::web_router())
        .merge(buildman::router())
        .merge(health::router())
        .merge(crate::ui::router())
        .layer(axum::middleware::from_fn(close_after_refused_body))
        .layer(axum::middleware::from_fn_with_state(
            state.metrics.clone(),
            crate::telemetry::track,
        ))
        .with_state(state)
}

/// A refusal of a request that carries a body answers `Connection: close`: the body may be
/// partly unread (an upload chunk refused on its headers alone), and then the server closes the
/// connection after the answer. Said in the answer, clients do not reuse a closing socket for
/// their next request.
async fn close_after_refused_body(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let headers = request.headers();
    let carries_body = headers.contains_key(header::TRANSFER_ENCODING)
        || headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim() != "0");
    let mut response = next.run(request).await;
    let status = response.status();
    if carries_body && (status.is_client_error() || status.is_server_error()) {
        response.headers_mut().insert(
            header::CONNECTION,
            axum::http::HeaderValue::from_static("close"),
        );
    }
    response
}

/// Rewrites a request before routing: nested repository names under `/api/v1/repository/` become
/// one path segment (see [`quay::paths`]).
pub fn prepare<B>(request: &mut axum::http::Request<B>) {
    let Some(path) = quay::paths::one_segment_repository(request.uri().path()) else {
        return;
    };
    let path_and_query = match request.uri().query() {
        Some(q) => format!("{path}?{q}"),
        None => path,
    };
    let mut parts = request.uri().clone().into_parts();
    if let Ok(pq) = path_and_query.parse() {
        parts.path_and_query = Some(pq);
        if let Ok(uri) = axum::http::Uri::from_parts(parts) {
            *request.uri_mut() = uri;
        }
    }
}

/// The most bytes of an error message a surface writes: messages may echo input (a name, a
/// value serde could not read), which is not bounded.
pub const MAX_MESSAGE: usize = 1024;

/// `message`, cut at a character boundary to at most [`MAX_MESSAGE`] bytes and ended with `…`
/// when cut. Each surface's error writer applies it to every message it writes.
pub fn bounded_message(mut message: String) -> String {
    if message.len() > MAX_MESSAGE {
        let mut end = MAX_MESSAGE - '…'.len_utf8();
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message.truncate(end);
        message.push('…');
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_bounded_at_a_char_boundary() {
        assert_eq!(bounded_message("short".into()), "short");
        let exact = "a".repeat(MAX_MESSAGE);
        assert_eq!(bounded_message(exact.clone()), exact);
        let long = bounded_message("é".repeat(MAX_MESSAGE));
        assert!(long.len() <= MAX_MESSAGE, "{}", long.len());
        assert!(long.ends_with('…'));
        assert!(long.trim_end_matches('…').chars().all(|c| c == 'é'));
    }
}

/// An `Authorization` header that is neither valid Basic nor Bearer.
#[derive(Debug, thiserror::Error)]
#[error("malformed Authorization header")]
pub struct MalformedAuthorization;

/// Reads `Authorization` (Basic or Bearer). `Ok(None)` when absent.
pub fn credentials(headers: &HeaderMap) -> Result<Option<Credentials>, MalformedAuthorization> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value.to_str().map_err(|_| MalformedAuthorization)?;
    let (scheme, rest) = value.split_once(' ').ok_or(MalformedAuthorization)?;
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(rest)
            .map_err(|_| MalformedAuthorization)?;
        let text = String::from_utf8(decoded).map_err(|_| MalformedAuthorization)?;
        let (username, password) = text.split_once(':').ok_or(MalformedAuthorization)?;
        // No account name or password holds a NUL (see `edge`).
        if text.contains('\0') {
            return Err(MalformedAuthorization);
        }
        Ok(Some(Credentials::Basic {
            username: username.to_owned(),
            password: password.to_owned(),
        }))
    } else if scheme.eq_ignore_ascii_case("bearer") && !rest.is_empty() {
        Ok(Some(Credentials::Bearer(rest.to_owned())))
    } else {
        Err(MalformedAuthorization)
    }
}

/// The public origin clients use: `SERVER_HOSTNAME` and `PREFERRED_URL_SCHEME` when configured,
/// else the request's `Host` and the connection's scheme.
pub fn public_origin(
    ctx: &Ctx,
    headers: &HeaderMap,
    scheme: Option<&ConnScheme>,
) -> (String, String) {
    if let Some(host) = &ctx.config.server_hostname {
        return (ctx.config.url_scheme.as_str().to_owned(), host.clone());
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| !h.is_empty() && !h.contains(['/', ' ', '"']))
        .map_or_else(|| ctx.config.listen.to_string(), str::to_owned);
    (scheme.map_or("http", |s| s.0).to_owned(), host)
}
