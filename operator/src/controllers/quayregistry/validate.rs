//! Validate: from the QuayRegistry and what was read, decide what to run (a [`Plan`]) or why
//! the rollout is blocked (a [`Blocked`] reason and message). No API calls.
//!
//! Rules:
//! - The user's spec is never rewritten. Kinds left out get a default here, every time:
//!   `monitoring` is managed when the `monitoring.coreos.com` API exists, `tls` when the bundle
//!   has no `ssl.cert`/`ssl.key`, `clair` is unmanaged (scanning is not implemented),
//!   `redis` and `clairpostgres` are not needed; everything else is managed.
//! - Problems with components or overrides block with `ComponentOverrideInvalid` (or
//!   `ComponentsInvalid` for the component list itself); problems with the bundle, or an
//!   unmanaged component without the configuration it needs, block with `ConfigInvalid`; a
//!   managed component whose API is missing blocks with `<Kind>ComponentDependencyError`.
//!   Blocking leaves everything already running untouched.

use std::collections::BTreeMap;

use serde_yaml::Value;

use super::config::{self, Bundle};
use super::names::Names;
use super::observed::{Observed, SecretObs};
use crate::crd::{ComponentKind, Overrides, QuayRegistry};
use crate::runtime::context::Settings;

/// Why the rollout cannot proceed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Blocked {
    /// Condition reason, e.g. `ConfigInvalid`.
    pub reason: &'static str,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl Blocked {
    fn config(message: impl Into<String>) -> Self {
        Blocked {
            reason: "ConfigInvalid",
            message: message.into(),
        }
    }
    fn overrides(message: impl Into<String>) -> Self {
        Blocked {
            reason: "ComponentOverrideInvalid",
            message: message.into(),
        }
    }
}

/// Where the registry's TLS certificate comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TlsSource {
    /// The operator's CA and serving certificate.
    Managed,
    /// `ssl.cert` / `ssl.key` from the config bundle.
    Bundle { cert: Vec<u8>, key: Vec<u8> },
    /// A `kubernetes.io/tls` Secret named by `secretRef`.
    Secret {
        name: String,
        cert: Vec<u8>,
        key: Vec<u8>,
    },
    /// No certificate: the registry serves plain HTTP (TLS ends in front of it, if anywhere).
    None,
}

impl TlsSource {
    /// Whether the registry itself serves HTTPS.
    pub fn serves_https(&self) -> bool {
        !matches!(self, TlsSource::None)
    }
}

/// Everything build needs, decided.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    pub name: String,
    pub namespace: String,
    pub uid: String,
    pub generation: Option<i64>,
    pub names: NamesRef,
    /// Effective management of every kind.
    pub managed: BTreeMap<ComponentKind, bool>,
    /// Overrides of managed components (empty when none).
    pub overrides: BTreeMap<ComponentKind, Overrides>,
    /// The parsed config bundle.
    pub bundle: Bundle,
    /// `spec.configBundleSecret` is unset: the operator owns `<name>-config-bundle`.
    pub default_bundle: bool,
    pub tls: TlsSource,
    /// The public host clients use (`SERVER_HOSTNAME`, possibly with a port), when known.
    pub host: Option<String>,
    /// The host came from the bundle's `SERVER_HOSTNAME` (not derived by the operator).
    pub host_from_bundle: bool,
    /// OpenShift Routes exist (else the route component makes an Ingress).
    pub routes_api: bool,
    /// Namespace of the builder ServiceAccount, Role and RoleBinding.
    pub builder_namespace: String,
    /// Per-component remarks for their conditions (e.g. ignored overrides).
    pub notes: BTreeMap<ComponentKind, String>,
}

/// [`Names`] with equality, so [`Plan`] can be compared in tests.
#[derive(Clone, Debug)]
pub struct NamesRef(pub Names);

impl PartialEq for NamesRef {
    fn eq(&self, other: &Self) -> bool {
        self.0.registry == other.0.registry
    }
}

