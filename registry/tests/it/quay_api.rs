//! The rest of Quay's API (issue 17, part 2): the superuser's organizations, users paging and
//! registry size; `find/all`, `user/starred`, `app/{client_id}`, `registry/capabilities`,
//! `error/{error_type}`; transitive user permissions and the legacy repository tokens. Checked
//! against Quay's recorded answers where they exist, with Quay's scopes and refusals.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::backend_tests;
use crate::common::quay::{assert_quay_error, expect_like};
use crate::common::{Backend, Options, TestServer};

backend_tests!(
    superuser_views,
    search_and_public_information,
    transitive_permissions_and_legacy_tokens,
    user_notifications_paged,
    default_permissions_in_quay_order,
    mirror_health
);

/// Calls that must succeed, in order.
async fn setup(s: &TestServer, token: &str, calls: &[(Method, &str, Value)]) {
    for (method, path, body) in calls {
        let (status, answer) = s
            .call(Some(token), method.clone(), path, Some(body.clone()))
            .await;
        assert!(status.is_success(), "{method} {path}: {status} {answer}");
    }
}

/// An access token of `name` limited to `scopes`.
async fn scoped_token(s: &TestServer, name: &str, scopes: &str) -> String {
    let row = quayside::db::tenancy::namespaces::by_name(s.ctx().db.pool(), name)
        .await
        .unwrap()
        .unwrap();
    let user = quayside::service::UserRef {
        id: row.id,
        name: name.to_owned(),
        superuser: row.superuser,
    };
    quayside::service::tenancy::accounts::create_access_token(s.ctx(), &user, scopes)
        .await
        .unwrap()
}

/// Follows `next_page` from `first` (a path with `limit`), collecting `key`'s names.
async fn all_pages(s: &TestServer, token: &str, first: &str, key: &str) -> (Vec<String>, usize) {
    let mut names = Vec::new();
    let mut pages = 0;
    let mut path = first.to_owned();
    loop {
        let (status, body) = s.call(Some(token), Method::GET, &path, None).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        pages += 1;
        for item in body[key].as_array().unwrap() {
            names.push(item["name"].as_str().unwrap().to_owned());
        }
        match body["next_page"].as_str() {
            Some(next) => path = format!("{first}&next_page={next}"),
            None => break,
        }
        assert!(pages < 50, "paging does not end");
    }
    (names, pages)
}

