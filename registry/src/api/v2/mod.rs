//! The OCI Distribution 1.1 surface (`/v2`) and the Docker token server (`/v2/auth`).
//!
//! Every `/v2/...` request goes through `dispatch`: parse the path with [`route::parse`] (the
//! single entry: the [`Route`] enum names every endpoint), authenticate once into a `Req`,
//! then hand it to the handler module of its resource, which calls one service function and
//! shapes the response. Errors become the OCI envelope in [`error`].
//!
//! One module per resource, as the spec's endpoint table groups them:
//! - [`catalog`]: `GET /v2/_catalog`.
//! - [`tags`]: `GET /v2/<name>/tags/list`.
//! - [`manifests`]: `GET|HEAD|PUT|DELETE /v2/<name>/manifests/<reference>`.
//! - [`blobs`]: `GET|HEAD|DELETE /v2/<name>/blobs/<digest>` (with `Range`).
//! - [`uploads`]: `POST /v2/<name>/blobs/uploads/` (start, monolithic, mount) and
//!   `GET|PATCH|PUT|DELETE /v2/<name>/blobs/uploads/<uuid>`.
//! - [`referrers`]: `GET /v2/<name>/referrers/<digest>`.
//!
//! This module keeps only what every handler shares: dispatch, authentication and the
//! `WWW-Authenticate` challenge, query parsing, audit records and small response helpers.

pub mod blobs;
pub mod catalog;
pub mod error;
pub mod manifests;
pub mod referrers;
pub mod route;
pub mod tags;
pub mod token;
pub mod uploads;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use futures_util::TryStreamExt;

use self::error::V2Error;
use self::route::Route;
use super::{AppState, ConnScheme, PeerAddr, credentials, public_origin};
use crate::oci::RepoName;
use crate::service::access::auth;
use crate::service::access::authz::Action;
use crate::service::content::repositories;
use crate::service::operations::audit::{Caller, Event};
use crate::service::{Ctx, Principal, RegistryError};
use crate::storage::ByteStream;
use crate::telemetry::RouteLabel;

const API_VERSION: &str = "registry/2.0";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v2/auth", get(token::get_token).post(token::post_token))
        .route("/v2", any(dispatch))
        .route("/v2/", any(dispatch))
        .route("/v2/{*rest}", any(dispatch))
        .layer(axum::middleware::from_fn(super::edge::v2_text))
}

/// What the failing request would need: its scope, for the `WWW-Authenticate` challenge.
struct Challenge {
    realm: String,
    service: String,
    scope: Option<String>,
}

impl Challenge {
    fn header(&self) -> String {
        match &self.scope {
            Some(scope) => format!(
                "Bearer realm=\"{}\",service=\"{}\",scope=\"{scope}\"",
                self.realm, self.service
            ),
            None => format!(
                "Bearer realm=\"{}\",service=\"{}\"",
                self.realm, self.service
            ),
        }
    }
}

/// What a request needs, in one table: the action the service checks for each route and method
/// (every upload route, its status included, checks `Push`). The `WWW-Authenticate` challenge of
/// a 401 is written from it by [`scope_for`], so the scope a client is told to get is the scope
/// the check accepts; `bad_input::every_v2_route_challenges_for_the_scope_it_checks` holds the
/// two together route by route.
pub(super) fn required_action(method: &Method, route: &Route<'_>) -> Option<Action> {
    Some(match (route, method) {
        (Route::Base | Route::Unknown, _) => return None,
        (Route::Catalog, _) => Action::ListCatalog,
        (Route::Tags { .. } | Route::Referrers { .. }, _) => Action::Pull,
        (Route::Manifest { .. } | Route::Blob { .. }, &Method::DELETE) => Action::Delete,
        (Route::Manifest { .. }, &Method::PUT) => Action::Push,
        (Route::Manifest { .. } | Route::Blob { .. }, _) => Action::Pull,
        (Route::UploadStart { .. } | Route::Upload { .. }, _) => Action::Push,
    })
}

