//! Names and labels of everything the operator creates for a QuayRegistry `<name>`.
//!
//! Every object is named `<name>-<suffix>` and labelled with [`REGISTRY_LABEL`] = `<name>`,
//! which is how the operator finds what it owns (and deletes what is no longer desired).

use std::collections::BTreeMap;

/// Label naming the QuayRegistry an object belongs to.
pub const REGISTRY_LABEL: &str = "quayside.dev/quayregistry";
/// Label naming the component an object belongs to (`quay-app`, `postgres`, ...).
pub const COMPONENT_LABEL: &str = "quayside.dev/component";
/// Annotation: digest of the object as last applied by the operator.
pub const APPLIED_HASH_ANNOTATION: &str = "quayside.dev/applied-hash";
/// Pod-template annotation: digest of the registry configuration; a change rolls the pods.
pub const CONFIG_HASH_ANNOTATION: &str = "quayside.dev/config-hash";
/// Annotation on the operator-made serving certificate Secret: its expiry (RFC 3339).
pub const NOT_AFTER_ANNOTATION: &str = "quayside.dev/not-after";
/// Annotation on the operator-made serving certificate Secret: digest of its host names and CA.
pub const CERT_SUBJECT_ANNOTATION: &str = "quayside.dev/subject-hash";
/// The one field manager of every server-side apply.
pub const FIELD_MANAGER: &str = "quayside-operator";
/// The superuser the operator creates in a managed registry and drives its API as.
pub const ADMIN_USER: &str = "quayside-operator";
/// Annotation on a QuayRegistry whose builder objects live in another namespace: that namespace
/// (where the finalizer cleans up).
pub const BUILDER_NAMESPACE_ANNOTATION: &str = "quayside.dev/builder-namespace";
/// Finalizer used only when objects live outside the QuayRegistry's namespace.
pub const FINALIZER: &str = "quayside.dev/cross-namespace-cleanup";

/// The object names of one QuayRegistry.
#[derive(Clone, Debug)]
pub struct Names {
    pub registry: String,
}

impl Names {
    pub fn new(registry: &str) -> Self {
        Names {
            registry: registry.to_owned(),
        }
    }
    fn with(&self, suffix: &str) -> String {
        format!("{}-{suffix}", self.registry)
    }
    /// Registry Deployment, Service, ServiceAccount, PodDisruptionBudget, HPA.
    pub fn quay_app(&self) -> String {
        self.with("quay-app")
    }
    /// The generated configuration Secret mounted at `/conf/stack`.
    pub fn quay_config(&self) -> String {
        self.with("quay-config")
    }
    /// Generated secrets kept across reconciles (SECRET_KEY, database password, ...).
    pub fn managed_keys(&self) -> String {
        self.with("quay-managed-secret-keys")
    }
    /// The bundle the operator creates when `configBundleSecret` is not set.
    pub fn default_bundle(&self) -> String {
        self.with("config-bundle")
    }
    /// The migration Job for one (image, database) pair.
    pub fn migration_job(&self, key: &str) -> String {
        self.with(&format!("quay-migrate-{key}"))
    }
    pub fn database(&self) -> String {
        self.with("quay-database")
    }
    pub fn datastorage(&self) -> String {
        self.with("quay-datastorage")
    }
    /// The operator's CA (certificate and key).
    pub fn ca(&self) -> String {
        self.with("quay-ca")
    }
    /// The operator-made serving certificate (`kubernetes.io/tls`).
    pub fn tls(&self) -> String {
        self.with("quay-tls")
    }
    /// The Ingress or Route.
    pub fn route(&self) -> String {
        self.with("quay")
    }
    pub fn mirror(&self) -> String {
        self.with("quay-mirror")
    }
    pub fn builder(&self) -> String {
        self.with("quay-builder")
    }
    pub fn metrics(&self) -> String {
        self.with("quay-metrics")
    }
    pub fn alerts(&self) -> String {
        self.with("quay-alerts")
    }
    /// The first superuser's credentials (`username`, `password`, `token`), which the content
    /// controllers use to drive the registry's API.
    pub fn admin_credentials(&self) -> String {
        self.with("quay-admin")
    }

    /// Labels of every object of `component`.
    pub fn labels(&self, component: &str) -> BTreeMap<String, String> {
        BTreeMap::from([
            (REGISTRY_LABEL.to_owned(), self.registry.clone()),
            (COMPONENT_LABEL.to_owned(), component.to_owned()),
            (
                "app.kubernetes.io/managed-by".to_owned(),
                "quayside-operator".to_owned(),
            ),
            (
                "app.kubernetes.io/part-of".to_owned(),
                "quayside".to_owned(),
            ),
            (
                "app.kubernetes.io/instance".to_owned(),
                self.registry.clone(),
            ),
            (
                "app.kubernetes.io/component".to_owned(),
                component.to_owned(),
            ),
        ])
    }

    /// The pod selector of `component` (a subset of [`Names::labels`]).
    pub fn selector(&self, component: &str) -> BTreeMap<String, String> {
        BTreeMap::from([
            (REGISTRY_LABEL.to_owned(), self.registry.clone()),
            (COMPONENT_LABEL.to_owned(), component.to_owned()),
        ])
    }
}
