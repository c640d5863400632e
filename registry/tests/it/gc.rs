//! Garbage collection: after the time machine window the bytes of unreferenced blobs go while
//! blobs shared with live images stay; untagged manifests get a grace period; index children and
//! referrers live as long as what holds them; deleted repositories and organizations are
//! reclaimed; orphaned blob files are swept; `quayside gc --now` prints what it reclaimed. And
//! the races with concurrent pushes, interleaved deterministically with pause points.

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::backend_tests;
use crate::common::oci::*;
use crate::common::tags::*;
use crate::common::tools::*;
use crate::common::*;
use quayside::service::{Clock, content::gc};

backend_tests!(
    unreferenced_blobs_go_after_the_window_shared_ones_stay,
    untagged_manifests_children_and_referrers,
    deleted_repositories_and_organizations_are_reclaimed,
    orphaned_blob_files_are_swept,
    gc_command_prints_what_it_reclaimed,
    race_upload_while_gc_deletes_the_same_blob,
    race_gc_while_an_upload_links_an_existing_blob,
    race_manifest_push_while_gc_removes_its_blob_links
);

const BIN: &str = env!("CARGO_BIN_EXE_quayside");
/// Quay's default PUSH_TEMP_TAG_EXPIRATION_SEC, the grace period of untagged content.
const GRACE_MS: i64 = HOUR_MS;

fn ctx(s: &TestServer) -> Arc<quayside::service::Ctx> {
    s.running.as_ref().expect("running").ctx.clone()
}

async fn repo_id(s: &TestServer, namespace: &str, name: &str) -> i64 {
    quayside::db::content::repositories::get(s.ctx().db.pool(), namespace, name)
        .await
        .unwrap()
        .unwrap()
        .id
}

