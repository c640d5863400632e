//! Mirror configurations of repositories (`repo_mirror`) and their claims by workers.
//!
//! A claim is one statement: a due row is set to `SYNCING` with the claimer and a lease, on
//! PostgreSQL after `FOR UPDATE SKIP LOCKED` picked it (replicas skip each other's rows), on
//! SQLite under its single writer. Progress and results are written only while the claim is
//! still the caller's (`claimed_by`), so a worker whose lease ran out cannot overwrite the
//! next one's work, and a cancel (`CANCEL`, claim cleared) is seen by the syncing worker.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::db::{Backend, DbResult, Exec, Tx, get_bool};

/// Quay's `sync_status` values.
pub const NEVER_RUN: &str = "NEVER_RUN";
pub const SYNC_NOW: &str = "SYNC_NOW";
pub const SYNCING: &str = "SYNCING";
pub const SUCCESS: &str = "SUCCESS";
pub const FAIL: &str = "FAIL";
pub const CANCEL: &str = "CANCEL";

/// One repository's mirror configuration; the credentials are sealed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MirrorRow {
    pub repository_id: i64,
    pub is_enabled: bool,
    pub external_reference: String,
    pub username_sealed: Option<String>,
    pub password_sealed: Option<String>,
    pub verify_tls: bool,
    pub unsigned_images: bool,
    pub proxy_json: Option<String>,
    pub sync_interval_s: i64,
    pub sync_start_ms: i64,
    pub sync_expiration_ms: Option<i64>,
    pub sync_retries_remaining: i64,
    pub sync_status: String,
    pub sync_message: Option<String>,
    pub claimed_by: Option<String>,
    pub robot_account_id: Option<i64>,
    /// JSON array of tag globs.
    pub rule_value: String,
    pub skopeo_timeout_s: i64,
    pub architecture_filter: String,
    pub created_ms: i64,
}

const COLS: &str = "repository_id, is_enabled, external_reference, username_sealed, password_sealed, \
     verify_tls, unsigned_images, proxy_json, sync_interval_s, sync_start_ms, sync_expiration_ms, \
     sync_retries_remaining, sync_status, sync_message, claimed_by, robot_account_id, rule_value, \
     skopeo_timeout_s, architecture_filter, created_ms";

fn from_row(row: &AnyRow) -> Result<MirrorRow, sqlx::Error> {
    Ok(MirrorRow {
        repository_id: row.try_get("repository_id")?,
        is_enabled: get_bool(row, "is_enabled")?,
        external_reference: row.try_get("external_reference")?,
        username_sealed: row.try_get("username_sealed")?,
        password_sealed: row.try_get("password_sealed")?,
        verify_tls: get_bool(row, "verify_tls")?,
        unsigned_images: get_bool(row, "unsigned_images")?,
        proxy_json: row.try_get("proxy_json")?,
        sync_interval_s: row.try_get("sync_interval_s")?,
        sync_start_ms: row.try_get("sync_start_ms")?,
        sync_expiration_ms: row.try_get("sync_expiration_ms")?,
        sync_retries_remaining: row.try_get("sync_retries_remaining")?,
        sync_status: row.try_get("sync_status")?,
        sync_message: row.try_get("sync_message")?,
        claimed_by: row.try_get("claimed_by")?,
        robot_account_id: row.try_get("robot_account_id")?,
        rule_value: row.try_get("rule_value")?,
        skopeo_timeout_s: row.try_get("skopeo_timeout_s")?,
        architecture_filter: row.try_get("architecture_filter")?,
        created_ms: row.try_get("created_ms")?,
    })
}

pub async fn get<'c>(ex: impl Exec<'c>, repository_id: i64) -> DbResult<Option<MirrorRow>> {
    let row = sqlx::query(&format!(
        "SELECT {COLS} FROM repo_mirror WHERE repository_id = $1"
    ))
    .bind(repository_id)
    .fetch_optional(ex)
    .await?;
    Ok(row.map(|r| from_row(&r)).transpose()?)
}

