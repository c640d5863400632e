//! Queries of garbage collection. The algorithm and why it is safe while pushes run are
//! explained in `service::content::gc`; these functions find candidates (cheap, unlocked) and delete
//! (under the locks the service takes, with the conditions checked again in the same statement).

use sqlx::Row;

use super::tags::retained;
use crate::db::{DbResult, Exec, Tx};

/// Deletes up to `limit` tag lifetimes that ended (or expired) longer ago than their
/// namespace's time machine window. Returns how many.
pub async fn delete_unrecoverable_tags<'c>(
    ex: impl Exec<'c>,
    now_ms: i64,
    limit: i64,
) -> DbResult<u64> {
    let done = sqlx::query(
        "DELETE FROM tag WHERE id IN (SELECT t.id FROM tag t \
         JOIN repository r ON r.id = t.repository_id JOIN namespace n ON n.id = r.namespace_id \
         WHERE COALESCE(t.end_ms, t.expiration_ms) <= $1 - n.tag_expiration_s * 1000 LIMIT $2)",
    )
    .bind(now_ms)
    .bind(limit)
    .execute(ex)
    .await?;
    Ok(done.rows_affected())
}

/// Repositories holding a manifest that no lifetime inside the window points at, that was last
/// pushed before the grace period and the window, and that is neither a child of another
/// manifest of the repository nor a referrer of one: the repositories that may have unreachable
/// manifests. Reachability itself (through indexes and referrers) is decided per repository;
/// children and referrers need no look of their own, because deleting what held them (an index,
/// a subject) makes the repository a candidate, and once it is gone they are candidates too. So
/// a repository whose manifests are all reachable costs nothing pass after pass.
pub async fn repos_with_manifest_candidates<'c>(
    ex: impl Exec<'c>,
    now_ms: i64,
    grace_ms: i64,
    after: i64,
    limit: i64,
) -> DbResult<Vec<i64>> {
    let sql = format!(
        "SELECT DISTINCT m.repository_id FROM manifest m \
         JOIN repository r ON r.id = m.repository_id JOIN namespace n ON n.id = r.namespace_id \
         WHERE m.repository_id > $3 AND COALESCE(m.pushed_ms, m.created_ms) <= $1 - $2 - n.tag_expiration_s * 1000 \
         AND NOT EXISTS (SELECT 1 FROM tag t WHERE t.manifest_id = m.id AND {}) \
         AND NOT EXISTS (SELECT 1 FROM manifest_child mc JOIN manifest p ON p.id = mc.manifest_id \
                         WHERE p.repository_id = m.repository_id AND mc.child_digest = m.digest) \
         AND NOT EXISTS (SELECT 1 FROM manifest s WHERE s.repository_id = m.repository_id \
                         AND s.digest = m.subject_digest) \
         ORDER BY m.repository_id LIMIT $4",
        retained("$1 - n.tag_expiration_s * 1000")
    );
    let rows = sqlx::query(&sql)
        .bind(now_ms)
        .bind(grace_ms)
        .bind(after)
        .bind(limit)
        .fetch_all(ex)
        .await?;
    rows.iter()
        .map(|r| Ok(r.try_get("repository_id")?))
        .collect()
}

/// The repository's namespace window (`tag_expiration_s`), if the repository exists.
pub async fn window_s<'c>(ex: impl Exec<'c>, repository_id: i64) -> DbResult<Option<i64>> {
    let row = sqlx::query(
        "SELECT n.tag_expiration_s FROM repository r JOIN namespace n ON n.id = r.namespace_id WHERE r.id = $1",
    )
    .bind(repository_id)
    .fetch_optional(ex)
    .await?;
    row.map(|r| Ok(r.try_get("tag_expiration_s")?)).transpose()
}

/// A manifest as reachability sees it.
#[derive(Clone, Debug)]
pub struct Node {
    pub id: i64,
    pub digest: String,
    pub subject_digest: Option<String>,
    pub pushed_ms: i64,
}

/// What decides which manifests of one repository are reachable.
#[derive(Clone, Debug, Default)]
pub struct Graph {
    pub manifests: Vec<Node>,
    /// (index id, child digest).
    pub children: Vec<(i64, String)>,
    /// Manifests a lifetime inside the window points at.
    pub tagged: Vec<i64>,
}

