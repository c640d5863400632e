//! Repositories as the REST API sees them: creation (through the API or by a first push), Quay's
//! repository view and listing, description, visibility, deletion and stars.
//!
//! Creating a repository gives its creator (a user or robot, unless it is the namespace itself)
//! `admin` on it, and in an organization applies the default permissions (prototypes) whose
//! activating user is the creator or anyone; a creator-specific prototype wins over an
//! "anyone" prototype for the same delegate.

use std::collections::{BTreeMap, HashMap};

use quayside_client::types as api;
use serde_json::json;

use super::audit::{Caller, Event};
use super::authz::{self, Action, Resource};
use super::{Ctx, Principal, RegistryError, TenancyError, views};
use crate::db::{self, repos::RepoRow};
use crate::oci::RepoName;

/// Most repositories one page of `GET /api/v1/repository` holds (Quay's page size).
pub const PAGE: i64 = 100;

/// Names Quay refuses for repositories (they collide with its own routes).
const RESERVED: [&str; 3] = ["build", "trigger", "tag"];

/// Quay's repository name rule: lower-case letters, digits and single `.`, `_`, `-` separators
/// (and `/` between path components), 1 to 255 characters, not a reserved word.
pub fn validate_repository_name(name: &str) -> Result<(), String> {
    if RESERVED.contains(&name) {
        return Err(format!(
            "Invalid repository name: {name} is a reserved name"
        ));
    }
    let component_ok = |c: &str| {
        !c.is_empty()
            && c.chars()
                .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || "._-".contains(ch))
            && c.chars()
                .next()
                .is_some_and(|ch| ch.is_ascii_alphanumeric())
            && c.chars()
                .last()
                .is_some_and(|ch| ch.is_ascii_alphanumeric())
    };
    if name.len() > 255 || !name.split('/').all(component_ok) {
        return Err("Invalid repository name".into());
    }
    Ok(())
}

/// Inserts a repository and its initial permissions in one transaction. Returns `None` when it
/// already exists.
async fn insert_with_permissions(
    ctx: &Ctx,
    creator: Option<&super::Account>,
    namespace: &db::namespaces::NamespaceRow,
    name: &str,
    visibility: &str,
    description: Option<&str>,
) -> Result<Option<i64>, TenancyError> {
    let now = ctx.now_ms();
    let mut tx = ctx.db.begin().await?;
    let id =
        match db::repos::insert(&mut *tx, namespace.id, name, visibility, description, now).await {
            Ok(id) => id,
            Err(e) if e.is_unique_violation() => return Ok(None),
            Err(e) => return Err(e.into()),
        };
    if let Some(creator) = creator.filter(|c| c.id != namespace.id) {
        db::permissions::set_user(&mut *tx, id, creator.id, "admin").await?;
        if namespace.is_org() {
            apply_prototypes(&mut tx, namespace.id, id, creator.id).await?;
        }
    }
    tx.commit().await?;
    ctx.pull_cache.invalidate();
    Ok(Some(id))
}

async fn apply_prototypes(
    tx: &mut db::Tx,
    org_id: i64,
    repository_id: i64,
    creator_id: i64,
) -> Result<(), TenancyError> {
    let prototypes = db::permissions::prototypes(&mut **tx, org_id).await?;
    // Per delegate: a prototype for this creator wins over one for anyone.
    let mut chosen: HashMap<(bool, i64), (bool, String)> = HashMap::new();
    for p in prototypes {
        let specific = match p.activating_account_id {
            Some(a) if a == creator_id => true,
            Some(_) => continue,
            None => false,
        };
        let key = match (p.delegate_team_id, p.delegate_account_id) {
            (Some(team), _) => (true, team),
            (None, Some(account)) => (false, account),
            (None, None) => continue,
        };
        match chosen.get(&key) {
            Some((true, _)) if !specific => {}
            _ => {
                chosen.insert(key, (specific, p.role));
            }
        }
    }
    for ((is_team, id), (_, role)) in chosen {
        if is_team {
            db::permissions::set_team(&mut **tx, repository_id, id, &role).await?;
        } else if id != creator_id {
            db::permissions::set_user(&mut **tx, repository_id, id, &role).await?;
        }
    }
    Ok(())
}

