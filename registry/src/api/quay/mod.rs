//! Quay's REST API under `/api/v1`, with Quay's paths, verbs, status codes and JSON shapes.
//!
//! Every endpoint is declared once, in the module of its area, next to its handlers: each area
//! module has `pub(super) fn endpoints() -> Vec<Entry>` listing method, path, operation id, the
//! OAuth scope it requires, a summary, its query parameters and its handler (built with `ep`).
//! [`endpoints`] concatenates the areas; the router and the Swagger document of
//! `GET /api/v1/discovery` are both built from that one list, so they cannot drift, and the
//! required scope is enforced in one place: the [`Auth`] extractor reads the scope the table
//! attached to the route. This module holds only that shared machinery: the [`Endpoint`] type,
//! the router, the extractors ([`Auth`], [`Query`]; [`Body`] and [`OptionalBody`] in [`body`]) and the answer
//! helpers.
//!
//! The areas: [`discovery`], [`user`], [`superuser`], [`orgs`], [`teams`] (and team invitations),
//! [`prototypes`] (default permissions), [`apps`] (OAuth applications), [`robots`], [`repos`],
//! [`permissions`] (repository permissions), [`tags`] (tags, manifests, labels), [`quota`],
//! [`logs`] (usage logs and their export), [`messages`] (global messages),
//! [`notifications`] (repository notifications, in-app notifications), [`mirror`]
//! (repository mirroring and state), [`apptokens`] (application-specific tokens),
//! [`servicekeys`] (service keys), [`builds`] (builds and build-context uploads) and
//! [`triggers`] (build triggers and their webhooks). Areas of
//! Quay's API not served yet answer 501, declared in [`not_implemented`].
//!
//! Adding an area: create its module with its handlers and its `endpoints()`, add it to the list
//! in [`endpoints`], and delete its path segment from [`not_implemented`]'s list (paths of the
//! area that no endpoint declares then answer Quay's 404). Keep a sub-resource keyword that can
//! follow a repository name in [`paths`].
//!
//! Authentication: `Authorization: Bearer <OAuth access token>` (limited to the token's scopes),
//! or basic auth with a user's password (a Quayside convenience with every scope; robots cannot
//! use the API, as in Quay).

pub mod apps;
pub mod apptokens;
pub mod body;
pub mod builds;
pub mod discovery;
pub mod error;
pub mod logs;
pub mod members;
pub mod messages;
pub mod mirror;
pub mod not_implemented;
pub mod notifications;
pub mod orgs;
pub mod paths;
pub mod permissions;
pub mod prototypes;
pub mod proxycache;
pub mod quota;
pub mod repos;
pub mod robots;
pub mod search;
pub mod servicekeys;
pub mod superuser;
pub mod tags;
pub mod teams;
pub mod triggers;
pub mod user;

use std::collections::BTreeMap;

use axum::Router;
use axum::extract::{Extension, FromRequestParts};
use axum::http::Method;
use axum::http::request::Parts;
use axum::routing::MethodRouter;

pub use self::body::{Body, OptionalBody};
use self::error::ApiError;
use super::{AppState, PeerAddr, credentials};
use crate::service::access::auth::{self, AuthError};
use crate::service::operations::audit::Caller;
use crate::service::scopes::Scope;
use crate::service::{Principal, tenancy::accounts};

/// One endpoint of the API.
pub struct Endpoint {
    pub method: Method,
    /// Path under `/api/v1`, with `{param}` segments.
    pub path: &'static str,
    pub operation_id: &'static str,
    /// The OAuth scope a token needs to call it.
    pub scope: Option<Scope>,
    pub tag: &'static str,
    pub summary: &'static str,
    /// Query parameters: name, type (`boolean`, `string`, `integer`), description.
    pub query: &'static [(&'static str, &'static str, &'static str)],
    /// Takes a JSON body.
    pub body: bool,
}

/// The scope the route requires, attached by the table for [`Auth`].
#[derive(Clone, Copy, Debug)]
struct RequiredScope(Option<Scope>);

/// An endpoint and its route, as an area module declares it.
type Entry = (Endpoint, MethodRouter<AppState>);

/// One [`Entry`] of an area's table; the route carries the endpoint's scope for [`Auth`].
#[allow(clippy::too_many_arguments)]
fn ep(
    method: Method,
    path: &'static str,
    operation_id: &'static str,
    scope: Option<Scope>,
    tag: &'static str,
    summary: &'static str,
    query: &'static [(&'static str, &'static str, &'static str)],
    route: MethodRouter<AppState>,
) -> Entry {
    let body = matches!(method, Method::POST | Method::PUT);
    (
        Endpoint {
            method,
            path,
            operation_id,
            scope,
            tag,
            summary,
            query,
            body,
        },
        route.layer(Extension(RequiredScope(scope))),
    )
}

