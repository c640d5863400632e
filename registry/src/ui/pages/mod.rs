//! One module per area of the UI; each declares its routes beside its handlers.

mod admin;
mod auth;
mod logs;
mod orgs;
mod repo;
mod repos;

use axum::Router;

use crate::api::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .merge(auth::router())
        .merge(repos::router())
        .merge(repo::router())
        .merge(orgs::router())
        .merge(logs::router())
        .merge(admin::router())
}
