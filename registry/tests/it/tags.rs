//! Tags with history through `/api/v1`: listing (Quay's recorded shapes), creating and moving,
//! deleting, the time machine (restore inside the window, refusal outside it), the repository
//! view with `includeTags`, and the audit entries of every change.

use quayside::service::Clock;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::backend_tests;
use crate::common::oci::*;
use crate::common::quay::*;
use crate::common::tags::*;
use crate::common::*;

backend_tests!(
    tag_lists_match_quay,
    time_travel_push_move_delete_restore,
    restore_outside_the_window_is_refused,
    create_and_move_tags_through_the_api,
    tag_history_pages_and_filters,
    window_is_limited_to_tag_expiration_options
);

async fn tag_lists_match_quay(b: Backend) {
    let s = TestServer::start(b).await;
    let token = s.init_admin().await;
    org(&s, &token, "testorg", 1_209_600).await;
    let (status, body) = s
        .call(
            Some(&token),
            Method::POST,
            "/repository",
            Some(json!({"namespace": "testorg", "repository": "hello", "visibility": "private", "description": "reference repo"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let r = s
        .as_bearer(&token)
        .send(Method::GET, "/api/v1/repository/testorg/hello/tag/")
        .await;
    let empty = expect_like(r, "14-list-tags-empty", &[]).await;
    assert_eq!(
        empty,
        json!({"tags": [], "page": 1, "has_additional": false})
    );

    // Quay's recorded image: a Docker schema 2 manifest with a 125-byte layer.
    let image = labelled_image(&[], true);
    push(&s, "testorg/hello", "v1", &image).await;
    let r = s
        .as_bearer(&token)
        .send(Method::GET, "/api/v1/repository/testorg/hello/tag/")
        .await;
    let listed = expect_like(r, "48-list-tags", &[]).await;
    let tag = &listed["tags"][0];
    assert_eq!(tag["name"], "v1");
    assert_eq!(tag["manifest_digest"], image.digest);
    assert_eq!(
        tag["size"], 125,
        "size is the compressed size of the layers"
    );
    assert_eq!(tag["reversion"], false);
    let start = tag["start_ts"].as_i64().unwrap();
    assert_eq!(start, s.clock.now_ms() / 1000);
    assert!(tag.get("end_ts").is_none() && tag.get("expiration").is_none());
    let last_modified = tag["last_modified"].as_str().unwrap();
    assert!(last_modified.ends_with(" -0000"), "{last_modified}");

    let r = s
        .as_bearer(&token)
        .send(
            Method::GET,
            "/api/v1/repository/testorg/hello?includeStats=true&includeTags=true",
        )
        .await;
    let repo = expect_like(r, "50-get-repo-after-push", &[".tags"]).await;
    assert_eq!(repo["tags"]["v1"]["size"], 125);
    assert_eq!(repo["tags"]["v1"]["manifest_digest"], image.digest);
    assert_eq!(repo["tags"]["v1"]["last_modified"], last_modified);
}

async fn time_travel_push_move_delete_restore(b: Backend) {
    let s = TestServer::start(b).await;
    let token = s.init_admin().await;
    org(&s, &token, "testorg", 1_209_600).await;
    let repo = "testorg/app";
    let v1 = s.as_admin().push_image(repo, "latest").await;
    s.clock.advance_ms(1000);
    let v2 = s.as_admin().push_image(repo, "latest").await;
    s.clock.advance_ms(1000);
    assert_eq!(v2_digest(&s, repo, "latest").await, Some(v2.digest.clone()));

    // Pushing over the tag ended v1's lifetime and started v2's.
    let h = history(&s, &token, repo, "").await;
    let l = lifetimes(&h, "latest");
    assert_eq!(l.len(), 2, "{h}");
    assert_eq!(l[0]["manifest_digest"], v2.digest);
    assert!(l[0].get("end_ts").is_none());
    assert_eq!(l[1]["manifest_digest"], v1.digest);
    assert_eq!(l[1]["end_ts"], l[0]["start_ts"]);
    assert_eq!(l[1]["expiration"].as_str().unwrap(), l[0]["last_modified"]);

    // Deleting ends the lifetime: gone from /v2 and from the active tags.
    let (status, body) = s
        .call(
            Some(&token),
            Method::DELETE,
            &format!("/repository/{repo}/tag/latest"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert!(v2_tags(&s, repo).await.is_empty());
    assert_eq!(v2_digest(&s, repo, "latest").await, None);
    let active = history(&s, &token, repo, "?onlyActiveTags=true").await;
    assert_eq!(active["tags"], json!([]));
    let (status, _) = s
        .call(
            Some(&token),
            Method::DELETE,
            &format!("/repository/{repo}/tag/latest"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "deleting twice");

    // Restore v1: a new lifetime marked as a reversion.
    s.clock.advance_ms(1000);
    let (status, body) = s
        .call(
            Some(&token),
            Method::POST,
            &format!("/repository/{repo}/tag/latest/restore"),
            Some(json!({"manifest_digest": v1.digest})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({}));
    assert_eq!(v2_digest(&s, repo, "latest").await, Some(v1.digest.clone()));
    let h = history(&s, &token, repo, "").await;
    let l = lifetimes(&h, "latest");
    assert_eq!(l.len(), 3, "{h}");
    assert_eq!(l[0]["reversion"], true);
    assert_eq!(l[0]["manifest_digest"], v1.digest);
    assert!(l[0].get("end_ts").is_none());
    assert_eq!(l[1]["reversion"], false);
    assert_eq!(l[1]["manifest_digest"], v2.digest);
    assert!(l[1]["end_ts"].as_i64().unwrap() < l[0]["start_ts"].as_i64().unwrap());
    assert_eq!(l[2]["manifest_digest"], v1.digest);

    // Restore needs a digest, and one the repository has.
    let (status, body) = s
        .call(
            Some(&token),
            Method::POST,
            &format!("/repository/{repo}/tag/latest/restore"),
            Some(json!({})),
        )
        .await;
    assert_quay_error(
        status,
        &body,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "Missing manifest_digest",
    );
    let (status, _) = s
        .call(
            Some(&token),
            Method::POST,
            &format!("/repository/{repo}/tag/latest/restore"),
            Some(json!({"manifest_digest": sha256(b"nothing")})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // A manifest deleted through /v2 (its tags ended) is restorable inside the window.
    let r = s
        .as_admin()
        .send(
            Method::DELETE,
            &format!("/v2/{repo}/manifests/{}", v1.digest),
        )
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    assert_eq!(v2_digest(&s, repo, "latest").await, None);
    let (status, body) = s
        .call(
            Some(&token),
            Method::POST,
            &format!("/repository/{repo}/tag/latest/restore"),
            Some(json!({"manifest_digest": v1.digest})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(v2_digest(&s, repo, "latest").await, Some(v1.digest.clone()));
    assert_eq!(
        v2_digest(&s, repo, &v1.digest).await,
        Some(v1.digest.clone())
    );

    // Every change is audited with Quay's kinds.
    let kinds: Vec<String> = s
        .audit("testorg")
        .await
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert!(
        kinds.iter().filter(|k| *k == "revert_tag").count() == 2,
        "{kinds:?}"
    );
    // One through the API, one through a /v2 delete of the manifest the tag pointed at.
    assert_eq!(
        kinds.iter().filter(|k| *k == "delete_tag").count(),
        2,
        "{kinds:?}"
    );
}

async fn restore_outside_the_window_is_refused(b: Backend) {
    let s = TestServer::start(b).await;
    let token = s.init_admin().await;
    org(&s, &token, "testorg", 86_400).await;
    let repo = "testorg/app";
    let v1 = s.as_admin().push_image(repo, "latest").await;
    s.clock.advance_ms(1000);
    let v2 = s.as_admin().push_image(repo, "latest").await;

    // One second before the window closes v1 is still restorable; after, it is not.
    s.clock.advance_ms(DAY_MS - 1000);
    let restore = |digest: String| {
        let s = &s;
        let token = token.clone();
        async move {
            s.call(
                Some(&token),
                Method::POST,
                &format!("/repository/{repo}/tag/old/restore"),
                Some(json!({"manifest_digest": digest})),
            )
            .await
        }
    };
    let (status, body) = restore(v1.digest.clone()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) = s
        .call(
            Some(&token),
            Method::DELETE,
            &format!("/repository/{repo}/tag/old"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    s.clock.advance_ms(DAY_MS + 1000);
    let (status, body) = restore(v1.digest.clone()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error_type"], "invalid_request");
    let message = body["error_message"].as_str().unwrap();
    assert!(
        message.contains("time machine window") && message.contains(&v1.digest),
        "{message}"
    );
    assert_eq!(v2_digest(&s, repo, "old").await, None);
    // The live tag's manifest can always be pointed at.
    let (status, body) = restore(v2.digest.clone()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(v2_digest(&s, repo, "old").await, Some(v2.digest));
}

async fn create_and_move_tags_through_the_api(b: Backend) {
    let s = TestServer::start(b).await;
    let token = s.init_admin().await;
    org(&s, &token, "testorg", 1_209_600).await;
    let repo = "testorg/app";
    let a = s.as_admin().push_image(repo, "a").await;
    let bb = s.as_admin().push_image(repo, "b").await;

    let put = |tag: &'static str, body: Value| {
        let s = &s;
        let token = token.clone();
        async move {
            s.call(
                Some(&token),
                Method::PUT,
                &format!("/repository/{repo}/tag/{tag}"),
                Some(body),
            )
            .await
        }
    };
    let (status, body) = put("release", json!({"manifest_digest": a.digest})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body, json!("Updated"));
    assert_eq!(v2_digest(&s, repo, "release").await, Some(a.digest.clone()));
    s.clock.advance_ms(1000);
    let (status, _) = put("release", json!({"manifest_digest": bb.digest})).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(
        v2_digest(&s, repo, "release").await,
        Some(bb.digest.clone())
    );
    let h = history(&s, &token, repo, "?specificTag=release").await;
    assert_eq!(h["tags"].as_array().unwrap().len(), 2, "{h}");

    // Unknown manifests, bad names and strangers are refused.
    let (status, _) = put("release", json!({"manifest_digest": sha256(b"none")})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Quay answers a bad name with `{"message": ...}` (recorded: more-051).
    let recorded = crate::common::quay::recorded("more-051-tag-put-bad-name");
    let (status, body) = put("-bad", json!({"manifest_digest": a.digest})).await;
    assert_eq!(status.as_u16(), recorded.status);
    assert_eq!(body, recorded.body);
    assert_eq!(
        body,
        json!({"message": quayside::service::content::tags::TAG_ERROR})
    );
    let (_, _, stranger) = s.user_with_token("stranger").await;
    let (status, _) = s
        .call(
            Some(&stranger),
            Method::PUT,
            &format!("/repository/{repo}/tag/release"),
            Some(json!({"manifest_digest": a.digest})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = s
        .call(
            Some(&stranger),
            Method::GET,
            &format!("/repository/{repo}/tag/"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = s
        .call(None, Method::GET, &format!("/repository/{repo}/tag/"), None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // The typed client reads the same answers.
    let client = s.api(&token);
    let history = client
        .tag_history(
            "testorg",
            "app",
            &quayside_client::TagHistoryQuery {
                only_active_tags: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let mut live: Vec<&str> = history.tags.iter().map(|t| t.name.as_str()).collect();
    live.sort_unstable();
    assert_eq!(live, ["a", "b", "release"]);

    let entries = s.audit("testorg").await;
    let created = entries.iter().find(|e| e.kind == "create_tag").unwrap();
    let moved = entries.iter().find(|e| e.kind == "move_tag").unwrap();
    let meta: Value = serde_json::from_str(&moved.metadata).unwrap();
    assert_eq!(meta["tag"], "release");
    assert_eq!(meta["manifest_digest"], bb.digest);
    assert_eq!(meta["original_manifest_digest"], a.digest);
    assert_eq!(meta["username"], ADMIN);
    let meta: Value = serde_json::from_str(&created.metadata).unwrap();
    assert_eq!(meta["original_manifest_digest"], Value::Null);
}

async fn tag_history_pages_and_filters(b: Backend) {
    let s = TestServer::start(b).await;
    let token = s.init_admin().await;
    let repo = "admin/app";
    let image = s.as_admin().push_image(repo, "t0").await;
    for i in 1..5 {
        s.clock.advance_ms(1000);
        let (status, _) = s
            .call(
                Some(&token),
                Method::PUT,
                &format!("/repository/{repo}/tag/t{i}"),
                Some(json!({"manifest_digest": image.digest})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
    }
    let page1 = history(&s, &token, repo, "?limit=2").await;
    assert_eq!(page1["page"], 1);
    assert_eq!(page1["has_additional"], true);
    let names = |h: &Value| -> Vec<String> {
        h["tags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(names(&page1), ["t4", "t3"], "newest first");
    let page3 = history(&s, &token, repo, "?limit=2&page=3").await;
    assert_eq!(page3["page"], 3);
    assert_eq!(page3["has_additional"], false);
    assert_eq!(names(&page3), ["t0"]);
    let one = history(&s, &token, repo, "?specificTag=t2&onlyActiveTags=true").await;
    assert_eq!(names(&one), ["t2"]);
    // limit is capped at 100 and at least 1, page at least 1.
    let all = history(&s, &token, repo, "?limit=1000&page=0").await;
    assert_eq!(all["tags"].as_array().unwrap().len(), 5);
    assert_eq!(all["page"], 1);
    let (status, body) = s
        .call(
            Some(&token),
            Method::GET,
            &format!("/repository/{repo}/tag/?limit=many"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, _) = s
        .call(
            Some(&token),
            Method::GET,
            "/repository/admin/none/tag/",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

async fn window_is_limited_to_tag_expiration_options(b: Backend) {
    let s = TestServer::start(b).await;
    let token = s.init_admin().await;
    org(&s, &token, "testorg", 0).await;
    for allowed in [0, 86_400, 604_800, 1_209_600, 2_419_200] {
        let (status, body) = s
            .call(
                Some(&token),
                Method::PUT,
                "/organization/testorg",
                Some(json!({"tag_expiration_s": allowed})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{allowed}: {body}");
        assert_eq!(body["tag_expiration_s"], allowed);
    }
    let (status, body) = s
        .call(
            Some(&token),
            Method::PUT,
            "/organization/testorg",
            Some(json!({"tag_expiration_s": 3600})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body, json!({"message": "Invalid tag expiration option"}));

    // A user sets the window of their own namespace; with 0 nothing ended is restorable.
    let (status, body) = s
        .call(
            Some(&token),
            Method::PUT,
            "/user/",
            Some(json!({"tag_expiration_s": 0})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["tag_expiration_s"], 0);
    assert_eq!(body["username"], ADMIN);
    let (status, body) = s
        .call(
            Some(&token),
            Method::PUT,
            "/user/",
            Some(json!({"tag_expiration_s": 3600})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body, json!({"message": "Invalid tag expiration option"}));
    let (status, _) = s
        .call(
            Some(&token),
            Method::PUT,
            "/user/",
            Some(json!({"email": "new@example.com"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let image = s.as_admin().push_image("admin/app", "v1").await;
    let (status, _) = s
        .call(
            Some(&token),
            Method::DELETE,
            "/repository/admin/app/tag/v1",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    s.clock.advance_ms(1);
    let (status, body) = s
        .call(
            Some(&token),
            Method::POST,
            "/repository/admin/app/tag/v1/restore",
            Some(json!({"manifest_digest": image.digest})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        s.audit("admin")
            .await
            .iter()
            .any(|e| e.kind == "user_change_tag_expiration")
    );
}
