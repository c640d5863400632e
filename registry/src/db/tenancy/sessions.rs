//! Web UI sessions: one row per signed-in browser, keyed by the SHA-256 of the cookie's value
//! (never the value itself), with the session's CSRF token and its end.

use sqlx::Row;

use crate::db::{DbResult, Exec};

/// A session as a request resolves it.
#[derive(Clone, Debug)]
pub struct SessionRow {
    pub user_id: i64,
    pub csrf: String,
    pub expires_ms: i64,
}

pub async fn insert<'c>(
    ex: impl Exec<'c>,
    id_hash: &str,
    user_id: i64,
    csrf: &str,
    created_ms: i64,
    expires_ms: i64,
) -> DbResult<()> {
    sqlx::query(
        "INSERT INTO ui_session (id_hash, user_id, csrf, created_ms, expires_ms) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(id_hash)
    .bind(user_id)
    .bind(csrf)
    .bind(created_ms)
    .bind(expires_ms)
    .execute(ex)
    .await?;
    Ok(())
}

pub async fn get<'c>(ex: impl Exec<'c>, id_hash: &str) -> DbResult<Option<SessionRow>> {
    let row = sqlx::query("SELECT user_id, csrf, expires_ms FROM ui_session WHERE id_hash = $1")
        .bind(id_hash)
        .fetch_optional(ex)
        .await?;
    let Some(row) = row else { return Ok(None) };
    Ok(Some(SessionRow {
        user_id: row.try_get("user_id")?,
        csrf: row.try_get("csrf")?,
        expires_ms: row.try_get("expires_ms")?,
    }))
}

pub async fn delete<'c>(ex: impl Exec<'c>, id_hash: &str) -> DbResult<()> {
    sqlx::query("DELETE FROM ui_session WHERE id_hash = $1")
        .bind(id_hash)
        .execute(ex)
        .await?;
    Ok(())
}

/// Every session of a user (a password change ends them all but the caller's).
pub async fn delete_of_user_except<'c>(
    ex: impl Exec<'c>,
    user_id: i64,
    keep_hash: &str,
) -> DbResult<()> {
    sqlx::query("DELETE FROM ui_session WHERE user_id = $1 AND id_hash <> $2")
        .bind(user_id)
        .bind(keep_hash)
        .execute(ex)
        .await?;
    Ok(())
}

/// Sessions that ended before `now_ms`.
pub async fn delete_expired<'c>(ex: impl Exec<'c>, now_ms: i64) -> DbResult<u64> {
    let done = sqlx::query("DELETE FROM ui_session WHERE expires_ms < $1")
        .bind(now_ms)
        .execute(ex)
        .await?;
    Ok(done.rows_affected())
}
