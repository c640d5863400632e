//! The health of repository mirroring (`GET /api/v1/repository/mirror/health` and the
//! superuser's `GET /api/v1/superuser/mirror/health`), in Quay 3.18's shape.
//!
//! Rules:
//! - Only enabled mirrors of repositories in the MIRROR state count: `repositories` has their
//!   total and how many are syncing, completed (`SUCCESS`), failed (`FAIL`) and never run.
//! - Unhealthy (and the answer 503) when more than 20% of the mirrors that have run are
//!   failing; `issues` then starts with that critical issue. Up to five mirrors that never ran
//!   (warning) and five that failed with no retries left (error) are listed as issues, except in
//!   the superuser's summary, which names no repository.
//! - Quay reads worker counts, pending tags and last-sync times from its metrics PushGateway;
//!   Quayside publishes no such metrics, so it answers as Quay does without them: `workers`
//!   active and configured 0, `tags_pending` 0, no staleness issues and `last_sync` null.
//! - The global view is for superusers; one namespace's view (`namespace=`) also for the user
//!   itself or a member of the organization; an unknown namespace is not found.
//! - `detailed=true` adds each mirror (`limit` 1 to 1000, default 100, from `offset`) and the
//!   page's `has_more`.

use chrono::{SecondsFormat, TimeZone, Utc};
use serde_json::{Value, json};

use crate::db;
use crate::service::access::authz::{self, Action, Resource};
use crate::service::operations::audit::Caller;
use crate::service::{Ctx, TenancyError};

/// Issues of one kind listed at most.
const ISSUE_SAMPLE: i64 = 5;
/// The failing share above which mirroring is unhealthy.
const CRITICAL_SHARE: f64 = 0.2;

/// What a caller asked for.
#[derive(Clone, Debug, Default)]
pub struct HealthQuery {
    pub namespace: Option<String>,
    pub detailed: bool,
    pub limit: i64,
    pub offset: i64,
}

/// The answer and whether mirroring is healthy (200) or not (503).
pub struct Health {
    pub healthy: bool,
    pub body: Value,
}

/// `GET /api/v1/repository/mirror/health`.
pub async fn repository_health(
    ctx: &Ctx,
    caller: &Caller,
    q: &HealthQuery,
) -> Result<Health, TenancyError> {
    let p = &caller.principal;
    if p.user().is_none() {
        return Err(TenancyError::Forbidden {
            anonymous: p.account().is_none(),
        });
    }
    let superuser = authz::can(ctx, p, Action::SuperUser, Resource::Registry).await?;
    match &q.namespace {
        None if !superuser => return Err(TenancyError::Forbidden { anonymous: false }),
        None => {}
        Some(ns) => {
            let row = db::tenancy::namespaces::by_name(ctx.db.pool(), ns)
                .await?
                .filter(|n| n.is_user() || n.is_org())
                .ok_or(TenancyError::NotFound)?;
            let allowed = superuser
                || match row.is_org() {
                    true => {
                        authz::can(ctx, p, Action::ViewNamespace, Resource::Namespace(ns)).await?
                    }
                    false => p.user().is_some_and(|u| u.id == row.id),
                };
            if !allowed {
                return Err(TenancyError::Forbidden { anonymous: false });
            }
        }
    }
    health(ctx, q, true).await
}

/// `GET /api/v1/superuser/mirror/health`: the global summary, naming no repository.
pub async fn superuser_health(ctx: &Ctx, caller: &Caller) -> Result<Health, TenancyError> {
    authz::require(
        ctx,
        &caller.principal,
        Action::SuperUser,
        Resource::Registry,
    )
    .await?;
    health(ctx, &HealthQuery::default(), false).await
}

async fn health(ctx: &Ctx, q: &HealthQuery, details: bool) -> Result<Health, TenancyError> {
    use db::content::mirror as m;
    let pool = ctx.db.pool();
    let ns = q.namespace.as_deref();
    let counts = m::health_counts(pool, ns).await?;
    let count = |status: &str| {
        counts
            .iter()
            .filter(|(s, _)| s == status)
            .map(|(_, n)| *n)
            .sum::<i64>()
    };
    let total: i64 = counts.iter().map(|(_, n)| n).sum();
    let (syncing, completed, failed, never_run) = (
        count(m::SYNCING),
        count(m::SUCCESS),
        count(m::FAIL),
        count(m::NEVER_RUN),
    );
    let now = Utc
        .timestamp_millis_opt(ctx.now_ms())
        .single()
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Micros, true);
    let mut issues = Vec::new();
    if details {
        for r in m::health_rows(pool, ns, Some(m::NEVER_RUN), false, ISSUE_SAMPLE, 0).await? {
            issues.push(json!({
                "severity": "warning",
                "message": format!("Repository {}/{} has never been synced", r.namespace, r.repository),
                "timestamp": now,
            }));
        }
        for r in m::health_rows(pool, ns, Some(m::FAIL), true, ISSUE_SAMPLE, 0).await? {
            issues.push(json!({
                "severity": "error",
                "message": format!("Repository {}/{} has exhausted all retry attempts", r.namespace, r.repository),
                "timestamp": now,
            }));
        }
    }
    let mut healthy = true;
    let ran = total - never_run;
    if ran > 0 {
        let share = failed as f64 / ran as f64;
        if share > CRITICAL_SHARE {
            healthy = false;
            issues.insert(
                0,
                json!({
                    "severity": "critical",
                    "message": format!(
                        "{:.1}% of repositories are failing (threshold: {:.1}%)",
                        share * 100.0,
                        CRITICAL_SHARE * 100.0
                    ),
                    "timestamp": now,
                }),
            );
        }
    }
    let mut body = json!({
        "healthy": healthy,
        "workers": {
            "active": 0,
            "configured": 0,
            "status": if healthy { "healthy" } else { "degraded" },
        },
        "repositories": {
            "total": total,
            "syncing": syncing,
            "completed": completed,
            "failed": failed,
            "never_run": never_run,
        },
        "tags_pending": 0,
        "last_check": now,
        "issues": issues,
    });
    if details && q.detailed {
        let limit = q.limit.clamp(1, 1000);
        let offset = q.offset.max(0);
        let mut rows = m::health_rows(pool, ns, None, false, limit + 1, offset).await?;
        let has_more = rows.len() as i64 > limit;
        rows.truncate(limit as usize);
        body["repositories"]["details"] = rows
            .into_iter()
            .map(|r| {
                json!({
                    "namespace": r.namespace,
                    "repository": r.repository,
                    "sync_status": r.sync_status,
                    "is_enabled": r.is_enabled,
                    "last_sync": null,
                    "retries_remaining": r.sync_retries_remaining,
                })
            })
            .collect();
        body["repositories"]["pagination"] =
            json!({ "limit": limit, "offset": offset, "has_more": has_more });
    }
    Ok(Health { healthy, body })
}
