//! `/api/v1/repository/{namespace}/{repository}/tag/...` and `.../manifest/{manifestref}...`:
//! tag history, the time machine, expiration, manifests and their labels.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use quayside_client as api;

use super::error::ApiError;
use super::{Auth, Body, Entry, Query, ep, no_content};
use crate::api::AppState;
use crate::service::content::labels::{self, NewLabel};
use crate::service::scopes::Scope::{RepoRead, RepoWrite, UserAdmin};
use crate::service::{content::manifests, content::scanner, content::tags, tenancy::accounts};

const TAG_QUERY: &[(&str, &str, &str)] = &[
    ("onlyActiveTags", "boolean", "Filter to only active tags."),
    ("page", "integer", "Page index for the results. Default 1."),
    (
        "limit",
        "integer",
        "Limit to the number of results to return per page. Max 100.",
    ),
    (
        "specificTag",
        "string",
        "Filters the tags to the specific tag.",
    ),
];

const SECURITY_QUERY: &[(&str, &str, &str)] = &[(
    "vulnerabilities",
    "boolean",
    "Include vulnerabilities informations",
)];

const LABEL_QUERY: &[(&str, &str, &str)] = &[(
    "filter",
    "string",
    "If specified, only labels matching the given prefix will be returned",
)];

/// The endpoints of this module, for the route table.
pub(super) fn endpoints() -> Vec<Entry> {
    use Method as M;
    let none: &[(&str, &str, &str)] = &[];
    const TAG: &str = "/repository/{namespace}/{repository}/tag/{tag}";
    const MANIFEST: &str = "/repository/{namespace}/{repository}/manifest/{manifestref}";
    const LABELS: &str = "/repository/{namespace}/{repository}/manifest/{manifestref}/labels";
    const LABEL: &str =
        "/repository/{namespace}/{repository}/manifest/{manifestref}/labels/{labelid}";
    vec![
        ep(
            M::PUT,
            "/user/",
            "changeUserDetails",
            Some(UserAdmin),
            "user",
            "Change the time machine window (tag_expiration_s) of the user's namespace.",
            none,
            put(change_user),
        ),
        ep(
            M::GET,
            "/repository/{namespace}/{repository}/tag/",
            "listRepoTags",
            Some(RepoRead),
            "tag",
            "List the tag history of the repository, active and ended lifetimes, newest first.",
            TAG_QUERY,
            get(history),
        ),
        ep(
            M::PUT,
            TAG,
            "changeTag",
            Some(RepoWrite),
            "tag",
            "Change which manifest a tag points to, create a new tag, or change its expiration.",
            none,
            put(change),
        ),
        ep(
            M::DELETE,
            TAG,
            "deleteFullTag",
            Some(RepoWrite),
            "tag",
            "Delete the specified repository tag (ends its lifetime).",
            none,
            delete(remove),
        ),
        ep(
            M::POST,
            "/repository/{namespace}/{repository}/tag/{tag}/restore",
            "restoreTag",
            Some(RepoWrite),
            "tag",
            "Restores a repository tag back to a previous manifest in the repository.",
            none,
            post(restore),
        ),
        ep(
            M::GET,
            MANIFEST,
            "getRepoManifest",
            Some(RepoRead),
            "manifest",
            "Retrieve the specified manifest with its layers.",
            none,
            get(manifest),
        ),
        ep(
            M::GET,
            "/repository/{namespace}/{repository}/manifest/{manifestref}/security",
            "getRepoManifestSecurity",
            Some(RepoRead),
            "secscan",
            "Fetches the features and vulnerabilities (if any) for a repository manifest.",
            SECURITY_QUERY,
            get(security),
        ),
        ep(
            M::GET,
            LABELS,
            "listManifestLabels",
            Some(RepoRead),
            "manifest",
            "List the labels of the manifest.",
            LABEL_QUERY,
            get(list_labels),
        ),
        ep(
            M::POST,
            LABELS,
            "addManifestLabel",
            Some(RepoWrite),
            "manifest",
            "Adds a new label into the tag manifest.",
            none,
            post(add_label),
        ),
        ep(
            M::GET,
            LABEL,
            "getManifestLabel",
            Some(RepoRead),
            "manifest",
            "Retrieves the label with the specific ID under the manifest.",
            none,
            get(get_label),
        ),
        ep(
            M::DELETE,
            LABEL,
            "deleteManifestLabel",
            Some(RepoWrite),
            "manifest",
            "Deletes an existing label from a manifest.",
            none,
            delete(delete_label),
        ),
    ]
}

