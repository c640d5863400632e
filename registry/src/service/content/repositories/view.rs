//! The REST API's answer for one repository (`GET /api/v1/repository/{namespace}/{repository}`):
//! its settings, the caller's rights, and on request its live tags and daily pull/push counts.

use std::collections::{BTreeMap, HashMap};

use quayside_client::{self as api, RepositoryTag};

use super::{checked, repo_name};
use crate::db::content::tags::Lifetime;
use crate::db::{self, Db};
use crate::oci::manifest::{self, ManifestKind};
use crate::service::access::authz::{self, Action, Resource};
use crate::service::operations::audit::Caller;
use crate::service::{Ctx, Internal, TenancyError, views};

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
    let ns = db::tenancy::namespaces::by_id(ctx.db.pool(), repo.namespace_id)
        .await?
        .ok_or(TenancyError::NotFound)?;
    let is_starred = match p.account() {
        Some(a) => db::content::repositories::is_starred(ctx.db.pool(), a.id, repo.id).await?,
        None => false,
    };
    let status_token = if repo.is_public() {
        String::new()
    } else {
        db::content::repositories::badge_token(
            ctx.db.pool(),
            repo.id,
            &uuid::Uuid::new_v4().to_string(),
        )
        .await?
    };
    let tags = if include_tags {
        Some(repository_tags(ctx, repo.id).await?)
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
        db::operations::audit::daily_counts(ctx.db.pool(), repository_id, (today - 91) * DAY_MS)
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

/// The live tags of a repository as `GET /api/v1/repository/{repo}?includeTags=true` shows them.
async fn repository_tags(
    ctx: &Ctx,
    repository_id: i64,
) -> Result<BTreeMap<String, RepositoryTag>, TenancyError> {
    let rows =
        db::content::tags::live_all(ctx.db.pool(), ctx.db.backend(), repository_id, ctx.now_ms())
            .await?;
    let mut tags = BTreeMap::new();
    for row in rows {
        let view = RepositoryTag {
            name: row.name.clone(),
            size: tag_size(&ctx.db, &row).await?.unwrap_or(0),
            last_modified: Some(views::format_date(row.start_ms.div_euclid(1000) * 1000)),
            expiration: row
                .effective_end_ms()
                .map(|e| views::format_date(e.div_euclid(1000) * 1000)),
            manifest_digest: row.manifest_digest.clone(),
        };
        tags.insert(row.name, view);
    }
    Ok(tags)
}

/// The size Quay shows for a tag: the compressed size of its image's layers (`None` for lists).
/// Shared by this answer's tags and the tag history (`content::tags`).
pub async fn tag_size(db: &Db, lifetime: &Lifetime) -> Result<Option<i64>, Internal> {
    if ManifestKind::from_media_type(&lifetime.media_type).is_some_and(|k| k.is_list()) {
        return Ok(None);
    }
    if let Some(size) = lifetime.layers_size {
        return Ok(Some(size));
    }
    // Manifests stored before layer sizes were recorded.
    Ok(
        db::content::manifests::by_id(db.pool(), lifetime.manifest_id)
            .await?
            .and_then(|m| layers_size_of(&m.media_type, &m.content)),
    )
}

/// The sum of the layer sizes of an image manifest (Quay's tag `size`); `None` for lists.
fn layers_size_of(media_type: &str, content: &[u8]) -> Option<i64> {
    let parsed = manifest::parse(Some(media_type), content).ok()?;
    (!parsed.kind.is_list()).then(|| parsed.layers.iter().map(|l| l.size).sum())
}
