//! The build manager's side of the builder protocol (`docs/builds.md`): JSON over HTTP on the
//! registry's own listener under `/buildman/v1/`, every call authenticated by the build token
//! the manager handed the builder (`Authorization: Bearer <token>`).
//!
//! Rules: a token belongs to one attempt of one build. It registers once, while the build is
//! `build-scheduled`; after that it may report phases, status and log lines, ask for the
//! archive and the push credential, and finish the build, each only while the attempt is still
//! the build's and running: a cancelled, restarted or finished attempt's token is answered
//! `410 Gone`, which tells the builder to stop. Each accepted call is a heartbeat.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::db;
use crate::db::content::builds::{self as rows, BuildRow};
use crate::oci::RepoName;
use crate::service::access::authz;
use crate::service::access::jwt::Subject;
use crate::service::content::builds::{JobConfig, entry, file_key, notify_in, origin};
use crate::service::operations::notifications::events::Event as NotificationEvent;
use crate::service::{Access, Ctx, Internal, Principal, UserRef, hash_secret};

/// How long a registered builder may stay silent before it is considered lost.
pub const HEARTBEAT_TIMEOUT_MS: i64 = 60_000;

/// What a registered builder is told to do.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct JobSpec {
    pub build_uuid: String,
    /// `namespace/name`.
    pub repository: String,
    /// `host[:port]` to push to.
    pub registry: String,
    /// Whether the registry speaks plain HTTP (`PREFERRED_URL_SCHEME: http`).
    pub insecure: bool,
    pub tags: Vec<String>,
    /// The Dockerfile's path in the archive, and the context directory (both from its root).
    pub dockerfile_path: String,
    pub context: String,
    /// Where to fetch the build context: an `archive_url`, or this registry's
    /// `/buildman/v1/archive` (with the build token).
    pub archive_url: String,
    /// Whether `archive_url` needs the build token.
    pub archive_with_token: bool,
    /// Seconds between heartbeats.
    pub heartbeat_s: u64,
    /// Pull credentials for the base images (`pull_robot`): `user:token`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_credentials: Option<String>,
    /// A trigger's build: the git repository and commit to clone instead of an archive
    /// (`archive_url` is empty then).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git: Option<GitSource>,
}

/// The source of a trigger's build.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GitSource {
    /// `git_url` of the trigger metadata: `ssh://...`, `user@host:path`, `http(s)://...`,
    /// `git://...`.
    pub url: String,
    pub commit: String,
    /// The trigger's OpenSSH deploy key, for ssh URLs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_key: Option<String>,
}

/// A report from a builder: any of a phase, a status object, log entries.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Report {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub logs: Vec<LogLine>,
}

/// One log line: `type` is `command` (a Dockerfile step), `error`, or absent (output).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LogLine {
    pub message: String,
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

/// The end of a build: `complete` or `error` (with the message).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Finish {
    pub phase: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The pushed manifest's digest, on success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
}

/// The push credential: a registry token for `repository:<repo>:push,pull`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PushToken {
    pub token: String,
    pub expires_in: i64,
}

/// Why a protocol call was refused.
#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    /// No such token (401).
    #[error("invalid build token")]
    InvalidToken,
    /// The attempt is over: cancelled, restarted or finished (410).
    #[error("this build is no longer running: {0}")]
    Gone(String),
    /// A bad request (400).
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Internal(#[from] Internal),
}

impl From<db::DbError> for ProtocolError {
    fn from(e: db::DbError) -> Self {
        ProtocolError::Internal(e.into())
    }
}

/// The build of `token`, whatever its phase.
async fn build_of(ctx: &Ctx, token: &str) -> Result<(BuildRow, String), ProtocolError> {
    let hash = hash_secret(token);
    let row = rows::by_token(ctx.db.pool(), &hash)
        .await?
        .ok_or(ProtocolError::InvalidToken)?;
    Ok((row, hash))
}

/// The build of `token`, which must be registered and running.
async fn running(ctx: &Ctx, token: &str) -> Result<(BuildRow, String), ProtocolError> {
    let (row, hash) = build_of(ctx, token).await?;
    if !rows::RUNNING.contains(&row.phase.as_str()) || !row.registered {
        return Err(ProtocolError::Gone(row.phase));
    }
    Ok((row, hash))
}

