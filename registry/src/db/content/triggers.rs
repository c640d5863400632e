//! Build triggers (`build_trigger`): one row per trigger of a repository, its config (JSON),
//! its pull robot, and the sealed deploy key and webhook secret it got at activation.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::db::{DbResult, Exec, get_bool};

/// One trigger.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TriggerRow {
    pub id: i64,
    pub uuid: String,
    pub repository_id: i64,
    pub service: String,
    pub connected_user_id: Option<i64>,
    pub config: String,
    pub pull_robot_id: Option<i64>,
    pub private_key_sealed: Option<String>,
    pub secret_sealed: Option<String>,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub created_ms: i64,
}

const COLS: &str = "id, uuid, repository_id, service, connected_user_id, config, pull_robot_id, \
     private_key_sealed, secret_sealed, enabled, disabled_reason, created_ms";

fn from_row(row: &AnyRow) -> Result<TriggerRow, sqlx::Error> {
    Ok(TriggerRow {
        id: row.try_get("id")?,
        uuid: row.try_get("uuid")?,
        repository_id: row.try_get("repository_id")?,
        service: row.try_get("service")?,
        connected_user_id: row.try_get("connected_user_id")?,
        config: row.try_get("config")?,
        pull_robot_id: row.try_get("pull_robot_id")?,
        private_key_sealed: row.try_get("private_key_sealed")?,
        secret_sealed: row.try_get("secret_sealed")?,
        enabled: get_bool(row, "enabled")?,
        disabled_reason: row.try_get("disabled_reason")?,
        created_ms: row.try_get("created_ms")?,
    })
}

/// A new, inactive trigger (config `{}`).
pub async fn insert<'c>(
    ex: impl Exec<'c>,
    uuid: &str,
    repository_id: i64,
    service: &str,
    connected_user_id: Option<i64>,
    now_ms: i64,
) -> DbResult<TriggerRow> {
    let row = sqlx::query(&format!(
        "INSERT INTO build_trigger (uuid, repository_id, service, connected_user_id, config, \
         enabled, created_ms) VALUES ($1, $2, $3, $4, '{{}}', $5, $6) RETURNING {COLS}"
    ))
    .bind(uuid)
    .bind(repository_id)
    .bind(service)
    .bind(connected_user_id)
    .bind(true)
    .bind(now_ms)
    .fetch_one(ex)
    .await?;
    Ok(from_row(&row)?)
}

pub async fn by_uuid<'c>(ex: impl Exec<'c>, uuid: &str) -> DbResult<Option<TriggerRow>> {
    let row = sqlx::query(&format!("SELECT {COLS} FROM build_trigger WHERE uuid = $1"))
        .bind(uuid)
        .fetch_optional(ex)
        .await?;
    Ok(row.map(|r| from_row(&r)).transpose()?)
}

pub async fn by_id<'c>(ex: impl Exec<'c>, id: i64) -> DbResult<Option<TriggerRow>> {
    let row = sqlx::query(&format!("SELECT {COLS} FROM build_trigger WHERE id = $1"))
        .bind(id)
        .fetch_optional(ex)
        .await?;
    Ok(row.map(|r| from_row(&r)).transpose()?)
}

/// A repository's triggers, oldest first.
pub async fn list<'c>(ex: impl Exec<'c>, repository_id: i64) -> DbResult<Vec<TriggerRow>> {
    let rows = sqlx::query(&format!(
        "SELECT {COLS} FROM build_trigger WHERE repository_id = $1 ORDER BY created_ms, id"
    ))
    .bind(repository_id)
    .fetch_all(ex)
    .await?;
    Ok(rows.iter().map(from_row).collect::<Result<_, _>>()?)
}

/// Activation: the config, the pull robot, the sealed key and secret; only while inactive
/// (`secret_sealed IS NULL`), so two activations cannot both win.
pub async fn activate<'c>(
    ex: impl Exec<'c>,
    id: i64,
    config: &str,
    pull_robot_id: Option<i64>,
    private_key_sealed: Option<&str>,
    secret_sealed: &str,
) -> DbResult<bool> {
    let done = sqlx::query(
        "UPDATE build_trigger SET config = $2, pull_robot_id = $3, private_key_sealed = $4, \
         secret_sealed = $5 WHERE id = $1 AND secret_sealed IS NULL",
    )
    .bind(id)
    .bind(config)
    .bind(pull_robot_id)
    .bind(private_key_sealed)
    .bind(secret_sealed)
    .execute(ex)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// Turns a trigger on or off (Quay's `disabled_reason` is `user_toggled` when off).
pub async fn set_enabled<'c>(ex: impl Exec<'c>, id: i64, enabled: bool) -> DbResult<()> {
    sqlx::query("UPDATE build_trigger SET enabled = $2, disabled_reason = $3 WHERE id = $1")
        .bind(id)
        .bind(enabled)
        .bind((!enabled).then_some("user_toggled"))
        .execute(ex)
        .await?;
    Ok(())
}

pub async fn delete<'c>(ex: impl Exec<'c>, id: i64) -> DbResult<bool> {
    let done = sqlx::query("DELETE FROM build_trigger WHERE id = $1")
        .bind(id)
        .execute(ex)
        .await?;
    Ok(done.rows_affected() > 0)
}
