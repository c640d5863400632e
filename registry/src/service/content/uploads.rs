//! Blob uploads (OCI Distribution "pushing blobs"): monolithic, POST-then-PUT, chunked PATCH,
//! status, cancel, and cross-repository mounts.
//!
//! How bytes flow: every PATCH (and a PUT's body) is streamed into storage as one *part* at
//! `uploads/<uuid>/<offset>` while it is hashed. A part counts only once the database records it
//! with a conditional update on the upload's size, so a failed or concurrent request can never
//! leave a gap or an overlap. On completion the parts become the blob (a rename when there is
//! one part, a concatenation then a rename otherwise) under its digest key, and only then is the
//! blob row written: a blob is visible only after its digest is verified. That last step runs
//! under the blob's digest lock, which garbage collection also takes (see `service::content::gc`).
//!
//! The running hash of each upload is kept in memory between chunks; when it is missing (after a
//! restart, or when another replica took the previous chunk) it is rebuilt from the stored parts.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use futures_util::StreamExt;

use crate::db;
use crate::oci::{Algorithm, Digest, Hasher, RepoName};
use crate::service::access::authz::Action;
use crate::service::content::quota;
use crate::service::content::repositories;
use crate::service::{Clock, Ctx, Internal, Principal, RegistryError};
use crate::storage::{self, ByteStream, paths};

/// In-process upload state shared by requests.
#[derive(Default)]
pub struct UploadState {
    /// Running hash per upload, with the offset it has reached.
    hashers: Mutex<HashMap<String, (u64, Hasher)>>,
    /// Serialises requests on the same upload within this process.
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Requests currently streaming upload bytes (a metric).
    pub in_progress: AtomicI64,
}

impl UploadState {
    fn lock_for(&self, uuid: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(|e| e.into_inner());
        locks.entry(uuid.to_owned()).or_default().clone()
    }

    fn forget(&self, uuid: &str) {
        self.hashers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(uuid);
        self.locks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(uuid);
    }

    fn take_hasher(&self, uuid: &str, offset: u64) -> Option<Hasher> {
        let mut hashers = self.hashers.lock().unwrap_or_else(|e| e.into_inner());
        match hashers.remove(uuid) {
            Some((at, h)) if at == offset => Some(h),
            _ => None,
        }
    }

    fn put_hasher(&self, uuid: &str, offset: u64, hasher: Hasher) {
        self.hashers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(uuid.to_owned(), (offset, hasher));
    }
}

/// Where an upload stands.
#[derive(Clone, Debug)]
pub struct UploadStatus {
    pub uuid: String,
    pub size: u64,
}

/// A finished blob.
#[derive(Clone, Debug)]
pub struct Committed {
    pub digest: Digest,
    pub size: u64,
}

/// The outcome of `POST .../blobs/uploads/?mount=`.
pub enum MountOutcome {
    Mounted(Committed),
    /// The blob could not be mounted; a new upload session was started instead.
    Started(UploadStatus),
}

fn parse_digest(s: &str) -> Result<Digest, RegistryError> {
    s.parse()
        .map_err(|e: crate::oci::DigestError| RegistryError::DigestInvalid(e.to_string()))
}

/// Validates an upload id from a URL; an id that cannot exist is simply unknown.
fn check_uuid(uuid: &str) -> Result<(), RegistryError> {
    if paths::is_upload_id(uuid) {
        Ok(())
    } else {
        Err(RegistryError::UploadUnknown)
    }
}

/// Starts an upload session in `name` (creating the repository on first push).
pub async fn start(
    ctx: &Ctx,
    principal: &Principal,
    name: &RepoName,
) -> Result<UploadStatus, RegistryError> {
    let repo = repositories::for_push(ctx, principal, name).await?;
    quota::check_push(ctx, repo.namespace_id).await?;
    new_session(ctx, repo.id).await
}

