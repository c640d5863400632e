//! An organization's proxy-cache configuration (`/api/v1/organization/{orgname}/proxycache` and
//! `.../validateproxycache`): the upstream registry that pulls through the organization fetch from.
//!
//! The password is write-only: requests carry it, no answer ever does. An organization without a
//! configuration answers `GET` with every field an empty string, as Quay does; [`ProxyCacheConfig`]
//! reads that as `None`s (and writes `None` back as `""`).

use serde::{Deserialize, Serialize};

#[cfg(feature = "client")]
use crate::client::{Client, Result, seg};
#[cfg(feature = "client")]
use reqwest::Method;

/// The staleness period Quay uses when a request gives none: one day.
pub const DEFAULT_PROXY_CACHE_EXPIRATION_S: i64 = 86_400;

/// `POST /organization/{org}/proxycache` and `POST /organization/{org}/validateproxycache`.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProxyCacheRequest {
    /// Quay's clients send the organization's name again; the path's name is what counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_name: Option<String>,
    /// A host with an optional port and namespace: `registry.example.com:5000/library`.
    pub upstream_registry: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream_registry_username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream_registry_password: Option<String>,
    /// Plain HTTP, or HTTPS without certificate verification.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub insecure: Option<bool>,
    /// How long a cached tag is served while the upstream is unreachable (seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiration_s: Option<i64>,
}

impl std::fmt::Debug for ProxyCacheRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProxyCacheRequest")
            .field("org_name", &self.org_name)
            .field("upstream_registry", &self.upstream_registry)
            .field(
                "upstream_registry_username",
                &self.upstream_registry_username,
            )
            .field(
                "upstream_registry_password",
                &self
                    .upstream_registry_password
                    .as_ref()
                    .map(|_| "<redacted>"),
            )
            .field("insecure", &self.insecure)
            .field("expiration_s", &self.expiration_s)
            .finish()
    }
}

/// `GET /organization/{org}/proxycache`. Unconfigured: `upstream_registry` is empty and the
/// others are `None` (Quay answers `""` for each).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProxyCacheConfig {
    pub upstream_registry: String,
    #[serde(with = "blank_as_none")]
    pub expiration_s: Option<i64>,
    #[serde(with = "blank_as_none")]
    pub insecure: Option<bool>,
}

impl ProxyCacheConfig {
    /// Whether the organization has a proxy cache at all.
    pub fn is_configured(&self) -> bool {
        !self.upstream_registry.is_empty()
    }
}

/// A value Quay writes as `""` when it has none.
mod blank_as_none {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use std::result::Result;

    pub fn serialize<T: Serialize, S: Serializer>(v: &Option<T>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => v.serialize(s),
            None => s.serialize_str(""),
        }
    }

    pub fn deserialize<'de, T, D>(d: D) -> Result<Option<T>, D::Error>
    where
        T: serde::de::DeserializeOwned,
        D: Deserializer<'de>,
    {
        let v = serde_json::Value::deserialize(d)?;
        match v {
            serde_json::Value::Null => Ok(None),
            serde_json::Value::String(s) if s.is_empty() => Ok(None),
            v => serde_json::from_value(v)
                .map(Some)
                .map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(feature = "client")]
impl Client {
    /// The organization's configuration (not configured: see [`ProxyCacheConfig::is_configured`]).
    pub async fn proxy_cache(&self, org: &str) -> Result<ProxyCacheConfig> {
        self.json(
            Method::GET,
            &format!("/organization/{}/proxycache", seg(org)),
            Self::NONE,
        )
        .await
    }

    /// Configures the organization as a proxy cache (400 if it already is one).
    pub async fn create_proxy_cache(&self, org: &str, request: &ProxyCacheRequest) -> Result<()> {
        self.unit(
            Method::POST,
            &format!("/organization/{}/proxycache", seg(org)),
            Some(request),
        )
        .await
    }

    /// Removes the configuration (404 if there is none); cached repositories stay.
    pub async fn delete_proxy_cache(&self, org: &str) -> Result<()> {
        self.unit(
            Method::DELETE,
            &format!("/organization/{}/proxycache", seg(org)),
            Self::NONE,
        )
        .await
    }

    /// Checks that the upstream answers and accepts the credentials, without storing anything:
    /// `Ok` when Quay would answer 202 "Valid", an `Api` error (400, with the reason) otherwise.
    pub async fn validate_proxy_cache(&self, org: &str, request: &ProxyCacheRequest) -> Result<()> {
        self.unit(
            Method::POST,
            &format!("/organization/{}/validateproxycache", seg(org)),
            Some(request),
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unconfigured_answer_reads_as_none_and_round_trips() {
        let blank: ProxyCacheConfig =
            serde_json::from_str(r#"{"upstream_registry":"","expiration_s":"","insecure":""}"#)
                .unwrap();
        assert!(!blank.is_configured());
        assert_eq!(blank.expiration_s, None);
        assert_eq!(
            serde_json::to_value(&blank).unwrap(),
            serde_json::json!({"upstream_registry":"","expiration_s":"","insecure":""})
        );
        let set: ProxyCacheConfig = serde_json::from_str(
            r#"{"upstream_registry":"127.0.0.1:5000","expiration_s":86400,"insecure":true}"#,
        )
        .unwrap();
        assert!(set.is_configured());
        assert_eq!(set.expiration_s, Some(86400));
        assert_eq!(set.insecure, Some(true));
    }

    #[test]
    fn request_debug_hides_the_password() {
        let r = ProxyCacheRequest {
            upstream_registry: "r.example.com".into(),
            upstream_registry_password: Some("hunter2".into()),
            ..Default::default()
        };
        assert!(!format!("{r:?}").contains("hunter2"));
    }
}
