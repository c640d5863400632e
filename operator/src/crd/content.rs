//! Spec fields every content kind (`Organization`, `Robot`, later `Quota` and `ProxyCache`)
//! shares: which registry it lives in and what happens to the registry object on deletion.
//!
//! Rules:
//! - A content kind embeds [`RegistryRef`] as `spec.registryRef`, [`DeletionPolicy`] as
//!   `spec.deletionPolicy` and [`ResyncInterval`] as `spec.resyncInterval`; the shared
//!   machinery in [`crate::content`] reads them, so no controller interprets them on its own.
//! - Exactly one of `name` (a QuayRegistry in the same namespace) and `endpoint` (any
//!   Quay-compatible API) is set; the schema says so with a CEL rule and the operator checks it
//!   again.

use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Where the registry object lives: a QuayRegistry of this namespace, or an external registry.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = kube::core::Rule::new("has(self.name) != has(self.endpoint)").message("set exactly one of name (a QuayRegistry in this namespace) and endpoint (an external registry)"))]
pub struct RegistryRef {
    /// A QuayRegistry in the same namespace; the operator uses the admin credentials it
    /// bootstrapped for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Base URL of an external Quay-compatible registry, e.g. `https://quay.example.com`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// With `endpoint`: a Secret in this namespace holding `token` (an OAuth access token) or
    /// `username` and `password`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret_ref: Option<SecretRef>,
    /// With `endpoint`: a Secret key holding the PEM CA bundle that signs the registry's
    /// certificate (default key `ca.crt`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_secret_ref: Option<SecretKeyRef>,
    /// With `endpoint`: accept any certificate (testing only).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub insecure_skip_tls_verify: bool,
}

/// A Secret in the resource's namespace.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct SecretRef {
    /// The Secret's name.
    pub name: String,
}

/// One key of a Secret in the resource's namespace.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct SecretKeyRef {
    /// The Secret's name.
    pub name: String,
    /// The key (default `ca.crt`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

/// What deleting the custom resource does to the registry object.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DeletionPolicy {
    /// Delete the registry object too (the default).
    #[default]
    Delete,
    /// Leave the registry object as it is.
    Orphan,
}

/// What every content kind reports: `Ready` and `Synced` conditions and the generation they
/// describe. Kinds add their own fields beside it (flattened).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ContentStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready` (the registry object exists and matches the spec) and `Synced` (the last
    /// reconcile succeeded).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<super::Condition>,
    /// The registry the object lives in (its API base URL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry: Option<String>,
}
