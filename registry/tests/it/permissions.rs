//! Repository permissions (users, robots, teams) and default permissions (prototypes).

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::backend_tests;
use crate::common::quay::*;
use crate::common::*;

backend_tests!(
    user_robot_and_team_permissions,
    default_permissions_apply_on_creation
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
    let (status, _) = s.call(Some(&token), Method::POST, "/repository", Some(json!({"namespace": "testorg", "repository": "hello", "visibility": "private", "description": ""}))).await;
    assert_eq!(status, StatusCode::CREATED);
    token
}

async fn user_robot_and_team_permissions(b: Backend) {
    let s = TestServer::start(b).await;
    let token = setup(&s).await;
    let (_, pw, alice) = s.user_with_token("alice").await;
    s.as_admin().push_image("testorg/hello", "v1").await;
    s.call(
        Some(&token),
        Method::PUT,
        "/organization/testorg/robots/ci",
        None,
    )
    .await;

    let r = s
        .as_bearer(&token)
        .request(
            Method::PUT,
            "/api/v1/repository/testorg/hello/permissions/user/testorg+ci",
        )
        .json(&json!({"role": "write"}))
        .send()
        .await
        .unwrap();
    let perm = expect_like(r, "13-robot-repo-permission", &[]).await;
    assert_eq!(perm["avatar"]["kind"], "robot");

    // A user: read lets alice pull but not push; write lets her push; removal takes it away.
    let (status, perm) = s
        .call(
            Some(&token),
            Method::PUT,
            "/repository/testorg/hello/permissions/user/alice",
            Some(json!({"role": "read"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(perm["is_org_member"], false);
    assert_eq!(perm["is_robot"], false);
    assert_eq!(
        s.as_basic("alice", &pw)
            .send(Method::GET, "/v2/testorg/hello/manifests/v1")
            .await
            .status(),
        StatusCode::OK
    );
    expect_error(
        s.as_basic("alice", &pw)
            .send(Method::POST, "/v2/testorg/hello/blobs/uploads/")
            .await,
        StatusCode::FORBIDDEN,
        "DENIED",
    )
    .await;
    s.call(
        Some(&token),
        Method::PUT,
        "/repository/testorg/hello/permissions/user/alice",
        Some(json!({"role": "write"})),
    )
    .await;
    s.as_basic("alice", &pw)
        .push_image("testorg/hello", "v2")
        .await;
    let (status, _) = s
        .call(
            Some(&alice),
            Method::GET,
            "/repository/testorg/hello/permissions/user/",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    s.call(
        Some(&token),
        Method::PUT,
        "/repository/testorg/hello/permissions/user/alice",
        Some(json!({"role": "admin"})),
    )
    .await;
    let (status, listed) = s
        .call(
            Some(&alice),
            Method::GET,
            "/repository/testorg/hello/permissions/user/",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let mut names: Vec<&String> = listed["permissions"].as_object().unwrap().keys().collect();
    names.sort();
    assert_eq!(names, ["admin", "alice", "testorg+ci"]);
    assert_eq!(listed["permissions"]["testorg+ci"]["role"], "write");
    let (status, one) = s
        .call(
            Some(&token),
            Method::GET,
            "/repository/testorg/hello/permissions/user/alice",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(one["role"], "admin");
    let (status, _) = s
        .call(
            Some(&token),
            Method::DELETE,
            "/repository/testorg/hello/permissions/user/alice",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = s
        .call(
            Some(&token),
            Method::GET,
            "/repository/testorg/hello/permissions/user/alice",
            None,
        )
        .await;
    assert_eq!(
        (status, body),
        (
            StatusCode::BAD_REQUEST,
            json!({"message": "User does not have permission for repo."})
        )
    );
    expect_error(
        s.as_basic("alice", &pw)
            .send(Method::GET, "/v2/testorg/hello/manifests/v1")
            .await,
        StatusCode::FORBIDDEN,
        "DENIED",
    )
    .await;

    // Refusals with Quay's messages.
    let (status, body) = s
        .call(
            Some(&token),
            Method::PUT,
            "/repository/testorg/hello/permissions/user/nobody",
            Some(json!({"role": "read"})),
        )
        .await;
    assert_quay_error(
        status,
        &body,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "Invalid username: nobody",
    );
    s.as_basic("alice", &pw)
        .send(Method::PUT, "/api/v1/user/robots/mine")
        .await;
    let (status, body) = s
        .call(
            Some(&token),
            Method::PUT,
            "/repository/testorg/hello/permissions/user/alice+mine",
            Some(json!({"role": "read"})),
        )
        .await;
    assert_quay_error(
        status,
        &body,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "Cannot add robot alice+mine under namespace testorg",
    );
    let (status, body) = s
        .call(
            Some(&token),
            Method::PUT,
            "/repository/testorg/hello/permissions/user/alice",
            Some(json!({"role": "owner"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["detail"].as_str().unwrap().starts_with("role"),
        "{body}"
    );
    let (status, body) = s
        .call(
            Some(&token),
            Method::PUT,
            "/repository/testorg/hello/permissions/user/alice",
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["detail"].as_str().unwrap().contains("role"), "{body}");
    let (status, _) = s
        .call(
            Some(&token),
            Method::PUT,
            "/repository/testorg/nothere/permissions/user/alice",
            Some(json!({"role": "read"})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Teams: a team role on the repository reaches its members.
    s.call(
        Some(&token),
        Method::PUT,
        "/organization/testorg/team/readers",
        Some(json!({"role": "member"})),
    )
    .await;
    s.call(
        Some(&token),
        Method::PUT,
        "/organization/testorg/team/readers/members/alice",
        None,
    )
    .await;
    let (status, perm) = s
        .call(
            Some(&token),
            Method::PUT,
            "/repository/testorg/hello/permissions/team/readers",
            Some(json!({"role": "read"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(perm["name"], "readers");
    assert_eq!(perm["role"], "read");
    assert_eq!(perm["avatar"]["kind"], "team");
    assert_eq!(
        s.as_basic("alice", &pw)
            .send(Method::GET, "/v2/testorg/hello/manifests/v1")
            .await
            .status(),
        StatusCode::OK
    );
    let (_, listed) = s
        .call(
            Some(&token),
            Method::GET,
            "/repository/testorg/hello/permissions/team/",
            None,
        )
        .await;
    assert_eq!(listed["permissions"]["readers"]["role"], "read");
    let (_, one) = s
        .call(
            Some(&token),
            Method::GET,
            "/repository/testorg/hello/permissions/team/readers",
            None,
        )
        .await;
    assert_eq!(one, json!({"role": "read"}));
    // Now a team member, alice counts as an organization member.
    let (_, perm) = s
        .call(
            Some(&token),
            Method::PUT,
            "/repository/testorg/hello/permissions/user/alice",
            Some(json!({"role": "read"})),
        )
        .await;
    assert_eq!(perm["is_org_member"], true);
    s.call(
        Some(&token),
        Method::DELETE,
        "/repository/testorg/hello/permissions/user/alice",
        None,
    )
    .await;
    let (status, body) = s
        .call(
            Some(&token),
            Method::PUT,
            "/repository/testorg/hello/permissions/team/ghosts",
            Some(json!({"role": "read"})),
        )
        .await;
    assert_quay_error(
        status,
        &body,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "No team ghosts in organization testorg",
    );
    let (status, _) = s
        .call(
            Some(&token),
            Method::DELETE,
            "/repository/testorg/hello/permissions/team/readers",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    expect_error(
        s.as_basic("alice", &pw)
            .send(Method::GET, "/v2/testorg/hello/manifests/v1")
            .await,
        StatusCode::FORBIDDEN,
        "DENIED",
    )
    .await;
    let (status, body) = s
        .call(
            Some(&token),
            Method::GET,
            "/repository/testorg/hello/permissions/team/readers",
            None,
        )
        .await;
    assert_eq!(
        (status, body),
        (
            StatusCode::BAD_REQUEST,
            json!({"message": "Team does not have permission for repo."})
        )
    );

    let entries = s.audit("testorg").await;
    let change = entries
        .iter()
        .find(|e| e.kind == "change_repo_permission")
        .unwrap();
    assert_eq!(change.repository.as_deref(), Some("hello"));
    assert!(change.repository_id.is_some());
    assert!(entries.iter().any(|e| e.kind == "delete_repo_permission"));
    let _: Value = serde_json::from_str(&change.metadata).unwrap();
}

async fn default_permissions_apply_on_creation(b: Backend) {
    let s = TestServer::start(b).await;
    let token = setup(&s).await;
    let (_, _, alice) = s.user_with_token("alice").await;
    let (_, bob_pw, bob) = s.user_with_token("bob").await;
    s.call(
        Some(&token),
        Method::PUT,
        "/organization/testorg/robots/test",
        None,
    )
    .await;
    s.call(
        Some(&token),
        Method::PUT,
        "/organization/testorg/team/readers",
        Some(json!({"role": "member"})),
    )
    .await;
    s.call(
        Some(&token),
        Method::PUT,
        "/organization/testorg/team/makers",
        Some(json!({"role": "creator"})),
    )
    .await;
    s.call(
        Some(&token),
        Method::PUT,
        "/organization/testorg/team/makers/members/bob",
        None,
    )
    .await;

    // The seed's example: a default permission for repositories the robot creates.
    let (status, proto) = s.call(Some(&token), Method::POST, "/organization/testorg/prototypes", Some(json!({"role": "admin", "delegate": {"name": "alice", "kind": "user"}, "activating_user": {"name": "testorg+test"}}))).await;
    assert_eq!(status, StatusCode::OK, "{proto}");
    assert_eq!(
        proto["activating_user"],
        json!({"name": "testorg+test", "is_robot": true, "kind": "user", "is_org_member": true, "avatar": proto["activating_user"]["avatar"]})
    );
    assert_eq!(proto["delegate"]["name"], "alice");
    assert_eq!(proto["delegate"]["is_org_member"], false);
    assert_eq!(proto["role"], "admin");
    let id = proto["id"].as_str().unwrap().to_owned();
    assert_eq!(id.len(), 36);
    let (status, proto) = s
        .call(
            Some(&token),
            Method::PUT,
            &format!("/organization/testorg/prototypes/{id}"),
            Some(json!({"role": "write"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(proto["role"], "write");
    // For anyone: the readers team gets read on every new repository.
    let (_, team_proto) = s
        .call(
            Some(&token),
            Method::POST,
            "/organization/testorg/prototypes",
            Some(json!({"role": "read", "delegate": {"name": "readers", "kind": "team"}})),
        )
        .await;
    assert_eq!(team_proto["activating_user"], Value::Null);
    assert_eq!(team_proto["delegate"]["kind"], "team");
    // For anyone: alice gets read; for bob's repositories she gets admin (the specific one wins).
    s.call(
        Some(&token),
        Method::POST,
        "/organization/testorg/prototypes",
        Some(json!({"role": "read", "delegate": {"name": "alice", "kind": "user"}})),
    )
    .await;
    s.call(Some(&token), Method::POST, "/organization/testorg/prototypes", Some(json!({"role": "admin", "delegate": {"name": "alice", "kind": "user"}, "activating_user": {"name": "bob"}}))).await;
    let (status, list) = s
        .call(
            Some(&token),
            Method::GET,
            "/organization/testorg/prototypes",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["prototypes"].as_array().unwrap().len(), 4);

    // Bob creates one through the API and one by pushing.
    let (status, _) = s.call(Some(&bob), Method::POST, "/repository", Some(json!({"namespace": "testorg", "repository": "bobs", "visibility": "private", "description": ""}))).await;
    assert_eq!(status, StatusCode::CREATED);
    s.as_basic("bob", &bob_pw)
        .push_image("testorg/bobs-pushed", "v1")
        .await;
    for repo in ["bobs", "bobs-pushed"] {
        let (_, perms) = s
            .call(
                Some(&token),
                Method::GET,
                &format!("/repository/testorg/{repo}/permissions/user/"),
                None,
            )
            .await;
        assert_eq!(
            perms["permissions"]["bob"]["role"], "admin",
            "{repo}: {perms}"
        );
        assert_eq!(
            perms["permissions"]["alice"]["role"], "admin",
            "{repo}: {perms}"
        );
        let (_, teams) = s
            .call(
                Some(&token),
                Method::GET,
                &format!("/repository/testorg/{repo}/permissions/team/"),
                None,
            )
            .await;
        assert_eq!(
            teams["permissions"]["readers"]["role"], "read",
            "{repo}: {teams}"
        );
    }
    // The admin creates one: alice gets the "anyone" read.
    s.call(Some(&token), Method::POST, "/repository", Some(json!({"namespace": "testorg", "repository": "admins", "visibility": "private", "description": ""}))).await;
    let (_, perms) = s
        .call(
            Some(&token),
            Method::GET,
            "/repository/testorg/admins/permissions/user/",
            None,
        )
        .await;
    assert_eq!(perms["permissions"]["alice"]["role"], "read", "{perms}");
    // The robot creates one: alice gets write.
    let robot = s.api(&token).robot(Some("testorg"), "test").await.unwrap();
    s.call(
        Some(&token),
        Method::PUT,
        "/organization/testorg/team/makers/members/testorg+test",
        None,
    )
    .await;
    s.as_basic("testorg+test", robot.token.as_deref().unwrap())
        .push_image("testorg/robots", "v1")
        .await;
    let (_, perms) = s
        .call(
            Some(&token),
            Method::GET,
            "/repository/testorg/robots/permissions/user/",
            None,
        )
        .await;
    assert_eq!(perms["permissions"]["alice"]["role"], "write", "{perms}");
    assert_eq!(
        perms["permissions"]["testorg+test"]["role"], "admin",
        "{perms}"
    );
    // Existing repositories are not touched.
    let (_, perms) = s
        .call(
            Some(&token),
            Method::GET,
            "/repository/testorg/hello/permissions/user/",
            None,
        )
        .await;
    assert!(perms["permissions"].get("alice").is_none(), "{perms}");

    // Errors, forbidden callers, deletion.
    let (status, body) = s
        .call(
            Some(&token),
            Method::POST,
            "/organization/testorg/prototypes",
            Some(json!({"role": "read", "delegate": {"name": "ghost", "kind": "user"}})),
        )
        .await;
    assert_quay_error(
        status,
        &body,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "Missing delegate user or team",
    );
    let (status, body) = s.call(Some(&token), Method::POST, "/organization/testorg/prototypes", Some(json!({"role": "read", "delegate": {"name": "alice", "kind": "user"}, "activating_user": {"name": "ghost"}}))).await;
    assert_quay_error(
        status,
        &body,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "Unknown activating user",
    );
    let (status, body) = s
        .call(
            Some(&token),
            Method::POST,
            "/organization/testorg/prototypes",
            Some(json!({"role": "read"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["detail"].as_str().unwrap().contains("delegate"),
        "{body}"
    );
    let (status, _) = s
        .call(
            Some(&alice),
            Method::GET,
            "/organization/testorg/prototypes",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = s
        .call(
            Some(&alice),
            Method::DELETE,
            &format!("/organization/testorg/prototypes/{id}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = s
        .call(
            Some(&token),
            Method::DELETE,
            &format!("/organization/testorg/prototypes/{id}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = s
        .call(
            Some(&token),
            Method::DELETE,
            &format!("/organization/testorg/prototypes/{id}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = s
        .call(
            Some(&token),
            Method::PUT,
            "/organization/testorg/prototypes/nope",
            Some(json!({"role": "read"})),
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
        "create_prototype_permission",
        "modify_prototype_permission",
        "delete_prototype_permission",
    ] {
        assert!(
            kinds.iter().any(|k| k == kind),
            "{kind} missing from {kinds:?}"
        );
    }
}
