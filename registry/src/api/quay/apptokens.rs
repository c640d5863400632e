//! `/api/v1/user/apptoken...` and `/api/v1/superuser/apptokens`: application-specific tokens
//! (see `service::tenancy::app_tokens`).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::Method;
use axum::response::Response;
use axum::routing;
use quayside_client as api;
use serde_json::{Map, Value};

use super::error::ApiError;
use super::{Auth, Body, Entry, Query, ep, no_content};
use crate::api::AppState;
use crate::service::scopes::Scope::{SuperUser, UserAdmin};
use crate::service::tenancy::app_tokens;

const EXPIRING: &[(&str, &str, &str)] = &[(
    "expiring",
    "boolean",
    "If true, only returns those tokens expiring soon",
)];

/// The endpoints of this area, for the route table.
pub(super) fn endpoints() -> Vec<Entry> {
    use Method as M;
    let none: &[(&str, &str, &str)] = &[];
    vec![
        ep(
            M::GET,
            "/user/apptoken",
            "listAppTokens",
            Some(UserAdmin),
            "appspecifictokens",
            "Lists the app specific tokens for the user.",
            EXPIRING,
            routing::get(list),
        ),
        ep(
            M::POST,
            "/user/apptoken",
            "createAppToken",
            Some(UserAdmin),
            "appspecifictokens",
            "Create a new app specific token for user.",
            none,
            routing::post(create),
        ),
        ep(
            M::GET,
            "/user/apptoken/{token_uuid}",
            "getAppToken",
            Some(UserAdmin),
            "appspecifictokens",
            "Returns a specific app token for the user.",
            none,
            routing::get(get),
        ),
        ep(
            M::DELETE,
            "/user/apptoken/{token_uuid}",
            "revokeAppToken",
            Some(UserAdmin),
            "appspecifictokens",
            "Revokes a specific app token for the user.",
            none,
            routing::delete(revoke),
        ),
        ep(
            M::GET,
            "/superuser/apptokens",
            "listAllAppTokens",
            Some(SuperUser),
            "superuser",
            "Returns a list of all app specific tokens in the system.",
            EXPIRING,
            routing::get(list_all),
        ),
    ]
}

/// `expiring` as Quay parses it: absent is `null`, otherwise a truthy boolean.
fn expiring(q: &Query) -> Result<Option<bool>, ApiError> {
    match q.get("expiring") {
        None => Ok(None),
        Some(_) => q.flag("expiring", false).map(Some),
    }
}

pub async fn list(
    State(s): State<AppState>,
    Auth(c): Auth,
    q: Query,
) -> Result<Json<api::AppTokens>, ApiError> {
    Ok(Json(app_tokens::list(&s.ctx, &c, expiring(&q)?).await?))
}

pub async fn list_all(
    State(s): State<AppState>,
    Auth(c): Auth,
    q: Query,
) -> Result<Json<api::AppTokens>, ApiError> {
    Ok(Json(app_tokens::list_all(&s.ctx, &c, expiring(&q)?).await?))
}

pub async fn create(
    State(s): State<AppState>,
    Auth(c): Auth,
    Body(b): Body<Map<String, Value>>,
) -> Result<Json<api::AppTokenAnswer>, ApiError> {
    Ok(Json(app_tokens::create(&s.ctx, &c, &b).await?))
}

pub async fn get(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(uuid): Path<String>,
) -> Result<Json<api::AppTokenAnswer>, ApiError> {
    Ok(Json(app_tokens::get(&s.ctx, &c, &uuid).await?))
}

pub async fn revoke(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(uuid): Path<String>,
) -> Result<Response, ApiError> {
    app_tokens::revoke(&s.ctx, &c, &uuid).await?;
    Ok(no_content())
}