async fn superuser_views(b: Backend) {
    // Quota management on, as in the recorded instance.
    let options = Options {
        yaml: "FEATURE_QUOTA_MANAGEMENT: true\n".into(),
        ..Options::default()
    };
    let s = TestServer::start_with(b, options).await;
    let admin = s.init_admin().await;
    let (_, _, walter) = s.user_with_token("walter").await;
    s.user("wanda").await;
    s.user("wally").await;
    for org in ["orga", "orgb", "orgc"] {
        s.create_org(&admin, org).await;
    }
    setup(
        &s,
        &admin,
        &[
            (Method::PUT, "/organization/orga/robots/bot", json!({})),
            (
                Method::POST,
                "/organization/orga/quota",
                json!({"limit_bytes": 104857600}),
            ),
        ],
    )
    .await;
    let (_, quotas) = s
        .call(Some(&admin), Method::GET, "/organization/orga/quota", None)
        .await;
    let quota_id = quotas[0]["id"].as_i64().unwrap();
    setup(
        &s,
        &admin,
        &[(
            Method::POST,
            &format!("/organization/orga/quota/{quota_id}/limit"),
            json!({"type": "Warning", "threshold_percent": 60}),
        )],
    )
    .await;

    // Users, paged as Quay pages them: `next_page` until the last page.
    let r = s
        .as_bearer(&admin)
        .send(Method::GET, "/api/v1/superuser/users/?limit=1")
        .await;
    let first = expect_like(r, "more-183-su-users-list-paged", &[]).await;
    assert_eq!(first["users"].as_array().unwrap().len(), 1);
    let (users, pages) = all_pages(&s, &admin, "/superuser/users/?limit=1", "users").await;
    assert_eq!(users, ["admin", "walter", "wanda", "wally"]);
    assert_eq!(pages, 4);
    let (users, pages) = all_pages(&s, &admin, "/superuser/users/?limit=3", "users").await;
    assert_eq!((users.len(), pages), (4, 2));
    // Without a limit: everything, no token.
    let (status, body) = s
        .call(Some(&admin), Method::GET, "/superuser/users/", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["users"].as_array().unwrap().len(), 4);
    assert!(body.get("next_page").is_none(), "{body}");
    for (path, message) in [
        (
            "/superuser/users/?limit=101",
            "Page limit cannot be above 100",
        ),
        (
            "/superuser/users/?limit=1&next_page=forged",
            "Invalid next_page token",
        ),
        (
            "/superuser/organizations/?limit=101",
            "Page limit cannot be above 100",
        ),
    ] {
        let (status, body) = s.call(Some(&admin), Method::GET, path, None).await;
        assert_quay_error(
            status,
            &body,
            StatusCode::BAD_REQUEST,
            "invalid_request",
            message,
        );
    }
    // A users token cannot be replayed on the organizations list.
    let users_token = first["next_page"].as_str().unwrap();
    let (status, _) = s
        .call(
            Some(&admin),
            Method::GET,
            &format!("/superuser/organizations/?limit=1&next_page={users_token}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Organizations: the recorded shape, and paged.
    let r = s
        .as_bearer(&admin)
        .send(Method::GET, "/api/v1/superuser/organizations/")
        .await;
    let body = expect_like(r, "more-193-su-orgs-list", &[]).await;
    assert_eq!(body["organizations"].as_array().unwrap().len(), 3);
    let (orgs, pages) = all_pages(
        &s,
        &admin,
        "/superuser/organizations/?limit=2",
        "organizations",
    )
    .await;
    assert_eq!(
        (orgs, pages),
        (vec!["orga".into(), "orgb".into(), "orgc".into()], 2)
    );

    // Renaming an organization renames its robots; its content follows.
    let pushed = s.as_admin().push_image("orga/app", "v1").await;
    let (status, body) = s
        .call(
            Some(&admin),
            Method::PUT,
            "/superuser/organizations/orga",
            Some(json!({"name": "orgrenamed"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["name"], "orgrenamed");
    assert!(body["quota_report"].is_object(), "{body}");
    let (status, _) = s
        .call(Some(&admin), Method::GET, "/organization/orga", None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = s
        .call(
            Some(&admin),
            Method::GET,
            "/organization/orgrenamed/robots/bot",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["name"], "orgrenamed+bot");
    let r = s
        .as_admin()
        .request(Method::GET, "/v2/orgrenamed/app/manifests/v1")
        .header("Accept", crate::common::oci::OCI_MANIFEST)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.bytes().await.unwrap().as_ref(),
        pushed.manifest.as_slice()
    );
    let r = s
        .as_admin()
        .send(Method::GET, "/v2/orga/app/manifests/v1")
        .await;
    assert!(r.status().is_client_error(), "{}", r.status());
    for (name, message) in [
        ("orgb", "Username orgb is already taken"),
        ("walter", "Username walter is already taken"),
    ] {
        let (status, body) = s
            .call(
                Some(&admin),
                Method::PUT,
                "/superuser/organizations/orgrenamed",
                Some(json!({ "name": name })),
            )
            .await;
        assert_quay_error(
            status,
            &body,
            StatusCode::BAD_REQUEST,
            "invalid_request",
            message,
        );
    }
    let (status, _) = s
        .call(
            Some(&admin),
            Method::PUT,
            "/superuser/organizations/orgrenamed",
            Some(json!({"name": "Bad Name!"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = s
        .call(
            Some(&admin),
            Method::PUT,
            "/superuser/organizations/nosuchorg",
            Some(json!({"name": "x2"})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Only superusers; and a superuser's token needs super:user.
    let limited = scoped_token(&s, "admin", "org:admin user:admin").await;
    for token in [&walter, &limited] {
        for (method, path, body) in [
            (Method::GET, "/superuser/organizations/", None),
            (Method::GET, "/superuser/users/?limit=1", None),
            (
                Method::PUT,
                "/superuser/organizations/orgb",
                Some(json!({"name": "stolen"})),
            ),
            (Method::DELETE, "/superuser/organizations/orgb", None),
            (Method::GET, "/superuser/registrysize/", None),
            (Method::POST, "/superuser/registrysize/", Some(json!({}))),
        ] {
            let (status, answer) = s.call(Some(token), method.clone(), path, body).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}: {answer}");
            assert_eq!(answer["error_type"], "insufficient_scope", "{answer}");
        }
    }

    // Deleting an organization.
    let (status, _) = s
        .call(
            Some(&admin),
            Method::DELETE,
            "/superuser/organizations/orgb",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = s
        .call(Some(&admin), Method::GET, "/organization/orgb", None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = s
        .call(
            Some(&admin),
            Method::DELETE,
            "/superuser/organizations/orgb",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Registry size: nothing calculated yet, as Quay answers; then the sum of stored blobs,
    // each counted once however many repositories hold it.
    let r = s
        .as_bearer(&admin)
        .send(Method::GET, "/api/v1/superuser/registrysize/")
        .await;
    let body = expect_like(r, "more-195-su-registrysize", &[]).await;
    assert_eq!(
        body,
        json!({"size_bytes": 0, "last_ran": null, "running": false, "queued": false})
    );
    let image = s.as_admin().push_image("admin/app", "v1").await;
    for blob in image.blobs() {
        s.as_admin().push_blob("admin/copy", blob).await;
    }
    // Every stored blob: this image's (stored once for both repositories) and `orga/app`'s.
    let expected: i64 = image
        .blobs()
        .chain(pushed.blobs())
        .map(|b| b.len() as i64)
        .sum();
    let before = s.ctx().now_ms();
    let r = s
        .as_bearer(&admin)
        .send(Method::POST, "/api/v1/superuser/registrysize/")
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let (status, body) = s
        .call(Some(&admin), Method::GET, "/superuser/registrysize/", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["size_bytes"], expected, "{body}");
    assert!(body["last_ran"].as_i64().unwrap() >= before, "{body}");
    assert_eq!(
        (&body["running"], &body["queued"]),
        (&json!(false), &json!(false))
    );
    // A calculation already running answers 202 and leaves the stored result alone.
    quayside::db::content::registry_size::start(s.ctx().db.pool(), before, 0)
        .await
        .unwrap();
    let r = s
        .as_bearer(&admin)
        .send(Method::POST, "/api/v1/superuser/registrysize/")
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let (_, body) = s
        .call(Some(&admin), Method::GET, "/superuser/registrysize/", None)
        .await;
    assert_eq!(
        (&body["running"], &body["size_bytes"]),
        (&json!(true), &json!(expected))
    );
    // One that died long ago is taken over.
    quayside::db::content::registry_size::start(s.ctx().db.pool(), 1, 0)
        .await
        .unwrap();
    sqlx::query("UPDATE registry_size SET started_ms = 1")
        .execute(s.ctx().db.pool())
        .await
        .unwrap();
    let r = s
        .as_bearer(&admin)
        .send(Method::POST, "/api/v1/superuser/registrysize/")
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);

    // The superuser build views: an unknown build is Quay's 404 (their answers for a real
    // build are checked in `builds::build_api_has_quays_shapes`); the archive of a build's logs
    // is not served.
    for view in ["build", "status", "logs"] {
        let (status, body) = s
            .call(
                Some(&admin),
                Method::GET,
                &format!("/superuser/0b2f4c1e-0000-4000-8000-000000000000/{view}"),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{view}: {body}");
    }
    let (status, body) = s
        .call(
            Some(&admin),
            Method::GET,
            "/superuser/0b2f4c1e-0000-4000-8000-000000000000/logs/archive",
            None,
        )
        .await;
    assert_quay_error(
        status,
        &body,
        StatusCode::NOT_IMPLEMENTED,
        "not_implemented",
        "Archived build logs is not implemented in this version of Quayside",
    );
}

fn kinds_and_names(body: &Value) -> Vec<String> {
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

async fn search_and_public_information(b: Backend) {
    let s = TestServer::start(b).await;
    let admin = s.init_admin().await;
    s.create_org(&admin, "acme").await;
    let (_, _, wanda) = s.user_with_token("wanda").await;
    let (_, _, walter) = s.user_with_token("walter").await;
    setup(
        &s,
        &admin,
        &[
            (Method::PUT, "/organization/acme/team/webdevs", json!({"role": "member"})),
            (Method::PUT, "/organization/acme/team/webdevs/members/wanda", json!({})),
            (Method::PUT, "/organization/acme/robots/webbot", json!({})),
            (
                Method::POST,
                "/repository",
                json!({"namespace": "acme", "repository": "web", "visibility": "public", "description": "the site"}),
            ),
            (
                Method::POST,
                "/repository",
                json!({"namespace": "acme", "repository": "webapi", "visibility": "private", "description": ""}),
            ),
            (
                Method::POST,
                "/repository",
                json!({"namespace": "acme", "repository": "private", "visibility": "private", "description": ""}),
            ),
        ],
    )
    .await;

    // find/all: the administrator finds the team, the robot, both repositories, best first.
    let (status, body) = s
        .call(Some(&admin), Method::GET, "/find/all?query=web", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let found = kinds_and_names(&body);
    assert_eq!(
        found,
        [
            "repository:web",
            "repository:webapi",
            "team:webdevs",
            "robot:acme+webbot"
        ],
        "{body:#}"
    );
    let scores: Vec<f64> = body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["score"].as_f64().unwrap())
        .collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");
    let results = body["results"].as_array().unwrap();
    let repo = &results[0];
    assert_eq!(repo["title"], "repo");
    assert_eq!(repo["href"], "/repository/acme/web");
    assert_eq!(repo["is_public"], true);
    assert_eq!(repo["namespace"]["kind"], "organization");
    let team = &results[2];
    assert_eq!(team["href"], "/organization/acme/teams/webdevs");
    assert_eq!(team["organization"]["name"], "acme");
    assert_eq!(team["avatar"]["kind"], "team");
    let robot = &results[3];
    assert_eq!(robot["short_name"], "webbot");
    assert_eq!(robot["avatar"], Value::Null);
    assert_eq!(
        robot["href"],
        "/organization/acme?tab=robots&showRobot=acme+webbot"
    );
    // A member of the team: its team and what it may read, no robots of the organization.
    let (_, body) = s
        .call(Some(&wanda), Method::GET, "/find/all?query=web", None)
        .await;
    assert_eq!(kinds_and_names(&body), ["repository:web", "team:webdevs"]);
    // Anyone: public repositories, and the namespaces holding one.
    let (status, body) = s.call(None, Method::GET, "/find/all?query=ac", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(kinds_and_names(&body), ["organization:acme"]);
    assert_eq!(body["results"][0]["href"], "/organization/acme");
    let (_, body) = s
        .call(Some(&walter), Method::GET, "/find/all?query=webapi", None)
        .await;
    assert_eq!(kinds_and_names(&body), Vec::<String>::new());
    let (_, body) = s.call(Some(&admin), Method::GET, "/find/all", None).await;
    assert_eq!(body, json!({"results": []}));
    let no_read = scoped_token(&s, "wanda", "user:read").await;
    let (status, body) = s
        .call(Some(&no_read), Method::GET, "/find/all?query=web", None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");

    // user/starred: Quay's star answers, then the list of what the user starred and may see.
    let r = s
        .as_bearer(&wanda)
        .request(Method::POST, "/api/v1/user/starred")
        .json(&json!({"namespace": "acme", "repository": "web"}))
        .send()
        .await
        .unwrap();
    expect_like(r, "more-205-star-create", &[]).await;
    setup(
        &s,
        &admin,
        &[(
            Method::PUT,
            "/repository/acme/private/permissions/user/wanda",
            json!({"role": "read"}),
        )],
    )
    .await;
    setup(
        &s,
        &wanda,
        &[(
            Method::POST,
            "/user/starred",
            json!({"namespace": "acme", "repository": "private"}),
        )],
    )
    .await;
    let (status, body) = s
        .call(Some(&wanda), Method::GET, "/user/starred", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({"repositories": [
            {"namespace": "acme", "name": "web", "description": "the site", "is_public": true},
            {"namespace": "acme", "name": "private", "description": "", "is_public": false},
        ]})
    );
    // Access taken away: the star stays but is not shown.
    let (status, _) = s
        .call(
            Some(&admin),
            Method::DELETE,
            "/repository/acme/private/permissions/user/wanda",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, body) = s
        .call(Some(&wanda), Method::GET, "/user/starred", None)
        .await;
    assert_eq!(body["repositories"].as_array().unwrap().len(), 1, "{body}");
    let r = s
        .as_bearer(&wanda)
        .send(Method::DELETE, "/api/v1/user/starred/acme/web")
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let (_, body) = s
        .call(Some(&wanda), Method::GET, "/user/starred", None)
        .await;
    assert_eq!(body, json!({"repositories": []}));
    let (status, body) = s.call(None, Method::GET, "/user/starred", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let (status, _) = s
        .call(Some(&no_read), Method::GET, "/user/starred", None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = s
        .call(
            Some(&wanda),
            Method::GET,
            "/user/starred?next_page=forged",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    // app/{client_id}: public information, for anyone.
    let (status, app) = s
        .call(
            Some(&admin),
            Method::POST,
            "/organization/acme/applications",
            Some(json!({"name": "ci", "description": "the CI", "application_uri": "http://ci.example"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{app}");
    let client_id = app["client_id"].as_str().unwrap();
    let (status, body) = s
        .call(None, Method::GET, &format!("/app/{client_id}"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["name"], "ci");
    assert_eq!(body["description"], "the CI");
    assert_eq!(body["uri"], "http://ci.example");
    assert_eq!(body["avatar"]["kind"], "app");
    assert_eq!(body["organization"]["name"], "acme");
    assert_eq!(
        body["organization"]["email"], "",
        "no email for outsiders: {body}"
    );
    assert_eq!(body["organization"]["is_admin"], false);
    assert_eq!(body["organization"]["teams"], json!({}));
    assert_eq!(body["organization"]["ordered_teams"], json!([]));
    assert!(body.get("client_secret").is_none() && !body.to_string().contains("secret"));
    let (_, body) = s
        .call(
            Some(&admin),
            Method::GET,
            &format!("/app/{client_id}"),
            None,
        )
        .await;
    assert_eq!(body["organization"]["email"], "acme@example.com");
    assert_eq!(body["organization"]["is_admin"], true);
    let (status, body) = s.call(None, Method::GET, "/app/nosuchclient", None).await;
    assert_quay_error(
        status,
        &body,
        StatusCode::NOT_FOUND,
        "not_found",
        "Not Found",
    );

    // registry/capabilities, for anyone.
    let (status, body) = s
        .call(None, Method::GET, "/registry/capabilities", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({"sparse_manifests": {"supported": false, "required_architectures": [], "optional_architectures_allowed": false}, "mirror_architectures": []})
    );

    // error/{error_type}: what an error body's `type` URL points at.
    let (status, err) = s
        .call(Some(&admin), Method::GET, "/app/nosuchclient", None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let url = err["type"].as_str().unwrap();
    let r = s.anonymous().send(Method::GET, url).await;
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body,
        json!({"type": url, "title": "not_found", "description": "The resource was not found."})
    );
    for kind in [
        "invalid_request",
        "invalid_token",
        "insufficient_scope",
        "not_implemented",
        "internal_error",
    ] {
        let (status, body) = s
            .call(None, Method::GET, &format!("/error/{kind}"), None)
            .await;
        assert_eq!(status, StatusCode::OK, "{kind}");
        assert_eq!(body["title"], kind);
        assert!(!body["description"].as_str().unwrap().is_empty());
    }
    let (status, body) = s
        .call(None, Method::GET, "/error/no_such_error", None)
        .await;
    assert_quay_error(
        status,
        &body,
        StatusCode::NOT_FOUND,
        "not_found",
        "Not Found",
    );
}

async fn transitive_permissions_and_legacy_tokens(b: Backend) {
    let s = TestServer::start(b).await;
    let admin = s.init_admin().await;
    s.create_org(&admin, "acme").await;
    let (_, _, wanda) = s.user_with_token("wanda").await;
    s.user("walter").await;
    setup(
        &s,
        &admin,
        &[
            (
                Method::POST,
                "/repository",
                json!({"namespace": "acme", "repository": "app", "visibility": "private", "description": ""}),
            ),
            (Method::PUT, "/organization/acme/team/devs", json!({"role": "member"})),
            (Method::PUT, "/organization/acme/team/ops", json!({"role": "member"})),
            (Method::PUT, "/organization/acme/team/devs/members/wanda", json!({})),
            (Method::PUT, "/organization/acme/team/ops/members/wanda", json!({})),
            (Method::PUT, "/repository/acme/app/permissions/team/devs", json!({"role": "write"})),
            (Method::PUT, "/repository/acme/app/permissions/team/ops", json!({"role": "admin"})),
            (Method::PUT, "/repository/acme/app/permissions/user/wanda", json!({"role": "read"})),
        ],
    )
    .await;
    let path = "/repository/acme/app/permissions/user/wanda/transitive";
    let (status, body) = s.call(Some(&admin), Method::GET, path, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({"permissions": [{"role": "read"}, {"role": "write"}, {"role": "admin"}]})
    );
    // Through teams only.
    let (status, _) = s
        .call(
            Some(&admin),
            Method::DELETE,
            "/repository/acme/app/permissions/user/wanda",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, body) = s.call(Some(&admin), Method::GET, path, None).await;
    assert_eq!(
        body,
        json!({"permissions": [{"role": "write"}, {"role": "admin"}]})
    );
    // Nothing, or no such user: Quay's 404.
    for user in ["walter", "nosuchuser", "acme+nobot"] {
        let (status, body) = s
            .call(
                Some(&admin),
                Method::GET,
                &format!("/repository/acme/app/permissions/user/{user}/transitive"),
                None,
            )
            .await;
        assert_quay_error(
            status,
            &body,
            StatusCode::NOT_FOUND,
            "not_found",
            "Not Found",
        );
    }
    // wanda administers the repository through `ops`; walter does not.
    let walter = scoped_token(&s, "walter", "repo:admin repo:read").await;
    let (status, _) = s.call(Some(&wanda), Method::GET, path, None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = s.call(Some(&walter), Method::GET, path, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");

    // Legacy repository tokens: Quay 3.18 answers 410 to an administrator.
    let handling = json!({"message": "Handling of access tokens is no longer supported"});
    for (method, path, body, expected) in [
        (
            Method::GET,
            "/repository/acme/app/tokens/",
            None,
            handling.clone(),
        ),
        (
            Method::POST,
            "/repository/acme/app/tokens/",
            Some(json!({"friendlyName": "ci"})),
            json!({"message": "Creation of access tokens is no longer supported"}),
        ),
        (
            Method::GET,
            "/repository/acme/app/tokens/somecode",
            None,
            handling.clone(),
        ),
        (
            Method::PUT,
            "/repository/acme/app/tokens/somecode",
            Some(json!({"role": "read"})),
            handling.clone(),
        ),
        (
            Method::DELETE,
            "/repository/acme/app/tokens/somecode",
            None,
            handling.clone(),
        ),
    ] {
        let (status, answer) = s
            .call(Some(&admin), method.clone(), path, body.clone())
            .await;
        assert_eq!(
            (status, &answer),
            (StatusCode::GONE, &expected),
            "{method} {path}"
        );
        // Non-administrators are refused before that.
        let (status, answer) = s.call(Some(&walter), method.clone(), path, body).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}: {answer}");
        assert_eq!(answer["error_type"], "insufficient_scope");
    }
    // Bodies Quay validates first.
    for (method, path, body) in [
        (Method::POST, "/repository/acme/app/tokens/", json!({})),
        (
            Method::PUT,
            "/repository/acme/app/tokens/somecode",
            json!({"role": "owner"}),
        ),
        (
            Method::PUT,
            "/repository/acme/app/tokens/somecode",
            json!({}),
        ),
    ] {
        let (status, answer) = s.call(Some(&admin), method.clone(), path, Some(body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{method} {path}: {answer}");
        assert_eq!(answer["error_type"], "invalid_request", "{answer}");
    }
}

/// `GET /user/notifications` pages as Quay does: `limit` (default 5), `page`, `additional`.
async fn user_notifications_paged(b: Backend) {
    let s = TestServer::start(b).await;
    s.init_admin().await;
    let (_, _, wanda) = s.user_with_token("wanda").await;
    let id = quayside::db::tenancy::namespaces::by_name(s.ctx().db.pool(), "wanda")
        .await
        .unwrap()
        .unwrap()
        .id;
    for i in 0..7 {
        let uuid = format!("00000000-0000-4000-8000-00000000000{i}");
        let metadata = json!({ "n": i }).to_string();
        quayside::db::operations::notifications::insert_user_notification(
            s.ctx().db.pool(),
            &quayside::db::operations::notifications::NewUserNotification {
                uuid: &uuid,
                account_id: id,
                kind: "repo_push",
                organization: None,
                metadata: &metadata,
            },
            1_000 + i,
        )
        .await
        .unwrap();
    }
    let numbers = |body: &Value| -> Vec<i64> {
        body["notifications"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["metadata"]["n"].as_i64().unwrap())
            .collect()
    };
    let (status, body) = s
        .call(Some(&wanda), Method::GET, "/user/notifications", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (numbers(&body), &body["additional"]),
        (vec![6, 5, 4, 3, 2], &json!(true))
    );
    let (_, body) = s
        .call(
            Some(&wanda),
            Method::GET,
            "/user/notifications?page=2",
            None,
        )
        .await;
    assert_eq!(
        (numbers(&body), &body["additional"]),
        (vec![1, 0], &json!(false))
    );
    let (_, body) = s
        .call(
            Some(&wanda),
            Method::GET,
            "/user/notifications?page=1&limit=7",
            None,
        )
        .await;
    assert_eq!(
        (numbers(&body).len(), &body["additional"]),
        (7, &json!(false))
    );
    let (_, body) = s
        .call(
            Some(&wanda),
            Method::GET,
            "/user/notifications?page=3&limit=3",
            None,
        )
        .await;
    assert_eq!(
        (numbers(&body), &body["additional"]),
        (vec![0], &json!(false))
    );
    for query in ["limit=0", "limit=101", "page=x"] {
        let (status, body) = s
            .call(
                Some(&wanda),
                Method::GET,
                &format!("/user/notifications?{query}"),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert_eq!(body["error_type"], "invalid_request");
    }
}

/// Default permissions list in creation order, as Quay lists them (recorded: more-225, more-229).
async fn default_permissions_in_quay_order(b: Backend) {
    let s = TestServer::start(b).await;
    let admin = s.init_admin().await;
    s.create_org(&admin, "w2org").await;
    s.user("w2user").await;
    setup(
        &s,
        &admin,
        &[(
            Method::PUT,
            "/organization/w2org/team/devs",
            json!({"role": "member"}),
        )],
    )
    .await;
    let r = s
        .as_bearer(&admin)
        .send(Method::GET, "/api/v1/organization/w2org/prototypes")
        .await;
    expect_like(r, "more-225-prototypes-list-empty", &[]).await;
    setup(
        &s,
        &admin,
        &[
            (
                Method::POST,
                "/organization/w2org/prototypes",
                json!({"role": "read", "delegate": {"name": "w2user", "kind": "user"}, "activating_user": {"name": "admin"}}),
            ),
            (
                Method::POST,
                "/organization/w2org/prototypes",
                json!({"role": "write", "delegate": {"name": "devs", "kind": "team"}}),
            ),
        ],
    )
    .await;
    let r = s
        .as_bearer(&admin)
        .send(Method::GET, "/api/v1/organization/w2org/prototypes")
        .await;
    let body = expect_like(r, "more-229-prototypes-list", &[]).await;
    let recorded = crate::common::quay::recorded("more-229-prototypes-list").body;
    let order = |v: &Value| -> Vec<(String, String)> {
        v["prototypes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p["delegate"]["kind"].as_str().unwrap().to_owned(),
                    p["role"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    assert_eq!(order(&body), order(&recorded));
    assert_eq!(body["prototypes"][1]["activating_user"], Value::Null);
}

/// `GET /repository/mirror/health` and `/superuser/mirror/health`: counts, issues, 503 when
/// more than a fifth of the mirrors that ran are failing, who may look.
async fn mirror_health(b: Backend) {
    let options = Options {
        yaml: "FEATURE_REPO_MIRROR: true\nSSRF_ALLOWED_HOSTS: [127.0.0.1]\n".into(),
        ..Options::default()
    };
    let s = TestServer::start_with(b, options).await;
    let admin = s.init_admin().await;
    s.create_org(&admin, "w2org").await;
    let (_, _, member) = s.user_with_token("member").await;
    let (_, _, stranger) = s.user_with_token("stranger").await;
    setup(
        &s,
        &admin,
        &[
            (Method::PUT, "/organization/w2org/robots/bot", json!({})),
            (
                Method::PUT,
                "/organization/w2org/team/readers",
                json!({"role": "member"}),
            ),
            (
                Method::PUT,
                "/organization/w2org/team/readers/members/member",
                json!({}),
            ),
        ],
    )
    .await;
    let mut config = crate::common::quay::recorded("more-117-mirror-create-dup").request_body;
    config["external_reference"] = json!("127.0.0.1:5999/library/hello");
    for repo in ["m1", "m2", "m3"] {
        setup(
            &s,
            &admin,
            &[
                (
                    Method::POST,
                    "/repository",
                    json!({"namespace": "w2org", "repository": repo, "visibility": "private", "description": ""}),
                ),
                (Method::POST, &format!("/repository/w2org/{repo}/mirror"), config.clone()),
                (
                    Method::PUT,
                    &format!("/repository/w2org/{repo}/changestate"),
                    json!({"state": "MIRROR"}),
                ),
            ],
        )
        .await;
    }
    let set = |repo: &'static str, status: &'static str, retries: i64| {
        let pool = s.ctx().db.pool().clone();
        async move {
            sqlx::query(
                "UPDATE repo_mirror SET sync_status = $1, sync_retries_remaining = $2 \
                 WHERE repository_id = (SELECT r.id FROM repository r JOIN namespace n \
                 ON n.id = r.namespace_id WHERE n.name = 'w2org' AND r.name = $3)",
            )
            .bind(status)
            .bind(retries)
            .bind(repo)
            .execute(&pool)
            .await
            .unwrap();
        }
    };
    set("m1", "FAIL", 0).await;
    set("m2", "SUCCESS", 3).await;

    let r = s
        .as_bearer(&admin)
        .send(Method::GET, "/api/v1/repository/mirror/health")
        .await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        r.headers()["cache-control"],
        "no-cache, no-store, must-revalidate"
    );
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["healthy"], false);
    assert_eq!(
        body["repositories"],
        json!({"total": 3, "syncing": 0, "completed": 1, "failed": 1, "never_run": 1})
    );
    assert_eq!(body["workers"]["status"], "degraded");
    let issues: Vec<(String, String)> = body["issues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["severity"].as_str().unwrap().into(),
                i["message"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        issues,
        [
            (
                "critical".to_owned(),
                "50.0% of repositories are failing (threshold: 20.0%)".to_owned()
            ),
            (
                "warning".to_owned(),
                "Repository w2org/m3 has never been synced".to_owned()
            ),
            (
                "error".to_owned(),
                "Repository w2org/m1 has exhausted all retry attempts".to_owned()
            ),
        ]
    );
    assert!(body["last_check"].as_str().unwrap().ends_with('Z'));

    // Recovered: healthy, 200; the detailed view pages the mirrors.
    set("m1", "SUCCESS", 3).await;
    let (status, body) = s
        .call(
            Some(&member),
            Method::GET,
            "/repository/mirror/health?namespace=w2org&detailed=true&limit=2",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["healthy"], true);
    assert_eq!(body["issues"].as_array().unwrap().len(), 1, "{body}");
    let details = body["repositories"]["details"].as_array().unwrap();
    assert_eq!(details.len(), 2);
    assert_eq!(
        details[0],
        json!({"namespace": "w2org", "repository": "m1", "sync_status": "SUCCESS", "is_enabled": true, "last_sync": null, "retries_remaining": 3})
    );
    assert_eq!(
        body["repositories"]["pagination"],
        json!({"limit": 2, "offset": 0, "has_more": true})
    );
    let (_, body) = s
        .call(
            Some(&member),
            Method::GET,
            "/repository/mirror/health?namespace=w2org&detailed=true&limit=2&offset=2",
            None,
        )
        .await;
    assert_eq!(body["repositories"]["details"][0]["repository"], "m3");
    assert_eq!(body["repositories"]["pagination"]["has_more"], false);

    // The superuser's summary names no repository.
    let (status, body) = s
        .call(Some(&admin), Method::GET, "/superuser/mirror/health", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["issues"], json!([]));
    assert_eq!(body["repositories"]["total"], 3);
    assert!(body["repositories"].get("details").is_none());

    // Who may look.
    for (token, path, expected) in [
        (
            Some(&stranger),
            "/repository/mirror/health?namespace=w2org",
            StatusCode::FORBIDDEN,
        ),
        (
            Some(&member),
            "/repository/mirror/health",
            StatusCode::FORBIDDEN,
        ),
        (
            Some(&member),
            "/superuser/mirror/health",
            StatusCode::FORBIDDEN,
        ),
        (
            Some(&admin),
            "/repository/mirror/health?namespace=nosuch",
            StatusCode::NOT_FOUND,
        ),
        (None, "/repository/mirror/health", StatusCode::UNAUTHORIZED),
    ] {
        let (status, body) = s
            .call(token.map(String::as_str), Method::GET, path, None)
            .await;
        assert_eq!(status, expected, "{path}: {body}");
        assert!(body["error_type"].is_string(), "{body}");
    }
    let (status, body) = s
        .call(
            Some(&stranger),
            Method::GET,
            "/repository/mirror/health?namespace=stranger",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["repositories"]["total"], 0);
}
