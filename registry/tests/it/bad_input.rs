//! Bad input and OCI conformance at the edges: NUL characters, huge or unsatisfiable ranges,
//! oversized error messages, bodies that are not the expected JSON, challenges that name the
//! scope the check needs, and cross-repository mounts decided on the caller's account (issue 15
//! items 11, 12, 13, 15, 17, 18).

use reqwest::{Method, StatusCode};

use crate::backend_tests;
use crate::common::oci::*;
use crate::common::*;

backend_tests!(
    range_positions_past_u64_clamp_to_the_blob,
    unsatisfiable_ranges_answer_416_with_content_range,
    chunk_ranges_past_the_largest_offset_answer_416,
);

async fn range_get(s: &TestServer, path: &str, range: &str) -> reqwest::Response {
    s.as_admin()
        .request(Method::GET, path)
        .header("Range", range)
        .send()
        .await
        .unwrap()
}

/// Issue 15 item 12: `bytes=0-18446744073709551615` is the whole blob (the end clamps to the
/// last byte), not a 416 from an overflow.
async fn range_positions_past_u64_clamp_to_the_blob(b: Backend) {
    let s = TestServer::start(b).await;
    s.init_admin().await;
    let data = random_bytes(1000);
    let digest = s.as_admin().push_blob("admin/ranges", &data).await;
    let path = format!("/v2/admin/ranges/blobs/{digest}");
    for range in [
        "bytes=0-18446744073709551615",
        "bytes=0-18446744073709551616",
        "bytes=0-99999999999999999999999999999",
    ] {
        let r = range_get(&s, &path, range).await;
        assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT, "{range}");
        assert_eq!(r.headers()["content-range"], "bytes 0-999/1000", "{range}");
        assert_eq!(r.bytes().await.unwrap().as_ref(), &data[..], "{range}");
    }
    let r = range_get(&s, &path, "bytes=990-18446744073709551615").await;
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(r.headers()["content-range"], "bytes 990-999/1000");
    assert_eq!(r.bytes().await.unwrap().as_ref(), &data[990..]);
    // A suffix longer than the blob is the whole blob; a start past u64 is past the end.
    let r = range_get(&s, &path, "bytes=-18446744073709551616").await;
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(r.headers()["content-range"], "bytes 0-999/1000");
    let r = range_get(&s, &path, "bytes=18446744073709551616-").await;
    assert_eq!(r.status(), StatusCode::RANGE_NOT_SATISFIABLE);
}

/// Issue 15 item 18: a range whose end precedes its start, or that starts past the end, is
/// unsatisfiable: 416 with `Content-Range: bytes */<size>`, never the whole blob.
async fn unsatisfiable_ranges_answer_416_with_content_range(b: Backend) {
    let s = TestServer::start(b).await;
    s.init_admin().await;
    let data = random_bytes(1000);
    let digest = s.as_admin().push_blob("admin/ranges", &data).await;
    let path = format!("/v2/admin/ranges/blobs/{digest}");
    for range in [
        "bytes=500-0",
        "bytes=999-998",
        "bytes=1000-",
        "bytes=1000-2000",
        "bytes=-0",
    ] {
        let r = range_get(&s, &path, range).await;
        assert_eq!(r.headers()["content-range"], "bytes */1000", "{range}");
        let body = expect_error(r, StatusCode::RANGE_NOT_SATISFIABLE, "BLOB_UNKNOWN").await;
        assert_eq!(body["errors"][0]["detail"]["size"], 1000, "{range}");
    }
    // Headers this server does not implement are ignored (RFC 9110 §14.2): the whole blob.
    for range in ["bytes=0-1,5-6", "items=0-5", "bytes=x-5"] {
        let r = range_get(&s, &path, range).await;
        assert_eq!(r.status(), StatusCode::OK, "{range}");
        assert_eq!(r.bytes().await.unwrap().len(), 1000, "{range}");
    }
}

/// Issue 15 item 12, uploads: a chunk's `Content-Range` past the largest offset answers 416
/// with the upload's range (a debug build used to panic on `end - start + 1`), and the upload
/// goes on.
async fn chunk_ranges_past_the_largest_offset_answer_416(b: Backend) {
    let s = TestServer::start(b).await;
    s.init_admin().await;
    let api = s.as_admin();
    let r = api
        .send(Method::POST, "/v2/admin/chunks/blobs/uploads/")
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    let data = random_bytes(100);
    for range in [
        "0-18446744073709551615",
        "0-99999999999999999999",
        "bytes 9223372036854775808-9223372036854775809/*",
    ] {
        let r = api
            .request(Method::PATCH, &location)
            .header("Content-Range", range)
            .body(data.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.headers()["range"], "0-0", "{range}");
        expect_error(r, StatusCode::RANGE_NOT_SATISFIABLE, "BLOB_UPLOAD_INVALID").await;
    }
    let r = api
        .request(Method::PATCH, &location)
        .header("Content-Range", "0-99")
        .body(data.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    assert_eq!(r.headers()["range"], "0-99");
    let r = api
        .request(Method::PUT, &format!("{location}?digest={}", sha256(&data)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
}
