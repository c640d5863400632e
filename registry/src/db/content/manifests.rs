//! Manifests, the blobs and children they reference, and referrer lookups.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::db::{DbResult, Exec, Tx};

#[derive(Clone, Debug)]
pub struct ManifestRow {
    pub id: i64,
    pub repository_id: i64,
    pub digest: String,
    pub media_type: String,
    pub artifact_type: Option<String>,
    pub subject_digest: Option<String>,
    pub config_digest: Option<String>,
    pub annotations: Option<String>,
    pub size: i64,
    pub layers_size: Option<i64>,
    pub content: Vec<u8>,
    pub created_ms: i64,
    pub deleted_ms: Option<i64>,
}

const COLS: &str = "m.id, m.repository_id, m.digest, m.media_type, m.artifact_type, m.subject_digest, \
     m.config_digest, m.annotations, m.size, m.layers_size, m.content, m.created_ms, m.deleted_ms";

fn from_row(row: &AnyRow) -> Result<ManifestRow, sqlx::Error> {
    Ok(ManifestRow {
        id: row.try_get("id")?,
        repository_id: row.try_get("repository_id")?,
        digest: row.try_get("digest")?,
        media_type: row.try_get("media_type")?,
        artifact_type: row.try_get("artifact_type")?,
        subject_digest: row.try_get("subject_digest")?,
        config_digest: row.try_get("config_digest")?,
        annotations: row.try_get("annotations")?,
        size: row.try_get("size")?,
        layers_size: row.try_get("layers_size")?,
        content: row.try_get("content")?,
        created_ms: row.try_get("created_ms")?,
        deleted_ms: row.try_get("deleted_ms")?,
    })
}

/// A manifest of the repository by digest, deleted or not.
pub async fn by_digest<'c>(
    ex: impl Exec<'c>,
    repository_id: i64,
    digest: &str,
) -> DbResult<Option<ManifestRow>> {
    let row = sqlx::query(&format!(
        "SELECT {COLS} FROM manifest m WHERE m.repository_id = $1 AND m.digest = $2"
    ))
    .bind(repository_id)
    .bind(digest)
    .fetch_optional(ex)
    .await?;
    Ok(row.as_ref().map(from_row).transpose()?)
}

/// The manifest a live tag points to, with the tag's expiration.
pub async fn by_tag<'c>(
    ex: impl Exec<'c>,
    repository_id: i64,
    tag: &str,
    now_ms: i64,
) -> DbResult<Option<(ManifestRow, Option<i64>)>> {
    let row = sqlx::query(&format!(
        "SELECT {COLS}, t.expiration_ms AS tag_expiration_ms FROM tag t JOIN manifest m ON m.id = t.manifest_id \
         WHERE t.repository_id = $1 AND t.name = $2 AND t.end_ms IS NULL \
           AND (t.expiration_ms IS NULL OR t.expiration_ms > $3)"
    ))
    .bind(repository_id)
    .bind(tag)
    .bind(now_ms)
    .fetch_optional(ex)
    .await?;
    row.map(|r| Ok((from_row(&r)?, r.try_get("tag_expiration_ms")?)))
        .transpose()
}

pub struct NewManifest<'a> {
    pub repository_id: i64,
    pub digest: &'a str,
    pub media_type: &'a str,
    pub artifact_type: Option<&'a str>,
    pub subject_digest: Option<&'a str>,
    pub config_digest: Option<&'a str>,
    pub annotations: Option<&'a str>,
    /// Sum of the layer sizes of an image manifest; `None` for lists.
    pub layers_size: Option<i64>,
    pub content: &'a [u8],
    pub blobs: &'a [&'a str],
    pub children: &'a [&'a str],
}

/// The id of a manifest of the repository by digest, deleted or not.
pub async fn id_of<'c>(
    ex: impl Exec<'c>,
    repository_id: i64,
    digest: &str,
) -> DbResult<Option<i64>> {
    let row = sqlx::query("SELECT id FROM manifest WHERE repository_id = $1 AND digest = $2")
        .bind(repository_id)
        .bind(digest)
        .fetch_optional(ex)
        .await?;
    row.map(|r| Ok(r.try_get("id")?)).transpose()
}

/// A manifest by id.
pub async fn by_id<'c>(ex: impl Exec<'c>, id: i64) -> DbResult<Option<ManifestRow>> {
    let row = sqlx::query(&format!("SELECT {COLS} FROM manifest m WHERE m.id = $1"))
        .bind(id)
        .fetch_optional(ex)
        .await?;
    Ok(row.as_ref().map(from_row).transpose()?)
}

