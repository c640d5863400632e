//! Garbage collection: reclaims the tag lifetimes, manifests and blobs that nothing can reach any
//! more, online, while pushes and pulls go on.
//!
//! # What is collected, in order
//!
//! 1. **Expired tags** are ended at their expiration ([`crate::service::content::tags::expire`], also its own
//!    worker).
//! 2. **Tag lifetimes** that ended (or expired) longer ago than their namespace's time machine
//!    window (`tag_expiration_s`) are deleted: they are no longer restorable.
//! 3. **Manifests** of a repository that are unreachable are deleted. Reachable are: manifests a
//!    remaining lifetime points at (live or inside the window), manifests pushed within the
//!    grace period plus the window (an untagged manifest, e.g. pushed by digest ahead of its
//!    index, lives as long as Quay's temporary tag would: `PUSH_TEMP_TAG_EXPIRATION_SEC` plus
//!    the window), and, transitively, the children of a reachable index and the referrers
//!    (`subject`) of a reachable manifest.
//! 4. **Blob links** (`repo_blob`) older than the grace period that no manifest of their
//!    repository references are deleted: an upload nobody used.
//! 5. **Blobs** that no repository links and no manifest references (and older than the grace
//!    period) are deleted: first the row (committed), then the bytes, so a collection killed at
//!    any point never leaves a row without its bytes (see [`sweep_blob`]).
//! 6. **Orphaned bytes**: files under `blobs/` with no blob row (a crash between an upload's
//!    rename into place and its row insert), older than the grace period by their storage time.
//!    Listing the store is costly, so the worker does this at most daily; `quayside gc --now`
//!    always does.
//!
//! Deleting a repository or a namespace deletes its tags, manifests and links (the rows
//! cascade), so steps 5 and 6 reclaim its storage.
//!
//! # Why it is safe while pushes run
//!
//! Each step first finds candidates without locks, then deletes each under the lock that its
//! writers hold, re-checking the condition in the deleting statement itself:
//!
//! - **Manifests and blob links of a repository** are deleted under the repository lock
//!   ([`db::content::repositories::lock`]: a row lock on PostgreSQL, the write lock on SQLite). A manifest push
//!   takes the same lock and checks, under it, that every blob it references is linked and
//!   every child manifest exists, then commits. So either the collector deleted first and the
//!   push fails cleanly (`MANIFEST_BLOB_UNKNOWN`, only for links older than the grace period
//!   that nothing used), or the push committed first and its references make the collector
//!   keep everything. Restoring a tag takes the lock too.
//! - **Blob rows and bytes** are deleted under a per-digest lock ([`db::content::blobs::lock_digest`]:
//!   a transaction-scoped advisory lock on PostgreSQL; on SQLite every write transaction holds
//!   the database's write lock, `BEGIN IMMEDIATE`, which also covers other processes such as
//!   `quayside gc --now` beside a server). The collector holds it across "nothing links or
//!   references it" (in the `DELETE`) and the row delete, and commits; then it takes it again
//!   and deletes the bytes only if there is still no row. Completing an upload holds it across
//!   "does the row exist and are its bytes in storage", moving the bytes into place, inserting
//!   the row and linking it; a cross-repository mount holds it across "the row exists and its
//!   bytes are stored" and linking. An upload between the collector's two steps finds no row,
//!   so it writes the bytes and the row, and the collector's second step then sees the row and
//!   leaves the bytes alone. A crash between the steps leaves bytes without a row (reclaimed as
//!   orphaned bytes), never a row without bytes; rows that lost their bytes some other way are
//!   found and repaired by `quayside gc --verify` ([`verify`]), and an upload of such a digest
//!   writes the bytes again.
//! - **Grace periods** keep recent work out of reach even before locks matter: links refreshed
//!   by an upload or mount, blobs stored, and manifests pushed within `PUSH_TEMP_TAG_EXPIRATION_SEC`
//!   are never candidates.
//!
//! A transaction that takes both a repository lock and a digest lock (completing an upload, a
//! mount, which only hold the repository against deletion) takes the repository's first, and
//! none takes them in the other order, so they cannot deadlock.
//! Pulls take no locks: a pull of a blob the collector just removed is one nothing referenced.

