//! Global messages: `GET /messages` (anyone), `POST /messages` and `DELETE /message/{uuid}`
//! (superusers). The rules are [`crate::service::operations::messages`]'s; creating answers
//! 201 and deleting 204, with empty bodies, as Quay does.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing;
use quayside_client as api;

use super::error::ApiError;
use super::{Auth, Body, Entry, ep, no_content};
use crate::api::AppState;
use crate::service::operations::messages;
use crate::service::scopes::Scope::SuperUser;

/// The endpoints of this area, for the route table.
pub(super) fn endpoints() -> Vec<Entry> {
    use Method as M;
    let none: &[(&str, &str, &str)] = &[];
    vec![
        ep(
            M::GET,
            "/messages",
            "getGlobalMessages",
            None,
            "globalmessages",
            "Return a super users messages.",
            none,
            routing::get(list),
        ),
        ep(
            M::POST,
            "/messages",
            "createGlobalMessage",
            Some(SuperUser),
            "globalmessages",
            "Create a message (`content`, `media_type`, `severity`).",
            none,
            routing::post(create),
        ),
        ep(
            M::DELETE,
            "/message/{uuid}",
            "deleteGlobalMessage",
            Some(SuperUser),
            "globalmessages",
            "Delete a message.",
            none,
            routing::delete(delete),
        ),
    ]
}

async fn list(State(s): State<AppState>) -> Result<Json<api::GlobalMessages>, ApiError> {
    Ok(Json(messages::list(&s.ctx).await?))
}

async fn create(
    State(s): State<AppState>,
    Auth(c): Auth,
    Body(b): Body<serde_json::Value>,
) -> Result<Response, ApiError> {
    let message = messages::parse_request(&b).map_err(ApiError::invalid_request)?;
    messages::create(&s.ctx, &c, &message).await?;
    Ok(StatusCode::CREATED.into_response())
}

async fn delete(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(uuid): Path<String>,
) -> Result<Response, ApiError> {
    messages::delete(&s.ctx, &c, &uuid).await?;
    Ok(no_content())
}
