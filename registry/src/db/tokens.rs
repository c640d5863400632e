//! Access tokens, stored as SHA-256 hashes of the secret.

use sqlx::Row;

use super::{DbResult, Exec};

pub async fn insert<'c>(
    ex: impl Exec<'c>,
    token_hash: &str,
    namespace_id: i64,
    scopes: &str,
    now_ms: i64,
    expires_ms: Option<i64>,
) -> DbResult<i64> {
    let row = sqlx::query(
        "INSERT INTO access_token (token_hash, namespace_id, scopes, created_ms, expires_ms) \
         VALUES ($1, $2, $3, $4, $5) RETURNING id",
    )
    .bind(token_hash)
    .bind(namespace_id)
    .bind(scopes)
    .bind(now_ms)
    .bind(expires_ms)
    .fetch_one(ex)
    .await?;
    Ok(row.try_get("id")?)
}

/// The owner and scopes of a live token.
pub async fn find<'c>(
    ex: impl Exec<'c>,
    token_hash: &str,
    now_ms: i64,
) -> DbResult<Option<(i64, String)>> {
    let row = sqlx::query(
        "SELECT namespace_id, scopes FROM access_token \
         WHERE token_hash = $1 AND (expires_ms IS NULL OR expires_ms > $2)",
    )
    .bind(token_hash)
    .bind(now_ms)
    .fetch_optional(ex)
    .await?;
    row.map(|r| Ok((r.try_get("namespace_id")?, r.try_get("scopes")?)))
        .transpose()
}
