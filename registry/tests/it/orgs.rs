//! Users and organizations through `/api/v1`: the superuser panel, the caller's own view,
//! organization lifecycle, and the shared user/organization name space.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::backend_tests;
use crate::common::quay::*;
use crate::common::*;

backend_tests!(
    current_user_and_superuser_panel,
    user_creation_switch_and_deletion,
    organization_lifecycle,
    organization_visibility_for_members_and_strangers,
    names_are_shared_and_validated,
    features_not_served_yet_answer_not_implemented
);

async fn current_user_and_superuser_panel(b: Backend) {
    let s = TestServer::start_with(
        b,
        Options {
            yaml: "SUPER_USERS: [admin]\n".into(),
            ..Options::default()
        },
    )
    .await;
    let token = s.init_admin().await;
    let r = s.as_bearer(&token).send(Method::GET, "/api/v1/user/").await;
    let me = expect_like(r, "02-get-user", &[]).await;
    assert_eq!(me["username"], ADMIN);
    assert_eq!(me["super_user"], true);

    // Superusers create users; the generated password is shown once and works.
    let (status, created) = s
        .call(
            Some(&token),
            Method::POST,
            "/superuser/users/",
            Some(json!({"username": "newuser", "email": "newuser@example.com"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{created}");
    assert_eq!(created["username"], "newuser");
    let password = created["password"].as_str().unwrap().to_owned();
    assert_eq!(password.len(), 32);
    assert!(created["encrypted_password"].as_str().is_some());
    s.as_basic("newuser", &password)
        .push_image("newuser/app", "v1")
        .await;

    let r = s
        .as_bearer(&token)
        .send(Method::GET, "/api/v1/superuser/users/")
        .await;
    let users = expect_like(r, "03-discovery-head", &[]).await;
    let names: Vec<&str> = users["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, [ADMIN, "newuser"]);

    // Change the password, e-mail and enabled flag.
    let (status, changed) = s.call(Some(&token), Method::PUT, "/superuser/users/newuser", Some(json!({"password": "another-password1", "email": "other@example.com", "enabled": false}))).await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(changed["email"], "other@example.com");
    assert_eq!(changed["enabled"], false);
    assert!(changed["encrypted_password"].is_string());
    // Disabled users cannot log in; enabled again, only the new password works.
    assert_eq!(
        s.as_basic("newuser", "another-password1")
            .send(Method::GET, "/v2/")
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    s.call(
        Some(&token),
        Method::PUT,
        "/superuser/users/newuser",
        Some(json!({"enabled": true})),
    )
    .await;
    assert_eq!(
        s.as_basic("newuser", "another-password1")
            .send(Method::GET, "/v2/")
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        s.as_basic("newuser", &password)
            .send(Method::GET, "/v2/")
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    let (status, users) = s
        .call(
            Some(&token),
            Method::GET,
            "/superuser/users/?disabled=false",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(users["users"].as_array().unwrap().len(), 2);

    // Bad input is a 400 naming the field, never a 500.
    let (status, body) = s
        .call(
            Some(&token),
            Method::PUT,
            "/superuser/users/newuser",
            Some(json!({"email": "not-an-email"})),
        )
        .await;
    assert_quay_error(
        status,
        &body,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "Invalid email address: not-an-email",
    );
    let (status, body) = s
        .call(
            Some(&token),
            Method::POST,
            "/superuser/users/",
            Some(json!({"email": "x@example.com"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("username"),
        "{body}"
    );
    let (status, body) = s
        .call(
            Some(&token),
            Method::PUT,
            "/superuser/users/admin",
            Some(json!({"enabled": false})),
        )
        .await;
    assert_quay_error(
        status,
        &body,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "Cannot update a superuser",
    );
    let (status, _) = s
        .call(Some(&token), Method::GET, "/superuser/users/nobody", None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Non-superusers and anonymous callers are refused.
    let (_, _, user_token) = s.user_with_token("carol").await;
    let (status, body) = s
        .call(Some(&user_token), Method::GET, "/superuser/users/", None)
        .await;
    assert_quay_error(
        status,
        &body,
        StatusCode::FORBIDDEN,
        "insufficient_scope",
        "Unauthorized",
    );
    let (status, body) = s.call(None, Method::GET, "/superuser/users/", None).await;
    assert_quay_error(
        status,
        &body,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
        "Requires authentication",
    );
    let (status, body) = s.call(None, Method::GET, "/user/", None).await;
    assert_quay_error(
        status,
        &body,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
        "Requires authentication",
    );
    let (status, _) = s
        .call(Some("not-a-token"), Method::GET, "/user/", None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // Basic auth with a password works on the API too.
    let r = s
        .as_basic("carol", "carol-password1")
        .send(Method::GET, "/api/v1/user/")
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let carol: Value = r.json().await.unwrap();
    assert_eq!(carol["username"], "carol");
    assert!(carol.get("super_user").is_none());
}

async fn user_creation_switch_and_deletion(b: Backend) {
    let s = TestServer::start_with(
        b,
        Options {
            yaml: "FEATURE_USER_CREATION: false\n".into(),
            ..Options::default()
        },
    )
    .await;
    let token = s.init_admin().await;
    // Self-service sign-up is hidden when FEATURE_USER_CREATION is off; superusers still create.
    let (status, _) = s
        .call(
            None,
            Method::POST,
            "/user/",
            Some(
                json!({"username": "eve", "password": "eve-password1", "email": "eve@example.com"}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = s
        .call(
            Some(&token),
            Method::POST,
            "/superuser/users/",
            Some(json!({"username": "dave"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    // Deleting a user deletes their namespace's repositories and robots.
    let (_, password) = ("dave", "x");
    let _ = password;
    let (status, _) = s
        .call(
            Some(&token),
            Method::PUT,
            "/superuser/users/dave",
            Some(json!({"password": "dave-password1"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    s.as_basic("dave", "dave-password1")
        .push_image("dave/app", "v1")
        .await;
    let r = s
        .as_basic("dave", "dave-password1")
        .send(Method::PUT, "/api/v1/user/robots/bot")
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let (status, _) = s
        .call(Some(&token), Method::DELETE, "/superuser/users/dave", None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        s.as_admin()
            .send(Method::GET, "/v2/dave/app/tags/list")
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    assert!(
        quayside::db::tenancy::robots::by_name(s.ctx().db.pool(), "dave+bot")
            .await
            .unwrap()
            .is_none()
    );
    let (status, _) = s
        .call(Some(&token), Method::GET, "/repository/dave/app", None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = s
        .call(Some(&token), Method::DELETE, "/superuser/users/admin", None)
        .await;
    assert_quay_error(
        status,
        &body,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "Cannot delete a superuser",
    );
    let kinds: Vec<String> = s.audit("dave").await.into_iter().map(|e| e.kind).collect();
    assert!(
        kinds.contains(&"user_delete".to_owned()) && kinds.contains(&"user_create".to_owned()),
        "{kinds:?}"
    );

    // With user creation on, anyone may sign up.
    let s = TestServer::start(b).await;
    s.init_admin().await;
    let (status, me) = s
        .call(
            None,
            Method::POST,
            "/user/",
            Some(
                json!({"username": "eve", "password": "eve-password1", "email": "eve@example.com"}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["username"], "eve");
    let (status, body) = s
        .call(
            None,
            Method::POST,
            "/user/",
            Some(json!({"username": "eve", "password": "eve-password1"})),
        )
        .await;
    assert_quay_error(
        status,
        &body,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "The username already exists",
    );
}

async fn organization_lifecycle(b: Backend) {
    let s = TestServer::start(b).await;
    let token = s.init_admin().await;
    let rec = recorded("04-create-org");
    let r = s
        .as_bearer(&token)
        .request(Method::POST, "/api/v1/organization/")
        .json(&rec.request_body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(r.headers()["content-type"], "application/json");
    assert_eq!(r.json::<Value>().await.unwrap(), json!("Created"));

    let r = s
        .as_bearer(&token)
        .request(Method::POST, "/api/v1/organization/")
        .json(&recorded("06-create-org-dup").request_body)
        .send()
        .await
        .unwrap();
    let body = expect_like(r, "06-create-org-dup", &[]).await;
    assert_eq!(
        body["detail"],
        "A user or organization with this name already exists"
    );
    assert_eq!(
        body["type"],
        format!("http://{}/api/v1/error/invalid_request", s.host)
    );

    let r = s
        .as_bearer(&token)
        .send(Method::GET, "/api/v1/organization/testorg")
        .await;
    let org = expect_like(r, "05-get-org", &["teams"]).await;
    assert_eq!(org["ordered_teams"], json!(["owners"]));
    assert_eq!(org["teams"]["owners"]["role"], "admin");
    assert_eq!(org["teams"]["owners"]["member_count"], 1);
    assert_eq!(org["email"], "testorg@example.com");
    // The avatar is Quay's: same hash and color for the same e-mail.
    assert_eq!(org["avatar"], recorded("05-get-org").body["avatar"]);

    // Settings.
    let (status, org) = s
        .call(
            Some(&token),
            Method::PUT,
            "/organization/testorg",
            Some(json!({"email": "new@example.com", "tag_expiration_s": 86400})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{org}");
    assert_eq!(org["email"], "new@example.com");
    assert_eq!(org["tag_expiration_s"], 86400);
    let (status, body) = s
        .call(
            Some(&token),
            Method::PUT,
            "/organization/testorg",
            Some(json!({"tag_expiration_s": -1})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("tag_expiration_s")
    );
    let (status, body) = s
        .call(
            Some(&token),
            Method::PUT,
            "/organization/testorg",
            Some(json!({"tag_expiration_s": "soon"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("tag_expiration_s"),
        "{body}"
    );

    // Deleting the organization deletes its repositories.
    s.as_admin().push_image("testorg/app", "v1").await;
    let (status, _) = s
        .call(Some(&token), Method::DELETE, "/organization/testorg", None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = s
        .call(Some(&token), Method::GET, "/organization/testorg", None)
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
            .send(Method::GET, "/v2/testorg/app/tags/list")
            .await
            .status(),
        StatusCode::NOT_FOUND
    );

    let kinds: Vec<String> = s
        .audit("testorg")
        .await
        .into_iter()
        .map(|e| e.kind)
        .collect();
    for kind in [
        "org_create",
        "org_change_email",
        "org_change_tag_expiration",
        "org_delete",
    ] {
        assert!(
            kinds.iter().any(|k| k == kind),
            "{kind} missing from {kinds:?}"
        );
    }
}

async fn organization_visibility_for_members_and_strangers(b: Backend) {
    let s = TestServer::start(b).await;
    let token = s.init_admin().await;
    let (_, _, alice) = s.user_with_token("alice").await;
    let (_, _, bob) = s.user_with_token("bob").await;
    // Any user may create an organization and administers it.
    let api = s.api(&alice);
    api.create_organization(&quayside_client::CreateOrganizationRequest {
        name: "acme".into(),
        email: Some("acme@example.com".into()),
    })
    .await
    .unwrap();
    let org = api.organization("acme").await.unwrap();
    assert!(org.is_admin && org.is_member);
    // A stranger sees the organization without teams or settings.
    let (status, org) = s
        .call(Some(&bob), Method::GET, "/organization/acme", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(org["is_admin"], false);
    assert_eq!(org["is_member"], false);
    assert_eq!(org["email"], "");
    assert!(
        org.get("teams").is_none() && org.get("tag_expiration_s").is_none(),
        "{org}"
    );
    // A member sees the teams but not the settings.
    s.call(
        Some(&alice),
        Method::PUT,
        "/organization/acme/team/devs",
        Some(json!({"role": "member"})),
    )
    .await;
    s.call(
        Some(&alice),
        Method::PUT,
        "/organization/acme/team/devs/members/bob",
        None,
    )
    .await;
    let (_, org) = s
        .call(Some(&bob), Method::GET, "/organization/acme", None)
        .await;
    assert_eq!(org["is_member"], true);
    assert_eq!(org["is_admin"], false);
    assert_eq!(org["ordered_teams"], json!(["owners", "devs"]));
    assert_eq!(org["teams"]["devs"]["can_view"], true);
    assert_eq!(org["teams"]["owners"]["can_view"], false);
    // Strangers and members may not change or delete it; anonymous callers must authenticate.
    for t in [&bob] {
        let (status, body) = s
            .call(
                Some(t),
                Method::PUT,
                "/organization/acme",
                Some(json!({"email": "x@example.com"})),
            )
            .await;
        assert_quay_error(
            status,
            &body,
            StatusCode::FORBIDDEN,
            "insufficient_scope",
            "Unauthorized",
        );
        let (status, _) = s
            .call(Some(t), Method::DELETE, "/organization/acme", None)
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }
    let (status, _) = s
        .call(None, Method::DELETE, "/organization/acme", None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = s
        .call(
            None,
            Method::POST,
            "/organization/",
            Some(json!({"name": "anon"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // The superuser administers every organization.
    let (status, org) = s
        .call(Some(&token), Method::GET, "/organization/acme", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(org["is_admin"], true);
    // GET /user/ lists the caller's organizations.
    let (_, me) = s.call(Some(&bob), Method::GET, "/user/", None).await;
    assert_eq!(me["organizations"][0]["name"], "acme");
    assert_eq!(me["organizations"][0]["is_org_admin"], false);
}

async fn names_are_shared_and_validated(b: Backend) {
    let s = TestServer::start(b).await;
    let token = s.init_admin().await;
    s.user("alice").await;
    let (status, body) = s
        .call(
            Some(&token),
            Method::POST,
            "/organization/",
            Some(json!({"name": "alice"})),
        )
        .await;
    assert_quay_error(
        status,
        &body,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "A user or organization with this name already exists",
    );
    s.call(
        Some(&token),
        Method::POST,
        "/organization/",
        Some(json!({"name": "acme"})),
    )
    .await;
    let (status, body) = s
        .call(
            Some(&token),
            Method::POST,
            "/superuser/users/",
            Some(json!({"username": "acme"})),
        )
        .await;
    assert_quay_error(
        status,
        &body,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "A user or organization with this name already exists",
    );
    for bad in ["A", "Bad Name", "a+b", "-x"] {
        let (status, body) = s
            .call(
                Some(&token),
                Method::POST,
                "/organization/",
                Some(json!({"name": bad})),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert_eq!(body["error_type"], "invalid_request");
    }
    let (status, body) = s
        .call(
            Some(&token),
            Method::POST,
            "/organization/",
            Some(json!({"name": "okname", "email": "nope"})),
        )
        .await;
    assert_quay_error(
        status,
        &body,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "Invalid email address",
    );
    let (status, body) = s
        .call(
            Some(&token),
            Method::POST,
            "/organization/",
            Some(json!({"nam": "typo"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["detail"].as_str().unwrap().contains("name"), "{body}");
    let r = s
        .as_bearer(&token)
        .request(Method::POST, "/api/v1/organization/")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    // Organizations cannot nest: there is no organization inside an organization's namespace.
    let (status, _) = s
        .call(
            Some(&token),
            Method::GET,
            "/organization/acme/organization/x",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // A user's namespace is not an organization.
    let (status, _) = s
        .call(Some(&token), Method::GET, "/organization/alice", None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// Quay endpoints of features Quayside does not serve yet answer 501 in Quay's error body, while
/// unknown paths keep Quay's 404.
async fn features_not_served_yet_answer_not_implemented(b: Backend) {
    let s = TestServer::start(b).await;
    let token = s.init_admin().await;
    s.create_org(&token, "testorg").await;

    for (method, path, feature) in [(
        Method::GET,
        "/repository/testorg/hello/trigger/x/fields/refs",
        "Listing a build trigger's git sources",
    )] {
        let (status, body) = s.call(Some(&token), method, path, Some(json!({}))).await;
        assert_quay_error(
            status,
            &body,
            StatusCode::NOT_IMPLEMENTED,
            "not_implemented",
            &format!("{feature} is not implemented in this version of Quayside"),
        );
    }
    // A refused request with a body closes its connection, and says so.
    let r = s
        .as_bearer(&token)
        .request(
            Method::POST,
            "/api/v1/repository/testorg/hello/trigger/x/fields/refs",
        )
        .json(&json!({"branch_name": "main"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_IMPLEMENTED);
    assert_eq!(r.headers()["connection"], "close");
    let r = s
        .as_bearer(&token)
        .send(
            Method::GET,
            "/api/v1/repository/testorg/hello/trigger/x/namespaces",
        )
        .await;
    assert_eq!(r.status(), StatusCode::NOT_IMPLEMENTED);
    assert!(
        r.headers().get("connection").is_none(),
        "no body: kept alive"
    );

    // A name that happens to spell a feature is still just an unknown path.
    for path in ["/organization/quota/nothing", "/nothing/here"] {
        let (status, body) = s.call(Some(&token), Method::GET, path, None).await;
        assert_quay_error(
            status,
            &body,
            StatusCode::NOT_FOUND,
            "not_found",
            "Not Found",
        );
    }
}
