//! Quota management: a namespace's quota and its Warning/Reject limits, the storage accounting
//! behind `quota_report`, enforcement on push, the backfill and `quayside quota verify`.
//!
//! Rules:
//! - Accounting (Quay's definition): a repository uses the sum of the distinct blobs its
//!   manifests reference, a namespace the sum of the distinct blobs of its repositories; a
//!   manifest counts from its push until garbage collection deletes it (manifest lists count
//!   through their children, which are manifests of the repository too). Sizes are kept
//!   incrementally, in the transaction of the push, collection or repository delete they
//!   account for ([`account_manifest`], [`release_manifests`], [`release_repository`]), so a
//!   crash never skews them and a report is one row read.
//! - With `FEATURE_QUOTA_MANAGEMENT` off, sizes are not tracked (as in Quay): a push or a
//!   collection only marks its repository for the backfill (one row, no namespace lock, no
//!   per-blob counting); a repository delete still takes what was counted out of its namespace.
//!   The API, reports and enforcement are off too.
//! - Content stored before accounting existed, or while the feature was off, is counted by the
//!   backfill ([`backfill_pass`], `QUOTA_BACKFILL`, run only with the feature on), one repository
//!   per transaction, recomputed from its manifests.
//! - Enforcement ([`check_push`]): with the feature on, a namespace at or over a Reject limit (or,
//!   without a quota of its own, `DEFAULT_SYSTEM_REJECT_QUOTA_BYTES`) refuses blob upload starts
//!   and manifest pushes with `DENIED` "Quota has been exceeded on namespace".
//! - A push that takes a namespace over a Warning or Reject limit is reported once through
//!   [`crossed`] (audit log and the `quota_warning`/`quota_error` notification events).
//! - A proxy-cache organization stores a manifest before its blobs arrive; those blobs count
//!   from their arrival ([`blob_arrived`]). With a quota, a new image there evicts the least
//!   recently pulled cached tags instead of being refused (`proxy_cache`).
//! - Only a superuser creates quotas and limits (or an organization administrator when
//!   `DEFAULT_SYSTEM_REJECT_QUOTA_BYTES` is 0), and only a superuser changes or deletes limits,
//!   as in Quay; an administrator changes and deletes the quota itself.

use std::collections::BTreeMap;

use quayside_client::{self as api, QuotaLimitType};
use serde_json::json;

use crate::db;
use crate::db::content::quota::{LimitRow, QuotaRow};
use crate::db::content::repositories::RepoRow;
use crate::db::tenancy::namespaces::NamespaceRow;
use crate::service::access::authz::{self, Action, Resource};
use crate::service::operations::audit::{Caller, Event};
use crate::service::operations::notifications;
use crate::service::{Ctx, Internal, RegistryError, TenancyError};

/// The message of a push refused by a Reject limit, as Quay words it.
pub const EXCEEDED: &str = "Quota has been exceeded on namespace";

/// The pattern Quay's API schema gives a human `limit`.
const LIMIT_PATTERN: &str = r"^(\\d+\\s?(B|KiB|MiB|GiB|TiB|PiB|EiB|ZiB|YiB|Ki|Mi|Gi|Ti|Pi|Ei|Zi|Yi|KB|MB|GB|TB|PB|EB|ZB|YB|K|M|G|T|P|E|Z|Y)?)$";

// ---- sizes as text ------------------------------------------------------------------------

/// Parses a human size as Quay's schema allows it: digits, an optional space, an optional unit
/// (`B`; `Ki`/`KiB`... powers of 1024; `K`/`KB`... powers of 1000).
pub fn parse_human(s: &str) -> Option<i64> {
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return None;
    }
    let n: i64 = s[..digits].parse().ok()?;
    let rest = &s[digits..];
    let unit = rest.strip_prefix(' ').unwrap_or(rest);
    if unit.is_empty() || unit == "B" {
        return Some(n);
    }
    let (prefix, binary) = match unit.strip_suffix("iB").or_else(|| unit.strip_suffix('i')) {
        Some(p) => (p, true),
        None => (unit.strip_suffix('B').unwrap_or(unit), false),
    };
    let power = "KMGTPEZY".find(prefix).filter(|_| prefix.len() == 1)? as u32 + 1;
    let base: i64 = if binary { 1024 } else { 1000 };
    n.checked_mul(base.checked_pow(power)?)
}

