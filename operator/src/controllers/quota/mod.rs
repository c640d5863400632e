//! The Quota controller: a namespace's storage quota and its limits, through the registry's
//! quota API (the shared machinery in [`crate::content`] does the rest).
//!
//! Rules:
//! - The namespace must exist: an organization (its quota is set through
//!   `/organization/{org}/quota...`, limits included) or a user (through the superuser
//!   endpoints `/superuser/users/{user}/quota...`; the registry API has no calls for the
//!   limits of a user's quota, so a user Quota with `limits` is an invalid spec). A namespace
//!   that does not exist yet is reported and looked at again when an Organization naming it
//!   changes.
//! - Every step reads first and writes only what differs: the quota's size, then its limits
//!   (a limit of the same type whose threshold changed is updated in place; extra limits are
//!   removed before missing ones are added, so the registry's one-Reject rule always holds).
//! - The usage is read on every reconcile and reported in the status; the status is written
//!   only when it changed.

pub mod quantity;

use std::collections::BTreeSet;
use std::sync::Arc;

use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use quayside_client as api;
use serde_json::{Map, Value, json};

use crate::content::error::{ApiResultExt, found};
use crate::content::{self, Connection, ContentError, ContentKind, Synced};
use crate::crd::{
    ContentStatus, DeletionPolicy, Organization, Quota, QuotaLimitKind, QuotaLimitSpec, RegistryRef,
};
use crate::runtime::context::Context;

impl ContentKind for Quota {
    const NOUN: &'static str = "quota of namespace";

    fn registry_ref(&self) -> &RegistryRef {
        &self.spec.registry_ref
    }
    fn deletion_policy(&self) -> DeletionPolicy {
        self.spec.deletion_policy
    }
    fn resync_interval(&self) -> Option<&str> {
        self.spec.resync_interval.as_deref()
    }
    fn object_name(&self) -> String {
        self.spec.namespace.clone()
    }
    fn content_status(&self) -> Option<&ContentStatus> {
        self.status.as_ref().map(|s| &s.content)
    }
    fn status_json(&self) -> Value {
        serde_json::to_value(&self.status).unwrap_or(Value::Null)
    }
    fn validate(&self) -> Result<(), ContentError> {
        validate(self).map(|_| ())
    }
    async fn sync(&self, _ctx: &Context, conn: &Connection) -> Result<Synced, ContentError> {
        sync(self, conn).await
    }
    async fn delete(&self, _ctx: &Context, conn: &Connection) -> Result<(), ContentError> {
        let ns = self.object_name();
        let Some(target) = namespace(conn, &ns).await? else {
            return Ok(());
        };
        let quotas = match target.quotas(conn, &ns).await {
            Ok(q) => q,
            // A registry that serves no quota API holds no quota to delete.
            Err(ContentError::InvalidSpec(_)) => Vec::new(),
            Err(e) => return Err(e),
        };
        for q in quotas {
            let r = match &target {
                Target::Organization(_) => conn.api.delete_organization_quota(&ns, q.id).await,
                Target::User(_) => {
                    conn.api
                        .superuser_delete_quota(api::QuotaNamespace::User(&ns), q.id)
                        .await
                }
            };
            match r {
                Err(e) if e.status().map(|s| s.as_u16()) != Some(404) => {
                    return Err(ContentError::from_api(
                        &format!("delete the quota of {ns}"),
                        e,
                    ));
                }
                _ => {}
            }
        }
        Ok(())
    }
}

fn invalid(message: String) -> ContentError {
    ContentError::InvalidSpec(message)
}

fn limit_type(k: QuotaLimitKind) -> api::QuotaLimitType {
    match k {
        QuotaLimitKind::Warning => api::QuotaLimitType::Warning,
        QuotaLimitKind::Reject => api::QuotaLimitType::Reject,
    }
}