impl Plan {
    pub fn names(&self) -> &Names {
        &self.names.0
    }
    pub fn is_managed(&self, kind: ComponentKind) -> bool {
        self.managed.get(&kind).copied().unwrap_or(false)
    }
    pub fn overrides(&self, kind: ComponentKind) -> Overrides {
        self.overrides.get(&kind).cloned().unwrap_or_default()
    }
}

/// Which overrides each kind accepts.
fn supported(kind: ComponentKind) -> &'static [&'static str] {
    const WORKLOAD: &[&str] = &[
        "replicas",
        "env",
        "resources",
        "affinity",
        "tolerations",
        "nodeSelector",
        "labels",
        "annotations",
        "securityContext",
    ];
    match kind {
        ComponentKind::Quay | ComponentKind::Mirror => WORKLOAD,
        ComponentKind::Postgres => &[
            "env",
            "resources",
            "affinity",
            "tolerations",
            "nodeSelector",
            "labels",
            "annotations",
            "volumeSize",
            "storageClassName",
            "securityContext",
        ],
        ComponentKind::Objectstorage => {
            &["labels", "annotations", "volumeSize", "storageClassName"]
        }
        ComponentKind::Tls
        | ComponentKind::Route
        | ComponentKind::Horizontalpodautoscaler
        | ComponentKind::Builder
        | ComponentKind::Monitoring => &["labels", "annotations"],
        // Accepted for compatibility and ignored (reported in the condition).
        ComponentKind::Clair | ComponentKind::Redis | ComponentKind::Clairpostgres => &[],
    }
}

fn not_needed(kind: ComponentKind) -> bool {
    matches!(
        kind,
        ComponentKind::Clair | ComponentKind::Redis | ComponentKind::Clairpostgres
    )
}