/// Creates the repository a push names (private), after the caller was found allowed to.
pub async fn create_on_push(
    ctx: &Ctx,
    principal: &Principal,
    name: &RepoName,
) -> Result<RepoRow, RegistryError> {
    let namespace = db::namespaces::by_name(ctx.db.pool(), name.namespace())
        .await?
        .ok_or(RegistryError::NameUnknown)?;
    if RESERVED.contains(&name.repository()) {
        return Err(RegistryError::NameInvalid(format!(
            "{} is a reserved repository name",
            name.repository()
        )));
    }
    let creator = principal.account();
    match insert_with_permissions(
        ctx,
        creator.as_ref(),
        &namespace,
        name.repository(),
        "private",
        None,
    )
    .await
    {
        Ok(Some(_)) => {
            ctx.audit.record(
                &Caller::new(principal.clone(), super::audit::current_ip()),
                Event::repo(
                    "create_repo",
                    name.namespace(),
                    name.repository(),
                    json!({ "repo": name.repository(), "namespace": name.namespace() }),
                ),
                ctx.now_ms(),
            );
        }
        Ok(None) => {}
        Err(TenancyError::Internal(i)) => return Err(RegistryError::Internal(i)),
        Err(_) => return Err(RegistryError::Denied),
    }
    db::repos::get(ctx.db.pool(), name.namespace(), name.repository())
        .await?
        .ok_or(RegistryError::NameUnknown)
}

/// `POST /api/v1/repository`.
pub async fn create(
    ctx: &Ctx,
    caller: &Caller,
    request: &api::CreateRepositoryRequest,
) -> Result<api::CreatedRepository, TenancyError> {
    let p = &caller.principal;
    let namespace = match &request.namespace {
        Some(ns) => ns.clone(),
        None => match p.user() {
            Some(u) => u.name.clone(),
            None => {
                return Err(TenancyError::Invalid(
                    "Must provide a namespace or must be logged in.".into(),
                ));
            }
        },
    };
    authz::require(ctx, p, Action::CreateRepo, Resource::Namespace(&namespace)).await?;
    if !matches!(request.visibility.as_str(), "public" | "private") {
        return Err(TenancyError::Invalid(format!(
            "visibility: {:?} is not one of ['public', 'private']",
            request.visibility
        )));
    }
    let kind = request.repo_kind.clone().unwrap_or_else(|| "image".into());
    if kind != "image" {
        return Err(TenancyError::Invalid(format!(
            "repo_kind: {kind:?} is not one of ['image', None]"
        )));
    }
    validate_repository_name(&request.repository).map_err(TenancyError::Invalid)?;
    let ns = db::namespaces::by_name(ctx.db.pool(), &namespace)
        .await?
        .filter(|n| !n.is_robot())
        .ok_or(TenancyError::NotFound)?;
    let creator = p.account();
    let created = insert_with_permissions(
        ctx,
        creator.as_ref(),
        &ns,
        &request.repository,
        &request.visibility,
        Some(&request.description),
    )
    .await?;
    if created.is_none() {
        return Err(TenancyError::Invalid("Repository already exists".into()));
    }
    ctx.audit.record(
        caller,
        Event::repo(
            "create_repo",
            &namespace,
            &request.repository,
            json!({ "repo": request.repository, "namespace": namespace }),
        ),
        ctx.now_ms(),
    );
    Ok(api::CreatedRepository {
        namespace,
        name: request.repository.clone(),
        kind,
    })
}

fn repo_name(namespace: &str, repository: &str) -> Result<RepoName, TenancyError> {
    RepoName::parse(&format!("{namespace}/{repository}")).map_err(|_| TenancyError::NotFound)
}

/// The repository after checking `action` on it: `Forbidden` when not allowed, `NotFound` when
/// allowed but missing.
pub async fn checked(
    ctx: &Ctx,
    caller: &Caller,
    action: Action,
    namespace: &str,
    repository: &str,
) -> Result<RepoRow, TenancyError> {
    let name = repo_name(namespace, repository)?;
    authz::require(ctx, &caller.principal, action, Resource::Repo(&name)).await?;
    db::repos::get(ctx.db.pool(), namespace, repository)
        .await?
        .ok_or(TenancyError::NotFound)
}

