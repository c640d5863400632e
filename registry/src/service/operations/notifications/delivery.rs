//! The `notifications` worker: raises image-expiry events, then delivers what is queued.
//!
//! Rules:
//! - Deliveries are claimed in batches ([`BATCH`]) from the database queue, each claim lasting
//!   [`CLAIM`] so a crashed worker's rows become due again; on PostgreSQL rows are locked
//!   `FOR UPDATE SKIP LOCKED`, so replicas never take the same row. A batch is delivered
//!   concurrently, each request bounded by `methods::TIMEOUT`.
//! - A failed attempt adds one to the notification's `number_of_failures` and is retried after
//!   a backoff doubling from [`BACKOFF_BASE`] (at most [`BACKOFF_MAX`]), up to [`MAX_ATTEMPTS`];
//!   a notification at the failure limit is skipped until reset. A success resets the count.
//! - Image expiry (`repo_image_expiry`): at most once per `NOTIFICATION_TASK_RUN_MINIMUM_INTERVAL_MINUTES`
//!   (Quay's key, default 300), every live tag expiring within the notification's `days` raises
//!   one event per notification listing the tags, each tag once per expiration it is given.
//!   Time is the injected clock's.

use std::time::Duration;

use serde_json::{Value, json};

use super::events::{Event, days_of};
use super::methods;
use crate::db;
use crate::db::operations::notifications::Claimed;
use crate::service::{Ctx, Internal};

/// Deliveries claimed at once.
pub const BATCH: i64 = 20;
/// Batches one pass delivers at most (the rest waits for the next pass).
const MAX_BATCHES: usize = 25;
/// How long a claim lasts.
pub const CLAIM: Duration = Duration::from_secs(300);
/// First retry delay; doubled after each failed attempt.
pub const BACKOFF_BASE: Duration = Duration::from_secs(30);
pub const BACKOFF_MAX: Duration = Duration::from_secs(3600);
/// Attempts of one delivery before it is given up.
pub const MAX_ATTEMPTS: i64 = 5;
/// Finished deliveries are forgotten after this long.
const KEEP_FINISHED: Duration = Duration::from_secs(7 * 24 * 3600);

const EXPIRY_SCAN_SETTING: &str = "notifications:expiry_scan_ms";

/// What one pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PassReport {
    pub expiry_events: usize,
    pub delivered: usize,
    pub failed: usize,
}

impl std::fmt::Display for PassReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "raised {} image-expiry events, delivered {}, failed {}",
            self.expiry_events, self.delivered, self.failed
        )
    }
}

/// The delay before attempt `attempts + 1`, after `attempts` failed ones.
pub fn backoff(attempts: i64) -> Duration {
    let factor = 2u32.saturating_pow(attempts.clamp(1, 20) as u32 - 1);
    BACKOFF_BASE.saturating_mul(factor).min(BACKOFF_MAX)
}

/// One pass of the worker.
pub async fn worker_pass(ctx: &Ctx) -> Result<PassReport, Internal> {
    let mut report = PassReport {
        expiry_events: scan_expiring(ctx).await?,
        ..PassReport::default()
    };
    for _ in 0..MAX_BATCHES {
        let now = ctx.now_ms();
        let mut tx = ctx.db.begin().await?;
        let claimed = db::operations::notifications::claim(
            &mut tx,
            now,
            now + CLAIM.as_millis() as i64,
            BATCH,
        )
        .await?;
        tx.commit().await?;
        if claimed.is_empty() {
            break;
        }
        let results = futures_util::future::join_all(claimed.iter().map(|c| deliver(ctx, c))).await;
        for (claim, result) in claimed.iter().zip(results) {
            let mut tx = ctx.db.begin().await?;
            match result {
                Ok(()) => {
                    db::operations::notifications::delivered(
                        &mut tx,
                        claim.id,
                        claim.notification_id,
                    )
                    .await?;
                    report.delivered += 1;
                }
                Err(error) => {
                    let retry_at = (claim.attempts < MAX_ATTEMPTS)
                        .then(|| ctx.now_ms() + backoff(claim.attempts).as_millis() as i64);
                    tracing::warn!(
                        delivery = claim.id,
                        notification = claim.notification_id,
                        attempt = claim.attempts,
                        retry = retry_at.is_some(),
                        %error,
                        "notification delivery failed"
                    );
                    db::operations::notifications::failed(
                        &mut tx,
                        claim.id,
                        claim.notification_id,
                        &error,
                        retry_at,
                    )
                    .await?;
                    report.failed += 1;
                }
            }
            tx.commit().await?;
        }
    }
    db::operations::notifications::prune(
        ctx.db.pool(),
        ctx.now_ms() - KEEP_FINISHED.as_millis() as i64,
    )
    .await?;
    Ok(report)
}

