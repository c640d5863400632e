//! Proxy-cache configurations of organizations, and the tags the cache set from upstream.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::db::{DbResult, Exec, Tx, get_bool};

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

/// A tag the cache set from upstream that is still live and still points where the cache set it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CachedTag {
    pub tag_id: i64,
    pub repository_id: i64,
    pub name: String,
    pub manifest_id: i64,
}

/// The namespace's cached tags, least recently pulled first (each pull by tag renews a cached
/// tag's expiration, so the earliest expiration is the oldest pull).
pub async fn least_recently_pulled<'c>(
    ex: impl Exec<'c>,
    namespace_id: i64,
    now_ms: i64,
    limit: i64,
) -> DbResult<Vec<CachedTag>> {
    let rows = sqlx::query(
        "SELECT t.id, t.repository_id, t.name, t.manifest_id FROM tag t \
         JOIN repository r ON r.id = t.repository_id \
         JOIN proxy_cache_tag p ON p.repository_id = t.repository_id AND p.name = t.name \
         JOIN manifest m ON m.id = t.manifest_id AND m.digest = p.manifest_digest \
         WHERE r.namespace_id = $1 AND t.end_ms IS NULL \
           AND (t.expiration_ms IS NULL OR t.expiration_ms > $2) \
         ORDER BY COALESCE(t.expiration_ms, 0), t.id LIMIT $3",
    )
    .bind(namespace_id)
    .bind(now_ms)
    .bind(limit)
    .fetch_all(ex)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(CachedTag {
                tag_id: r.try_get("id")?,
                repository_id: r.try_get("repository_id")?,
                name: r.try_get("name")?,
                manifest_id: r.try_get("manifest_id")?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(Into::into)
}

/// Evicts a cached tag (under the repository lock): its lifetime ends at `gone_ms`, a moment
/// before the time machine window, and its manifest (with the children of an index) counts as
/// pushed then, so the next collection of the repository reclaims what nothing else holds, as
/// Quay's eviction takes the tag out of the time machine. `false` when the tag changed meanwhile.
pub async fn evict(tx: &mut Tx, tag: &CachedTag, gone_ms: i64) -> DbResult<bool> {
    let ended = sqlx::query("UPDATE tag SET end_ms = $2 WHERE id = $1 AND end_ms IS NULL")
        .bind(tag.tag_id)
        .bind(gone_ms)
        .execute(&mut **tx)
        .await?;
    if ended.rows_affected() == 0 {
        return Ok(false);
    }
    sqlx::query(
        "UPDATE manifest SET pushed_ms = $3 WHERE pushed_ms > $3 AND (id = $2 OR (repository_id = $1 \
         AND digest IN (SELECT child_digest FROM manifest_child WHERE manifest_id = $2)))",
    )
    .bind(tag.repository_id)
    .bind(tag.manifest_id)
    .bind(gone_ms)
    .execute(&mut **tx)
    .await?;
    forget_cached_tag(&mut **tx, tag.repository_id, &tag.name).await?;
    Ok(true)
}
