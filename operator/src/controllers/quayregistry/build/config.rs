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

use super::{ApplyMode, Builder, DB_NAME, DB_USER, digest};
use crate::controllers::quayregistry::config::{CONFIG_FILE, SSL_CERT, SSL_KEY, TlsPair};
use crate::controllers::quayregistry::kinds;
use crate::controllers::quayregistry::material::{
    DATABASE_SECRET_KEY, DB_PASSWORD, Material, SECRET_KEY, USER_INITIALIZE_TOKEN,
};
use crate::controllers::quayregistry::names::ADMIN_USER;
use crate::controllers::quayregistry::validate::Plan;
use crate::crd::ComponentKind;

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
        let config = merged_config(self.plan, self.material, &self.db_uri());
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
fn merged_config(plan: &Plan, material: &Material, db_uri: &str) -> Mapping {
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
        set_default("BUILD_MANAGER", build_manager());
        set_default("EXECUTORS", executors(plan));
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

/// `EXECUTORS` for the managed builder: one Kubernetes executor in the builder namespace.
fn executors(plan: &Plan) -> serde_yaml::Value {
    let mut executor = Mapping::new();
    executor.insert("EXECUTOR".into(), "kubernetes".into());
    executor.insert(
        "BUILDER_NAMESPACE".into(),
        plan.builder_namespace.clone().into(),
    );
    executor.insert("K8S_API_SERVER".into(), "kubernetes.default.svc:443".into());
    executor.insert("KUBERNETES_DISTRIBUTION".into(), "k8s".into());
    executor.insert("SERVICE_ACCOUNT_NAME".into(), plan.names().builder().into());
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
