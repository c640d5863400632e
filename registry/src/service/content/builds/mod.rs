//! Repository builds (Quay's "Builds"): a Dockerfile build context, uploaded (`POST /filedrop/`
//! then `PUT /userfiles/{file_id}`) or fetched from an `archive_url`, built by a builder into
//! the repository's tags.
//!
//! Rules:
//! - Feature `FEATURE_BUILD_SUPPORT` (default off): without it every build endpoint answers 404.
//!   Reading builds needs `read` on the repository, their logs `write`, requesting one `write`
//!   (on a `NORMAL` repository), cancelling `admin` (Quay's permissions). Answers are Quay's
//!   (`build_status_view`): the Dockerfile's path is both `subdirectory` and `dockerfile_path`,
//!   the display name is the file's checksum or the first 7 hex digits of SHA-224 of the URL.
//! - A requested build is `waiting` in the durable queue (`db::content::builds`) and raises
//!   `build_queued`; the audit log gets `build_dockerfile`. The build manager ([`manager`], the
//!   `builds` worker of every replica) claims it once across replicas, starts a builder through
//!   the chosen executor ([`executor`]: `local` child process or `kubernetes` Job) and hands it
//!   a build token. The builder speaks the protocol of [`protocol`] (documented in
//!   `docs/builds.md`): it registers (`build_start`), reports phases, status and log lines,
//!   takes a push credential scoped to the repository, and finishes with `complete`
//!   (`build_success`) or `error` (`build_failure`).
//! - A builder that does not register within its executor's `SETUP_TIME`, or stops sending
//!   heartbeats, is given up and the build restarted, three times (`internalerror` while queued
//!   again); then it ends `internalerror`, shown as `expired` (Quay's view).
//! - `DELETE` cancels at any phase before the end (`cancel_build` audit entry,
//!   `build_cancelled`): the token stops working at once (the builder's next call is refused,
//!   so it cannot push afterwards) and the executor's process or Job is removed by the manager.

pub mod executor;
pub mod manager;
pub mod protocol;

use bytes::Bytes;
use futures_util::StreamExt;
use quayside_client as api;
use serde_json::{Value, json};

use crate::db;
use crate::db::content::builds::{self as rows, BuildRow};
use crate::db::content::repositories::RepoRow;
use crate::db::content::triggers::TriggerRow;
use crate::oci::RepoName;
use crate::service::access::authz::{self, Action};
use crate::service::content::repositories;
use crate::service::operations::audit::{Caller, Event};
use crate::service::operations::notifications;
use crate::service::operations::notifications::events::Event as NotificationEvent;
use crate::service::views::format_date;
use crate::service::{Ctx, Internal, Principal, TenancyError};

/// Restarts a build gets when its builder is lost (Quay's three).
pub const RETRIES: i64 = 3;

/// Builds of one repository that may wait or run at once (Quay answers 429 above its limit).
const MAX_QUEUED_PER_REPO: i64 = 20;

/// Largest uploaded build context.
pub const MAX_FILE_BYTES: u64 = 1 << 30;

/// Log lines one `GET .../logs` answers at most.
const LOG_PAGE: i64 = 1000;

/// Builds are on (`FEATURE_BUILD_SUPPORT`), else `NotFound`.
pub fn enabled(ctx: &Ctx) -> Result<(), TenancyError> {
    if ctx.config.builds.enabled {
        Ok(())
    } else {
        Err(TenancyError::NotFound)
    }
}

/// The storage key of an uploaded build context.
pub fn file_key(file_id: &uuid::Uuid) -> String {
    format!("userfiles/{file_id}")
}

/// What a build was asked to do (`job_config`, Quay's keys).
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct JobConfig {
    pub docker_tags: Vec<String>,
    /// The Dockerfile's path in the context archive (Quay's `build_subdir`).
    pub build_subdir: String,
    pub context: String,
    #[serde(default)]
    pub manual_user: Option<String>,
    #[serde(default)]
    pub archive_url: Option<String>,
    #[serde(default)]
    pub trigger_metadata: Value,
    /// The service of the trigger that started the build (`custom-git`, `github`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger_kind: Option<String>,
    /// That trigger's uuid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger_id: Option<String>,
    /// Whether a user asked for the build (a trigger's webhook did not).
    #[serde(default = "yes")]
    pub is_manual: bool,
}