/// A size as Quay shows a quota's `limit`: the largest binary unit that keeps the value at
/// least 1, one decimal (`100.0 MiB`).
pub fn human(bytes: i64) -> String {
    const UNITS: [&str; 9] = [
        "Byte", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB",
    ];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value.abs() >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// Python's `repr` of a string, as Quay's validation messages quote values.
fn py_repr(s: &str) -> String {
    if s.contains('\'') && !s.contains('"') {
        format!("\"{s}\"")
    } else {
        format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
    }
}

/// Quay's (jsonschema's) message for a `limit` that does not match its pattern.
fn bad_limit_message(value: &str) -> String {
    let v = py_repr(value);
    format!(
        "{v} does not match '{LIMIT_PATTERN}'\n\nFailed validating 'pattern' in schema[1]['properties']['limit']:\n    \
         {{'description': 'Human readable storage capacity of the organization',\n     \
         'pattern': '{LIMIT_PATTERN}',\n     'type': 'string'}}\n\nOn instance['limit']:\n    {v}"
    )
}

/// The bytes a quota body asks for: `limit_bytes`, else the human `limit`.
fn requested_bytes(req: &api::QuotaRequest) -> Result<Option<i64>, TenancyError> {
    if let Some(n) = req.limit_bytes {
        if n <= 0 {
            return Err(TenancyError::Invalid(format!(
                "Invalid quota size limit value: '{n}'"
            )));
        }
        return Ok(Some(n));
    }
    match &req.limit {
        Some(text) => match parse_human(text) {
            Some(n) if n > 0 => Ok(Some(n)),
            Some(_) => Err(TenancyError::Invalid(format!(
                "Invalid quota size limit value: '{text}'"
            ))),
            None => Err(TenancyError::Invalid(bad_limit_message(text))),
        },
        None => Ok(None),
    }
}

// ---- who may do what ----------------------------------------------------------------------

/// Whose quota an API call addresses.
#[derive(Clone, Copy, Debug)]
pub enum Owner<'a> {
    /// `/organization/{org}/quota...`
    Org(&'a str),
    /// `/user/quota...`: the caller's own namespace.
    Me,
    /// `/superuser/users/{ns}/quota...`
    SuperUserUser(&'a str),
    /// `/superuser/organization/{ns}/quota...`
    SuperUserOrg(&'a str),
}

/// What the call does, for the permission check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Access {
    Read,
    Create,
    ChangeQuota,
    ChangeLimit,
}

async fn is_superuser(ctx: &Ctx, caller: &Caller) -> Result<bool, Internal> {
    authz::can(
        ctx,
        &caller.principal,
        Action::SuperUser,
        Resource::Registry,
    )
    .await
}

fn forbidden(caller: &Caller) -> TenancyError {
    TenancyError::Forbidden {
        anonymous: caller.principal.is_anonymous(),
    }
}

/// The namespace the call addresses, once the caller may do `access` there.
async fn resolve(
    ctx: &Ctx,
    caller: &Caller,
    owner: Owner<'_>,
    access: Access,
) -> Result<NamespaceRow, TenancyError> {
    if !ctx.config.quota.enabled {
        return Err(TenancyError::NotFound);
    }
    let superuser = is_superuser(ctx, caller).await?;
    let (name, kind) = match owner {
        Owner::Org(name) => (name.to_owned(), "org"),
        Owner::Me => {
            let user = caller.principal.user().ok_or_else(|| forbidden(caller))?;
            (user.name.clone(), "user")
        }
        Owner::SuperUserUser(name) | Owner::SuperUserOrg(name) => {
            if !superuser {
                return Err(forbidden(caller));
            }
            let kind = if matches!(owner, Owner::SuperUserUser(_)) {
                "user"
            } else {
                "org"
            };
            (name.to_owned(), kind)
        }
    };
    let ns = db::tenancy::namespaces::by_name(ctx.db.pool(), &name)
        .await?
        .filter(|n| n.kind == kind)
        .ok_or(TenancyError::NotFound)?;
    let allowed = match owner {
        Owner::SuperUserUser(_) | Owner::SuperUserOrg(_) => true,
        Owner::Me => access == Access::Read,
        Owner::Org(org) => {
            let p = &caller.principal;
            match access {
                Access::Read => {
                    superuser
                        || authz::can(ctx, p, Action::ViewNamespace, Resource::Namespace(org))
                            .await?
                }
                Access::Create => {
                    superuser
                        || (ctx.config.quota.default_reject_is_zero
                            && authz::can(ctx, p, Action::AdminNamespace, Resource::Namespace(org))
                                .await?)
                }
                Access::ChangeQuota => {
                    superuser
                        || authz::can(ctx, p, Action::AdminNamespace, Resource::Namespace(org))
                            .await?
                }
                Access::ChangeLimit => superuser,
            }
        }
    };
    if allowed {
        Ok(ns)
    } else {
        Err(forbidden(caller))
    }
}

fn audit(
    ctx: &Ctx,
    caller: &Caller,
    kind: &'static str,
    ns: &NamespaceRow,
    metadata: serde_json::Value,
) {
    ctx.audit.record(
        caller,
        Event::namespace(kind, &ns.name, metadata),
        ctx.now_ms(),
    );
}

// ---- views --------------------------------------------------------------------------------

fn limit_view(l: &LimitRow) -> api::QuotaLimit {
    api::QuotaLimit {
        id: l.id,
        kind: QuotaLimitType::parse(&l.kind).unwrap_or(QuotaLimitType::Warning),
        limit_percent: l.percent,
    }
}

async fn quota_view(ctx: &Ctx, q: &QuotaRow) -> Result<api::QuotaView, Internal> {
    let limits = db::content::quota::limits(ctx.db.pool(), q.id).await?;
    Ok(api::QuotaView {
        id: q.id,
        limit_bytes: q.limit_bytes,
        limit: human(q.limit_bytes),
        default_config: false,
        limits: limits.iter().map(limit_view).collect(),
        default_config_exists: ctx.config.quota.default_reject_bytes.is_some(),
    })
}

/// The namespace's quota with the id the path names, or `NotFound`.
async fn quota_by_id(ctx: &Ctx, ns: &NamespaceRow, id: &str) -> Result<QuotaRow, TenancyError> {
    let id: i64 = id.parse().map_err(|_| TenancyError::NotFound)?;
    db::content::quota::quota_of(ctx.db.pool(), ns.id)
        .await?
        .filter(|q| q.id == id)
        .ok_or(TenancyError::NotFound)
}

async fn limit_by_id(ctx: &Ctx, q: &QuotaRow, id: &str) -> Result<LimitRow, TenancyError> {
    let id: i64 = id.parse().map_err(|_| TenancyError::NotFound)?;
    db::content::quota::limits(ctx.db.pool(), q.id)
        .await?
        .into_iter()
        .find(|l| l.id == id)
        .ok_or(TenancyError::NotFound)
}

// ---- the API ------------------------------------------------------------------------------

/// `GET .../quota`.
pub async fn list(
    ctx: &Ctx,
    caller: &Caller,
    owner: Owner<'_>,
) -> Result<Vec<api::QuotaView>, TenancyError> {
    let ns = resolve(ctx, caller, owner, Access::Read).await?;
    let mut out = Vec::new();
    if let Some(q) = db::content::quota::quota_of(ctx.db.pool(), ns.id).await? {
        out.push(quota_view(ctx, &q).await?);
    }
    Ok(out)
}

/// `GET .../quota/{id}`.
pub async fn get(
    ctx: &Ctx,
    caller: &Caller,
    owner: Owner<'_>,
    id: &str,
) -> Result<api::QuotaView, TenancyError> {
    let ns = resolve(ctx, caller, owner, Access::Read).await?;
    let q = quota_by_id(ctx, &ns, id).await?;
    Ok(quota_view(ctx, &q).await?)
}

/// `POST .../quota`: one quota per namespace.
pub async fn create(
    ctx: &Ctx,
    caller: &Caller,
    owner: Owner<'_>,
    req: &api::QuotaRequest,
) -> Result<(), TenancyError> {
    let ns = resolve(ctx, caller, owner, Access::Create).await?;
    let bytes = requested_bytes(req)?
        .ok_or_else(|| TenancyError::Invalid("'limit_bytes' is a required property".to_owned()))?;
    let duplicate = || {
        let what = if ns.kind == "org" {
            "Organization"
        } else {
            "User"
        };
        TenancyError::Invalid(format!("{what} quota for '{}' already exists", ns.name))
    };
    match db::content::quota::insert(ctx.db.pool(), ns.id, bytes, ctx.now_ms()).await {
        Ok(_) => {}
        Err(e) if e.is_unique_violation() => return Err(duplicate()),
        Err(e) => return Err(e.into()),
    }
    audit(
        ctx,
        caller,
        "org_create_quota",
        &ns,
        json!({ "namespace": ns.name, "limit_bytes": bytes }),
    );
    Ok(())
}

/// `PUT .../quota/{id}`.
pub async fn update(
    ctx: &Ctx,
    caller: &Caller,
    owner: Owner<'_>,
    id: &str,
    req: &api::QuotaRequest,
) -> Result<api::QuotaView, TenancyError> {
    let ns = resolve(ctx, caller, owner, Access::ChangeQuota).await?;
    let mut q = quota_by_id(ctx, &ns, id).await?;
    if let Some(bytes) = requested_bytes(req)? {
        db::content::quota::set_limit_bytes(ctx.db.pool(), q.id, bytes).await?;
        q.limit_bytes = bytes;
        audit(
            ctx,
            caller,
            "org_change_quota",
            &ns,
            json!({ "namespace": ns.name, "limit_bytes": bytes }),
        );
    }
    Ok(quota_view(ctx, &q).await?)
}

/// `DELETE .../quota/{id}` (its limits go with it).
pub async fn delete(
    ctx: &Ctx,
    caller: &Caller,
    owner: Owner<'_>,
    id: &str,
) -> Result<(), TenancyError> {
    let ns = resolve(ctx, caller, owner, Access::ChangeQuota).await?;
    let q = quota_by_id(ctx, &ns, id).await?;
    if !db::content::quota::delete(ctx.db.pool(), q.id).await? {
        return Err(TenancyError::NotFound);
    }
    audit(
        ctx,
        caller,
        "org_delete_quota",
        &ns,
        json!({ "namespace": ns.name }),
    );
    Ok(())
}

/// `GET .../quota/{id}/limit`.
pub async fn limits(
    ctx: &Ctx,
    caller: &Caller,
    owner: Owner<'_>,
    id: &str,
) -> Result<Vec<api::QuotaLimit>, TenancyError> {
    let ns = resolve(ctx, caller, owner, Access::Read).await?;
    let q = quota_by_id(ctx, &ns, id).await?;
    let rows = db::content::quota::limits(ctx.db.pool(), q.id).await?;
    Ok(rows.iter().map(limit_view).collect())
}

/// `GET .../quota/{id}/limit/{limit_id}`.
pub async fn limit(
    ctx: &Ctx,
    caller: &Caller,
    owner: Owner<'_>,
    id: &str,
    limit_id: &str,
) -> Result<api::QuotaLimit, TenancyError> {
    let ns = resolve(ctx, caller, owner, Access::Read).await?;
    let q = quota_by_id(ctx, &ns, id).await?;
    Ok(limit_view(&limit_by_id(ctx, &q, limit_id).await?))
}

fn limit_type(s: &str) -> Result<QuotaLimitType, TenancyError> {
    QuotaLimitType::parse(s).ok_or_else(|| {
        TenancyError::Invalid(format!(
            "Invalid quota limit type {}: must be 'Warning' or 'Reject'",
            py_repr(s)
        ))
    })
}

fn threshold(percent: i64) -> Result<i64, TenancyError> {
    if (1..=100).contains(&percent) {
        Ok(percent)
    } else {
        Err(TenancyError::Invalid(format!(
            "Invalid quota limit threshold {percent}: must be between 1 and 100 percent"
        )))
    }
}

/// Refuses a second limit of the same kind and percent, and a second Reject limit.
async fn check_unique(
    ctx: &Ctx,
    q: &QuotaRow,
    kind: QuotaLimitType,
    percent: i64,
    except: Option<i64>,
) -> Result<(), TenancyError> {
    let existing = db::content::quota::limits(ctx.db.pool(), q.id).await?;
    let others = existing.iter().filter(|l| Some(l.id) != except);
    for l in others {
        if l.kind == kind.as_str() && l.percent == percent {
            return Err(TenancyError::Invalid(
                "Quota limit already exists".to_owned(),
            ));
        }
        if kind == QuotaLimitType::Reject && l.kind == "Reject" {
            return Err(TenancyError::Invalid(
                "Only one quota limit of type 'Reject' allowed.".to_owned(),
            ));
        }
    }
    Ok(())
}

/// `POST .../quota/{id}/limit`.
pub async fn create_limit(
    ctx: &Ctx,
    caller: &Caller,
    owner: Owner<'_>,
    id: &str,
    req: &api::CreateQuotaLimitRequest,
) -> Result<(), TenancyError> {
    let ns = resolve(ctx, caller, owner, Access::Create).await?;
    let kind = limit_type(&req.kind)?;
    let percent = threshold(req.threshold_percent)?;
    let q = quota_by_id(ctx, &ns, id).await?;
    check_unique(ctx, &q, kind, percent, None).await?;
    match db::content::quota::insert_limit(ctx.db.pool(), q.id, kind.as_str(), percent).await {
        Ok(_) => {}
        Err(e) if e.is_unique_violation() => {
            return Err(TenancyError::Invalid(
                "Quota limit already exists".to_owned(),
            ));
        }
        Err(e) => return Err(e.into()),
    }
    audit(
        ctx,
        caller,
        "org_create_quota_limit",
        &ns,
        json!({ "namespace": ns.name, "type": kind.as_str(), "threshold_percent": percent }),
    );
    Ok(())
}

/// `PUT .../quota/{id}/limit/{limit_id}`: answers the whole quota, as Quay does.
pub async fn update_limit(
    ctx: &Ctx,
    caller: &Caller,
    owner: Owner<'_>,
    id: &str,
    limit_id: &str,
    req: &api::UpdateQuotaLimitRequest,
) -> Result<api::QuotaView, TenancyError> {
    let ns = resolve(ctx, caller, owner, Access::ChangeLimit).await?;
    let q = quota_by_id(ctx, &ns, id).await?;
    let l = limit_by_id(ctx, &q, limit_id).await?;
    let kind = match &req.kind {
        Some(k) => limit_type(k)?,
        None => limit_type(&l.kind)?,
    };
    let percent = threshold(req.threshold_percent.unwrap_or(l.percent))?;
    check_unique(ctx, &q, kind, percent, Some(l.id)).await?;
    match db::content::quota::update_limit(ctx.db.pool(), l.id, kind.as_str(), percent).await {
        Ok(_) => {}
        Err(e) if e.is_unique_violation() => {
            return Err(TenancyError::Invalid(
                "Quota limit already exists".to_owned(),
            ));
        }
        Err(e) => return Err(e.into()),
    }
    audit(
        ctx,
        caller,
        "org_change_quota_limit",
        &ns,
        json!({ "namespace": ns.name, "type": kind.as_str(), "threshold_percent": percent }),
    );
    Ok(quota_view(ctx, &q).await?)
}

/// `DELETE .../quota/{id}/limit/{limit_id}`.
pub async fn delete_limit(
    ctx: &Ctx,
    caller: &Caller,
    owner: Owner<'_>,
    id: &str,
    limit_id: &str,
) -> Result<(), TenancyError> {
    let ns = resolve(ctx, caller, owner, Access::ChangeLimit).await?;
    let q = quota_by_id(ctx, &ns, id).await?;
    let l = limit_by_id(ctx, &q, limit_id).await?;
    db::content::quota::delete_limit(ctx.db.pool(), l.id).await?;
    audit(
        ctx,
        caller,
        "org_delete_quota_limit",
        &ns,
        json!({ "namespace": ns.name, "limit_id": l.id }),
    );
    Ok(())
}

// ---- reports ------------------------------------------------------------------------------

/// `quotas` of an organization or user view.
pub async fn summaries(ctx: &Ctx, namespace_id: i64) -> Result<Vec<api::QuotaSummary>, Internal> {
    if !ctx.config.quota.enabled {
        return Ok(Vec::new());
    }
    let rows = db::content::quota::quotas_of(ctx.db.pool(), &[namespace_id]).await?;
    Ok(rows
        .into_iter()
        .map(|(q, limits)| api::QuotaSummary {
            id: q.id,
            limit_bytes: q.limit_bytes,
            limits: limits.iter().map(limit_view).collect(),
        })
        .collect())
}

/// `quota_report` of a namespace view: its size, its quota and the backfill state (`waiting`
/// until the namespace has been accounted and none of its repositories waits for the backfill).
pub async fn namespace_report(ctx: &Ctx, namespace_id: i64) -> Result<api::QuotaReport, Internal> {
    if !ctx.config.quota.enabled {
        return Ok(crate::service::views::empty_quota_report(true));
    }
    let pool = ctx.db.pool();
    let size = db::content::quota::namespace_size(pool, namespace_id).await?;
    let quota = db::content::quota::quota_of(pool, namespace_id).await?;
    let complete = db::content::quota::namespace_accounted(pool, namespace_id).await?
        && !db::content::quota::backfill_waiting(pool, namespace_id).await?;
    let status = if complete { "complete" } else { "waiting" };
    Ok(api::QuotaReport {
        quota_bytes: size,
        configured_quota: quota.map(|q| q.limit_bytes),
        running_backfill: Some(status.to_owned()),
        backfill_status: Some(status.to_owned()),
    })
}

/// `quota_report` of repositories of one namespace (repository list), by repository id.
pub async fn repository_reports(
    ctx: &Ctx,
    namespace_id: i64,
    repository_ids: &[i64],
) -> Result<BTreeMap<i64, api::QuotaReport>, Internal> {
    let pool = ctx.db.pool();
    let configured = db::content::quota::quota_of(pool, namespace_id)
        .await?
        .map(|q| q.limit_bytes);
    let sizes = db::content::quota::repository_sizes(pool, repository_ids).await?;
    Ok(repository_ids
        .iter()
        .map(|id| {
            let report = api::QuotaReport {
                quota_bytes: sizes.get(id).copied().unwrap_or(0),
                configured_quota: configured,
                running_backfill: None,
                backfill_status: None,
            };
            (*id, report)
        })
        .collect())
}

/// `quota_report` of one repository (repository list): its size and its namespace's quota.
/// With the feature off, zero and no quota.
pub async fn repository_report(
    ctx: &Ctx,
    repository_id: i64,
) -> Result<api::QuotaReport, Internal> {
    let (size, configured) = if ctx.config.quota.enabled {
        db::content::quota::repository_report(ctx.db.pool(), repository_id).await?
    } else {
        (0, None)
    };
    Ok(api::QuotaReport {
        quota_bytes: size,
        configured_quota: configured,
        running_backfill: None,
        backfill_status: None,
    })
}

/// Where the namespace's limits are, in bytes: (lowest Warning, lowest Reject). Without a quota
/// of its own, `DEFAULT_SYSTEM_REJECT_QUOTA_BYTES` is its Reject limit.
async fn thresholds(
    ctx: &Ctx,
    conn: &mut sqlx::AnyConnection,
    namespace_id: i64,
) -> Result<(Option<i64>, Option<i64>, Option<i64>), Internal> {
    let Some(q) = db::content::quota::quota_of(&mut *conn, namespace_id).await? else {
        return Ok((None, ctx.config.quota.default_reject_bytes, None));
    };
    let limits = db::content::quota::limits(&mut *conn, q.id).await?;
    let at = |kind: &str| {
        limits
            .iter()
            .filter(|l| l.kind == kind)
            .map(|l| (q.limit_bytes as i128 * l.percent as i128 / 100) as i64)
            .min()
    };
    Ok((at("Warning"), at("Reject"), Some(q.limit_bytes)))
}

/// How many bytes the namespace uses beyond its quota (`limit_bytes`, or the system default
/// reject quota without one); `None` when within it or without either. What a proxy-cache
/// organization evicts least-recently-used tags for.
pub async fn bytes_over_limit(ctx: &Ctx, namespace_id: i64) -> Result<Option<i64>, Internal> {
    let pool = ctx.db.pool();
    let limit = match db::content::quota::quota_of(pool, namespace_id).await? {
        Some(q) => Some(q.limit_bytes),
        None => ctx.config.quota.default_reject_bytes,
    };
    let Some(limit) = limit else { return Ok(None) };
    let size = db::content::quota::namespace_size(pool, namespace_id).await?;
    Ok((size > limit).then_some(size - limit))
}

// ---- enforcement and crossings ------------------------------------------------------------

/// Refuses a push into a namespace at or over its Reject limit (feature on).
pub async fn check_push(ctx: &Ctx, namespace_id: i64) -> Result<(), RegistryError> {
    if !ctx.config.quota.enabled {
        return Ok(());
    }
    let mut conn = ctx.db.pool().acquire().await.map_err(db::DbError::from)?;
    let (_, reject, _) = thresholds(ctx, &mut conn, namespace_id).await?;
    let Some(reject) = reject else { return Ok(()) };
    let size = db::content::quota::namespace_size(&mut *conn, namespace_id).await?;
    if size >= reject {
        Err(RegistryError::QuotaExceeded)
    } else {
        Ok(())
    }
}

/// A namespace going over one of its limits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Crossing {
    pub namespace: String,
    pub repository: String,
    pub kind: QuotaLimitType,
    pub size_bytes: i64,
    /// The namespace's quota (`None` for the system default reject quota).
    pub quota_bytes: Option<i64>,
}

fn state_of(size: i64, warning: Option<i64>, reject: Option<i64>) -> &'static str {
    if reject.is_some_and(|r| size >= r) {
        "reject"
    } else if warning.is_some_and(|w| size >= w) {
        "warning"
    } else {
        "ok"
    }
}

