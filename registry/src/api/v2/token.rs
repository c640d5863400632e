//! The Docker token server at `/v2/auth`: authenticates the caller (or not), decides for every
//! requested scope which actions `service::access::authz` allows, and returns a signed
//! token carrying exactly those in its `access` claim.
//!
//! Tokens are issued only for this registry's own service name (`Ctx::registry_service`): a
//! request naming another `service` is refused with 400, so no token with a foreign audience is
//! ever minted (and `/v2` refuses any that is presented).
//!
//! Scopes follow the Docker token specification: `scope` may repeat and may hold several
//! space-separated scopes, each `repository:<name>:<actions>` (an optional `(class)` after the
//! type is ignored) or `registry:catalog:*`.

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::error::V2Error;
use crate::api::{AppState, PeerAddr, credentials};
use crate::oci::RepoName;
use crate::service::Access;
use crate::service::access::auth::{self, Credentials};
use crate::service::access::jwt::{IssueError, Subject, TOKEN_LIFETIME_S};
use crate::service::operations::audit::{Caller, Event};
use crate::service::{Ctx, Principal, access::authz};

/// One parsed scope.
#[derive(Debug, PartialEq, Eq)]
pub struct Scope {
    pub kind: String,
    pub name: String,
    pub actions: Vec<String>,
}

pub fn parse_scope(s: &str) -> Option<Scope> {
    let (kind, rest) = s.split_once(':')?;
    let (name, actions) = rest.rsplit_once(':')?;
    let kind = kind.split('(').next().unwrap_or(kind);
    if kind.is_empty() || name.is_empty() {
        return None;
    }
    let actions = actions
        .split(',')
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(str::to_owned)
        .collect();
    Some(Scope {
        kind: kind.to_owned(),
        name: name.to_owned(),
        actions,
    })
}

fn unauthorized(message: &str) -> Response {
    V2Error::new(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", message).into_response()
}

/// The namespace a login is recorded in: the user's own, or the robot's owner.
fn login_namespace(principal: &Principal, creds: &Credentials) -> Option<String> {
    match (principal.robot(), principal.user(), creds) {
        (Some(r), _, _) => Some(r.owner.clone()),
        (None, Some(u), _) => Some(u.name.clone()),
        (None, None, Credentials::Basic { username, .. }) => Some(
            username
                .split_once('+')
                .map_or(username.as_str(), |(owner, _)| owner)
                .to_owned(),
        ),
        _ => None,
    }
}

async fn principal_for(
    ctx: &Ctx,
    creds: Option<Credentials>,
    ip: Option<std::net::IpAddr>,
) -> Result<Principal, Response> {
    match creds {
        None => Ok(Principal::Anonymous),
        Some(creds) => match auth::authenticate(ctx, &creds, ip).await {
            Ok(Principal::Token(_)) => Err(unauthorized(
                "present a username and password or an access token",
            )),
            Ok(p) => {
                let kind = match (&p, &creds) {
                    (Principal::Robot(_), _) => "robot",
                    (Principal::OAuth(_), _) => "oauth",
                    (_, Credentials::Basic { username, .. })
                        if username == auth::APP_TOKEN_USERNAME =>
                    {
                        "app_specific_token"
                    }
                    _ => "user",
                };
                if let Some(ns) = login_namespace(&p, &creds) {
                    ctx.audit.record(
                        &Caller::new(p.clone(), ip),
                        Event::namespace(
                            "login_success",
                            &ns,
                            json!({ "type": "v2auth", "kind": kind }),
                        ),
                        ctx.now_ms(),
                    );
                }
                Ok(p)
            }
            Err(e @ auth::AuthError::Overloaded(_)) => Err(V2Error::new(
                StatusCode::TOO_MANY_REQUESTS,
                "TOOMANYREQUESTS",
                e.to_string(),
            )
            .into_response()),
            Err(auth::AuthError::Internal(e)) => {
                tracing::error!(error = %e, "authentication failed internally");
                Err(V2Error::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "UNKNOWN",
                    "internal server error",
                )
                .into_response())
            }
            Err(e) => {
                if let Some(ns) = login_namespace(&Principal::Anonymous, &creds) {
                    let username = match &creds {
                        Credentials::Basic { username, .. } => Some(username.clone()),
                        Credentials::Bearer(_) => None,
                    };
                    ctx.audit.record(
                        &Caller::new(Principal::Anonymous, ip),
                        Event::namespace("login_failure", &ns, json!({ "type": "v2auth", "username": username, "message": e.to_string() })),
                        ctx.now_ms(),
                    );
                }
                Err(unauthorized(&e.to_string()))
            }
        },
    }
}

async fn grant(
    ctx: &Ctx,
    principal: &Principal,
    scopes: &[String],
) -> Result<Vec<Access>, Response> {
    let mut access: Vec<Access> = Vec::new();
    for scope in scopes
        .iter()
        .flat_map(|s| s.split(' '))
        .filter_map(parse_scope)
    {
        let actions = match scope.kind.as_str() {
            "repository" => match RepoName::parse(&scope.name) {
                Ok(repo) => authz::granted_repo_actions(ctx, principal, &repo, &scope.actions)
                    .await
                    .map_err(|e| {
                        tracing::error!(error = %e, "authorization failed internally");
                        V2Error::new(
                            StatusCode::INTERNAL_SERVER_ERROR,
                            "UNKNOWN",
                            "internal server error",
                        )
                        .into_response()
                    })?,
                Err(_) => Vec::new(),
            },
            "registry" if scope.name == "catalog" => scope
                .actions
                .iter()
                .filter(|a| *a == "*")
                .cloned()
                .collect(),
            _ => Vec::new(),
        };
        match access
            .iter_mut()
            .find(|a| a.kind == scope.kind && a.name == scope.name)
        {
            Some(existing) => existing.actions.extend(
                actions
                    .into_iter()
                    .filter(|a| !existing.actions.contains(a))
                    .collect::<Vec<_>>(),
            ),
            None => access.push(Access {
                kind: scope.kind,
                name: scope.name,
                actions,
            }),
        }
    }
    Ok(access)
}

