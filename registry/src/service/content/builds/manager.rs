//! The build manager: the `builds` worker pass every replica runs.
//!
//! Rules, in the order of a pass:
//! 1. Local builders of this process that exited without finishing lose their attempt at once.
//! 2. Attempts past their deadline are given up: a builder that did not register within its
//!    executor's `SETUP_TIME`, or a registered one silent for
//!    [`protocol::HEARTBEAT_TIMEOUT_MS`]. The executor's resources are removed, then the build
//!    is queued again with one retry fewer (phase `internalerror` while queued, as Quay shows
//!    it) or, with none left, ends `internalerror` (answered `expired`) and raises
//!    `build_failure`. Each step is guarded by the attempt's token, so two replicas giving up
//!    the same attempt do it once.
//! 3. Resources of attempts that ended (finished, cancelled, restarted) are removed, unless the
//!    executor has `DEBUG: true` (local: only by the process that started them).
//! 4. While this process runs fewer than `ALLOWED_WORKER_COUNT` builds it claims the oldest
//!    queued one (`db::content::builds::claim_waiting`: once across replicas), picks the
//!    executor by `MINIMUM_RETRY_THRESHOLD`, starts the builder with a fresh build token and
//!    sets the registration deadline. An executor that cannot start counts as a lost attempt.

use serde_json::json;

use crate::db::content::builds::{self as rows, BuildRow};
use crate::service::content::builds::executor;
use crate::service::content::builds::{entry, log_entry, notify_in, protocol};
use crate::service::operations::notifications::events::Event as NotificationEvent;
use crate::service::{Ctx, Internal, hash_secret, random_token};

/// What one pass did.
#[derive(Debug, Default)]
pub struct PassReport {
    pub started: usize,
    pub restarted: usize,
    pub failed: usize,
    pub cleaned: usize,
}

impl std::fmt::Display for PassReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "builds started: {}, restarted: {}, failed: {}, cleaned up: {}",
            self.started, self.restarted, self.failed, self.cleaned
        )
    }
}

/// One pass of the build manager as `holder` (this process's worker identity).
pub async fn worker_pass(ctx: &Ctx, holder: &str) -> Result<PassReport, Internal> {
    let mut report = PassReport::default();
    if !ctx.config.builds.enabled {
        return Ok(report);
    }
    // 1. Local builders that died.
    for (reference, build_id, status) in executor::local::reap() {
        let row = rows::by_id(ctx.db.pool(), build_id).await?;
        match row {
            Some(row)
                if row.executor_ref.as_deref() == Some(reference.as_str())
                    && row.token_hash.is_some()
                    && rows::RUNNING.contains(&row.phase.as_str()) =>
            {
                let reason = format!("the builder exited ({status}) before it finished");
                give_up(ctx, &row, &reason, &mut report).await?;
            }
            Some(row) => {
                clean_up(ctx, &row).await;
            }
            None => executor::local::stop(&reference, false),
        }
    }
    // 2. Overdue attempts.
    for row in rows::overdue(ctx.db.pool(), ctx.now_ms()).await? {
        let reason = if row.registered {
            "the builder stopped sending heartbeats".to_owned()
        } else {
            let setup = row
                .executor_index
                .and_then(|i| ctx.config.builds.executors.get(i as usize))
                .map(|e| e.setup_time_s)
                .unwrap_or(0);
            format!("the builder did not register within SETUP_TIME ({setup} s)")
        };
        give_up(ctx, &row, &reason, &mut report).await?;
    }
    // 3. Resources of ended attempts.
    for row in rows::uncleaned(ctx.db.pool()).await? {
        if clean_up(ctx, &row).await {
            report.cleaned += 1;
        }
    }
    // 4. Claims.
    loop {
        let running = rows::count_claimed(ctx.db.pool(), holder).await?;
        if running >= ctx.config.builds.allowed_worker_count {
            break;
        }
        let token = random_token(40);
        let hash = hash_secret(&token);
        let mut tx = ctx.db.begin().await?;
        let claimed = rows::claim_waiting(&mut tx, holder, &hash, ctx.now_ms() + 60_000).await?;
        tx.commit().await?;
        let Some(row) = claimed else {
            break;
        };
        let (index, config) = executor::choose(ctx, row.retries_remaining);
        let _ = log_entry(ctx, &row, rows::SCHEDULED, Some("phase")).await;
        let _ = log_entry(
            ctx,
            &row,
            &format!("Scheduled on executor {}", config.name),
            None,
        )
        .await;
        match executor::start(ctx, config, &row, &token).await {
            Ok(reference) => {
                let deadline = ctx.now_ms() + config.setup_time_s.saturating_mul(1000);
                if !rows::set_executor(
                    ctx.db.pool(),
                    row.id,
                    &hash,
                    index as i64,
                    &reference,
                    deadline,
                )
                .await?
                {
                    // Cancelled in between: remove what was started.
                    let _ = executor::stop(ctx, config, &reference).await;
                    continue;
                }
                tracing::info!(build = %row.uuid, executor = %config.name, %reference, "build scheduled");
                report.started += 1;
            }
            Err(e) => {
                tracing::warn!(build = %row.uuid, executor = %config.name, error = %e, "cannot start a builder");
                let mut row = row;
                row.token_hash = Some(hash);
                give_up(ctx, &row, &e, &mut report).await?;
            }
        }
    }
    Ok(report)
}

