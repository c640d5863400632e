//! Users (`/api/v1/user/...`, `/api/v1/superuser/users/...`): the signed-in user, first-user
//! initialization, the superuser's user administration, in-app notifications.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::common::Avatar;
use crate::quota::{QuotaReport, QuotaSummary};

#[cfg(feature = "client")]
use crate::client::{Client, Result, seg};
#[cfg(feature = "client")]
use reqwest::Method;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct InitializeRequest {
    pub username: String,
    pub password: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default)]
    pub access_token: bool,
    /// Quayside: the configuration's `USER_INITIALIZE_TOKEN`, when it sets one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initialize_token: Option<String>,
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
    pub quotas: Vec<QuotaSummary>,
    pub quota_report: QuotaReport,
    pub organizations: Vec<UserOrganization>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub super_user: Option<bool>,
}

/// `GET /api/v1/users/{username}` about another user: what anyone may see.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicUser {
    pub anonymous: bool,
    pub username: String,
    pub avatar: Avatar,
    /// Present for a superuser caller (whether the user is the caller and a superuser: false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub super_user: Option<bool>,
}

/// `GET /api/v1/users/{username}`: the full view for the user themself, the public one else.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum UserInformation {
    Me(Box<User>),
    Other(PublicUser),
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
    pub quotas: Vec<QuotaSummary>,
    pub quota_report: QuotaReport,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SuperUserUsers {
    pub users: Vec<SuperUserUser>,
    /// With `limit`: the token of the next page, absent on the last one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_page: Option<String>,
}

/// `GET /api/v1/superuser/registrysize/`: the last calculation of the registry's size.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistrySize {
    pub size_bytes: i64,
    /// When the last calculation finished (ms since the epoch); null before the first.
    pub last_ran: Option<i64>,
    pub queued: bool,
    pub running: bool,
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
    /// Whether more follow this page (Quay's `additional`).
    #[serde(default)]
    pub additional: bool,
}

#[cfg(feature = "client")]
impl Client {
    /// Creates the first user (a superuser) of an empty registry; with `access_token` the answer
    /// carries an access token for it.
    pub async fn initialize(&self, request: &InitializeRequest) -> Result<Initialized> {
        self.json(Method::POST, "/user/initialize", Some(request))
            .await
    }

    pub async fn current_user(&self) -> Result<User> {
        self.json(Method::GET, "/user/", Self::NONE).await
    }

    pub async fn list_users(&self) -> Result<SuperUserUsers> {
        self.json(Method::GET, "/superuser/users/", Self::NONE)
            .await
    }

    pub async fn create_user(&self, request: &CreateUserRequest) -> Result<CreatedUser> {
        self.json(Method::POST, "/superuser/users/", Some(request))
            .await
    }

    pub async fn update_user(
        &self,
        username: &str,
        request: &UpdateUserRequest,
    ) -> Result<SuperUserUser> {
        self.json(
            Method::PUT,
            &format!("/superuser/users/{}", seg(username)),
            Some(request),
        )
        .await
    }

    pub async fn delete_user(&self, username: &str) -> Result<()> {
        self.unit(
            Method::DELETE,
            &format!("/superuser/users/{}", seg(username)),
            Self::NONE,
        )
        .await
    }
}
