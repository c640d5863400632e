//! Repository builds (`repository_build`), their log entries (`build_log`) and the uploaded
//! build contexts (`build_file`).
//!
//! The queue is the `repository_build` table itself. A claim is one statement: a `waiting`
//! build is set to `build-scheduled` with the claimer, a new token hash and a registration
//! deadline, on PostgreSQL after `FOR UPDATE SKIP LOCKED` picked it (replicas skip each other's
//! rows), on SQLite under its single writer. Everything a builder reports is written only while
//! its token is still the build's (`token_hash`) and the build is still running, so a builder of
//! a restarted or cancelled attempt cannot change the build.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::db::{Backend, DbResult, Exec, Tx, get_bool};

/// Quay's build phases.
pub const WAITING: &str = "waiting";
pub const SCHEDULED: &str = "build-scheduled";
pub const UNPACKING: &str = "unpacking";
pub const PULLING: &str = "pulling";
pub const BUILDING: &str = "building";
pub const PUSHING: &str = "pushing";
pub const COMPLETE: &str = "complete";
pub const ERROR: &str = "error";
pub const INTERNAL_ERROR: &str = "internalerror";
pub const CANCELLED: &str = "cancelled";

/// Phases a builder may report while it runs.
pub const RUNNING: &[&str] = &[SCHEDULED, UNPACKING, PULLING, BUILDING, PUSHING];

/// A build waiting for a builder: new (`waiting`), or restarted after its builder was lost
/// (`internalerror` with no completion time, Quay's phase while the retry is queued).
const QUEUED_SQL: &str =
    "(phase = 'waiting' OR (phase = 'internalerror' AND completed_ms IS NULL))";

/// SQL list of the running phases, for `IN (...)`.
const RUNNING_SQL: &str = "('build-scheduled', 'unpacking', 'pulling', 'building', 'pushing')";

/// One build.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuildRow {
    pub id: i64,
    pub uuid: String,
    pub repository_id: i64,
    pub phase: String,
    pub started_ms: i64,
    pub display_name: String,
    pub job_config: String,
    pub resource_key: Option<String>,
    pub pull_robot_id: Option<i64>,
    pub requester_id: Option<i64>,
    pub error: Option<String>,
    pub status_json: String,
    pub retries_remaining: i64,
    pub claimed_by: Option<String>,
    pub token_hash: Option<String>,
    pub registered: bool,
    pub deadline_ms: Option<i64>,
    pub executor_index: Option<i64>,
    pub executor_ref: Option<String>,
    pub cleaned: bool,
    pub completed_ms: Option<i64>,
    /// The trigger that started it (`build_trigger`), if any.
    pub trigger_id: Option<i64>,
}

const COLS: &str = "id, uuid, repository_id, phase, started_ms, display_name, job_config, \
     resource_key, pull_robot_id, requester_id, error, status_json, retries_remaining, claimed_by, \
     token_hash, registered, deadline_ms, executor_index, executor_ref, cleaned, completed_ms, trigger_id";

fn from_row(row: &AnyRow) -> Result<BuildRow, sqlx::Error> {
    Ok(BuildRow {
        id: row.try_get("id")?,
        uuid: row.try_get("uuid")?,
        repository_id: row.try_get("repository_id")?,
        phase: row.try_get("phase")?,
        started_ms: row.try_get("started_ms")?,
        display_name: row.try_get("display_name")?,
        job_config: row.try_get("job_config")?,
        resource_key: row.try_get("resource_key")?,
        pull_robot_id: row.try_get("pull_robot_id")?,
        requester_id: row.try_get("requester_id")?,
        error: row.try_get("error")?,
        status_json: row.try_get("status_json")?,
        retries_remaining: row.try_get("retries_remaining")?,
        claimed_by: row.try_get("claimed_by")?,
        token_hash: row.try_get("token_hash")?,
        registered: get_bool(row, "registered")?,
        deadline_ms: row.try_get("deadline_ms")?,
        executor_index: row.try_get("executor_index")?,
        executor_ref: row.try_get("executor_ref")?,
        cleaned: get_bool(row, "cleaned")?,
        completed_ms: row.try_get("completed_ms")?,
        trigger_id: row.try_get("trigger_id")?,
    })
}