/// `GET /api/v1/repository/{namespace}/{repository}`.
pub async fn get(
    ctx: &Ctx,
    caller: &Caller,
    namespace: &str,
    repository: &str,
    include_tags: bool,
    include_stats: bool,
) -> Result<api::Repository, TenancyError> {
    let repo = checked(ctx, caller, Action::Pull, namespace, repository).await?;
    let name = repo_name(namespace, repository)?;
    let p = &caller.principal;
    let can_write = authz::can(ctx, p, Action::Push, Resource::Repo(&name)).await?;
    let can_admin = authz::can(ctx, p, Action::Admin, Resource::Repo(&name)).await?;
    let ns = db::namespaces::by_id(ctx.db.pool(), repo.namespace_id)
        .await?
        .ok_or(TenancyError::NotFound)?;
    let is_starred = match p.account() {
        Some(a) => db::repositories::is_starred(ctx.db.pool(), a.id, repo.id).await?,
        None => false,
    };
    let status_token = if repo.is_public() {
        String::new()
    } else {
        db::repositories::badge_token(ctx.db.pool(), repo.id, &uuid::Uuid::new_v4().to_string())
            .await?
    };
    let tags = if include_tags {
        let tags = db::repositories::live_tags(ctx.db.pool(), repo.id, ctx.now_ms(), 500).await?;
        Some(
            tags.into_iter()
                .map(|t| {
                    let view = api::RepositoryTag {
                        name: t.name.clone(),
                        size: t.size,
                        last_modified: Some(views::format_date(t.start_ms)),
                        expiration: t.expiration_ms.map(views::format_date),
                        manifest_digest: t.digest,
                    };
                    (t.name, view)
                })
                .collect::<BTreeMap<_, _>>(),
        )
    } else {
        None
    };
    let stats = if include_stats {
        Some(stats(ctx, repo.id).await?)
    } else {
        None
    };
    Ok(api::Repository {
        namespace: repo.namespace.clone(),
        name: repo.name.clone(),
        kind: repo.kind.clone(),
        description: repo.description.clone(),
        is_public: repo.is_public(),
        is_organization: ns.is_org(),
        is_starred,
        status_token,
        trust_enabled: false,
        tag_expiration_s: ns.tag_expiration_s,
        is_free_account: true,
        state: repo.state.clone(),
        tags,
        can_write: can_write && repo.state == "NORMAL",
        can_admin,
        stats,
    })
}

/// Pulls and pushes per day over the last 91 days (newest first), from the audit log.
async fn stats(ctx: &Ctx, repository_id: i64) -> Result<Vec<api::RepositoryStat>, TenancyError> {
    const DAY_MS: i64 = 86_400_000;
    let today = ctx.now_ms().div_euclid(DAY_MS);
    let counts: HashMap<i64, i64> =
        db::audit::daily_counts(ctx.db.pool(), repository_id, (today - 91) * DAY_MS)
            .await?
            .into_iter()
            .collect();
    let mut out = Vec::new();
    for day in 1..92 {
        let start = (today - day) * DAY_MS;
        let count = counts.get(&(today - day)).copied().unwrap_or(0);
        let date = chrono::DateTime::from_timestamp_millis(start)
            .unwrap_or_default()
            .format("%Y-%m-%d")
            .to_string();
        out.push(api::RepositoryStat { date, count });
    }
    Ok(out)
}

/// Query options of `GET /api/v1/repository`.
#[derive(Clone, Debug, Default)]
pub struct ListOptions {
    pub namespace: Option<String>,
    pub public: bool,
    pub starred: bool,
    pub last_modified: bool,
    pub popularity: bool,
    pub next_page: Option<String>,
}

/// `GET /api/v1/repository`.
pub async fn list(
    ctx: &Ctx,
    caller: &Caller,
    options: &ListOptions,
) -> Result<api::RepositoryList, TenancyError> {
    if options.namespace.is_none() && !options.starred && !options.public {
        return Err(TenancyError::Invalid(
            "namespace, starred or public are required for this API call".into(),
        ));
    }
    let p = &caller.principal;
    if let Some(scopes) = p.scopes()
        && !scopes.has(super::scopes::Scope::RepoRead)
    {
        return Err(TenancyError::Forbidden { anonymous: false });
    }
    let account = p.account();
    if options.starred && account.is_none() {
        return Err(TenancyError::Invalid(
            "starred requires a signed-in user".into(),
        ));
    }
    let after_id = match &options.next_page {
        None => 0,
        Some(token) => open_page_token(ctx, token)
            .ok_or_else(|| TenancyError::Invalid("next_page: invalid page token".into()))?,
    };
    let superuser = p.user().is_some_and(|u| u.superuser);
    let query = db::repositories::ListQuery {
        viewer: account.as_ref().map(|a| a.id),
        superuser: superuser && options.namespace.is_some(),
        namespace: options.namespace.as_deref(),
        starred_only: options.starred,
        include_public: options.public,
        after_id,
        limit: PAGE + 1,
    };
    let mut rows = db::repositories::list(ctx.db.pool(), &query).await?;
    let more = rows.len() as i64 > PAGE;
    rows.truncate(PAGE as usize);
    let next_page = more
        .then(|| rows.last().map(|r| seal_page_token(ctx, r.id)))
        .flatten();
    let month_ago = ctx.now_ms() - 30 * 86_400_000;
    let mut repositories = Vec::with_capacity(rows.len());
    for r in rows {
        let last_modified = if options.last_modified {
            db::repositories::last_modified(ctx.db.pool(), r.id)
                .await?
                .map(|ms| ms / 1000)
        } else {
            None
        };
        let popularity = if options.popularity {
            Some(db::audit::action_count(ctx.db.pool(), r.id, month_ago).await? as f64)
        } else {
            None
        };
        repositories.push(api::RepositoryListItem {
            namespace: r.namespace,
            name: r.name,
            description: r.description,
            is_public: r.visibility == "public",
            kind: r.kind,
            state: r.state,
            last_modified,
            popularity,
            is_starred: r.starred,
            quota_report: views::empty_quota_report(false),
        });
    }
    Ok(api::RepositoryList {
        repositories,
        next_page,
    })
}

