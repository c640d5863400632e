//! Repository builds (`/api/v1/repository/{repo}/build/...`) and the upload of build contexts
//! (`POST /api/v1/filedrop/`, then `PUT` of the file to the URL it answers).
//!
//! Shapes are Quay's: a build's view carries `phase`, `started` (RFC 2822), `display_name`,
//! `status` (what the builder reports while it runs), `subdirectory` and `dockerfile_path`
//! (both the Dockerfile's path, as Quay answers), `context`, `tags`, `manual_user`, `error`;
//! logs are `{"start", "total", "logs": [{"message", "type"?, "data"?}]}`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

#[cfg(feature = "client")]
use crate::client::{Client, Result, seg};
#[cfg(feature = "client")]
use reqwest::Method;

/// `POST .../build/`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archive_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subdirectory: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dockerfile_path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_robot: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker_tags: Option<Vec<String>>,
}

/// The repository a build belongs to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildRepository {
    pub namespace: String,
    pub name: String,
}

/// A build's pull robot, as Quay's `user_view`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildPullRobot {
    pub name: String,
    pub kind: String,
    pub is_robot: bool,
}

/// One build, as `GET .../build/{uuid}` answers it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Build {
    pub id: String,
    /// `waiting`, `build-scheduled`, `unpacking`, `pulling`, `building`, `pushing`, `complete`,
    /// `error`, `internalerror`, `cancelled` or `expired`.
    pub phase: String,
    pub started: String,
    pub display_name: String,
    pub status: Value,
    pub subdirectory: String,
    pub dockerfile_path: String,
    pub context: String,
    pub tags: Vec<String>,
    pub manual_user: Option<String>,
    pub is_writer: bool,
    pub trigger: Option<Value>,
    pub trigger_metadata: Option<Value>,
    pub resource_key: Option<String>,
    pub pull_robot: Option<BuildPullRobot>,
    pub repository: BuildRepository,
    pub error: Option<String>,
    /// For writers: where the build context came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archive_url: Option<String>,
}

/// `GET .../build/`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BuildList {
    pub builds: Vec<Build>,
}

/// `GET .../build/{uuid}/logs`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BuildLogs {
    pub start: i64,
    pub total: i64,
    pub logs: Vec<Value>,
}

/// `POST /filedrop/`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileDropRequest {
    #[serde(rename = "mimeType")]
    pub mime_type: String,
}

/// The answer to `POST /filedrop/`: `PUT` the file to `url`, then build with `file_id`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileDrop {
    pub url: String,
    pub file_id: String,
}

#[cfg(feature = "client")]
impl Client {
    /// Requests a build (201 with the build's view).
    pub async fn request_build(
        &self,
        namespace: &str,
        repository: &str,
        request: &BuildRequest,
    ) -> Result<Build> {
        self.json(
            Method::POST,
            &format!("/repository/{}/{}/build/", seg(namespace), seg(repository)),
            Some(request),
        )
        .await
    }

    /// One build.
    pub async fn build(&self, namespace: &str, repository: &str, uuid: &str) -> Result<Build> {
        self.json(
            Method::GET,
            &format!(
                "/repository/{}/{}/build/{}",
                seg(namespace),
                seg(repository),
                seg(uuid)
            ),
            Self::NONE,
        )
        .await
    }
}
