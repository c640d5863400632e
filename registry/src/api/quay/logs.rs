//! Usage logs: `GET .../logs`, `GET .../aggregatelogs` and `POST .../exportlogs` of the user,
//! an organization and a repository, `GET /superuser/logs` and `/superuser/aggregatelogs`, and
//! the download link of an export (`GET /exportedlogs/{token}`, outside `/api/v1`, as Quay
//! serves it). The rules are [`crate::service::operations::logs`]'s.

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing;
use quayside_client as api;

use super::error::ApiError;
use super::{Auth, Entry, OptionalBody, Query, ep};
use crate::api::{AppState, ConnScheme, public_origin};
use crate::service::operations::logs::{self, Of};
use crate::service::scopes::Scope::{OrgAdmin, RepoAdmin, SuperUser, UserAdmin};

const RANGE: &[(&str, &str, &str)] = &[
    (
        "starttime",
        "string",
        "Earliest time for logs. Format: \"%m/%d/%Y\" in UTC.",
    ),
    (
        "endtime",
        "string",
        "Latest time for logs. Format: \"%m/%d/%Y\" in UTC.",
    ),
    ("performer", "string", "Username for which to filter logs."),
];
const PAGED: &[(&str, &str, &str)] = &[
    (
        "starttime",
        "string",
        "Earliest time for logs. Format: \"%m/%d/%Y\" in UTC.",
    ),
    (
        "endtime",
        "string",
        "Latest time for logs. Format: \"%m/%d/%Y\" in UTC.",
    ),
    ("performer", "string", "Username for which to filter logs."),
    ("next_page", "string", "The page token for the next page"),
];

/// The endpoints of this area, for the route table.
pub(super) fn endpoints() -> Vec<Entry> {
    use Method as M;
    let export: &[(&str, &str, &str)] = &RANGE[..2];
    vec![
        ep(
            M::GET,
            "/user/logs",
            "listUserLogs",
            Some(UserAdmin),
            "user",
            "List the logs for the current user.",
            PAGED,
            routing::get(user_logs),
        ),
        ep(
            M::GET,
            "/user/aggregatelogs",
            "getAggregateUserLogs",
            Some(UserAdmin),
            "user",
            "Returns the aggregated logs for the current user.",
            RANGE,
            routing::get(user_aggregate),
        ),
        ep(
            M::POST,
            "/user/exportlogs",
            "exportUserLogs",
            Some(UserAdmin),
            "user",
            "Queues an export of the logs for the current user.",
            export,
            routing::post(user_export),
        ),
        ep(
            M::GET,
            "/organization/{orgname}/logs",
            "listOrgLogs",
            Some(OrgAdmin),
            "organization",
            "List the logs for the specified organization.",
            PAGED,
            routing::get(org_logs),
        ),
        ep(
            M::GET,
            "/organization/{orgname}/aggregatelogs",
            "getAggregateOrgLogs",
            Some(OrgAdmin),
            "organization",
            "Gets the aggregated logs for the specified organization.",
            RANGE,
            routing::get(org_aggregate),
        ),
        ep(
            M::POST,
            "/organization/{orgname}/exportlogs",
            "exportOrgLogs",
            Some(OrgAdmin),
            "organization",
            "Exports the logs for the specified organization.",
            export,
            routing::post(org_export),
        ),
        ep(
            M::GET,
            "/repository/{namespace}/{repository}/logs",
            "listRepoLogs",
            Some(RepoAdmin),
            "repository",
            "List the logs for the specified repository.",
            PAGED,
            routing::get(repo_logs),
        ),
        ep(
            M::GET,
            "/repository/{namespace}/{repository}/aggregatelogs",
            "getAggregateRepoLogs",
            Some(RepoAdmin),
            "repository",
            "Returns the aggregated logs for the specified repository.",
            RANGE,
            routing::get(repo_aggregate),
        ),
        ep(
            M::POST,
            "/repository/{namespace}/{repository}/exportlogs",
            "exportRepoLogs",
            Some(RepoAdmin),
            "repository",
            "Queues an export of the logs for the specified repository.",
            export,
            routing::post(repo_export),
        ),
        ep(
            M::GET,
            "/superuser/logs",
            "listAllLogs",
            Some(SuperUser),
            "superuser",
            "List the usage logs for the current system.",
            PAGED,
            routing::get(all_logs),
        ),
        ep(
            M::GET,
            "/superuser/aggregatelogs",
            "listAllAggregateLogs",
            Some(SuperUser),
            "superuser",
            "Returns the aggregated logs for the current system.",
            RANGE,
            routing::get(all_aggregate),
        ),
    ]
}

/// The route of export download links, outside `/api/v1`.
pub fn download_router() -> Router<AppState> {
    Router::new().route("/exportedlogs/{token}", routing::get(download))
}

fn query(q: &Query) -> logs::Query {
    let get = |k: &str| q.get(k).map(str::to_owned);
    logs::Query {
        starttime: get("starttime"),
        endtime: get("endtime"),
        performer: get("performer"),
        next_page: get("next_page"),
    }
}

