//! The `QuayRegistry` custom resource (`quayside.dev/v1alpha1`).
//!
//! Rules:
//! - The spec accepts the shape of Red Hat's quay-operator (`configBundleSecret`,
//!   `components: [{kind, managed, overrides, secretRef}]`), so an existing manifest migrates by
//!   changing `apiVersion`. The operator never writes the spec back: defaults for missing
//!   components are computed on every reconcile (see [`crate::controllers::quayregistry::validate`]).
//! - Field names are camelCase, every field has a doc comment (it becomes the schema
//!   description), optional fields are skipped when empty.
//! - The schema carries the rules the API server can check on its own (enum of kinds, one entry
//!   per kind, CEL rules for overrides on unmanaged components and for `replicas` next to a
//!   managed HPA). The operator checks the same rules again, because not every cluster (nor the
//!   test emulator) evaluates CEL.

use std::collections::BTreeMap;
use std::fmt;

use k8s_openapi::api::core::v1::{
    Affinity, EnvVar, LocalObjectReference, ResourceRequirements, SecurityContext, Toleration,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Condition;

/// API group of every Quayside custom resource.
pub const GROUP: &str = "quayside.dev";
/// The served (and stored) version.
pub const VERSION: &str = "v1alpha1";

/// Desired state of a Quayside registry and the components the operator runs for it.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "quayside.dev",
    version = "v1alpha1",
    kind = "QuayRegistry",
    plural = "quayregistries",
    singular = "quayregistry",
    shortname = "quay",
    namespaced,
    status = "QuayRegistryStatus",
    doc = "A Quayside registry: the registry Deployment and the components it needs (database, storage, TLS, ingress, ...), reconciled by quayside-operator.",
    printcolumn(
        name = "Version",
        type_ = "string",
        json_path = ".status.currentVersion",
        description = "Registry version running"
    ),
    printcolumn(
        name = "Endpoint",
        type_ = "string",
        json_path = ".status.registryEndpoint",
        description = "Where clients reach the registry"
    ),
    printcolumn(
        name = "Available",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Available\")].status",
        description = "Whether the registry serves requests"
    ),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    validation = kube::core::Rule::new(
        "!has(self.spec.components) || !self.spec.components.exists(c, has(c.overrides) && has(c.overrides.replicas) && c.overrides.replicas != 0) || self.spec.components.exists(c, c.kind == 'horizontalpodautoscaler' && has(c.managed) && !c.managed)"
    )
    .message("overrides.replicas conflicts with a managed horizontalpodautoscaler component: declare it with managed: false")
)]
#[serde(rename_all = "camelCase")]
pub struct QuayRegistrySpec {
    /// Name of a Secret in the same namespace holding the base `config.yaml` (and optionally
    /// `ssl.cert`, `ssl.key`, `extra_ca_cert_*`). When absent, the operator creates and owns an
    /// empty bundle named `<name>-config-bundle` that you may edit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_bundle_secret: Option<String>,
    /// How the operator handles each component. Kinds left out are managed when the cluster can
    /// support them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["kind"]))]
    pub components: Vec<Component>,
}

/// How the operator handles one component of the registry.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = kube::core::Rule::new("!has(self.managed) || self.managed || !has(self.overrides)").message("cannot set overrides on an unmanaged component"),
    validation = kube::core::Rule::new("!has(self.secretRef) || (has(self.managed) && !self.managed)").message("secretRef can only be set on an unmanaged component"),
    validation = kube::core::Rule::new("!has(self.secretRef) || self.secretRef.name.size() != 0").message("secretRef.name must not be empty")
)]
pub struct Component {
    /// Which component this entry is about.
    pub kind: ComponentKind,
    /// Whether the operator runs this component (true, the default) or the config bundle
    /// supplies it (false).
    #[serde(default = "managed_default")]
    #[schemars(default = "managed_default")]
    pub managed: bool,
    /// Settings for the objects the operator creates for a managed component.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overrides: Option<Overrides>,
    /// For an unmanaged `tls` component: a `kubernetes.io/tls` Secret (`tls.crt`, `tls.key`)
    /// holding the registry's certificate, for example one kept by cert-manager. Pods roll when
    /// it changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<LocalObjectReference>,
}

fn managed_default() -> bool {
    true
}

impl Component {
    /// A component entry with no overrides.
    pub fn new(kind: ComponentKind, managed: bool) -> Self {
        Component {
            kind,
            managed,
            overrides: None,
            secret_ref: None,
        }
    }
}

