//! Request and response bodies of the `/api/v1` endpoints, with Quay's field names. Optional
//! fields that Quay omits in some answers are `Option` and skipped when absent.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Quay's error body.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ApiErrorBody {
    pub status: u16,
    pub error_message: String,
    pub error_type: String,
    pub detail: String,
    pub title: String,
    #[serde(rename = "type")]
    pub kind: String,
}

/// `{"message": ...}`: how Quay answers some invalid requests.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub message: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Avatar {
    pub name: String,
    pub hash: String,
    pub color: String,
    pub kind: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QuotaReport {
    pub quota_bytes: i64,
    pub configured_quota: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub running_backfill: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backfill_status: Option<String>,
}

// ---- users ----------------------------------------------------------------------------------

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct InitializeRequest {
    pub username: String,
    pub password: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default)]
    pub access_token: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Initialized {
    pub username: String,
    pub email: String,
    pub encrypted_password: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_token: Option<String>,
}

/// An organization as listed in `GET /api/v1/user/`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UserOrganization {
    pub name: String,
    pub avatar: Avatar,
    pub can_create_repo: bool,
    pub public: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_org_admin: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred_namespace: Option<bool>,
}

/// `GET /api/v1/user/`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct User {
    pub anonymous: bool,
    pub username: String,
    pub avatar: Avatar,
    pub can_create_repo: bool,
    pub is_me: bool,
    pub verified: bool,
    pub email: Option<String>,
    pub logins: Vec<Value>,
    pub invoice_email: bool,
    pub invoice_email_address: Option<String>,
    pub preferred_namespace: bool,
    pub tag_expiration_s: i64,
    pub prompts: Vec<Value>,
    pub company: Option<String>,
    pub family_name: Option<String>,
    pub given_name: Option<String>,
    pub location: Option<String>,
    pub is_free_account: bool,
    pub has_password_set: bool,
    pub quotas: Vec<Value>,
    pub quota_report: QuotaReport,
    pub organizations: Vec<UserOrganization>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub super_user: Option<bool>,
}

/// A user as the superuser panel lists it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SuperUserUser {
    pub kind: String,
    pub name: String,
    pub username: String,
    pub email: Option<String>,
    pub verified: bool,
    pub avatar: Avatar,
    pub super_user: bool,
    pub global_readonly_super_user: bool,
    pub enabled: bool,
    pub quotas: Vec<Value>,
    pub quota_report: QuotaReport,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SuperUserUsers {
    pub users: Vec<SuperUserUser>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CreateUserRequest {
    pub username: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

/// `POST /api/v1/superuser/users/`: the generated password is shown once.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CreatedUser {
    pub username: String,
    pub email: Option<String>,
    pub password: String,
    pub encrypted_password: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct UpdateUserRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
}

// ---- organizations --------------------------------------------------------------------------

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CreateOrganizationRequest {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct UpdateOrganizationRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invoice_email: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invoice_email_address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag_expiration_s: Option<i64>,
}

/// A team inside `GET /api/v1/organization/{orgname}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OrganizationTeam {
    pub name: String,
    pub description: String,
    pub role: String,
    pub avatar: Avatar,
    pub can_view: bool,
    pub repo_count: i64,
    pub member_count: i64,
    pub is_synced: bool,
}

/// `GET /api/v1/organization/{orgname}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Organization {
    pub name: String,
    pub email: String,
    pub avatar: Avatar,
    pub is_admin: bool,
    pub is_member: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub teams: Option<BTreeMap<String, OrganizationTeam>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ordered_teams: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invoice_email: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invoice_email_address: Option<Option<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag_expiration_s: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_free_account: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quotas: Option<Vec<Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota_report: Option<QuotaReport>,
}

// ---- teams ----------------------------------------------------------------------------------

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TeamRequest {
    pub role: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// `PUT /api/v1/organization/{orgname}/team/{teamname}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Team {
    pub name: String,
    pub description: String,
    pub can_view: bool,
    pub role: String,
    pub avatar: Avatar,
    pub new_team: bool,
}

/// A member (or a pending invitation) of a team.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TeamMember {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// `user` (users and robots) or `invite` (an invited e-mail address).
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_robot: Option<bool>,
    pub avatar: Avatar,
    pub invited: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TeamMembers {
    pub name: String,
    pub members: Vec<TeamMember>,
    pub can_edit: bool,
}

/// A repository a team or robot has a role on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PermissionRepository {
    pub name: String,
    pub is_public: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepositoryGrant {
    pub repository: PermissionRepository,
    pub role: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepositoryGrants {
    pub permissions: Vec<RepositoryGrant>,
}

/// `PUT /api/v1/teaminvite/{code}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AcceptedInvite {
    pub org: String,
    pub team: String,
}

/// One of `GET /api/v1/user/notifications`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    pub id: String,
    pub organization: Option<String>,
    pub kind: String,
    pub created: String,
    pub metadata: Value,
    pub dismissed: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Notifications {
    pub notifications: Vec<Notification>,
}

