//! The blob-store conformance suite, run against the filesystem backend and against a real
//! S3-compatible server (moto), plus a registry running on S3.

use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt;
use quayside::config::S3Config;
use quayside::storage::{BlobStore, ByteStream, StorageError, fs::FsStore, s3::S3Store};
use reqwest::{Method, StatusCode};

use crate::backend_tests;
use crate::common::oci::random_bytes;
use crate::common::tools::S3Server;
use crate::common::*;

fn stream_of(chunks: Vec<Vec<u8>>) -> ByteStream {
    Box::pin(futures_util::stream::iter(
        chunks.into_iter().map(|c| Ok(Bytes::from(c))),
    ))
}

fn failing_stream(good: Vec<u8>) -> ByteStream {
    Box::pin(futures_util::stream::iter(vec![
        Ok(Bytes::from(good)),
        Err(std::io::Error::other("client went away")),
    ]))
}

async fn read_all(
    store: &dyn BlobStore,
    key: &str,
    range: Option<std::ops::Range<u64>>,
) -> Vec<u8> {
    let mut s = store.get(key, range).await.expect("get");
    let mut out = Vec::new();
    while let Some(chunk) = s.next().await {
        out.extend_from_slice(&chunk.expect("chunk"));
    }
    out
}

/// Every backend must pass this.
async fn conformance(store: Arc<dyn BlobStore>) {
    let store = store.as_ref();
    // Missing keys.
    assert_eq!(store.stat("blobs/sha256/aa/missing").await.unwrap(), None);
    assert!(matches!(
        store.get("blobs/sha256/aa/missing", None).await,
        Err(StorageError::NotFound(_))
    ));
    store
        .delete("blobs/sha256/aa/missing")
        .await
        .expect("deleting a missing key succeeds");

    // Multi-chunk put, bigger than one S3 part, read whole and by range.
    let big: Vec<u8> = random_bytes(9 * 1024 * 1024 + 123);
    let chunks: Vec<Vec<u8>> = big.chunks(700_000).map(<[u8]>::to_vec).collect();
    assert_eq!(
        store
            .put("blobs/sha256/bb/big", stream_of(chunks))
            .await
            .unwrap(),
        big.len() as u64
    );
    assert_eq!(
        store.stat("blobs/sha256/bb/big").await.unwrap(),
        Some(big.len() as u64)
    );
    assert!(read_all(store, "blobs/sha256/bb/big", None).await == big);
    assert_eq!(
        read_all(store, "blobs/sha256/bb/big", Some(10..20)).await,
        &big[10..20]
    );
    assert_eq!(
        read_all(store, "blobs/sha256/bb/big", Some(5..5)).await,
        Vec::<u8>::new()
    );

    // Empty objects.
    assert_eq!(
        store
            .put("blobs/sha256/cc/empty", stream_of(vec![]))
            .await
            .unwrap(),
        0
    );
    assert_eq!(store.stat("blobs/sha256/cc/empty").await.unwrap(), Some(0));
    assert!(
        read_all(store, "blobs/sha256/cc/empty", None)
            .await
            .is_empty()
    );

    // A failed put leaves nothing, even over an existing object... and nothing new.
    let err = store
        .put(
            "uploads/0f8fad5b-d9cb-469f-a165-70867728950e/00000000000000000000",
            failing_stream(vec![1; 1000]),
        )
        .await;
    assert!(err.is_err());
    assert_eq!(
        store
            .stat("uploads/0f8fad5b-d9cb-469f-a165-70867728950e/00000000000000000000")
            .await
            .unwrap(),
        None
    );

    // Overwrite, rename, list, delete.
    store
        .put("uploads/u1/0", stream_of(vec![b"first".to_vec()]))
        .await
        .unwrap();
    store
        .put("uploads/u1/0", stream_of(vec![b"second".to_vec()]))
        .await
        .unwrap();
    assert_eq!(read_all(store, "uploads/u1/0", None).await, b"second");
    store
        .put("uploads/u1/1", stream_of(vec![b"x".to_vec()]))
        .await
        .unwrap();
    store
        .put("uploads/u2/0", stream_of(vec![b"y".to_vec()]))
        .await
        .unwrap();
    let keys: Vec<String> = store
        .list("uploads/u1/")
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.key)
        .collect();
    assert_eq!(keys, ["uploads/u1/0", "uploads/u1/1"]);
    let all = store.list("uploads/").await.unwrap();
    assert_eq!(all.len(), 3);
    assert!(all.iter().all(|e| e.modified_ms > 0));
    assert_eq!(
        all.iter().find(|e| e.key == "uploads/u1/0").unwrap().size,
        6
    );
    store
        .rename("uploads/u1/0", "blobs/sha256/dd/renamed")
        .await
        .unwrap();
    assert_eq!(store.stat("uploads/u1/0").await.unwrap(), None);
    assert_eq!(
        read_all(store, "blobs/sha256/dd/renamed", None).await,
        b"second"
    );
    assert!(matches!(
        store.rename("uploads/nope/0", "blobs/x").await,
        Err(StorageError::NotFound(_)) | Err(StorageError::Backend(_))
    ));
    // Concatenation (used to finish multi-part uploads).
    let n = quayside::storage::concat(
        store,
        &["uploads/u1/1".to_owned(), "uploads/u2/0".to_owned()],
        "blobs/sha256/ee/joined",
    )
    .await
    .unwrap();
    assert_eq!(n, 2);
    assert_eq!(read_all(store, "blobs/sha256/ee/joined", None).await, b"xy");
    for key in ["uploads/u1/1", "uploads/u2/0", "blobs/sha256/bb/big"] {
        store.delete(key).await.unwrap();
        assert_eq!(store.stat(key).await.unwrap(), None);
    }
    assert!(store.list("uploads/").await.unwrap().is_empty());
    let blobs: Vec<String> = store
        .list("blobs/")
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.key)
        .collect();
    assert_eq!(
        blobs,
        [
            "blobs/sha256/cc/empty",
            "blobs/sha256/dd/renamed",
            "blobs/sha256/ee/joined"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filesystem_store_conformance() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsStore::open(dir.path()).await.unwrap();
    conformance(Arc::new(store)).await;
    let leftovers = std::fs::read_dir(dir.path().join("_tmp")).unwrap().count();
    assert_eq!(leftovers, 0, "no temporary files left behind");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_store_conformance() {
    let s3 = S3Server::start().await;
    s3.create_bucket("conformance").await;
    let config = S3Config {
        bucket: "conformance".into(),
        access_key: "testing".into(),
        secret_key: "testing".into(),
        endpoint: Some(s3.endpoint.clone()),
        region: "us-east-1".into(),
        prefix: "datastorage/registry".into(),
    };
    conformance(Arc::new(S3Store::open(&config).unwrap())).await;
}

backend_tests!(registry_on_s3_storage);

async fn registry_on_s3_storage(b: Backend) {
    let s3 = S3Server::start().await;
    s3.create_bucket("quay").await;
    let s = TestServer::start_with(
        b,
        Options {
            yaml: s3.storage_yaml("quay"),
            ..Default::default()
        },
    )
    .await;
    s.init_admin().await;
    let api = s.as_admin();
    let image = api.push_image("admin/on-s3", "v1").await;
    // A chunked upload on S3 (parts concatenated at the end).
    let data = random_bytes(100_000);
    let digest = crate::common::oci::sha256(&data);
    let r = api
        .send(Method::POST, "/v2/admin/on-s3/blobs/uploads/")
        .await;
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    api.request(Method::PATCH, &location)
        .body(data[..60_000].to_vec())
        .send()
        .await
        .unwrap();
    api.request(Method::PATCH, &location)
        .body(data[60_000..].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(
        api.send(Method::PUT, &format!("{location}?digest={digest}"))
            .await
            .status(),
        StatusCode::CREATED
    );
    let got = api
        .send(Method::GET, &format!("/v2/admin/on-s3/blobs/{digest}"))
        .await
        .bytes()
        .await
        .unwrap();
    assert!(got.as_ref() == data.as_slice());
    let r = api.send(Method::GET, "/v2/admin/on-s3/manifests/v1").await;
    assert_eq!(r.headers()["docker-content-digest"], image.digest.as_str());
    // Nothing on the local disk: the bytes live in the bucket.
    assert!(!s.data_dir().join("blobs").exists());
    let health: serde_json::Value = s
        .anonymous()
        .send(Method::GET, "/health/instance")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(health["data"]["services"]["storage"], true);
}
