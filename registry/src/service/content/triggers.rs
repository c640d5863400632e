//! Build triggers (Quay's "Build triggers", "Setting up a custom Git trigger"): a trigger of a
//! repository turns a push to a git repository into a build of its commit.
//!
//! Rules:
//! - Like builds, triggers need `FEATURE_BUILD_SUPPORT` (404 without). Listing, reading,
//!   creating, activating, toggling, deleting and running a trigger need `admin` on the
//!   repository; the builds of a trigger need `read` (Quay's permissions).
//! - A trigger is created inactive (`POST .../trigger/` with its `service`, a Quayside
//!   extension, or Quay's `GET /customtrigger/setup/{repo}`), then activated with its config
//!   (`build_source` required, plus `dockerfile_path`, `context`, `branchtag_regex`,
//!   `default_tag_from_ref`, `latest_for_default_branch`, `tag_templates`) and an optional
//!   `pull_robot` of the repository's namespace. Activation generates an ed25519 SSH deploy key
//!   (the private part sealed with the installation secret, never shown) and a webhook secret;
//!   the config then holds the `credentials` Quay shows: the public key and the webhook URL
//!   `{scheme}://$token:<secret>@{host}/webhooks/push/trigger/{uuid}` (plus, for the GitHub and
//!   GitLab kinds, the secret itself for their webhook settings). `is_active` = has credentials.
//! - Webhooks (`POST /webhooks/push/trigger/{uuid}`): an unknown trigger is 404; the caller is
//!   accepted with basic auth `$token:<secret>`, or for `github` an `X-Hub-Signature-256`
//!   HMAC-SHA256 of the body with the secret, or for `gitlab` `X-Gitlab-Token: <secret>`; a
//!   signature or token header that does not match refuses the call even with good basic
//!   auth; refused is 403 (Quay's answer to a caller without write access). Payloads: the
//!   custom one (`commit`, `ref`, `default_branch`, `commit_info`), GitHub's push event
//!   (`ping` is answered `Okay` without a build), GitLab's push hook. A bad payload is 400.
//! - Skipped with `Okay` and no build: a ref the `branchtag_regex` does not match in full
//!   (matched against `heads/<branch>` or `tags/<tag>`, as Quay), a commit message holding
//!   `[skip build]` or `[build skip]`, a GitHub push without a head commit. A disabled trigger
//!   is 400, a repository not `NORMAL` 503, too many queued builds 429.
//! - Tags: the branch or tag name (`default_tag_from_ref`, default on), `latest` on the default
//!   branch (`latest_for_default_branch`, default on), and each of `tag_templates` with
//!   `${...}` filled from the commit's metadata (`commit_info.short_sha`, `commit_info.date`,
//!   `commit_info.author`, `commit_info.committer` (their usernames), `parsed_ref.branch`,
//!   `parsed_ref.tag`, or any field of the payload's metadata); characters a tag cannot hold
//!   become `-`; a template naming a missing field gives no tag; with no tag at all, the short
//!   SHA. The build's name is the short SHA, its `trigger_metadata` the commit's metadata with
//!   `git_url`, and it pushes as the trigger's creator (a manual run: as the caller).
//! - The builder clones `git_url` at the commit (ssh with the deploy key; http(s) and `git://`
//!   plainly), see `builds::protocol`.

use serde_json::{Map, Value, json};

use crate::db;
use crate::db::content::repositories::RepoRow;
use crate::db::content::triggers::{self as rows, TriggerRow};
use crate::service::access::authz::{self, Action};
use crate::service::content::builds::{self, BuildError, JobConfig, Queued};
use crate::service::content::repositories;
use crate::service::operations::audit::{Caller, Event};
use crate::service::{Ctx, Internal, Principal, TenancyError, random_token};
use quayside_client as api;

/// Trigger services (Quay's `service` names).
pub const CUSTOM_GIT: &str = "custom-git";
pub const GITHUB: &str = "github";
pub const GITLAB: &str = "gitlab";
const SERVICES: &[&str] = &[CUSTOM_GIT, GITHUB, GITLAB];

/// The username of webhook basic auth (Quay's delegate token login).
pub const WEBHOOK_USERNAME: &str = "$token";

async fn admin_repo(
    ctx: &Ctx,
    caller: &Caller,
    action: Action,
    namespace: &str,
    repository: &str,
) -> Result<RepoRow, TenancyError> {
    builds::enabled(ctx)?;
    repositories::checked(ctx, caller, action, namespace, repository).await
}

async fn trigger_of(ctx: &Ctx, repo: &RepoRow, uuid: &str) -> Result<TriggerRow, TenancyError> {
    match rows::by_uuid(ctx.db.pool(), uuid).await? {
        Some(t) if t.repository_id == repo.id => Ok(t),
        _ => Err(TenancyError::NotFound),
    }
}

fn config_of(t: &TriggerRow) -> Map<String, Value> {
    match serde_json::from_str(&t.config) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    }
}

fn is_active(t: &TriggerRow) -> bool {
    t.secret_sealed.is_some() && config_of(t).contains_key("credentials")
}