/// Moves the namespace's recorded state to where `size` puts it; returns the limit kind newly
/// crossed upwards, if any.
async fn restate(
    ctx: &Ctx,
    tx: &mut db::Tx,
    namespace_id: i64,
    before: &str,
    size: i64,
) -> Result<Option<(QuotaLimitType, Option<i64>)>, Internal> {
    let (warning, reject, quota) = thresholds(ctx, tx, namespace_id).await?;
    let after = state_of(size, warning, reject);
    if after == before {
        return Ok(None);
    }
    db::content::quota::set_namespace_state(tx, namespace_id, after).await?;
    let rank = |s: &str| match s {
        "reject" => 2,
        "warning" => 1,
        _ => 0,
    };
    Ok((rank(after) > rank(before)).then(|| {
        let kind = if after == "reject" {
            QuotaLimitType::Reject
        } else {
            QuotaLimitType::Warning
        };
        (kind, quota)
    }))
}

/// Accounts a manifest just stored in `repo` (not one revived by a second push of the same
/// digest: that one is counted already), in the push's transaction and under the repository
/// lock. Returns the crossing to report through [`crossed`] once the transaction commits.
pub async fn account_manifest(
    ctx: &Ctx,
    tx: &mut db::Tx,
    repo: &RepoRow,
    manifest_id: i64,
) -> Result<Option<Crossing>, Internal> {
    if !ctx.config.quota.enabled {
        db::content::quota::mark_for_backfill(tx, repo.id).await?;
        return Ok(None);
    }
    let ns = db::content::quota::lock_namespace(tx, repo.namespace_id).await?;
    let added =
        db::content::quota::add_manifest(tx, repo.id, repo.namespace_id, manifest_id).await?;
    let size = ns.size_bytes + added;
    let crossing = restate(ctx, tx, repo.namespace_id, &ns.state, size).await?;
    Ok(crossing.map(|(kind, quota_bytes)| Crossing {
        namespace: repo.namespace.clone(),
        repository: repo.name.clone(),
        kind,
        size_bytes: size,
        quota_bytes,
    }))
}

