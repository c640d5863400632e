//! The `ProxyCache` custom resource: an organization that pulls through to an upstream
//! registry (Quay's proxy cache).
//!
//! Rules:
//! - The organization is created when it does not exist (Quay configures proxy caches on
//!   organizations only); it is never deleted by this resource: deleting the ProxyCache with
//!   `deletionPolicy: Delete` removes the proxy configuration, the organization and its cached
//!   repositories stay. Manage the organization's lifetime with an `Organization` resource.
//! - Upstream credentials come from a Secret (`username`, `password`), never from the spec.
//! - The upstream is validated by the registry (`validateproxycache`) before every change of
//!   the configuration; a refusal is a condition with the registry's words.
//! - `spec.organization` is immutable (CEL rule).

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::content::{ContentStatus, DeletionPolicy, RegistryRef, SecretRef};

/// An organization of a Quay-compatible registry acting as a pull-through cache of an
/// upstream registry.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "quayside.dev",
    version = "v1alpha1",
    kind = "ProxyCache",
    plural = "proxycaches",
    singular = "proxycache",
    shortname = "qproxy",
    namespaced,
    status = "ProxyCacheStatus",
    doc = "An organization of a Quay-compatible registry that caches pulls from an upstream registry, reconciled by quayside-operator.",
    printcolumn(name = "Org", type_ = "string", json_path = ".spec.organization", description = "The proxy organization"),
    printcolumn(name = "Upstream", type_ = "string", json_path = ".spec.upstream", description = "The upstream registry"),
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status", description = "The proxy configuration matches the spec"),
    printcolumn(name = "Synced", type_ = "string", json_path = ".status.conditions[?(@.type==\"Synced\")].status", description = "The last reconcile succeeded"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    validation = kube::core::Rule::new("self.spec.organization == oldSelf.spec.organization").message("spec.organization is immutable")
)]
#[serde(rename_all = "camelCase")]
pub struct ProxyCacheSpec {
    /// The registry the organization lives in.
    pub registry_ref: RegistryRef,
    /// The organization pulls go through (`<registry>/<organization>/<image>`); created when
    /// missing, never deleted by this resource. Immutable.
    pub organization: String,
    /// The upstream registry: a host with an optional port and namespace, e.g. `quay.io`,
    /// `registry.example.com:5000` or `registry.example.com/library`.
    pub upstream: String,
    /// A Secret in this namespace holding `username` and `password` for the upstream
    /// (default: anonymous pulls).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret_ref: Option<SecretRef>,
    /// Reach the upstream over plain HTTP or HTTPS without certificate verification.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub insecure: bool,
    /// How long a cached tag is served without checking the upstream: seconds, or a
    /// duration such as `24h` (default: the registry's, one day).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiration: Option<IntOrString>,
    /// `Delete` (default) removes the proxy configuration when this resource is deleted
    /// (the organization stays); `Orphan` leaves it.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
    /// How often the registry is re-read to correct drift (e.g. `5m`; default: the
    /// operator's `--resync-interval`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resync_interval: Option<String>,
}

/// Observed state of a ProxyCache, written by the operator only.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ProxyCacheStatus {
    #[serde(flatten)]
    pub content: ContentStatus,
    /// The upstream the organization is configured with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream: Option<String>,
    /// The staleness period configured, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiration_seconds: Option<i64>,
    /// The version of the credentials Secret the configuration was made with
    /// (`<name>@<resourceVersion>`): the registry never shows credentials back, so a change of
    /// the Secret is noticed here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_version: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_proxy_cache_round_trips_through_yaml() {
        let text = "registryRef: {name: registry}\norganization: hub\nupstream: quay.io\ncredentialsSecretRef: {name: login}\nexpiration: 3600\n";
        let spec: ProxyCacheSpec = serde_yaml::from_str(text).unwrap();
        assert_eq!(spec.expiration, Some(IntOrString::Int(3600)));
        assert!(!spec.insecure);
        let yaml = serde_yaml::to_string(&spec).unwrap();
        assert!(!yaml.contains("insecure"), "false is left out: {yaml}");
        let back: ProxyCacheSpec = serde_yaml::from_str(&yaml).unwrap();
        assert_eq!(back, spec);
    }
}
