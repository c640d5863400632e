//! Repository mirroring (Quay's "Repository mirroring"): a repository in the `MIRROR` state
//! whose tags are copied from a repository of another registry.
//!
//! Rules:
//! - Configuration (`/api/v1/repository/{repo}/mirror`, feature `FEATURE_REPO_MIRROR`):
//!   repository administrators create, read and change it, one per repository. The upstream
//!   credentials are sealed with the installation key and never logged or answered. The robot
//!   (`robot_username`) must belong to the repository's namespace; it is given `write` on the
//!   repository when it has less, as Quay does.
//! - State: only the mirror robot may write to a repository in the `MIRROR` state, nobody to a
//!   `READ_ONLY` one (decided in `access::authz`); the worker syncs only repositories in the
//!   `MIRROR` state.
//! - Scheduling: a mirror is due when enabled and `sync_start_date` has passed or a sync was
//!   requested (`sync-now`). A worker claims it (status `SYNCING`, a lease of
//!   `skopeo_timeout_interval` seconds renewed at each tag) once across replicas
//!   (`db::content::mirror::claim_due`). After a success, or a failure with no retries left,
//!   the next sync is the next multiple of `sync_interval` after the scheduled start and the
//!   retries are restored (3); a failure with retries left keeps the schedule and is tried
//!   again at the worker's next pass when that schedule has passed (a requested sync of a
//!   mirror scheduled later waits for it, as in Quay).
//! - A sync lists the upstream's tags, copies those matching the globs of `root_rule` (each
//!   tag's manifest, a list's children, and their blobs, digests verified) by pushing them as the
//!   robot through the same services a push uses (so quota, labels and accounting apply), then
//!   ends the local tags that no longer match an upstream tag. A tag already pointing at the
//!   upstream's digest is left alone. Cancelling (`sync-cancel`) takes the claim away: the
//!   worker stops before its next tag and the mirror waits for its next scheduled time.
//! - Every sync records `repo_mirror_sync_started` and `repo_mirror_sync_success` /
//!   `repo_mirror_sync_failed` (with the reason) through [`notify_mirror`], and one
//!   `repo_mirror_sync_tag_success` / `repo_mirror_sync_tag_failed` per tag; configuration
//!   changes record Quay's `repo_mirror_*` kinds, state changes `change_repo_state`.
//!
//! - The upstream is reached through `external_registry_config.proxy` when one is set
//!   (`http_proxy`, `https_proxy`, `no_proxy`; each proxy passes the SSRF guard too), with TLS
//!   verified unless `verify_tls` is false.
//!
//! Not here yet: `architecture_filter` and `REPO_MIRROR_ROLLBACK` are stored and answered but
//! not applied; signatures are not checked (`unsigned_images`).

use std::collections::BTreeSet;

use bytes::Bytes;
use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use quayside_client as api;
use serde_json::{Value, json};

use crate::db;
use crate::db::content::mirror::{self as rows, MirrorRow, Outcome};
use crate::db::content::repositories::RepoRow;
use crate::oci::manifest;
use crate::oci::{Digest, RepoName};
use crate::service::access::authz::{Action, RepoState};
use crate::service::content::manifests;
use crate::service::content::repositories;
use crate::service::content::uploads;
use crate::service::content::upstream::{
    Upstream, UpstreamConfig, UpstreamError, UpstreamOptions, parse_registry, proxy_urls,
};
use crate::service::operations::audit::{Caller, Event};
use crate::service::operations::notifications;
use crate::service::operations::notifications::events::Event as NotificationEvent;
use crate::service::operations::ssrf;
use crate::service::principal::RobotRef;
use crate::service::{Ctx, Internal, Principal, RegistryError, TenancyError};

/// Retries a failing mirror gets before it waits for its next interval (Quay's
/// `MAX_SYNC_RETRIES`).
pub const MAX_RETRIES: i64 = 3;

/// Longest `skopeo_timeout_interval` (Quay's bound: 12 hours), and the default (5 minutes).
const MAX_TIMEOUT_S: i64 = 43_200;
const DEFAULT_TIMEOUT_S: i64 = 300;