/// A blob's bytes arrived (a proxy cache fetched them): namespaces that accounted it at 0,
/// because a manifest referencing it was stored first, now count its size.
pub async fn blob_arrived(ctx: &Ctx, digest: &str, size: i64) -> Result<(), Internal> {
    if !ctx.config.quota.enabled {
        // The manifests were marked for the backfill, which counts the blob as it is then.
        return Ok(());
    }
    let namespaces = db::content::quota::awaiting_size(ctx.db.pool(), digest).await?;
    if namespaces.is_empty() {
        return Ok(());
    }
    let mut tx = ctx.db.begin().await?;
    for namespace_id in namespaces {
        let ns = db::content::quota::lock_namespace(&mut tx, namespace_id).await?;
        let added = db::content::quota::fill_size(&mut tx, namespace_id, digest, size).await?;
        if added != 0 {
            restate(ctx, &mut tx, namespace_id, &ns.state, ns.size_bytes + added).await?;
        }
    }
    tx.commit().await?;
    Ok(())
}

/// Takes manifests that garbage collection is about to delete out of the accounting, in its
/// transaction and under the repository lock.
pub async fn release_manifests(
    ctx: &Ctx,
    tx: &mut db::Tx,
    repository_id: i64,
    namespace_id: i64,
    manifest_ids: &[i64],
) -> Result<(), Internal> {
    if manifest_ids.is_empty() {
        return Ok(());
    }
    if !ctx.config.quota.enabled {
        db::content::quota::mark_for_backfill(tx, repository_id).await?;
        return Ok(());
    }
    let ns = db::content::quota::lock_namespace(tx, namespace_id).await?;
    let removed =
        db::content::quota::release_manifests(tx, repository_id, namespace_id, manifest_ids)
            .await?;
    restate(ctx, tx, namespace_id, &ns.state, ns.size_bytes - removed).await?;
    Ok(())
}

