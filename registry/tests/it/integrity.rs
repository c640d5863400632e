//! Data integrity under crashes and concurrent deletes: a `quayside gc --now` killed with
//! `SIGKILL` at its most dangerous points never leaves a blob row without its bytes; an upload or
//! mount of a digest whose bytes are gone writes them again instead of trusting the row; `quayside
//! gc --verify` finds and repairs rows without bytes; and deleting a repository while pushes run
//! gives clean 404s (or successes), never a 5xx.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::backend_tests;
use crate::common::oci::*;
use crate::common::tools::*;
use crate::common::*;

backend_tests!(
    gc_killed_after_deleting_bytes_leaves_no_row_without_them,
    gc_killed_between_row_and_bytes_leaves_orphaned_bytes_only,
    upload_and_mount_restore_missing_bytes,
    gc_verify_repairs_rows_without_bytes,
    deleting_a_repository_while_pushes_run_never_answers_5xx,
    deleting_an_organization_while_pushes_create_repositories_never_answers_5xx,
    an_organization_deleted_while_a_manifest_push_holds_its_repository_is_no_deadlock
);

const BIN: &str = env!("CARGO_BIN_EXE_quayside");

/// A server whose untagged content has no grace period, so a separate `quayside gc` process
/// (on the real clock) may collect what was just pushed.
async fn server(b: Backend) -> TestServer {
    let s = TestServer::start_with(
        b,
        Options {
            yaml: "PUSH_TEMP_TAG_EXPIRATION_SEC: 0\n".into(),
            ..Options::default()
        },
    )
    .await;
    s.init_admin().await;
    s
}

fn gc_command(s: &TestServer, args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.arg("gc")
        .args(args)
        .arg("--config")
        .arg(s.config_path())
        .arg("--data-dir")
        .arg(s.data_dir());
    cmd
}

/// Runs `quayside gc --now` until it stops at `point` (its n-th time), then kills it with
/// SIGKILL.
fn run_gc_and_kill_at(s: &TestServer, point: &str) {
    let mut child = gc_command(s, &["--now"])
        .env("QUAYSIDE_TEST_PAUSE_AT", point)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn quayside gc");
    let stderr = child.stderr.take().expect("stderr");
    let name = point.split('#').next().unwrap_or(point).to_owned();
    let mut seen = Vec::new();
    let mut paused = false;
    for line in BufReader::new(stderr).lines() {
        let line = line.expect("stderr line");
        if line.contains(&format!("paused at {name}")) {
            paused = true;
            break;
        }
        seen.push(line);
    }
    assert!(paused, "gc never reached {point}:\n{}", seen.join("\n"));
    child.kill().expect("kill -9");
    let status = child.wait().expect("wait");
    assert!(!status.success(), "the collection was killed");
}

/// Pushes `n` blobs nothing references into `repo`; returns them.
async fn unreferenced_blobs(s: &TestServer, repo: &str, n: usize) -> Vec<Vec<u8>> {
    let mut blobs = Vec::new();
    for _ in 0..n {
        let data = random_bytes(512);
        s.as_admin().push_blob(repo, &data).await;
        blobs.push(data);
    }
    blobs
}

async fn blob_rows(s: &TestServer) -> Vec<String> {
    quayside::db::content::gc::blobs_after(s.ctx().db.pool(), "", 100_000)
        .await
        .unwrap()
}

/// Every blob row has its bytes in storage.
async fn assert_every_row_has_bytes(s: &TestServer) {
    for digest in blob_rows(s).await {
        assert!(
            s.blob_path(&digest).exists(),
            "blob row {digest} has no bytes in storage"
        );
    }
}

/// Pushes each blob again into `repo` and pulls it back.
async fn reupload_and_pull(s: &TestServer, repo: &str, blobs: &[Vec<u8>]) {
    for data in blobs {
        let digest = s.as_admin().push_blob(repo, data).await;
        let r = s
            .as_admin()
            .send(Method::GET, &format!("/v2/{repo}/blobs/{digest}"))
            .await;
        assert_eq!(r.status(), StatusCode::OK, "GET {digest}");
        assert_eq!(r.bytes().await.unwrap().as_ref(), data.as_slice());
    }
}

async fn gc_killed_after_deleting_bytes_leaves_no_row_without_them(b: Backend) {
    let s = server(b).await;
    let blobs = unreferenced_blobs(&s, "admin/a", 40).await;
    // Killed right after the 15th blob's bytes went: its row must already be gone.
    run_gc_and_kill_at(&s, "gc.blob_bytes_deleted#15");
    let rows = blob_rows(&s).await;
    assert!(
        rows.len() < blobs.len() && !rows.is_empty(),
        "killed mid-way: {} of {} rows left",
        rows.len(),
        blobs.len()
    );
    assert_every_row_has_bytes(&s).await;
    reupload_and_pull(&s, "admin/b", &blobs).await;
    let out = run_ok(&mut gc_command(&s, &["--verify"]));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("0 without their bytes"), "{stdout}");
}

