//! Blobs (global, content-addressed) and their links into repositories.

use sqlx::Row;

use super::{DbResult, Exec};

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

/// Links a stored blob into a repository (idempotent).
pub async fn link<'c>(
    ex: impl Exec<'c>,
    repository_id: i64,
    digest: &str,
    now_ms: i64,
) -> DbResult<()> {
    sqlx::query(
        "INSERT INTO repo_blob (repository_id, digest, created_ms) VALUES ($1, $2, $3) \
         ON CONFLICT (repository_id, digest) DO NOTHING",
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