/// The kinds of components a QuayRegistry is made of.
#[derive(
    JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash,
)]
#[serde(rename_all = "lowercase")]
pub enum ComponentKind {
    /// The registry Deployment, its Service, ServiceAccount, PodDisruptionBudget, generated
    /// configuration and migration Job.
    Quay,
    /// A PostgreSQL StatefulSet for the registry's metadata.
    Postgres,
    /// A PersistentVolumeClaim-backed local blob store.
    Objectstorage,
    /// An operator-made CA and serving certificate.
    Tls,
    /// An OpenShift Route, or an Ingress where Routes do not exist.
    Route,
    /// HorizontalPodAutoscalers for the registry and mirror Deployments.
    Horizontalpodautoscaler,
    /// The repository-mirroring worker Deployment.
    Mirror,
    /// RBAC and settings for build Jobs.
    Builder,
    /// ServiceMonitor and PrometheusRule (when the Prometheus operator's API exists).
    Monitoring,
    /// Security scanning (not implemented by Quayside yet).
    Clair,
    /// Accepted for compatibility; Quayside needs no Redis.
    Redis,
    /// Accepted for compatibility; Quayside needs no separate scanner database.
    Clairpostgres,
}

impl ComponentKind {
    /// Every kind, in the order conditions are reported.
    pub const ALL: [ComponentKind; 12] = [
        ComponentKind::Quay,
        ComponentKind::Postgres,
        ComponentKind::Objectstorage,
        ComponentKind::Tls,
        ComponentKind::Route,
        ComponentKind::Horizontalpodautoscaler,
        ComponentKind::Mirror,
        ComponentKind::Builder,
        ComponentKind::Monitoring,
        ComponentKind::Clair,
        ComponentKind::Redis,
        ComponentKind::Clairpostgres,
    ];

    /// The kind as written in manifests (`objectstorage`).
    pub fn as_str(self) -> &'static str {
        match self {
            ComponentKind::Quay => "quay",
            ComponentKind::Postgres => "postgres",
            ComponentKind::Objectstorage => "objectstorage",
            ComponentKind::Tls => "tls",
            ComponentKind::Route => "route",
            ComponentKind::Horizontalpodautoscaler => "horizontalpodautoscaler",
            ComponentKind::Mirror => "mirror",
            ComponentKind::Builder => "builder",
            ComponentKind::Monitoring => "monitoring",
            ComponentKind::Clair => "clair",
            ComponentKind::Redis => "redis",
            ComponentKind::Clairpostgres => "clairpostgres",
        }
    }

    /// The `Component<Kind>Ready` condition type, named as quay-operator names it.
    pub fn condition_type(self) -> &'static str {
        match self {
            ComponentKind::Quay => "ComponentQuayReady",
            ComponentKind::Postgres => "ComponentPostgresReady",
            ComponentKind::Objectstorage => "ComponentObjectStorageReady",
            ComponentKind::Tls => "ComponentTLSReady",
            ComponentKind::Route => "ComponentRouteReady",
            ComponentKind::Horizontalpodautoscaler => "ComponentHPAReady",
            ComponentKind::Mirror => "ComponentMirrorReady",
            ComponentKind::Builder => "ComponentBuilderReady",
            ComponentKind::Monitoring => "ComponentMonitoringReady",
            ComponentKind::Clair => "ComponentClairReady",
            ComponentKind::Redis => "ComponentRedisReady",
            ComponentKind::Clairpostgres => "ComponentClairPostgresReady",
        }
    }
}

impl fmt::Display for ComponentKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Settings applied to the objects of a managed component. Each component accepts only the
/// overrides that make sense for it (the operator reports `ComponentOverrideInvalid` otherwise).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Overrides {
    /// Number of pods (quay, mirror). Conflicts with a managed horizontalpodautoscaler, except 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub replicas: Option<i32>,
    /// Extra environment variables for the component's containers; they win over the
    /// operator's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<EnvVar>,
    /// Compute resources of the component's main container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// Scheduling affinity of the component's pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Affinity>,
    /// Tolerations of the component's pods.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<Toleration>,
    /// Node selector of the component's pods.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,
    /// Extra labels on the component's objects (and pods).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Extra annotations on the component's objects (and pods); for `route`, the Ingress or
    /// Route annotations (e.g. the ingress class or controller settings).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Size of the component's PersistentVolumeClaim (postgres, objectstorage).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_size: Option<Quantity>,
    /// StorageClass of the component's PersistentVolumeClaim (postgres, objectstorage).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class_name: Option<String>,
    /// Security context of the component's containers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_context: Option<SecurityContext>,
}

impl Overrides {
    /// The names of the overrides that are set, as written in manifests.
    pub fn set_fields(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if self.replicas.is_some() {
            out.push("replicas");
        }
        if !self.env.is_empty() {
            out.push("env");
        }
        if self.resources.is_some() {
            out.push("resources");
        }
        if self.affinity.is_some() {
            out.push("affinity");
        }
        if !self.tolerations.is_empty() {
            out.push("tolerations");
        }
        if !self.node_selector.is_empty() {
            out.push("nodeSelector");
        }
        if !self.labels.is_empty() {
            out.push("labels");
        }
        if !self.annotations.is_empty() {
            out.push("annotations");
        }
        if self.volume_size.is_some() {
            out.push("volumeSize");
        }
        if self.storage_class_name.is_some() {
            out.push("storageClassName");
        }
        if self.security_context.is_some() {
            out.push("securityContext");
        }
        out
    }
}

