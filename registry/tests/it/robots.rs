//! Robot accounts through `/api/v1`, their logins on `/v2`, and `ROBOTS_DISALLOW`.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::backend_tests;
use crate::common::quay::*;
use crate::common::*;

backend_tests!(
    organization_robots_like_quay,
    user_robots_and_forbidden_callers,
    robots_log_in_with_their_token,
    robots_can_be_disallowed
);

async fn setup(s: &TestServer) -> String {
    let token = s.init_admin().await;
    let (status, _) = s
        .call(
            Some(&token),
            Method::POST,
            "/organization/",
            Some(json!({"name": "testorg", "email": "testorg@example.com"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    token
}

async fn organization_robots_like_quay(b: Backend) {
    let s = TestServer::start(b).await;
    let token = setup(&s).await;
    let rec = recorded("07-create-robot");
    let r = s
        .as_bearer(&token)
        .request(Method::PUT, "/api/v1/organization/testorg/robots/ci")
        .json(&rec.request_body)
        .send()
        .await
        .unwrap();
    let created = expect_like(r, "07-create-robot", &[]).await;
    assert_eq!(created["name"], "testorg+ci");
    assert_eq!(created["description"], "CI robot");
    assert_eq!(created["unstructured_metadata"], Value::Null);
    let token_value = created["token"].as_str().unwrap().to_owned();
    assert_eq!(token_value.len(), 64);

    // The token can be read back by administrators.
    let r = s
        .as_bearer(&token)
        .send(Method::GET, "/api/v1/organization/testorg/robots/ci")
        .await;
    let got = expect_like(r, "08-get-robot", &[]).await;
    assert_eq!(got["token"], token_value.as_str());
    assert_eq!(got["unstructured_metadata"], json!({}));

    let r = s
        .as_bearer(&token)
        .send(
            Method::GET,
            "/api/v1/organization/testorg/robots?permissions=true&token=false",
        )
        .await;
    let list = expect_like(r, "09-list-robots", &[]).await;
    assert_eq!(list["robots"][0]["name"], "testorg+ci");
    let (_, list) = s
        .call(
            Some(&token),
            Method::GET,
            "/organization/testorg/robots",
            None,
        )
        .await;
    assert_eq!(list["robots"][0]["token"], token_value.as_str());
    assert!(list["robots"][0].get("teams").is_none());
    let (_, list) = s
        .call(
            Some(&token),
            Method::GET,
            "/organization/testorg/robots?limit=0",
            None,
        )
        .await;
    assert_eq!(list["robots"], json!([]));

    // Description and metadata.
    let (status, robot) = s
        .call(
            Some(&token),
            Method::PUT,
            "/organization/testorg/robots/deployer",
            Some(json!({"description": "deploys", "unstructured_metadata": {"team": "ops"}})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(robot["unstructured_metadata"], json!({"team": "ops"}));
    let (_, robot) = s
        .call(
            Some(&token),
            Method::GET,
            "/organization/testorg/robots/deployer",
            None,
        )
        .await;
    assert_eq!(robot["unstructured_metadata"], json!({"team": "ops"}));
    let (status, body) = s
        .call(
            Some(&token),
            Method::PUT,
            "/organization/testorg/robots/bad",
            Some(json!({"unstructured_metadata": "x"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("unstructured_metadata"),
        "{body}"
    );
    let (status, body) = s
        .call(
            Some(&token),
            Method::PUT,
            "/organization/testorg/robots/ci",
            None,
        )
        .await;
    assert_quay_error(
        status,
        &body,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "Existing robot with name: testorg+ci",
    );
    let (status, body) = s
        .call(
            Some(&token),
            Method::PUT,
            "/organization/testorg/robots/Bad!",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .starts_with("The name for the robot 'Bad!' is invalid"),
        "{body}"
    );

    // Permissions and teams of the robot.
    s.api(&token)
        .create_repository(&quayside_client::CreateRepositoryRequest {
            namespace: Some("testorg".into()),
            repository: "hello".into(),
            visibility: "private".into(),
            description: String::new(),
            repo_kind: None,
        })
        .await
        .unwrap();
    s.api(&token)
        .set_user_permission("testorg", "hello", "testorg+ci", "write")
        .await
        .unwrap();
    s.call(
        Some(&token),
        Method::PUT,
        "/organization/testorg/team/owners/members/testorg+ci",
        None,
    )
    .await;
    let (status, perms) = s
        .call(
            Some(&token),
            Method::GET,
            "/organization/testorg/robots/ci/permissions",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        perms,
        json!({"permissions": [{"repository": {"name": "hello", "is_public": false}, "role": "write"}]})
    );
    let (_, list) = s
        .call(
            Some(&token),
            Method::GET,
            "/organization/testorg/robots?permissions=true",
            None,
        )
        .await;
    let ci = list["robots"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "testorg+ci")
        .unwrap()
        .clone();
    assert_eq!(ci["repositories"], json!(["hello"]));
    assert_eq!(ci["teams"][0]["name"], "owners");

    // Regenerate: a new token; the old one stops working.
    let (status, regenerated) = s
        .call(
            Some(&token),
            Method::POST,
            "/organization/testorg/robots/ci/regenerate",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let new_token = regenerated["token"].as_str().unwrap().to_owned();
    assert_ne!(new_token, token_value);
    assert!(regenerated.get("unstructured_metadata").is_none());
    assert_eq!(
        s.as_basic("testorg+ci", &token_value)
            .send(Method::GET, "/v2/")
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        s.as_basic("testorg+ci", &new_token)
            .send(Method::GET, "/v2/")
            .await
            .status(),
        StatusCode::OK
    );

    // Delete; then Quay's messages for a robot that is not there.
    let (status, _) = s
        .call(
            Some(&token),
            Method::DELETE,
            "/organization/testorg/robots/ci",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = s
        .call(
            Some(&token),
            Method::GET,
            "/organization/testorg/robots/ci",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body,
        json!({"message": "Could not find robot with specified username"})
    );
    let (status, body) = s
        .call(
            Some(&token),
            Method::DELETE,
            "/organization/testorg/robots/ci",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body,
        json!({"message": "Could not find robot with username: testorg+ci"})
    );
    let (status, body) = s
        .call(
            Some(&token),
            Method::POST,
            "/organization/testorg/robots/ci/regenerate",
            None,
        )
        .await;
    assert_eq!(
        (status, body),
        (
            StatusCode::BAD_REQUEST,
            json!({"message": "Could not find robot with specified username"})
        )
    );
    assert_eq!(
        s.as_basic("testorg+ci", &new_token)
            .send(Method::GET, "/v2/")
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    // The permission went with the robot.
    let (_, perms) = s
        .call(
            Some(&token),
            Method::GET,
            "/repository/testorg/hello/permissions/user/",
            None,
        )
        .await;
    assert!(perms["permissions"].get("testorg+ci").is_none(), "{perms}");

    let entries = s.audit("testorg").await;
    let kinds: Vec<&str> = entries.iter().map(|e| e.kind.as_str()).collect();
    for kind in ["create_robot", "regenerate_robot_token", "delete_robot"] {
        assert!(kinds.contains(&kind), "{kind} missing from {kinds:?}");
    }
    let created = entries
        .iter()
        .rev()
        .find(|e| e.kind == "create_robot")
        .unwrap();
    assert_eq!(created.performer.as_deref(), Some(ADMIN));
    assert_eq!(created.ip.as_deref(), Some("127.0.0.1"));
    let metadata: Value = serde_json::from_str(&created.metadata).unwrap();
    assert_eq!(metadata["robot"], "ci");
}

async fn user_robots_and_forbidden_callers(b: Backend) {
    let s = TestServer::start(b).await;
    let token = setup(&s).await;
    let (_, password, alice) = s.user_with_token("alice").await;
    let (status, robot) = s
        .call(
            Some(&alice),
            Method::PUT,
            "/user/robots/builder",
            Some(json!({"description": "mine"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(robot["name"], "alice+builder");
    let (_, robot) = s
        .call(Some(&alice), Method::GET, "/user/robots/builder", None)
        .await;
    assert_eq!(robot["description"], "mine");
    let robot_token = robot["token"].as_str().unwrap().to_owned();
    let (_, list) = s
        .call(Some(&alice), Method::GET, "/user/robots", None)
        .await;
    assert_eq!(list["robots"][0]["name"], "alice+builder");
    let (status, _) = s
        .call(
            Some(&alice),
            Method::POST,
            "/user/robots/builder/regenerate",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, perms) = s
        .call(
            Some(&alice),
            Method::GET,
            "/user/robots/builder/permissions",
            None,
        )
        .await;
    assert_eq!(
        (status, perms),
        (StatusCode::OK, json!({"permissions": []}))
    );
    // A user robot has no access to its owner's repositories until granted.
    s.as_basic("alice", &password)
        .push_image("alice/app", "v1")
        .await;
    let (_, robot) = s
        .call(Some(&alice), Method::GET, "/user/robots/builder", None)
        .await;
    let robot_token2 = robot["token"].as_str().unwrap().to_owned();
    assert_ne!(robot_token, robot_token2);
    let r = s
        .as_basic("alice+builder", &robot_token2)
        .send(Method::GET, "/v2/alice/app/manifests/v1")
        .await;
    expect_error(r, StatusCode::FORBIDDEN, "DENIED").await;
    s.api(&alice)
        .set_user_permission("alice", "app", "alice+builder", "read")
        .await
        .unwrap();
    let r = s
        .as_basic("alice+builder", &robot_token2)
        .send(Method::GET, "/v2/alice/app/manifests/v1")
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let (status, _) = s
        .call(Some(&alice), Method::DELETE, "/user/robots/builder", None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    // Strangers cannot see or manage an organization's robots; anonymous callers must log in.
    s.call(
        Some(&token),
        Method::PUT,
        "/organization/testorg/robots/ci",
        None,
    )
    .await;
    for (method, path) in [
        (Method::GET, "/organization/testorg/robots"),
        (Method::GET, "/organization/testorg/robots/ci"),
        (Method::PUT, "/organization/testorg/robots/other"),
        (Method::DELETE, "/organization/testorg/robots/ci"),
        (Method::POST, "/organization/testorg/robots/ci/regenerate"),
        (Method::GET, "/organization/testorg/robots/ci/permissions"),
    ] {
        let (status, body) = s.call(Some(&alice), method.clone(), path, None).await;
        assert_quay_error(
            status,
            &body,
            StatusCode::FORBIDDEN,
            "insufficient_scope",
            "Unauthorized",
        );
        let (status, body) = s.call(None, method, path, None).await;
        assert_quay_error(
            status,
            &body,
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            "Requires authentication",
        );
    }
    // Members see the list, without tokens.
    s.call(
        Some(&token),
        Method::PUT,
        "/organization/testorg/team/devs",
        Some(json!({"role": "member"})),
    )
    .await;
    s.call(
        Some(&token),
        Method::PUT,
        "/organization/testorg/team/devs/members/alice",
        None,
    )
    .await;
    let (status, list) = s
        .call(
            Some(&alice),
            Method::GET,
            "/organization/testorg/robots",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(list["robots"][0].get("token").is_none(), "{list}");
    // Robots cannot use the API.
    let (_, ci) = s
        .call(
            Some(&token),
            Method::GET,
            "/organization/testorg/robots/ci",
            None,
        )
        .await;
    let r = s
        .as_basic("testorg+ci", ci["token"].as_str().unwrap())
        .send(Method::GET, "/api/v1/organization/testorg/robots")
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

async fn robots_log_in_with_their_token(b: Backend) {
    let s = TestServer::start(b).await;
    let token = setup(&s).await;
    s.as_admin().push_image("testorg/hello", "v1").await;
    s.as_admin().push_image("testorg/other", "v1").await;
    let robot = s
        .api(&token)
        .create_robot(Some("testorg"), "reader", &Default::default())
        .await
        .unwrap();
    let secret = robot.token.unwrap();
    s.api(&token)
        .set_user_permission("testorg", "hello", "testorg+reader", "read")
        .await
        .unwrap();

    // Token flow: the robot's grant covers pull on the repository it may read, nothing else.
    let t = s
        .token(
            Some(("testorg+reader", &secret)),
            &[
                "repository:testorg/hello:pull,push",
                "repository:testorg/other:pull",
            ],
        )
        .await;
    assert_eq!(
        s.as_bearer(&t)
            .send(Method::GET, "/v2/testorg/hello/manifests/v1")
            .await
            .status(),
        StatusCode::OK
    );
    let r = s
        .as_bearer(&t)
        .send(Method::GET, "/v2/testorg/other/manifests/v1")
        .await;
    let body = expect_error(r, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;
    assert_eq!(
        body["errors"][0]["message"],
        "access to the requested resource is not authorized"
    );
    let r = s
        .as_bearer(&t)
        .send(Method::POST, "/v2/testorg/hello/blobs/uploads/")
        .await;
    expect_error(r, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;
    // Basic auth: the robot is known, so refusals are 403 DENIED.
    let r = s
        .as_basic("testorg+reader", &secret)
        .send(Method::GET, "/v2/testorg/other/manifests/v1")
        .await;
    expect_error(r, StatusCode::FORBIDDEN, "DENIED").await;
    // Wrong tokens and unknown robots are refused at the token server with Quay's message.
    let r = s
        .client
        .get(format!("{}/v2/auth", s.url))
        .basic_auth("testorg+reader", Some("WRONG"))
        .send()
        .await
        .unwrap();
    let body = expect_error(r, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;
    assert_eq!(
        body["errors"][0]["message"],
        "Could not find robot with username: testorg+reader and supplied password."
    );
    let r = s
        .client
        .get(format!("{}/v2/auth", s.url))
        .basic_auth("testorg+ghost", Some("x"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    // Robot pushes create repositories when the robot may create them (creator team), and the
    // robot administers what it created.
    s.call(
        Some(&token),
        Method::PUT,
        "/organization/testorg/team/bots",
        Some(json!({"role": "creator"})),
    )
    .await;
    s.call(
        Some(&token),
        Method::PUT,
        "/organization/testorg/team/bots/members/testorg+reader",
        None,
    )
    .await;
    s.as_basic("testorg+reader", &secret)
        .push_image("testorg/made-by-robot", "v1")
        .await;
    let (_, perms) = s
        .call(
            Some(&token),
            Method::GET,
            "/repository/testorg/made-by-robot/permissions/user/",
            None,
        )
        .await;
    assert_eq!(perms["permissions"]["testorg+reader"]["role"], "admin");
    assert_eq!(perms["permissions"]["testorg+reader"]["is_robot"], true);

    // Logins, pulls and pushes by the robot are in the audit log with the robot as performer.
    let entries = s.audit("testorg").await;
    for kind in [
        "login_success",
        "login_failure",
        "pull_repo",
        "push_repo",
        "create_repo",
    ] {
        let e = entries
            .iter()
            .find(|e| e.kind == kind)
            .unwrap_or_else(|| panic!("{kind} missing"));
        assert_eq!(e.ip.as_deref(), Some("127.0.0.1"), "{kind}");
    }
    let push = entries
        .iter()
        .find(|e| e.kind == "push_repo" && e.repository.as_deref() == Some("made-by-robot"))
        .unwrap();
    assert_eq!(push.performer.as_deref(), Some("testorg+reader"));
    assert!(push.repository_id.is_some());
    let pull = entries
        .iter()
        .find(|e| e.kind == "pull_repo" && e.repository.as_deref() == Some("hello"))
        .unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(&pull.metadata).unwrap()["tag"],
        "v1"
    );
    let robot_row = quayside::db::tenancy::robots::by_name(s.ctx().db.pool(), "testorg+reader")
        .await
        .unwrap()
        .unwrap();
    assert!(robot_row.last_accessed_ms.is_some());
}

async fn robots_can_be_disallowed(b: Backend) {
    let s = TestServer::start(b).await;
    let token = setup(&s).await;
    let robot = s
        .api(&token)
        .create_robot(Some("testorg"), "ci", &Default::default())
        .await
        .unwrap();
    let secret = robot.token.unwrap();
    let mut s = s;
    s.config_yaml_push("ROBOTS_DISALLOW: true\n");
    s.restart().await;
    let (status, body) = s
        .call(
            Some(&token),
            Method::PUT,
            "/organization/testorg/robots/other",
            None,
        )
        .await;
    assert_quay_error(
        status,
        &body,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "Robot accounts have been disabled. Please contact your administrator.",
    );
    let r = s
        .client
        .get(format!("{}/v2/auth", s.url))
        .basic_auth("testorg+ci", Some(&secret))
        .send()
        .await
        .unwrap();
    let body = expect_error(r, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;
    assert_eq!(
        body["errors"][0]["message"],
        "Robot accounts have been disabled. Please contact your administrator."
    );
    // Users are unaffected.
    assert_eq!(
        s.as_admin().send(Method::GET, "/v2/").await.status(),
        StatusCode::OK
    );
}