/// Every endpoint, once: the areas' tables, concatenated. Where two areas declare methods of one
/// path, the earlier area's operation names the path in the discovery document.
pub fn endpoints() -> Vec<Entry> {
    [
        discovery::endpoints(),
        user::endpoints(),
        superuser::endpoints(),
        orgs::endpoints(),
        teams::endpoints(),
        members::endpoints(),
        prototypes::endpoints(),
        proxycache::endpoints(),
        apps::endpoints(),
        robots::endpoints(),
        repos::endpoints(),
        permissions::endpoints(),
        tags::endpoints(),
        quota::endpoints(),
        logs::endpoints(),
        messages::endpoints(),
        notifications::endpoints(),
        search::endpoints(),
        mirror::endpoints(),
        apptokens::endpoints(),
        servicekeys::endpoints(),
        builds::endpoints(),
        triggers::endpoints(),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// The `/api/v1` router, built from [`endpoints`].
pub fn router() -> Router<AppState> {
    let mut by_path: BTreeMap<&'static str, MethodRouter<AppState>> = BTreeMap::new();
    for (endpoint, route) in endpoints() {
        let merged = match by_path.remove(endpoint.path) {
            Some(existing) => existing.merge(route),
            None => route,
        };
        by_path.insert(endpoint.path, merged);
    }
    // Quay answers a path with or without its trailing slash alike; so do we.
    let declared: std::collections::BTreeSet<&'static str> = by_path.keys().copied().collect();
    let mut router = Router::new();
    for (path, route) in by_path {
        let twin = match path.strip_suffix('/') {
            Some(bare) if !bare.is_empty() => bare.to_owned(),
            Some(_) => continue,
            None => format!("{path}/"),
        };
        if !declared.contains(twin.as_str()) {
            router = router.route(&twin, route.clone());
        }
        router = router.route(path, route);
    }
    router.fallback(not_implemented::unrouted)
}

/// The authenticated caller of an endpoint, with the endpoint's required scope enforced.
pub struct Auth(pub Caller);

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let ip = parts.extensions.get::<PeerAddr>().map(|p| p.0.ip());
        let required = parts.extensions.get::<RequiredScope>().and_then(|r| r.0);
        let principal = match credentials(&parts.headers) {
            Ok(None) => Principal::Anonymous,
            // Application-specific tokens are registry credentials, not API ones.
            Ok(Some(auth::Credentials::Basic { username, .. }))
                if username == auth::APP_TOKEN_USERNAME =>
            {
                return Err(ApiError::invalid_token());
            }
            Ok(Some(creds)) => match auth::authenticate(&state.ctx, &creds, ip).await {
                Ok(p @ (Principal::User(_) | Principal::OAuth(_))) => p,
                // Registry tokens and robots are not API credentials.
                Ok(Principal::Robot(_) | Principal::Token(_) | Principal::Anonymous) => {
                    return Err(ApiError::invalid_token());
                }
                Err(AuthError::Internal(e)) => return Err(ApiError::internal(&e)),
                Err(e @ AuthError::Overloaded(_)) => {
                    return Err(ApiError::new(
                        axum::http::StatusCode::TOO_MANY_REQUESTS,
                        "too_many_requests",
                        e.to_string(),
                    ));
                }
                Err(_) => return Err(ApiError::invalid_token()),
            },
            Err(_) => return Err(ApiError::invalid_token()),
        };
        if let (Some(required), Some(scopes)) = (required, principal.scopes())
            && !scopes.has(required)
        {
            return Err(ApiError::forbidden());
        }
        Ok(Auth(Caller::new(principal, ip)))
    }
}

/// Query parameters, with Quay's truthy booleans.
pub struct Query(Vec<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for Query {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        Ok(Query(
            parts
                .uri
                .query()
                .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
                .unwrap_or_default(),
        ))
    }
}

impl Query {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// A boolean parameter (`true`/`1`/`yes`/`on` or `false`/`0`/`no`/`off`, any case).
    pub fn flag(&self, key: &str, default: bool) -> Result<bool, ApiError> {
        match self.get(key).map(str::to_ascii_lowercase).as_deref() {
            None | Some("") => Ok(default),
            Some("true" | "1" | "yes" | "on" | "t" | "y") => Ok(true),
            Some("false" | "0" | "no" | "off" | "f" | "n") => Ok(false),
            Some(other) => Err(ApiError::invalid_request(format!(
                "{key}: {other:?} is not a boolean"
            ))),
        }
    }

    pub fn int(&self, key: &str) -> Result<Option<i64>, ApiError> {
        self.get(key)
            .filter(|v| !v.is_empty())
            .map(|v| {
                v.parse().map_err(|_| {
                    ApiError::invalid_request(format!("{key}: {v:?} is not an integer"))
                })
            })
            .transpose()
    }
}

/// The signed-in user of a caller, for endpoints only users may call.
pub fn require_user(caller: &Caller) -> Result<(), ApiError> {
    accounts::acting_user(&caller.principal)
        .map(|_| ())
        .map_err(ApiError::from)
}

/// Quay's answer to a creation: `"Created"` with 201.
pub fn created() -> axum::response::Response {
    use axum::response::IntoResponse;
    (axum::http::StatusCode::CREATED, axum::Json("Created")).into_response()
}

/// An empty 204.
pub fn no_content() -> axum::response::Response {
    use axum::response::IntoResponse;
    axum::http::StatusCode::NO_CONTENT.into_response()
}
