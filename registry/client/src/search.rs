//! Search: `/api/v1/entities/{prefix}` (users, robots, teams and organizations by name prefix,
//! for pickers) and `/api/v1/find/repositories` (repositories by name or description).

use serde::{Deserialize, Serialize};

use crate::common::Avatar;

#[cfg(feature = "client")]
use crate::client::{Client, Result, seg};
#[cfg(feature = "client")]
use reqwest::Method;

/// One entity found by prefix: `kind` is `user` (robots too, with `is_robot`), `team` or `org`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entity {
    pub name: String,
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_robot: Option<bool>,
    /// Set when the search was scoped to an organization.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_org_member: Option<bool>,
    pub avatar: Avatar,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entities {
    pub results: Vec<Entity>,
}

/// The namespace of a repository found by search.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FoundNamespace {
    /// `user` or `org`.
    pub title: String,
    /// `user` or `organization`.
    pub kind: String,
    pub avatar: Avatar,
    pub name: String,
    pub score: f64,
    pub href: String,
}

/// A repository found by `find/repositories`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FoundRepository {
    pub kind: String,
    pub title: String,
    pub namespace: FoundNamespace,
    pub name: String,
    pub description: Option<String>,
    pub is_public: bool,
    pub score: f64,
    pub href: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_modified: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stars: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub popularity: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FoundRepositories {
    pub results: Vec<FoundRepository>,
    pub has_additional: bool,
    pub page: i64,
    pub page_size: i64,
    pub start_index: i64,
}

#[cfg(feature = "client")]
impl Client {
    /// Users (and, within `namespace`, its robots and teams) whose name starts with `prefix`.
    pub async fn entities(&self, prefix: &str, namespace: Option<&str>) -> Result<Entities> {
        let mut path = format!("/entities/{}?includeTeams=true", seg(prefix));
        if let Some(ns) = namespace {
            path.push_str(&format!("&namespace={}", seg(ns)));
        }
        self.json(Method::GET, &path, Self::NONE).await
    }

    /// Repositories the caller sees whose name or description contains `query`.
    pub async fn find_repositories(&self, query: &str, page: i64) -> Result<FoundRepositories> {
        let path = format!("/find/repositories?query={}&page={page}", seg(query));
        self.json(Method::GET, &path, Self::NONE).await
    }
}

/// `GET /api/v1/find/all`: teams, robots, repositories, users and organizations matching a
/// query, best first. Each result's shape depends on its `kind` (`team`, `robot`, `repository`,
/// `user`, `organization`), as Quay answers them, so results are kept as JSON objects.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SearchResults {
    pub results: Vec<serde_json::Value>,
}