fn yes() -> bool {
    true
}

impl JobConfig {
    pub fn of(row: &BuildRow) -> JobConfig {
        serde_json::from_str(&row.job_config).unwrap_or_default()
    }
}

/// Quay's `get_dockerfile_context`: the context directory and the Dockerfile's path.
fn dockerfile_context(request: &api::BuildRequest) -> (String, String) {
    let mut context = request.context.clone().unwrap_or_else(|| "/".into());
    if let Some(path) = &request.dockerfile_path {
        if request.context.is_none() {
            context = match path.rfind('/') {
                Some(0) => "/".into(),
                Some(i) => path[..i].to_owned(),
                None => String::new(),
            };
        }
        return (context, path.clone());
    }
    if let Some(subdir) = &request.subdirectory {
        let context = subdir.clone();
        let mut path = subdir.clone();
        if !path.ends_with('/') {
            path.push('/');
        }
        path.push_str("Dockerfile");
        return (context, path);
    }
    let path = if context.ends_with('/') {
        format!("{context}Dockerfile")
    } else {
        format!("{context}/Dockerfile")
    };
    (context, path)
}

/// A path inside the context archive: relative once its leading `/` is dropped, no `..`.
fn check_archive_path(what: &str, path: &str) -> Result<(), TenancyError> {
    if path.split('/').any(|s| s == "..") || path.contains('\0') {
        return Err(TenancyError::Invalid(format!(
            "{what} must stay inside the build context: {path:?}"
        )));
    }
    Ok(())
}

fn check_tag(tag: &str) -> Result<(), TenancyError> {
    if crate::oci::names::validate_tag(tag) {
        Ok(())
    } else {
        Err(TenancyError::Invalid(format!("Invalid tag name: {tag:?}")))
    }
}

/// Quay's `build_status_view`.
pub async fn view(
    ctx: &Ctx,
    caller: &Caller,
    repo: &RepoRow,
    row: &BuildRow,
) -> Result<api::Build, TenancyError> {
    let name = RepoName::from_parts(&repo.namespace, &repo.name)
        .map_err(|e| Internal::Other(format!("stored repository name: {e}")))?;
    let can_write = authz::require_by_role(
        ctx,
        &caller.principal,
        Action::Push,
        authz::Resource::Repo(&name),
    )
    .await
    .is_ok();
    let job = JobConfig::of(row);
    let trigger = match row.trigger_id {
        Some(id) => match db::content::triggers::by_id(ctx.db.pool(), id).await? {
            Some(t) => {
                let can_admin = authz::require_by_role(
                    ctx,
                    &caller.principal,
                    Action::Admin,
                    authz::Resource::Repo(&name),
                )
                .await
                .is_ok();
                Some(trigger_view(ctx, &t, true, can_admin, true).await?)
            }
            None => None,
        },
        None => None,
    };
    let phase = match row.phase.as_str() {
        rows::INTERNAL_ERROR if row.completed_ms.is_some() => "expired".to_owned(),
        other => other.to_owned(),
    };
    let pull_robot = match row.pull_robot_id {
        Some(id) => db::tenancy::robots::by_id(ctx.db.pool(), id)
            .await?
            .map(|r| api::BuildPullRobot {
                name: r.name,
                kind: "user".into(),
                is_robot: true,
            }),
        None => None,
    };
    let archive_url = if can_write {
        match &row.resource_key {
            Some(file_id) => Some(format!("{}/userfiles/{file_id}", origin(ctx))),
            None => job.archive_url.clone(),
        }
    } else {
        None
    };
    Ok(api::Build {
        id: row.uuid.clone(),
        phase,
        started: format_date(row.started_ms),
        display_name: row.display_name.clone(),
        status: serde_json::from_str(&row.status_json).unwrap_or_else(|_| json!({})),
        subdirectory: job.build_subdir.clone(),
        dockerfile_path: job.build_subdir.clone(),
        context: job.context.clone(),
        tags: job.docker_tags.clone(),
        manual_user: job.manual_user.clone(),
        is_writer: can_write,
        trigger,
        trigger_metadata: Some(if job.trigger_metadata.is_null() {
            json!({})
        } else {
            job.trigger_metadata.clone()
        }),
        resource_key: row.resource_key.clone(),
        pull_robot,
        repository: api::BuildRepository {
            namespace: repo.namespace.clone(),
            name: repo.name.clone(),
        },
        error: row.error.clone(),
        archive_url,
    })
}

