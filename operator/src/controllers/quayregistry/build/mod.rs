//! Build: the desired objects of a QuayRegistry, from the plan, the generated material and the
//! state read at the start. No API calls, no randomness, no clock: the same inputs give the
//! same objects, byte for byte (which is what makes an idle reconcile write nothing).
//!
//! Rules:
//! - Every object is labelled ([`Names::labels`](crate::controllers::quayregistry::names::Names::labels)) and, in
//!   the registry's namespace, owned by the QuayRegistry (controller owner reference), so
//!   deleting the QuayRegistry deletes it.
//! - The registry reads `/conf/stack/config.yaml` from `<name>-quay-config`: the bundle's
//!   `config.yaml` merged with what managed components supply, the bundle's other files, and
//!   `ssl.cert`/`ssl.key` from the TLS source. The pod template carries a digest of that Secret
//!   ([`CONFIG_HASH_ANNOTATION`](crate::controllers::quayregistry::names::CONFIG_HASH_ANNOTATION)), so any change
//!   of configuration or certificate rolls the pods.
//! - Managed object storage is the registry's local blob store on a PersistentVolumeClaim
//!   mounted at `/datastorage` and passed as `--data-dir` (the registry keeps blobs under
//!   `<data-dir>/blobs` when the configuration names no storage); the generated configuration
//!   therefore carries no `DISTRIBUTED_STORAGE_CONFIG` in that case.
//! - The registry listens on 8443 (HTTPS, port name `https`) when it has a certificate and on
//!   8080 (HTTP, `http`) otherwise; its Service exposes 443 or 80. Probes hit
//!   `/health/instance` with the matching scheme.
//! - Migrations: before a registry image or configuration is rolled out, the Job
//!   `<name>-quay-migrate-<digest(image, config)>` runs `quayside migrate` with it. `migrate`
//!   loads (and so fully validates) the configuration and migrates the database it names. Until
//!   the Job has succeeded the registry and mirror Deployments are left as they are (listed in
//!   [`Desired::keep`]) or, on a first install, not created; a failed Job blocks the rollout
//!   (`MigrationsFailed`) with the old pods still serving. The Job is only created once the
//!   managed database is ready.
//!
//! Layout: this file holds the result types, the `Builder` that collects objects (metadata,
//! owner references, applied-hash annotation) and [`build`], which calls one step per
//! component, in the order the objects are applied. Each step lives in its own file:
//! `config.rs` (bundle, keys and configuration Secrets), `tls.rs`, `registry.rs`,
//! `postgres.rs`, `storage.rs`, `migration.rs`, `mirror.rs`, `hpa.rs`, `route.rs`, `builder.rs`
//! and `monitoring.rs`; `pod.rs` holds the pod-template pieces they share.

mod builder;
mod config;
mod hpa;
mod migration;
mod mirror;
mod monitoring;
mod pod;
mod postgres;
mod registry;
mod route;
mod storage;
mod tls;

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use serde::Serialize;
use serde_json::{Value, json};

use super::kinds::{self, Kind};
use super::material::Material;
use super::names::APPLIED_HASH_ANNOTATION;
use super::observed::{ObjKey, Observed};
use super::validate::Plan;
use crate::crd::ComponentKind;
use crate::runtime::context::Settings;
use registry::Listener;

/// Where the config Secret is mounted.
pub const CONFIG_DIR: &str = "/conf/stack";
/// Where the managed object storage claim is mounted (and the registry's `--data-dir`).
pub const DATASTORAGE_DIR: &str = "/datastorage";
/// The registry's data directory when object storage is not managed (an emptyDir).
pub const SCRATCH_DIR: &str = "/data";
/// Database name and user of the managed PostgreSQL.
pub const DB_NAME: &str = "quayside";
pub const DB_USER: &str = "quayside";

/// How an object is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApplyMode {
    /// Server-side apply whenever it differs from what is live.
    Apply,
    /// Created when missing, never changed afterwards (the user may edit it).
    CreateOnly,
}

/// One desired object.
#[derive(Clone, Debug, PartialEq)]
pub struct DesiredObject {
    pub kind: Kind,
    pub key: ObjKey,
    /// The full object (`apiVersion`, `kind`, `metadata`, ...), including
    /// [`APPLIED_HASH_ANNOTATION`].
    pub body: Value,
    pub mode: ApplyMode,
}

