//! Background workers. Each runs periodically in `quayside serve` (or alone with
//! `quayside worker --only <name>`) and holds a database lease while it works, so with several
//! replicas exactly one runs a given worker at a time. The `mirror` worker takes no such lease:
//! it claims each due mirror on its own (`service::content::mirror`), so replicas share the
//! mirrors. Each process counts the passes it ran per worker (`quayside_worker_passes_total`
//! in `/metrics`), which is how a test shows that replicas do not repeat each other's work.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::db;
use crate::service::operations::logs;
use crate::service::operations::notifications;
use crate::service::tenancy::app_tokens;
use crate::service::{
    Ctx, content::builds, content::gc, content::mirror, content::quota, content::scanner,
    content::tags, content::uploads,
};

/// A periodic worker.
#[derive(Clone, Copy, Debug)]
pub struct Worker {
    pub name: &'static str,
    /// How often it runs, unless the configuration says otherwise ([`Worker::interval_for`]).
    pub interval: Duration,
}

impl Worker {
    /// The interval in this configuration (`gc` follows `GARBAGE_COLLECTION_FREQUENCY`,
    /// `mirror` `REPO_MIRROR_INTERVAL`).
    pub fn interval_for(&self, ctx: &Ctx) -> Duration {
        // One interval for every worker (tests, benchmarks): `QUAYSIDE_WORKER_INTERVAL_MS`.
        if let Some(ms) = std::env::var("QUAYSIDE_WORKER_INTERVAL_MS")
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .filter(|ms| *ms > 0)
        {
            return Duration::from_millis(ms);
        }
        match self.name {
            "gc" => ctx.config.gc.frequency,
            "mirror" => ctx.config.mirror.interval,
            "scanner" => ctx.config.scanner.interval,
            _ => self.interval,
        }
    }
}

/// Every worker this build has.
pub const ALL: &[Worker] = &[
    Worker {
        name: "uploads",
        interval: Duration::from_secs(60),
    },
    // Repository mirroring: syncs the mirrors that are due (`FEATURE_REPO_MIRROR`).
    Worker {
        name: "mirror",
        interval: Duration::from_secs(30),
    },
    // The build manager (`FEATURE_BUILD_SUPPORT`): starts queued builds on the executors,
    // restarts lost ones, removes finished builders. Builds are claimed one by one, so every
    // replica's build manager runs.
    Worker {
        name: "builds",
        interval: Duration::from_secs(2),
    },
    // Ends expired tags at their expiration (they stop being served the moment they expire).
    Worker {
        name: "expiration",
        interval: Duration::from_secs(30),
    },
    // Garbage collection (see `service::content::gc`).
    Worker {
        name: "gc",
        interval: Duration::from_secs(30),
    },
    // Quota backfill: sizes of content stored before accounting existed (`QUOTA_BACKFILL`),
    // first run `QUOTA_TOTAL_DELAY_SECONDS` after start.
    Worker {
        name: "quota",
        interval: Duration::from_secs(60),
    },
    // Usage-log exports: writes requested exports to blob storage and delivers their links
    // (callback URL or e-mail); deletes exports whose links expired.
    Worker {
        name: "exportlogs",
        interval: Duration::from_secs(5),
    },
    // Audit-log rotation (`FEATURE_ACTION_LOG_ROTATION`): entries older than
    // `ACTION_LOG_ROTATION_THRESHOLD` move to `ACTION_LOG_ARCHIVE_PATH` in blob storage.
    Worker {
        name: "logrotation",
        interval: Duration::from_secs(3600),
    },
    // Repository notifications: raises image-expiry events and delivers the queue (see
    // `service::operations::notifications::delivery`). Deliveries are claimed row by row, so
    // replicas running it at once never deliver one twice.
    Worker {
        name: "notifications",
        interval: Duration::from_secs(10),
    },
    // Security scanning (`FEATURE_SECURITY_SCANNER`): imports the configured OSV sources,
    // scans queued manifests (claimed one by one, so every replica's scanner runs) and
    // re-matches after a database change (`service::content::scanner`).
    Worker {
        name: "scanner",
        interval: Duration::from_secs(30),
    },
    // Application-specific tokens expired longer than `EXPIRED_APP_SPECIFIC_TOKEN_GC` ago are
    // deleted (Quay's `expiredappspecifictokenworker`, hourly).
    Worker {
        name: "apptokens",
        interval: Duration::from_secs(3600),
    },
];

/// Passes run by this process, per worker of [`ALL`] (in its order).
static PASSES: [AtomicU64; ALL.len()] = [const { AtomicU64::new(0) }; ALL.len()];

/// `(worker, passes run by this process)` for every worker.
pub fn passes() -> Vec<(&'static str, u64)> {
    ALL.iter()
        .zip(&PASSES)
        .map(|(w, n)| (w.name, n.load(Ordering::Relaxed)))
        .collect()
}

fn count_pass(name: &str) {
    if let Some(i) = ALL.iter().position(|w| w.name == name) {
        PASSES[i].fetch_add(1, Ordering::Relaxed);
    }
}

pub fn names() -> Vec<&'static str> {
    ALL.iter().map(|w| w.name).collect()
}