/// Loads the reachability graph of a repository, with tag lifetimes ended after `cutoff_ms`
/// counting as roots.
pub async fn graph(tx: &mut Tx, repository_id: i64, cutoff_ms: i64) -> DbResult<Graph> {
    let rows = sqlx::query(
        "SELECT id, digest, subject_digest, COALESCE(pushed_ms, created_ms) AS pushed_ms \
         FROM manifest WHERE repository_id = $1",
    )
    .bind(repository_id)
    .fetch_all(&mut **tx)
    .await?;
    let manifests = rows
        .iter()
        .map(|r| {
            Ok(Node {
                id: r.try_get("id")?,
                digest: r.try_get("digest")?,
                subject_digest: r.try_get("subject_digest")?,
                pushed_ms: r.try_get("pushed_ms")?,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    let rows = sqlx::query(
        "SELECT mc.manifest_id, mc.child_digest FROM manifest_child mc \
         JOIN manifest m ON m.id = mc.manifest_id WHERE m.repository_id = $1",
    )
    .bind(repository_id)
    .fetch_all(&mut **tx)
    .await?;
    let children = rows
        .iter()
        .map(|r| Ok((r.try_get("manifest_id")?, r.try_get("child_digest")?)))
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    let sql = format!(
        "SELECT DISTINCT t.manifest_id FROM tag t WHERE t.repository_id = $1 AND {}",
        retained("$2")
    );
    let rows = sqlx::query(&sql)
        .bind(repository_id)
        .bind(cutoff_ms)
        .fetch_all(&mut **tx)
        .await?;
    let tagged = rows
        .iter()
        .map(|r| r.try_get("manifest_id"))
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    Ok(Graph {
        manifests,
        children,
        tagged,
    })
}

/// Deletes manifests (their blob references, children, labels and old lifetimes cascade).
pub async fn delete_manifests(tx: &mut Tx, ids: &[i64]) -> DbResult<u64> {
    let mut deleted = 0;
    for chunk in ids.chunks(200) {
        let placeholders: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "DELETE FROM manifest WHERE id IN ({})",
            placeholders.join(", ")
        );
        let mut q = sqlx::query(&sql);
        for id in chunk {
            q = q.bind(*id);
        }
        deleted += q.execute(&mut **tx).await?.rows_affected();
    }
    Ok(deleted)
}

const UNREFERENCED_LINK: &str = "NOT EXISTS (SELECT 1 FROM manifest_blob mb JOIN manifest m ON m.id = mb.manifest_id \
     WHERE m.repository_id = repo_blob.repository_id AND mb.digest = repo_blob.digest)";

/// Repositories (after `after`, by id) with blob links older than `cutoff_ms` that no manifest
/// of the repository references.
pub async fn repos_with_stale_links<'c>(
    ex: impl Exec<'c>,
    cutoff_ms: i64,
    after: i64,
    limit: i64,
) -> DbResult<Vec<i64>> {
    let sql = format!(
        "SELECT DISTINCT repository_id FROM repo_blob WHERE repository_id > $2 AND created_ms < $1 \
         AND {UNREFERENCED_LINK} ORDER BY repository_id LIMIT $3"
    );
    let rows = sqlx::query(&sql)
        .bind(cutoff_ms)
        .bind(after)
        .bind(limit)
        .fetch_all(ex)
        .await?;
    rows.iter()
        .map(|r| Ok(r.try_get("repository_id")?))
        .collect()
}

/// Deletes the repository's blob links older than `cutoff_ms` that no manifest of the
/// repository references. Call under the repository's lock. Returns how many.
pub async fn delete_stale_links(tx: &mut Tx, repository_id: i64, cutoff_ms: i64) -> DbResult<u64> {
    let sql = format!(
        "DELETE FROM repo_blob WHERE repository_id = $1 AND created_ms < $2 AND {UNREFERENCED_LINK}"
    );
    let done = sqlx::query(&sql)
        .bind(repository_id)
        .bind(cutoff_ms)
        .execute(&mut **tx)
        .await?;
    Ok(done.rows_affected())
}

/// Up to `limit` blobs (after `after`, by digest) stored before `cutoff_ms` that no repository
/// links and no manifest references.
pub async fn unreferenced_blobs<'c>(
    ex: impl Exec<'c>,
    cutoff_ms: i64,
    after: &str,
    limit: i64,
) -> DbResult<Vec<String>> {
    let rows = sqlx::query(
        "SELECT b.digest FROM blob b WHERE b.digest > $2 AND b.created_ms < $1 \
         AND NOT EXISTS (SELECT 1 FROM repo_blob rb WHERE rb.digest = b.digest) \
         AND NOT EXISTS (SELECT 1 FROM manifest_blob mb WHERE mb.digest = b.digest) \
         ORDER BY b.digest LIMIT $3",
    )
    .bind(cutoff_ms)
    .bind(after)
    .bind(limit)
    .fetch_all(ex)
    .await?;
    rows.iter().map(|r| Ok(r.try_get("digest")?)).collect()
}

/// Up to `limit` blob digests after `after`, in digest order (every row, for `gc --verify`).
pub async fn blobs_after<'c>(ex: impl Exec<'c>, after: &str, limit: i64) -> DbResult<Vec<String>> {
    let rows = sqlx::query("SELECT digest FROM blob WHERE digest > $1 ORDER BY digest LIMIT $2")
        .bind(after)
        .bind(limit)
        .fetch_all(ex)
        .await?;
    rows.iter().map(|r| Ok(r.try_get("digest")?)).collect()
}

/// Deletes a blob row and its repository links when no manifest references it; returns whether
/// it did. Call under the digest lock.
pub async fn delete_blob_unless_in_manifest(tx: &mut Tx, digest: &str) -> DbResult<bool> {
    let referenced = sqlx::query("SELECT 1 AS one FROM manifest_blob WHERE digest = $1 LIMIT 1")
        .bind(digest)
        .fetch_optional(&mut **tx)
        .await?
        .is_some();
    if referenced {
        return Ok(false);
    }
    sqlx::query("DELETE FROM repo_blob WHERE digest = $1")
        .bind(digest)
        .execute(&mut **tx)
        .await?;
    let done = sqlx::query("DELETE FROM blob WHERE digest = $1")
        .bind(digest)
        .execute(&mut **tx)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// The repositories (`namespace/name`, sorted) holding a manifest that references the blob.
pub async fn repositories_referencing<'c>(
    ex: impl Exec<'c>,
    digest: &str,
) -> DbResult<Vec<String>> {
    let rows = sqlx::query(
        "SELECT DISTINCT n.name AS namespace, r.name AS name FROM manifest_blob mb \
         JOIN manifest m ON m.id = mb.manifest_id JOIN repository r ON r.id = m.repository_id \
         JOIN namespace n ON n.id = r.namespace_id WHERE mb.digest = $1",
    )
    .bind(digest)
    .fetch_all(ex)
    .await?;
    let mut names = rows
        .iter()
        .map(|r| {
            let namespace: String = r.try_get("namespace")?;
            let name: String = r.try_get("name")?;
            Ok(format!("{namespace}/{name}"))
        })
        .collect::<DbResult<Vec<_>>>()?;
    names.sort();
    Ok(names)
}
