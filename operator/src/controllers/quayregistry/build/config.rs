//! The configuration Secrets: the default config bundle (when none is named), the generated
//! keys, and `<name>-quay-config`, which the registry mounts at [`CONFIG_DIR`](super::CONFIG_DIR):
//! the bundle's `config.yaml` merged with what managed components supply, the bundle's other
//! files and the TLS pair. Its digest is the configuration hash that rolls the pods.
//!
//! Parsing the user's bundle is [`crate::controllers::quayregistry::config`]'s job; this module only writes.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use serde_yaml::Mapping;

use super::{ApplyMode, Builder, DB_NAME, DB_USER, digest, image_version};
use crate::controllers::quayregistry::config::{CONFIG_FILE, SSL_CERT, SSL_KEY, TlsPair};
use crate::controllers::quayregistry::kinds;
use crate::controllers::quayregistry::material::{
    DATABASE_SECRET_KEY, DB_PASSWORD, Material, SECRET_KEY, USER_INITIALIZE_TOKEN,
};
use crate::controllers::quayregistry::names::ADMIN_USER;
use crate::controllers::quayregistry::validate::Plan;
use crate::crd::ComponentKind;
use crate::runtime::context::Settings;

impl Builder<'_> {
    /// The bundle the operator owns when none is named (created once, then the user's).
    pub(super) fn default_bundle(&mut self) -> anyhow::Result<()> {
        let names = self.plan.names();
        let secret = Secret {
            metadata: self.meta(
                &names.default_bundle(),
                &self.plan.namespace,
                "config-bundle",
                None,
            ),
            data: Some(BTreeMap::from([(
                CONFIG_FILE.to_owned(),
                ByteString(Vec::new()),
            )])),
            ..Default::default()
        };
        self.push(kinds::secret(), &secret, ApplyMode::CreateOnly)
    }

    /// The generated secrets, kept across reconciles.
    pub(super) fn managed_keys(&mut self) -> anyhow::Result<()> {
        let names = self.plan.names();
        let keys = Secret {
            metadata: self.meta(
                &names.managed_keys(),
                &self.plan.namespace,
                "quay-app",
                None,
            ),
            data: Some(
                self.material
                    .keys
                    .iter()
                    .map(|(k, v)| (k.clone(), ByteString(v.clone().into_bytes())))
                    .collect(),
            ),
            type_: Some("Opaque".into()),
            ..Default::default()
        };
        self.push(kinds::secret(), &keys, ApplyMode::Apply)
    }

    /// The registry's configuration Secret, with the TLS pair (if any) as `ssl.cert`/`ssl.key`.
    /// Returns its digest.
    pub(super) fn config_secret(&mut self, tls: Option<TlsPair>) -> anyhow::Result<String> {
        let config = merged_config(self.plan, self.material, self.settings, &self.db_uri());
        let config_text = serde_yaml::to_string(&config)?;
        let mut files: BTreeMap<String, Vec<u8>> = self
            .plan
            .bundle
            .files
            .iter()
            .filter(|(k, _)| k.as_str() != SSL_CERT && k.as_str() != SSL_KEY)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        files.insert(CONFIG_FILE.into(), config_text.into_bytes());
        if let Some((c, k)) = tls {
            files.insert(SSL_CERT.into(), c);
            files.insert(SSL_KEY.into(), k);
        }
        let config_hash = files_digest(&files);
        let names = self.plan.names();
        let config_secret = Secret {
            metadata: self.meta(&names.quay_config(), &self.plan.namespace, "quay-app", None),
            data: Some(files.into_iter().map(|(k, v)| (k, ByteString(v))).collect()),
            type_: Some("Opaque".into()),
            ..Default::default()
        };
        self.push(kinds::secret(), &config_secret, ApplyMode::Apply)?;
        Ok(config_hash)
    }

    /// The database URI: the managed PostgreSQL's, else the bundle's `DB_URI`.
    fn db_uri(&self) -> String {
        if self.plan.is_managed(ComponentKind::Postgres) {
            format!(
                "postgresql://{DB_USER}:{}@{}.{}.svc.{}:5432/{DB_NAME}",
                self.material
                    .keys
                    .get(DB_PASSWORD)
                    .cloned()
                    .unwrap_or_default(),
                self.plan.names().database(),
                self.plan.namespace,
                self.settings.cluster_domain
            )
        } else {
            self.plan
                .bundle
                .get_str("DB_URI")
                .ok()
                .flatten()
                .unwrap_or_default()
                .to_owned()
        }
    }
}