/// Takes a repository about to be deleted out of its namespace's accounting, in the delete's
/// transaction and under the repository lock.
pub async fn release_repository(
    ctx: &Ctx,
    tx: &mut db::Tx,
    repo: &RepoRow,
) -> Result<(), Internal> {
    let ns = db::content::quota::lock_namespace(tx, repo.namespace_id).await?;
    let removed = db::content::quota::release_repository(tx, repo.id, repo.namespace_id).await?;
    restate(
        ctx,
        tx,
        repo.namespace_id,
        &ns.state,
        ns.size_bytes - removed,
    )
    .await?;
    Ok(())
}

/// A push took a namespace over a Warning or Reject limit: writes the audit-log entry
/// (`quota_warning`, `quota_error`: Quay's event names) and raises the notification event of
/// the same name on the repository pushed to.
pub async fn crossed(ctx: &Ctx, caller: &Caller, crossing: &Crossing) {
    let (kind, event) = match crossing.kind {
        QuotaLimitType::Warning => ("quota_warning", notifications::events::Event::QuotaWarning),
        QuotaLimitType::Reject => ("quota_error", notifications::events::Event::QuotaError),
    };
    ctx.audit.record(
        caller,
        Event::repo(
            kind,
            &crossing.namespace,
            &crossing.repository,
            json!({
                "namespace": crossing.namespace,
                "repo": crossing.repository,
                "quota_bytes": crossing.quota_bytes,
                "used_bytes": crossing.size_bytes,
            }),
        ),
        ctx.now_ms(),
    );
    notifications::raise(
        ctx,
        &crossing.namespace,
        &crossing.repository,
        event,
        json!({ "quota_bytes": crossing.quota_bytes, "used_bytes": crossing.size_bytes }),
    )
    .await;
}

