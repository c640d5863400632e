//! Helpers for the tag, label, expiration and garbage collection tests.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::TestServer;
use super::oci::*;

pub const HOUR_MS: i64 = 3600 * 1000;
pub const DAY_MS: i64 = 24 * HOUR_MS;

/// Creates organization `name` (owned by the token's user) with a time machine window.
pub async fn org(s: &TestServer, token: &str, name: &str, window_s: i64) {
    s.create_org(token, name).await;
    let (status, body) = s
        .call(
            Some(token),
            Method::PUT,
            &format!("/organization/{name}"),
            Some(json!({ "tag_expiration_s": window_s })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// `GET /api/v1/repository/{repo}/tag/{query}`.
pub async fn history(s: &TestServer, token: &str, repo: &str, query: &str) -> Value {
    let (status, body) = s
        .call(
            Some(token),
            Method::GET,
            &format!("/repository/{repo}/tag/{query}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// The lifetimes of `name` in a history answer, newest first.
pub fn lifetimes<'a>(history: &'a Value, name: &str) -> Vec<&'a Value> {
    history["tags"]
        .as_array()
        .expect("tags")
        .iter()
        .filter(|t| t["name"] == name)
        .collect()
}

/// Runs one garbage collection (with the orphan sweep) on the server's context and clock.
pub async fn gc_now(s: &TestServer) -> quayside::service::content::gc::Report {
    quayside::service::content::gc::collect(s.ctx(), true)
        .await
        .expect("garbage collection")
}

/// The digest a tag of a repository resolves to through `/v2`, or `None` when it is unknown.
pub async fn v2_digest(s: &TestServer, repo: &str, reference: &str) -> Option<String> {
    let r = s
        .as_admin()
        .request(Method::GET, &format!("/v2/{repo}/manifests/{reference}"))
        .header(
            "Accept",
            format!("{OCI_MANIFEST}, {OCI_INDEX}, {DOCKER_MANIFEST}, {DOCKER_LIST}"),
        )
        .send()
        .await
        .expect("get manifest");
    match r.status() {
        StatusCode::OK => Some(
            r.headers()["docker-content-digest"]
                .to_str()
                .expect("digest")
                .to_owned(),
        ),
        StatusCode::NOT_FOUND => None,
        other => panic!("GET {repo}:{reference}: {other}"),
    }
}

/// Live tag names through `/v2/<repo>/tags/list`.
pub async fn v2_tags(s: &TestServer, repo: &str) -> Vec<String> {
    let r = s
        .as_admin()
        .send(Method::GET, &format!("/v2/{repo}/tags/list"))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.expect("json");
    v["tags"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|t| t.as_str().expect("tag").to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// An OCI artifact (empty config, one small layer) with these manifest annotations.
pub struct Artifact {
    pub config: Vec<u8>,
    pub layer: Vec<u8>,
    pub manifest: Vec<u8>,
    pub digest: String,
}

pub fn artifact(annotations: &[(&str, &str)]) -> Artifact {
    let config = b"{}".to_vec();
    let layer = random_bytes(64);
    let mut manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": "application/vnd.example.thing",
        "config": descriptor(OCI_EMPTY, &config),
        "layers": [descriptor("application/vnd.example.layer", &layer)],
    });
    if !annotations.is_empty() {
        manifest["annotations"] = annotations
            .iter()
            .map(|(k, v)| (k.to_string(), json!(v)))
            .collect::<serde_json::Map<_, _>>()
            .into();
    }
    let manifest = serde_json::to_vec(&manifest).expect("json");
    Artifact {
        digest: sha256(&manifest),
        config,
        layer,
        manifest,
    }
}

/// Pushes an artifact's blobs and manifest under `reference` (as the admin).
pub async fn push_artifact(s: &TestServer, repo: &str, reference: &str, a: &Artifact) {
    let api = s.as_admin();
    api.push_blob(repo, &a.config).await;
    api.push_blob(repo, &a.layer).await;
    let r = api
        .put_manifest(repo, reference, OCI_MANIFEST, &a.manifest)
        .await;
    assert_eq!(
        r.status(),
        StatusCode::CREATED,
        "{}",
        r.text().await.unwrap_or_default()
    );
}

/// An image whose config carries `Labels` and a `history`, with one layer per non-empty
/// history entry.
pub fn labelled_image(labels: &[(&str, &str)], docker: bool) -> Image {
    let layer = random_bytes(125);
    let mut image = Image::build(vec![layer.clone()], "amd64", docker);
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64", "os": "linux",
        "rootfs": { "type": "layers", "diff_ids": [sha256(&layer)] },
        "config": { "Labels": labels.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>() },
        "created": "2024-01-01T00:00:00Z",
        "history": [
            { "created": "2024-01-01T00:00:00Z", "created_by": "ADD hello.txt /" },
            { "created": "2024-01-01T00:00:01Z", "created_by": "LABEL a=b", "empty_layer": true },
        ],
        "nonce": hex::encode(random_bytes(8)),
    }))
    .expect("json");
    let (mt, cfg_mt, layer_mt) = if docker {
        (DOCKER_MANIFEST, DOCKER_CONFIG, DOCKER_LAYER)
    } else {
        (OCI_MANIFEST, OCI_CONFIG, OCI_LAYER)
    };
    image.manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": mt,
        "config": descriptor(cfg_mt, &config),
        "layers": [descriptor(layer_mt, &layer)],
    }))
    .expect("json");
    image.config = config;
    image.digest = sha256(&image.manifest);
    image
}

/// Pushes an image's blobs and manifest under `reference` (as the admin).
pub async fn push(s: &TestServer, repo: &str, reference: &str, image: &Image) {
    let api = s.as_admin();
    for blob in image.blobs() {
        api.push_blob(repo, blob).await;
    }
    let r = api
        .put_manifest(repo, reference, image.media_type, &image.manifest)
        .await;
    assert_eq!(
        r.status(),
        StatusCode::CREATED,
        "{}",
        r.text().await.unwrap_or_default()
    );
}