/// The robot account a repository's mirror pushes as, if it has a mirror with a robot.
pub async fn robot_of<'c>(ex: impl Exec<'c>, repository_id: i64) -> DbResult<Option<i64>> {
    let row = sqlx::query("SELECT robot_account_id FROM repo_mirror WHERE repository_id = $1")
        .bind(repository_id)
        .fetch_optional(ex)
        .await?;
    Ok(row
        .map(|r| r.try_get::<Option<i64>, _>("robot_account_id"))
        .transpose()?
        .flatten())
}

/// Inserts a configuration; a unique violation means the repository already has one.
pub async fn insert<'c>(ex: impl Exec<'c>, m: &MirrorRow) -> DbResult<()> {
    sqlx::query(&format!(
        "INSERT INTO repo_mirror ({COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, \
         $12, $13, $14, $15, $16, $17, $18, $19, $20)"
    ))
    .bind(m.repository_id)
    .bind(m.is_enabled)
    .bind(&m.external_reference)
    .bind(&m.username_sealed)
    .bind(&m.password_sealed)
    .bind(m.verify_tls)
    .bind(m.unsigned_images)
    .bind(&m.proxy_json)
    .bind(m.sync_interval_s)
    .bind(m.sync_start_ms)
    .bind(m.sync_expiration_ms)
    .bind(m.sync_retries_remaining)
    .bind(&m.sync_status)
    .bind(&m.sync_message)
    .bind(&m.claimed_by)
    .bind(m.robot_account_id)
    .bind(&m.rule_value)
    .bind(m.skopeo_timeout_s)
    .bind(&m.architecture_filter)
    .bind(m.created_ms)
    .execute(ex)
    .await?;
    Ok(())
}

/// Writes the configuration fields an update may change (not the sync state).
pub async fn update_config<'c>(ex: impl Exec<'c>, m: &MirrorRow) -> DbResult<()> {
    sqlx::query(
        "UPDATE repo_mirror SET is_enabled = $2, external_reference = $3, username_sealed = $4, \
         password_sealed = $5, verify_tls = $6, unsigned_images = $7, proxy_json = $8, \
         sync_interval_s = $9, sync_start_ms = $10, robot_account_id = $11, rule_value = $12, \
         skopeo_timeout_s = $13, architecture_filter = $14 WHERE repository_id = $1",
    )
    .bind(m.repository_id)
    .bind(m.is_enabled)
    .bind(&m.external_reference)
    .bind(&m.username_sealed)
    .bind(&m.password_sealed)
    .bind(m.verify_tls)
    .bind(m.unsigned_images)
    .bind(&m.proxy_json)
    .bind(m.sync_interval_s)
    .bind(m.sync_start_ms)
    .bind(m.robot_account_id)
    .bind(&m.rule_value)
    .bind(m.skopeo_timeout_s)
    .bind(&m.architecture_filter)
    .execute(ex)
    .await?;
    Ok(())
}

/// `sync-now`: due at once, retries restored. A sync in progress is left alone (`false`).
pub async fn request_sync_now<'c>(
    ex: impl Exec<'c>,
    repository_id: i64,
    retries: i64,
) -> DbResult<bool> {
    let done = sqlx::query(
        "UPDATE repo_mirror SET sync_status = $2, sync_retries_remaining = $3, \
         sync_expiration_ms = NULL, claimed_by = NULL WHERE repository_id = $1 AND sync_status <> $4",
    )
    .bind(repository_id)
    .bind(SYNC_NOW)
    .bind(retries)
    .bind(SYNCING)
    .execute(ex)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// `sync-cancel`: a sync in progress stops at its next step (its claim is gone), a requested
/// one is dropped; the mirror waits for its next scheduled time (pushed an interval past
/// `now_ms` when it had passed). `false` when no sync ran or was requested.
pub async fn cancel<'c>(ex: impl Exec<'c>, repository_id: i64, now_ms: i64) -> DbResult<bool> {
    let done = sqlx::query(
        "UPDATE repo_mirror SET sync_status = $2, sync_expiration_ms = NULL, claimed_by = NULL, \
         sync_start_ms = CASE WHEN sync_start_ms <= $3 THEN $3 + sync_interval_s * 1000 \
         ELSE sync_start_ms END \
         WHERE repository_id = $1 AND sync_status IN ($4, $5)",
    )
    .bind(repository_id)
    .bind(CANCEL)
    .bind(now_ms)
    .bind(SYNCING)
    .bind(SYNC_NOW)
    .execute(ex)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// Gives back a claim without syncing (a mirror failing again within one worker pass waits
/// for the next pass): its status is `FAIL` again.
pub async fn release<'c>(ex: impl Exec<'c>, repository_id: i64, holder: &str) -> DbResult<()> {
    sqlx::query(
        "UPDATE repo_mirror SET sync_status = $3, sync_expiration_ms = NULL, claimed_by = NULL \
         WHERE repository_id = $1 AND claimed_by = $2 AND sync_status = 'SYNCING'",
    )
    .bind(repository_id)
    .bind(holder)
    .bind(FAIL)
    .execute(ex)
    .await?;
    Ok(())
}