async fn gc_killed_between_row_and_bytes_leaves_orphaned_bytes_only(b: Backend) {
    let s = server(b).await;
    let blobs = unreferenced_blobs(&s, "admin/a", 20).await;
    run_gc_and_kill_at(&s, "gc.blob_row_deleted#7");
    assert_every_row_has_bytes(&s).await;
    // The killed blob's bytes are orphaned; the next collection reclaims them and the rest.
    let out = run_ok(&mut gc_command(&s, &["--now"]));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("orphaned blob files"), "{stdout}");
    assert!(blob_rows(&s).await.is_empty());
    for data in &blobs {
        assert!(!s.blob_path(&sha256(data)).exists());
    }
    reupload_and_pull(&s, "admin/b", &blobs).await;
}

async fn upload_and_mount_restore_missing_bytes(b: Backend) {
    let s = TestServer::start(b).await;
    s.init_admin().await;
    let data = random_bytes(2048);
    let digest = s.as_admin().push_blob("admin/a", &data).await;
    let path = s.blob_path(&digest);

    // Monolithic POST of a digest whose row exists but whose bytes are gone.
    std::fs::remove_file(&path).unwrap();
    s.as_admin().push_blob("admin/a", &data).await;
    assert_eq!(std::fs::read(&path).unwrap(), data);

    // POST then PUT, into another repository.
    std::fs::remove_file(&path).unwrap();
    let r = s
        .as_admin()
        .send(Method::POST, "/v2/admin/b/blobs/uploads/")
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    let sep = if location.contains('?') { '&' } else { '?' };
    let r = s
        .as_admin()
        .request(Method::PUT, &format!("{location}{sep}digest={digest}"))
        .body(data.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = s
        .as_admin()
        .send(Method::GET, &format!("/v2/admin/b/blobs/{digest}"))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.bytes().await.unwrap().as_ref(), data.as_slice());

    // A mount of it is refused (an upload session starts instead) while the bytes are gone.
    std::fs::remove_file(&path).unwrap();
    let r = s
        .as_admin()
        .send(
            Method::POST,
            &format!("/v2/admin/c/blobs/uploads/?mount={digest}&from=admin/a"),
        )
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED, "not mounted");
    s.as_admin().push_blob("admin/a", &data).await;
    let r = s
        .as_admin()
        .send(
            Method::POST,
            &format!("/v2/admin/c/blobs/uploads/?mount={digest}&from=admin/a"),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED, "mounted once restored");
}

async fn gc_verify_repairs_rows_without_bytes(b: Backend) {
    let s = TestServer::start(b).await;
    s.init_admin().await;
    let image = s.as_admin().push_image("admin/app", "v1").await;
    let layer = image.blobs().last().unwrap().clone();
    let lost = random_bytes(1000);
    let lost_digest = s.as_admin().push_blob("admin/a", &lost).await;
    let kept = random_bytes(1000);
    let kept_digest = s.as_admin().push_blob("admin/a", &kept).await;
    std::fs::remove_file(s.blob_path(&lost_digest)).unwrap();
    std::fs::remove_file(s.blob_path(&sha256(&layer))).unwrap();

    let mut cmd = gc_command(&s, &["--verify"]);
    let out = cmd.output().unwrap();
    assert!(!out.status.success(), "unrepaired blobs fail the command");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let checked = blob_rows(&s).await.len() + 1;
    assert!(
        stdout.contains(&format!(
            "checked {checked} blobs: 2 without their bytes in storage, 1 removed (nothing referenced them), 1 referenced by manifests"
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "missing bytes: {} (referenced in admin/app)",
            sha256(&layer)
        )),
        "{stdout}"
    );
    // The unreferenced row is gone (so the blob is unknown, and a push writes it again); the
    // intact blob and the referenced one stay.
    let rows = blob_rows(&s).await;
    assert!(!rows.contains(&lost_digest));
    assert!(rows.contains(&kept_digest) && rows.contains(&sha256(&layer)));
    let r = s
        .as_admin()
        .send(Method::HEAD, &format!("/v2/admin/a/blobs/{lost_digest}"))
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    reupload_and_pull(&s, "admin/a", &[lost]).await;
    // Pushing the referenced layer again heals the image.
    reupload_and_pull(&s, "admin/app", &[layer]).await;
    let out = run_ok(&mut gc_command(&s, &["--verify"]));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("0 without their bytes"), "{stdout}");
}