async fn admin_view(ctx: &Ctx, t: &TriggerRow) -> Result<Value, TenancyError> {
    builds::trigger_view(ctx, t, true, true, false).await
}

/// `POST .../trigger/` (Quayside extension; Quay creates triggers in its UI's setup flow):
/// a new inactive trigger of `service`.
pub async fn create(
    ctx: &Ctx,
    caller: &Caller,
    namespace: &str,
    repository: &str,
    service: &str,
) -> Result<Value, TenancyError> {
    let repo = admin_repo(ctx, caller, Action::Admin, namespace, repository).await?;
    if !SERVICES.contains(&service) {
        return Err(TenancyError::Invalid(format!(
            "Unknown trigger service {service:?} (one of {})",
            SERVICES.join(", ")
        )));
    }
    if repo.kind != "image" {
        return Err(TenancyError::Invalid(
            "Build triggers cannot be created on application repositories".into(),
        ));
    }
    let uuid = uuid::Uuid::new_v4().to_string();
    let t = rows::insert(
        ctx.db.pool(),
        &uuid,
        repo.id,
        service,
        caller.principal.user().map(|u| u.id),
        ctx.now_ms(),
    )
    .await?;
    admin_view(ctx, &t).await
}

/// `GET .../trigger/`: `{"triggers": [...]}`.
pub async fn list(
    ctx: &Ctx,
    caller: &Caller,
    namespace: &str,
    repository: &str,
) -> Result<Value, TenancyError> {
    let repo = admin_repo(ctx, caller, Action::Admin, namespace, repository).await?;
    let mut triggers = Vec::new();
    for t in rows::list(ctx.db.pool(), repo.id).await? {
        triggers.push(admin_view(ctx, &t).await?);
    }
    Ok(json!({ "triggers": triggers }))
}

/// `GET .../trigger/{uuid}`.
pub async fn get(
    ctx: &Ctx,
    caller: &Caller,
    namespace: &str,
    repository: &str,
    uuid: &str,
) -> Result<Value, TenancyError> {
    let repo = admin_repo(ctx, caller, Action::Admin, namespace, repository).await?;
    let t = trigger_of(ctx, &repo, uuid).await?;
    admin_view(ctx, &t).await
}

/// `PUT .../trigger/{uuid}` with `{"enabled": bool}`.
pub async fn update(
    ctx: &Ctx,
    caller: &Caller,
    namespace: &str,
    repository: &str,
    uuid: &str,
    body: &Value,
) -> Result<Value, TenancyError> {
    let repo = admin_repo(ctx, caller, Action::Admin, namespace, repository).await?;
    let t = trigger_of(ctx, &repo, uuid).await?;
    let Some(enabled) = body.get("enabled").and_then(Value::as_bool) else {
        return Err(TenancyError::Invalid(
            "'enabled' is a required property".into(),
        ));
    };
    rows::set_enabled(ctx.db.pool(), t.id, enabled).await?;
    ctx.audit.record(
        caller,
        Event::repo(
            "toggle_repo_trigger",
            namespace,
            repository,
            json!({ "repo": repository, "namespace": namespace, "trigger_id": uuid,
                    "service": t.service, "enabled": enabled }),
        ),
        ctx.now_ms(),
    );
    let t = trigger_of(ctx, &repo, uuid).await?;
    admin_view(ctx, &t).await
}

/// `DELETE .../trigger/{uuid}`: the trigger, its key and secret go (its builds stay).
pub async fn delete(
    ctx: &Ctx,
    caller: &Caller,
    namespace: &str,
    repository: &str,
    uuid: &str,
) -> Result<(), TenancyError> {
    let repo = admin_repo(ctx, caller, Action::Admin, namespace, repository).await?;
    let t = trigger_of(ctx, &repo, uuid).await?;
    rows::delete(ctx.db.pool(), t.id).await?;
    ctx.audit.record(
        caller,
        Event::repo(
            "delete_repo_trigger",
            namespace,
            repository,
            json!({ "repo": repository, "namespace": namespace, "trigger_id": uuid,
                    "service": t.service }),
        ),
        ctx.now_ms(),
    );
    Ok(())
}