/// Stores a manifest and its references, or revives an existing (possibly deleted) one with the
/// same digest. Either way it counts as pushed now. Returns its id.
pub async fn upsert(tx: &mut Tx, m: &NewManifest<'_>, now_ms: i64) -> DbResult<i64> {
    let row = sqlx::query(
        "INSERT INTO manifest (repository_id, digest, media_type, artifact_type, subject_digest, config_digest, \
                               annotations, size, content, created_ms, pushed_ms, layers_size) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10, $11) \
         ON CONFLICT (repository_id, digest) DO UPDATE SET deleted_ms = NULL, pushed_ms = excluded.pushed_ms, \
             layers_size = excluded.layers_size \
         RETURNING id",
    )
    .bind(m.repository_id)
    .bind(m.digest)
    .bind(m.media_type)
    .bind(m.artifact_type)
    .bind(m.subject_digest)
    .bind(m.config_digest)
    .bind(m.annotations)
    .bind(m.content.len() as i64)
    .bind(m.content)
    .bind(now_ms)
    .bind(m.layers_size)
    .fetch_one(&mut **tx)
    .await?;
    let id: i64 = row.try_get("id")?;
    for digest in m.blobs {
        sqlx::query("INSERT INTO manifest_blob (manifest_id, digest) VALUES ($1, $2) ON CONFLICT DO NOTHING")
            .bind(id)
            .bind(*digest)
            .execute(&mut **tx)
            .await?;
    }
    for child in m.children {
        sqlx::query("INSERT INTO manifest_child (manifest_id, child_digest) VALUES ($1, $2) ON CONFLICT DO NOTHING")
            .bind(id)
            .bind(*child)
            .execute(&mut **tx)
            .await?;
    }
    Ok(id)
}

/// Ids of the manifests of the repository among `digests` (deleted or not).
pub async fn ids_of<'c>(
    ex: impl Exec<'c>,
    repository_id: i64,
    digests: &[&str],
) -> DbResult<Vec<i64>> {
    if digests.is_empty() {
        return Ok(Vec::new());
    }
    let placeholders: Vec<String> = (0..digests.len()).map(|i| format!("${}", i + 2)).collect();
    let sql = format!(
        "SELECT id FROM manifest WHERE repository_id = $1 AND digest IN ({})",
        placeholders.join(", ")
    );
    let mut q = sqlx::query(&sql).bind(repository_id);
    for d in digests {
        q = q.bind(*d);
    }
    let rows = q.fetch_all(ex).await?;
    rows.iter()
        .map(|r| r.try_get("id"))
        .collect::<Result<_, _>>()
        .map_err(Into::into)
}

/// Which of `digests` are (undeleted) manifests of the repository.
pub async fn present_among<'c>(
    ex: impl Exec<'c>,
    repository_id: i64,
    digests: &[&str],
) -> DbResult<Vec<String>> {
    if digests.is_empty() {
        return Ok(Vec::new());
    }
    let placeholders: Vec<String> = (0..digests.len()).map(|i| format!("${}", i + 2)).collect();
    let sql = format!(
        "SELECT digest FROM manifest WHERE repository_id = $1 AND deleted_ms IS NULL AND digest IN ({})",
        placeholders.join(", ")
    );
    let mut q = sqlx::query(&sql).bind(repository_id);
    for d in digests {
        q = q.bind(*d);
    }
    let rows = q.fetch_all(ex).await?;
    rows.iter().map(|r| Ok(r.try_get("digest")?)).collect()
}

/// Marks a manifest deleted (hidden from `/v2`, kept for the time machine). Returns its id if it
/// was live.
pub async fn mark_deleted<'c>(
    ex: impl Exec<'c>,
    repository_id: i64,
    digest: &str,
    now_ms: i64,
) -> DbResult<Option<i64>> {
    let row = sqlx::query(
        "UPDATE manifest SET deleted_ms = $1 WHERE repository_id = $2 AND digest = $3 AND deleted_ms IS NULL RETURNING id",
    )
    .bind(now_ms)
    .bind(repository_id)
    .bind(digest)
    .fetch_optional(ex)
    .await?;
    row.map(|r| Ok(r.try_get("id")?)).transpose()
}

#[derive(Clone, Debug)]
pub struct ReferrerRow {
    pub digest: String,
    pub media_type: String,
    pub size: i64,
    pub artifact_type: Option<String>,
    pub annotations: Option<String>,
}

/// Undeleted manifests of the repository whose `subject` is `subject_digest`.
pub async fn referrers<'c>(
    ex: impl Exec<'c>,
    repository_id: i64,
    subject_digest: &str,
) -> DbResult<Vec<ReferrerRow>> {
    let rows = sqlx::query(
        "SELECT digest, media_type, size, artifact_type, annotations FROM manifest \
         WHERE repository_id = $1 AND subject_digest = $2 AND deleted_ms IS NULL ORDER BY id",
    )
    .bind(repository_id)
    .bind(subject_digest)
    .fetch_all(ex)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(ReferrerRow {
                digest: r.try_get("digest")?,
                media_type: r.try_get("media_type")?,
                size: r.try_get("size")?,
                artifact_type: r.try_get("artifact_type")?,
                annotations: r.try_get("annotations")?,
            })
        })
        .collect()
}

/// Brings a manifest deleted through `/v2` back (a tag is pointed at it again).
pub async fn undelete<'c>(ex: impl Exec<'c>, id: i64) -> DbResult<()> {
    sqlx::query("UPDATE manifest SET deleted_ms = NULL WHERE id = $1")
        .bind(id)
        .execute(ex)
        .await?;
    Ok(())
}

/// Digests of the child manifests of an index.
pub async fn children<'c>(ex: impl Exec<'c>, manifest_id: i64) -> DbResult<Vec<String>> {
    let rows = sqlx::query(
        "SELECT child_digest FROM manifest_child WHERE manifest_id = $1 ORDER BY child_digest",
    )
    .bind(manifest_id)
    .fetch_all(ex)
    .await?;
    rows.iter()
        .map(|r| Ok(r.try_get("child_digest")?))
        .collect()
}
