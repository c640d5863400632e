//! Global messages (`global_message`), shown to every user of the installation.

use sqlx::Row;

use crate::db::{DbResult, Exec};

#[derive(Clone, Debug)]
pub struct MessageRow {
    pub uuid: String,
    pub content: String,
    pub media_type: String,
    pub severity: String,
}

pub async fn insert<'c>(ex: impl Exec<'c>, m: &MessageRow, now_ms: i64) -> DbResult<()> {
    sqlx::query(
        "INSERT INTO global_message (uuid, content, media_type, severity, created_ms) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&m.uuid)
    .bind(&m.content)
    .bind(&m.media_type)
    .bind(&m.severity)
    .bind(now_ms)
    .execute(ex)
    .await?;
    Ok(())
}

/// Every message, oldest first.
pub async fn list<'c>(ex: impl Exec<'c>) -> DbResult<Vec<MessageRow>> {
    let rows =
        sqlx::query("SELECT uuid, content, media_type, severity FROM global_message ORDER BY id")
            .fetch_all(ex)
            .await?;
    rows.iter()
        .map(|r| {
            Ok(MessageRow {
                uuid: r.try_get("uuid")?,
                content: r.try_get("content")?,
                media_type: r.try_get("media_type")?,
                severity: r.try_get("severity")?,
            })
        })
        .collect()
}

/// Deletes a message; whether it existed.
pub async fn delete<'c>(ex: impl Exec<'c>, uuid: &str) -> DbResult<bool> {
    let done = sqlx::query("DELETE FROM global_message WHERE uuid = $1")
        .bind(uuid)
        .execute(ex)
        .await?;
    Ok(done.rows_affected() > 0)
}