async fn unreferenced_blobs_go_after_the_window_shared_ones_stay(b: Backend) {
    let s = TestServer::start(b).await;
    let token = s.init_admin().await;
    org(&s, &token, "testorg", 86_400).await;
    let repo = "testorg/app";
    let shared = random_bytes(3000);
    let only_a = random_bytes(2000);
    let a = Image::build(vec![shared.clone(), only_a.clone()], "amd64", false);
    let bimg = Image::build(vec![shared.clone(), random_bytes(1000)], "amd64", false);
    push(&s, repo, "a", &a).await;
    push(&s, repo, "b", &bimg).await;
    let (status, _) = s
        .call(
            Some(&token),
            Method::DELETE,
            &format!("/repository/{repo}/tag/a"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    // Inside the window nothing of `a` goes, and it stays restorable.
    s.clock.advance_ms(DAY_MS - 1000);
    let report = gc_now(&s).await;
    assert_eq!(
        (report.tag_lifetimes, report.manifests, report.blobs),
        (0, 0, 0),
        "{report}"
    );
    assert!(s.blob_path(&sha256(&only_a)).exists());

    // After the window (and the grace period): the lifetime, the manifest, its config and its
    // own layer go, bytes included; the shared layer and `b` stay.
    s.clock.advance_ms(1000 + GRACE_MS + 1000);
    let report = gc_now(&s).await;
    assert_eq!(report.tag_lifetimes, 1, "{report}");
    assert_eq!(report.manifests, 1, "{report}");
    assert_eq!(report.blobs, 2, "{report}");
    assert_eq!(
        report.bytes,
        (only_a.len() + a.config.len()) as u64,
        "{report}"
    );
    assert!(!s.blob_path(&sha256(&only_a)).exists());
    assert!(!s.blob_path(&sha256(&a.config)).exists());
    assert!(s.blob_path(&sha256(&shared)).exists());
    assert_eq!(v2_digest(&s, repo, "b").await, Some(bimg.digest.clone()));
    for blob in bimg.blobs() {
        let r = s
            .as_admin()
            .send(Method::GET, &format!("/v2/{repo}/blobs/{}", sha256(blob)))
            .await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.bytes().await.unwrap().as_ref(), blob.as_slice());
    }
    assert_eq!(v2_digest(&s, repo, &a.digest).await, None);
    let h = history(&s, &token, repo, "").await;
    assert_eq!(
        lifetimes(&h, "a").len(),
        0,
        "history past the window is gone: {h}"
    );
    let (status, _) = s
        .call(
            Some(&token),
            Method::POST,
            &format!("/repository/{repo}/tag/a/restore"),
            Some(json!({"manifest_digest": a.digest})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // A second pass finds nothing; the worker reports its pass.
    assert_eq!(gc_now(&s).await, gc::Report::default());
    let summary = quayside::workers::run_once(s.ctx(), "gc").await.unwrap();
    assert!(
        summary.starts_with("reclaimed 0 tag lifetimes"),
        "{summary}"
    );
}

async fn untagged_manifests_children_and_referrers(b: Backend) {
    let s = TestServer::start(b).await;
    let token = s.init_admin().await;
    let repo = "admin/multi";
    let window = 14 * DAY_MS;
    let amd = Image::random(1);
    let arm = Image::random(1);
    for img in [&amd, &arm] {
        push(&s, repo, &img.digest.clone(), img).await;
    }
    let idx = index(&[(&amd, "amd64"), (&arm, "arm64")], false);
    let r = s
        .as_admin()
        .put_manifest(repo, "multi", OCI_INDEX, &idx)
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let signature = {
        let config = b"{}".to_vec();
        let layer = random_bytes(32);
        s.as_admin().push_blob(repo, &config).await;
        s.as_admin().push_blob(repo, &layer).await;
        serde_json::to_vec(&json!({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "artifactType": "application/vnd.example.signature",
            "config": descriptor(OCI_EMPTY, &config),
            "layers": [descriptor("application/vnd.example.sig", &layer)],
            "subject": descriptor(OCI_INDEX, &idx),
        }))
        .unwrap()
    };
    let r = s
        .as_admin()
        .put_manifest(repo, &sha256(&signature), OCI_MANIFEST, &signature)
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let stray = artifact(&[]);
    push_artifact(&s, repo, &stray.digest.clone(), &stray).await;

    // Within the grace period and window an untagged manifest stays.
    s.clock.advance_ms(window);
    assert_eq!(gc_now(&s).await.manifests, 0);
    // After them only the stray one goes: the index's children and its referrer are held by it.
    s.clock.advance_ms(GRACE_MS + 1000);
    let report = gc_now(&s).await;
    assert_eq!(report.manifests, 1, "{report}");
    assert_eq!(v2_digest(&s, repo, &stray.digest).await, None);
    assert!(!s.blob_path(&sha256(&stray.layer)).exists());
    for digest in [&amd.digest, &arm.digest, &sha256(&signature), &sha256(&idx)] {
        assert!(v2_digest(&s, repo, digest).await.is_some(), "{digest}");
    }
    // Held children and referrers do not make the repository a candidate pass after pass.
    let candidates = quayside::db::content::gc::repos_with_manifest_candidates(
        s.ctx().db.pool(),
        s.clock.now_ms(),
        GRACE_MS,
        0,
        10,
    )
    .await
    .unwrap();
    assert!(candidates.is_empty(), "{candidates:?}");

    // Once the index's tag is gone past the window, everything goes.
    let (status, _) = s
        .call(
            Some(&token),
            Method::DELETE,
            &format!("/repository/{repo}/tag/multi"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    s.clock.advance_ms(window + 1000);
    let report = gc_now(&s).await;
    assert_eq!(report.manifests, 4, "{report}");
    for blob in amd.blobs().chain(arm.blobs()) {
        assert!(!s.blob_path(&sha256(blob)).exists());
    }
}

async fn deleted_repositories_and_organizations_are_reclaimed(b: Backend) {
    let s = TestServer::start(b).await;
    let token = s.init_admin().await;
    org(&s, &token, "testorg", 1_209_600).await;
    let shared = random_bytes(2048);
    let gone = Image::build(vec![shared.clone(), random_bytes(512)], "amd64", false);
    let kept = Image::build(vec![shared.clone(), random_bytes(256)], "amd64", false);
    push(&s, "testorg/gone", "v1", &gone).await;
    push(&s, "testorg/kept", "v1", &kept).await;
    let (status, body) = s
        .call(
            Some(&token),
            Method::DELETE,
            "/repository/testorg/gone",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    // Its rows went with it; its blobs go once the grace period is over (the window is the
    // repository's, and the repository is gone).
    assert_eq!(gc_now(&s).await.blobs, 0);
    s.clock.advance_ms(GRACE_MS + 1000);
    let report = gc_now(&s).await;
    assert_eq!(report.blobs, 2, "config and own layer: {report}");
    assert!(!s.blob_path(&sha256(&gone.layers[1])).exists());
    assert!(!s.blob_path(&sha256(&gone.config)).exists());
    assert!(s.blob_path(&sha256(&shared)).exists());
    assert_eq!(
        v2_digest(&s, "testorg/kept", "v1").await,
        Some(kept.digest.clone())
    );

    // Deleting the organization deletes its repositories; their storage goes too.
    let (status, body) = s
        .call(Some(&token), Method::DELETE, "/organization/testorg", None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    s.clock.advance_ms(GRACE_MS + 1000);
    let report = gc_now(&s).await;
    assert_eq!(report.blobs, 3, "{report}");
    for blob in kept.blobs() {
        assert!(!s.blob_path(&sha256(blob)).exists());
    }
}

async fn orphaned_blob_files_are_swept(b: Backend) {
    let s = TestServer::start(b).await;
    s.init_admin().await;
    let image = s.as_admin().push_image("admin/app", "v1").await;
    // Bytes a crash left in place without their row: one old, one just written.
    let old = random_bytes(100);
    let fresh = random_bytes(100);
    for data in [&old, &fresh] {
        let path = s.blob_path(&sha256(data));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, data).unwrap();
    }
    std::fs::File::options()
        .write(true)
        .open(s.blob_path(&sha256(&old)))
        .unwrap()
        .set_modified(std::time::SystemTime::now() - Duration::from_secs(2 * 3600))
        .unwrap();
    let report = gc_now(&s).await;
    assert_eq!(
        (report.orphaned_blobs, report.orphaned_bytes),
        (1, 100),
        "{report}"
    );
    assert!(!s.blob_path(&sha256(&old)).exists());
    assert!(s.blob_path(&sha256(&fresh)).exists());
    for blob in image.blobs() {
        assert!(s.blob_path(&sha256(blob)).exists(), "stored blobs stay");
    }
}

async fn gc_command_prints_what_it_reclaimed(b: Backend) {
    let s = TestServer::start_with(
        b,
        Options {
            yaml: "PUSH_TEMP_TAG_EXPIRATION_SEC: 0\n".into(),
            ..Options::default()
        },
    )
    .await;
    let token = s.init_admin().await;
    org(&s, &token, "testorg", 0).await;
    let image = s.as_admin().push_image("testorg/app", "v1").await;
    let (status, _) = s
        .call(
            Some(&token),
            Method::DELETE,
            "/repository/testorg/app/tag/v1",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let bytes: usize = image.blobs().map(Vec::len).sum();
    // Another process, on the same database and storage as the running server.
    let out = run_ok(
        Command::new(BIN)
            .args(["gc", "--now", "--config"])
            .arg(s.config_path())
            .arg("--data-dir")
            .arg(s.data_dir()),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!(
            "reclaimed 1 tag lifetimes, 1 manifests, 3 blobs ({bytes} bytes)"
        )),
        "{stdout}"
    );
    for blob in image.blobs() {
        assert!(!s.blob_path(&sha256(blob)).exists());
    }
    // `--now` is required.
    let text = run_fail(Command::new(BIN).arg("gc"));
    assert!(text.contains("--now"), "{text}");
}

/// Asserts that a task is still blocked (waiting for a lock another party holds).
async fn still_blocked<T>(task: &mut tokio::task::JoinHandle<T>, what: &str) {
    assert!(
        tokio::time::timeout(Duration::from_millis(500), task)
            .await
            .is_err(),
        "{what} did not wait for the lock"
    );
}

fn upload(s: &TestServer, repo: &str, data: Vec<u8>) -> tokio::task::JoinHandle<StatusCode> {
    let request = s
        .as_admin()
        .request(
            Method::POST,
            &format!("/v2/{repo}/blobs/uploads/?digest={}", sha256(&data)),
        )
        .body(data);
    tokio::spawn(async move { request.send().await.unwrap().status() })
}

async fn race_upload_while_gc_deletes_the_same_blob(b: Backend) {
    let s = TestServer::start(b).await;
    s.init_admin().await;
    s.as_admin().push_image("admin/b", "seed").await;
    // A blob nobody used: its link and then the blob itself are collectable.
    let data = random_bytes(4096);
    let digest = s.as_admin().push_blob("admin/a", &data).await;
    s.clock.advance_ms(GRACE_MS + 1000);

    // GC stops after committing the deletion of the blob's row, before deleting its bytes.
    let ctx = ctx(&s);
    let mut paused = ctx.pauses.arm("gc.blob_row_deleted");
    let collector = {
        let ctx = ctx.clone();
        tokio::spawn(async move { gc::collect(&ctx, false).await.unwrap() })
    };
    paused.reached().await;
    // A push of the same blob into another repository meanwhile finds no row, so it writes the
    // bytes and the row itself; GC, resumed, must then see the row and leave the bytes alone.
    let pushing = upload(&s, "admin/b", data.clone());
    assert_eq!(pushing.await.unwrap(), StatusCode::CREATED);
    paused.resume();
    let report = collector.await.unwrap();
    assert_eq!(report.blobs, 1, "{report}");

    // The upload stored the bytes again after GC deleted them: the blob is whole.
    assert_eq!(std::fs::read(s.blob_path(&digest)).unwrap(), data);
    let r = s
        .as_admin()
        .send(Method::GET, &format!("/v2/admin/b/blobs/{digest}"))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.bytes().await.unwrap().as_ref(), data.as_slice());
    let config = b"{}".to_vec();
    s.as_admin().push_blob("admin/b", &config).await;
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": descriptor(OCI_CONFIG, &config),
        "layers": [descriptor(OCI_LAYER, &data)],
    }))
    .unwrap();
    let r = s
        .as_admin()
        .put_manifest("admin/b", "v1", OCI_MANIFEST, &manifest)
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    // A later collection keeps it: a manifest references it now.
    s.clock.advance_ms(GRACE_MS + 1000);
    gc_now(&s).await;
    assert!(s.blob_path(&digest).exists());
}

async fn race_gc_while_an_upload_links_an_existing_blob(b: Backend) {
    let s = TestServer::start(b).await;
    s.init_admin().await;
    s.as_admin().push_image("admin/b", "seed").await;
    let data = random_bytes(4096);
    let digest = s.as_admin().push_blob("admin/a", &data).await;
    s.clock.advance_ms(GRACE_MS + 1000);
    // Its only link is old and unused: GC removes it, leaving a blob nothing links.
    let ctx = ctx(&s);
    assert_eq!(
        gc::sweep_links(&ctx, repo_id(&s, "admin", "a").await)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        gc::blob_candidates(&ctx, "").await.unwrap(),
        vec![digest.clone()]
    );

    // An upload of the same content finds the row, so it will not write the bytes; it stops
    // there, holding the digest lock.
    let mut paused = ctx.pauses.arm("uploads.blob_checked");
    let pushing = upload(&s, "admin/b", data.clone());
    paused.reached().await;
    // GC, which had found the blob unreferenced, must wait, then see the new link.
    let mut sweeping = {
        let ctx = ctx.clone();
        let digest = digest.clone();
        tokio::spawn(async move { gc::sweep_blob(&ctx, &digest).await.unwrap() })
    };
    still_blocked(&mut sweeping, "the collector").await;
    paused.resume();
    assert_eq!(pushing.await.unwrap(), StatusCode::CREATED);
    assert_eq!(
        sweeping.await.unwrap(),
        None,
        "the blob is linked again: kept"
    );
    assert_eq!(std::fs::read(s.blob_path(&digest)).unwrap(), data);
    let r = s
        .as_admin()
        .send(Method::GET, &format!("/v2/admin/b/blobs/{digest}"))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
}

async fn race_manifest_push_while_gc_removes_its_blob_links(b: Backend) {
    let s = TestServer::start(b).await;
    s.init_admin().await;
    let ctx = ctx(&s);
    let repo = "admin/c";

    // Interleaved: GC finds the links of blobs uploaded long ago unused, a manifest referencing
    // them is pushed, then GC sweeps: it keeps them.
    let first = Image::random(2);
    for blob in first.blobs() {
        s.as_admin().push_blob(repo, blob).await;
    }
    s.clock.advance_ms(GRACE_MS + 1000);
    let id = repo_id(&s, "admin", "c").await;
    let marked = quayside::db::content::gc::repos_with_stale_links(
        ctx.db.pool(),
        s.clock.now_ms() - GRACE_MS,
        0,
        10,
    )
    .await
    .unwrap();
    assert_eq!(marked, [id]);
    let r = s
        .as_admin()
        .put_manifest(repo, "first", OCI_MANIFEST, &first.manifest)
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(gc::sweep_links(&ctx, id).await.unwrap(), 0);
    let report = gc_now(&s).await;
    assert_eq!((report.blob_links, report.blobs), (0, 0), "{report}");
    for blob in first.blobs() {
        assert!(s.blob_path(&sha256(blob)).exists());
    }

    // Concurrent: GC deleted the links and holds the repository lock; the push waits for it,
    // then finds the blobs unknown and fails cleanly instead of referencing blobs on their way
    // out. The client uploads again and the push succeeds.
    let second = Image::random(2);
    for blob in second.blobs() {
        s.as_admin().push_blob(repo, blob).await;
    }
    s.clock.advance_ms(GRACE_MS + 1000);
    let mut paused = ctx.pauses.arm("gc.links_deleted");
    let sweeping = {
        let ctx = ctx.clone();
        tokio::spawn(async move { gc::sweep_links(&ctx, id).await.unwrap() })
    };
    paused.reached().await;
    let mut pushing = {
        let request = s
            .as_admin()
            .request(Method::PUT, &format!("/v2/{repo}/manifests/second"))
            .header("Content-Type", OCI_MANIFEST)
            .body(second.manifest.clone());
        tokio::spawn(async move {
            let r = request.send().await.unwrap();
            (r.status(), r.text().await.unwrap())
        })
    };
    still_blocked(&mut pushing, "the manifest push").await;
    paused.resume();
    assert_eq!(sweeping.await.unwrap(), 3);
    let (status, body) = pushing.await.unwrap();
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains("MANIFEST_BLOB_UNKNOWN"), "{body}");
    for blob in second.blobs() {
        s.as_admin().push_blob(repo, blob).await;
    }
    let r = s
        .as_admin()
        .put_manifest(repo, "second", OCI_MANIFEST, &second.manifest)
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    s.clock.advance_ms(GRACE_MS + 1000);
    gc_now(&s).await;
    for blob in second.blobs().chain(first.blobs()) {
        let r = s
            .as_admin()
            .send(Method::GET, &format!("/v2/{repo}/blobs/{}", sha256(blob)))
            .await;
        assert_eq!(r.status(), StatusCode::OK);
    }
}
