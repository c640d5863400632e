//! Build: the desired objects of a QuayRegistry, from the plan, the generated material and the
//! state read at the start. No API calls, no randomness, no clock: the same inputs give the
//! same objects, byte for byte (which is what makes an idle reconcile write nothing).
//!
//! Rules:
//! - Every object is labelled ([`Names::labels`]) and, in the registry's namespace, owned by the
//!   QuayRegistry (controller owner reference), so deleting the QuayRegistry deletes it.
//! - The registry reads `/conf/stack/config.yaml` from `<name>-quay-config`: the bundle's
//!   `config.yaml` merged with what managed components supply, the bundle's other files, and
//!   `ssl.cert`/`ssl.key` from the TLS source. The pod template carries a digest of that Secret
//!   ([`CONFIG_HASH_ANNOTATION`]), so any change of configuration or certificate rolls the pods.
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

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::ByteString;
use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, StatefulSet, StatefulSetSpec};
use k8s_openapi::api::autoscaling::v2::{
    CrossVersionObjectReference, HorizontalPodAutoscaler, HorizontalPodAutoscalerSpec, MetricSpec,
    MetricTarget, ResourceMetricSource,
};
use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{
    Capabilities as LinuxCapabilities, Container, ContainerPort, EmptyDirVolumeSource,
    EnvFromSource, EnvVar, HTTPGetAction, PersistentVolumeClaim, PersistentVolumeClaimSpec,
    PersistentVolumeClaimVolumeSource, PodSecurityContext, PodSpec, PodTemplateSpec, Probe,
    ResourceRequirements, SeccompProfile, Secret, SecretEnvSource, SecretVolumeSource,
    SecurityContext, Service, ServiceAccount, ServicePort, ServiceSpec, TCPSocketAction, Volume,
    VolumeMount, VolumeResourceRequirements,
};
use k8s_openapi::api::networking::v1::{
    HTTPIngressPath, HTTPIngressRuleValue, Ingress, IngressBackend, IngressRule,
    IngressServiceBackend, IngressSpec, IngressTLS, ServiceBackendPort,
};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::Serialize;
use serde_json::{Value, json};
use serde_yaml::Mapping;

use super::config::{CONFIG_FILE, SSL_CERT, SSL_KEY};
use super::kinds::{self, Kind};
use super::material::{DATABASE_SECRET_KEY, DB_PASSWORD, Material, SECRET_KEY};
use super::names::{
    APPLIED_HASH_ANNOTATION, CERT_SUBJECT_ANNOTATION, CONFIG_HASH_ANNOTATION, NOT_AFTER_ANNOTATION,
};
use super::observed::{ObjKey, Observed};
use super::validate::{Plan, TlsSource};
use crate::context::Settings;
use crate::crd::{ComponentKind, Overrides};

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

struct Builder<'a> {
    plan: &'a Plan,
    material: &'a Material,
    settings: &'a Settings,
    owner: OwnerReference,
    objects: Vec<DesiredObject>,
}

