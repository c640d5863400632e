//! The kind registry: which resources exist, where they are served and how they behave.
//!
//! Rules:
//! - Every served resource is a [`ResourceType`], identified by `(group, version, plural)` in
//!   URLs and by `(group, kind)` in objects. Built-in kinds come from `BUILTINS`; custom
//!   resources are added when a `CustomResourceDefinition` is created and removed when it goes.
//! - Objects are stored once per `(group, plural)` ([`ResourceType::store_key`]); a CRD with
//!   several served versions shares one storage and only the `apiVersion` is rewritten on read
//!   (conversion strategy `None`, as the apiserver does without a webhook). `core/v1` and
//!   `events.k8s.io/v1` Events share one storage too, converted by [`crate::events`].
//! - `generation` counts changes to everything except `metadata`, `status`, `apiVersion` and
//!   `kind`; for kinds with a `status` subresource, writes to the main resource keep the stored
//!   status and writes to `/status` keep everything else.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;

/// CRD-specific data for one served version of a custom resource.
#[derive(Debug, Clone)]
pub struct CrdVersion {
    /// `metadata.name` of the defining CRD (`plural.group`).
    pub crd_name: String,
    /// `schema.openAPIV3Schema` of this version, if any.
    pub schema: Option<Value>,
    /// `additionalPrinterColumns` of this version.
    pub printer_columns: Vec<Value>,
    /// The storage version's name.
    pub storage_version: String,
}

/// One served resource (one group/version/plural).
#[derive(Debug, Clone)]
pub struct ResourceType {
    /// API group, empty for the core group.
    pub group: String,
    /// Served version.
    pub version: String,
    /// Kind of its objects.
    pub kind: String,
    /// URL plural.
    pub plural: String,
    /// Lower-case singular name.
    pub singular: String,
    /// Whether objects live in namespaces.
    pub namespaced: bool,
    /// kubectl short names.
    pub short_names: Vec<String>,
    /// Discovery categories (`all`).
    pub categories: Vec<String>,
    /// Has a `status` subresource.
    pub status_subresource: bool,
    /// Present for custom resources.
    pub crd: Option<CrdVersion>,
}

impl ResourceType {
    /// `v1` for the core group, `group/version` otherwise.
    pub fn api_version(&self) -> String {
        api_version(&self.group, &self.version)
    }

    /// Storage key shared by all versions of this resource. Both `Event` kinds share the core
    /// storage (see [`crate::events`]).
    pub fn store_key(&self) -> String {
        if self.is("events.k8s.io", "Event") {
            return "/events".into();
        }
        format!("{}/{}", self.group, self.plural)
    }

    /// `Kind` + `List`.
    pub fn list_kind(&self) -> String {
        format!("{}List", self.kind)
    }

    /// True for the given group/kind pair.
    pub fn is(&self, group: &str, kind: &str) -> bool {
        self.group == group && self.kind == kind
    }
}

/// `v1` for the core group, `group/version` otherwise.
pub fn api_version(group: &str, version: &str) -> String {
    if group.is_empty() {
        version.to_owned()
    } else {
        format!("{group}/{version}")
    }
}

/// Splits an `apiVersion` into group and version.
pub fn split_api_version(api_version: &str) -> (&str, &str) {
    match api_version.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version),
    }
}

struct Builtin {
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    namespaced: bool,
    short: &'static [&'static str],
    status: bool,
    all: bool,
}

#[allow(clippy::too_many_arguments)] // a table-row constructor
const fn b(
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    namespaced: bool,
    short: &'static [&'static str],
    status: bool,
    all: bool,
) -> Builtin {
    Builtin {
        group,
        version,
        kind,
        plural,
        namespaced,
        short,
        status,
        all,
    }
}