/// The spec's own rules, checked before any call; answers the quota in bytes.
pub fn validate(q: &Quota) -> Result<i64, ContentError> {
    let ns = &q.spec.namespace;
    if !api::is_valid_namespace_name(ns) {
        return Err(invalid(format!(
            "namespace {ns:?} is not a valid organization or user name"
        )));
    }
    let bytes = quantity::bytes(&q.spec.limit).map_err(|e| invalid(format!("limit: {e}")))?;
    let mut seen = BTreeSet::new();
    for l in &q.spec.limits {
        if !(1..=100).contains(&l.threshold_percent) {
            return Err(invalid(format!(
                "limits: thresholdPercent {} of the {:?} limit is not between 1 and 100",
                l.threshold_percent, l.type_
            )));
        }
        if !seen.insert((l.type_, l.threshold_percent)) {
            return Err(invalid(format!(
                "limits: the {:?} limit at {}% is listed twice",
                l.type_, l.threshold_percent
            )));
        }
    }
    let rejects = q
        .spec
        .limits
        .iter()
        .filter(|l| l.type_ == QuotaLimitKind::Reject)
        .count();
    if rejects > 1 {
        return Err(invalid(
            "limits: a quota has at most one Reject limit".into(),
        ));
    }
    if let Some(r) = &q.spec.resync_interval {
        content::duration::parse(r).map_err(|e| invalid(format!("resyncInterval: {e}")))?;
    }
    Ok(bytes)
}

/// The namespace a Quota names, with its usage.
enum Target {
    Organization(Option<api::QuotaReport>),
    User(api::QuotaReport),
}

impl Target {
    fn kind(&self) -> &'static str {
        match self {
            Target::Organization(_) => "organization",
            Target::User(_) => "user",
        }
    }

    fn used(&self) -> i64 {
        match self {
            Target::Organization(r) => r.as_ref().map_or(0, |r| r.quota_bytes),
            Target::User(r) => r.quota_bytes,
        }
    }

    /// The namespace's quota (at most one).
    async fn quotas(
        &self,
        conn: &Connection,
        ns: &str,
    ) -> Result<Vec<api::QuotaView>, ContentError> {
        let what = format!("read the quota of {ns}");
        let r = match self {
            Target::Organization(_) => conn.api.organization_quotas(ns).await,
            Target::User(_) => {
                conn.api
                    .superuser_quotas(api::QuotaNamespace::User(ns))
                    .await
            }
        };
        match found(r, &what)? {
            Some(q) => Ok(q),
            // The namespace exists (it was just read): the registry serves no quota API.
            None => Err(invalid(format!(
                "{what}: the registry does not manage quotas (FEATURE_QUOTA_MANAGEMENT is off)"
            ))),
        }
    }

    async fn create(&self, conn: &Connection, ns: &str, bytes: i64) -> Result<(), ContentError> {
        let request = api::QuotaRequest::bytes(bytes);
        match self {
            Target::Organization(_) => conn.api.create_organization_quota(ns, &request).await,
            Target::User(_) => {
                conn.api
                    .superuser_create_quota(api::QuotaNamespace::User(ns), &request)
                    .await
            }
        }
        .ctx(&format!("create the quota of {ns}"))
    }

    async fn resize(
        &self,
        conn: &Connection,
        ns: &str,
        id: i64,
        bytes: i64,
    ) -> Result<(), ContentError> {
        let request = api::QuotaRequest::bytes(bytes);
        match self {
            Target::Organization(_) => conn.api.update_organization_quota(ns, id, &request).await,
            Target::User(_) => {
                conn.api
                    .superuser_update_quota(api::QuotaNamespace::User(ns), id, &request)
                    .await
            }
        }
        .map(|_| ())
        .ctx(&format!("change the quota of {ns}"))
    }
}

/// Whether `ns` is an organization or a user of the registry (`None`: neither).
async fn namespace(conn: &Connection, ns: &str) -> Result<Option<Target>, ContentError> {
    let c = &conn.api;
    if let Some(org) = found(c.organization(ns).await, &format!("read organization {ns}"))? {
        return Ok(Some(Target::Organization(org.quota_report)));
    }
    let users = c.list_users().await.ctx("list the users")?;
    Ok(users
        .users
        .into_iter()
        .find(|u| u.username == ns)
        .map(|u| Target::User(u.quota_report)))
}

/// What to do to a quota's limits, in this order.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct LimitPlan {
    /// Limits to remove (ids).
    pub deletions: Vec<i64>,
    /// Limits whose threshold moves: `(id, new percent)`.
    pub updates: Vec<(i64, i64)>,
    /// Limits to add.
    pub creations: Vec<(api::QuotaLimitType, i64)>,
}

