//! Tags as Quay models them (its `data/model/oci/tag.py`): every tag name has a history of
//! lifetimes, and the namespace's time machine window (`tag_expiration_s`) keeps ended lifetimes,
//! and the manifests behind them, restorable.
//!
//! - Pushing or `PUT`ting a tag ends its current lifetime and starts a new one (even for the
//!   manifest it already had, as in Quay); deleting ends it.
//! - A tag may expire: the expiration is part of the lifetime (`end_ts` in the API is the end,
//!   or the expiration to come). Expired tags are not live for `/v2` or the API from the moment
//!   they expire; the `expiration` worker then writes their end ([`expire`]).
//! - Restoring points the tag at a manifest again in a new lifetime marked `reversion`; only a
//!   manifest some lifetime of the repository still holds inside the window can be restored.
//! - Garbage collection (`service::content::gc`) removes lifetimes that ended before the window.
//!
//! Every change through the API is audited with Quay's kinds (`create_tag`, `move_tag`,
//! `delete_tag`, `revert_tag`, `change_tag_expiration`) and invalidates the pull cache.

use std::collections::BTreeMap;

use quayside_client as api;
use serde_json::json;

use crate::db;
use crate::db::content::repositories::RepoRow;
use crate::db::content::tags::{HistoryFilter, Lifetime, SetOptions, TagChange};
use crate::oci::manifest::ManifestKind;
use crate::oci::{Digest, validate_tag};
use crate::service::access::authz::Action;
use crate::service::content::repositories::{checked, require_normal, tag_size};
use crate::service::operations::audit::{Caller, Event};
use crate::service::{Ctx, Internal, TenancyError, views};

/// Quay's answer to a tag name it refuses.
pub const TAG_ERROR: &str = "Invalid tag: must match [A-Za-z0-9_.-], NOT start with \".\" or \"-\", and can contain 1-128 characters";
/// Default and largest page of tag history.
pub const DEFAULT_PAGE: i64 = 50;
pub const MAX_PAGE: i64 = 100;

fn check_tag(tag: &str) -> Result<(), TenancyError> {
    if validate_tag(tag) {
        Ok(())
    } else {
        Err(TenancyError::Refused(TAG_ERROR.into()))
    }
}

fn parse_digest(digest: &str) -> Result<Digest, TenancyError> {
    digest.parse().map_err(|_| TenancyError::NotFound)
}

/// The username of the caller for audit metadata.
fn username(caller: &Caller) -> Option<String> {
    caller.principal.name().map(str::to_owned)
}

async fn view(ctx: &Ctx, lifetime: &Lifetime) -> Result<api::Tag, TenancyError> {
    let start_ts = lifetime.start_ms.div_euclid(1000);
    let end_ms = lifetime.effective_end_ms();
    let is_list = ManifestKind::from_media_type(&lifetime.media_type).is_some_and(|k| k.is_list());
    let mut tag = api::Tag {
        name: lifetime.name.clone(),
        reversion: lifetime.reversion,
        start_ts: (start_ts > 0).then_some(start_ts),
        end_ts: end_ms.map(|e| e.div_euclid(1000)).filter(|e| *e > 0),
        manifest_digest: lifetime.manifest_digest.clone(),
        is_manifest_list: is_list,
        size: tag_size(&ctx.db, lifetime).await?,
        last_modified: (start_ts > 0).then(|| views::format_date(start_ts * 1000)),
        expiration: end_ms.map(|e| views::format_date(e.div_euclid(1000) * 1000)),
        is_sparse: None,
        child_manifest_count: None,
        present_child_count: None,
        child_manifests_presence: None,
    };
    if is_list {
        let children =
            db::content::manifests::children(ctx.db.pool(), lifetime.manifest_id).await?;
        let refs: Vec<&str> = children.iter().map(String::as_str).collect();
        let present =
            db::content::manifests::present_among(ctx.db.pool(), lifetime.repository_id, &refs)
                .await?;
        let presence: BTreeMap<String, bool> = children
            .iter()
            .map(|c| (c.clone(), present.contains(c)))
            .collect();
        tag.is_sparse = Some(present.len() < children.len());
        tag.child_manifest_count = Some(children.len() as i64);
        tag.present_child_count = Some(present.len() as i64);
        tag.child_manifests_presence = Some(presence);
    }
    Ok(tag)
}

