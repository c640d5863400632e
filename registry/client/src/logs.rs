//! Usage logs (`/user/logs`, `/organization/{org}/logs`, `/repository/{repo}/logs`,
//! `/superuser/logs`, their `aggregatelogs` and `exportlogs`).
//!
//! A page ([`LogPage`]) holds at most 20 entries, newest first, between `start_time` and
//! `end_time` (RFC 2822 dates as Quay writes them); `next_page`, when present, is an opaque token
//! to pass back as the `next_page` query parameter for the following page. Entries have Quay's
//! fields: `kind`, `metadata`, `ip`, `datetime`, `performer` (absent when nobody performed it)
//! and, in the superuser's logs only, `namespace`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::Avatar;
#[cfg(feature = "client")]
use crate::client::{Client, Result, repo_path, seg};
#[cfg(feature = "client")]
use reqwest::Method;

/// Who performed an entry, or whose namespace it belongs to.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LogAccount {
    /// `user` (robots included) or `org`.
    pub kind: String,
    pub name: String,
    /// Present for performers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_robot: Option<bool>,
    pub avatar: Avatar,
}

/// One entry of the audit log.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LogEntry {
    pub kind: String,
    pub metadata: Value,
    pub ip: Option<String>,
    pub datetime: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub performer: Option<LogAccount>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<LogAccount>,
}

/// One page of logs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LogPage {
    pub start_time: String,
    pub end_time: String,
    pub logs: Vec<LogEntry>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_page: Option<String>,
}

/// Entries of one kind on one day.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AggregatedLog {
    pub kind: String,
    pub count: i64,
    /// The day, at midnight UTC.
    pub datetime: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AggregatedLogs {
    pub aggregated: Vec<AggregatedLog>,
}

/// `POST .../exportlogs`: where to deliver the export (one of the two), and optionally the
/// range (`MM/DD/YYYY`, also accepted as query parameters).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ExportLogsRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback_email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starttime: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endtime: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExportLogsStarted {
    pub export_id: String,
}

/// What the export worker POSTs to a `callback_url` when the export is ready (or failed).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExportCallback {
    pub export_id: String,
    pub start_time: String,
    pub end_time: String,
    pub namespace: String,
    pub repository: Option<String>,
    /// Where to download the export (valid for an hour), `null` when it failed.
    pub exported_data_url: Option<String>,
    /// `success` or `failed`.
    pub status: String,
}

/// The exported file: the entries of the range, newest first, in [`LogEntry`]'s shape.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExportedLogs {
    pub export_id: String,
    pub details: ExportDetails,
    pub logs: Vec<LogEntry>,
    pub terminator: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExportDetails {
    pub start_time: String,
    pub end_time: String,
    pub namespace: String,
    pub repository: Option<String>,
}

/// Whose logs a call reads.
#[derive(Clone, Debug)]
pub enum LogsOf<'a> {
    User,
    Organization(&'a str),
    Repository(&'a str, &'a str),
    Superuser,
}

impl LogsOf<'_> {
    /// The path of `what` (`logs`, `aggregatelogs`, `exportlogs`) under `/api/v1`.
    #[cfg(feature = "client")]
    fn path(&self, what: &str) -> String {
        match self {
            LogsOf::User => format!("/user/{what}"),
            LogsOf::Organization(org) => format!("/organization/{}/{what}", seg(org)),
            LogsOf::Repository(ns, name) => format!("{}/{what}", repo_path(ns, name)),
            LogsOf::Superuser => format!("/superuser/{what}"),
        }
    }
}

#[cfg(feature = "client")]
impl Client {
    /// One page of logs; `query` is e.g. `starttime=12/01/2026&next_page=...` (already encoded).
    pub async fn logs(&self, of: LogsOf<'_>, query: &str) -> Result<LogPage> {
        self.json(
            Method::GET,
            &format!("{}?{query}", of.path("logs")),
            Self::NONE,
        )
        .await
    }

    pub async fn aggregate_logs(&self, of: LogsOf<'_>, query: &str) -> Result<AggregatedLogs> {
        self.json(
            Method::GET,
            &format!("{}?{query}", of.path("aggregatelogs")),
            Self::NONE,
        )
        .await
    }

    pub async fn export_logs(
        &self,
        of: LogsOf<'_>,
        request: &ExportLogsRequest,
    ) -> Result<ExportLogsStarted> {
        self.json(Method::POST, &of.path("exportlogs"), Some(request))
            .await
    }
}