/// The registry's own origin (`PREFERRED_URL_SCHEME` + `SERVER_HOSTNAME`, else the listen
/// address), for URLs it hands out outside a request.
pub fn origin(ctx: &Ctx) -> String {
    let scheme = match ctx.config.url_scheme {
        crate::config::UrlScheme::Https => "https",
        crate::config::UrlScheme::Http => "http",
    };
    format!("{scheme}://{}", ctx.registry_service())
}

/// Quay's `trigger_view`: a trigger as the trigger API and a build's `trigger` field show it.
/// `config` only for admins (with its credentials), the source for readers; `pull_robot` for
/// admins outside a build's view.
pub async fn trigger_view(
    ctx: &Ctx,
    t: &TriggerRow,
    can_read: bool,
    can_admin: bool,
    for_build: bool,
) -> Result<Value, TenancyError> {
    let config: Value = serde_json::from_str(&t.config).unwrap_or_else(|_| json!({}));
    let build_source = config.get("build_source").cloned().unwrap_or(Value::Null);
    let can_read = can_read || can_admin;
    let repository_url = match (t.service.as_str(), build_source.as_str()) {
        ("github", Some(src)) if !src.contains(':') => json!(format!("https://github.com/{src}")),
        ("gitlab", Some(src)) if !src.contains(':') => json!(format!("https://gitlab.com/{src}")),
        _ => Value::Null,
    };
    let mut out = json!({
        "id": t.uuid,
        "service": t.service,
        "is_active": config.get("credentials").is_some(),
        "build_source": if can_read { build_source } else { Value::Null },
        "repository_url": if can_read { repository_url } else { Value::Null },
        "config": if can_admin { config.clone() } else { json!({}) },
        "can_invoke": can_admin,
        "enabled": t.enabled,
        "disabled_reason": t.disabled_reason,
    });
    if !for_build
        && can_admin
        && let Some(id) = t.pull_robot_id
        && let Some(robot) = db::tenancy::robots::by_id(ctx.db.pool(), id).await?
    {
        out["pull_robot"] = json!({ "name": robot.name, "kind": "user", "is_robot": true });
    }
    Ok(out)
}

async fn readable_repo(
    ctx: &Ctx,
    caller: &Caller,
    action: Action,
    namespace: &str,
    repository: &str,
) -> Result<RepoRow, TenancyError> {
    enabled(ctx)?;
    repositories::checked(ctx, caller, action, namespace, repository).await
}

async fn build_of(repo: &RepoRow, ctx: &Ctx, uuid: &str) -> Result<BuildRow, TenancyError> {
    match rows::by_uuid(ctx.db.pool(), uuid).await? {
        Some(row) if row.repository_id == repo.id => Ok(row),
        _ => Err(TenancyError::NotFound),
    }
}

/// The event payload of a build (Quay's `build_*` events).
pub fn event_data(row: &BuildRow, extra: Value) -> Value {
    let job = JobConfig::of(row);
    let mut data = json!({
        "build_id": row.uuid,
        "build_name": row.display_name,
        "docker_tags": job.docker_tags,
        "trigger_kind": job.trigger_kind,
        "trigger_metadata": job.trigger_metadata,
    });
    if let Some(id) = &job.trigger_id {
        data["trigger_id"] = json!(id);
    }
    if let (Some(base), Value::Object(extra)) = (data.as_object_mut(), extra) {
        base.extend(extra);
    }
    data
}

/// Raises a build's notification event.
pub async fn notify(ctx: &Ctx, row: &BuildRow, event: NotificationEvent, extra: Value) {
    let Ok(Some(repo)) = db::content::repositories::by_id(ctx.db.pool(), row.repository_id).await
    else {
        return;
    };
    notifications::raise(
        ctx,
        &repo.namespace,
        &repo.name,
        event,
        event_data(row, extra),
    )
    .await;
}

