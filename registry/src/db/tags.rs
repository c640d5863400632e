//! Tags with lifetimes. A tag row is one lifetime of a name; the name is live while its current
//! row has `end_ms IS NULL` and no passed expiration. At most one row per name has
//! `end_ms IS NULL` (a partial unique index enforces it).

use sqlx::Row;

use super::{Backend, DbResult, Exec, Tx, collate_c};

/// SQL predicate for a live tag row aliased `t`, with the current time bound at `$now`.
fn live(now: &str) -> String {
    format!("t.end_ms IS NULL AND (t.expiration_ms IS NULL OR t.expiration_ms > {now})")
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TagChange {
    Created,
    Moved { from_manifest_id: i64 },
    Unchanged,
}

/// Points `name` at `manifest_id`: ends the current lifetime (if any, and if it points
/// elsewhere) and starts a new one. A concurrent writer of the same name makes this fail with a
/// unique violation; callers retry.
pub async fn set(
    tx: &mut Tx,
    repository_id: i64,
    name: &str,
    manifest_id: i64,
    now_ms: i64,
) -> DbResult<TagChange> {
    let current = sqlx::query(
        "SELECT id, manifest_id, expiration_ms FROM tag WHERE repository_id = $1 AND name = $2 AND end_ms IS NULL",
    )
    .bind(repository_id)
    .bind(name)
    .fetch_optional(&mut **tx)
    .await?;
    let mut change = TagChange::Created;
    if let Some(row) = current {
        let id: i64 = row.try_get("id")?;
        let current_manifest: i64 = row.try_get("manifest_id")?;
        let expiration: Option<i64> = row.try_get("expiration_ms")?;
        let expired = expiration.is_some_and(|e| e <= now_ms);
        if !expired && current_manifest == manifest_id {
            return Ok(TagChange::Unchanged);
        }
        // An expired lifetime ended at its expiration, not now.
        let end = if expired {
            expiration.unwrap_or(now_ms)
        } else {
            now_ms
        };
        sqlx::query("UPDATE tag SET end_ms = $1 WHERE id = $2")
            .bind(end)
            .bind(id)
            .execute(&mut **tx)
            .await?;
        if !expired {
            change = TagChange::Moved {
                from_manifest_id: current_manifest,
            };
        }
    }
    sqlx::query(
        "INSERT INTO tag (repository_id, name, manifest_id, start_ms) VALUES ($1, $2, $3, $4)",
    )
    .bind(repository_id)
    .bind(name)
    .bind(manifest_id)
    .bind(now_ms)
    .execute(&mut **tx)
    .await?;
    Ok(change)
}

/// One page of live tag names in byte order, strictly after `last`.
pub async fn list_live<'c>(
    ex: impl Exec<'c>,
    backend: Backend,
    repository_id: i64,
    last: Option<&str>,
    limit: i64,
    now_ms: i64,
) -> DbResult<Vec<String>> {
    let collate = collate_c(backend);
    let sql = format!(
        "SELECT t.name FROM tag t WHERE t.repository_id = $1 AND {} \
         AND ($2 IS NULL OR t.name{collate} > $2{collate}) ORDER BY t.name{collate} LIMIT $4",
        live("$3")
    );
    let rows = sqlx::query(&sql)
        .bind(repository_id)
        .bind(last)
        .bind(now_ms)
        .bind(limit)
        .fetch_all(ex)
        .await?;
    rows.iter().map(|r| Ok(r.try_get("name")?)).collect()
}

/// Ends the live lifetime of `name`; returns whether there was one.
pub async fn end_live<'c>(
    ex: impl Exec<'c>,
    repository_id: i64,
    name: &str,
    now_ms: i64,
) -> DbResult<bool> {
    let sql = format!(
        "UPDATE tag SET end_ms = $1 WHERE repository_id = $2 AND name = $3 AND id IN (SELECT t.id FROM tag t WHERE t.repository_id = $2 AND t.name = $3 AND {})",
        live("$1")
    );
    let done = sqlx::query(&sql)
        .bind(now_ms)
        .bind(repository_id)
        .bind(name)
        .execute(ex)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// Ends every live lifetime pointing at a manifest; returns how many.
pub async fn end_for_manifest<'c>(
    ex: impl Exec<'c>,
    manifest_id: i64,
    now_ms: i64,
) -> DbResult<u64> {
    let done = sqlx::query("UPDATE tag SET end_ms = $1 WHERE manifest_id = $2 AND end_ms IS NULL")
        .bind(now_ms)
        .bind(manifest_id)
        .execute(ex)
        .await?;
    Ok(done.rows_affected())
}
