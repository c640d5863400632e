//! The QuayRegistry controller: read → validate → build → apply → status.
//!
//! Rules:
//! - [`observed::read`] makes the only reads, [`apply::apply`] and
//!   `write_status` the only writes; [`validate`], [`material`], [`build`] and [`status`]
//!   make no API calls and are unit-tested from YAML fixtures.
//! - A blocked rollout (invalid spec or bundle) writes only the status (and an event when it
//!   becomes blocked) and waits for a change; a transient error is retried with back-off.
//! - Events are published only when something happened (objects written or deleted, a
//!   certificate issued, the rollout blocked), so an idle reconcile writes nothing.
//! - A finalizer is added only when objects live outside the QuayRegistry's namespace (the
//!   builder namespace), where owner references cannot reach.

pub mod apply;
pub mod build;
pub mod config;
pub mod kinds;
pub mod material;
pub mod names;
pub mod observed;
pub mod status;
pub mod validate;

#[cfg(test)]
pub(crate) mod fixtures;

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::EventType;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};
use serde_json::json;

use crate::crd::{ComponentKind, QuayRegistry, QuayRegistryStatus};
use crate::runtime::context::Context;
use names::{BUILDER_NAMESPACE_ANNOTATION, FIELD_MANAGER, FINALIZER, Names, REGISTRY_LABEL};

/// Errors of one reconcile (all transient: retried with back-off).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("{0}")]
    Other(#[from] anyhow::Error),
}

impl Error {
    /// A bounded label for metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Kube(kube::Error::Api(_)) => "api",
            Error::Kube(_) => "client",
            Error::Other(_) => "internal",
        }
    }
}

/// What one reconcile did, for tests and logs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    pub blocked: Option<String>,
    pub written: usize,
    pub deleted: usize,
    pub status_written: bool,
}

/// Reconciles one QuayRegistry (the controller's callback).
pub async fn reconcile(registry: Arc<QuayRegistry>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = Instant::now();
    let result = reconcile_inner(&registry, &ctx).await;
    let key = format!(
        "{}/{}",
        registry.namespace().unwrap_or_default(),
        registry.name_any()
    );
    ctx.metrics.reconciled(
        started.elapsed(),
        result.as_ref().err().map(Error::metric_label),
    );
    match result {
        Ok((report, requeue)) => {
            ctx.succeeded(&key);
            tracing::debug!(registry = %key, ?report, "reconciled");
            Ok(Action::requeue(requeue))
        }
        Err(e) => Err(e),
    }
}

/// Retry with back-off: 1 s, 2 s, 4 s, ... up to 5 minutes per object.
pub fn error_policy(registry: Arc<QuayRegistry>, error: &Error, ctx: Arc<Context>) -> Action {
    let key = format!(
        "{}/{}",
        registry.namespace().unwrap_or_default(),
        registry.name_any()
    );
    let (attempts, delay) = ctx.backoff(&key);
    tracing::warn!(registry = %key, %error, attempts, ?delay, "reconcile failed; retrying");
    Action::requeue(delay)
}

/// One reconcile, returning what it did and when to look again.
pub async fn reconcile_once(registry: &QuayRegistry, ctx: &Context) -> Result<Report, Error> {
    reconcile_inner(registry, ctx).await.map(|(r, _)| r)
}

