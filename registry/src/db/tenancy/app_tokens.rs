//! Application-specific tokens: stored as the SHA-256 hash of the token (what logins look up)
//! and sealed with the installation key (what the API shows its owner), never in the clear.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::db::{DbResult, Exec};

/// A new token's row.
pub struct NewAppToken<'a> {
    pub uuid: &'a str,
    pub namespace_id: i64,
    pub title: &'a str,
    pub token_hash: &'a str,
    pub token_sealed: &'a str,
    pub created_ms: i64,
    pub expires_ms: Option<i64>,
}

#[derive(Clone, Debug)]
pub struct AppTokenRow {
    pub id: i64,
    pub uuid: String,
    pub namespace_id: i64,
    pub owner: String,
    pub title: String,
    pub token_sealed: String,
    pub created_ms: i64,
    pub expires_ms: Option<i64>,
    pub last_accessed_ms: Option<i64>,
}

const SELECT: &str = "SELECT t.id, t.uuid, t.namespace_id, n.name AS owner, t.title, t.token_sealed, \
    t.created_ms, t.expires_ms, t.last_accessed_ms FROM app_specific_token t \
    JOIN namespace n ON n.id = t.namespace_id";

fn from_row(r: &AnyRow) -> Result<AppTokenRow, sqlx::Error> {
    Ok(AppTokenRow {
        id: r.try_get("id")?,
        uuid: r.try_get("uuid")?,
        namespace_id: r.try_get("namespace_id")?,
        owner: r.try_get("owner")?,
        title: r.try_get("title")?,
        token_sealed: r.try_get("token_sealed")?,
        created_ms: r.try_get("created_ms")?,
        expires_ms: r.try_get("expires_ms")?,
        last_accessed_ms: r.try_get("last_accessed_ms")?,
    })
}

pub async fn insert<'c>(ex: impl Exec<'c>, new: &NewAppToken<'_>) -> DbResult<()> {
    sqlx::query(
        "INSERT INTO app_specific_token (uuid, namespace_id, title, token_hash, token_sealed, created_ms, expires_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(new.uuid)
    .bind(new.namespace_id)
    .bind(new.title)
    .bind(new.token_hash)
    .bind(new.token_sealed)
    .bind(new.created_ms)
    .bind(new.expires_ms)
    .execute(ex)
    .await?;
    Ok(())
}

/// Every token of a user, oldest first (expired ones included, as Quay lists them).
pub async fn of_user<'c>(ex: impl Exec<'c>, namespace_id: i64) -> DbResult<Vec<AppTokenRow>> {
    let rows = sqlx::query(&format!("{SELECT} WHERE t.namespace_id = $1 ORDER BY t.id"))
        .bind(namespace_id)
        .fetch_all(ex)
        .await?;
    rows.iter().map(|r| Ok(from_row(r)?)).collect()
}

/// Every token of the installation, oldest first.
pub async fn all<'c>(ex: impl Exec<'c>) -> DbResult<Vec<AppTokenRow>> {
    let rows = sqlx::query(&format!("{SELECT} ORDER BY t.id"))
        .fetch_all(ex)
        .await?;
    rows.iter().map(|r| Ok(from_row(r)?)).collect()
}

/// The token `uuid`, if it exists (expired or not); of `namespace_id` when given.
pub async fn by_uuid<'c>(
    ex: impl Exec<'c>,
    uuid: &str,
    namespace_id: i64,
) -> DbResult<Option<AppTokenRow>> {
    let row = sqlx::query(&format!(
        "{SELECT} WHERE t.uuid = $1 AND t.namespace_id = $2"
    ))
    .bind(uuid)
    .bind(namespace_id)
    .fetch_optional(ex)
    .await?;
    Ok(row.as_ref().map(from_row).transpose()?)
}

/// The unexpired token with this hash (a login).
pub async fn live_by_hash<'c>(
    ex: impl Exec<'c>,
    token_hash: &str,
    now_ms: i64,
) -> DbResult<Option<AppTokenRow>> {
    let row = sqlx::query(&format!(
        "{SELECT} WHERE t.token_hash = $1 AND (t.expires_ms IS NULL OR t.expires_ms > $2)"
    ))
    .bind(token_hash)
    .bind(now_ms)
    .fetch_optional(ex)
    .await?;
    Ok(row.as_ref().map(from_row).transpose()?)
}

/// Deletes the token `uuid` of `namespace_id`; returns what was deleted.
pub async fn delete<'c>(ex: impl Exec<'c>, uuid: &str, namespace_id: i64) -> DbResult<bool> {
    let done = sqlx::query("DELETE FROM app_specific_token WHERE uuid = $1 AND namespace_id = $2")
        .bind(uuid)
        .bind(namespace_id)
        .execute(ex)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// Deletes the tokens that expired before `before_ms`; returns how many.
pub async fn delete_expired_before<'c>(ex: impl Exec<'c>, before_ms: i64) -> DbResult<u64> {
    let done = sqlx::query(
        "DELETE FROM app_specific_token WHERE expires_ms IS NOT NULL AND expires_ms < $1",
    )
    .bind(before_ms)
    .execute(ex)
    .await?;
    Ok(done.rows_affected())
}

/// Records a use of token `id` at `now_ms`, at most once a minute (as Quay's
/// `LAST_ACCESSED_UPDATE_THRESHOLD_S`).
pub async fn touch<'c>(ex: impl Exec<'c>, id: i64, now_ms: i64) -> DbResult<()> {
    sqlx::query(
        "UPDATE app_specific_token SET last_accessed_ms = $2 WHERE id = $1 \
         AND (last_accessed_ms IS NULL OR last_accessed_ms < $3)",
    )
    .bind(id)
    .bind(now_ms)
    .bind(now_ms - 60_000)
    .execute(ex)
    .await?;
    Ok(())
}
