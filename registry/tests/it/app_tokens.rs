//! Application-specific tokens: the API (Quay's shapes, scopes and codes), the token at rest
//! (hashed and sealed, never in the clear), logins with `$app` on `/v2` and the token server,
//! expiry from `APP_SPECIFIC_TOKEN_EXPIRATION`, revocation, the garbage collection of expired
//! tokens, and real clients (skopeo, podman) logging in and pushing with a token.

use std::path::Path;
use std::process::Command;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::Row;

use crate::backend_tests;
use crate::common::oci::*;
use crate::common::tools::*;
use crate::common::*;

backend_tests!(
    app_tokens_api_logins_expiry_and_revocation,
    skopeo_and_podman_with_app_tokens,
    app_tokens_feature_off
);

const DAY_MS: i64 = 86_400_000;

async fn new_token(s: &TestServer, token: &str, title: &str) -> Value {
    let (status, body) = s
        .call(
            Some(token),
            Method::POST,
            "/user/apptoken",
            Some(json!({ "title": title })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["token"].clone()
}

/// The status of a token request with basic credentials.
async fn login_status(s: &TestServer, user: &str, password: &str) -> StatusCode {
    s.client
        .get(format!("{}/v2/auth", s.url))
        .query(&[
            ("service", s.host.as_str()),
            ("scope", "repository:alice/app:pull"),
        ])
        .basic_auth(user, Some(password))
        .send()
        .await
        .unwrap()
        .status()
}

async fn app_tokens_api_logins_expiry_and_revocation(b: Backend) {
    let s = TestServer::start_with(
        b,
        Options {
            yaml: "APP_SPECIFIC_TOKEN_EXPIRATION: 2w\nEXPIRED_APP_SPECIFIC_TOKEN_GC: 1d\n".into(),
            ..Options::default()
        },
    )
    .await;
    let admin = s.init_admin().await;
    let (alice, _, alice_token) = s.user_with_token("alice").await;

    // Quay's validation of the body.
    let (status, body) = s
        .call(
            Some(&alice_token),
            Method::POST,
            "/user/apptoken",
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error_message"], "'title' is a required property");
    let (status, _) = s.call(None, Method::GET, "/user/apptoken", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let created = new_token(&s, &alice_token, "ci").await;
    let code = created["token_code"].as_str().unwrap().to_owned();
    let uuid = created["uuid"].as_str().unwrap().to_owned();
    assert_eq!(code.len(), 120);
    assert_eq!(created["title"], "ci");
    assert_eq!(created["last_accessed"], Value::Null);
    let now = s.ctx().now_ms();
    assert_eq!(
        created["expiration"],
        quayside::service::views::format_date(now + 14 * DAY_MS)
    );
    assert!(created["created"].as_str().unwrap().ends_with("-0000"));

    // Listing shows no code; one token's GET does (as Quay).
    let (status, list) = s
        .call(Some(&alice_token), Method::GET, "/user/apptoken", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["only_expiring"], Value::Null);
    assert_eq!(list["tokens"].as_array().unwrap().len(), 1);
    assert_eq!(list["tokens"][0]["uuid"], uuid.as_str());
    assert!(list["tokens"][0].get("token_code").is_none(), "{list}");
    let (status, one) = s
        .call(
            Some(&alice_token),
            Method::GET,
            &format!("/user/apptoken/{uuid}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{one}");
    assert_eq!(one["token"]["token_code"], code.as_str());
    // Another user sees neither the token nor its code.
    let (status, _) = s
        .call(
            Some(&admin),
            Method::GET,
            &format!("/user/apptoken/{uuid}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // At rest: a hash and a sealed copy, never the token itself.
    let row =
        sqlx::query("SELECT token_hash, token_sealed FROM app_specific_token WHERE uuid = $1")
            .bind(&uuid)
            .fetch_one(s.ctx().db.pool())
            .await
            .unwrap();
    let hash: String = row.get("token_hash");
    let sealed: String = row.get("token_sealed");
    assert_eq!(hash, quayside::service::hash_secret(&code));
    assert!(!sealed.contains(&code) && !hash.contains(&code));

    // `$app` with the token logs in on the token server and on /v2 directly: push and pull.
    assert_eq!(login_status(&s, "$app", &code).await, StatusCode::OK);
    let app = s.as_basic("$app", &code);
    app.push_image("alice/app", "v1").await;
    let r = app
        .request(Method::GET, "/v2/alice/app/manifests/v1")
        .header("Accept", OCI_MANIFEST)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let registry_token = s
        .token(Some(("$app", &code)), &["repository:alice/app:pull,push"])
        .await;
    let r = s
        .as_bearer(&registry_token)
        .request(Method::GET, "/v2/alice/app/tags/list")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // As Quay, the token is a password for `$app` only, not for the user's own name; and it
    // is a registry credential, not an API one.
    assert_eq!(
        login_status(&s, &alice, &code).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        login_status(&s, "$app", "X".repeat(120).as_str()).await,
        StatusCode::UNAUTHORIZED
    );
    let r = s
        .as_basic("$app", &code)
        .send(Method::GET, "/api/v1/user/")
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // The use is recorded (last_accessed), and so is the login's kind.
    s.flush_audit().await;
    let (_, one) = s
        .call(
            Some(&alice_token),
            Method::GET,
            &format!("/user/apptoken/{uuid}"),
            None,
        )
        .await;
    assert!(one["token"]["last_accessed"].is_string(), "{one}");
    let entries = s.audit(&alice).await;
    let created_log = entries
        .iter()
        .find(|e| e.kind == "create_app_specific_token")
        .expect("create_app_specific_token logged");
    let meta: Value = serde_json::from_str(&created_log.metadata).unwrap();
    assert_eq!(meta["app_specific_token"], uuid.as_str());
    assert_eq!(meta["app_specific_token_title"], "ci");
    assert!(
        entries
            .iter()
            .any(|e| e.kind == "login_success" && e.metadata.contains("app_specific_token"))
    );

    // The superuser view lists every user's tokens; others are refused.
    let (status, all) = s
        .call(Some(&admin), Method::GET, "/superuser/apptokens", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{all}");
    assert!(
        all["tokens"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["uuid"] == uuid.as_str())
    );
    assert!(all["tokens"][0].get("token_code").is_none());
    let (status, _) = s
        .call(
            Some(&alice_token),
            Method::GET,
            "/superuser/apptokens",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Revocation: the token logs nobody in any more.
    let second = new_token(&s, &alice_token, "laptop").await;
    let second_code = second["token_code"].as_str().unwrap().to_owned();
    let second_uuid = second["uuid"].as_str().unwrap().to_owned();
    assert_eq!(login_status(&s, "$app", &second_code).await, StatusCode::OK);
    let path = format!("/user/apptoken/{second_uuid}");
    let (status, _) = s
        .call(Some(&alice_token), Method::DELETE, &path, None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = s
        .call(Some(&alice_token), Method::DELETE, &path, None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        login_status(&s, "$app", &second_code).await,
        StatusCode::UNAUTHORIZED
    );
    let r = s
        .as_basic("$app", &second_code)
        .send(Method::GET, "/v2/alice/app/tags/list")
        .await;
    expect_error(r, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;
    assert!(
        s.audit(&alice)
            .await
            .iter()
            .any(|e| e.kind == "revoke_app_specific_token" && e.metadata.contains(&second_uuid))
    );

    // Expiring soon: within a tenth of the two weeks' lifetime.
    let (_, soon) = s
        .call(
            Some(&alice_token),
            Method::GET,
            "/user/apptoken?expiring=true",
            None,
        )
        .await;
    assert_eq!(soon["only_expiring"], true);
    assert_eq!(soon["tokens"].as_array().unwrap().len(), 0, "{soon}");
    s.clock.advance_ms(13 * DAY_MS);
    let (_, soon) = s
        .call(
            Some(&alice_token),
            Method::GET,
            "/user/apptoken?expiring=true",
            None,
        )
        .await;
    assert_eq!(soon["tokens"].as_array().unwrap().len(), 1, "{soon}");
    assert_eq!(login_status(&s, "$app", &code).await, StatusCode::OK);

    // Expired: refused, no longer shown by GET (still listed, as Quay), then collected.
    s.clock.advance_ms(DAY_MS + 1000);
    assert_eq!(
        login_status(&s, "$app", &code).await,
        StatusCode::UNAUTHORIZED
    );
    let (status, _) = s
        .call(
            Some(&alice_token),
            Method::GET,
            &format!("/user/apptoken/{uuid}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, list) = s
        .call(Some(&alice_token), Method::GET, "/user/apptoken", None)
        .await;
    assert_eq!(list["tokens"].as_array().unwrap().len(), 1);
    let summary = quayside::workers::run_once(s.ctx(), "apptokens")
        .await
        .unwrap();
    assert!(summary.starts_with("deleted 0 "), "{summary}");
    s.clock.advance_ms(DAY_MS);
    let summary = quayside::workers::run_once(s.ctx(), "apptokens")
        .await
        .unwrap();
    assert!(summary.starts_with("deleted 1 "), "{summary}");
    let (_, list) = s
        .call(Some(&alice_token), Method::GET, "/user/apptoken", None)
        .await;
    assert_eq!(list["tokens"].as_array().unwrap().len(), 0);
}

/// A client command with private storage and auth file under `root`.
fn tool(program: &str, root: &Path) -> Command {
    let mut cmd = Command::new(require(program));
    cmd.env("REGISTRY_AUTH_FILE", root.join("auth.json"));
    if program == "podman" {
        cmd.args(["--root"])
            .arg(root.join("storage"))
            .args(["--runroot"])
            .arg(root.join("run"))
            .args([
                "--storage-driver",
                "vfs",
                "--cgroup-manager",
                "cgroupfs",
                "--events-backend",
                "file",
            ]);
    }
    cmd
}

async fn skopeo_and_podman_with_app_tokens(b: Backend) {
    let s = TestServer::start(b).await;
    let _admin = s.init_admin().await;
    let (_, _, alice_token) = s.user_with_token("alice").await;
    let created = new_token(&s, &alice_token, "clients").await;
    let code = created["token_code"].as_str().unwrap().to_owned();
    let uuid = created["uuid"].as_str().unwrap().to_owned();
    let work = tempfile::tempdir().unwrap();
    let layout = work.path().join("layout");
    let image = runnable_image("amd64", &[("hello", b"hello app token")]);
    write_layout(&layout, &[("v1", &image)], None);

    // skopeo pushes with `$app` and the token, and reads back.
    let creds = format!("$app:{code}");
    run_ok(tool("skopeo", work.path()).args([
        "copy",
        "--dest-tls-verify=false",
        "--dest-creds",
        &creds,
        &format!("oci:{}:v1", layout.display()),
        &format!("docker://{}/alice/tokened:v1", s.host),
    ]));
    run_ok(tool("skopeo", work.path()).args([
        "inspect",
        "--tls-verify=false",
        "--creds",
        &creds,
        &format!("docker://{}/alice/tokened:v1", s.host),
    ]));
    // podman logs in with it and pulls.
    run_ok(tool("podman", work.path()).args([
        "login",
        "--tls-verify=false",
        "-u",
        "$app",
        "-p",
        &code,
        &s.host,
    ]));
    run_ok(tool("podman", work.path()).args([
        "pull",
        "--tls-verify=false",
        &format!("{}/alice/tokened:v1", s.host),
    ]));

    // Revoked: both clients are refused.
    let (status, _) = s
        .call(
            Some(&alice_token),
            Method::DELETE,
            &format!("/user/apptoken/{uuid}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let err = run_fail(tool("podman", work.path()).args([
        "login",
        "--tls-verify=false",
        "-u",
        "$app",
        "-p",
        &code,
        &s.host,
    ]));
    assert!(err.contains("invalid username/password"), "{err}");
    run_fail(tool("skopeo", work.path()).args([
        "inspect",
        "--tls-verify=false",
        "--creds",
        &creds,
        &format!("docker://{}/alice/tokened:v1", s.host),
    ]));
}

/// `FEATURE_APP_SPECIFIC_TOKENS: false`: the endpoints answer Quay's 404 and a token created
/// before logs nobody in.
async fn app_tokens_feature_off(b: Backend) {
    let mut s = TestServer::start(b).await;
    let admin = s.init_admin().await;
    let created = new_token(&s, &admin, "before").await;
    let code = created["token_code"].as_str().unwrap().to_owned();
    assert_eq!(login_status(&s, "$app", &code).await, StatusCode::OK);
    s.config_yaml_push("FEATURE_APP_SPECIFIC_TOKENS: false\n");
    s.restart().await;
    for (method, path) in [
        (Method::GET, "/user/apptoken"),
        (Method::POST, "/user/apptoken"),
        (Method::GET, "/superuser/apptokens"),
    ] {
        let (status, body) = s
            .call(
                Some(&admin),
                method.clone(),
                path,
                Some(json!({"title": "x"})),
            )
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {body}");
    }
    assert_eq!(
        login_status(&s, "$app", &code).await,
        StatusCode::UNAUTHORIZED
    );
}
