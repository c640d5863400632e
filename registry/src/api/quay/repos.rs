//! `/api/v1/repository/...`: repositories themselves (their permissions and tags have their own
//! modules).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing;
use quayside_client as api;

use super::error::ApiError;
use super::{Auth, Body, Entry, Query, ep, no_content};
use crate::api::AppState;
use crate::service::content::repositories;
use crate::service::scopes::Scope::{RepoAdmin, RepoCreate, RepoRead, RepoWrite};

/// The endpoints of this area, for the route table.
pub(super) fn endpoints() -> Vec<Entry> {
    use Method as M;
    let none: &[(&str, &str, &str)] = &[];
    vec![
        ep(
            M::POST,
            "/repository",
            "createRepo",
            Some(RepoCreate),
            "repository",
            "Create a new repository.",
            none,
            routing::post(create),
        ),
        ep(
            M::GET,
            "/repository",
            "listRepos",
            Some(RepoRead),
            "repository",
            "Fetch the list of repositories visible to the current user.",
            &[
                (
                    "namespace",
                    "string",
                    "Filters the repositories returned to this namespace",
                ),
                (
                    "starred",
                    "boolean",
                    "Filters the repositories returned to those starred by the user",
                ),
                (
                    "public",
                    "boolean",
                    "Adds any repositories visible to the user by virtue of being public",
                ),
                (
                    "last_modified",
                    "boolean",
                    "Whether to include when the repository was last modified.",
                ),
                (
                    "popularity",
                    "boolean",
                    "Whether to include the repository's popularity metric.",
                ),
                ("next_page", "string", "The page token for the next page"),
            ],
            routing::get(list),
        ),
        ep(
            M::GET,
            "/repository/{namespace}/{repository}",
            "getRepo",
            Some(RepoRead),
            "repository",
            "Fetch the specified repository.",
            &[
                (
                    "includeStats",
                    "boolean",
                    "Whether to include action statistics",
                ),
                (
                    "includeTags",
                    "boolean",
                    "Whether to include repository tags",
                ),
            ],
            routing::get(get),
        ),
        ep(
            M::PUT,
            "/repository/{namespace}/{repository}",
            "updateRepo",
            Some(RepoWrite),
            "repository",
            "Update the description in the specified repository.",
            none,
            routing::put(update),
        ),
        ep(
            M::DELETE,
            "/repository/{namespace}/{repository}",
            "deleteRepository",
            Some(RepoAdmin),
            "repository",
            "Delete a repository.",
            none,
            routing::delete(delete),
        ),
        ep(
            M::POST,
            "/repository/{namespace}/{repository}/changevisibility",
            "changeRepoVisibility",
            Some(RepoAdmin),
            "repository",
            "Change the visibility of a repository.",
            none,
            routing::post(change_visibility),
        ),
    ]
}

pub async fn create(
    State(s): State<AppState>,
    Auth(c): Auth,
    Body(b): Body<api::CreateRepositoryRequest>,
) -> Result<Response, ApiError> {
    let created = repositories::create(&s.ctx, &c, &b).await?;
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

pub async fn list(
    State(s): State<AppState>,
    Auth(c): Auth,
    q: Query,
) -> Result<Json<api::RepositoryList>, ApiError> {
    let options = repositories::ListOptions {
        namespace: q
            .get("namespace")
            .filter(|n| !n.is_empty())
            .map(str::to_owned),
        public: q.flag("public", false)?,
        starred: q.flag("starred", false)?,
        last_modified: q.flag("last_modified", false)?,
        popularity: q.flag("popularity", false)?,
        next_page: q
            .get("next_page")
            .filter(|n| !n.is_empty())
            .map(str::to_owned),
    };
    Ok(Json(repositories::list(&s.ctx, &c, &options).await?))
}

pub async fn get(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((ns, repo)): Path<(String, String)>,
    q: Query,
) -> Result<Json<api::Repository>, ApiError> {
    let tags = q.flag("includeTags", true)?;
    let stats = q.flag("includeStats", false)?;
    Ok(Json(
        repositories::get(&s.ctx, &c, &ns, &repo, tags, stats).await?,
    ))
}

pub async fn update(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((ns, repo)): Path<(String, String)>,
    Body(b): Body<api::UpdateRepositoryRequest>,
) -> Result<Json<api::Success>, ApiError> {
    Ok(Json(
        repositories::update(&s.ctx, &c, &ns, &repo, &b.description).await?,
    ))
}

pub async fn delete(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((ns, repo)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    repositories::delete(&s.ctx, &c, &ns, &repo).await?;
    Ok(no_content())
}

pub async fn change_visibility(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((ns, repo)): Path<(String, String)>,
    Body(b): Body<api::ChangeVisibilityRequest>,
) -> Result<Json<api::Success>, ApiError> {
    Ok(Json(
        repositories::change_visibility(&s.ctx, &c, &ns, &repo, &b.visibility).await?,
    ))
}
