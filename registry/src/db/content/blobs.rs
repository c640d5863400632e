//! Blobs (global, content-addressed) and their links into repositories.

use sqlx::Row;

use crate::db::{Backend, DbResult, Exec, Tx};

/// Size of a blob that is linked into the repository.
pub async fn size_in_repo<'c>(
    ex: impl Exec<'c>,
    repository_id: i64,
    digest: &str,
) -> DbResult<Option<i64>> {
    let row = sqlx::query(
        "SELECT b.size FROM repo_blob rb JOIN blob b ON b.digest = rb.digest \
         WHERE rb.repository_id = $1 AND rb.digest = $2",
    )
    .bind(repository_id)
    .bind(digest)
    .fetch_optional(ex)
    .await?;
    row.map(|r| Ok(r.try_get("size")?)).transpose()
}

/// Size of a stored blob, in any repository.
pub async fn size<'c>(ex: impl Exec<'c>, digest: &str) -> DbResult<Option<i64>> {
    let row = sqlx::query("SELECT size FROM blob WHERE digest = $1")
        .bind(digest)
        .fetch_optional(ex)
        .await?;
    row.map(|r| Ok(r.try_get("size")?)).transpose()
}

/// Records a verified blob (idempotent: concurrent uploads of the same content agree).
pub async fn insert<'c>(ex: impl Exec<'c>, digest: &str, size: i64, now_ms: i64) -> DbResult<()> {
    sqlx::query("INSERT INTO blob (digest, size, created_ms) VALUES ($1, $2, $3) ON CONFLICT (digest) DO NOTHING")
        .bind(digest)
        .bind(size)
        .bind(now_ms)
        .execute(ex)
        .await?;
    Ok(())
}

/// Links a stored blob into a repository (idempotent). Linking again refreshes the link's time,
/// which starts garbage collection's grace period for links no manifest references.
pub async fn link<'c>(
    ex: impl Exec<'c>,
    repository_id: i64,
    digest: &str,
    now_ms: i64,
) -> DbResult<()> {
    sqlx::query(
        "INSERT INTO repo_blob (repository_id, digest, created_ms) VALUES ($1, $2, $3) \
         ON CONFLICT (repository_id, digest) DO UPDATE SET created_ms = excluded.created_ms",
    )
    .bind(repository_id)
    .bind(digest)
    .bind(now_ms)
    .execute(ex)
    .await?;
    Ok(())
}

/// Removes a blob's link from a repository; returns whether it was linked.
pub async fn unlink<'c>(ex: impl Exec<'c>, repository_id: i64, digest: &str) -> DbResult<bool> {
    let done = sqlx::query("DELETE FROM repo_blob WHERE repository_id = $1 AND digest = $2")
        .bind(repository_id)
        .bind(digest)
        .execute(ex)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// Which of `digests` are linked into the repository.
pub async fn linked_among<'c>(
    ex: impl Exec<'c>,
    repository_id: i64,
    digests: &[&str],
) -> DbResult<Vec<String>> {
    if digests.is_empty() {
        return Ok(Vec::new());
    }
    let placeholders: Vec<String> = (0..digests.len()).map(|i| format!("${}", i + 2)).collect();
    let sql = format!(
        "SELECT digest FROM repo_blob WHERE repository_id = $1 AND digest IN ({})",
        placeholders.join(", ")
    );
    let mut q = sqlx::query(&sql).bind(repository_id);
    for d in digests {
        q = q.bind(*d);
    }
    let rows = q.fetch_all(ex).await?;
    rows.iter().map(|r| Ok(r.try_get("digest")?)).collect()
}

/// Serialises, until `tx` ends, everything that decides whether a blob's bytes exist: committing
/// an upload or a mount of `digest`, and garbage collection deleting it. On PostgreSQL a
/// transaction-scoped advisory lock keyed by the digest (two-key form, in a key space of its
/// own); on SQLite every write transaction already holds the database's write lock.
pub async fn lock_digest(tx: &mut Tx, digest: &str) -> DbResult<()> {
    if tx.backend() == Backend::Postgres {
        sqlx::query("SELECT 1 AS one FROM (SELECT pg_advisory_xact_lock($1, $2)) AS locked")
            .bind(DIGEST_LOCK_CLASS)
            .bind(digest_lock_key(digest))
            .fetch_one(&mut **tx)
            .await?;
    }
    Ok(())
}

/// First key of the two-key advisory locks taken by [`lock_digest`] ("QB": Quayside blob).
const DIGEST_LOCK_CLASS: i32 = 0x5142;

/// 32 bits of the digest's hex (already uniformly distributed); a collision only serialises two
/// digests that need not be.
fn digest_lock_key(digest: &str) -> i32 {
    let hex = digest.split_once(':').map_or(digest, |(_, h)| h);
    let head = hex.get(..8).unwrap_or(hex);
    u32::from_str_radix(head, 16).unwrap_or_else(|_| {
        head.bytes()
            .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)))
    }) as i32
}

/// Deletes the blob row when nothing links or references it any more and it is older than
/// `created_before_ms`; returns its size if it was deleted. Call under [`lock_digest`].
pub async fn delete_if_unreferenced(
    tx: &mut Tx,
    digest: &str,
    created_before_ms: i64,
) -> DbResult<Option<i64>> {
    let row = sqlx::query(
        "DELETE FROM blob WHERE digest = $1 AND created_ms < $2 \
         AND NOT EXISTS (SELECT 1 FROM repo_blob rb WHERE rb.digest = $1) \
         AND NOT EXISTS (SELECT 1 FROM manifest_blob mb WHERE mb.digest = $1) \
         RETURNING size",
    )
    .bind(digest)
    .bind(created_before_ms)
    .fetch_optional(&mut **tx)
    .await?;
    row.map(|r| Ok(r.try_get("size")?)).transpose()
}

#[cfg(test)]
mod tests {
    #[test]
    fn digest_lock_keys() {
        let d = "sha256:ffffffff00000000000000000000000000000000000000000000000000000000";
        assert_eq!(super::digest_lock_key(d), -1);
        let d = "sha256:0000002a00000000000000000000000000000000000000000000000000000000";
        assert_eq!(super::digest_lock_key(d), 42);
    }
}