impl PartialEq for Kind {
    fn eq(&self, other: &Self) -> bool {
        self.ar == other.ar && self.builder == other.builder
    }
}

/// State of the migration Job of the desired (image, database).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MigrationState {
    /// The database is not ready yet; the Job is not created.
    WaitingForDatabase,
    /// Created or running.
    Running,
    Succeeded,
    /// Failed for good; the message says why (delete the Job to retry).
    Failed(String),
}

/// What the status step needs to judge a workload rolled out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expectation {
    pub name: String,
    pub image: String,
    pub config_hash: String,
    /// `None` when an HPA owns the replica count.
    pub replicas: Option<i32>,
}

/// The result of build.
#[derive(Clone, Debug, PartialEq)]
pub struct Desired {
    pub objects: Vec<DesiredObject>,
    /// Owned objects to leave as they are although not in `objects` (held for migrations).
    pub keep: BTreeSet<ObjKey>,
    pub config_hash: String,
    pub migration_job: String,
    pub migration: MigrationState,
    pub database_ready: bool,
    /// The registry Deployment as it should end up (also while held).
    pub quay: Expectation,
    pub mirror: Option<Expectation>,
    pub endpoint: String,
    pub version: String,
    /// Some objects live outside the QuayRegistry's namespace (no owner references there).
    pub cross_namespace: bool,
}

/// SHA-256 of `bytes`, hex, first 16 characters.
pub fn digest(bytes: &[u8]) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, bytes);
    hex::encode(d.as_ref())[..16].to_owned()
}

/// The version part of an image reference (`repo:1.2.3` → `1.2.3`, no tag → `latest`).
pub fn image_version(image: &str) -> String {
    let image = image.split('@').next().unwrap_or(image);
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.split_once(':') {
        Some((_, tag)) if !tag.is_empty() => tag.to_owned(),
        _ => "latest".to_owned(),
    }
}

/// Builds the desired objects.
pub fn build(
    plan: &Plan,
    material: &Material,
    observed: &Observed,
    settings: &Settings,
) -> anyhow::Result<Desired> {
    let mut b = Builder::new(plan, material, settings);
    let listener = Listener::of(&plan.tls);

    // Configuration: the bundle, generated keys, TLS material, the merged configuration.
    if plan.default_bundle {
        b.default_bundle()?;
    }
    b.managed_keys()?;
    let tls = b.tls()?;
    let config_hash = b.config_secret(tls)?;

    b.registry_service(&listener)?;
    let mut database_ready = true;
    if plan.is_managed(ComponentKind::Postgres) {
        b.postgres()?;
        database_ready = b.database_ready(observed);
    }
    if plan.is_managed(ComponentKind::Objectstorage) {
        b.object_storage()?;
    }

    // Workloads, held until the migration Job of (image, configuration) has succeeded.
    let (migration_job, migration) = b.migration(observed, database_ready, &config_hash)?;
    let hold = migration != MigrationState::Succeeded;
    let quay = b.registry(&listener, &config_hash, hold)?;
    let mirror = if plan.is_managed(ComponentKind::Mirror) {
        Some(b.mirror(&config_hash, hold)?)
    } else {
        None
    };

    if plan.is_managed(ComponentKind::Horizontalpodautoscaler) {
        b.autoscaling()?;
    }
    if plan.is_managed(ComponentKind::Route) {
        b.route(&listener)?;
    }
    if plan.is_managed(ComponentKind::Builder) {
        b.builder()?;
    }
    if plan.is_managed(ComponentKind::Monitoring) {
        b.monitoring(&listener)?;
    }

    let endpoint = b.endpoint(&listener);
    Ok(Desired {
        objects: b.objects,
        keep: b.keep,
        config_hash,
        migration_job,
        migration,
        database_ready,
        quay,
        mirror,
        endpoint,
        version: image_version(&settings.registry_image),
        cross_namespace: plan.is_managed(ComponentKind::Builder)
            && plan.builder_namespace != plan.namespace,
    })
}

