//! Organization members and outside collaborators (issue 17): who is listed, what each view
//! holds, who may ask, and what removing a member takes away.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::backend_tests;
use crate::common::{Backend, TestServer};

backend_tests!(members_and_collaborators);

async fn call(
    s: &TestServer,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    s.call(Some(token), method, path, body).await
}

fn names(list: &Value) -> Vec<&str> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect()
}

async fn members_and_collaborators(b: Backend) {
    let s = TestServer::start(b).await;
    let admin = s.init_admin().await;
    s.create_org(&admin, "acme").await;
    let (_, _, alice) = s.user_with_token("alice").await;
    s.user("bob").await;
    s.user("carol").await;
    for (method, path, body) in [
        (
            Method::PUT,
            "/organization/acme/team/devs",
            json!({"role": "member"}),
        ),
        (
            Method::PUT,
            "/organization/acme/team/devs/members/alice",
            json!({}),
        ),
        (Method::PUT, "/organization/acme/robots/ci", json!({})),
        (
            Method::PUT,
            "/organization/acme/team/devs/members/acme+ci",
            json!({}),
        ),
        (
            Method::POST,
            "/repository",
            json!({"namespace": "acme", "repository": "app", "visibility": "private", "description": ""}),
        ),
        (
            Method::PUT,
            "/repository/acme/app/permissions/user/alice",
            json!({"role": "write"}),
        ),
        (
            Method::PUT,
            "/repository/acme/app/permissions/user/bob",
            json!({"role": "read"}),
        ),
        (
            Method::PUT,
            "/repository/acme/app/permissions/user/acme+ci",
            json!({"role": "read"}),
        ),
    ] {
        let (status, body) = call(&s, &admin, method, path, Some(body)).await;
        assert!(status.is_success(), "{path}: {status} {body}");
    }

    // Members: users on a team (robots left out), with their teams and direct permissions.
    let (status, body) = call(&s, &admin, Method::GET, "/organization/acme/members", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(names(&body["members"]), ["admin", "alice"]);
    let alice_view = &body["members"][1];
    let mut keys: Vec<&str> = alice_view
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort();
    assert_eq!(keys, ["avatar", "kind", "name", "repositories", "teams"]);
    assert_eq!(alice_view["kind"], "user");
    assert_eq!(names(&alice_view["teams"]), ["devs"]);
    assert_eq!(alice_view["teams"][0]["avatar"]["kind"], "team");
    assert_eq!(alice_view["repositories"], json!(["app"]));
    assert_eq!(names(&body["members"][0]["teams"]), ["owners"]);

    // One member; the organization's own robot too; others are not members.
    let (status, one) = call(
        &s,
        &admin,
        Method::GET,
        "/organization/acme/members/alice",
        None,
    )
    .await;
    assert_eq!((status, &one), (StatusCode::OK, alice_view));
    let (status, robot) = call(
        &s,
        &admin,
        Method::GET,
        "/organization/acme/members/acme+ci",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{robot}");
    assert_eq!(robot["kind"], "robot");
    assert_eq!(names(&robot["teams"]), ["devs"]);
    assert_eq!(robot["repositories"], json!(["app"]));
    for outsider in ["bob", "carol", "nobody", "acme"] {
        let (status, body) = call(
            &s,
            &admin,
            Method::GET,
            &format!("/organization/acme/members/{outsider}"),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{outsider}: {body}");
    }

    // Collaborators: direct permissions, no team.
    let (status, body) = call(
        &s,
        &admin,
        Method::GET,
        "/organization/acme/collaborators",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["collaborators"],
        json!([{"kind": "user", "name": "bob", "avatar": body["collaborators"][0]["avatar"], "repositories": ["app"]}])
    );

    // Only administrators ask; anonymous callers are told to sign in.
    for path in [
        "/organization/acme/members",
        "/organization/acme/members/alice",
        "/organization/acme/collaborators",
    ] {
        let (status, body) = call(&s, &alice, Method::GET, path, None).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}: {body}");
        let (status, _) = s.call(None, Method::GET, path, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
    }
    let (status, _) = call(
        &s,
        &alice,
        Method::DELETE,
        "/organization/acme/members/alice",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = call(
        &s,
        &admin,
        Method::GET,
        "/organization/nothere/members",
        None,
    )
    .await;
    assert!(
        matches!(status, StatusCode::NOT_FOUND | StatusCode::FORBIDDEN),
        "{status}"
    );

    // Removing a member: off every team, every direct permission gone.
    let (status, _) = call(&s, &alice, Method::GET, "/repository/acme/app", None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = call(
        &s,
        &admin,
        Method::DELETE,
        "/organization/acme/members/alice",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (status, _) = call(&s, &alice, Method::GET, "/repository/acme/app", None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "alice lost her permission");
    let (_, team) = call(
        &s,
        &admin,
        Method::GET,
        "/organization/acme/team/devs/members",
        None,
    )
    .await;
    let left: Vec<&str> = team["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(left, ["acme+ci"]);
    let (status, _) = call(
        &s,
        &admin,
        Method::GET,
        "/organization/acme/members/alice",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    s.flush_audit().await;
    let kinds: Vec<String> = s.audit("acme").await.into_iter().map(|e| e.kind).collect();
    assert!(
        kinds.iter().any(|k| k == "org_remove_team_member"),
        "{kinds:?}"
    );

    // Robots and unknown names are not removable members; the only admin stays.
    let (status, _) = call(
        &s,
        &admin,
        Method::DELETE,
        "/organization/acme/members/acme+ci",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = call(
        &s,
        &admin,
        Method::DELETE,
        "/organization/acme/members/nobody",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = call(
        &s,
        &admin,
        Method::DELETE,
        "/organization/acme/members/admin",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(
        body,
        json!({"message": "Cannot remove user as they are the only organization admin"})
    );
    let (_, body) = call(&s, &admin, Method::GET, "/organization/acme/members", None).await;
    assert_eq!(names(&body["members"]), ["admin"]);
}