/// The challenge's scope for [`required_action`]: a push asks for `pull,push`, as Docker
/// clients do; a cross-repository mount also asks for `pull` on the source repository.
fn scope_for(method: &Method, route: &Route<'_>, query: Option<&str>) -> Option<String> {
    let action = required_action(method, route)?;
    let Some(name) = route.name() else {
        return Some("registry:catalog:*".into());
    };
    let actions = match action {
        Action::Push | Action::CreateRepo => "pull,push",
        other => other.scope_action(),
    };
    let mut scope = format!("repository:{name}:{actions}");
    if matches!(route, Route::UploadStart { .. }) {
        let query = Query::parse(query);
        if let (Some(_), Some(from)) = (query.get("mount"), query.get("from"))
            && RepoName::parse(from).is_ok()
        {
            scope.push_str(&format!(" repository:{from}:pull"));
        }
    }
    Some(scope)
}

async fn dispatch(State(state): State<AppState>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let path = parts.uri.path();
    let rest = path
        .strip_prefix("/v2")
        .unwrap_or(path)
        .trim_start_matches('/');
    let route = route::parse(rest);
    let (scheme, host) = public_origin(
        &state.ctx,
        &parts.headers,
        parts.extensions.get::<ConnScheme>(),
    );
    let challenge = Challenge {
        realm: format!("{scheme}://{host}/v2/auth"),
        service: state.ctx.registry_service(),
        scope: scope_for(&parts.method, &route, parts.uri.query()),
    };
    let ip = parts.extensions.get::<PeerAddr>().map(|p| p.0.ip());
    let handled = handle(
        &state,
        &parts.method,
        &parts.uri,
        &parts.headers,
        &route,
        body,
        &challenge,
        ip,
    );
    let mut response = match crate::service::operations::audit::CLIENT_IP
        .scope(ip, handled)
        .await
    {
        Ok(r) => r,
        Err(e) => e.into_response(),
    };
    let headers = response.headers_mut();
    headers.insert(
        "Docker-Distribution-API-Version",
        HeaderValue::from_static(API_VERSION),
    );
    response.extensions_mut().insert(RouteLabel(route.label()));
    response
}

/// An authenticated `/v2` request, as every resource handler receives it.
pub(super) struct Req<'a> {
    state: &'a AppState,
    pub(super) ctx: &'a Ctx,
    pub(super) principal: Principal,
    pub(super) method: &'a Method,
    pub(super) headers: &'a HeaderMap,
    pub(super) query: Query,
    name: Option<RepoName>,
    challenge: &'a Challenge,
    ip: Option<std::net::IpAddr>,
}

impl Req<'_> {
    /// Maps a service error to the OCI envelope, challenging for this request's scope.
    pub(super) fn fail(&self, e: RegistryError) -> V2Error {
        V2Error::from_registry(e, || self.challenge.header())
    }

    /// The repository the route names.
    pub(super) fn name(&self) -> Result<&RepoName, V2Error> {
        self.name.as_ref().ok_or_else(|| {
            V2Error::new(
                StatusCode::NOT_FOUND,
                "NAME_UNKNOWN",
                "repository name not known to registry",
            )
        })
    }

    /// Records a pull or push, waiting for room in the audit queue (back-pressure rather than
    /// unbounded memory when pulls outpace the database).
    pub(super) async fn record(
        &self,
        kind: &'static str,
        name: &RepoName,
        metadata: serde_json::Value,
    ) {
        let mut metadata = metadata;
        metadata["repo"] = serde_json::json!(name.repository());
        metadata["namespace"] = serde_json::json!(name.namespace());
        self.state
            .ctx
            .audit
            .record_pressed(
                &Caller::new(self.principal.clone(), self.ip),
                Event::repo(kind, name.namespace(), name.repository(), metadata),
                self.state.ctx.now_ms(),
            )
            .await;
    }
}