/// Collects the desired objects of one QuayRegistry, in the order they are applied, and the
/// live objects to keep as they are.
struct Builder<'a> {
    plan: &'a Plan,
    material: &'a Material,
    settings: &'a Settings,
    owner: OwnerReference,
    objects: Vec<DesiredObject>,
    keep: BTreeSet<ObjKey>,
}

impl<'a> Builder<'a> {
    fn new(plan: &'a Plan, material: &'a Material, settings: &'a Settings) -> Self {
        Builder {
            plan,
            material,
            settings,
            owner: OwnerReference {
                api_version: format!("{}/{}", crate::crd::GROUP, crate::crd::VERSION),
                kind: "QuayRegistry".into(),
                name: plan.name.clone(),
                uid: plan.uid.clone(),
                controller: Some(true),
                block_owner_deletion: Some(true),
            },
            objects: Vec::new(),
            keep: BTreeSet::new(),
        }
    }
}

impl Builder<'_> {
    /// Metadata of an object of `component` (its overrides' labels and annotations added when
    /// `kind` is given). Objects outside the registry's namespace get no owner reference.
    fn meta(
        &self,
        name: &str,
        namespace: &str,
        component: &str,
        kind: Option<ComponentKind>,
    ) -> ObjectMeta {
        let mut labels = self.plan.names().labels(component);
        let mut annotations = BTreeMap::new();
        if let Some(k) = kind {
            let o = self.plan.overrides(k);
            for (key, v) in o.labels {
                labels.entry(key).or_insert(v);
            }
            annotations.extend(o.annotations);
        }
        ObjectMeta {
            name: Some(name.into()),
            namespace: Some(namespace.into()),
            labels: Some(labels),
            annotations: (!annotations.is_empty()).then_some(annotations),
            owner_references: (namespace == self.plan.namespace).then(|| vec![self.owner.clone()]),
            ..Default::default()
        }
    }

    fn push<T: Serialize + kube::Resource<DynamicType = ()>>(
        &mut self,
        kind: Kind,
        obj: &T,
        mode: ApplyMode,
    ) -> anyhow::Result<()> {
        let mut body = serde_json::to_value(obj)?;
        body["apiVersion"] = T::api_version(&()).into();
        body["kind"] = T::kind(&()).into();
        self.push_value(kind, body, mode)
    }

    fn push_value(&mut self, kind: Kind, mut body: Value, mode: ApplyMode) -> anyhow::Result<()> {
        if let Some(o) = body.as_object_mut() {
            o.remove("status");
        }
        let hash = digest(serde_json::to_string(&body)?.as_bytes());
        let meta = body
            .get_mut("metadata")
            .and_then(Value::as_object_mut)
            .ok_or_else(|| anyhow::anyhow!("object without metadata"))?;
        let annotations = meta
            .entry("annotations")
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .ok_or_else(|| anyhow::anyhow!("annotations are not a map"))?;
        annotations.insert(APPLIED_HASH_ANNOTATION.into(), hash.into());
        let name = body["metadata"]["name"].as_str().unwrap_or_default();
        let namespace = body["metadata"]["namespace"].as_str().unwrap_or_default();
        let key = ObjKey::new(&kind.ar, namespace, name);
        self.objects.push(DesiredObject {
            kind,
            key,
            body,
            mode,
        });
        Ok(())
    }

    /// Leaves the live Deployment `name` as it is (held until migrations succeed).
    fn hold_deployment(&mut self, name: &str) {
        let key = ObjKey::new(&kinds::deployment().ar, &self.plan.namespace, name);
        self.keep.insert(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controllers::quayregistry::fixtures::*;
    use crate::controllers::quayregistry::material::prepare;
    use crate::controllers::quayregistry::observed::SecretObs;
    use crate::controllers::quayregistry::validate::validate;
    use chrono::Utc;

    pub(super) fn run(
        registry: &crate::crd::QuayRegistry,
        observed: &Observed,
    ) -> (Plan, Material, Desired) {
        let s = settings();
        let plan = validate(registry, observed, &s).expect("valid");
        let material = prepare(&plan, observed, &s, Utc::now()).expect("material");
        let desired = build(&plan, &material, observed, &s).expect("build");
        (plan, material, desired)
    }

    /// Builds twice: once to learn the migration Job's name, then with the database ready and
    /// that Job complete.
    pub(super) fn run_ready(
        registry: &crate::crd::QuayRegistry,
        mut observed: Observed,
    ) -> (Plan, Material, Desired, Observed) {
        let (_, _, first) = run(registry, &observed);
        apply_to(&mut observed, &first);
        database_and_migrations_done(&mut observed, &first.migration_job);
        let (p, m, d) = run(registry, &observed);
        (p, m, d, observed)
    }

    pub(super) fn config_yaml(desired: &Desired) -> serde_yaml::Value {
        let files = secret_files(find(desired, "Secret", "registry-quay-config"));
        serde_yaml::from_str(&files["config.yaml"]).expect("config.yaml")
    }

    #[test]
    fn first_install_creates_storage_database_and_config_and_waits_for_the_database() {
        let (_, _, d) = run(&sample("quayregistry-minimal.yaml"), &Observed::empty());
        assert_eq!(d.migration, MigrationState::WaitingForDatabase);
        let kinds: Vec<String> = d.objects.iter().map(|o| o.key.to_string()).collect();
        for want in [
            "Secret quay/registry-config-bundle",
            "Secret quay/registry-quay-managed-secret-keys",
            "Secret quay/registry-quay-ca",
            "Secret quay/registry-quay-tls",
            "Secret quay/registry-quay-config",
            "ServiceAccount quay/registry-quay-app",
            "Service quay/registry-quay-app",
            "PodDisruptionBudget quay/registry-quay-app",
            "Secret quay/registry-quay-database",
            "PersistentVolumeClaim quay/registry-quay-database",
            "Service quay/registry-quay-database",
            "StatefulSet quay/registry-quay-database",
            "PersistentVolumeClaim quay/registry-quay-datastorage",
            "HorizontalPodAutoscaler quay/registry-quay-app",
            "HorizontalPodAutoscaler quay/registry-quay-mirror",
            "Ingress quay/registry-quay",
            "ServiceAccount quay/registry-quay-builder",
            "Role quay/registry-quay-builder",
            "RoleBinding quay/registry-quay-builder",
        ] {
            assert!(
                kinds.contains(&want.to_owned()),
                "missing {want} in {kinds:#?}"
            );
        }
        // Nothing runs the registry before its migrations.
        assert!(
            !kinds
                .iter()
                .any(|k| k.starts_with("Deployment") || k.starts_with("Job"))
        );
        let bundle = d
            .objects
            .iter()
            .find(|o| o.key.name == "registry-config-bundle")
            .unwrap();
        assert_eq!(bundle.mode, ApplyMode::CreateOnly);
        for o in &d.objects {
            assert_eq!(
                o.body["metadata"]["labels"]["quayside.dev/quayregistry"], "registry",
                "{}",
                o.key
            );
            assert_eq!(
                o.body["metadata"]["ownerReferences"][0]["kind"], "QuayRegistry",
                "{}",
                o.key
            );
            assert!(o.body["metadata"]["annotations"][APPLIED_HASH_ANNOTATION].is_string());
        }
    }

    #[test]
    fn build_is_deterministic_and_a_bundle_change_changes_the_config_hash() {
        let registry = cr("spec:\n  configBundleSecret: bundle\n");
        let observed = observed_with_bundle("FEATURE_X: true\n");
        let s = settings();
        let plan = validate(&registry, &observed, &s).unwrap();
        let m = prepare(&plan, &observed, &s, Utc::now()).unwrap();
        let a = build(&plan, &m, &observed, &s).unwrap();
        let b = build(&plan, &m, &observed, &s).unwrap();
        assert_eq!(a, b);
        let changed = observed_with_bundle("FEATURE_X: false\n");
        let plan2 = validate(&registry, &changed, &s).unwrap();
        let c = build(&plan2, &m, &changed, &s).unwrap();
        assert_ne!(a.config_hash, c.config_hash);
        assert_eq!(config_yaml(&c)["FEATURE_X"], false);
    }

    #[test]
    fn full_sample_uses_the_bundle_storage_the_tls_secret_and_the_overrides() {
        let registry = sample("quayregistry-full.yaml");
        let bundle = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../config/samples/config-bundle-s3.yaml"),
        )
        .unwrap();
        let mut observed = observed_with_bundle(&bundle);
        let (cert, key) = self_signed("registry.example.com");
        observed.tls_secret = Some(SecretObs {
            type_: Some("kubernetes.io/tls".into()),
            data: BTreeMap::from([
                ("tls.crt".into(), cert.clone().into_bytes()),
                ("tls.key".into(), key.into_bytes()),
            ]),
        });
        let (plan, m, d, _) = run_ready(&registry, observed);
        assert!(m.serving.is_none() && m.ca.is_none());
        assert!(!plan.is_managed(ComponentKind::Objectstorage));
        let c = config_yaml(&d);
        assert_eq!(c["DISTRIBUTED_STORAGE_CONFIG"]["s3"][0], "S3Storage");
        assert_eq!(c["SERVER_HOSTNAME"], "registry.example.com");
        let files = secret_files(find(&d, "Secret", "registry-quay-config"));
        assert_eq!(files["ssl.cert"], cert);
        let keys: Vec<String> = d.objects.iter().map(|o| o.key.to_string()).collect();
        assert!(
            !keys.iter().any(|k| k.contains("datastorage")
                || k.contains("HorizontalPodAutoscaler")
                || k.contains("quay-tls")),
            "{keys:#?}"
        );
        let dep = find(&d, "Deployment", "registry-quay-app");
        assert_eq!(dep["spec"]["replicas"], 2);
        assert_eq!(dep["metadata"]["labels"]["team"], "platform");
        assert_eq!(
            dep["metadata"]["annotations"]["example.com/owner"],
            "platform-team"
        );
        let pod = &dep["spec"]["template"];
        assert_eq!(pod["metadata"]["labels"]["team"], "platform");
        let c = &pod["spec"]["containers"][0];
        assert_eq!(
            c["env"][2],
            json!({"name": "QUAYSIDE_LOG", "value": "info"})
        );
        assert_eq!(c["resources"]["requests"]["memory"], "256Mi");
        assert_eq!(c["args"][4], SCRATCH_DIR);
        assert_eq!(pod["spec"]["volumes"][1]["emptyDir"], json!({}));
        assert_eq!(
            find(&d, "Deployment", "registry-quay-mirror")["spec"]["replicas"],
            1
        );
        assert_eq!(
            find(&d, "PersistentVolumeClaim", "registry-quay-database")["spec"]["resources"]["requests"]
                ["storage"],
            "5Gi"
        );
        let ingress = find(&d, "Ingress", "registry-quay");
        assert_eq!(ingress["spec"]["rules"][0]["host"], "registry.example.com");
        assert_eq!(ingress["spec"]["tls"][0]["secretName"], "registry-tls");
        assert_eq!(d.endpoint, "https://registry.example.com");
    }

    #[test]
    fn optional_apis_give_a_route_and_monitoring_objects() {
        let mut observed = Observed::empty();
        observed.capabilities.routes = true;
        observed.capabilities.monitoring = true;
        let (_, _, d) = run(&sample("quayregistry-minimal.yaml"), &observed);
        let route = find(&d, "Route", "registry-quay");
        assert_eq!(route["spec"]["tls"]["termination"], "passthrough");
        assert_eq!(route["spec"]["to"]["name"], "registry-quay-app");
        let sm = find(&d, "ServiceMonitor", "registry-quay-metrics");
        assert_eq!(sm["spec"]["endpoints"][0]["scheme"], "https");
        let rules = find(&d, "PrometheusRule", "registry-quay-alerts");
        assert_eq!(
            rules["spec"]["groups"][0]["rules"][0]["alert"],
            "QuaysideRegistryDown"
        );
        assert!(!d.objects.iter().any(|o| o.key.kind == "Ingress"));
    }

    #[test]
    fn image_versions() {
        assert_eq!(image_version("quay.io/quayside/quayside:1.2.3"), "1.2.3");
        assert_eq!(image_version("localhost:5000/quayside"), "latest");
        assert_eq!(image_version("r.io/q:v2@sha256:abc"), "v2");
    }
}