/// Runs one pass of the named worker now (holding no lease). Returns a one-line summary.
pub async fn run_once(ctx: &Ctx, name: &str) -> anyhow::Result<String> {
    run_as(ctx, name, &format!("once:{}", uuid::Uuid::new_v4())).await
}

/// One pass as `holder` (the process's worker identity: the name mirror and build claims
/// carry).
pub async fn run_as(ctx: &Ctx, name: &str, holder: &str) -> anyhow::Result<String> {
    count_pass(name);
    match name {
        "uploads" => {
            let removed = uploads::clean_expired(ctx)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            Ok(format!("removed {removed} abandoned uploads"))
        }
        "apptokens" => {
            let removed = app_tokens::gc_pass(ctx)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            Ok(format!(
                "deleted {removed} expired application-specific tokens"
            ))
        }
        "expiration" => {
            let ended = tags::expire(ctx)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            Ok(format!("ended {ended} expired tags"))
        }
        "gc" if !ctx.config.gc.enabled => {
            Ok("garbage collection is off (FEATURE_GARBAGE_COLLECTION: false)".into())
        }
        "gc" => {
            let report = gc::worker_pass(ctx)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            Ok(report.to_string())
        }
        "quota" if !ctx.config.quota.enabled => {
            Ok("quota management is off (FEATURE_QUOTA_MANAGEMENT: false)".into())
        }
        "quota" if !ctx.config.quota.backfill => {
            Ok("quota backfill is off (QUOTA_BACKFILL: false)".into())
        }
        "quota" => {
            let done = quota::backfill_pass(ctx)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            Ok(format!("backfilled the quota of {done} repositories"))
        }
        "exportlogs" => {
            let delivered = logs::export_pass(ctx)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            Ok(format!("delivered {delivered} log exports"))
        }
        "logrotation" if !ctx.config.action_logs.rotation => {
            Ok("audit-log rotation is off (FEATURE_ACTION_LOG_ROTATION: false)".into())
        }
        "logrotation" => {
            let archived = logs::rotation_pass(ctx)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            Ok(format!("archived {archived} audit-log entries"))
        }
        "notifications" => {
            let report = notifications::delivery::worker_pass(ctx)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            Ok(report.to_string())
        }
        "builds" if !ctx.config.builds.enabled => {
            Ok("builds are off (FEATURE_BUILD_SUPPORT: false)".into())
        }
        "builds" => {
            let report = builds::manager::worker_pass(ctx, holder)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            Ok(report.to_string())
        }
        "scanner" if !ctx.config.scanner.enabled => {
            Ok("security scanning is off (FEATURE_SECURITY_SCANNER: false)".into())
        }
        "scanner" => scanner::worker_pass(ctx, holder)
            .await
            .map_err(|e| anyhow::anyhow!("{e}")),
        "mirror" if !ctx.config.mirror.enabled => {
            Ok("repository mirroring is off (FEATURE_REPO_MIRROR: false)".into())
        }
        "mirror" => {
            let report = mirror::worker_pass(ctx, holder)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            Ok(report.to_string())
        }
        other => anyhow::bail!("unknown worker {other:?} (known: {})", names().join(", ")),
    }
}

/// Starts the workers named in `only` (all when empty) until `shutdown` turns true.
pub fn spawn(
    ctx: Arc<Ctx>,
    only: &[String],
    shutdown: watch::Receiver<bool>,
) -> Vec<JoinHandle<()>> {
    let holder = uuid::Uuid::new_v4().to_string();
    ALL.iter()
        .filter(|w| only.is_empty() || only.iter().any(|o| o == w.name))
        .map(|worker| {
            let (ctx, holder, mut shutdown) = (ctx.clone(), holder.clone(), shutdown.clone());
            let worker = *worker;
            tokio::spawn(async move {
                if worker.name == "quota" {
                    tokio::select! {
                        () = tokio::time::sleep(ctx.config.quota.backfill_delay) => {}
                        _ = shutdown.wait_for(|stop| *stop) => return,
                    }
                }
                loop {
                    let now = ctx.now_ms();
                    let interval = worker.interval_for(&ctx);
                    let lease_until = now + 2 * interval.as_millis() as i64;
                    let lease = format!("worker:{}", worker.name);
                    // Mirrors are claimed one by one, so every replica's mirror worker runs.
                    let leased = match worker.name {
                        "mirror" | "builds" | "scanner" => Ok(true),
                        _ => db::operations::settings::acquire_lease(ctx.db.pool(), &lease, &holder, now, lease_until).await,
                    };
                    match leased {
                        Ok(true) => match run_as(&ctx, worker.name, &holder).await {
                            Ok(summary) => tracing::debug!(worker = worker.name, %summary, "worker pass done"),
                            Err(e) => tracing::warn!(worker = worker.name, error = %e, "worker pass failed"),
                        },
                        Ok(false) => tracing::trace!(worker = worker.name, "another replica holds the lease"),
                        Err(e) => tracing::warn!(worker = worker.name, error = %e, "cannot take the worker lease"),
                    }
                    tokio::select! {
                        () = tokio::time::sleep(interval) => {}
                        _ = shutdown.wait_for(|stop| *stop) => break,
                    }
                }
            })
        })
        .collect()
}
