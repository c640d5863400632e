//! Queries of repository notifications: the notifications themselves, their delivery queue
//! (claimed once across replicas), the image-expiry bookkeeping, users' in-app notifications and
//! the e-mail addresses authorized per repository.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::db::{Backend, DbResult, Exec, Tx, get_bool};

/// Failed deliveries after which a notification is not delivered until reset (Quay's limit).
pub const FAILURE_LIMIT: i64 = 3;

#[derive(Clone, Debug)]
pub struct NotificationRow {
    pub id: i64,
    pub uuid: String,
    pub repository_id: i64,
    pub event: String,
    pub method: String,
    pub title: Option<String>,
    /// JSON text.
    pub config: String,
    /// JSON text.
    pub event_config: String,
    pub number_of_failures: i64,
}

const SELECT: &str = "SELECT id, uuid, repository_id, event, method, title, config, event_config, \
     number_of_failures FROM repo_notification";

fn from_row(r: &AnyRow) -> Result<NotificationRow, sqlx::Error> {
    Ok(NotificationRow {
        id: r.try_get("id")?,
        uuid: r.try_get("uuid")?,
        repository_id: r.try_get("repository_id")?,
        event: r.try_get("event")?,
        method: r.try_get("method")?,
        title: r.try_get("title")?,
        config: r.try_get("config")?,
        event_config: r.try_get("event_config")?,
        number_of_failures: r.try_get("number_of_failures")?,
    })
}

pub struct NewNotification<'a> {
    pub uuid: &'a str,
    pub repository_id: i64,
    pub event: &'a str,
    pub method: &'a str,
    pub title: Option<&'a str>,
    pub config: &'a str,
    pub event_config: &'a str,
}

pub async fn insert<'c>(ex: impl Exec<'c>, n: &NewNotification<'_>, now_ms: i64) -> DbResult<()> {
    sqlx::query(
        "INSERT INTO repo_notification (uuid, repository_id, event, method, title, config, \
         event_config, number_of_failures, created_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, 0, $8)",
    )
    .bind(n.uuid)
    .bind(n.repository_id)
    .bind(n.event)
    .bind(n.method)
    .bind(n.title)
    .bind(n.config)
    .bind(n.event_config)
    .bind(now_ms)
    .execute(ex)
    .await?;
    Ok(())
}

/// The notifications of a repository, oldest first.
pub async fn list<'c>(ex: impl Exec<'c>, repository_id: i64) -> DbResult<Vec<NotificationRow>> {
    let rows = sqlx::query(&format!("{SELECT} WHERE repository_id = $1 ORDER BY id"))
        .bind(repository_id)
        .fetch_all(ex)
        .await?;
    rows.iter().map(|r| Ok(from_row(r)?)).collect()
}

pub async fn get<'c>(
    ex: impl Exec<'c>,
    repository_id: i64,
    uuid: &str,
) -> DbResult<Option<NotificationRow>> {
    let row = sqlx::query(&format!("{SELECT} WHERE repository_id = $1 AND uuid = $2"))
        .bind(repository_id)
        .bind(uuid)
        .fetch_optional(ex)
        .await?;
    Ok(row.as_ref().map(from_row).transpose()?)
}

pub async fn by_id<'c>(ex: impl Exec<'c>, id: i64) -> DbResult<Option<NotificationRow>> {
    let row = sqlx::query(&format!("{SELECT} WHERE id = $1"))
        .bind(id)
        .fetch_optional(ex)
        .await?;
    Ok(row.as_ref().map(from_row).transpose()?)
}

/// Deletes a notification (with its queued deliveries); whether it existed.
pub async fn delete<'c>(ex: impl Exec<'c>, repository_id: i64, uuid: &str) -> DbResult<bool> {
    let done = sqlx::query("DELETE FROM repo_notification WHERE repository_id = $1 AND uuid = $2")
        .bind(repository_id)
        .bind(uuid)
        .execute(ex)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// Sets the failure count back to 0; whether the notification exists.
pub async fn reset_failures<'c>(
    ex: impl Exec<'c>,
    repository_id: i64,
    uuid: &str,
) -> DbResult<bool> {
    let done = sqlx::query(
        "UPDATE repo_notification SET number_of_failures = 0 WHERE repository_id = $1 AND uuid = $2",
    )
    .bind(repository_id)
    .bind(uuid)
    .execute(ex)
    .await?;
    Ok(done.rows_affected() > 0)
}

// ---- the delivery queue -------------------------------------------------------------------

