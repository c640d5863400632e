//! Filesystem backend. Objects are files under the root at their key's path. Writes go to a
//! temporary file in `<root>/_tmp`, are fsynced, and are renamed into place, so a key never holds
//! a partial object; a dropped or failed write removes its temporary file.

use std::io;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use futures_util::StreamExt;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt, BufWriter};
use tokio_util::io::ReaderStream;

use super::{BlobStore, ByteStream, Entry, StorageError, StorageResult};

/// Read and write buffer size: large enough that each blocking-pool round trip moves a lot.
const IO_BUFFER: usize = 1 << 20;
const TMP_DIR: &str = "_tmp";

pub struct FsStore {
    root: PathBuf,
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
        };
        store
            .clean_stale_temp_files(Duration::from_secs(24 * 3600))
            .await;
        Ok(store)
    }

    fn path(&self, key: &str) -> PathBuf {
        debug_assert!(!key.contains(".."), "keys come from storage::paths");
        self.root.join(key)
    }

    /// Temporary files left by a crash; others may still be in use by another replica sharing
    /// the directory, so only old ones go.
    async fn clean_stale_temp_files(&self, older_than: Duration) {
        let Ok(mut dir) = tokio::fs::read_dir(self.root.join(TMP_DIR)).await else {
            return;
        };
        while let Ok(Some(entry)) = dir.next_entry().await {
            let stale = entry
                .metadata()
                .await
                .and_then(|m| m.modified())
                .map(|t| t.elapsed().unwrap_or_default() > older_than)
                .unwrap_or(false);
            if stale {
                let _ = tokio::fs::remove_file(entry.path()).await;
            }
        }
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
        let file = tokio::fs::File::create(&tmp.path).await?;
        let mut writer = BufWriter::with_capacity(IO_BUFFER, file);
        let mut written = 0u64;
        while let Some(chunk) = data.next().await {
            let chunk = chunk?;
            writer.write_all(&chunk).await?;
            written += chunk.len() as u64;
        }
        writer.flush().await?;
        let file = writer.into_inner();
        file.sync_data().await?;
        drop(file);
        self.place(&tmp.path, &self.path(key)).await?;
        let mut tmp = tmp;
        tmp.armed = false;
        Ok(written)
    }

    async fn get(&self, key: &str, range: Option<Range<u64>>) -> StorageResult<ByteStream> {
        let mut file = match tokio::fs::File::open(self.path(key)).await {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(StorageError::NotFound(key.into()));
            }
            Err(e) => return Err(e.into()),
        };
        file.set_max_buf_size(IO_BUFFER);
        Ok(match range {
            None => Box::pin(ReaderStream::with_capacity(file, IO_BUFFER)),
            Some(r) => {
                file.seek(io::SeekFrom::Start(r.start)).await?;
                Box::pin(ReaderStream::with_capacity(
                    file.take(r.end - r.start),
                    IO_BUFFER,
                ))
            }
        })
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

    fn describe(&self) -> String {
        format!("filesystem at {}", self.root.display())
    }
}
