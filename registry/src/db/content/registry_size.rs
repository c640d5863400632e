//! The registry's total size (`registry_size`, one row with id 1): the last calculation's
//! result and whether one is queued or running.

use sqlx::Row;

use crate::db::{DbResult, Exec, get_bool};

/// The stored calculation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegistrySizeRow {
    pub size_bytes: i64,
    pub queued: bool,
    pub running: bool,
    pub completed_ms: Option<i64>,
}

pub async fn get<'c>(ex: impl Exec<'c>) -> DbResult<Option<RegistrySizeRow>> {
    let row = sqlx::query(
        "SELECT size_bytes, queued, running, completed_ms FROM registry_size WHERE id = 1",
    )
    .fetch_optional(ex)
    .await?;
    row.map(|r| {
        Ok(RegistrySizeRow {
            size_bytes: r.try_get("size_bytes")?,
            queued: get_bool(&r, "queued")?,
            running: get_bool(&r, "running")?,
            completed_ms: r.try_get("completed_ms")?,
        })
    })
    .transpose()
}

/// Marks a calculation as running unless one already is (queued or running since
/// `stale_before_ms` or later). Returns whether this caller now runs it.
pub async fn start<'c, E: Exec<'c> + Copy>(
    ex: E,
    now_ms: i64,
    stale_before_ms: i64,
) -> DbResult<bool> {
    sqlx::query(
        "INSERT INTO registry_size (id, size_bytes, queued, running) VALUES (1, 0, FALSE, FALSE) \
         ON CONFLICT (id) DO NOTHING",
    )
    .execute(ex)
    .await?;
    let done = sqlx::query(
        "UPDATE registry_size SET running = TRUE, queued = FALSE, started_ms = $1 \
         WHERE id = 1 AND ((running = FALSE AND queued = FALSE) OR started_ms < $2)",
    )
    .bind(now_ms)
    .bind(stale_before_ms)
    .execute(ex)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The sum of every stored blob's size.
pub async fn sum_blobs<'c>(ex: impl Exec<'c>) -> DbResult<i64> {
    let row = sqlx::query("SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT) AS total FROM blob")
        .fetch_one(ex)
        .await?;
    Ok(row.try_get("total")?)
}

/// Stores a finished calculation.
pub async fn finish<'c>(ex: impl Exec<'c>, size_bytes: i64, completed_ms: i64) -> DbResult<()> {
    sqlx::query(
        "UPDATE registry_size SET size_bytes = $1, completed_ms = $2, running = FALSE, \
         queued = FALSE WHERE id = 1",
    )
    .bind(size_bytes)
    .bind(completed_ms)
    .execute(ex)
    .await?;
    Ok(())
}

/// Clears a calculation that failed midway, so a later request may start another.
pub async fn abandon<'c>(ex: impl Exec<'c>) -> DbResult<()> {
    sqlx::query("UPDATE registry_size SET running = FALSE, queued = FALSE WHERE id = 1")
        .execute(ex)
        .await?;
    Ok(())
}