/// Claims one due mirror for `holder` until `lease_until`: enabled, in a repository in the
/// `MIRROR` state, and scheduled (`sync_start_ms` passed or `SYNC_NOW`) but not being synced,
/// or being synced under a lease that ran out. Returns the claimed row.
pub async fn claim_due(
    tx: &mut Tx,
    holder: &str,
    now_ms: i64,
    lease_until: i64,
) -> DbResult<Option<MirrorRow>> {
    let due = "m.is_enabled = $2 AND r.state = 'MIRROR' AND \
         ((m.sync_status <> 'SYNCING' AND ((m.sync_start_ms <= $1 \
           AND (m.retry_after_ms IS NULL OR m.retry_after_ms <= $1)) OR m.sync_status = 'SYNC_NOW')) \
          OR (m.sync_status = 'SYNCING' AND (m.sync_expiration_ms IS NULL OR m.sync_expiration_ms < $1)))";
    let lock = match tx.backend() {
        Backend::Postgres => "FOR UPDATE OF m SKIP LOCKED",
        Backend::Sqlite => "",
    };
    let picked = sqlx::query(&format!(
        "SELECT m.repository_id FROM repo_mirror m JOIN repository r ON r.id = m.repository_id \
         WHERE {due} ORDER BY m.sync_start_ms, m.repository_id LIMIT 1 {lock}"
    ))
    .bind(now_ms)
    .bind(true)
    .fetch_optional(&mut **tx)
    .await?;
    let Some(picked) = picked else {
        return Ok(None);
    };
    let id: i64 = picked.try_get("repository_id")?;
    let row = sqlx::query(&format!(
        "UPDATE repo_mirror SET sync_status = 'SYNCING', claimed_by = $2, sync_expiration_ms = $3 \
         WHERE repository_id = $1 RETURNING {COLS}"
    ))
    .bind(id)
    .bind(holder)
    .bind(lease_until)
    .fetch_one(&mut **tx)
    .await?;
    Ok(Some(from_row(&row)?))
}

/// Extends a claim's lease; `false` when the claim is no longer the holder's (cancelled, or
/// taken over after the lease ran out).
pub async fn renew<'c>(
    ex: impl Exec<'c>,
    repository_id: i64,
    holder: &str,
    lease_until: i64,
) -> DbResult<bool> {
    let done = sqlx::query(
        "UPDATE repo_mirror SET sync_expiration_ms = $3 WHERE repository_id = $1 \
         AND claimed_by = $2 AND sync_status = 'SYNCING'",
    )
    .bind(repository_id)
    .bind(holder)
    .bind(lease_until)
    .execute(ex)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// How a claimed sync ended.
#[derive(Clone, Debug)]
pub struct Outcome<'a> {
    pub status: &'a str,
    pub message: Option<&'a str>,
    pub next_start_ms: i64,
    pub retries_remaining: i64,
    /// After a failure with retries left: the earliest next try.
    pub retry_after_ms: Option<i64>,
}

