//! Tag listing and the catalog: pagination and visibility.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::backend_tests;
use crate::common::oci::*;
use crate::common::*;

async fn catalog(api: Api<'_>, query: &str) -> (Value, Option<String>) {
    let r = api.send(Method::GET, &format!("/v2/_catalog{query}")).await;
    let link = r
        .headers()
        .get("link")
        .map(|l| l.to_str().unwrap().to_owned());
    (
        r.json::<Value>().await.unwrap()["repositories"].clone(),
        link,
    )
}

backend_tests!(
    tag_list_pagination,
    catalog_shows_only_what_the_caller_may_see,
    artifacts_refused_without_general_oci_support
);

async fn tag_list_pagination(b: Backend) {
    let s = TestServer::start(b).await;
    s.init_admin().await;
    let api = s.as_admin();
    let image = api.push_image("admin/tags", "e").await;
    for tag in ["c", "a", "d", "b"] {
        assert_eq!(
            api.put_manifest("admin/tags", tag, OCI_MANIFEST, &image.manifest)
                .await
                .status(),
            StatusCode::CREATED
        );
    }
    let all: Value = api
        .send(Method::GET, "/v2/admin/tags/tags/list")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(all["tags"], json!(["a", "b", "c", "d", "e"]));

    let r = api.send(Method::GET, "/v2/admin/tags/tags/list?n=2").await;
    assert_eq!(
        r.headers()["link"],
        "</v2/admin/tags/tags/list?n=2&last=b>; rel=\"next\""
    );
    assert_eq!(r.json::<Value>().await.unwrap()["tags"], json!(["a", "b"]));
    let r = api
        .send(Method::GET, "/v2/admin/tags/tags/list?n=2&last=b")
        .await;
    assert_eq!(r.json::<Value>().await.unwrap()["tags"], json!(["c", "d"]));
    let r = api
        .send(Method::GET, "/v2/admin/tags/tags/list?n=2&last=d")
        .await;
    assert!(!r.headers().contains_key("link"), "last page has no Link");
    assert_eq!(r.json::<Value>().await.unwrap()["tags"], json!(["e"]));
    let r = api.send(Method::GET, "/v2/admin/tags/tags/list?n=0").await;
    assert_eq!(r.json::<Value>().await.unwrap()["tags"], json!([]));
    let r = api.send(Method::GET, "/v2/admin/tags/tags/list?n=x").await;
    expect_error(r, StatusCode::BAD_REQUEST, "UNSUPPORTED").await;
    expect_error(
        api.send(Method::GET, "/v2/admin/missing/tags/list").await,
        StatusCode::NOT_FOUND,
        "NAME_UNKNOWN",
    )
    .await;
}

async fn catalog_shows_only_what_the_caller_may_see(b: Backend) {
    let s = TestServer::start(b).await;
    s.init_admin().await;
    let (alice, alice_pw) = s.user("alice").await;
    let (bob, bob_pw) = s.user("bob").await;
    for repo in ["alice/one", "alice/two", "alice/three"] {
        s.as_basic(&alice, &alice_pw).push_image(repo, "v1").await;
    }
    s.as_basic(&bob, &bob_pw)
        .push_image("bob/secret", "v1")
        .await;

    let (repos, _) = catalog(s.as_basic(&alice, &alice_pw), "").await;
    assert_eq!(repos, json!(["alice/one", "alice/three", "alice/two"]));
    let (repos, link) = catalog(s.as_basic(&alice, &alice_pw), "?n=2").await;
    assert_eq!(repos, json!(["alice/one", "alice/three"]));
    assert_eq!(
        link.as_deref(),
        Some("</v2/_catalog?n=2&last=alice%2Fthree>; rel=\"next\"")
    );
    let (repos, link) = catalog(s.as_basic(&alice, &alice_pw), "?n=2&last=alice/three").await;
    assert_eq!(repos, json!(["alice/two"]));
    assert_eq!(link, None);
    let (repos, _) = catalog(s.as_basic(&bob, &bob_pw), "").await;
    assert_eq!(repos, json!(["bob/secret"]));
    let (repos, _) = catalog(s.as_admin(), "").await;
    assert_eq!(
        repos,
        json!(["alice/one", "alice/three", "alice/two", "bob/secret"])
    );
    let (repos, _) = catalog(s.anonymous(), "").await;
    assert_eq!(repos, json!([]), "all repositories are private");
}

async fn artifacts_refused_without_general_oci_support(b: Backend) {
    let s = TestServer::start_with(
        b,
        Options {
            yaml: "FEATURE_GENERAL_OCI_SUPPORT: false\n".into(),
            ..Default::default()
        },
    )
    .await;
    s.init_admin().await;
    let api = s.as_admin();
    let chart_config = br#"{"name":"chart","version":"1.0.0"}"#.to_vec();
    let chart = random_bytes(200);
    api.push_blob("admin/charts", &chart_config).await;
    api.push_blob("admin/charts", &chart).await;
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "config": descriptor("application/vnd.cncf.helm.config.v1+json", &chart_config),
        "layers": [descriptor("application/vnd.cncf.helm.chart.content.v1.tar+gzip", &chart)],
    }))
    .unwrap();
    let r = api
        .put_manifest("admin/charts", "1.0.0", OCI_MANIFEST, &manifest)
        .await;
    let body = expect_error(r, StatusCode::BAD_REQUEST, "MANIFEST_INVALID").await;
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("FEATURE_GENERAL_OCI_SUPPORT")
    );
    // Container images are still accepted.
    api.push_image("admin/images", "v1").await;
}
