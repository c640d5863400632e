//! The registry's total size, as Quay's superuser panel shows it
//! (`/api/v1/superuser/registrysize/`).
//!
//! Rule: the size is the sum of every stored blob's size (each blob counted once, however many
//! repositories share it), computed when a superuser asks for it. Quay queues the calculation
//! for a worker; Quayside computes it within the request (one aggregate query) after marking it
//! running, so a second request while one runs answers "already queued" (202) and the stored
//! result never mixes two calculations (one marked running for over ten minutes died with its
//! process and is taken over). Reading answers the last result, or zero and `null`
//! before the first.

use quayside_client as api;

use crate::db;
use crate::service::access::authz;
use crate::service::operations::audit::Caller;
use crate::service::{Ctx, TenancyError};

/// A calculation running for longer than this is taken to have died with its process.
const STALE_AFTER_MS: i64 = 10 * 60 * 1000;

/// What a request for a calculation did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Queued {
    /// This request ran it; the result is stored.
    Done,
    /// Another calculation was queued or running.
    AlreadyQueued,
}

/// `GET /api/v1/superuser/registrysize/`.
pub async fn get(ctx: &Ctx, caller: &Caller) -> Result<api::RegistrySize, TenancyError> {
    authz::require_superuser(ctx, &caller.principal).await?;
    Ok(
        match db::content::registry_size::get(ctx.db.pool()).await? {
            Some(r) => api::RegistrySize {
                size_bytes: r.size_bytes,
                last_ran: r.completed_ms,
                queued: r.queued,
                running: r.running,
            },
            None => api::RegistrySize {
                size_bytes: 0,
                last_ran: None,
                queued: false,
                running: false,
            },
        },
    )
}

/// `POST /api/v1/superuser/registrysize/`.
pub async fn calculate(ctx: &Ctx, caller: &Caller) -> Result<Queued, TenancyError> {
    authz::require_superuser(ctx, &caller.principal).await?;
    let pool = ctx.db.pool();
    let now = ctx.now_ms();
    if !db::content::registry_size::start(pool, now, now - STALE_AFTER_MS).await? {
        return Ok(Queued::AlreadyQueued);
    }
    match db::content::registry_size::sum_blobs(pool).await {
        Ok(total) => {
            db::content::registry_size::finish(pool, total, ctx.now_ms()).await?;
            Ok(Queued::Done)
        }
        Err(e) => {
            db::content::registry_size::abandon(pool).await?;
            Err(e.into())
        }
    }
}