/// Builds the desired objects.
pub fn build(
    plan: &Plan,
    material: &Material,
    observed: &Observed,
    settings: &Settings,
) -> anyhow::Result<Desired> {
    let names = plan.names();
    let ns = plan.namespace.as_str();
    let mut b = Builder {
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
    };
    let image = settings.registry_image.clone();
    let https = plan.tls.serves_https();
    let (port_name, container_port, service_port) = if https {
        ("https", 8443, 443)
    } else {
        ("http", 8080, 80)
    };

    // Bundle the operator owns when none is named.
    if plan.default_bundle {
        let secret = Secret {
            metadata: b.meta(&names.default_bundle(), ns, "config-bundle", None),
            data: Some(BTreeMap::from([(
                CONFIG_FILE.to_owned(),
                ByteString(Vec::new()),
            )])),
            ..Default::default()
        };
        b.push(kinds::secret(), &secret, ApplyMode::CreateOnly)?;
    }

    // Generated secrets, kept across reconciles.
    let keys = Secret {
        metadata: b.meta(&names.managed_keys(), ns, "quay-app", None),
        data: Some(
            material
                .keys
                .iter()
                .map(|(k, v)| (k.clone(), ByteString(v.clone().into_bytes())))
                .collect(),
        ),
        type_: Some("Opaque".into()),
        ..Default::default()
    };
    b.push(kinds::secret(), &keys, ApplyMode::Apply)?;

    // TLS material.
    let (ssl_cert, ssl_key) = match &plan.tls {
        TlsSource::Managed => {
            let (Some(ca), Some(serving)) = (&material.ca, &material.serving) else {
                anyhow::bail!("managed TLS without generated material");
            };
            let mut meta = b.meta(&names.ca(), ns, "tls", None);
            meta.annotations
                .get_or_insert_with(BTreeMap::new)
                .insert(NOT_AFTER_ANNOTATION.into(), ca.not_after.clone());
            let ca_secret = Secret {
                metadata: meta,
                data: Some(BTreeMap::from([
                    (
                        "ca.crt".to_owned(),
                        ByteString(ca.pem.cert.clone().into_bytes()),
                    ),
                    (
                        "ca.key".to_owned(),
                        ByteString(ca.pem.key.clone().into_bytes()),
                    ),
                ])),
                type_: Some("Opaque".into()),
                ..Default::default()
            };
            b.push(kinds::secret(), &ca_secret, ApplyMode::Apply)?;
            let mut meta = b.meta(&names.tls(), ns, "tls", None);
            let annotations = meta.annotations.get_or_insert_with(BTreeMap::new);
            annotations.insert(NOT_AFTER_ANNOTATION.into(), serving.not_after.clone());
            annotations.insert(CERT_SUBJECT_ANNOTATION.into(), serving.subject_hash.clone());
            let tls_secret = Secret {
                metadata: meta,
                data: Some(BTreeMap::from([
                    (
                        "tls.crt".to_owned(),
                        ByteString(serving.pem.cert.clone().into_bytes()),
                    ),
                    (
                        "tls.key".to_owned(),
                        ByteString(serving.pem.key.clone().into_bytes()),
                    ),
                    (
                        "ca.crt".to_owned(),
                        ByteString(ca.pem.cert.clone().into_bytes()),
                    ),
                ])),
                type_: Some("kubernetes.io/tls".into()),
                ..Default::default()
            };
            b.push(kinds::secret(), &tls_secret, ApplyMode::Apply)?;
            (
                Some(format!("{}{}", serving.pem.cert, ca.pem.cert).into_bytes()),
                Some(serving.pem.key.clone().into_bytes()),
            )
        }
        TlsSource::Bundle { cert, key } | TlsSource::Secret { cert, key, .. } => {
            (Some(cert.clone()), Some(key.clone()))
        }
        TlsSource::None => (None, None),
    };

    // The merged configuration.
    let db_uri = if plan.is_managed(ComponentKind::Postgres) {
        format!(
            "postgresql://{DB_USER}:{}@{}.{ns}.svc.{}:5432/{DB_NAME}",
            material.keys.get(DB_PASSWORD).cloned().unwrap_or_default(),
            names.database(),
            settings.cluster_domain
        )
    } else {
        plan.bundle
            .get_str("DB_URI")
            .ok()
            .flatten()
            .unwrap_or_default()
            .to_owned()
    };
    let config = merged_config(plan, material, &db_uri);
    let config_text = serde_yaml::to_string(&config)?;
    let mut files: BTreeMap<String, Vec<u8>> = plan
        .bundle
        .files
        .iter()
        .filter(|(k, _)| k.as_str() != SSL_CERT && k.as_str() != SSL_KEY)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    files.insert(CONFIG_FILE.into(), config_text.into_bytes());
    if let (Some(c), Some(k)) = (ssl_cert, ssl_key) {
        files.insert(SSL_CERT.into(), c);
        files.insert(SSL_KEY.into(), k);
    }
    let config_hash = {
        let mut all = Vec::new();
        for (k, v) in &files {
            all.extend_from_slice(k.as_bytes());
            all.push(0);
            all.extend_from_slice(v);
            all.push(0);
        }
        digest(&all)
    };
    let config_secret = Secret {
        metadata: b.meta(&names.quay_config(), ns, "quay-app", None),
        data: Some(files.into_iter().map(|(k, v)| (k, ByteString(v))).collect()),
        type_: Some("Opaque".into()),
        ..Default::default()
    };
    b.push(kinds::secret(), &config_secret, ApplyMode::Apply)?;

    // Service account, Service, PDB of the registry.
    let sa = ServiceAccount {
        metadata: b.meta(&names.quay_app(), ns, "quay-app", Some(ComponentKind::Quay)),
        ..Default::default()
    };
    b.push(kinds::service_account(), &sa, ApplyMode::Apply)?;
    let service = Service {
        metadata: b.meta(&names.quay_app(), ns, "quay-app", Some(ComponentKind::Quay)),
        spec: Some(ServiceSpec {
            selector: Some(names.selector("quay-app")),
            ports: Some(vec![ServicePort {
                name: Some(port_name.into()),
                port: service_port,
                target_port: Some(IntOrString::String(port_name.into())),
                protocol: Some("TCP".into()),
                ..Default::default()
            }]),
            type_: Some("ClusterIP".into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    b.push(kinds::service(), &service, ApplyMode::Apply)?;
    let pdb = PodDisruptionBudget {
        metadata: b.meta(&names.quay_app(), ns, "quay-app", Some(ComponentKind::Quay)),
        spec: Some(PodDisruptionBudgetSpec {
            max_unavailable: Some(IntOrString::Int(1)),
            selector: Some(LabelSelector {
                match_labels: Some(names.selector("quay-app")),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    b.push(kinds::pdb(), &pdb, ApplyMode::Apply)?;

    // Database.
    let mut database_ready = true;
    if plan.is_managed(ComponentKind::Postgres) {
        b.postgres()?;
        database_ready = observed
            .statefulset(ns, &names.database())
            .and_then(|s| s.status)
            .is_some_and(|s| s.ready_replicas.unwrap_or(0) >= 1);
    }

    // Object storage.
    if plan.is_managed(ComponentKind::Objectstorage) {
        let o = plan.overrides(ComponentKind::Objectstorage);
        let pvc = b.pvc(
            &names.datastorage(),
            "objectstorage",
            ComponentKind::Objectstorage,
            o.volume_size.clone().unwrap_or(Quantity("50Gi".into())),
            o.storage_class_name.clone(),
        );
        b.push(kinds::pvc(), &pvc, ApplyMode::Apply)?;
    }

    // Migration Job for (image, configuration): it also proves the registry accepts the
    // configuration before any pod runs it.
    let migration_key = digest(format!("{image}\n{config_hash}").as_bytes())[..10].to_owned();
    let migration_job = names.migration_job(&migration_key);
    let migration = if !database_ready {
        MigrationState::WaitingForDatabase
    } else {
        b.migration_job(&migration_job, &image)?;
        match observed.job(ns, &migration_job).and_then(|j| j.status) {
            None => MigrationState::Running,
            Some(st) => {
                let cond = |t: &str| {
                    st.conditions
                        .iter()
                        .flatten()
                        .find(|c| c.type_ == t && c.status == "True")
                        .cloned()
                };
                if cond("Complete").is_some() || st.succeeded.unwrap_or(0) >= 1 {
                    MigrationState::Succeeded
                } else if let Some(c) = cond("Failed") {
                    MigrationState::Failed(format!(
                        "migration Job {migration_job} failed ({}): {}; delete the Job to retry",
                        c.reason.unwrap_or_default(),
                        c.message.unwrap_or_default()
                    ))
                } else {
                    MigrationState::Running
                }
            }
        }
    };
    let hold = migration != MigrationState::Succeeded;

    // Registry and mirror Deployments.
    let hpa = plan.is_managed(ComponentKind::Horizontalpodautoscaler);
    let replicas = |kind: ComponentKind| {
        if hpa {
            None
        } else {
            Some(plan.overrides(kind).replicas.unwrap_or(1))
        }
    };
    let quay = Expectation {
        name: names.quay_app(),
        image: image.clone(),
        config_hash: config_hash.clone(),
        replicas: replicas(ComponentKind::Quay),
    };
    let mut keep = BTreeSet::new();
    let deployment_key = |name: &str| ObjKey::new(&kinds::deployment().ar, ns, name);
    if hold {
        keep.insert(deployment_key(&names.quay_app()));
    } else {
        let mut args: Vec<String> = ["serve", "--config"].map(String::from).to_vec();
        args.push(format!("{CONFIG_DIR}/{CONFIG_FILE}"));
        let mut env = vec![env_var(
            "QUAYSIDE_LISTEN",
            &format!("0.0.0.0:{container_port}"),
        )];
        env.push(env_var("QUAY_VERSION", &image_version(&image)));
        let probe = |period: i32, failures: i32| Probe {
            http_get: Some(HTTPGetAction {
                path: Some("/health/instance".into()),
                port: IntOrString::String(port_name.into()),
                scheme: Some(if https { "HTTPS" } else { "HTTP" }.into()),
                ..Default::default()
            }),
            period_seconds: Some(period),
            timeout_seconds: Some(5),
            failure_threshold: Some(failures),
            ..Default::default()
        };
        let mut container = b.registry_container("quay-app", &image, args, env);
        container.ports = Some(vec![ContainerPort {
            name: Some(port_name.into()),
            container_port,
            protocol: Some("TCP".into()),
            ..Default::default()
        }]);
        container.startup_probe = Some(probe(5, 60));
        container.readiness_probe = Some(probe(10, 3));
        container.liveness_probe = Some(probe(15, 4));
        let d = b.deployment(
            &names.quay_app(),
            "quay-app",
            ComponentKind::Quay,
            quay.replicas,
            &config_hash,
            container,
        );
        b.push(kinds::deployment(), &d, ApplyMode::Apply)?;
    }
    let mirror = if plan.is_managed(ComponentKind::Mirror) {
        let m = Expectation {
            name: names.mirror(),
            image: image.clone(),
            config_hash: config_hash.clone(),
            replicas: replicas(ComponentKind::Mirror),
        };
        if hold {
            keep.insert(deployment_key(&names.mirror()));
        } else {
            let mut args: Vec<String> = ["worker", "--only", "mirror", "--config"]
                .map(String::from)
                .to_vec();
            args.push(format!("{CONFIG_DIR}/{CONFIG_FILE}"));
            let container = b.registry_container(
                "quay-mirror",
                &image,
                args,
                vec![env_var("QUAY_VERSION", &image_version(&image))],
            );
            let d = b.deployment(
                &names.mirror(),
                "quay-mirror",
                ComponentKind::Mirror,
                m.replicas,
                &config_hash,
                container,
            );
            b.push(kinds::deployment(), &d, ApplyMode::Apply)?;
        }
        Some(m)
    } else {
        None
    };

    // Autoscaling.
    if hpa {
        b.hpa(&names.quay_app(), "quay-app")?;
        if plan.is_managed(ComponentKind::Mirror) {
            b.hpa(&names.mirror(), "quay-mirror")?;
        }
    }

    // External access.
    if plan.is_managed(ComponentKind::Route) {
        b.route(port_name, service_port)?;
    }

    // Builds.
    let cross_namespace =
        plan.is_managed(ComponentKind::Builder) && plan.builder_namespace != plan.namespace;
    if plan.is_managed(ComponentKind::Builder) {
        b.builder()?;
    }

    // Monitoring.
    if plan.is_managed(ComponentKind::Monitoring) {
        b.monitoring(port_name, https)?;
    }

    let scheme = if https { "https" } else { "http" };
    let endpoint = match &plan.host {
        Some(h) => format!("{scheme}://{h}"),
        None => format!(
            "{scheme}://{}.{ns}.svc.{}",
            names.quay_app(),
            settings.cluster_domain
        ),
    };
    Ok(Desired {
        objects: b.objects,
        keep,
        config_hash,
        migration_job,
        migration,
        database_ready,
        quay,
        mirror,
        endpoint,
        version: image_version(&image),
        cross_namespace,
    })
}

/// The bundle's configuration with what managed components supply.
fn merged_config(plan: &Plan, material: &Material, db_uri: &str) -> Mapping {
    let mut c = plan.bundle.config.clone();
    let mut set_default = |key: &str, value: serde_yaml::Value| {
        if plan.bundle.get(key).is_none() {
            c.insert(key.into(), value);
        }
    };
    for k in [SECRET_KEY, DATABASE_SECRET_KEY] {
        if let Some(v) = material.keys.get(k) {
            set_default(k, v.clone().into());
        }
    }
    if let Some(h) = &plan.host {
        set_default("SERVER_HOSTNAME", h.clone().into());
    }
    set_default(
        "PREFERRED_URL_SCHEME",
        if plan.tls.serves_https() {
            "https"
        } else {
            "http"
        }
        .into(),
    );
    if plan.is_managed(ComponentKind::Mirror) {
        set_default("FEATURE_REPO_MIRROR", true.into());
    }
    if plan.is_managed(ComponentKind::Builder) {
        let build_manager: serde_yaml::Value = serde_yaml::from_str(
            "- ephemeral\n- ALLOWED_WORKER_COUNT: 1\n  ORCHESTRATOR_PREFIX: buildman/\n",
        )
        .unwrap_or_default();
        set_default("BUILD_MANAGER", build_manager);
        let mut executor = Mapping::new();
        executor.insert("EXECUTOR".into(), "kubernetes".into());
        executor.insert(
            "BUILDER_NAMESPACE".into(),
            plan.builder_namespace.clone().into(),
        );
        executor.insert("K8S_API_SERVER".into(), "kubernetes.default.svc:443".into());
        executor.insert("KUBERNETES_DISTRIBUTION".into(), "k8s".into());
        executor.insert("SERVICE_ACCOUNT_NAME".into(), plan.names().builder().into());
        set_default(
            "EXECUTORS",
            serde_yaml::Value::Sequence(vec![serde_yaml::Value::Mapping(executor)]),
        );
    }
    if plan.is_managed(ComponentKind::Postgres) {
        c.insert("DB_URI".into(), db_uri.to_owned().into());
    }
    c
}

fn env_var(name: &str, value: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: Some(value.into()),
        ..Default::default()
    }
}

/// Operator env first, overrides win (replacing by name, keeping order).
fn merge_env(mut base: Vec<EnvVar>, overrides: &[EnvVar]) -> Vec<EnvVar> {
    for o in overrides {
        match base.iter_mut().find(|e| e.name == o.name) {
            Some(e) => *e = o.clone(),
            None => base.push(o.clone()),
        }
    }
    base
}

fn default_security_context() -> SecurityContext {
    SecurityContext {
        allow_privilege_escalation: Some(false),
        run_as_non_root: Some(true),
        capabilities: Some(LinuxCapabilities {
            drop: Some(vec!["ALL".into()]),
            ..Default::default()
        }),
        seccomp_profile: Some(SeccompProfile {
            type_: "RuntimeDefault".into(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn requests(cpu: &str, memory: &str) -> ResourceRequirements {
    ResourceRequirements {
        requests: Some(BTreeMap::from([
            ("cpu".to_owned(), Quantity(cpu.into())),
            ("memory".to_owned(), Quantity(memory.into())),
        ])),
        ..Default::default()
    }
}

/// The pod-level parts of a pod template.
struct PodParts {
    volumes: Vec<Volume>,
    annotations: BTreeMap<String, String>,
    service_account: Option<String>,
    security: PodSecurityContext,
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

    /// A container running the registry image with the configuration mounted.
    fn registry_container(
        &self,
        name: &str,
        image: &str,
        mut args: Vec<String>,
        env: Vec<EnvVar>,
    ) -> Container {
        let managed_storage = self.plan.is_managed(ComponentKind::Objectstorage);
        let data_dir = if managed_storage {
            DATASTORAGE_DIR
        } else {
            SCRATCH_DIR
        };
        args.push("--data-dir".into());
        args.push(data_dir.into());
        Container {
            name: name.into(),
            image: Some(image.into()),
            args: Some(args),
            env: Some(env),
            volume_mounts: Some(vec![
                VolumeMount {
                    name: "config".into(),
                    mount_path: CONFIG_DIR.into(),
                    read_only: Some(true),
                    ..Default::default()
                },
                VolumeMount {
                    name: "data".into(),
                    mount_path: data_dir.into(),
                    ..Default::default()
                },
            ]),
            resources: Some(requests("250m", "512Mi")),
            security_context: Some(default_security_context()),
            ..Default::default()
        }
    }

    fn registry_volumes(&self) -> Vec<Volume> {
        let names = self.plan.names();
        let data = if self.plan.is_managed(ComponentKind::Objectstorage) {
            Volume {
                name: "data".into(),
                persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                    claim_name: names.datastorage(),
                    ..Default::default()
                }),
                ..Default::default()
            }
        } else {
            Volume {
                name: "data".into(),
                empty_dir: Some(EmptyDirVolumeSource::default()),
                ..Default::default()
            }
        };
        vec![
            Volume {
                name: "config".into(),
                secret: Some(SecretVolumeSource {
                    secret_name: Some(names.quay_config()),
                    ..Default::default()
                }),
                ..Default::default()
            },
            data,
        ]
    }

    /// A pod template for `component` with its overrides applied to `container`.
    fn pod_template(
        &self,
        component: &str,
        kind: ComponentKind,
        mut container: Container,
        pod: PodParts,
    ) -> PodTemplateSpec {
        let o: Overrides = self.plan.overrides(kind);
        let names = self.plan.names();
        let mut labels = names.selector(component);
        labels.extend(names.labels(component));
        for (k, v) in &o.labels {
            labels.entry(k.clone()).or_insert_with(|| v.clone());
        }
        let PodParts {
            volumes,
            mut annotations,
            service_account,
            security: pod_security,
        } = pod;
        annotations.extend(o.annotations.clone());
        container.env = Some(merge_env(container.env.take().unwrap_or_default(), &o.env));
        if let Some(r) = &o.resources {
            container.resources = Some(r.clone());
        }
        if let Some(s) = &o.security_context {
            container.security_context = Some(s.clone());
        }
        PodTemplateSpec {
            metadata: Some(ObjectMeta {
                labels: Some(labels),
                annotations: (!annotations.is_empty()).then_some(annotations),
                ..Default::default()
            }),
            spec: Some(PodSpec {
                containers: vec![container],
                volumes: Some(volumes),
                service_account_name: service_account,
                affinity: o.affinity.clone(),
                tolerations: (!o.tolerations.is_empty()).then(|| o.tolerations.clone()),
                node_selector: (!o.node_selector.is_empty()).then(|| o.node_selector.clone()),
                security_context: Some(pod_security),
                ..Default::default()
            }),
        }
    }

    fn registry_pod_security() -> PodSecurityContext {
        PodSecurityContext {
            run_as_non_root: Some(true),
            run_as_user: Some(1001),
            run_as_group: Some(1001),
            fs_group: Some(1001),
            ..Default::default()
        }
    }

    fn deployment(
        &self,
        name: &str,
        component: &str,
        kind: ComponentKind,
        replicas: Option<i32>,
        config_hash: &str,
        container: Container,
    ) -> Deployment {
        let names = self.plan.names();
        let template = self.pod_template(
            component,
            kind,
            container,
            PodParts {
                volumes: self.registry_volumes(),
                annotations: BTreeMap::from([(
                    CONFIG_HASH_ANNOTATION.to_owned(),
                    config_hash.to_owned(),
                )]),
                service_account: Some(names.quay_app()),
                security: Self::registry_pod_security(),
            },
        );
        Deployment {
            metadata: self.meta(name, &self.plan.namespace, component, Some(kind)),
            spec: DeploymentSpec {
                replicas,
                selector: LabelSelector {
                    match_labels: Some(names.selector(component)),
                    ..Default::default()
                },
                template,
                ..Default::default()
            },
            ..Default::default()
        }
    }

    fn pvc(
        &self,
        name: &str,
        component: &str,
        kind: ComponentKind,
        size: Quantity,
        storage_class: Option<String>,
    ) -> PersistentVolumeClaim {
        PersistentVolumeClaim {
            metadata: self.meta(name, &self.plan.namespace, component, Some(kind)),
            spec: Some(PersistentVolumeClaimSpec {
                access_modes: Some(vec!["ReadWriteOnce".into()]),
                resources: Some(VolumeResourceRequirements {
                    requests: Some(BTreeMap::from([("storage".to_owned(), size)])),
                    ..Default::default()
                }),
                storage_class_name: storage_class,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn postgres(&mut self) -> anyhow::Result<()> {
        let names = self.plan.names().clone();
        let ns = self.plan.namespace.clone();
        let kind = ComponentKind::Postgres;
        let o = self.plan.overrides(kind);
        let password = self
            .material
            .keys
            .get(DB_PASSWORD)
            .cloned()
            .unwrap_or_default();
        let credentials = Secret {
            metadata: self.meta(&names.database(), &ns, "postgres", Some(kind)),
            data: Some(BTreeMap::from([
                ("POSTGRES_USER".to_owned(), ByteString(DB_USER.into())),
                (
                    "POSTGRES_PASSWORD".to_owned(),
                    ByteString(password.into_bytes()),
                ),
                ("POSTGRES_DB".to_owned(), ByteString(DB_NAME.into())),
            ])),
            type_: Some("Opaque".into()),
            ..Default::default()
        };
        self.push(kinds::secret(), &credentials, ApplyMode::Apply)?;
        let pvc = self.pvc(
            &names.database(),
            "postgres",
            kind,
            o.volume_size.clone().unwrap_or(Quantity("10Gi".into())),
            o.storage_class_name.clone(),
        );
        self.push(kinds::pvc(), &pvc, ApplyMode::Apply)?;
        let service = Service {
            metadata: self.meta(&names.database(), &ns, "postgres", Some(kind)),
            spec: Some(ServiceSpec {
                selector: Some(names.selector("postgres")),
                ports: Some(vec![ServicePort {
                    name: Some("postgres".into()),
                    port: 5432,
                    target_port: Some(IntOrString::String("postgres".into())),
                    protocol: Some("TCP".into()),
                    ..Default::default()
                }]),
                type_: Some("ClusterIP".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        self.push(kinds::service(), &service, ApplyMode::Apply)?;
        let tcp = |period: i32, failures: i32| Probe {
            tcp_socket: Some(TCPSocketAction {
                port: IntOrString::String("postgres".into()),
                ..Default::default()
            }),
            period_seconds: Some(period),
            failure_threshold: Some(failures),
            ..Default::default()
        };
        let container = Container {
            name: "postgres".into(),
            image: Some(self.settings.postgres_image.clone()),
            env_from: Some(vec![EnvFromSource {
                secret_ref: Some(SecretEnvSource {
                    name: names.database(),
                    ..Default::default()
                }),
                ..Default::default()
            }]),
            env: Some(vec![env_var("PGDATA", "/var/lib/postgresql/data/pgdata")]),
            ports: Some(vec![ContainerPort {
                name: Some("postgres".into()),
                container_port: 5432,
                protocol: Some("TCP".into()),
                ..Default::default()
            }]),
            readiness_probe: Some(tcp(5, 3)),
            liveness_probe: Some(Probe {
                initial_delay_seconds: Some(30),
                ..tcp(15, 4)
            }),
            volume_mounts: Some(vec![VolumeMount {
                name: "data".into(),
                mount_path: "/var/lib/postgresql/data".into(),
                ..Default::default()
            }]),
            resources: Some(requests("100m", "256Mi")),
            // The official image starts as root, prepares PGDATA and steps down to the
            // `postgres` user (uid 999) itself: it needs CHOWN/SETUID, so capabilities stay.
            security_context: Some(SecurityContext {
                allow_privilege_escalation: Some(false),
                seccomp_profile: Some(SeccompProfile {
                    type_: "RuntimeDefault".into(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let template = self.pod_template(
            "postgres",
            kind,
            container,
            PodParts {
                volumes: vec![Volume {
                    name: "data".into(),
                    persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                        claim_name: names.database(),
                        ..Default::default()
                    }),
                    ..Default::default()
                }],
                annotations: BTreeMap::new(),
                service_account: None,
                security: PodSecurityContext {
                    fs_group: Some(999),
                    ..Default::default()
                },
            },
        );
        let sts = StatefulSet {
            metadata: self.meta(&names.database(), &ns, "postgres", Some(kind)),
            spec: StatefulSetSpec {
                replicas: Some(1),
                service_name: Some(names.database()),
                selector: LabelSelector {
                    match_labels: Some(names.selector("postgres")),
                    ..Default::default()
                },
                template,
                ..Default::default()
            },
            ..Default::default()
        };
        self.push(kinds::statefulset(), &sts, ApplyMode::Apply)
    }

    fn migration_job(&mut self, name: &str, image: &str) -> anyhow::Result<()> {
        let names = self.plan.names().clone();
        let mut container = self.registry_container(
            "quay-migrate",
            image,
            vec![
                "migrate".into(),
                "--config".into(),
                format!("{CONFIG_DIR}/{CONFIG_FILE}"),
            ],
            vec![env_var("QUAY_VERSION", &image_version(image))],
        );
        let o = self.plan.overrides(ComponentKind::Quay);
        if let Some(s) = &o.security_context {
            container.security_context = Some(s.clone());
        }
        let mut labels = names.selector("quay-migrate");
        labels.extend(names.labels("quay-migrate"));
        let job = Job {
            metadata: self.meta(name, &self.plan.namespace, "quay-migrate", None),
            spec: Some(JobSpec {
                backoff_limit: Some(2),
                template: PodTemplateSpec {
                    metadata: Some(ObjectMeta {
                        labels: Some(labels),
                        ..Default::default()
                    }),
                    spec: Some(PodSpec {
                        restart_policy: Some("Never".into()),
                        containers: vec![container],
                        volumes: Some(self.registry_volumes()),
                        service_account_name: Some(names.quay_app()),
                        security_context: Some(Self::registry_pod_security()),
                        node_selector: (!o.node_selector.is_empty())
                            .then(|| o.node_selector.clone()),
                        tolerations: (!o.tolerations.is_empty()).then(|| o.tolerations.clone()),
                        ..Default::default()
                    }),
                },
                ..Default::default()
            }),
            ..Default::default()
        };
        self.push(kinds::job(), &job, ApplyMode::Apply)
    }

    fn hpa(&mut self, target: &str, component: &str) -> anyhow::Result<()> {
        let metric = |name: &str| MetricSpec {
            type_: "Resource".into(),
            resource: Some(ResourceMetricSource {
                name: name.into(),
                target: MetricTarget {
                    type_: "Utilization".into(),
                    average_utilization: Some(90),
                    ..Default::default()
                },
            }),
            ..Default::default()
        };
        let hpa = HorizontalPodAutoscaler {
            metadata: self.meta(
                target,
                &self.plan.namespace,
                component,
                Some(ComponentKind::Horizontalpodautoscaler),
            ),
            spec: HorizontalPodAutoscalerSpec {
                scale_target_ref: CrossVersionObjectReference {
                    api_version: Some("apps/v1".into()),
                    kind: "Deployment".into(),
                    name: target.into(),
                },
                min_replicas: Some(2),
                max_replicas: 20,
                metrics: Some(vec![metric("cpu"), metric("memory")]),
                ..Default::default()
            },
            ..Default::default()
        };
        self.push(kinds::hpa(), &hpa, ApplyMode::Apply)
    }

    fn route(&mut self, port_name: &str, service_port: i32) -> anyhow::Result<()> {
        let names = self.plan.names().clone();
        let ns = self.plan.namespace.clone();
        let kind = ComponentKind::Route;
        let host = self.plan.host.as_deref().map(super::config::host_only);
        let https = self.plan.tls.serves_https();
        if self.plan.routes_api {
            let mut spec = json!({
                "to": {"kind": "Service", "name": names.quay_app(), "weight": 100},
                "port": {"targetPort": port_name},
            });
            if let Some(h) = host {
                spec["host"] = h.into();
            }
            if https {
                spec["tls"] = json!({"termination": "passthrough", "insecureEdgeTerminationPolicy": "Redirect"});
            }
            let body = json!({
                "apiVersion": "route.openshift.io/v1",
                "kind": "Route",
                "metadata": serde_json::to_value(self.meta(&names.route(), &ns, "route", Some(kind)))?,
                "spec": spec,
            });
            return self.push_value(kinds::route(), body, ApplyMode::Apply);
        }
        let mut meta = self.meta(&names.route(), &ns, "route", Some(kind));
        let annotations = meta.annotations.get_or_insert_with(BTreeMap::new);
        annotations
            .entry("nginx.ingress.kubernetes.io/proxy-body-size".into())
            .or_insert_with(|| "0".into());
        if https {
            annotations
                .entry("nginx.ingress.kubernetes.io/backend-protocol".into())
                .or_insert_with(|| "HTTPS".into());
        }
        let tls_secret = match &self.plan.tls {
            TlsSource::Managed => Some(names.tls()),
            TlsSource::Secret { name, .. } => Some(name.clone()),
            _ => None,
        };
        // A class named by the legacy annotation (from the route overrides) wins: the API
        // refuses an Ingress with both.
        let legacy_class = meta
            .annotations
            .as_ref()
            .is_some_and(|a| a.contains_key("kubernetes.io/ingress.class"));
        let ingress = Ingress {
            metadata: meta,
            spec: Some(IngressSpec {
                ingress_class_name: if legacy_class {
                    None
                } else {
                    self.settings.ingress_class_name.clone()
                },
                rules: Some(vec![IngressRule {
                    host: host.map(str::to_owned),
                    http: Some(HTTPIngressRuleValue {
                        paths: vec![HTTPIngressPath {
                            path: Some("/".into()),
                            path_type: "Prefix".into(),
                            backend: IngressBackend {
                                service: Some(IngressServiceBackend {
                                    name: names.quay_app(),
                                    port: Some(ServiceBackendPort {
                                        number: Some(service_port),
                                        ..Default::default()
                                    }),
                                }),
                                ..Default::default()
                            },
                        }],
                    }),
                }]),
                tls: match (host, tls_secret) {
                    (Some(h), Some(secret)) => Some(vec![IngressTLS {
                        hosts: Some(vec![h.to_owned()]),
                        secret_name: Some(secret),
                    }]),
                    _ => None,
                },
                ..Default::default()
            }),
            ..Default::default()
        };
        self.push(kinds::ingress(), &ingress, ApplyMode::Apply)
    }

    fn builder(&mut self) -> anyhow::Result<()> {
        let names = self.plan.names().clone();
        let ns = self.plan.builder_namespace.clone();
        let kind = Some(ComponentKind::Builder);
        let sa = ServiceAccount {
            metadata: self.meta(&names.builder(), &ns, "builder", kind),
            ..Default::default()
        };
        self.push(kinds::service_account(), &sa, ApplyMode::Apply)?;
        let rule = |groups: &[&str], resources: &[&str], verbs: &[&str]| PolicyRule {
            api_groups: Some(groups.iter().map(|s| s.to_string()).collect()),
            resources: Some(resources.iter().map(|s| s.to_string()).collect()),
            verbs: verbs.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        };
        let role = Role {
            metadata: self.meta(&names.builder(), &ns, "builder", kind),
            rules: Some(vec![
                rule(
                    &["batch"],
                    &["jobs"],
                    &["create", "delete", "get", "list", "watch"],
                ),
                rule(&[""], &["pods"], &["delete", "get", "list", "watch"]),
                rule(&[""], &["pods/log"], &["get"]),
                rule(&[""], &["secrets"], &["create", "delete", "get"]),
            ]),
        };
        self.push(kinds::role(), &role, ApplyMode::Apply)?;
        let binding = RoleBinding {
            metadata: self.meta(&names.builder(), &ns, "builder", kind),
            role_ref: RoleRef {
                api_group: Some("rbac.authorization.k8s.io".into()),
                kind: "Role".into(),
                name: names.builder(),
            },
            subjects: Some(vec![Subject {
                kind: "ServiceAccount".into(),
                name: names.quay_app(),
                namespace: Some(self.plan.namespace.clone()),
                ..Default::default()
            }]),
        };
        self.push(kinds::role_binding(), &binding, ApplyMode::Apply)
    }

    fn monitoring(&mut self, port_name: &str, https: bool) -> anyhow::Result<()> {
        let names = self.plan.names().clone();
        let ns = self.plan.namespace.clone();
        let kind = Some(ComponentKind::Monitoring);
        let mut endpoint = json!({
            "port": port_name,
            "path": "/metrics",
            "scheme": if https { "https" } else { "http" },
            "interval": "30s",
        });
        if https {
            endpoint["tlsConfig"] = match &self.plan.tls {
                TlsSource::Managed => json!({
                    "ca": {"secret": {"name": names.tls(), "key": "ca.crt"}},
                    "serverName": format!("{}.{ns}.svc", names.quay_app()),
                }),
                _ => json!({"insecureSkipVerify": true}),
            };
        }
        let monitor = json!({
            "apiVersion": "monitoring.coreos.com/v1",
            "kind": "ServiceMonitor",
            "metadata": serde_json::to_value(self.meta(&names.metrics(), &ns, "monitoring", kind))?,
            "spec": {
                "selector": {"matchLabels": names.selector("quay-app")},
                "namespaceSelector": {"matchNames": [ns]},
                "endpoints": [endpoint],
            },
        });
        self.push_value(kinds::service_monitor(), monitor, ApplyMode::Apply)?;
        let job = names.quay_app();
        let rules = json!({
            "apiVersion": "monitoring.coreos.com/v1",
            "kind": "PrometheusRule",
            "metadata": serde_json::to_value(self.meta(&names.alerts(), &ns, "monitoring", kind))?,
            "spec": {"groups": [{
                "name": format!("quayside-{}", names.registry),
                "rules": [
                    {
                        "alert": "QuaysideRegistryDown",
                        "expr": format!("absent(up{{job=\"{job}\",namespace=\"{ns}\"}} == 1)"),
                        "for": "5m",
                        "labels": {"severity": "critical"},
                        "annotations": {"summary": format!("No instance of registry {ns}/{} answers its metrics endpoint", names.registry)},
                    },
                    {
                        "alert": "QuaysideHighServerErrorRate",
                        "expr": format!("sum(rate(quayside_http_requests_total{{job=\"{job}\",namespace=\"{ns}\",status=~\"5..\"}}[5m])) / sum(rate(quayside_http_requests_total{{job=\"{job}\",namespace=\"{ns}\"}}[5m])) > 0.05"),
                        "for": "10m",
                        "labels": {"severity": "warning"},
                        "annotations": {"summary": format!("More than 5% of the requests to registry {ns}/{} fail with a server error", names.registry)},
                    },
                ],
            }]},
        });
        self.push_value(kinds::prometheus_rule(), rules, ApplyMode::Apply)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quay::fixtures::*;
    use crate::quay::material::prepare;
    use crate::quay::observed::SecretObs;
    use crate::quay::validate::validate;
    use chrono::Utc;

    fn run(registry: &crate::crd::QuayRegistry, observed: &Observed) -> (Plan, Material, Desired) {
        let s = settings();
        let plan = validate(registry, observed, &s).expect("valid");
        let material = prepare(&plan, observed, &s, Utc::now()).expect("material");
        let desired = build(&plan, &material, observed, &s).expect("build");
        (plan, material, desired)
    }

    /// Builds twice: once to learn the migration Job's name, then with the database ready and
    /// that Job complete.
    fn run_ready(
        registry: &crate::crd::QuayRegistry,
        mut observed: Observed,
    ) -> (Plan, Material, Desired, Observed) {
        let (_, _, first) = run(registry, &observed);
        apply_to(&mut observed, &first);
        database_and_migrations_done(&mut observed, &first.migration_job);
        let (p, m, d) = run(registry, &observed);
        (p, m, d, observed)
    }

    fn config_yaml(desired: &Desired) -> serde_yaml::Value {
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
    fn generated_configuration_merges_managed_components() {
        let (_, m, d) = run(&sample("quayregistry-minimal.yaml"), &Observed::empty());
        let c = config_yaml(&d);
        assert_eq!(
            c["DB_URI"].as_str().unwrap(),
            format!(
                "postgresql://quayside:{}@registry-quay-database.quay.svc.cluster.local:5432/quayside",
                m.keys[DB_PASSWORD]
            )
        );
        assert_eq!(c["SECRET_KEY"].as_str().unwrap(), m.keys[SECRET_KEY]);
        assert_eq!(c["PREFERRED_URL_SCHEME"], "https");
        assert_eq!(c["FEATURE_REPO_MIRROR"], true);
        assert_eq!(c["EXECUTORS"][0]["BUILDER_NAMESPACE"], "quay");
        assert_eq!(
            c["EXECUTORS"][0]["SERVICE_ACCOUNT_NAME"],
            "registry-quay-builder"
        );
        assert!(
            c.get("DISTRIBUTED_STORAGE_CONFIG").is_none(),
            "managed storage is --data-dir"
        );
        assert!(
            c.get("SERVER_HOSTNAME").is_none(),
            "no host known: the registry uses Host"
        );
        let files = secret_files(find(&d, "Secret", "registry-quay-config"));
        assert!(files["ssl.cert"].contains("BEGIN CERTIFICATE"));
        assert!(files["ssl.key"].contains("PRIVATE KEY"));
        assert_eq!(
            d.endpoint,
            "https://registry-quay-app.quay.svc.cluster.local"
        );
        assert_eq!(d.version, "1.2.3");
    }

    #[test]
    fn after_migrations_the_registry_runs_with_https_probes_and_its_config_hash() {
        let (_, _, d, _) = run_ready(&sample("quayregistry-minimal.yaml"), Observed::empty());
        assert_eq!(d.migration, MigrationState::Succeeded);
        let job = find(&d, "Job", &d.migration_job);
        assert_eq!(
            job["spec"]["template"]["spec"]["containers"][0]["args"],
            json!([
                "migrate",
                "--config",
                "/conf/stack/config.yaml",
                "--data-dir",
                "/datastorage"
            ])
        );
        let dep = find(&d, "Deployment", "registry-quay-app");
        assert!(
            dep["spec"].get("replicas").is_none(),
            "the HPA owns replicas"
        );
        let pod = &dep["spec"]["template"];
        assert_eq!(
            pod["metadata"]["annotations"][CONFIG_HASH_ANNOTATION],
            d.config_hash
        );
        let c = &pod["spec"]["containers"][0];
        assert_eq!(c["image"], "quay.io/quayside/quayside:1.2.3");
        assert_eq!(
            c["args"],
            json!([
                "serve",
                "--config",
                "/conf/stack/config.yaml",
                "--data-dir",
                "/datastorage"
            ])
        );
        assert_eq!(
            c["env"][0],
            json!({"name": "QUAYSIDE_LISTEN", "value": "0.0.0.0:8443"})
        );
        assert_eq!(
            c["ports"][0],
            json!({"name": "https", "containerPort": 8443, "protocol": "TCP"})
        );
        for p in ["readinessProbe", "livenessProbe", "startupProbe"] {
            assert_eq!(c[p]["httpGet"]["path"], "/health/instance");
            assert_eq!(c[p]["httpGet"]["scheme"], "HTTPS");
        }
        assert_eq!(
            pod["spec"]["volumes"][1]["persistentVolumeClaim"]["claimName"],
            "registry-quay-datastorage"
        );
        let svc = find(&d, "Service", "registry-quay-app");
        assert_eq!(svc["spec"]["ports"][0]["port"], 443);
        let mirror = find(&d, "Deployment", "registry-quay-mirror");
        assert_eq!(
            mirror["spec"]["template"]["spec"]["containers"][0]["args"]
                .as_array()
                .unwrap()[0..3],
            json!(["worker", "--only", "mirror"]).as_array().unwrap()[..]
        );
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
    fn a_new_image_holds_the_running_deployments_until_its_migration_succeeds() {
        let registry = sample("quayregistry-minimal.yaml");
        let (_, _, done, mut observed) = run_ready(&registry, Observed::empty());
        put(
            &mut observed,
            &kinds::deployment(),
            "registry-quay-app",
            json!({"spec": {"selector": {}, "template": {}}}),
        );
        let mut s = settings();
        s.registry_image = "quay.io/quayside/quayside:1.3.0".into();
        let plan = validate(&registry, &observed, &s).unwrap();
        let m = prepare(&plan, &observed, &s, Utc::now()).unwrap();
        let d = build(&plan, &m, &observed, &s).unwrap();
        assert_ne!(d.migration_job, done.migration_job);
        assert_eq!(d.migration, MigrationState::Running);
        assert!(
            d.objects
                .iter()
                .any(|o| o.key.kind == "Job" && o.key.name == d.migration_job)
        );
        assert!(!d.objects.iter().any(|o| o.key.kind == "Deployment"));
        assert!(d.keep.contains(&ObjKey::new(
            &kinds::deployment().ar,
            "quay",
            "registry-quay-app"
        )));

        put(
            &mut observed,
            &kinds::job(),
            &d.migration_job,
            json!({"spec": {"template": {}}, "status": {"failed": 4, "conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit"}]}}),
        );
        let d = build(&plan, &m, &observed, &s).unwrap();
        let MigrationState::Failed(msg) = d.migration else {
            panic!("{:?}", d.migration)
        };
        assert!(
            msg.contains("BackoffLimitExceeded") && msg.contains("delete the Job to retry"),
            "{msg}"
        );
    }

    #[test]
    fn a_configuration_change_is_validated_by_a_new_migration_job_first() {
        let registry = cr("spec:\n  configBundleSecret: bundle\n");
        let (_, _, done, mut observed) =
            run_ready(&registry, observed_with_bundle("FEATURE_X: true\n"));
        assert!(done.objects.iter().any(|o| o.key.kind == "Deployment"));
        observed.bundle = observed_with_bundle("FEATURE_X: false\n").bundle;
        let (_, _, d) = run(&registry, &observed);
        assert_ne!(d.config_hash, done.config_hash);
        assert_ne!(d.migration_job, done.migration_job);
        assert_eq!(d.migration, MigrationState::Running);
        assert!(!d.objects.iter().any(|o| o.key.kind == "Deployment"));
        assert!(d.keep.contains(&ObjKey::new(
            &kinds::deployment().ar,
            "quay",
            "registry-quay-app"
        )));
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
    fn a_builder_namespace_elsewhere_gets_labelled_objects_without_owner_references() {
        let registry = cr("spec:\n  configBundleSecret: bundle\n");
        let (_, _, d) = run(
            &registry,
            &observed_with_bundle(
                "EXECUTORS:\n  - EXECUTOR: kubernetes\n    BUILDER_NAMESPACE: builds\n",
            ),
        );
        assert!(d.cross_namespace);
        let role = d.objects.iter().find(|o| o.key.kind == "Role").unwrap();
        assert_eq!(role.key.namespace, "builds");
        assert!(role.body["metadata"].get("ownerReferences").is_none());
        assert_eq!(
            role.body["metadata"]["labels"]["quayside.dev/quayregistry"],
            "registry"
        );
        let binding = find(&d, "RoleBinding", "registry-quay-builder");
        assert_eq!(
            binding["subjects"][0],
            json!({"kind": "ServiceAccount", "name": "registry-quay-app", "namespace": "quay"})
        );
        let c = config_yaml(&d);
        assert_eq!(c["EXECUTORS"][0]["BUILDER_NAMESPACE"], "builds");
        assert!(
            c["EXECUTORS"][0].get("SERVICE_ACCOUNT_NAME").is_none(),
            "the user's executors are kept as written"
        );
    }

    #[test]
    fn ingress_class_comes_from_the_operator_or_the_route_overrides() {
        let mut s = settings();
        s.ingress_class_name = Some("nginx".into());
        let registry = sample("quayregistry-minimal.yaml");
        let plan = validate(&registry, &Observed::empty(), &s).unwrap();
        let m = prepare(&plan, &Observed::empty(), &s, Utc::now()).unwrap();
        let d = build(&plan, &m, &Observed::empty(), &s).unwrap();
        let ingress = find(&d, "Ingress", "registry-quay");
        assert_eq!(ingress["spec"]["ingressClassName"], "nginx");
        assert_eq!(
            ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/backend-protocol"],
            "HTTPS"
        );
        assert!(
            ingress["spec"]["rules"][0].get("host").is_none(),
            "no host known: any host"
        );

        let registry = cr(
            "spec:\n  components:\n    - kind: route\n      overrides:\n        annotations:\n          kubernetes.io/ingress.class: traefik\n          nginx.ingress.kubernetes.io/proxy-body-size: 10g\n",
        );
        let plan = validate(&registry, &Observed::empty(), &s).unwrap();
        let d = build(&plan, &m, &Observed::empty(), &s).unwrap();
        let ingress = find(&d, "Ingress", "registry-quay");
        assert!(ingress["spec"].get("ingressClassName").is_none());
        assert_eq!(
            ingress["metadata"]["annotations"]["kubernetes.io/ingress.class"],
            "traefik"
        );
        assert_eq!(
            ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-body-size"],
            "10g"
        );
    }

    #[test]
    fn unmanaged_tls_without_a_certificate_serves_http() {
        let registry = cr("spec:\n  components:\n    - kind: tls\n      managed: false\n");
        let (_, _, d, _) = run_ready(&registry, Observed::empty());
        let dep = find(&d, "Deployment", "registry-quay-app");
        let c = &dep["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(c["ports"][0]["containerPort"], 8080);
        assert_eq!(c["readinessProbe"]["httpGet"]["scheme"], "HTTP");
        assert_eq!(
            find(&d, "Service", "registry-quay-app")["spec"]["ports"][0]["port"],
            80
        );
        assert_eq!(config_yaml(&d)["PREFERRED_URL_SCHEME"], "http");
        assert!(d.endpoint.starts_with("http://"));
    }

    #[test]
    fn image_versions() {
        assert_eq!(image_version("quay.io/quayside/quayside:1.2.3"), "1.2.3");
        assert_eq!(image_version("localhost:5000/quayside"), "latest");
        assert_eq!(image_version("r.io/q:v2@sha256:abc"), "v2");
    }
}
