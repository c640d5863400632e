//! The web UI: server-rendered pages at `/`, embedded in the binary.
//!
//! Rule: a page is the UI version of an API call. Handlers read the session ([`Viewer`]), call
//! the same service function the `/api/v1` handler calls with the same [`Caller`] (a signed-in
//! session is [`Principal::User`], no session is [`Principal::Anonymous`]), and render its
//! result; nothing here reads the database or the blob store (`service/layering.rs` checks that
//! no `ui` file names `crate::db` or `crate::storage`). So a page shows exactly what the API
//! would answer, and refuses with the API's status: 401 for anonymous, 403, 404.
//!
//! Every state-changing request is a `POST` form carrying the session's CSRF token (`_csrf`);
//! one without it, or with another, is refused 403 before any service is called. The forms
//! shown before a session exists (sign-in, the first user) use a double-submit token: a random
//! cookie repeated in the form. Pages answer with a strict `Content-Security-Policy` (scripts
//! and styles only from `/static/`, no inline script), so injected markup cannot run.
//!
//! Layout: [`layout`] (the page frame), [`markdown`] (descriptions), [`forms`] (form bodies and
//! CSRF), `pages/*` (one module per area: `auth`, `repos`, `repo`, `orgs`, `logs`, `admin`).

pub mod forms;
pub mod layout;
pub mod markdown;
mod pages;

use axum::Router;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use maud::Markup;

use crate::api::{AppState, ConnScheme, PeerAddr};
use crate::config::UrlScheme;
use crate::service::operations::audit::Caller;
use crate::service::tenancy::sessions::{self, Session};
use crate::service::{Internal, Principal, TenancyError};

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "quayside_session";
/// The double-submit cookie of the forms shown before a session exists.
pub const PRE_CSRF_COOKIE: &str = "quayside_csrf";

const CSS: &str = include_str!("assets/ui.css");
const JS: &str = include_str!("assets/ui.js");
const ICON: &str = include_str!("assets/favicon.svg");
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
    connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The UI's routes; merged into the server's router beside the API surfaces.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/static/ui.css", get(css))
        .route("/static/ui.js", get(js))
        .route("/static/favicon.svg", get(icon))
        .route("/favicon.ico", get(icon))
        .merge(pages::router())
        .layer(axum::middleware::from_fn(security_headers))
}

async fn css() -> Response {
    static_asset("text/css; charset=utf-8", CSS)
}

async fn icon() -> Response {
    static_asset("image/svg+xml", ICON)
}

async fn js() -> Response {
    static_asset("text/javascript; charset=utf-8", JS)
}

fn static_asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        body,
    )
        .into_response()
}

async fn security_headers(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// Who is looking at a page: the session (if any) and the caller the services are given.
pub struct Viewer {
    pub session: Option<Session>,
    pub caller: Caller,
    /// Whether cookies are marked `Secure` (the connection or the public URL is HTTPS).
    pub secure: bool,
    /// The host clients pull from (`SERVER_HOSTNAME`, else the request's `Host`).
    pub host: String,
    /// The double-submit token of pre-session forms (from the cookie, or new).
    pub pre_csrf: String,
    /// Whether `pre_csrf` is new and must be set as a cookie.
    pub pre_csrf_new: bool,
}

impl Viewer {
    pub fn user(&self) -> Option<&crate::service::UserRef> {
        self.session.as_ref().map(|s| &s.user)
    }

    /// The CSRF token forms carry: the session's, or the pre-session token.
    pub fn csrf(&self) -> &str {
        match &self.session {
            Some(s) => &s.csrf,
            None => &self.pre_csrf,
        }
    }
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

impl FromRequestParts<AppState> for Viewer {
    type Rejection = UiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, UiError> {
        let ctx = &state.ctx;
        let ip = parts.extensions.get::<PeerAddr>().map(|p| p.0.ip());
        let scheme = parts.extensions.get::<ConnScheme>();
        let secure = scheme.is_some_and(|s| s.0 == "https")
            || (ctx.config.server_hostname.is_some() && ctx.config.url_scheme == UrlScheme::Https);
        let (_, host) = crate::api::public_origin(ctx, &parts.headers, scheme);
        let session = match cookie(&parts.headers, SESSION_COOKIE) {
            Some(value) => sessions::resolve(ctx, value).await?,
            None => None,
        };
        let principal = match &session {
            Some(s) => Principal::User(s.user.clone()),
            None => Principal::Anonymous,
        };
        let (pre_csrf, pre_csrf_new) = match cookie(&parts.headers, PRE_CSRF_COOKIE)
            .filter(|v| v.len() == 32 && v.bytes().all(|b| b.is_ascii_alphanumeric()))
        {
            Some(v) => (v.to_owned(), false),
            None => (crate::service::random_token(32), true),
        };
        Ok(Viewer {
            session,
            caller: Caller::new(principal, ip),
            secure,
            host,
            pre_csrf,
            pre_csrf_new,
        })
    }
}

/// A cookie header value with the UI's attributes.
pub fn set_cookie(name: &str, value: &str, max_age_s: i64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    let text =
        format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age_s}{secure}");
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// A page, with the pre-session cookie set when it is new.
pub fn page(viewer: &Viewer, status: StatusCode, markup: Markup) -> Response {
    let mut response = (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        markup.into_string(),
    )
        .into_response();
    if viewer.session.is_none() && viewer.pre_csrf_new {
        response.headers_mut().append(
            header::SET_COOKIE,
            set_cookie(PRE_CSRF_COOKIE, &viewer.pre_csrf, 3600, viewer.secure),
        );
    }
    response
}

/// After a form: back to a page (303, so the browser fetches it with `GET`).
pub fn see_other(to: &str) -> Response {
    Redirect::to(to).into_response()
}

/// A refusal or failure, rendered as a page with the API's status.
#[derive(Debug)]
pub struct UiError {
    pub status: StatusCode,
    pub message: String,
}

impl UiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> UiError {
        UiError {
            status,
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> UiError {
        UiError::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn csrf() -> UiError {
        UiError::new(
            StatusCode::FORBIDDEN,
            "This form has expired or was not sent by this site (CSRF token missing or wrong). Reload the page and try again.",
        )
    }
}

impl From<Internal> for UiError {
    fn from(e: Internal) -> Self {
        tracing::error!(error = %e, "internal error serving the UI");
        UiError::new(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error")
    }
}

impl From<TenancyError> for UiError {
    fn from(e: TenancyError) -> Self {
        match e {
            TenancyError::Invalid(m) | TenancyError::Refused(m) => UiError::bad_request(m),
            TenancyError::NotFound => UiError::new(StatusCode::NOT_FOUND, "Not found."),
            TenancyError::Unavailable(m) => UiError::new(StatusCode::SERVICE_UNAVAILABLE, m),
            TenancyError::Forbidden { anonymous: true } => {
                UiError::new(StatusCode::UNAUTHORIZED, "Sign in to see this page.")
            }
            TenancyError::Forbidden { anonymous: false } => UiError::new(
                StatusCode::FORBIDDEN,
                "You do not have access to this page.",
            ),
            TenancyError::Internal(i) => i.into(),
        }
    }
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        let markup = layout::error_page(self.status, &self.message);
        (
            self.status,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            markup.into_string(),
        )
            .into_response()
    }
}

pub type UiResult = Result<Response, UiError>;

/// The state extractor, re-exported for the page modules.
pub type St = State<AppState>;