/// Records a new upload session in a repository, which may have been deleted since it was
/// looked up: then `NAME_UNKNOWN`, as if the lookup had come after the delete (never the
/// foreign-key violation the insert would otherwise hit).
async fn new_session(ctx: &Ctx, repository_id: i64) -> Result<UploadStatus, RegistryError> {
    let uuid = uuid::Uuid::new_v4().to_string();
    let mut tx = ctx.db.begin().await?;
    if !db::content::repositories::hold(&mut tx, repository_id).await? {
        return Err(RegistryError::NameUnknown);
    }
    db::content::uploads::insert(&mut *tx, &uuid, repository_id, ctx.now_ms()).await?;
    tx.commit().await?;
    Ok(UploadStatus { uuid, size: 0 })
}

/// Whether the blob's bytes are really in storage. A blob row is only written once its bytes
/// are, and garbage collection deletes the row before the bytes, but a store can still lose a
/// file (a crash of an older version mid-collection, an operator's mistake): an upload or mount
/// that trusted the row alone would acknowledge a blob nobody can pull, so it checks.
async fn bytes_present(ctx: &Ctx, digest: &Digest) -> Result<bool, RegistryError> {
    Ok(ctx.store.stat(&paths::blob(digest)).await?.is_some())
}

/// `POST ?digest=`: the whole blob in one request.
pub async fn monolithic(
    ctx: &Ctx,
    principal: &Principal,
    name: &RepoName,
    digest: &str,
    body: ByteStream,
) -> Result<Committed, RegistryError> {
    let expected = parse_digest(digest)?;
    let status = start(ctx, principal, name).await?;
    complete_inner(ctx, name, &status.uuid, expected, Some(body)).await
}

/// `POST ?mount=<digest>&from=<repo>`: links a blob the caller's account can read in `from` into
/// `name`; otherwise starts a normal upload.
pub async fn mount(
    ctx: &Ctx,
    principal: &Principal,
    name: &RepoName,
    digest: &str,
    from: Option<&str>,
) -> Result<MountOutcome, RegistryError> {
    let target = repositories::for_push(ctx, principal, name).await?;
    quota::check_push(ctx, target.namespace_id).await?;
    if let (Ok(digest), Some(Ok(source))) = (digest.parse::<Digest>(), from.map(RepoName::parse)) {
        // Decided on the caller's account, whatever scopes its token carries.
        let readable =
            repositories::authorize(ctx, &principal.account_rights(), Action::Pull, &source)
                .await
                .is_ok();
        if readable
            && let Some(src) = db::content::repositories::get(
                ctx.db.pool(),
                source.namespace(),
                source.repository(),
            )
            .await?
        {
            // Under the digest lock, so garbage collection cannot delete the blob between the
            // check and the link (see `service::content::gc`); holding the target repository
            // first, so a concurrent delete of it gives NAME_UNKNOWN, not a foreign-key error.
            let mut tx = ctx.db.begin().await?;
            if !db::content::repositories::hold(&mut tx, target.id).await? {
                return Err(RegistryError::NameUnknown);
            }
            db::content::blobs::lock_digest(&mut tx, digest.as_str()).await?;
            let size = db::content::blobs::size_in_repo(&mut *tx, src.id, digest.as_str()).await?;
            // A row whose bytes are gone is not mounted: the client uploads them instead.
            let size = match size {
                Some(size) if bytes_present(ctx, &digest).await? => Some(size),
                _ => None,
            };
            if let Some(size) = size {
                db::content::blobs::link(&mut *tx, target.id, digest.as_str(), ctx.now_ms())
                    .await?;
                tx.commit().await?;
                return Ok(MountOutcome::Mounted(Committed {
                    digest,
                    size: size as u64,
                }));
            }
        }
    }
    Ok(MountOutcome::Started(new_session(ctx, target.id).await?))
}

async fn upload_in(
    ctx: &Ctx,
    principal: &Principal,
    name: &RepoName,
    uuid: &str,
) -> Result<db::content::uploads::UploadRow, RegistryError> {
    check_uuid(uuid)?;
    let repo = repositories::existing(ctx, principal, Action::Push, name).await?;
    match db::content::uploads::get(ctx.db.pool(), uuid).await? {
        Some(u) if u.repository_id == repo.id => Ok(u),
        _ => Err(RegistryError::UploadUnknown),
    }
}

