//! Repositories: the one module for a repository, whoever asks (the registry protocol or the
//! REST API).
//!
//! - Names: [`parse_name`] (`/v2`), [`validate_repository_name`] (Quay's rule for creation).
//! - Lookups under an access check, where every content service starts: [`authorize`],
//!   [`existing`] (through the pull cache) and [`for_push`] (creating the repository on first
//!   push) answer the registry protocol's errors; [`checked`] and [`resolve_manifest`] the REST
//!   API's. [`require_normal`] refuses writes to a read-only or mirrored repository.
//! - Creation ([`create`], [`create_on_push`]) gives the creator (a user or robot, unless it is
//!   the namespace itself) `admin` on it, and in an organization applies the default
//!   permissions (prototypes) whose activating user is the creator or anyone; a
//!   creator-specific prototype wins over an "anyone" prototype for the same delegate.
//! - Changes: description, visibility, deletion and stars.
//! - Listings (`listing.rs`): the `/v2` catalog and tag list, and `GET /api/v1/repository`.
//! - The REST answer (`view.rs`): [`get`], with the repository's live tags and statistics.
//!
//! This is the lowest content module after the pull cache: it imports no other content service.

mod listing;
mod view;

use std::collections::HashMap;
use std::sync::Arc;

use quayside_client as api;
use serde_json::json;

pub use listing::{ListOptions, MAX_PAGE, PAGE, Page, catalog, list, list_tags, starred};
pub use view::{get, tag_size};

use crate::db::{self, content::manifests::ManifestRow, content::repositories::RepoRow};
use crate::oci::{Digest, RepoName};
use crate::service::access::authz::{self, Action, Resource};
use crate::service::content::quota;
use crate::service::operations::audit::{Caller, Event};
use crate::service::{Account, Ctx, Principal, RegistryError, TenancyError};

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

/// A repository name of the registry protocol (`namespace/repository`, possibly nested).
pub fn parse_name(name: &str) -> Result<RepoName, RegistryError> {
    RepoName::parse(name).map_err(|e| RegistryError::NameInvalid(e.to_string()))
}

/// Inserts a repository and its initial permissions in one transaction. Returns `None` when it
/// already exists.
async fn insert_with_permissions(
    ctx: &Ctx,
    creator: Option<&Account>,
    namespace: &db::tenancy::namespaces::NamespaceRow,
    name: &str,
    visibility: &str,
    description: Option<&str>,
) -> Result<Option<i64>, TenancyError> {
    let now = ctx.now_ms();
    let mut tx = ctx.db.begin().await?;
    let id = match db::content::repositories::insert(
        &mut *tx,
        namespace.id,
        name,
        visibility,
        description,
        now,
    )
    .await
    {
        Ok(id) => id,
        Err(e) if e.is_unique_violation() => return Ok(None),
        // The namespace was deleted since it was read (an organization deleted while a push
        // creates a repository in it): it does not exist, as a later read would say.
        Err(e) if e.is_foreign_key_violation() => return Err(TenancyError::NotFound),
        Err(e) => return Err(e.into()),
    };
    if let Some(creator) = creator.filter(|c| c.id != namespace.id) {
        db::tenancy::permissions::set_user(&mut *tx, id, creator.id, "admin").await?;
        if namespace.is_org() {
            apply_prototypes(&mut tx, namespace.id, id, creator.id).await?;
        }
    }
    tx.commit().await?;
    ctx.pull_cache.invalidate().await;
    Ok(Some(id))
}

async fn apply_prototypes(
    tx: &mut db::Tx,
    org_id: i64,
    repository_id: i64,
    creator_id: i64,
) -> Result<(), TenancyError> {
    let prototypes = db::tenancy::permissions::prototypes(&mut **tx, org_id).await?;
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
            db::tenancy::permissions::set_team(&mut **tx, repository_id, id, &role).await?;
        } else if id != creator_id {
            db::tenancy::permissions::set_user(&mut **tx, repository_id, id, &role).await?;
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
    let namespace = db::tenancy::namespaces::by_name(ctx.db.pool(), name.namespace())
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
                &Caller::new(
                    principal.clone(),
                    crate::service::operations::audit::current_ip(),
                ),
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
        Err(TenancyError::NotFound) => return Err(RegistryError::NameUnknown),
        Err(TenancyError::Internal(i)) => return Err(RegistryError::Internal(i)),
        Err(_) => return Err(RegistryError::Denied),
    }
    db::content::repositories::get(ctx.db.pool(), name.namespace(), name.repository())
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
    let ns = db::tenancy::namespaces::by_name(ctx.db.pool(), &namespace)
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