/// Raises a build's notification event in `tx`, so it is queued with the change it reports.
pub async fn notify_in(
    ctx: &Ctx,
    tx: &mut db::Tx,
    row: &BuildRow,
    event: NotificationEvent,
    extra: Value,
) -> Result<(), Internal> {
    let Some(repo) = db::content::repositories::by_id(&mut **tx, row.repository_id).await? else {
        return Ok(());
    };
    notifications::raise_in(ctx, tx, &repo, event, event_data(row, extra), None).await?;
    Ok(())
}

/// One log entry in Quay's shape (`data.datetime` added), as stored.
pub fn entry(ctx: &Ctx, message: &str, kind: Option<&str>) -> String {
    let mut entry =
        json!({ "message": message, "data": { "datetime": format_date(ctx.now_ms()) } });
    if let Some(kind) = kind {
        entry["type"] = json!(kind);
    }
    entry.to_string()
}

/// `POST .../build/`: 201 with the build's view (and its status URL for `Location`).
pub async fn request(
    ctx: &Ctx,
    caller: &Caller,
    namespace: &str,
    repository: &str,
    request: &api::BuildRequest,
) -> Result<api::Build, BuildError> {
    let repo = readable_repo(ctx, caller, Action::Push, namespace, repository).await?;
    let file_id = request.file_id.as_deref().filter(|s| !s.is_empty());
    let archive_url = request.archive_url.as_deref().filter(|s| !s.is_empty());
    if file_id.is_none() && archive_url.is_none() {
        return Err(TenancyError::Invalid("file_id or archive_url required".into()).into());
    }
    if let Some(url) = archive_url {
        let parsed = reqwest::Url::parse(url).map_err(|_| {
            TenancyError::Invalid("Invalid Archive URL: Must be a valid URI".into())
        })?;
        if parsed.scheme() != "http" && parsed.scheme() != "https" {
            return Err(
                TenancyError::Invalid("Invalid Archive URL: Must be http or https".into()).into(),
            );
        }
    }
    repositories::require_normal(&repo)?;
    let (context, subdir) = dockerfile_context(request);
    check_archive_path("context", &context)?;
    check_archive_path("dockerfile_path", &subdir)?;
    let tags = request
        .docker_tags
        .clone()
        .unwrap_or_else(|| vec!["latest".into()]);
    if tags.is_empty() {
        return Err(TenancyError::Invalid("docker_tags must name a tag".into()).into());
    }
    for tag in &tags {
        check_tag(tag)?;
    }
    let pull_robot_id = match request.pull_robot.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(robot_name) => {
            let (robot_ns, _) = robot_name
                .split_once('+')
                .ok_or(TenancyError::Forbidden { anonymous: false })?;
            let robot = db::tenancy::robots::by_name(ctx.db.pool(), robot_name)
                .await?
                .ok_or(TenancyError::NotFound)?;
            authz::require_by_role(
                ctx,
                &caller.principal,
                Action::AdminNamespace,
                authz::Resource::Namespace(robot_ns),
            )
            .await?;
            Some(robot.account_id)
        }
    };
    let display_name = match file_id {
        Some(id) => {
            let file = rows::file(ctx.db.pool(), id).await?;
            let Some(checksum) = file.and_then(|f| f.checksum) else {
                return Err(TenancyError::Invalid(format!(
                    "File {id} could not be found or is invalid"
                ))
                .into());
            };
            if let Some(previous) = rows::repository_of_file(ctx.db.pool(), id).await?
                && previous != repo.id
            {
                let prev = db::content::repositories::by_id(ctx.db.pool(), previous)
                    .await?
                    .ok_or(TenancyError::Forbidden { anonymous: false })?;
                repositories::checked(ctx, caller, Action::Push, &prev.namespace, &prev.name)
                    .await
                    .map_err(|_| TenancyError::Forbidden { anonymous: false })?;
            }
            checksum.chars().take(7).collect()
        }
        None => {
            use sha2::Digest as _;
            let digest = sha2::Sha224::digest(archive_url.unwrap_or_default().as_bytes());
            hex::encode(digest)[..7].to_owned()
        }
    };
    let manual_user = caller.principal.user().map(|u| u.name.clone());
    let job = JobConfig {
        docker_tags: tags,
        build_subdir: subdir,
        context,
        manual_user,
        archive_url: archive_url.map(str::to_owned),
        trigger_metadata: json!({}),
        trigger_kind: None,
        trigger_id: None,
        is_manual: true,
    };
    let row = enqueue(
        ctx,
        caller,
        &repo,
        Queued {
            job,
            display_name,
            resource_key: file_id,
            pull_robot_id,
            requester_id: caller.principal.user().map(|u| u.id),
            trigger_id: None,
        },
    )
    .await?;
    Ok(view(ctx, caller, &repo, &row).await?)
}