/// `POST .../trigger/{uuid}/activate` with `{"config": {...}, "pull_robot"?}`.
pub async fn activate(
    ctx: &Ctx,
    caller: &Caller,
    namespace: &str,
    repository: &str,
    uuid: &str,
    body: &Value,
    origin: &str,
) -> Result<Value, TenancyError> {
    let repo = admin_repo(ctx, caller, Action::Admin, namespace, repository).await?;
    let t = trigger_of(ctx, &repo, uuid).await?;
    if is_active(&t) {
        return Err(TenancyError::Invalid(
            "Trigger config is not sufficient for activation.".into(),
        ));
    }
    let Some(Value::Object(config)) = body.get("config") else {
        return Err(TenancyError::Invalid(
            "'config' is a required property".into(),
        ));
    };
    let mut config = config.clone();
    config.remove("credentials");
    let source = config
        .get("build_source")
        .and_then(Value::as_str)
        .map(str::trim)
        .unwrap_or_default()
        .to_owned();
    if source.is_empty() || source.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(TenancyError::Invalid(
            "build_source must name the git repository to clone".into(),
        ));
    }
    if let Some(regex) = config.get("branchtag_regex") {
        let Some(text) = regex.as_str() else {
            return Err(TenancyError::Invalid(
                "branchtag_regex must be a string".into(),
            ));
        };
        if regex::Regex::new(text).is_err() {
            return Err(TenancyError::Invalid(format!(
                "Invalid branchtag_regex: {text:?}"
            )));
        }
    }
    if let Some(templates) = config.get("tag_templates")
        && !templates
            .as_array()
            .is_some_and(|a| a.iter().all(Value::is_string))
    {
        return Err(TenancyError::Invalid(
            "tag_templates must be a list of strings".into(),
        ));
    }
    for key in ["dockerfile_path", "context"] {
        if let Some(v) = config.get(key) {
            let path = v.as_str().unwrap_or("..");
            if path.split('/').any(|s| s == "..") {
                return Err(TenancyError::Invalid(format!(
                    "{key} must stay inside the repository: {v}"
                )));
            }
        }
    }
    let pull_robot_id = match body
        .get("pull_robot")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
    {
        None => None,
        Some(robot_name) => {
            let robot = db::tenancy::robots::by_name(ctx.db.pool(), robot_name)
                .await?
                .ok_or(TenancyError::NotFound)?;
            authz::require_by_role(
                ctx,
                &caller.principal,
                Action::AdminNamespace,
                authz::Resource::Namespace(&robot.owner),
            )
            .await?;
            if robot.owner != namespace {
                return Err(TenancyError::Forbidden { anonymous: false });
            }
            Some(robot.account_id)
        }
    };
    let (public_key, private_key) = deploy_key(&format!("quayside-trigger-{uuid}"))?;
    let secret = random_token(40);
    let host_scheme = origin.split_once("://");
    let webhook = match host_scheme {
        Some((scheme, host)) => {
            format!("{scheme}://%24token:{secret}@{host}/webhooks/push/trigger/{uuid}")
        }
        None => format!("%24token:{secret}@{origin}/webhooks/push/trigger/{uuid}"),
    };
    let mut credentials = vec![
        json!({ "name": "SSH Public Key", "value": public_key }),
        json!({ "name": "Webhook Endpoint URL", "value": webhook }),
    ];
    if t.service != CUSTOM_GIT {
        credentials.push(json!({ "name": "Webhook Secret", "value": secret }));
    }
    config.insert("credentials".into(), Value::Array(credentials));
    let config_text = Value::Object(config.clone()).to_string();
    let sealer = ctx.sealer();
    if !rows::activate(
        ctx.db.pool(),
        t.id,
        &config_text,
        pull_robot_id,
        Some(&sealer.seal(&private_key)),
        &sealer.seal(&secret),
    )
    .await?
    {
        return Err(TenancyError::Invalid(
            "Trigger config is not sufficient for activation.".into(),
        ));
    }
    let mut logged = config.clone();
    logged.remove("credentials");
    ctx.audit.record(
        caller,
        Event::repo(
            "setup_repo_trigger",
            namespace,
            repository,
            json!({ "repo": repository, "namespace": namespace, "trigger_id": uuid,
                    "service": t.service, "pull_robot": body.get("pull_robot"),
                    "config": logged }),
        ),
        ctx.now_ms(),
    );
    let t = trigger_of(ctx, &repo, uuid).await?;
    admin_view(ctx, &t).await
}

/// `POST .../trigger/{uuid}/analyze`: Quayside cannot read the git repository before a build,
/// so it answers as Quay does for a trigger whose Dockerfile it cannot load (`warning`).
pub async fn analyze(
    ctx: &Ctx,
    caller: &Caller,
    namespace: &str,
    repository: &str,
    uuid: &str,
) -> Result<Value, TenancyError> {
    let repo = admin_repo(ctx, caller, Action::Admin, namespace, repository).await?;
    trigger_of(ctx, &repo, uuid).await?;
    let is_admin = authz::require_by_role(
        ctx,
        &caller.principal,
        Action::AdminNamespace,
        authz::Resource::Namespace(namespace),
    )
    .await
    .is_ok();
    Ok(json!({
        "namespace": namespace,
        "name": Value::Null,
        "robots": [],
        "status": "warning",
        "message": "Specified Dockerfile path for the trigger was not found on the main branch. This trigger may fail.",
        "is_admin": is_admin,
    }))
}

/// `GET .../trigger/{uuid}/builds?limit=N` (default 5).
pub async fn builds_of(
    ctx: &Ctx,
    caller: &Caller,
    namespace: &str,
    repository: &str,
    uuid: &str,
    limit: Option<i64>,
) -> Result<api::BuildList, TenancyError> {
    let repo = admin_repo(ctx, caller, Action::Pull, namespace, repository).await?;
    let t = trigger_of(ctx, &repo, uuid).await?;
    let found =
        db::content::builds::list_by_trigger(ctx.db.pool(), t.id, limit.unwrap_or(5).clamp(1, 100))
            .await?;
    let mut out = Vec::with_capacity(found.len());
    for row in &found {
        out.push(builds::view(ctx, caller, &repo, row).await?);
    }
    Ok(api::BuildList { builds: out })
}

