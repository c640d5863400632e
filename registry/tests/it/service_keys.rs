//! Service keys: the superuser API (Quay's shapes and codes) and their use as the registry's
//! rotatable signing keys: the installation secret's key is the first service key, a new key
//! of service `quay` signs new tokens (its kid in the header) while tokens signed before keep
//! pulling, deleting a key ends its tokens with the OCI UNAUTHORIZED envelope, a deleted
//! secret key stays deleted across a restart, and without any usable key the token server
//! says so.

use base64::Engine;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::backend_tests;
use crate::common::oci::*;
use crate::common::*;

backend_tests!(service_keys_api_and_rotation);

fn kid_of(token: &str) -> String {
    let header = token.split('.').next().unwrap();
    let header: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(header)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(header["alg"], "EdDSA");
    header["kid"].as_str().unwrap().to_owned()
}

async fn pull_status(s: &TestServer, token: &str) -> (StatusCode, Value) {
    let r = s
        .as_bearer(token)
        .request(Method::GET, "/v2/admin/app/manifests/v1")
        .header("Accept", OCI_MANIFEST)
        .send()
        .await
        .unwrap();
    let status = r.status();
    let text = r.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

const SCOPE: &[&str] = &["repository:admin/app:pull"];

async fn service_keys_api_and_rotation(b: Backend) {
    let mut s = TestServer::start(b).await;
    let admin = s.init_admin().await;
    let (_, _, alice_token) = s.user_with_token("alice").await;
    s.as_admin().push_image("admin/app", "v1").await;
    let creds = Some((ADMIN, ADMIN_PASSWORD));

    // Both areas are in the discovery document with Quay's operation ids and scopes.
    let r = s.anonymous().send(Method::GET, "/api/v1/discovery").await;
    assert_eq!(r.status(), StatusCode::OK);
    let doc: Value = r.json().await.unwrap();
    for (path, method, id, scope) in [
        (
            "/api/v1/user/apptoken",
            "get",
            "listAppTokens",
            "user:admin",
        ),
        (
            "/api/v1/user/apptoken",
            "post",
            "createAppToken",
            "user:admin",
        ),
        (
            "/api/v1/user/apptoken/{token_uuid}",
            "get",
            "getAppToken",
            "user:admin",
        ),
        (
            "/api/v1/user/apptoken/{token_uuid}",
            "delete",
            "revokeAppToken",
            "user:admin",
        ),
        (
            "/api/v1/superuser/apptokens",
            "get",
            "listAllAppTokens",
            "super:user",
        ),
        (
            "/api/v1/superuser/keys",
            "get",
            "listServiceKeys",
            "super:user",
        ),
        (
            "/api/v1/superuser/keys",
            "post",
            "createServiceKey",
            "super:user",
        ),
        (
            "/api/v1/superuser/keys/{kid}",
            "get",
            "getServiceKey",
            "super:user",
        ),
        (
            "/api/v1/superuser/keys/{kid}",
            "put",
            "updateServiceKey",
            "super:user",
        ),
        (
            "/api/v1/superuser/keys/{kid}",
            "delete",
            "deleteServiceKey",
            "super:user",
        ),
        (
            "/api/v1/superuser/approvedkeys/{kid}",
            "post",
            "approveServiceKey",
            "super:user",
        ),
    ] {
        let op = &doc["paths"][path][method];
        assert_eq!(op["operationId"], id, "{method} {path}: {op}");
        assert!(
            op.to_string().contains(scope),
            "{method} {path} lacks {scope}: {op}"
        );
    }

    // The installation secret's key is the first service key, approved automatically.
    let config_kid = s.ctx().jwt.config_kid().to_owned();
    let (status, list) = s
        .call(Some(&admin), Method::GET, "/superuser/keys", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let keys = list["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1, "{list}");
    assert_eq!(keys[0]["kid"], config_kid.as_str());
    assert_eq!(keys[0]["service"], "quay");
    assert_eq!(keys[0]["jwk"]["kty"], "OKP");
    assert_eq!(keys[0]["approval"]["approval_type"], "Automatic");
    assert!(keys[0]["created_date"].as_str().unwrap().ends_with(" GMT"));
    let old = s.token(creds, SCOPE).await;
    assert_eq!(kid_of(&old), config_kid);

    // Only superusers; Quay's validation messages.
    let (status, _) = s
        .call(Some(&alice_token), Method::GET, "/superuser/keys", None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = s
        .call(
            Some(&alice_token),
            Method::POST,
            "/superuser/keys",
            Some(json!({"service": "quay", "expiration": null})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    for (body, message) in [
        (
            json!({"expiration": null}),
            "'service' is a required property",
        ),
        (
            json!({"service": "quay"}),
            "'expiration' is a required property",
        ),
        (
            json!({"service": "quay", "expiration": 1000}),
            "Expiration date cannot be in the past",
        ),
        (
            json!({"service": "quay", "expiration": null, "name": "bad<name>"}),
            "Invalid service key friendly name: bad<name>",
        ),
    ] {
        let (status, answer) = s
            .call(Some(&admin), Method::POST, "/superuser/keys", Some(body))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
        assert_eq!(answer["error_message"], message);
    }

    // Rotation: a new key of service `quay` signs new tokens; old tokens still pull.
    let (status, created) = s
        .call(
            Some(&admin),
            Method::POST,
            "/superuser/keys",
            Some(json!({"service": "quay", "expiration": null, "name": "rotated 1", "metadata": {"team": "ops"}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{created}");
    let new_kid = created["kid"].as_str().unwrap().to_owned();
    assert_ne!(new_kid, config_kid);
    assert_eq!(created["name"], "rotated 1");
    assert!(
        created["private_key"]
            .as_str()
            .unwrap()
            .starts_with("-----BEGIN PRIVATE KEY-----")
    );
    assert!(
        created["public_key"]
            .as_str()
            .unwrap()
            .starts_with("-----BEGIN PUBLIC KEY-----")
    );
    let new = s.token(creds, SCOPE).await;
    assert_eq!(kid_of(&new), new_kid);
    assert_eq!(pull_status(&s, &old).await.0, StatusCode::OK);
    assert_eq!(pull_status(&s, &new).await.0, StatusCode::OK);

    // Another replica (same database, same installation secret) verifies both tokens and
    // signs with the rotated key too (it unseals the private key from the database).
    let replica = quayside::server::build_context(s.config("127.0.0.1:0"), s.clock.clone())
        .await
        .unwrap();
    let audience = s.ctx().registry_service();
    let now_s = s.ctx().now_ms() / 1000;
    for token in [&old, &new] {
        replica
            .jwt
            .verify(&replica.db, token, &audience, now_s)
            .await
            .unwrap();
    }
    s.clock
        .advance_ms(quayside::service::access::jwt::RING_TTL_MS);
    assert_eq!(
        replica
            .jwt
            .signing_kid(&replica.db, s.ctx().now_ms())
            .await
            .unwrap(),
        new_kid
    );
    drop(replica);

    let (status, key) = s
        .call(
            Some(&admin),
            Method::GET,
            &format!("/superuser/keys/{new_kid}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{key}");
    assert_eq!(key["approval"]["approval_type"], "Super User API");
    assert_eq!(key["approval"]["approver"]["username"], ADMIN);
    assert_eq!(key["metadata"]["team"], "ops");
    assert_eq!(key["metadata"]["creator"], ADMIN);
    assert_eq!(key["expiration_date"], Value::Null);

    // PUT: name and metadata (merged), expiration (never in the past).
    let path = format!("/superuser/keys/{new_kid}");
    let (status, key) = s
        .call(
            Some(&admin),
            Method::PUT,
            &path,
            Some(json!({"name": "rotated", "metadata": {"ticket": "42"}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{key}");
    assert_eq!(key["name"], "rotated");
    assert_eq!(key["metadata"]["team"], "ops");
    assert_eq!(key["metadata"]["ticket"], "42");
    let (status, answer) = s
        .call(
            Some(&admin),
            Method::PUT,
            &path,
            Some(json!({"expiration": 1000})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        answer["error_message"],
        "Cannot have an expiration date in the past"
    );
    let later = s.ctx().now_ms() / 1000 + 30 * 86_400;
    let (status, key) = s
        .call(
            Some(&admin),
            Method::PUT,
            &path,
            Some(json!({"expiration": later})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{key}");
    assert!(key["expiration_date"].is_string());

    // Approving an approved key answers 201 as Quay; an unknown key 404.
    let (status, _) = s
        .call(
            Some(&admin),
            Method::POST,
            &format!("/superuser/approvedkeys/{new_kid}"),
            Some(json!({"notes": "ok"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = s
        .call(
            Some(&admin),
            Method::POST,
            "/superuser/approvedkeys/nope",
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = s
        .call(Some(&admin), Method::GET, "/superuser/keys/nope", None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // A key of another service signs nothing of the registry's.
    let (status, other) = s
        .call(
            Some(&admin),
            Method::POST,
            "/superuser/keys",
            Some(json!({"service": "other_service", "expiration": later})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{other}");
    assert_eq!(kid_of(&s.token(creds, SCOPE).await), new_kid);

    // Deleting the old key ends the tokens it signed, with the OCI envelope.
    let (status, _) = s
        .call(
            Some(&admin),
            Method::DELETE,
            &format!("/superuser/keys/{config_kid}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = pull_status(&s, &old).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(error_code(&body), "UNAUTHORIZED");
    assert_eq!(pull_status(&s, &new).await.0, StatusCode::OK);
    let (status, _) = s
        .call(
            Some(&admin),
            Method::DELETE,
            &format!("/superuser/keys/{config_kid}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // After a restart the deleted secret key stays deleted; the rotated key still signs.
    s.restart().await;
    let (_, list) = s
        .call(Some(&admin), Method::GET, "/superuser/keys", None)
        .await;
    let kids: Vec<&str> = list["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert!(!kids.contains(&config_kid.as_str()), "{list}");
    assert!(kids.contains(&new_kid.as_str()), "{list}");
    assert_eq!(pull_status(&s, &old).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(pull_status(&s, &new).await.0, StatusCode::OK);
    assert_eq!(kid_of(&s.token(creds, SCOPE).await), new_kid);

    // Without a usable key of service `quay`, the token server says so.
    let (status, _) = s.call(Some(&admin), Method::DELETE, &path, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(pull_status(&s, &new).await.0, StatusCode::UNAUTHORIZED);
    let r = s
        .client
        .get(format!("{}/v2/auth", s.url))
        .query(&[("service", s.host.as_str()), ("scope", SCOPE[0])])
        .basic_auth(ADMIN, Some(ADMIN_PASSWORD))
        .send()
        .await
        .unwrap();
    expect_error(r, StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE").await;
    let (status, created) = s
        .call(
            Some(&admin),
            Method::POST,
            "/superuser/keys",
            Some(json!({"service": "quay", "expiration": null})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{created}");
    let fresh = s.token(creds, SCOPE).await;
    assert_eq!(kid_of(&fresh), created["kid"].as_str().unwrap());
    assert_eq!(pull_status(&s, &fresh).await.0, StatusCode::OK);

    // Every change is in the audit log with Quay's kinds.
    s.flush_audit().await;
    let kinds: Vec<String> =
        sqlx::query_scalar("SELECT kind FROM log_entry WHERE kind LIKE 'service_key_%'")
            .fetch_all(s.ctx().db.pool())
            .await
            .unwrap();
    for kind in [
        "service_key_create",
        "service_key_approve",
        "service_key_modify",
        "service_key_extend",
        "service_key_delete",
    ] {
        assert!(
            kinds.iter().any(|k| k == kind),
            "{kind} missing from {kinds:?}"
        );
    }
}