/// One raw push of a small image into `repo`: upload start, PATCH, PUT, monolithic config,
/// manifest. Stops at the first 404 (the repository was deleted); returns every status seen.
async fn push_raw(s: &TestServer, repo: &str, tag: &str) -> Vec<(String, StatusCode)> {
    let api = s.as_admin();
    let mut seen = Vec::new();
    let layer = random_bytes(256);
    let config = random_bytes(64);
    let r = api
        .send(Method::POST, &format!("/v2/{repo}/blobs/uploads/"))
        .await;
    seen.push(("start".to_owned(), r.status()));
    if r.status() != StatusCode::ACCEPTED {
        return seen;
    }
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    let r = api
        .request(Method::PATCH, &location)
        .header("Content-Type", "application/octet-stream")
        .body(layer.clone())
        .send()
        .await
        .unwrap();
    seen.push(("patch".to_owned(), r.status()));
    if r.status() != StatusCode::ACCEPTED {
        return seen;
    }
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    let sep = if location.contains('?') { '&' } else { '?' };
    let r = api
        .request(
            Method::PUT,
            &format!("{location}{sep}digest={}", sha256(&layer)),
        )
        .send()
        .await
        .unwrap();
    seen.push(("put".to_owned(), r.status()));
    if r.status() != StatusCode::CREATED {
        return seen;
    }
    let r = api
        .request(
            Method::POST,
            &format!("/v2/{repo}/blobs/uploads/?digest={}", sha256(&config)),
        )
        .body(config.clone())
        .send()
        .await
        .unwrap();
    seen.push(("monolithic".to_owned(), r.status()));
    if r.status() != StatusCode::CREATED {
        return seen;
    }
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": descriptor(OCI_CONFIG, &config),
        "layers": [descriptor(OCI_LAYER, &layer)],
    }))
    .unwrap();
    let r = api.put_manifest(repo, tag, OCI_MANIFEST, &manifest).await;
    seen.push(("manifest".to_owned(), r.status()));
    // An empty index references no blob: only the repository's existence guards its insert.
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [],
    }))
    .unwrap();
    let r = api
        .put_manifest(repo, &format!("{tag}-index"), OCI_INDEX, &index)
        .await;
    seen.push(("index".to_owned(), r.status()));
    seen
}