/// Queues `event_data` for every enabled notification of `event` on the repository, in one
/// statement (nothing is read when the repository has none). Returns how many were queued.
pub async fn enqueue_event<'c>(
    ex: impl Exec<'c>,
    repository_id: i64,
    event: &str,
    event_data: &str,
    performer: Option<&str>,
    now_ms: i64,
) -> DbResult<u64> {
    let done = sqlx::query(
        "INSERT INTO notification_delivery (notification_id, event_data, performer, state, \
         attempts, available_ms, created_ms) \
         SELECT id, $3, $4, 'pending', 0, $5, $5 FROM repo_notification \
         WHERE repository_id = $1 AND event = $2 AND number_of_failures < $6",
    )
    .bind(repository_id)
    .bind(event)
    .bind(event_data)
    .bind(performer)
    .bind(now_ms)
    .bind(FAILURE_LIMIT)
    .execute(ex)
    .await?;
    Ok(done.rows_affected())
}

/// Queues `event_data` for one notification.
pub async fn enqueue_one<'c>(
    ex: impl Exec<'c>,
    notification_id: i64,
    event_data: &str,
    performer: Option<&str>,
    now_ms: i64,
) -> DbResult<()> {
    sqlx::query(
        "INSERT INTO notification_delivery (notification_id, event_data, performer, state, \
         attempts, available_ms, created_ms) VALUES ($1, $2, $3, 'pending', 0, $4, $4)",
    )
    .bind(notification_id)
    .bind(event_data)
    .bind(performer)
    .bind(now_ms)
    .execute(ex)
    .await?;
    Ok(())
}

/// A claimed delivery.
#[derive(Clone, Debug)]
pub struct Claimed {
    pub id: i64,
    pub notification_id: i64,
    pub event_data: String,
    pub performer: Option<String>,
    /// Attempts including this one.
    pub attempts: i64,
}

/// Claims up to `limit` due deliveries of enabled notifications until `until_ms`, counting the
/// attempt. One statement: on PostgreSQL the rows are locked `FOR UPDATE SKIP LOCKED`, so
/// concurrent workers take different rows; on SQLite the statement runs under the database's
/// single write lock. A claim that lapses (a worker died) makes the row due again.
pub async fn claim(tx: &mut Tx, now_ms: i64, until_ms: i64, limit: i64) -> DbResult<Vec<Claimed>> {
    let lock = match tx.backend() {
        Backend::Postgres => " FOR UPDATE OF d SKIP LOCKED",
        Backend::Sqlite => "",
    };
    let sql = format!(
        "UPDATE notification_delivery SET claimed_until_ms = $1, attempts = attempts + 1 \
         WHERE id IN (SELECT d.id FROM notification_delivery d \
           JOIN repo_notification n ON n.id = d.notification_id \
           WHERE d.state = 'pending' AND d.available_ms <= $2 \
             AND (d.claimed_until_ms IS NULL OR d.claimed_until_ms <= $2) \
             AND n.number_of_failures < $3 \
           ORDER BY d.available_ms, d.id LIMIT $4{lock}) \
         RETURNING id, notification_id, event_data, performer, attempts"
    );
    let rows = sqlx::query(&sql)
        .bind(until_ms)
        .bind(now_ms)
        .bind(FAILURE_LIMIT)
        .bind(limit)
        .fetch_all(&mut **tx)
        .await?;
    let mut out = rows
        .iter()
        .map(|r| {
            Ok(Claimed {
                id: r.try_get("id")?,
                notification_id: r.try_get("notification_id")?,
                event_data: r.try_get("event_data")?,
                performer: r.try_get("performer")?,
                attempts: r.try_get("attempts")?,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    out.sort_by_key(|c| c.id);
    Ok(out)
}

/// A delivery succeeded: it is done and its notification's failure count is back to 0 (Quay).
pub async fn delivered(tx: &mut Tx, delivery_id: i64, notification_id: i64) -> DbResult<()> {
    sqlx::query(
        "UPDATE notification_delivery SET state = 'done', claimed_until_ms = NULL, last_error = NULL \
         WHERE id = $1",
    )
    .bind(delivery_id)
    .execute(&mut **tx)
    .await?;
    sqlx::query("UPDATE repo_notification SET number_of_failures = 0 WHERE id = $1")
        .bind(notification_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// A delivery failed: the notification's failure count goes up and the delivery is due again at
/// `retry_at_ms`, or is given up (`None`).
pub async fn failed(
    tx: &mut Tx,
    delivery_id: i64,
    notification_id: i64,
    error: &str,
    retry_at_ms: Option<i64>,
) -> DbResult<()> {
    sqlx::query(
        "UPDATE notification_delivery SET state = $2, available_ms = COALESCE($3, available_ms), \
         claimed_until_ms = NULL, last_error = $4 WHERE id = $1",
    )
    .bind(delivery_id)
    .bind(if retry_at_ms.is_some() {
        "pending"
    } else {
        "failed"
    })
    .bind(retry_at_ms)
    .bind(error)
    .execute(&mut **tx)
    .await?;
    sqlx::query(
        "UPDATE repo_notification SET number_of_failures = number_of_failures + 1 WHERE id = $1",
    )
    .bind(notification_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Forgets finished deliveries created before `before_ms`.
pub async fn prune<'c>(ex: impl Exec<'c>, before_ms: i64) -> DbResult<u64> {
    let done = sqlx::query(
        "DELETE FROM notification_delivery WHERE state <> 'pending' AND created_ms < $1",
    )
    .bind(before_ms)
    .execute(ex)
    .await?;
    Ok(done.rows_affected())
}

/// Counts of a notification's deliveries by state (for tests and diagnostics).
pub async fn delivery_states<'c>(
    ex: impl Exec<'c>,
    notification_id: i64,
) -> DbResult<Vec<(String, i64)>> {
    let rows = sqlx::query(
        "SELECT state, COUNT(*) AS n FROM notification_delivery WHERE notification_id = $1 \
         GROUP BY state ORDER BY state",
    )
    .bind(notification_id)
    .fetch_all(ex)
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("state")?, r.try_get("n")?)))
        .collect()
}

// ---- image expiry -------------------------------------------------------------------------

/// Enabled notifications of `event` across the installation.
pub async fn enabled_of_event<'c>(
    ex: impl Exec<'c>,
    event: &str,
) -> DbResult<Vec<NotificationRow>> {
    let rows = sqlx::query(&format!(
        "{SELECT} WHERE event = $1 AND number_of_failures < $2 ORDER BY id"
    ))
    .bind(event)
    .bind(FAILURE_LIMIT)
    .fetch_all(ex)
    .await?;
    rows.iter().map(|r| Ok(from_row(r)?)).collect()
}

/// A live tag that expires soon.
#[derive(Clone, Debug)]
pub struct ExpiringTag {
    pub tag_id: i64,
    pub name: String,
    pub expiration_ms: i64,
}

/// Live tags of the repository expiring in `(now_ms, until_ms]` that this notification has not
/// been raised for at their current expiration.
pub async fn expiring_tags<'c>(
    ex: impl Exec<'c>,
    notification_id: i64,
    repository_id: i64,
    now_ms: i64,
    until_ms: i64,
) -> DbResult<Vec<ExpiringTag>> {
    let rows = sqlx::query(
        "SELECT t.id, t.name, t.expiration_ms FROM tag t WHERE t.repository_id = $1 \
         AND t.end_ms IS NULL AND t.expiration_ms IS NOT NULL \
         AND t.expiration_ms > $2 AND t.expiration_ms <= $3 \
         AND NOT EXISTS (SELECT 1 FROM notification_expiry_sent s WHERE s.notification_id = $4 \
           AND s.tag_id = t.id AND s.expiration_ms = t.expiration_ms) \
         ORDER BY t.name",
    )
    .bind(repository_id)
    .bind(now_ms)
    .bind(until_ms)
    .bind(notification_id)
    .fetch_all(ex)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(ExpiringTag {
                tag_id: r.try_get("id")?,
                name: r.try_get("name")?,
                expiration_ms: r.try_get("expiration_ms")?,
            })
        })
        .collect()
}