/// `GET /api/v1/repository/{repo}/tag/`: lifetimes newest first, `limit` (at most 100) per page.
pub async fn history(
    ctx: &Ctx,
    caller: &Caller,
    namespace: &str,
    repository: &str,
    query: &api::TagHistoryQuery,
) -> Result<api::TagHistory, TenancyError> {
    let repo = checked(ctx, caller, Action::Pull, namespace, repository).await?;
    let page = query.page.unwrap_or(1).max(1);
    let limit = query.limit.unwrap_or(DEFAULT_PAGE).clamp(1, MAX_PAGE);
    let filter = HistoryFilter {
        name: query.specific_tag.as_deref().filter(|t| !t.is_empty()),
        live_only: query.only_active_tags,
    };
    let mut rows = db::content::tags::history(
        ctx.db.pool(),
        repo.id,
        filter,
        ctx.now_ms(),
        (page - 1).saturating_mul(limit),
        limit + 1,
    )
    .await?;
    let has_additional = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let mut tags = Vec::with_capacity(rows.len());
    for row in &rows {
        tags.push(view(ctx, row).await?);
    }
    Ok(api::TagHistory {
        tags,
        page,
        has_additional,
    })
}

/// `PUT /api/v1/repository/{repo}/tag/{tag}`: creates or moves the tag to `manifest_digest`,
/// then applies `expiration` (epoch seconds; `null` clears it). Quay applies the expiration to
/// the lifetime before moving it (so a combined request loses it); here the moved tag gets it.
pub async fn change(
    ctx: &Ctx,
    caller: &Caller,
    namespace: &str,
    repository: &str,
    tag: &str,
    request: &api::ChangeTagRequest,
) -> Result<(), TenancyError> {
    check_tag(tag)?;
    let repo = checked(ctx, caller, Action::Push, namespace, repository).await?;
    require_normal(&repo)?;
    if let Some(digest) = &request.manifest_digest {
        retarget(ctx, caller, &repo, tag, digest).await?;
    }
    if let Some(expiration) = request.expiration {
        change_expiration(ctx, caller, &repo, tag, expiration).await?;
    }
    Ok(())
}

async fn retarget(
    ctx: &Ctx,
    caller: &Caller,
    repo: &RepoRow,
    tag: &str,
    digest: &str,
) -> Result<(), TenancyError> {
    let digest = parse_digest(digest)?;
    let now = ctx.now_ms();
    let mut tx = ctx.db.begin().await?;
    if !db::content::repositories::lock(&mut tx, repo.id).await? {
        return Err(TenancyError::NotFound);
    }
    let manifest = db::content::manifests::by_digest(&mut *tx, repo.id, digest.as_str())
        .await?
        .filter(|m| m.deleted_ms.is_none())
        .ok_or(TenancyError::NotFound)?;
    let existing = db::content::tags::live_one(&mut *tx, repo.id, tag, now).await?;
    db::content::tags::set_with(
        &mut tx,
        repo.id,
        tag,
        manifest.id,
        now,
        SetOptions::default(),
    )
    .await?;
    tx.commit().await?;
    ctx.pull_cache.invalidate().await;
    let kind = if existing.is_some() {
        "move_tag"
    } else {
        "create_tag"
    };
    ctx.audit.record(
        caller,
        Event::repo(
            kind,
            &repo.namespace,
            &repo.name,
            json!({
                "username": username(caller), "repo": repo.name, "tag": tag,
                "namespace": repo.namespace, "manifest_digest": digest.as_str(),
                "original_manifest_digest": existing.map(|e| e.manifest_digest),
            }),
        ),
        now,
    );
    Ok(())
}

async fn change_expiration(
    ctx: &Ctx,
    caller: &Caller,
    repo: &RepoRow,
    tag: &str,
    expiration_s: Option<f64>,
) -> Result<(), TenancyError> {
    let now = ctx.now_ms();
    let live = db::content::tags::live_one(ctx.db.pool(), repo.id, tag, now)
        .await?
        .ok_or(TenancyError::NotFound)?;
    let new_end = match expiration_s {
        None => None,
        Some(s) if !s.is_finite() => {
            return Err(TenancyError::Invalid(
                "expiration must be a number of seconds since the epoch".into(),
            ));
        }
        Some(s) => {
            let at_s = s.floor() as i64;
            if at_s.saturating_mul(1000) <= now {
                // Quay answers `{"message": ...}` (its own text is Flask's generic one).
                return Err(TenancyError::Refused(
                    "expiration must be in the future".into(),
                ));
            }
            // Quay keeps an expiration between LABELED_EXPIRATION_MINIMUM and _MAXIMUM after
            // the start of the lifetime.
            let (min, max) = ctx.config.expiration_bounds_s;
            let offset = (at_s - live.start_ms.div_euclid(1000)).clamp(min, max);
            Some(live.start_ms + offset * 1000)
        }
    };
    if new_end == live.expiration_ms {
        return Ok(());
    }
    if !db::content::tags::change_expiration(ctx.db.pool(), live.id, live.expiration_ms, new_end)
        .await?
    {
        return Err(TenancyError::Invalid(
            "Could not update tag expiration; Tag has probably changed".into(),
        ));
    }
    ctx.pull_cache.invalidate().await;
    let date = |ms: Option<i64>| ms.map(|m| views::format_date(m.div_euclid(1000) * 1000));
    ctx.audit.record(
        caller,
        Event::repo(
            "change_tag_expiration",
            &repo.namespace,
            &repo.name,
            json!({
                "username": username(caller), "repo": repo.name, "tag": tag,
                "namespace": repo.namespace, "expiration_date": date(new_end),
                "old_expiration_date": date(live.expiration_ms),
            }),
        ),
        now,
    );
    Ok(())
}