/// A new build, `waiting`.
pub struct NewBuild<'a> {
    pub uuid: &'a str,
    pub repository_id: i64,
    pub started_ms: i64,
    pub display_name: &'a str,
    pub job_config: &'a str,
    pub resource_key: Option<&'a str>,
    pub pull_robot_id: Option<i64>,
    pub requester_id: Option<i64>,
    pub retries: i64,
    pub trigger_id: Option<i64>,
}

pub async fn insert<'c>(ex: impl Exec<'c>, b: &NewBuild<'_>) -> DbResult<BuildRow> {
    let row = sqlx::query(&format!(
        "INSERT INTO repository_build (uuid, repository_id, phase, started_ms, display_name, \
         job_config, resource_key, pull_robot_id, requester_id, retries_remaining, trigger_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING {COLS}"
    ))
    .bind(b.uuid)
    .bind(b.repository_id)
    .bind(WAITING)
    .bind(b.started_ms)
    .bind(b.display_name)
    .bind(b.job_config)
    .bind(b.resource_key)
    .bind(b.pull_robot_id)
    .bind(b.requester_id)
    .bind(b.retries)
    .bind(b.trigger_id)
    .fetch_one(ex)
    .await?;
    Ok(from_row(&row)?)
}

pub async fn by_uuid<'c>(ex: impl Exec<'c>, uuid: &str) -> DbResult<Option<BuildRow>> {
    let row = sqlx::query(&format!(
        "SELECT {COLS} FROM repository_build WHERE uuid = $1"
    ))
    .bind(uuid)
    .fetch_optional(ex)
    .await?;
    Ok(row.map(|r| from_row(&r)).transpose()?)
}

pub async fn by_id<'c>(ex: impl Exec<'c>, id: i64) -> DbResult<Option<BuildRow>> {
    let row = sqlx::query(&format!(
        "SELECT {COLS} FROM repository_build WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(ex)
    .await?;
    Ok(row.map(|r| from_row(&r)).transpose()?)
}

/// The build a builder's token belongs to (any phase: the caller decides what it may do).
pub async fn by_token<'c>(ex: impl Exec<'c>, token_hash: &str) -> DbResult<Option<BuildRow>> {
    let row = sqlx::query(&format!(
        "SELECT {COLS} FROM repository_build WHERE token_hash = $1"
    ))
    .bind(token_hash)
    .fetch_optional(ex)
    .await?;
    Ok(row.map(|r| from_row(&r)).transpose()?)
}

/// A repository's builds, newest first; `since_ms` keeps those started at or after it.
pub async fn list<'c>(
    ex: impl Exec<'c>,
    repository_id: i64,
    limit: i64,
    since_ms: Option<i64>,
) -> DbResult<Vec<BuildRow>> {
    let rows = sqlx::query(&format!(
        "SELECT {COLS} FROM repository_build WHERE repository_id = $1 AND started_ms >= $2 \
         ORDER BY started_ms DESC, id DESC LIMIT $3"
    ))
    .bind(repository_id)
    .bind(since_ms.unwrap_or(i64::MIN))
    .bind(limit)
    .fetch_all(ex)
    .await?;
    Ok(rows.iter().map(from_row).collect::<Result<_, _>>()?)
}

/// The builds a trigger started, newest first.
pub async fn list_by_trigger<'c>(
    ex: impl Exec<'c>,
    trigger_id: i64,
    limit: i64,
) -> DbResult<Vec<BuildRow>> {
    let rows = sqlx::query(&format!(
        "SELECT {COLS} FROM repository_build WHERE trigger_id = $1 \
         ORDER BY started_ms DESC, id DESC LIMIT $2"
    ))
    .bind(trigger_id)
    .bind(limit)
    .fetch_all(ex)
    .await?;
    Ok(rows.iter().map(from_row).collect::<Result<_, _>>()?)
}

/// Builds of a repository not finished yet (Quay's "queued builds" rate limit).
pub async fn count_unfinished<'c>(ex: impl Exec<'c>, repository_id: i64) -> DbResult<i64> {
    let row = sqlx::query(&format!(
        "SELECT COUNT(*) AS n FROM repository_build WHERE repository_id = $1 \
         AND ({QUEUED_SQL} OR phase IN {RUNNING_SQL})"
    ))
    .bind(repository_id)
    .fetch_one(ex)
    .await?;
    Ok(row.try_get("n")?)
}

