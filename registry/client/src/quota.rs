//! Quota management (`/organization/{org}/quota...`, `/user/quota...`,
//! `/superuser/{users,organization}/{namespace}/quota...`) and the `quota_report` that
//! organization, user and repository views carry.
//!
//! A namespace has at most one quota (`limit_bytes`); a quota has limits, each a `type`
//! (`Warning` or `Reject`) at a `threshold_percent` of the quota. Creating answers 201 with the
//! JSON string `"Created"`, deleting 204; reading answers [`QuotaView`] / [`QuotaLimit`].

use serde::{Deserialize, Serialize};

#[cfg(feature = "client")]
use crate::client::{Client, Result, seg};
#[cfg(feature = "client")]
use reqwest::Method;

/// The storage a namespace or repository uses, as views report it (`quota_report`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QuotaReport {
    /// Bytes used: each blob counted once however many manifests share it.
    pub quota_bytes: i64,
    /// The namespace's quota in bytes, `null` without one.
    pub configured_quota: Option<i64>,
    /// Namespace views only: the backfill state (`waiting`, `running`, `complete`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub running_backfill: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backfill_status: Option<String>,
}

/// The kind of a quota limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum QuotaLimitType {
    /// Crossing it is reported (audit log, notification); pushes go on.
    Warning,
    /// At or over it, pushes are refused.
    Reject,
}

impl QuotaLimitType {
    /// Quay's spelling, `Warning` or `Reject`.
    pub fn as_str(self) -> &'static str {
        match self {
            QuotaLimitType::Warning => "Warning",
            QuotaLimitType::Reject => "Reject",
        }
    }

    /// Quay's spelling, case-insensitively.
    pub fn parse(s: &str) -> Option<QuotaLimitType> {
        if s.eq_ignore_ascii_case("warning") {
            Some(QuotaLimitType::Warning)
        } else if s.eq_ignore_ascii_case("reject") {
            Some(QuotaLimitType::Reject)
        } else {
            None
        }
    }
}

/// A limit of a quota (`GET .../quota/{id}/limit[/{limit_id}]`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuotaLimit {
    pub id: i64,
    #[serde(rename = "type")]
    pub kind: QuotaLimitType,
    pub limit_percent: i64,
}

/// A quota (`GET .../quota[/{id}]`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuotaView {
    pub id: i64,
    pub limit_bytes: i64,
    /// Human form of `limit_bytes`, such as `100.0 MiB`.
    pub limit: String,
    /// True when this is the system default (`DEFAULT_SYSTEM_REJECT_QUOTA_BYTES`), not the
    /// namespace's own quota.
    pub default_config: bool,
    pub limits: Vec<QuotaLimit>,
    /// True when a system default reject quota is configured.
    pub default_config_exists: bool,
}

/// A quota as organization and user views list it (`quotas`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuotaSummary {
    pub id: i64,
    pub limit_bytes: i64,
    pub limits: Vec<QuotaLimit>,
}

/// Body of `POST .../quota` and `PUT .../quota/{id}`: `limit_bytes`, or `limit` as a human
/// string (`"10 Gi"`, `"500 MiB"`, `"1 G"`: `i` units are powers of 1024, the others of 1000).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuotaRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit_bytes: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<String>,
}

impl QuotaRequest {
    pub fn bytes(limit_bytes: i64) -> QuotaRequest {
        QuotaRequest {
            limit_bytes: Some(limit_bytes),
            limit: None,
        }
    }
}

/// Body of `POST .../quota/{id}/limit`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateQuotaLimitRequest {
    /// `Warning` or `Reject`.
    #[serde(rename = "type")]
    pub kind: String,
    pub threshold_percent: i64,
}

impl CreateQuotaLimitRequest {
    pub fn new(kind: QuotaLimitType, threshold_percent: i64) -> CreateQuotaLimitRequest {
        CreateQuotaLimitRequest {
            kind: kind.as_str().to_owned(),
            threshold_percent,
        }
    }
}

/// Body of `PUT .../quota/{id}/limit/{limit_id}`; absent fields stay.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateQuotaLimitRequest {
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold_percent: Option<i64>,
}

/// Whose quota a superuser call sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QuotaNamespace<'a> {
    User(&'a str),
    Organization(&'a str),
}

impl QuotaNamespace<'_> {
    /// `/superuser/users/{ns}/quota` or `/superuser/organization/{ns}/quota`.
    #[cfg(feature = "client")]
    fn superuser_path(self) -> String {
        match self {
            QuotaNamespace::User(ns) => format!("/superuser/users/{}/quota", seg(ns)),
            QuotaNamespace::Organization(ns) => {
                format!("/superuser/organization/{}/quota", seg(ns))
            }
        }
    }
}

#[cfg(feature = "client")]
fn org_quota_path(org: &str) -> String {
    format!("/organization/{}/quota", seg(org))
}

#[cfg(feature = "client")]
impl Client {
    pub async fn organization_quotas(&self, org: &str) -> Result<Vec<QuotaView>> {
        self.json(Method::GET, &org_quota_path(org), Self::NONE)
            .await
    }

