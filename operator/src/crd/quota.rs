//! The `Quota` custom resource: the storage quota of one registry namespace (an organization
//! or a user) with its Warning and Reject limits, and the namespace's usage in the status.
//!
//! Rules:
//! - One namespace has at most one quota; `spec.namespace` is immutable (CEL rule, checked
//!   again by the operator through the conflict rule of [`crate::content`]).
//! - `limit` is a Kubernetes quantity (`10Gi`, `500M`) or a byte count; `limits` is the exact
//!   set of limits the quota has.
//! - The status reports the usage the registry computes (`usedBytes`, `usedPercent`,
//!   `limitBytes`), refreshed every resync; an unchanged usage writes nothing.

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::content::{ContentStatus, DeletionPolicy, RegistryRef};

/// The storage quota of a registry namespace.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "quayside.dev",
    version = "v1alpha1",
    kind = "Quota",
    plural = "quotas",
    singular = "quota",
    shortname = "qquota",
    namespaced,
    status = "QuotaStatus",
    doc = "The storage quota of an organization or user namespace in a Quay-compatible registry, with its Warning and Reject limits, reconciled by quayside-operator.",
    printcolumn(name = "Namespace", type_ = "string", json_path = ".spec.namespace", description = "The registry namespace"),
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status", description = "The quota exists and matches the spec"),
    printcolumn(name = "Synced", type_ = "string", json_path = ".status.conditions[?(@.type==\"Synced\")].status", description = "The last reconcile succeeded"),
    printcolumn(name = "Limit", type_ = "string", json_path = ".status.limit", description = "The quota"),
    printcolumn(name = "Used", type_ = "string", json_path = ".status.used", description = "Storage the namespace uses"),
    printcolumn(name = "Used%", type_ = "number", json_path = ".status.usedPercent", description = "Usage as a percentage of the quota"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    validation = kube::core::Rule::new("self.spec.namespace == oldSelf.spec.namespace").message("spec.namespace is immutable")
)]
#[serde(rename_all = "camelCase")]
pub struct QuotaSpec {
    /// The registry the namespace lives in.
    pub registry_ref: RegistryRef,
    /// The organization or user namespace the quota applies to. Immutable.
    pub namespace: String,
    /// The quota: a Kubernetes quantity (`10Gi`, `500Mi`, `2G`) or a number of bytes.
    pub limit: IntOrString,
    /// The quota's limits, exactly these: each a `type` and the percentage of the quota at
    /// which it applies. `Warning` reports, `Reject` refuses pushes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub limits: Vec<QuotaLimitSpec>,
    /// `Delete` (default) removes the quota from the registry when this resource is deleted;
    /// `Orphan` leaves it.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
    /// How often the registry is re-read to refresh the usage and correct drift (e.g. `5m`;
    /// default: the operator's `--resync-interval`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resync_interval: Option<String>,
}

/// One limit of a quota.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct QuotaLimitSpec {
    /// `Warning` (crossing it is reported) or `Reject` (at or over it, pushes are refused).
    #[serde(rename = "type")]
    pub type_: QuotaLimitKind,
    /// The percentage of the quota at which the limit applies (1 to 100).
    #[schemars(range(min = 1, max = 100))]
    pub threshold_percent: i64,
}

/// The kind of a quota limit.
#[derive(
    JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord,
)]
pub enum QuotaLimitKind {
    /// Crossing it is reported (audit log, notification); pushes go on.
    Warning,
    /// At or over it, pushes are refused.
    Reject,
}

/// Observed state of a Quota, written by the operator only.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct QuotaStatus {
    #[serde(flatten)]
    pub content: ContentStatus,
    /// `organization` or `user`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_kind: Option<String>,
    /// The quota in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit_bytes: Option<i64>,
    /// The quota, human-readable (e.g. `10.0 GiB`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<String>,
    /// Bytes the namespace uses (each blob counted once).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub used_bytes: Option<i64>,
    /// The usage, human-readable (e.g. `1.2 MiB`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub used: Option<String>,
    /// The usage as a percentage of the quota (two decimals).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub used_percent: Option<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quota_round_trips_through_yaml() {
        let text = "registryRef: {name: registry}\nnamespace: acme\nlimit: 10Gi\nlimits:\n- {type: Reject, thresholdPercent: 100}\n";
        let spec: QuotaSpec = serde_yaml::from_str(text).unwrap();
        assert_eq!(spec.limit, IntOrString::String("10Gi".into()));
        assert_eq!(spec.limits[0].type_, QuotaLimitKind::Reject);
        assert_eq!(spec.deletion_policy, DeletionPolicy::Delete);
        let back: QuotaSpec = serde_yaml::from_str(&serde_yaml::to_string(&spec).unwrap()).unwrap();
        assert_eq!(back, spec);
        let bytes: QuotaSpec =
            serde_yaml::from_str("registryRef: {name: r}\nnamespace: acme\nlimit: 1048576\n")
                .unwrap();
        assert_eq!(bytes.limit, IntOrString::Int(1_048_576));
        assert!(serde_yaml::from_str::<QuotaSpec>(
            "registryRef: {name: r}\nnamespace: a\nlimit: 1\nlimits: [{type: Hard, thresholdPercent: 1}]\n"
        )
        .is_err());
    }
}
