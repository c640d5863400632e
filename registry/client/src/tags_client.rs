//! Client calls for tags, manifests and labels.

use reqwest::Method;

use crate::client::{Client, Result, seg};
use crate::tags::*;

fn repo_path(namespace: &str, name: &str) -> String {
    format!("/repository/{}/{}", seg(namespace), seg(name))
}

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

    pub async fn manifest(&self, namespace: &str, name: &str, digest: &str) -> Result<Manifest> {
        self.json(
            Method::GET,
            &format!("{}/manifest/{}", repo_path(namespace, name), seg(digest)),
            Self::NONE,
        )
        .await
    }

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
