//! Builds (issue 14): the build API against Quay's recorded answers, the durable queue and the
//! build manager (claims, `ALLOWED_WORKER_COUNT`, `SETUP_TIME` restarts, executor failover),
//! and real builds with the `local` executor: `quayside builder` as a child process, buildah
//! building a real Dockerfile, skopeo pulling the result. The manager's passes are run by the
//! test (`workers::run_as`), so each step happens when the test says; the registry's clock is
//! the suite's manual clock (deadlines move only when the test advances it).

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::backend_tests;
use crate::common::oci::tar_gz;
use crate::common::quay::{assert_quay_error, expect_like};
use crate::common::tags::history;
use crate::common::tools::{require, run_ok};
use crate::common::{ADMIN, ADMIN_PASSWORD, Backend, Options, TestServer};

backend_tests!(
    build_api_has_quays_shapes,
    builds_need_the_feature_and_permissions,
    local_build_from_an_uploaded_archive,
    broken_dockerfile_ends_in_error,
    cancel_mid_build_leaves_no_tag,
    registration_timeout_restarts_three_times,
    worker_count_and_executor_failover,
    kubernetes_executor_runs_a_job,
    custom_git_trigger_builds_a_pushed_commit,
    trigger_api_and_github_signatures,
);

const HOLDER: &str = "test-build-manager";

fn local_executor(extra: &str) -> String {
    format!(
        "FEATURE_BUILD_SUPPORT: true\nBUILD_MANAGER:\n- ephemeral\n- ALLOWED_WORKER_COUNT: 1\n  ORCHESTRATOR_PREFIX: buildman/test/\n  EXECUTORS:\n  - EXECUTOR: local\n    NAME: local\n    SETUP_TIME: 30\n    BUILDER_BINARY: {}\n{extra}",
        env!("CARGO_BIN_EXE_quayside")
    )
}

