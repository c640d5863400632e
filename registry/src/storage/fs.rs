//! Filesystem backend. Objects are files under the root at their key's path. Writes go to a
//! temporary file in `<root>/_tmp`, are fsynced, and are renamed into place, so a key never holds
//! a partial object; a dropped or failed write removes its temporary file.

use std::io;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use std::future::Future;

use futures_util::StreamExt;

use super::{BlobStore, ByteStream, Entry, StorageError, StorageResult};

/// Bytes collected before each write on the blocking pool.
const WRITE_BUFFER: usize = 256 * 1024;
/// Memory shared by the chunks of all blob reads in flight. Every stream holds about two chunks
/// (one being read, one being written to the socket), so a chunk is
/// `READ_BUDGET / (2 × active streams)`, clamped: one download reads big chunks (fast), forty
/// parallel downloads share the budget (bounded memory).
const READ_BUDGET: u64 = 8 << 20;
const MIN_READ_CHUNK: u64 = 64 << 10;
const MAX_READ_CHUNK: u64 = 512 << 10;
const TMP_DIR: &str = "_tmp";

pub struct FsStore {
    root: PathBuf,
    /// Blob reads in flight (see [`READ_BUDGET`]).
    active_reads: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

/// Removes a temporary file unless disarmed (covers errors and futures dropped mid-write).
struct TempFile {
    path: PathBuf,
    armed: bool,
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if self.armed {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

impl FsStore {
    pub async fn open(root: &Path) -> io::Result<FsStore> {
        tokio::fs::create_dir_all(root.join(TMP_DIR)).await?;
        let store = FsStore {
            root: root.to_owned(),
            active_reads: Default::default(),
        };
        // Leftovers of a crash a day ago are certainly dead; the upload cleanup worker sweeps
        // younger ones with the configured expiration.
        let day_ago = std::time::SystemTime::now() - Duration::from_secs(24 * 3600);
        store.sweep_temp_files(day_ago).await;
        Ok(store)
    }

    fn path(&self, key: &str) -> PathBuf {
        debug_assert!(!key.contains(".."), "keys come from storage::paths");
        self.root.join(key)
    }

    /// Removes temporary files last modified before `cutoff` (left by a crash; a write in
    /// progress keeps its file's modification time fresh). Returns how many went.
    async fn sweep_temp_files(&self, cutoff: std::time::SystemTime) -> usize {
        let Ok(mut dir) = tokio::fs::read_dir(self.root.join(TMP_DIR)).await else {
            return 0;
        };
        let mut removed = 0;
        while let Ok(Some(entry)) = dir.next_entry().await {
            let stale = entry
                .metadata()
                .await
                .and_then(|m| m.modified())
                .is_ok_and(|t| t < cutoff);
            if stale && tokio::fs::remove_file(entry.path()).await.is_ok() {
                removed += 1;
            }
        }
        removed
    }

    async fn place(&self, tmp: &Path, dest: &Path) -> io::Result<()> {
        for attempt in 0..3 {
            if let Some(parent) = dest.parent() {
                tokio::fs::create_dir_all(parent).await?;
            }
            match tokio::fs::rename(tmp, dest).await {
                // A concurrent delete may remove an emptied upload directory in between.
                Err(e) if e.kind() == io::ErrorKind::NotFound && attempt < 2 => continue,
                other => return other,
            }
        }
        Ok(())
    }
}

/// Runs blocking file I/O on the blocking pool.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(io::Error::other)?
}

/// Streams `[start, end)` of a file in chunks (sized by [`READ_BUDGET`]) read on the blocking
/// pool, one chunk
/// ahead: while the socket takes chunk N, chunk N+1 is being read. A blocking thread is held only
/// for the duration of one read, never for a whole download, so slow clients cannot starve the
/// pool; at most two chunks per stream are in memory.
fn read_chunks(
    file: std::fs::File,
    start: u64,
    end: u64,
    active: std::sync::Arc<std::sync::atomic::AtomicU64>,
) -> ByteStream {
    active.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    Box::pin(FileChunks {
        file: Some(file),
        seek_to: Some(start),
        remaining: end.saturating_sub(start),
        pending: None,
        active,
    })
}

type ChunkRead = tokio::task::JoinHandle<io::Result<(std::fs::File, bytes::Bytes)>>;

struct FileChunks {
    /// The file, while no read is running (a read takes it to the blocking pool and back).
    file: Option<std::fs::File>,
    /// Where the first read starts.
    seek_to: Option<u64>,
    /// Bytes not yet handed to a read.
    remaining: u64,
    pending: Option<ChunkRead>,
    /// The store's count of reads in flight, decremented when this stream goes.
    active: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl Drop for FileChunks {
    fn drop(&mut self) {
        self.active
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// The chunk size when `active` reads share [`READ_BUDGET`].
fn chunk_size(active: u64) -> u64 {
    (READ_BUDGET / (2 * active.max(1))).clamp(MIN_READ_CHUNK, MAX_READ_CHUNK)
}

impl FileChunks {
    fn start_read(&mut self) {
        let chunk = chunk_size(self.active.load(std::sync::atomic::Ordering::Relaxed));
        let (Some(mut file), len) = (self.file.take(), chunk.min(self.remaining)) else {
            return;
        };
        if len == 0 {
            self.file = Some(file);
            return;
        }
        self.remaining -= len;
        let seek_to = self.seek_to.take();
        self.pending = Some(tokio::task::spawn_blocking(move || {
            use std::io::{Read, Seek};
            if let Some(offset) = seek_to {
                file.seek(io::SeekFrom::Start(offset))?;
            }
            let mut buf = Vec::with_capacity(len as usize);
            // `read_to_end` fills spare capacity without zeroing it first.
            (&mut file).take(len).read_to_end(&mut buf)?;
            if buf.len() as u64 != len {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "blob file is shorter than recorded",
                ));
            }
            Ok((file, bytes::Bytes::from(buf)))
        }));
    }
}

impl futures_util::Stream for FileChunks {
    type Item = io::Result<bytes::Bytes>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        use std::task::Poll;
        if self.pending.is_none() {
            self.start_read();
        }
        let Some(pending) = self.pending.as_mut() else {
            return Poll::Ready(None);
        };
        let result = match std::pin::Pin::new(pending).poll(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(joined) => joined.map_err(io::Error::other).and_then(|r| r),
        };
        self.pending = None;
        match result {
            Ok((file, chunk)) => {
                self.file = Some(file);
                // Read ahead while this chunk goes out.
                self.start_read();
                Poll::Ready(Some(Ok(chunk)))
            }
            Err(e) => {
                self.remaining = 0;
                Poll::Ready(Some(Err(e)))
            }
        }
    }
}

#[async_trait::async_trait]
impl BlobStore for FsStore {
    async fn put(&self, key: &str, mut data: ByteStream) -> StorageResult<u64> {
        let tmp = TempFile {
            path: self
                .root
                .join(TMP_DIR)
                .join(uuid::Uuid::new_v4().to_string()),
            armed: true,
        };
        // Incoming chunks are collected (not copied) into batches of about WRITE_BUFFER bytes,
        // each written by one trip to the blocking pool; at most one batch is in memory.
        let path = tmp.path.clone();
        let mut file = blocking(move || std::fs::File::create(path)).await?;
        let mut batch: Vec<bytes::Bytes> = Vec::new();
        let mut batch_len = 0usize;
        let mut written = 0u64;
        loop {
            let next = data.next().await.transpose()?;
            let done = next.is_none();
            if let Some(chunk) = next {
                written += chunk.len() as u64;
                batch_len += chunk.len();
                batch.push(chunk);
            }
            if batch_len >= WRITE_BUFFER || (done && batch_len > 0) {
                let chunks = std::mem::take(&mut batch);
                batch_len = 0;
                file = blocking(move || {
                    use std::io::Write;
                    for c in &chunks {
                        file.write_all(c)?;
                    }
                    Ok(file)
                })
                .await?;
            }
            if done {
                break;
            }
        }
        blocking(move || file.sync_data()).await?;
        self.place(&tmp.path, &self.path(key)).await?;
        let mut tmp = tmp;
        tmp.armed = false;
        Ok(written)
    }