/// Cancels a build that has not finished; returns the row as it was before, or `None` when it
/// had finished already.
pub async fn cancel<'c>(ex: impl Exec<'c>, id: i64, now_ms: i64) -> DbResult<Option<BuildRow>> {
    // The returned row is the updated one; its phase is `cancelled` either way, so the caller
    // reads the previous phase from its own read.
    let row = sqlx::query(&format!(
        "UPDATE repository_build SET phase = $2, completed_ms = $3, token_hash = NULL, \
         deadline_ms = NULL WHERE id = $1 AND ({QUEUED_SQL} OR phase IN {RUNNING_SQL}) \
         RETURNING {COLS}"
    ))
    .bind(id)
    .bind(CANCELLED)
    .bind(now_ms)
    .fetch_optional(ex)
    .await?;
    Ok(row.map(|r| from_row(&r)).transpose()?)
}

/// Running builds claimed by `holder` (its share of `ALLOWED_WORKER_COUNT`).
pub async fn count_claimed<'c>(ex: impl Exec<'c>, holder: &str) -> DbResult<i64> {
    let row = sqlx::query(&format!(
        "SELECT COUNT(*) AS n FROM repository_build WHERE claimed_by = $1 AND phase IN {RUNNING_SQL}"
    ))
    .bind(holder)
    .fetch_one(ex)
    .await?;
    Ok(row.try_get("n")?)
}

/// Claims the oldest waiting build for `holder`: `build-scheduled`, the new token's hash, and
/// the registration deadline.
pub async fn claim_waiting(
    tx: &mut Tx,
    holder: &str,
    token_hash: &str,
    deadline_ms: i64,
) -> DbResult<Option<BuildRow>> {
    let lock = match tx.backend() {
        Backend::Postgres => "FOR UPDATE SKIP LOCKED",
        Backend::Sqlite => "",
    };
    let picked = sqlx::query(&format!(
        "SELECT id FROM repository_build WHERE {QUEUED_SQL} ORDER BY started_ms, id LIMIT 1 {lock}"
    ))
    .fetch_optional(&mut **tx)
    .await?;
    let Some(picked) = picked else {
        return Ok(None);
    };
    let id: i64 = picked.try_get("id")?;
    let row = sqlx::query(&format!(
        "UPDATE repository_build SET phase = $2, claimed_by = $3, token_hash = $4, \
         registered = $5, deadline_ms = $6, executor_index = NULL, executor_ref = NULL, \
         cleaned = $5, status_json = '{{}}' WHERE id = $1 AND {QUEUED_SQL} RETURNING {COLS}"
    ))
    .bind(id)
    .bind(SCHEDULED)
    .bind(holder)
    .bind(token_hash)
    .bind(false)
    .bind(deadline_ms)
    .fetch_optional(&mut **tx)
    .await?;
    Ok(row.map(|r| from_row(&r)).transpose()?)
}

