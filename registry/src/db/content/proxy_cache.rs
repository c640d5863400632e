//! Proxy-cache configurations of organizations, and the tags the cache set from upstream.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::db::{DbResult, Exec, get_bool};

/// One organization's configuration; the credentials are sealed.
#[derive(Clone, Debug)]
pub struct ProxyCacheRow {
    pub namespace_id: i64,
    pub upstream_registry: String,
    pub username_sealed: Option<String>,
    pub password_sealed: Option<String>,
    pub insecure: bool,
    pub expiration_s: i64,
    pub created_ms: i64,
}

fn from_row(row: &AnyRow) -> Result<ProxyCacheRow, sqlx::Error> {
    Ok(ProxyCacheRow {
        namespace_id: row.try_get("namespace_id")?,
        upstream_registry: row.try_get("upstream_registry")?,
        username_sealed: row.try_get("username_sealed")?,
        password_sealed: row.try_get("password_sealed")?,
        insecure: get_bool(row, "insecure")?,
        expiration_s: row.try_get("expiration_s")?,
        created_ms: row.try_get("created_ms")?,
    })
}

const COLS: &str = "namespace_id, upstream_registry, username_sealed, password_sealed, insecure, expiration_s, created_ms";

pub async fn get<'c>(ex: impl Exec<'c>, namespace_id: i64) -> DbResult<Option<ProxyCacheRow>> {
    let row = sqlx::query(&format!(
        "SELECT {COLS} FROM proxy_cache WHERE namespace_id = $1"
    ))
    .bind(namespace_id)
    .fetch_optional(ex)
    .await?;
    Ok(row.map(|r| from_row(&r)).transpose()?)
}

/// The configuration of the namespace called `namespace`, if it has one.
pub async fn by_namespace<'c>(
    ex: impl Exec<'c>,
    namespace: &str,
) -> DbResult<Option<ProxyCacheRow>> {
    let row = sqlx::query(
        "SELECT p.namespace_id, p.upstream_registry, p.username_sealed, p.password_sealed, \
         p.insecure, p.expiration_s, p.created_ms FROM proxy_cache p \
         JOIN namespace n ON n.id = p.namespace_id WHERE n.name = $1",
    )
    .bind(namespace)
    .fetch_optional(ex)
    .await?;
    Ok(row.map(|r| from_row(&r)).transpose()?)
}

/// Inserts a configuration; a unique violation means the organization already has one.
pub async fn insert<'c>(ex: impl Exec<'c>, row: &ProxyCacheRow) -> DbResult<()> {
    sqlx::query(&format!(
        "INSERT INTO proxy_cache ({COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
    ))
    .bind(row.namespace_id)
    .bind(&row.upstream_registry)
    .bind(&row.username_sealed)
    .bind(&row.password_sealed)
    .bind(row.insecure)
    .bind(row.expiration_s)
    .bind(row.created_ms)
    .execute(ex)
    .await?;
    Ok(())
}

/// Removes the configuration; returns whether there was one.
pub async fn delete<'c>(ex: impl Exec<'c>, namespace_id: i64) -> DbResult<bool> {
    let done = sqlx::query("DELETE FROM proxy_cache WHERE namespace_id = $1")
        .bind(namespace_id)
        .execute(ex)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// The manifest digest the cache last set `name` to from upstream.
pub async fn cached_tag<'c>(
    ex: impl Exec<'c>,
    repository_id: i64,
    name: &str,
) -> DbResult<Option<String>> {
    let row = sqlx::query(
        "SELECT manifest_digest FROM proxy_cache_tag WHERE repository_id = $1 AND name = $2",
    )
    .bind(repository_id)
    .bind(name)
    .fetch_optional(ex)
    .await?;
    Ok(row.map(|r| r.try_get("manifest_digest")).transpose()?)
}

pub async fn set_cached_tag<'c>(
    ex: impl Exec<'c>,
    repository_id: i64,
    name: &str,
    manifest_digest: &str,
) -> DbResult<()> {
    sqlx::query(
        "INSERT INTO proxy_cache_tag (repository_id, name, manifest_digest) VALUES ($1, $2, $3) \
         ON CONFLICT (repository_id, name) DO UPDATE SET manifest_digest = excluded.manifest_digest",
    )
    .bind(repository_id)
    .bind(name)
    .bind(manifest_digest)
    .execute(ex)
    .await?;
    Ok(())
}

pub async fn forget_cached_tag<'c>(
    ex: impl Exec<'c>,
    repository_id: i64,
    name: &str,
) -> DbResult<()> {
    sqlx::query("DELETE FROM proxy_cache_tag WHERE repository_id = $1 AND name = $2")
        .bind(repository_id)
        .bind(name)
        .execute(ex)
        .await?;
    Ok(())
}
