//! `/api/v1/entities/{prefix}`, `/api/v1/find/repositories` and `/api/v1/find/all` (see
//! `service::tenancy::search`).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::Method;
use axum::routing;
use quayside_client as api;

use super::error::ApiError;
use super::{Auth, Entry, Query, ep};
use crate::api::AppState;
use crate::service::scopes::Scope::RepoRead;
use crate::service::tenancy::search::{self, EntityQuery};

/// The endpoints of this area, for the route table.
pub(super) fn endpoints() -> Vec<Entry> {
    use Method as M;
    vec![
        ep(
            M::GET,
            "/entities/{prefix}",
            "getMatchingEntities",
            None,
            "search",
            "Get a list of entities that match the specified prefix.",
            &[
                (
                    "namespace",
                    "string",
                    "Namespace to use when querying for org entities.",
                ),
                ("includeTeams", "boolean", "Whether to include team names."),
                ("includeOrgs", "boolean", "Whether to include orgs names."),
            ],
            routing::get(entities),
        ),
        ep(
            M::GET,
            "/find/all",
            "conductSearch",
            Some(RepoRead),
            "search",
            "Get a list of entities and resources that match the specified query.",
            &[("query", "string", "The search query.")],
            routing::get(all),
        ),
        ep(
            M::GET,
            "/find/repositories",
            "conductRepoSearch",
            None,
            "search",
            "Get a list of apps and repositories that match the specified query.",
            &[
                ("query", "string", "The search query."),
                ("page", "integer", "The page."),
                (
                    "includeUsage",
                    "boolean",
                    "Whether to include usage metadata",
                ),
            ],
            routing::get(repositories),
        ),
    ]
}

pub async fn entities(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(prefix): Path<String>,
    q: Query,
) -> Result<Json<api::Entities>, ApiError> {
    let query = EntityQuery {
        namespace: q.get("namespace").unwrap_or_default().to_owned(),
        include_teams: q.flag("includeTeams", false)?,
        include_orgs: q.flag("includeOrgs", false)?,
    };
    Ok(Json(
        search::entities(&s.ctx, &c.principal, &prefix, &query).await?,
    ))
}

pub async fn all(
    State(s): State<AppState>,
    Auth(c): Auth,
    q: Query,
) -> Result<Json<api::SearchResults>, ApiError> {
    let query = q.get("query").unwrap_or_default();
    Ok(Json(search::find_all(&s.ctx, &c.principal, query).await?))
}

pub async fn repositories(
    State(s): State<AppState>,
    Auth(c): Auth,
    q: Query,
) -> Result<Json<api::FoundRepositories>, ApiError> {
    let query = q.get("query").unwrap_or_default();
    let page = q.int("page")?.unwrap_or(1);
    let usage = q.flag("includeUsage", false)?;
    Ok(Json(
        search::repositories(&s.ctx, &c.principal, query, page, usage).await?,
    ))
}
