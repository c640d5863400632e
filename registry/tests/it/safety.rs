//! Data safety: interrupted uploads, restarts, concurrent writers, abandoned uploads.

use std::io::Write;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::backend_tests;
use crate::common::oci::*;
use crate::common::*;

backend_tests!(
    interrupted_upload_leaves_nothing_and_resumes_after_restart,
    data_survives_restart,
    concurrent_pushes_of_one_blob_and_one_tag,
    abandoned_uploads_are_cleaned,
);

/// Sends a PATCH that announces more bytes than it sends, then hangs up.
fn interrupted_patch(host: &str, path: &str, auth: &str, sent: &[u8], announced: usize) {
    let mut stream = std::net::TcpStream::connect(host).expect("connect");
    write!(
        stream,
        "PATCH {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: {auth}\r\nContent-Type: application/octet-stream\r\nContent-Length: {announced}\r\n\r\n"
    )
    .expect("headers");
    stream.write_all(sent).expect("partial body");
    stream.flush().expect("flush");
    drop(stream);
}

async fn interrupted_upload_leaves_nothing_and_resumes_after_restart(b: Backend) {
    let mut s = TestServer::start(b).await;
    s.init_admin().await;
    let data = random_bytes(200_000);
    let digest = sha256(&data);
    let r = s
        .as_admin()
        .send(Method::POST, "/v2/admin/resume/blobs/uploads/")
        .await;
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    let r = s
        .as_admin()
        .request(Method::PATCH, &location)
        .body(data[..80_000].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["range"], "0-79999");

    let token = s
        .token(
            Some((ADMIN, ADMIN_PASSWORD)),
            &["repository:admin/resume:pull,push"],
        )
        .await;
    interrupted_patch(
        &s.host,
        &location,
        &format!("Bearer {token}"),
        &data[80_000..120_000],
        120_000,
    );
    // The server notices the hang-up; the upload stays where it was.
    let mut status = String::new();
    for _ in 0..50 {
        let r = s.as_admin().send(Method::GET, &location).await;
        status = r.headers()["range"].to_str().unwrap().to_owned();
        if s.ctx()
            .uploads
            .in_progress
            .load(std::sync::atomic::Ordering::Relaxed)
            == 0
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(status, "0-79999");
    assert!(!s.blob_path(&digest).exists());
    let tmp_files = std::fs::read_dir(s.data_dir().join("blobs").join("_tmp"))
        .unwrap()
        .count();
    assert_eq!(tmp_files, 0, "the partial write was removed");

    // After a restart the running hash is rebuilt from the stored part.
    s.restart().await;
    let r = s
        .as_admin()
        .request(Method::PATCH, &location)
        .header("Content-Range", "80000-199999")
        .body(data[80_000..].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let r = s
        .as_admin()
        .send(Method::PUT, &format!("{location}?digest={digest}"))
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let got = s
        .as_admin()
        .send(Method::GET, &format!("/v2/admin/resume/blobs/{digest}"))
        .await
        .bytes()
        .await
        .unwrap();
    assert!(got.as_ref() == data.as_slice());
}

async fn data_survives_restart(b: Backend) {
    let mut s = TestServer::start(b).await;
    s.init_admin().await;
    let image = s.as_admin().push_image("admin/keep", "v1").await;
    s.restart().await;
    let r = s
        .as_admin()
        .send(Method::GET, "/v2/admin/keep/manifests/v1")
        .await;
    assert_eq!(r.headers()["docker-content-digest"], image.digest.as_str());
    // The signing key is kept too: a token from before the restart still works.
    let token = s
        .token(
            Some((ADMIN, ADMIN_PASSWORD)),
            &["repository:admin/keep:pull"],
        )
        .await;
    s.restart().await;
    assert_eq!(
        s.as_bearer(&token)
            .send(Method::GET, "/v2/admin/keep/manifests/v1")
            .await
            .status(),
        StatusCode::OK
    );
}

async fn concurrent_pushes_of_one_blob_and_one_tag(b: Backend) {
    let s = TestServer::start(b).await;
    s.init_admin().await;
    let blob = random_bytes(50_000);
    let digest = sha256(&blob);
    let pushes = (0..8).map(|_| {
        let req = s
            .as_admin()
            .request(
                Method::POST,
                &format!("/v2/admin/race/blobs/uploads/?digest={digest}"),
            )
            .body(blob.clone());
        async move { req.send().await.unwrap().status() }
    });
    for status in futures_util::future::join_all(pushes).await {
        assert_eq!(status, StatusCode::CREATED);
    }
    assert_eq!(std::fs::read(s.blob_path(&digest)).unwrap(), blob);

    // Eight different images race for one tag; each push succeeds and exactly one wins.
    let images: Vec<Image> = (0..8).map(|_| Image::random(1)).collect();
    for img in &images {
        for b in img.blobs() {
            s.as_admin().push_blob("admin/race", b).await;
        }
    }
    let puts = images.iter().map(|img| {
        let req = s
            .as_admin()
            .request(Method::PUT, "/v2/admin/race/manifests/latest")
            .header("Content-Type", OCI_MANIFEST)
            .body(img.manifest.clone());
        async move { req.send().await.unwrap().status() }
    });
    for status in futures_util::future::join_all(puts).await {
        assert_eq!(status, StatusCode::CREATED);
    }
    let tags: Value = s
        .as_admin()
        .send(Method::GET, "/v2/admin/race/tags/list")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(tags["tags"], json!(["latest"]));
    let r = s
        .as_admin()
        .send(Method::GET, "/v2/admin/race/manifests/latest")
        .await;
    let winner = r.headers()["docker-content-digest"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(images.iter().any(|i| i.digest == winner));
    // The same manifest pushed concurrently by digest is stored once.
    let puts = (0..8).map(|_| {
        let req = s
            .as_admin()
            .request(
                Method::PUT,
                &format!("/v2/admin/race/manifests/{}", images[0].digest),
            )
            .header("Content-Type", OCI_MANIFEST)
            .body(images[0].manifest.clone());
        async move { req.send().await.unwrap().status() }
    });
    for status in futures_util::future::join_all(puts).await {
        assert_eq!(status, StatusCode::CREATED);
    }
}

async fn abandoned_uploads_are_cleaned(b: Backend) {
    let s = TestServer::start(b).await;
    s.init_admin().await;
    let r = s
        .as_admin()
        .send(Method::POST, "/v2/admin/stale/blobs/uploads/")
        .await;
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    let uuid = r.headers()["docker-upload-uuid"]
        .to_str()
        .unwrap()
        .to_owned();
    s.as_admin()
        .request(Method::PATCH, &location)
        .body(random_bytes(1000))
        .send()
        .await
        .unwrap();
    let upload_dir = s.data_dir().join("blobs").join("uploads").join(&uuid);
    assert!(upload_dir.exists());
    // An orphaned part left by a crash (no upload row).
    let orphan = "0f8fad5b-d9cb-469f-a165-70867728950e";
    s.ctx()
        .store
        .put(
            &format!("uploads/{orphan}/00000000000000000000"),
            Box::pin(futures_util::stream::iter([Ok(bytes::Bytes::from_static(
                b"x",
            ))])),
        )
        .await
        .unwrap();

    // Within the expiration nothing happens.
    assert_eq!(
        quayside::workers::run_once(s.ctx(), "uploads")
            .await
            .unwrap(),
        "removed 0 abandoned uploads"
    );
    assert_eq!(
        s.as_admin().send(Method::GET, &location).await.status(),
        StatusCode::NO_CONTENT
    );

    s.clock.advance_ms(2 * 3600 * 1000);
    assert_eq!(
        quayside::workers::run_once(s.ctx(), "uploads")
            .await
            .unwrap(),
        "removed 1 abandoned uploads"
    );
    expect_error(
        s.as_admin().send(Method::GET, &location).await,
        StatusCode::NOT_FOUND,
        "BLOB_UPLOAD_UNKNOWN",
    )
    .await;
    assert!(!upload_dir.exists(), "parts removed");
    assert!(
        !s.data_dir()
            .join("blobs")
            .join("uploads")
            .join(orphan)
            .exists(),
        "orphaned parts removed"
    );
}