// ---- robots ---------------------------------------------------------------------------------

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CreateRobotRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unstructured_metadata: Option<Value>,
}

/// A robot account. `token` is there for those who administer it; `unstructured_metadata` on
/// single-robot answers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Robot {
    pub name: String,
    pub created: Option<String>,
    pub last_accessed: Option<String>,
    pub description: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unstructured_metadata: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub teams: Option<Vec<RobotTeam>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repositories: Option<Vec<String>>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RobotTeam {
    pub name: String,
    pub avatar: Avatar,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Robots {
    pub robots: Vec<Robot>,
}

/// One trusted identity of a federated (keyless) robot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FederationEntry {
    pub issuer: String,
    pub subject: String,
}

/// `GET /oauth2/federation/robot/token`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RobotToken {
    pub token: String,
}

// ---- repositories ---------------------------------------------------------------------------

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CreateRepositoryRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub repository: String,
    pub visibility: String,
    pub description: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repo_kind: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedRepository {
    pub namespace: String,
    pub name: String,
    pub kind: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RepositoryTag {
    pub name: String,
    pub size: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_modified: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiration: Option<String>,
    pub manifest_digest: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RepositoryStat {
    pub date: String,
    pub count: i64,
}

/// `GET /api/v1/repository/{namespace}/{repository}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Repository {
    pub namespace: String,
    pub name: String,
    pub kind: String,
    pub description: Option<String>,
    pub is_public: bool,
    pub is_organization: bool,
    pub is_starred: bool,
    pub status_token: String,
    pub trust_enabled: bool,
    pub tag_expiration_s: i64,
    pub is_free_account: bool,
    pub state: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<BTreeMap<String, RepositoryTag>>,
    pub can_write: bool,
    pub can_admin: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stats: Option<Vec<RepositoryStat>>,
}

/// One repository of `GET /api/v1/repository`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RepositoryListItem {
    pub namespace: String,
    pub name: String,
    pub description: Option<String>,
    pub is_public: bool,
    pub kind: String,
    pub state: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_modified: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub popularity: Option<f64>,
    pub is_starred: bool,
    pub quota_report: QuotaReport,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RepositoryList {
    pub repositories: Vec<RepositoryListItem>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_page: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct UpdateRepositoryRequest {
    pub description: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ChangeVisibilityRequest {
    pub visibility: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Success {
    pub success: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StarRequest {
    pub namespace: String,
    pub repository: String,
}

// ---- permissions ----------------------------------------------------------------------------

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleRequest {
    pub role: String,
}

/// A user's or robot's permission on a repository.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UserPermission {
    pub role: String,
    pub name: String,
    pub is_robot: bool,
    pub avatar: Avatar,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_org_member: Option<bool>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UserPermissions {
    pub permissions: BTreeMap<String, UserPermission>,
}

/// A team's permission on a repository.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TeamPermission {
    pub role: String,
    pub name: String,
    pub avatar: Avatar,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TeamPermissions {
    pub permissions: BTreeMap<String, TeamPermission>,
}

// ---- default permissions (prototypes) -------------------------------------------------------

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PrototypeName {
    pub name: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PrototypeDelegateRequest {
    pub name: String,
    /// `user` (users and robots) or `team`.
    pub kind: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CreatePrototypeRequest {
    pub role: String,
    pub delegate: PrototypeDelegateRequest,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activating_user: Option<PrototypeName>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PrototypeAccount {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_robot: Option<bool>,
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_org_member: Option<bool>,
    pub avatar: Avatar,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Prototype {
    pub activating_user: Option<PrototypeAccount>,
    pub delegate: PrototypeAccount,
    pub role: String,
    pub id: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Prototypes {
    pub prototypes: Vec<Prototype>,
}

// ---- OAuth applications and tokens ----------------------------------------------------------

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ApplicationRequest {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub avatar_email: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Application {
    pub name: String,
    pub description: String,
    pub application_uri: String,
    pub client_id: String,
    pub client_secret: Option<String>,
    pub redirect_uri: Option<String>,
    pub avatar_email: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Applications {
    pub applications: Vec<Application>,
}

/// `POST /api/v1/organization/{orgname}/applications/{client_id}/tokens`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CreateTokenRequest {
    pub name: String,
    /// Space- or comma-separated scopes, e.g. `repo:read repo:write`.
    pub scope: String,
    /// Lifetime in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiration: Option<i64>,
}

/// An application token; `token` (the secret) only in the answer that created it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ApplicationToken {
    pub uuid: String,
    pub name: Option<String>,
    pub scope: String,
    pub expires_at: Option<String>,
    pub created: Option<String>,
    pub created_by: Option<String>,
    pub last_accessed: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ApplicationTokens {
    pub tokens: Vec<ApplicationToken>,
}