async fn start(b: Backend, yaml: String) -> (TestServer, String) {
    let s = TestServer::start_with(
        b,
        Options {
            yaml,
            ..Options::default()
        },
    )
    .await;
    let token = s.init_admin().await;
    s.create_org(&token, "w2org").await;
    let (status, body) = s
        .call(
            Some(&token),
            Method::POST,
            "/repository",
            Some(
                json!({ "namespace": "w2org", "repository": "app", "visibility": "private",
                         "description": "", "repo_kind": "image" }),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    (s, token)
}

async fn pass(s: &TestServer) -> String {
    quayside::workers::run_as(s.ctx(), "builds", HOLDER)
        .await
        .unwrap()
}

async fn build(s: &TestServer, token: &str, uuid: &str) -> Value {
    let (status, body) = s
        .call(
            Some(token),
            Method::GET,
            &format!("/repository/w2org/app/build/{uuid}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

async fn logs(s: &TestServer, token: &str, uuid: &str, start: i64) -> Value {
    let (status, body) = s
        .call(
            Some(token),
            Method::GET,
            &format!("/repository/w2org/app/build/{uuid}/logs?start={start}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// Runs manager passes until the build's phase is one of `phases` (real time: the builder is
/// a real process).
async fn wait_for(s: &TestServer, token: &str, uuid: &str, phases: &[&str]) -> Value {
    for _ in 0..600 {
        pass(s).await;
        let b = build(s, token, uuid).await;
        if phases.contains(&b["phase"].as_str().unwrap_or_default()) {
            return b;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let l = logs(s, token, uuid, 0).await;
    panic!("build {uuid} never reached {phases:?}; logs: {l:#}");
}

/// Uploads a build context through the file drop; returns its file id.
async fn upload(s: &TestServer, token: &str, archive: Vec<u8>) -> String {
    let (status, drop) = s
        .call(
            Some(token),
            Method::POST,
            "/filedrop/",
            Some(json!({ "mimeType": "application/gzip" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{drop}");
    let url = drop["url"].as_str().unwrap();
    assert!(url.starts_with(&s.url), "{url}");
    let r = s
        .client
        .put(url)
        .body(archive.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // Once only.
    let r = s.client.put(url).body(archive).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);
    drop["file_id"].as_str().unwrap().to_owned()
}

async fn request(s: &TestServer, token: &str, body: Value) -> Value {
    let (status, b) = s
        .call(
            Some(token),
            Method::POST,
            "/repository/w2org/app/build/",
            Some(body),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{b}");
    b
}

fn messages(logs: &Value) -> Vec<String> {
    logs["logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["message"].as_str().unwrap_or_default().to_owned())
        .collect()
}

fn phases(logs: &Value) -> Vec<String> {
    logs["logs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["type"] == "phase")
        .map(|l| l["message"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// Subscribes the admin to every build event of `w2org/app` (in-app notifications).
async fn subscribe(s: &TestServer, token: &str) {
    for event in [
        "build_queued",
        "build_start",
        "build_success",
        "build_failure",
        "build_cancelled",
    ] {
        let (status, body) = s
            .call(
                Some(token),
                Method::POST,
                "/repository/w2org/app/notification/",
                Some(json!({ "event": event, "method": "quay_notification",
                             "config": { "target": { "name": ADMIN, "kind": "user" } },
                             "eventConfig": {}, "title": event })),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
}

/// Deliveries queued for the build event `kind` (see [`subscribe`]), with their payloads.
async fn events(s: &TestServer, kind: &str) -> Vec<Value> {
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT d.event_data FROM notification_delivery d \
         JOIN repo_notification n ON n.id = d.notification_id WHERE n.event = $1 ORDER BY d.id",
    )
    .bind(kind)
    .fetch_all(s.ctx().db.pool())
    .await
    .unwrap();
    rows.iter()
        .map(|r| serde_json::from_str(&r.0).unwrap())
        .collect()
}

/// The API answers as Quay's recorded ones: a request without input, a request, a get, empty
/// logs, a cancel and the cancelled build.
async fn build_api_has_quays_shapes(b: Backend) {
    let (s, token) = start(b, local_executor("")).await;
    let (status, body) = s
        .call(
            Some(&token),
            Method::POST,
            "/repository/w2org/app/build/",
            Some(json!({})),
        )
        .await;
    assert_quay_error(
        status,
        &body,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "file_id or archive_url required",
    );
    let r = s
        .as_bearer(&token)
        .request(Method::POST, "/api/v1/repository/w2org/app/build/")
        .json(&json!({ "archive_url": "http://127.0.0.2:40987/ctx.tar.gz", "docker_tags": ["built"] }))
        .send()
        .await
        .unwrap();
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    let created = expect_like(r, "more-107-build-request", &[]).await;
    let uuid = created["id"].as_str().unwrap().to_owned();
    assert_eq!(
        location,
        format!("/api/v1/repository/w2org/app/build/{uuid}/status")
    );
    // Quay's values: the display name is SHA-224 of the URL, the Dockerfile's path is both
    // `subdirectory` and `dockerfile_path`.
    assert_eq!(created["display_name"], "99f3989");
    assert_eq!(created["phase"], "waiting");
    assert_eq!(created["subdirectory"], "/Dockerfile");
    assert_eq!(created["dockerfile_path"], "/Dockerfile");
    assert_eq!(created["context"], "/");
    assert_eq!(created["tags"], json!(["built"]));
    assert_eq!(created["manual_user"], ADMIN);
    assert_eq!(created["is_writer"], true);
    assert_eq!(created["archive_url"], "http://127.0.0.2:40987/ctx.tar.gz");
    assert!(created["started"].as_str().unwrap().ends_with(" -0000"));

    let r = s
        .as_bearer(&token)
        .send(
            Method::GET,
            &format!("/api/v1/repository/w2org/app/build/{uuid}"),
        )
        .await;
    let got = expect_like(r, "more-109-build-get", &[]).await;
    assert_eq!(got, created);
    let r = s
        .as_bearer(&token)
        .send(
            Method::GET,
            &format!("/api/v1/repository/w2org/app/build/{uuid}/status"),
        )
        .await;
    assert_eq!(r.json::<Value>().await.unwrap(), created);
    let r = s
        .as_bearer(&token)
        .send(
            Method::GET,
            &format!("/api/v1/repository/w2org/app/build/{uuid}/logs"),
        )
        .await;
    let l = expect_like(r, "more-111-build-logs", &[]).await;
    assert_eq!(l, json!({ "start": 0, "total": 0, "logs": [] }));

    // The superuser's views of the same build, found by its uuid alone; refused to others.
    for view in ["build", "status"] {
        let (status, body) = s
            .call(
                Some(&token),
                Method::GET,
                &format!("/superuser/{uuid}/{view}"),
                None,
            )
            .await;
        assert_eq!((status, &body), (StatusCode::OK, &created), "{view}");
    }
    let (status, body) = s
        .call(
            Some(&token),
            Method::GET,
            &format!("/superuser/{uuid}/logs?start=0"),
            None,
        )
        .await;
    assert_eq!((status, body), (StatusCode::OK, l.clone()));
    let (_, _, plain) = s.user_with_token("notsuper").await;
    for view in ["build", "status", "logs"] {
        let (status, body) = s
            .call(
                Some(&plain),
                Method::GET,
                &format!("/superuser/{uuid}/{view}"),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{view}: {body}");
    }

    // subdirectory and dockerfile_path as Quay derives them.
    let sub = request(
        &s,
        &token,
        json!({ "archive_url": "https://example.com/a.tgz", "subdirectory": "web" }),
    )
    .await;
    assert_eq!(sub["subdirectory"], "web/Dockerfile");
    assert_eq!(sub["context"], "web");
    assert_eq!(sub["tags"], json!(["latest"]));
    let path = request(
        &s,
        &token,
        json!({ "archive_url": "https://example.com/a.tgz", "dockerfile_path": "/srv/Containerfile" }),
    )
    .await;
    assert_eq!(path["dockerfile_path"], "/srv/Containerfile");
    assert_eq!(path["context"], "/srv");

    // The list, newest first, with `limit`.
    let (status, list) = s
        .call(
            Some(&token),
            Method::GET,
            "/repository/w2org/app/build/?limit=2",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let ids: Vec<&str> = list["builds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 2, "{list}");
    assert_eq!(ids[0], path["id"].as_str().unwrap());

    // Cancel: "Okay" 201, then the build is `cancelled`; a second cancel is refused.
    let (status, body) = s
        .call(
            Some(&token),
            Method::DELETE,
            &format!("/repository/w2org/app/build/{uuid}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body, json!("Okay"));
    let r = s
        .as_bearer(&token)
        .send(
            Method::GET,
            &format!("/api/v1/repository/w2org/app/build/{uuid}"),
        )
        .await;
    let cancelled = expect_like(r, "more-113-build-get-after-cancel", &[]).await;
    assert_eq!(cancelled["phase"], "cancelled");
    assert_eq!(cancelled["error"], Value::Null);
    let (status, body) = s
        .call(
            Some(&token),
            Method::DELETE,
            &format!("/repository/w2org/app/build/{uuid}"),
            None,
        )
        .await;
    assert_quay_error(
        status,
        &body,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "Build is currently running or has finished",
    );

    // Bad input: a non-http URL, a bad tag, a context leaving the archive, an unknown file.
    for (body, message) in [
        (
            json!({ "archive_url": "ftp://example.com/x.tgz" }),
            "Invalid Archive URL: Must be http or https",
        ),
        (
            json!({ "archive_url": "not a url" }),
            "Invalid Archive URL: Must be a valid URI",
        ),
        (
            json!({ "archive_url": "https://example.com/x.tgz", "docker_tags": ["bad tag!"] }),
            "Invalid tag name: \"bad tag!\"",
        ),
        (
            json!({ "archive_url": "https://example.com/x.tgz", "subdirectory": "../up" }),
            "context must stay inside the build context: \"../up\"",
        ),
        (
            json!({ "file_id": "6a3f7c0e-1111-4222-8333-944445555666" }),
            "File 6a3f7c0e-1111-4222-8333-944445555666 could not be found or is invalid",
        ),
    ] {
        let (status, answer) = s
            .call(
                Some(&token),
                Method::POST,
                "/repository/w2org/app/build/",
                Some(body),
            )
            .await;
        assert_quay_error(
            status,
            &answer,
            StatusCode::BAD_REQUEST,
            "invalid_request",
            message,
        );
    }
    let (status, _) = s
        .call(
            Some(&token),
            Method::GET,
            "/repository/w2org/app/build/00000000-0000-4000-8000-000000000000",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Audit log and notification events.
    s.flush_audit().await;
    let audit = s.audit("w2org").await;
    assert_eq!(
        audit
            .iter()
            .filter(|e| e.kind == "build_dockerfile")
            .count(),
        3
    );
    assert_eq!(audit.iter().filter(|e| e.kind == "cancel_build").count(), 1);
}

/// Without `FEATURE_BUILD_SUPPORT` the endpoints are absent (404); readers see builds but not
/// their logs, and cannot request or cancel.
async fn builds_need_the_feature_and_permissions(b: Backend) {
    let (off, token) = start(b, String::new()).await;
    let (status, _) = off
        .call(
            Some(&token),
            Method::GET,
            "/repository/w2org/app/build/",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = off
        .call(
            Some(&token),
            Method::POST,
            "/filedrop/",
            Some(json!({ "mimeType": "application/gzip" })),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    drop(off);

    let (s, token) = start(b, local_executor("")).await;
    let (reader, _, reader_token) = s.user_with_token("reader").await;
    let (status, body) = s
        .call(
            Some(&token),
            Method::PUT,
            &format!("/repository/w2org/app/permissions/user/{reader}"),
            Some(json!({ "role": "read" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let created = request(
        &s,
        &token,
        json!({ "archive_url": "https://example.com/a.tgz" }),
    )
    .await;
    let uuid = created["id"].as_str().unwrap();
    let seen = build(&s, &reader_token, uuid).await;
    assert_eq!(seen["is_writer"], false);
    assert!(seen.get("archive_url").is_none(), "{seen}");
    for (method, path, body) in [
        (
            Method::GET,
            format!("/repository/w2org/app/build/{uuid}/logs"),
            None,
        ),
        (
            Method::POST,
            "/repository/w2org/app/build/".to_owned(),
            Some(json!({ "archive_url": "https://example.com/a.tgz" })),
        ),
        (
            Method::DELETE,
            format!("/repository/w2org/app/build/{uuid}"),
            None,
        ),
    ] {
        let (status, answer) = s.call(Some(&reader_token), method, &path, body).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}: {answer}");
    }
    let (status, _) = s
        .call(None, Method::GET, "/repository/w2org/app/build/", None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

/// The proof: an uploaded archive with a real Dockerfile (`FROM scratch`, `COPY`, `LABEL
/// quay.expires-after`) becomes a pullable image whose tags expire as labelled; phases and
/// logs are readable; the events are raised; the builder's directory is removed.
async fn local_build_from_an_uploaded_archive(b: Backend) {
    require("buildah");
    let skopeo = require("skopeo");
    let (s, token) = start(b, local_executor("")).await;
    subscribe(&s, &token).await;
    let archive = tar_gz(&[
        (
            "Dockerfile",
            b"FROM scratch\nCOPY hello.txt /hello.txt\nLABEL quay.expires-after=2h\n",
        ),
        ("hello.txt", b"hello from a quayside build\n"),
    ]);
    let file_id = upload(&s, &token, archive.clone()).await;
    let created = request(
        &s,
        &token,
        json!({ "file_id": file_id, "docker_tags": ["v1", "latest"] }),
    )
    .await;
    let uuid = created["id"].as_str().unwrap().to_owned();
    // Quay names a file build by its checksum.
    assert_eq!(
        created["display_name"],
        crate::common::oci::sha256(&archive)[7..14]
    );
    assert_eq!(created["resource_key"], file_id.as_str());
    assert!(
        created["archive_url"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/userfiles/{file_id}"))
    );
    let done = wait_for(&s, &token, &uuid, &["complete", "error", "expired"]).await;
    let l = logs(&s, &token, &uuid, 0).await;
    assert_eq!(done["phase"], "complete", "{done}\n{l:#}");
    assert_eq!(done["error"], Value::Null);
    assert_eq!(
        phases(&l),
        vec![
            "build-scheduled",
            "unpacking",
            "pulling",
            "building",
            "pushing",
            "complete"
        ],
        "{l:#}"
    );
    let lines = messages(&l);
    assert!(
        lines
            .iter()
            .any(|m| m == "STEP 2/3: COPY hello.txt /hello.txt"),
        "{lines:?}"
    );
    let steps = l["logs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "command")
        .count();
    assert_eq!(steps, 3, "{l:#}");
    assert!(l["logs"][0]["data"]["datetime"].is_string(), "{l:#}");
    // Paged with `start`.
    let total = l["total"].as_i64().unwrap();
    let tail = logs(&s, &token, &uuid, total - 2).await;
    assert_eq!(tail["start"], total - 2);
    assert_eq!(tail["total"], total);
    assert_eq!(tail["logs"].as_array().unwrap().len(), 2);
    assert_eq!(tail["logs"][1]["message"], "complete");

    // Pullable, with the file inside; the tags expire 2 h after the push, as labelled.
    let out = tempfile::tempdir().unwrap();
    let layout = out.path().join("layout");
    run_ok(
        std::process::Command::new(&skopeo)
            .args(["copy", "--src-tls-verify=false", "--src-creds"])
            .arg(format!("{ADMIN}:{ADMIN_PASSWORD}"))
            .arg(format!("docker://{}/w2org/app:v1", s.host))
            .arg(format!("oci:{}:v1", layout.display())),
    );
    let inspect = run_ok(
        std::process::Command::new(&skopeo)
            .args(["inspect", "--config"])
            .arg(format!("oci:{}:v1", layout.display())),
    );
    let config: Value = serde_json::from_slice(&inspect.stdout).unwrap();
    assert_eq!(
        config["config"]["Labels"]["quay.expires-after"], "2h",
        "{config}"
    );
    let index: Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let manifest_digest = index["manifests"][0]["digest"].as_str().unwrap();
    let manifest: Value = serde_json::from_slice(
        &std::fs::read(
            layout
                .join("blobs/sha256")
                .join(manifest_digest.trim_start_matches("sha256:")),
        )
        .unwrap(),
    )
    .unwrap();
    let layer = manifest["layers"][0]["digest"].as_str().unwrap();
    let listing = run_ok(
        std::process::Command::new("tar").arg("-tzf").arg(
            layout
                .join("blobs/sha256")
                .join(layer.trim_start_matches("sha256:")),
        ),
    );
    assert!(
        String::from_utf8_lossy(&listing.stdout).contains("hello.txt"),
        "{}",
        String::from_utf8_lossy(&listing.stdout)
    );
    let h = history(&s, &token, "w2org/app", "?onlyActiveTags=true").await;
    let tags = h["tags"].as_array().unwrap();
    assert_eq!(tags.len(), 2, "{h}");
    for tag in tags {
        assert_eq!(tag["manifest_digest"], manifest_digest, "{h}");
        let start = tag["start_ts"].as_i64().unwrap();
        assert_eq!(tag["end_ts"], start + 7200, "{h}");
    }

    // Events: queued, started, succeeded (with the digest).
    assert_eq!(events(&s, "build_queued").await.len(), 1);
    assert_eq!(events(&s, "build_start").await.len(), 1);
    let success = events(&s, "build_success").await;
    assert_eq!(success.len(), 1);
    assert_eq!(success[0]["build_id"], uuid.as_str());
    assert_eq!(success[0]["image_id"], manifest_digest);
    assert_eq!(success[0]["docker_tags"], json!(["v1", "latest"]));
    assert_eq!(success[0]["repository"], "w2org/app");
    // The builder is gone, its directory removed.
    for _ in 0..50 {
        pass(&s).await;
        let left: Vec<_> = std::fs::read_dir(s.data_dir().join("builds"))
            .map(|d| d.flatten().collect())
            .unwrap_or_default();
        if left.is_empty() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the builder's directory was not removed");
}

/// A Dockerfile buildah cannot build ends in `error` with buildah's message; nothing is pushed.
async fn broken_dockerfile_ends_in_error(b: Backend) {
    require("buildah");
    let (s, token) = start(b, local_executor("")).await;
    subscribe(&s, &token).await;
    let archive = tar_gz(&[(
        "Dockerfile",
        b"FROM scratch\nCOPY missing.txt /missing.txt\n",
    )]);
    let file_id = upload(&s, &token, archive).await;
    let created = request(&s, &token, json!({ "file_id": file_id })).await;
    let uuid = created["id"].as_str().unwrap().to_owned();
    let done = wait_for(&s, &token, &uuid, &["complete", "error", "expired"]).await;
    let l = logs(&s, &token, &uuid, 0).await;
    assert_eq!(done["phase"], "error", "{l:#}");
    let error = done["error"].as_str().unwrap();
    assert!(error.contains("missing.txt"), "{error}");
    // The message is buildah's, and it is the last error line of the logs.
    let last_error = l["logs"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|e| e["type"] == "error")
        .unwrap();
    assert_eq!(last_error["message"], error);
    assert_eq!(*phases(&l).last().unwrap(), "error");
    let failure = events(&s, "build_failure").await;
    assert_eq!(failure.len(), 1);
    assert_eq!(failure[0]["error_message"], error);
    let h = history(&s, &token, "w2org/app", "").await;
    assert!(h["tags"].as_array().unwrap().is_empty(), "{h}");
    // A missing Dockerfile too.
    let archive = tar_gz(&[("README", b"no dockerfile here")]);
    let file_id = upload(&s, &token, archive).await;
    let created = request(&s, &token, json!({ "file_id": file_id })).await;
    let uuid = created["id"].as_str().unwrap().to_owned();
    let done = wait_for(&s, &token, &uuid, &["complete", "error", "expired"]).await;
    assert_eq!(
        done["error"],
        "Could not find a Dockerfile at /Dockerfile in the build context"
    );
}

/// Cancelling while the builder holds a built image (stopped at its `builder.built` point,
/// before the push) kills it: the build is `cancelled`, no tag exists, the process is gone.
async fn cancel_mid_build_leaves_no_tag(b: Backend) {
    require("buildah");
    let (s, token) = start(
        b,
        local_executor("    BUILDER_ENV:\n      QUAYSIDE_TEST_PAUSE_AT: builder.built\n"),
    )
    .await;
    subscribe(&s, &token).await;
    let archive = tar_gz(&[
        ("Dockerfile", b"FROM scratch\nCOPY a.txt /a.txt\n"),
        ("a.txt", b"a"),
    ]);
    let file_id = upload(&s, &token, archive).await;
    let created = request(&s, &token, json!({ "file_id": file_id })).await;
    let uuid = created["id"].as_str().unwrap().to_owned();
    wait_for(&s, &token, &uuid, &["building"]).await;
    // Wait until buildah committed the image (the builder is then paused before pushing).
    let mut committed = false;
    for _ in 0..300 {
        let l = logs(&s, &token, &uuid, 0).await;
        if messages(&l).iter().any(|m| m.starts_with("COMMIT")) {
            committed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(committed, "the build never committed");
    let pid: (Option<String>,) =
        sqlx::query_as("SELECT executor_ref FROM repository_build WHERE uuid = $1")
            .bind(&uuid)
            .fetch_one(s.ctx().db.pool())
            .await
            .unwrap();
    let pid: u32 = pid.0.unwrap().trim_start_matches("local:").parse().unwrap();
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());

    let (status, _) = s
        .call(
            Some(&token),
            Method::DELETE,
            &format!("/repository/w2org/app/build/{uuid}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(build(&s, &token, &uuid).await["phase"], "cancelled");
    pass(&s).await;
    // The process is gone (not even a zombie: it was reaped).
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "builder {pid} still runs"
    );
    let h = history(&s, &token, "w2org/app", "").await;
    assert!(h["tags"].as_array().unwrap().is_empty(), "{h}");
    assert_eq!(events(&s, "build_cancelled").await.len(), 1);
    assert_eq!(build(&s, &token, &uuid).await["phase"], "cancelled");
}

/// A builder that never registers is given up after `SETUP_TIME` and the build restarted,
/// three times; then the build is `expired` (Quay's view of an internal error with no retries
/// left) and `build_failure` is raised. Every attempt's process is killed.
async fn registration_timeout_restarts_three_times(b: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let sleeper = dir.path().join("never-registers");
    std::fs::write(&sleeper, "#!/bin/sh\nexec sleep 600\n").unwrap();
    std::fs::set_permissions(
        &sleeper,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let yaml = format!(
        "FEATURE_BUILD_SUPPORT: true\nEXECUTORS:\n- EXECUTOR: local\n  NAME: slow\n  SETUP_TIME: 60\n  BUILDER_BINARY: {}\n",
        sleeper.display()
    );
    let (s, token) = start(b, yaml).await;
    subscribe(&s, &token).await;
    let created = request(
        &s,
        &token,
        json!({ "archive_url": "http://127.0.0.1:9/x.tgz" }),
    )
    .await;
    let uuid = created["id"].as_str().unwrap().to_owned();
    let mut pids = Vec::new();
    for attempt in 0..4 {
        pass(&s).await;
        let b = build(&s, &token, &uuid).await;
        assert_eq!(b["phase"], "build-scheduled", "attempt {attempt}: {b}");
        let row: (Option<String>,) =
            sqlx::query_as("SELECT executor_ref FROM repository_build WHERE uuid = $1")
                .bind(&uuid)
                .fetch_one(s.ctx().db.pool())
                .await
                .unwrap();
        let pid: u32 = row.0.unwrap().trim_start_matches("local:").parse().unwrap();
        assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());
        pids.push(pid);
        // Within SETUP_TIME nothing happens.
        s.clock.advance_ms(59_000);
        pass(&s).await;
        assert_eq!(build(&s, &token, &uuid).await["phase"], "build-scheduled");
        s.clock.advance_ms(2_000);
        if attempt < 3 {
            // The pass that gives up also claims it again; look in between through the logs.
            pass(&s).await;
            let l = logs(&s, &token, &uuid, 0).await;
            let restarts = messages(&l)
                .iter()
                .filter(|m| m.contains("did not register within SETUP_TIME (60 s)"))
                .count();
            assert_eq!(restarts, attempt + 1, "{l:#}");
            assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
        }
    }
    // The fourth attempt times out with no retries left.
    pass(&s).await;
    let b = build(&s, &token, &uuid).await;
    assert_eq!(b["phase"], "expired", "{b}");
    assert!(
        b["error"]
            .as_str()
            .unwrap()
            .contains("did not register within SETUP_TIME (60 s); no retries left"),
        "{b}"
    );
    for pid in pids {
        assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
    }
    assert_eq!(events(&s, "build_failure").await.len(), 1);
    let l = logs(&s, &token, &uuid, 0).await;
    assert_eq!(
        phases(&l).iter().filter(|p| *p == "internalerror").count(),
        4,
        "{l:#}"
    );
    // Nothing is left to cancel.
    let (status, _) = s
        .call(
            Some(&token),
            Method::DELETE,
            &format!("/repository/w2org/app/build/{uuid}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

/// `ALLOWED_WORKER_COUNT` bounds the builds this manager runs at once; the queue hands each
/// build to one claimer; `MINIMUM_RETRY_THRESHOLD` moves a restarted build to the next
/// executor.
async fn worker_count_and_executor_failover(b: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let sleeper = dir.path().join("never-registers");
    std::fs::write(&sleeper, "#!/bin/sh\nexec sleep 600\n").unwrap();
    std::fs::set_permissions(
        &sleeper,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let yaml = format!(
        "FEATURE_BUILD_SUPPORT: true\nBUILD_MANAGER:\n- ephemeral\n- ALLOWED_WORKER_COUNT: 2\nEXECUTORS:\n- EXECUTOR: kubernetes\n  NAME: cluster\n  BUILDER_NAMESPACE: builds\n  K8S_API_SERVER: http://127.0.0.1:9\n  MINIMUM_RETRY_THRESHOLD: 3\n- EXECUTOR: local\n  NAME: fallback\n  SETUP_TIME: 60\n  BUILDER_BINARY: {}\n",
        sleeper.display()
    );
    let (s, token) = start(b, yaml).await;
    let mut uuids = Vec::new();
    for _ in 0..3 {
        let created = request(
            &s,
            &token,
            json!({ "archive_url": "http://127.0.0.1:9/x.tgz" }),
        )
        .await;
        uuids.push(created["id"].as_str().unwrap().to_owned());
    }
    // First pass: the kubernetes executor (3 retries left) cannot start the oldest build:
    // the attempt is given up and the build queued again with 2 retries, so its next claim
    // goes to `fallback`; the second build the same; then ALLOWED_WORKER_COUNT (2) is reached
    // and the third keeps waiting.
    pass(&s).await;
    for uuid in &uuids[..2] {
        let b = build(&s, &token, uuid).await;
        assert_eq!(b["phase"], "build-scheduled", "{b}");
        let lines = messages(&logs(&s, &token, uuid, 0).await);
        let cluster = lines
            .iter()
            .position(|m| m == "Scheduled on executor cluster")
            .expect("tried on cluster");
        let failed = lines
            .iter()
            .position(|m| m.contains("creating Job builds/quayside-build-"))
            .expect("cluster failed");
        let fallback = lines
            .iter()
            .position(|m| m == "Scheduled on executor fallback")
            .expect("then fallback");
        assert!(cluster < failed && failed < fallback, "{lines:?}");
    }
    let third = build(&s, &token, &uuids[2]).await;
    assert_eq!(third["phase"], "waiting", "{third}");
    let scheduled = 2;
    assert_eq!(scheduled, 2, "ALLOWED_WORKER_COUNT: 2");
    // Another manager (replica) claims the third, never one of the two.
    quayside::workers::run_as(s.ctx(), "builds", "other-replica")
        .await
        .unwrap();
    let claimers: Vec<(Option<String>,)> = sqlx::query_as(
        "SELECT claimed_by FROM repository_build WHERE phase = 'build-scheduled' ORDER BY id",
    )
    .fetch_all(s.ctx().db.pool())
    .await
    .unwrap();
    let claimers: Vec<String> = claimers.into_iter().filter_map(|c| c.0).collect();
    assert_eq!(claimers.len(), 3, "{claimers:?}");
    assert_eq!(
        claimers.iter().filter(|c| *c == "other-replica").count(),
        1,
        "{claimers:?}"
    );
    // Clean up the sleepers.
    for uuid in &uuids {
        let (status, _) = s
            .call(
                Some(&token),
                Method::DELETE,
                &format!("/repository/w2org/app/build/{uuid}"),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
    }
}

/// The kubernetes executor against the Kubernetes API emulator: a build makes a Job in
/// `BUILDER_NAMESPACE` (labels, limits, node selector, service account, TTL, the token in a
/// Secret it owns); the builder runs as the Job's pod would (the same binary, with the Job's
/// command and the Secret's token), the image lands in the registry, and the manager deletes
/// the Job and its Secret.
async fn kubernetes_executor_runs_a_job(b: Backend) {
    use k8s_openapi::api::batch::v1::Job;
    use k8s_openapi::api::core::v1::{Namespace, Secret};
    use kube::api::{Api, ListParams, PostParams};

    require("buildah");
    let emulator = kube_emulator::Emulator::builder()
        .plain_http(true)
        .start()
        .await
        .unwrap();
    let kube = emulator.client();
    let ns: Namespace =
        serde_json::from_value(json!({ "metadata": { "name": "builds" } })).unwrap();
    Api::<Namespace>::all(kube.clone())
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
    let yaml = format!(
        "FEATURE_BUILD_SUPPORT: true\nEXECUTORS:\n- EXECUTOR: kubernetes\n  NAME: cluster\n  BUILDER_NAMESPACE: builds\n  K8S_API_SERVER: {}\n  SERVICE_ACCOUNT_TOKEN: {}\n  SERVICE_ACCOUNT_NAME: quay-builder\n  SETUP_TIME: 120\n  WORKER_IMAGE: registry.example.com/quayside\n  WORKER_TAG: v9\n  CONTAINER_MEMORY_LIMITS: 1Gi\n  CONTAINER_CPU_REQUEST: 250m\n  NODE_SELECTOR_LABEL_KEY: kubernetes.io/arch\n  NODE_SELECTOR_LABEL_VALUE: amd64\n  VOLUME_SIZE: 2G\n",
        emulator.url(),
        kube_emulator::Emulator::service_account_token("kube-system", "admin"),
    );
    let (s, token) = start(b, yaml).await;
    let archive = tar_gz(&[
        ("Dockerfile", b"FROM scratch\nCOPY k.txt /k.txt\n"),
        ("k.txt", b"built in a job"),
    ]);
    let file_id = upload(&s, &token, archive).await;
    let created = request(
        &s,
        &token,
        json!({ "file_id": file_id, "docker_tags": ["job"] }),
    )
    .await;
    let uuid = created["id"].as_str().unwrap().to_owned();
    pass(&s).await;
    assert_eq!(build(&s, &token, &uuid).await["phase"], "build-scheduled");

    let jobs: Api<Job> = Api::namespaced(kube.clone(), "builds");
    let listed = jobs
        .list(&ListParams::default().labels(&format!("quayside.dev/build={uuid}")))
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 1);
    let job = serde_json::to_value(&listed.items[0]).unwrap();
    let name = job["metadata"]["name"].as_str().unwrap().to_owned();
    assert_eq!(
        job["metadata"]["labels"]["app.kubernetes.io/component"],
        "builder"
    );
    assert_eq!(job["spec"]["backoffLimit"], 0);
    assert_eq!(job["spec"]["ttlSecondsAfterFinished"], 600);
    let pod = &job["spec"]["template"]["spec"];
    assert_eq!(pod["restartPolicy"], "Never");
    assert_eq!(pod["serviceAccountName"], "quay-builder");
    assert_eq!(
        pod["nodeSelector"],
        json!({ "kubernetes.io/arch": "amd64" })
    );
    assert_eq!(pod["volumes"][0]["emptyDir"]["sizeLimit"], "2G");
    let container = &pod["containers"][0];
    assert_eq!(container["image"], "registry.example.com/quayside:v9");
    assert_eq!(container["resources"]["limits"]["memory"], "1Gi");
    assert_eq!(container["resources"]["limits"]["cpu"], "1000m");
    assert_eq!(container["resources"]["requests"]["cpu"], "250m");
    let env = &container["env"][0];
    assert_eq!(env["name"], "QUAYSIDE_BUILD_TOKEN");
    assert_eq!(env["valueFrom"]["secretKeyRef"]["name"], name.as_str());
    assert!(
        !job.to_string().contains("stringData"),
        "no token in the Job"
    );
    let command: Vec<String> = serde_json::from_value(container["command"].clone()).unwrap();
    assert_eq!(command[..3], ["quayside", "builder", "--manager"]);
    assert_eq!(command[3], s.url);

    let secrets: Api<Secret> = Api::namespaced(kube.clone(), "builds");
    let secret = serde_json::to_value(secrets.get(&name).await.unwrap()).unwrap();
    assert_eq!(secret["metadata"]["ownerReferences"][0]["kind"], "Job");
    let build_token = secret["data"]["token"]
        .as_str()
        .map(|b64| {
            use base64::Engine;
            String::from_utf8(
                base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .unwrap(),
            )
            .unwrap()
        })
        .or_else(|| secret["stringData"]["token"].as_str().map(str::to_owned))
        .unwrap();

    // The Job's pod: the same binary, command and token.
    let work = tempfile::tempdir().unwrap();
    let mut pod_process = tokio::process::Command::new(env!("CARGO_BIN_EXE_quayside"))
        .args(&command[1..4])
        .arg("--work-dir")
        .arg(work.path())
        .env("QUAYSIDE_BUILD_TOKEN", &build_token)
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let done = wait_for(&s, &token, &uuid, &["complete", "error", "expired"]).await;
    assert_eq!(
        done["phase"],
        "complete",
        "{:#}",
        logs(&s, &token, &uuid, 0).await
    );
    assert!(pod_process.wait().await.unwrap().success());
    let h = history(&s, &token, "w2org/app", "?specificTag=job").await;
    assert_eq!(h["tags"].as_array().unwrap().len(), 1, "{h}");

    // Finished: the manager deletes the Job and its Secret.
    pass(&s).await;
    let left = jobs.list(&ListParams::default()).await.unwrap();
    assert!(left.items.is_empty(), "{:?}", left.items);
    assert!(secrets.get_opt(&name).await.unwrap().is_none());
}

// ---------------------------------------------------------------------------------------------
// Triggers

/// An `sshd` on a free loopback port that lets in only `authorized` (the trigger's deploy
/// key), as root; stopped when dropped.
struct Sshd {
    child: std::process::Child,
    _dir: tempfile::TempDir,
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn sshd(port: u16, authorized: &str) -> Sshd {
    let sshd = require("sshd");
    let dir = tempfile::tempdir().unwrap();
    let host_key = dir.path().join("host_key");
    run_ok(
        std::process::Command::new(require("ssh-keygen"))
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&host_key),
    );
    let keys = dir.path().join("authorized_keys");
    std::fs::write(&keys, format!("{authorized}\n")).unwrap();
    let config = dir.path().join("sshd_config");
    std::fs::write(
        &config,
        format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {}\nAuthorizedKeysFile {}\n\
             PidFile {}\nStrictModes no\nUsePAM no\nPasswordAuthentication no\n\
             KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\n",
            host_key.display(),
            keys.display(),
            dir.path().join("sshd.pid").display()
        ),
    )
    .unwrap();
    std::fs::create_dir_all("/run/sshd").unwrap();
    let mut child = std::process::Command::new(sshd)
        .args(["-D", "-e", "-f"])
        .arg(&config)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Sshd { child, _dir: dir };
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("sshd did not listen on {port}");
}

fn git(dir: &std::path::Path, args: &[&str]) -> String {
    let out = run_ok(
        std::process::Command::new(require("git"))
            .arg("-C")
            .arg(dir)
            .args([
                "-c",
                "user.name=alice",
                "-c",
                "user.email=alice@example.com",
            ])
            .args(args),
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

async fn trigger_call(
    s: &TestServer,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    s.call(
        Some(token),
        method,
        &format!("/repository/w2org/app/trigger/{path}"),
        body,
    )
    .await
}

/// Creates and activates a trigger of `service`; answers its view.
async fn activated_trigger(s: &TestServer, token: &str, service: &str, config: Value) -> Value {
    let (status, created) = trigger_call(
        s,
        token,
        Method::POST,
        "",
        Some(json!({ "service": service })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["is_active"], false, "{created}");
    assert_eq!(created["service"], service);
    let uuid = created["id"].as_str().unwrap();
    let (status, active) = trigger_call(
        s,
        token,
        Method::POST,
        &format!("{uuid}/activate"),
        Some(json!({ "config": config })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{active}");
    assert_eq!(active["is_active"], true, "{active}");
    assert_eq!(active["enabled"], true);
    assert_eq!(active["can_invoke"], true);
    // Activated once only.
    let (status, again) = trigger_call(
        s,
        token,
        Method::POST,
        &format!("{uuid}/activate"),
        Some(json!({ "config": config })),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{again}");
    active
}

fn credential(trigger: &Value, name: &str) -> String {
    trigger["config"]["credentials"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {trigger}"))["value"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn trigger_builds(s: &TestServer, token: &str, uuid: &str) -> Vec<Value> {
    let (status, body) = trigger_call(
        s,
        token,
        Method::GET,
        &format!("{uuid}/builds?limit=20"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["builds"].as_array().unwrap().clone()
}

/// Custom git trigger end to end: the registry's deploy key is the only key sshd accepts; a
/// webhook push (basic auth `$token:<secret>`, the seeds' payload) builds the commit cloned
/// over ssh with the local executor and tags it by the templates; `[skip build]` and a branch
/// the regex does not match build nothing; a bad token is refused (403).
async fn custom_git_trigger_builds_a_pushed_commit(b: Backend) {
    require("buildah");
    require("git");
    let (s, token) = start(b, local_executor("")).await;
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    git(&src, &["init", "-q", "-b", "main"]);
    std::fs::write(
        src.join("Dockerfile"),
        "FROM scratch\nCOPY hello.txt /hello.txt\n",
    )
    .unwrap();
    std::fs::write(src.join("hello.txt"), "hello from a trigger\n").unwrap();
    git(&src, &["add", "."]);
    git(&src, &["commit", "-q", "-m", "first"]);
    let commit = git(&src, &["rev-parse", "HEAD"]);
    let bare = work.path().join("repo.git");
    run_ok(
        std::process::Command::new(require("git"))
            .args(["clone", "-q", "--bare"])
            .arg(&src)
            .arg(&bare),
    );

    // The trigger names the port sshd will listen on; sshd then trusts its deploy key only.
    let port = free_port();
    let source = format!("ssh://root@127.0.0.1:{port}{}", bare.display());
    let trigger = activated_trigger(
        &s,
        &token,
        "custom-git",
        json!({
            "build_source": source,
            "dockerfile_path": "/Dockerfile",
            "context": "/",
            "branchtag_regex": "heads/(main|release-.*)",
            "tag_templates": ["${commit_info.short_sha}", "${parsed_ref.branch}-${commit_info.author}"],
        }),
    )
    .await;
    let uuid = trigger["id"].as_str().unwrap().to_owned();
    assert_eq!(trigger["build_source"], source.as_str());
    let public_key = credential(&trigger, "SSH Public Key");
    assert!(public_key.starts_with("ssh-ed25519 "), "{public_key}");
    let url = credential(&trigger, "Webhook Endpoint URL");
    let prefix = "http://%24token:";
    assert!(url.starts_with(prefix), "{url}");
    let (secret, rest) = url[prefix.len()..].split_once('@').unwrap();
    assert_eq!(rest, format!("{}/webhooks/push/trigger/{uuid}", s.host));
    // The secret and the private key are not in the config beyond the URL.
    assert!(!trigger.to_string().contains("PRIVATE KEY"));
    let server = sshd(port, &public_key);

    let hook = format!("{}/webhooks/push/trigger/{uuid}", s.url);
    let payload = |r: &str, message: &str| {
        json!({
            "commit": commit, "ref": r, "default_branch": "main",
            "commit_info": {
                "url": "http://git.example/commit/1", "message": message,
                "date": "2026-12-03T10:00:00Z",
                "author": { "username": "alice", "avatar_url": "http://a/alice.png", "url": "http://a/alice" },
                "committer": { "username": "bob", "avatar_url": "http://a/bob.png", "url": "http://a/bob" },
            }
        })
    };
    // Refused: no credentials, a wrong secret, a wrong username.
    for auth in [None, Some(("$token", "wrong")), Some(("token", secret))] {
        let mut r = s.client.post(&hook).json(&payload("refs/heads/main", "x"));
        if let Some((u, p)) = auth {
            r = r.basic_auth(u, Some(p));
        }
        let r = r.send().await.unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{auth:?}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"], "Permission Denied");
    }
    // Skipped: `[skip build]`, `[build skip]`, a branch the regex does not match.
    for (r, message) in [
        ("refs/heads/main", "wip [skip build]"),
        ("refs/heads/main", "[build skip] docs"),
        ("refs/heads/feature", "a feature"),
        ("refs/heads/mainline", "not main"),
    ] {
        let r = s
            .client
            .post(&hook)
            .basic_auth("$token", Some(secret))
            .json(&payload(r, message))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.text().await.unwrap(), "Okay");
    }
    assert!(trigger_builds(&s, &token, &uuid).await.is_empty());
    // A bad payload is 400.
    let r = s
        .client
        .post(&hook)
        .basic_auth("$token", Some(secret))
        .json(&json!({ "commit": "zz", "ref": "refs/heads/main" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    // A push to main builds.
    let r = s
        .client
        .post(&hook)
        .basic_auth("$token", Some(secret))
        .json(&payload("refs/heads/main", "first"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let found = trigger_builds(&s, &token, &uuid).await;
    assert_eq!(found.len(), 1, "{found:?}");
    let queued = &found[0];
    let short = &commit[..7];
    assert_eq!(queued["display_name"], short);
    assert_eq!(
        queued["tags"],
        json!(["main", "latest", short, "main-alice"]),
        "{queued}"
    );
    assert_eq!(queued["trigger"]["id"], uuid.as_str());
    assert_eq!(queued["trigger"]["service"], "custom-git");
    assert_eq!(queued["trigger_metadata"]["commit"], commit.as_str());
    assert_eq!(queued["trigger_metadata"]["git_url"], source.as_str());
    assert_eq!(queued["manual_user"], Value::Null);
    let build_uuid = queued["id"].as_str().unwrap().to_owned();
    let done = wait_for(&s, &token, &build_uuid, &["complete", "error", "expired"]).await;
    let l = logs(&s, &token, &build_uuid, 0).await;
    assert_eq!(done["phase"], "complete", "{done}\n{l:#}");
    assert!(
        messages(&l)
            .iter()
            .any(|m| m == &format!("Checked out {commit}")),
        "{l:#}"
    );
    let h = history(&s, &token, "w2org/app", "?onlyActiveTags=true").await;
    let mut names: Vec<String> = h["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    let mut expected = vec![
        "latest".to_owned(),
        "main".into(),
        short.to_owned(),
        "main-alice".into(),
    ];
    expected.sort();
    assert_eq!(names, expected, "{h}");

    // A disabled trigger refuses webhooks (400) and manual runs.
    let (status, off) = trigger_call(
        &s,
        &token,
        Method::PUT,
        &uuid,
        Some(json!({ "enabled": false })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{off}");
    assert_eq!(off["enabled"], false);
    assert_eq!(off["disabled_reason"], "user_toggled");
    let r = s
        .client
        .post(&hook)
        .basic_auth("$token", Some(secret))
        .json(&payload("refs/heads/main", "second"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    drop(server);
}

fn github_signature(secret: &str, body: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    format!(
        "sha256={}",
        hex::encode(ring::hmac::sign(&key, body).as_ref())
    )
}

/// The trigger API (list, get, activate, start, builds, analyze, delete, the 501 of the git
/// source listings) and the GitHub kind: a push with a good `X-Hub-Signature-256` queues a
/// build of its head commit, a bad or missing one is refused (403), a `ping` builds nothing.
async fn trigger_api_and_github_signatures(b: Backend) {
    let (s, token) = start(b, local_executor("")).await;
    let trigger = activated_trigger(
        &s,
        &token,
        "github",
        json!({ "build_source": "ssh://git@127.0.0.1:1/acme/app.git" }),
    )
    .await;
    let uuid = trigger["id"].as_str().unwrap().to_owned();
    let secret = credential(&trigger, "Webhook Secret");
    let (status, list) = trigger_call(&s, &token, Method::GET, "", None).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list["triggers"].as_array().unwrap().len(), 1);
    assert_eq!(list["triggers"][0]["id"], uuid.as_str());
    let (status, one) = trigger_call(&s, &token, Method::GET, &uuid, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(one, list["triggers"][0]);

    let hook = format!("{}/webhooks/push/trigger/{uuid}", s.url);
    let push = serde_json::to_vec(&json!({
        "ref": "refs/heads/main",
        "repository": { "name": "app", "owner": { "name": "acme" }, "default_branch": "main",
                        "ssh_url": "git@github.com:acme/app.git" },
        "head_commit": { "id": "0123456789abcdef0123456789abcdef01234567",
                         "url": "https://github.com/acme/app/commit/0123456",
                         "message": "a change", "timestamp": "2026-12-03T10:00:00Z",
                         "author": { "username": "alice" }, "committer": { "username": "bob" } },
    }))
    .unwrap();
    let send = |signature: Option<String>, event: &'static str, body: Vec<u8>| {
        let mut r = s
            .client
            .post(&hook)
            .header("content-type", "application/json")
            .header("x-github-event", event)
            .body(body);
        if let Some(sig) = signature {
            r = r.header("x-hub-signature-256", sig);
        }
        r.send()
    };
    for signature in [
        None,
        Some(github_signature("wrong", &push)),
        Some(github_signature(&secret, b"another body")),
        Some("sha256=zz".to_owned()),
    ] {
        let r = send(signature.clone(), "push", push.clone()).await.unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{signature:?}");
    }
    assert!(trigger_builds(&s, &token, &uuid).await.is_empty());
    let ping = serde_json::to_vec(&json!({ "zen": "Keep it logically awesome." })).unwrap();
    let r = send(Some(github_signature(&secret, &ping)), "ping", ping)
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(trigger_builds(&s, &token, &uuid).await.is_empty());
    let r = send(Some(github_signature(&secret, &push)), "push", push.clone())
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.text().await.unwrap(), "Okay");
    let found = trigger_builds(&s, &token, &uuid).await;
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0]["tags"], json!(["main", "latest"]));
    assert_eq!(found[0]["display_name"], "0123456");
    assert_eq!(found[0]["trigger"]["service"], "github");
    assert_eq!(
        found[0]["trigger_metadata"]["commit_info"]["author"]["username"],
        "alice"
    );
    assert_eq!(
        found[0]["trigger_metadata"]["git_url"],
        "ssh://git@127.0.0.1:1/acme/app.git"
    );

    // A manual run needs a commit; it is the caller's build.
    let (status, refused) = trigger_call(
        &s,
        &token,
        Method::POST,
        &format!("{uuid}/start"),
        Some(json!({})),
    )
    .await;
    assert_quay_error(
        status,
        &refused,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "missing required parameter",
    );
    let r = s
        .as_bearer(&token)
        .request(
            Method::POST,
            &format!("/api/v1/repository/w2org/app/trigger/{uuid}/start"),
        )
        .json(&json!({ "commit_sha": "abcdef1234567", "branch_name": "release-1" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    let manual: Value = r.json().await.unwrap();
    assert_eq!(
        location,
        format!(
            "/api/v1/repository/w2org/app/build/{}/status",
            manual["id"].as_str().unwrap()
        )
    );
    assert_eq!(manual["manual_user"], ADMIN);
    assert_eq!(manual["tags"], json!(["release-1"]));
    assert_eq!(trigger_builds(&s, &token, &uuid).await.len(), 2);

    let (status, analyzed) = trigger_call(
        &s,
        &token,
        Method::POST,
        &format!("{uuid}/analyze"),
        Some(json!({ "config": {} })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{analyzed}");
    assert_eq!(analyzed["status"], "warning");
    let (status, body) = trigger_call(
        &s,
        &token,
        Method::POST,
        &format!("{uuid}/fields/refs"),
        Some(json!({})),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_IMPLEMENTED, "{body}");

    // A pull robot of the namespace is the builds' pull robot.
    let (status, robot) = s
        .call(
            Some(&token),
            Method::PUT,
            "/organization/w2org/robots/puller",
            Some(json!({})),
        )
        .await;
    assert!(status.is_success(), "{robot}");
    let (status, created) = trigger_call(
        &s,
        &token,
        Method::POST,
        "",
        Some(json!({ "service": "custom-git" })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let other = created["id"].as_str().unwrap().to_owned();
    let (status, active) = trigger_call(
        &s,
        &token,
        Method::POST,
        &format!("{other}/activate"),
        Some(
            json!({ "config": { "build_source": "https://git.example/app.git" },
                     "pull_robot": "w2org+puller" }),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{active}");
    assert_eq!(active["pull_robot"]["name"], "w2org+puller", "{active}");
    let (status, run) = trigger_call(
        &s,
        &token,
        Method::POST,
        &format!("{other}/start"),
        Some(json!({ "commit_sha": "abcdef1" })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{run}");
    assert_eq!(run["pull_robot"]["name"], "w2org+puller", "{run}");
    assert_eq!(run["tags"], json!(["abcdef1"]));

    let (status, _) = trigger_call(&s, &token, Method::DELETE, &uuid, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let r = send(Some(github_signature(&secret, &push)), "push", push.clone())
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    // The builds it started stay, without their trigger.
    let (status, gone) =
        trigger_call(&s, &token, Method::GET, &format!("{uuid}/builds"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{gone}");
}