/// A build to queue: from a request, or from a trigger (its webhook or a manual run).
pub struct Queued<'a> {
    pub job: JobConfig,
    pub display_name: String,
    /// The uploaded context's file id.
    pub resource_key: Option<&'a str>,
    pub pull_robot_id: Option<i64>,
    /// The account the build pushes as.
    pub requester_id: Option<i64>,
    pub trigger_id: Option<i64>,
}

/// Queues a build (`waiting`) with its `build_queued` event and `build_dockerfile` audit
/// entry; 429 (`TooManyQueued`) when the repository has too many builds waiting or running.
pub async fn enqueue(
    ctx: &Ctx,
    caller: &Caller,
    repo: &RepoRow,
    q: Queued<'_>,
) -> Result<BuildRow, BuildError> {
    if rows::count_unfinished(ctx.db.pool(), repo.id).await? >= MAX_QUEUED_PER_REPO {
        return Err(BuildError::TooManyQueued);
    }
    let job = q.job;
    let uuid = uuid::Uuid::new_v4().to_string();
    let job_text = serde_json::to_string(&job).map_err(|e| Internal::Other(e.to_string()))?;
    let mut tx = ctx.db.begin().await?;
    let row = rows::insert(
        &mut *tx,
        &rows::NewBuild {
            uuid: &uuid,
            repository_id: repo.id,
            started_ms: ctx.now_ms(),
            display_name: &q.display_name,
            job_config: &job_text,
            resource_key: q.resource_key,
            pull_robot_id: q.pull_robot_id,
            requester_id: q.requester_id,
            retries: RETRIES,
            trigger_id: q.trigger_id,
        },
    )
    .await?;
    notify_in(
        ctx,
        &mut tx,
        &row,
        NotificationEvent::BuildQueued,
        json!({ "is_manual": job.is_manual, "manual_user": job.manual_user }),
    )
    .await?;
    tx.commit().await?;
    let mut metadata = json!({
        "repo": repo.name, "namespace": repo.namespace, "build_uuid": uuid,
        "fileid": q.resource_key, "archive_url": job.archive_url, "manual_user": job.manual_user,
    });
    if let Some(id) = &job.trigger_id {
        metadata["trigger_id"] = json!(id);
        metadata["trigger_kind"] = json!(job.trigger_kind);
        metadata["trigger_metadata"] = job.trigger_metadata.clone();
    }
    ctx.audit.record(
        caller,
        Event::repo("build_dockerfile", &repo.namespace, &repo.name, metadata),
        ctx.now_ms(),
    );
    Ok(row)
}

/// Why a build request failed.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Tenancy(#[from] TenancyError),
    /// Quay's 429: too many builds of the repository wait or run.
    #[error("Maximum queued build rate exceeded.")]
    TooManyQueued,
}

impl From<Internal> for BuildError {
    fn from(e: Internal) -> Self {
        BuildError::Tenancy(e.into())
    }
}

impl From<db::DbError> for BuildError {
    fn from(e: db::DbError) -> Self {
        BuildError::Tenancy(e.into())
    }
}

/// `GET .../build/` (newest first, `limit` default 5, `since` a Unix time).
pub async fn list(
    ctx: &Ctx,
    caller: &Caller,
    namespace: &str,
    repository: &str,
    limit: Option<i64>,
    since_s: Option<i64>,
) -> Result<api::BuildList, TenancyError> {
    let repo = readable_repo(ctx, caller, Action::Pull, namespace, repository).await?;
    let limit = limit.unwrap_or(5).clamp(1, 100);
    let found = rows::list(
        ctx.db.pool(),
        repo.id,
        limit,
        since_s.map(|s| s.saturating_mul(1000)),
    )
    .await?;
    let mut builds = Vec::with_capacity(found.len());
    for row in &found {
        builds.push(view(ctx, caller, &repo, row).await?);
    }
    Ok(api::BuildList { builds })
}