/// The fewest calls that make `current` the `wanted` set.
pub fn plan_limits(current: &[api::QuotaLimit], wanted: &[QuotaLimitSpec]) -> LimitPlan {
    let want: Vec<(api::QuotaLimitType, i64)> = wanted
        .iter()
        .map(|l| (limit_type(l.type_), l.threshold_percent))
        .collect();
    let mut missing: Vec<(api::QuotaLimitType, i64)> = want
        .iter()
        .filter(|w| !current.iter().any(|c| (c.kind, c.limit_percent) == **w))
        .copied()
        .collect();
    let extra: Vec<&api::QuotaLimit> = current
        .iter()
        .filter(|c| !want.contains(&(c.kind, c.limit_percent)))
        .collect();
    let mut updates = Vec::new();
    let mut deletions = Vec::new();
    for e in extra {
        match missing.iter().position(|(k, _)| *k == e.kind) {
            Some(i) => {
                let (_, percent) = missing.remove(i);
                updates.push((e.id, percent));
            }
            None => deletions.push(e.id),
        }
    }
    LimitPlan {
        deletions,
        updates,
        creations: missing,
    }
}

async fn sync(spec: &Quota, conn: &Connection) -> Result<Synced, ContentError> {
    let c = &conn.api;
    let ns = spec.object_name();
    let bytes = validate(spec)?;
    let Some(target) = namespace(conn, &ns).await? else {
        return Err(invalid(format!(
            "namespace {ns} is neither an organization nor a user of the registry (create it first, e.g. with an Organization resource)"
        )));
    };
    if matches!(target, Target::User(_)) && !spec.spec.limits.is_empty() {
        return Err(invalid(format!(
            "{ns} is a user: the registry API sets no limits on a user's quota; remove limits or use an organization"
        )));
    }
    let mut changes = Vec::new();
    let existing = target.quotas(conn, &ns).await?;
    let existed = !existing.is_empty();
    let mut quota = match existing.into_iter().next() {
        Some(q) => q,
        None => {
            target.create(conn, &ns, bytes).await?;
            target
                .quotas(conn, &ns)
                .await?
                .into_iter()
                .next()
                .ok_or_else(|| {
                    ContentError::Registry(format!(
                        "the quota of {ns} was created but the registry does not list it"
                    ))
                })?
        }
    };
    if quota.limit_bytes != bytes {
        target.resize(conn, &ns, quota.id, bytes).await?;
        changes.push(format!(
            "quota set to {} (was {})",
            quantity::human(bytes),
            quantity::human(quota.limit_bytes)
        ));
        quota.limit_bytes = bytes;
        quota.limit.clear();
    }

    if let Target::Organization(_) = target {
        let LimitPlan {
            deletions,
            updates,
            creations,
        } = plan_limits(&quota.limits, &spec.spec.limits);
        let describe = |id: i64| {
            quota
                .limits
                .iter()
                .find(|l| l.id == id)
                .map(|l| format!("{} limit at {}%", l.kind.as_str(), l.limit_percent))
                .unwrap_or_default()
        };
        for id in deletions {
            c.delete_organization_quota_limit(&ns, quota.id, id)
                .await
                .ctx(&format!("remove a limit of the quota of {ns}"))?;
            changes.push(format!("removed the {}", describe(id)));
        }
        for (id, percent) in updates {
            c.update_organization_quota_limit(
                &ns,
                quota.id,
                id,
                &api::UpdateQuotaLimitRequest {
                    kind: None,
                    threshold_percent: Some(percent),
                },
            )
            .await
            .ctx(&format!("change a limit of the quota of {ns}"))?;
            changes.push(format!("moved the {} to {percent}%", describe(id)));
        }
        for (kind, percent) in creations {
            c.create_organization_quota_limit(
                &ns,
                quota.id,
                &api::CreateQuotaLimitRequest::new(kind, percent),
            )
            .await
            .ctx(&format!("add a limit to the quota of {ns}"))?;
            changes.push(format!("added a {} limit at {percent}%", kind.as_str()));
        }
    }

    let used = target.used();
    let percent = if bytes > 0 {
        (used as f64 * 10_000.0 / bytes as f64).round() / 100.0
    } else {
        0.0
    };
    let mut status = Map::new();
    status.insert("namespaceKind".into(), json!(target.kind()));
    status.insert("limitBytes".into(), json!(bytes));
    status.insert("limit".into(), json!(quantity::human(bytes)));
    status.insert("usedBytes".into(), json!(used));
    status.insert("used".into(), json!(quantity::human(used)));
    status.insert("usedPercent".into(), json!(percent));
    Ok(Synced {
        existed,
        changes,
        status,
        requeue: None,
    })
}