async fn reconcile_inner(
    registry: &QuayRegistry,
    ctx: &Context,
) -> Result<(Report, Duration), Error> {
    let client = &ctx.client;
    let namespace = registry.namespace().unwrap_or_default();
    let api: Api<QuayRegistry> = Api::namespaced(client.clone(), &namespace);
    if registry.metadata.deletion_timestamp.is_some() {
        cleanup(registry, ctx).await?;
        return Ok((Report::default(), Duration::from_secs(300)));
    }

    // Read.
    let observed = observed::read(client, registry).await?;
    let now = chrono::Utc::now();
    let now_text = material::rfc3339(now);
    let mut report = Report::default();

    // Validate.
    let plan = match validate::validate(registry, &observed, &ctx.settings) {
        Ok(plan) => plan,
        Err(blocked) => {
            let was_blocked = registry
                .condition("RolloutBlocked")
                .is_some_and(|c| c.status == "True" && c.message == blocked.message);
            let mut status = status::compute(
                registry,
                &observed,
                status::Outcome::Blocked(&blocked),
                &now_text,
            );
            admin_credentials(ctx, registry, &mut status, &now_text).await;
            report.status_written = write_status(&api, registry, status).await?;
            if !was_blocked {
                publish(
                    ctx,
                    registry,
                    EventType::Warning,
                    blocked.reason,
                    "Validate",
                    &blocked.message,
                )
                .await;
            }
            report.blocked = Some(blocked.message);
            return Ok((report, Duration::from_secs(600)));
        }
    };

    // Build.
    let material = material::prepare(&plan, &observed, &ctx.settings, now)?;
    let desired = build::build(&plan, &material, &observed, &ctx.settings)?;
    if desired.cross_namespace
        && (!registry.finalizers().iter().any(|f| f == FINALIZER)
            || registry.annotations().get(BUILDER_NAMESPACE_ANNOTATION)
                != Some(&plan.builder_namespace))
    {
        // The finalizer, and where to clean up when the QuayRegistry goes.
        api.patch(
            &registry.name_any(),
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(json!({
                "apiVersion": format!("{}/{}", crate::crd::GROUP, crate::crd::VERSION),
                "kind": "QuayRegistry",
                "metadata": {
                    "finalizers": [FINALIZER],
                    "annotations": {BUILDER_NAMESPACE_ANNOTATION: plan.builder_namespace},
                },
            })),
        )
        .await?;
    }

    // Apply.
    let applied = apply::apply(client, &desired.objects, &desired.keep, &observed).await;
    let apply_error = applied.as_ref().err().map(|e| e.to_string());
    if let Ok(a) = &applied {
        report.written = a.written.len();
        report.deleted = a.deleted.len();
        ctx.metrics.objects(a.written.len(), a.deleted.len());
        let mut notes = material.changes.clone();
        if !a.written.is_empty() {
            notes.push(format!(
                "applied {}",
                a.written
                    .iter()
                    .map(|k| format!("{} {}", k.kind, k.name))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        if !a.deleted.is_empty() {
            notes.push(format!(
                "deleted {}",
                a.deleted
                    .iter()
                    .map(|k| format!("{} {}", k.kind, k.name))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        if !a.written.is_empty() || !a.deleted.is_empty() {
            publish(
                ctx,
                registry,
                EventType::Normal,
                "ComponentsApplied",
                "Apply",
                &notes.join("; "),
            )
            .await;
        }
    }

    // Status.
    let mut status = status::compute(
        registry,
        &observed,
        status::Outcome::Planned {
            plan: &plan,
            material: &material,
            desired: &desired,
            apply_error: apply_error.clone(),
        },
        &now_text,
    );
    let retry_bootstrap = admin_credentials(ctx, registry, &mut status, &now_text).await;
    let newly_failed = matches!(desired.migration, build::MigrationState::Failed(_))
        && registry
            .condition("RolloutBlocked")
            .is_none_or(|c| c.reason != "MigrationsFailed");
    report.status_written = write_status(&api, registry, status).await?;
    if newly_failed && let build::MigrationState::Failed(m) = &desired.migration {
        publish(
            ctx,
            registry,
            EventType::Warning,
            "MigrationsFailed",
            "Migrate",
            m,
        )
        .await;
    }
    if let Err(e) = applied {
        return Err(e.into());
    }

    // Look again before the certificate is due, and regularly to repair drift.
    let mut requeue = Duration::from_secs(600);
    if retry_bootstrap {
        requeue = Duration::from_secs(5);
    }
    if let Some(s) = &material.serving
        && let Ok(expiry) = chrono::DateTime::parse_from_rfc3339(&s.not_after)
    {
        let due = expiry.with_timezone(&chrono::Utc)
            - chrono::Duration::days(ctx.settings.renew_before_days)
            - now;
        if let Ok(d) = due.to_std() {
            requeue = requeue.min(d.max(Duration::from_secs(1)));
        }
    }
    Ok((report, requeue))
}

/// Adds the `AdminCredentials` condition and the credentials Secret's name to `status`,
/// claiming the first superuser once the registry is Available (see
/// [`crate::content::bootstrap`]). Returns whether to try again soon.
async fn admin_credentials(
    ctx: &Context,
    registry: &QuayRegistry,
    status: &mut QuayRegistryStatus,
    now: &str,
) -> bool {
    let available = status
        .conditions
        .iter()
        .any(|c| c.type_ == "Available" && c.status == "True");
    let boot = crate::content::bootstrap::ensure_admin(ctx, registry, available).await;
    let previous = registry
        .status
        .as_ref()
        .map(|s| s.conditions.clone())
        .unwrap_or_default();
    status.conditions.extend(crate::runtime::conditions::merge(
        &previous,
        vec![boot.condition],
        now,
        registry.metadata.generation,
    ));
    status.admin_credentials_secret = boot.secret;
    boot.retry
}

/// Writes the status with server-side apply on `/status` when it differs; returns whether it
/// wrote.
async fn write_status(
    api: &Api<QuayRegistry>,
    registry: &QuayRegistry,
    status: QuayRegistryStatus,
) -> Result<bool, Error> {
    if registry.status.as_ref() == Some(&status) {
        return Ok(false);
    }
    let patch = json!({
        "apiVersion": format!("{}/{}", crate::crd::GROUP, crate::crd::VERSION),
        "kind": "QuayRegistry",
        "status": status,
    });
    api.patch_status(
        &registry.name_any(),
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await?;
    Ok(true)
}

async fn publish(
    ctx: &Context,
    registry: &QuayRegistry,
    type_: EventType,
    reason: &str,
    action: &str,
    note: &str,
) {
    let object = registry.object_ref(&());
    crate::runtime::events::publish(&ctx.recorder, &object, type_, reason, action, note).await;
}

/// Deletes what lives outside the registry's namespace, then releases the finalizer.
async fn cleanup(registry: &QuayRegistry, ctx: &Context) -> Result<(), Error> {
    if !registry.finalizers().iter().any(|f| f == FINALIZER) {
        return Ok(());
    }
    let namespace = registry.namespace().unwrap_or_default();
    let names = Names::new(&registry.name_any());
    let selector = ListParams::default().labels(&format!("{REGISTRY_LABEL}={}", names.registry));
    if let Some(builder_ns) = registry
        .annotations()
        .get(BUILDER_NAMESPACE_ANNOTATION)
        .filter(|ns| **ns != namespace)
    {
        for kind in kinds::owned(Default::default())
            .into_iter()
            .filter(|k| k.builder)
        {
            let api: Api<DynamicObject> =
                Api::namespaced_with(ctx.client.clone(), builder_ns, &kind.ar);
            let items = match api.list(&selector).await {
                Ok(l) => l.items,
                Err(kube::Error::Api(e)) if e.code == 404 => continue,
                Err(e) => return Err(e.into()),
            };
            for obj in items {
                match api
                    .delete(&obj.name_any(), &DeleteParams::background())
                    .await
                {
                    Ok(_) => {}
                    Err(kube::Error::Api(e)) if e.code == 404 => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
    }
    let api: Api<QuayRegistry> = Api::namespaced(ctx.client.clone(), &namespace);
    let remaining: Vec<String> = registry
        .finalizers()
        .iter()
        .filter(|f| *f != FINALIZER)
        .cloned()
        .collect();
    // A merge patch guarded by the resourceVersion: a concurrent change makes it fail (409)
    // and the next reconcile retries.
    let patch = json!({"metadata": {
        "finalizers": remaining,
        "resourceVersion": registry.resource_version(),
    }});
    api.patch(
        &registry.name_any(),
        &PatchParams::default(),
        &Patch::Merge(&patch),
    )
    .await?;
    Ok(())
}

/// Maps a Secret to the QuayRegistries that use it: as their config bundle, as their tls
/// `secretRef`, or because they own it.
fn registries_using(
    secret: &Secret,
    registries: &[Arc<QuayRegistry>],
) -> Vec<ObjectRef<QuayRegistry>> {
    let ns = secret.namespace();
    let name = secret.name_any();
    let owner = secret.labels().get(REGISTRY_LABEL).cloned();
    registries
        .iter()
        .filter(|r| r.namespace() == ns)
        .filter(|r| {
            let bundle = r
                .spec
                .config_bundle_secret
                .clone()
                .unwrap_or_else(|| Names::new(&r.name_any()).default_bundle());
            let tls = r
                .spec
                .components
                .iter()
                .find(|c| c.kind == ComponentKind::Tls)
                .and_then(|c| c.secret_ref.as_ref())
                .map(|s| s.name.clone());
            bundle == name
                || tls.as_deref() == Some(&name)
                || owner.as_deref() == Some(&r.name_any())
        })
        .map(|r| ObjectRef::from_obj(r.as_ref()))
        .collect()
}

/// The kinds the controller watches as owned: every kind it applies next to the registry
/// (not the builder namespace's, which owner references cannot reach), optional APIs only when
/// the cluster serves them, Secrets excepted (watched on their own).
async fn owned_kinds(client: &kube::Client, namespace: &Option<String>) -> Vec<kinds::Kind> {
    async fn served(
        client: &kube::Client,
        ns: &Option<String>,
        ar: &kube::core::ApiResource,
    ) -> bool {
        let api = match ns {
            Some(ns) => Api::<DynamicObject>::namespaced_with(client.clone(), ns, ar),
            None => Api::<DynamicObject>::all_with(client.clone(), ar),
        };
        api.list_metadata(&ListParams::default().limit(1))
            .await
            .is_ok()
    }
    let caps = observed::Capabilities {
        routes: served(client, namespace, &kinds::route().ar).await,
        monitoring: served(client, namespace, &kinds::service_monitor().ar).await,
    };
    let secret = kinds::secret().ar;
    kinds::owned(caps)
        .into_iter()
        .filter(|k| !k.builder && k.ar != secret)
        .collect()
}

/// Runs the QuayRegistry controller on one namespace (`None`: all namespaces) until
/// `shutdown` resolves.
pub async fn run_controller(
    ctx: Arc<Context>,
    namespace: Option<String>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let client = ctx.client.clone();
    fn api<K>(client: &kube::Client, ns: &Option<String>) -> Api<K>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + serde::de::DeserializeOwned
            + std::fmt::Debug,
        K::DynamicType: Default,
    {
        match ns {
            Some(ns) => Api::namespaced(client.clone(), ns),
            None => Api::all(client.clone()),
        }
    }
    let owned_cfg = watcher::Config::default().labels(REGISTRY_LABEL);
    let controller = Controller::new(
        api::<QuayRegistry>(&client, &namespace),
        watcher::Config::default(),
    );
    let store = controller.store();
    // Every kind the operator applies in the registry's namespace is watched (metadata only),
    // so drift of any owned object is repaired within seconds, not at the periodic requeue.
    // Secrets are watched below, with the bundles and certificates the registries read.
    let mut controller = controller;
    for kind in owned_kinds(&client, &namespace).await {
        let api = match &namespace {
            Some(ns) => Api::<DynamicObject>::namespaced_with(client.clone(), ns, &kind.ar),
            None => Api::<DynamicObject>::all_with(client.clone(), &kind.ar),
        };
        controller = controller.owns_with(api, kind.ar, owned_cfg.clone());
    }
    controller
        .watches(
            api::<Secret>(&client, &namespace),
            watcher::Config::default(),
            move |secret| registries_using(&secret, &store.state()),
        )
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, ctx)
        .for_each(|_| futures_util::future::ready(()))
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controllers::quayregistry::fixtures::*;

    #[test]
    fn secrets_map_to_the_registries_that_use_them() {
        let a = Arc::new(cr(
            "spec:\n  configBundleSecret: bundle\n  components:\n    - kind: tls\n      managed: false\n      secretRef:\n        name: cert\n",
        ));
        let mut b = cr(MINIMAL);
        b.metadata.name = Some("other".into());
        let b = Arc::new(b);
        let secret = |name: &str, label: Option<&str>| {
            let mut s = Secret::default();
            s.metadata.name = Some(name.into());
            s.metadata.namespace = Some("quay".into());
            if let Some(l) = label {
                s.metadata.labels = Some([(REGISTRY_LABEL.to_owned(), l.to_owned())].into());
            }
            s
        };
        let all = [a.clone(), b.clone()];
        let names =
            |v: Vec<ObjectRef<QuayRegistry>>| v.into_iter().map(|r| r.name).collect::<Vec<_>>();
        assert_eq!(
            names(registries_using(&secret("bundle", None), &all)),
            ["registry"]
        );
        assert_eq!(
            names(registries_using(&secret("cert", None), &all)),
            ["registry"]
        );
        assert_eq!(
            names(registries_using(&secret("other-config-bundle", None), &all)),
            ["other"]
        );
        assert_eq!(
            names(registries_using(&secret("x", Some("other")), &all)),
            ["other"]
        );
        assert!(registries_using(&secret("unrelated", None), &all).is_empty());
    }
}