/// Authenticates the request, then routes it to its resource's handler.
#[allow(clippy::too_many_arguments)]
async fn handle(
    state: &AppState,
    method: &Method,
    uri: &axum::http::Uri,
    headers: &HeaderMap,
    route: &Route<'_>,
    body: Body,
    challenge: &Challenge,
    ip: Option<std::net::IpAddr>,
) -> Result<Response, V2Error> {
    let ctx = &*state.ctx;
    let principal = match credentials(headers) {
        Ok(None) => Principal::Anonymous,
        Ok(Some(creds)) => auth::authenticate(ctx, &creds, ip)
            .await
            .map_err(|e| match e {
                auth::AuthError::Internal(i) => {
                    V2Error::from_registry(RegistryError::Internal(i), || challenge.header())
                }
                e @ auth::AuthError::Overloaded(_) => V2Error::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "TOOMANYREQUESTS",
                    e.to_string(),
                ),
                other => V2Error::unauthorized(challenge.header()).with_message(other.to_string()),
            })?,
        Err(_) => return Err(V2Error::unauthorized(challenge.header())),
    };
    let fail = |e: RegistryError| V2Error::from_registry(e, || challenge.header());
    let name = match route.name() {
        Some(n) => Some(repositories::parse_name(n).map_err(fail)?),
        None => None,
    };
    let req = Req {
        state,
        ctx,
        principal,
        method,
        headers,
        query: Query::parse(uri.query()),
        name,
        challenge,
        ip,
    };

    match (route, method) {
        (Route::Base, &Method::GET | &Method::HEAD) => {
            if req.principal.is_anonymous() {
                return Err(V2Error::unauthorized(challenge.header()));
            }
            Ok((StatusCode::OK, axum::Json(serde_json::json!({}))).into_response())
        }
        (Route::Catalog, &Method::GET) => catalog::list(&req).await,
        (Route::Tags { .. }, &Method::GET) => tags::list(&req).await,
        (Route::Manifest { reference, .. }, &Method::GET | &Method::HEAD) => {
            manifests::get(&req, reference).await
        }
        (Route::Manifest { reference, .. }, &Method::PUT) => {
            manifests::put(&req, reference, body).await
        }
        (Route::Manifest { reference, .. }, &Method::DELETE) => {
            manifests::delete(&req, reference).await
        }
        (Route::Blob { digest, .. }, &Method::GET | &Method::HEAD) => {
            blobs::get(&req, digest).await
        }
        (Route::Blob { digest, .. }, &Method::DELETE) => blobs::delete(&req, digest).await,
        (Route::UploadStart { .. }, &Method::POST) => uploads::start(&req, body).await,
        (Route::Upload { uuid, .. }, &Method::GET) => uploads::status(&req, uuid).await,
        (Route::Upload { uuid, .. }, &Method::PATCH) => uploads::append(&req, uuid, body).await,
        (Route::Upload { uuid, .. }, &Method::PUT) => uploads::complete(&req, uuid, body).await,
        (Route::Upload { uuid, .. }, &Method::DELETE) => uploads::cancel(&req, uuid).await,
        (Route::Referrers { digest, .. }, &Method::GET) => referrers::list(&req, digest).await,
        (Route::Unknown, _) => Err(V2Error::new(
            StatusCode::NOT_FOUND,
            "NAME_UNKNOWN",
            "no such endpoint",
        )),
        (_, method) => Err(V2Error::unsupported(format!(
            "method {method} is not supported here"
        ))),
    }
}

/// Query parameters of a `/v2` request.
pub(super) struct Query(Vec<(String, String)>);

impl Query {
    pub(super) fn parse(query: Option<&str>) -> Query {
        Query(
            query
                .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
                .unwrap_or_default(),
        )
    }

    pub(super) fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    pub(super) fn int(&self, key: &str) -> Result<Option<i64>, RegistryError> {
        self.get(key)
            .map(|v| {
                v.parse::<i64>().map_err(|_| {
                    RegistryError::Unsupported(format!("query parameter {key} must be a number"))
                })
            })
            .transpose()
    }
}

pub(super) fn header_value(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
}
pub(super) fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}
pub(super) fn body_stream(body: Body) -> ByteStream {
    Box::pin(body.into_data_stream().map_err(std::io::Error::other))
}
pub(super) fn created(location: &str) -> Response {
    let mut r = StatusCode::CREATED.into_response();
    r.headers_mut()
        .insert(header::LOCATION, header_value(location));
    r.headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from(0));
    r
}
pub(super) fn json_page(body: serde_json::Value, link: Option<String>) -> Response {
    let mut r = axum::Json(body).into_response();
    if let Some(link) = link {
        r.headers_mut().insert(header::LINK, header_value(&link));
    }
    r
}
pub(super) fn next_link(path: &str, items: &[String], n: Option<&str>) -> String {
    let last = items.last().map(String::as_str).unwrap_or_default();
    let n = n
        .map(str::to_owned)
        .unwrap_or_else(|| items.len().to_string());
    let last: String = form_urlencoded::byte_serialize(last.as_bytes()).collect();
    format!("<{path}?n={n}&last={last}>; rel=\"next\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links() {
        assert_eq!(
            next_link("/v2/a/b/tags/list", &["v1".into(), "v2".into()], Some("2")),
            "</v2/a/b/tags/list?n=2&last=v2>; rel=\"next\""
        );
    }
}