/// Why a mirror request failed: a Quay error body, or one of the `{"detail": ...}` answers
/// Quay's mirror endpoints give.
#[derive(Debug, thiserror::Error)]
pub enum MirrorError {
    #[error(transparent)]
    Tenancy(#[from] TenancyError),
    /// `{"detail": ...}` with this status (409 duplicate, 400 bad date or state).
    #[error("{detail}")]
    Detail { status: u16, detail: String },
}

impl From<Internal> for MirrorError {
    fn from(e: Internal) -> Self {
        MirrorError::Tenancy(e.into())
    }
}

impl From<db::DbError> for MirrorError {
    fn from(e: db::DbError) -> Self {
        MirrorError::Tenancy(e.into())
    }
}

fn detail(status: u16, detail: impl Into<String>) -> MirrorError {
    MirrorError::Detail {
        status,
        detail: detail.into(),
    }
}

/// Reports a mirror sync: `event` is `repo_mirror_sync_started`, `repo_mirror_sync_success` or
/// `repo_mirror_sync_failed`. It is written to the audit log (Quay's log kinds) and raised as
/// the repository notification event of that name (`details` join the event's payload).
pub async fn notify_mirror(ctx: &Ctx, repo: &RepoName, event: &'static str, details: Value) {
    ctx.audit.record(
        &Caller::new(Principal::Anonymous, None),
        Event::repo(event, repo.namespace(), repo.repository(), details.clone()),
        ctx.now_ms(),
    );
    let notification = match event {
        "repo_mirror_sync_started" => NotificationEvent::MirrorSyncStarted,
        "repo_mirror_sync_success" => NotificationEvent::MirrorSyncSuccess,
        _ => NotificationEvent::MirrorSyncFailed,
    };
    notifications::raise(
        ctx,
        repo.namespace(),
        repo.repository(),
        notification,
        details,
    )
    .await;
}

// ---------------------------------------------------------------------------------------------
// Configuration (`/api/v1`)

fn format_date(ms: i64) -> String {
    Utc.timestamp_millis_opt(ms)
        .single()
        .unwrap_or_default()
        .format(api::MIRROR_DATE_FORMAT)
        .to_string()
}

/// Quay's `sync_start_date`: `2030-01-01T00:00:00Z`, nothing else.
fn parse_date(v: &Value) -> Result<i64, MirrorError> {
    let bad = || detail(400, "Incorrect DateTime format for sync_start_date.");
    let s = v.as_str().ok_or_else(bad)?;
    let naive = NaiveDateTime::parse_from_str(s, api::MIRROR_DATE_FORMAT).map_err(|_| bad())?;
    Ok(DateTime::<Utc>::from_naive_utc_and_offset(naive, Utc).timestamp_millis())
}

/// Splits `host[:port]/path` into the upstream registry and the repository path.
fn parse_reference(reference: &str) -> Result<(String, String), MirrorError> {
    let reference = reference.trim();
    let invalid = || {
        MirrorError::Tenancy(TenancyError::Invalid(format!(
            "Invalid external_reference {reference:?}: expected host[:port]/repository, without a tag"
        )))
    };
    let (host, path) = reference.split_once('/').ok_or_else(invalid)?;
    let (host, _) = parse_registry(host).map_err(|_| invalid())?;
    let path_ok = path.split('/').all(crate::oci::names::is_component);
    if path.is_empty() || !path_ok {
        return Err(invalid());
    }
    Ok((host, path.to_owned()))
}

fn check_rule(rule: &api::MirrorRule) -> Result<String, MirrorError> {
    if rule.rule_kind != api::TAG_GLOB_CSV {
        return Err(TenancyError::Invalid(format!(
            "Unknown rule_kind {:?}: only {} is supported",
            rule.rule_kind,
            api::TAG_GLOB_CSV
        ))
        .into());
    }
    let globs: Vec<String> = rule
        .rule_value
        .iter()
        .map(|g| g.trim().to_owned())
        .filter(|g| !g.is_empty())
        .collect();
    if globs.is_empty() {
        return Err(
            TenancyError::Invalid("root_rule.rule_value must list tag patterns".into()).into(),
        );
    }
    if globs.iter().any(|g| g.len() > 255) {
        return Err(
            TenancyError::Invalid("a tag pattern is longer than 255 characters".into()).into(),
        );
    }
    Ok(serde_json::to_string(&globs).unwrap_or_default())
}

/// The mirror robot: a robot of the repository's namespace. It gets `write` on the repository
/// when it has less.
async fn mirror_robot(ctx: &Ctx, repo: &RepoRow, robot_username: &str) -> Result<i64, MirrorError> {
    let robot = db::tenancy::robots::by_name(ctx.db.pool(), robot_username)
        .await?
        .ok_or_else(|| {
            TenancyError::Invalid(format!("Invalid robot account {robot_username:?}"))
        })?;
    if robot.owner_id != repo.namespace_id {
        return Err(TenancyError::Invalid(format!(
            "Robot {robot_username} does not belong to namespace {}",
            repo.namespace
        ))
        .into());
    }
    let facts = db::tenancy::permissions::facts(
        ctx.db.pool(),
        robot.account_id,
        repo.namespace_id,
        Some(repo.id),
    )
    .await?;
    let writes = facts
        .direct_roles
        .iter()
        .any(|r| r == "write" || r == "admin");
    if !writes {
        db::tenancy::permissions::set_user(ctx.db.pool(), repo.id, robot.account_id, "write")
            .await?;
        ctx.pull_cache.invalidate().await;
    }
    Ok(robot.account_id)
}

async fn admin_repo(
    ctx: &Ctx,
    caller: &Caller,
    namespace: &str,
    repository: &str,
) -> Result<RepoRow, MirrorError> {
    if !ctx.config.mirror.enabled {
        return Err(TenancyError::NotFound.into());
    }
    Ok(repositories::checked(ctx, caller, Action::Admin, namespace, repository).await?)
}

async fn view(ctx: &Ctx, row: &MirrorRow) -> Result<api::MirrorConfig, MirrorError> {
    let robot_username = match row.robot_account_id {
        Some(id) => db::tenancy::robots::by_id(ctx.db.pool(), id)
            .await?
            .map(|r| r.name),
        None => None,
    };
    let open = |sealed: &Option<String>| sealed.as_deref().and_then(|s| ctx.sealer().open(s));
    Ok(api::MirrorConfig {
        is_enabled: row.is_enabled,
        mirror_type: "PULL".into(),
        external_reference: row.external_reference.clone(),
        external_registry_username: open(&row.username_sealed),
        external_registry_config: api::MirrorRegistryConfig {
            verify_tls: Some(row.verify_tls),
            unsigned_images: Some(row.unsigned_images),
            proxy: row
                .proxy_json
                .as_deref()
                .and_then(|p| serde_json::from_str(p).ok()),
        },
        sync_interval: row.sync_interval_s,
        sync_start_date: format_date(row.sync_start_ms),
        sync_expiration_date: row.sync_expiration_ms.map(format_date),
        sync_retries_remaining: row.sync_retries_remaining,
        sync_status: row.sync_status.clone(),
        root_rule: api::MirrorRule {
            rule_kind: api::TAG_GLOB_CSV.into(),
            rule_value: serde_json::from_str(&row.rule_value).unwrap_or_default(),
        },
        robot_username,
        skopeo_timeout_interval: row.skopeo_timeout_s,
        architecture_filter: serde_json::from_str(&row.architecture_filter).unwrap_or_default(),
    })
}

/// `GET .../mirror`: 404 when the repository has no mirror configuration.
pub async fn get_config(
    ctx: &Ctx,
    caller: &Caller,
    namespace: &str,
    repository: &str,
) -> Result<api::MirrorConfig, MirrorError> {
    let repo = admin_repo(ctx, caller, namespace, repository).await?;
    let row = rows::get(ctx.db.pool(), repo.id)
        .await?
        .ok_or(TenancyError::NotFound)?;
    view(ctx, &row).await
}

/// Applies the fields a request names to `row` (a new row's defaults, or the stored one).
async fn apply(
    ctx: &Ctx,
    repo: &RepoRow,
    row: &mut MirrorRow,
    request: &api::MirrorRequest,
) -> Result<(), MirrorError> {
    if let Some(v) = &request.sync_start_date {
        row.sync_start_ms = parse_date(v)?;
    }
    if let Some(enabled) = request.is_enabled {
        row.is_enabled = enabled;
    }
    if let Some(reference) = &request.external_reference {
        let (host, _) = parse_reference(reference)?;
        guard(ctx)
            .check(&format!("https://{host}/"))
            .await
            .map_err(|r| TenancyError::Invalid(format!("external_reference refused: {r}")))?;
        row.external_reference = reference.trim().to_owned();
    }
    let seal = |s: &Option<String>| {
        s.as_deref()
            .filter(|s| !s.is_empty())
            .map(|s| ctx.sealer().seal(s))
    };
    if let Some(username) = &request.external_registry_username {
        row.username_sealed = seal(username);
    }
    if let Some(password) = &request.external_registry_password {
        row.password_sealed = seal(password);
    }
    if let Some(config) = &request.external_registry_config {
        if let Some(v) = config.verify_tls {
            row.verify_tls = v;
        }
        if let Some(v) = config.unsigned_images {
            row.unsigned_images = v;
        }
        if let Some(p) = &config.proxy {
            for url in proxy_urls(Some(p)) {
                let parsed = reqwest::Url::parse(url)
                    .ok()
                    .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some());
                let Some(mut bare) = parsed else {
                    return Err(TenancyError::Invalid(format!(
                        "Invalid proxy {url:?}: expected an http:// or https:// URL"
                    ))
                    .into());
                };
                // The guard takes no credentials in URLs; a proxy's are allowed.
                let _ = bare.set_username("");
                let _ = bare.set_password(None);
                guard(ctx)
                    .check(bare.as_str())
                    .await
                    .map_err(|r| TenancyError::Invalid(format!("proxy refused: {r}")))?;
            }
            row.proxy_json = Some(serde_json::to_string(p).unwrap_or_default());
        }
    }
    if let Some(interval) = request.sync_interval {
        if interval <= 0 {
            return Err(TenancyError::Invalid(
                "sync_interval must be a positive number of seconds".into(),
            )
            .into());
        }
        row.sync_interval_s = interval;
    }
    if let Some(rule) = &request.root_rule {
        row.rule_value = check_rule(rule)?;
    }
    if let Some(robot) = &request.robot_username {
        row.robot_account_id = Some(mirror_robot(ctx, repo, robot).await?);
    }
    if let Some(timeout) = request.skopeo_timeout_interval {
        if !(30..=MAX_TIMEOUT_S).contains(&timeout) {
            return Err(TenancyError::Invalid(format!(
                "skopeo_timeout_interval must be between 30 and {MAX_TIMEOUT_S} seconds"
            ))
            .into());
        }
        row.skopeo_timeout_s = timeout;
    }
    if let Some(filter) = &request.architecture_filter {
        row.architecture_filter = serde_json::to_string(filter).unwrap_or_default();
    }
    if row.password_sealed.is_some() && row.username_sealed.is_none() {
        return Err(TenancyError::Invalid(
            "external_registry_password needs external_registry_username".into(),
        )
        .into());
    }
    Ok(())
}