fn seal_page_token(ctx: &Ctx, after_id: i64) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(ctx.sealer().seal(&format!("repo:{after_id}")))
}

fn open_page_token(ctx: &Ctx, token: &str) -> Option<i64> {
    use base64::Engine;
    let sealed = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .ok()?;
    let text = ctx.sealer().open(std::str::from_utf8(&sealed).ok()?)?;
    text.strip_prefix("repo:")?.parse().ok()
}

/// `PUT /api/v1/repository/{namespace}/{repository}`: the description.
pub async fn update(
    ctx: &Ctx,
    caller: &Caller,
    namespace: &str,
    repository: &str,
    description: &str,
) -> Result<api::Success, TenancyError> {
    let repo = checked(ctx, caller, Action::Push, namespace, repository).await?;
    db::repositories::set_description(ctx.db.pool(), repo.id, description).await?;
    ctx.pull_cache.invalidate();
    ctx.audit.record(
        caller,
        Event::repo(
            "set_repo_description",
            namespace,
            repository,
            json!({ "repo": repository, "namespace": namespace, "description": description }),
        ),
        ctx.now_ms(),
    );
    Ok(api::Success { success: true })
}

/// `POST .../changevisibility`.
pub async fn change_visibility(
    ctx: &Ctx,
    caller: &Caller,
    namespace: &str,
    repository: &str,
    visibility: &str,
) -> Result<api::Success, TenancyError> {
    let repo = checked(ctx, caller, Action::Admin, namespace, repository).await?;
    if !matches!(visibility, "public" | "private") {
        return Err(TenancyError::Invalid(format!(
            "visibility: {visibility:?} is not one of ['public', 'private']"
        )));
    }
    db::repositories::set_visibility(ctx.db.pool(), repo.id, visibility).await?;
    ctx.pull_cache.invalidate();
    ctx.audit.record(
        caller,
        Event::repo(
            "change_repo_visibility",
            namespace,
            repository,
            json!({ "repo": repository, "namespace": namespace, "visibility": visibility }),
        ),
        ctx.now_ms(),
    );
    Ok(api::Success { success: true })
}

/// `DELETE /api/v1/repository/{namespace}/{repository}`: the repository and everything in it
/// (blobs no longer referenced are reclaimed by garbage collection).
pub async fn delete(
    ctx: &Ctx,
    caller: &Caller,
    namespace: &str,
    repository: &str,
) -> Result<(), TenancyError> {
    let repo = checked(ctx, caller, Action::Admin, namespace, repository).await?;
    ctx.audit.record(
        caller,
        Event::repo(
            "delete_repo",
            namespace,
            repository,
            json!({ "repo": repository, "namespace": namespace }),
        ),
        ctx.now_ms(),
    );
    db::repositories::delete(ctx.db.pool(), repo.id).await?;
    ctx.pull_cache.invalidate();
    Ok(())
}

/// `POST /api/v1/user/starred` and `DELETE /api/v1/user/starred/{repository}`.
pub async fn star(
    ctx: &Ctx,
    caller: &Caller,
    namespace: &str,
    repository: &str,
    starred: bool,
) -> Result<(), TenancyError> {
    let account = caller
        .principal
        .account()
        .ok_or(TenancyError::Forbidden { anonymous: true })?;
    let repo = checked(ctx, caller, Action::Pull, namespace, repository).await?;
    if starred {
        db::repositories::star(ctx.db.pool(), account.id, repo.id, ctx.now_ms()).await?;
    } else {
        db::repositories::unstar(ctx.db.pool(), account.id, repo.id).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_names() {
        for ok in [
            "hello",
            "a",
            "my-repo.v2_x",
            "nested/path",
            "tags",
            "builder",
        ] {
            assert!(validate_repository_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "build",
            "trigger",
            "tag",
            "",
            "Hello",
            "-x",
            "x-",
            "a//b",
            "a b",
            &"a".repeat(256),
        ] {
            assert!(validate_repository_name(bad).is_err(), "{bad}");
        }
    }
}
