//! OAuth applications, tokens minted for them with chosen scopes, scope enforcement on every
//! endpoint, OAuth tokens on `/v2`, and the discovery document.

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::backend_tests;
use crate::common::*;

backend_tests!(
    applications_and_their_tokens,
    every_endpoint_enforces_its_scope,
    oauth_tokens_on_the_registry
);

async fn setup(s: &TestServer) -> (String, String) {
    let token = s.init_admin().await;
    s.call(
        Some(&token),
        Method::POST,
        "/organization/",
        Some(json!({"name": "testorg", "email": "testorg@example.com"})),
    )
    .await;
    let (status, app) = s.call(Some(&token), Method::POST, "/organization/testorg/applications", Some(json!({"name": "automation", "description": "CI", "redirect_uri": "http://localhost/cb", "application_uri": "http://localhost"}))).await;
    assert_eq!(status, StatusCode::OK, "{app}");
    (token, app["client_id"].as_str().unwrap().to_owned())
}

/// Mints a token for the app with `scope` as the admin.
async fn mint(s: &TestServer, admin: &str, client_id: &str, scope: &str) -> String {
    let (status, t) = s
        .call(
            Some(admin),
            Method::POST,
            &format!("/organization/testorg/applications/{client_id}/tokens"),
            Some(json!({"name": "t", "scope": scope})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{t}");
    t["token"].as_str().unwrap().to_owned()
}

async fn applications_and_their_tokens(b: Backend) {
    let s = TestServer::start(b).await;
    let (token, client_id) = setup(&s).await;
    let (_, app) = s
        .call(
            Some(&token),
            Method::GET,
            &format!("/organization/testorg/applications/{client_id}"),
            None,
        )
        .await;
    let keys: BTreeSet<&str> = app
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        BTreeSet::from([
            "name",
            "description",
            "application_uri",
            "client_id",
            "client_secret",
            "redirect_uri",
            "avatar_email"
        ])
    );
    assert_eq!(app["name"], "automation");
    let secret = app["client_secret"].as_str().unwrap().to_owned();
    let (_, list) = s
        .call(
            Some(&token),
            Method::GET,
            "/organization/testorg/applications",
            None,
        )
        .await;
    assert_eq!(list["applications"].as_array().unwrap().len(), 1);
    let (status, app) = s.call(Some(&token), Method::PUT, &format!("/organization/testorg/applications/{client_id}"), Some(json!({"name": "renamed", "redirect_uri": "http://x/cb", "application_uri": "http://x"}))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(app["name"], "renamed");
    let (status, app) = s
        .call(
            Some(&token),
            Method::POST,
            &format!("/organization/testorg/applications/{client_id}/resetclientsecret"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_ne!(app["client_secret"], secret.as_str());

    // A token with chosen scopes: shown once, listed without the secret, stored hashed.
    let (status, minted) = s
        .call(
            Some(&token),
            Method::POST,
            &format!("/organization/testorg/applications/{client_id}/tokens"),
            Some(json!({"name": "ci token", "scope": "repo:read,repo:write", "expiration": 3600})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{minted}");
    let secret = minted["token"].as_str().unwrap().to_owned();
    assert_eq!(secret.len(), 40);
    assert_eq!(minted["scope"], "repo:read repo:write");
    assert_eq!(minted["created_by"], ADMIN);
    assert!(minted["expires_at"].as_str().unwrap().ends_with('Z'));
    let (_, listed) = s
        .call(
            Some(&token),
            Method::GET,
            &format!("/organization/testorg/applications/{client_id}/tokens"),
            None,
        )
        .await;
    assert!(listed["tokens"][0].get("token").is_none(), "{listed}");
    let stored = quayside::db::tenancy::tokens::find(
        s.ctx().db.pool(),
        &quayside::service::hash_secret(&secret),
        s.ctx().now_ms(),
    )
    .await
    .unwrap();
    assert!(stored.is_some());
    let (status, _) = s
        .call(
            Some(&secret),
            Method::GET,
            "/repository?namespace=testorg",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    // Expiry.
    s.clock.advance_ms(3_601_000);
    let (status, _) = s
        .call(
            Some(&secret),
            Method::GET,
            "/repository?namespace=testorg",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Bad requests name the problem.
    let url = format!("/organization/testorg/applications/{client_id}/tokens");
    let (status, body) = s
        .call(
            Some(&token),
            Method::POST,
            &url,
            Some(json!({"name": "x", "scope": "repo:everything"})),
        )
        .await;
    assert_eq!(
        (status, body),
        (
            StatusCode::BAD_REQUEST,
            json!({"message": "Invalid scope: repo:everything"})
        )
    );
    let (status, body) = s
        .call(
            Some(&token),
            Method::POST,
            &url,
            Some(json!({"name": " ", "scope": "repo:read"})),
        )
        .await;
    assert_eq!(
        (status, body),
        (
            StatusCode::BAD_REQUEST,
            json!({"message": "'name' must not be empty"})
        )
    );
    let (status, body) = s
        .call(
            Some(&token),
            Method::POST,
            &url,
            Some(json!({"name": "x", "scope": "repo:read", "expiration": -5})),
        )
        .await;
    assert_eq!(
        (status, body),
        (
            StatusCode::BAD_REQUEST,
            json!({"message": "'expiration' must be a positive number of seconds"})
        )
    );

    // A token cannot mint a stronger one; a non-admin cannot mint at all.
    let weak = mint(&s, &token, &client_id, "repo:read org:admin").await;
    let (status, _) = s
        .call(
            Some(&weak),
            Method::POST,
            &url,
            Some(json!({"name": "x", "scope": "super:user"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = s
        .call(
            Some(&weak),
            Method::POST,
            &url,
            Some(json!({"name": "x", "scope": "repo:read"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, _, alice) = s.user_with_token("alice").await;
    let (status, _) = s
        .call(
            Some(&alice),
            Method::POST,
            &url,
            Some(json!({"name": "x", "scope": "repo:read"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = s
        .call(
            Some(&alice),
            Method::GET,
            "/organization/testorg/applications",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Revoke; delete the application (its tokens go with it).
    let uuid = minted["uuid"].as_str().unwrap();
    let (status, _) = s
        .call(Some(&token), Method::DELETE, &format!("{url}/{uuid}"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = s
        .call(Some(&token), Method::DELETE, &format!("{url}/{uuid}"), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = s
        .call(
            Some(&token),
            Method::DELETE,
            &format!("/organization/testorg/applications/{client_id}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = s
        .call(
            Some(&weak),
            Method::GET,
            "/repository?namespace=testorg",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = s
        .call(
            Some(&token),
            Method::GET,
            &format!("/organization/testorg/applications/{client_id}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let entries = s.audit("testorg").await;
    let kinds: Vec<&str> = entries.iter().map(|e| e.kind.as_str()).collect();
    for kind in [
        "create_application",
        "update_application",
        "reset_application_client_secret",
        "create_oauth_api_token",
        "revoke_oauth_api_token",
        "delete_application",
    ] {
        assert!(kinds.contains(&kind), "{kind} missing from {kinds:?}");
    }
    // Changes made with a minted token say so.
    let with_token = entries
        .iter()
        .find(|e| e.kind == "create_oauth_api_token" && e.metadata.contains("oauth_token_id"))
        .expect("a record made with an OAuth token");
    let metadata: Value = serde_json::from_str(&with_token.metadata).unwrap();
    assert_eq!(metadata["oauth_token_application_id"], client_id.as_str());
}

async fn every_endpoint_enforces_its_scope(b: Backend) {
    let s = TestServer::start(b).await;
    let (token, client_id) = setup(&s).await;
    s.call(Some(&token), Method::POST, "/repository", Some(json!({"namespace": "testorg", "repository": "hello", "visibility": "private", "description": ""}))).await;
    s.call(
        Some(&token),
        Method::PUT,
        "/organization/testorg/robots/ci",
        None,
    )
    .await;

    // The discovery document lists every endpoint with the scope it needs.
    let r = s.anonymous().send(Method::GET, "/api/v1/discovery").await;
    assert_eq!(r.status(), StatusCode::OK);
    let doc: Value = r.json().await.unwrap();
    assert_eq!(doc["swagger"], "2.0");
    assert_eq!(doc["host"], s.host.as_str());
    let scopes: BTreeSet<&str> = doc["securityDefinitions"]["oauth2_implicit"]["scopes"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        scopes,
        BTreeSet::from([
            "org:admin",
            "repo:admin",
            "repo:create",
            "repo:read",
            "repo:write",
            "super:user",
            "user:admin",
            "user:read"
        ])
    );
    let paths = doc["paths"].as_object().unwrap();
    for (path, method) in [
        ("/api/v1/organization/", "post"),
        (
            "/api/v1/organization/{orgname}/robots/{robot_shortname}",
            "put",
        ),
        (
            "/api/v1/repository/{namespace}/{repository}/permissions/user/{username}",
            "put",
        ),
        (
            "/api/v1/organization/{orgname}/prototypes/{prototypeid}",
            "delete",
        ),
        ("/api/v1/superuser/users/{username}", "delete"),
        (
            "/api/v1/organization/{orgname}/applications/{client_id}/tokens",
            "post",
        ),
    ] {
        assert!(
            paths[path][method]["operationId"].is_string(),
            "{method} {path} missing from discovery"
        );
    }

    // Every endpoint that declares a scope refuses a token without it (403 insufficient_scope),
    // and the document says which scope each needs: take them from the document itself.
    let unrelated = mint(&s, &token, &client_id, "user:read").await;
    let user_admin = mint(&s, &token, &client_id, "user:admin").await;
    let mut checked = 0;
    for (path, item) in paths {
        for (method, op) in item.as_object().unwrap() {
            let Some(scope) = op["security"][0]["oauth2_implicit"][0].as_str() else {
                continue;
            };
            let concrete = path
                .trim_start_matches("/api/v1")
                .replace("{orgname}", "testorg")
                .replace("{namespace}", "testorg")
                .replace("{repository}", "hello")
                .replace("{robot_shortname}", "ci")
                .replace("{teamname}", "owners")
                .replace("{username}", "admin")
                .replace("{membername}", "admin")
                .replace("{client_id}", &client_id)
                .replace(['{', '}'], "");
            let wrong = if scope == "user:read" {
                &user_admin
            } else {
                &unrelated
            };
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let (status, body) = s
                .call(Some(wrong), method.clone(), &concrete, Some(json!({})))
                .await;
            assert_eq!(
                status,
                StatusCode::FORBIDDEN,
                "{method} {concrete} (needs {scope}) answered {body}"
            );
            assert_eq!(
                body["error_type"], "insufficient_scope",
                "{method} {concrete}"
            );
            checked += 1;
        }
    }
    assert!(checked > 60, "only {checked} endpoints checked");

    // The right scope opens the door (still subject to the user's own rights).
    let org_admin = mint(&s, &token, &client_id, "org:admin").await;
    let (status, _) = s
        .call(
            Some(&org_admin),
            Method::PUT,
            "/organization/testorg/team/devs",
            Some(json!({"role": "member"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = s
        .call(
            Some(&org_admin),
            Method::GET,
            "/organization/testorg/robots/ci",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let create = mint(&s, &token, &client_id, "repo:create").await;
    let (status, _) = s.call(Some(&create), Method::POST, "/repository", Some(json!({"namespace": "testorg", "repository": "made", "visibility": "private", "description": ""}))).await;
    assert_eq!(status, StatusCode::CREATED);
    let read = mint(&s, &token, &client_id, "repo:read").await;
    let (status, _) = s
        .call(Some(&read), Method::GET, "/repository/testorg/hello", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = s
        .call(
            Some(&read),
            Method::PUT,
            "/repository/testorg/hello",
            Some(json!({"description": "x"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let su = mint(&s, &token, &client_id, "super:user").await;
    let (status, _) = s
        .call(Some(&su), Method::GET, "/superuser/users/", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    // user:read reads the caller but cannot create organizations.
    let (status, _) = s.call(Some(&unrelated), Method::GET, "/user/", None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = s
        .call(
            Some(&unrelated),
            Method::POST,
            "/organization/",
            Some(json!({"name": "neworg"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

async fn oauth_tokens_on_the_registry(b: Backend) {
    let s = TestServer::start(b).await;
    let (token, client_id) = setup(&s).await;
    s.as_admin().push_image("testorg/hello", "v1").await;
    let read = mint(&s, &token, &client_id, "repo:read").await;
    let write = mint(&s, &token, &client_id, "repo:write repo:create").await;
    // $oauthtoken with a read token: pulls, cannot push.
    assert_eq!(
        s.as_basic("$oauthtoken", &read)
            .send(Method::GET, "/v2/testorg/hello/manifests/v1")
            .await
            .status(),
        StatusCode::OK
    );
    expect_error(
        s.as_basic("$oauthtoken", &read)
            .send(Method::POST, "/v2/testorg/hello/blobs/uploads/")
            .await,
        StatusCode::FORBIDDEN,
        "DENIED",
    )
    .await;
    let t = s
        .token(
            Some(("$oauthtoken", &read)),
            &["repository:testorg/hello:pull,push"],
        )
        .await;
    assert_eq!(
        s.as_bearer(&t)
            .send(Method::GET, "/v2/testorg/hello/manifests/v1")
            .await
            .status(),
        StatusCode::OK
    );
    expect_error(
        s.as_bearer(&t)
            .send(Method::POST, "/v2/testorg/hello/blobs/uploads/")
            .await,
        StatusCode::UNAUTHORIZED,
        "UNAUTHORIZED",
    )
    .await;
    // A write token pushes, and creates repositories with repo:create.
    s.as_basic("$oauthtoken", &write)
        .push_image("testorg/hello", "v2")
        .await;
    s.as_basic("$oauthtoken", &write)
        .push_image("testorg/new", "v1")
        .await;
    let entries = s.audit("testorg").await;
    let push = entries
        .iter()
        .find(|e| e.kind == "push_repo" && e.repository.as_deref() == Some("new"))
        .unwrap();
    assert_eq!(push.performer.as_deref(), Some(ADMIN));
    assert!(
        push.metadata.contains("oauth_token_id"),
        "{}",
        push.metadata
    );
}
