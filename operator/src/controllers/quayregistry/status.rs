//! Status: the QuayRegistry's conditions, version and endpoint, from the state read at the
//! start of the reconcile and what build decided. No API calls.
//!
//! Rules:
//! - `Available`: the registry serves requests (a ready registry pod, and the managed database
//!   and storage it needs). It stays `True` while a new configuration rolls out or while the
//!   rollout is blocked and the old pods still serve.
//! - `ComponentsCreated`: every desired object is in place (`False` with
//!   `ComponentCreationFailed`, or `MigrationsInProgress`/`MigrationsFailed`/`WaitingForDatabase`
//!   while the registry Deployment waits for its migration Job).
//! - `RolloutBlocked`: `True` with the reason of [`super::validate::Blocked`] or
//!   `MigrationsFailed`; `False` (`RolloutAllowed`) otherwise.
//! - `Component<Kind>Ready` for every kind; unmanaged ones are `True` with
//!   `ComponentNotManaged`, `redis` and `clairpostgres` `True` with `ComponentNotNeeded`.
//! - `currentVersion` moves when the registry Deployment has fully rolled out the desired
//!   image; `lastTransitionTime` only moves when a condition's status changes, so an idle
//!   registry's status never changes.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Pod, PodStatus};

use super::build::{Desired, Expectation, MigrationState};
use super::material::Material;
use super::names::CONFIG_HASH_ANNOTATION;
use super::observed::Observed;
use super::validate::{Blocked, Plan, TlsSource};
use crate::crd::{ComponentKind, QuayRegistry, QuayRegistryStatus};
use crate::runtime::conditions::{Computed, merge};

/// What the reconcile decided.
pub enum Outcome<'a> {
    Blocked(&'a Blocked),
    Planned {
        plan: &'a Plan,
        material: &'a Material,
        desired: &'a Desired,
        /// The error of the apply step, if it failed.
        apply_error: Option<String>,
    },
}

/// Whether a Deployment has fully rolled out what is expected; `Err` says why not.
pub fn rolled_out(d: Option<&Deployment>, e: &Expectation) -> Result<String, String> {
    let d = d.ok_or_else(|| format!("Deployment {} does not exist yet", e.name))?;
    let template = Some(&d.spec.template);
    let hash = template
        .and_then(|t| t.metadata.as_ref())
        .and_then(|m| m.annotations.as_ref())
        .and_then(|a| a.get(CONFIG_HASH_ANNOTATION));
    let image = template
        .and_then(|t| t.spec.as_ref())
        .and_then(|s| s.containers.first())
        .and_then(|c| c.image.as_deref());
    if hash != Some(&e.config_hash) || image != Some(e.image.as_str()) {
        return Err(format!(
            "Deployment {} is being updated to the new configuration",
            e.name
        ));
    }
    let status = d.status.clone().unwrap_or_default();
    let generation = d.metadata.generation.unwrap_or(0);
    if status.observed_generation.unwrap_or(0) < generation {
        return Err(format!("Deployment {} rollout has not started yet", e.name));
    }
    let wanted = e.replicas.unwrap_or_else(|| d.spec.replicas.unwrap_or(1));
    let updated = status.updated_replicas.unwrap_or(0);
    let ready = status.ready_replicas.unwrap_or(0);
    let total = status.replicas.unwrap_or(0);
    if wanted == 0 {
        return Err(format!("Deployment {} is scaled to zero", e.name));
    }
    if updated < wanted || ready < wanted || total > updated {
        return Err(format!(
            "Deployment {}: {ready}/{wanted} pods ready, {updated} updated",
            e.name
        ));
    }
    Ok(format!(
        "Deployment {}: {ready}/{wanted} pods ready",
        e.name
    ))
}

