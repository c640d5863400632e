//! Repository mirroring (`/api/v1/repository/{repo}/mirror`, `.../mirror/sync-now`,
//! `.../mirror/sync-cancel`) and the repository state (`PUT /repository/{repo}/changestate`).
//!
//! The upstream password is write-only: requests carry it, no answer ever does. `PUT` changes
//! only the fields it names; for the username and password an explicit `null` clears the value
//! ([`MirrorRequest`] keeps "absent" and "null" apart).

use serde::{Deserialize, Serialize};

#[cfg(feature = "client")]
use crate::client::{Client, Result, seg};
#[cfg(feature = "client")]
use reqwest::Method;

/// Quay's only rule kind: a list of tag globs (`fnmatch`: `*`, `?`, `[...]`).
pub const TAG_GLOB_CSV: &str = "tag_glob_csv";

/// Quay's `sync_start_date` format (UTC).
pub const MIRROR_DATE_FORMAT: &str = "%Y-%m-%dT%H:%M:%SZ";

/// Which upstream tags a mirror copies.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MirrorRule {
    pub rule_kind: String,
    pub rule_value: Vec<String>,
}

/// How to reach the upstream.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MirrorRegistryConfig {
    /// Verify the upstream's TLS certificate (`false`: also plain HTTP).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify_tls: Option<bool>,
    /// Accept images without signatures (kept for Quay's shape; nothing is verified).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unsigned_images: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy: Option<MirrorProxy>,
}

/// Proxies for reaching the upstream.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MirrorProxy {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_proxy: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub https_proxy: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_proxy: Option<String>,
}

/// `POST .../mirror` (required: `external_reference`, `sync_interval`, `sync_start_date`,
/// `root_rule`, `robot_username`) and `PUT .../mirror` (every field optional).
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MirrorRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_enabled: Option<bool>,
    /// `host[:port]/path/of/repository`, without a tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_reference: Option<String>,
    /// Absent: unchanged; `null`: none.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "present")]
    pub external_registry_username: Option<Option<String>>,
    /// Absent: unchanged; `null`: none.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "present")]
    pub external_registry_password: Option<Option<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_registry_config: Option<MirrorRegistryConfig>,
    /// Seconds between syncs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync_interval: Option<i64>,
    /// The first (next) sync, [`MIRROR_DATE_FORMAT`]; a JSON string checked by the server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync_start_date: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_rule: Option<MirrorRule>,
    /// `namespace+robot`: who the mirrored content is pushed as.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub robot_username: Option<String>,
    /// Seconds one sync may take.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skopeo_timeout_interval: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub architecture_filter: Option<Vec<String>>,
}

impl std::fmt::Debug for MirrorRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MirrorRequest")
            .field("is_enabled", &self.is_enabled)
            .field("external_reference", &self.external_reference)
            .field(
                "external_registry_username",
                &self.external_registry_username,
            )
            .field(
                "external_registry_password",
                &self
                    .external_registry_password
                    .as_ref()
                    .map(|p| p.as_ref().map(|_| "<redacted>")),
            )
            .field("external_registry_config", &self.external_registry_config)
            .field("sync_interval", &self.sync_interval)
            .field("sync_start_date", &self.sync_start_date)
            .field("root_rule", &self.root_rule)
            .field("robot_username", &self.robot_username)
            .field("skopeo_timeout_interval", &self.skopeo_timeout_interval)
            .field("architecture_filter", &self.architecture_filter)
            .finish()
    }
}

/// `GET .../mirror`, Quay's keys exactly.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MirrorConfig {
    pub is_enabled: bool,
    /// Always `PULL`.
    pub mirror_type: String,
    pub external_reference: String,
    pub external_registry_username: Option<String>,
    pub external_registry_config: MirrorRegistryConfig,
    pub sync_interval: i64,
    pub sync_start_date: String,
    pub sync_expiration_date: Option<String>,
    pub sync_retries_remaining: i64,
    /// `NEVER_RUN`, `SYNC_NOW`, `SYNCING`, `SUCCESS`, `FAIL` or `CANCEL`.
    pub sync_status: String,
    pub root_rule: MirrorRule,
    pub robot_username: Option<String>,
    pub skopeo_timeout_interval: i64,
    pub architecture_filter: Vec<String>,
}

/// `PUT .../changestate`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeStateRequest {
    /// `NORMAL`, `READ_ONLY` or `MIRROR`.
    pub state: String,
}

/// Tells a field that is absent (`None`) from one that is `null` (`Some(None)`).
mod present {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use std::result::Result;

    pub fn serialize<S: Serializer>(v: &Option<Option<String>>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(inner) => inner.serialize(s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Option<String>>, D::Error> {
        Option::<String>::deserialize(d).map(Some)
    }
}

#[cfg(feature = "client")]
impl Client {
    /// The repository's mirror configuration (404 if it has none).
    pub async fn mirror(&self, namespace: &str, repository: &str) -> Result<MirrorConfig> {
        self.json(
            Method::GET,
            &format!("/repository/{}/{}/mirror", seg(namespace), seg(repository)),
            Self::NONE,
        )
        .await
    }

    /// Creates the mirror configuration (409 if there is one).
    pub async fn create_mirror(
        &self,
        namespace: &str,
        repository: &str,
        request: &MirrorRequest,
    ) -> Result<()> {
        self.unit(
            Method::POST,
            &format!("/repository/{}/{}/mirror", seg(namespace), seg(repository)),
            Some(request),
        )
        .await
    }

    /// Changes the fields `request` names.
    pub async fn update_mirror(
        &self,
        namespace: &str,
        repository: &str,
        request: &MirrorRequest,
    ) -> Result<()> {
        self.unit(
            Method::PUT,
            &format!("/repository/{}/{}/mirror", seg(namespace), seg(repository)),
            Some(request),
        )
        .await
    }

    /// Asks for a sync as soon as a worker is free.
    pub async fn mirror_sync_now(&self, namespace: &str, repository: &str) -> Result<()> {
        self.unit(
            Method::POST,
            &format!(
                "/repository/{}/{}/mirror/sync-now",
                seg(namespace),
                seg(repository)
            ),
            Self::NONE,
        )
        .await
    }

    /// Stops a sync in progress (or drops a requested one).
    pub async fn mirror_sync_cancel(&self, namespace: &str, repository: &str) -> Result<()> {
        self.unit(
            Method::POST,
            &format!(
                "/repository/{}/{}/mirror/sync-cancel",
                seg(namespace),
                seg(repository)
            ),
            Self::NONE,
        )
        .await
    }

    /// Sets the repository's state (`NORMAL`, `READ_ONLY`, `MIRROR`).
    pub async fn change_repository_state(
        &self,
        namespace: &str,
        repository: &str,
        state: &str,
    ) -> Result<()> {
        self.unit(
            Method::PUT,
            &format!(
                "/repository/{}/{}/changestate",
                seg(namespace),
                seg(repository)
            ),
            Some(&ChangeStateRequest {
                state: state.to_owned(),
            }),
        )
        .await
    }
}