/// `POST .../mirror`: 409 when the repository already has a configuration.
pub async fn create_config(
    ctx: &Ctx,
    caller: &Caller,
    namespace: &str,
    repository: &str,
    request: &api::MirrorRequest,
) -> Result<(), MirrorError> {
    let repo = admin_repo(ctx, caller, namespace, repository).await?;
    let duplicate = || {
        detail(
            409,
            format!("Mirror configuration already exits for repository {namespace}/{repository}"),
        )
    };
    if rows::get(ctx.db.pool(), repo.id).await?.is_some() {
        return Err(duplicate());
    }
    let missing = |field: &str| TenancyError::Invalid(format!("'{field}' is a required property"));
    if request.external_reference.is_none() {
        return Err(missing("external_reference").into());
    }
    if request.sync_interval.is_none() {
        return Err(missing("sync_interval").into());
    }
    if request.sync_start_date.is_none() {
        return Err(missing("sync_start_date").into());
    }
    if request.root_rule.is_none() {
        return Err(missing("root_rule").into());
    }
    if request.robot_username.is_none() {
        return Err(missing("robot_username").into());
    }
    let mut row = MirrorRow {
        repository_id: repo.id,
        is_enabled: true,
        external_reference: String::new(),
        username_sealed: None,
        password_sealed: None,
        verify_tls: true,
        unsigned_images: false,
        proxy_json: None,
        sync_interval_s: 0,
        sync_start_ms: 0,
        sync_expiration_ms: None,
        sync_retries_remaining: MAX_RETRIES,
        sync_status: rows::NEVER_RUN.into(),
        sync_message: None,
        claimed_by: None,
        robot_account_id: None,
        rule_value: "[]".into(),
        skopeo_timeout_s: DEFAULT_TIMEOUT_S,
        architecture_filter: "[]".into(),
        created_ms: ctx.now_ms(),
    };
    apply(ctx, &repo, &mut row, request).await?;
    match rows::insert(ctx.db.pool(), &row).await {
        Ok(()) => {}
        Err(e) if e.is_unique_violation() => return Err(duplicate()),
        Err(e) => return Err(e.into()),
    }
    let kind = if row.is_enabled {
        "repo_mirror_enabled"
    } else {
        "repo_mirror_disabled"
    };
    ctx.audit.record(
        caller,
        Event::repo(
            kind,
            namespace,
            repository,
            json!({ "namespace": namespace, "repo": repository,
                    "external_reference": row.external_reference }),
        ),
        ctx.now_ms(),
    );
    Ok(())
}