/// Records a claimed sync's end, if the claim is still the holder's; returns whether it was.
pub async fn finish<'c>(
    ex: impl Exec<'c>,
    repository_id: i64,
    holder: &str,
    outcome: &Outcome<'_>,
) -> DbResult<bool> {
    let done = sqlx::query(
        "UPDATE repo_mirror SET sync_status = $3, sync_message = $4, sync_start_ms = $5, \
         sync_retries_remaining = $6, retry_after_ms = $7, sync_expiration_ms = NULL, claimed_by = NULL \
         WHERE repository_id = $1 AND claimed_by = $2 AND sync_status = 'SYNCING'",
    )
    .bind(repository_id)
    .bind(holder)
    .bind(outcome.status)
    .bind(outcome.message)
    .bind(outcome.next_start_ms)
    .bind(outcome.retries_remaining)
    .bind(outcome.retry_after_ms)
    .execute(ex)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// Records the message of a sync that was cancelled while it ran (the status stays `CANCEL`).
pub async fn note<'c>(ex: impl Exec<'c>, repository_id: i64, message: &str) -> DbResult<()> {
    sqlx::query("UPDATE repo_mirror SET sync_message = $2 WHERE repository_id = $1")
        .bind(repository_id)
        .bind(message)
        .execute(ex)
        .await?;
    Ok(())
}

/// One enabled mirror of a repository in the MIRROR state, as the health view lists it.
#[derive(Clone, Debug)]
pub struct HealthRow {
    pub namespace: String,
    pub repository: String,
    pub sync_status: String,
    pub is_enabled: bool,
    pub sync_retries_remaining: i64,
}

/// Enabled mirrors of repositories in the MIRROR state (of `namespace` when given), by
/// namespace id and repository name; `status` keeps those with that `sync_status`, and
/// `exhausted` those without retries left.
pub async fn health_rows<'c>(
    ex: impl Exec<'c>,
    namespace: Option<&str>,
    status: Option<&str>,
    exhausted: bool,
    limit: i64,
    offset: i64,
) -> DbResult<Vec<HealthRow>> {
    let rows = sqlx::query(
        "SELECT n.name AS namespace, r.name AS repository, m.sync_status, m.is_enabled, \
         m.sync_retries_remaining FROM repo_mirror m JOIN repository r ON r.id = m.repository_id \
         JOIN namespace n ON n.id = r.namespace_id \
         WHERE r.state = 'MIRROR' AND m.is_enabled = TRUE AND ($1 = '' OR n.name = $1) \
         AND ($2 = '' OR m.sync_status = $2) AND ($3 = 0 OR m.sync_retries_remaining = 0) \
         ORDER BY r.namespace_id, r.name LIMIT $4 OFFSET $5",
    )
    .bind(namespace.unwrap_or_default())
    .bind(status.unwrap_or_default())
    .bind(i64::from(exhausted))
    .bind(limit)
    .bind(offset)
    .fetch_all(ex)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(HealthRow {
                namespace: r.try_get("namespace")?,
                repository: r.try_get("repository")?,
                sync_status: r.try_get("sync_status")?,
                is_enabled: get_bool(r, "is_enabled")?,
                sync_retries_remaining: r.try_get("sync_retries_remaining")?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(Into::into)
}

/// Counts of those mirrors by `sync_status`.
pub async fn health_counts<'c>(
    ex: impl Exec<'c>,
    namespace: Option<&str>,
) -> DbResult<Vec<(String, i64)>> {
    let rows = sqlx::query(
        "SELECT m.sync_status, COUNT(*) AS n FROM repo_mirror m \
         JOIN repository r ON r.id = m.repository_id JOIN namespace n ON n.id = r.namespace_id \
         WHERE r.state = 'MIRROR' AND m.is_enabled = TRUE AND ($1 = '' OR n.name = $1) \
         GROUP BY m.sync_status",
    )
    .bind(namespace.unwrap_or_default())
    .fetch_all(ex)
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("sync_status")?, r.try_get("n")?)))
        .collect::<Result<_, sqlx::Error>>()
        .map_err(Into::into)
}
