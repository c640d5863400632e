//! Manifests: push, pull, negotiation, deletion, validation, artifacts and referrers.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::backend_tests;
use crate::common::oci::*;
use crate::common::*;

backend_tests!(
    push_pull_delete_by_tag_and_digest,
    docker_schema2_round_trip,
    invalid_manifests_and_names_are_refused,
    index_children_and_content_negotiation,
    artifacts_subject_and_referrers,
    pull_cache_reads_own_writes_and_bounds_staleness,
);

async fn push_pull_delete_by_tag_and_digest(b: Backend) {
    let s = TestServer::start(b).await;
    s.init_admin().await;
    let api = s.as_admin();
    let image = Image::random(2);
    for blob in image.blobs() {
        api.push_blob("admin/app", blob).await;
    }
    let r = api
        .put_manifest("admin/app", "v1", OCI_MANIFEST, &image.manifest)
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(
        r.headers()["location"],
        format!("/v2/admin/app/manifests/{}", image.digest).as_str()
    );
    assert_eq!(r.headers()["docker-content-digest"], image.digest.as_str());
    assert!(!r.headers().contains_key("oci-subject"));

    for reference in ["v1", image.digest.as_str()] {
        let r = api
            .send(Method::GET, &format!("/v2/admin/app/manifests/{reference}"))
            .await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()["content-type"], OCI_MANIFEST);
        assert_eq!(r.headers()["docker-content-digest"], image.digest.as_str());
        assert_eq!(
            r.bytes().await.unwrap().as_ref(),
            image.manifest.as_slice(),
            "bytes are the client's own"
        );
        let r = api
            .send(
                Method::HEAD,
                &format!("/v2/admin/app/manifests/{reference}"),
            )
            .await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(
            r.headers()["content-length"],
            image.manifest.len().to_string().as_str()
        );
        assert!(r.bytes().await.unwrap().is_empty());
    }
    // Pushing by digest stores without tagging; pushing the same tag again is idempotent.
    let untagged = Image::random(1);
    for blob in untagged.blobs() {
        api.push_blob("admin/app", blob).await;
    }
    let r = api
        .put_manifest(
            "admin/app",
            &untagged.digest,
            OCI_MANIFEST,
            &untagged.manifest,
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(
        api.put_manifest("admin/app", "v1", OCI_MANIFEST, &image.manifest)
            .await
            .status(),
        StatusCode::CREATED
    );
    let tags: Value = api
        .send(Method::GET, "/v2/admin/app/tags/list")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(tags, json!({ "name": "admin/app", "tags": ["v1"] }));

    // Deleting the tag leaves the manifest reachable by digest; deleting the digest removes it.
    assert_eq!(
        api.send(Method::DELETE, "/v2/admin/app/manifests/v1")
            .await
            .status(),
        StatusCode::ACCEPTED
    );
    expect_error(
        api.send(Method::GET, "/v2/admin/app/manifests/v1").await,
        StatusCode::NOT_FOUND,
        "MANIFEST_UNKNOWN",
    )
    .await;
    assert_eq!(
        api.send(
            Method::GET,
            &format!("/v2/admin/app/manifests/{}", image.digest)
        )
        .await
        .status(),
        StatusCode::OK
    );
    assert_eq!(
        api.put_manifest("admin/app", "v2", OCI_MANIFEST, &image.manifest)
            .await
            .status(),
        StatusCode::CREATED
    );
    assert_eq!(
        api.send(
            Method::DELETE,
            &format!("/v2/admin/app/manifests/{}", image.digest)
        )
        .await
        .status(),
        StatusCode::ACCEPTED
    );
    expect_error(
        api.send(
            Method::GET,
            &format!("/v2/admin/app/manifests/{}", image.digest),
        )
        .await,
        StatusCode::NOT_FOUND,
        "MANIFEST_UNKNOWN",
    )
    .await;
    expect_error(
        api.send(Method::GET, "/v2/admin/app/manifests/v2").await,
        StatusCode::NOT_FOUND,
        "MANIFEST_UNKNOWN",
    )
    .await;
    expect_error(
        api.send(
            Method::DELETE,
            &format!("/v2/admin/app/manifests/{}", image.digest),
        )
        .await,
        StatusCode::NOT_FOUND,
        "MANIFEST_UNKNOWN",
    )
    .await;
    // And it can be pushed again.
    assert_eq!(
        api.put_manifest("admin/app", "v3", OCI_MANIFEST, &image.manifest)
            .await
            .status(),
        StatusCode::CREATED
    );
    assert_eq!(
        api.send(Method::GET, "/v2/admin/app/manifests/v3")
            .await
            .status(),
        StatusCode::OK
    );
}