/// `PUT .../mirror`: changes the fields the request names.
pub async fn update_config(
    ctx: &Ctx,
    caller: &Caller,
    namespace: &str,
    repository: &str,
    request: &api::MirrorRequest,
) -> Result<(), MirrorError> {
    let repo = admin_repo(ctx, caller, namespace, repository).await?;
    let old = rows::get(ctx.db.pool(), repo.id)
        .await?
        .ok_or(TenancyError::NotFound)?;
    let mut row = old.clone();
    apply(ctx, &repo, &mut row, request).await?;
    rows::update_config(ctx.db.pool(), &row).await?;
    let mut changed: Vec<&str> = Vec::new();
    if let Some(enabled) = request.is_enabled
        && enabled != old.is_enabled
    {
        let kind = if enabled {
            "repo_mirror_enabled"
        } else {
            "repo_mirror_disabled"
        };
        ctx.audit.record(
            caller,
            Event::repo(
                kind,
                namespace,
                repository,
                json!({ "namespace": namespace, "repo": repository }),
            ),
            ctx.now_ms(),
        );
    }
    for (name, present) in [
        ("external_reference", request.external_reference.is_some()),
        (
            "external_registry_username",
            request.external_registry_username.is_some(),
        ),
        (
            "external_registry_password",
            request.external_registry_password.is_some(),
        ),
        (
            "external_registry_config",
            request.external_registry_config.is_some(),
        ),
        ("sync_interval", request.sync_interval.is_some()),
        ("sync_start_date", request.sync_start_date.is_some()),
        ("root_rule", request.root_rule.is_some()),
        ("robot_username", request.robot_username.is_some()),
        (
            "skopeo_timeout_interval",
            request.skopeo_timeout_interval.is_some(),
        ),
        ("architecture_filter", request.architecture_filter.is_some()),
    ] {
        if present {
            changed.push(name);
        }
    }
    for field in changed {
        ctx.audit.record(
            caller,
            Event::repo(
                "repo_mirror_config_changed",
                namespace,
                repository,
                json!({ "namespace": namespace, "repo": repository, "changed": field }),
            ),
            ctx.now_ms(),
        );
    }
    Ok(())
}

/// `POST .../mirror/sync-now`: due at once (404 while a sync runs, as in Quay).
pub async fn sync_now(
    ctx: &Ctx,
    caller: &Caller,
    namespace: &str,
    repository: &str,
) -> Result<(), MirrorError> {
    let repo = admin_repo(ctx, caller, namespace, repository).await?;
    if !rows::request_sync_now(ctx.db.pool(), repo.id, MAX_RETRIES).await? {
        return Err(TenancyError::NotFound.into());
    }
    ctx.audit.record(
        caller,
        Event::repo(
            "repo_mirror_sync_now_requested",
            namespace,
            repository,
            json!({ "namespace": namespace, "repo": repository }),
        ),
        ctx.now_ms(),
    );
    Ok(())
}

/// `POST .../mirror/sync-cancel`: stops a sync that runs or was requested (404 otherwise).
pub async fn sync_cancel(
    ctx: &Ctx,
    caller: &Caller,
    namespace: &str,
    repository: &str,
) -> Result<(), MirrorError> {
    let repo = admin_repo(ctx, caller, namespace, repository).await?;
    if !rows::cancel(ctx.db.pool(), repo.id, ctx.now_ms()).await? {
        return Err(TenancyError::NotFound.into());
    }
    ctx.audit.record(
        caller,
        Event::repo(
            "repo_mirror_sync_cancelled",
            namespace,
            repository,
            json!({ "namespace": namespace, "repo": repository }),
        ),
        ctx.now_ms(),
    );
    Ok(())
}

