//! Tags, manifests and labels of a repository (`/api/v1/repository/{repo}/tag/...`,
//! `.../manifest/{digest}[/labels]`), with Quay's field names. Times are Quay's: `*_ts` in epoch
//! seconds, dates as RFC 2822 strings.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

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

fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<f64>>, D::Error> {
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

fn inner<S: Serializer>(v: &Option<Option<f64>>, s: S) -> Result<S::Ok, S::Error> {
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

/// A manifest label.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Label {
    pub id: String,
    pub key: String,
    pub value: String,
    /// `manifest` (imported at push) or `api`.
    pub source_type: String,
    pub media_type: String,
}

/// `GET .../labels`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Labels {
    pub labels: Vec<Label>,
}

/// Body of `POST .../labels`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddLabelRequest {
    pub key: String,
    pub value: String,
    /// `text/plain` or `application/json`; `null` infers it from the value.
    pub media_type: Option<String>,
}

/// Answer of `POST .../labels`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddedLabel {
    pub label: Label,
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
