//! Search and discovery (issue 17): `/api/v1/entities/{prefix}`, `/api/v1/find/repositories`
//! (checked against Quay's recorded answers) and `/api/v1/users/{username}`, with what each
//! caller may find.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::backend_tests;
use crate::common::quay::expect_like;
use crate::common::{Backend, TestServer};

backend_tests!(entities_and_repositories, user_information);

async fn get(s: &TestServer, token: Option<&str>, path: &str) -> Value {
    let (status, body) = s.call(token, Method::GET, path, None).await;
    assert_eq!(status, StatusCode::OK, "{path}: {body}");
    body
}

fn names(body: &Value) -> Vec<String> {
    body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            format!(
                "{}:{}",
                r["kind"].as_str().unwrap(),
                r["name"].as_str().unwrap()
            )
        })
        .collect()
}

async fn entities_and_repositories(b: Backend) {
    let s = TestServer::start(b).await;
    let admin = s.init_admin().await;
    s.create_org(&admin, "acme").await;
    let (_, _, walter) = s.user_with_token("w2user").await;
    let (_, _, wanda) = s.user_with_token("wanda").await;
    s.user("wally").await;
    for (method, path, body) in [
        (
            Method::PUT,
            "/organization/acme/team/webdevs",
            json!({"role": "member"}),
        ),
        (
            Method::PUT,
            "/organization/acme/team/webdevs/members/wanda",
            json!({}),
        ),
        (Method::PUT, "/organization/acme/robots/webbot", json!({})),
        (
            Method::POST,
            "/repository",
            json!({"namespace": "acme", "repository": "web-frontend", "visibility": "public", "description": "the site"}),
        ),
        (
            Method::POST,
            "/repository",
            json!({"namespace": "acme", "repository": "secret-backend", "visibility": "private", "description": "web api"}),
        ),
        (
            Method::POST,
            "/repository",
            json!({"namespace": "acme", "repository": "other", "visibility": "public", "description": ""}),
        ),
    ] {
        let (status, body) = s.call(Some(&admin), method, path, Some(body)).await;
        assert!(status.is_success(), "{path}: {status} {body}");
    }

    // Entities: Quay's shapes; users by prefix, case and spaces ignored.
    let r = s
        .as_bearer(&walter)
        .send(Method::GET, "/api/v1/entities/w2us")
        .await;
    let body = expect_like(r, "more-209-entities-user", &[]).await;
    assert_eq!(names(&body), ["user:w2user"]);
    let r = s
        .as_bearer(&walter)
        .send(Method::GET, "/api/v1/entities/zzznobody")
        .await;
    assert_eq!(
        expect_like(r, "more-211-entities-none", &[]).await,
        json!({"results": []})
    );
    let body = get(&s, Some(&walter), "/entities/W%20A").await;
    assert_eq!(names(&body), ["user:wally", "user:wanda"]);

    // Scoped to the organization: its robots and teams only for members, with membership.
    let scoped = "/entities/w?namespace=acme&includeTeams=true&includeOrgs=true";
    let body = get(&s, Some(&wanda), scoped).await;
    assert_eq!(
        names(&body),
        [
            "team:webdevs",
            "user:acme+webbot",
            "user:w2user",
            "user:wally",
            "user:wanda"
        ]
    );
    let is_member: Vec<bool> = body["results"].as_array().unwrap()[1..]
        .iter()
        .map(|r| r["is_org_member"].as_bool().unwrap())
        .collect();
    assert_eq!(is_member, [true, false, false, true]);
    let body = get(
        &s,
        Some(&wanda),
        "/entities/acme?namespace=acme&includeOrgs=true",
    )
    .await;
    assert_eq!(
        names(&body),
        Vec::<String>::new(),
        "the org only for its admins"
    );
    let body = get(
        &s,
        Some(&admin),
        "/entities/ac?namespace=acme&includeOrgs=true",
    )
    .await;
    assert_eq!(names(&body), ["org:acme"]);
    let body = get(&s, Some(&admin), "/entities/web?namespace=acme").await;
    assert_eq!(
        names(&body),
        ["user:acme+webbot"],
        "robots by their short name"
    );
    assert_eq!(body["results"][0]["is_robot"], true);
    let body = get(&s, Some(&walter), scoped).await;
    assert_eq!(
        names(&body),
        ["user:w2user", "user:wally", "user:wanda"],
        "no teams or robots for a non-member"
    );
    let body = get(&s, None, "/entities/acme?namespace=acme&includeTeams=true").await;
    assert_eq!(names(&body), Vec::<String>::new());

    // Repositories: by name or description, what the caller sees, Quay's page shape.
    let r = s
        .as_bearer(&walter)
        .send(Method::GET, "/api/v1/find/repositories?query=zzznothingzzz")
        .await;
    let body = expect_like(r, "more-203-find-repos-none", &[]).await;
    assert_eq!(
        body,
        json!({"results": [], "has_additional": false, "page": 1, "page_size": 10, "start_index": 0})
    );
    let found = |body: &Value| -> Vec<String> {
        body["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let body = get(&s, Some(&walter), "/find/repositories?query=WEB").await;
    assert_eq!(
        found(&body),
        ["web-frontend"],
        "private repositories stay hidden"
    );
    let body = get(
        &s,
        Some(&admin),
        "/find/repositories?query=web&includeUsage=true",
    )
    .await;
    assert_eq!(found(&body), ["secret-backend", "web-frontend"]);
    let first = &body["results"][0];
    assert_eq!(first["namespace"]["kind"], "organization");
    assert_eq!(first["namespace"]["href"], "/organization/acme");
    assert_eq!(first["href"], "/repository/acme/secret-backend");
    assert_eq!(first["is_public"], false);
    assert_eq!(first["stars"], 0);
    let body = get(&s, None, "/find/repositories?query=%25").await;
    assert_eq!(
        found(&body),
        Vec::<String>::new(),
        "% is a character, not a wildcard"
    );
    let body = get(&s, None, "/find/repositories?query=").await;
    assert_eq!(found(&body), ["other", "web-frontend"]);

    // Pages of ten.
    for i in 0..11 {
        let (status, _) = s
            .call(
                Some(&admin),
                Method::POST,
                "/repository",
                Some(json!({"namespace": "acme", "repository": format!("bulk{i:02}"), "visibility": "public", "description": ""})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
    }
    let body = get(&s, None, "/find/repositories?query=bulk").await;
    assert_eq!(
        (found(&body).len(), &body["has_additional"]),
        (10, &json!(true))
    );
    let body = get(&s, None, "/find/repositories?query=bulk&page=2").await;
    assert_eq!(found(&body), ["bulk10"]);
    assert_eq!(
        (&body["has_additional"], &body["start_index"]),
        (&json!(false), &json!(10))
    );
    let (status, _) = s
        .call(None, Method::GET, "/find/repositories?page=x", None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

/// `GET /users/{username}`: the user themself sees their own view, others the public one, a
/// superuser also `super_user: false`; organizations, robots and unknown names are 404.
async fn user_information(b: Backend) {
    let s = TestServer::start(b).await;
    let admin = s.init_admin().await;
    s.create_org(&admin, "acme").await;
    let (_, _, alice) = s.user_with_token("alice").await;
    let (_, _, bob) = s.user_with_token("bob").await;
    let (status, _) = s
        .call(
            Some(&admin),
            Method::PUT,
            "/organization/acme/robots/ci",
            Some(json!({})),
        )
        .await;
    assert!(status.is_success());

    let own = get(&s, Some(&alice), "/users/alice").await;
    let me = get(&s, Some(&alice), "/user/").await;
    assert_eq!(own, me, "the user's own view, as GET /user/");
    let public = get(&s, Some(&bob), "/users/alice").await;
    assert_eq!(
        public,
        json!({"anonymous": false, "username": "alice", "avatar": own["avatar"]})
    );
    assert_eq!(get(&s, None, "/users/alice").await, public);
    let by_superuser = get(&s, Some(&admin), "/users/alice").await;
    assert_eq!(by_superuser["super_user"], false);
    assert!(by_superuser.get("email").is_none(), "{by_superuser}");
    for name in ["acme", "acme+ci", "nobody"] {
        let (status, _) = s
            .call(Some(&bob), Method::GET, &format!("/users/{name}"), None)
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{name}");
    }
}
