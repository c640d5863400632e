//! Installation-wide settings and worker leases shared by all replicas.

use sqlx::Row;

use crate::db::{DbResult, Exec};

/// Returns the stored value of `name`, storing `candidate` first if there is none. Replicas
/// racing here all end up with the first value written.
pub async fn get_or_insert<'c, E: Exec<'c> + Copy>(
    ex: E,
    name: &str,
    candidate: &str,
) -> DbResult<String> {
    sqlx::query(
        "INSERT INTO instance_setting (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
    )
    .bind(name)
    .bind(candidate)
    .execute(ex)
    .await?;
    let row = sqlx::query("SELECT value FROM instance_setting WHERE name = $1")
        .bind(name)
        .fetch_one(ex)
        .await?;
    Ok(row.try_get("value")?)
}

/// Takes or renews the lease `name` for `holder` until `until_ms`. Returns whether `holder` now
/// holds it (it is free, expired, or already held by `holder`).
pub async fn acquire_lease<'c, E: Exec<'c> + Copy>(
    ex: E,
    name: &str,
    holder: &str,
    now_ms: i64,
    until_ms: i64,
) -> DbResult<bool> {
    sqlx::query(
        "INSERT INTO worker_lease (name, holder, expires_ms) VALUES ($1, $2, $3) \
         ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_ms = excluded.expires_ms \
         WHERE worker_lease.holder = excluded.holder OR worker_lease.expires_ms < $4",
    )
    .bind(name)
    .bind(holder)
    .bind(until_ms)
    .bind(now_ms)
    .execute(ex)
    .await?;
    let row = sqlx::query("SELECT holder FROM worker_lease WHERE name = $1")
        .bind(name)
        .fetch_one(ex)
        .await?;
    Ok(row.try_get::<String, _>("holder")? == holder)
}

/// The stored value of `name`, if any.
pub async fn get<'c>(ex: impl Exec<'c>, name: &str) -> DbResult<Option<String>> {
    let row = sqlx::query("SELECT value FROM instance_setting WHERE name = $1")
        .bind(name)
        .fetch_optional(ex)
        .await?;
    row.map(|r| Ok(r.try_get("value")?)).transpose()
}

/// Stores `value` under `name`, replacing what was there.
pub async fn put<'c>(ex: impl Exec<'c>, name: &str, value: &str) -> DbResult<()> {
    sqlx::query(
        "INSERT INTO instance_setting (name, value) VALUES ($1, $2) \
         ON CONFLICT (name) DO UPDATE SET value = excluded.value",
    )
    .bind(name)
    .bind(value)
    .execute(ex)
    .await?;
    Ok(())
}

/// Forgets `name`; whether it was there.
pub async fn delete<'c>(ex: impl Exec<'c>, name: &str) -> DbResult<bool> {
    let done = sqlx::query("DELETE FROM instance_setting WHERE name = $1")
        .bind(name)
        .execute(ex)
        .await?;
    Ok(done.rows_affected() > 0)
}