/// `GET .../uploads/<uuid>`.
pub async fn status(
    ctx: &Ctx,
    principal: &Principal,
    name: &RepoName,
    uuid: &str,
) -> Result<UploadStatus, RegistryError> {
    let upload = upload_in(ctx, principal, name, uuid).await?;
    Ok(UploadStatus {
        uuid: upload.uuid,
        size: upload.size as u64,
    })
}

/// `PATCH .../uploads/<uuid>`: appends a chunk. `range` is the `Content-Range` (inclusive).
pub async fn append(
    ctx: &Ctx,
    principal: &Principal,
    name: &RepoName,
    uuid: &str,
    range: Option<(u64, u64)>,
    body: ByteStream,
) -> Result<UploadStatus, RegistryError> {
    upload_in(ctx, principal, name, uuid).await?;
    let lock = ctx.uploads.lock_for(uuid);
    let _guard = lock.lock().await;
    // Re-read under the lock: a previous chunk may just have landed.
    let upload = db::content::uploads::get(ctx.db.pool(), uuid)
        .await?
        .ok_or(RegistryError::UploadUnknown)?;
    let size = upload.size as u64;
    if let Some((start, end)) = range
        && (start != size || end < start)
    {
        return Err(RegistryError::RangeInvalid { size });
    }
    let expected_len = range.map(|(start, end)| end - start + 1);
    let written = write_part(ctx, uuid, size, body, expected_len).await?;
    Ok(UploadStatus {
        uuid: uuid.to_owned(),
        size: size + written,
    })
}

/// `PUT .../uploads/<uuid>?digest=`: finishes the upload, with an optional last chunk.
pub async fn complete(
    ctx: &Ctx,
    principal: &Principal,
    name: &RepoName,
    uuid: &str,
    digest: Option<&str>,
    body: Option<ByteStream>,
) -> Result<Committed, RegistryError> {
    let expected =
        parse_digest(digest.ok_or_else(|| {
            RegistryError::DigestInvalid("the digest parameter is required".into())
        })?)?;
    upload_in(ctx, principal, name, uuid).await?;
    complete_inner(ctx, name, uuid, expected, body).await
}