/// `DELETE /api/v1/repository/{repo}/tag/{tag}`: ends the live lifetime.
pub async fn delete(
    ctx: &Ctx,
    caller: &Caller,
    namespace: &str,
    repository: &str,
    tag: &str,
) -> Result<(), TenancyError> {
    let repo = checked(ctx, caller, Action::Push, namespace, repository).await?;
    require_normal(&repo)?;
    let now = ctx.now_ms();
    db::content::tags::end_live(ctx.db.pool(), repo.id, tag, now)
        .await?
        .ok_or(TenancyError::NotFound)?;
    ctx.pull_cache.invalidate().await;
    ctx.audit.record(
        caller,
        Event::repo(
            "delete_tag",
            namespace,
            repository,
            json!({
                "username": username(caller), "repo": repository,
                "namespace": namespace, "tag": tag,
            }),
        ),
        now,
    );
    Ok(())
}

/// `POST /api/v1/repository/{repo}/tag/{tag}/restore`: points the tag at `manifest_digest` again
/// in a new lifetime marked `reversion`, if the manifest is inside the time machine window.
pub async fn restore(
    ctx: &Ctx,
    caller: &Caller,
    namespace: &str,
    repository: &str,
    tag: &str,
    manifest_digest: Option<&str>,
) -> Result<TagChange, TenancyError> {
    check_tag(tag)?;
    let repo = checked(ctx, caller, Action::Push, namespace, repository).await?;
    require_normal(&repo)?;
    let digest =
        manifest_digest.ok_or_else(|| TenancyError::Invalid("Missing manifest_digest".into()))?;
    let digest = parse_digest(digest)?;
    let window_s = db::content::gc::window_s(ctx.db.pool(), repo.id)
        .await?
        .ok_or(TenancyError::NotFound)?;
    let now = ctx.now_ms();
    let mut tx = ctx.db.begin().await?;
    if !db::content::repositories::lock(&mut tx, repo.id).await? {
        return Err(TenancyError::NotFound);
    }
    let manifest = db::content::manifests::by_digest(&mut *tx, repo.id, digest.as_str())
        .await?
        .ok_or(TenancyError::NotFound)?;
    let cutoff = now - window_s.saturating_mul(1000);
    if !db::content::tags::within_window(&mut *tx, repo.id, manifest.id, cutoff).await? {
        return Err(TenancyError::Invalid(format!(
            "Cannot restore tag {tag} to {digest}: no tag of the repository has pointed at that manifest \
             within the time machine window of {namespace} ({window_s} seconds), so it is no longer \
             restorable"
        )));
    }
    let change = db::content::tags::set_with(
        &mut tx,
        repo.id,
        tag,
        manifest.id,
        now,
        SetOptions {
            expiration_ms: None,
            reversion: true,
        },
    )
    .await?;
    if manifest.deleted_ms.is_some() {
        db::content::manifests::undelete(&mut *tx, manifest.id).await?;
    }
    tx.commit().await?;
    ctx.pull_cache.invalidate().await;
    ctx.audit.record(
        caller,
        Event::repo(
            "revert_tag",
            namespace,
            repository,
            json!({
                "username": username(caller), "repo": repository, "tag": tag,
                "manifest_digest": digest.as_str(),
            }),
        ),
        now,
    );
    Ok(change)
}

/// The `expiration` worker's pass: ends every lifetime whose expiration has passed, at that
/// time. Returns how many.
pub async fn expire(ctx: &Ctx) -> Result<usize, Internal> {
    let mut ended = 0;
    loop {
        let batch = db::content::tags::end_expired(ctx.db.pool(), ctx.now_ms(), 500).await?;
        if batch.is_empty() {
            break;
        }
        ended += batch.len();
        for e in &batch {
            tracing::debug!(repository_id = e.repository_id, tag = %e.name, "tag expired");
        }
    }
    if ended > 0 {
        ctx.pull_cache.invalidate().await;
    }
    Ok(ended)
}