async fn docker_schema2_round_trip(b: Backend) {
    let s = TestServer::start(b).await;
    s.init_admin().await;
    let api = s.as_admin();
    let image = Image::build(vec![random_bytes(700)], "amd64", true);
    for blob in image.blobs() {
        api.push_blob("admin/docker", blob).await;
    }
    assert_eq!(
        api.put_manifest("admin/docker", "latest", DOCKER_MANIFEST, &image.manifest)
            .await
            .status(),
        StatusCode::CREATED
    );
    let r = api
        .request(Method::GET, "/v2/admin/docker/manifests/latest")
        .header("Accept", DOCKER_MANIFEST)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], DOCKER_MANIFEST);
    // A client that only reads OCI cannot get a Docker manifest.
    let r = api
        .request(Method::GET, "/v2/admin/docker/manifests/latest")
        .header("Accept", OCI_MANIFEST)
        .send()
        .await
        .unwrap();
    expect_error(r, StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN").await;
}

async fn invalid_manifests_and_names_are_refused(b: Backend) {
    let s = TestServer::start(b).await;
    s.init_admin().await;
    let api = s.as_admin();
    let image = Image::random(1);
    api.push_blob("admin/v", &image.config).await;
    // The layer was never uploaded.
    let r = api
        .put_manifest("admin/v", "v1", OCI_MANIFEST, &image.manifest)
        .await;
    let body = expect_error(r, StatusCode::BAD_REQUEST, "MANIFEST_BLOB_UNKNOWN").await;
    assert_eq!(
        body["errors"][0]["detail"]["digest"],
        sha256(&image.layers[0]).as_str()
    );
    expect_error(
        api.put_manifest("admin/v", "v1", OCI_MANIFEST, b"{not json")
            .await,
        StatusCode::BAD_REQUEST,
        "MANIFEST_INVALID",
    )
    .await;
    expect_error(
        api.put_manifest("admin/v", "v1", DOCKER_MANIFEST, &image.manifest)
            .await,
        StatusCode::BAD_REQUEST,
        "MANIFEST_INVALID",
    )
    .await;
    expect_error(
        api.put_manifest(
            "admin/v",
            "v1",
            OCI_MANIFEST,
            br#"{"schemaVersion":2,"layers":[]}"#,
        )
        .await,
        StatusCode::BAD_REQUEST,
        "MANIFEST_INVALID",
    )
    .await;
    let huge = vec![b' '; 4 * 1024 * 1024 + 1];
    expect_error(
        api.put_manifest("admin/v", "big", OCI_MANIFEST, &huge)
            .await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "MANIFEST_INVALID",
    )
    .await;
    api.push_blob("admin/v", &image.layers[0]).await;
    let wrong = sha256(b"other");
    expect_error(
        api.put_manifest("admin/v", &wrong, OCI_MANIFEST, &image.manifest)
            .await,
        StatusCode::BAD_REQUEST,
        "DIGEST_INVALID",
    )
    .await;
    expect_error(
        api.put_manifest("admin/v", "-bad-tag", OCI_MANIFEST, &image.manifest)
            .await,
        StatusCode::BAD_REQUEST,
        "TAG_INVALID",
    )
    .await;
    expect_error(
        api.put_manifest("admin/v", &"t".repeat(129), OCI_MANIFEST, &image.manifest)
            .await,
        StatusCode::BAD_REQUEST,
        "TAG_INVALID",
    )
    .await;
    // A tag that could never have been pushed is not known, on every read and delete (the
    // conformance suites use `.INVALID_MANIFEST_NAME`); the push above is the only 400.
    for method in [Method::GET, Method::HEAD, Method::DELETE] {
        let r = api
            .send(
                method.clone(),
                "/v2/admin/v/manifests/.INVALID_MANIFEST_NAME",
            )
            .await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{method}");
        if method != Method::HEAD {
            expect_error(r, StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN").await;
        }
    }
    for name in [
        "Admin/v",
        "admin/V",
        "admin/a..b",
        "admin/-x",
        "single",
        "admin/a%2F..%2Fb",
        "admin/a__b___c",
    ] {
        let r = api
            .put_manifest(name, "v1", OCI_MANIFEST, &image.manifest)
            .await;
        expect_error(r, StatusCode::BAD_REQUEST, "NAME_INVALID").await;
    }
    let r = api.send(Method::GET, "/v2/Admin/v/tags/list").await;
    expect_error(r, StatusCode::BAD_REQUEST, "NAME_INVALID").await;
    // Deep names are fine.
    assert_eq!(
        api.put_manifest("admin/a/b/c/d", "v1", OCI_MANIFEST, &image.manifest)
            .await
            .status(),
        StatusCode::BAD_REQUEST,
        "blobs are per repository"
    );
    for blob in image.blobs() {
        api.push_blob("admin/a/b/c/d", blob).await;
    }
    assert_eq!(
        api.put_manifest("admin/a/b/c/d", "v1", OCI_MANIFEST, &image.manifest)
            .await
            .status(),
        StatusCode::CREATED
    );
    // Unknown endpoints and methods.
    expect_error(
        api.send(Method::GET, "/v2/admin/v/nothing/here").await,
        StatusCode::NOT_FOUND,
        "NAME_UNKNOWN",
    )
    .await;
    expect_error(
        api.send(Method::POST, "/v2/admin/v/tags/list").await,
        StatusCode::METHOD_NOT_ALLOWED,
        "UNSUPPORTED",
    )
    .await;
    // An index whose child is missing.
    let other = Image::random(1);
    let idx = index(&[(&other, "amd64")], false);
    expect_error(
        api.put_manifest("admin/v", "idx", OCI_INDEX, &idx).await,
        StatusCode::NOT_FOUND,
        "MANIFEST_UNKNOWN",
    )
    .await;
}

async fn index_children_and_content_negotiation(b: Backend) {
    let s = TestServer::start(b).await;
    s.init_admin().await;
    let api = s.as_admin();
    let amd = Image::build(vec![random_bytes(100)], "amd64", false);
    let arm = Image::build(vec![random_bytes(100)], "arm64", false);
    for img in [&amd, &arm] {
        for blob in img.blobs() {
            api.push_blob("admin/multi", blob).await;
        }
        assert_eq!(
            api.put_manifest("admin/multi", &img.digest, OCI_MANIFEST, &img.manifest)
                .await
                .status(),
            StatusCode::CREATED
        );
    }
    let idx = index(&[(&arm, "arm64"), (&amd, "amd64")], false);
    assert_eq!(
        api.put_manifest("admin/multi", "latest", OCI_INDEX, &idx)
            .await
            .status(),
        StatusCode::CREATED
    );

    let get = |accept: &'static str| {
        api.request(Method::GET, "/v2/admin/multi/manifests/latest")
            .header("Accept", accept)
            .send()
    };
    let r =
        get("application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json")
            .await
            .unwrap();
    assert_eq!(r.headers()["content-type"], OCI_INDEX);
    assert_eq!(r.headers()["docker-content-digest"], sha256(&idx).as_str());
    // A client that cannot read an index gets the linux/amd64 image.
    let r = get(OCI_MANIFEST).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["docker-content-digest"], amd.digest.as_str());
    let r = get(DOCKER_MANIFEST).await.unwrap();
    expect_error(r, StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN").await;
    let r = get("*/*").await.unwrap();
    assert_eq!(r.headers()["content-type"], OCI_INDEX);
    // No Accept at all: the stored type.
    let r = api
        .send(Method::GET, "/v2/admin/multi/manifests/latest")
        .await;
    assert_eq!(r.headers()["content-type"], OCI_INDEX);

    // A child deleted by digest is not served through the index's platform fallback either.
    let r = api
        .send(
            Method::DELETE,
            &format!("/v2/admin/multi/manifests/{}", amd.digest),
        )
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let r = get(OCI_MANIFEST).await.unwrap();
    expect_error(r, StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN").await;
}

async fn artifacts_subject_and_referrers(b: Backend) {
    let s = TestServer::start(b).await;
    s.init_admin().await;
    let api = s.as_admin();
    let image = Image::random(1);
    let empty = b"{}".to_vec();
    api.push_blob("admin/art", &empty).await;
    let sbom = random_bytes(300);
    api.push_blob("admin/art", &sbom).await;

    // The referrer is pushed before its subject exists.
    let artifact = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": "application/vnd.example.sbom.v1",
        "config": descriptor(OCI_EMPTY, &empty),
        "layers": [descriptor("application/spdx+json", &sbom)],
        "subject": descriptor(OCI_MANIFEST, &image.manifest),
        "annotations": { "org.opencontainers.image.created": "2024-01-01T00:00:00Z" },
    }))
    .unwrap();
    let artifact_digest = sha256(&artifact);
    let r = api
        .put_manifest("admin/art", &artifact_digest, OCI_MANIFEST, &artifact)
        .await;
    assert_eq!(r.status(), StatusCode::CREATED, "{:?}", r.text().await);
    // (status consumed above; push again to look at headers)
    let r = api
        .put_manifest("admin/art", &artifact_digest, OCI_MANIFEST, &artifact)
        .await;
    assert_eq!(r.headers()["oci-subject"], image.digest.as_str());

    // A second referrer whose type comes from its config media type (no artifactType).
    let sig_config = br#"{"sig":"x"}"#.to_vec();
    api.push_blob("admin/art", &sig_config).await;
    let signature = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor("application/vnd.example.signature.config.v1+json", &sig_config),
        "layers": [],
        "subject": descriptor(OCI_MANIFEST, &image.manifest),
    }))
    .unwrap();
    assert_eq!(
        api.put_manifest("admin/art", "sig", OCI_MANIFEST, &signature)
            .await
            .status(),
        StatusCode::CREATED
    );

    for blob in image.blobs() {
        api.push_blob("admin/art", blob).await;
    }
    assert_eq!(
        api.put_manifest("admin/art", "v1", OCI_MANIFEST, &image.manifest)
            .await
            .status(),
        StatusCode::CREATED
    );

    let r = api
        .send(
            Method::GET,
            &format!("/v2/admin/art/referrers/{}", image.digest),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], OCI_INDEX);
    assert!(!r.headers().contains_key("oci-filters-applied"));
    let index: Value = r.json().await.unwrap();
    assert_eq!(index["schemaVersion"], 2);
    assert_eq!(index["mediaType"], OCI_INDEX);
    let manifests = index["manifests"].as_array().unwrap();
    assert_eq!(manifests.len(), 2);
    let sbom_desc = manifests
        .iter()
        .find(|m| m["digest"] == artifact_digest.as_str())
        .expect("sbom referrer");
    assert_eq!(sbom_desc["artifactType"], "application/vnd.example.sbom.v1");
    assert_eq!(sbom_desc["size"], artifact.len());
    assert_eq!(
        sbom_desc["annotations"]["org.opencontainers.image.created"],
        "2024-01-01T00:00:00Z"
    );
    let sig_desc = manifests
        .iter()
        .find(|m| m["digest"] == sha256(&signature).as_str())
        .expect("signature referrer");
    assert_eq!(
        sig_desc["artifactType"],
        "application/vnd.example.signature.config.v1+json"
    );

    let r = api
        .send(
            Method::GET,
            &format!(
                "/v2/admin/art/referrers/{}?artifactType=application/vnd.example.sbom.v1",
                image.digest
            ),
        )
        .await;
    assert_eq!(r.headers()["oci-filters-applied"], "artifactType");
    let filtered: Value = r.json().await.unwrap();
    assert_eq!(filtered["manifests"].as_array().unwrap().len(), 1);
    assert_eq!(filtered["manifests"][0]["digest"], artifact_digest.as_str());

    // Deleted referrers disappear; unknown subjects give an empty index.
    api.send(
        Method::DELETE,
        &format!("/v2/admin/art/manifests/{artifact_digest}"),
    )
    .await;
    let after: Value = api
        .send(
            Method::GET,
            &format!("/v2/admin/art/referrers/{}", image.digest),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(after["manifests"].as_array().unwrap().len(), 1);
    let none: Value = api
        .send(
            Method::GET,
            &format!("/v2/admin/art/referrers/{}", sha256(b"nothing")),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(none["manifests"], json!([]));
    expect_error(
        api.send(Method::GET, "/v2/admin/art/referrers/latest")
            .await,
        StatusCode::BAD_REQUEST,
        "DIGEST_INVALID",
    )
    .await;
}

async fn pull_cache_reads_own_writes_and_bounds_staleness(b: Backend) {
    let s = TestServer::start(b).await;
    s.init_admin().await;
    let api = s.as_admin();
    let digest_of = |r: reqwest::Response| {
        r.headers()["docker-content-digest"]
            .to_str()
            .unwrap()
            .to_owned()
    };
    let a = api.push_image("admin/cached", "v1").await;
    assert_eq!(
        digest_of(api.send(Method::GET, "/v2/admin/cached/manifests/v1").await),
        a.digest
    );
    // This replica's own write is visible at once.
    let b_img = api.push_image("admin/cached", "v1").await;
    assert_eq!(
        digest_of(api.send(Method::GET, "/v2/admin/cached/manifests/v1").await),
        b_img.digest
    );

    // Another writer (another replica) moves the tag behind this process's back.
    let ctx = s.ctx();
    let repo = quayside::db::content::repositories::get(ctx.db.pool(), "admin", "cached")
        .await
        .unwrap()
        .unwrap();
    let a_row = quayside::db::content::manifests::by_digest(ctx.db.pool(), repo.id, &a.digest)
        .await
        .unwrap()
        .unwrap();
    let mut tx = ctx.db.begin().await.unwrap();
    quayside::db::content::tags::set(&mut tx, repo.id, "v1", a_row.id, ctx.now_ms())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    // Within the cache's TTL the old answer may still be served; after it, never.
    assert_eq!(
        digest_of(api.send(Method::GET, "/v2/admin/cached/manifests/v1").await),
        b_img.digest
    );
    s.clock
        .advance_ms(quayside::service::content::pull_cache::DEFAULT_TTL_MS + 1);
    assert_eq!(
        digest_of(api.send(Method::GET, "/v2/admin/cached/manifests/v1").await),
        a.digest
    );

    // Deleting through the API is visible at once.
    assert_eq!(
        api.send(Method::DELETE, "/v2/admin/cached/manifests/v1")
            .await
            .status(),
        StatusCode::ACCEPTED
    );
    expect_error(
        api.send(Method::GET, "/v2/admin/cached/manifests/v1").await,
        StatusCode::NOT_FOUND,
        "MANIFEST_UNKNOWN",
    )
    .await;
}