/// Records which executor runs the claimed attempt, what it made, and the registration
/// deadline (`SETUP_TIME` from now).
pub async fn set_executor<'c>(
    ex: impl Exec<'c>,
    id: i64,
    token_hash: &str,
    index: i64,
    reference: &str,
    deadline_ms: i64,
) -> DbResult<bool> {
    let done = sqlx::query(
        "UPDATE repository_build SET executor_index = $3, executor_ref = $4, deadline_ms = $5 \
         WHERE id = $1 AND token_hash = $2",
    )
    .bind(id)
    .bind(token_hash)
    .bind(index)
    .bind(reference)
    .bind(deadline_ms)
    .execute(ex)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// A builder's registration: once per attempt, while `build-scheduled`.
pub async fn register<'c>(
    ex: impl Exec<'c>,
    id: i64,
    token_hash: &str,
    deadline_ms: i64,
) -> DbResult<bool> {
    let done = sqlx::query(
        "UPDATE repository_build SET registered = $3, deadline_ms = $4 \
         WHERE id = $1 AND token_hash = $2 AND phase = 'build-scheduled' AND registered = $5",
    )
    .bind(id)
    .bind(token_hash)
    .bind(true)
    .bind(deadline_ms)
    .bind(false)
    .execute(ex)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// A heartbeat, a phase change or a status update from the builder holding `token_hash`;
/// `false` when that builder's attempt is over (cancelled, restarted, finished).
pub async fn report<'c>(
    ex: impl Exec<'c>,
    id: i64,
    token_hash: &str,
    phase: Option<&str>,
    status_json: Option<&str>,
    deadline_ms: i64,
) -> DbResult<bool> {
    let done = sqlx::query(&format!(
        "UPDATE repository_build SET phase = COALESCE($3, phase), \
         status_json = COALESCE($4, status_json), deadline_ms = $5 \
         WHERE id = $1 AND token_hash = $2 AND registered = $6 AND phase IN {RUNNING_SQL}"
    ))
    .bind(id)
    .bind(token_hash)
    .bind(phase)
    .bind(status_json)
    .bind(deadline_ms)
    .bind(true)
    .execute(ex)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// The end of an attempt reported by its builder (`complete` or `error`).
pub async fn finish<'c>(
    ex: impl Exec<'c>,
    id: i64,
    token_hash: &str,
    phase: &str,
    error: Option<&str>,
    now_ms: i64,
) -> DbResult<bool> {
    let done = sqlx::query(&format!(
        "UPDATE repository_build SET phase = $3, error = $4, completed_ms = $5, \
         token_hash = NULL, deadline_ms = NULL WHERE id = $1 AND token_hash = $2 \
         AND phase IN {RUNNING_SQL}"
    ))
    .bind(id)
    .bind(token_hash)
    .bind(phase)
    .bind(error)
    .bind(now_ms)
    .execute(ex)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// Running attempts whose deadline passed (a builder that never registered within
/// `SETUP_TIME`, or stopped sending heartbeats).
pub async fn overdue<'c>(ex: impl Exec<'c>, now_ms: i64) -> DbResult<Vec<BuildRow>> {
    let rows = sqlx::query(&format!(
        "SELECT {COLS} FROM repository_build WHERE phase IN {RUNNING_SQL} AND deadline_ms < $1 \
         ORDER BY id"
    ))
    .bind(now_ms)
    .fetch_all(ex)
    .await?;
    Ok(rows.iter().map(from_row).collect::<Result<_, _>>()?)
}

/// Ends an attempt that the manager gave up on: queued again with one retry fewer when
/// `restart`, else `internalerror` with `error`. Only while the attempt is the one read
/// (`token_hash`).
pub async fn abandon<'c>(
    ex: impl Exec<'c>,
    id: i64,
    token_hash: &str,
    restart: bool,
    error: &str,
    now_ms: i64,
) -> DbResult<bool> {
    let done = if restart {
        sqlx::query(&format!(
            "UPDATE repository_build SET phase = 'internalerror', retries_remaining = retries_remaining - 1, \
             claimed_by = NULL, token_hash = NULL, registered = $3, deadline_ms = NULL \
             WHERE id = $1 AND token_hash = $2 AND phase IN {RUNNING_SQL}"
        ))
        .bind(id)
        .bind(token_hash)
        .bind(false)
        .execute(ex)
        .await?
    } else {
        sqlx::query(&format!(
            "UPDATE repository_build SET phase = 'internalerror', retries_remaining = 0, error = $3, \
             completed_ms = $4, token_hash = NULL, deadline_ms = NULL \
             WHERE id = $1 AND token_hash = $2 AND phase IN {RUNNING_SQL}"
        ))
        .bind(id)
        .bind(token_hash)
        .bind(error)
        .bind(now_ms)
        .execute(ex)
        .await?
    };
    Ok(done.rows_affected() > 0)
}

/// Attempts whose executor resources are still there: every build that is not running under
/// its current executor (finished, cancelled or restarted) and not cleaned yet.
pub async fn uncleaned<'c>(ex: impl Exec<'c>) -> DbResult<Vec<BuildRow>> {
    let rows = sqlx::query(&format!(
        "SELECT {COLS} FROM repository_build WHERE cleaned = $1 AND executor_ref IS NOT NULL \
         AND (token_hash IS NULL OR phase NOT IN {RUNNING_SQL}) ORDER BY id"
    ))
    .bind(false)
    .fetch_all(ex)
    .await?;
    Ok(rows.iter().map(from_row).collect::<Result<_, _>>()?)
}

/// Marks an executor resource as removed (`reference` guards against a newer attempt's).
pub async fn mark_cleaned<'c>(ex: impl Exec<'c>, id: i64, reference: &str) -> DbResult<()> {
    sqlx::query("UPDATE repository_build SET cleaned = $3 WHERE id = $1 AND executor_ref = $2")
        .bind(id)
        .bind(reference)
        .bind(true)
        .execute(ex)
        .await?;
    Ok(())
}

