//! Manifest labels: key/value pairs on a manifest, from its image config (`manifest`) or the API
//! (`api`).

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::db::{DbResult, Exec};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LabelRow {
    pub uuid: String,
    pub manifest_id: i64,
    pub key: String,
    pub value: String,
    pub source_type: String,
    pub media_type: String,
}

const COLS: &str = "uuid, manifest_id, label_key, value, source_type, media_type";

fn from_row(row: &AnyRow) -> Result<LabelRow, sqlx::Error> {
    Ok(LabelRow {
        uuid: row.try_get("uuid")?,
        manifest_id: row.try_get("manifest_id")?,
        key: row.try_get("label_key")?,
        value: row.try_get("value")?,
        source_type: row.try_get("source_type")?,
        media_type: row.try_get("media_type")?,
    })
}

pub async fn insert<'c>(ex: impl Exec<'c>, label: &LabelRow, now_ms: i64) -> DbResult<()> {
    sqlx::query(
        "INSERT INTO manifest_label (uuid, manifest_id, label_key, value, source_type, media_type, created_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&label.uuid)
    .bind(label.manifest_id)
    .bind(&label.key)
    .bind(&label.value)
    .bind(&label.source_type)
    .bind(&label.media_type)
    .bind(now_ms)
    .execute(ex)
    .await?;
    Ok(())
}

/// The labels of a manifest in the order they were added, optionally only keys starting with
/// `prefix`.
pub async fn list<'c>(
    ex: impl Exec<'c>,
    manifest_id: i64,
    prefix: Option<&str>,
) -> DbResult<Vec<LabelRow>> {
    let rows = sqlx::query(&format!(
        "SELECT {COLS} FROM manifest_label WHERE manifest_id = $1 \
         AND ($2 IS NULL OR substr(label_key, 1, length($2)) = $2) ORDER BY id"
    ))
    .bind(manifest_id)
    .bind(prefix)
    .fetch_all(ex)
    .await?;
    rows.iter().map(|r| Ok(from_row(r)?)).collect()
}

pub async fn get<'c>(
    ex: impl Exec<'c>,
    manifest_id: i64,
    uuid: &str,
) -> DbResult<Option<LabelRow>> {
    let row = sqlx::query(&format!(
        "SELECT {COLS} FROM manifest_label WHERE manifest_id = $1 AND uuid = $2"
    ))
    .bind(manifest_id)
    .bind(uuid)
    .fetch_optional(ex)
    .await?;
    Ok(row.as_ref().map(from_row).transpose()?)
}

/// Deletes a label of the manifest; returns it if it existed.
pub async fn delete<'c>(
    ex: impl Exec<'c>,
    manifest_id: i64,
    uuid: &str,
) -> DbResult<Option<LabelRow>> {
    let row = sqlx::query(&format!(
        "DELETE FROM manifest_label WHERE manifest_id = $1 AND uuid = $2 RETURNING {COLS}"
    ))
    .bind(manifest_id)
    .bind(uuid)
    .fetch_optional(ex)
    .await?;
    Ok(row.as_ref().map(from_row).transpose()?)
}

/// The values of label `key` on each of `manifest_ids` that has it (the latest added wins).
pub async fn values_of<'c>(
    ex: impl Exec<'c>,
    manifest_ids: &[i64],
    key: &str,
) -> DbResult<Vec<(i64, String)>> {
    if manifest_ids.is_empty() {
        return Ok(Vec::new());
    }
    let placeholders: Vec<String> = (0..manifest_ids.len())
        .map(|i| format!("${}", i + 2))
        .collect();
    let sql = format!(
        "SELECT manifest_id, value FROM manifest_label WHERE label_key = $1 AND manifest_id IN ({}) ORDER BY id",
        placeholders.join(", ")
    );
    let mut q = sqlx::query(&sql).bind(key);
    for id in manifest_ids {
        q = q.bind(*id);
    }
    let rows = q.fetch_all(ex).await?;
    let mut out: Vec<(i64, String)> = Vec::new();
    for r in rows {
        let id: i64 = r.try_get("manifest_id")?;
        let value: String = r.try_get("value")?;
        match out.iter_mut().find(|(m, _)| *m == id) {
            Some(slot) => slot.1 = value,
            None => out.push((id, value)),
        }
    }
    Ok(out)
}