async fn page(
    s: &AppState,
    c: &Auth,
    of: Of<'_>,
    q: &Query,
) -> Result<Json<api::LogPage>, ApiError> {
    Ok(Json(logs::list(&s.ctx, &c.0, of, &query(q)).await?))
}

async fn counts(
    s: &AppState,
    c: &Auth,
    of: Of<'_>,
    q: &Query,
) -> Result<Json<api::AggregatedLogs>, ApiError> {
    Ok(Json(logs::aggregate(&s.ctx, &c.0, of, &query(q)).await?))
}

async fn export(
    s: &AppState,
    c: &Auth,
    of: Of<'_>,
    q: &Query,
    headers: &HeaderMap,
    scheme: Option<&ConnScheme>,
    body: Option<api::ExportLogsRequest>,
) -> Result<Json<api::ExportLogsStarted>, ApiError> {
    let (scheme, host) = public_origin(&s.ctx, headers, scheme);
    let origin = format!("{scheme}://{host}");
    let body = body.unwrap_or_default();
    Ok(Json(
        logs::request_export(&s.ctx, &c.0, of, &body, &query(q), &origin).await?,
    ))
}

async fn user_logs(
    State(s): State<AppState>,
    c: Auth,
    q: Query,
) -> Result<Json<api::LogPage>, ApiError> {
    page(&s, &c, Of::User, &q).await
}

async fn user_aggregate(
    State(s): State<AppState>,
    c: Auth,
    q: Query,
) -> Result<Json<api::AggregatedLogs>, ApiError> {
    counts(&s, &c, Of::User, &q).await
}

async fn user_export(
    State(s): State<AppState>,
    c: Auth,
    q: Query,
    headers: HeaderMap,
    scheme: Option<axum::extract::Extension<ConnScheme>>,
    OptionalBody(b): OptionalBody<api::ExportLogsRequest>,
) -> Result<Json<api::ExportLogsStarted>, ApiError> {
    export(&s, &c, Of::User, &q, &headers, scheme.as_deref(), b).await
}

async fn org_logs(
    State(s): State<AppState>,
    c: Auth,
    Path(org): Path<String>,
    q: Query,
) -> Result<Json<api::LogPage>, ApiError> {
    page(&s, &c, Of::Organization(&org), &q).await
}

async fn org_aggregate(
    State(s): State<AppState>,
    c: Auth,
    Path(org): Path<String>,
    q: Query,
) -> Result<Json<api::AggregatedLogs>, ApiError> {
    counts(&s, &c, Of::Organization(&org), &q).await
}

async fn org_export(
    State(s): State<AppState>,
    c: Auth,
    Path(org): Path<String>,
    q: Query,
    headers: HeaderMap,
    scheme: Option<axum::extract::Extension<ConnScheme>>,
    OptionalBody(b): OptionalBody<api::ExportLogsRequest>,
) -> Result<Json<api::ExportLogsStarted>, ApiError> {
    export(
        &s,
        &c,
        Of::Organization(&org),
        &q,
        &headers,
        scheme.as_deref(),
        b,
    )
    .await
}

async fn repo_logs(
    State(s): State<AppState>,
    c: Auth,
    Path((ns, repo)): Path<(String, String)>,
    q: Query,
) -> Result<Json<api::LogPage>, ApiError> {
    page(&s, &c, Of::Repository(&ns, &repo), &q).await
}

async fn repo_aggregate(
    State(s): State<AppState>,
    c: Auth,
    Path((ns, repo)): Path<(String, String)>,
    q: Query,
) -> Result<Json<api::AggregatedLogs>, ApiError> {
    counts(&s, &c, Of::Repository(&ns, &repo), &q).await
}

async fn repo_export(
    State(s): State<AppState>,
    c: Auth,
    Path((ns, repo)): Path<(String, String)>,
    q: Query,
    headers: HeaderMap,
    scheme: Option<axum::extract::Extension<ConnScheme>>,
    OptionalBody(b): OptionalBody<api::ExportLogsRequest>,
) -> Result<Json<api::ExportLogsStarted>, ApiError> {
    export(
        &s,
        &c,
        Of::Repository(&ns, &repo),
        &q,
        &headers,
        scheme.as_deref(),
        b,
    )
    .await
}

async fn all_logs(
    State(s): State<AppState>,
    c: Auth,
    q: Query,
) -> Result<Json<api::LogPage>, ApiError> {
    page(&s, &c, Of::Installation, &q).await
}

async fn all_aggregate(
    State(s): State<AppState>,
    c: Auth,
    q: Query,
) -> Result<Json<api::AggregatedLogs>, ApiError> {
    counts(&s, &c, Of::Installation, &q).await
}

/// `GET /exportedlogs/{token}`: the export while its link is valid, else 404.
async fn download(State(s): State<AppState>, Path(token): Path<String>) -> Response {
    match logs::download(&s.ctx, &token).await {
        Ok(logs::Download::File(stream)) => (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, "application/json"),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"exportedlogs.json\"",
                ),
            ],
            axum::body::Body::from_stream(stream),
        )
            .into_response(),
        Ok(logs::Download::Gone) => ApiError::not_found().into_response(),
        Err(e) => ApiError::internal(&e).into_response(),
    }
}
