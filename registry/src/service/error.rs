//! Domain errors. Each surface maps them to its own format in exactly one place
//! (`api::v2::error` for the OCI envelope, `api::quay::error` for Quay's error body).

use super::Internal;

/// Errors of the registry protocol services (blobs, uploads, manifests, tags, referrers).
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("invalid repository name: {0}")]
    NameInvalid(String),
    #[error("repository name not known to registry")]
    NameUnknown,
    #[error("invalid tag: {0}")]
    TagInvalid(String),
    #[error("provided digest is invalid: {0}")]
    DigestInvalid(String),
    #[error("blob unknown to registry")]
    BlobUnknown(String),
    #[error("blob upload unknown to registry")]
    UploadUnknown,
    #[error("blob upload invalid: {0}")]
    UploadInvalid(String),
    /// A chunk did not start where the upload ends; `size` is what the registry has.
    #[error("requested range not satisfiable: upload is at offset {size}")]
    RangeInvalid { size: u64 },
    #[error("manifest unknown: {0}")]
    ManifestUnknown(String),
    #[error("manifest invalid: {0}")]
    ManifestInvalid(String),
    #[error("manifest references a blob unknown to the repository: {0}")]
    ManifestBlobUnknown(String),
    #[error("manifest is larger than {limit} bytes")]
    ManifestTooLarge { limit: usize },
    #[error("the operation is unsupported: {0}")]
    Unsupported(String),
    /// Authentication is required (anonymous caller).
    #[error("authentication required")]
    Unauthorized,
    /// The caller is authenticated but may not do this.
    #[error("requested access to the resource is denied")]
    Denied,
    #[error(transparent)]
    Internal(#[from] Internal),
}

impl From<crate::db::DbError> for RegistryError {
    fn from(e: crate::db::DbError) -> Self {
        RegistryError::Internal(Internal::Db(e))
    }
}

impl From<crate::storage::StorageError> for RegistryError {
    fn from(e: crate::storage::StorageError) -> Self {
        RegistryError::Internal(Internal::Storage(e))
    }
}

/// Errors of account management (users, tokens).
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// The request is well-formed but not allowed in this state (e.g. users already exist).
    #[error("{0}")]
    NotAllowed(String),
    /// A field is invalid; the message names it.
    #[error("{message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    NotFound(String),
    #[error(transparent)]
    Internal(#[from] Internal),
}

impl From<crate::db::DbError> for AccountError {
    fn from(e: crate::db::DbError) -> Self {
        AccountError::Internal(Internal::Db(e))
    }
}
