//! Access tokens, stored as SHA-256 hashes of the secret.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::db::{DbResult, Exec};

/// Where a new token comes from.
#[derive(Default)]
pub struct TokenMeta<'a> {
    pub application_id: Option<i64>,
    pub uuid: Option<&'a str>,
    pub name: Option<&'a str>,
}

#[allow(clippy::too_many_arguments)]
pub async fn insert<'c>(
    ex: impl Exec<'c>,
    token_hash: &str,
    namespace_id: i64,
    scopes: &str,
    now_ms: i64,
    expires_ms: Option<i64>,
    meta: &TokenMeta<'_>,
) -> DbResult<i64> {
    let row = sqlx::query(
        "INSERT INTO access_token (token_hash, namespace_id, scopes, created_ms, expires_ms, application_id, uuid, name) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
    )
    .bind(token_hash)
    .bind(namespace_id)
    .bind(scopes)
    .bind(now_ms)
    .bind(expires_ms)
    .bind(meta.application_id)
    .bind(meta.uuid)
    .bind(meta.name)
    .fetch_one(ex)
    .await?;
    Ok(row.try_get("id")?)
}

/// A live token: its owner, scopes and application.
#[derive(Clone, Debug)]
pub struct TokenRow {
    pub id: i64,
    pub namespace_id: i64,
    pub scopes: String,
    pub application_id: Option<i64>,
    pub uuid: Option<String>,
    pub name: Option<String>,
    pub owner: String,
    pub created_ms: i64,
    pub expires_ms: Option<i64>,
}

const SELECT: &str = "SELECT t.id, t.namespace_id, t.scopes, t.application_id, t.uuid, t.name, \
    n.name AS owner, t.created_ms, t.expires_ms FROM access_token t JOIN namespace n ON n.id = t.namespace_id";

fn from_row(r: &AnyRow) -> Result<TokenRow, sqlx::Error> {
    Ok(TokenRow {
        id: r.try_get("id")?,
        namespace_id: r.try_get("namespace_id")?,
        scopes: r.try_get("scopes")?,
        application_id: r.try_get("application_id")?,
        uuid: r.try_get("uuid")?,
        name: r.try_get("name")?,
        owner: r.try_get("owner")?,
        created_ms: r.try_get("created_ms")?,
        expires_ms: r.try_get("expires_ms")?,
    })
}

/// The live token with this hash.
pub async fn find<'c>(
    ex: impl Exec<'c>,
    token_hash: &str,
    now_ms: i64,
) -> DbResult<Option<TokenRow>> {
    let row = sqlx::query(&format!(
        "{SELECT} WHERE t.token_hash = $1 AND (t.expires_ms IS NULL OR t.expires_ms > $2)"
    ))
    .bind(token_hash)
    .bind(now_ms)
    .fetch_optional(ex)
    .await?;
    Ok(row.as_ref().map(from_row).transpose()?)
}

pub async fn of_application<'c>(ex: impl Exec<'c>, application_id: i64) -> DbResult<Vec<TokenRow>> {
    let rows = sqlx::query(&format!(
        "{SELECT} WHERE t.application_id = $1 ORDER BY t.id"
    ))
    .bind(application_id)
    .fetch_all(ex)
    .await?;
    rows.iter().map(|r| Ok(from_row(r)?)).collect()
}

pub async fn delete_of_application<'c>(
    ex: impl Exec<'c>,
    application_id: i64,
    uuid: &str,
) -> DbResult<bool> {
    let done = sqlx::query("DELETE FROM access_token WHERE application_id = $1 AND uuid = $2")
        .bind(application_id)
        .bind(uuid)
        .execute(ex)
        .await?;
    Ok(done.rows_affected() > 0)
}