use std::collections::{HashMap, HashSet};

use crate::db;
use crate::oci::Digest;
use crate::service::content::quota;
use crate::service::{Clock, Ctx, Internal, SystemClock};
use crate::storage::paths;

/// What one collection did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    pub expired_tags: u64,
    pub tag_lifetimes: u64,
    pub manifests: u64,
    pub blob_links: u64,
    pub blobs: u64,
    pub bytes: u64,
    pub orphaned_blobs: u64,
    pub orphaned_bytes: u64,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "reclaimed {} tag lifetimes, {} manifests, {} blobs ({} bytes) and {} orphaned blob files \
             ({} bytes); ended {} expired tags; removed {} unused blob links",
            self.tag_lifetimes,
            self.manifests,
            self.blobs,
            self.bytes,
            self.orphaned_blobs,
            self.orphaned_bytes,
            self.expired_tags,
            self.blob_links
        )
    }
}

/// How much one query looks at.
const BATCH: i64 = 200;

fn grace_ms(ctx: &Ctx) -> i64 {
    ctx.config.gc.grace.as_millis() as i64
}

/// Runs one full collection. `sweep_orphans` also lists the blob store for bytes without a row.
pub async fn collect(ctx: &Ctx, sweep_orphans: bool) -> Result<Report, Internal> {
    let mut report = Report {
        expired_tags: crate::service::content::tags::expire(ctx).await? as u64,
        ..Report::default()
    };
    loop {
        let n =
            db::content::gc::delete_unrecoverable_tags(ctx.db.pool(), ctx.now_ms(), 1000).await?;
        report.tag_lifetimes += n;
        if n == 0 {
            break;
        }
    }
    let mut after = 0;
    loop {
        let repos = db::content::gc::repos_with_manifest_candidates(
            ctx.db.pool(),
            ctx.now_ms(),
            grace_ms(ctx),
            after,
            BATCH,
        )
        .await?;
        let Some(last) = repos.last() else { break };
        after = *last;
        for repo in repos {
            report.manifests += sweep_manifests(ctx, repo).await?;
        }
    }
    let mut after = 0;
    loop {
        let cutoff = ctx.now_ms() - grace_ms(ctx);
        let repos =
            db::content::gc::repos_with_stale_links(ctx.db.pool(), cutoff, after, BATCH).await?;
        let Some(last) = repos.last() else { break };
        after = *last;
        for repo in repos {
            report.blob_links += sweep_links(ctx, repo).await?;
        }
    }
    let mut after = String::new();
    loop {
        let digests = blob_candidates(ctx, &after).await?;
        let Some(last) = digests.last() else { break };
        after = last.clone();
        for digest in digests {
            if let Some(size) = sweep_blob(ctx, &digest).await? {
                report.blobs += 1;
                report.bytes += size;
            }
        }
    }
    if sweep_orphans {
        let (files, bytes) = sweep_orphaned_bytes(ctx).await?;
        report.orphaned_blobs = files;
        report.orphaned_bytes = bytes;
    }
    if report != Report::default() {
        tracing::info!(%report, "garbage collection");
    }
    Ok(report)
}

/// Blobs nothing links or references (stored before the grace period), after `after` in digest
/// order: what [`sweep_blob`] may delete.
pub async fn blob_candidates(ctx: &Ctx, after: &str) -> Result<Vec<String>, Internal> {
    let cutoff = ctx.now_ms() - grace_ms(ctx);
    Ok(db::content::gc::unreferenced_blobs(ctx.db.pool(), cutoff, after, BATCH).await?)
}