/// `GET .../build/{uuid}` and `.../status`.
pub async fn get(
    ctx: &Ctx,
    caller: &Caller,
    namespace: &str,
    repository: &str,
    uuid: &str,
) -> Result<api::Build, TenancyError> {
    let repo = readable_repo(ctx, caller, Action::Pull, namespace, repository).await?;
    let row = build_of(&repo, ctx, uuid).await?;
    view(ctx, caller, &repo, &row).await
}

/// `GET .../build/{uuid}/logs?start=N`: entries from `start` on.
pub async fn logs(
    ctx: &Ctx,
    caller: &Caller,
    namespace: &str,
    repository: &str,
    uuid: &str,
    start: Option<i64>,
) -> Result<api::BuildLogs, TenancyError> {
    let repo = readable_repo(ctx, caller, Action::Pull, namespace, repository).await?;
    let name = RepoName::from_parts(&repo.namespace, &repo.name)
        .map_err(|e| Internal::Other(format!("stored repository name: {e}")))?;
    authz::require_by_role(
        ctx,
        &caller.principal,
        Action::Push,
        authz::Resource::Repo(&name),
    )
    .await?;
    let row = build_of(&repo, ctx, uuid).await?;
    log_page(ctx, &row, start).await
}

/// The build `uuid` of any repository, for the superuser's views (`/superuser/{uuid}/build`,
/// `.../status`, `.../logs`): a superuser reads every build; anyone else is refused (403) and
/// an unknown build is Quay's 404.
async fn superuser_build(
    ctx: &Ctx,
    caller: &Caller,
    uuid: &str,
) -> Result<(RepoRow, BuildRow), TenancyError> {
    enabled(ctx)?;
    authz::require_superuser(ctx, &caller.principal).await?;
    let row = rows::by_uuid(ctx.db.pool(), uuid)
        .await?
        .ok_or(TenancyError::NotFound)?;
    let repo = db::content::repositories::by_id(ctx.db.pool(), row.repository_id)
        .await?
        .ok_or(TenancyError::NotFound)?;
    Ok((repo, row))
}

/// `GET /superuser/{uuid}/build` and `.../status`: the build's view, as its repository's
/// `GET .../build/{uuid}` gives it.
pub async fn superuser_get(
    ctx: &Ctx,
    caller: &Caller,
    uuid: &str,
) -> Result<api::Build, TenancyError> {
    let (repo, row) = superuser_build(ctx, caller, uuid).await?;
    view(ctx, caller, &repo, &row).await
}

/// `GET /superuser/{uuid}/logs?start=N`: the build's log entries from `start` on.
pub async fn superuser_logs(
    ctx: &Ctx,
    caller: &Caller,
    uuid: &str,
    start: Option<i64>,
) -> Result<api::BuildLogs, TenancyError> {
    let (_, row) = superuser_build(ctx, caller, uuid).await?;
    log_page(ctx, &row, start).await
}

async fn log_page(
    ctx: &Ctx,
    row: &BuildRow,
    start: Option<i64>,
) -> Result<api::BuildLogs, TenancyError> {
    let start = start.unwrap_or(0).max(0);
    let (total, entries) = rows::logs(ctx.db.pool(), row.id, start, LOG_PAGE).await?;
    Ok(api::BuildLogs {
        start,
        total,
        logs: entries
            .iter()
            .filter_map(|e| serde_json::from_str(e).ok())
            .collect(),
    })
}

/// `DELETE .../build/{uuid}`: cancels a build that has not finished ("Build is currently
/// running or has finished" otherwise, 400).
pub async fn cancel(
    ctx: &Ctx,
    caller: &Caller,
    namespace: &str,
    repository: &str,
    uuid: &str,
) -> Result<(), TenancyError> {
    let repo = readable_repo(ctx, caller, Action::Admin, namespace, repository).await?;
    let row = build_of(&repo, ctx, uuid).await?;
    let mut tx = ctx.db.begin().await?;
    let Some(cancelled) = rows::cancel(&mut *tx, row.id, ctx.now_ms()).await? else {
        return Err(TenancyError::Invalid(
            "Build is currently running or has finished".into(),
        ));
    };
    rows::append_logs(
        &mut tx,
        cancelled.id,
        &[entry(ctx, rows::CANCELLED, Some("phase"))],
    )
    .await?;
    notify_in(
        ctx,
        &mut tx,
        &cancelled,
        NotificationEvent::BuildCancelled,
        json!({}),
    )
    .await?;
    tx.commit().await?;
    ctx.audit.record(
        caller,
        Event::repo(
            "cancel_build",
            namespace,
            repository,
            json!({ "build_uuid": uuid }),
        ),
        ctx.now_ms(),
    );
    // The process or Job goes at the manager's next pass; try at once too.
    manager::clean_up(ctx, &cancelled).await;
    Ok(())
}