/// `PUT /repository/{repo}/changestate` (administrators): `NORMAL`, `READ_ONLY` or `MIRROR`
/// (the last only with `FEATURE_REPO_MIRROR`). The repository's state is a column of the
/// repository; it is changed here because its answers are the mirror API's.
pub async fn change_state(
    ctx: &Ctx,
    caller: &Caller,
    namespace: &str,
    repository: &str,
    state: &str,
) -> Result<api::Success, MirrorError> {
    let repo = repositories::checked(ctx, caller, Action::Admin, namespace, repository).await?;
    let parsed = RepoState::parse(state);
    if parsed == Some(RepoState::Mirror) && !ctx.config.mirror.enabled {
        return Err(detail(400, format!("Unknown Repository State: {state}")));
    }
    let Some(parsed) = parsed else {
        return Err(detail(
            400,
            format!("{state} is not a valid Repository state."),
        ));
    };
    db::content::repositories::set_state(ctx.db.pool(), repo.id, parsed.as_str()).await?;
    ctx.pull_cache.invalidate().await;
    ctx.audit.record(
        caller,
        Event::repo(
            "change_repo_state",
            namespace,
            repository,
            json!({ "repo": repository, "namespace": namespace, "state_changed": parsed.as_str() }),
        ),
        ctx.now_ms(),
    );
    Ok(api::Success { success: true })
}

// ---------------------------------------------------------------------------------------------
// Tag patterns

/// Quay's `fnmatch` over a tag: `*` any run, `?` one character, `[abc]`/`[a-z]`/`[!x]` a class.
pub fn glob_matches(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    matches_from(&p, &n)
}

fn matches_from(p: &[char], n: &[char]) -> bool {
    // Iterative with one backtrack point for the last `*` (linear in practice).
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() {
            match p[pi] {
                '*' => {
                    star = Some((pi, ni));
                    pi += 1;
                    continue;
                }
                '?' => {
                    pi += 1;
                    ni += 1;
                    continue;
                }
                '[' => {
                    if let Some((matched, len)) = class(&p[pi..], n[ni])
                        && matched
                    {
                        pi += len;
                        ni += 1;
                        continue;
                    } else if class(&p[pi..], n[ni]).is_none() && n[ni] == '[' {
                        pi += 1;
                        ni += 1;
                        continue;
                    }
                }
                c if c == n[ni] => {
                    pi += 1;
                    ni += 1;
                    continue;
                }
                _ => {}
            }
        }
        match star {
            Some((sp, sn)) => {
                pi = sp + 1;
                ni = sn + 1;
                star = Some((sp, sn + 1));
            }
            None => return false,
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// A `[...]` class at the start of `p`: whether `c` is in it and the class's length; `None`
/// when `p` holds no closed class (then `[` is a literal).
fn class(p: &[char], c: char) -> Option<(bool, usize)> {
    let mut i = 1;
    let negated = matches!(p.get(1), Some('!') | Some('^'));
    if negated {
        i += 1;
    }
    let start = i;
    let mut found = false;
    while i < p.len() {
        if p[i] == ']' && i > start {
            return Some((found != negated, i + 1));
        }
        if i + 2 < p.len() && p[i + 1] == '-' && p[i + 2] != ']' {
            if p[i] <= c && c <= p[i + 2] {
                found = true;
            }
            i += 3;
        } else {
            if p[i] == c {
                found = true;
            }
            i += 1;
        }
    }
    None
}

// ---------------------------------------------------------------------------------------------
// The worker

/// What one worker pass did.
#[derive(Debug, Default)]
pub struct PassReport {
    pub synced: usize,
    pub failed: usize,
    pub cancelled: usize,
}

impl std::fmt::Display for PassReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "mirrors synced: {}, failed: {}, cancelled: {}",
            self.synced, self.failed, self.cancelled
        )
    }
}

/// Syncs every due mirror, one claim at a time, as `holder` (a worker's identity, unique per
/// process). Several replicas may run passes at once: each mirror is claimed by one.
pub async fn worker_pass(ctx: &Ctx, holder: &str) -> Result<PassReport, Internal> {
    let mut report = PassReport::default();
    if !ctx.config.mirror.enabled {
        return Ok(report);
    }
    // Bounded: a pass never loops on a mirror that is immediately due again.
    let mut seen = BTreeSet::new();
    loop {
        let now = ctx.now_ms();
        let mut tx = ctx.db.begin().await?;
        // The first lease is short; the sync renews it with the mirror's timeout.
        let claimed = rows::claim_due(&mut tx, holder, now, now + 60_000).await?;
        tx.commit().await?;
        let Some(row) = claimed else {
            return Ok(report);
        };
        if !seen.insert(row.repository_id) {
            // Claimed twice in one pass (a retry): give it back for the next pass.
            rows::release(ctx.db.pool(), row.repository_id, holder).await?;
            return Ok(report);
        }
        match sync(ctx, holder, &row).await? {
            Synced::Success => report.synced += 1,
            Synced::Failed => report.failed += 1,
            Synced::Cancelled => report.cancelled += 1,
        }
    }
}

enum Synced {
    Success,
    Failed,
    Cancelled,
}

/// Why a sync failed (shown in the audit log and the worker's log).
struct SyncFailure(String);