/// Deletes the unreachable manifests of one repository, under its lock. Returns how many.
pub async fn sweep_manifests(ctx: &Ctx, repository_id: i64) -> Result<u64, Internal> {
    let Some(window_s) = db::content::gc::window_s(ctx.db.pool(), repository_id).await? else {
        return Ok(0);
    };
    let mut tx = ctx.db.begin().await?;
    if !db::content::repositories::lock(&mut tx, repository_id).await? {
        return Ok(0);
    }
    let now = ctx.now_ms();
    let window_ms = window_s.saturating_mul(1000);
    let graph = db::content::gc::graph(&mut tx, repository_id, now - window_ms).await?;
    let keep = reachable(&graph, now - window_ms - grace_ms(ctx));
    let doomed: Vec<i64> = graph
        .manifests
        .iter()
        .map(|m| m.id)
        .filter(|id| !keep.contains(id))
        .collect();
    if let Some(namespace_id) = db::content::quota::namespace_of(&mut *tx, repository_id).await? {
        quota::release_manifests(ctx, &mut tx, repository_id, namespace_id, &doomed).await?;
    }
    let deleted = db::content::gc::delete_manifests(&mut tx, &doomed).await?;
    tx.commit().await?;
    if deleted > 0 {
        ctx.pull_cache.invalidate().await;
        tracing::debug!(repository_id, deleted, "unreachable manifests deleted");
    }
    Ok(deleted)
}

/// The manifests of a repository that must stay: roots are those a remaining tag lifetime points
/// at and those pushed after `recent_ms`; children of kept indexes and referrers of kept
/// manifests are kept too.
pub fn reachable(graph: &db::content::gc::Graph, recent_ms: i64) -> HashSet<i64> {
    let by_digest: HashMap<&str, i64> = graph
        .manifests
        .iter()
        .map(|m| (m.digest.as_str(), m.id))
        .collect();
    let mut children: HashMap<i64, Vec<i64>> = HashMap::new();
    for (parent, child) in &graph.children {
        if let Some(c) = by_digest.get(child.as_str()) {
            children.entry(*parent).or_default().push(*c);
        }
    }
    let mut referrers: HashMap<i64, Vec<i64>> = HashMap::new();
    for m in &graph.manifests {
        if let Some(subject) = m.subject_digest.as_deref().and_then(|s| by_digest.get(s)) {
            referrers.entry(*subject).or_default().push(m.id);
        }
    }
    let mut keep: HashSet<i64> = HashSet::new();
    let mut stack: Vec<i64> = graph
        .tagged
        .iter()
        .copied()
        .chain(
            graph
                .manifests
                .iter()
                .filter(|m| m.pushed_ms > recent_ms)
                .map(|m| m.id),
        )
        .collect();
    while let Some(id) = stack.pop() {
        if !keep.insert(id) {
            continue;
        }
        for next in children.get(&id).into_iter().chain(referrers.get(&id)) {
            stack.extend(next.iter().copied());
        }
    }
    keep
}

/// Deletes one repository's blob links that are older than the grace period and unreferenced,
/// under the repository lock. Returns how many.
pub async fn sweep_links(ctx: &Ctx, repository_id: i64) -> Result<u64, Internal> {
    let mut tx = ctx.db.begin().await?;
    if !db::content::repositories::lock(&mut tx, repository_id).await? {
        return Ok(0);
    }
    let cutoff = ctx.now_ms() - grace_ms(ctx);
    let deleted = db::content::gc::delete_stale_links(&mut tx, repository_id, cutoff).await?;
    ctx.pauses.point("gc.links_deleted").await;
    tx.commit().await?;
    Ok(deleted)
}