/// Marks a claimed attempt as having executor resources to clean once it ends.
pub async fn mark_uncleaned<'c>(ex: impl Exec<'c>, id: i64) -> DbResult<()> {
    sqlx::query("UPDATE repository_build SET cleaned = $2 WHERE id = $1")
        .bind(id)
        .bind(false)
        .execute(ex)
        .await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Log entries

/// Appends entries (JSON texts) after the build's last one.
pub async fn append_logs(tx: &mut Tx, build_id: i64, entries: &[String]) -> DbResult<()> {
    let row =
        sqlx::query("SELECT COALESCE(MAX(seq), -1) AS last FROM build_log WHERE build_id = $1")
            .bind(build_id)
            .fetch_one(&mut **tx)
            .await?;
    let first: i64 = row.try_get::<i64, _>("last")? + 1;
    for (seq, entry) in (first..).zip(entries) {
        sqlx::query("INSERT INTO build_log (build_id, seq, entry) VALUES ($1, $2, $3)")
            .bind(build_id)
            .bind(seq)
            .bind(entry)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// Entries from `start` on (at most `limit`), and how many the build has in all.
pub async fn logs<'c, E: Exec<'c> + Copy>(
    ex: E,
    build_id: i64,
    start: i64,
    limit: i64,
) -> DbResult<(i64, Vec<String>)> {
    let total: i64 = sqlx::query("SELECT COUNT(*) AS n FROM build_log WHERE build_id = $1")
        .bind(build_id)
        .fetch_one(ex)
        .await?
        .try_get("n")?;
    let rows = sqlx::query(
        "SELECT entry FROM build_log WHERE build_id = $1 AND seq >= $2 ORDER BY seq LIMIT $3",
    )
    .bind(build_id)
    .bind(start)
    .bind(limit)
    .fetch_all(ex)
    .await?;
    let entries = rows
        .iter()
        .map(|r| r.try_get::<String, _>("entry"))
        .collect::<Result<_, _>>()?;
    Ok((total, entries))
}

// ---------------------------------------------------------------------------------------------
// Uploaded build contexts

/// One prepared or uploaded file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileRow {
    pub id: String,
    pub mime_type: String,
    pub owner_id: Option<i64>,
    pub size: Option<i64>,
    pub checksum: Option<String>,
    pub created_ms: i64,
}

pub async fn insert_file<'c>(
    ex: impl Exec<'c>,
    id: &str,
    mime_type: &str,
    owner_id: Option<i64>,
    now_ms: i64,
) -> DbResult<()> {
    sqlx::query(
        "INSERT INTO build_file (id, mime_type, owner_id, created_ms) VALUES ($1, $2, $3, $4)",
    )
    .bind(id)
    .bind(mime_type)
    .bind(owner_id)
    .bind(now_ms)
    .execute(ex)
    .await?;
    Ok(())
}

pub async fn file<'c>(ex: impl Exec<'c>, id: &str) -> DbResult<Option<FileRow>> {
    let row = sqlx::query(
        "SELECT id, mime_type, owner_id, size, checksum, created_ms FROM build_file WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(ex)
    .await?;
    row.map(|r| {
        Ok(FileRow {
            id: r.try_get("id")?,
            mime_type: r.try_get("mime_type")?,
            owner_id: r.try_get("owner_id")?,
            size: r.try_get("size")?,
            checksum: r.try_get("checksum")?,
            created_ms: r.try_get("created_ms")?,
        })
    })
    .transpose()
    .map_err(|e: sqlx::Error| e.into())
}

/// Records the upload of a prepared file; `false` when it was uploaded already.
pub async fn file_uploaded<'c>(
    ex: impl Exec<'c>,
    id: &str,
    size: i64,
    checksum: &str,
) -> DbResult<bool> {
    let done = sqlx::query(
        "UPDATE build_file SET size = $2, checksum = $3 WHERE id = $1 AND size IS NULL",
    )
    .bind(id)
    .bind(size)
    .bind(checksum)
    .execute(ex)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// Whether a build already used this file (Quay lets only writers of that build's repository
/// reuse it); returns that repository.
pub async fn repository_of_file<'c>(ex: impl Exec<'c>, file_id: &str) -> DbResult<Option<i64>> {
    let row = sqlx::query(
        "SELECT repository_id FROM repository_build WHERE resource_key = $1 ORDER BY id LIMIT 1",
    )
    .bind(file_id)
    .fetch_optional(ex)
    .await?;
    Ok(row.map(|r| r.try_get("repository_id")).transpose()?)
}