/// Why the pods a Deployment selects are not ready, as a person would dig it out of them:
/// per unready pod, each container's waiting reason (`CrashLoopBackOff`, ...), its last
/// termination (reason, exit code, message), its restarts, or a failing readiness probe when it
/// runs but is not ready. Empty when nothing is known.
pub fn pods_not_ready(d: Option<&Deployment>, pods: &[Pod]) -> String {
    let mut out = Vec::new();
    for (pod, status) in unready_pods(d, pods) {
        let mut parts = Vec::new();
        for c in status.container_statuses.iter().flatten() {
            if c.ready {
                continue;
            }
            let mut what = Vec::new();
            let state = c.state.clone().unwrap_or_default();
            if let Some(w) = &state.waiting {
                let mut t = w.reason.clone().unwrap_or_else(|| "waiting".into());
                if let Some(m) = w.message.as_deref().filter(|m| !m.is_empty()) {
                    t = format!("{t} ({m})");
                }
                what.push(t);
            } else if state.running.is_some() {
                what.push("running but not ready (readiness probe failing)".into());
            }
            if let Some(t) = c.last_state.as_ref().and_then(|l| l.terminated.as_ref()) {
                let mut text = format!(
                    "last exited with code {}{}",
                    t.exit_code,
                    t.reason
                        .as_deref()
                        .map(|r| format!(" ({r})"))
                        .unwrap_or_default()
                );
                if let Some(m) = t
                    .message
                    .as_deref()
                    .map(str::trim)
                    .filter(|m| !m.is_empty())
                {
                    text.push_str(&format!(": {m}"));
                }
                what.push(text);
            }
            if c.restart_count > 0 {
                what.push(format!("{} restarts", c.restart_count));
            }
            if !what.is_empty() {
                parts.push(format!("container {}: {}", c.name, what.join(", ")));
            }
        }
        if parts.is_empty()
            && let Some(p) = &status.phase
        {
            parts.push(format!("phase {p}"));
        }
        if !parts.is_empty() {
            out.push(format!(
                "pod {}: {}",
                pod.metadata.name.clone().unwrap_or_default(),
                parts.join("; ")
            ));
        }
    }
    let mut text = out.join("; ");
    if text.len() > 2000 {
        let mut cut = 2000;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
    }
    text
}

/// The pods a Deployment selects that are not Ready, with their status.
fn unready_pods<'a>(
    d: Option<&Deployment>,
    pods: &'a [Pod],
) -> impl Iterator<Item = (&'a Pod, &'a PodStatus)> {
    let selector = d
        .and_then(|d| d.spec.selector.match_labels.clone())
        .unwrap_or_default();
    pods.iter().filter_map(move |pod| {
        if selector.is_empty() {
            return None;
        }
        let labels = pod.metadata.labels.as_ref()?;
        if !selector.iter().all(|(k, v)| labels.get(k) == Some(v)) {
            return None;
        }
        let status = pod.status.as_ref()?;
        let ready = status
            .conditions
            .iter()
            .flatten()
            .any(|c| c.type_ == "Ready" && c.status == "True");
        (!ready).then_some((pod, status))
    })
}

/// The dependency an unready registry pod's container last stopped for, read from its exit
/// code (`quayside_client::process`: the registry exits with a code naming the database or the
/// storage when it cannot start without it), with the termination message (the log's tail).
/// This is how a bundle's unreachable S3 endpoint turns `ComponentObjectStorageReady` False,
/// whoever manages the storage.
fn dependency_down(d: Option<&Deployment>, pods: &[Pod]) -> Option<(ComponentKind, String)> {
    use quayside_client::process::{EXIT_DATABASE_UNAVAILABLE, EXIT_STORAGE_UNAVAILABLE};
    unready_pods(d, pods).find_map(|(pod, status)| {
        status.container_statuses.iter().flatten().find_map(|c| {
            let state = c.state.as_ref().and_then(|s| s.terminated.as_ref());
            let last = c.last_state.as_ref().and_then(|s| s.terminated.as_ref());
            let t = state.or(last)?;
            let kind = match t.exit_code {
                EXIT_DATABASE_UNAVAILABLE => ComponentKind::Postgres,
                EXIT_STORAGE_UNAVAILABLE => ComponentKind::Objectstorage,
                _ => return None,
            };
            let pod = pod.metadata.name.as_deref().unwrap_or_default();
            let message = match t.message.as_deref().map(str::trim) {
                Some(m) if !m.is_empty() => last_line(m),
                _ => format!("exited with code {}", t.exit_code),
            };
            Some((kind, format!("registry pod {pod}: {message}")))
        })
    })
}

/// The last non-empty line of a termination message (the log's tail ends with the error).
fn last_line(text: &str) -> String {
    text.lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or_default()
        .to_owned()
}

/// The registry serves: a ready registry pod of any version.
fn serving(observed: &Observed, registry: &QuayRegistry) -> bool {
    let ns = registry.metadata.namespace.clone().unwrap_or_default();
    let names = super::names::Names::new(&registry.metadata.name.clone().unwrap_or_default());
    observed
        .deployment(&ns, &names.quay_app())
        .and_then(|d| d.status)
        .is_some_and(|s| s.ready_replicas.unwrap_or(0) >= 1)
}