/// The next scheduled start after a sync that ends the current schedule: the first multiple of
/// the interval after `start` that lies ahead of `now` (Quay's rule).
fn next_start(start_ms: i64, interval_s: i64, now_ms: i64) -> i64 {
    let interval = interval_s.max(1).saturating_mul(1000);
    let elapsed = now_ms - start_ms;
    now_ms + interval - elapsed.rem_euclid(interval)
}

async fn sync(ctx: &Ctx, holder: &str, row: &MirrorRow) -> Result<Synced, Internal> {
    let repo = match repo_of(ctx, row.repository_id).await? {
        Some(r) => r,
        None => return Ok(Synced::Cancelled),
    };
    let name = RepoName::from_parts(&repo.namespace, &repo.name)
        .map_err(|e| Internal::Other(format!("stored repository name: {e}")))?;
    let lease = row.skopeo_timeout_s.max(30).saturating_mul(1000);
    if !rows::renew(
        ctx.db.pool(),
        row.repository_id,
        holder,
        ctx.now_ms() + lease,
    )
    .await?
    {
        return Ok(Synced::Cancelled);
    }
    notify_mirror(
        ctx,
        &name,
        "repo_mirror_sync_started",
        json!({ "namespace": name.namespace(), "repo": name.repository(),
                "message": format!("Mirror started for {}", row.external_reference) }),
    )
    .await;
    tracing::info!(repository = %name, upstream = %row.external_reference, "mirror sync started");
    let outcome = copy_all(ctx, holder, row, &name, &repo, lease).await?;
    let now = ctx.now_ms();
    let (status, message, retries, next) = match &outcome {
        Copied::Cancelled => {
            let message = "the sync was cancelled";
            rows::note(ctx.db.pool(), row.repository_id, message).await?;
            tracing::info!(repository = %name, "mirror sync cancelled");
            return Ok(Synced::Cancelled);
        }
        Copied::Done { tags } => (
            rows::SUCCESS,
            format!("Mirror finished: {} tags", tags.len()),
            MAX_RETRIES,
            next_start(row.sync_start_ms, row.sync_interval_s, now),
        ),
        Copied::Failed(SyncFailure(reason)) => {
            let retries = (row.sync_retries_remaining - 1).max(0);
            let (retries, next) = if retries < 1 {
                (
                    MAX_RETRIES,
                    next_start(row.sync_start_ms, row.sync_interval_s, now),
                )
            } else {
                (retries, row.sync_start_ms)
            };
            (rows::FAIL, reason.clone(), retries, next)
        }
    };
    let recorded = rows::finish(
        ctx.db.pool(),
        row.repository_id,
        holder,
        &Outcome {
            status,
            message: Some(&message),
            next_start_ms: next,
            retries_remaining: retries,
            // A retry waits for the worker's next pass (never again in this one).
            retry_after_ms: (status == rows::FAIL && retries < MAX_RETRIES)
                .then(|| now.saturating_add(ctx.config.mirror.interval.as_millis() as i64)),
        },
    )
    .await?;
    if !recorded {
        // Cancelled (or taken over) after the last tag: the canceller's status stands.
        return Ok(Synced::Cancelled);
    }
    match outcome {
        Copied::Done { tags } => {
            tracing::info!(repository = %name, tags = tags.len(), "mirror sync finished");
            notify_mirror(
                ctx,
                &name,
                "repo_mirror_sync_success",
                json!({ "namespace": name.namespace(), "repo": name.repository(),
                        "message": message, "tags": tags }),
            )
            .await;
            Ok(Synced::Success)
        }
        _ => {
            tracing::warn!(repository = %name, upstream = %row.external_reference, reason = %message, "mirror sync failed");
            notify_mirror(
                ctx,
                &name,
                "repo_mirror_sync_failed",
                json!({ "namespace": name.namespace(), "repo": name.repository(),
                        "message": message }),
            )
            .await;
            Ok(Synced::Failed)
        }
    }
}

enum Copied {
    Done { tags: Vec<String> },
    Failed(SyncFailure),
    Cancelled,
}

async fn repo_of(ctx: &Ctx, repository_id: i64) -> Result<Option<RepoRow>, Internal> {
    Ok(db::content::repositories::by_id(ctx.db.pool(), repository_id).await?)
}

/// The SSRF guard every upstream of a mirror passes (`SSRF_ALLOWED_HOSTS`).
fn guard(ctx: &Ctx) -> ssrf::Guard {
    ssrf::Guard::new(&ctx.config.ssrf_allowed_hosts)
}

fn upstream_of(ctx: &Ctx, row: &MirrorRow) -> Result<(Upstream, String), SyncFailure> {
    let (host, path) = parse_reference(&row.external_reference)
        .map_err(|e| SyncFailure(format!("stored external_reference: {e}")))?;
    let open = |sealed: &Option<String>| sealed.as_deref().and_then(|s| ctx.sealer().open(s));
    let upstream = Upstream::new(
        UpstreamConfig {
            registry: host,
            username: open(&row.username_sealed),
            password: open(&row.password_sealed),
            insecure: !row.verify_tls,
            proxy: row
                .proxy_json
                .as_deref()
                .and_then(|p| serde_json::from_str(p).ok()),
        },
        UpstreamOptions {
            guard: guard(ctx),
            ..UpstreamOptions::default()
        },
    )
    .map_err(|e| SyncFailure(e.to_string()))?;
    Ok((upstream, path))
}