/// Validates `registry` against what was read.
pub fn validate(
    registry: &QuayRegistry,
    observed: &Observed,
    settings: &Settings,
) -> Result<Plan, Blocked> {
    let name = registry.metadata.name.clone().unwrap_or_default();
    let namespace = registry.metadata.namespace.clone().unwrap_or_default();
    let names = Names::new(&name);

    // The component list itself.
    let mut declared = BTreeMap::new();
    for c in &registry.spec.components {
        if declared.insert(c.kind, c).is_some() {
            return Err(Blocked {
                reason: "ComponentsInvalid",
                message: format!("component {} is declared more than once", c.kind),
            });
        }
    }
    if declared
        .get(&ComponentKind::Quay)
        .is_some_and(|c| !c.managed)
    {
        return Err(Blocked {
            reason: "ComponentsInvalid",
            message: "the quay component cannot be unmanaged: it is the registry itself".into(),
        });
    }

    // The bundle.
    let (bundle_name, default_bundle) = match &registry.spec.config_bundle_secret {
        Some(n) if !n.is_empty() => (n.clone(), false),
        _ => (names.default_bundle(), true),
    };
    let bundle = match (&observed.bundle, default_bundle) {
        (Some(data), _) => Bundle::parse(&bundle_name, data).map_err(Blocked::config)?,
        (None, true) => Bundle::default(),
        (None, false) => {
            return Err(Blocked::config(format!(
                "the config bundle Secret {bundle_name} (spec.configBundleSecret) does not exist"
            )));
        }
    };
    let bundle_tls = bundle.tls_pair().map_err(Blocked::config)?;

    // Effective management.
    let mut managed = BTreeMap::new();
    for kind in ComponentKind::ALL {
        let default = match kind {
            ComponentKind::Monitoring => observed.capabilities.monitoring,
            ComponentKind::Tls => bundle_tls.is_none(),
            k if not_needed(k) => false,
            _ => true,
        };
        managed.insert(kind, declared.get(&kind).map_or(default, |c| c.managed));
    }
    let is_managed = |k: ComponentKind| managed.get(&k).copied().unwrap_or(false);

    // Overrides.
    let mut overrides = BTreeMap::new();
    let mut notes = BTreeMap::new();
    for (kind, c) in &declared {
        let Some(o) = &c.overrides else { continue };
        let fields = o.set_fields();
        if fields.is_empty() {
            continue;
        }
        if !c.managed {
            return Err(Blocked::overrides(format!(
                "cannot set overrides on unmanaged component {kind}"
            )));
        }
        if not_needed(*kind) {
            notes.insert(*kind, format!("overrides ignored ({})", fields.join(", ")));
            continue;
        }
        if let Some(bad) = fields.iter().find(|f| !supported(*kind).contains(f)) {
            return Err(Blocked::overrides(format!(
                "component {kind} does not support {bad} overrides (it accepts {})",
                supported(*kind).join(", ")
            )));
        }
        if o.replicas.is_some_and(|r| r != 0) && is_managed(ComponentKind::Horizontalpodautoscaler)
        {
            return Err(Blocked::overrides(format!(
                "cannot override replicas of {kind} while the horizontalpodautoscaler component is managed: declare it with managed: false"
            )));
        }
        overrides.insert(*kind, o.clone());
    }

    // Dependencies on optional APIs.
    if is_managed(ComponentKind::Monitoring) && !observed.capabilities.monitoring {
        return Err(Blocked {
            reason: "MonitoringComponentDependencyError",
            message: "the monitoring component is managed but the monitoring.coreos.com API (Prometheus operator) is not available".into(),
        });
    }

    // The configuration.
    let user_host = bundle.get_str("SERVER_HOSTNAME").map_err(Blocked::config)?;
    if let Some(h) = user_host {
        config::check_server_hostname(h).map_err(Blocked::config)?;
    }
    match bundle
        .get_str("PREFERRED_URL_SCHEME")
        .map_err(Blocked::config)?
    {
        None | Some("http" | "https") => {}
        Some(other) => {
            return Err(Blocked::config(format!(
                "PREFERRED_URL_SCHEME must be http or https, not {other:?}"
            )));
        }
    }
    if is_managed(ComponentKind::Postgres) {
        if bundle.get("DB_URI").is_some() {
            return Err(Blocked::config(
                "DB_URI is set in the config bundle but the postgres component is managed: remove DB_URI or declare postgres with managed: false",
            ));
        }
    } else {
        config::check_external_db_uri(&bundle).map_err(Blocked::config)?;
    }
    if is_managed(ComponentKind::Objectstorage) {
        if bundle.get("DISTRIBUTED_STORAGE_CONFIG").is_some() {
            return Err(Blocked::config(
                "DISTRIBUTED_STORAGE_CONFIG is set in the config bundle but the objectstorage component is managed: remove it or declare objectstorage with managed: false",
            ));
        }
    } else {
        config::check_external_storage(&bundle).map_err(Blocked::config)?;
    }

    // TLS.
    let secret_ref = declared
        .get(&ComponentKind::Tls)
        .and_then(|c| c.secret_ref.as_ref())
        .map(|r| r.name.clone());
    if secret_ref.is_some() && is_managed(ComponentKind::Tls) {
        return Err(Blocked::overrides(
            "secretRef can only be set on an unmanaged tls component",
        ));
    }
    let tls = if is_managed(ComponentKind::Tls) {
        if bundle_tls.is_some() {
            return Err(Blocked::config(
                "ssl.cert and ssl.key are in the config bundle but the tls component is managed: remove them or declare tls with managed: false",
            ));
        }
        TlsSource::Managed
    } else if let Some(secret) = secret_ref {
        if bundle_tls.is_some() {
            return Err(Blocked::config(format!(
                "the tls component names Secret {secret} in secretRef and the config bundle also has ssl.cert/ssl.key: keep one"
            )));
        }
        let (cert, key) = tls_secret_pair(&secret, observed.tls_secret.as_ref())?;
        check_pem(
            &cert,
            &key,
            &format!("Secret {secret}"),
            "tls.crt",
            "tls.key",
        )?;
        TlsSource::Secret {
            name: secret,
            cert,
            key,
        }
    } else if let Some((cert, key)) = bundle_tls {
        check_pem(&cert, &key, "the config bundle", "ssl.cert", "ssl.key")?;
        TlsSource::Bundle { cert, key }
    } else {
        TlsSource::None
    };

    // Host and route.
    let (host, host_from_bundle) = match user_host {
        Some(h) => (Some(h.to_owned()), true),
        None => (
            settings
                .base_domain
                .as_ref()
                .map(|d| format!("{name}-quay-{namespace}.{d}")),
            false,
        ),
    };
    let builder_namespace = bundle
        .builder_namespace()
        .unwrap_or_else(|| namespace.clone());
    if !is_dns_label(&builder_namespace) {
        return Err(Blocked::config(format!(
            "EXECUTORS[].BUILDER_NAMESPACE: {builder_namespace:?} is not a namespace name"
        )));
    }
    if let Some(Value::Sequence(_)) | None = bundle.get("EXECUTORS") {
    } else {
        return Err(Blocked::config("EXECUTORS must be a list of executors"));
    }

    for kind in ComponentKind::ALL {
        if kind == ComponentKind::Clair && is_managed(kind) {
            notes.entry(kind).or_insert_with(|| {
                "security scanning is not implemented by Quayside yet; the registry runs without it"
                    .into()
            });
        }
    }

    Ok(Plan {
        uid: registry.metadata.uid.clone().unwrap_or_default(),
        generation: registry.metadata.generation,
        names: NamesRef(names),
        name,
        namespace,
        managed,
        overrides,
        bundle,
        default_bundle,
        tls,
        host,
        host_from_bundle,
        routes_api: observed.capabilities.routes,
        builder_namespace,
        notes,
    })
}

