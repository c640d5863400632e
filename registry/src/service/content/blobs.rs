//! Reading and deleting blobs of a repository.

use std::ops::Range;

use crate::db;
use crate::oci::{Digest, RepoName};
use crate::service::access::authz::Action;
use crate::service::{Ctx, Principal, RegistryError, content::repositories};
use crate::storage::{ByteStream, paths};

/// A byte range requested with `Range: bytes=...`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ByteRange {
    /// `start-` or `start-end` (inclusive end).
    From { start: u64, end: Option<u64> },
    /// `-n`: the last n bytes.
    Suffix(u64),
}

impl ByteRange {
    /// The half-open range this selects in an object of `size` bytes, if satisfiable.
    pub fn resolve(self, size: u64) -> Option<Range<u64>> {
        match self {
            ByteRange::From { start, end } => {
                let end = end.map_or(size, |e| e.saturating_add(1).min(size));
                (start < size && start < end).then_some(start..end)
            }
            ByteRange::Suffix(n) => (n > 0 && size > 0).then(|| size.saturating_sub(n)..size),
        }
    }
}

pub fn parse_digest(s: &str) -> Result<Digest, RegistryError> {
    s.parse()
        .map_err(|e: crate::oci::DigestError| RegistryError::DigestInvalid(e.to_string()))
}

/// Size of a blob the caller may pull.
pub async fn stat(
    ctx: &Ctx,
    principal: &Principal,
    name: &RepoName,
    digest: &str,
) -> Result<(Digest, u64), RegistryError> {
    let digest = parse_digest(digest)?;
    let repo = repositories::existing(ctx, principal, Action::Pull, name).await?;
    let size = db::content::blobs::size_in_repo(ctx.db.pool(), repo.id, digest.as_str())
        .await?
        .ok_or_else(|| RegistryError::BlobUnknown(digest.to_string()))?;
    Ok((digest, size as u64))
}

/// What a blob GET serves.
pub struct BlobBody {
    pub digest: Digest,
    pub size: u64,
    /// The served range, when the request asked for one.
    pub range: Option<Range<u64>>,
    pub stream: ByteStream,
}

pub async fn open(
    ctx: &Ctx,
    principal: &Principal,
    name: &RepoName,
    digest: &str,
    range: Option<ByteRange>,
) -> Result<BlobBody, RegistryError> {
    let (digest, size) = stat(ctx, principal, name, digest).await?;
    let range = match range {
        None => None,
        Some(r) => Some(
            r.resolve(size)
                .ok_or(RegistryError::RangeInvalid { size })?,
        ),
    };
    let stream = ctx.store.get(&paths::blob(&digest), range.clone()).await?;
    Ok(BlobBody {
        digest,
        size,
        range,
        stream,
    })
}

/// Removes the blob from the repository (its bytes go once nothing references them).
pub async fn delete(
    ctx: &Ctx,
    principal: &Principal,
    name: &RepoName,
    digest: &str,
) -> Result<(), RegistryError> {
    let digest = parse_digest(digest)?;
    let repo = repositories::existing(ctx, principal, Action::Delete, name).await?;
    if !db::content::blobs::unlink(ctx.db.pool(), repo.id, digest.as_str()).await? {
        return Err(RegistryError::BlobUnknown(digest.to_string()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::ByteRange;

    #[test]
    fn ranges() {
        assert_eq!(
            ByteRange::From {
                start: 0,
                end: Some(9)
            }
            .resolve(100),
            Some(0..10)
        );
        assert_eq!(
            ByteRange::From {
                start: 90,
                end: None
            }
            .resolve(100),
            Some(90..100)
        );
        assert_eq!(
            ByteRange::From {
                start: 90,
                end: Some(500)
            }
            .resolve(100),
            Some(90..100)
        );
        assert_eq!(
            ByteRange::From {
                start: 100,
                end: None
            }
            .resolve(100),
            None
        );
        assert_eq!(ByteRange::Suffix(10).resolve(100), Some(90..100));
        assert_eq!(ByteRange::Suffix(500).resolve(100), Some(0..100));
        assert_eq!(ByteRange::Suffix(0).resolve(100), None);
    }
}
