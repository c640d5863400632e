//! The `Organization` custom resource: a Quay organization with its teams, repositories and
//! default permissions, kept as declared.
//!
//! Rules:
//! - The spec lists what the operator manages; what it does not list is left alone, except
//!   inside a listed team (its members and repository roles are exactly the listed ones) and
//!   the listed default permissions (the organization's prototypes are exactly those listed,
//!   once `defaultPermissions` is set). The `owners` team is never emptied by the operator: its
//!   members are only added, unless the team is listed with `members`.
//! - `spec.name` is immutable (CEL rule, checked again by the operator).

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::content::{ContentStatus, DeletionPolicy, RegistryRef};

/// An organization in a Quay-compatible registry.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "quayside.dev",
    version = "v1alpha1",
    kind = "Organization",
    plural = "organizations",
    singular = "organization",
    shortname = "qorg",
    namespaced,
    status = "OrganizationStatus",
    doc = "An organization in a Quay-compatible registry (teams, repositories, default permissions), reconciled by quayside-operator.",
    printcolumn(name = "Org", type_ = "string", json_path = ".status.name", description = "The organization's name in the registry"),
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status", description = "The registry object exists and matches the spec"),
    printcolumn(name = "Synced", type_ = "string", json_path = ".status.conditions[?(@.type==\"Synced\")].status", description = "The last reconcile succeeded"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    validation = kube::core::Rule::new("!has(oldSelf.spec.name) || (has(self.spec.name) && self.spec.name == oldSelf.spec.name)").message("spec.name is immutable")
)]
#[serde(rename_all = "camelCase")]
pub struct OrganizationSpec {
    /// The registry the organization lives in.
    pub registry_ref: RegistryRef,
    /// The organization's name in the registry (default: `metadata.name`). Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Contact e-mail of the organization.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// How long deleted or moved tags stay recoverable (the time machine), e.g. `2w`; one of
    /// the registry's `TAG_EXPIRATION_OPTIONS`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_machine: Option<String>,
    /// Teams, each with exactly the listed members and repository roles.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub teams: Vec<TeamSpec>,
    /// Default permissions (Quay's prototypes): roles granted on every new repository.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_permissions: Option<Vec<DefaultPermission>>,
    /// Repositories created when missing (visibility and description kept as declared).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub repositories: Vec<RepositorySpec>,
    /// `Delete` (default) removes the organization from the registry when this resource is
    /// deleted; `Orphan` leaves it.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
    /// How often the registry is re-read to correct drift (e.g. `5m`, `1h`; default: the
    /// operator's `--resync-interval`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resync_interval: Option<String>,
}

/// A team of the organization.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct TeamSpec {
    /// The team's name.
    pub name: String,
    /// `member` (default), `creator` or `admin`.
    #[serde(default)]
    pub role: TeamRole,
    /// The team's description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Users and robots (`org+name`) in the team; `None` leaves membership alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub members: Option<Vec<String>>,
    /// The team's roles on repositories of this organization.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub repositories: Vec<RepositoryRole>,
}

/// A team's organization-wide role.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum TeamRole {
    #[default]
    Member,
    Creator,
    Admin,
}

impl TeamRole {
    pub fn as_str(self) -> &'static str {
        match self {
            TeamRole::Member => "member",
            TeamRole::Creator => "creator",
            TeamRole::Admin => "admin",
        }
    }
}

/// A role on a repository.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    #[default]
    Read,
    Write,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Read => "read",
            Role::Write => "write",
            Role::Admin => "admin",
        }
    }
}

/// A role on one repository of the namespace.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct RepositoryRole {
    /// The repository's name (without the namespace).
    pub name: String,
    /// `read`, `write` or `admin`.
    pub role: Role,
}

/// Who a default permission is granted to: exactly one of team, user and robot.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = kube::core::Rule::new("(has(self.team) ? 1 : 0) + (has(self.user) ? 1 : 0) + (has(self.robot) ? 1 : 0) == 1").message("set exactly one of team, user and robot"))]
pub struct Delegate {
    /// A team of the organization.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    /// A user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// A robot of the organization (`org+name`, or the short name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub robot: Option<String>,
}

/// A default permission (Quay's prototype).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct DefaultPermission {
    /// Who receives the role.
    pub delegate: Delegate,
    /// `read`, `write` or `admin`.
    pub role: Role,
    /// Only for repositories created by this user (default: any creator).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activating_user: Option<String>,
}

/// A repository of the organization.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct RepositorySpec {
    /// The repository's name.
    pub name: String,
    /// `private` (default) or `public`.
    #[serde(default)]
    pub visibility: Visibility,
    /// The repository's description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// Who may pull a repository.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Visibility {
    #[default]
    Private,
    Public,
}

impl Visibility {
    pub fn as_str(self) -> &'static str {
        match self {
            Visibility::Private => "private",
            Visibility::Public => "public",
        }
    }
}

/// Observed state of an Organization, written by the operator only.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct OrganizationStatus {
    #[serde(flatten)]
    pub content: ContentStatus,
    /// The organization's name in the registry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// How many teams, repositories and default permissions the operator manages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub managed: Option<ManagedCounts>,
    /// The teams the operator created or keeps (a team dropped from the spec is deleted).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub managed_teams: Vec<String>,
}

/// Counts of what an Organization manages.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ManagedCounts {
    pub teams: i64,
    pub repositories: i64,
    pub default_permissions: i64,
}