/// `POST .../trigger/{uuid}/start` with `{"commit_sha", "branch_name"?, "refs"?}`: a manual
/// run of a commit (Quay's custom trigger needs `commit_sha`; Quayside cannot ask a git
/// host for a branch's head, so every kind does).
pub async fn start(
    ctx: &Ctx,
    caller: &Caller,
    namespace: &str,
    repository: &str,
    uuid: &str,
    body: &Value,
) -> Result<api::Build, BuildError> {
    let repo = admin_repo(ctx, caller, Action::Admin, namespace, repository).await?;
    let t = trigger_of(ctx, &repo, uuid).await?;
    if !t.enabled {
        return Err(TenancyError::Invalid("Trigger is not enabled.".into()).into());
    }
    if !is_active(&t) {
        return Err(TenancyError::Invalid("Trigger is not active.".into()).into());
    }
    let Some(commit) = body.get("commit_sha").and_then(Value::as_str) else {
        return Err(TenancyError::Invalid("missing required parameter".into()).into());
    };
    let config = config_of(&t);
    let mut metadata = json!({ "commit": commit, "git_url": clone_url(&t, &config) });
    let branch = body
        .get("branch_name")
        .and_then(Value::as_str)
        .map(|b| format!("refs/heads/{b}"))
        .or_else(|| {
            let refs = body.get("refs")?;
            let name = refs.get("name")?.as_str()?;
            Some(match refs.get("kind").and_then(Value::as_str) {
                Some("tag") => format!("refs/tags/{name}"),
                _ => format!("refs/heads/{name}"),
            })
        });
    if let Some(r) = branch {
        metadata["ref"] = json!(r);
    }
    validate_metadata(&metadata).map_err(TenancyError::Invalid)?;
    repositories::require_normal(&repo)?;
    let user = caller.principal.user().cloned();
    let row = queue(
        ctx,
        caller,
        &repo,
        &t,
        metadata,
        user.as_ref().map(|u| u.id),
        user.map(|u| u.name),
    )
    .await?;
    Ok(builds::view(ctx, caller, &repo, &row).await?)
}

/// Where the builder clones from: the config's `build_source`; for GitHub and GitLab an
/// `owner/name` source is their SSH URL.
fn clone_url(t: &TriggerRow, config: &Map<String, Value>) -> String {
    let source = config
        .get("build_source")
        .and_then(Value::as_str)
        .unwrap_or_default();
    match t.service.as_str() {
        GITHUB if !source.contains(':') => format!("git@github.com:{source}.git"),
        GITLAB if !source.contains(':') => format!("git@gitlab.com:{source}.git"),
        _ => source.to_owned(),
    }
}

async fn queue(
    ctx: &Ctx,
    caller: &Caller,
    repo: &RepoRow,
    t: &TriggerRow,
    metadata: Value,
    requester_id: Option<i64>,
    manual_user: Option<String>,
) -> Result<db::content::builds::BuildRow, BuildError> {
    let config = config_of(t);
    let commit = metadata["commit"].as_str().unwrap_or_default().to_owned();
    let dockerfile_path = config
        .get("dockerfile_path")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(|p| {
            if p.starts_with('/') {
                p.to_owned()
            } else {
                format!("/{p}")
            }
        })
        .unwrap_or_else(|| "/Dockerfile".into());
    let context = config
        .get("context")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .unwrap_or_else(|| match dockerfile_path.rfind('/') {
            Some(0) | None => "/".into(),
            Some(i) => dockerfile_path[..i].to_owned(),
        });
    let job = JobConfig {
        docker_tags: tags_for(&config, &metadata),
        build_subdir: dockerfile_path,
        context,
        is_manual: manual_user.is_some(),
        manual_user,
        archive_url: None,
        trigger_metadata: metadata,
        trigger_kind: Some(t.service.clone()),
        trigger_id: Some(t.uuid.clone()),
    };
    builds::enqueue(
        ctx,
        caller,
        repo,
        Queued {
            job,
            display_name: commit.chars().take(7).collect(),
            resource_key: None,
            pull_robot_id: t.pull_robot_id,
            requester_id,
            trigger_id: Some(t.id),
        },
    )
    .await
}

// ---------------------------------------------------------------------------------------------
// Webhooks

/// What a webhook call carries besides its body.
#[derive(Clone, Debug, Default)]
pub struct WebhookAuth {
    /// Basic auth: username and password.
    pub basic: Option<(String, String)>,
    /// `X-Hub-Signature-256`.
    pub github_signature: Option<String>,
    /// `X-GitHub-Event`.
    pub github_event: Option<String>,
    /// `X-Gitlab-Token`.
    pub gitlab_token: Option<String>,
}