/// Digest of the configuration files (names and contents).
fn files_digest(files: &BTreeMap<String, Vec<u8>>) -> String {
    let mut all = Vec::new();
    for (k, v) in files {
        all.extend_from_slice(k.as_bytes());
        all.push(0);
        all.extend_from_slice(v);
        all.push(0);
    }
    digest(&all)
}

/// The bundle's configuration with what managed components supply.
fn merged_config(plan: &Plan, material: &Material, settings: &Settings, db_uri: &str) -> Mapping {
    let mut c = plan.bundle.config.clone();
    let mut set_default = |key: &str, value: serde_yaml::Value| {
        if plan.bundle.get(key).is_none() {
            c.insert(key.into(), value);
        }
    };
    for k in [SECRET_KEY, DATABASE_SECRET_KEY, USER_INITIALIZE_TOKEN] {
        if let Some(v) = material.keys.get(k) {
            set_default(k, v.clone().into());
        }
    }
    // The operator claims the first superuser itself (see `content::bootstrap`): the
    // bootstrap is on, guarded by the token above, and its user is a superuser.
    set_default("FEATURE_USER_INITIALIZE", true.into());
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
    // Quota custom resources need quota management; a bundle that says
    // `FEATURE_QUOTA_MANAGEMENT: false` keeps it off (the user's configuration wins).
    set_default("FEATURE_QUOTA_MANAGEMENT", true.into());
    if plan.is_managed(ComponentKind::Mirror) {
        set_default("FEATURE_REPO_MIRROR", true.into());
    }
    if plan.is_managed(ComponentKind::Builder) {
        set_default("FEATURE_BUILD_SUPPORT", true.into());
        set_default("BUILD_MANAGER", build_manager());
        set_default("EXECUTORS", executors(plan, &settings.registry_image));
        set_default(
            "BUILDMAN_HOSTNAME",
            buildman_hostname(plan, settings).into(),
        );
    }
    if plan.is_managed(ComponentKind::Postgres) {
        c.insert("DB_URI".into(), db_uri.to_owned().into());
    }
    let mut supers: Vec<serde_yaml::Value> = match plan.bundle.get("SUPER_USERS") {
        Some(serde_yaml::Value::Sequence(s)) => s.clone(),
        _ => Vec::new(),
    };
    if !supers.iter().any(|u| u.as_str() == Some(ADMIN_USER)) {
        supers.push(ADMIN_USER.into());
    }
    c.insert("SUPER_USERS".into(), serde_yaml::Value::Sequence(supers));
    c
}

/// `BUILD_MANAGER` for the managed builder.
fn build_manager() -> serde_yaml::Value {
    serde_yaml::from_str(
        "- ephemeral\n- ALLOWED_WORKER_COUNT: 1\n  ORCHESTRATOR_PREFIX: buildman/\n",
    )
    .unwrap_or_default()
}

/// Where builder pods call the build manager back: the public host (route/ingress) when known,
/// else the registry's Service in the cluster.
fn buildman_hostname(plan: &Plan, settings: &Settings) -> String {
    match &plan.host {
        Some(h) => h.clone(),
        None => format!(
            "{}.{}.svc.{}",
            plan.names().quay_app(),
            plan.namespace,
            settings.cluster_domain
        ),
    }
}

/// `registry_image` as `WORKER_IMAGE` and `WORKER_TAG` (a digest reference keeps its
/// repository and the `latest` tag: the executor joins the two with `:`).
fn worker_image(registry_image: &str) -> (String, String) {
    let without_digest = registry_image.split('@').next().unwrap_or(registry_image);
    let tag = image_version(registry_image);
    let slash = without_digest.rfind('/').map_or(0, |i| i + 1);
    let repo = match without_digest[slash..].find(':') {
        Some(colon) => &without_digest[..slash + colon],
        None => without_digest,
    };
    (repo.to_owned(), tag)
}

