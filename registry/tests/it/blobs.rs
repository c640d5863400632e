//! Blob reads and every upload flow of the Distribution spec.

use reqwest::{Method, StatusCode};

use crate::backend_tests;
use crate::common::oci::{random_bytes, sha256, sha512};
use crate::common::*;

backend_tests!(
    monolithic_upload_and_ranged_reads,
    post_then_put_upload,
    chunked_upload_with_out_of_order_chunk,
    wrong_digest_is_refused_and_invisible,
    sha512_digests_are_accepted,
    cancel_and_unknown_uploads,
    cross_repository_mount,
    delete_blob_link,
);

async fn monolithic_upload_and_ranged_reads(b: Backend) {
    let s = TestServer::start(b).await;
    s.init_admin().await;
    let api = s.as_admin();
    let data = random_bytes(10_000);
    let digest = api.push_blob("admin/blobs", &data).await;

    let r = api
        .send(Method::HEAD, &format!("/v2/admin/blobs/blobs/{digest}"))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-length"], "10000");
    assert_eq!(r.headers()["docker-content-digest"], digest.as_str());

    let r = api
        .send(Method::GET, &format!("/v2/admin/blobs/blobs/{digest}"))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.bytes().await.unwrap().as_ref(), data.as_slice());

    let r = api
        .request(Method::GET, &format!("/v2/admin/blobs/blobs/{digest}"))
        .header("Range", "bytes=100-199")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(r.headers()["content-range"], "bytes 100-199/10000");
    assert_eq!(r.bytes().await.unwrap().as_ref(), &data[100..200]);
    let r = api
        .request(Method::GET, &format!("/v2/admin/blobs/blobs/{digest}"))
        .header("Range", "bytes=-10")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(r.bytes().await.unwrap().as_ref(), &data[9990..]);
    let r = api
        .request(Method::GET, &format!("/v2/admin/blobs/blobs/{digest}"))
        .header("Range", "bytes=20000-")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::RANGE_NOT_SATISFIABLE);

    let unknown = sha256(b"never uploaded");
    expect_error(
        api.send(Method::GET, &format!("/v2/admin/blobs/blobs/{unknown}"))
            .await,
        StatusCode::NOT_FOUND,
        "BLOB_UNKNOWN",
    )
    .await;
    assert_eq!(
        api.send(Method::HEAD, &format!("/v2/admin/blobs/blobs/{unknown}"))
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    expect_error(
        api.send(Method::GET, "/v2/admin/blobs/blobs/sha256:nothex")
            .await,
        StatusCode::BAD_REQUEST,
        "DIGEST_INVALID",
    )
    .await;
    expect_error(
        api.send(Method::GET, "/v2/admin/nothere/blobs/sha256:00")
            .await,
        StatusCode::BAD_REQUEST,
        "DIGEST_INVALID",
    )
    .await;
    let r = api
        .send(Method::GET, &format!("/v2/admin/nothere/blobs/{digest}"))
        .await;
    expect_error(r, StatusCode::NOT_FOUND, "NAME_UNKNOWN").await;
}

