//! Executors: where a claimed build's builder runs (`EXECUTORS` in the configuration).
//!
//! Rule: an executor starts one builder per attempt, handing it the registry's address and the
//! attempt's build token, and answers a reference (a process, a Job name) the manager stores;
//! [`stop`] removes what [`start`] made, whatever state it is in. Nothing else is shared: the
//! builder talks to the registry only through the protocol (`super::protocol`).

pub mod kubernetes;
pub mod local;

use crate::config::{ExecutorConfig, ExecutorKind};
use crate::db::content::builds::BuildRow;
use crate::service::Ctx;

/// The URL builders call back to: `BUILDMAN_HOSTNAME` when set, else the registry's origin.
pub fn manager_url(ctx: &Ctx) -> String {
    match &ctx.config.builds.buildman_hostname {
        Some(host) => {
            let scheme = match ctx.config.url_scheme {
                crate::config::UrlScheme::Https => "https",
                crate::config::UrlScheme::Http => "http",
            };
            format!("{scheme}://{host}")
        }
        None => super::origin(ctx),
    }
}

/// The executor a build's next attempt runs on: the first whose `MINIMUM_RETRY_THRESHOLD` the
/// build's remaining retries reach, else the last one (Quay's failover rule).
pub fn choose(ctx: &Ctx, retries_remaining: i64) -> (usize, &ExecutorConfig) {
    let executors = &ctx.config.builds.executors;
    executors
        .iter()
        .enumerate()
        .find(|(_, e)| e.minimum_retry_threshold <= retries_remaining)
        .unwrap_or_else(|| {
            let last = executors.len() - 1;
            (last, &executors[last])
        })
}

/// Starts the builder of `row`'s current attempt; answers the reference to store.
pub async fn start(
    ctx: &Ctx,
    executor: &ExecutorConfig,
    row: &BuildRow,
    token: &str,
) -> Result<String, String> {
    match executor.kind {
        ExecutorKind::Local => local::start(ctx, executor, row, token),
        ExecutorKind::Kubernetes => kubernetes::start(ctx, executor, row, token).await,
    }
}

/// Removes what `start` made (kept when the executor has `DEBUG: true`).
pub async fn stop(ctx: &Ctx, executor: &ExecutorConfig, reference: &str) -> Result<(), String> {
    match executor.kind {
        ExecutorKind::Local => {
            local::stop(reference, executor.debug);
            Ok(())
        }
        ExecutorKind::Kubernetes => kubernetes::stop(ctx, executor, reference).await,
    }
}