/// Appends one log entry in Quay's shape (`data.datetime` added).
pub async fn log_entry(
    ctx: &Ctx,
    row: &BuildRow,
    message: &str,
    kind: Option<&str>,
) -> Result<(), Internal> {
    let mut tx = ctx.db.begin().await?;
    rows::append_logs(&mut tx, row.id, &[entry(ctx, message, kind)]).await?;
    tx.commit().await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Uploaded build contexts

/// `POST /filedrop/`: a file id and the URL to `PUT` the file to.
pub async fn prepare_drop(
    ctx: &Ctx,
    caller: &Caller,
    mime_type: &str,
    origin: &str,
) -> Result<api::FileDrop, TenancyError> {
    enabled(ctx)?;
    let Some(user) = caller.principal.user() else {
        return Err(TenancyError::Forbidden {
            anonymous: matches!(caller.principal, Principal::Anonymous),
        });
    };
    let id = uuid::Uuid::new_v4();
    rows::insert_file(
        ctx.db.pool(),
        &id.to_string(),
        mime_type,
        Some(user.id),
        ctx.now_ms(),
    )
    .await?;
    Ok(api::FileDrop {
        url: format!("{origin}/userfiles/{id}"),
        file_id: id.to_string(),
    })
}

/// Why an upload was refused.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error("no such file drop")]
    NotFound,
    #[error("the file was uploaded already")]
    Conflict,
    #[error("the file is larger than {MAX_FILE_BYTES} bytes")]
    TooLarge,
    #[error(transparent)]
    Internal(#[from] Internal),
}

impl From<db::DbError> for UploadError {
    fn from(e: db::DbError) -> Self {
        UploadError::Internal(e.into())
    }
}

/// `PUT /userfiles/{file_id}`: stores the file once (the id is the secret, as Quay's drop URLs).
pub async fn upload(
    ctx: &Ctx,
    file_id: &str,
    body: crate::storage::ByteStream,
) -> Result<u64, UploadError> {
    let id = uuid::Uuid::parse_str(file_id).map_err(|_| UploadError::NotFound)?;
    let file = rows::file(ctx.db.pool(), &id.to_string())
        .await?
        .ok_or(UploadError::NotFound)?;
    if file.size.is_some() {
        return Err(UploadError::Conflict);
    }
    let hasher = std::sync::Arc::new(std::sync::Mutex::new(ring::digest::Context::new(
        &ring::digest::SHA256,
    )));
    let counted = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let (h, n) = (hasher.clone(), counted.clone());
    let stream = body.map(move |chunk| {
        let chunk: Bytes = chunk?;
        let total = n.fetch_add(chunk.len() as u64, std::sync::atomic::Ordering::SeqCst)
            + chunk.len() as u64;
        if total > MAX_FILE_BYTES {
            return Err(std::io::Error::other("too large"));
        }
        if let Ok(mut h) = h.lock() {
            h.update(&chunk);
        }
        Ok(chunk)
    });
    let key = file_key(&id);
    let size = match ctx.store.put(&key, Box::pin(stream)).await {
        Ok(size) => size,
        Err(_) if counted.load(std::sync::atomic::Ordering::SeqCst) > MAX_FILE_BYTES => {
            return Err(UploadError::TooLarge);
        }
        Err(e) => return Err(Internal::from(e).into()),
    };
    let digest = hasher
        .lock()
        .map(|h| h.clone().finish())
        .map_err(|_| Internal::Other("hasher poisoned".into()))?;
    let checksum = hex::encode(digest.as_ref());
    if !rows::file_uploaded(ctx.db.pool(), &id.to_string(), size as i64, &checksum).await? {
        return Err(UploadError::Conflict);
    }
    Ok(size)
}
