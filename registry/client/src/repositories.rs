//! Repositories (`/api/v1/repository[/{namespace}/{repository}]`): create, read, list,
//! change, star, delete.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::quota::QuotaReport;

#[cfg(feature = "client")]
use crate::client::{Client, Result, seg};
#[cfg(feature = "client")]
use reqwest::Method;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CreateRepositoryRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub repository: String,
    pub visibility: String,
    pub description: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repo_kind: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedRepository {
    pub namespace: String,
    pub name: String,
    pub kind: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RepositoryTag {
    pub name: String,
    pub size: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_modified: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiration: Option<String>,
    pub manifest_digest: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RepositoryStat {
    pub date: String,
    pub count: i64,
}

/// `GET /api/v1/repository/{namespace}/{repository}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Repository {
    pub namespace: String,
    pub name: String,
    pub kind: String,
    pub description: Option<String>,
    pub is_public: bool,
    pub is_organization: bool,
    pub is_starred: bool,
    pub status_token: String,
    pub trust_enabled: bool,
    pub tag_expiration_s: i64,
    pub is_free_account: bool,
    pub state: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<BTreeMap<String, RepositoryTag>>,
    pub can_write: bool,
    pub can_admin: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stats: Option<Vec<RepositoryStat>>,
}

/// One repository of `GET /api/v1/repository`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RepositoryListItem {
    pub namespace: String,
    pub name: String,
    pub description: Option<String>,
    pub is_public: bool,
    pub kind: String,
    pub state: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_modified: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub popularity: Option<f64>,
    pub is_starred: bool,
    pub quota_report: QuotaReport,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RepositoryList {
    pub repositories: Vec<RepositoryListItem>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_page: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct UpdateRepositoryRequest {
    pub description: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ChangeVisibilityRequest {
    pub visibility: String,
}

/// One repository of `GET /api/v1/user/starred`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StarredRepository {
    pub namespace: String,
    pub name: String,
    pub description: Option<String>,
    pub is_public: bool,
}

/// `GET /api/v1/user/starred`: a page of the caller's starred repositories.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StarredRepositories {
    pub repositories: Vec<StarredRepository>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_page: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StarRequest {
    pub namespace: String,
    pub repository: String,
}

#[cfg(feature = "client")]
impl Client {
    pub async fn create_repository(
        &self,
        request: &CreateRepositoryRequest,
    ) -> Result<CreatedRepository> {
        self.json(Method::POST, "/repository", Some(request)).await
    }

    pub async fn repository(&self, namespace: &str, name: &str) -> Result<Repository> {
        self.json(
            Method::GET,
            &format!("/repository/{}/{}", seg(namespace), seg(name)),
            Self::NONE,
        )
        .await
    }

    pub async fn list_repositories(&self, namespace: &str) -> Result<RepositoryList> {
        self.json(
            Method::GET,
            &format!("/repository?namespace={}", seg(namespace)),
            Self::NONE,
        )
        .await
    }

    pub async fn delete_repository(&self, namespace: &str, name: &str) -> Result<()> {
        self.unit(
            Method::DELETE,
            &format!("/repository/{}/{}", seg(namespace), seg(name)),
            Self::NONE,
        )
        .await
    }

    pub async fn change_visibility(
        &self,
        namespace: &str,
        name: &str,
        visibility: &str,
    ) -> Result<()> {
        let body = ChangeVisibilityRequest {
            visibility: visibility.into(),
        };
        self.unit(
            Method::POST,
            &format!(
                "/repository/{}/{}/changevisibility",
                seg(namespace),
                seg(name)
            ),
            Some(&body),
        )
        .await
    }

    /// Changes a repository's description.
    pub async fn update_repository(
        &self,
        namespace: &str,
        name: &str,
        request: &UpdateRepositoryRequest,
    ) -> Result<()> {
        self.unit(
            Method::PUT,
            &format!("/repository/{}/{}", seg(namespace), seg(name)),
            Some(request),
        )
        .await
    }
}