/// `POST /buildman/v1/register`: the builder starts; answers its job.
pub async fn register(ctx: &Ctx, token: &str) -> Result<JobSpec, ProtocolError> {
    let (row, hash) = build_of(ctx, token).await?;
    if row.phase != rows::SCHEDULED || row.registered {
        return Err(ProtocolError::Gone(format!(
            "{} (registered already: {})",
            row.phase, row.registered
        )));
    }
    if !rows::register(
        ctx.db.pool(),
        row.id,
        &hash,
        ctx.now_ms() + HEARTBEAT_TIMEOUT_MS,
    )
    .await?
    {
        return Err(ProtocolError::Gone(row.phase));
    }
    let repo = db::content::repositories::by_id(ctx.db.pool(), row.repository_id)
        .await?
        .ok_or_else(|| ProtocolError::Gone("repository deleted".into()))?;
    let job = JobConfig::of(&row);
    let mut tx = ctx.db.begin().await?;
    rows::append_logs(&mut tx, row.id, &[entry(ctx, "Builder registered", None)]).await?;
    notify_in(ctx, &mut tx, &row, NotificationEvent::BuildStart, json!({})).await?;
    tx.commit().await?;
    tracing::info!(build = %row.uuid, repository = %format!("{}/{}", repo.namespace, repo.name), "builder registered");
    let git = match (
        row.trigger_id,
        job.trigger_metadata.get("git_url").and_then(Value::as_str),
        job.trigger_metadata.get("commit").and_then(Value::as_str),
    ) {
        (Some(trigger_id), Some(url), Some(commit)) => {
            let private_key = db::content::triggers::by_id(ctx.db.pool(), trigger_id)
                .await?
                .and_then(|t| t.private_key_sealed)
                .and_then(|sealed| ctx.sealer().open(&sealed));
            Some(GitSource {
                url: url.to_owned(),
                commit: commit.to_owned(),
                private_key,
            })
        }
        _ => None,
    };
    let (archive_url, archive_with_token) = match (&row.resource_key, &job.archive_url) {
        (Some(_), _) => (format!("{}/buildman/v1/archive", origin(ctx)), true),
        (None, Some(url)) => (url.clone(), false),
        (None, None) if git.is_some() => (String::new(), false),
        (None, None) => return Err(ProtocolError::Invalid("the build has no context".into())),
    };
    let pull_credentials = match row.pull_robot_id {
        Some(id) => pull_credentials(ctx, id).await?,
        None => None,
    };
    Ok(JobSpec {
        build_uuid: row.uuid.clone(),
        repository: format!("{}/{}", repo.namespace, repo.name),
        registry: ctx.registry_service(),
        insecure: matches!(ctx.config.url_scheme, crate::config::UrlScheme::Http),
        tags: job.docker_tags.clone(),
        dockerfile_path: job.build_subdir.clone(),
        context: job.context.clone(),
        archive_url,
        archive_with_token,
        heartbeat_s: 5,
        pull_credentials,
        git,
    })
}

/// The pull robot's login (`name:token`), when its token can be read.
async fn pull_credentials(ctx: &Ctx, robot_id: i64) -> Result<Option<String>, ProtocolError> {
    let Some(robot) = db::tenancy::robots::by_id(ctx.db.pool(), robot_id).await? else {
        return Ok(None);
    };
    let token = ctx.sealer().open(&robot.token_sealed);
    Ok(token.map(|t| format!("{}:{t}", robot.name)))
}

/// `POST /buildman/v1/report`: a heartbeat with, optionally, a phase, a status and log lines.
pub async fn report(ctx: &Ctx, token: &str, report: &Report) -> Result<(), ProtocolError> {
    let (row, hash) = running(ctx, token).await?;
    if let Some(phase) = &report.phase
        && !rows::RUNNING.contains(&phase.as_str())
    {
        return Err(ProtocolError::Invalid(format!(
            "{phase:?} is not a phase a builder reports (finish the build instead)"
        )));
    }
    let status = report.status.as_ref().map(Value::to_string);
    if !rows::report(
        ctx.db.pool(),
        row.id,
        &hash,
        report.phase.as_deref(),
        status.as_deref(),
        ctx.now_ms() + HEARTBEAT_TIMEOUT_MS,
    )
    .await?
    {
        return Err(ProtocolError::Gone(row.phase));
    }
    let now = crate::service::views::format_date(ctx.now_ms());
    let mut entries = Vec::new();
    if let Some(phase) = &report.phase
        && *phase != row.phase
    {
        entries.push(
            json!({ "message": phase, "type": "phase", "data": { "datetime": now } }).to_string(),
        );
    }
    for line in &report.logs {
        let mut entry = json!({ "message": line.message, "data": { "datetime": now } });
        if let Some(kind) = &line.kind {
            entry["type"] = json!(kind);
        }
        entries.push(entry.to_string());
    }
    if !entries.is_empty() {
        let mut tx = ctx.db.begin().await?;
        rows::append_logs(&mut tx, row.id, &entries).await?;
        tx.commit().await?;
    }
    Ok(())
}