/// Deletes a blob nothing links or references: its row, then its bytes, each step committed on
/// its own, so a crash (even `kill -9`) at any point leaves either the row and its bytes or
/// bytes alone (orphaned bytes, which [`sweep_orphaned_bytes`] reclaims), never a row without
/// bytes. Returns its size if it was deleted.
///
/// 1. Under the digest lock, the row is deleted if still unreferenced, and that commits.
/// 2. Under the digest lock again, the bytes are deleted only if there is still no row: an
///    upload of the same digest between the two steps found no row, so it wrote the bytes and
///    the row itself (under the same lock), and they must stay.
pub async fn sweep_blob(ctx: &Ctx, digest: &str) -> Result<Option<u64>, Internal> {
    let Ok(parsed) = digest.parse::<Digest>() else {
        tracing::warn!(digest, "blob row with an invalid digest left alone");
        return Ok(None);
    };
    let mut tx = ctx.db.begin().await?;
    db::content::blobs::lock_digest(&mut tx, digest).await?;
    let cutoff = ctx.now_ms() - grace_ms(ctx);
    let Some(size) = db::content::blobs::delete_if_unreferenced(&mut tx, digest, cutoff).await?
    else {
        return Ok(None);
    };
    tx.commit().await?;
    ctx.pauses.point("gc.blob_row_deleted").await;
    let mut tx = ctx.db.begin().await?;
    db::content::blobs::lock_digest(&mut tx, digest).await?;
    if db::content::blobs::size(&mut *tx, digest).await?.is_some() {
        tracing::debug!(
            digest,
            "blob uploaded again while collected: its bytes stay"
        );
        return Ok(Some(size as u64));
    }
    ctx.store.delete(&paths::blob(&parsed)).await?;
    ctx.pauses.point("gc.blob_bytes_deleted").await;
    tx.commit().await?;
    tracing::debug!(digest, size, "blob deleted");
    Ok(Some(size as u64))
}

/// Deletes blob files that have no row and were last written before the grace period (by the
/// storage's own clock). Returns how many and their bytes.
pub async fn sweep_orphaned_bytes(ctx: &Ctx) -> Result<(u64, u64), Internal> {
    let wall_cutoff = SystemClock.now_ms() - grace_ms(ctx);
    let (mut files, mut bytes) = (0, 0);
    for entry in ctx.store.list(paths::BLOBS).await? {
        let Some(digest) = paths::blob_of_key(&entry.key) else {
            continue;
        };
        if entry.modified_ms >= wall_cutoff
            || db::content::blobs::size(ctx.db.pool(), digest.as_str())
                .await?
                .is_some()
        {
            continue;
        }
        let mut tx = ctx.db.begin().await?;
        db::content::blobs::lock_digest(&mut tx, digest.as_str()).await?;
        if db::content::blobs::size(&mut *tx, digest.as_str())
            .await?
            .is_some()
        {
            continue;
        }
        ctx.store.delete(&entry.key).await?;
        tx.commit().await?;
        tracing::info!(key = %entry.key, size = entry.size, "orphaned blob bytes deleted");
        files += 1;
        bytes += entry.size;
    }
    Ok((files, bytes))
}

/// What `quayside gc --verify` found and did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VerifyReport {
    /// Blob rows looked at.
    pub checked: u64,
    /// Rows whose bytes were not in storage.
    pub missing: u64,
    /// Of those, rows removed because no manifest references them (with their upload links:
    /// the blob is gone, a client pushes it again).
    pub removed: u64,
    /// Of those, rows kept because manifests reference them: `(digest, repositories)`. Their
    /// images cannot be pulled until someone pushes the blob again (an upload of a digest whose
    /// bytes are missing writes them).
    pub referenced: Vec<(String, Vec<String>)>,
}

impl std::fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "checked {} blobs: {} without their bytes in storage, {} removed (nothing referenced them), \
             {} referenced by manifests (push them again)",
            self.checked,
            self.missing,
            self.removed,
            self.referenced.len()
        )
    }
}

