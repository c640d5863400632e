//! Keyless robot logins: an ID token from a trusted OIDC issuer (served on loopback with
//! generated keys) is exchanged for a one-hour robot token.

use std::sync::atomic::Ordering;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use quayside::service::Clock;

use crate::backend_tests;
use crate::common::oidc::{Alg, Issuer};
use crate::common::*;

backend_tests!(federated_robot_tokens);

async fn exchange(s: &TestServer, robot: &str, id_token: &str) -> (StatusCode, Value) {
    let r = s
        .client
        .get(format!("{}/oauth2/federation/robot/token", s.url))
        .basic_auth(robot, Some(id_token))
        .send()
        .await
        .unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn federated_robot_tokens(b: Backend) {
    let issuer = Issuer::start().await;
    let other_issuer = Issuer::start().await;
    let s = TestServer::start(b).await;
    let token = s.init_admin().await;
    s.call(
        Some(&token),
        Method::POST,
        "/organization/",
        Some(json!({"name": "fed-test", "email": "fed@example.com"})),
    )
    .await;
    s.as_admin().push_image("fed-test/allowed", "v1").await;
    s.as_admin().push_image("fed-test/other", "v1").await;
    s.call(
        Some(&token),
        Method::PUT,
        "/organization/fed-test/robots/robot1",
        None,
    )
    .await;
    s.api(&token)
        .set_user_permission("fed-test", "allowed", "fed-test+robot1", "read")
        .await
        .unwrap();
    let now = || s.clock.now_ms() / 1000;
    let subject = "449e14f8-9eb5-4d59-a63e-b7a77c75f770";

    // Not configured yet.
    let (status, body) = exchange(
        &s,
        "fed-test+robot1",
        &issuer.id_token(Alg::Es256, subject, now()),
    )
    .await;
    assert_eq!(
        (status, body),
        (
            StatusCode::UNAUTHORIZED,
            json!({"error": "Robot does not have federated login configured"})
        )
    );

    // Configure; invalid configurations are refused.
    let url = "/organization/fed-test/robots/robot1/federation";
    let (status, body) = s
        .call(
            Some(&token),
            Method::POST,
            url,
            Some(json!([{"issuer": "not-a-url", "subject": "x"}])),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["detail"], "Issuer must be a URL (http:// or https://)");
    let (status, body) = s
        .call(
            Some(&token),
            Method::POST,
            url,
            Some(json!([{"issuer": issuer.url, "subject": ""}])),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body["detail"],
        "Missing one or more required fields (issuer, subject)"
    );
    let config = json!([{"issuer": issuer.url, "subject": subject}]);
    let (status, body) = s
        .call(Some(&token), Method::POST, url, Some(config.clone()))
        .await;
    assert_eq!((status, body), (StatusCode::OK, config.clone()));
    let (_, body) = s.call(Some(&token), Method::GET, url, None).await;
    assert_eq!(body, config);

    // ES256 and RS256 ID tokens are exchanged for a robot token valid one hour.
    for alg in [Alg::Es256, Alg::Rs256] {
        let (status, body) =
            exchange(&s, "fed-test+robot1", &issuer.id_token(alg, subject, now())).await;
        assert_eq!(status, StatusCode::OK, "{alg:?}: {body}");
        let robot_token = body["token"].as_str().unwrap().to_owned();
        // The robot logs in with it: pulls what it may, is refused elsewhere.
        let t = s
            .token(
                Some(("fed-test+robot1", &robot_token)),
                &[
                    "repository:fed-test/allowed:pull",
                    "repository:fed-test/other:pull",
                ],
            )
            .await;
        assert_eq!(
            s.as_bearer(&t)
                .send(Method::GET, "/v2/fed-test/allowed/manifests/v1")
                .await
                .status(),
            StatusCode::OK
        );
        let r = s
            .as_bearer(&t)
            .send(Method::GET, "/v2/fed-test/other/manifests/v1")
            .await;
        let body = expect_error(r, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;
        assert_eq!(
            body["errors"][0]["message"],
            "access to the requested resource is not authorized"
        );
        // It is the robot's token only.
        let r = s
            .client
            .get(format!("{}/v2/auth", s.url))
            .basic_auth("fed-test+other", Some(&robot_token))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            s.as_bearer(&robot_token)
                .send(Method::GET, "/v2/")
                .await
                .status(),
            StatusCode::UNAUTHORIZED
        );
    }
    // The keys were fetched once and cached.
    assert_eq!(issuer.jwks_fetches.load(Ordering::SeqCst), 1);

    // Refusals: wrong subject, untrusted issuer, expired, forged signature, not a JWT, not a robot.
    let (status, body) = exchange(
        &s,
        "fed-test+robot1",
        &issuer.id_token(Alg::Es256, "someone-else", now()),
    )
    .await;
    assert_eq!(
        (status, body),
        (
            StatusCode::UNAUTHORIZED,
            json!({"error": "Token does not match robot"})
        )
    );
    let (status, body) = exchange(
        &s,
        "fed-test+robot1",
        &other_issuer.id_token(Alg::Es256, subject, now()),
    )
    .await;
    assert_eq!(
        (status, body),
        (
            StatusCode::UNAUTHORIZED,
            json!({"error": format!("issuer {} not configured for this robot", other_issuer.url)})
        )
    );
    let expired = issuer.token(
        Alg::Es256,
        json!({"sub": subject, "iat": now() - 7200, "exp": now() - 3600}),
    );
    let (status, body) = exchange(&s, "fed-test+robot1", &expired).await;
    assert_eq!(
        (status, body),
        (
            StatusCode::UNAUTHORIZED,
            json!({"error": "Invalid token: Signature has expired"})
        )
    );
    let forged = other_issuer.token(
        Alg::Es256,
        json!({"iss": issuer.url, "sub": subject, "exp": now() + 3600}),
    );
    let (status, body) = exchange(&s, "fed-test+robot1", &forged).await;
    assert_eq!(
        (status, body),
        (
            StatusCode::UNAUTHORIZED,
            json!({"error": "Invalid token: Signature verification failed"})
        )
    );
    let (status, _) = exchange(&s, "fed-test+robot1", "not-a-jwt").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, body) = exchange(&s, "admin", &issuer.id_token(Alg::Es256, subject, now())).await;
    assert_eq!(
        (status, body),
        (StatusCode::UNAUTHORIZED, json!({"error": "Invalid robot"}))
    );
    let (status, body) = exchange(
        &s,
        "fed-test+ghost",
        &issuer.id_token(Alg::Es256, subject, now()),
    )
    .await;
    assert_eq!(
        (status, body),
        (
            StatusCode::UNAUTHORIZED,
            json!({"error": "Could not find robot with specified username"})
        )
    );
    let r = s
        .client
        .get(format!("{}/oauth2/federation/robot/token", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    // After an hour the robot token no longer logs in.
    let (_, body) = exchange(
        &s,
        "fed-test+robot1",
        &issuer.id_token(Alg::Es256, subject, now()),
    )
    .await;
    let robot_token = body["token"].as_str().unwrap().to_owned();
    s.clock.advance_ms(3_600_000);
    let r = s
        .client
        .get(format!("{}/v2/auth", s.url))
        .basic_auth("fed-test+robot1", Some(&robot_token))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    // Removing the configuration stops exchanges.
    let (status, _) = s.call(Some(&token), Method::DELETE, url, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = exchange(
        &s,
        "fed-test+robot1",
        &issuer.id_token(Alg::Es256, subject, now()),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let entries = s.audit("fed-test").await;
    let e = entries
        .iter()
        .find(|e| e.kind == "federated_robot_token_exchange")
        .expect("exchange recorded");
    let metadata: Value = serde_json::from_str(&e.metadata).unwrap();
    assert_eq!(metadata["subject"], subject);
    assert_eq!(metadata["robot"], "robot1");
    assert_eq!(e.performer.as_deref(), Some("fed-test+robot1"));
    assert!(entries.iter().any(|e| e.kind == "create_robot_federation"));
    assert!(entries.iter().any(|e| e.kind == "delete_robot_federation"));
}