/// `GET /buildman/v1/archive`: the uploaded build context.
pub async fn archive(ctx: &Ctx, token: &str) -> Result<crate::storage::ByteStream, ProtocolError> {
    let (row, _) = running(ctx, token).await?;
    let file_id = row
        .resource_key
        .as_deref()
        .and_then(|id| uuid::Uuid::parse_str(id).ok())
        .ok_or_else(|| ProtocolError::Invalid("this build has no uploaded context".into()))?;
    ctx.store
        .get(&file_key(&file_id), None)
        .await
        .map_err(|e| ProtocolError::Internal(e.into()))
}

/// `POST /buildman/v1/push-token`: a registry token for the build's repository, issued to the
/// account that requested the build and holding only what that account may do there now.
pub async fn push_token(ctx: &Ctx, token: &str) -> Result<PushToken, ProtocolError> {
    let (row, _) = running(ctx, token).await?;
    let repo = db::content::repositories::by_id(ctx.db.pool(), row.repository_id)
        .await?
        .ok_or_else(|| ProtocolError::Gone("repository deleted".into()))?;
    let requester_id = row
        .requester_id
        .ok_or_else(|| ProtocolError::Gone("the requesting account was deleted".into()))?;
    let account = db::tenancy::namespaces::token_account(ctx.db.pool(), requester_id)
        .await?
        .filter(|a| a.enabled && a.kind == db::tenancy::namespaces::KIND_USER)
        .ok_or_else(|| ProtocolError::Gone("the requesting account is gone or disabled".into()))?;
    let user = UserRef {
        id: requester_id,
        superuser: account.superuser || ctx.is_config_superuser(&account.name),
        name: account.name,
    };
    let name = RepoName::from_parts(&repo.namespace, &repo.name)
        .map_err(|e| Internal::Other(format!("stored repository name: {e}")))?;
    let actions = authz::granted_repo_actions(
        ctx,
        &Principal::User(user.clone()),
        &name,
        &["push".to_owned(), "pull".to_owned()],
    )
    .await?;
    if !actions.iter().any(|a| a == "push") {
        return Err(ProtocolError::Gone(format!(
            "{} may no longer push to {name}",
            user.name
        )));
    }
    let access = vec![Access {
        kind: "repository".into(),
        name: name.as_str().to_owned(),
        actions,
    }];
    let token = ctx
        .jwt
        .issue(
            &ctx.db,
            Subject::User(&user),
            access,
            &ctx.registry_service(),
            ctx.now_ms() / 1000,
        )
        .await
        .map_err(|e| Internal::Other(format!("issuing the push token: {e}")))?;
    Ok(PushToken {
        token,
        expires_in: crate::service::access::jwt::TOKEN_LIFETIME_S,
    })
}

/// `POST /buildman/v1/finish`: the build ended (`complete` or `error`).
pub async fn finish(ctx: &Ctx, token: &str, finish: &Finish) -> Result<(), ProtocolError> {
    let (row, hash) = running(ctx, token).await?;
    let (event, error) = match finish.phase.as_str() {
        rows::COMPLETE => (NotificationEvent::BuildSuccess, None),
        rows::ERROR => (
            NotificationEvent::BuildFailure,
            Some(
                finish
                    .error
                    .clone()
                    .unwrap_or_else(|| "the build failed".into()),
            ),
        ),
        other => {
            return Err(ProtocolError::Invalid(format!(
                "a build finishes as complete or error, not {other:?}"
            )));
        }
    };
    let extra = match (&error, &finish.digest) {
        (Some(message), _) => json!({ "error_message": message }),
        (None, Some(digest)) => json!({ "image_id": digest }),
        (None, None) => json!({}),
    };
    // The end, its log lines and its event, together.
    let mut tx = ctx.db.begin().await?;
    if !rows::finish(
        &mut *tx,
        row.id,
        &hash,
        &finish.phase,
        error.as_deref(),
        ctx.now_ms(),
    )
    .await?
    {
        return Err(ProtocolError::Gone(row.phase));
    }
    let mut lines = Vec::new();
    if let Some(message) = &error {
        lines.push(entry(ctx, message, Some("error")));
    }
    lines.push(entry(ctx, &finish.phase, Some("phase")));
    rows::append_logs(&mut tx, row.id, &lines).await?;
    notify_in(ctx, &mut tx, &row, event, extra).await?;
    tx.commit().await?;
    tracing::info!(build = %row.uuid, phase = %finish.phase, "build finished");
    crate::service::content::builds::manager::clean_up(ctx, &row).await;
    Ok(())
}