/// Finds blob rows whose bytes are not in storage and repairs what it can: a row no manifest
/// references is removed (with its links, so the blob is unknown and a push writes it again); a
/// row manifests reference is kept and reported, because removing it would break those
/// manifests' integrity in the database, and a re-push of the blob restores the bytes.
///
/// Each missing row is re-checked under its digest lock, so a blob an upload is restoring at the
/// same time is left alone.
pub async fn verify(ctx: &Ctx) -> Result<VerifyReport, Internal> {
    let mut report = VerifyReport::default();
    let mut after = String::new();
    loop {
        let digests = db::content::gc::blobs_after(ctx.db.pool(), &after, BATCH).await?;
        let Some(last) = digests.last() else { break };
        after = last.clone();
        for digest in digests {
            report.checked += 1;
            let Ok(parsed) = digest.parse::<Digest>() else {
                tracing::warn!(digest, "blob row with an invalid digest left alone");
                continue;
            };
            let key = paths::blob(&parsed);
            if ctx.store.stat(&key).await?.is_some() {
                continue;
            }
            let mut tx = ctx.db.begin().await?;
            db::content::blobs::lock_digest(&mut tx, &digest).await?;
            if db::content::blobs::size(&mut *tx, &digest).await?.is_none()
                || ctx.store.stat(&key).await?.is_some()
            {
                continue;
            }
            report.missing += 1;
            if db::content::gc::delete_blob_unless_in_manifest(&mut tx, &digest).await? {
                tx.commit().await?;
                tracing::warn!(digest, "blob row without bytes removed");
                report.removed += 1;
            } else {
                let repos = db::content::gc::repositories_referencing(&mut *tx, &digest).await?;
                tracing::error!(digest, ?repos, "blob referenced by manifests has no bytes");
                report.referenced.push((digest, repos));
            }
        }
    }
    Ok(report)
}

/// When the worker last swept orphaned bytes (instance setting), to do it at most daily.
const ORPHAN_SWEEP_SETTING: &str = "gc.orphans_swept_ms";
const ORPHAN_SWEEP_EVERY_MS: i64 = 24 * 3600 * 1000;

/// One pass of the `gc` worker.
pub async fn worker_pass(ctx: &Ctx) -> Result<Report, Internal> {
    let now = ctx.now_ms();
    let last: i64 = db::operations::settings::get(ctx.db.pool(), ORPHAN_SWEEP_SETTING)
        .await?
        .and_then(|v| v.parse().ok())
        .unwrap_or(i64::MIN);
    let sweep = now.saturating_sub(last) >= ORPHAN_SWEEP_EVERY_MS;
    let report = collect(ctx, sweep).await?;
    if sweep {
        db::operations::settings::put(ctx.db.pool(), ORPHAN_SWEEP_SETTING, &now.to_string())
            .await?;
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::content::gc::{Graph, Node};

    fn node(id: i64, digest: &str, subject: Option<&str>, pushed_ms: i64) -> Node {
        Node {
            id,
            digest: digest.into(),
            subject_digest: subject.map(Into::into),
            pushed_ms,
        }
    }

    #[test]
    fn reachability_follows_tags_children_referrers_and_grace() {
        let graph = Graph {
            manifests: vec![
                node(1, "index", None, 0),
                node(2, "child-a", None, 0),
                node(3, "child-b", None, 0),
                node(4, "signature", Some("index"), 0),
                node(5, "sbom-of-signature", Some("signature"), 0),
                node(6, "old-untagged", None, 0),
                node(7, "recent-untagged", None, 100),
                node(8, "referrer-of-gone", Some("nothing"), 0),
                node(9, "child-of-recent", None, 0),
            ],
            children: vec![
                (1, "child-a".into()),
                (1, "child-b".into()),
                (1, "not-in-repo".into()),
                (7, "child-of-recent".into()),
            ],
            tagged: vec![1],
        };
        let keep = reachable(&graph, 50);
        let mut kept: Vec<i64> = keep.into_iter().collect();
        kept.sort_unstable();
        assert_eq!(kept, vec![1, 2, 3, 4, 5, 7, 9]);
        assert!(reachable(&Graph::default(), 0).is_empty());
    }
}