/// The built-in kinds the emulator serves (those the operator, kubectl and Helm touch).
/// Columns: group, version, kind, plural, namespaced, short names, status subresource,
/// category `all`.
#[rustfmt::skip]
const BUILTINS: &[Builtin] = &[
    b("", "v1", "Namespace", "namespaces", false, &["ns"], true, false),
    b("", "v1", "Secret", "secrets", true, &[], false, false),
    b("", "v1", "ConfigMap", "configmaps", true, &["cm"], false, false),
    b("", "v1", "Service", "services", true, &["svc"], true, true),
    b("", "v1", "ServiceAccount", "serviceaccounts", true, &["sa"], false, false),
    b("", "v1", "Pod", "pods", true, &["po"], true, true),
    b("", "v1", "Event", "events", true, &["ev"], false, false),
    b("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", true, &["pvc"], true, false),
    b("", "v1", "Endpoints", "endpoints", true, &["ep"], false, false),
    b("", "v1", "Node", "nodes", false, &["no"], true, false),
    b("events.k8s.io", "v1", "Event", "events", true, &["ev"], false, false),
    b("apps", "v1", "Deployment", "deployments", true, &["deploy"], true, true),
    b("apps", "v1", "StatefulSet", "statefulsets", true, &["sts"], true, true),
    b("apps", "v1", "ReplicaSet", "replicasets", true, &["rs"], true, true),
    b("apps", "v1", "DaemonSet", "daemonsets", true, &["ds"], true, true),
    b("batch", "v1", "Job", "jobs", true, &[], true, true),
    b("batch", "v1", "CronJob", "cronjobs", true, &["cj"], true, true),
    b("networking.k8s.io", "v1", "Ingress", "ingresses", true, &["ing"], true, false),
    b("networking.k8s.io", "v1", "IngressClass", "ingressclasses", false, &[], false, false),
    b("networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies", true, &["netpol"], false, false),
    b("autoscaling", "v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers", true, &["hpa"], true, true),
    b("rbac.authorization.k8s.io", "v1", "Role", "roles", true, &[], false, false),
    b("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings", true, &[], false, false),
    b("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", false, &[], false, false),
    b("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings", false, &[], false, false),
    b("coordination.k8s.io", "v1", "Lease", "leases", true, &[], false, false),
    b("policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets", true, &["pdb"], true, false),
    b("storage.k8s.io", "v1", "StorageClass", "storageclasses", false, &["sc"], false, false),
    b("apiextensions.k8s.io", "v1", "CustomResourceDefinition", "customresourcedefinitions", false, &["crd", "crds"], true, false),
    b("authorization.k8s.io", "v1", "SelfSubjectAccessReview", "selfsubjectaccessreviews", false, &[], false, false),
    b("authorization.k8s.io", "v1", "SubjectAccessReview", "subjectaccessreviews", false, &[], false, false),
];

/// Resources that only accept `create` and are never stored (access reviews).
pub fn is_virtual(rt: &ResourceType) -> bool {
    rt.group == "authorization.k8s.io"
}

/// All served resource types, built-in and custom.
#[derive(Debug, Clone)]
pub struct Registry {
    types: Vec<Arc<ResourceType>>,
}

impl Default for Registry {
    fn default() -> Self {
        let types = BUILTINS
            .iter()
            .map(|x| {
                Arc::new(ResourceType {
                    group: x.group.into(),
                    version: x.version.into(),
                    kind: x.kind.into(),
                    plural: x.plural.into(),
                    singular: x.kind.to_lowercase(),
                    namespaced: x.namespaced,
                    short_names: x.short.iter().map(|s| (*s).to_owned()).collect(),
                    categories: if x.all { vec!["all".into()] } else { vec![] },
                    status_subresource: x.status,
                    crd: None,
                })
            })
            .collect();
        Self { types }
    }
}

impl Registry {
    /// The resource served at `group/version/plural`.
    pub fn by_plural(&self, group: &str, version: &str, plural: &str) -> Option<Arc<ResourceType>> {
        self.types
            .iter()
            .find(|t| t.group == group && t.version == version && t.plural == plural)
            .cloned()
    }

    /// The resource for an object's `apiVersion` and `kind`.
    pub fn by_kind(&self, api_version: &str, kind: &str) -> Option<Arc<ResourceType>> {
        let (g, v) = split_api_version(api_version);
        self.types
            .iter()
            .find(|t| t.group == g && t.version == v && t.kind == kind)
            .cloned()
    }

    /// Any served version of `group/plural` (used to reach stored objects of a resource).
    pub fn any_version(&self, group: &str, plural: &str) -> Option<Arc<ResourceType>> {
        self.types
            .iter()
            .find(|t| t.group == group && t.plural == plural)
            .cloned()
    }

    /// Every served resource.
    pub fn all(&self) -> &[Arc<ResourceType>] {
        &self.types
    }

