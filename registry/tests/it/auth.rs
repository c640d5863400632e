//! Authentication, the token server and the first-user bootstrap.

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::backend_tests;
use crate::common::*;

backend_tests!(
    base_endpoint_challenges,
    token_grants_only_what_is_allowed,
    initialize_first_user_once,
    initialize_is_off_with_a_config_and_guarded_by_its_token,
    access_tokens_and_encrypted_passwords
);

async fn base_endpoint_challenges(b: Backend) {
    let s = TestServer::start(b).await;
    s.init_admin().await;
    let r = s.anonymous().send(Method::GET, "/v2/").await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let challenge = r.headers()["www-authenticate"].to_str().unwrap().to_owned();
    assert_eq!(
        challenge,
        format!(
            "Bearer realm=\"http://{0}/v2/auth\",service=\"{0}\"",
            s.host
        )
    );
    assert_eq!(
        r.headers()["docker-distribution-api-version"],
        "registry/2.0"
    );
    expect_error(r, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;

    let r = s.as_admin().send(Method::GET, "/v2/").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.unwrap(), serde_json::json!({}));

    let token = s.token(Some((ADMIN, ADMIN_PASSWORD)), &[]).await;
    assert_eq!(
        s.as_bearer(&token).send(Method::GET, "/v2/").await.status(),
        StatusCode::OK
    );
    let r = s
        .as_basic(ADMIN, "wrong-password")
        .send(Method::GET, "/v2/")
        .await;
    expect_error(r, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;
    let r = s
        .anonymous()
        .request(Method::GET, "/v2/")
        .header("Authorization", "Basic !!!")
        .send()
        .await
        .unwrap();
    expect_error(r, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;
    let r = s.as_bearer("not.a.token").send(Method::GET, "/v2/").await;
    expect_error(r, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;
}

async fn token_grants_only_what_is_allowed(b: Backend) {
    let s = TestServer::start(b).await;
    s.init_admin().await;
    let (alice, alice_pw) = s.user("alice").await;
    let (bob, bob_pw) = s.user("bob").await;
    let image = s
        .as_basic(&alice, &alice_pw)
        .push_image("alice/app", "v1")
        .await;
    let manifest_path = format!("/v2/alice/app/manifests/{}", image.digest);

    // Alice's token carries pull and push on her repository and works for both.
    let t = s
        .token(
            Some((&alice, &alice_pw)),
            &["repository:alice/app:pull,push"],
        )
        .await;
    assert_eq!(
        s.as_bearer(&t)
            .send(Method::GET, &manifest_path)
            .await
            .status(),
        StatusCode::OK
    );
    s.as_bearer(&t)
        .push_blob("alice/app", b"more content")
        .await;

    // Bob asked for the same scope but got nothing: the registry answers 401 with a challenge
    // for what is needed, so a client could come back with better credentials.
    let t = s
        .token(Some((&bob, &bob_pw)), &["repository:alice/app:pull,push"])
        .await;
    let r = s.as_bearer(&t).send(Method::GET, &manifest_path).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let challenge = r.headers()["www-authenticate"].to_str().unwrap();
    assert!(
        challenge.contains("scope=\"repository:alice/app:pull\""),
        "{challenge}"
    );
    // With basic credentials Bob is known, so it is a 403 DENIED.
    let r = s
        .as_basic(&bob, &bob_pw)
        .send(Method::GET, &manifest_path)
        .await;
    expect_error(r, StatusCode::FORBIDDEN, "DENIED").await;
    // Bob cannot push into Alice's namespace, nor create repositories there.
    let r = s
        .as_basic(&bob, &bob_pw)
        .send(Method::POST, "/v2/alice/other/blobs/uploads/")
        .await;
    expect_error(r, StatusCode::FORBIDDEN, "DENIED").await;
    // Bob pushes to his own namespace, creating the repository.
    s.as_basic(&bob, &bob_pw)
        .push_image("bob/tool", "latest")
        .await;

    // Anonymous: private content is refused; the token server still answers with an empty grant.
    let t = s.token(None, &["repository:alice/app:pull"]).await;
    expect_error(
        s.as_bearer(&t).send(Method::GET, &manifest_path).await,
        StatusCode::UNAUTHORIZED,
        "UNAUTHORIZED",
    )
    .await;
    expect_error(
        s.anonymous().send(Method::GET, &manifest_path).await,
        StatusCode::UNAUTHORIZED,
        "UNAUTHORIZED",
    )
    .await;

    // Wrong credentials at the token server are refused.
    let r = s
        .client
        .get(format!("{}/v2/auth", s.url))
        .basic_auth(&alice, Some("nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    // Several scopes in one request, and the catalog scope.
    let t = s
        .token(
            Some((&alice, &alice_pw)),
            &[
                "repository:alice/app:pull",
                "repository:bob/tool:pull",
                "registry:catalog:*",
            ],
        )
        .await;
    assert_eq!(
        s.as_bearer(&t)
            .send(Method::GET, &manifest_path)
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        s.as_bearer(&t)
            .send(Method::GET, "/v2/bob/tool/manifests/latest")
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    let catalog: Value = s
        .as_bearer(&t)
        .send(Method::GET, "/v2/_catalog")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(catalog["repositories"], serde_json::json!(["alice/app"]));

    // The OAuth2 password grant (POST) works too.
    let r = s
        .client
        .post(format!("{}/v2/auth", s.url))
        .form(&[
            ("grant_type", "password"),
            ("username", alice.as_str()),
            ("password", alice_pw.as_str()),
            ("scope", "repository:alice/app:pull"),
            ("service", s.host.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let t = r.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        s.as_bearer(&t)
            .send(Method::GET, &manifest_path)
            .await
            .status(),
        StatusCode::OK
    );
}

async fn initialize_first_user_once(b: Backend) {
    let s = TestServer::start(b).await;
    let url = format!("{}/api/v1/user/initialize", s.url);
    let bad = s
        .client
        .post(&url)
        .json(&serde_json::json!({"username": "X!", "password": "password123", "email": "a@b.c"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    assert!(
        bad.json::<Value>().await.unwrap()["message"]
            .as_str()
            .unwrap()
            .starts_with("Failed to initialize user")
    );

    let r = s
        .client
        .post(&url)
        .json(&serde_json::json!({"username": "quayadmin", "password": "quayadmin-password1", "email": "quayadmin@example.com", "access_token": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "application/json");
    let body: Value = r.json().await.unwrap();
    let keys: Vec<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        ["access_token", "email", "encrypted_password", "username"]
    );
    assert_eq!(body["username"], "quayadmin");
    assert_eq!(body["access_token"].as_str().unwrap().len(), 40);

    // The new user is a superuser: it may push anywhere, including another user's namespace.
    s.user("carol").await;
    s.as_basic("quayadmin", "quayadmin-password1")
        .push_image("carol/x", "v1")
        .await;

    let again = s
        .client
        .post(&url)
        .json(&serde_json::json!({"username": "second", "password": "second-password1", "email": "s@example.com"}))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        again.json::<Value>().await.unwrap(),
        serde_json::json!({"message": "Cannot initialize user in a non-empty database"})
    );
}

/// A configuration that does not turn `FEATURE_USER_INITIALIZE` on leaves the first-user
/// bootstrap off (Quay's default), so a fresh deployment cannot be claimed by its first caller;
/// with `USER_INITIALIZE_TOKEN` only a caller knowing it may claim the registry.
async fn initialize_is_off_with_a_config_and_guarded_by_its_token(b: Backend) {
    let first = serde_json::json!({"username": "quayadmin", "password": "quayadmin-password1", "email": "q@example.com"});
    let off = TestServer::start_with(
        b,
        Options {
            no_suite_defaults: true,
            ..Options::default()
        },
    )
    .await;
    let r = off
        .client
        .post(format!("{}/api/v1/user/initialize", off.url))
        .json(&first)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        r.json::<Value>().await.unwrap()["message"],
        "Cannot initialize user: FEATURE_USER_INITIALIZE is disabled"
    );

    let guarded = TestServer::start_with(
        b,
        Options {
            yaml: "FEATURE_USER_INITIALIZE: true\nUSER_INITIALIZE_TOKEN: s3cret-claim\n".into(),
            ..Options::default()
        },
    )
    .await;
    let url = format!("{}/api/v1/user/initialize", guarded.url);
    for token in [None, Some("guess")] {
        let mut body = first.clone();
        if let Some(t) = token {
            body["initialize_token"] = t.into();
        }
        let r = guarded.client.post(&url).json(&body).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{token:?}");
        assert_eq!(
            r.json::<Value>().await.unwrap()["message"],
            "Cannot initialize user: this registry requires its initialize_token"
        );
    }
    let mut body = first.clone();
    body["initialize_token"] = "s3cret-claim".into();
    let r = guarded.client.post(&url).json(&body).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    guarded
        .as_basic("quayadmin", "quayadmin-password1")
        .push_image("quayadmin/x", "v1")
        .await;
}

async fn access_tokens_and_encrypted_passwords(b: Backend) {
    let s = TestServer::start(b).await;
    let body: Value = s
        .client
        .post(format!("{}/api/v1/user/initialize", s.url))
        .json(&serde_json::json!({"username": ADMIN, "password": ADMIN_PASSWORD, "email": "a@example.com", "access_token": true}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let access_token = body["access_token"].as_str().unwrap();
    let encrypted = body["encrypted_password"].as_str().unwrap();
    assert_ne!(encrypted, ADMIN_PASSWORD);
    // `$oauthtoken` with the access token, and the encrypted password, both log in.
    s.as_basic("$oauthtoken", access_token)
        .push_image("admin/a", "v1")
        .await;
    s.as_basic(ADMIN, encrypted)
        .push_image("admin/b", "v1")
        .await;
    assert_eq!(
        s.as_bearer(access_token)
            .send(Method::GET, "/v2/admin/a/manifests/v1")
            .await
            .status(),
        StatusCode::OK
    );
    let t = s
        .token(
            Some(("$oauthtoken", access_token)),
            &["repository:admin/a:pull"],
        )
        .await;
    assert_eq!(
        s.as_bearer(&t)
            .send(Method::GET, "/v2/admin/a/manifests/v1")
            .await
            .status(),
        StatusCode::OK
    );
    let r = s
        .as_basic("$oauthtoken", "WRONGTOKEN")
        .send(Method::GET, "/v2/")
        .await;
    expect_error(r, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;
}