async fn deleting_a_repository_while_pushes_run_never_answers_5xx(b: Backend) {
    let s = Arc::new(TestServer::start(b).await);
    let token = s.init_admin().await;
    let repo = "admin/churn";
    let deadline = tokio::time::Instant::now() + Duration::from_secs(8);
    let mut pushers = Vec::new();
    for worker in 0..3 {
        let s = s.clone();
        pushers.push(tokio::spawn(async move {
            let mut all = Vec::new();
            let mut i = 0;
            while tokio::time::Instant::now() < deadline {
                i += 1;
                all.extend(push_raw(&s, repo, &format!("w{worker}-{i}")).await);
            }
            all
        }));
    }
    let deleter = {
        let s = s.clone();
        tokio::spawn(async move {
            let mut statuses = Vec::new();
            while tokio::time::Instant::now() < deadline {
                let (status, _) = s
                    .call(
                        Some(&token),
                        Method::DELETE,
                        &format!("/repository/{repo}"),
                        None,
                    )
                    .await;
                statuses.push(status);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            statuses
        })
    };
    let mut seen = Vec::new();
    for p in pushers {
        seen.extend(p.await.unwrap());
    }
    let deletes = deleter.await.unwrap();
    let failed: Vec<_> = seen.iter().filter(|(_, s)| s.is_server_error()).collect();
    assert!(
        failed.is_empty(),
        "5xx during concurrent deletes: {failed:?}"
    );
    for (step, status) in &seen {
        // A manifest may also meet a repository deleted and created again since its blobs
        // were pushed: they are not linked in the new one (400 MANIFEST_BLOB_UNKNOWN).
        assert!(
            status.is_success()
                || *status == StatusCode::NOT_FOUND
                || (step == "manifest" && *status == StatusCode::BAD_REQUEST),
            "{step}: {status}"
        );
    }
    assert!(
        deletes.iter().all(|s| !s.is_server_error()),
        "deletes: {deletes:?}"
    );
    assert!(
        deletes.iter().any(|s| s.is_success()),
        "some deletes hit an existing repository"
    );
    // Whether a push completed during the race depends on the machine's timing; once the
    // deletes stop, a push must complete and the repository must be whole.
    let after = push_raw(&s, repo, "after").await;
    assert!(
        after.iter().all(|(_, st)| st.is_success()),
        "a push after the race: {after:?}"
    );
}

/// A push that creates its repository races the deletion (and re-creation) of the organization
/// it lands in: each step answers 2xx or 404 (the namespace is gone), never 5xx, and a push
/// after the race completes.
async fn deleting_an_organization_while_pushes_create_repositories_never_answers_5xx(b: Backend) {
    let s = Arc::new(TestServer::start(b).await);
    let token = s.init_admin().await;
    const ORG: &str = "churnorg";
    let org = ORG;
    let create = || json!({"name": ORG, "email": "churn@example.com"});
    let (status, _) = s
        .call(Some(&token), Method::POST, "/organization/", Some(create()))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(6);
    let mut pushers = Vec::new();
    for worker in 0..3 {
        let s = s.clone();
        let token = token.clone();
        pushers.push(tokio::spawn(async move {
            let mut all = Vec::new();
            let mut i = 0;
            while tokio::time::Instant::now() < deadline {
                i += 1;
                // A new repository each time: every push goes through create-on-push.
                let repo = format!("{org}/w{worker}-{i}");
                all.extend(push_raw(&s, &repo, "v1").await);
                // API writes into the organization race the deletion too.
                let (status, body) = s
                    .call(
                        Some(&token),
                        Method::PUT,
                        &format!("/organization/{org}/robots/w{worker}r{i}"),
                        Some(json!({"description": "churn"})),
                    )
                    .await;
                all.push((format!("robot {body}"), status));
            }
            all
        }));
    }
    let churn = {
        let s = s.clone();
        tokio::spawn(async move {
            let mut statuses = Vec::new();
            while tokio::time::Instant::now() < deadline {
                let (deleted, _) = s
                    .call(
                        Some(&token),
                        Method::DELETE,
                        &format!("/organization/{org}"),
                        None,
                    )
                    .await;
                let (created, _) = s
                    .call(Some(&token), Method::POST, "/organization/", Some(create()))
                    .await;
                statuses.push((deleted, created));
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            statuses
        })
    };
    let mut seen = Vec::new();
    for p in pushers {
        seen.extend(p.await.unwrap());
    }
    let churned = churn.await.unwrap();
    let failed: Vec<_> = seen.iter().filter(|(_, s)| s.is_server_error()).collect();
    assert!(
        failed.is_empty(),
        "5xx during organization churn: {failed:?}"
    );
    for (step, status) in &seen {
        assert!(
            status.is_success()
                || *status == StatusCode::NOT_FOUND
                || (step == "manifest" && *status == StatusCode::BAD_REQUEST),
            "{step}: {status}"
        );
    }
    assert!(
        churned
            .iter()
            .all(|(d, c)| !d.is_server_error() && !c.is_server_error()),
        "deletes and creates: {churned:?}"
    );
    let after = push_raw(&s, &format!("{org}/after"), "v1").await;
    assert!(
        after.iter().all(|(_, st)| st.is_success()),
        "a push after the race: {after:?}"
    );
}

/// A manifest push holding its repository's lock while the organization is deleted: the
/// deletion waits for the push (or the push finds the repository gone), never a deadlock that
/// the database breaks by failing one of them (a 500). The push's quota accounting touches a
/// row referencing the namespace after the repository lock, the cascade of a namespace delete
/// locks in the other order; the repository lock takes the namespace first for that reason.
async fn an_organization_deleted_while_a_manifest_push_holds_its_repository_is_no_deadlock(
    b: Backend,
) {
    let s = Arc::new(TestServer::start(b).await);
    let token = s.init_admin().await;
    s.create_org(&token, "lockorg").await;
    // Blobs first (and the repository), then the manifest push that will be paused.
    let image = crate::common::oci::Image::random(1);
    for blob in image.blobs() {
        s.as_admin().push_blob("lockorg/app", blob).await;
    }
    let mut paused = s.ctx().pauses.arm("manifests.repository_locked");
    let push = {
        let s = s.clone();
        let (manifest, media_type) = (image.manifest.clone(), image.media_type);
        tokio::spawn(async move {
            s.as_admin()
                .request(Method::PUT, "/v2/lockorg/app/manifests/v1")
                .header("Content-Type", media_type)
                .body(manifest)
                .send()
                .await
                .unwrap()
                .status()
        })
    };
    paused.reached().await;
    let delete = {
        let s = s.clone();
        let token = token.clone();
        tokio::spawn(async move {
            s.call(Some(&token), Method::DELETE, "/organization/lockorg", None)
                .await
                .0
        })
    };
    // Let the delete reach its locks (on PostgreSQL it waits for the push from here on).
    tokio::time::sleep(Duration::from_millis(300)).await;
    paused.resume();
    let pushed = push.await.unwrap();
    let deleted = delete.await.unwrap();
    assert!(
        pushed == StatusCode::CREATED || pushed == StatusCode::NOT_FOUND,
        "push: {pushed}"
    );
    assert_eq!(deleted, StatusCode::NO_CONTENT, "delete");
    let (status, _) = s
        .call(Some(&token), Method::GET, "/organization/lockorg", None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