// ---- backfill and verify ------------------------------------------------------------------

/// Recomputes one repository from its manifests and its namespace's counts, in one
/// transaction under the repository lock. Returns whether anything was off.
async fn recompute(
    ctx: &Ctx,
    repository_id: i64,
    namespace_id: i64,
    backfill: bool,
) -> Result<bool, Internal> {
    let mut tx = ctx.db.begin().await?;
    if !db::content::repositories::lock(&mut tx, repository_id).await? {
        return Ok(false);
    }
    let ns = db::content::quota::lock_namespace(&mut tx, namespace_id).await?;
    if backfill && !db::content::quota::backfill_done(&mut tx, repository_id).await? {
        return Ok(false);
    }
    let changed =
        db::content::quota::recompute_repository(&mut tx, repository_id, namespace_id).await?;
    let size = db::content::quota::namespace_size(&mut *tx, namespace_id).await?;
    restate(ctx, &mut tx, namespace_id, &ns.state, size).await?;
    tx.commit().await?;
    Ok(changed)
}

/// One pass of the backfill worker: counts repositories whose content predates accounting.
/// Returns how many it did.
pub async fn backfill_pass(ctx: &Ctx) -> Result<usize, Internal> {
    let mut done = 0;
    loop {
        let batch = db::content::quota::backfill_pending(ctx.db.pool(), 100).await?;
        if batch.is_empty() {
            return Ok(done);
        }
        for (repository_id, namespace_id) in batch {
            recompute(ctx, repository_id, namespace_id, true).await?;
            done += 1;
        }
    }
}

