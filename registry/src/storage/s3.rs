//! S3-compatible backend (AWS S3, Ceph RadosGW, MinIO, moto) through `object_store`. Puts are
//! multipart uploads that complete only when the whole stream has been written; a failed or
//! dropped put is aborted, so no object appears under the key.

use std::io;
use std::ops::Range;

use futures_util::{StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path;
use object_store::{GetOptions, GetRange, ObjectStore, ObjectStoreExt, WriteMultipart};

use super::{BlobStore, ByteStream, Entry, StorageError, StorageResult};
use crate::config::S3Config;

/// Size of each multipart part (S3's minimum is 5 MiB).
const PART_SIZE: usize = 8 << 20;
/// Parts uploaded concurrently per put.
const PART_CONCURRENCY: usize = 2;

pub struct S3Store {
    store: AmazonS3,
    prefix: String,
    bucket: String,
    endpoint: Option<String>,
}

fn backend(e: object_store::Error) -> StorageError {
    match e {
        object_store::Error::NotFound { path, .. } => StorageError::NotFound(path),
        other => StorageError::Backend(other.to_string()),
    }
}

impl S3Store {
    pub fn open(config: &S3Config) -> StorageResult<S3Store> {
        let mut builder = AmazonS3Builder::new()
            .with_bucket_name(&config.bucket)
            .with_access_key_id(&config.access_key)
            .with_secret_access_key(&config.secret_key)
            .with_region(&config.region)
            // A few quick retries, as the AWS SDKs make, rather than object_store's ten over
            // three minutes: a client waiting on a blob is better served by an error it can
            // retry itself, and an unreachable endpoint is reported with its real cause
            // (connection refused, DNS) while the start-up probe still waits for it.
            .with_retry(object_store::RetryConfig {
                max_retries: 3,
                retry_timeout: std::time::Duration::from_secs(20),
                ..Default::default()
            });
        if let Some(endpoint) = &config.endpoint {
            // Self-hosted S3 (RadosGW, MinIO) is addressed path-style.
            builder = builder
                .with_endpoint(endpoint)
                .with_allow_http(endpoint.starts_with("http://"))
                .with_virtual_hosted_style_request(false);
        }
        let store = builder.build().map_err(backend)?;
        Ok(S3Store {
            store,
            prefix: config.prefix.clone(),
            bucket: config.bucket.clone(),
            endpoint: config.endpoint.clone(),
        })
    }

    fn path(&self, key: &str) -> Path {
        if self.prefix.is_empty() {
            Path::from(key)
        } else {
            Path::from(format!("{}/{key}", self.prefix))
        }
    }

    fn key_of(&self, path: &Path) -> String {
        let full = path.as_ref();
        if self.prefix.is_empty() {
            full.to_owned()
        } else {
            full.strip_prefix(&self.prefix)
                .map(|k| k.trim_start_matches('/'))
                .unwrap_or(full)
                .to_owned()
        }
    }
}

#[async_trait::async_trait]
impl BlobStore for S3Store {
    async fn put(&self, key: &str, mut data: ByteStream) -> StorageResult<u64> {
        let upload = self
            .store
            .put_multipart(&self.path(key))
            .await
            .map_err(backend)?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
        let mut written = 0u64;
        let result: StorageResult<()> = async {
            while let Some(chunk) = data.next().await {
                let chunk = chunk?;
                writer
                    .wait_for_capacity(PART_CONCURRENCY)
                    .await
                    .map_err(backend)?;
                written += chunk.len() as u64;
                writer.put(chunk);
            }
            Ok(())
        }
        .await;
        match result {
            Ok(()) => {
                writer.finish().await.map_err(backend)?;
                Ok(written)
            }
            Err(e) => {
                let _ = writer.abort().await;
                Err(e)
            }
        }
    }

    async fn get(&self, key: &str, range: Option<Range<u64>>) -> StorageResult<ByteStream> {
        if range.as_ref().is_some_and(|r| r.is_empty()) {
            return Ok(Box::pin(futures_util::stream::empty()));
        }
        let options = GetOptions {
            range: range.map(GetRange::Bounded),
            ..Default::default()
        };
        let result = self
            .store
            .get_opts(&self.path(key), options)
            .await
            .map_err(backend)?;
        Ok(Box::pin(
            result
                .into_stream()
                .map_err(|e| io::Error::other(e.to_string())),
        ))
    }

    async fn stat(&self, key: &str) -> StorageResult<Option<u64>> {
        match self.store.head(&self.path(key)).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(backend(e)),
        }
    }

    async fn delete(&self, key: &str) -> StorageResult<()> {
        match self.store.delete(&self.path(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(backend(e)),
        }
    }

    async fn rename(&self, from: &str, to: &str) -> StorageResult<()> {
        self.store
            .rename(&self.path(from), &self.path(to))
            .await
            .map_err(backend)
    }

    async fn list(&self, prefix: &str) -> StorageResult<Vec<Entry>> {
        // object_store lists by path segments; list the enclosing directory and filter.
        let dir = prefix.rsplit_once('/').map_or("", |(d, _)| d);
        let base = if dir.is_empty() && self.prefix.is_empty() {
            None
        } else {
            Some(self.path(dir))
        };
        let mut out = Vec::new();
        let mut stream = self.store.list(base.as_ref());
        while let Some(meta) = stream.next().await {
            let meta = meta.map_err(backend)?;
            let key = self.key_of(&meta.location);
            if key.starts_with(prefix) {
                out.push(Entry {
                    key,
                    size: meta.size,
                    modified_ms: meta.last_modified.timestamp_millis(),
                });
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    fn describe(&self) -> String {
        format!(
            "S3 bucket {} at {}{}",
            self.bucket,
            self.endpoint.as_deref().unwrap_or("AWS"),
            if self.prefix.is_empty() {
                String::new()
            } else {
                format!(" under {}/", self.prefix)
            }
        )
    }
}
