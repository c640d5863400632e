//! The `Robot` custom resource: a robot account, its repository roles and teams, and the pull
//! Secret the operator writes for it.
//!
//! Rules:
//! - The robot's registry name is `namespace+name`; both are immutable (CEL rules, checked
//!   again by the operator).
//! - The robot's repository roles are exactly `repositories` (roles on other repositories are
//!   removed); `teams` are joined and left as listed.
//! - The Secret (type `kubernetes.io/dockerconfigjson`) is owned by the Robot in its namespace;
//!   copies in other namespaces carry a label naming the Robot and are deleted with it.

use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::content::{ContentStatus, DeletionPolicy, RegistryRef};
use super::organization::RepositoryRole;

/// A robot account in a Quay-compatible registry.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "quayside.dev",
    version = "v1alpha1",
    kind = "Robot",
    plural = "robots",
    singular = "robot",
    shortname = "qrobot",
    namespaced,
    status = "RobotStatus",
    doc = "A robot account in a Quay-compatible registry, with its repository roles, teams and a pull Secret, reconciled by quayside-operator.",
    printcolumn(name = "Robot", type_ = "string", json_path = ".status.robotName", description = "The robot's name in the registry"),
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status", description = "The registry object exists and matches the spec"),
    printcolumn(name = "Synced", type_ = "string", json_path = ".status.conditions[?(@.type==\"Synced\")].status", description = "The last reconcile succeeded"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    validation = kube::core::Rule::new("self.spec.namespace == oldSelf.spec.namespace").message("spec.namespace is immutable"),
    validation = kube::core::Rule::new("!has(oldSelf.spec.name) || (has(self.spec.name) && self.spec.name == oldSelf.spec.name)").message("spec.name is immutable")
)]
#[serde(rename_all = "camelCase")]
pub struct RobotSpec {
    /// The registry the robot lives in.
    pub registry_ref: RegistryRef,
    /// The organization (or user namespace) owning the robot.
    pub namespace: String,
    /// The robot's short name (default: `metadata.name`); its registry name is
    /// `namespace+name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The robot's description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The robot's roles on repositories of its namespace (exactly these).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub repositories: Vec<RepositoryRole>,
    /// Teams of the organization the robot belongs to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub teams: Vec<String>,
    /// The pull Secret to write (default: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<RobotSecret>,
    /// Regenerate the token on a schedule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation: Option<Rotation>,
    /// ServiceAccounts of this namespace whose `imagePullSecrets` list the Secret.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bind_service_accounts: Vec<String>,
    /// Trusted identities that may exchange their OIDC tokens for robot tokens (keyless
    /// robots), e.g. this cluster's service-account issuer and a `system:serviceaccount:...`
    /// subject.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub federation: Option<Vec<FederationIdentity>>,
    /// `Delete` (default) removes the robot from the registry when this resource is deleted;
    /// `Orphan` leaves it.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
    /// How often the registry is re-read to correct drift (e.g. `5m`; default: the
    /// operator's `--resync-interval`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resync_interval: Option<String>,
}

/// The `kubernetes.io/dockerconfigjson` Secret holding the robot's credentials.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct RobotSecret {
    /// The Secret's name (in this namespace and every listed one).
    pub name: String,
    /// Other namespaces that get a copy.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespaces: Vec<String>,
}

/// Token rotation.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Rotation {
    /// Rotate this long after the last rotation (e.g. `720h`).
    pub every: String,
}

/// One trusted OIDC identity of a federated robot.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct FederationIdentity {
    /// The token issuer (`iss`).
    pub issuer: String,
    /// The token subject (`sub`).
    pub subject: String,
}

/// Observed state of a Robot, written by the operator only.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct RobotStatus {
    #[serde(flatten)]
    pub content: ContentStatus,
    /// The robot's registry name (`namespace+name`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub robot_name: Option<String>,
    /// When the token was last regenerated by the operator (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_rotation_time: Option<String>,
    /// When the next scheduled rotation is due (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_rotation_time: Option<String>,
    /// The `quayside.dev/rotate` annotation value last acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotated_for: Option<String>,
    /// Namespaces other than the Robot's holding a copy of the Secret.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secret_namespaces: Vec<String>,
    /// ServiceAccounts whose `imagePullSecrets` the operator added the Secret to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bound_service_accounts: Vec<String>,
    /// The federation identities the operator set (it removes only these; identities added
    /// by hand stay).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub managed_federation: Vec<FederationIdentity>,
}