fn describe_upstream(e: &UpstreamError) -> String {
    match e {
        UpstreamError::Unauthorized(m) => format!(
            "the upstream registry refused the credentials (check external_registry_username and external_registry_password): {m}"
        ),
        other => other.to_string(),
    }
}

async fn copy_all(
    ctx: &Ctx,
    holder: &str,
    row: &MirrorRow,
    name: &RepoName,
    repo: &RepoRow,
    lease_ms: i64,
) -> Result<Copied, Internal> {
    let (upstream, path) = match upstream_of(ctx, row) {
        Ok(u) => u,
        Err(f) => return Ok(Copied::Failed(f)),
    };
    let robot = match row.robot_account_id {
        Some(id) => db::tenancy::robots::by_id(ctx.db.pool(), id).await?,
        None => None,
    };
    let Some(robot) = robot else {
        return Ok(Copied::Failed(SyncFailure(
            "the mirror has no robot account (robot_username was deleted)".into(),
        )));
    };
    let robot = Principal::Robot(RobotRef {
        id: robot.account_id,
        name: robot.name,
        owner: robot.owner,
    });
    let upstream_tags = match upstream.tags(&path).await {
        Ok(Some(tags)) => tags,
        Ok(None) => {
            return Ok(Copied::Failed(SyncFailure(format!(
                "the upstream repository {} does not exist",
                row.external_reference
            ))));
        }
        Err(e) => return Ok(Copied::Failed(SyncFailure(describe_upstream(&e)))),
    };
    let globs: Vec<String> = serde_json::from_str(&row.rule_value).unwrap_or_default();
    let wanted: BTreeSet<String> = upstream_tags
        .into_iter()
        .filter(|t| crate::oci::names::validate_tag(t))
        .filter(|t| globs.iter().any(|g| glob_matches(g, t)))
        .collect();
    let mut failures: Vec<String> = Vec::new();
    for tag in &wanted {
        ctx.pauses.point("mirror.before_tag").await;
        if !rows::renew(
            ctx.db.pool(),
            row.repository_id,
            holder,
            ctx.now_ms() + lease_ms,
        )
        .await?
        {
            return Ok(Copied::Cancelled);
        }
        match copy_tag(ctx, &upstream, &path, &robot, name, repo, tag).await {
            Ok(digest) => ctx.audit.record(
                &Caller::new(robot.clone(), None),
                Event::repo(
                    "repo_mirror_sync_tag_success",
                    name.namespace(),
                    name.repository(),
                    json!({ "namespace": name.namespace(), "repo": name.repository(),
                            "tag": tag, "manifest_digest": digest,
                            "message": format!("Mirrored {}:{tag}", row.external_reference) }),
                ),
                ctx.now_ms(),
            ),
            Err(reason) => {
                tracing::warn!(repository = %name, tag, %reason, "mirroring a tag failed");
                ctx.audit.record(
                    &Caller::new(robot.clone(), None),
                    Event::repo(
                        "repo_mirror_sync_tag_failed",
                        name.namespace(),
                        name.repository(),
                        json!({ "namespace": name.namespace(), "repo": name.repository(),
                                "tag": tag, "message": reason }),
                    ),
                    ctx.now_ms(),
                );
                failures.push(format!("{tag}: {reason}"));
            }
        }
    }
    if !rows::renew(
        ctx.db.pool(),
        row.repository_id,
        holder,
        ctx.now_ms() + lease_ms,
    )
    .await?
    {
        return Ok(Copied::Cancelled);
    }
    // Tags the upstream no longer has (or the rule no longer matches) are ended.
    let now = ctx.now_ms();
    let local = db::content::tags::live_all(ctx.db.pool(), ctx.db.backend(), repo.id, now).await?;
    let mut removed = Vec::new();
    for lifetime in local {
        if !wanted.contains(&lifetime.name) {
            let mut tx = ctx.db.begin().await?;
            if db::content::repositories::lock(&mut tx, repo.id).await? {
                db::content::tags::end_live(&mut *tx, repo.id, &lifetime.name, now).await?;
            }
            tx.commit().await?;
            removed.push(lifetime.name);
        }
    }
    if !removed.is_empty() {
        ctx.pull_cache.invalidate().await;
        tracing::info!(repository = %name, ?removed, "tags gone upstream ended");
    }
    if failures.is_empty() {
        Ok(Copied::Done {
            tags: wanted.into_iter().collect(),
        })
    } else {
        Ok(Copied::Failed(SyncFailure(format!(
            "{} of {} tags failed: {}",
            failures.len(),
            wanted.len(),
            failures.join("; ")
        ))))
    }
}

