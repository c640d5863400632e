//! Blob storage: one narrow trait, [`BlobStore`], with a filesystem backend ([`fs::FsStore`]) and
//! an S3-compatible backend ([`s3::S3Store`]). Both pass the same conformance suite
//! (`registry/tests/storage.rs`).
//!
//! Rules every backend keeps:
//! - `put` is atomic: a key is either absent or holds every byte that was written. A stream that
//!   fails part way (a client hanging up, a crash) leaves nothing behind at the key.
//! - Keys are produced only by [`paths`] from validated digests and generated upload ids, never
//!   from user input, so nothing can address outside the store.
//! - Nothing here knows about digests or the database; hashing happens above, while streaming.

pub mod fs;
pub mod paths;
pub mod s3;

use std::io;
use std::ops::Range;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::Stream;

/// A stream of bytes in or out of storage.
pub type ByteStream = Pin<Box<dyn Stream<Item = io::Result<Bytes>> + Send>>;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("not found: {0}")]
    NotFound(String),
    #[error("storage I/O error: {0}")]
    Io(#[from] io::Error),
    #[error("object store error: {0}")]
    Backend(String),
}

pub type StorageResult<T> = Result<T, StorageError>;

/// One listed object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub key: String,
    pub size: u64,
    pub modified_ms: i64,
}

#[async_trait::async_trait]
pub trait BlobStore: Send + Sync + 'static {
    /// Stores the stream under `key` atomically and returns the number of bytes written.
    async fn put(&self, key: &str, data: ByteStream) -> StorageResult<u64>;

    /// Reads `key`, or the byte `range` of it. The range must lie within the object.
    async fn get(&self, key: &str, range: Option<Range<u64>>) -> StorageResult<ByteStream>;

    /// Size of `key`, or `None` if it does not exist.
    async fn stat(&self, key: &str) -> StorageResult<Option<u64>>;

    /// Removes `key`; removing a missing key succeeds.
    async fn delete(&self, key: &str) -> StorageResult<()>;

    /// Moves `from` to `to`, replacing `to`. Atomic on the filesystem; copy-then-delete on S3.
    async fn rename(&self, from: &str, to: &str) -> StorageResult<()>;

    /// Every object whose key starts with `prefix`.
    async fn list(&self, prefix: &str) -> StorageResult<Vec<Entry>>;

    /// Removes the backend's own temporary objects idle since before `idle_before_ms` (left by a
    /// crash mid-write; an active write keeps its file's modification time fresh). Returns how
    /// many were removed.
    async fn sweep_temporary(&self, idle_before_ms: i64) -> StorageResult<usize> {
        let _ = idle_before_ms;
        Ok(0)
    }

    /// Human-readable description for logs.
    fn describe(&self) -> String;
}

/// Opens the store a configuration names.
pub async fn open(config: &crate::config::StorageConfig) -> StorageResult<Arc<dyn BlobStore>> {
    Ok(match config {
        crate::config::StorageConfig::Local { path } => Arc::new(fs::FsStore::open(path).await?),
        crate::config::StorageConfig::S3(s3) => Arc::new(s3::S3Store::open(s3)?),
    })
}

/// Whether the store answers, within `within`: a metadata read of a key that need not exist
/// (a missing key is an answer). `Err` carries the backend's error, or says it timed out; the
/// bound matters because an S3 client retries an unreachable endpoint for minutes.
pub async fn probe(store: &dyn BlobStore, within: std::time::Duration) -> Result<(), String> {
    match tokio::time::timeout(within, store.stat("health-check-probe")).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {} s", within.as_secs())),
    }
}

/// Concatenates the objects at `parts` (in order) into `to`, atomically.
pub async fn concat(store: &dyn BlobStore, parts: &[String], to: &str) -> StorageResult<u64> {
    use futures_util::StreamExt;
    let mut streams = Vec::with_capacity(parts.len());
    for p in parts {
        streams.push(store.get(p, None).await?);
    }
    let joined: ByteStream = Box::pin(futures_util::stream::iter(streams).flatten());
    store.put(to, joined).await
}