/// What `quayside quota verify` found (and, with `--fix`, repaired).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VerifyReport {
    pub repositories: usize,
    pub namespaces: usize,
    /// `namespace/repository` whose accounting differed from its manifests.
    pub repositories_off: Vec<String>,
    /// Namespaces whose counts or size differed from their repositories'.
    pub namespaces_off: Vec<String>,
}

impl VerifyReport {
    pub fn is_clean(&self) -> bool {
        self.repositories_off.is_empty() && self.namespaces_off.is_empty()
    }
}

/// Recomputes every size from the manifests and blobs and compares it with the accounting;
/// with `fix`, makes the accounting what it should be. Repositories waiting for the backfill
/// are skipped (the backfill will count them) unless `fix` is set, which backfills them.
pub async fn verify(ctx: &Ctx, fix: bool) -> Result<VerifyReport, Internal> {
    let pool = ctx.db.pool();
    let mut report = VerifyReport::default();
    let mut after = 0;
    loop {
        let repos = db::content::quota::repositories_after(pool, after, 200).await?;
        let Some(last) = repos.last() else { break };
        after = last.0;
        for (repository_id, namespace_id) in repos {
            report.repositories += 1;
            let waiting = db::content::quota::backfill_pending_for(pool, repository_id).await?;
            if waiting && !fix {
                continue;
            }
            let off = if fix {
                recompute(ctx, repository_id, namespace_id, waiting).await? && !waiting
            } else {
                let actual = db::content::quota::actual_repository(pool, repository_id).await?;
                let recorded = db::content::quota::recorded_repository(pool, repository_id).await?;
                let total: i64 = actual.values().map(|(s, _)| s).sum();
                actual != recorded
                    || total != db::content::quota::repository_size(pool, repository_id).await?
            };
            if off {
                let name = repository_name(ctx, repository_id).await?;
                report.repositories_off.push(name);
            }
        }
    }
    let mut after = 0;
    loop {
        let namespaces = db::content::quota::namespaces_after(pool, after, 200).await?;
        let Some(last) = namespaces.last() else { break };
        after = last.0;
        for (namespace_id, name) in namespaces {
            report.namespaces += 1;
            let off = if fix {
                let mut tx = ctx.db.begin().await?;
                let ns = db::content::quota::lock_namespace(&mut tx, namespace_id).await?;
                let changed =
                    db::content::quota::recompute_namespace(&mut tx, namespace_id).await?;
                let size = db::content::quota::namespace_size(&mut *tx, namespace_id).await?;
                restate(ctx, &mut tx, namespace_id, &ns.state, size).await?;
                tx.commit().await?;
                changed
            } else {
                let implied = db::content::quota::implied_namespace(pool, namespace_id).await?;
                let recorded = db::content::quota::recorded_namespace(pool, namespace_id).await?;
                let total: i64 = implied.values().map(|(s, _)| s).sum();
                implied != recorded
                    || total != db::content::quota::namespace_size(pool, namespace_id).await?
            };
            if off {
                report.namespaces_off.push(name);
            }
        }
    }
    Ok(report)
}