/// Why a webhook did not start a build.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("Not Found")]
    NotFound,
    #[error("Forbidden")]
    Forbidden,
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("Maximum queued build rate exceeded.")]
    TooManyQueued,
    #[error(transparent)]
    Internal(#[from] Internal),
}

impl From<db::DbError> for WebhookError {
    fn from(e: db::DbError) -> Self {
        WebhookError::Internal(e.into())
    }
}

/// What a webhook call did.
#[derive(Debug, PartialEq, Eq)]
pub enum WebhookOutcome {
    /// A build was queued (its uuid).
    Queued(String),
    /// Nothing to build (a ping, a skipped commit, a ref the regex does not match).
    Skipped(&'static str),
}

fn sha256(data: &[u8]) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, data)
        .as_ref()
        .to_vec()
}

/// Whether the call proves it knows the trigger's secret (see the module's rules).
fn authorized(t: &TriggerRow, secret: &str, auth: &WebhookAuth, body: &[u8]) -> bool {
    let same = |given: &str| sha256(given.as_bytes()) == sha256(secret.as_bytes());
    let mut proven = false;
    if let Some(signature) = &auth.github_signature {
        if t.service != GITHUB {
            return false;
        }
        let Some(hex_sig) = signature.strip_prefix("sha256=") else {
            return false;
        };
        let Ok(given) = hex::decode(hex_sig.trim()) else {
            return false;
        };
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
        if ring::hmac::verify(&key, body, &given).is_err() {
            return false;
        }
        proven = true;
    }
    if let Some(token) = &auth.gitlab_token {
        if t.service != GITLAB || !same(token) {
            return false;
        }
        proven = true;
    }
    if let Some((user, password)) = &auth.basic {
        if user != WEBHOOK_USERNAME || !same(password) {
            return false;
        }
        proven = true;
    }
    proven
}

/// `POST /webhooks/push/trigger/{uuid}`.
pub async fn webhook(
    ctx: &Ctx,
    uuid: &str,
    auth: &WebhookAuth,
    body: &[u8],
    ip: Option<std::net::IpAddr>,
) -> Result<WebhookOutcome, WebhookError> {
    if !ctx.config.builds.enabled {
        return Err(WebhookError::NotFound);
    }
    let t = rows::by_uuid(ctx.db.pool(), uuid)
        .await?
        .ok_or(WebhookError::NotFound)?;
    let secret = t
        .secret_sealed
        .as_deref()
        .and_then(|s| ctx.sealer().open(s))
        .ok_or(WebhookError::Forbidden)?;
    if !authorized(&t, &secret, auth, body) {
        return Err(WebhookError::Forbidden);
    }
    let repo = db::content::repositories::by_id(ctx.db.pool(), t.repository_id)
        .await?
        .ok_or(WebhookError::NotFound)?;
    if repo.kind != "image" {
        return Err(WebhookError::Invalid(
            "Build triggers cannot be invoked on application repositories".into(),
        ));
    }
    if repo.state != "NORMAL" {
        return Err(WebhookError::Unavailable(
            "Repository is currently in read only or mirror mode".into(),
        ));
    }
    let config = config_of(&t);
    let metadata = match t.service.as_str() {
        GITHUB => {
            if auth.github_event.as_deref().is_some_and(|e| e != "push") {
                return Ok(WebhookOutcome::Skipped("not a push event"));
            }
            let payload: Value = serde_json::from_slice(body)
                .map_err(|e| WebhookError::Invalid(format!("Invalid payload: {e}")))?;
            if payload.get("zen").is_some() {
                return Ok(WebhookOutcome::Skipped("ping"));
            }
            match github_metadata(&payload).map_err(WebhookError::Invalid)? {
                Some(m) => m,
                None => return Ok(WebhookOutcome::Skipped("no head commit")),
            }
        }
        GITLAB => {
            let payload: Value = serde_json::from_slice(body)
                .map_err(|e| WebhookError::Invalid(format!("Invalid payload: {e}")))?;
            match gitlab_metadata(&payload).map_err(WebhookError::Invalid)? {
                Some(m) => m,
                None => return Ok(WebhookOutcome::Skipped("no commit")),
            }
        }
        _ => {
            if body.is_empty() {
                return Err(WebhookError::Invalid("Missing expected payload".into()));
            }
            let payload: Value = serde_json::from_slice(body)
                .map_err(|e| WebhookError::Invalid(format!("Invalid payload: {e}")))?;
            if !payload.is_object() {
                return Err(WebhookError::Invalid(
                    "the payload must be an object".into(),
                ));
            }
            payload
        }
    };
    let mut metadata = metadata;
    metadata["git_url"] = json!(clone_url(&t, &config));
    validate_metadata(&metadata).map_err(WebhookError::Invalid)?;
    if let Some(why) = skipped(&config, &metadata) {
        return Ok(WebhookOutcome::Skipped(why));
    }
    if !t.enabled {
        return Err(WebhookError::Invalid(
            "This build trigger is currently disabled. Please re-enable to continue.".into(),
        ));
    }
    let caller = Caller::new(Principal::Anonymous, ip);
    match queue(ctx, &caller, &repo, &t, metadata, t.connected_user_id, None).await {
        Ok(row) => Ok(WebhookOutcome::Queued(row.uuid)),
        Err(BuildError::TooManyQueued) => Err(WebhookError::TooManyQueued),
        Err(BuildError::Tenancy(TenancyError::Internal(e))) => Err(e.into()),
        Err(BuildError::Tenancy(e)) => Err(WebhookError::Invalid(e.to_string())),
    }
}

