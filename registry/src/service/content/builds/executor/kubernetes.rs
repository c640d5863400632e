//! The `kubernetes` executor: a `batch/v1` Job in `BUILDER_NAMESPACE` per attempt.
//!
//! Not implemented yet: starting a build on it fails the attempt with an error saying so, and
//! the manager fails over to the next executor as `MINIMUM_RETRY_THRESHOLD` allows.

use crate::config::ExecutorConfig;
use crate::db::content::builds::BuildRow;
use crate::service::Ctx;

pub async fn start(
    _ctx: &Ctx,
    executor: &ExecutorConfig,
    _row: &BuildRow,
    _token: &str,
) -> Result<String, String> {
    Err(format!(
        "executor {:?}: the kubernetes executor is not implemented in this version of Quayside",
        executor.name
    ))
}

pub async fn stop(_ctx: &Ctx, _executor: &ExecutorConfig, _reference: &str) -> Result<(), String> {
    Ok(())
}
