//! Shapes every area shares: Quay's error bodies, avatars, the quota report, `{"success": ...}`.

use serde::{Deserialize, Serialize};

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

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Success {
    pub success: bool,
}