/// Quay's metadata schema: `commit` (7+ hex digits) and `git_url` required; `ref` as
/// `refs/(heads|tags|remotes)/...`; `commit_info` with `url`, `message`, `date`, and
/// `author`/`committer` with a `username`.
fn validate_metadata(m: &Value) -> Result<(), String> {
    let commit = m
        .get("commit")
        .and_then(Value::as_str)
        .ok_or("'commit' is a required property")?;
    if commit.len() < 7 || !commit.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(format!("{commit:?} does not match '^([A-Fa-f0-9]{{7,}})$'"));
    }
    if let Some(r) = m.get("ref") {
        let r = r.as_str().ok_or("'ref' must be a string")?;
        let ok = ["refs/heads/", "refs/tags/", "refs/remotes/"]
            .iter()
            .any(|p| r.strip_prefix(p).is_some_and(|rest| !rest.is_empty()));
        if !ok {
            return Err(format!(
                "{r:?} does not match '^refs\\/(heads|tags|remotes)\\/(.+)$'"
            ));
        }
    }
    if let Some(b) = m.get("default_branch")
        && !b.is_string()
        && !b.is_null()
    {
        return Err("'default_branch' must be a string".into());
    }
    if let Some(info) = m.get("commit_info") {
        let info = info.as_object().ok_or("'commit_info' must be an object")?;
        for key in ["url", "message", "date"] {
            if !info.get(key).is_some_and(Value::is_string) {
                return Err(format!("'{key}' is a required property of commit_info"));
            }
        }
        for who in ["author", "committer"] {
            if let Some(person) = info.get(who)
                && !person.get("username").is_some_and(Value::is_string)
            {
                return Err(format!("'username' is a required property of {who}"));
            }
        }
    }
    Ok(())
}

/// GitHub's push event as Quay's metadata; `None` without a head commit (a deleted branch).
fn github_metadata(p: &Value) -> Result<Option<Value>, String> {
    let repository = p
        .get("repository")
        .ok_or("Missing 'repository' on request")?;
    if repository.get("name").is_none() {
        return Err("Missing 'name' on repository".into());
    }
    let head = match p.get("head_commit") {
        None | Some(Value::Null) => return Ok(None),
        Some(h) => h,
    };
    let person = |who: &str| {
        let u = head.get(who)?;
        let name = u
            .get("username")
            .or_else(|| u.get("name"))
            .and_then(Value::as_str)?;
        let mut out = json!({ "username": name });
        if let Some(url) = u.get("html_url") {
            out["url"] = url.clone();
        }
        if let Some(avatar) = u.get("avatar_url") {
            out["avatar_url"] = avatar.clone();
        }
        Some(out)
    };
    let mut info = json!({
        "url": head.get("url").cloned().unwrap_or(json!("")),
        "message": head.get("message").cloned().unwrap_or(json!("")),
        "date": head.get("timestamp").cloned().unwrap_or(json!("")),
    });
    if let Some(a) = person("author") {
        info["author"] = a;
    }
    if let Some(c) = person("committer") {
        info["committer"] = c;
    }
    Ok(Some(json!({
        "commit": head.get("id").cloned().unwrap_or(Value::Null),
        "ref": p.get("ref").cloned().unwrap_or(Value::Null),
        "default_branch": repository.get("default_branch").cloned().unwrap_or(Value::Null),
        "commit_info": info,
    })))
}

/// GitLab's push hook as Quay's metadata (the commit named by `checkout_sha`).
fn gitlab_metadata(p: &Value) -> Result<Option<Value>, String> {
    let Some(sha) = p.get("checkout_sha").and_then(Value::as_str) else {
        return Ok(None);
    };
    let project = p.get("project").or_else(|| p.get("repository"));
    let commit = p
        .get("commits")
        .and_then(Value::as_array)
        .and_then(|c| c.iter().find(|c| c["id"] == sha));
    let mut out = json!({
        "commit": sha,
        "ref": p.get("ref").cloned().unwrap_or(Value::Null),
        "default_branch": project.and_then(|p| p.get("default_branch")).cloned().unwrap_or(Value::Null),
    });
    if let Some(c) = commit {
        let mut info = json!({
            "url": c.get("url").cloned().unwrap_or(json!("")),
            "message": c.get("message").cloned().unwrap_or(json!("")),
            "date": c.get("timestamp").cloned().unwrap_or(json!("")),
        });
        if let Some(name) = c.pointer("/author/name").and_then(Value::as_str) {
            info["author"] = json!({ "username": name });
        }
        out["commit_info"] = info;
    }
    Ok(Some(out))
}