    /// Groups with their versions, in registration order (core group excluded).
    pub fn groups(&self) -> BTreeMap<String, Vec<String>> {
        let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for t in &self.types {
            if t.group.is_empty() {
                continue;
            }
            let vs = out.entry(t.group.clone()).or_default();
            if !vs.contains(&t.version) {
                vs.push(t.version.clone());
            }
        }
        out
    }

    /// Replaces the resources defined by the CRD `crd_name` with `types`.
    pub fn set_crd(&mut self, crd_name: &str, types: Vec<ResourceType>) {
        self.remove_crd(crd_name);
        self.types.extend(types.into_iter().map(Arc::new));
    }

    /// Stops serving the resources defined by the CRD `crd_name`.
    pub fn remove_crd(&mut self, crd_name: &str) {
        self.types
            .retain(|t| t.crd.as_ref().is_none_or(|c| c.crd_name != crd_name));
    }
}

/// The resource types a CRD object defines (one per served version).
pub fn types_from_crd(crd: &Value) -> Vec<ResourceType> {
    let name = crd["metadata"]["name"].as_str().unwrap_or_default();
    let spec = &crd["spec"];
    let names = &spec["names"];
    let group = spec["group"].as_str().unwrap_or_default();
    let plural = names["plural"].as_str().unwrap_or_default();
    let kind = names["kind"].as_str().unwrap_or_default();
    let singular = names["singular"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| kind.to_lowercase());
    let strs = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let versions = spec["versions"].as_array().cloned().unwrap_or_default();
    let storage = versions
        .iter()
        .find(|v| v["storage"] == true)
        .and_then(|v| v["name"].as_str())
        .unwrap_or_default()
        .to_owned();
    versions
        .iter()
        .filter(|v| v["served"] != false)
        .map(|v| ResourceType {
            group: group.to_owned(),
            version: v["name"].as_str().unwrap_or_default().to_owned(),
            kind: kind.to_owned(),
            plural: plural.to_owned(),
            singular: singular.clone(),
            namespaced: spec["scope"] != "Cluster",
            short_names: strs(&names["shortNames"]),
            categories: strs(&names["categories"]),
            status_subresource: v["subresources"]["status"].is_object(),
            crd: Some(CrdVersion {
                crd_name: name.to_owned(),
                schema: v["schema"].get("openAPIV3Schema").cloned(),
                printer_columns: v["additionalPrinterColumns"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default(),
                storage_version: storage.clone(),
            }),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn builtins_are_found_by_plural_and_kind() {
        let r = Registry::default();
        let d = r.by_plural("apps", "v1", "deployments").unwrap();
        assert_eq!(d.kind, "Deployment");
        assert!(d.namespaced && d.status_subresource);
        assert_eq!(r.by_kind("v1", "Namespace").unwrap().plural, "namespaces");
        assert!(
            !r.by_kind("rbac.authorization.k8s.io/v1", "ClusterRole")
                .unwrap()
                .namespaced
        );
        assert!(r.by_plural("", "v1", "deployments").is_none());
    }

    #[test]
    fn crd_registers_each_served_version() {
        let crd = json!({
            "metadata": {"name": "widgets.example.com"},
            "spec": {"group": "example.com", "scope": "Cluster",
                "names": {"plural": "widgets", "kind": "Widget", "shortNames": ["wd"]},
                "versions": [
                    {"name": "v1", "served": true, "storage": true, "subresources": {"status": {}}},
                    {"name": "v1beta1", "served": true, "storage": false},
                    {"name": "v1alpha1", "served": false, "storage": false}
                ]}
        });
        let mut r = Registry::default();
        r.set_crd("widgets.example.com", types_from_crd(&crd));
        let v1 = r.by_plural("example.com", "v1", "widgets").unwrap();
        assert!(!v1.namespaced && v1.status_subresource);
        assert_eq!(v1.singular, "widget");
        assert!(r.by_plural("example.com", "v1beta1", "widgets").is_some());
        assert!(r.by_plural("example.com", "v1alpha1", "widgets").is_none());
        assert_eq!(r.groups()["example.com"], vec!["v1", "v1beta1"]);
        r.remove_crd("widgets.example.com");
        assert!(r.by_plural("example.com", "v1", "widgets").is_none());
    }
}
