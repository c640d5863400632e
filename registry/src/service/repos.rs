//! Repositories as the registry protocol sees them: name parsing, access checks, creation on
//! first push, tag listing and the catalog.

use std::sync::Arc;

use super::authz::{self, Action, Resource};
use super::{Ctx, Principal, RegistryError};
use crate::db::{self, repos::RepoRow};
use crate::oci::RepoName;

/// Most entries one page of tags or catalog returns.
pub const MAX_PAGE: i64 = 1000;

pub fn parse_name(name: &str) -> Result<RepoName, RegistryError> {
    RepoName::parse(name).map_err(|e| RegistryError::NameInvalid(e.to_string()))
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
    if let Some(repo) = db::repos::get(ctx.db.pool(), name.namespace(), name.repository()).await? {
        return Ok(repo);
    }
    if !authz::can(ctx, principal, Action::CreateRepo, Resource::Repo(name)).await? {
        return Err(match principal {
            Principal::Anonymous | Principal::Token(_) => RegistryError::Unauthorized,
            _ => RegistryError::Denied,
        });
    }
    super::repositories::create_on_push(ctx, principal, name).await
}

/// Creates a repository (or returns it if a concurrent push created it first).
pub async fn create(
    ctx: &Ctx,
    name: &RepoName,
    visibility: &str,
) -> Result<RepoRow, RegistryError> {
    let namespace = db::namespaces::by_name(ctx.db.pool(), name.namespace())
        .await?
        .ok_or(RegistryError::NameUnknown)?;
    match db::repos::insert(
        ctx.db.pool(),
        namespace.id,
        name.repository(),
        visibility,
        None,
        ctx.now_ms(),
    )
    .await
    {
        Ok(_) => {}
        Err(e) if e.is_unique_violation() => {}
        Err(e) => return Err(e.into()),
    }
    db::repos::get(ctx.db.pool(), name.namespace(), name.repository())
        .await?
        .ok_or(RegistryError::NameUnknown)
}

/// A page of results and whether more may follow.
pub struct Page {
    pub items: Vec<String>,
    pub more: bool,
}

fn page_size(n: Option<i64>) -> Result<i64, RegistryError> {
    match n {
        None => Ok(MAX_PAGE),
        Some(n) if n < 0 => Err(RegistryError::Unsupported("n must not be negative".into())),
        Some(n) => Ok(n.min(MAX_PAGE)),
    }
}

/// Live tags of a repository, in byte order.
pub async fn list_tags(
    ctx: &Ctx,
    principal: &Principal,
    name: &RepoName,
    n: Option<i64>,
    last: Option<&str>,
) -> Result<Page, RegistryError> {
    let repo = existing(ctx, principal, Action::Pull, name).await?;
    let limit = page_size(n)?;
    if limit == 0 {
        return Ok(Page {
            items: Vec::new(),
            more: false,
        });
    }
    let mut items = db::tags::list_live(
        ctx.db.pool(),
        ctx.db.backend(),
        repo.id,
        last,
        limit + 1,
        ctx.now_ms(),
    )
    .await?;
    let more = items.len() as i64 > limit;
    items.truncate(limit as usize);
    Ok(Page { items, more })
}

/// Repositories the caller may see, in byte order.
pub async fn catalog(
    ctx: &Ctx,
    principal: &Principal,
    n: Option<i64>,
    last: Option<&str>,
) -> Result<Page, RegistryError> {
    if !authz::can(ctx, principal, Action::ListCatalog, Resource::Registry).await? {
        return Err(RegistryError::Unauthorized);
    }
    let viewer = match (principal.user(), principal.account()) {
        (Some(u), _) if u.superuser => db::repos::Viewer::Superuser,
        (_, Some(account)) => db::repos::Viewer::User(account.id),
        (_, None) => db::repos::Viewer::Anonymous,
    };
    let limit = page_size(n)?;
    if limit == 0 {
        return Ok(Page {
            items: Vec::new(),
            more: false,
        });
    }
    let mut items =
        db::repos::catalog_page(ctx.db.pool(), ctx.db.backend(), viewer, last, limit + 1).await?;
    let more = items.len() as i64 > limit;
    items.truncate(limit as usize);
    Ok(Page { items, more })
}
