//! Labels of a manifest (`.../manifest/{digest}/labels[/{id}]`).

use serde::{Deserialize, Serialize};

#[cfg(feature = "client")]
use crate::client::{Client, Result, repo_path, seg};
#[cfg(feature = "client")]
use reqwest::Method;

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

#[cfg(feature = "client")]
impl Client {
    pub async fn labels(
        &self,
        namespace: &str,
        name: &str,
        digest: &str,
        filter: Option<&str>,
    ) -> Result<Labels> {
        let query = filter.map_or(String::new(), |f| format!("?filter={}", seg(f)));
        self.json(
            Method::GET,
            &format!(
                "{}/manifest/{}/labels{query}",
                repo_path(namespace, name),
                seg(digest)
            ),
            Self::NONE,
        )
        .await
    }

    pub async fn label(
        &self,
        namespace: &str,
        name: &str,
        digest: &str,
        id: &str,
    ) -> Result<Label> {
        self.json(
            Method::GET,
            &format!(
                "{}/manifest/{}/labels/{}",
                repo_path(namespace, name),
                seg(digest),
                seg(id)
            ),
            Self::NONE,
        )
        .await
    }

    pub async fn add_label(
        &self,
        namespace: &str,
        name: &str,
        digest: &str,
        request: &AddLabelRequest,
    ) -> Result<AddedLabel> {
        self.json(
            Method::POST,
            &format!(
                "{}/manifest/{}/labels",
                repo_path(namespace, name),
                seg(digest)
            ),
            Some(request),
        )
        .await
    }

    pub async fn delete_label(
        &self,
        namespace: &str,
        name: &str,
        digest: &str,
        id: &str,
    ) -> Result<()> {
        self.unit(
            Method::DELETE,
            &format!(
                "{}/manifest/{}/labels/{}",
                repo_path(namespace, name),
                seg(digest),
                seg(id)
            ),
            Self::NONE,
        )
        .await
    }
}