/// Why a commit is not built, if it is not (Quay's `raise_if_skipped_build`).
fn skipped(config: &Map<String, Value>, m: &Value) -> Option<&'static str> {
    if let Some(regex) = config.get("branchtag_regex").and_then(Value::as_str) {
        let regex = regex::Regex::new(regex).unwrap_or_else(|_| {
            regex::Regex::new(".*").unwrap_or_else(|_| unreachable!("a valid pattern"))
        });
        let Some(r) = m.get("ref").and_then(Value::as_str) else {
            return Some("no ref to match the branch/tag regex");
        };
        let subject = r.split_once('/').map(|(_, rest)| rest).unwrap_or_default();
        let full = regex
            .find(subject)
            .is_some_and(|found| found.start() == 0 && found.end() == subject.len());
        if !full {
            return Some("the ref does not match the branch/tag regex");
        }
    }
    let message = m
        .pointer("/commit_info/message")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if message.contains("[skip build]") || message.contains("[build skip]") {
        return Some("the commit message asks to skip the build");
    }
    None
}

/// `kind`, `name` and `branch`/`tag` of a ref (Quay's `parsed_ref`).
fn parsed_ref(r: &str) -> Option<Value> {
    let rest = r.strip_prefix("refs/")?;
    let (kind, name) = rest.split_once('/')?;
    Some(match kind {
        "heads" => json!({ "kind": "branch", "name": name, "branch": name }),
        "tags" => json!({ "kind": "tag", "name": name, "tag": name }),
        _ => json!({ "kind": "remote", "name": name, "remote": name }),
    })
}

/// A text made a valid tag: characters outside `[A-Za-z0-9_.-]` become `-`, no leading `.` or
/// `-`, at most 128 characters; `None` when nothing is left.
fn as_tag(text: &str) -> Option<String> {
    let mapped: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let trimmed = mapped.trim_start_matches(['.', '-']);
    let tag: String = trimmed.chars().take(128).collect();
    (!tag.is_empty()).then_some(tag)
}

/// The value of `${path}` in a template.
fn lookup(data: &Value, path: &str) -> Option<String> {
    let mut v = data;
    for part in path.split('.') {
        v = v.get(part)?;
    }
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Object(o) => o.get("username").and_then(Value::as_str).map(str::to_owned),
        _ => None,
    }
}

/// Fills `${...}` of one template; `None` when a field is missing.
fn fill(template: &str, data: &Value) -> Option<String> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find('}')?;
        out.push_str(&lookup(data, after[..end].trim())?);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Some(out)
}

/// The tags a commit is built into (see the module's rules).
fn tags_for(config: &Map<String, Value>, m: &Value) -> Vec<String> {
    let mut data = m.clone();
    let commit = m["commit"].as_str().unwrap_or_default();
    let short: String = commit.chars().take(7).collect();
    if !data.get("commit_info").is_some_and(Value::is_object) {
        data["commit_info"] = json!({});
    }
    data["commit_info"]["short_sha"] = json!(short);
    let parsed = m.get("ref").and_then(Value::as_str).and_then(parsed_ref);
    if let Some(p) = &parsed {
        data["parsed_ref"] = p.clone();
    }
    let mut tags: Vec<String> = Vec::new();
    fn push(tags: &mut Vec<String>, tag: Option<String>) {
        if let Some(tag) = tag.as_deref().and_then(as_tag)
            && !tags.contains(&tag)
        {
            tags.push(tag);
        }
    }
    let mut add = |tag: Option<String>| push(&mut tags, tag);
    let flag = |key: &str| config.get(key).and_then(Value::as_bool).unwrap_or(true);
    if flag("default_tag_from_ref")
        && let Some(p) = &parsed
    {
        add(p["name"].as_str().map(str::to_owned));
    }
    if flag("latest_for_default_branch")
        && let (Some(p), Some(default)) = (&parsed, m.get("default_branch").and_then(Value::as_str))
        && p["kind"] == "branch"
        && p["name"] == default
    {
        add(Some("latest".into()));
    }
    for template in config
        .get("tag_templates")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        add(fill(template, &data));
    }
    if tags.is_empty() {
        push(&mut tags, Some(short));
    }
    tags
}

// ---------------------------------------------------------------------------------------------
// Deploy keys

