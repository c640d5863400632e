//! Bad input and OCI conformance at the edges: NUL characters, huge or unsatisfiable ranges,
//! oversized error messages, bodies that are not the expected JSON, challenges that name the
//! scope the check needs, and cross-repository mounts decided on the caller's account (issue 15
//! items 11, 12, 13, 15, 17, 18).

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::backend_tests;
use crate::common::oci::*;
use crate::common::quay::assert_quay_error;
use crate::common::*;

backend_tests!(
    range_positions_past_u64_clamp_to_the_blob,
    unsatisfiable_ranges_answer_416_with_content_range,
    chunk_ranges_past_the_largest_offset_answer_416,
    every_v2_route_challenges_for_the_scope_it_checks,
    mount_is_decided_on_the_account_whatever_the_token_scopes,
    nul_characters_are_refused_at_the_edge,
    error_messages_echo_input_within_bounds,
    bodies_that_are_not_the_expected_json_are_refused,
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

/// The `scope` of a `WWW-Authenticate: Bearer ...` challenge.
fn challenge_scope(r: &reqwest::Response) -> Option<String> {
    let h = r.headers().get("www-authenticate")?.to_str().ok()?;
    let rest = h.split("scope=\"").nth(1)?;
    Some(rest.split('"').next()?.to_owned())
}

/// A request (method, path, body, content type) and the status it answers when allowed.
type Case = (Method, String, Vec<u8>, Option<&'static str>, StatusCode);

/// A new upload session in `repo`, as the admin; returns its location.
async fn upload_session(s: &TestServer, repo: &str) -> String {
    let r = s
        .as_admin()
        .send(Method::POST, &format!("/v2/{repo}/blobs/uploads/"))
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    r.headers()["location"].to_str().unwrap().to_owned()
}

/// Issue 15 item 15: for every `/v2` route, an anonymous request is challenged for a scope,
/// and a token for exactly that scope is accepted (the upload status used to challenge for
/// `pull` and check `push`; an upload cancel challenged for `delete`).
async fn every_v2_route_challenges_for_the_scope_it_checks(b: Backend) {
    let s = TestServer::start(b).await;
    s.init_admin().await;
    let repo = "admin/private";
    let image = s.as_admin().push_image(repo, "v1").await;
    let other = s.as_admin().push_image("admin/source", "v1").await;
    let layer = sha256(&image.layers[0]);
    let foreign = sha256(&other.layers[0]);
    let fresh = random_bytes(300);
    let chunk = random_bytes(200);
    let last = random_bytes(100);
    let status_session = upload_session(&s, repo).await;
    let patch_session = upload_session(&s, repo).await;
    let put_session = upload_session(&s, repo).await;
    let cancel_session = upload_session(&s, repo).await;
    let next = Image::random(1);
    for blob in next.blobs() {
        s.as_admin().push_blob(repo, blob).await;
    }
    let base = format!("/v2/{repo}");
    let cases: Vec<Case> = vec![
        (
            Method::GET,
            format!("{base}/tags/list"),
            vec![],
            None,
            StatusCode::OK,
        ),
        (
            Method::GET,
            format!("{base}/manifests/v1"),
            vec![],
            None,
            StatusCode::OK,
        ),
        (
            Method::HEAD,
            format!("{base}/manifests/v1"),
            vec![],
            None,
            StatusCode::OK,
        ),
        (
            Method::PUT,
            format!("{base}/manifests/v2"),
            next.manifest.clone(),
            Some(OCI_MANIFEST),
            StatusCode::CREATED,
        ),
        (
            Method::GET,
            format!("{base}/blobs/{layer}"),
            vec![],
            None,
            StatusCode::OK,
        ),
        (
            Method::HEAD,
            format!("{base}/blobs/{layer}"),
            vec![],
            None,
            StatusCode::OK,
        ),
        (
            Method::GET,
            format!("{base}/referrers/{}", image.digest),
            vec![],
            None,
            StatusCode::OK,
        ),
        (
            Method::POST,
            format!("{base}/blobs/uploads/"),
            vec![],
            None,
            StatusCode::ACCEPTED,
        ),
        (
            Method::POST,
            format!("{base}/blobs/uploads/?digest={}", sha256(&fresh)),
            fresh.clone(),
            None,
            StatusCode::CREATED,
        ),
        (
            Method::GET,
            status_session.clone(),
            vec![],
            None,
            StatusCode::NO_CONTENT,
        ),
        (
            Method::PATCH,
            patch_session.clone(),
            chunk.clone(),
            None,
            StatusCode::ACCEPTED,
        ),
        (
            Method::PUT,
            format!("{put_session}?digest={}", sha256(&last)),
            last.clone(),
            None,
            StatusCode::CREATED,
        ),
        (
            Method::DELETE,
            cancel_session.clone(),
            vec![],
            None,
            StatusCode::NO_CONTENT,
        ),
        (
            Method::POST,
            format!("{base}/blobs/uploads/?mount={foreign}&from=admin/source"),
            vec![],
            None,
            StatusCode::CREATED,
        ),
        (
            Method::DELETE,
            format!("{base}/blobs/{}", sha256(&fresh)),
            vec![],
            None,
            StatusCode::ACCEPTED,
        ),
        (
            Method::DELETE,
            format!("{base}/manifests/{}", next.digest),
            vec![],
            None,
            StatusCode::ACCEPTED,
        ),
    ];
    for (method, path, body, content_type, success) in cases {
        let what = format!("{method} {path}");
        let request = |api: Api<'_>| {
            let mut req = api.request(method.clone(), &path).body(body.clone());
            if let Some(ct) = content_type {
                req = req.header("Content-Type", ct);
            }
            req
        };
        let r = request(s.anonymous()).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{what}");
        let scope = challenge_scope(&r).unwrap_or_else(|| panic!("{what}: no scope in challenge"));
        let token = s.token(Some((ADMIN, ADMIN_PASSWORD)), &[&scope]).await;
        let r = request(s.as_bearer(&token)).send().await.unwrap();
        let status = r.status();
        assert_eq!(
            status,
            success,
            "{what} with a token for the challenged scope {scope:?}: {}",
            r.text().await.unwrap_or_default()
        );
    }
    // The catalog answers anonymous callers (what they may see); its scope is the catalog's.
    let r = s.anonymous().send(Method::GET, "/v2/_catalog").await;
    assert_eq!(r.status(), StatusCode::OK);
}

/// Issue 15 item 17: a cross-repository mount is decided on the caller's access to `from`, not
/// on the scopes its token carries (clients ask only for the target's scope): 201 when the
/// account can read the source (a permission, or a public repository), 202 (a fresh upload)
/// when it cannot.
async fn mount_is_decided_on_the_account_whatever_the_token_scopes(b: Backend) {
    let s = TestServer::start(b).await;
    let admin_token = s.init_admin().await;
    let (bob, bob_pw) = s.user("bob").await;
    let (carol, carol_pw) = s.user("carol").await;
    let private = s
        .as_admin()
        .push_blob("admin/src", &random_bytes(700))
        .await;
    let public = s
        .as_admin()
        .push_blob("admin/pub", &random_bytes(800))
        .await;
    let (status, body) = s
        .call(
            Some(&admin_token),
            Method::POST,
            "/repository/admin/pub/changevisibility",
            Some(json!({ "visibility": "public" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = s
        .call(
            Some(&admin_token),
            Method::PUT,
            "/repository/admin/src/permissions/user/bob",
            Some(json!({ "role": "read" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let mount = |user: &str, token: &str, digest: &str, from: &str| {
        let path = format!("/v2/{user}/dst/blobs/uploads/?mount={digest}&from={from}");
        let token = token.to_owned();
        let s = &s;
        async move { s.as_bearer(&token).send(Method::POST, &path).await }
    };
    let bob_token = s
        .token(Some((&bob, &bob_pw)), &["repository:bob/dst:pull,push"])
        .await;
    for (digest, from) in [(&private, "admin/src"), (&public, "admin/pub")] {
        let r = mount(&bob, &bob_token, digest, from).await;
        assert_eq!(r.status(), StatusCode::CREATED, "bob from {from}");
        assert_eq!(r.headers()["docker-content-digest"], digest.as_str());
        let r = s
            .as_basic(&bob, &bob_pw)
            .send(Method::HEAD, &format!("/v2/bob/dst/blobs/{digest}"))
            .await;
        assert_eq!(r.status(), StatusCode::OK, "bob/dst has {from}'s blob");
    }

    let carol_token = s
        .token(
            Some((&carol, &carol_pw)),
            &["repository:carol/dst:pull,push"],
        )
        .await;
    // Carol cannot read admin/src: a fresh upload, and nothing linked.
    let r = mount(&carol, &carol_token, &private, "admin/src").await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    assert!(r.headers().contains_key("docker-upload-uuid"));
    let r = s
        .as_basic(&carol, &carol_pw)
        .send(Method::HEAD, &format!("/v2/carol/dst/blobs/{private}"))
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    // Anyone, anonymous included, may read admin/pub: its blob mounts.
    let r = mount(&carol, &carol_token, &public, "admin/pub").await;
    assert_eq!(r.status(), StatusCode::CREATED);
    // A token that says nothing about the target still cannot push: the target is checked.
    let r = mount(&carol, &bob_token, &public, "admin/pub").await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

/// A raw `/api/v1` request (the body as bytes, so it can be anything).
async fn raw_call(
    s: &TestServer,
    token: Option<&str>,
    method: Method,
    path: &str,
    body: Option<&[u8]>,
) -> (StatusCode, Value) {
    let mut req = s.client.request(method, format!("{}/api/v1{path}", s.url));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req
            .header("Content-Type", "application/json")
            .body(b.to_vec());
    }
    let r = req.send().await.unwrap();
    let status = r.status();
    let text = r.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Issue 15 item 11: a NUL character (`%00`, `\u0000`) anywhere a request carries text is a 400
/// naming where it is, in the surface's format, on every backend (PostgreSQL answered 500, some
/// of them to anonymous callers).
async fn nul_characters_are_refused_at_the_edge(b: Backend) {
    let s = TestServer::start(b).await;
    let admin = s.init_admin().await;
    s.as_admin().push_image("admin/repo", "v1").await;
    s.create_org(&admin, "org").await;

    // /v2: the OCI envelope.
    let v2 = |path: &'static str, anonymous: bool| {
        let s = &s;
        async move {
            let api = if anonymous {
                s.anonymous()
            } else {
                s.as_admin()
            };
            api.send(Method::GET, path).await
        }
    };
    for (path, anonymous, at) in [
        ("/v2/_catalog?last=%00", true, "last"),
        ("/v2/_catalog?n=1&last=a%00b", false, "last"),
        ("/v2/admin/repo/tags/list?last=%00", false, "last"),
        ("/v2/admin/repo/tags/list?n=%00", false, "n"),
        (
            "/v2/admin/repo/blobs/uploads/?mount=%00&from=admin/repo",
            false,
            "mount",
        ),
    ] {
        let body = expect_error(
            v2(path, anonymous).await,
            StatusCode::BAD_REQUEST,
            "UNSUPPORTED",
        )
        .await;
        assert_eq!(
            body["errors"][0]["message"],
            format!("query parameter {at} must not contain NUL characters"),
            "{path}"
        );
    }
    // /v2 paths are matched undecoded: the parsers refuse the `%`.
    expect_error(
        v2("/v2/a%00b/tags/list", false).await,
        StatusCode::BAD_REQUEST,
        "NAME_INVALID",
    )
    .await;
    let r = v2("/v2/admin/repo/blobs/sha256:%00", false).await;
    expect_error(r, StatusCode::BAD_REQUEST, "DIGEST_INVALID").await;
    // The token endpoint: its query, and its form.
    let r = s
        .anonymous()
        .send(
            Method::GET,
            &format!(
                "/v2/auth?service={}&scope=repository:admin/a%00:pull",
                s.host
            ),
        )
        .await;
    expect_error(r, StatusCode::BAD_REQUEST, "UNSUPPORTED").await;
    let r = s
        .client
        .post(format!("{}/v2/auth", s.url))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("grant_type=password&username=ad%00min&password=x&scope=repository:admin/repo:pull")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request");
    assert_eq!(
        body["error_description"],
        "form field username must not contain NUL characters"
    );
    // Basic credentials holding a NUL are malformed, on both surfaces.
    let nul_user = s.as_basic("ad\0min", ADMIN_PASSWORD);
    let r = nul_user.send(Method::GET, "/v2/").await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = nul_user.send(Method::GET, "/v2/admin/repo/tags/list").await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = nul_user.send(Method::GET, "/api/v1/user/").await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // A manifest whose kept fields hold a NUL.
    let image = Image::random(1);
    for blob in image.blobs() {
        s.as_admin().push_blob("admin/repo", blob).await;
    }
    let mut manifest: Value = serde_json::from_slice(&image.manifest).unwrap();
    manifest["annotations"] = json!({ "org.example": "a\u{0}b" });
    let r = s
        .as_admin()
        .put_manifest(
            "admin/repo",
            "nul",
            OCI_MANIFEST,
            &serde_json::to_vec(&manifest).unwrap(),
        )
        .await;
    let body = expect_error(r, StatusCode::BAD_REQUEST, "MANIFEST_INVALID").await;
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("annotations must not contain NUL"),
        "{body}"
    );

    // /api/v1: Quay's error body.
    let quay = |status: StatusCode, body: &Value, at: &str| {
        assert_quay_error(
            status,
            body,
            StatusCode::BAD_REQUEST,
            "invalid_request",
            &format!("{at} must not contain NUL characters"),
        )
    };
    // Sign-up, anonymous.
    let (status, body) = raw_call(
        &s,
        None,
        Method::POST,
        "/user/",
        Some(br#"{"username":"new\u0000user","password":"password-123","email":"n@example.com"}"#),
    )
    .await;
    quay(status, &body, "username");
    for (path, at) in [
        (
            "/repository/admin/repo/tag/?specificTag=%00",
            "query parameter specificTag",
        ),
        (
            "/repository/admin/repo/tag/?onlyActiveTags=true&specificTag=v%001",
            "query parameter specificTag",
        ),
        ("/repository?namespace=%00", "query parameter namespace"),
        ("/organization/a%00b", "the path"),
        ("/repository/admin/re%00po/tag/", "the path"),
        ("/users/a%00b", "the path"),
    ] {
        let (status, body) = raw_call(&s, Some(&admin), Method::GET, path, None).await;
        quay(status, &body, at);
        // Anonymous callers get the same answer, not a 500.
        let (status, body) = raw_call(&s, None, Method::GET, path, None).await;
        quay(status, &body, at);
    }
    let (status, body) = raw_call(
        &s,
        Some(&admin),
        Method::POST,
        "/organization/org/applications",
        Some(br#"{"name":"app","description":"an \u0000 app"}"#),
    )
    .await;
    quay(status, &body, "description");
    let (status, body) = raw_call(
        &s,
        Some(&admin),
        Method::PUT,
        "/repository/admin/repo",
        Some(br#"{"description":"\u0000"}"#),
    )
    .await;
    quay(status, &body, "description");
    let (status, body) = raw_call(
        &s,
        Some(&admin),
        Method::POST,
        "/repository/admin/repo/manifest/sha256:0/labels",
        Some(br#"{"key":"k","value":"v","media_type":"text/plain","x":{"\u0000":1}}"#),
    )
    .await;
    quay(status, &body, "x.keys");
    // Nothing was stored.
    let (status, body) = raw_call(
        &s,
        Some(&admin),
        Method::GET,
        "/repository/admin/repo",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_ne!(body["description"], "\u{0}");
}

/// Asserts a bounded message: at most 1 KiB, cut with an ellipsis.
#[track_caller]
fn assert_bounded(message: &Value, what: &str) {
    let m = message
        .as_str()
        .unwrap_or_else(|| panic!("{what}: no message"));
    assert!(m.len() <= 1024, "{what}: {} bytes", m.len());
    assert!(m.ends_with('…'), "{what}: {m}");
}

/// Issue 15 item 13: a message that echoes a huge input is cut (with an ellipsis) instead of
/// making the body too large to write (it came back empty past 64 KiB).
async fn error_messages_echo_input_within_bounds(b: Backend) {
    let s = TestServer::start(b).await;
    let admin = s.init_admin().await;
    s.as_admin().push_image("admin/repo", "v1").await;
    let huge = "x".repeat(100 * 1024);
    // serde echoes an unknown variant / a string of the wrong type.
    for (method, path, body) in [
        (
            Method::PUT,
            "/repository/admin/repo/permissions/user/admin",
            json!({ "role": huge }),
        ),
        (
            Method::POST,
            "/repository/admin/repo/changevisibility",
            json!({ "visibility": huge }),
        ),
    ] {
        let what = format!("{method} {path}");
        let (status, body) = s.call(Some(&admin), method, path, Some(body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{what}: {body}");
        assert_eq!(body["error_type"], "invalid_request", "{what}");
        assert_bounded(&body["error_message"], &what);
        assert_bounded(&body["detail"], &what);
        assert!(body["type"].as_str().unwrap().starts_with("http"), "{what}");
    }
    // /v2: a huge reference echoed in TAG_INVALID.
    let image = Image::random(1);
    let tag = "t".repeat(60 * 1024);
    let r = s
        .as_admin()
        .put_manifest(
            "admin/repo",
            &format!("{tag}!"),
            OCI_MANIFEST,
            &image.manifest,
        )
        .await;
    let body = expect_error(r, StatusCode::BAD_REQUEST, "TAG_INVALID").await;
    assert_bounded(&body["errors"][0]["message"], "TAG_INVALID");
}

/// Issue 15 item 13: a body that is not the JSON the endpoint expects (another top-level type,
/// not UTF-8) is a 400 in Quay's error body, never a silent no-op.
async fn bodies_that_are_not_the_expected_json_are_refused(b: Backend) {
    let s = TestServer::start(b).await;
    let admin = s.init_admin().await;
    s.as_admin().push_image("admin/repo", "v1").await;
    let (status, _) = s
        .call(
            Some(&admin),
            Method::PUT,
            "/repository/admin/repo",
            Some(json!({ "description": "kept" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let endpoints = [
        (Method::PUT, "/repository/admin/repo"),
        (Method::PUT, "/repository/admin/repo/tag/v1"),
        (Method::PUT, "/repository/admin/repo/permissions/user/admin"),
        (Method::PUT, "/user/"),
        (Method::POST, "/repository/admin/repo/changevisibility"),
    ];
    let bodies: [&[u8]; 9] = [
        b"[]",
        br#"["not kept"]"#,
        b"\"not kept\"",
        b"1",
        b"null",
        b"true",
        b"\xff\xfe{}",
        b"{\"description\":\"not \xff kept\"}",
        b"{\"description\":\"not kept\",\"junk\":\"\xff\"}",
    ];
    for (method, path) in endpoints {
        for body in bodies {
            let what = format!("{method} {path} {}", String::from_utf8_lossy(body));
            let (status, answer) =
                raw_call(&s, Some(&admin), method.clone(), path, Some(body)).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{what}: {answer}");
            assert_eq!(answer["error_type"], "invalid_request", "{what}: {answer}");
            let m = answer["error_message"].as_str().unwrap();
            assert!(
                m.starts_with("Invalid JSON body: ")
                    && (m.contains("expected a JSON object") || m.contains("not UTF-8")),
                "{what}: {m}"
            );
        }
    }
    let (status, body) = raw_call(
        &s,
        Some(&admin),
        Method::GET,
        "/repository/admin/repo",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["description"], "kept");
}