fn tls_secret_pair(name: &str, secret: Option<&SecretObs>) -> Result<(Vec<u8>, Vec<u8>), Blocked> {
    let secret = secret.ok_or_else(|| {
        Blocked::config(format!(
            "the tls component's secretRef names Secret {name}, which does not exist"
        ))
    })?;
    let get = |k: &str| {
        secret
            .data
            .get(k)
            .filter(|v| !v.is_empty())
            .cloned()
            .ok_or_else(|| Blocked::config(format!("Secret {name} (tls secretRef) has no {k}")))
    };
    Ok((get("tls.crt")?, get("tls.key")?))
}

fn check_pem(
    cert: &[u8],
    key: &[u8],
    place: &str,
    cert_key: &str,
    key_key: &str,
) -> Result<(), Blocked> {
    let certs = rustls_pemfile::certs(&mut &cert[..])
        .filter_map(Result::ok)
        .count();
    if certs == 0 {
        return Err(Blocked::config(format!(
            "{cert_key} in {place} holds no PEM certificate"
        )));
    }
    match rustls_pemfile::private_key(&mut &key[..]) {
        Ok(Some(_)) => Ok(()),
        _ => Err(Blocked::config(format!(
            "{key_key} in {place} holds no PEM private key"
        ))),
    }
}

fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controllers::quayregistry::fixtures::*;

    #[track_caller]
    fn blocked(registry: &str, observed: &Observed) -> Blocked {
        validate(&cr(registry), observed, &settings()).unwrap_err()
    }

    #[test]
    fn minimal_registry_manages_everything_the_cluster_supports() {
        let plan = validate(&cr(MINIMAL), &Observed::empty(), &settings()).unwrap();
        for kind in [
            ComponentKind::Quay,
            ComponentKind::Postgres,
            ComponentKind::Objectstorage,
            ComponentKind::Tls,
            ComponentKind::Route,
            ComponentKind::Horizontalpodautoscaler,
            ComponentKind::Mirror,
            ComponentKind::Builder,
        ] {
            assert!(plan.is_managed(kind), "{kind} should be managed");
        }
        for kind in [
            ComponentKind::Monitoring,
            ComponentKind::Clair,
            ComponentKind::Redis,
            ComponentKind::Clairpostgres,
        ] {
            assert!(!plan.is_managed(kind), "{kind} should not be managed");
        }
        assert!(plan.default_bundle);
        assert_eq!(plan.tls, TlsSource::Managed);
        assert_eq!(plan.host, None);
        assert_eq!(plan.builder_namespace, "quay");
    }

    #[test]
    fn monitoring_defaults_to_managed_where_prometheus_exists() {
        let mut o = Observed::empty();
        o.capabilities.monitoring = true;
        let plan = validate(&cr(MINIMAL), &o, &settings()).unwrap();
        assert!(plan.is_managed(ComponentKind::Monitoring));
    }

    #[test]
    fn explicit_managed_monitoring_without_prometheus_blocks() {
        let b = blocked(
            "spec:\n  components:\n    - kind: monitoring\n      managed: true\n",
            &Observed::empty(),
        );
        assert_eq!(b.reason, "MonitoringComponentDependencyError");
    }

    #[test]
    fn overrides_on_unmanaged_components_are_invalid() {
        let b = blocked(
            "spec:\n  components:\n    - kind: mirror\n      managed: false\n      overrides:\n        replicas: 2\n",
            &Observed::empty(),
        );
        assert_eq!(b.reason, "ComponentOverrideInvalid");
        assert_eq!(
            b.message,
            "cannot set overrides on unmanaged component mirror"
        );
    }

    #[test]
    fn replicas_conflict_with_a_managed_hpa_but_zero_is_allowed() {
        let b = blocked(
            "spec:\n  components:\n    - kind: quay\n      overrides:\n        replicas: 3\n",
            &Observed::empty(),
        );
        assert_eq!(b.reason, "ComponentOverrideInvalid");
        assert!(
            b.message.contains("horizontalpodautoscaler"),
            "{}",
            b.message
        );
        validate(
            &cr("spec:\n  components:\n    - kind: quay\n      overrides:\n        replicas: 0\n"),
            &Observed::empty(),
            &settings(),
        )
        .unwrap();
        let plan = validate(
            &cr("spec:\n  components:\n    - kind: horizontalpodautoscaler\n      managed: false\n    - kind: quay\n      overrides:\n        replicas: 3\n"),
            &Observed::empty(),
            &settings(),
        )
        .unwrap();
        assert_eq!(plan.overrides(ComponentKind::Quay).replicas, Some(3));
    }

    #[test]
    fn unsupported_overrides_name_what_the_component_accepts() {
        let b = blocked(
            "spec:\n  components:\n    - kind: route\n      overrides:\n        replicas: 0\n",
            &Observed::empty(),
        );
        assert_eq!(
            b.message,
            "component route does not support replicas overrides (it accepts labels, annotations)"
        );
    }

    #[test]
    fn compatibility_kinds_are_accepted_and_their_overrides_ignored() {
        let plan = validate(
            &cr("spec:\n  components:\n    - kind: clairpostgres\n      managed: true\n      overrides:\n        storageClassName: local-path\n    - kind: redis\n      managed: false\n"),
            &Observed::empty(),
            &settings(),
        )
        .unwrap();
        assert_eq!(
            plan.notes[&ComponentKind::Clairpostgres],
            "overrides ignored (storageClassName)"
        );
    }

    #[test]
    fn duplicate_kinds_and_unmanaged_quay_are_invalid() {
        let b = blocked(
            "spec:\n  components:\n    - kind: tls\n    - kind: tls\n",
            &Observed::empty(),
        );
        assert_eq!(b.reason, "ComponentsInvalid");
        let b = blocked(
            "spec:\n  components:\n    - kind: quay\n      managed: false\n",
            &Observed::empty(),
        );
        assert_eq!(b.reason, "ComponentsInvalid");
    }

    #[test]
    fn a_missing_or_broken_bundle_is_config_invalid() {
        let b = blocked("spec:\n  configBundleSecret: nope\n", &Observed::empty());
        assert_eq!(b.reason, "ConfigInvalid");
        assert!(b.message.contains("nope"), "{}", b.message);
        let b = blocked(
            "spec:\n  configBundleSecret: bundle\n",
            &observed_with_bundle("SERVER_HOSTNAME: [a\n"),
        );
        assert_eq!(b.reason, "ConfigInvalid");
        assert!(b.message.contains("not valid YAML"), "{}", b.message);
        let b = blocked(
            "spec:\n  configBundleSecret: bundle\n",
            &observed_with_bundle("PREFERRED_URL_SCHEME: ftp\n"),
        );
        assert!(b.message.contains("PREFERRED_URL_SCHEME"), "{}", b.message);
    }

    #[test]
    fn unmanaged_components_need_their_configuration() {
        let b = blocked(
            "spec:\n  configBundleSecret: bundle\n  components:\n    - kind: postgres\n      managed: false\n",
            &observed_with_bundle("FEATURE_X: true\n"),
        );
        assert_eq!(b.reason, "ConfigInvalid");
        assert_eq!(
            b.message,
            "DB_URI is required when the postgres component is unmanaged"
        );
        let b = blocked(
            "spec:\n  configBundleSecret: bundle\n  components:\n    - kind: objectstorage\n      managed: false\n",
            &observed_with_bundle("FEATURE_X: true\n"),
        );
        assert!(
            b.message
                .starts_with("DISTRIBUTED_STORAGE_CONFIG is required"),
            "{}",
            b.message
        );
    }

    #[test]
    fn managed_components_refuse_conflicting_bundle_keys() {
        let b = blocked(
            "spec:\n  configBundleSecret: bundle\n",
            &observed_with_bundle("DB_URI: postgresql://u:p@db/q\n"),
        );
        assert!(b.message.starts_with("DB_URI is set"), "{}", b.message);
    }

    #[test]
    fn unmanaged_tls_takes_the_secret_ref_or_the_bundle_pair() {
        let yaml = "spec:\n  configBundleSecret: bundle\n  components:\n    - kind: tls\n      managed: false\n      secretRef:\n        name: cert\n";
        let b = blocked(yaml, &observed_with_bundle(""));
        assert!(
            b.message.contains("Secret cert, which does not exist"),
            "{}",
            b.message
        );

        let (cert, key) = self_signed("registry.example.com");
        let mut o = observed_with_bundle("");
        o.tls_secret = Some(SecretObs {
            type_: Some("kubernetes.io/tls".into()),
            data: BTreeMap::from([
                ("tls.crt".into(), cert.clone().into_bytes()),
                ("tls.key".into(), b"garbage".to_vec()),
            ]),
        });
        let b = blocked(yaml, &o);
        assert_eq!(b.message, "tls.key in Secret cert holds no PEM private key");
        o.tls_secret
            .as_mut()
            .unwrap()
            .data
            .insert("tls.key".into(), key.clone().into_bytes());
        let plan = validate(&cr(yaml), &o, &settings()).unwrap();
        assert!(matches!(plan.tls, TlsSource::Secret { ref name, .. } if name == "cert"));

        // A bundle with its own pair makes tls unmanaged by default.
        let mut o = observed_with_bundle("");
        let data = o.bundle.as_mut().unwrap();
        data.insert("ssl.cert".into(), cert.into_bytes());
        data.insert("ssl.key".into(), key.into_bytes());
        let plan = validate(
            &cr("spec:\n  configBundleSecret: bundle\n"),
            &o,
            &settings(),
        )
        .unwrap();
        assert!(!plan.is_managed(ComponentKind::Tls));
        assert!(matches!(plan.tls, TlsSource::Bundle { .. }));
    }

    #[test]
    fn host_comes_from_the_bundle_or_the_base_domain() {
        let plan = validate(
            &cr("spec:\n  configBundleSecret: bundle\n"),
            &observed_with_bundle("SERVER_HOSTNAME: quay.example.com\n"),
            &settings(),
        )
        .unwrap();
        assert_eq!(plan.host.as_deref(), Some("quay.example.com"));
        assert!(plan.host_from_bundle);
        let mut s = settings();
        s.base_domain = Some("apps.example.com".into());
        let plan = validate(&cr(MINIMAL), &Observed::empty(), &s).unwrap();
        assert_eq!(
            plan.host.as_deref(),
            Some("registry-quay-quay.apps.example.com")
        );
        let b = blocked(
            "spec:\n  configBundleSecret: bundle\n",
            &observed_with_bundle("SERVER_HOSTNAME: https://quay.example.com\n"),
        );
        assert!(b.message.starts_with("SERVER_HOSTNAME"), "{}", b.message);
    }
}