/// Computes the status to write.
pub fn compute(
    registry: &QuayRegistry,
    observed: &Observed,
    outcome: Outcome<'_>,
    now: &str,
) -> QuayRegistryStatus {
    let previous = registry.status.clone().unwrap_or_default();
    let generation = registry.metadata.generation;
    match outcome {
        Outcome::Blocked(blocked) => {
            let available = serving(observed, registry);
            let mut computed = vec![
                Computed::new(
                    "Available",
                    available,
                    if available {
                        "HealthChecksPassing"
                    } else {
                        "RolloutBlocked"
                    },
                    if available {
                        "the registry runs its previous configuration".to_owned()
                    } else {
                        format!("rollout blocked: {}", blocked.message)
                    },
                ),
                previous_or(
                    &previous,
                    "ComponentsCreated",
                    Computed::new(
                        "ComponentsCreated",
                        false,
                        "RolloutBlocked",
                        &blocked.message,
                    ),
                ),
                Computed::new("RolloutBlocked", true, blocked.reason, &blocked.message),
            ];
            for kind in ComponentKind::ALL {
                let t = kind.condition_type();
                computed.push(previous_or(
                    &previous,
                    t,
                    Computed::new(
                        t,
                        false,
                        "RolloutBlocked",
                        "not reconciled while the rollout is blocked",
                    ),
                ));
            }
            QuayRegistryStatus {
                observed_generation: generation,
                current_version: previous.current_version,
                registry_endpoint: previous.registry_endpoint,
                conditions: merge(&previous.conditions, computed, now, generation),
                // Filled in by the reconcile (see `admin_credentials`).
                admin_credentials_secret: None,
            }
        }
        Outcome::Planned {
            plan,
            material,
            desired,
            apply_error,
        } => {
            let ns = plan.namespace.as_str();
            let names = plan.names();
            let quay_deployment = observed.deployment(ns, &names.quay_app());
            let quay_ready =
                rolled_out(quay_deployment.as_ref(), &desired.quay).map_err(
                    |m| match pods_not_ready(quay_deployment.as_ref(), &observed.pods) {
                        why if why.is_empty() => m,
                        why => format!("{m}: {why}"),
                    },
                );
            let db_ready = !plan.is_managed(ComponentKind::Postgres) || desired.database_ready;
            let storage = storage_state(plan, observed);
            let down = dependency_down(quay_deployment.as_ref(), &observed.pods);
            let mut components = Vec::new();
            for kind in ComponentKind::ALL {
                components.push(match &down {
                    Some((k, m)) if *k == kind => unreachable_dependency(kind, m),
                    _ => component(
                        kind,
                        registry,
                        plan,
                        material,
                        desired,
                        observed,
                        &quay_ready,
                        &storage,
                    ),
                });
            }

            let mut missing = Vec::new();
            if !serving(observed, registry) {
                missing.push(match &quay_ready {
                    Err(why) => format!("no registry pod is ready ({why})"),
                    Ok(_) => "no registry pod is ready".to_owned(),
                });
            }
            if !db_ready {
                missing.push("the database is not ready".to_owned());
            }
            if let Err(e) = &storage {
                missing.push(e.clone());
            }
            let available = missing.is_empty();
            let blocked_migration = match &desired.migration {
                MigrationState::Failed(m) => Some(m.clone()),
                _ => None,
            };
            let created = match (&apply_error, &desired.migration) {
                (Some(e), _) => {
                    Computed::new("ComponentsCreated", false, "ComponentCreationFailed", e)
                }
                (None, MigrationState::Failed(m)) => {
                    Computed::new("ComponentsCreated", false, "MigrationsFailed", m)
                }
                (None, MigrationState::Running) => Computed::new(
                    "ComponentsCreated",
                    false,
                    "MigrationsInProgress",
                    format!(
                        "the registry rollout waits for migration Job {}",
                        desired.migration_job
                    ),
                ),
                (None, MigrationState::WaitingForDatabase) => Computed::new(
                    "ComponentsCreated",
                    false,
                    "WaitingForDatabase",
                    "migrations start once the database is ready",
                ),
                (None, MigrationState::Succeeded) => Computed::new(
                    "ComponentsCreated",
                    true,
                    "ComponentsCreationSuccess",
                    "all desired objects are in place",
                ),
            };
            let mut computed = vec![
                Computed::new(
                    "Available",
                    available,
                    if available {
                        "HealthChecksPassing"
                    } else {
                        "ComponentNotReady"
                    },
                    if available {
                        format!("the registry serves at {}", desired.endpoint)
                    } else {
                        missing.join("; ")
                    },
                ),
                created,
                match blocked_migration {
                    Some(m) => Computed::new("RolloutBlocked", true, "MigrationsFailed", m),
                    None => Computed::new("RolloutBlocked", false, "RolloutAllowed", ""),
                },
            ];
            computed.extend(components);
            let current_version = if quay_ready.is_ok() {
                Some(desired.version.clone())
            } else {
                previous.current_version.clone()
            };
            QuayRegistryStatus {
                observed_generation: generation,
                current_version,
                registry_endpoint: Some(desired.endpoint.clone()),
                conditions: merge(&previous.conditions, computed, now, generation),
                admin_credentials_secret: None,
            }
        }
    }
}