async fn complete_inner(
    ctx: &Ctx,
    name: &RepoName,
    uuid: &str,
    expected: Digest,
    body: Option<ByteStream>,
) -> Result<Committed, RegistryError> {
    let lock = ctx.uploads.lock_for(uuid);
    let guard = lock.lock().await;
    let upload = db::content::uploads::get(ctx.db.pool(), uuid)
        .await?
        .ok_or(RegistryError::UploadUnknown)?;
    let mut size = upload.size as u64;
    if let Some(body) = body {
        size += write_part(ctx, uuid, size, body, None).await?;
    }
    let actual = match ctx.uploads.take_hasher(uuid, size) {
        Some(h) if h.algorithm() == expected.algorithm() => h.finish(),
        _ => rehash(ctx, uuid, expected.algorithm()).await?.1.finish(),
    };
    if actual != expected {
        drop(guard);
        discard(ctx, uuid).await?;
        return Err(RegistryError::DigestInvalid(format!(
            "content digest is {actual}, not {expected}"
        )));
    }
    let parts = db::content::uploads::parts(ctx.db.pool(), uuid).await?;
    let keys: Vec<String> = parts
        .iter()
        .map(|(start, _)| paths::upload_part(uuid, *start as u64))
        .collect();
    // The bytes that become the blob: the single part, or the parts joined. Joining copies
    // them, so it happens before any lock is taken.
    let staged = match keys.as_slice() {
        [single] => single.clone(),
        many => {
            let staged = paths::upload_staged(uuid);
            if many.is_empty() {
                ctx.store
                    .put(&staged, Box::pin(futures_util::stream::empty()))
                    .await?;
            } else {
                storage::concat(ctx.store.as_ref(), many, &staged).await?;
            }
            staged
        }
    };
    let blob_key = paths::blob(&expected);
    // Whether the blob's bytes exist, moving them into place, the row and the link are decided
    // under the digest lock that garbage collection holds while it deletes a blob's row and
    // bytes (see `service::content::gc`), so a blob is never linked while its bytes are going away.
    // The repository is held first (the order every transaction takes these locks in), so a
    // concurrent delete of it either waits for this commit or makes this answer NAME_UNKNOWN.
    let mut tx = ctx.db.begin().await?;
    if !db::content::repositories::hold(&mut tx, upload.repository_id).await? {
        return Err(RegistryError::NameUnknown);
    }
    db::content::blobs::lock_digest(&mut tx, expected.as_str()).await?;
    let now = ctx.now_ms();
    let row = db::content::blobs::size(&mut *tx, expected.as_str())
        .await?
        .is_some();
    // A row is trusted only with its bytes: if they are gone, this upload writes them again.
    let stored = row && bytes_present(ctx, &expected).await?;
    ctx.pauses.point("uploads.blob_checked").await;
    if !stored {
        ctx.store.rename(&staged, &blob_key).await?;
        if row {
            tracing::warn!(digest = %expected, "blob row without bytes: the upload restored them");
        } else {
            db::content::blobs::insert(&mut *tx, expected.as_str(), size as i64, now).await?;
        }
    }
    db::content::blobs::link(&mut *tx, upload.repository_id, expected.as_str(), now).await?;
    db::content::uploads::delete(&mut *tx, uuid).await?;
    tx.commit().await?;
    drop(guard);
    delete_stored_parts(ctx, uuid).await?;
    ctx.uploads.forget(uuid);
    tracing::debug!(repository = %name, digest = %expected, size, "blob committed");
    Ok(Committed {
        digest: expected,
        size,
    })
}

/// `DELETE .../uploads/<uuid>`.
pub async fn cancel(
    ctx: &Ctx,
    principal: &Principal,
    name: &RepoName,
    uuid: &str,
) -> Result<(), RegistryError> {
    upload_in(ctx, principal, name, uuid).await?;
    discard(ctx, uuid).await
}

/// Removes an upload and its stored parts (cancel, digest mismatch, expiry).
pub async fn discard(ctx: &Ctx, uuid: &str) -> Result<(), RegistryError> {
    let lock = ctx.uploads.lock_for(uuid);
    let _guard = lock.lock().await;
    db::content::uploads::delete(ctx.db.pool(), uuid).await?;
    delete_stored_parts(ctx, uuid).await?;
    ctx.uploads.forget(uuid);
    Ok(())
}

async fn delete_stored_parts(ctx: &Ctx, uuid: &str) -> Result<(), RegistryError> {
    for entry in ctx.store.list(&paths::upload_dir(uuid)).await? {
        ctx.store.delete(&entry.key).await?;
    }
    Ok(())
}