/// `PUT /api/v1/user/`: only `tag_expiration_s` can be changed here; other user details are
/// refused rather than ignored.
pub async fn change_user(
    State(s): State<AppState>,
    Auth(c): Auth,
    Body(b): Body<serde_json::Map<String, serde_json::Value>>,
) -> Result<Json<quayside_client::User>, ApiError> {
    if let Some(other) = b.keys().find(|k| *k != "tag_expiration_s") {
        return Err(ApiError::invalid_request(format!(
            "{other}: cannot be changed through this endpoint in this version (only tag_expiration_s)"
        )));
    }
    if let Some(value) = b.get("tag_expiration_s") {
        let seconds = value.as_i64().ok_or_else(|| {
            ApiError::invalid_request("tag_expiration_s: must be an integer number of seconds")
        })?;
        accounts::set_user_window(&s.ctx, &c, seconds).await?;
    }
    Ok(Json(accounts::current_user(&s.ctx, &c).await?))
}

pub async fn history(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((ns, repo)): Path<(String, String)>,
    q: Query,
) -> Result<Json<api::TagHistory>, ApiError> {
    let query = api::TagHistoryQuery {
        only_active_tags: q.flag("onlyActiveTags", false)?,
        page: q.int("page")?,
        limit: q.int("limit")?,
        specific_tag: q.get("specificTag").map(str::to_owned),
    };
    Ok(Json(tags::history(&s.ctx, &c, &ns, &repo, &query).await?))
}

pub async fn change(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((ns, repo, tag)): Path<(String, String, String)>,
    Body(b): Body<api::ChangeTagRequest>,
) -> Result<Response, ApiError> {
    tags::change(&s.ctx, &c, &ns, &repo, &tag, &b).await?;
    Ok((StatusCode::CREATED, Json("Updated")).into_response())
}

pub async fn remove(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((ns, repo, tag)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    tags::delete(&s.ctx, &c, &ns, &repo, &tag).await?;
    Ok(no_content())
}

pub async fn restore(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((ns, repo, tag)): Path<(String, String, String)>,
    Body(b): Body<api::RestoreTagRequest>,
) -> Result<Json<serde_json::Value>, ApiError> {
    tags::restore(&s.ctx, &c, &ns, &repo, &tag, b.manifest_digest.as_deref()).await?;
    Ok(Json(serde_json::json!({})))
}

pub async fn manifest(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((ns, repo, reference)): Path<(String, String, String)>,
) -> Result<Json<api::Manifest>, ApiError> {
    Ok(Json(
        manifests::describe(&s.ctx, &c, &ns, &repo, &reference).await?,
    ))
}

/// `GET .../manifest/{manifestref}/security`: 404 unless `FEATURE_SECURITY_SCANNER` (as Quay).
pub async fn security(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((ns, repo, reference)): Path<(String, String, String)>,
    q: Query,
) -> Result<Json<serde_json::Value>, ApiError> {
    if !s.ctx.config.scanner.enabled {
        return Err(ApiError::not_found());
    }
    let vulnerabilities = q.flag("vulnerabilities", false)?;
    Ok(Json(
        scanner::security(&s.ctx, &c, &ns, &repo, &reference, vulnerabilities).await?,
    ))
}

pub async fn list_labels(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((ns, repo, reference)): Path<(String, String, String)>,
    q: Query,
) -> Result<Json<api::Labels>, ApiError> {
    let filter = q.get("filter").filter(|f| !f.is_empty());
    Ok(Json(
        labels::list(&s.ctx, &c, &ns, &repo, &reference, filter).await?,
    ))
}

pub async fn get_label(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((ns, repo, reference, id)): Path<(String, String, String, String)>,
) -> Result<Json<api::Label>, ApiError> {
    Ok(Json(
        labels::get(&s.ctx, &c, &ns, &repo, &reference, &id).await?,
    ))
}

pub async fn add_label(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((ns, repo, reference)): Path<(String, String, String)>,
    Body(b): Body<api::AddLabelRequest>,
) -> Result<Response, ApiError> {
    let new = NewLabel {
        key: &b.key,
        value: &b.value,
        media_type: b.media_type.as_deref(),
    };
    let label = labels::add(&s.ctx, &c, &ns, &repo, &reference, new).await?;
    let location = format!(
        "/api/v1/repository/{ns}/{repo}/manifest/{reference}/labels/{}",
        label.id
    );
    let mut response = (StatusCode::CREATED, Json(api::AddedLabel { label })).into_response();
    if let Ok(value) = location.parse() {
        response.headers_mut().insert(header::LOCATION, value);
    }
    Ok(response)
}

pub async fn delete_label(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((ns, repo, reference, id)): Path<(String, String, String, String)>,
) -> Result<Response, ApiError> {
    labels::delete(&s.ctx, &c, &ns, &repo, &reference, &id).await?;
    Ok(no_content())
}