/// Fails with `Unauthorized` (anonymous callers, and bearer tokens that lack the scope so the
/// client can fetch a better one) or `Denied` (signed-in callers) unless `can` allows.
pub async fn authorize(
    ctx: &Ctx,
    principal: &Principal,
    action: Action,
    repo: &RepoName,
) -> Result<(), RegistryError> {
    if authz::can(ctx, principal, action, Resource::Repo(repo)).await? {
        return Ok(());
    }
    tracing::debug!(?principal, ?action, repository = %repo, "access denied");
    match principal {
        Principal::Anonymous | Principal::Token(_) => Err(RegistryError::Unauthorized),
        Principal::User(_) | Principal::Robot(_) | Principal::OAuth(_) => {
            Err(RegistryError::Denied)
        }
    }
}

/// An existing repository, after checking `action` on it.
pub async fn existing(
    ctx: &Ctx,
    principal: &Principal,
    action: Action,
    name: &RepoName,
) -> Result<Arc<RepoRow>, RegistryError> {
    authorize(ctx, principal, action, name).await?;
    ctx.pull_cache
        .repo(&ctx.db, name, ctx.now_ms())
        .await?
        .ok_or(RegistryError::NameUnknown)
}

/// The repository to push into, created (private) when the caller may create repositories in
/// its namespace.
pub async fn for_push(
    ctx: &Ctx,
    principal: &Principal,
    name: &RepoName,
) -> Result<RepoRow, RegistryError> {
    authorize(ctx, principal, Action::Push, name).await?;
    if let Some(repo) =
        db::content::repositories::get(ctx.db.pool(), name.namespace(), name.repository()).await?
    {
        return Ok(repo);
    }
    if !authz::can(ctx, principal, Action::CreateRepo, Resource::Repo(name)).await? {
        return Err(match principal {
            Principal::Anonymous | Principal::Token(_) => RegistryError::Unauthorized,
            _ => RegistryError::Denied,
        });
    }
    create_on_push(ctx, principal, name).await
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
    // The state is the caller's business afterwards (`require_normal`), as in Quay.
    authz::require_by_role(ctx, &caller.principal, action, Resource::Repo(&name)).await?;
    db::content::repositories::get(ctx.db.pool(), namespace, repository)
        .await?
        .ok_or(TenancyError::NotFound)
}

/// Writes to a repository that is not `NORMAL` (read-only, mirrored) are refused as Quay does.
pub fn require_normal(repo: &RepoRow) -> Result<(), TenancyError> {
    if repo.state == "NORMAL" {
        Ok(())
    } else {
        Err(TenancyError::Unavailable(format!(
            "Repository is in read only or mirror mode: {}",
            repo.state
        )))
    }
}

/// An existing (not deleted) manifest of a repository by digest, for the REST API, after
/// checking `action` on the repository. A reference that is not a digest is not found.
pub async fn resolve_manifest(
    ctx: &Ctx,
    caller: &Caller,
    action: Action,
    namespace: &str,
    repository: &str,
    manifestref: &str,
) -> Result<(RepoRow, ManifestRow), TenancyError> {
    let repo = checked(ctx, caller, action, namespace, repository).await?;
    let digest: Digest = manifestref.parse().map_err(|_| TenancyError::NotFound)?;
    let manifest = db::content::manifests::by_digest(ctx.db.pool(), repo.id, digest.as_str())
        .await?
        .filter(|m| m.deleted_ms.is_none())
        .ok_or(TenancyError::NotFound)?;
    Ok((repo, manifest))
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
    db::content::repositories::set_description(ctx.db.pool(), repo.id, description).await?;
    ctx.pull_cache.invalidate().await;
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
    db::content::repositories::set_visibility(ctx.db.pool(), repo.id, visibility).await?;
    ctx.pull_cache.invalidate().await;
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
    let mut tx = ctx.db.begin().await?;
    if db::content::repositories::lock(&mut tx, repo.id).await? {
        quota::release_repository(ctx, &mut tx, &repo).await?;
        db::content::repositories::delete(&mut *tx, repo.id).await?;
    }
    tx.commit().await?;
    ctx.pull_cache.invalidate().await;
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
        db::content::repositories::star(ctx.db.pool(), account.id, repo.id, ctx.now_ms()).await?;
    } else {
        db::content::repositories::unstar(ctx.db.pool(), account.id, repo.id).await?;
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