/// Records that the notification was raised for a tag at an expiration; false when it already
/// was (another worker got there first).
pub async fn mark_expiry_sent<'c>(
    ex: impl Exec<'c>,
    notification_id: i64,
    tag: &ExpiringTag,
) -> DbResult<bool> {
    let done = sqlx::query(
        "INSERT INTO notification_expiry_sent (notification_id, tag_id, expiration_ms) \
         VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
    )
    .bind(notification_id)
    .bind(tag.tag_id)
    .bind(tag.expiration_ms)
    .execute(ex)
    .await?;
    Ok(done.rows_affected() > 0)
}

// ---- in-app notifications -----------------------------------------------------------------

#[derive(Clone, Debug)]
pub struct UserNotificationRow {
    pub uuid: String,
    pub kind: String,
    pub organization: Option<String>,
    /// JSON text.
    pub metadata: String,
    pub dismissed: bool,
    pub created_ms: i64,
}

pub struct NewUserNotification<'a> {
    pub uuid: &'a str,
    pub account_id: i64,
    pub kind: &'a str,
    pub organization: Option<&'a str>,
    pub metadata: &'a str,
}

pub async fn insert_user_notification<'c>(
    ex: impl Exec<'c>,
    n: &NewUserNotification<'_>,
    now_ms: i64,
) -> DbResult<()> {
    sqlx::query(
        "INSERT INTO user_notification (uuid, account_id, kind, organization, metadata, dismissed, \
         created_ms) VALUES ($1, $2, $3, $4, $5, FALSE, $6)",
    )
    .bind(n.uuid)
    .bind(n.account_id)
    .bind(n.kind)
    .bind(n.organization)
    .bind(n.metadata)
    .bind(now_ms)
    .execute(ex)
    .await?;
    Ok(())
}