    pub async fn organization_quota(&self, org: &str, id: i64) -> Result<QuotaView> {
        self.json(
            Method::GET,
            &format!("{}/{id}", org_quota_path(org)),
            Self::NONE,
        )
        .await
    }

    /// 400 when the organization already has a quota (one per namespace).
    pub async fn create_organization_quota(&self, org: &str, request: &QuotaRequest) -> Result<()> {
        self.unit(Method::POST, &org_quota_path(org), Some(request))
            .await
    }

    pub async fn update_organization_quota(
        &self,
        org: &str,
        id: i64,
        request: &QuotaRequest,
    ) -> Result<QuotaView> {
        self.json(
            Method::PUT,
            &format!("{}/{id}", org_quota_path(org)),
            Some(request),
        )
        .await
    }

    pub async fn delete_organization_quota(&self, org: &str, id: i64) -> Result<()> {
        self.unit(
            Method::DELETE,
            &format!("{}/{id}", org_quota_path(org)),
            Self::NONE,
        )
        .await
    }

    pub async fn organization_quota_limits(&self, org: &str, id: i64) -> Result<Vec<QuotaLimit>> {
        self.json(
            Method::GET,
            &format!("{}/{id}/limit", org_quota_path(org)),
            Self::NONE,
        )
        .await
    }

    pub async fn organization_quota_limit(
        &self,
        org: &str,
        id: i64,
        limit_id: i64,
    ) -> Result<QuotaLimit> {
        self.json(
            Method::GET,
            &format!("{}/{id}/limit/{limit_id}", org_quota_path(org)),
            Self::NONE,
        )
        .await
    }

    pub async fn create_organization_quota_limit(
        &self,
        org: &str,
        id: i64,
        request: &CreateQuotaLimitRequest,
    ) -> Result<()> {
        self.unit(
            Method::POST,
            &format!("{}/{id}/limit", org_quota_path(org)),
            Some(request),
        )
        .await
    }

    /// Answers the whole quota, as Quay does.
    pub async fn update_organization_quota_limit(
        &self,
        org: &str,
        id: i64,
        limit_id: i64,
        request: &UpdateQuotaLimitRequest,
    ) -> Result<QuotaView> {
        self.json(
            Method::PUT,
            &format!("{}/{id}/limit/{limit_id}", org_quota_path(org)),
            Some(request),
        )
        .await
    }

    pub async fn delete_organization_quota_limit(
        &self,
        org: &str,
        id: i64,
        limit_id: i64,
    ) -> Result<()> {
        self.unit(
            Method::DELETE,
            &format!("{}/{id}/limit/{limit_id}", org_quota_path(org)),
            Self::NONE,
        )
        .await
    }

    /// The signed-in user's own quotas.
    pub async fn user_quotas(&self) -> Result<Vec<QuotaView>> {
        self.json(Method::GET, "/user/quota", Self::NONE).await
    }

    pub async fn user_quota(&self, id: i64) -> Result<QuotaView> {
        self.json(Method::GET, &format!("/user/quota/{id}"), Self::NONE)
            .await
    }

    pub async fn user_quota_limits(&self, id: i64) -> Result<Vec<QuotaLimit>> {
        self.json(Method::GET, &format!("/user/quota/{id}/limit"), Self::NONE)
            .await
    }

    pub async fn superuser_quotas(&self, namespace: QuotaNamespace<'_>) -> Result<Vec<QuotaView>> {
        self.json(Method::GET, &namespace.superuser_path(), Self::NONE)
            .await
    }

    pub async fn superuser_create_quota(
        &self,
        namespace: QuotaNamespace<'_>,
        request: &QuotaRequest,
    ) -> Result<()> {
        self.unit(Method::POST, &namespace.superuser_path(), Some(request))
            .await
    }

    pub async fn superuser_update_quota(
        &self,
        namespace: QuotaNamespace<'_>,
        id: i64,
        request: &QuotaRequest,
    ) -> Result<QuotaView> {
        self.json(
            Method::PUT,
            &format!("{}/{id}", namespace.superuser_path()),
            Some(request),
        )
        .await
    }

    pub async fn superuser_delete_quota(
        &self,
        namespace: QuotaNamespace<'_>,
        id: i64,
    ) -> Result<()> {
        self.unit(
            Method::DELETE,
            &format!("{}/{id}", namespace.superuser_path()),
            Self::NONE,
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_quota_answers_parse() {
        // Shapes recorded from Quay 3.18 (more/029, more/021).
        let q: Vec<QuotaView> = serde_json::from_str(
            r#"[{"id":1,"limit_bytes":314572800,"limit":"300.0 MiB","default_config":false,
                "limits":[{"id":1,"type":"Warning","limit_percent":60},
                          {"id":2,"type":"Reject","limit_percent":90}],
                "default_config_exists":false}]"#,
        )
        .unwrap();
        assert_eq!(q[0].limits[1].kind, QuotaLimitType::Reject);
        assert_eq!(
            serde_json::to_value(&q[0].limits[0]).unwrap(),
            serde_json::json!({"id":1,"type":"Warning","limit_percent":60})
        );
        assert_eq!(
            QuotaLimitType::parse("reject"),
            Some(QuotaLimitType::Reject)
        );
        assert_eq!(QuotaLimitType::parse("hard"), None);
    }
}