/// Gives up the current attempt of `row`: removes its resources, then queues the build again
/// or fails it.
async fn give_up(
    ctx: &Ctx,
    row: &BuildRow,
    reason: &str,
    report: &mut PassReport,
) -> Result<(), Internal> {
    let Some(hash) = row.token_hash.clone() else {
        return Ok(());
    };
    clean_up(ctx, row).await;
    let restart = row.retries_remaining > 0;
    let error = format!("{reason}; no retries left");
    // The attempt's end, its log lines and (when final) its event, together.
    let mut tx = ctx.db.begin().await?;
    if !rows::abandon(&mut *tx, row.id, &hash, restart, &error, ctx.now_ms()).await? {
        return Ok(());
    }
    let message = if restart {
        format!(
            "{reason}; the build is restarted ({} retries left)",
            row.retries_remaining - 1
        )
    } else {
        error.clone()
    };
    rows::append_logs(
        &mut tx,
        row.id,
        &[
            entry(ctx, &message, Some("error")),
            entry(ctx, rows::INTERNAL_ERROR, Some("phase")),
        ],
    )
    .await?;
    if !restart {
        notify_in(
            ctx,
            &mut tx,
            row,
            NotificationEvent::BuildFailure,
            json!({ "error_message": error }),
        )
        .await?;
    }
    tx.commit().await?;
    if restart {
        tracing::warn!(build = %row.uuid, %reason, "build restarted");
        report.restarted += 1;
    } else {
        tracing::warn!(build = %row.uuid, %reason, "build failed: no retries left");
        report.failed += 1;
    }
    Ok(())
}

/// Removes the executor resources of `row`'s attempt (kept with `DEBUG`); `true` when it did.
/// A local builder started by another process is left to that process.
pub async fn clean_up(ctx: &Ctx, row: &BuildRow) -> bool {
    let Some(reference) = row.executor_ref.as_deref() else {
        return false;
    };
    if row.cleaned {
        return false;
    }
    let Some(config) = row
        .executor_index
        .and_then(|i| ctx.config.builds.executors.get(i as usize))
    else {
        return false;
    };
    if config.kind == crate::config::ExecutorKind::Local && !executor::local::owns(reference) {
        return false;
    }
    if let Err(e) = executor::stop(ctx, config, reference).await {
        tracing::warn!(build = %row.uuid, %reference, error = %e, "cannot remove the builder");
        return false;
    }
    if let Err(e) = rows::mark_cleaned(ctx.db.pool(), row.id, reference).await {
        tracing::warn!(build = %row.uuid, error = %e, "cannot record the builder's removal");
        return false;
    }
    true
}

/// The protocol's heartbeat timeout, re-exported for the documentation of the worker.
pub const HEARTBEAT_TIMEOUT_MS: i64 = protocol::HEARTBEAT_TIMEOUT_MS;