/// Streams `body` into a new part at `start` while hashing it, then records it. Returns the
/// number of bytes written. The caller holds the upload's lock.
async fn write_part(
    ctx: &Ctx,
    uuid: &str,
    start: u64,
    body: ByteStream,
    expected_len: Option<u64>,
) -> Result<u64, RegistryError> {
    let hasher = match ctx.uploads.take_hasher(uuid, start) {
        Some(h) => h,
        None => {
            let (at, h) = rehash(ctx, uuid, Algorithm::Sha256).await?;
            if at != start {
                return Err(RegistryError::RangeInvalid { size: at });
            }
            h
        }
    };
    let shared = Arc::new(Mutex::new(hasher));
    let hashing = {
        let shared = shared.clone();
        body.map(move |chunk| {
            if let Ok(bytes) = &chunk {
                shared
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .update(bytes);
            }
            chunk
        })
    };
    let key = paths::upload_part(uuid, start);
    ctx.uploads.in_progress.fetch_add(1, Ordering::Relaxed);
    let put = ctx.store.put(&key, Box::pin(hashing)).await;
    ctx.uploads.in_progress.fetch_sub(1, Ordering::Relaxed);
    let written = put.map_err(|e| match e {
        crate::storage::StorageError::Io(io) => {
            RegistryError::UploadInvalid(format!("reading the request body failed: {io}"))
        }
        other => other.into(),
    })?;
    if expected_len.is_some_and(|len| len != written) {
        ctx.store.delete(&key).await?;
        return Err(RegistryError::UploadInvalid(format!(
            "Content-Range announced {} bytes but the body had {written}",
            expected_len.unwrap_or_default()
        )));
    }
    let hasher = Arc::try_unwrap(shared)
        .map_err(|_| Internal::Other("hasher still shared".into()))?
        .into_inner()
        .unwrap_or_else(|e| e.into_inner());
    if written == 0 {
        ctx.store.delete(&key).await?;
        ctx.uploads.put_hasher(uuid, start, hasher);
        return Ok(0);
    }
    let mut tx = ctx.db.begin().await?;
    let recorded = db::content::uploads::append_part(
        &mut tx,
        uuid,
        start as i64,
        written as i64,
        ctx.now_ms(),
    )
    .await?;
    tx.commit().await?;
    if !recorded {
        ctx.store.delete(&key).await?;
        // Another request extended the upload first (416 with its size), or the upload is
        // gone (cancelled, or its repository deleted meanwhile: unknown).
        return Err(
            match db::content::uploads::get(ctx.db.pool(), uuid).await? {
                Some(u) => RegistryError::RangeInvalid {
                    size: u.size as u64,
                },
                None => RegistryError::UploadUnknown,
            },
        );
    }
    ctx.uploads.put_hasher(uuid, start + written, hasher);
    Ok(written)
}

/// Rebuilds an upload's hash from its recorded parts. Returns the offset reached.
async fn rehash(
    ctx: &Ctx,
    uuid: &str,
    algorithm: Algorithm,
) -> Result<(u64, Hasher), RegistryError> {
    let mut hasher = Hasher::new(algorithm);
    let mut offset = 0u64;
    for (start, size) in db::content::uploads::parts(ctx.db.pool(), uuid).await? {
        let mut stream = ctx
            .store
            .get(&paths::upload_part(uuid, start as u64), None)
            .await?;
        while let Some(chunk) = stream.next().await {
            hasher.update(&chunk.map_err(crate::storage::StorageError::from)?);
        }
        offset = (start + size) as u64;
    }
    Ok((offset, hasher))
}

/// Abandons uploads idle for longer than the configured expiration, and removes stored parts
/// that belong to no upload (left by a crash). Returns how many uploads were removed.
pub async fn clean_expired(ctx: &Ctx) -> Result<usize, RegistryError> {
    let now = ctx.now_ms();
    let cutoff = now - ctx.config.upload_expiration.as_millis() as i64;
    let mut removed = 0;
    loop {
        let batch = db::content::uploads::idle_since(ctx.db.pool(), cutoff, 100).await?;
        if batch.is_empty() {
            break;
        }
        for uuid in &batch {
            discard(ctx, uuid).await?;
            removed += 1;
        }
    }
    for entry in ctx.store.list(paths::UPLOADS).await? {
        let Some(uuid) = paths::upload_of_key(&entry.key) else {
            continue;
        };
        if entry.modified_ms < cutoff && !db::content::uploads::exists(ctx.db.pool(), uuid).await? {
            ctx.store.delete(&entry.key).await?;
        }
    }
    // Partial writes a crash left in the store's own temporary area. Storage timestamps are
    // wall-clock time, so the cutoff is computed from the system clock.
    let wall_cutoff =
        crate::service::SystemClock.now_ms() - ctx.config.upload_expiration.as_millis() as i64;
    ctx.store.sweep_temporary(wall_cutoff).await?;
    Ok(removed)
}
