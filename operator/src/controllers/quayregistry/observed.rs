//! Read: everything a reconcile looks at, fetched once at its start.
//!
//! Rules:
//! - The only API calls of the pipeline before apply are here; they are all reads.
//! - What the operator owns is found by the label [`REGISTRY_LABEL`], kind by kind, in the
//!   QuayRegistry's namespace (and the builder namespace when it differs).
//! - Optional APIs (OpenShift Routes, the Prometheus operator) are probed by listing them in the
//!   namespace: `404` means absent. This needs no discovery rights beyond the namespace.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Secret};
use kube::api::{Api, DynamicObject, ListParams};
use kube::core::ApiResource;
use kube::{Client, ResourceExt};
use serde::de::DeserializeOwned;

use super::kinds::{self, Kind};
use super::names::{Names, REGISTRY_LABEL};
use crate::crd::{ComponentKind, QuayRegistry};

/// Optional APIs present in the cluster.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// `route.openshift.io/v1` Routes.
    pub routes: bool,
    /// `monitoring.coreos.com/v1` ServiceMonitors and PrometheusRules.
    pub monitoring: bool,
}

/// A Secret's type and data.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SecretObs {
    pub type_: Option<String>,
    pub data: BTreeMap<String, Vec<u8>>,
}

/// Identity of an object: `(apiVersion, kind, namespace, name)`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjKey {
    pub api_version: String,
    pub kind: String,
    pub namespace: String,
    pub name: String,
}

impl std::fmt::Display for ObjKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}/{}", self.kind, self.namespace, self.name)
    }
}

impl ObjKey {
    pub fn new(ar: &ApiResource, namespace: &str, name: &str) -> Self {
        ObjKey {
            api_version: ar.api_version.clone(),
            kind: ar.kind.clone(),
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        }
    }
}

/// What a reconcile starts from.
#[derive(Clone, Debug, Default)]
pub struct Observed {
    pub capabilities: Capabilities,
    /// Data of the config bundle Secret (the user's, or the operator's default one); `None` when
    /// it does not exist.
    pub bundle: Option<BTreeMap<String, Vec<u8>>>,
    /// The Secret named by the tls component's `secretRef`, when asked for and present.
    pub tls_secret: Option<SecretObs>,
    /// Objects carrying the registry's label.
    pub owned: BTreeMap<ObjKey, DynamicObject>,
    /// Pods carrying the registry's label (for the reason a component is not ready).
    pub pods: Vec<k8s_openapi::api::core::v1::Pod>,
}

impl Observed {
    /// Nothing exists yet and no optional API is present.
    pub fn empty() -> Self {
        Observed::default()
    }

    fn typed<T: DeserializeOwned>(&self, kind: &Kind, namespace: &str, name: &str) -> Option<T> {
        let obj = self.owned.get(&ObjKey::new(&kind.ar, namespace, name))?;
        serde_json::to_value(obj)
            .ok()
            .and_then(|v| serde_json::from_value(v).ok())
    }

    pub fn secret(&self, namespace: &str, name: &str) -> Option<SecretObs> {
        let s: Secret = self.typed(&kinds::secret(), namespace, name)?;
        Some(SecretObs {
            type_: s.type_,
            data: s
                .data
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, v.0))
                .collect(),
        })
    }
    pub fn deployment(&self, namespace: &str, name: &str) -> Option<Deployment> {
        self.typed(&kinds::deployment(), namespace, name)
    }
    pub fn statefulset(&self, namespace: &str, name: &str) -> Option<StatefulSet> {
        self.typed(&kinds::statefulset(), namespace, name)
    }
    pub fn job(&self, namespace: &str, name: &str) -> Option<Job> {
        self.typed(&kinds::job(), namespace, name)
    }
    pub fn pvc(&self, namespace: &str, name: &str) -> Option<PersistentVolumeClaim> {
        self.typed(&kinds::pvc(), namespace, name)
    }
    /// Annotations of an owned object.
    pub fn annotations(&self, key: &ObjKey) -> Option<&BTreeMap<String, String>> {
        self.owned.get(key).map(|o| o.annotations())
    }
}