/// An ed25519 key pair in OpenSSH's formats: the `authorized_keys` line and the private key
/// file (`openssh-key-v1`, unencrypted: it is sealed at rest by the caller).
pub fn deploy_key(comment: &str) -> Result<(String, String), Internal> {
    use base64::Engine as _;
    use ring::signature::KeyPair as _;
    let mut seed = [0u8; 32];
    getrandom::getrandom(&mut seed).map_err(|e| Internal::Other(format!("randomness: {e}")))?;
    let pair = ring::signature::Ed25519KeyPair::from_seed_unchecked(&seed)
        .map_err(|e| Internal::Other(format!("ed25519 key: {e}")))?;
    let public = pair.public_key().as_ref().to_vec();
    fn string(out: &mut Vec<u8>, data: &[u8]) {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        out.extend_from_slice(data);
    }
    let mut public_blob = Vec::new();
    string(&mut public_blob, b"ssh-ed25519");
    string(&mut public_blob, &public);
    let b64 = base64::engine::general_purpose::STANDARD;
    let public_line = format!("ssh-ed25519 {} {comment}", b64.encode(&public_blob));

    let mut check = [0u8; 4];
    getrandom::getrandom(&mut check).map_err(|e| Internal::Other(format!("randomness: {e}")))?;
    let mut private = Vec::new();
    private.extend_from_slice(&check);
    private.extend_from_slice(&check);
    string(&mut private, b"ssh-ed25519");
    string(&mut private, &public);
    let mut secret = seed.to_vec();
    secret.extend_from_slice(&public);
    string(&mut private, &secret);
    string(&mut private, comment.as_bytes());
    let mut pad = 1u8;
    while private.len() % 8 != 0 {
        private.push(pad);
        pad += 1;
    }
    let mut file = b"openssh-key-v1\0".to_vec();
    string(&mut file, b"none");
    string(&mut file, b"none");
    string(&mut file, b"");
    file.extend_from_slice(&1u32.to_be_bytes());
    string(&mut file, &public_blob);
    string(&mut file, &private);
    let body = b64.encode(&file);
    let mut pem = String::from("-----BEGIN OPENSSH PRIVATE KEY-----\n");
    for chunk in body.as_bytes().chunks(70) {
        pem.push_str(&String::from_utf8_lossy(chunk));
        pem.push('\n');
    }
    pem.push_str("-----END OPENSSH PRIVATE KEY-----\n");
    Ok((public_line, pem))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn tags_from_ref_latest_and_templates() {
        let m = json!({
            "commit": "1c002dd8f00", "ref": "refs/heads/master", "default_branch": "master",
            "commit_info": { "url": "u", "message": "m", "date": "2019-03-06T12:48:24+11:00",
                             "author": { "username": "alice" }, "committer": { "username": "bob" } }
        });
        let tags = tags_for(
            &cfg(json!({ "tag_templates": [
                "${commit_info.short_sha}", "${commit_info.date}", "${commit_info.author}",
                "c-${commit_info.committer}", "${parsed_ref.branch}", "${parsed_ref.tag}"] })),
            &m,
        );
        assert_eq!(
            tags,
            vec![
                "master",
                "latest",
                "1c002dd",
                "2019-03-06T12-48-24-11-00",
                "alice",
                "c-bob"
            ]
        );
        let tags = tags_for(
            &cfg(json!({ "default_tag_from_ref": false, "latest_for_default_branch": false })),
            &m,
        );
        assert_eq!(tags, vec!["1c002dd"]);
    }

    #[test]
    fn skip_rules() {
        let m = |r: &str, msg: &str| {
            json!({ "commit": "abcdef0", "ref": r,
                    "commit_info": { "url": "", "message": msg, "date": "" } })
        };
        let c = cfg(json!({ "branchtag_regex": "heads/(main|release-.*)" }));
        assert_eq!(skipped(&c, &m("refs/heads/main", "x")), None);
        assert_eq!(skipped(&c, &m("refs/heads/release-1", "x")), None);
        assert!(skipped(&c, &m("refs/heads/feature", "x")).is_some());
        assert!(skipped(&c, &m("refs/heads/mainline", "x")).is_some());
        assert!(skipped(&Map::new(), &m("refs/heads/x", "fix [skip build]")).is_some());
        assert!(skipped(&Map::new(), &m("refs/heads/x", "[build skip] wip")).is_some());
    }

    #[test]
    fn metadata_schema() {
        assert!(validate_metadata(&json!({ "commit": "abc", "git_url": "x" })).is_err());
        assert!(
            validate_metadata(&json!({ "commit": "abcdef0", "ref": "heads/x", "git_url": "x" }))
                .is_err()
        );
        assert!(
            validate_metadata(
                &json!({ "commit": "abcdef0", "ref": "refs/heads/x", "git_url": "x" })
            )
            .is_ok()
        );
    }

    #[test]
    fn webhook_signatures() {
        let t = TriggerRow {
            id: 1,
            uuid: "u".into(),
            repository_id: 1,
            service: GITHUB.into(),
            connected_user_id: None,
            config: "{}".into(),
            pull_robot_id: None,
            private_key_sealed: None,
            secret_sealed: None,
            enabled: true,
            disabled_reason: None,
            created_ms: 0,
        };
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"s3cret");
        let sig = hex::encode(ring::hmac::sign(&key, b"body").as_ref());
        let with = |s: &str| WebhookAuth {
            github_signature: Some(s.to_owned()),
            ..WebhookAuth::default()
        };
        assert!(authorized(
            &t,
            "s3cret",
            &with(&format!("sha256={sig}")),
            b"body"
        ));
        assert!(!authorized(
            &t,
            "s3cret",
            &with(&format!("sha256={sig}")),
            b"bodY"
        ));
        assert!(!authorized(&t, "s3cret", &with(&sig), b"body"));
        assert!(!authorized(&t, "s3cret", &WebhookAuth::default(), b"body"));
    }
}