/// Copies one tag: its manifest (a list's children first) and every blob they need, then
/// points the tag. Returns the manifest's digest.
async fn copy_tag(
    ctx: &Ctx,
    upstream: &Upstream,
    path: &str,
    robot: &Principal,
    name: &RepoName,
    repo: &RepoRow,
    tag: &str,
) -> Result<String, String> {
    let fetched = upstream
        .manifest(path, tag)
        .await
        .map_err(|e| describe_upstream(&e))?
        .ok_or_else(|| "the upstream no longer has this tag".to_owned())?;
    let live = db::content::tags::live_one(ctx.db.pool(), repo.id, tag, ctx.now_ms())
        .await
        .map_err(|e| e.to_string())?;
    if live.is_some_and(|l| l.manifest_digest == fetched.digest.as_str()) {
        return Ok(fetched.digest.to_string());
    }
    let parsed = parse(&fetched.media_type, &fetched.content)?;
    for child in &parsed.manifests {
        let child_digest = child.digest.clone();
        if db::content::manifests::by_digest(ctx.db.pool(), repo.id, child_digest.as_str())
            .await
            .map_err(|e| e.to_string())?
            .is_some_and(|m| m.deleted_ms.is_none())
        {
            continue;
        }
        let m = upstream
            .manifest(path, child_digest.as_str())
            .await
            .map_err(|e| describe_upstream(&e))?
            .ok_or_else(|| format!("the upstream lacks the list's child {child_digest}"))?;
        let child_parsed = parse(&m.media_type, &m.content)?;
        copy_blobs(ctx, upstream, path, robot, name, repo, &child_parsed).await?;
        push(
            ctx,
            robot,
            name,
            child_digest.as_str(),
            &m.media_type,
            m.content,
        )
        .await?;
    }
    copy_blobs(ctx, upstream, path, robot, name, repo, &parsed).await?;
    let pushed = push(
        ctx,
        robot,
        name,
        tag,
        &fetched.media_type,
        fetched.content.clone(),
    )
    .await?;
    if pushed != fetched.digest {
        // A manifest whose digest is not sha256 is stored under its sha256 by a tag push.
        tracing::debug!(%pushed, upstream = %fetched.digest, "mirrored manifest stored under another digest");
    }
    Ok(pushed.to_string())
}

fn parse(media_type: &str, content: &Bytes) -> Result<manifest::ParsedManifest, String> {
    let content_type = (!media_type.is_empty()).then_some(media_type);
    manifest::parse(content_type, content)
        .map_err(|e| format!("the upstream's manifest does not parse: {e}"))
}

async fn push(
    ctx: &Ctx,
    robot: &Principal,
    name: &RepoName,
    reference: &str,
    media_type: &str,
    content: Bytes,
) -> Result<Digest, String> {
    let content_type = (!media_type.is_empty()).then_some(media_type);
    manifests::put(ctx, robot, name, reference, content_type, content)
        .await
        .map(|p| p.digest)
        .map_err(|e| push_error(&e))
}

fn push_error(e: &RegistryError) -> String {
    match e {
        RegistryError::Denied | RegistryError::Unauthorized => {
            "the mirror robot may not write to this repository".into()
        }
        other => other.to_string(),
    }
}

/// Streams every blob of a manifest the repository does not hold yet from the upstream into
/// it (the upload verifies the digest).
async fn copy_blobs(
    ctx: &Ctx,
    upstream: &Upstream,
    path: &str,
    robot: &Principal,
    name: &RepoName,
    repo: &RepoRow,
    parsed: &manifest::ParsedManifest,
) -> Result<(), String> {
    for blob in parsed.required_blobs() {
        let digest = blob.digest.clone();
        if db::content::blobs::size_in_repo(ctx.db.pool(), repo.id, digest.as_str())
            .await
            .map_err(|e| e.to_string())?
            .is_some()
        {
            continue;
        }
        let body = upstream
            .blob(path, &digest)
            .await
            .map_err(|e| describe_upstream(&e))?
            .ok_or_else(|| format!("the upstream lacks blob {digest}"))?;
        uploads::monolithic(ctx, robot, name, digest.as_str(), body.stream)
            .await
            .map_err(|e| format!("blob {digest}: {}", push_error(&e)))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        for (p, n, want) in [
            ("latest", "latest", true),
            ("latest", "latest2", false),
            ("v*", "v1.2", true),
            ("v*", "1.2", false),
            ("*", "", true),
            ("*-alpine", "3.19-alpine", true),
            ("*-alpine", "3.19-alpine-x", false),
            ("v?.?", "v1.2", true),
            ("v?.?", "v1.22", false),
            ("v[0-9]*", "v3", true),
            ("v[0-9]*", "vx", false),
            ("v[!0-9]*", "vx", true),
            ("[", "[", true),
            ("a*b*c", "axxbyyc", true),
            ("a*b*c", "axxbyy", false),
        ] {
            assert_eq!(glob_matches(p, n), want, "{p} {n}");
        }
    }

    #[test]
    fn dates() {
        let ms = parse_date(&json!("2030-01-01T00:00:00Z")).unwrap();
        assert_eq!(format_date(ms), "2030-01-01T00:00:00Z");
        for bad in [
            json!("tomorrow"),
            json!("2030-01-01"),
            json!("2030-01-01T00:00:00+01:00"),
            json!(5),
        ] {
            assert!(
                matches!(
                    parse_date(&bad),
                    Err(MirrorError::Detail { status: 400, .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn references() {
        assert_eq!(
            parse_reference("127.0.0.1:5000/library/hello").unwrap(),
            ("127.0.0.1:5000".into(), "library/hello".into())
        );
        assert_eq!(
            parse_reference("quay.io/minio/mc").unwrap(),
            ("quay.io".into(), "minio/mc".into())
        );
        for bad in [
            "quay.io",
            "quay.io/",
            "https://quay.io/x",
            "quay.io/Mc",
            "quay.io/x:tag",
        ] {
            assert!(parse_reference(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn schedule() {
        let h = 3_600;
        // Scheduled at 0, finished at 2.5 h: next at 3 h.
        assert_eq!(next_start(0, h, 9_000_000), 10_800_000);
        // Scheduled in the future (sync-now ran early): the next multiple ahead of now.
        assert_eq!(next_start(10 * 3_600_000, h, 1_000), 3_600_000);
    }
}
