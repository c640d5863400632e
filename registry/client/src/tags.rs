//! Tags of a repository and their history (`/api/v1/repository/{repo}/tag/...`). Times are
//! Quay's: `*_ts` in epoch seconds, dates as RFC 2822 strings.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[cfg(feature = "client")]
use crate::client::{Client, Result, repo_path, seg};
#[cfg(feature = "client")]
use reqwest::Method;

/// One lifetime of a tag in `GET .../tag/`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Tag {
    pub name: String,
    /// The lifetime restored an earlier state of the tag (the time machine).
    pub reversion: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_ts: Option<i64>,
    /// When the lifetime ended, or when it will end if the tag expires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_ts: Option<i64>,
    pub manifest_digest: String,
    pub is_manifest_list: bool,
    /// Compressed size of the image's layers; `null` for a manifest list.
    pub size: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_modified: Option<String>,
    /// `end_ts` as a date.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiration: Option<String>,
    /// Manifest lists only: whether some child manifest is missing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_sparse: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub child_manifest_count: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub present_child_count: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub child_manifests_presence: Option<BTreeMap<String, bool>>,
}

/// `GET /api/v1/repository/{repo}/tag/`: tag history, newest first.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TagHistory {
    pub tags: Vec<Tag>,
    pub page: i64,
    pub has_additional: bool,
}

/// Query of `GET .../tag/`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TagHistoryQuery {
    pub only_active_tags: bool,
    pub page: Option<i64>,
    pub limit: Option<i64>,
    pub specific_tag: Option<String>,
}

/// Body of `PUT /api/v1/repository/{repo}/tag/{tag}`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ChangeTagRequest {
    /// Create the tag, or move it, to this manifest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest_digest: Option<String>,
    /// Absent: unchanged. `null`: no expiration. A number: expire at these epoch seconds.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present",
        serialize_with = "inner"
    )]
    pub expiration: Option<Option<f64>>,
}

fn present<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Option<Option<f64>>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Seconds {
        Number(f64),
        Text(String),
    }
    match Option::<Seconds>::deserialize(d)? {
        None => Ok(Some(None)),
        Some(Seconds::Number(n)) => Ok(Some(Some(n))),
        Some(Seconds::Text(t)) => t.trim().parse().map(|n| Some(Some(n))).map_err(|_| {
            serde::de::Error::custom(format!("{t:?} is not a number of seconds since the epoch"))
        }),
    }
}

fn inner<S: Serializer>(v: &Option<Option<f64>>, s: S) -> std::result::Result<S::Ok, S::Error> {
    match v {
        Some(Some(n)) => s.serialize_f64(*n),
        _ => s.serialize_none(),
    }
}

/// Body of `POST /api/v1/repository/{repo}/tag/{tag}/restore`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoreTagRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest_digest: Option<String>,
}

#[cfg(feature = "client")]
impl Client {
    /// Tag history, newest first.
    pub async fn tag_history(
        &self,
        namespace: &str,
        name: &str,
        query: &TagHistoryQuery,
    ) -> Result<TagHistory> {
        let mut params = vec![format!("onlyActiveTags={}", query.only_active_tags)];
        if let Some(p) = query.page {
            params.push(format!("page={p}"));
        }
        if let Some(l) = query.limit {
            params.push(format!("limit={l}"));
        }
        if let Some(t) = &query.specific_tag {
            params.push(format!("specificTag={}", seg(t)));
        }
        self.json(
            Method::GET,
            &format!("{}/tag/?{}", repo_path(namespace, name), params.join("&")),
            Self::NONE,
        )
        .await
    }

    /// Creates or moves a tag and/or changes its expiration.
    pub async fn change_tag(
        &self,
        namespace: &str,
        name: &str,
        tag: &str,
        request: &ChangeTagRequest,
    ) -> Result<String> {
        self.json(
            Method::PUT,
            &format!("{}/tag/{}", repo_path(namespace, name), seg(tag)),
            Some(request),
        )
        .await
    }

    /// Ends the tag's lifetime.
    pub async fn delete_tag(&self, namespace: &str, name: &str, tag: &str) -> Result<()> {
        self.unit(
            Method::DELETE,
            &format!("{}/tag/{}", repo_path(namespace, name), seg(tag)),
            Self::NONE,
        )
        .await
    }

    /// Points the tag back at a manifest it had inside the time machine window.
    pub async fn restore_tag(
        &self,
        namespace: &str,
        name: &str,
        tag: &str,
        manifest_digest: &str,
    ) -> Result<()> {
        let body = RestoreTagRequest {
            manifest_digest: Some(manifest_digest.to_owned()),
        };
        self.unit(
            Method::POST,
            &format!("{}/tag/{}/restore", repo_path(namespace, name), seg(tag)),
            Some(&body),
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn change_tag_request_tells_absent_from_null() {
        let absent: ChangeTagRequest = serde_json::from_str(r#"{"manifest_digest":"d"}"#).unwrap();
        assert_eq!(absent.expiration, None);
        let null: ChangeTagRequest = serde_json::from_str(r#"{"expiration":null}"#).unwrap();
        assert_eq!(null.expiration, Some(None));
        let n: ChangeTagRequest = serde_json::from_str(r#"{"expiration":1700000000}"#).unwrap();
        assert_eq!(n.expiration, Some(Some(1_700_000_000.0)));
        let s: ChangeTagRequest = serde_json::from_str(r#"{"expiration":"1700000000"}"#).unwrap();
        assert_eq!(s.expiration, Some(Some(1_700_000_000.0)));
        assert!(serde_json::from_str::<ChangeTagRequest>(r#"{"expiration":"soon"}"#).is_err());
        assert_eq!(
            serde_json::to_string(&ChangeTagRequest {
                manifest_digest: None,
                expiration: Some(None)
            })
            .unwrap(),
            r#"{"expiration":null}"#
        );
    }
}