async fn repository_name(ctx: &Ctx, repository_id: i64) -> Result<String, Internal> {
    Ok(
        db::content::quota::repository_full_name(ctx.db.pool(), repository_id)
            .await?
            .unwrap_or_else(|| format!("#{repository_id}")),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_sizes_as_quay_writes_and_reads_them() {
        assert_eq!(human(104_857_600), "100.0 MiB");
        assert_eq!(human(314_572_800), "300.0 MiB");
        assert_eq!(human(10_737_418_240), "10.0 GiB");
        assert_eq!(human(500), "500.0 Byte");
        assert_eq!(parse_human("10 Gi"), Some(10_737_418_240));
        assert_eq!(parse_human("100MiB"), Some(104_857_600));
        assert_eq!(parse_human("1 G"), Some(1_000_000_000));
        assert_eq!(parse_human("2KB"), Some(2000));
        assert_eq!(parse_human("7"), Some(7));
        assert_eq!(parse_human("12 B"), Some(12));
        for bad in [
            "lots",
            "",
            "1.5 Gi",
            "10  Gi",
            "Gi",
            "10 Qi",
            "10 GiBB",
            "99999999999 Yi",
        ] {
            assert_eq!(parse_human(bad), None, "{bad}");
        }
    }

    #[test]
    fn bad_unit_message_is_quays() {
        let recorded: serde_json::Value = serde_json::from_str(include_str!(
            "../../../tests/it/fixtures/quay/more-017-quota-update-bad-unit.json"
        ))
        .unwrap();
        assert_eq!(
            bad_limit_message("lots"),
            recorded["body"]["error_message"].as_str().unwrap()
        );
    }

    #[test]
    fn states_follow_the_lowest_limits() {
        assert_eq!(state_of(0, Some(10), Some(20)), "ok");
        assert_eq!(state_of(10, Some(10), Some(20)), "warning");
        assert_eq!(state_of(25, Some(10), Some(20)), "reject");
        assert_eq!(state_of(25, None, None), "ok");
    }
}
