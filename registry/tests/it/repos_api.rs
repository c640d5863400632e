//! Repositories through `/api/v1`: creation, Quay's views, listing filters and pagination,
//! description, visibility, deletion, and creation by push.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::backend_tests;
use crate::common::quay::*;
use crate::common::*;

backend_tests!(
    repositories_like_quay,
    listing_filters_and_pages,
    visibility_and_anonymous_access,
    pushes_create_private_repositories,
    nested_repository_names_through_the_api
);

async fn setup(s: &TestServer) -> String {
    let token = s.init_admin().await;
    s.call(
        Some(&token),
        Method::POST,
        "/organization/",
        Some(json!({"name": "testorg", "email": "testorg@example.com"})),
    )
    .await;
    token
}

async fn repositories_like_quay(b: Backend) {
    let s = TestServer::start(b).await;
    let token = setup(&s).await;
    let rec = recorded("10-create-repo");
    let r = s
        .as_bearer(&token)
        .request(Method::POST, "/api/v1/repository")
        .json(&rec.request_body)
        .send()
        .await
        .unwrap();
    let created = expect_like(r, "10-create-repo", &[]).await;
    assert_eq!(
        created,
        json!({"namespace": "testorg", "name": "hello", "kind": "image"})
    );
    let (status, body) = s
        .call(
            Some(&token),
            Method::POST,
            "/repository",
            Some(rec.request_body.clone()),
        )
        .await;
    assert_quay_error(
        status,
        &body,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "Repository already exists",
    );

    let r = s
        .as_bearer(&token)
        .send(Method::GET, "/api/v1/repository/testorg/hello")
        .await;
    let repo = expect_like(r, "11-get-repo", &[]).await;
    assert_eq!(repo["is_organization"], true);
    assert_eq!(repo["can_admin"], true);
    assert_eq!(repo["status_token"].as_str().unwrap().len(), 36);

    let r = s
        .as_bearer(&token)
        .send(Method::GET, "/api/v1/repository?namespace=testorg")
        .await;
    expect_like(r, "12-list-repos", &[]).await;

    // Tags after a push, and stats.
    s.as_admin().push_image("testorg/hello", "v1").await;
    let r = s
        .as_bearer(&token)
        .send(
            Method::GET,
            "/api/v1/repository/testorg/hello?includeStats=true&includeTags=true",
        )
        .await;
    let repo = expect_like(r, "50-get-repo-after-push", &["tags"]).await;
    assert_eq!(repo["stats"].as_array().unwrap().len(), 91);
    assert!(repo["tags"]["v1"]["size"].as_i64().unwrap() > 0);
    let (_, repo) = s
        .call(
            Some(&token),
            Method::GET,
            "/repository/testorg/hello?includeTags=false",
            None,
        )
        .await;
    assert!(repo.get("tags").is_none());

    // The namespace defaults to the caller; the user's own repositories are not "organization".
    let (status, created) = s
        .call(
            Some(&token),
            Method::POST,
            "/repository",
            Some(json!({"repository": "mine", "visibility": "public", "description": "d"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(created["namespace"], ADMIN);
    let (_, repo) = s
        .call(Some(&token), Method::GET, "/repository/admin/mine", None)
        .await;
    assert_eq!(repo["is_organization"], false);
    assert_eq!(repo["status_token"], "");

    // Invalid input: reserved names, bad names, visibility, missing fields.
    for name in ["build", "trigger", "tag"] {
        let (status, body) = s.call(Some(&token), Method::POST, "/repository", Some(json!({"namespace": "testorg", "repository": name, "visibility": "private", "description": ""}))).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{name}: {body}");
        assert!(
            body["detail"].as_str().unwrap().contains("reserved"),
            "{body}"
        );
    }
    let (status, body) = s.call(Some(&token), Method::POST, "/repository", Some(json!({"namespace": "testorg", "repository": "Bad Name", "visibility": "private", "description": ""}))).await;
    assert_quay_error(
        status,
        &body,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "Invalid repository name",
    );
    let (status, body) = s.call(Some(&token), Method::POST, "/repository", Some(json!({"namespace": "testorg", "repository": "x", "visibility": "secret", "description": ""}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["detail"].as_str().unwrap().starts_with("visibility"),
        "{body}"
    );
    let (status, body) = s
        .call(
            Some(&token),
            Method::POST,
            "/repository",
            Some(json!({"namespace": "testorg", "repository": "x", "visibility": "private"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["detail"].as_str().unwrap().contains("description"),
        "{body}"
    );
    let (status, _) = s.call(Some(&token), Method::POST, "/repository", Some(json!({"namespace": "nowhere", "repository": "x", "visibility": "private", "description": ""}))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Description.
    let (status, body) = s
        .call(
            Some(&token),
            Method::PUT,
            "/repository/testorg/hello",
            Some(json!({"description": "new words"})),
        )
        .await;
    assert_eq!((status, body), (StatusCode::OK, json!({"success": true})));
    let (_, repo) = s
        .call(Some(&token), Method::GET, "/repository/testorg/hello", None)
        .await;
    assert_eq!(repo["description"], "new words");

    // Delete; the repository and its content are gone.
    let (status, _) = s
        .call(
            Some(&token),
            Method::DELETE,
            "/repository/testorg/hello",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = s
        .call(Some(&token), Method::GET, "/repository/testorg/hello", None)
        .await;
    assert_quay_error(
        status,
        &body,
        StatusCode::NOT_FOUND,
        "not_found",
        "Not Found",
    );
    assert_eq!(
        s.as_admin()
            .send(Method::GET, "/v2/testorg/hello/manifests/v1")
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    let (status, _) = s
        .call(
            Some(&token),
            Method::DELETE,
            "/repository/testorg/hello",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let kinds: Vec<String> = s
        .audit("testorg")
        .await
        .into_iter()
        .map(|e| e.kind)
        .collect();
    for kind in [
        "create_repo",
        "set_repo_description",
        "delete_repo",
        "push_repo",
    ] {
        assert!(
            kinds.iter().any(|k| k == kind),
            "{kind} missing from {kinds:?}"
        );
    }
}

async fn listing_filters_and_pages(b: Backend) {
    let s = TestServer::start(b).await;
    let token = setup(&s).await;
    let (_, password, alice) = s.user_with_token("alice").await;
    // 101 repositories in one namespace: two pages.
    for i in 0..101 {
        let (status, _) = s.call(Some(&token), Method::POST, "/repository", Some(json!({"namespace": "testorg", "repository": format!("r{i:03}"), "visibility": "private", "description": ""}))).await;
        assert_eq!(status, StatusCode::CREATED);
    }
    let (status, page1) = s
        .call(
            Some(&token),
            Method::GET,
            "/repository?namespace=testorg",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page1["repositories"].as_array().unwrap().len(), 100);
    let next = page1["next_page"].as_str().unwrap().to_owned();
    let (_, page2) = s
        .call(
            Some(&token),
            Method::GET,
            &format!("/repository?namespace=testorg&next_page={next}"),
            None,
        )
        .await;
    assert_eq!(
        page2["repositories"].as_array().unwrap().len(),
        1,
        "{next} {page2} {}",
        page1["repositories"][99]
    );
    assert_eq!(page2["repositories"][0]["name"], "r100");
    assert!(page2.get("next_page").is_none());
    let (status, body) = s
        .call(
            Some(&token),
            Method::GET,
            "/repository?namespace=testorg&next_page=garbage",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    // A filter is required.
    let (status, body) = s.call(Some(&token), Method::GET, "/repository", None).await;
    assert_quay_error(
        status,
        &body,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "namespace, starred or public are required for this API call",
    );

    // Alice sees only what she may: public ones (with public=true) and her grants.
    s.api(&token)
        .change_visibility("testorg", "r001", "public")
        .await
        .unwrap();
    s.api(&token)
        .set_user_permission("testorg", "r002", "alice", "read")
        .await
        .unwrap();
    let (_, listed) = s
        .call(
            Some(&alice),
            Method::GET,
            "/repository?namespace=testorg",
            None,
        )
        .await;
    let names: Vec<&str> = listed["repositories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["r001", "r002"]);
    s.as_basic("alice", &password)
        .push_image("alice/own", "v1")
        .await;
    let (_, listed) = s
        .call(Some(&alice), Method::GET, "/repository?public=true", None)
        .await;
    let names: Vec<&str> = listed["repositories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["r001", "r002", "own"]);

    // Stars.
    let (status, _) = s
        .call(
            Some(&alice),
            Method::POST,
            "/user/starred",
            Some(json!({"namespace": "testorg", "repository": "r001"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, listed) = s
        .call(Some(&alice), Method::GET, "/repository?starred=true", None)
        .await;
    assert_eq!(listed["repositories"].as_array().unwrap().len(), 1);
    assert_eq!(listed["repositories"][0]["is_starred"], true);
    let (_, repo) = s
        .call(Some(&alice), Method::GET, "/repository/testorg/r001", None)
        .await;
    assert_eq!(repo["is_starred"], true);
    let (status, _) = s
        .call(
            Some(&alice),
            Method::POST,
            "/user/starred",
            Some(json!({"namespace": "testorg", "repository": "r005"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = s
        .call(
            Some(&alice),
            Method::DELETE,
            "/user/starred/testorg/r001",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, listed) = s
        .call(Some(&alice), Method::GET, "/repository?starred=true", None)
        .await;
    assert_eq!(listed["repositories"], json!([]));

    // last_modified and popularity.
    s.as_basic("alice", &password)
        .send(Method::GET, "/v2/alice/own/manifests/v1")
        .await;
    s.flush_audit().await;
    let (_, listed) = s
        .call(
            Some(&alice),
            Method::GET,
            "/repository?namespace=alice&last_modified=true&popularity=true",
            None,
        )
        .await;
    let own = &listed["repositories"][0];
    assert!(
        own["last_modified"].as_i64().unwrap() > 1_700_000_000,
        "{own}"
    );
    assert_eq!(own["popularity"], 2.0);
    // Anonymous callers see public repositories.
    let (status, listed) = s
        .call(None, Method::GET, "/repository?namespace=testorg", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(listed["repositories"].as_array().unwrap().len(), 1);
}

async fn visibility_and_anonymous_access(b: Backend) {
    let s = TestServer::start(b).await;
    let token = setup(&s).await;
    let (_, _, alice) = s.user_with_token("alice").await;
    s.as_admin().push_image("testorg/hello", "v1").await;
    // Private: anonymous callers are asked to log in, strangers are refused.
    let (status, body) = s
        .call(None, Method::GET, "/repository/testorg/hello", None)
        .await;
    assert_quay_error(
        status,
        &body,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
        "Requires authentication",
    );
    let (status, body) = s
        .call(Some(&alice), Method::GET, "/repository/testorg/hello", None)
        .await;
    assert_quay_error(
        status,
        &body,
        StatusCode::FORBIDDEN,
        "insufficient_scope",
        "Unauthorized",
    );
    expect_error(
        s.anonymous()
            .send(Method::GET, "/v2/testorg/hello/manifests/v1")
            .await,
        StatusCode::UNAUTHORIZED,
        "UNAUTHORIZED",
    )
    .await;

    // Public: anyone reads, nobody else writes.
    let (status, body) = s
        .call(
            Some(&token),
            Method::POST,
            "/repository/testorg/hello/changevisibility",
            Some(json!({"visibility": "public"})),
        )
        .await;
    assert_eq!((status, body), (StatusCode::OK, json!({"success": true})));
    let (status, repo) = s
        .call(None, Method::GET, "/repository/testorg/hello", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(repo["is_public"], true);
    assert_eq!(repo["can_write"], false);
    assert_eq!(repo["can_admin"], false);
    assert_eq!(
        s.anonymous()
            .send(Method::GET, "/v2/testorg/hello/manifests/v1")
            .await
            .status(),
        StatusCode::OK
    );
    let t = s.token(None, &["repository:testorg/hello:pull"]).await;
    assert_eq!(
        s.as_bearer(&t)
            .send(Method::GET, "/v2/testorg/hello/manifests/v1")
            .await
            .status(),
        StatusCode::OK
    );
    let (status, _) = s
        .call(
            Some(&alice),
            Method::PUT,
            "/repository/testorg/hello",
            Some(json!({"description": "x"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = s
        .call(
            Some(&alice),
            Method::POST,
            "/repository/testorg/hello/changevisibility",
            Some(json!({"visibility": "private"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = s
        .call(
            Some(&alice),
            Method::DELETE,
            "/repository/testorg/hello",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = s
        .call(
            Some(&token),
            Method::POST,
            "/repository/testorg/hello/changevisibility",
            Some(json!({"visibility": "hidden"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    // Back to private.
    s.call(
        Some(&token),
        Method::POST,
        "/repository/testorg/hello/changevisibility",
        Some(json!({"visibility": "private"})),
    )
    .await;
    expect_error(
        s.anonymous()
            .send(Method::GET, "/v2/testorg/hello/manifests/v1")
            .await,
        StatusCode::UNAUTHORIZED,
        "UNAUTHORIZED",
    )
    .await;
    let kinds: Vec<String> = s
        .audit("testorg")
        .await
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert!(
        kinds
            .iter()
            .filter(|k| *k == "change_repo_visibility")
            .count()
            == 2,
        "{kinds:?}"
    );
}

async fn pushes_create_private_repositories(b: Backend) {
    let s = TestServer::start(b).await;
    let token = setup(&s).await;
    let (_, password, _) = s.user_with_token("alice").await;
    s.as_basic("alice", &password)
        .push_image("alice/pushed", "v1")
        .await;
    let (status, repo) = s
        .call(Some(&token), Method::GET, "/repository/alice/pushed", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(repo["is_public"], false);
    // The reserved names cannot be created by a push either.
    let r = s
        .as_basic("alice", &password)
        .send(Method::POST, "/v2/alice/build/blobs/uploads/")
        .await;
    expect_error(r, StatusCode::BAD_REQUEST, "NAME_INVALID").await;
    // Pushing into someone else's namespace is refused and creates nothing.
    let r = s
        .as_basic("alice", &password)
        .send(Method::POST, "/v2/testorg/sneaky/blobs/uploads/")
        .await;
    expect_error(r, StatusCode::FORBIDDEN, "DENIED").await;
    let (status, _) = s
        .call(
            Some(&token),
            Method::GET,
            "/repository/testorg/sneaky",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let entries = s.audit("alice").await;
    let created = entries.iter().find(|e| e.kind == "create_repo").unwrap();
    assert_eq!(created.performer.as_deref(), Some("alice"));
    assert_eq!(
        serde_json::from_str::<Value>(&created.metadata).unwrap()["repo"],
        "pushed"
    );
}

/// A repository pushed with a nested name (`admin/team/app`) is addressed by the API the way
/// Quay addresses it: the name runs up to the sub-resource.
async fn nested_repository_names_through_the_api(b: Backend) {
    let s = TestServer::start(b).await;
    let token = s.init_admin().await;
    let image = s.as_admin().push_image("admin/team/app", "v1").await;
    let (status, repo) = s
        .call(
            Some(&token),
            Method::GET,
            "/repository/admin/team/app?includeTags=true",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{repo}");
    assert_eq!(repo["namespace"], "admin");
    assert_eq!(repo["name"], "team/app");
    assert_eq!(repo["tags"]["v1"]["manifest_digest"], image.digest.as_str());
    let (status, tags) = s
        .call(
            Some(&token),
            Method::GET,
            "/repository/admin/team/app/tag/",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{tags}");
    assert_eq!(tags["tags"][0]["name"], "v1");
    let (status, _) = s
        .call(
            Some(&token),
            Method::POST,
            "/repository/admin/team/app/changevisibility",
            Some(serde_json::json!({"visibility": "public"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    // Public now: anonymous pulls of the nested name work.
    assert_eq!(
        s.anonymous()
            .send(Method::GET, "/v2/admin/team/app/manifests/v1")
            .await
            .status(),
        StatusCode::OK
    );
    let (status, _) = s
        .call(
            Some(&token),
            Method::GET,
            "/repository/admin/team/other",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
