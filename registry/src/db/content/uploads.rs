//! Blob upload sessions and their stored parts.

use sqlx::Row;

use crate::db::{DbResult, Exec, Tx};

#[derive(Clone, Debug)]
pub struct UploadRow {
    pub uuid: String,
    pub repository_id: i64,
    pub size: i64,
    pub created_ms: i64,
    pub updated_ms: i64,
}

pub async fn insert<'c>(
    ex: impl Exec<'c>,
    uuid: &str,
    repository_id: i64,
    now_ms: i64,
) -> DbResult<()> {
    sqlx::query(
        "INSERT INTO upload (uuid, repository_id, size, created_ms, updated_ms) VALUES ($1, $2, 0, $3, $3)",
    )
    .bind(uuid)
    .bind(repository_id)
    .bind(now_ms)
    .execute(ex)
    .await?;
    Ok(())
}

pub async fn get<'c>(ex: impl Exec<'c>, uuid: &str) -> DbResult<Option<UploadRow>> {
    let row = sqlx::query(
        "SELECT uuid, repository_id, size, created_ms, updated_ms FROM upload WHERE uuid = $1",
    )
    .bind(uuid)
    .fetch_optional(ex)
    .await?;
    row.map(|r| {
        Ok(UploadRow {
            uuid: r.try_get("uuid")?,
            repository_id: r.try_get("repository_id")?,
            size: r.try_get("size")?,
            created_ms: r.try_get("created_ms")?,
            updated_ms: r.try_get("updated_ms")?,
        })
    })
    .transpose()
}

/// `(start_offset, size)` of every stored part, in order.
pub async fn parts<'c>(ex: impl Exec<'c>, uuid: &str) -> DbResult<Vec<(i64, i64)>> {
    let rows = sqlx::query(
        "SELECT start_offset, size FROM upload_part WHERE upload_uuid = $1 ORDER BY start_offset",
    )
    .bind(uuid)
    .fetch_all(ex)
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("start_offset")?, r.try_get("size")?)))
        .collect()
}

/// Appends a stored part at `start`, but only if the upload's size is still `start` (so two
/// writers racing on one upload cannot both extend it). Returns whether the part was recorded.
pub async fn append_part(
    tx: &mut Tx,
    uuid: &str,
    start: i64,
    size: i64,
    now_ms: i64,
) -> DbResult<bool> {
    let done =
        sqlx::query("UPDATE upload SET size = $1, updated_ms = $2 WHERE uuid = $3 AND size = $4")
            .bind(start + size)
            .bind(now_ms)
            .bind(uuid)
            .bind(start)
            .execute(&mut **tx)
            .await?;
    if done.rows_affected() == 0 {
        return Ok(false);
    }
    sqlx::query("INSERT INTO upload_part (upload_uuid, start_offset, size) VALUES ($1, $2, $3)")
        .bind(uuid)
        .bind(start)
        .bind(size)
        .execute(&mut **tx)
        .await?;
    Ok(true)
}

pub async fn delete<'c>(ex: impl Exec<'c>, uuid: &str) -> DbResult<bool> {
    let done = sqlx::query("DELETE FROM upload WHERE uuid = $1")
        .bind(uuid)
        .execute(ex)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// Uploads idle since before `before_ms`.
pub async fn idle_since<'c>(
    ex: impl Exec<'c>,
    before_ms: i64,
    limit: i64,
) -> DbResult<Vec<String>> {
    let rows =
        sqlx::query("SELECT uuid FROM upload WHERE updated_ms < $1 ORDER BY updated_ms LIMIT $2")
            .bind(before_ms)
            .bind(limit)
            .fetch_all(ex)
            .await?;
    rows.iter().map(|r| Ok(r.try_get("uuid")?)).collect()
}

/// Every upload id that exists (to find orphaned parts in storage).
pub async fn exists<'c>(ex: impl Exec<'c>, uuid: &str) -> DbResult<bool> {
    let row = sqlx::query("SELECT 1 AS one FROM upload WHERE uuid = $1")
        .bind(uuid)
        .fetch_optional(ex)
        .await?;
    Ok(row.is_some())
}