/// The condition of a component the registry pods cannot reach, managed or not.
fn unreachable_dependency(kind: ComponentKind, message: &str) -> Computed {
    let reason = match kind {
        ComponentKind::Postgres => "DatabaseUnreachable",
        _ => "StorageUnreachable",
    };
    Computed::new(kind.condition_type(), false, reason, message)
}

fn previous_or(previous: &QuayRegistryStatus, type_: &str, default: Computed) -> Computed {
    previous
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .map_or(default, |c| Computed {
            type_: c.type_.clone(),
            status: c.status == "True",
            reason: c.reason.clone(),
            message: c.message.clone(),
        })
}

fn storage_state(plan: &Plan, observed: &Observed) -> Result<String, String> {
    if !plan.is_managed(ComponentKind::Objectstorage) {
        return Ok(String::new());
    }
    let name = plan.names().datastorage();
    match observed
        .pvc(&plan.namespace, &name)
        .and_then(|p| p.status)
        .and_then(|s| s.phase)
    {
        Some(p) if p == "Bound" => Ok(format!("PersistentVolumeClaim {name} is bound")),
        Some(p) => Err(format!("PersistentVolumeClaim {name} is {p}")),
        None => Err(format!("PersistentVolumeClaim {name} does not exist yet")),
    }
}