/// Reads what a reconcile of `registry` needs.
pub async fn read(client: &Client, registry: &QuayRegistry) -> kube::Result<Observed> {
    let namespace = registry.namespace().unwrap_or_default();
    let names = Names::new(&registry.name_any());
    let capabilities = Capabilities {
        routes: api_exists(client, &namespace, &kinds::route().ar).await?,
        monitoring: api_exists(client, &namespace, &kinds::service_monitor().ar).await?,
    };

    let secrets: Api<Secret> = Api::namespaced(client.clone(), &namespace);
    let to_obs = |s: Secret| SecretObs {
        type_: s.type_,
        data: s
            .data
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, v.0))
            .collect(),
    };
    let bundle_name = registry
        .spec
        .config_bundle_secret
        .clone()
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| names.default_bundle());
    let bundle = secrets.get_opt(&bundle_name).await?.map(|s| to_obs(s).data);
    let tls_ref = registry
        .spec
        .components
        .iter()
        .find(|c| c.kind == ComponentKind::Tls)
        .and_then(|c| c.secret_ref.as_ref())
        .map(|r| r.name.clone());
    let tls_secret = match tls_ref {
        Some(n) => secrets.get_opt(&n).await?.map(to_obs),
        None => None,
    };

    let mut owned = BTreeMap::new();
    let selector = ListParams::default().labels(&format!("{REGISTRY_LABEL}={}", names.registry));
    // The builder namespace named now, and the one recorded when objects were put there.
    let mut namespaces = vec![namespace.clone()];
    let recorded = registry
        .annotations()
        .get(super::names::BUILDER_NAMESPACE_ANNOTATION)
        .cloned();
    for ns in [builder_namespace_hint(bundle.as_ref()), recorded]
        .into_iter()
        .flatten()
    {
        if !namespaces.contains(&ns) {
            namespaces.push(ns);
        }
    }
    for kind in kinds::owned(capabilities) {
        for ns in &namespaces {
            if *ns != namespace && !kind.builder {
                continue;
            }
            let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &kind.ar);
            let list = match api.list(&selector).await {
                Ok(l) => l,
                // The builder namespace may not exist (yet).
                Err(kube::Error::Api(e)) if e.code == 404 && *ns != namespace => continue,
                Err(e) => return Err(e),
            };
            for mut obj in list.items {
                // Lists do not carry apiVersion/kind per item on every server.
                obj.types = Some(kube::core::TypeMeta {
                    api_version: kind.ar.api_version.clone(),
                    kind: kind.ar.kind.clone(),
                });
                owned.insert(ObjKey::new(&kind.ar, ns, &obj.name_any()), obj);
            }
        }
    }
    let pods = Api::<k8s_openapi::api::core::v1::Pod>::namespaced(client.clone(), &namespace)
        .list(&selector)
        .await?
        .items;
    Ok(Observed {
        capabilities,
        bundle,
        tls_secret,
        owned,
        pods,
    })
}

/// The builder namespace named in the bundle, if it parses at all (validate decides later).
fn builder_namespace_hint(bundle: Option<&BTreeMap<String, Vec<u8>>>) -> Option<String> {
    let data = bundle?;
    super::config::Bundle::parse("bundle", data)
        .ok()?
        .builder_namespace()
}

async fn api_exists(client: &Client, namespace: &str, ar: &ApiResource) -> kube::Result<bool> {
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, ar);
    match api.list(&ListParams::default().limit(1)).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(false),
        Err(kube::Error::Api(e)) if e.code == 403 => {
            tracing::warn!(
                api = %ar.api_version,
                "not allowed to list {}; treating the API as absent",
                ar.plural
            );
            Ok(false)
        }
        Err(e) => Err(e),
    }
}