/// `EXECUTORS` for the managed builder: one Kubernetes executor in the builder namespace, in
/// the cluster (the registry pod's service-account token and CA), running the registry image.
fn executors(plan: &Plan, registry_image: &str) -> serde_yaml::Value {
    let mut executor = Mapping::new();
    executor.insert("EXECUTOR".into(), "kubernetes".into());
    executor.insert(
        "BUILDER_NAMESPACE".into(),
        plan.builder_namespace.clone().into(),
    );
    executor.insert("K8S_API_SERVER".into(), "kubernetes.default.svc:443".into());
    executor.insert("KUBERNETES_DISTRIBUTION".into(), "k8s".into());
    executor.insert("SERVICE_ACCOUNT_NAME".into(), plan.names().builder().into());
    let (image, tag) = worker_image(registry_image);
    executor.insert("WORKER_IMAGE".into(), image.into());
    executor.insert("WORKER_TAG".into(), tag.into());
    serde_yaml::Value::Sequence(vec![serde_yaml::Value::Mapping(executor)])
}

#[cfg(test)]
mod tests {
    use crate::controllers::quayregistry::build::tests::{config_yaml, run};

    #[test]
    fn quota_management_is_on_unless_the_bundle_turns_it_off() {
        let registry = cr("spec:\n  configBundleSecret: bundle\n");
        let (_, _, d) = run(&registry, &observed_with_bundle("FEATURE_X: true\n"));
        assert_eq!(config_yaml(&d)["FEATURE_QUOTA_MANAGEMENT"], true);
        let (_, _, d) = run(
            &registry,
            &observed_with_bundle("FEATURE_QUOTA_MANAGEMENT: false\n"),
        );
        assert_eq!(config_yaml(&d)["FEATURE_QUOTA_MANAGEMENT"], false);
    }
    use crate::controllers::quayregistry::fixtures::*;
    use crate::controllers::quayregistry::material::{DB_PASSWORD, SECRET_KEY};
    use crate::controllers::quayregistry::observed::Observed;

    #[test]
    fn worker_image_splits_the_registry_image() {
        use super::worker_image;
        let w = |s: &str| worker_image(s);
        assert_eq!(
            w("quay.io/q/quayside:1.2"),
            ("quay.io/q/quayside".into(), "1.2".into())
        );
        assert_eq!(
            w("localhost:5000/quayside"),
            ("localhost:5000/quayside".into(), "latest".into())
        );
        assert_eq!(
            w("localhost:5000/q:v3"),
            ("localhost:5000/q".into(), "v3".into())
        );
        assert_eq!(
            w("quayside@sha256:ab"),
            ("quayside".into(), "latest".into())
        );
    }

    #[test]
    fn buildman_hostname_follows_the_public_host_and_the_bundle_wins() {
        let registry = cr("spec:\n  configBundleSecret: bundle\n");
        let (_, _, d) = run(
            &registry,
            &observed_with_bundle("SERVER_HOSTNAME: quay.example.com\n"),
        );
        assert_eq!(config_yaml(&d)["BUILDMAN_HOSTNAME"], "quay.example.com");
        let (_, _, d) = run(
            &registry,
            &observed_with_bundle(
                "BUILDMAN_HOSTNAME: builds.example.com:8443\nFEATURE_BUILD_SUPPORT: false\n",
            ),
        );
        let c = config_yaml(&d);
        assert_eq!(c["BUILDMAN_HOSTNAME"], "builds.example.com:8443");
        assert_eq!(c["FEATURE_BUILD_SUPPORT"], false);
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
        assert_eq!(c["FEATURE_QUOTA_MANAGEMENT"], true);
        assert_eq!(c["EXECUTORS"][0]["BUILDER_NAMESPACE"], "quay");
        assert_eq!(
            c["EXECUTORS"][0]["SERVICE_ACCOUNT_NAME"],
            "registry-quay-builder"
        );
        assert_eq!(c["FEATURE_BUILD_SUPPORT"], true);
        assert_eq!(c["EXECUTORS"][0]["EXECUTOR"], "kubernetes");
        assert_eq!(
            c["EXECUTORS"][0]["K8S_API_SERVER"],
            "kubernetes.default.svc:443"
        );
        assert_eq!(
            c["EXECUTORS"][0]["WORKER_IMAGE"],
            "quay.io/quayside/quayside"
        );
        assert_eq!(c["EXECUTORS"][0]["WORKER_TAG"], "1.2.3");
        assert_eq!(
            c["BUILDMAN_HOSTNAME"], "registry-quay-app.quay.svc.cluster.local",
            "no route host: builders call the Service"
        );
        assert!(c["BUILD_MANAGER"].is_sequence());
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
}