async fn post_then_put_upload(b: Backend) {
    let s = TestServer::start(b).await;
    s.init_admin().await;
    let api = s.as_admin();
    let r = api
        .send(Method::POST, "/v2/admin/two-step/blobs/uploads/")
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    let uuid = r.headers()["docker-upload-uuid"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(location, format!("/v2/admin/two-step/blobs/uploads/{uuid}"));
    assert_eq!(r.headers()["range"], "0-0");

    let data = random_bytes(5000);
    let digest = sha256(&data);
    let r = api
        .request(Method::PUT, &format!("{location}?digest={digest}"))
        .body(data.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(
        r.headers()["location"],
        format!("/v2/admin/two-step/blobs/{digest}").as_str()
    );
    assert_eq!(r.headers()["docker-content-digest"], digest.as_str());
    let got = api
        .send(Method::GET, &format!("/v2/admin/two-step/blobs/{digest}"))
        .await
        .bytes()
        .await
        .unwrap();
    assert_eq!(got.as_ref(), data.as_slice());
    // The finished upload is gone.
    expect_error(
        api.send(Method::GET, &location).await,
        StatusCode::NOT_FOUND,
        "BLOB_UPLOAD_UNKNOWN",
    )
    .await;
    // PUT without a digest is refused.
    let r = api
        .send(Method::POST, "/v2/admin/two-step/blobs/uploads/")
        .await;
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    expect_error(
        api.send(Method::PUT, &location).await,
        StatusCode::BAD_REQUEST,
        "DIGEST_INVALID",
    )
    .await;
}

async fn chunked_upload_with_out_of_order_chunk(b: Backend) {
    let s = TestServer::start(b).await;
    s.init_admin().await;
    let api = s.as_admin();
    let data = random_bytes(300_000);
    let digest = sha256(&data);
    let r = api
        .send(Method::POST, "/v2/admin/chunks/blobs/uploads/")
        .await;
    let location = r.headers()["location"].to_str().unwrap().to_owned();

    let patch = |range: Option<String>, body: Vec<u8>| {
        let mut req = api
            .request(Method::PATCH, &location)
            .header("Content-Type", "application/octet-stream")
            .body(body);
        if let Some(range) = range {
            req = req.header("Content-Range", range);
        }
        req.send()
    };
    let r = patch(Some("0-99999".into()), data[..100_000].to_vec())
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    assert_eq!(r.headers()["range"], "0-99999");
    assert_eq!(r.headers()["location"], location.as_str());
    assert!(r.headers().get("connection").is_none(), "kept alive");

    // A chunk that does not start where the upload ends: 416 with the current range.
    let r = patch(Some("50000-149999".into()), data[50_000..150_000].to_vec())
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(r.headers()["range"], "0-99999");
    // The refused chunk may be unread, so the connection closes and the answer says so (a
    // client reusing it would send the next request into a closing socket).
    assert_eq!(r.headers()["connection"], "close");

    let r = api.send(Method::GET, &location).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(r.headers()["range"], "0-99999");

    // A streamed chunk (no Content-Range), then the rest with the PUT.
    let r = patch(None, data[100_000..250_000].to_vec()).await.unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    assert_eq!(r.headers()["range"], "0-249999");
    // A Content-Range that does not match the body length is refused and changes nothing.
    let r = patch(
        Some("250000-250009".into()),
        data[250_000..250_005].to_vec(),
    )
    .await
    .unwrap();
    assert_eq!(r.headers()["connection"], "close");
    expect_error(r, StatusCode::BAD_REQUEST, "BLOB_UPLOAD_INVALID").await;

    let r = api
        .request(Method::PUT, &format!("{location}?digest={digest}"))
        .body(data[250_000..].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED, "{:?}", r.text().await);
    let got = api
        .send(Method::GET, &format!("/v2/admin/chunks/blobs/{digest}"))
        .await
        .bytes()
        .await
        .unwrap();
    assert_eq!(got.len(), data.len());
    assert!(got.as_ref() == data.as_slice(), "content round-trips");
}

async fn wrong_digest_is_refused_and_invisible(b: Backend) {
    let s = TestServer::start(b).await;
    s.init_admin().await;
    let api = s.as_admin();
    let data = random_bytes(2048);
    let claimed = sha256(b"something else");
    let r = api
        .request(
            Method::POST,
            &format!("/v2/admin/d/blobs/uploads/?digest={claimed}"),
        )
        .body(data.clone())
        .send()
        .await
        .unwrap();
    expect_error(r, StatusCode::BAD_REQUEST, "DIGEST_INVALID").await;
    assert_eq!(
        api.send(Method::HEAD, &format!("/v2/admin/d/blobs/{claimed}"))
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        api.send(
            Method::HEAD,
            &format!("/v2/admin/d/blobs/{}", sha256(&data))
        )
        .await
        .status(),
        StatusCode::NOT_FOUND
    );
    assert!(
        !s.blob_path(&claimed).exists() && !s.blob_path(&sha256(&data)).exists(),
        "no bytes stored under either digest"
    );
    let r = api
        .request(Method::POST, "/v2/admin/d/blobs/uploads/?digest=md5:abc")
        .body(data)
        .send()
        .await
        .unwrap();
    expect_error(r, StatusCode::BAD_REQUEST, "DIGEST_INVALID").await;
}

async fn sha512_digests_are_accepted(b: Backend) {
    let s = TestServer::start(b).await;
    s.init_admin().await;
    let api = s.as_admin();
    let data = random_bytes(4096);
    let digest = sha512(&data);
    let r = api
        .request(
            Method::POST,
            &format!("/v2/admin/s512/blobs/uploads/?digest={digest}"),
        )
        .body(data.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    // Chunked too: the running hash is sha256 and must be rebuilt for sha512 at the end.
    let r = api
        .send(Method::POST, "/v2/admin/s512/blobs/uploads/")
        .await;
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    let other = random_bytes(1000);
    api.request(Method::PATCH, &location)
        .body(other.clone())
        .send()
        .await
        .unwrap();
    let r = api
        .send(
            Method::PUT,
            &format!("{location}?digest={}", sha512(&other)),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = api
        .send(Method::HEAD, &format!("/v2/admin/s512/blobs/{digest}"))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["docker-content-digest"], digest.as_str());
}

async fn cancel_and_unknown_uploads(b: Backend) {
    let s = TestServer::start(b).await;
    s.init_admin().await;
    let (bob, bob_pw) = s.user("bob").await;
    let api = s.as_admin();
    let r = api.send(Method::POST, "/v2/admin/c/blobs/uploads/").await;
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    api.request(Method::PATCH, &location)
        .body(random_bytes(100))
        .send()
        .await
        .unwrap();
    // Someone else cannot touch the upload.
    let r = s
        .as_basic(&bob, &bob_pw)
        .request(Method::PATCH, &location)
        .body(vec![1, 2, 3])
        .send()
        .await
        .unwrap();
    expect_error(r, StatusCode::FORBIDDEN, "DENIED").await;
    assert_eq!(
        api.send(Method::DELETE, &location).await.status(),
        StatusCode::NO_CONTENT
    );
    expect_error(
        api.send(Method::GET, &location).await,
        StatusCode::NOT_FOUND,
        "BLOB_UPLOAD_UNKNOWN",
    )
    .await;
    expect_error(
        api.send(Method::DELETE, &location).await,
        StatusCode::NOT_FOUND,
        "BLOB_UPLOAD_UNKNOWN",
    )
    .await;
    let bogus = "/v2/admin/c/blobs/uploads/3f1d2b0c-0000-4000-8000-000000000000";
    let r = api
        .request(Method::PATCH, bogus)
        .body(vec![1])
        .send()
        .await
        .unwrap();
    expect_error(r, StatusCode::NOT_FOUND, "BLOB_UPLOAD_UNKNOWN").await;
    let r = api
        .request(Method::PATCH, "/v2/admin/c/blobs/uploads/..%2F..%2Fetc")
        .body(vec![1])
        .send()
        .await
        .unwrap();
    expect_error(r, StatusCode::NOT_FOUND, "BLOB_UPLOAD_UNKNOWN").await;
    // An upload id from another repository is unknown here.
    let r = api
        .send(Method::POST, "/v2/admin/other/blobs/uploads/")
        .await;
    let uuid = r.headers()["docker-upload-uuid"]
        .to_str()
        .unwrap()
        .to_owned();
    expect_error(
        api.send(Method::GET, &format!("/v2/admin/c/blobs/uploads/{uuid}"))
            .await,
        StatusCode::NOT_FOUND,
        "BLOB_UPLOAD_UNKNOWN",
    )
    .await;
}

async fn cross_repository_mount(b: Backend) {
    let s = TestServer::start(b).await;
    s.init_admin().await;
    let (bob, bob_pw) = s.user("bob").await;
    let api = s.as_admin();
    let digest = api.push_blob("admin/source", &random_bytes(3000)).await;

    let r = api
        .send(
            Method::POST,
            &format!("/v2/admin/target/blobs/uploads/?mount={digest}&from=admin/source"),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(
        r.headers()["location"],
        format!("/v2/admin/target/blobs/{digest}").as_str()
    );
    assert_eq!(r.headers()["docker-content-digest"], digest.as_str());
    assert_eq!(
        api.send(Method::HEAD, &format!("/v2/admin/target/blobs/{digest}"))
            .await
            .status(),
        StatusCode::OK
    );

    // Bob cannot read admin/source: the mount falls back to a fresh upload session.
    let bob_api = s.as_basic(&bob, &bob_pw);
    let r = bob_api
        .send(
            Method::POST,
            &format!("/v2/bob/x/blobs/uploads/?mount={digest}&from=admin/source"),
        )
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    assert!(r.headers().contains_key("docker-upload-uuid"));
    assert_eq!(
        bob_api
            .send(Method::HEAD, &format!("/v2/bob/x/blobs/{digest}"))
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    // A blob the source does not have also falls back.
    let missing = sha256(b"missing");
    let r = api
        .send(
            Method::POST,
            &format!("/v2/admin/target/blobs/uploads/?mount={missing}&from=admin/source"),
        )
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
}

async fn delete_blob_link(b: Backend) {
    let s = TestServer::start(b).await;
    s.init_admin().await;
    let api = s.as_admin();
    let digest = api.push_blob("admin/del", &random_bytes(500)).await;
    assert_eq!(
        api.send(Method::DELETE, &format!("/v2/admin/del/blobs/{digest}"))
            .await
            .status(),
        StatusCode::ACCEPTED
    );
    assert_eq!(
        api.send(Method::HEAD, &format!("/v2/admin/del/blobs/{digest}"))
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    expect_error(
        api.send(Method::DELETE, &format!("/v2/admin/del/blobs/{digest}"))
            .await,
        StatusCode::NOT_FOUND,
        "BLOB_UNKNOWN",
    )
    .await;
}
