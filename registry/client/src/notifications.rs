//! Repository notifications (`/repository/{repo}/notification/...`): what event, delivered how,
//! and the failure count of its deliveries.

use serde::{Deserialize, Serialize};
use serde_json::Value;

#[cfg(feature = "client")]
use crate::client::{Client, Result, repo_path, seg};
#[cfg(feature = "client")]
use reqwest::Method;

/// One repository notification, as Quay shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RepoNotification {
    pub uuid: String,
    pub title: Option<String>,
    /// `repo_push`, `repo_image_expiry`, `build_queued`, ...
    pub event: String,
    /// `webhook`, `email`, `slack`, `flowdock`, `hipchat` or `quay_notification`.
    pub method: String,
    /// The method's settings (`url`, `template`, `email`, `target`, ...), as given.
    pub config: Value,
    /// The event's settings (`days` before an expiry, `level` of a vulnerability, ...).
    pub event_config: Value,
    /// Failed deliveries since the last success or reset; at [`FAILURE_LIMIT`] delivery stops.
    pub number_of_failures: i64,
}

/// Failed deliveries after which a notification is no longer delivered until reset (Quay's 3).
pub const FAILURE_LIMIT: i64 = 3;

/// `GET /repository/{repo}/notification/`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RepoNotifications {
    pub notifications: Vec<RepoNotification>,
}

/// Body of `POST /repository/{repo}/notification/` (Quay spells `eventConfig` in camel case).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CreateRepoNotification {
    pub event: String,
    pub method: String,
    pub config: Value,
    #[serde(rename = "eventConfig")]
    pub event_config: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
}

/// `GET/POST /repository/{repo}/authorizedemail/{email}`: whether an address may receive the
/// repository's e-mail notifications.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorizedEmail {
    pub email: String,
    pub repository: String,
    pub namespace: String,
    pub confirmed: bool,
}

/// Body of `PUT /user/notifications/{uuid}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateUserNotification {
    pub dismissed: bool,
}

#[cfg(feature = "client")]
impl Client {
    pub async fn list_repo_notifications(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<RepoNotifications> {
        self.json(
            Method::GET,
            &format!("{}/notification/", repo_path(namespace, name)),
            Self::NONE,
        )
        .await
    }

    pub async fn create_repo_notification(
        &self,
        namespace: &str,
        name: &str,
        request: &CreateRepoNotification,
    ) -> Result<RepoNotification> {
        self.json(
            Method::POST,
            &format!("{}/notification/", repo_path(namespace, name)),
            Some(request),
        )
        .await
    }

    pub async fn get_repo_notification(
        &self,
        namespace: &str,
        name: &str,
        uuid: &str,
    ) -> Result<RepoNotification> {
        self.json(
            Method::GET,
            &format!("{}/notification/{}", repo_path(namespace, name), seg(uuid)),
            Self::NONE,
        )
        .await
    }

    pub async fn delete_repo_notification(
        &self,
        namespace: &str,
        name: &str,
        uuid: &str,
    ) -> Result<()> {
        self.unit(
            Method::DELETE,
            &format!("{}/notification/{}", repo_path(namespace, name), seg(uuid)),
            Self::NONE,
        )
        .await
    }

    /// Sets the failure count back to 0, so delivery resumes.
    pub async fn reset_repo_notification(
        &self,
        namespace: &str,
        name: &str,
        uuid: &str,
    ) -> Result<()> {
        self.unit(
            Method::POST,
            &format!("{}/notification/{}", repo_path(namespace, name), seg(uuid)),
            Self::NONE,
        )
        .await
    }

    /// Queues a delivery of the event's sample payload.
    pub async fn test_repo_notification(
        &self,
        namespace: &str,
        name: &str,
        uuid: &str,
    ) -> Result<()> {
        self.unit(
            Method::POST,
            &format!(
                "{}/notification/{}/test",
                repo_path(namespace, name),
                seg(uuid)
            ),
            Self::NONE,
        )
        .await
    }
}