/// Runs the Quota controller; a Quota is also looked at again when an Organization of its
/// namespace changes (it may have just been created).
pub async fn run_controller(
    ctx: Arc<Context>,
    namespace: Option<String>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    content::run::<Quota, _>(ctx, namespace, shutdown, |c, client, ns| {
        let orgs: Api<Organization> = match ns {
            Some(ns) => Api::namespaced(client.clone(), ns),
            None => Api::all(client.clone()),
        };
        let store = c.store();
        c.watches(orgs, watcher::Config::default(), move |org| {
            let name = org.object_name();
            let ns = org.namespace();
            store
                .state()
                .into_iter()
                .filter(|q| q.namespace() == ns && q.spec.namespace == name)
                .map(|q| ObjectRef::from_obj(q.as_ref()))
                .collect::<Vec<_>>()
        })
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quota(yaml: &str) -> Quota {
        serde_yaml::from_str(yaml).unwrap()
    }

    const OK: &str = r#"
apiVersion: quayside.dev/v1alpha1
kind: Quota
metadata: {name: acme}
spec:
  registryRef: {name: registry}
  namespace: acme
  limit: 10Gi
  limits:
    - {type: Warning, thresholdPercent: 80}
    - {type: Reject, thresholdPercent: 100}
"#;

    #[test]
    fn the_spec_is_checked_before_any_call() {
        let ok = quota(OK);
        assert_eq!(validate(&ok).unwrap(), 10 << 30);
        assert_eq!(ok.object_name(), "acme");
        let bytes = quota(&OK.replace("10Gi", "1048576"));
        assert_eq!(validate(&bytes).unwrap(), 1 << 20);

        let words = quota(&OK.replace("10Gi", "ten gigs"));
        let e = validate(&words).unwrap_err();
        assert_eq!(e.reason(), "InvalidSpec");
        assert!(e.to_string().contains("\"ten gigs\" is not a size"), "{e}");

        let over = quota(&OK.replace("thresholdPercent: 100", "thresholdPercent: 150"));
        assert!(validate(&over).unwrap_err().to_string().contains("150"));
        let two = quota(&OK.replace("type: Warning", "type: Reject"));
        assert!(
            validate(&two)
                .unwrap_err()
                .to_string()
                .contains("at most one Reject")
        );
        let twice = quota(
            &OK.replace("thresholdPercent: 100", "thresholdPercent: 80")
                .replace("type: Reject", "type: Warning"),
        );
        assert!(validate(&twice).unwrap_err().to_string().contains("twice"));
        let name = quota(&OK.replace("namespace: acme", "namespace: Not_Valid"));
        assert!(validate(&name).is_err());
    }

    #[test]
    fn limits_are_brought_to_the_exact_set_in_few_calls() {
        use api::QuotaLimitType::{Reject, Warning};
        let l = |id, kind, limit_percent| api::QuotaLimit {
            id,
            kind,
            limit_percent,
        };
        let spec = quota(OK).spec.limits;
        // Already right: nothing to do.
        let current = [l(1, Warning, 80), l(2, Reject, 100)];
        assert_eq!(plan_limits(&current, &spec), LimitPlan::default());
        // The Reject threshold moved and an extra Warning exists: update one, delete one.
        let current = [
            l(1, Warning, 80),
            l(2, Reject, 90),
            l(3, Warning, 50),
            l(4, Warning, 60),
        ];
        assert_eq!(
            plan_limits(&current, &spec),
            LimitPlan {
                deletions: vec![3, 4],
                updates: vec![(2, 100)],
                creations: vec![],
            }
        );
        // None yet: create both.
        assert_eq!(
            plan_limits(&[], &spec),
            LimitPlan {
                creations: vec![(Warning, 80), (Reject, 100)],
                ..LimitPlan::default()
            }
        );
    }
}
