//! Manifests of a repository as the REST API shows them (`.../manifest/{digest}`).

use serde::{Deserialize, Serialize};

#[cfg(feature = "client")]
use crate::client::{Client, Result, repo_path, seg};
#[cfg(feature = "client")]
use reqwest::Method;

/// One layer in `GET .../manifest/{digest}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ManifestLayer {
    pub index: i64,
    pub compressed_size: i64,
    pub is_remote: bool,
    pub urls: Option<Vec<String>>,
    pub command: Option<Vec<String>>,
    pub comment: Option<String>,
    pub author: Option<String>,
    pub blob_digest: String,
    pub created_datetime: Option<String>,
}

/// `GET /api/v1/repository/{repo}/manifest/{digest}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub digest: String,
    pub is_manifest_list: bool,
    /// The manifest as pushed.
    pub manifest_data: String,
    pub config_media_type: Option<String>,
    pub layers_compressed_size: i64,
    /// `null` for a manifest list.
    pub layers: Option<Vec<ManifestLayer>>,
}

#[cfg(feature = "client")]
impl Client {
    pub async fn manifest(&self, namespace: &str, name: &str, digest: &str) -> Result<Manifest> {
        self.json(
            Method::GET,
            &format!("{}/manifest/{}", repo_path(namespace, name), seg(digest)),
            Self::NONE,
        )
        .await
    }
}