/// Delivers one claimed event.
async fn deliver(ctx: &Ctx, claim: &Claimed) -> Result<(), String> {
    let lookup = async {
        let Some(notification) =
            db::operations::notifications::by_id(ctx.db.pool(), claim.notification_id).await?
        else {
            return Ok::<_, db::DbError>(None);
        };
        let repo =
            db::content::repositories::by_id(ctx.db.pool(), notification.repository_id).await?;
        Ok(repo.map(|r| (notification, r)))
    };
    let (notification, repo) = match lookup.await {
        Ok(Some(found)) => found,
        // Deleted meanwhile (its deliveries go with it).
        Ok(None) => return Ok(()),
        Err(e) => return Err(format!("database: {e}")),
    };
    let event = Event::parse(&notification.event)
        .ok_or_else(|| format!("unknown event {}", notification.event))?;
    let data: Value = serde_json::from_str(&claim.event_data)
        .map_err(|e| format!("the queued payload is not JSON: {e}"))?;
    methods::perform(ctx, &notification, &repo, event, &data).await
}

/// Raises `repo_image_expiry` for tags entering their notifications' windows. Returns the
/// number of events raised.
async fn scan_expiring(ctx: &Ctx) -> Result<usize, Internal> {
    let now = ctx.now_ms();
    let pool = ctx.db.pool();
    let last = db::operations::settings::get(pool, EXPIRY_SCAN_SETTING)
        .await?
        .and_then(|v| v.parse::<i64>().ok());
    if last.is_some_and(|last| {
        now >= last && now - last < ctx.config.notifications.expiry_scan_interval.as_millis() as i64
    }) {
        return Ok(0);
    }
    db::operations::settings::put(pool, EXPIRY_SCAN_SETTING, &now.to_string()).await?;
    let mut raised = 0;
    for notification in
        db::operations::notifications::enabled_of_event(pool, Event::RepoImageExpiry.name()).await?
    {
        let event_config: Value =
            serde_json::from_str(&notification.event_config).unwrap_or_else(|_| json!({}));
        let Some(days) = event_config.get("days").and_then(days_of) else {
            continue;
        };
        let until = now.saturating_add(days.saturating_mul(86_400_000));
        let tags = db::operations::notifications::expiring_tags(
            pool,
            notification.id,
            notification.repository_id,
            now,
            until,
        )
        .await?;
        if tags.is_empty() {
            continue;
        }
        let Some(repo) = db::content::repositories::by_id(pool, notification.repository_id).await?
        else {
            continue;
        };
        let mut tx = ctx.db.begin().await?;
        let mut fresh = Vec::new();
        for tag in &tags {
            if db::operations::notifications::mark_expiry_sent(&mut *tx, notification.id, tag)
                .await?
            {
                fresh.push(tag.name.clone());
            }
        }
        if !fresh.is_empty() {
            let data = super::payload(
                ctx,
                &repo.namespace,
                &repo.name,
                json!({ "tags": fresh, "expiring_in": format!("{days} days") }),
            );
            db::operations::notifications::enqueue_one(
                &mut *tx,
                notification.id,
                &data.to_string(),
                None,
                now,
            )
            .await?;
            raised += 1;
        }
        tx.commit().await?;
    }
    Ok(raised)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        assert_eq!(backoff(1), BACKOFF_BASE);
        assert_eq!(backoff(2), BACKOFF_BASE * 2);
        assert_eq!(backoff(3), BACKOFF_BASE * 4);
        assert_eq!(backoff(30), BACKOFF_MAX);
    }
}