    async fn get(&self, key: &str, range: Option<Range<u64>>) -> StorageResult<ByteStream> {
        let path = self.path(key);
        let opened = tokio::task::spawn_blocking(move || {
            let file = std::fs::File::open(path)?;
            let size = file.metadata()?.len();
            Ok::<_, io::Error>((file, size))
        })
        .await
        .map_err(io::Error::other)?;
        let (file, size) = match opened {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(StorageError::NotFound(key.into()));
            }
            Err(e) => return Err(e.into()),
        };
        let range = range.unwrap_or(0..size);
        Ok(read_chunks(
            file,
            range.start,
            range.end.min(size),
            self.active_reads.clone(),
        ))
    }

    async fn stat(&self, key: &str) -> StorageResult<Option<u64>> {
        match tokio::fs::metadata(self.path(key)).await {
            Ok(m) if m.is_file() => Ok(Some(m.len())),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    async fn delete(&self, key: &str) -> StorageResult<()> {
        let path = self.path(key);
        match tokio::fs::remove_file(&path).await {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
        // Upload directories are per upload; drop them once empty.
        if key.starts_with(super::paths::UPLOADS)
            && let Some(parent) = path.parent()
        {
            let _ = tokio::fs::remove_dir(parent).await;
        }
        Ok(())
    }

    async fn rename(&self, from: &str, to: &str) -> StorageResult<()> {
        let src = self.path(from);
        if !tokio::fs::try_exists(&src).await? {
            return Err(StorageError::NotFound(from.into()));
        }
        self.place(&src, &self.path(to)).await?;
        if from.starts_with(super::paths::UPLOADS)
            && let Some(parent) = src.parent()
        {
            let _ = tokio::fs::remove_dir(parent).await;
        }
        Ok(())
    }

    async fn list(&self, prefix: &str) -> StorageResult<Vec<Entry>> {
        let (dir_part, _) = prefix.rsplit_once('/').unwrap_or(("", prefix));
        let mut out = Vec::new();
        let mut stack = vec![(self.root.join(dir_part), dir_part.to_owned())];
        while let Some((dir, rel)) = stack.pop() {
            let mut entries = match tokio::fs::read_dir(&dir).await {
                Ok(e) => e,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e.into()),
            };
            while let Some(entry) = entries.next_entry().await? {
                let name = entry.file_name().to_string_lossy().into_owned();
                let key = if rel.is_empty() {
                    name.clone()
                } else {
                    format!("{rel}/{name}")
                };
                if key == TMP_DIR {
                    continue;
                }
                let meta = entry.metadata().await?;
                if meta.is_dir() {
                    if key.starts_with(prefix) || prefix.starts_with(&format!("{key}/")) {
                        stack.push((entry.path(), key));
                    }
                } else if key.starts_with(prefix) {
                    let modified_ms = meta
                        .modified()
                        .ok()
                        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                        .map_or(0, |d| d.as_millis() as i64);
                    out.push(Entry {
                        key,
                        size: meta.len(),
                        modified_ms,
                    });
                }
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    async fn sweep_temporary(&self, idle_before_ms: i64) -> StorageResult<usize> {
        let cutoff = UNIX_EPOCH + Duration::from_millis(idle_before_ms.max(0) as u64);
        Ok(self.sweep_temp_files(cutoff).await)
    }

    fn describe(&self) -> String {
        format!("filesystem at {}", self.root.display())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_shrink_as_parallel_reads_grow() {
        assert_eq!(chunk_size(0), MAX_READ_CHUNK);
        assert_eq!(chunk_size(1), MAX_READ_CHUNK);
        assert_eq!(chunk_size(16), 256 << 10);
        assert_eq!(chunk_size(40), (8 << 20) / 80);
        assert_eq!(chunk_size(1000), MIN_READ_CHUNK);
    }
}
