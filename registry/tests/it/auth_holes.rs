//! Holes in authentication and authorization (issue 15 items 4 to 8): registry tokens bound to
//! a live account and to this registry's audience, a single first superuser, default-permission
//! delegates validated like any other, and password hashing bounded under a flood of bad logins.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::backend_tests;
use crate::common::*;

backend_tests!(
    token_of_a_deleted_user_does_not_serve_a_new_user_of_that_name,
    token_of_a_disabled_user_or_deleted_robot_is_refused,
    tokens_are_issued_and_accepted_only_for_this_registry,
    concurrent_initialize_creates_one_superuser,
    default_permissions_refuse_another_organizations_robot,
    a_flood_of_bad_logins_is_bounded_and_does_not_lock_out,
    zero_config_secret_lives_in_a_private_file_not_the_database,
);

/// Issue 15 item 4: a token names its account by id; a new account of the same name is not it.
async fn token_of_a_deleted_user_does_not_serve_a_new_user_of_that_name(b: Backend) {
    let s = TestServer::start(b).await;
    let admin = s.init_admin().await;
    let (alice, alice_pw) = s.user("alice").await;
    s.as_basic(&alice, &alice_pw)
        .push_image("alice/app", "v1")
        .await;
    let old = s
        .token(
            Some((&alice, &alice_pw)),
            &["repository:alice/app:pull,push"],
        )
        .await;
    assert_eq!(
        s.as_bearer(&old)
            .send(Method::GET, "/v2/alice/app/tags/list")
            .await
            .status(),
        StatusCode::OK
    );

    let (status, body) = s
        .call(
            Some(&admin),
            Method::DELETE,
            &format!("/superuser/users/{alice}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    // Someone else signs up as "alice" and pushes a private repository of the same name.
    quayside::service::tenancy::accounts::create_user(
        s.ctx(),
        "alice",
        "new-alice-password1",
        Some("new-alice@example.com"),
        false,
    )
    .await
    .unwrap();
    s.as_basic("alice", "new-alice-password1")
        .push_image("alice/app", "secret")
        .await;

    // The old token neither reads nor writes the new user's repository.
    expect_error(
        s.as_bearer(&old)
            .send(Method::GET, "/v2/alice/app/manifests/secret")
            .await,
        StatusCode::UNAUTHORIZED,
        "UNAUTHORIZED",
    )
    .await;
    let r = s
        .as_bearer(&old)
        .send(Method::POST, "/v2/alice/app/blobs/uploads/")
        .await;
    expect_error(r, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;
    expect_error(
        s.as_bearer(&old).send(Method::GET, "/v2/").await,
        StatusCode::UNAUTHORIZED,
        "UNAUTHORIZED",
    )
    .await;
    // The new user's own token works.
    let new = s
        .token(
            Some(("alice", "new-alice-password1")),
            &["repository:alice/app:pull"],
        )
        .await;
    assert_eq!(
        s.as_bearer(&new)
            .send(Method::GET, "/v2/alice/app/manifests/secret")
            .await
            .status(),
        StatusCode::OK
    );
}

/// Issue 15 item 4: disabling a user (or deleting a robot) ends its tokens at once, not at
/// their expiry an hour later.
async fn token_of_a_disabled_user_or_deleted_robot_is_refused(b: Backend) {
    let s = TestServer::start(b).await;
    let admin = s.init_admin().await;
    let (bob, bob_pw) = s.user("bob").await;
    s.as_basic(&bob, &bob_pw).push_image("bob/app", "v1").await;
    let t = s
        .token(Some((&bob, &bob_pw)), &["repository:bob/app:pull"])
        .await;
    let manifest = "/v2/bob/app/manifests/v1";
    assert_eq!(
        s.as_bearer(&t).send(Method::GET, manifest).await.status(),
        StatusCode::OK
    );
    let (status, body) = s
        .call(
            Some(&admin),
            Method::PUT,
            &format!("/superuser/users/{bob}"),
            Some(json!({ "enabled": false })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    expect_error(
        s.as_bearer(&t).send(Method::GET, manifest).await,
        StatusCode::UNAUTHORIZED,
        "UNAUTHORIZED",
    )
    .await;
    // Enabled again, the same token is good until it expires.
    let (status, _) = s
        .call(
            Some(&admin),
            Method::PUT,
            &format!("/superuser/users/{bob}"),
            Some(json!({ "enabled": true })),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        s.as_bearer(&t).send(Method::GET, manifest).await.status(),
        StatusCode::OK
    );

    // A robot's token ends with the robot.
    s.create_org(&admin, "org").await;
    let (status, robot) = s
        .call(
            Some(&admin),
            Method::PUT,
            "/organization/org/robots/ci",
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{robot}");
    let robot_secret = robot["token"].as_str().unwrap().to_owned();
    let rt = s.token(Some(("org+ci", &robot_secret)), &[]).await;
    assert_eq!(
        s.as_bearer(&rt).send(Method::GET, "/v2/").await.status(),
        StatusCode::OK
    );
    let (status, _) = s
        .call(
            Some(&admin),
            Method::DELETE,
            "/organization/org/robots/ci",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    expect_error(
        s.as_bearer(&rt).send(Method::GET, "/v2/").await,
        StatusCode::UNAUTHORIZED,
        "UNAUTHORIZED",
    )
    .await;
    // A robot of the same name created afterwards is another account.
    let (status, _) = s
        .call(
            Some(&admin),
            Method::PUT,
            "/organization/org/robots/ci",
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    expect_error(
        s.as_bearer(&rt).send(Method::GET, "/v2/").await,
        StatusCode::UNAUTHORIZED,
        "UNAUTHORIZED",
    )
    .await;
}

/// Issue 15 item 5: the token server mints tokens only for its own service name, and `/v2`
/// accepts only those.
async fn tokens_are_issued_and_accepted_only_for_this_registry(b: Backend) {
    let s = TestServer::start(b).await;
    s.init_admin().await;
    // The challenge names the service the token server issues for.
    let r = s.anonymous().send(Method::GET, "/v2/").await;
    let challenge = r.headers()["www-authenticate"].to_str().unwrap().to_owned();
    assert!(
        challenge.ends_with(&format!("service=\"{}\"", s.host)),
        "{challenge}"
    );
    assert_eq!(s.ctx().registry_service(), s.host);

    for query in [
        vec![("service", "anything")],
        vec![("service", "other-registry.example.com")],
        vec![("service", "")],
    ] {
        let r = s
            .client
            .get(format!("{}/v2/auth", s.url))
            .query(&query)
            .basic_auth(ADMIN, Some(ADMIN_PASSWORD))
            .send()
            .await
            .unwrap();
        let body = expect_error(r, StatusCode::BAD_REQUEST, "UNSUPPORTED").await;
        assert!(
            body["errors"][0]["message"]
                .as_str()
                .unwrap()
                .contains(&s.host),
            "{body}"
        );
    }
    let r = s
        .client
        .post(format!("{}/v2/auth", s.url))
        .form(&[
            ("grant_type", "password"),
            ("username", ADMIN),
            ("password", ADMIN_PASSWORD),
            ("service", "anything"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_request");

    // With no service, or with the registry's own, a token is issued and accepted.
    let r = s
        .client
        .get(format!("{}/v2/auth", s.url))
        .basic_auth(ADMIN, Some(ADMIN_PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let t = r.json::<Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        s.as_bearer(&t).send(Method::GET, "/v2/").await.status(),
        StatusCode::OK
    );

    // A well-signed token for another audience is refused.
    let row = quayside::db::tenancy::namespaces::by_name(s.ctx().db.pool(), ADMIN)
        .await
        .unwrap()
        .unwrap();
    let admin = quayside::service::UserRef {
        id: row.id,
        name: ADMIN.into(),
        superuser: true,
    };
    let foreign = s
        .ctx()
        .jwt
        .issue(
            &s.ctx().db,
            quayside::service::access::jwt::Subject::User(&admin),
            vec![],
            "anything",
            s.ctx().now_ms() / 1000,
        )
        .await
        .unwrap();
    expect_error(
        s.as_bearer(&foreign).send(Method::GET, "/v2/").await,
        StatusCode::UNAUTHORIZED,
        "UNAUTHORIZED",
    )
    .await;
}

/// Issue 15 item 6: of concurrent first-user bootstraps exactly one wins (a singleton row's
/// primary key decides); the others get Quay's answer for an initialized registry.
async fn concurrent_initialize_creates_one_superuser(b: Backend) {
    let s = TestServer::start(b).await;
    let url = format!("{}/api/v1/user/initialize", s.url);
    let calls = (0..10).map(|i| {
        let client = s.client.clone();
        let url = url.clone();
        async move {
            let r = client
                .post(&url)
                .json(&json!({
                    "username": format!("admin{i}"),
                    "password": "first-password1",
                    "email": format!("admin{i}@example.com"),
                    "access_token": true,
                }))
                .send()
                .await
                .unwrap();
            (r.status(), r.json::<Value>().await.unwrap())
        }
    });
    let results = futures_util::future::join_all(calls).await;
    let winners: Vec<&Value> = results
        .iter()
        .filter(|(status, _)| *status == StatusCode::OK)
        .map(|(_, body)| body)
        .collect();
    assert_eq!(winners.len(), 1, "{results:?}");
    for (status, body) in results.iter().filter(|(st, _)| *st != StatusCode::OK) {
        assert_eq!(*status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(
            body["message"], "Cannot initialize user in a non-empty database",
            "{body}"
        );
    }
    let users = quayside::db::tenancy::namespaces::count_users(s.ctx().db.pool())
        .await
        .unwrap();
    assert_eq!(users, 1);
    // The winner is a working superuser.
    let token = winners[0]["access_token"].as_str().unwrap();
    let (status, body) = s
        .call(Some(token), Method::GET, "/superuser/users/", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // A later call is refused the same way.
    let r = s
        .client
        .post(&url)
        .json(&json!({"username": "late", "password": "first-password1", "email": "l@example.com"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}

/// Issue 15 item 7: a default permission may delegate only to a user or to a robot of its own
/// organization, the same rule as direct permissions and team membership.
async fn default_permissions_refuse_another_organizations_robot(b: Backend) {
    let s = TestServer::start(b).await;
    let admin = s.init_admin().await;
    s.create_org(&admin, "acme").await;
    s.create_org(&admin, "other").await;
    for robot in [
        "/organization/acme/robots/ci",
        "/organization/other/robots/spy",
    ] {
        let (status, body) = s
            .call(Some(&admin), Method::PUT, robot, Some(json!({})))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let (status, _) = s
        .call(
            Some(&admin),
            Method::PUT,
            "/organization/acme/team/writers",
            Some(json!({"role": "member"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = s.call(Some(&admin), Method::POST, "/repository", Some(json!({"namespace": "acme", "repository": "first", "visibility": "private", "description": ""}))).await;
    assert_eq!(status, StatusCode::CREATED);

    // Every route that grants access refuses the foreign robot.
    let (status, body) = s
        .call(
            Some(&admin),
            Method::POST,
            "/organization/acme/prototypes",
            Some(json!({"role": "write", "delegate": {"name": "other+spy", "kind": "user"}})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body.to_string().contains("Cannot add robot other+spy"),
        "{body}"
    );
    let (status, body) = s
        .call(
            Some(&admin),
            Method::PUT,
            "/repository/acme/first/permissions/user/other+spy",
            Some(json!({"role": "write"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = s
        .call(
            Some(&admin),
            Method::PUT,
            "/organization/acme/team/writers/members/other+spy",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    // An unknown delegate is refused too; the organization's own robot is accepted.
    let (status, _) = s
        .call(
            Some(&admin),
            Method::POST,
            "/organization/acme/prototypes",
            Some(json!({"role": "write", "delegate": {"name": "acme+nobody", "kind": "user"}})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, body) = s
        .call(
            Some(&admin),
            Method::POST,
            "/organization/acme/prototypes",
            Some(json!({"role": "write", "delegate": {"name": "acme+ci", "kind": "user"}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, list) = s
        .call(
            Some(&admin),
            Method::GET,
            "/organization/acme/prototypes",
            None,
        )
        .await;
    assert_eq!(list["prototypes"].as_array().unwrap().len(), 1, "{list}");

    // A new repository gets the own robot's default permission, and nothing for the spy.
    let (status, _) = s.call(Some(&admin), Method::POST, "/repository", Some(json!({"namespace": "acme", "repository": "second", "visibility": "private", "description": ""}))).await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, perms) = s
        .call(
            Some(&admin),
            Method::GET,
            "/repository/acme/second/permissions/user/",
            None,
        )
        .await;
    assert_eq!(perms["permissions"]["acme+ci"]["role"], "write", "{perms}");
    assert!(perms["permissions"].get("other+spy").is_none(), "{perms}");
}

/// Issue 15 item 8: argon2 runs at most `bound()` at once however many bad logins arrive; a
/// flooding client is refused with 429 beyond its share, while another client's correct login
/// goes through; repeating the same wrong password costs no argon2 and locks no one out.
async fn a_flood_of_bad_logins_is_bounded_and_does_not_lock_out(b: Backend) {
    use quayside::service::access::passwords;
    let s = TestServer::start(b).await;
    let admin = s.init_admin().await;
    let (alice, alice_pw) = s.user("alice").await;
    let (bob, bob_pw) = s.user("bob").await;
    let auth_url = format!("{}/v2/auth", s.url);

    // The attacker connects from another loopback address than the real user.
    let attacker = reqwest::Client::builder()
        .local_address(Some("127.0.0.2".parse().unwrap()))
        .build()
        .unwrap();
    // 100 connections keep sending distinct wrong passwords for Alice until told to stop.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flood = (0..100).map(|i| {
        let attacker = attacker.clone();
        let url = auth_url.clone();
        let alice = alice.clone();
        let stop = stop.clone();
        async move {
            let mut seen = Vec::new();
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                n += 1;
                let r = attacker
                    .get(&url)
                    .basic_auth(&alice, Some(format!("wrong-password-{i}-{n}")))
                    .send()
                    .await
                    .unwrap();
                let status = r.status();
                seen.push((status, r.json::<Value>().await.unwrap_or(Value::Null)));
            }
            seen
        }
    });
    let flood = tokio::spawn(futures_util::future::join_all(flood));
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    for _ in 0..3 {
        let real = s
            .client
            .get(&auth_url)
            .basic_auth(&alice, Some(&alice_pw))
            .send()
            .await
            .unwrap();
        assert_eq!(
            real.status(),
            StatusCode::OK,
            "a correct login during the flood"
        );
        s.ctx().auth_cache.clear().await;
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let results: Vec<(StatusCode, Value)> = flood.await.unwrap().into_iter().flatten().collect();

    let refused: Vec<&Value> = results
        .iter()
        .filter(|(st, _)| *st == StatusCode::TOO_MANY_REQUESTS)
        .map(|(_, body)| body)
        .collect();
    for (status, body) in &results {
        assert!(
            *status == StatusCode::UNAUTHORIZED || *status == StatusCode::TOO_MANY_REQUESTS,
            "{status} {body}"
        );
    }
    assert!(!refused.is_empty(), "the flood is refused beyond its share");
    assert_eq!(error_code(refused[0]), "TOOMANYREQUESTS");
    let (running, max_running, _) = passwords::hashing_gauges();
    assert!(
        max_running <= passwords::bound(),
        "{max_running} argon2 at once, bound {}",
        passwords::bound()
    );
    assert!(max_running >= 1);
    assert_eq!(running, 0);

    // The gauges are on /metrics.
    let metrics = s
        .anonymous()
        .send(Method::GET, "/metrics")
        .await
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("\nquayside_password_hashes_in_progress 0\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("\nquayside_password_hashes_total "),
        "{metrics}"
    );

    // One client's parallel requests with the same login cost one argon2, and none is refused.
    s.ctx().auth_cache.clear().await;
    let (_, _, before) = passwords::hashing_gauges();
    let parallel = (0..16).map(|_| {
        s.as_basic(&alice, &alice_pw)
            .request(Method::GET, "/v2/")
            .send()
    });
    for r in futures_util::future::join_all(parallel).await {
        assert_eq!(r.unwrap().status(), StatusCode::OK);
    }
    let (_, _, after) = passwords::hashing_gauges();
    assert_eq!(after - before, 1);

    // The same wrong password again and again runs argon2 once.
    let (_, _, runs_before) = passwords::hashing_gauges();
    for _ in 0..20 {
        let r = s
            .as_basic(&bob, "not-bobs-password")
            .send(Method::GET, "/v2/")
            .await;
        expect_error(r, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;
    }
    let (_, _, runs_after) = passwords::hashing_gauges();
    assert_eq!(runs_after - runs_before, 1);
    // ... and does not lock Bob out.
    assert_eq!(
        s.as_basic(&bob, &bob_pw)
            .send(Method::GET, "/v2/")
            .await
            .status(),
        StatusCode::OK
    );
    // A wrong password remembered as wrong is accepted once it becomes the password.
    let (status, body) = s
        .call(
            Some(&admin),
            Method::PUT,
            &format!("/superuser/users/{bob}"),
            Some(json!({ "password": "not-bobs-password" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        s.as_basic(&bob, "not-bobs-password")
            .send(Method::GET, "/v2/")
            .await
            .status(),
        StatusCode::OK
    );
}

/// Issue 15 item 9: without `SECRET_KEY` the installation secret is a 0600 file in the data
/// directory, never a row of the database it protects; a secret an older release stored in the
/// database is moved to the file, so what it signed stays valid.
async fn zero_config_secret_lives_in_a_private_file_not_the_database(b: Backend) {
    use quayside::db::operations::settings;
    use std::os::unix::fs::PermissionsExt;
    let mut s = TestServer::start(b).await;
    s.init_admin().await;
    let token = s.token(Some((ADMIN, ADMIN_PASSWORD)), &[]).await;
    let file = s.data_dir().join(quayside::server::SECRET_FILE);
    let mode = |f: &std::path::Path| std::fs::metadata(f).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&file), 0o600);
    let secret = std::fs::read_to_string(&file).unwrap().trim().to_owned();
    assert!(secret.len() >= 40, "{secret}");
    assert_eq!(
        settings::get(s.ctx().db.pool(), "secret_key")
            .await
            .unwrap(),
        None
    );

    // The same secret after a restart: tokens signed before stay valid.
    s.restart().await;
    assert_eq!(
        s.as_bearer(&token).send(Method::GET, "/v2/").await.status(),
        StatusCode::OK
    );

    // An older release's database held the secret: it moves to the file and leaves the database.
    settings::put(s.ctx().db.pool(), "secret_key", &secret)
        .await
        .unwrap();
    s.stop().await;
    std::fs::remove_file(&file).unwrap();
    s.restart().await;
    assert_eq!(std::fs::read_to_string(&file).unwrap().trim(), secret);
    assert_eq!(mode(&file), 0o600);
    assert_eq!(
        settings::get(s.ctx().db.pool(), "secret_key")
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        s.as_bearer(&token).send(Method::GET, "/v2/").await.status(),
        StatusCode::OK
    );

    // A file left readable by others is made private again.
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    s.restart().await;
    assert_eq!(mode(&file), 0o600);
    assert_eq!(
        s.as_bearer(&token).send(Method::GET, "/v2/").await.status(),
        StatusCode::OK
    );
}