/// Observed state of a QuayRegistry, written by the operator only.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct QuayRegistryStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The registry version fully rolled out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_version: Option<String>,
    /// Where clients reach the registry (`https://host`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry_endpoint: Option<String>,
    /// The Secret with the admin credentials content resources (Organization, Robot, ...) use:
    /// the superuser the operator created, or one a person supplied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_credentials_secret: Option<String>,
    /// `Available`, `ComponentsCreated`, `RolloutBlocked`, `AdminCredentials` and
    /// `Component<Kind>Ready`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
}

impl QuayRegistry {
    /// The condition of the given type, if reported.
    pub fn condition(&self, type_: &str) -> Option<&Condition> {
        self.status
            .as_ref()?
            .conditions
            .iter()
            .find(|c| c.type_ == type_)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::CustomResourceExt;

    const FULL: &str = r#"
apiVersion: quayside.dev/v1alpha1
kind: QuayRegistry
metadata:
  name: registry
  namespace: quay
spec:
  configBundleSecret: bundle
  components:
    - kind: objectstorage
      managed: false
    - kind: tls
      managed: false
      secretRef:
        name: registry-tls
    - kind: quay
      managed: true
      overrides:
        replicas: 2
        env:
          - name: DEBUGLOG
            value: "true"
        resources:
          requests:
            cpu: 500m
            memory: 512Mi
        nodeSelector:
          disk: ssd
        labels:
          team: registry
    - kind: postgres
      managed: true
      overrides:
        volumeSize: 10Gi
        storageClassName: fast
"#;

    #[test]
    fn yaml_round_trip_keeps_every_field() {
        let r: QuayRegistry = serde_yaml::from_str(FULL).unwrap();
        assert_eq!(r.spec.config_bundle_secret.as_deref(), Some("bundle"));
        assert_eq!(r.spec.components.len(), 4);
        let quay = &r.spec.components[2];
        assert_eq!(quay.kind, ComponentKind::Quay);
        let o = quay.overrides.as_ref().unwrap();
        assert_eq!(o.replicas, Some(2));
        assert_eq!(
            o.set_fields(),
            ["replicas", "env", "resources", "nodeSelector", "labels"]
        );
        assert_eq!(
            r.spec.components[1].secret_ref.as_ref().unwrap().name,
            "registry-tls"
        );
        let back = serde_yaml::to_string(&r).unwrap();
        let again: QuayRegistry = serde_yaml::from_str(&back).unwrap();
        assert_eq!(again.spec, r.spec);
    }

    #[test]
    fn a_quay_operator_manifest_parses_after_changing_api_version() {
        let manifest = r#"
apiVersion: quayside.dev/v1alpha1
kind: QuayRegistry
metadata:
  name: unmanaged
spec:
  configBundleSecret: quay-config-bundle-abc123
  components:
    - kind: postgres
      managed: false
    - kind: redis
      managed: false
    - kind: clair
      managed: false
    - kind: objectstorage
      managed: false
    - kind: clairpostgres
      managed: true
      overrides:
        storageClassName: "local-path"
"#;
        let r: QuayRegistry = serde_yaml::from_str(manifest).unwrap();
        assert_eq!(r.spec.components.len(), 5);
        assert_eq!(r.spec.components[1].kind, ComponentKind::Redis);
    }

    #[test]
    fn managed_defaults_to_true_and_empty_fields_are_not_written() {
        let c: Component = serde_yaml::from_str("kind: mirror").unwrap();
        assert!(c.managed);
        let r = QuayRegistry::new("r", QuayRegistrySpec::default());
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["spec"], serde_json::json!({}));
    }

    #[test]
    fn the_schema_carries_the_validation_rules_and_printer_columns() {
        let crd = serde_json::to_value(QuayRegistry::crd()).unwrap();
        let version = &crd["spec"]["versions"][0];
        assert_eq!(version["name"], "v1alpha1");
        assert!(version["subresources"]["status"].is_object());
        let columns: Vec<&str> = version["additionalPrinterColumns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(columns, ["Version", "Endpoint", "Available", "Age"]);
        let text = crd.to_string();
        for needle in [
            "cannot set overrides on an unmanaged component",
            "overrides.replicas conflicts with a managed horizontalpodautoscaler",
            "secretRef can only be set on an unmanaged component",
            "\"x-kubernetes-list-map-keys\":[\"kind\"]",
        ] {
            assert!(text.contains(needle), "missing {needle}");
        }
        let kinds = &version["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["components"]
            ["items"]["properties"]["kind"]["enum"];
        assert_eq!(kinds.as_array().unwrap().len(), 12);
    }
}
