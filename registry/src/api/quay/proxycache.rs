//! `/api/v1/organization/{orgname}/proxycache` and `.../validateproxycache`: an organization's
//! proxy-cache configuration (the pull-through itself is in `/v2`, through
//! `service::content::proxy_cache`). Answers are Quay's: `"Created"` 201, `"Deleted"` 201,
//! `"Valid"` or `"Anonymous"` 202, and an all-empty-strings body for an organization without one.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing;
use quayside_client as api;

use super::error::ApiError;
use super::{Auth, Body, Entry, created, ep};
use crate::api::AppState;
use crate::service::content::proxy_cache::{self, Validation};
use crate::service::scopes::Scope::OrgAdmin;

/// The endpoints of this area, for the route table.
pub(super) fn endpoints() -> Vec<Entry> {
    use Method as M;
    let none: &[(&str, &str, &str)] = &[];
    vec![
        ep(
            M::GET,
            "/organization/{orgname}/proxycache",
            "getProxyCacheConfig",
            Some(OrgAdmin),
            "organization",
            "Retrieves the proxy cache configuration of the organization.",
            none,
            routing::get(get_config),
        ),
        ep(
            M::POST,
            "/organization/{orgname}/proxycache",
            "createProxyCacheConfig",
            Some(OrgAdmin),
            "organization",
            "Creates proxy cache configuration for the organization.",
            none,
            routing::post(create_config),
        ),
        ep(
            M::DELETE,
            "/organization/{orgname}/proxycache",
            "deleteProxyCacheConfig",
            Some(OrgAdmin),
            "organization",
            "Delete proxy cache configuration for the organization.",
            none,
            routing::delete(delete_config),
        ),
        ep(
            M::POST,
            "/organization/{orgname}/validateproxycache",
            "validateProxyCacheConfig",
            Some(OrgAdmin),
            "organization",
            "Validates the upstream registry and credentials of a proxy cache configuration.",
            none,
            routing::post(validate),
        ),
    ]
}

pub async fn get_config(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(org): Path<String>,
) -> Result<Json<api::ProxyCacheConfig>, ApiError> {
    Ok(Json(proxy_cache::get_config(&s.ctx, &c, &org).await?))
}

pub async fn create_config(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(org): Path<String>,
    Body(b): Body<api::ProxyCacheRequest>,
) -> Result<Response, ApiError> {
    proxy_cache::create_config(&s.ctx, &c, &org, &b).await?;
    Ok(created())
}

pub async fn delete_config(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(org): Path<String>,
) -> Result<Response, ApiError> {
    proxy_cache::delete_config(&s.ctx, &c, &org).await?;
    Ok((StatusCode::CREATED, Json("Deleted")).into_response())
}

pub async fn validate(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(org): Path<String>,
    Body(b): Body<api::ProxyCacheRequest>,
) -> Result<Response, ApiError> {
    let answer = match proxy_cache::validate(&s.ctx, &c, &org, &b).await? {
        Validation::Valid => "Valid",
        Validation::Anonymous => "Anonymous",
    };
    Ok((StatusCode::ACCEPTED, Json(answer)).into_response())
}
