//! Repository listings: the `/v2` catalog and tag list (byte-ordered pages of names, `n` and
//! `last`), and `GET /api/v1/repository` with Quay's filters and sealed page tokens.

use quayside_client as api;

use super::existing;
use crate::db;
use crate::oci::RepoName;
use crate::service::access::authz::{self, Action, Resource};
use crate::service::content::quota;
use crate::service::operations::audit::Caller;
use crate::service::scopes::Scope;
use crate::service::{Ctx, Principal, RegistryError, TenancyError};

/// Most entries one page of tags or catalog returns.
pub const MAX_PAGE: i64 = 1000;

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
    let mut items = db::content::tags::list_live(
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
        (Some(u), _) if u.superuser => db::content::repositories::Viewer::Superuser,
        (_, Some(account)) => db::content::repositories::Viewer::User(account.id),
        (_, None) => db::content::repositories::Viewer::Anonymous,
    };
    let limit = page_size(n)?;
    if limit == 0 {
        return Ok(Page {
            items: Vec::new(),
            more: false,
        });
    }
    let mut items = db::content::repositories::catalog_page(
        ctx.db.pool(),
        ctx.db.backend(),
        viewer,
        last,
        limit + 1,
    )
    .await?;
    let more = items.len() as i64 > limit;
    items.truncate(limit as usize);
    Ok(Page { items, more })
}

/// Most repositories one page of `GET /api/v1/repository` holds (Quay's page size).
pub const PAGE: i64 = 100;

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
        && !scopes.has(Scope::RepoRead)
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
    let query = db::content::repositories::ListQuery {
        viewer: account.as_ref().map(|a| a.id),
        superuser: superuser && options.namespace.is_some(),
        namespace: options.namespace.as_deref(),
        starred_only: options.starred,
        include_public: options.public,
        after_id,
        limit: PAGE + 1,
    };
    let mut rows = db::content::repositories::list(ctx.db.pool(), &query).await?;
    let more = rows.len() as i64 > PAGE;
    rows.truncate(PAGE as usize);
    let next_page = more
        .then(|| rows.last().map(|r| seal_page_token(ctx, r.id)))
        .flatten();
    let month_ago = ctx.now_ms() - 30 * 86_400_000;
    let mut repositories = Vec::with_capacity(rows.len());
    for r in rows {
        let last_modified = if options.last_modified {
            db::content::repositories::last_modified(ctx.db.pool(), r.id)
                .await?
                .map(|ms| ms / 1000)
        } else {
            None
        };
        let popularity = if options.popularity {
            Some(db::operations::audit::action_count(ctx.db.pool(), r.id, month_ago).await? as f64)
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
            quota_report: quota::repository_report(ctx, r.id).await?,
        });
    }
    Ok(api::RepositoryList {
        repositories,
        next_page,
    })
}

/// `GET /api/v1/user/starred`: the signed-in user's starred repositories that they may still
/// see, [`PAGE`] per page in id order, with Quay's `next_page` token.
pub async fn starred(
    ctx: &Ctx,
    caller: &Caller,
    next_page: Option<&str>,
) -> Result<api::StarredRepositories, TenancyError> {
    let account = match caller.principal.user() {
        Some(u) => u.id,
        None => {
            return Err(TenancyError::Forbidden {
                anonymous: caller.principal.account().is_none(),
            });
        }
    };
    let after_id = match next_page.filter(|t| !t.is_empty()) {
        None => 0,
        Some(token) => open_page_token(ctx, token)
            .ok_or_else(|| TenancyError::Invalid("next_page: invalid page token".into()))?,
    };
    let query = db::content::repositories::ListQuery {
        viewer: Some(account),
        superuser: false,
        namespace: None,
        starred_only: true,
        include_public: true,
        after_id,
        limit: PAGE + 1,
    };
    let mut rows = db::content::repositories::list(ctx.db.pool(), &query).await?;
    let more = rows.len() as i64 > PAGE;
    rows.truncate(PAGE as usize);
    let next_page = more
        .then(|| rows.last().map(|r| seal_page_token(ctx, r.id)))
        .flatten();
    Ok(api::StarredRepositories {
        repositories: rows
            .into_iter()
            .map(|r| api::StarredRepository {
                is_public: r.visibility == "public",
                namespace: r.namespace,
                name: r.name,
                description: r.description,
            })
            .collect(),
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
