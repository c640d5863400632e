//! `/api/v1/superuser/keys...` and `/api/v1/superuser/approvedkeys/{kid}`: service keys (see
//! `service::operations::service_keys`; the registry's own signing keys are those of service
//! `quay`).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing;
use quayside_client as api;
use serde_json::{Map, Value};

use super::error::ApiError;
use super::{Auth, Body, Entry, OptionalBody, ep, no_content};
use crate::api::AppState;
use crate::service::operations::service_keys;
use crate::service::scopes::Scope::SuperUser;

/// The endpoints of this area, for the route table.
pub(super) fn endpoints() -> Vec<Entry> {
    use Method as M;
    let none: &[(&str, &str, &str)] = &[];
    vec![
        ep(
            M::GET,
            "/superuser/keys",
            "listServiceKeys",
            Some(SuperUser),
            "superuser",
            "List all service keys.",
            none,
            routing::get(list),
        ),
        ep(
            M::POST,
            "/superuser/keys",
            "createServiceKey",
            Some(SuperUser),
            "superuser",
            "Creates a new service key.",
            none,
            routing::post(create),
        ),
        ep(
            M::GET,
            "/superuser/keys/{kid}",
            "getServiceKey",
            Some(SuperUser),
            "superuser",
            "Returns information about the specified service key.",
            none,
            routing::get(get),
        ),
        ep(
            M::PUT,
            "/superuser/keys/{kid}",
            "updateServiceKey",
            Some(SuperUser),
            "superuser",
            "Updates the expiration, name or metadata of a service key.",
            none,
            routing::put(update),
        ),
        ep(
            M::DELETE,
            "/superuser/keys/{kid}",
            "deleteServiceKey",
            Some(SuperUser),
            "superuser",
            "Deletes a service key.",
            none,
            routing::delete(delete),
        ),
        ep(
            M::POST,
            "/superuser/approvedkeys/{kid}",
            "approveServiceKey",
            Some(SuperUser),
            "superuser",
            "Approves a service key.",
            none,
            routing::post(approve),
        ),
    ]
}

pub async fn list(
    State(s): State<AppState>,
    Auth(c): Auth,
) -> Result<Json<api::ServiceKeys>, ApiError> {
    Ok(Json(service_keys::list(&s.ctx, &c).await?))
}

pub async fn create(
    State(s): State<AppState>,
    Auth(c): Auth,
    Body(b): Body<Map<String, Value>>,
) -> Result<Json<api::CreatedServiceKey>, ApiError> {
    Ok(Json(service_keys::create(&s.ctx, &c, &b).await?))
}

pub async fn get(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(kid): Path<String>,
) -> Result<Json<api::ServiceKey>, ApiError> {
    Ok(Json(service_keys::get(&s.ctx, &c, &kid).await?))
}

pub async fn update(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(kid): Path<String>,
    Body(b): Body<Map<String, Value>>,
) -> Result<Json<api::ServiceKey>, ApiError> {
    Ok(Json(service_keys::update(&s.ctx, &c, &kid, &b).await?))
}

pub async fn delete(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(kid): Path<String>,
) -> Result<Response, ApiError> {
    service_keys::delete(&s.ctx, &c, &kid).await?;
    Ok(no_content())
}

/// Quay answers an empty 201.
pub async fn approve(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(kid): Path<String>,
    OptionalBody(b): OptionalBody<Map<String, Value>>,
) -> Result<Response, ApiError> {
    service_keys::approve(&s.ctx, &c, &kid, &b.unwrap_or_default()).await?;
    Ok((StatusCode::CREATED, "").into_response())
}