#[allow(clippy::too_many_arguments)] // the inputs of one condition
fn component(
    kind: ComponentKind,
    registry: &QuayRegistry,
    plan: &Plan,
    material: &Material,
    desired: &Desired,
    observed: &Observed,
    quay_ready: &Result<String, String>,
    storage: &Result<String, String>,
) -> Computed {
    let t = kind.condition_type();
    let note = plan.notes.get(&kind);
    let with_note = |m: String| match note {
        Some(n) if m.is_empty() => n.clone(),
        Some(n) => format!("{m}; {n}"),
        None => m,
    };
    let ok = |reason: &str, m: String| Computed::new(t, true, reason, with_note(m));
    let not = |reason: &str, m: String| Computed::new(t, false, reason, with_note(m));
    match kind {
        ComponentKind::Redis => return ok("ComponentNotNeeded", "Quayside needs no Redis".into()),
        ComponentKind::Clairpostgres => {
            return ok(
                "ComponentNotNeeded",
                "Quayside needs no separate scanner database".into(),
            );
        }
        _ => {}
    }
    if !plan.is_managed(kind) {
        let m = match (kind, &plan.tls) {
            (ComponentKind::Tls, TlsSource::Secret { name, .. }) => {
                format!("the certificate comes from Secret {name}")
            }
            (ComponentKind::Tls, TlsSource::Bundle { .. }) => {
                "the certificate comes from the config bundle".into()
            }
            (ComponentKind::Tls, _) => "no certificate: the registry serves plain HTTP".into(),
            // Declared `managed: false` by the user: the bundle configures it. Otherwise the
            // operator chose not to manage it, and says why.
            _ if registry.spec.components.iter().any(|c| c.kind == kind) => {
                "configured by the config bundle".into()
            }
            (ComponentKind::Monitoring, _) => {
                "not managed by default: the monitoring.coreos.com API (Prometheus operator) is not available".into()
            }
            (ComponentKind::Clair, _) => {
                "not managed by default: Quayside does not implement security scanning yet".into()
            }
            _ => "not managed by default".into(),
        };
        return ok("ComponentNotManaged", m);
    }
    let ns = plan.namespace.as_str();
    let names = plan.names();
    let migration_wait = |what: &str| match &desired.migration {
        MigrationState::Failed(m) => Some(not("MigrationsFailed", m.clone())),
        MigrationState::Running => Some(not(
            "MigrationsInProgress",
            format!("{what} waits for migration Job {}", desired.migration_job),
        )),
        MigrationState::WaitingForDatabase => Some(not(
            "WaitingForDatabase",
            format!("{what} waits for the database"),
        )),
        MigrationState::Succeeded => None,
    };
    match kind {
        ComponentKind::Quay => {
            if let Some(c) = migration_wait("the registry") {
                return c;
            }
            match quay_ready {
                Ok(m) => ok("ComponentReady", m.clone()),
                Err(m) => not("ComponentNotReady", m.clone()),
            }
        }
        ComponentKind::Mirror => {
            if let Some(c) = migration_wait("the mirror workers") {
                return c;
            }
            let Some(e) = &desired.mirror else {
                return not("ComponentNotReady", "no mirror Deployment".into());
            };
            match rolled_out(observed.deployment(ns, &names.mirror()).as_ref(), e) {
                Ok(m) => ok("ComponentReady", m),
                Err(m) => not("ComponentNotReady", m),
            }
        }
        ComponentKind::Postgres => {
            let sts = observed.statefulset(ns, &names.database());
            if desired.database_ready {
                ok(
                    "ComponentReady",
                    format!("StatefulSet {} is ready", names.database()),
                )
            } else if sts.is_none() {
                not(
                    "ComponentNotReady",
                    format!("StatefulSet {} does not exist yet", names.database()),
                )
            } else {
                not(
                    "ComponentNotReady",
                    format!("StatefulSet {}: 0/1 pods ready", names.database()),
                )
            }
        }
        ComponentKind::Objectstorage => match storage {
            Ok(m) => ok("ComponentReady", m.clone()),
            Err(m) if m.ends_with("Pending") => not("PVCPending", m.clone()),
            Err(m) => not("ComponentNotReady", m.clone()),
        },
        ComponentKind::Tls => match &material.serving {
            Some(s) => ok(
                "ComponentReady",
                format!(
                    "operator-made certificate in Secret {}, valid until {}",
                    names.tls(),
                    s.not_after
                ),
            ),
            None => not("ComponentNotReady", "no certificate was made".into()),
        },
        ComponentKind::Route => {
            let what = if plan.routes_api { "Route" } else { "Ingress" };
            let host = plan
                .host
                .as_deref()
                .map(super::config::host_only)
                .map_or_else(|| "any host".to_owned(), str::to_owned);
            ok(
                "ComponentReady",
                format!("{what} {} routes {host} to the registry", names.route()),
            )
        }
        ComponentKind::Horizontalpodautoscaler => ok(
            "ComponentReady",
            "HorizontalPodAutoscalers scale the registry and mirror Deployments".into(),
        ),
        ComponentKind::Builder => ok(
            "ComponentReady",
            format!(
                "build ServiceAccount, Role and RoleBinding {} in namespace {}",
                names.builder(),
                plan.builder_namespace
            ),
        ),
        ComponentKind::Monitoring => ok(
            "ComponentReady",
            format!(
                "ServiceMonitor {} and PrometheusRule {}",
                names.metrics(),
                names.alerts()
            ),
        ),
        ComponentKind::Clair => not("ComponentNotSupported", String::new()),
        ComponentKind::Redis | ComponentKind::Clairpostgres => {
            ok("ComponentNotNeeded", String::new())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controllers::quayregistry::build::build;
    use crate::controllers::quayregistry::fixtures::*;
    use crate::controllers::quayregistry::kinds;
    use crate::controllers::quayregistry::material::prepare;
    use crate::controllers::quayregistry::validate::validate;
    use crate::crd::Condition;
    use chrono::Utc;
    use serde_json::json;

    struct Run {
        plan: Plan,
        material: Material,
        desired: Desired,
    }

    fn run(registry: &QuayRegistry, observed: &Observed) -> Run {
        let s = settings();
        let plan = validate(registry, observed, &s).expect("valid");
        let material = prepare(&plan, observed, &s, Utc::now()).expect("material");
        let desired = build(&plan, &material, observed, &s).expect("build");
        Run {
            plan,
            material,
            desired,
        }
    }

    fn compute_for(
        registry: &QuayRegistry,
        observed: &Observed,
        r: &Run,
        now: &str,
    ) -> QuayRegistryStatus {
        compute(
            registry,
            observed,
            Outcome::Planned {
                plan: &r.plan,
                material: &r.material,
                desired: &r.desired,
                apply_error: None,
            },
            now,
        )
    }

    fn cond<'a>(s: &'a QuayRegistryStatus, t: &str) -> &'a Condition {
        s.conditions
            .iter()
            .find(|c| c.type_ == t)
            .unwrap_or_else(|| panic!("no {t}"))
    }

    /// Everything applied, the database ready, migrations done, the Deployments rolled out and
    /// the claim bound.
    fn running(registry: &QuayRegistry) -> (Observed, Run) {
        running_from(registry, Observed::empty())
    }

    fn running_from(registry: &QuayRegistry, mut observed: Observed) -> (Observed, Run) {
        let first = run(registry, &observed);
        apply_to(&mut observed, &first.desired);
        database_and_migrations_done(&mut observed, &first.desired.migration_job);
        let second = run(registry, &observed);
        apply_to(&mut observed, &second.desired);
        database_and_migrations_done(&mut observed, &second.desired.migration_job);
        for (key, obj) in observed.owned.iter_mut() {
            if key.kind == "Deployment" {
                obj.metadata.generation = Some(1);
                obj.data["status"] = json!({"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1, "readyReplicas": 1, "availableReplicas": 1});
            }
            if key.kind == "PersistentVolumeClaim" {
                obj.data["status"] = json!({"phase": "Bound"});
            }
        }
        let r = run(registry, &observed);
        (observed, r)
    }

    #[test]
    fn a_fresh_registry_waits_for_its_database() {
        let registry = cr(MINIMAL);
        let r = run(&registry, &Observed::empty());
        let s = compute_for(&registry, &Observed::empty(), &r, "t1");
        assert_eq!(s.observed_generation, Some(1));
        assert_eq!(s.current_version, None);
        assert_eq!(
            s.registry_endpoint.as_deref(),
            Some("https://registry-quay-app.quay.svc.cluster.local")
        );
        let types: Vec<&str> = s.conditions.iter().map(|c| c.type_.as_str()).collect();
        assert_eq!(
            &types[..4],
            [
                "Available",
                "ComponentsCreated",
                "RolloutBlocked",
                "ComponentQuayReady"
            ]
        );
        assert_eq!(types.len(), 15);
        assert_eq!(cond(&s, "Available").status, "False");
        assert_eq!(cond(&s, "ComponentsCreated").reason, "WaitingForDatabase");
        assert_eq!(cond(&s, "RolloutBlocked").status, "False");
        assert_eq!(cond(&s, "ComponentQuayReady").reason, "WaitingForDatabase");
        assert_eq!(
            cond(&s, "ComponentObjectStorageReady").reason,
            "ComponentNotReady"
        );
        assert_eq!(cond(&s, "ComponentTLSReady").status, "True");
        assert_eq!(
            cond(&s, "ComponentClairReady").reason,
            "ComponentNotManaged"
        );
        assert_eq!(cond(&s, "ComponentRedisReady").reason, "ComponentNotNeeded");
    }

    #[test]
    fn a_rolled_out_registry_is_available_and_its_status_is_stable() {
        let mut registry = cr(MINIMAL);
        let (observed, r) = running(&registry);
        let s = compute_for(&registry, &observed, &r, "t1");
        assert_eq!(
            cond(&s, "Available").status,
            "True",
            "{:?}",
            cond(&s, "Available")
        );
        assert_eq!(
            cond(&s, "ComponentQuayReady").status,
            "True",
            "{:?}",
            cond(&s, "ComponentQuayReady")
        );
        assert_eq!(
            cond(&s, "ComponentsCreated").reason,
            "ComponentsCreationSuccess"
        );
        assert_eq!(s.current_version.as_deref(), Some("1.2.3"));
        // Later, nothing changed: the very same status (so nothing is written).
        registry.status = Some(s.clone());
        assert_eq!(compute_for(&registry, &observed, &r, "t2"), s);
    }

    #[test]
    fn a_new_configuration_keeps_available_and_the_version_while_it_rolls() {
        let mut registry = cr("spec:\n  configBundleSecret: bundle\n");
        let (mut observed, steady) =
            running_from(&registry, observed_with_bundle("FEATURE_X: true\n"));
        registry.status = Some(compute_for(&registry, &observed, &steady, "t1"));
        assert_eq!(
            cond(registry.status.as_ref().unwrap(), "ComponentQuayReady").status,
            "True"
        );

        observed.bundle = observed_with_bundle("FEATURE_X: false\n").bundle;
        let changed = run(&registry, &observed);
        let s = compute_for(&registry, &observed, &changed, "t2");
        assert_eq!(cond(&s, "Available").status, "True");
        assert_eq!(cond(&s, "Available").last_transition_time, "t1");
        assert_eq!(
            cond(&s, "ComponentQuayReady").reason,
            "MigrationsInProgress"
        );
        assert_eq!(cond(&s, "ComponentQuayReady").last_transition_time, "t2");
        assert_eq!(s.current_version.as_deref(), Some("1.2.3"));
    }

    #[test]
    fn a_failed_migration_blocks_the_rollout() {
        let registry = cr(MINIMAL);
        let (mut observed, r) = running(&registry);
        put(
            &mut observed,
            &kinds::job(),
            &r.desired.migration_job,
            json!({"spec": {"template": {}}, "status": {"conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded", "message": "too many failures"}]}}),
        );
        let r = run(&registry, &observed);
        let s = compute_for(&registry, &observed, &r, "t1");
        assert_eq!(cond(&s, "RolloutBlocked").status, "True");
        assert_eq!(cond(&s, "RolloutBlocked").reason, "MigrationsFailed");
        assert!(
            cond(&s, "RolloutBlocked")
                .message
                .contains("delete the Job to retry")
        );
        assert_eq!(cond(&s, "ComponentsCreated").reason, "MigrationsFailed");
        assert_eq!(
            cond(&s, "Available").status,
            "True",
            "the old pods still serve"
        );
    }

    #[test]
    fn a_blocked_rollout_keeps_the_previous_conditions_and_says_why() {
        let mut registry = cr(MINIMAL);
        let (observed, r) = running(&registry);
        let before = compute_for(&registry, &observed, &r, "t1");
        registry.status = Some(before.clone());
        registry.metadata.generation = Some(2);
        let blocked = Blocked {
            reason: "ComponentOverrideInvalid",
            message: "cannot set overrides on unmanaged component mirror".into(),
        };
        let s = compute(&registry, &observed, Outcome::Blocked(&blocked), "t2");
        assert_eq!(s.observed_generation, Some(2));
        assert_eq!(cond(&s, "RolloutBlocked").status, "True");
        assert_eq!(
            cond(&s, "RolloutBlocked").reason,
            "ComponentOverrideInvalid"
        );
        assert_eq!(cond(&s, "RolloutBlocked").last_transition_time, "t2");
        assert_eq!(cond(&s, "Available").status, "True");
        assert_eq!(cond(&s, "Available").last_transition_time, "t1");
        assert_eq!(
            cond(&s, "ComponentQuayReady"),
            &Condition {
                observed_generation: Some(2),
                ..cond(&before, "ComponentQuayReady").clone()
            }
        );
        assert_eq!(s.current_version, before.current_version);
        assert_eq!(s.registry_endpoint, before.registry_endpoint);
    }

    #[test]
    fn unready_registry_pods_say_why() {
        let registry = cr(MINIMAL);
        let (mut observed, r) = running(&registry);
        let names = crate::controllers::quayregistry::names::Names::new("registry");
        let mut selector = None;
        for (key, obj) in observed.owned.iter_mut() {
            if key.kind == "Deployment" && key.name == names.quay_app() {
                obj.data["status"] = json!({"observedGeneration": 1, "replicas": 2, "updatedReplicas": 2, "readyReplicas": 0});
                selector = Some(obj.data["spec"]["selector"]["matchLabels"].clone());
            }
        }
        observed.pods = vec![serde_json::from_value(json!({
            "metadata": {"name": "registry-quay-app-abc", "labels": selector.expect("quay Deployment")},
            "status": {"phase": "Running",
                "conditions": [{"type": "Ready", "status": "False"}],
                "containerStatuses": [{"name": "quay", "image": "i", "imageID": "", "ready": false,
                    "restartCount": 3,
                    "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 10s restarting failed container"}},
                    "lastState": {"terminated": {"exitCode": 1, "reason": "Error",
                        "message": "storage: cannot reach https://s3.invalid: connection refused"}}}]}
        }))
        .unwrap()];
        let s = compute_for(&registry, &observed, &r, "t2");
        let quay = cond(&s, "ComponentQuayReady");
        assert_eq!(quay.status, "False");
        for part in [
            "pod registry-quay-app-abc",
            "CrashLoopBackOff",
            "last exited with code 1 (Error): storage: cannot reach https://s3.invalid",
            "3 restarts",
        ] {
            assert!(quay.message.contains(part), "{part}: {}", quay.message);
        }
        let available = cond(&s, "Available");
        assert_eq!(available.status, "False");
        assert!(
            available
                .message
                .contains("cannot reach https://s3.invalid"),
            "{}",
            available.message
        );
    }

    /// The registry exits with the storage code when a bundle's S3 endpoint does not answer:
    /// the storage condition turns False with the registry's own words, although the operator
    /// does not manage the storage; the database condition is untouched.
    #[test]
    fn a_registry_that_cannot_reach_its_storage_turns_the_storage_condition_false() {
        let registry = cr(
            "spec:\n  configBundleSecret: bundle\n  components:\n    - kind: objectstorage\n      managed: false\n",
        );
        let bundle = "DISTRIBUTED_STORAGE_PREFERENCE: [default]\nDISTRIBUTED_STORAGE_CONFIG:\n  default:\n    - S3Storage\n    - {host: s3.invalid, s3_bucket: quay, s3_access_key: a, s3_secret_key: b, storage_path: /r}\n";
        let (mut observed, r) = running_from(&registry, observed_with_bundle(bundle));
        let names = crate::controllers::quayregistry::names::Names::new("registry");
        let mut selector = None;
        for (key, obj) in observed.owned.iter_mut() {
            if key.kind == "Deployment" && key.name == names.quay_app() {
                obj.data["status"] = json!({"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1, "readyReplicas": 0});
                selector = Some(obj.data["spec"]["selector"]["matchLabels"].clone());
            }
        }
        let exit = |code: i32| -> Pod {
            serde_json::from_value(json!({
                "metadata": {"name": "registry-quay-app-abc", "labels": selector.clone().expect("quay Deployment")},
                "status": {"phase": "Running",
                    "conditions": [{"type": "Ready", "status": "False"}],
                    "containerStatuses": [{"name": "quay", "image": "i", "imageID": "", "ready": false,
                        "restartCount": 2,
                        "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                        "lastState": {"terminated": {"exitCode": code, "reason": "Error",
                            "message": "INFO services starting\nerror: cannot reach blob storage (S3 bucket quay at https://s3.invalid) for 30 s: connection refused\n"}}}]}
            }))
            .unwrap()
        };
        observed.pods = vec![exit(quayside_client::process::EXIT_STORAGE_UNAVAILABLE)];
        let s = compute_for(&registry, &observed, &r, "t2");
        let storage = cond(&s, "ComponentObjectStorageReady");
        assert_eq!(storage.status, "False");
        assert_eq!(storage.reason, "StorageUnreachable");
        assert_eq!(
            storage.message,
            "registry pod registry-quay-app-abc: error: cannot reach blob storage (S3 bucket quay at https://s3.invalid) for 30 s: connection refused"
        );
        assert_eq!(cond(&s, "ComponentPostgresReady").status, "True");
        assert_eq!(cond(&s, "Available").status, "False");

        // Another failure (exit code 1) names no dependency: the bundle's storage stays True.
        observed.pods = vec![exit(1)];
        let s = compute_for(&registry, &observed, &r, "t3");
        let storage = cond(&s, "ComponentObjectStorageReady");
        assert_eq!(storage.status, "True");
        assert_eq!(storage.message, "configured by the config bundle");
    }

    #[test]
    fn only_declared_unmanaged_components_are_configured_by_the_bundle() {
        let (_, r) = running(&cr(MINIMAL));
        let registry = cr(MINIMAL);
        let s = compute_for(&registry, &Observed::empty(), &r, "t1");
        for t in ["ComponentClairReady", "ComponentMonitoringReady"] {
            let c = cond(&s, t);
            assert_eq!(c.reason, "ComponentNotManaged", "{t}");
            assert!(
                c.message.starts_with("not managed by default"),
                "{t}: {}",
                c.message
            );
        }
        let declared = cr("spec:\n  components:\n    - kind: monitoring\n      managed: false\n");
        let r = run(&declared, &Observed::empty());
        let s = compute_for(&declared, &Observed::empty(), &r, "t1");
        assert_eq!(
            cond(&s, "ComponentMonitoringReady").message,
            "configured by the config bundle"
        );
    }
}
