//! Repository mirroring (issue 13) against real upstreams started here: CNCF Distribution
//! (Debian's `docker-registry`, open and behind htpasswd). The worker's passes are run by the
//! test (`workers::run_once`), so each sync happens exactly when the test says.

use std::path::Path;
use std::process::Command;

use base64::Engine;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::backend_tests;
use crate::common::distribution::{Distribution, push_upstream};
use crate::common::oci::{self, Image};
use crate::common::quay::expect_like;
use crate::common::tools::require;
use crate::common::{ADMIN, ADMIN_PASSWORD, Backend, Options, TestServer};

backend_tests!(
    mirror_api_and_repository_states,
    mirror_sync_with_a_robot,
    mirror_upstreams_pass_the_ssrf_guard,
    mirror_through_an_http_proxy
);

async fn start(b: Backend) -> (TestServer, String) {
    let s = TestServer::start_with(
        b,
        Options {
            yaml: "FEATURE_REPO_MIRROR: true\nSSRF_ALLOWED_HOSTS: [127.0.0.1]\n".into(),
            ..Options::default()
        },
    )
    .await;
    let token = s.init_admin().await;
    (s, token)
}

/// An organization with robot `<org>+bot` and repository `<org>/<repo>`; returns the robot's
/// token.
async fn setup(s: &TestServer, token: &str, org: &str, repos: &[&str]) -> String {
    s.create_org(token, org).await;
    let (status, robot) = s
        .call(
            Some(token),
            Method::PUT,
            &format!("/organization/{org}/robots/bot"),
            Some(json!({ "description": "mirror robot" })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{robot}");
    for repo in repos {
        let (status, body) = s
            .call(
                Some(token),
                Method::POST,
                "/repository",
                Some(
                    json!({ "namespace": org, "repository": repo, "visibility": "private",
                             "description": "w2 mirrored repo", "repo_kind": "image" }),
                ),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    robot["token"].as_str().expect("robot token").to_owned()
}

async fn send(
    s: &TestServer,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let mut r = s
        .as_bearer(token)
        .request(method, &format!("/api/v1{path}"));
    if let Some(b) = body {
        r = r.json(&b);
    }
    r.send().await.unwrap()
}

/// The actions a registry token grants on its first resource.
fn granted(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("jwt");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64");
    let claims: Value = serde_json::from_slice(&bytes).expect("claims");
    claims["access"][0]["actions"].clone()
}

/// Starts a blob upload with basic credentials: the status says whether pushing is allowed.
async fn upload_start(s: &TestServer, user: &str, password: &str, repo: &str) -> StatusCode {
    s.as_basic(user, password)
        .request(Method::POST, &format!("/v2/{repo}/blobs/uploads/"))
        .send()
        .await
        .unwrap()
        .status()
}

/// The mirror API, the repository states and who may push, against Quay's recorded answers.
async fn mirror_api_and_repository_states(b: Backend) {
    let (s, token) = start(b).await;
    let robot_token = setup(&s, &token, "w2org", &["mirrored"]).await;
    let cfg = "/repository/w2org/mirrored/mirror";

    let r = send(&s, &token, Method::GET, cfg, None).await;
    expect_like(r, "more-115-mirror-get-none", &[]).await;

    let mut create = crate::common::quay::recorded("more-117-mirror-create-dup").request_body;
    create["external_reference"] = json!("127.0.0.1:5999/library/hello");
    let r = send(&s, &token, Method::POST, cfg, Some(create.clone())).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(r.json::<Value>().await.unwrap(), json!(""));
    let r = send(&s, &token, Method::POST, cfg, Some(create.clone())).await;
    let body = expect_like(r, "more-117-mirror-create-dup", &[]).await;
    assert_eq!(
        body,
        json!({"detail": "Mirror configuration already exits for repository w2org/mirrored"})
    );

    let update = crate::common::quay::recorded("more-119-mirror-update").request_body;
    let r = send(&s, &token, Method::PUT, cfg, Some(update)).await;
    assert_eq!(
        expect_like(r, "more-119-mirror-update", &[]).await,
        json!("")
    );
    let r = send(
        &s,
        &token,
        Method::PUT,
        cfg,
        Some(json!({"sync_start_date": "tomorrow"})),
    )
    .await;
    let body = expect_like(r, "more-121-mirror-update-bad-date", &[]).await;
    assert_eq!(
        body,
        json!({"detail": "Incorrect DateTime format for sync_start_date."})
    );
    let r = send(
        &s,
        &token,
        Method::PUT,
        cfg,
        Some(json!({"root_rule": {"rule_kind": "tag_glob_csv", "rule_value": ["latest"]}})),
    )
    .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    // Bad input answers Quay's error body, and changes nothing.
    for (bad, message) in [
        (
            json!({"robot_username": "w2org+nobody"}),
            "Invalid robot account \"w2org+nobody\"",
        ),
        (
            json!({"root_rule": {"rule_kind": "regex", "rule_value": ["x"]}}),
            "Unknown rule_kind \"regex\": only tag_glob_csv is supported",
        ),
        (
            json!({"sync_interval": 0}),
            "sync_interval must be a positive number of seconds",
        ),
        (
            json!({"external_reference": "https://quay.io/x"}),
            "Invalid external_reference \"https://quay.io/x\": expected host[:port]/repository, without a tag",
        ),
    ] {
        let (status, body) = s.call(Some(&token), Method::PUT, cfg, Some(bad)).await;
        crate::common::quay::assert_quay_error(
            status,
            &body,
            StatusCode::BAD_REQUEST,
            "invalid_request",
            message,
        );
    }

    let r = send(
        &s,
        &token,
        Method::PUT,
        "/repository/w2org/mirrored/changestate",
        Some(json!({"state": "MIRROR"})),
    )
    .await;
    assert_eq!(
        expect_like(r, "more-123-repo-changestate-mirror", &[]).await,
        json!({"success": true})
    );
    let r = send(&s, &token, Method::GET, "/repository/w2org/mirrored", None).await;
    let repo = expect_like(r, "more-125-repo-get-mirrored", &["tags"]).await;
    assert_eq!(repo["state"], "MIRROR");
    assert_eq!(repo["can_write"], false);
    assert_eq!(repo["can_admin"], true);

    let r = send(&s, &token, Method::POST, &format!("{cfg}/sync-now"), None).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = send(&s, &token, Method::GET, cfg, None).await;
    let got = expect_like(r, "more-127-mirror-get-after-sync-now", &[]).await;
    assert_eq!(
        got,
        json!({
            "is_enabled": false, "mirror_type": "PULL",
            "external_reference": "127.0.0.1:5999/library/hello",
            "external_registry_username": null,
            "external_registry_config": {"verify_tls": false, "unsigned_images": true},
            "sync_interval": 7200, "sync_start_date": "2030-01-01T00:00:00Z",
            "sync_expiration_date": null, "sync_retries_remaining": 3, "sync_status": "SYNC_NOW",
            "root_rule": {"rule_kind": "tag_glob_csv", "rule_value": ["latest"]},
            "robot_username": "w2org+bot", "skopeo_timeout_interval": 300,
            "architecture_filter": []
        })
    );
    // A disabled mirror is not synced, whatever was requested.
    let summary = quayside::workers::run_once(s.ctx(), "mirror")
        .await
        .unwrap();
    assert_eq!(summary, "mirrors synced: 0, failed: 0, cancelled: 0");

    // In the MIRROR state only the mirror robot may push: the token server grants the
    // administrator pull alone (as Quay's answer shows), the robot push and pull.
    let admin_token = s
        .token(
            Some((ADMIN, ADMIN_PASSWORD)),
            &["repository:w2org/mirrored:push,pull"],
        )
        .await;
    assert_eq!(granted(&admin_token), json!(["pull"]));
    // Quay answers 200 with the reduced token (`more-131`); the token server's own shape is
    // checked in its tests.
    assert_eq!(
        crate::common::quay::recorded("more-131-v2-auth-mirror-push").status,
        200
    );
    let robot_grant = s
        .token(
            Some(("w2org+bot", &robot_token)),
            &["repository:w2org/mirrored:push,pull"],
        )
        .await;
    let mut actions: Vec<String> = serde_json::from_value(granted(&robot_grant)).unwrap();
    actions.sort();
    assert_eq!(actions, ["pull", "push"]);
    assert_eq!(
        upload_start(&s, ADMIN, ADMIN_PASSWORD, "w2org/mirrored").await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        upload_start(&s, "w2org+bot", &robot_token, "w2org/mirrored").await,
        StatusCode::ACCEPTED
    );

    // READ_ONLY: nobody pushes, not even the robot; tags cannot be changed.
    let r = send(
        &s,
        &token,
        Method::PUT,
        "/repository/w2org/mirrored/changestate",
        Some(json!({"state": "READ_ONLY"})),
    )
    .await;
    expect_like(r, "more-133-repo-changestate-readonly", &[]).await;
    assert_eq!(
        upload_start(&s, ADMIN, ADMIN_PASSWORD, "w2org/mirrored").await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        upload_start(&s, "w2org+bot", &robot_token, "w2org/mirrored").await,
        StatusCode::FORBIDDEN
    );
    let admin_token = s
        .token(
            Some((ADMIN, ADMIN_PASSWORD)),
            &["repository:w2org/mirrored:push,pull"],
        )
        .await;
    assert_eq!(granted(&admin_token), json!(["pull"]));

    // The REST API checks the role first, then answers the state (Quay's 503).
    let (status, body) = s
        .call(
            Some(&token),
            Method::PUT,
            "/repository/w2org/mirrored/tag/x",
            Some(json!({"manifest_digest": format!("sha256:{}", "0".repeat(64))})),
        )
        .await;
    assert_eq!(
        (status, body),
        (
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"message": "Repository is in read only or mirror mode: READ_ONLY"})
        )
    );

    let (status, body) = s
        .call(
            Some(&token),
            Method::PUT,
            "/repository/w2org/mirrored/changestate",
            Some(json!({"state": "BOGUS"})),
        )
        .await;
    assert_eq!(
        (status, body),
        (
            StatusCode::BAD_REQUEST,
            json!({"detail": "BOGUS is not a valid Repository state."})
        )
    );
    let r = send(
        &s,
        &token,
        Method::PUT,
        "/repository/w2org/mirrored/changestate",
        Some(json!({"state": "NORMAL"})),
    )
    .await;
    expect_like(r, "more-135-repo-changestate-normal", &[]).await;
    assert_eq!(
        upload_start(&s, ADMIN, ADMIN_PASSWORD, "w2org/mirrored").await,
        StatusCode::ACCEPTED
    );
    // A push token issued before the repository became read-only no longer pushes.
    let push_token = s
        .token(
            Some((ADMIN, ADMIN_PASSWORD)),
            &["repository:w2org/mirrored:push,pull"],
        )
        .await;
    let mut actions: Vec<String> = serde_json::from_value(granted(&push_token)).unwrap();
    actions.sort();
    assert_eq!(actions, ["pull", "push"]);
    let state = |state: &'static str| {
        let (s, token) = (&s, &token);
        async move {
            let (status, _) = s
                .call(
                    Some(token),
                    Method::PUT,
                    "/repository/w2org/mirrored/changestate",
                    Some(json!({ "state": state })),
                )
                .await;
            assert_eq!(status, StatusCode::OK);
        }
    };
    state("READ_ONLY").await;
    let start = |t: String| {
        let s = &s;
        async move {
            s.as_bearer(&t)
                .request(Method::POST, "/v2/w2org/mirrored/blobs/uploads/")
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(start(push_token.clone()).await, StatusCode::UNAUTHORIZED);
    state("NORMAL").await;
    assert_eq!(start(push_token).await, StatusCode::ACCEPTED);

    // The sync requested above (never run: the mirror is disabled) is cancelled; then nothing
    // runs or is requested, and there is nothing to cancel.
    let cancel = format!("{cfg}/sync-cancel");
    let (status, _) = s.call(Some(&token), Method::POST, &cancel, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        mirror_view(&s, &token, "w2org/mirrored").await["sync_status"],
        "CANCEL"
    );
    let (status, _) = s.call(Some(&token), Method::POST, &cancel, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // The password never comes back, and the state changes are audit-logged.
    let (_, body) = s.call(Some(&token), Method::PUT, cfg, Some(json!({"external_registry_username": "u", "external_registry_password": "secret-pw-1"}))).await;
    assert_eq!(body, json!(""));
    let r = send(&s, &token, Method::GET, cfg, None).await;
    let text = r.text().await.unwrap();
    assert!(!text.contains("secret-pw-1"), "{text}");
    assert!(
        text.contains("\"external_registry_username\":\"u\""),
        "{text}"
    );
    let kinds: Vec<String> = s.audit("w2org").await.into_iter().map(|e| e.kind).collect();
    for kind in [
        "repo_mirror_enabled",
        "repo_mirror_disabled",
        "repo_mirror_config_changed",
        "change_repo_state",
        "repo_mirror_sync_now_requested",
    ] {
        assert!(kinds.iter().any(|k| k == kind), "{kind} in {kinds:?}");
    }

    // Without the feature the endpoints are not there (Quay's 404), and MIRROR is refused.
    let plain = TestServer::start(b).await;
    let t = plain.init_admin().await;
    setup(&plain, &t, "w2org", &["mirrored"]).await;
    let (status, _) = plain.call(Some(&t), Method::GET, cfg, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = plain
        .call(
            Some(&t),
            Method::PUT,
            "/repository/w2org/mirrored/changestate",
            Some(json!({"state": "MIRROR"})),
        )
        .await;
    assert_eq!(
        (status, body),
        (
            StatusCode::BAD_REQUEST,
            json!({"detail": "Unknown Repository State: MIRROR"})
        )
    );
}

fn skopeo(args: &[&str], auth_dir: &Path) -> std::process::Output {
    Command::new(require("skopeo"))
        .env("REGISTRY_AUTH_FILE", auth_dir.join("auth.json"))
        .args(args)
        .output()
        .unwrap()
}

async fn mirror_view(s: &TestServer, token: &str, repo: &str) -> Value {
    let (status, body) = s
        .call(
            Some(token),
            Method::GET,
            &format!("/repository/{repo}/mirror"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

async fn live_tags(s: &TestServer, token: &str, repo: &str) -> Vec<(String, String)> {
    let (status, body) = s
        .call(
            Some(token),
            Method::GET,
            &format!("/repository/{repo}/tag/?onlyActiveTags=true&limit=100"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mut tags: Vec<(String, String)> = body["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["name"].as_str().unwrap().to_owned(),
                t["manifest_digest"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    tags.sort();
    tags
}

async fn upstream_delete(base: &str, repo: &str, digest: &str) {
    let r = reqwest::Client::new()
        .delete(format!("{base}/v2/{repo}/manifests/{digest}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED, "upstream delete");
}

/// A sync of a glob of tags as the robot (an image, a multi-arch index), pulled by skopeo; a
/// moved and a removed upstream tag; cancel; one claim per mirror; wrong credentials.
async fn mirror_sync_with_a_robot(b: Backend) {
    let upstream = Distribution::start(None).await;
    let base = format!("http://{}", upstream.addr);
    let latest = Image::random(2);
    let v1 = Image::random(1);
    let v2 = Image::random(1);
    let other = Image::random(1);
    push_upstream(&base, None, "library/hello", "latest", &latest).await;
    push_upstream(&base, None, "library/hello", "v1", &v1).await;
    push_upstream(&base, None, "library/hello", "v2", &v2).await;
    push_upstream(&base, None, "library/hello", "other", &other).await;
    // A multi-arch index under `v-multi`: its children are pushed by digest first.
    let (amd, arm) = (
        Image::build(vec![oci::random_bytes(900)], "amd64", false),
        Image::build(vec![oci::random_bytes(901)], "arm64", false),
    );
    push_upstream(&base, None, "library/hello", &amd.digest, &amd).await;
    push_upstream(&base, None, "library/hello", &arm.digest, &arm).await;
    let index = oci::index(&[(&amd, "amd64"), (&arm, "arm64")], false);
    let r = reqwest::Client::new()
        .put(format!("{base}/v2/library/hello/manifests/v-multi"))
        .header("Content-Type", "application/vnd.oci.image.index.v1+json")
        .body(index.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);

    let (s, token) = start(b).await;
    setup(&s, &token, "w2org", &["mirrored", "private"]).await;
    let cfg = "/repository/w2org/mirrored/mirror";
    let (status, body) = s
        .call(
            Some(&token),
            Method::POST,
            cfg,
            Some(json!({
                "is_enabled": true,
                "external_reference": format!("{}/library/hello", upstream.addr),
                "external_registry_config": {"verify_tls": false},
                "sync_interval": 86400, "sync_start_date": "2030-01-01T00:00:00Z",
                "root_rule": {"rule_kind": "tag_glob_csv", "rule_value": ["latest", "v*"]},
                "robot_username": "w2org+bot",
            })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // The admin is told of finished syncs in the app (repository notification).
    let (status, body) = s
        .call(
            Some(&token),
            Method::POST,
            "/repository/w2org/mirrored/notification/",
            Some(
                json!({"event": "repo_mirror_sync_success", "method": "quay_notification",
                        "config": {"target": {"kind": "user", "name": ADMIN}}, "eventConfig": {}}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // Not in the MIRROR state yet: nothing is synced.
    let (status, _) = s
        .call(Some(&token), Method::POST, &format!("{cfg}/sync-now"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        quayside::workers::run_once(s.ctx(), "mirror")
            .await
            .unwrap(),
        "mirrors synced: 0, failed: 0, cancelled: 0"
    );
    let (status, _) = s
        .call(
            Some(&token),
            Method::PUT,
            "/repository/w2org/mirrored/changestate",
            Some(json!({"state": "MIRROR"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    // Two worker passes at once (two replicas): the mirror is synced once.
    let ctx = s.ctx();
    let (a, b2) = tokio::join!(
        quayside::workers::run_once(ctx, "mirror"),
        quayside::workers::run_once(ctx, "mirror")
    );
    let mut summaries = [a.unwrap(), b2.unwrap()];
    summaries.sort();
    assert_eq!(
        summaries,
        [
            "mirrors synced: 0, failed: 0, cancelled: 0",
            "mirrors synced: 1, failed: 0, cancelled: 0"
        ]
    );
    let view = mirror_view(&s, &token, "w2org/mirrored").await;
    assert_eq!(view["sync_status"], "SUCCESS", "{view}");
    assert_eq!(view["sync_retries_remaining"], 3);
    assert_eq!(view["sync_expiration_date"], Value::Null);
    let index_digest = oci::sha256(&index);
    assert_eq!(
        live_tags(&s, &token, "w2org/mirrored").await,
        vec![
            ("latest".to_owned(), latest.digest.clone()),
            ("v-multi".to_owned(), index_digest.clone()),
            ("v1".to_owned(), v1.digest.clone()),
            ("v2".to_owned(), v2.digest.clone()),
        ]
    );
    let r = s
        .as_bearer(&token)
        .send(Method::GET, "/api/v1/repository/w2org/mirrored/tag/")
        .await;
    expect_like(r, "more-129-mirror-repo-tags", &[]).await;
    let entries = s.audit("w2org").await;
    let count = |kind: &str| entries.iter().filter(|e| e.kind == kind).count();
    assert_eq!(count("repo_mirror_sync_started"), 1);
    assert_eq!(count("repo_mirror_sync_success"), 1);
    assert_eq!(count("repo_mirror_sync_tag_success"), 4);
    quayside::workers::run_once(s.ctx(), "notifications")
        .await
        .unwrap();
    let (_, notes) = s
        .call(Some(&token), Method::GET, "/user/notifications", None)
        .await;
    let synced: Vec<&Value> = notes["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["kind"] == "repo_mirror_sync_success")
        .collect();
    assert_eq!(synced.len(), 1, "{notes}");
    assert_eq!(
        synced[0]["metadata"]["repository"], "w2org/mirrored",
        "{notes}"
    );

    // skopeo pulls the mirrored tags from Quayside, the index with every architecture.
    let work = tempfile::tempdir().unwrap();
    let creds = format!("{ADMIN}:{ADMIN_PASSWORD}");
    let layout = work.path().join("v1");
    let out = skopeo(
        &[
            "copy",
            "--src-tls-verify=false",
            "--src-creds",
            &creds,
            &format!("docker://{}/w2org/mirrored:v1", s.host),
            &format!("oci:{}:v1", layout.display()),
        ],
        work.path(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Quayside serves the upstream's bytes: the manifest and each layer.
    let r = s
        .as_admin()
        .request(Method::GET, "/v2/w2org/mirrored/manifests/v1")
        .header("Accept", "application/vnd.oci.image.manifest.v1+json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.bytes().await.unwrap().to_vec(), v1.manifest);
    for layer in &v1.layers {
        let r = s
            .as_admin()
            .send(
                Method::GET,
                &format!("/v2/w2org/mirrored/blobs/{}", oci::sha256(layer)),
            )
            .await;
        assert_eq!(&r.bytes().await.unwrap().to_vec(), layer);
    }
    let out = skopeo(
        &[
            "copy",
            "--all",
            "--src-tls-verify=false",
            "--src-creds",
            &creds,
            &format!("docker://{}/w2org/mirrored:v-multi", s.host),
            &format!("oci:{}:m", work.path().join("multi").display()),
        ],
        work.path(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Nobody but the robot pushes into the mirror: skopeo as the administrator is refused.
    let out = skopeo(
        &[
            "copy",
            "--dest-tls-verify=false",
            "--dest-creds",
            &creds,
            &format!("oci:{}:v1", layout.display()),
            &format!("docker://{}/w2org/mirrored:pushed", s.host),
        ],
        work.path(),
    );
    assert!(!out.status.success(), "a push into a mirror was accepted");
    assert!(
        !live_tags(&s, &token, "w2org/mirrored")
            .await
            .iter()
            .any(|(t, _)| t == "pushed")
    );

    // Upstream: `latest` moves, `v2` is deleted. The next sync follows both.
    let moved = Image::random(1);
    push_upstream(&base, None, "library/hello", "latest", &moved).await;
    upstream_delete(&base, "library/hello", &v2.digest).await;
    let (status, _) = s
        .call(Some(&token), Method::POST, &format!("{cfg}/sync-now"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        quayside::workers::run_once(s.ctx(), "mirror")
            .await
            .unwrap(),
        "mirrors synced: 1, failed: 0, cancelled: 0"
    );
    let tags = live_tags(&s, &token, "w2org/mirrored").await;
    assert_eq!(
        tags,
        vec![
            ("latest".to_owned(), moved.digest.clone()),
            ("v-multi".to_owned(), index_digest.clone()),
            ("v1".to_owned(), v1.digest.clone()),
        ]
    );

    // Cancel while a sync runs: it stops before its next tag (`v3` is not copied).
    let v3 = Image::random(1);
    push_upstream(&base, None, "library/hello", "v3", &v3).await;
    let mut paused = s.ctx().pauses.arm("mirror.before_tag");
    let (status, _) = s
        .call(Some(&token), Method::POST, &format!("{cfg}/sync-now"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let pass = {
        let ctx = s.running.as_ref().expect("running").ctx.clone();
        tokio::spawn(async move { quayside::workers::run_once(&ctx, "mirror").await.unwrap() })
    };
    paused.reached().await;
    let view = mirror_view(&s, &token, "w2org/mirrored").await;
    assert_eq!(view["sync_status"], "SYNCING");
    assert!(view["sync_expiration_date"].is_string(), "{view}");
    // A sync in progress cannot be requested again.
    let (status, _) = s
        .call(Some(&token), Method::POST, &format!("{cfg}/sync-now"), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = s
        .call(
            Some(&token),
            Method::POST,
            &format!("{cfg}/sync-cancel"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    paused.resume();
    assert_eq!(
        pass.await.unwrap(),
        "mirrors synced: 0, failed: 0, cancelled: 1"
    );
    let view = mirror_view(&s, &token, "w2org/mirrored").await;
    assert_eq!(view["sync_status"], "CANCEL");
    assert!(
        !live_tags(&s, &token, "w2org/mirrored")
            .await
            .iter()
            .any(|(t, _)| t == "v3")
    );

    // Wrong credentials on a scheduled mirror (its start has passed; no sync-now): FAIL with the
    // reason logged, retried at the next passes, then the next interval with retries restored.
    let (status, _) = s
        .call(
            Some(&token),
            Method::PUT,
            cfg,
            Some(json!({"is_enabled": false})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let locked = Distribution::start(Some(("puller", "pull-secret-1"))).await;
    push_upstream(
        &format!("http://{}", locked.addr),
        Some(("puller", "pull-secret-1")),
        "team/app",
        "latest",
        &v1,
    )
    .await;
    let now = s.ctx().now_ms();
    let start_ms = now - now % 1000 - 600_000;
    let date = |ms: i64| {
        chrono::DateTime::from_timestamp_millis(ms)
            .unwrap()
            .format("%Y-%m-%dT%H:%M:%SZ")
            .to_string()
    };
    let (status, body) = s
        .call(
            Some(&token),
            Method::POST,
            "/repository/w2org/private/mirror",
            Some(json!({
                "external_reference": format!("{}/team/app", locked.addr),
                "external_registry_username": "puller", "external_registry_password": "wrong-password",
                "external_registry_config": {"verify_tls": false},
                "sync_interval": 3600, "sync_start_date": date(start_ms),
                "root_rule": {"rule_kind": "tag_glob_csv", "rule_value": ["*"]},
                "robot_username": "w2org+bot",
            })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, _) = s
        .call(
            Some(&token),
            Method::PUT,
            "/repository/w2org/private/changestate",
            Some(json!({"state": "MIRROR"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let pass = || async {
        quayside::workers::run_once(s.ctx(), "mirror")
            .await
            .unwrap()
    };
    const FAILED: &str = "mirrors synced: 0, failed: 1, cancelled: 0";
    const NOTHING: &str = "mirrors synced: 0, failed: 0, cancelled: 0";
    assert_eq!(pass().await, FAILED);
    let view = mirror_view(&s, &token, "w2org/private").await;
    assert_eq!(view["sync_status"], "FAIL");
    assert_eq!(view["sync_retries_remaining"], 2);
    assert!(live_tags(&s, &token, "w2org/private").await.is_empty());
    let failed = s
        .audit("w2org")
        .await
        .into_iter()
        .find(|e| e.kind == "repo_mirror_sync_failed")
        .expect("failure logged");
    let metadata: Value = serde_json::from_str(&failed.metadata).unwrap();
    let message = metadata["message"].as_str().unwrap();
    assert!(message.contains("refused the credentials"), "{message}");
    assert!(!message.contains("wrong-password"), "{message}");
    // Not again in the same pass; again at the next ones.
    assert_eq!(pass().await, NOTHING);
    s.clock.advance_ms(31_000);
    assert_eq!(pass().await, FAILED);
    assert_eq!(
        mirror_view(&s, &token, "w2org/private").await["sync_retries_remaining"],
        1
    );
    s.clock.advance_ms(31_000);
    assert_eq!(pass().await, FAILED);
    let view = mirror_view(&s, &token, "w2org/private").await;
    assert_eq!(view["sync_retries_remaining"], 3);
    assert_eq!(view["sync_start_date"], date(start_ms + 3_600_000));
    s.clock.advance_ms(31_000);
    assert_eq!(pass().await, NOTHING);

    // With the right password, the scheduled sync succeeds at its time.
    let (status, _) = s
        .call(
            Some(&token),
            Method::PUT,
            "/repository/w2org/private/mirror",
            Some(json!({"external_registry_password": "pull-secret-1"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    s.clock.set_ms(start_ms + 3_600_000 + 1_000);
    assert_eq!(pass().await, "mirrors synced: 1, failed: 0, cancelled: 0");
    assert_eq!(
        live_tags(&s, &token, "w2org/private").await,
        vec![("latest".to_owned(), v1.digest.clone())]
    );
    assert_eq!(
        mirror_view(&s, &token, "w2org/private").await["sync_start_date"],
        date(start_ms + 2 * 3_600_000)
    );
}

/// Without `SSRF_ALLOWED_HOSTS`, a mirror of a loopback registry (by address or by name) is
/// refused when configured or changed; a public address literal is accepted.
async fn mirror_upstreams_pass_the_ssrf_guard(b: Backend) {
    let s = TestServer::start_with(
        b,
        Options {
            yaml: "FEATURE_REPO_MIRROR: true\n".into(),
            ..Options::default()
        },
    )
    .await;
    let token = s.init_admin().await;
    setup(&s, &token, "guarded", &["m"]).await;
    let cfg = "/repository/guarded/m/mirror";
    let mut create = crate::common::quay::recorded("more-117-mirror-create-dup").request_body;
    create["robot_username"] = json!("guarded+bot");
    for reference in [
        "127.0.0.1:5999/library/hello",
        "localhost:5999/library/hello",
    ] {
        create["external_reference"] = json!(reference);
        let r = send(&s, &token, Method::POST, cfg, Some(create.clone())).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{reference}");
        let body: Value = r.json().await.unwrap();
        let message = body["error_message"].as_str().unwrap_or_default();
        assert!(
            message.starts_with("external_reference refused:")
                && message.contains("non-public address"),
            "{reference}: {body}"
        );
    }
    create["external_reference"] = json!("93.184.216.34/library/hello");
    let r = send(&s, &token, Method::POST, cfg, Some(create.clone())).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = send(
        &s,
        &token,
        Method::PUT,
        cfg,
        Some(json!({"external_reference": "169.254.169.254/latest/meta"})),
    )
    .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = send(&s, &token, Method::GET, cfg, None).await;
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["external_reference"], "93.184.216.34/library/hello");
}

/// A loopback HTTP proxy: forwards absolute-form requests (`GET http://host/...`) and tunnels
/// `CONNECT`; counts the connections it proxied (each carries at least one request).
async fn http_proxy() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            let counter = counter.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                let end = loop {
                    if let Some(i) = head.windows(4).position(|w| w == b"\r\n\r\n") {
                        break i + 4;
                    }
                    match inbound.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                };
                let line = String::from_utf8_lossy(&head[..end]).to_string();
                let mut parts = line.split_whitespace();
                let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
                let host = match method {
                    "CONNECT" => target.to_owned(),
                    _ => match target.strip_prefix("http://") {
                        Some(rest) => rest.split('/').next().unwrap_or("").to_owned(),
                        None => return,
                    },
                };
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let Ok(mut outbound) = tokio::net::TcpStream::connect(&host).await else {
                    let _ = inbound
                        .write_all(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
                        .await;
                    return;
                };
                if method == "CONNECT" {
                    let _ = inbound
                        .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                        .await;
                    let _ = outbound.write_all(&head[end..]).await;
                } else {
                    let _ = outbound.write_all(&head).await;
                }
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            });
        }
    });
    (format!("http://{addr}"), seen)
}

/// `external_registry_config.proxy` is used by the sync: through a proxy started here (which
/// sees the requests), failing through a proxy nobody listens on, direct for `no_proxy` hosts.
async fn mirror_through_an_http_proxy(b: Backend) {
    let upstream = Distribution::start(None).await;
    let base = format!("http://{}", upstream.addr);
    let image = Image::random(1);
    push_upstream(&base, None, "library/hello", "latest", &image).await;
    let (proxy, seen) = http_proxy().await;
    let (s, token) = start(b).await;
    setup(&s, &token, "w2org", &["viaproxy"]).await;
    let cfg = "/repository/w2org/viaproxy/mirror";
    let config = |proxy: Value| {
        json!({
            "is_enabled": true,
            "external_reference": format!("{}/library/hello", upstream.addr),
            "external_registry_config": {"verify_tls": false, "proxy": proxy},
            "sync_interval": 86400, "sync_start_date": "2020-01-01T00:00:00Z",
            "root_rule": {"rule_kind": "tag_glob_csv", "rule_value": ["*"]},
            "robot_username": "w2org+bot",
        })
    };
    let (status, body) = s
        .call(
            Some(&token),
            Method::POST,
            cfg,
            Some(config(json!({"http_proxy": proxy, "https_proxy": proxy}))),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let view = mirror_view(&s, &token, "w2org/viaproxy").await;
    assert_eq!(
        view["external_registry_config"]["proxy"]["http_proxy"],
        proxy.as_str()
    );
    let (status, _) = s
        .call(
            Some(&token),
            Method::PUT,
            "/repository/w2org/viaproxy/changestate",
            Some(json!({"state": "MIRROR"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let sync = || async {
        let (status, _) = s
            .call(Some(&token), Method::POST, &format!("{cfg}/sync-now"), None)
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        quayside::workers::run_once(s.ctx(), "mirror")
            .await
            .unwrap()
    };
    assert_eq!(sync().await, "mirrors synced: 1, failed: 0, cancelled: 0");
    assert!(
        seen.load(std::sync::atomic::Ordering::SeqCst) > 0,
        "the sync went through the proxy"
    );
    assert_eq!(
        live_tags(&s, &token, "w2org/viaproxy").await,
        vec![("latest".to_owned(), image.digest.clone())]
    );

    // A proxy nobody listens on: the sync fails, saying why.
    let dead = "http://127.0.0.1:1";
    let (status, body) = s
        .call(
            Some(&token),
            Method::PUT,
            cfg,
            Some(json!({"external_registry_config": {"verify_tls": false, "proxy": {"http_proxy": dead}}})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(sync().await, "mirrors synced: 0, failed: 1, cancelled: 0");
    let view = mirror_view(&s, &token, "w2org/viaproxy").await;
    assert_eq!(view["sync_status"], "FAIL", "{view}");

    // The upstream in `no_proxy`: reached directly, the dead proxy unused.
    let (status, body) = s
        .call(
            Some(&token),
            Method::PUT,
            cfg,
            Some(json!({"external_registry_config": {"verify_tls": false,
                "proxy": {"http_proxy": dead, "no_proxy": "127.0.0.1"}}})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(sync().await, "mirrors synced: 1, failed: 0, cancelled: 0");

    // `verify_tls: true` asks for HTTPS with a verified certificate, which this plain-HTTP
    // upstream cannot give: the sync fails; turned off again, it goes through.
    for (verify, want) in [
        (true, "mirrors synced: 0, failed: 1, cancelled: 0"),
        (false, "mirrors synced: 1, failed: 0, cancelled: 0"),
    ] {
        let (status, body) = s
            .call(
                Some(&token),
                Method::PUT,
                cfg,
                Some(json!({"external_registry_config": {"verify_tls": verify, "proxy": {}}})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(sync().await, want, "verify_tls: {verify}");
    }

    // A proxy URL that is none, or one the SSRF guard refuses, is refused on configuration.
    for (bad, says) in [
        ("socks://x", "Invalid proxy"),
        ("http://169.254.169.254:3128", "proxy refused"),
    ] {
        let (status, body) = s
            .call(
                Some(&token),
                Method::PUT,
                cfg,
                Some(json!({"external_registry_config": {"proxy": {"https_proxy": bad}}})),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert!(
            body["error_message"]
                .as_str()
                .unwrap_or_default()
                .contains(says),
            "{bad}: {body}"
        );
    }
}