async fn token_response(
    ctx: &Ctx,
    principal: &Principal,
    access: Vec<Access>,
    service: &str,
    refresh: bool,
) -> Response {
    let now_s = ctx.now_ms() / 1000;
    let subject = match (principal.user(), principal.robot()) {
        (Some(u), _) => Subject::User(u),
        (None, Some(r)) => Subject::Robot(r),
        (None, None) => Subject::Anonymous,
    };
    let token = match ctx
        .jwt
        .issue(&ctx.db, subject, access, service, now_s)
        .await
    {
        Ok(token) => token,
        Err(e @ IssueError::NoSigningKey) => {
            tracing::error!(error = %e, "cannot issue a registry token");
            return V2Error::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "UNAVAILABLE",
                e.to_string(),
            )
            .into_response();
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot issue a registry token");
            return V2Error::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "UNKNOWN",
                "internal server error",
            )
            .into_response();
        }
    };
    let issued_at = chrono::DateTime::from_timestamp(now_s, 0)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let mut body = json!({ "token": token, "access_token": token, "expires_in": TOKEN_LIFETIME_S, "issued_at": issued_at });
    if refresh {
        body["scope"] = json!("");
    }
    axum::Json(body).into_response()
}

/// The audience of the token to issue: this registry's service name, which a client may repeat
/// in `service` (from the challenge) or leave out. A token for any other service is not issued:
/// `Err` carries the requested name.
fn service_name<'a>(ctx: &Ctx, requested: Option<&'a str>) -> Result<String, &'a str> {
    let own = ctx.registry_service();
    match requested {
        Some(service) if service != own => Err(service),
        _ => Ok(own),
    }
}

fn invalid_service(ctx: &Ctx, requested: &str) -> String {
    let shown: String = requested.chars().take(256).collect();
    format!(
        "invalid service {shown:?}: this registry issues tokens only for {:?}",
        ctx.registry_service()
    )
}

/// `GET /v2/auth?service=...&scope=...`.
pub async fn get_token(State(state): State<AppState>, request: Request) -> Response {
    let ctx = &*state.ctx;
    let ip = request.extensions().get::<PeerAddr>().map(|p| p.0.ip());
    let params: Vec<(String, String)> =
        form_urlencoded::parse(request.uri().query().unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    let requested_service = params
        .iter()
        .find(|(k, _)| k == "service")
        .map(|(_, v)| v.as_str());
    let service = match service_name(ctx, requested_service) {
        Ok(s) => s,
        Err(other) => {
            return V2Error::new(
                StatusCode::BAD_REQUEST,
                "UNSUPPORTED",
                invalid_service(ctx, other),
            )
            .into_response();
        }
    };
    let creds = match credentials(request.headers()) {
        Ok(c) => c,
        Err(_) => return unauthorized("malformed Authorization header"),
    };
    let principal = match principal_for(ctx, creds, ip).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let scopes: Vec<String> = params
        .iter()
        .filter(|(k, _)| k == "scope")
        .map(|(_, v)| v.clone())
        .collect();
    let access = match grant(ctx, &principal, &scopes).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    token_response(ctx, &principal, access, &service, false).await
}

/// `POST /v2/auth` (OAuth2 password grant, as Docker clients may use).
pub async fn post_token(State(state): State<AppState>, request: Request) -> Response {
    let ctx = &*state.ctx;
    let ip = request.extensions().get::<PeerAddr>().map(|p| p.0.ip());
    let Ok(body) = axum::body::to_bytes(request.into_body(), 64 * 1024).await else {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({ "error": "invalid_request" })),
        )
            .into_response();
    };
    let form: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
    let field = |k: &str| {
        form.iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    };
    if field("grant_type") != Some("password") {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({ "error": "unsupported_grant_type" })),
        )
            .into_response();
    }
    let service = match service_name(ctx, field("service")) {
        Ok(s) => s,
        Err(other) => {
            return (
                StatusCode::BAD_REQUEST,
                axum::Json(json!({
                    "error": "invalid_request",
                    "error_description": invalid_service(ctx, other),
                })),
            )
                .into_response();
        }
    };
    let (Some(username), Some(password)) = (field("username"), field("password")) else {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({ "error": "invalid_request" })),
        )
            .into_response();
    };
    let creds = Credentials::Basic {
        username: username.to_owned(),
        password: password.to_owned(),
    };
    let principal = match principal_for(ctx, Some(creds), ip).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let scopes: Vec<String> = field("scope")
        .map(|s| vec![s.to_owned()])
        .unwrap_or_default();
    let access = match grant(ctx, &principal, &scopes).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    token_response(ctx, &principal, access, &service, true).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes() {
        assert_eq!(
            parse_scope("repository:alice/app:pull,push"),
            Some(Scope {
                kind: "repository".into(),
                name: "alice/app".into(),
                actions: vec!["pull".into(), "push".into()]
            })
        );
        assert_eq!(
            parse_scope("repository(plugin):a/b/c:pull"),
            Some(Scope {
                kind: "repository".into(),
                name: "a/b/c".into(),
                actions: vec!["pull".into()]
            })
        );
        assert_eq!(
            parse_scope("registry:catalog:*"),
            Some(Scope {
                kind: "registry".into(),
                name: "catalog".into(),
                actions: vec!["*".into()]
            })
        );
        assert_eq!(parse_scope("nonsense"), None);
        assert_eq!(parse_scope("repository::pull"), None);
    }
}