/// The account's notifications that are not dismissed, newest first.
pub async fn user_notifications<'c>(
    ex: impl Exec<'c>,
    account_id: i64,
    limit: i64,
) -> DbResult<Vec<UserNotificationRow>> {
    let rows = sqlx::query(
        "SELECT uuid, kind, organization, metadata, dismissed, created_ms FROM user_notification \
         WHERE account_id = $1 AND dismissed = FALSE ORDER BY created_ms DESC, id DESC LIMIT $2",
    )
    .bind(account_id)
    .bind(limit)
    .fetch_all(ex)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(UserNotificationRow {
                uuid: r.try_get("uuid")?,
                kind: r.try_get("kind")?,
                organization: r.try_get("organization")?,
                metadata: r.try_get("metadata")?,
                dismissed: get_bool(r, "dismissed")?,
                created_ms: r.try_get("created_ms")?,
            })
        })
        .collect()
}

/// Sets `dismissed` on one of the account's notifications and returns it (`None`: not its own
/// or unknown).
pub async fn set_dismissed(
    tx: &mut Tx,
    account_id: i64,
    uuid: &str,
    dismissed: bool,
) -> DbResult<Option<UserNotificationRow>> {
    let done = sqlx::query(
        "UPDATE user_notification SET dismissed = $3 WHERE account_id = $1 AND uuid = $2",
    )
    .bind(account_id)
    .bind(uuid)
    .bind(dismissed)
    .execute(&mut **tx)
    .await?;
    if done.rows_affected() == 0 {
        return Ok(None);
    }
    let r = sqlx::query(
        "SELECT uuid, kind, organization, metadata, dismissed, created_ms FROM user_notification \
         WHERE account_id = $1 AND uuid = $2",
    )
    .bind(account_id)
    .bind(uuid)
    .fetch_one(&mut **tx)
    .await?;
    Ok(Some(UserNotificationRow {
        uuid: r.try_get("uuid")?,
        kind: r.try_get("kind")?,
        organization: r.try_get("organization")?,
        metadata: r.try_get("metadata")?,
        dismissed: get_bool(&r, "dismissed")?,
        created_ms: r.try_get("created_ms")?,
    }))
}

// ---- authorized e-mail addresses ----------------------------------------------------------

#[derive(Clone, Debug)]
pub struct AuthorizedEmailRow {
    pub repository_id: i64,
    pub email: String,
    pub code: String,
    pub confirmed: bool,
}

fn email_row(r: &AnyRow) -> Result<AuthorizedEmailRow, sqlx::Error> {
    Ok(AuthorizedEmailRow {
        repository_id: r.try_get("repository_id")?,
        email: r.try_get("email")?,
        code: r.try_get("code")?,
        confirmed: get_bool(r, "confirmed")?,
    })
}

pub async fn authorized_email<'c>(
    ex: impl Exec<'c>,
    repository_id: i64,
    email: &str,
) -> DbResult<Option<AuthorizedEmailRow>> {
    let row = sqlx::query(
        "SELECT repository_id, email, code, confirmed FROM repo_authorized_email \
         WHERE repository_id = $1 AND email = $2",
    )
    .bind(repository_id)
    .bind(email)
    .fetch_optional(ex)
    .await?;
    Ok(row.as_ref().map(email_row).transpose()?)
}

/// Records an address to confirm (nothing when it is known already).
pub async fn insert_authorized_email<'c>(
    ex: impl Exec<'c>,
    repository_id: i64,
    email: &str,
    code: &str,
    now_ms: i64,
) -> DbResult<()> {
    sqlx::query(
        "INSERT INTO repo_authorized_email (repository_id, email, code, confirmed, created_ms) \
         VALUES ($1, $2, $3, FALSE, $4) ON CONFLICT (repository_id, email) DO NOTHING",
    )
    .bind(repository_id)
    .bind(email)
    .bind(code)
    .bind(now_ms)
    .execute(ex)
    .await?;
    Ok(())
}

/// Confirms the address whose link carries `code`; the confirmed row, if the code is known.
pub async fn confirm_email(tx: &mut Tx, code: &str) -> DbResult<Option<AuthorizedEmailRow>> {
    sqlx::query("UPDATE repo_authorized_email SET confirmed = TRUE WHERE code = $1")
        .bind(code)
        .execute(&mut **tx)
        .await?;
    let row = sqlx::query(
        "SELECT repository_id, email, code, confirmed FROM repo_authorized_email WHERE code = $1",
    )
    .bind(code)
    .fetch_optional(&mut **tx)
    .await?;
    Ok(row.as_ref().map(email_row).transpose()?)
}
